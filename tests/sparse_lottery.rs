//! Magnitude pruning and rewinding for lottery tickets.

use leangcn::backend::cpu::CpuBackend;
use leangcn::layers::{params_of, Module};
use leangcn::model::{Stgcn, StgcnConfig};
use leangcn::sparse::lottery::{layer_densities, prune_by_magnitude, rewind, sparsity_of, PruneScope};

type Be = CpuBackend<f64>;

fn model() -> Stgcn<Be> {
    let cfg = StgcnConfig {
        base_channels: 8,
        num_stages: 4,
        inflate_stages: vec![3],
        down_stages: vec![3],
        num_classes: 5,
        ..StgcnConfig::default()
    };
    Stgcn::new(&Be::new(), cfg, 4).unwrap()
}

#[test]
fn global_rounds_prune_the_smallest_remaining_magnitudes() {
    let be = Be::new();
    let mut m = model();
    let s1 = prune_by_magnitude(&be, &mut m, 0.5, PruneScope::Global);
    assert!((s1 - 0.5).abs() < 1e-3, "round 1 sparsity {s1}");
    // every kept weight is at least as large as every pruned one
    let (mut kept_min, mut pruned_max) = (f64::INFINITY, 0.0f64);
    for block in &m.backbone.blocks {
        for conv in block.convs_ref() {
            let mask = &conv.mask.as_ref().unwrap().mask().value;
            for (w, k) in conv.weight.value.iter().zip(mask) {
                if *k == 1.0 {
                    kept_min = kept_min.min(w.abs());
                } else {
                    pruned_max = pruned_max.max(w.abs());
                }
            }
        }
    }
    assert!(kept_min >= pruned_max, "kept {kept_min} < pruned {pruned_max}");
    let s2 = prune_by_magnitude(&be, &mut m, 0.5, PruneScope::Global);
    assert!((s2 - 0.75).abs() < 1e-3, "round 2 sparsity {s2}");
    assert!((sparsity_of(&be, &mut m) - s2).abs() < 1e-12);
}

#[test]
fn per_layer_pruning_thins_every_conv_equally() {
    let be = Be::new();
    let mut m = model();
    prune_by_magnitude(&be, &mut m, 0.8, PruneScope::PerLayer);
    for (name, n, density) in layer_densities(&be, &mut m) {
        let expected = 1.0 - (0.8 * n as f64).round_ties_even() / n as f64;
        assert!((density - expected).abs() < 1e-12, "{name}: {density} vs {expected}");
    }
}

#[test]
fn rewind_restores_weights_and_keeps_masks() {
    let be = Be::new();
    let mut m = model();
    let init: Vec<(String, Vec<f64>)> = params_of(&mut m)
        .into_iter()
        .map(|(n, p)| (n, p.value.clone()))
        .collect();
    prune_by_magnitude(&be, &mut m, 0.5, PruneScope::Global);
    for (_, p) in params_of(&mut m) {
        p.value.iter_mut().for_each(|v| *v += 1.0);
    }
    let n = rewind(&be, &mut m, |name| {
        init.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .unwrap();
    assert_eq!(n, init.len());
    for ((_, p), (_, v0)) in params_of(&mut m).into_iter().zip(&init) {
        assert_eq!(&p.value, v0);
    }
    assert!(
        (sparsity_of(&be, &mut m) - 0.5).abs() < 1e-3,
        "masks survive the rewind"
    );
    let mut entries = Vec::new();
    m.entries("", &mut entries);
    assert!(
        entries.iter().any(|e| e.name().ends_with("weight_mask")),
        "masks are part of the state"
    );
    let err = rewind(&be, &mut m, |_| Some(vec![0.0; 3])).unwrap_err().to_string();
    assert!(err.contains("rewind point has 3 values"), "{err}");
}
