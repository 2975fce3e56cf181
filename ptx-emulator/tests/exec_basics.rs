//! Small kernels through the whole executor, against answers computed here.

mod support;

use support::{Arg, Emulator};

#[test]
fn saxpy_with_a_partial_last_block() {
    let emu = Emulator::new();
    let Some(m) = emu.load_compiled("basics") else { return };
    let n = 1000u32;
    let x: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
    let y: Vec<f32> = (0..n).map(|i| 1.0 + i as f32).collect();
    let (dx, dy) = (emu.upload(&x), emu.upload(&y));
    emu.launch(
        &m,
        "saxpy",
        [4, 1, 1],
        [256, 1, 1],
        0,
        &[Arg::Ptr(dx), Arg::Ptr(dy), Arg::F32(3.0), Arg::U32(n)],
    )
    .unwrap_or_else(|f| panic!("{f}"));
    let got: Vec<f32> = emu.download(dy, n as usize);
    for i in 0..n as usize {
        assert_eq!(got[i], 3.0f32.mul_add(x[i], y[i]), "element {i}");
    }
}

#[test]
fn block_sums_through_shared_memory_and_shuffles() {
    let emu = Emulator::new();
    let Some(m) = emu.load_compiled("basics") else { return };
    let x: Vec<f32> = (0..256 * 3).map(|i| (i % 17) as f32 - 8.0).collect();
    let (dx, dout) = (emu.upload(&x), emu.alloc(3 * 4));
    emu.launch(
        &m,
        "block_sum",
        [3, 1, 1],
        [256, 1, 1],
        0,
        &[Arg::Ptr(dx), Arg::Ptr(dout)],
    )
    .unwrap_or_else(|f| panic!("{f}"));
    let got: Vec<f32> = emu.download(dout, 3);
    for (b, g) in got.iter().enumerate() {
        let want: f32 = x[b * 256..(b + 1) * 256].iter().sum();
        assert_eq!(*g, want, "block {b}");
    }
}

#[test]
fn divergent_loops_reconverge() {
    let emu = Emulator::new();
    let Some(m) = emu.load_compiled("basics") else { return };
    let start: Vec<u32> = (1..=100).collect();
    let (ds, dsteps) = (emu.upload(&start), emu.alloc(100 * 4));
    emu.launch(
        &m,
        "collatz_steps",
        [2, 1, 1],
        [64, 1, 1],
        0,
        &[Arg::Ptr(ds), Arg::Ptr(dsteps), Arg::U32(100)],
    )
    .unwrap_or_else(|f| panic!("{f}"));
    let got: Vec<u32> = emu.download(dsteps, 100);
    for (i, &s) in start.iter().enumerate() {
        let (mut v, mut count) = (s, 0);
        while v != 1 {
            v = if v % 2 == 0 { v / 2 } else { 3 * v + 1 };
            count += 1;
        }
        assert_eq!(got[i], count, "start {s}");
    }
}

#[test]
fn ballot_ranks_odd_lanes() {
    let emu = Emulator::new();
    let Some(m) = emu.load_compiled("basics") else { return };
    let x: Vec<u32> = (0..128u32).map(|i| i.wrapping_mul(2654435761) >> 7).collect();
    let (dx, drank, dcount) = (emu.upload(&x), emu.alloc(128 * 4), emu.alloc(4 * 4));
    emu.launch(
        &m,
        "odd_rank",
        [2, 1, 1],
        [64, 1, 1],
        0,
        &[Arg::Ptr(dx), Arg::Ptr(drank), Arg::Ptr(dcount)],
    )
    .unwrap_or_else(|f| panic!("{f}"));
    let rank: Vec<u32> = emu.download(drank, 128);
    let count: Vec<u32> = emu.download(dcount, 4);
    for w in 0..4 {
        let lanes = &x[w * 32..(w + 1) * 32];
        assert_eq!(
            count[w],
            lanes.iter().filter(|v| *v & 1 == 1).count() as u32,
            "warp {w}"
        );
        let mut seen = 0;
        for (l, v) in lanes.iter().enumerate() {
            let want = if v & 1 == 1 { seen } else { u32::MAX };
            assert_eq!(rank[w * 32 + l], want, "warp {w} lane {l}");
            seen += v & 1;
        }
    }
}

#[test]
fn histogram_with_shared_and_global_atomics() {
    let emu = Emulator::new();
    let Some(m) = emu.load_compiled("basics") else { return };
    let x: Vec<u32> = (0..5000u32).map(|i| i.wrapping_mul(747796405).rotate_left(7)).collect();
    let (dx, dbins) = (emu.upload(&x), emu.upload(&[0u32; 16]));
    emu.launch(
        &m,
        "histogram16",
        [4, 1, 1],
        [128, 1, 1],
        0,
        &[Arg::Ptr(dx), Arg::U32(5000), Arg::Ptr(dbins)],
    )
    .unwrap_or_else(|f| panic!("{f}"));
    let bins: Vec<u32> = emu.download(dbins, 16);
    let mut want = [0u32; 16];
    for v in &x {
        want[(v % 16) as usize] += 1;
    }
    assert_eq!(bins, want);
}

#[test]
fn local_arrays_per_thread() {
    let emu = Emulator::new();
    let Some(m) = emu.load_compiled("basics") else { return };
    let x: Vec<u32> = (0..64u32).map(|i| i * 7919 + 3).collect();
    let (dx, dout) = (emu.upload(&x), emu.alloc(64 * 4));
    emu.launch(
        &m,
        "reverse_digits",
        [2, 1, 1],
        [32, 1, 1],
        0,
        &[Arg::Ptr(dx), Arg::Ptr(dout)],
    )
    .unwrap_or_else(|f| panic!("{f}"));
    let got: Vec<u32> = emu.download(dout, 64);
    for (i, v) in x.iter().enumerate() {
        let want: u32 = v.to_string().chars().rev().collect::<String>().parse().unwrap();
        assert_eq!(got[i], want, "value {v}");
    }
}

#[test]
fn cp_async_pipeline_lands_at_the_wait() {
    let emu = Emulator::new();
    let Some(m) = emu.load_compiled("basics") else { return };
    let tiles = 5u32;
    let x: Vec<f32> = (0..128 * tiles).map(|i| (i % 13) as f32).collect();
    let (dx, dout) = (emu.upload(&x), emu.alloc(128 * 4));
    emu.launch(
        &m,
        "pipelined_tile_sums",
        [1, 1, 1],
        [128, 1, 1],
        0,
        &[Arg::Ptr(dx), Arg::Ptr(dout), Arg::U32(tiles)],
    )
    .unwrap_or_else(|f| panic!("{f}"));
    let got: Vec<f32> = emu.download(dout, 128);
    for t in 0..128usize {
        let want: f32 = (0..tiles as usize).map(|k| x[k * 128 + (t + 1) % 128]).sum();
        assert_eq!(got[t], want, "thread {t}");
    }
}

#[test]
fn shuffles_on_the_two_sides_of_a_branch_meet() {
    let emu = Emulator::new();
    let Some(m) = emu.load_compiled("basics") else { return };
    let x: Vec<u32> = (0..32u32).map(|i| i * 3 + 1).collect();
    let (dx, dout) = (emu.upload(&x), emu.alloc(32 * 4));
    emu.launch(
        &m,
        "shuffle_on_both_sides",
        [1, 1, 1],
        [32, 1, 1],
        0,
        &[Arg::Ptr(dx), Arg::Ptr(dout)],
    )
    .unwrap_or_else(|f| panic!("{f}"));
    let got: Vec<u32> = emu.download(dout, 32);
    for lane in 0..32 {
        let partner = x[lane ^ 1];
        let want = if lane % 2 == 1 { partner + 1000 } else { partner * 2 };
        assert_eq!(got[lane], want, "lane {lane}");
    }
}
