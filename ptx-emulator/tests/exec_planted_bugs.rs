//! Every planted bug of `kernels/planted_bugs.cu` is reported: the right kind of fault, in the
//! right kernel, at the `.cu` line marked `BUG:`, with the block and thread that hit it.

mod support;

use ptx_emulator::exec::{Fault, FaultKind};
use support::{Arg, Emulator};

/// The line of `planted_bugs.cu` marked `BUG:` inside `kernel`'s body.
fn bug_line(kernel: &str) -> u32 {
    let source = include_str!("kernels/planted_bugs.cu");
    let start = source
        .lines()
        .position(|l| l.contains(&format!("void {kernel}(")))
        .unwrap_or_else(|| panic!("{kernel} in planted_bugs.cu"));
    let offset = source
        .lines()
        .skip(start)
        .position(|l| l.contains("// BUG:"))
        .expect("a BUG: marker");
    (start + offset + 1) as u32
}

/// Runs `kernel` and checks its fault.
fn expect_fault(
    kernel: &str,
    kind: FaultKind,
    run: impl FnOnce(&Emulator, &ptx_emulator::exec::LoadedModule) -> Result<ptx_emulator::exec::LaunchStats, Fault>,
) -> Option<Fault> {
    let emu = Emulator::new();
    let m = emu.load_compiled("planted_bugs")?;
    let fault = run(&emu, &m).map(|_| ()).expect_err("the planted bug must be reported");
    println!("{kernel}: {fault}");
    assert_eq!(fault.kind, kind, "{fault}");
    assert_eq!(fault.kernel, kernel);
    assert!(fault.ptx_line > 0, "{fault}");
    // a race has two sides: the report is at one and names the other
    let source = fault.source.clone().unwrap_or_default();
    let want = format!("planted_bugs.cu:{}:", bug_line(kernel));
    assert!(
        source.contains(&want) || fault.detail.contains(&want),
        "the report names {source:?} and says {:?}, neither is {want}",
        fault.detail
    );
    Some(fault)
}

#[test]
fn a_store_one_past_the_allocation() {
    let Some(fault) = expect_fault("store_past_the_end", FaultKind::OutOfBounds, |emu, m| {
        let out = emu.alloc(100 * 4);
        emu.launch(
            m,
            "store_past_the_end",
            [1, 1, 1],
            [128, 1, 1],
            0,
            &[Arg::Ptr(out), Arg::U32(100)],
        )
    }) else {
        return;
    };
    assert_eq!(fault.thread, [100, 0, 0]);
    assert!(
        fault.detail.contains("offset 400 of allocation #1 of 400 bytes"),
        "{}",
        fault.detail
    );
}

#[test]
fn a_missing_syncthreads() {
    let Some(fault) = expect_fault("missing_syncthreads", FaultKind::SharedRace, |emu, m| {
        let (x, out) = (emu.upload(&[1.0f32; 128]), emu.alloc(128 * 4));
        emu.launch(
            m,
            "missing_syncthreads",
            [1, 1, 1],
            [128, 1, 1],
            0,
            &[Arg::Ptr(x), Arg::Ptr(out)],
        )
    }) else {
        return;
    };
    assert!(fault.detail.contains("no barrier"), "{}", fault.detail);
}

#[test]
fn a_cp_async_read_before_its_wait() {
    expect_fault("cp_async_read_before_wait", FaultKind::AsyncCopyNotWaited, |emu, m| {
        let (x, out) = (emu.upload(&[1.0f32; 64]), emu.alloc(64 * 4));
        emu.launch(
            m,
            "cp_async_read_before_wait",
            [1, 1, 1],
            [64, 1, 1],
            0,
            &[Arg::Ptr(x), Arg::Ptr(out)],
        )
    });
}

#[test]
fn a_divergent_shuffle() {
    let Some(fault) = expect_fault("divergent_shuffle", FaultKind::DivergentCollective, |emu, m| {
        let (x, out) = (emu.upload(&[1.0f32; 32]), emu.alloc(32 * 4));
        emu.launch(
            m,
            "divergent_shuffle",
            [1, 1, 1],
            [32, 1, 1],
            0,
            &[Arg::Ptr(x), Arg::Ptr(out)],
        )
    }) else {
        return;
    };
    assert!(fault.detail.contains("0xffff0000"), "{}", fault.detail);
}

#[test]
fn an_uninitialized_shared_read() {
    let Some(fault) = expect_fault("uninitialized_shared_read", FaultKind::UninitializedShared, |emu, m| {
        let out = emu.alloc(64 * 4);
        emu.launch(
            m,
            "uninitialized_shared_read",
            [1, 1, 1],
            [64, 1, 1],
            0,
            &[Arg::Ptr(out)],
        )
    }) else {
        return;
    };
    assert_eq!(fault.thread, [32, 0, 0]);
}

#[test]
fn a_misaligned_vector_load() {
    expect_fault("misaligned_vector_load", FaultKind::Misaligned, |emu, m| {
        let (x, out) = (emu.upload(&[1.0f32; 4 * 32 + 4]), emu.alloc(32 * 4));
        emu.launch(
            m,
            "misaligned_vector_load",
            [1, 1, 1],
            [32, 1, 1],
            0,
            &[Arg::Ptr(x), Arg::Ptr(out)],
        )
    });
}

#[test]
fn a_warp_exchange_without_syncwarp() {
    let Some(fault) = expect_fault("warp_exchange_without_syncwarp", FaultKind::SharedRace, |emu, m| {
        let (x, out) = (emu.upload(&[1.0f32; 32]), emu.alloc(4));
        emu.launch(
            m,
            "warp_exchange_without_syncwarp",
            [1, 1, 1],
            [32, 1, 1],
            0,
            &[Arg::Ptr(x), Arg::Ptr(out)],
        )
    }) else {
        return;
    };
    assert!(fault.detail.contains("no barrier"), "{}", fault.detail);
}

#[test]
fn two_blocks_write_one_element() {
    expect_fault("blocks_write_the_same_element", FaultKind::GlobalRace, |emu, m| {
        let out = emu.alloc(4);
        emu.launch(
            m,
            "blocks_write_the_same_element",
            [4, 1, 1],
            [32, 1, 1],
            0,
            &[Arg::Ptr(out)],
        )
    });
}

#[test]
fn an_uninitialized_global_read() {
    expect_fault("uninitialized_global_read", FaultKind::UninitializedGlobal, |emu, m| {
        let (x, out) = (emu.alloc(32 * 4), emu.alloc(32 * 4));
        emu.launch(
            m,
            "uninitialized_global_read",
            [1, 1, 1],
            [32, 1, 1],
            0,
            &[Arg::Ptr(x), Arg::Ptr(out)],
        )
    });
}
