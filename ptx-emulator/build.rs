//! Compiles the emulator's test kernels (`tests/kernels/*.cu`: planted bugs and known-answer
//! kernels) with the same nvcc and flags as the project's, and tells the tests where they are
//! (`PTX_EMULATOR_TEST_KERNELS`, empty without nvcc, where the tests that need them say they are
//! skipped; `LEANGCN_REQUIRE_NVCC=1` makes a missing nvcc an error).

use std::env;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest
        .parent()
        .expect("the emulator sits in the workspace")
        .to_path_buf();
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let kernels = manifest.join("tests/kernels");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=tests/kernels");
    ptx_build::watch_env();
    let Some(nvcc) = ptx_build::find_nvcc(&workspace) else {
        if ptx_build::nvcc_required() {
            panic!("LEANGCN_REQUIRE_NVCC=1 but nvcc was not found for the emulator's test kernels");
        }
        println!("cargo::warning=nvcc not found: the emulator's tests that run compiled kernels will be skipped");
        println!("cargo::rustc-env=PTX_EMULATOR_TEST_KERNELS=");
        return;
    };
    println!("cargo::rerun-if-changed={}", nvcc.display());
    let sources = ptx_build::cuda_sources(&kernels);
    for result in ptx_build::compile_all(&nvcc, &kernels, &sources, &out) {
        result.unwrap_or_else(|e| panic!("{e}"));
    }
    println!("cargo::rustc-env=PTX_EMULATOR_TEST_KERNELS={}", out.display());
}
