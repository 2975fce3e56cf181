//! The sparse conv weights on the CPU backend, the reference of the GPU kernels: CSR conversion
//! round trip, CSR forward and input gradient against the dense conv on the masked weight, 2:4
//! pruning and packing, the 2:4 conv against the dense conv on bf16-rounded pruned weights, and the
//! masked conv layer's automatic choice and its rebuild when the mask changes.

mod cpu_support;

use cpu_support::{assert_close, to_f32, Rng};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::sparse::{bf16_to_f32, padded_columns, CsrWeight};
use leangcn::backend::{Backend, ConvGeom, ConvMath};
use leangcn::layers::conv_sparse::{choose_format, ConvFormat};
use leangcn::layers::{Conv, Entry, Module};
use leangcn::model::init::InitRng;

const DENSITIES: [f64; 4] = [0.0, 0.1, 0.5, 1.0];

/// Odd sizes, strides 1 and 2, the 9x1 temporal conv, the 1x1 conv, a linear layer.
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
        conv(3, 3, 11, 9, 3, 9, 2),
        conv(2, 7, 5, 11, 5, 1, 1),
        conv(3, 6, 9, 10, 3, 1, 2),
        conv(4, 13, 3, 1, 1, 1, 1),
    ]
}

/// 0/1 values, each 1 with probability `density` (exactly none at 0, all at 1).
fn random_mask(rng: &mut Rng, len: usize, density: f64) -> Vec<f64> {
    (0..len)
        .map(|_| {
            if (rng.uniform() + 1.0) / 2.0 < density {
                1.0
            } else {
                0.0
            }
        })
        .collect()
}

fn masked(w: &[f64], mask: &[f64]) -> Vec<f64> {
    w.iter().zip(mask).map(|(w, m)| w * m).collect()
}

/// The structural invariants of both CSR forms, and that they hold exactly the kept entries.
fn assert_valid_csr(sw: &CsrWeight<f64>, w: &[f64], mask: &[f64]) {
    let (c_in, kt) = (sw.c_in, sw.kt);
    let kept: Vec<u32> = (0..mask.len() as u32).filter(|&i| mask[i as usize] != 0.0).collect();
    for (csr, rows) in [(&sw.by_output, sw.c_out), (&sw.by_input, sw.c_in)] {
        assert_eq!(csr.row_ptr.len(), rows + 1);
        assert_eq!(csr.row_ptr[0], 0);
        assert_eq!(*csr.row_ptr.last().unwrap() as usize, kept.len());
        assert!(csr.row_ptr.windows(2).all(|p| p[0] <= p[1]), "row pointers ascend");
        for r in 0..rows {
            let entries = csr.row_ptr[r] as usize..csr.row_ptr[r + 1] as usize;
            assert!(
                csr.col[entries.clone()].windows(2).all(|c| c[0] < c[1]),
                "columns ascend in row {r}"
            );
            for e in entries {
                let src = csr.src[e] as usize;
                let (o, i, k) = (src / (c_in * kt), src / kt % c_in, src % kt);
                let (row, other) = if rows == sw.c_out { (o, i) } else { (i, o) };
                assert_eq!((row, csr.col[e] as usize), (r, other * kt + k), "entry {e} of row {r}");
                assert_eq!(csr.values[e], w[src]);
            }
        }
        let mut srcs = csr.src.clone();
        srcs.sort_unstable();
        assert_eq!(srcs, kept, "the kept entries, each once");
    }
}

#[test]
fn csr_conversion_round_trips_and_follows_weight_updates() {
    let be = CpuBackend::<f64>::new();
    let mut rng = Rng::new(1);
    for g in geometries() {
        for density in DENSITIES {
            let (w, mask) = (rng.vec(g.w_len()), random_mask(&mut rng, g.w_len(), density));
            let mut sw = be.sparse_weight(&w, &mask, g.c_out, g.c_in, g.kt);
            assert_valid_csr(&sw, &w, &mask);
            assert_eq!(be.sparse_weight_nnz(&sw), mask.iter().filter(|&&m| m != 0.0).count());
            assert_eq!(sw.to_dense(), masked(&w, &mask), "{g:?} at density {density}");
            let w2 = rng.vec(g.w_len());
            be.sparse_weight_update(&mut sw, &w2);
            assert_valid_csr(&sw, &w2, &mask);
            assert_eq!(be.sparse_weight_host(&sw).to_dense(), masked(&w2, &mask));
        }
    }
}

/// The CSR forward and input gradient against the dense conv on `w ⊙ M`, in f64 (to 1e-12) and f32
/// (to 1e-5): the two differ only in the order of the sums.
#[test]
fn csr_conv_matches_the_dense_conv_on_masked_weights() {
    let mut rng = Rng::new(2);
    for g in geometries() {
        for density in DENSITIES {
            let (w, mask) = (rng.vec(g.w_len()), random_mask(&mut rng, g.w_len(), density));
            let (x, dy, b) = (rng.vec(g.x_len()), rng.vec(g.y_len()), rng.vec(g.c_out));
            let what = format!("{g:?} at density {density}");
            let be = CpuBackend::<f64>::new();
            let sw = be.sparse_weight(&w, &mask, g.c_out, g.c_in, g.kt);
            let wm = masked(&w, &mask);
            for bias in [None, Some(&b)] {
                let (mut want, mut got) = (vec![0.0; g.y_len()], vec![f64::NAN; g.y_len()]);
                be.conv_t_forward(&g, &x, &wm, bias, &mut want);
                be.conv_t_forward_sparse(&g, &x, &sw, bias, &mut got);
                assert_close(&format!("forward {what}"), &got, &want, 1e-12);
            }
            let (mut want, mut got) = (vec![0.0; g.x_len()], vec![f64::NAN; g.x_len()]);
            be.conv_t_backward_input(&g, &dy, &wm, &mut want);
            be.conv_t_backward_input_sparse(&g, &dy, &sw, &mut got);
            assert_close(&format!("input gradient {what}"), &got, &want, 1e-12);

            let be = CpuBackend::<f32>::new();
            let (x, dy, b, wm, mask) = (to_f32(&x), to_f32(&dy), to_f32(&b), to_f32(&wm), to_f32(&mask));
            let sw = be.sparse_weight(&wm, &mask, g.c_out, g.c_in, g.kt);
            let (mut want, mut got) = (vec![0.0; g.y_len()], vec![f32::NAN; g.y_len()]);
            be.conv_t_forward(&g, &x, &wm, Some(&b), &mut want);
            be.conv_t_forward_sparse(&g, &x, &sw, Some(&b), &mut got);
            assert_close_f32(&format!("f32 forward {what}"), &got, &want, 1e-5);
            let (mut want, mut got) = (vec![0.0; g.x_len()], vec![f32::NAN; g.x_len()]);
            be.conv_t_backward_input(&g, &dy, &wm, &mut want);
            be.conv_t_backward_input_sparse(&g, &dy, &sw, &mut got);
            assert_close_f32(&format!("f32 input gradient {what}"), &got, &want, 1e-5);
        }
    }
}

fn assert_close_f32(what: &str, got: &[f32], want: &[f32], tol: f64) {
    let widen = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
    assert_close(what, &widen(got), &widen(want), tol);
}

/// Reduction lengths `c_in·kt` with every remainder mod 4.
const PRUNE_SHAPES: [(usize, usize, usize); 5] = [(3, 4, 1), (2, 5, 1), (3, 2, 9), (4, 3, 9), (2, 7, 1)];

#[test]
fn prune_2_4_keeps_the_two_largest_of_every_four() {
    let be = CpuBackend::<f64>::new();
    let mut rng = Rng::new(3);
    for (c_out, c_in, kt) in PRUNE_SHAPES {
        let k = c_in * kt;
        let w = rng.vec(c_out * k);
        let mut mask = vec![f64::NAN; w.len()];
        be.prune_2_4(&w, c_out, c_in, kt, &mut mask);
        assert!(mask.iter().all(|&m| m == 0.0 || m == 1.0), "0/1 mask");
        for o in 0..c_out {
            for start in (0..k).step_by(4) {
                let group = start..(start + 4).min(k);
                let at = |c: usize| o * k + c;
                let kept: Vec<usize> = group.clone().filter(|&c| mask[at(c)] == 1.0).collect();
                assert_eq!(kept.len(), group.len().min(2), "row {o}, group at {start} of {k}");
                for c in group.clone().filter(|c| !kept.contains(c)) {
                    assert!(
                        kept.iter().all(|&q| w[at(q)].abs() >= w[at(c)].abs()),
                        "row {o}: a dropped weight outweighs a kept one in the group at {start}"
                    );
                }
            }
        }
    }
    // ties keep the lower positions
    let w = vec![0.5, -0.5, 0.5, 0.25, 1.0, 1.0, 1.0, 1.0];
    let mut mask = vec![0.0; 8];
    be.prune_2_4(&w, 1, 8, 1, &mut mask);
    assert_eq!(mask, [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
}

#[test]
fn packing_keeps_the_pruned_weights_in_bf16_with_valid_metadata() {
    let be = CpuBackend::<f32>::new();
    let mut rng = Rng::new(4);
    for (c_out, c_in, kt) in PRUNE_SHAPES {
        let w = to_f32(&rng.vec(c_out * c_in * kt));
        let mut mask = vec![0.0; w.len()];
        be.prune_2_4(&w, c_out, c_in, kt, &mut mask);
        // drop a few more: groups keeping fewer than 2 are valid too
        for m in mask.iter_mut().step_by(5) {
            *m = 0.0;
        }
        let packed = be.pack_2_4(&w, &mask, c_out, c_in, kt).expect("a 2:4 mask packs");
        let k_padded = padded_columns(c_in, kt);
        assert_eq!(packed.k_padded, k_padded);
        assert!(k_padded % 32 == 0 && k_padded >= c_in * kt && k_padded < c_in * kt + 32);
        assert_eq!(packed.values.len(), c_out * k_padded / 2);
        assert_eq!(packed.meta.len(), c_out * k_padded / 16);
        for (o, words) in packed.meta.chunks(k_padded / 16).enumerate() {
            for (g, nibble) in (0..k_padded / 4).map(|g| (g, (words[g / 4] >> (4 * (g % 4))) & 0xf)) {
                let (first, second) = (nibble & 3, nibble >> 2);
                assert!(
                    first < second,
                    "row {o}, group {g}: positions {first}, {second} not ascending"
                );
            }
        }
        let want: Vec<f32> = w.iter().zip(&mask).map(|(w, m)| ConvMath::Bf16.round(w * m)).collect();
        assert_eq!(packed.to_dense(), want, "[{c_out}, {c_in}, {kt}]");
        assert!(packed.values.iter().all(|&v| bf16_to_f32(v).is_finite()));
    }
    // a group keeping 3 of 4 is refused, naming where
    let w = vec![1.0f32; 16];
    let mut mask = vec![0.0f32; 16];
    mask[9..12].fill(1.0);
    let err = be.pack_2_4(&w, &mask, 2, 8, 1).expect_err("3 of 4 kept");
    let text = err.to_string();
    assert!(text.contains("output channel 1") && text.contains("0..4"), "{text}");
}

/// The 2:4 conv is the dense conv of bf16(x) (bf16(dy)) with the bf16 pruned weights; it stays
/// within bf16 rounding of the f32 conv on the unrounded values.
#[test]
fn conv_2_4_matches_the_dense_conv_on_bf16_rounded_pruned_weights() {
    let be = CpuBackend::<f32>::new();
    let mut rng = Rng::new(5);
    for g in geometries() {
        let (w, x, dy, b) = (
            to_f32(&rng.vec(g.w_len())),
            to_f32(&rng.vec(g.x_len())),
            to_f32(&rng.vec(g.y_len())),
            to_f32(&rng.vec(g.c_out)),
        );
        let mut mask = vec![0.0; w.len()];
        be.prune_2_4(&w, g.c_out, g.c_in, g.kt, &mut mask);
        let packed = be
            .pack_2_4(&w, &mask, g.c_out, g.c_in, g.kt)
            .expect("pruned weights pack");
        let wq: Vec<f32> = w.iter().zip(&mask).map(|(w, m)| ConvMath::Bf16.round(w * m)).collect();
        let round = |v: &[f32]| v.iter().map(|&x| ConvMath::Bf16.round(x)).collect::<Vec<_>>();

        let (mut want, mut got) = (vec![0.0; g.y_len()], vec![f32::NAN; g.y_len()]);
        be.conv_t_forward(&g, &round(&x), &wq, Some(&b), &mut want);
        be.conv_t_forward_2_4(&g, &x, &packed, Some(&b), &mut got);
        assert_close_f32(&format!("2:4 forward {g:?}"), &got, &want, 1e-6);
        let wm: Vec<f32> = w.iter().zip(&mask).map(|(w, m)| w * m).collect();
        let mut exact = vec![0.0; g.y_len()];
        be.conv_t_forward(&g, &x, &wm, Some(&b), &mut exact);
        assert_close_f32(&format!("2:4 forward vs f32 {g:?}"), &got, &exact, 2e-2);

        let (mut want, mut got) = (vec![0.0; g.x_len()], vec![f32::NAN; g.x_len()]);
        be.conv_t_backward_input(&g, &round(&dy), &wq, &mut want);
        be.conv_t_backward_input_2_4(&g, &dy, &packed, &mut got);
        assert_close_f32(&format!("2:4 input gradient {g:?}"), &got, &want, 1e-6);
    }
}

#[test]
fn the_policy_picks_csr_up_to_the_backends_density_threshold() {
    let max = <CpuBackend<f32> as Backend>::CSR_MAX_DENSITY;
    assert!(max > 0.0 && max < 1.0);
    assert_eq!(choose_format(0.0, max), ConvFormat::Csr);
    assert_eq!(choose_format(max, max), ConvFormat::Csr);
    assert_eq!(choose_format(max + 1e-9, max), ConvFormat::Dense);
    assert_eq!(choose_format(1.0, max), ConvFormat::Dense);
}

/// A conv with a fixed sparse mask computes from CSR (forward and input gradient), follows weight
/// updates, keeps the weight gradient dense and masked, and rebuilds when the mask changes (set
/// anew, or replaced through the state entries as a checkpoint load does).
#[test]
fn a_fixed_sparse_mask_switches_the_conv_to_csr_and_rebuilds_on_mask_changes() {
    let be = CpuBackend::<f64>::new();
    let mut init = InitRng::new(6);
    let mut rng = Rng::new(6);
    let (n, t_in, v) = (2, 12, 5);
    let mut conv = Conv::conv2d(&be, 6, 8, 9, 1, &mut init);
    let g = conv.geom(n, t_in, v);
    let x = rng.vec(g.x_len());
    let dense_reference = |conv: &Conv<CpuBackend<f64>>, mask: &[f64], dy: &Vec<f64>| {
        let wm = masked(&conv.weight.value, mask);
        let (mut y, mut dx) = (vec![0.0; g.y_len()], vec![0.0; g.x_len()]);
        be.conv_t_forward(&g, &x, &wm, conv.bias.as_ref().map(|b| &b.value), &mut y);
        be.conv_t_backward_input(&g, dy, &wm, &mut dx);
        (y, dx)
    };

    assert_eq!(conv.format(), ConvFormat::Dense);
    let sparse_mask = random_mask(&mut rng, g.w_len(), 0.05);
    conv.set_fixed_mask(&be, &sparse_mask);
    conv.prepare_fixed_mask(&be);
    assert_eq!(conv.format(), ConvFormat::Csr, "built before the first forward");
    let dy = rng.vec(g.y_len());
    let y = conv.forward(&be, &x, n, t_in, v);
    assert_eq!(conv.format(), ConvFormat::Csr);
    let dx = conv.backward(&be, &x, &dy, n, t_in, v, None);
    let (want_y, want_dx) = dense_reference(&conv, &sparse_mask, &dy);
    assert_close("CSR layer forward", &y, &want_y, 1e-12);
    assert_close("CSR layer input gradient", &dx, &want_dx, 1e-12);
    // the weight gradient is the dense one, masked
    let mut grad_eff = vec![0.0; g.w_len()];
    be.conv_t_backward_weight(&g, &x, &dy, &mut grad_eff, None);
    assert_close(
        "weight gradient",
        &conv.weight.grad,
        &masked(&grad_eff, &sparse_mask),
        1e-12,
    );

    // a weight update under the same mask
    conv.weight.value = rng.vec(g.w_len());
    let y = conv.forward(&be, &x, n, t_in, v);
    assert_close(
        "after a weight update",
        &y,
        &dense_reference(&conv, &sparse_mask, &dy).0,
        1e-12,
    );

    // a new, denser mask: back to the dense kernels
    let dense_mask = random_mask(&mut rng, g.w_len(), 0.8);
    conv.set_fixed_mask(&be, &dense_mask);
    let y = conv.forward(&be, &x, n, t_in, v);
    assert_eq!(conv.format(), ConvFormat::Dense);
    assert_close("dense mask", &y, &dense_reference(&conv, &dense_mask, &dy).0, 1e-12);

    // a sparse mask replaced through the state entries (as a checkpoint load writes it)
    let other_mask = random_mask(&mut rng, g.w_len(), 0.04);
    conv.set_fixed_mask(&be, &sparse_mask);
    conv.forward(&be, &x, n, t_in, v);
    let mut entries = Vec::new();
    conv.entries("", &mut entries);
    for entry in entries {
        if let Entry::Buffer(name, b) = entry {
            assert_eq!(name, "weight_mask");
            b.replace(be.upload(&other_mask));
        }
    }
    let y = conv.forward(&be, &x, n, t_in, v);
    assert_eq!(conv.format(), ConvFormat::Csr);
    assert_close("replaced mask", &y, &dense_reference(&conv, &other_mask, &dy).0, 1e-12);
}
