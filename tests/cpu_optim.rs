//! The optimizer ops of the CPU backend: SGD in PyTorch's order and rounding, the cosine schedule,
//! the clip factor, squared norms and the step counter.

mod cpu_support;

use cpu_support::{to_f32, Rng};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::{Backend, CosineSchedule, SgdHyper};

/// PyTorch's single-tensor SGD on one f32 element, each `add(a, b, alpha)` as `fma(b, alpha, a)`
/// and every Python scalar rounded to f32 first.
fn torch_sgd_f32(p: &mut f32, g: f32, buf: &mut f32, h: &SgdHyper, lr: f32, clip: Option<f32>) {
    let (wd, m, damp) = (h.weight_decay as f32, h.momentum as f32, (1.0 - h.dampening) as f32);
    let g = clip.map_or(g, |c| g * c); // clip_grad_norm_: g.mul_(clip_coef)
    let g = p.mul_add(wd, g); // g.add(p, alpha=wd)
    *buf = match buf.is_nan() {
        true => g,                          // buf = clone(g)
        false => g.mul_add(damp, *buf * m), // buf.mul_(m).add_(g, alpha=1-dampening)
    };
    let d = if h.nesterov { buf.mul_add(m, g) } else { *buf }; // g.add(buf, alpha=m)
    *p = d.mul_add(-lr, *p); // p.add_(d, alpha=-lr)
}

fn run_sgd_f32(hyper: SgdHyper, clip: Option<f32>, seed: u64) {
    let be = CpuBackend::<f32>::new();
    let mut rng = Rng::new(seed);
    let sizes = [1000, 37, 20_000];
    let mut params: Vec<Vec<f32>> = sizes.iter().map(|&n| to_f32(&rng.vec(n))).collect();
    let mut bufs: Vec<Vec<f32>> = sizes.iter().map(|&n| vec![f32::NAN; n]).collect();
    let mut want_params = params.clone();
    let mut want_bufs = bufs.clone();
    let clip_buf = clip.map(|c| vec![c]);
    for (step, lr) in [0.1f32, 0.0975, 0.09].into_iter().enumerate() {
        let grads: Vec<Vec<f32>> = sizes.iter().map(|&n| to_f32(&rng.vec(n))).collect();
        let mut p_refs: Vec<&mut Vec<f32>> = params.iter_mut().collect();
        let g_refs: Vec<&Vec<f32>> = grads.iter().collect();
        let mut b_refs: Vec<&mut Vec<f32>> = bufs.iter_mut().collect();
        let lr_buf = vec![lr];
        be.sgd_step(
            &mut p_refs,
            &g_refs,
            &mut b_refs,
            &hyper,
            &lr_buf,
            clip_buf.as_ref(),
            step == 0,
        );
        for ((p, g), b) in want_params.iter_mut().zip(&grads).zip(want_bufs.iter_mut()) {
            for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
                torch_sgd_f32(p, g, b, &hyper, lr, clip);
            }
        }
        for (got, want) in params.iter().chain(&bufs).zip(want_params.iter().chain(&want_bufs)) {
            let same = got.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "sgd {hyper:?} clip {clip:?}: step {step} differs from PyTorch's order"
            );
        }
    }
}

#[test]
fn sgd_f32_is_bit_exact_nesterov() {
    let hyper = SgdHyper {
        momentum: 0.9,
        dampening: 0.0,
        weight_decay: 5e-4,
        nesterov: true,
    };
    run_sgd_f32(hyper, None, 31);
}

#[test]
fn sgd_f32_is_bit_exact_plain_momentum_with_dampening_and_clip() {
    let hyper = SgdHyper {
        momentum: 0.9,
        dampening: 0.1,
        weight_decay: 1e-4,
        nesterov: false,
    };
    run_sgd_f32(hyper, Some(0.37), 32);
    run_sgd_f32(hyper, None, 33);
}

#[test]
fn sgd_f64_matches_hand_computed_steps() {
    let be = CpuBackend::<f64>::new();
    let hyper = SgdHyper {
        momentum: 0.9,
        dampening: 0.0,
        weight_decay: 0.1,
        nesterov: true,
    };
    let (mut p, mut buf, g, lr) = (vec![1.0], vec![0.0], vec![0.5], vec![0.1]);
    // g' = 0.5 + 0.1·1 = 0.6; buf = 0.6; d = 0.6 + 0.9·0.6 = 1.14; p = 1 - 0.114.
    be.sgd_step(&mut [&mut p], &[&g], &mut [&mut buf], &hyper, &lr, None, true);
    assert!(
        (p[0] - 0.886).abs() < 1e-15 && (buf[0] - 0.6).abs() < 1e-15,
        "step 1: {p:?} {buf:?}"
    );
    // g' = 0.5 + 0.0886 = 0.5886; buf = 0.54 + 0.5886 = 1.1286; d = 0.5886 + 0.9·1.1286 = 1.60434.
    be.sgd_step(&mut [&mut p], &[&g], &mut [&mut buf], &hyper, &lr, None, false);
    assert!((buf[0] - 1.1286).abs() < 1e-15, "step 2 buffer {buf:?}");
    assert!((p[0] - 0.725566).abs() < 1e-15, "step 2 param {p:?}");

    // Without momentum the step is plain (coupled-decay) SGD whatever the dampening.
    let plain = SgdHyper {
        momentum: 0.0,
        dampening: 0.5,
        ..hyper
    };
    let (mut p, mut buf) = (vec![1.0], vec![f64::NAN]);
    for first_step in [true, false] {
        let before = p[0];
        be.sgd_step(&mut [&mut p], &[&g], &mut [&mut buf], &plain, &lr, None, first_step);
        let want = before - 0.1 * (0.5 + 0.1 * before);
        assert!((p[0] - want).abs() < 1e-15, "momentum-free step: {} vs {want}", p[0]);
    }
}

fn pyskl_schedule() -> CosineSchedule {
    CosineSchedule {
        base_lr: 0.1,
        min_lr: 0.0,
        total: 10,
        warmup: 0,
        warmup_start_lr: 0.0,
        steps_per_index: 1,
    }
}

#[test]
fn cosine_schedule_closed_form() {
    let s = pyskl_schedule();
    // PyTorch's lrs of the golden run (CosineAnnealingLR, T_max = 10).
    let torch = [0.1, 0.09755282581475769, 0.09045084971874738, 0.07938926261462367];
    for (k, &want) in torch.iter().enumerate() {
        let got = s.lr_at(k as u64);
        assert!(
            (got - want).abs() <= 2.0 * f64::EPSILON * want,
            "lr at {k}: {got} vs {want}"
        );
    }
    for k in 0..=10u64 {
        let closed = (1.0 + (std::f64::consts::PI * k as f64 / 10.0).cos()) * 0.1 / 2.0;
        assert_eq!(s.lr_at(k), closed, "closed form at {k}");
    }
    assert_eq!(s.lr_at(10), 0.0);
    assert_eq!(s.lr_at(25), 0.0, "after total the rate stays at min_lr");
}

#[test]
fn cosine_schedule_warmup_and_epochs() {
    let s = CosineSchedule {
        base_lr: 0.1,
        min_lr: 0.001,
        total: 12,
        warmup: 2,
        warmup_start_lr: 0.01,
        steps_per_index: 3,
    };
    for step in 0..3 {
        assert_eq!(s.lr_at(step), 0.01, "first index is the warm-up start");
    }
    assert_eq!(s.lr_at(3), 0.01 + (0.1 - 0.01) * 1.0 / 2.0, "half-way through warm-up");
    assert_eq!(s.lr_at(6), 0.1, "end of warm-up is base_lr");
    let mid = 0.001 + (0.1 - 0.001) * (1.0 + (std::f64::consts::PI * 5.0 / 10.0).cos()) / 2.0;
    assert_eq!(s.lr_at(21), mid, "index 7 is half-way through the cosine");
    assert_eq!(s.lr_at(36), 0.001);
    assert_eq!(s.lr_at(1000), 0.001);

    let be = CpuBackend::<f32>::new();
    let mut lr = vec![f32::NAN];
    be.cosine_lr(&s, &vec![21], &mut lr);
    assert_eq!(lr[0], mid as f32, "device lr is the f64 rate rounded");
    let mut step = vec![41u32];
    be.increment_step(&mut step);
    assert_eq!(step, [42]);
}

#[test]
fn clip_scale_and_sum_squares() {
    let be = CpuBackend::<f64>::new();
    // 1..=n squared sums to n(n+1)(2n+1)/6; the second buffer spans several chunks.
    let a: Vec<f64> = (1..=100).map(f64::from).collect();
    let b: Vec<f64> = (1..=50_000).map(f64::from).collect();
    let mut sq = vec![f64::NAN];
    be.sum_squares(&[&a, &b], &mut sq);
    let want = (100.0 * 101.0 * 201.0 + 50_000.0 * 50_001.0 * 100_001.0) / 6.0;
    assert_eq!(sq[0], want);

    let mut scale = vec![f64::NAN];
    be.clip_scale(&vec![16.0], 2.0, &mut scale);
    assert_eq!(scale[0], 2.0 / (4.0 + 1e-6));
    be.clip_scale(&vec![16.0], 10.0, &mut scale);
    assert_eq!(scale[0], 1.0, "no clipping below max_norm");
}
