//! Every PTX module the build embeds loads into the PTX emulator: every instruction, modifier and
//! directive nvcc emitted for our kernels is one the emulator implements. A kernel change that
//! makes nvcc emit something new fails here, naming the module, kernel, PTX line and `.cu` line,
//! instead of at a GPU test's first launch.

use leangcn::backend::cuda::kernels::MODULES;
use ptx_emulator::exec::load_module;
use ptx_emulator::memory::DeviceMemory;

#[test]
fn every_embedded_module_loads_into_the_emulator() {
    if MODULES.is_empty() {
        assert!(
            std::env::var("LEANGCN_REQUIRE_NVCC").as_deref() != Ok("1"),
            "a build that requires nvcc has no kernels"
        );
        println!("skipped every_embedded_module_loads_into_the_emulator: this build has no kernels (no nvcc)");
        return;
    }
    let memory = DeviceMemory::new();
    let mut kernels = 0;
    for (name, ptx) in MODULES {
        let module = load_module(ptx, name, &memory).unwrap_or_else(|e| panic!("{e}"));
        let declared = ptx
            .lines()
            .filter(|l| l.split_whitespace().any(|w| w == ".entry"))
            .count();
        assert_eq!(module.kernels.len(), declared, "module {name}: kernels decoded");
        kernels += declared;
    }
    println!("{} modules, {kernels} kernels loaded into the emulator", MODULES.len());
}
