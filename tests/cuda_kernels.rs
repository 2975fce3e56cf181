//! The CUDA kernels against the CPU backend on fresh random data, with poisoned outputs. On a machine
//! without a GPU each test prints why it was skipped; the PTX embedding is checked everywhere.

use cudarc::driver::CudaSlice;
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::cuda::kernels::MODULES;
use leangcn::backend::cuda::{optim, select, CudaDevice};
use leangcn::backend::{Backend, CosineSchedule, SgdHyper};
use leangcn::model::init::InitRng;

/// The device, or `None` after printing why the test is skipped.
fn device(test: &str) -> Option<CudaDevice> {
    match CudaDevice::open(0) {
        Ok(dev) => Some(dev),
        Err(e) => {
            println!("skipped {test}: {e}");
            None
        }
    }
}

fn upload(dev: &CudaDevice, host: &[f32]) -> CudaSlice<f32> {
    dev.stream.clone_htod(host).unwrap()
}

fn download(dev: &CudaDevice, buf: &CudaSlice<f32>) -> Vec<f32> {
    dev.stream.clone_dtoh(buf).unwrap()
}

fn random(rng: &mut InitRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal() as f32).collect()
}

#[test]
fn ptx_is_embedded_when_the_build_requires_nvcc() {
    if std::env::var("LEANGCN_REQUIRE_NVCC").as_deref() != Ok("1") {
        println!("skipped: this build did not require nvcc (set LEANGCN_REQUIRE_NVCC=1, as scripts/test does)");
        return;
    }
    let names: Vec<&str> = MODULES.iter().map(|(n, _)| *n).collect();
    for module in ["sgd", "cosine_lr", "sparsity_threshold"] {
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
    let Some(dev) = device("sgd_kernel_matches_the_cpu_bit_for_bit") else {
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
        let params: Vec<Vec<f32>> = lens.iter().map(|&n| random(&mut rng, n)).collect();
        let mut grads: Vec<Vec<f32>> = lens.iter().map(|&n| random(&mut rng, n)).collect();
        let mut cpu_params = params.clone();
        let mut cpu_mom: Vec<Vec<f32>> = lens.iter().map(|&n| vec![0.0; n]).collect();
        let mut gpu_params: Vec<CudaSlice<f32>> = params.iter().map(|p| upload(&dev, p)).collect();
        let mut gpu_mom: Vec<CudaSlice<f32>> = lens.iter().map(|&n| upload(&dev, &vec![f32::NAN; n])).collect();
        let lr = 0.1f32;
        let scale = 0.37f32;
        for step in 0..3 {
            let gpu_grads: Vec<CudaSlice<f32>> = grads.iter().map(|g| upload(&dev, g)).collect();
            let lr_buf = upload(&dev, &[lr]);
            let scale_buf = upload(&dev, &[scale]);
            optim::sgd_step(
                &dev,
                &mut gpu_params,
                &gpu_grads,
                &mut gpu_mom,
                &hyper,
                &lr_buf,
                clip.then_some(&scale_buf),
                step == 0,
            )
            .unwrap();
            let mut p: Vec<&mut Vec<f32>> = cpu_params.iter_mut().collect();
            let g: Vec<&Vec<f32>> = grads.iter().collect();
            let mut m: Vec<&mut Vec<f32>> = cpu_mom.iter_mut().collect();
            cpu.sgd_step(
                &mut p,
                &g,
                &mut m,
                &hyper,
                &vec![lr],
                clip.then_some(&vec![scale]),
                step == 0,
            );
            grads = lens.iter().map(|&n| random(&mut rng, n)).collect();
        }
        for (gpu, cpu) in gpu_params.iter().zip(&cpu_params) {
            let gpu = download(&dev, gpu);
            assert!(
                gpu.iter().zip(cpu).all(|(a, b)| a.to_bits() == b.to_bits()),
                "SGD differs (nesterov {nesterov}, dampening {dampening}, clip {clip})"
            );
        }
    }
}

#[test]
fn norm_clip_and_schedule_match_the_cpu() {
    let Some(dev) = device("norm_clip_and_schedule_match_the_cpu") else {
        return;
    };
    let cpu = CpuBackend::<f32>::new();
    let mut rng = InitRng::new(2);
    let grads: Vec<Vec<f32>> = [7usize, 50_000, 123].iter().map(|&n| random(&mut rng, n)).collect();
    let gpu: Vec<CudaSlice<f32>> = grads.iter().map(|g| upload(&dev, g)).collect();
    let mut sq = upload(&dev, &[f32::NAN]);
    optim::sum_squares(&dev, &gpu, &mut sq).unwrap();
    let mut want = vec![0.0f32];
    cpu.sum_squares(&grads.iter().collect::<Vec<_>>(), &mut want);
    let got = download(&dev, &sq)[0];
    assert!(
        (got - want[0]).abs() <= 1e-5 * want[0],
        "sum of squares {got} vs {}",
        want[0]
    );
    let mut scale = upload(&dev, &[f32::NAN]);
    optim::clip_scale(&dev, &sq, 5.0, &mut scale).unwrap();
    let mut want_scale = vec![0.0f32];
    cpu.clip_scale(&vec![got], 5.0, &mut want_scale);
    assert!((download(&dev, &scale)[0] - want_scale[0]).abs() <= 1e-6);

    let sched = CosineSchedule {
        base_lr: 0.1,
        min_lr: 1e-4,
        total: 1000,
        warmup: 50,
        warmup_start_lr: 0.0,
        steps_per_index: 3,
    };
    let mut step = dev.stream.clone_htod(&[0u32]).unwrap();
    let mut lr = upload(&dev, &[f32::NAN]);
    for s in 0..3200u64 {
        optim::cosine_lr(&dev, &sched, &step, &mut lr).unwrap();
        if s % 97 == 0 {
            let want = sched.lr_at(s) as f32;
            let got = download(&dev, &lr)[0];
            assert!(
                (got - want).abs() <= f32::EPSILON * want.abs(),
                "step {s}: {got} vs {want}"
            );
        }
        optim::increment_step(&dev, &mut step).unwrap();
    }
}

#[test]
fn radix_select_and_masks_match_the_cpu_exactly() {
    let Some(dev) = device("radix_select_and_masks_match_the_cpu_exactly") else {
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
        let gpu: Vec<CudaSlice<f32>> = pool.iter().map(|p| upload(&dev, p)).collect();
        let n: usize = lens.iter().sum();
        for s in [0.0, 0.5, 0.9, 0.95, 0.99, 0.999] {
            let k = 1 + (s * (n - 1) as f64).round_ties_even() as usize;
            let mut tau = upload(&dev, &[f32::NAN]);
            select::kth_smallest(&dev, &gpu.iter().collect::<Vec<_>>(), k, &mut tau).unwrap();
            let mut want = vec![0.0f32];
            cpu.kth_smallest(&pool.iter().collect::<Vec<_>>(), k, &mut want);
            let got = download(&dev, &tau)[0];
            assert_eq!(got.to_bits(), want[0].to_bits(), "pool {lens:?} s {s}");
            let mut mask = upload(&dev, &vec![f32::NAN; lens[0]]);
            select::threshold_mask(&dev, &gpu[0], &tau, &mut mask).unwrap();
            let mut cpu_mask = vec![0.0f32; lens[0]];
            cpu.threshold_mask(&pool[0], &want, &mut cpu_mask);
            assert_eq!(download(&dev, &mask), cpu_mask);
        }
    }
}
