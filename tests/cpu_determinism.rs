//! The CPU ops that reduce over samples or elements give bit-identical results on 1, 2 and 3
//! threads (fixed split, partials combined in a fixed order).

mod cpu_support;

use cpu_support::{to_f32, Rng};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::{Backend, BnEpilogue, BnGeom, ConvGeom, GraphGeom};

/// Every output of the reductions, as bits.
fn run_reductions() -> Vec<Vec<u32>> {
    let be = CpuBackend::<f32>::new();
    let mut rng = Rng::new(41);
    let mut outputs: Vec<Vec<f32>> = Vec::new();

    // More samples than reduction ranges, so ranges hold several samples.
    let conv = ConvGeom {
        n: 19,
        c_in: 8,
        c_out: 12,
        t_in: 16,
        v: 5,
        kt: 9,
        pad: 4,
        stride: 2,
    };
    let x = to_f32(&rng.vec(conv.x_len()));
    let w = to_f32(&rng.vec(conv.w_len()));
    let dy = to_f32(&rng.vec(conv.y_len()));
    let (mut dw, mut db) = (vec![0.5f32; conv.w_len()], vec![0.5f32; conv.c_out]);
    be.conv_t_backward_weight(&conv, &x, &dy, &mut dw, Some(&mut db));
    let mut dx = vec![0f32; conv.x_len()];
    be.conv_t_backward_input(&conv, &dy, &w, &mut dx);
    outputs.extend([dw, db, dx]);

    let graph = GraphGeom {
        n: 19,
        k: 3,
        c: 6,
        t: 10,
        v: 7,
    };
    let z = to_f32(&rng.vec(graph.z_len()));
    let a = to_f32(&rng.vec(graph.a_len()));
    let dy = to_f32(&rng.vec(graph.y_len()));
    let (mut dz, mut da) = (vec![0f32; graph.z_len()], vec![0.5f32; graph.a_len()]);
    be.graph_backward(&graph, &z, &a, &dy, &mut dz, &mut da);
    outputs.extend([dz, da]);

    let bn = BnGeom {
        n: 19,
        c: 6,
        s: 70,
        eps: 1e-5,
        momentum: 0.1,
    };
    let x = to_f32(&rng.vec(bn.len()));
    let dy = to_f32(&rng.vec(bn.len()));
    let (gamma, beta) = (to_f32(&rng.vec(bn.c)), to_f32(&rng.vec(bn.c)));
    let (mut rm, mut rv) = (vec![0f32; bn.c], vec![1f32; bn.c]);
    let (mut y, mut mean, mut invstd) = (vec![0f32; bn.len()], vec![0f32; bn.c], vec![0f32; bn.c]);
    be.batch_norm_train(
        &bn,
        &x,
        None,
        BnEpilogue::none(),
        &gamma,
        &beta,
        &mut rm,
        &mut rv,
        &mut y,
        &mut mean,
        &mut invstd,
    );
    let (mut dx, mut dgamma, mut dbeta) = (vec![0f32; bn.len()], vec![0f32; bn.c], vec![0f32; bn.c]);
    be.batch_norm_backward(
        &bn,
        &x,
        &dy,
        None,
        &gamma,
        &mean,
        &invstd,
        &mut dx,
        &mut dgamma,
        &mut dbeta,
    );
    outputs.extend([rm, rv, y, mean, invstd, dx, dgamma, dbeta]);

    let big = to_f32(&rng.vec(100_003));
    let mut sq = vec![0f32];
    be.sum_squares(&[&big, &dy], &mut sq);
    outputs.push(sq);

    outputs
        .into_iter()
        .map(|o| o.iter().map(|v| v.to_bits()).collect())
        .collect()
}

fn in_pool(threads: usize) -> Vec<Vec<u32>> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(run_reductions)
}

#[test]
fn reductions_do_not_depend_on_the_thread_count() {
    let one = in_pool(1);
    for threads in [2, 3] {
        let many = in_pool(threads);
        for (i, (a, b)) in one.iter().zip(&many).enumerate() {
            assert!(a == b, "output {i} differs between 1 and {threads} threads");
        }
    }
}
