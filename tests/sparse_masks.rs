//! Learned and fixed weight masks: the threshold against a sort, the straight-through estimator
//! against the dense conv on the masked weight, and finite differences with the mask held fixed.

use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::Backend;
use leangcn::layers::{params_of, Conv};
use leangcn::model::init::InitRng;
use leangcn::model::{SparseSpec, Stgcn, StgcnConfig, ThresholdScope};

type Be = CpuBackend<f64>;

fn small(sparse: Option<SparseSpec>) -> StgcnConfig {
    StgcnConfig {
        base_channels: 4,
        num_stages: 4,
        inflate_stages: vec![3],
        down_stages: vec![3],
        num_classes: 5,
        sparse,
        ..StgcnConfig::default()
    }
}

/// The k-th smallest by sorting, `k = 1 + round_half_even(s·(n−1))`.
fn reference_tau(pool: &[f64], s: f64) -> f64 {
    let mut sorted = pool.to_vec();
    sorted.sort_by(f64::total_cmp);
    let k = 1 + (s * (pool.len() - 1) as f64).round_ties_even() as usize;
    sorted[k - 1]
}

#[test]
fn kth_smallest_matches_a_sort_with_ties_and_extremes() {
    let be = Be::new();
    let mut rng = InitRng::new(5);
    for (len, ties) in [(1usize, false), (7, true), (1000, false), (4097, true)] {
        let pool: Vec<f64> = (0..len)
            .map(|_| {
                if ties {
                    (rng.uniform() * 5.0).floor()
                } else {
                    rng.normal()
                }
            })
            .collect();
        let (a, b) = pool.split_at(len / 3);
        let bufs = [be.upload(a), be.upload(b)];
        for s in [0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let k = 1 + (s * (len - 1) as f64).round_ties_even() as usize;
            let mut out = be.zeros(1);
            be.kth_smallest(&[&bufs[0], &bufs[1]], k, &mut out);
            assert_eq!(out[0], reference_tau(&pool, s), "len {len} s {s}");
            let mut mask = be.zeros(len);
            be.threshold_mask(&be.upload(&pool), &out, &mut mask);
            let kept = mask.iter().filter(|&&m| m == 1.0).count();
            if !ties {
                assert_eq!(kept, len - (k - 1), "without ties exactly k-1 entries are pruned");
            }
            if s == 0.0 {
                assert_eq!(kept, len, "sparsity 0 keeps everything");
            }
        }
    }
}

#[test]
fn global_threshold_prunes_the_target_fraction_of_the_backbone() {
    let be = Be::new();
    let mut model = Stgcn::new(&be, small(Some(SparseSpec::default())), 1).unwrap();
    model.set_sparsity(0.8);
    model.update_masks(&be);
    let mut kept = 0usize;
    let mut total = 0usize;
    for block in &model.backbone.blocks {
        for conv in block.convs_ref() {
            let mask = &conv.mask.as_ref().unwrap().mask().value;
            kept += mask.iter().filter(|&&m| m == 1.0).count();
            total += mask.len();
        }
    }
    let pruned = (0.8 * (total - 1) as f64).round_ties_even() as usize;
    assert_eq!(kept, total - pruned);
    // per-block scope prunes each block to the target
    let spec = SparseSpec {
        scope: ThresholdScope::PerBlock,
        residual_quirk: false,
    };
    let mut model = Stgcn::new(&be, small(Some(spec)), 1).unwrap();
    model.set_sparsity(0.5);
    model.update_masks(&be);
    for block in &model.backbone.blocks {
        let masks: Vec<f64> = block
            .convs_ref()
            .iter()
            .flat_map(|c| c.mask.as_ref().unwrap().mask().value.clone())
            .collect();
        let pruned = (0.5 * (masks.len() - 1) as f64).round_ties_even() as usize;
        assert_eq!(masks.iter().filter(|&&m| m == 0.0).count(), pruned);
    }
}

#[test]
fn residual_quirk_uses_threshold_zero() {
    let be = Be::new();
    let spec = SparseSpec {
        scope: ThresholdScope::Global,
        residual_quirk: true,
    };
    let mut model = Stgcn::new(&be, small(Some(spec)), 1).unwrap();
    model.set_sparsity(0.0);
    model.update_masks(&be);
    let block = &model.backbone.blocks[2]; // the down-sampling block has a residual conv
    let convs = block.convs_ref();
    assert_eq!(convs.len(), 3);
    let residual = convs[2];
    let score = &residual.score().unwrap().value;
    let mask = &residual.mask.as_ref().unwrap().mask().value;
    assert!(score
        .iter()
        .zip(mask)
        .all(|(&s, &m)| m == if s >= 0.0 { 1.0 } else { 0.0 }));
    assert!(convs[0].mask.as_ref().unwrap().mask().value.iter().all(|&m| m == 1.0));
}

#[test]
fn straight_through_estimator_matches_the_dense_conv_on_the_masked_weight() {
    let be = Be::new();
    let mut rng = InitRng::new(9);
    let (n, t, v) = (3, 7, 5);
    let mut masked = Conv::conv2d(&be, 4, 6, 9, 2, &mut rng);
    masked.add_learned_mask(&be, &mut rng);
    let scores = masked.score().unwrap().value.clone();
    let mut tau = be.zeros(1);
    be.kth_smallest(&[&scores], scores.len() / 2, &mut tau);
    masked.apply_threshold(&be, &tau);
    let mask = masked.mask.as_ref().unwrap().mask().value.clone();
    let w = masked.weight.value.clone();

    let mut dense = Conv::conv2d(&be, 4, 6, 9, 2, &mut rng);
    dense.weight.value = w.iter().zip(&mask).map(|(a, b)| a * b).collect();
    dense.bias.as_mut().unwrap().value = masked.bias.as_ref().unwrap().value.clone();

    let x: Vec<f64> = (0..n * 4 * t * v).map(|_| rng.normal()).collect();
    let y_masked = masked.forward(&be, &x, n, t, v);
    let y_dense = dense.forward(&be, &x, n, t, v);
    assert_eq!(y_masked, y_dense);
    let dy: Vec<f64> = (0..y_dense.len()).map(|_| rng.normal()).collect();
    let dx_masked = masked.backward(&be, &x, &dy, n, t, v, None);
    let dx_dense = dense.backward(&be, &x, &dy, n, t, v, None);
    assert_eq!(dx_masked, dx_dense, "input gradient through W ⊙ M");
    let g = &dense.weight.grad;
    let dw: Vec<f64> = g.iter().zip(&mask).map(|(g, m)| g * m).collect();
    let ds: Vec<f64> = g.iter().zip(&w).map(|(g, w)| g * w).collect();
    assert_eq!(masked.weight.grad, dw, "dW = G ⊙ M");
    assert_eq!(masked.score().unwrap().grad, ds, "dS = G ⊙ W");
}

#[test]
fn fixed_mask_gradients_match_finite_differences() {
    let be = Be::new();
    let mut model = Stgcn::new(&be, small(None), 2).unwrap();
    let mut rng = InitRng::new(3);
    for block in &mut model.backbone.blocks {
        for (conv, _) in block.convs_mut() {
            let mask: Vec<f64> = (0..conv.weight.len())
                .map(|_| if rng.uniform() < 0.3 { 0.0 } else { 1.0 })
                .collect();
            conv.set_fixed_mask(&be, &mask);
        }
    }
    let dims = [2, 2, 8, 25, 3];
    let x: Vec<f64> = (0..dims.iter().product()).map(|_| rng.normal()).collect();
    let labels = vec![1u32, 4];
    let loss = |model: &mut Stgcn<Be>| {
        let logits = model.forward(&be, &x, dims, true, 0).unwrap();
        let (mut l, mut dl) = (be.zeros(1), be.zeros(10));
        be.cross_entropy(2, 5, &logits, &labels, 0.0, &mut l, &mut dl);
        (l[0], dl)
    };
    model.zero_grad(&be);
    let (_, dl) = loss(&mut model);
    model.backward(&be, &dl);
    let names: Vec<String> = params_of(&mut model)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.ends_with("conv.weight"))
        .collect();
    // small steps: a masked network of 4 channels has ReLU inputs within 1e-5 of zero
    let h = 1e-6;
    let mut zeros_checked = 0;
    for name in &names {
        let len = params_of(&mut model)
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
            .len();
        for probe in 0..6 {
            let i = (probe * 7919 + 3) % len;
            let bump = |delta: f64, model: &mut Stgcn<Be>| {
                params_of(model).into_iter().find(|(n, _)| n == name).unwrap().1.value[i] += delta;
            };
            bump(h, &mut model);
            let lp = loss(&mut model).0;
            bump(-2.0 * h, &mut model);
            let lm = loss(&mut model).0;
            bump(h, &mut model);
            let numeric = (lp - lm) / (2.0 * h);
            let analytic = params_of(&mut model)
                .into_iter()
                .find(|(n, _)| n == name)
                .unwrap()
                .1
                .grad[i];
            assert!(
                (numeric - analytic).abs() <= 1e-5 * numeric.abs().max(analytic.abs()) + 1e-9,
                "{name}[{i}]: {analytic} vs {numeric}"
            );
            if analytic == 0.0 && numeric.abs() < 1e-12 {
                zeros_checked += 1;
            }
        }
    }
    assert!(
        zeros_checked > 0,
        "some probes hit masked-out weights (gradient exactly zero)"
    );
}
