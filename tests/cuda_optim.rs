//! The optimizer, schedule and sparsity-threshold kernels against the CPU backend on fresh random
//! data, with poisoned outputs. Without a GPU each test prints why it was skipped; the PTX
//! embedding is checked everywhere.

mod gpu_support;

use gpu_support::{assert_bits, fetch, gpu, normal, poisoned};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::cuda::kernels::MODULES;
use leangcn::backend::{Backend, CosineSchedule, SgdHyper};
use leangcn::model::init::InitRng;

#[test]
fn ptx_is_embedded_when_the_build_requires_nvcc() {
    if std::env::var("LEANGCN_REQUIRE_NVCC").as_deref() != Ok("1") {
        println!("skipped: this build did not require nvcc (set LEANGCN_REQUIRE_NVCC=1, as scripts/test does)");
        return;
    }
    let names: Vec<&str> = MODULES.iter().map(|(n, _)| *n).collect();
    for module in [
        "sgd",
        "cosine_lr",
        "sparsity_threshold",
        "elementwise",
        "permute",
        "temporal_conv",
        "graph_aggregate",
        "batch_norm",
        "mean_pool",
        "cross_entropy",
    ] {
        assert!(names.contains(&module), "module {module} missing from {names:?}");
    }
    for (name, ptx) in MODULES {
        assert!(
            ptx.contains(".version 9.0") && ptx.contains(".target sm_80"),
            "{name}: PTX ISA 9.0 for compute_80"
        );
    }
}

#[test]
fn sgd_kernel_matches_the_cpu_bit_for_bit() {
    let Some(be) = gpu("sgd_kernel_matches_the_cpu_bit_for_bit") else {
        return;
    };
    let cpu = CpuBackend::<f32>::new();
    let mut rng = InitRng::new(1);
    let lens = [1usize, 1000, 4097, 300_001];
    for (nesterov, dampening, clip) in [(true, 0.0, false), (false, 0.1, true), (true, 0.0, true)] {
        let hyper = SgdHyper {
            momentum: 0.9,
            dampening,
            weight_decay: 5e-4,
            nesterov,
        };
        let mut cpu_params: Vec<Vec<f32>> = lens.iter().map(|&n| normal(&mut rng, n)).collect();
        let mut cpu_mom: Vec<Vec<f32>> = lens.iter().map(|&n| vec![0.0; n]).collect();
        let mut gpu_params: Vec<_> = cpu_params.iter().map(|p| be.upload(p)).collect();
        let mut gpu_mom: Vec<_> = lens.iter().map(|&n| poisoned(&be, n)).collect();
        let (lr, scale) = (vec![0.1f32], vec![0.37f32]);
        let (gpu_lr, gpu_scale) = (be.upload(&lr), be.upload(&scale));
        for step in 0..3 {
            let grads: Vec<Vec<f32>> = lens.iter().map(|&n| normal(&mut rng, n)).collect();
            let gpu_grads: Vec<_> = grads.iter().map(|g| be.upload(g)).collect();
            be.sgd_step(
                &mut gpu_params.iter_mut().collect::<Vec<_>>(),
                &gpu_grads.iter().collect::<Vec<_>>(),
                &mut gpu_mom.iter_mut().collect::<Vec<_>>(),
                &hyper,
                &gpu_lr,
                clip.then_some(&gpu_scale),
                step == 0,
            );
            cpu.sgd_step(
                &mut cpu_params.iter_mut().collect::<Vec<_>>(),
                &grads.iter().collect::<Vec<_>>(),
                &mut cpu_mom.iter_mut().collect::<Vec<_>>(),
                &hyper,
                &lr,
                clip.then_some(&scale),
                step == 0,
            );
        }
        for (gpu, cpu) in gpu_params.iter().zip(&cpu_params) {
            let what = format!("SGD (nesterov {nesterov}, dampening {dampening}, clip {clip})");
            assert_bits(&what, &fetch(&be, gpu), cpu);
        }
    }
}

#[test]
fn norm_clip_and_schedule_match_the_cpu() {
    let Some(be) = gpu("norm_clip_and_schedule_match_the_cpu") else {
        return;
    };
    let cpu = CpuBackend::<f32>::new();
    let mut rng = InitRng::new(2);
    let grads: Vec<Vec<f32>> = [7usize, 50_000, 123].iter().map(|&n| normal(&mut rng, n)).collect();
    let gpu_grads: Vec<_> = grads.iter().map(|g| be.upload(g)).collect();
    let mut sq = poisoned(&be, 1);
    be.sum_squares(&gpu_grads.iter().collect::<Vec<_>>(), &mut sq);
    let mut want = vec![0.0f32];
    cpu.sum_squares(&grads.iter().collect::<Vec<_>>(), &mut want);
    let got = fetch(&be, &sq)[0];
    assert!(
        (got - want[0]).abs() <= 1e-5 * want[0],
        "sum of squares {got} vs {}",
        want[0]
    );
    let mut scale = poisoned(&be, 1);
    be.clip_scale(&sq, 5.0, &mut scale);
    let mut want_scale = vec![0.0f32];
    cpu.clip_scale(&vec![got], 5.0, &mut want_scale);
    assert!((fetch(&be, &scale)[0] - want_scale[0]).abs() <= 1e-6);

    let sched = CosineSchedule {
        base_lr: 0.1,
        min_lr: 1e-4,
        total: 1000,
        warmup: 50,
        warmup_start_lr: 0.0,
        steps_per_index: 3,
    };
    let mut step = be.upload_idx(&[0]);
    let mut lr = poisoned(&be, 1);
    for s in 0..3200u64 {
        be.cosine_lr(&sched, &step, &mut lr);
        if s % 97 == 0 {
            let want = sched.lr_at(s) as f32;
            let got = fetch(&be, &lr)[0];
            assert!(
                (got - want).abs() <= f32::EPSILON * want.abs(),
                "step {s}: {got} vs {want}"
            );
        }
        be.increment_step(&mut step);
    }
    assert_eq!(be.download_idx(&step), vec![3200]);
}

#[test]
fn radix_select_and_masks_match_the_cpu_exactly() {
    let Some(be) = gpu("radix_select_and_masks_match_the_cpu_exactly") else {
        return;
    };
    let cpu = CpuBackend::<f32>::new();
    let mut rng = InitRng::new(3);
    for (lens, ties) in [
        (vec![1usize], false),
        (vec![1000, 37, 5000], false),
        (vec![3_000_000], false),
        (vec![4096, 4096], true),
    ] {
        let pool: Vec<Vec<f32>> = lens
            .iter()
            .map(|&n| {
                (0..n)
                    .map(|_| {
                        if ties {
                            (rng.uniform() * 7.0).floor() as f32 - 3.0
                        } else {
                            rng.normal() as f32
                        }
                    })
                    .collect()
            })
            .collect();
        let gpu_pool: Vec<_> = pool.iter().map(|p| be.upload(p)).collect();
        let n: usize = lens.iter().sum();
        for s in [0.0, 0.5, 0.9, 0.95, 0.99, 0.999] {
            let k = 1 + (s * (n - 1) as f64).round_ties_even() as usize;
            let mut tau = poisoned(&be, 1);
            be.kth_smallest(&gpu_pool.iter().collect::<Vec<_>>(), k, &mut tau);
            let mut want = vec![0.0f32];
            cpu.kth_smallest(&pool.iter().collect::<Vec<_>>(), k, &mut want);
            assert_bits(
                &format!("k-th smallest, pool {lens:?}, s {s}"),
                &fetch(&be, &tau),
                &want,
            );
            let mut mask = poisoned(&be, lens[0]);
            be.threshold_mask(&gpu_pool[0], &tau, &mut mask);
            let mut cpu_mask = vec![0.0f32; lens[0]];
            cpu.threshold_mask(&pool[0], &want, &mut cpu_mask);
            assert_bits(&format!("mask, pool {lens:?}, s {s}"), &fetch(&be, &mask), &cpu_mask);
        }
    }
}
