//! The graph-aggregation kernels against the CPU backend on fresh random data: outputs poisoned
//! with NaN (they must be overwritten entirely), da starting from non-zero values (it accumulates),
//! odd shapes, tiles that cross sample boundaries, the ST-GCN shape, a repeatability check and the
//! launchers' errors. Without a GPU each test prints why it was skipped.
//!
//! Tolerance: both backends sum the same f32 products in different orders (the GPU with FMAs,
//! the CPU through its GEMM), so an element may differ by a few roundings at the scale of its
//! terms: |gpu − cpu| ≤ 16·ε·Σ|terms| (ε = f32::EPSILON), Σ|terms| being the op on |inputs|.
//! Measured on the CPU, f32 against f64 at the ST-GCN shape, the CPU alone is within 3·ε·Σ|terms|.

mod gpu_support;

use gpu_support::{abs, assert_bits, assert_close_to_magnitude, failure, fetch, gpu, normal, poisoned};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::{Backend, GraphGeom};
use leangcn::model::init::InitRng;

const UNITS: f32 = 16.0;

fn geom(n: usize, k: usize, c: usize, t: usize, v: usize) -> GraphGeom {
    GraphGeom { n, k, c, t, v }
}

/// The ST-GCN shape: 16 clips, 64 channels, 100 frames, 25 joints, 3 subsets.
const STGCN: GraphGeom = GraphGeom {
    n: 16,
    k: 3,
    c: 64,
    t: 100,
    v: 25,
};

#[test]
fn graph_forward_and_backward_match_the_cpu() {
    let Some(be) = gpu("graph_forward_and_backward_match_the_cpu") else {
        return;
    };
    let cpu = CpuBackend::<f32>::new();
    let mut rng = InitRng::new(31);
    for g in [
        geom(3, 2, 5, 7, 3),   // odd sizes
        geom(3, 2, 1, 3, 3),   // 3 rows a sample: every tile crosses samples
        geom(2, 1, 1, 1, 1),   // one joint
        geom(2, 3, 4, 11, 17), // COCO's joint count
        geom(2, 2, 3, 5, 70),  // many joints: small tiles
        STGCN,
    ] {
        let (z, a, dy) = (
            normal(&mut rng, g.z_len()),
            normal(&mut rng, g.a_len()),
            normal(&mut rng, g.y_len()),
        );
        let da_init = normal(&mut rng, g.a_len());
        let (gz, ga, gdy) = (be.upload(&z), be.upload(&a), be.upload(&dy));

        let mut y = poisoned(&be, g.y_len());
        be.graph_forward(&g, &gz, &ga, &mut y);
        let mut want_y = vec![0.0; g.y_len()];
        cpu.graph_forward(&g, &z, &a, &mut want_y);
        let mut mag_y = vec![0.0; g.y_len()];
        cpu.graph_forward(&g, &abs(&z), &abs(&a), &mut mag_y);
        assert_close_to_magnitude(&format!("y {g:?}"), &fetch(&be, &y), &want_y, &mag_y, UNITS);

        let mut dz = poisoned(&be, g.z_len());
        let mut da = be.upload(&da_init);
        be.graph_backward(&g, &gz, &ga, &gdy, &mut dz, &mut da);
        let (mut want_dz, mut want_da) = (vec![0.0; g.z_len()], da_init.clone());
        cpu.graph_backward(&g, &z, &a, &dy, &mut want_dz, &mut want_da);
        let (mut mag_dz, mut mag_da) = (vec![0.0; g.z_len()], abs(&da_init));
        cpu.graph_backward(&g, &abs(&z), &abs(&a), &abs(&dy), &mut mag_dz, &mut mag_da);
        assert_close_to_magnitude(&format!("dz {g:?}"), &fetch(&be, &dz), &want_dz, &mag_dz, UNITS);
        assert_close_to_magnitude(&format!("da {g:?}"), &fetch(&be, &da), &want_da, &mag_da, UNITS);
    }
}

#[test]
fn graph_kernels_are_repeatable() {
    let Some(be) = gpu("graph_kernels_are_repeatable") else {
        return;
    };
    let mut rng = InitRng::new(32);
    let g = STGCN;
    let (z, a, dy) = (
        be.upload(&normal(&mut rng, g.z_len())),
        be.upload(&normal(&mut rng, g.a_len())),
        be.upload(&normal(&mut rng, g.y_len())),
    );
    let da_init = normal(&mut rng, g.a_len());
    let run = || {
        let mut y = poisoned(&be, g.y_len());
        be.graph_forward(&g, &z, &a, &mut y);
        let mut dz = poisoned(&be, g.z_len());
        let mut da = be.upload(&da_init);
        be.graph_backward(&g, &z, &a, &dy, &mut dz, &mut da);
        (fetch(&be, &y), fetch(&be, &dz), fetch(&be, &da))
    };
    let (first, second) = (run(), run());
    assert_bits("y, second run", &second.0, &first.0);
    assert_bits("dz, second run", &second.1, &first.1);
    assert_bits("da, second run", &second.2, &first.2);
}

#[test]
fn graph_launchers_reject_bad_buffers_and_shapes() {
    let Some(be) = gpu("graph_launchers_reject_bad_buffers_and_shapes") else {
        return;
    };
    let g = geom(2, 3, 4, 5, 6);
    let (z, a) = (be.zeros(g.z_len()), be.zeros(g.a_len()));
    let mut short_y = be.zeros(g.y_len() - 1);
    be.graph_forward(&g, &z, &a, &mut short_y);
    let e = failure(&be);
    assert!(e.contains("graph forward") && e.contains("y has"), "{e}");

    let (dy, mut dz, mut short_da) = (be.zeros(g.y_len()), be.zeros(g.z_len()), be.zeros(g.a_len() - 1));
    be.graph_backward(&g, &z, &a, &dy, &mut dz, &mut short_da);
    let e = failure(&be);
    assert!(e.contains("graph backward") && e.contains("da has"), "{e}");

    // A alone (3·80·80 floats) is larger than the kernels' shared memory
    let big = geom(1, 3, 1, 1, 80);
    let (z, a, mut y) = (be.zeros(big.z_len()), be.zeros(big.a_len()), be.zeros(big.y_len()));
    be.graph_forward(&big, &z, &a, &mut y);
    let e = failure(&be);
    assert!(e.contains("shared memory"), "{e}");
}
