//! The PTX modules build.rs compiled from `cuda/` and embedded, with ptxas's resource report.

include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

/// The PTX of module `name` (the `.cu` file's stem).
pub fn module_ptx(name: &str) -> Option<&'static str> {
    MODULES.iter().find(|(n, _)| *n == name).map(|(_, ptx)| *ptx)
}

/// A readable summary: the modules, the nvcc that built them, and ptxas's per-kernel report.
pub fn kernel_report() -> String {
    if MODULES.is_empty() {
        return "no CUDA kernels in this build: nvcc was not found at build time (run `export NVCC=$(scripts/install-nvcc)` and rebuild)".into();
    }
    let names: Vec<&str> = MODULES.iter().map(|(n, _)| *n).collect();
    let mut out = format!(
        "{} PTX modules (compute_80), built by nvcc {NVCC_VERSION}: {}\n",
        names.len(),
        names.join(", ")
    );
    out.push_str("ptxas -arch=sm_90 report:\n");
    for line in PTXAS_REPORT
        .lines()
        .filter(|l| l.starts_with("==") || l.contains("Compiling entry") || l.contains("Used") || l.contains("spill"))
    {
        out.push_str(line.trim_start_matches("ptxas info    : "));
        out.push('\n');
    }
    out
}
