//! The sparse conv kernels against the CPU backend on fresh random data with poisoned (NaN)
//! outputs: the CSR built on the GPU equals the CPU's, the CSR conv agrees bit for bit (same
//! products, same order of sums), the 2:4 pruning and packing agree exactly, and the 2:4 tensor-core
//! conv agrees to f32 summation order, with the CPU and with the dense bf16 tensor-core conv on the
//! same pruned weights. Without a GPU each test prints why it was skipped.

mod gpu_support;

use gpu_support::{assert_bits, assert_close, fetch, gpu, gpu_with, normal, poisoned};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::cuda::kernels::MODULES;
use leangcn::backend::{Backend, ConvGeom, ConvMath};
use leangcn::model::init::InitRng;

const DENSITIES: [f64; 4] = [0.0, 0.1, 0.5, 1.0];

/// Odd sizes, strides 1 and 2, kt 9 and 1, row counts that are not multiples of a block's, and
/// one ST-GCN stage (64 channels, 100 frames, 25 joints).
fn geometries() -> Vec<ConvGeom> {
    let conv = |n, c_in, c_out, t_in, v, kt, stride| ConvGeom {
        n,
        c_in,
        c_out,
        t_in,
        v,
        kt,
        pad: (kt - 1) / 2,
        stride,
    };
    vec![
        conv(3, 5, 7, 13, 5, 9, 1),
        conv(2, 5, 7, 13, 5, 9, 2),
        conv(3, 3, 67, 9, 3, 9, 2),
        conv(2, 70, 5, 11, 5, 1, 1),
        conv(3, 6, 9, 10, 3, 1, 2),
        conv(4, 64, 64, 100, 25, 9, 1),
    ]
}

fn random_mask(rng: &mut InitRng, len: usize, density: f64) -> Vec<f32> {
    (0..len)
        .map(|_| if rng.uniform() < density { 1.0 } else { 0.0 })
        .collect()
}

#[test]
fn sparse_modules_are_embedded_when_the_build_requires_nvcc() {
    if std::env::var("LEANGCN_REQUIRE_NVCC").as_deref() != Ok("1") {
        println!("skipped: this build did not require nvcc (set LEANGCN_REQUIRE_NVCC=1, as scripts/test does)");
        return;
    }
    for (module, kernel) in [
        ("sparse_conv", "csr_conv_forward_f32"),
        ("sparse_2_4", "conv_2_4_forward_bf16"),
    ] {
        let ptx = MODULES.iter().find(|(n, _)| *n == module).map(|(_, p)| *p);
        assert!(
            ptx.is_some_and(|p| p.contains(kernel)),
            "{module} with {kernel} embedded"
        );
    }
}

#[test]
fn csr_built_on_the_gpu_equals_the_cpu_csr() {
    let Some(be) = gpu("csr_built_on_the_gpu_equals_the_cpu_csr") else {
        return;
    };
    let cpu = CpuBackend::<f32>::new();
    let mut rng = InitRng::new(21);
    for g in geometries() {
        for density in DENSITIES {
            let (w, mask) = (normal(&mut rng, g.w_len()), random_mask(&mut rng, g.w_len(), density));
            let want = cpu.sparse_weight(&w, &mask, g.c_out, g.c_in, g.kt);
            let mut sw = be.sparse_weight(&be.upload(&w), &be.upload(&mask), g.c_out, g.c_in, g.kt);
            assert_eq!(be.sparse_weight_nnz(&sw), want.nnz());
            let got = be.sparse_weight_host(&sw);
            be.check().expect("the conversion ran");
            assert_eq!(got, want, "{g:?} at density {density}");

            let w2 = normal(&mut rng, g.w_len());
            let mut want = want;
            cpu.sparse_weight_update(&mut want, &w2);
            be.sparse_weight_update(&mut sw, &be.upload(&w2));
            assert_eq!(be.sparse_weight_host(&sw), want, "updated values, {g:?}");
            be.check().expect("the update ran");
        }
    }
}

#[test]
fn csr_conv_kernels_match_the_cpu_bit_for_bit() {
    let Some(be) = gpu("csr_conv_kernels_match_the_cpu_bit_for_bit") else {
        return;
    };
    let cpu = CpuBackend::<f32>::new();
    let mut rng = InitRng::new(22);
    for g in geometries() {
        for density in DENSITIES {
            let (w, mask) = (normal(&mut rng, g.w_len()), random_mask(&mut rng, g.w_len(), density));
            let (x, dy, b) = (
                normal(&mut rng, g.x_len()),
                normal(&mut rng, g.y_len()),
                normal(&mut rng, g.c_out),
            );
            let what = format!("{g:?} at density {density}");
            let cpu_sw = cpu.sparse_weight(&w, &mask, g.c_out, g.c_in, g.kt);
            let sw = be.sparse_weight(&be.upload(&w), &be.upload(&mask), g.c_out, g.c_in, g.kt);
            let (gx, gdy, gb) = (be.upload(&x), be.upload(&dy), be.upload(&b));
            for bias in [false, true] {
                let mut want = vec![0.0; g.y_len()];
                cpu.conv_t_forward_sparse(&g, &x, &cpu_sw, bias.then_some(&b), &mut want);
                let mut got = poisoned(&be, g.y_len());
                be.conv_t_forward_sparse(&g, &gx, &sw, bias.then_some(&gb), &mut got);
                assert_bits(&format!("CSR forward {what}"), &fetch(&be, &got), &want);
            }
            let mut want = vec![0.0; g.x_len()];
            cpu.conv_t_backward_input_sparse(&g, &dy, &cpu_sw, &mut want);
            let mut got = poisoned(&be, g.x_len());
            be.conv_t_backward_input_sparse(&g, &gdy, &sw, &mut got);
            assert_bits(&format!("CSR input gradient {what}"), &fetch(&be, &got), &want);
        }
    }
}

#[test]
fn pruning_and_packing_2_4_match_the_cpu_exactly() {
    let Some(be) = gpu("pruning_and_packing_2_4_match_the_cpu_exactly") else {
        return;
    };
    let cpu = CpuBackend::<f32>::new();
    let mut rng = InitRng::new(23);
    for g in geometries() {
        let (c_out, c_in, kt) = (g.c_out, g.c_in, g.kt);
        // quantised weights, so that ties between magnitudes occur
        let w: Vec<f32> = normal(&mut rng, g.w_len())
            .iter()
            .map(|v| (v * 4.0).round() / 4.0)
            .collect();
        let mut want = vec![0.0; w.len()];
        cpu.prune_2_4(&w, c_out, c_in, kt, &mut want);
        let gw = be.upload(&w);
        let mut mask = poisoned(&be, w.len());
        be.prune_2_4(&gw, c_out, c_in, kt, &mut mask);
        assert_bits(&format!("2:4 mask {g:?}"), &fetch(&be, &mask), &want);

        let want = cpu.pack_2_4(&w, &want, c_out, c_in, kt).expect("a 2:4 mask packs");
        let packed = be
            .pack_2_4(&gw, &mask, c_out, c_in, kt)
            .expect("a 2:4 mask packs on the GPU");
        assert_eq!(be.semi_sparse_weight_host(&packed), want, "packed {g:?}");
        be.check().expect("the download ran");
    }
    // a group keeping 3 of 4 is refused with the CPU's message
    let (w, mut mask) = (vec![1.0f32; 16], vec![0.0f32; 16]);
    mask[9..12].fill(1.0);
    let want = cpu.pack_2_4(&w, &mask, 2, 8, 1).expect_err("3 of 4 kept").to_string();
    let got = be
        .pack_2_4(&be.upload(&w), &be.upload(&mask), 2, 8, 1)
        .err()
        .map(|e| e.to_string());
    assert_eq!(got.as_deref(), Some(want.as_str()));
}

/// The tensor-core 2:4 kernels against the CPU reference (the dense conv of the same bf16 operands):
/// bf16 products are exact in f32, so only the order of the f32 sums differs.
#[test]
fn conv_2_4_kernels_match_the_cpu_to_summation_order() {
    let Some(be) = gpu("conv_2_4_kernels_match_the_cpu_to_summation_order") else {
        return;
    };
    let cpu = CpuBackend::<f32>::new();
    let mut rng = InitRng::new(24);
    for g in geometries() {
        let (w, x, dy, b) = (
            normal(&mut rng, g.w_len()),
            normal(&mut rng, g.x_len()),
            normal(&mut rng, g.y_len()),
            normal(&mut rng, g.c_out),
        );
        let mut mask = vec![0.0; w.len()];
        cpu.prune_2_4(&w, g.c_out, g.c_in, g.kt, &mut mask);
        let cpu_packed = cpu
            .pack_2_4(&w, &mask, g.c_out, g.c_in, g.kt)
            .expect("pruned weights pack");
        let packed = be
            .pack_2_4(&be.upload(&w), &be.upload(&mask), g.c_out, g.c_in, g.kt)
            .expect("pruned weights pack on the GPU");
        // sums of up to c_in·kt (c_out·kt) unit-variance products, accumulated in f32 inside the
        // tensor cores in an order of their own: a tolerance on the sums' scale (a fragment-layout
        // error is off by O(1))
        let atol = 5e-5 * ((g.c_in.max(g.c_out) * g.kt) as f32).sqrt();
        let mut want = vec![0.0; g.y_len()];
        cpu.conv_t_forward_2_4(&g, &x, &cpu_packed, Some(&b), &mut want);
        let mut got = poisoned(&be, g.y_len());
        be.conv_t_forward_2_4(&g, &be.upload(&x), &packed, Some(&be.upload(&b)), &mut got);
        assert_close(&format!("2:4 forward {g:?}"), &fetch(&be, &got), &want, 1e-4, atol);

        let mut want = vec![0.0; g.x_len()];
        cpu.conv_t_backward_input_2_4(&g, &dy, &cpu_packed, &mut want);
        let mut got = poisoned(&be, g.x_len());
        be.conv_t_backward_input_2_4(&g, &be.upload(&dy), &packed, &mut got);
        assert_close(
            &format!("2:4 input gradient {g:?}"),
            &fetch(&be, &got),
            &want,
            1e-4,
            atol,
        );
    }
}

/// The 2:4 kernels against the dense bf16 tensor-core conv of the same pruned weights `W ⊙ M`:
/// both round the same operands to bf16 and sum exact products in f32, so they agree to the order
/// of the sums (the dense kernel rounds the zeros the mask leaves, which stay zero).
#[test]
fn conv_2_4_kernels_match_the_dense_bf16_kernel_on_the_pruned_weights() {
    let test = "conv_2_4_kernels_match_the_dense_bf16_kernel_on_the_pruned_weights";
    let Some(be) = gpu(test) else {
        return;
    };
    let Some(dense) = gpu_with(test, ConvMath::Bf16) else {
        return;
    };
    let mut rng = InitRng::new(25);
    for g in geometries() {
        let (w, x, dy, b) = (
            normal(&mut rng, g.w_len()),
            normal(&mut rng, g.x_len()),
            normal(&mut rng, g.y_len()),
            normal(&mut rng, g.c_out),
        );
        let mut mask = be.zeros(w.len());
        let gw = be.upload(&w);
        be.prune_2_4(&gw, g.c_out, g.c_in, g.kt, &mut mask);
        let packed = be
            .pack_2_4(&gw, &mask, g.c_out, g.c_in, g.kt)
            .expect("pruned weights pack on the GPU");
        let pruned: Vec<f32> = w.iter().zip(fetch(&be, &mask)).map(|(w, m)| w * m).collect();
        let atol = 5e-5 * ((g.c_in.max(g.c_out) * g.kt) as f32).sqrt();

        let mut want = poisoned(&dense, g.y_len());
        dense.conv_t_forward(
            &g,
            &dense.upload(&x),
            &dense.upload(&pruned),
            Some(&dense.upload(&b)),
            &mut want,
        );
        let mut got = poisoned(&be, g.y_len());
        be.conv_t_forward_2_4(&g, &be.upload(&x), &packed, Some(&be.upload(&b)), &mut got);
        assert_close(
            &format!("2:4 vs dense bf16 forward {g:?}"),
            &fetch(&be, &got),
            &fetch(&dense, &want),
            1e-4,
            atol,
        );

        let mut want = poisoned(&dense, g.x_len());
        dense.conv_t_backward_input(&g, &dense.upload(&dy), &dense.upload(&pruned), &mut want);
        let mut got = poisoned(&be, g.x_len());
        be.conv_t_backward_input_2_4(&g, &be.upload(&dy), &packed, &mut got);
        assert_close(
            &format!("2:4 vs dense bf16 input gradient {g:?}"),
            &fetch(&be, &got),
            &fetch(&dense, &want),
            1e-4,
            atol,
        );
    }
}
