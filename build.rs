//! The PTX pipeline: compiles every `cuda/*.cu` to PTX (compute_80) with nvcc, validates each with
//! `ptxas -arch=sm_90` (any error fails the build; spills and local memory become warnings), keeps
//! ptxas's per-kernel report next to the PTX, and embeds the modules in the library
//! (`OUT_DIR/kernels.rs`). Without nvcc the build succeeds with one warning and no kernels, unless
//! `LEANGCN_REQUIRE_NVCC=1` (CI) makes that an error. Finding and running nvcc is `ptx-build`'s.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cuda_dir = manifest.join("cuda");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=cuda");
    ptx_build::watch_env();
    println!("cargo::rerun-if-env-changed=LEANGCN_PTXAS_VERBOSE");
    println!("cargo::rustc-check-cfg=cfg(leangcn_has_ptx)");

    let Some(nvcc) = ptx_build::find_nvcc(&manifest) else {
        let message = "nvcc not found: building without CUDA kernels. Install it with `export NVCC=$(scripts/install-nvcc)` and rebuild";
        if ptx_build::nvcc_required() {
            panic!("LEANGCN_REQUIRE_NVCC=1 but {message}");
        }
        println!("cargo::warning={message}");
        write_modules(&out, &[], "none", "");
        return;
    };
    println!("cargo::rerun-if-changed={}", nvcc.display());
    let version = ptx_build::nvcc_version(&nvcc);
    let sources = ptx_build::cuda_sources(&cuda_dir);
    let verbose = env::var("LEANGCN_PTXAS_VERBOSE").is_ok_and(|v| v == "1");
    let mut modules = Vec::new();
    let mut report = String::new();
    for result in ptx_build::compile_all(&nvcc, &cuda_dir, &sources, &out) {
        let compiled = result.unwrap_or_else(|e| panic!("{e}"));
        let name = compiled.name;
        for line in compiled.ptxas_report.lines() {
            let spills = line.contains("spill stores") && !line.contains(" 0 bytes spill stores")
                || line.contains("spill loads") && !line.contains(" 0 bytes spill loads")
                || line.contains("lmem");
            if spills || (verbose && line.contains("Used")) {
                println!("cargo::warning={name}.cu: {}", line.trim());
            }
        }
        let _ = writeln!(report, "== {name}.cu\n{}", compiled.ptxas_report);
        modules.push(name);
    }
    fs::write(out.join("ptxas-summary.txt"), &report).expect("writing the ptxas summary");
    println!("cargo::rustc-cfg=leangcn_has_ptx");
    write_modules(&out, &modules, &version, &report);
}

fn write_modules(out: &Path, modules: &[String], version: &str, report: &str) {
    let mut code =
        String::from("/// The embedded PTX modules: (name, PTX text).\npub const MODULES: &[(&str, &str)] = &[\n");
    for m in modules {
        let _ = writeln!(
            code,
            "    ({m:?}, include_str!(concat!(env!(\"OUT_DIR\"), \"/{m}.ptx\"))),"
        );
    }
    code.push_str("];\n");
    let _ = writeln!(
        code,
        "/// The nvcc that compiled them.\npub const NVCC_VERSION: &str = {version:?};"
    );
    let _ = writeln!(
        code,
        "/// ptxas's per-kernel resource report (sm_90).\npub const PTXAS_REPORT: &str = {report:?};"
    );
    fs::write(out.join("kernels.rs"), code).expect("writing kernels.rs");
}
