//! The PTX pipeline: compiles every `cuda/*.cu` to PTX (compute_80) with nvcc, validates each with
//! `ptxas -arch=sm_90` (any error fails the build; spills and local memory become warnings), keeps
//! ptxas's per-kernel report next to the PTX, and embeds the modules in the library
//! (`OUT_DIR/kernels.rs`). Without nvcc the build succeeds with one warning and no kernels, unless
//! `LEANGCN_REQUIRE_NVCC=1` (CI) makes that an error.
//!
//! nvcc is looked up in this order: `NVCC`, `$CUDA_HOME/bin/nvcc`, `$CUDA_PATH/bin/nvcc`, `nvcc` on
//! `PATH`, and the project's own `.toolchain/cuda` that `scripts/install-nvcc` fills from NVIDIA's
//! PyPI wheels.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const PROJECT_NVCC: &str = ".toolchain/cuda/nvidia/cu13/bin/nvcc";

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cuda_dir = manifest.join("cuda");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=cuda");
    for var in [
        "NVCC",
        "CUDA_HOME",
        "CUDA_PATH",
        "PATH",
        "LEANGCN_REQUIRE_NVCC",
        "LEANGCN_PTXAS_VERBOSE",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    println!("cargo::rustc-check-cfg=cfg(leangcn_has_ptx)");

    let sources = cuda_sources(&cuda_dir);
    let Some(nvcc) = find_nvcc(&manifest) else {
        let message = "nvcc not found: building without CUDA kernels. Install it with `export NVCC=$(scripts/install-nvcc)` and rebuild";
        if env::var("LEANGCN_REQUIRE_NVCC").is_ok_and(|v| v == "1") {
            panic!("LEANGCN_REQUIRE_NVCC=1 but {message}");
        }
        println!("cargo::warning={message}");
        write_modules(&out, &[], "none", "");
        return;
    };
    println!("cargo::rerun-if-changed={}", nvcc.display());
    let ptxas = nvcc.with_file_name("ptxas");
    let version = nvcc_version(&nvcc);

    // compile all files in parallel, then report in file order
    let results: Vec<Result<(String, String), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter()
            .map(|src| scope.spawn(|| compile(&nvcc, &ptxas, &cuda_dir, src, &out)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a compile thread"))
            .collect()
    });
    let verbose = env::var("LEANGCN_PTXAS_VERBOSE").is_ok_and(|v| v == "1");
    let mut modules = Vec::new();
    let mut report = String::new();
    for result in results {
        let (name, ptxas_report) = result.unwrap_or_else(|e| panic!("{e}"));
        for line in ptxas_report.lines() {
            let spills = line.contains("spill stores") && !line.contains(" 0 bytes spill stores")
                || line.contains("spill loads") && !line.contains(" 0 bytes spill loads")
                || line.contains("lmem");
            if spills || (verbose && line.contains("Used")) {
                println!("cargo::warning={name}.cu: {}", line.trim());
            }
        }
        let _ = writeln!(report, "== {name}.cu\n{ptxas_report}");
        modules.push(name);
    }
    fs::write(out.join("ptxas-summary.txt"), &report).expect("writing the ptxas summary");
    println!("cargo::rustc-cfg=leangcn_has_ptx");
    write_modules(&out, &modules, &version, &report);
}

fn cuda_sources(dir: &Path) -> Vec<PathBuf> {
    let mut sources: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "cu"))
                .collect()
        })
        .unwrap_or_default();
    sources.sort();
    sources
}

fn find_nvcc(manifest: &Path) -> Option<PathBuf> {
    let candidates = [
        env::var_os("NVCC").map(PathBuf::from),
        env::var_os("CUDA_HOME").map(|h| PathBuf::from(h).join("bin/nvcc")),
        env::var_os("CUDA_PATH").map(|h| PathBuf::from(h).join("bin/nvcc")),
        env::var_os("PATH").and_then(|paths| env::split_paths(&paths).map(|p| p.join("nvcc")).find(|p| p.is_file())),
        Some(manifest.join(PROJECT_NVCC)),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

fn nvcc_version(nvcc: &Path) -> String {
    Command::new(nvcc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().find(|l| l.contains("release")).map(|l| l.trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

/// nvcc → PTX, then ptxas for sm_90; returns (module name, ptxas report).
fn compile(nvcc: &Path, ptxas: &Path, cuda_dir: &Path, src: &Path, out: &Path) -> Result<(String, String), String> {
    let name = src
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("a .cu file name")?
        .to_string();
    let ptx = out.join(format!("{name}.ptx"));
    let compiled = Command::new(nvcc)
        .args(["-ptx", "-arch=compute_80", "-O3", "-std=c++17", "-lineinfo"])
        .arg("-I")
        .arg(cuda_dir)
        .arg(src)
        .arg("-o")
        .arg(&ptx)
        .output()
        .map_err(|e| format!("running {}: {e}", nvcc.display()))?;
    if !compiled.status.success() {
        return Err(format!(
            "nvcc failed on {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&compiled.stderr)
        ));
    }
    let checked = Command::new(ptxas)
        .args(["-arch=sm_90", "-v", "-warn-spills", "-warn-lmem-usage", "-o"])
        .arg(out.join(format!("{name}.sm_90.cubin")))
        .arg(&ptx)
        .output()
        .map_err(|e| format!("running {}: {e}", ptxas.display()))?;
    let report = String::from_utf8_lossy(&checked.stderr).into_owned();
    if !checked.status.success() {
        return Err(format!("ptxas -arch=sm_90 rejected {}:\n{report}", ptx.display()));
    }
    fs::write(out.join(format!("{name}.ptxas.txt")), &report).map_err(|e| e.to_string())?;
    Ok((name, report))
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
