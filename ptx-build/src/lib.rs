//! Build-script support shared by the crates that compile CUDA: finds nvcc, compiles every `.cu`
//! of a folder to PTX (`compute_80`, with `-lineinfo` so that `.loc` names the source lines) and
//! validates each with `ptxas -arch=sm_90`, in parallel.
//!
//! nvcc is looked up in this order: `NVCC`, `$CUDA_HOME/bin/nvcc`, `$CUDA_PATH/bin/nvcc`, `nvcc`
//! on `PATH`, and the workspace's own `.toolchain/cuda` that `scripts/install-nvcc` fills from
//! NVIDIA's PyPI wheels.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `scripts/install-nvcc` puts nvcc, relative to the workspace root.
const PROJECT_NVCC: &str = ".toolchain/cuda/nvidia/cu13/bin/nvcc";

/// The environment variables whose change must rerun a build script that calls this crate.
pub const WATCHED_ENV: &[&str] = &["NVCC", "CUDA_HOME", "CUDA_PATH", "PATH", "LEANGCN_REQUIRE_NVCC"];

/// Prints the `cargo::rerun-if-env-changed` lines for `WATCHED_ENV`.
pub fn watch_env() {
    for var in WATCHED_ENV {
        println!("cargo::rerun-if-env-changed={var}");
    }
}

/// nvcc, if one is found (see the crate's documentation); `workspace` is the workspace root.
pub fn find_nvcc(workspace: &Path) -> Option<PathBuf> {
    let candidates = [
        env::var_os("NVCC").map(PathBuf::from),
        env::var_os("CUDA_HOME").map(|h| PathBuf::from(h).join("bin/nvcc")),
        env::var_os("CUDA_PATH").map(|h| PathBuf::from(h).join("bin/nvcc")),
        env::var_os("PATH").and_then(|paths| env::split_paths(&paths).map(|p| p.join("nvcc")).find(|p| p.is_file())),
        Some(workspace.join(PROJECT_NVCC)),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

/// Whether the build must fail without nvcc (`LEANGCN_REQUIRE_NVCC=1`, as CI sets it).
pub fn nvcc_required() -> bool {
    env::var("LEANGCN_REQUIRE_NVCC").is_ok_and(|v| v == "1")
}

/// nvcc's release line (`Cuda compilation tools, release 13.0, V13.0.88`).
pub fn nvcc_version(nvcc: &Path) -> String {
    Command::new(nvcc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().find(|l| l.contains("release")).map(|l| l.trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

/// The `.cu` files of `dir`, sorted.
pub fn cuda_sources(dir: &Path) -> Vec<PathBuf> {
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

/// One compiled source: its stem, the PTX's path and ptxas's report.
pub struct Compiled {
    pub name: String,
    pub ptx: PathBuf,
    pub ptxas_report: String,
}

/// Compiles every source to `out/<stem>.ptx` (headers from `include`), validating each with
/// ptxas; in file order, after compiling all in parallel.
pub fn compile_all(nvcc: &Path, include: &Path, sources: &[PathBuf], out: &Path) -> Vec<Result<Compiled, String>> {
    let ptxas = nvcc.with_file_name("ptxas");
    std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter()
            .map(|src| scope.spawn(|| compile(nvcc, &ptxas, include, src, out)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a compile thread"))
            .collect()
    })
}

/// nvcc → PTX, then ptxas for sm_90.
fn compile(nvcc: &Path, ptxas: &Path, include: &Path, src: &Path, out: &Path) -> Result<Compiled, String> {
    let name = src
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("a .cu file name")?
        .to_string();
    let ptx = out.join(format!("{name}.ptx"));
    let compiled = Command::new(nvcc)
        .args(["-ptx", "-arch=compute_80", "-O3", "-std=c++17", "-lineinfo"])
        .arg("-I")
        .arg(include)
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
    let ptxas_report = String::from_utf8_lossy(&checked.stderr).into_owned();
    if !checked.status.success() {
        return Err(format!("ptxas -arch=sm_90 rejected {}:\n{ptxas_report}", ptx.display()));
    }
    fs::write(out.join(format!("{name}.ptxas.txt")), &ptxas_report).map_err(|e| e.to_string())?;
    Ok(Compiled {
        name,
        ptx,
        ptxas_report,
    })
}
