//! The multi-level sparsity assembly: finite differences (f64) of its loss with the masks held
//! fixed, the composition of that loss from the fused and the expert heads, prediction from the
//! fused head only, parameter accounting against hand counts (and the reference's 66%), resume of
//! an interrupted assembly run, and the sweep's assembly row with its checkpoint evaluated.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::Backend;
use leangcn::bench::count::ModelCost;
use leangcn::data::synthetic::SyntheticDataset;
use leangcn::layers::params_of;
use leangcn::model::init::InitRng;
use leangcn::model::recognizer::zero_grad;
use leangcn::model::{Assembly, Recognizer, SparseSpec, StgcnConfig};
use leangcn::sparse::accounting::count_params;
use leangcn::sparse::AssemblyConfig;
use leangcn::train::checkpoint::{load_checkpoint, CheckpointDir};
use leangcn::train::datasets::synthetic_config;
use leangcn::train::step::cross_entropy_host;
use leangcn::train::{train, RunOptions, TrainConfig};

type Be = CpuBackend<f64>;

/// Blocks 3→4, 4→4, 4→8 (stride 2, residual conv), 8→8 on the NTU layout; 5 classes.
fn small() -> StgcnConfig {
    StgcnConfig {
        base_channels: 4,
        num_stages: 4,
        inflate_stages: vec![3],
        down_stages: vec![3],
        num_classes: 5,
        sparse: Some(SparseSpec::default()),
        ..StgcnConfig::default()
    }
}

/// An assembly of experts at `levels`, masks computed at those sparsities.
fn assembly(levels: &[f64], seed: u64) -> Assembly<Be> {
    let be = Be::new();
    let mut model = Assembly::new(&be, small(), levels.len(), seed).unwrap();
    for (expert, &s) in model.experts.iter_mut().zip(levels) {
        expert.set_sparsity(s);
        expert.update_masks(&be);
    }
    model
}

fn batch(seed: u64) -> (Vec<f64>, [usize; 5], Vec<u32>) {
    let dims = [2, 2, 8, 25, 3];
    let mut rng = InitRng::new(seed);
    let x = (0..dims.iter().product()).map(|_| rng.normal()).collect();
    (x, dims, vec![1, 3])
}

/// `CE(z₀) + Σ_h CE(z_h)` from a training-mode forward only (no backward), label smoothing 0.1.
fn forward_loss(be: &Be, model: &mut Assembly<Be>, x: &[f64], dims: [usize; 5], labels: &[u32]) -> f64 {
    let z = model.forward(be, &x.to_vec(), dims, true, 0, true).unwrap();
    let (mut l, mut dl) = (be.zeros(1), be.zeros(dims[0] * 5));
    let mut total = 0.0;
    for logits in std::iter::once(&z.fused).chain(&z.experts) {
        be.cross_entropy(dims[0], 5, logits, &labels.to_vec(), 0.1, &mut l, &mut dl);
        total += l[0];
    }
    total
}

#[test]
fn assembly_gradients_match_finite_differences_with_the_masks_fixed() {
    let be = Be::new();
    let mut model = assembly(&[0.5, 0.8], 3);
    let (x, dims, labels) = batch(11);
    zero_grad(&be, &mut model);
    let objective = model.objective(&be, &x, &labels, dims, 0.1, 0).unwrap();
    let loss0 = objective.loss[0];
    assert!((loss0 - forward_loss(&be, &mut model, &x, dims, &labels)).abs() < 1e-12);
    let analytic: Vec<(String, Vec<f64>)> = params_of(&mut model)
        .into_iter()
        .map(|(n, p)| (n, p.grad.clone()))
        .collect();
    let h = 1e-6;
    // W changes leave the scores, hence the thresholds and masks, unchanged: the masks stay fixed
    let bump = |model: &mut Assembly<Be>, name: &str, i: usize, delta: f64| {
        params_of(model).into_iter().find(|(n, _)| n == name).unwrap().1.value[i] += delta;
    };
    let numeric_of = |name: &str, i: usize, model: &mut Assembly<Be>| {
        bump(model, name, i, h);
        let lp = forward_loss(&be, model, &x, dims, &labels);
        bump(model, name, i, -2.0 * h);
        let lm = forward_loss(&be, model, &x, dims, &labels);
        bump(model, name, i, h);
        (lp - lm) / (2.0 * h)
    };
    let (mut checked, mut masked_zeros, mut scores_checked) = (0, 0, 0);
    for (name, grad) in &analytic {
        if name.ends_with("weight_score") {
            continue;
        }
        for probe in 0..3 {
            let i = (probe * 7919 + 13) % grad.len();
            let numeric = numeric_of(name, i, &mut model);
            let diff = (numeric - grad[i]).abs();
            // the floor covers gradients that are zero by construction (a conv bias before a
            // training-mode BN) and the rounding of the differences (~1e-10)
            assert!(
                diff <= 1e-5 * numeric.abs().max(grad[i].abs()) + 1e-8,
                "{name}[{i}]: analytic {} numeric {numeric}",
                grad[i]
            );
            checked += 1;
            if name.ends_with("conv.weight") && name.contains("experts") && grad[i] == 0.0 {
                masked_zeros += 1;
            }
        }
        // straight-through estimator: dS = G ⊙ W, with G = dL/dW at every kept weight
        if let Some(prefix) = name.strip_suffix(".weight").filter(|p| p.ends_with(".conv")) {
            let score_name = format!("{prefix}.weight_score");
            let Some((_, dscore)) = analytic.iter().find(|(n, _)| *n == score_name) else {
                continue;
            };
            let weights = params_of(&mut model)
                .into_iter()
                .find(|(n, _)| n == name)
                .unwrap()
                .1
                .value
                .clone();
            let kept = (0..grad.len()).find(|&i| grad[i] != 0.0).expect("a kept weight");
            let g = numeric_of(name, kept, &mut model);
            let expected = g * weights[kept];
            assert!(
                (dscore[kept] - expected).abs() <= 1e-5 * expected.abs().max(dscore[kept].abs()) + 1e-8,
                "{score_name}[{kept}]: {} vs G·W = {expected}",
                dscore[kept]
            );
            scores_checked += 1;
        }
    }
    assert!(masked_zeros > 0, "some probes hit pruned weights");
    assert_eq!(scores_checked, 2 * 9, "every maskable conv of both experts");
    // the input gradient sums every expert's
    zero_grad(&be, &mut model);
    let z = model.forward(&be, &x, dims, true, 0, true).unwrap();
    let mut dlogits = Vec::new();
    for logits in std::iter::once(&z.fused).chain(&z.experts) {
        let (mut l, mut dl) = (be.zeros(1), be.zeros(10));
        be.cross_entropy(2, 5, logits, &labels, 0.1, &mut l, &mut dl);
        dlogits.push(dl);
    }
    let dx = model.backward(&be, &dlogits[0], &dlogits[1..]);
    for probe in 0..4 {
        let i = (probe * 104_729 + 5) % x.len();
        let mut xp = x.clone();
        xp[i] += h;
        let lp = forward_loss(&be, &mut model, &xp, dims, &labels);
        xp[i] -= 2.0 * h;
        let lm = forward_loss(&be, &mut model, &xp, dims, &labels);
        let numeric = (lp - lm) / (2.0 * h);
        assert!(
            (numeric - dx[i]).abs() <= 1e-5 * numeric.abs().max(dx[i].abs()) + 1e-8,
            "input[{i}]: {} vs {numeric}",
            dx[i]
        );
    }
    println!("{checked} parameter probes, {masked_zeros} on pruned weights, {scores_checked} scores");
}

#[test]
fn loss_is_fused_plus_expert_cross_entropies_and_prediction_uses_the_fused_head_only() {
    let be = Be::new();
    let mut model = assembly(&[0.6, 0.8, 0.95], 5);
    let (x, dims, labels) = batch(2);
    let z = model.forward(&be, &x, dims, true, 0, true).unwrap();
    assert_eq!(z.experts.len(), 3);
    let ce = |logits: &Vec<f64>| cross_entropy_host(logits, &labels, 5);
    let expected = ce(&z.fused) + z.experts.iter().map(ce).sum::<f64>();
    let objective = model.objective(&be, &x, &labels, dims, 0.0, 0).unwrap();
    assert!(
        (objective.loss[0] - expected).abs() < 1e-12,
        "{} vs {expected}",
        objective.loss[0]
    );
    assert_eq!(objective.logits, z.fused, "the step's prediction is the fused head's");

    // z₀ = FC₀(mean_h P(F_h)): one classifier on the averaged pooled features
    let pooled: Vec<&Vec<f64>> = model.expert_heads.iter().map(|h| h.pooled().unwrap()).collect();
    let mean: Vec<f64> = (0..pooled[0].len())
        .map(|i| pooled.iter().map(|p| p[i]).sum::<f64>() / 3.0)
        .collect();
    let fused_pooled = model.fused_head.pooled().unwrap();
    assert!(mean.iter().zip(fused_pooled).all(|(a, b)| (a - b).abs() < 1e-14));
    let (w, b) = (
        &model.fused_head.fc.weight.value,
        &model.fused_head.fc.bias.as_ref().unwrap().value,
    );
    let c = model.fused_head.channels;
    for n in 0..2 {
        for k in 0..5 {
            let zk: f64 = b[k] + (0..c).map(|j| w[k * c + j] * mean[n * c + j]).sum::<f64>();
            assert!((zk - z.fused[n * 5 + k]).abs() < 1e-12);
        }
    }
    // and not a logit ensemble of the auxiliary heads
    let ensemble: Vec<f64> = (0..10)
        .map(|i| z.experts.iter().map(|e| e[i]).sum::<f64>() / 3.0)
        .collect();
    assert!(ensemble.iter().zip(&z.fused).any(|(a, b)| (a - b).abs() > 1e-6));

    // prediction ignores the auxiliary heads
    let predicted = model.logits(&be, &x, dims, false, 0).unwrap();
    for head in &mut model.expert_heads {
        head.fc.weight.value.iter_mut().for_each(|v| *v = 7.0);
    }
    assert_eq!(model.logits(&be, &x, dims, false, 0).unwrap(), predicted);
    let after = model.forward(&be, &x, dims, false, 0, true).unwrap();
    assert_eq!(after.fused, predicted);
    assert_ne!(after.experts[0], z.experts[0]);
}

#[test]
fn experts_are_independent_and_named_as_the_reference() {
    let be = Be::new();
    let mut model = assembly(&[0.5, 0.9], 1);
    let names: Vec<String> = params_of(&mut model).into_iter().map(|(n, _)| n).collect();
    for name in [
        "backbone.experts.0.data_bn.weight",
        "backbone.experts.1.gcn.2.residual.conv.weight_score",
        "backbone.experts.1.gcn.3.tcn.conv.weight",
        "cls_head.fc_cls.0.weight",
        "cls_head.fc_cls.2.bias",
    ] {
        assert!(names.iter().any(|n| n == name), "missing {name}");
    }
    assert!(!names.iter().any(|n| n.starts_with("cls_head.fc_cls.3")));
    // each expert thresholds its own scores at its own sparsity, globally over its backbone
    for (expert, s) in model.experts.iter_mut().zip([0.5, 0.9]) {
        let convs = expert.named_convs_mut();
        let masks: Vec<f64> = convs
            .iter()
            .flat_map(|(_, c)| c.mask.as_ref().unwrap().mask().value.clone())
            .collect();
        let pruned = (s * (masks.len() - 1) as f64).round_ties_even() as usize;
        assert_eq!(masks.iter().filter(|&&m| m == 0.0).count(), pruned);
    }
    // expert 0 starts as the single model of the same seed; the others are drawn independently
    let single = leangcn::model::Stgcn::new(&be, small(), 1).unwrap();
    let w = |b: &leangcn::model::Backbone<Be>| b.blocks[1].tcn.conv.weight.value.clone();
    assert_eq!(w(&model.experts[0]), w(&single.backbone));
    assert_ne!(w(&model.experts[0]), w(&model.experts[1]));
}

#[test]
fn parameters_are_counted_both_ways() {
    let be = Be::new();
    // by hand, per block: graph 1x1 c_in·3c_out, temporal c_out²·9, residual c_in·c_out
    let maskable = (3 * 12 + 16 * 9) + (4 * 12 + 16 * 9) + (4 * 24 + 64 * 9 + 4 * 8) + (8 * 24 + 64 * 9);
    assert_eq!(maskable, 1844);
    // graph conv bias 3c_out, PA 3·25·25, BN 2c_out; temporal bias c_out, BN 2c_out; residual
    // bias c_out, BN 2c_out; data BN 2·75
    let pa = 3 * 25 * 25;
    let others = (12 + pa + 8 + 4 + 8)
        + (12 + pa + 8 + 4 + 8)
        + (24 + pa + 16 + 8 + 16 + 8 + 16)
        + (24 + pa + 16 + 8 + 16)
        + 150;
    let head = 8 * 5 + 5;
    let dense = maskable + others + head;
    assert_eq!(dense as u64, ModelCost::of(&small(), 8).params());

    let mut model = assembly(&[0.5, 0.9], 7);
    let count = count_params(&be, &mut model);
    // k = 1 + round_half_even(s·(n−1)) prunes round(s·1843): 922 (921.5 rounds to even) and 1659
    let kept = (maskable - 922) + (maskable - 1659);
    assert_eq!(count.maskable, 2 * maskable);
    assert_eq!(count.kept_masked, kept);
    assert_eq!(count.total_params, 2 * (maskable + others) + 3 * head);
    assert_eq!(count.kept_params, 2 * others + 3 * head + kept);
    assert_eq!((count.dense_maskable, count.dense_params), (maskable, dense));
    assert!((count.masked_fraction() - kept as f64 / maskable as f64).abs() < 1e-15);

    // the reference: four ST-GCN experts at 0.6/0.8/0.95/0.99 on NTU-60 keep 66% of one dense
    // backbone's masked weights, and about 2.22M parameters (71.5% of 3.10M) counting everything
    let bf = CpuBackend::<f32>::new();
    let cfg = StgcnConfig {
        sparse: Some(SparseSpec::default()),
        ..StgcnConfig::default()
    };
    let mut full = Assembly::new(&bf, cfg, 4, 0).unwrap();
    for (expert, s) in full.experts.iter_mut().zip([0.6, 0.8, 0.95, 0.99]) {
        expert.set_sparsity(s);
        expert.update_masks(&bf);
    }
    let count = count_params(&bf, &mut full);
    assert_eq!((count.dense_maskable, count.dense_params), (3_052_096, 3_098_832));
    assert!(
        (count.masked_fraction() - 0.66).abs() < 1e-5,
        "{}",
        count.masked_fraction()
    );
    assert!(
        (count.kept_params as f64 - 2.2167e6).abs() < 1e3,
        "{}",
        count.kept_params
    );
    assert!(
        (count.params_fraction() - 0.7153).abs() < 1e-3,
        "{}",
        count.params_fraction()
    );
}

fn final_tensors(run_dir: &Path) -> Vec<(String, Vec<f64>)> {
    let dir = CheckpointDir::new(&run_dir.join("checkpoints"), 2).unwrap();
    let (tensors, _) = load_checkpoint(&dir.latest().unwrap().unwrap()).unwrap();
    tensors.into_iter().map(|t| (t.name, t.data.to_f64())).collect()
}

#[test]
fn an_interrupted_assembly_run_resumes_to_the_same_weights() {
    let mut cfg = TrainConfig::preset("tiny").unwrap();
    cfg.model = StgcnConfig {
        num_classes: 12,
        ..small()
    };
    cfg.epochs = 3;
    cfg.batch_size = 8;
    cfg.clip_len = 16;
    cfg.data.synthetic_samples_per_class = 3;
    cfg.max_grad_norm = Some(45.0);
    cfg.assembly = Some(AssemblyConfig::levels(&[0.6, 0.95], 1));
    let base = synthetic_config(&cfg);
    let train_set = Arc::new(SyntheticDataset::new(base.clone()).unwrap());
    let val_set = Arc::new(SyntheticDataset::new(base.validation()).unwrap());
    let be = CpuBackend::<f32>::new();
    let tmp = tempfile::tempdir().unwrap();
    let run = |dir: &Path, resume: bool, max_steps: Option<u64>| {
        let opts = RunOptions {
            run_dir: dir.to_path_buf(),
            resume,
            max_steps,
            quiet: true,
            init_state: None,
            profile_steps: None,
        };
        train(&be, &cfg, train_set.clone(), val_set.clone(), &opts).unwrap()
    };
    let (whole, parted) = (tmp.path().join("whole"), tmp.path().join("parted"));
    let summary = run(&whole, false, None);
    assert_eq!(summary.metrics.len(), 3);
    run(&parted, false, Some(5)); // stops inside the second epoch (4 steps per epoch)
    run(&parted, true, None);
    let (a, b) = (final_tensors(&whole), final_tensors(&parted));
    assert_eq!(a.len(), b.len());
    for ((name, va), (_, vb)) in a.iter().zip(&b) {
        assert!(
            va.iter().zip(vb).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{name} differs after resume"
        );
    }
    for name in [
        "backbone.experts.1.gcn.0.gcn.conv.weight_score",
        "backbone.experts.1.gcn.0.gcn.conv.weight_mask",
        "cls_head.fc_cls.2.weight",
        "optimizer.momentum.backbone.experts.0.gcn.3.tcn.conv.weight_score",
    ] {
        assert!(a.iter().any(|(n, _)| n == name), "checkpoint lacks {name}");
    }
    // the stored mask of expert 1 is at its target after the warm-up epoch
    let mask: Vec<f64> = a
        .iter()
        .filter(|(n, _)| n.starts_with("backbone.experts.1.") && n.ends_with("weight_mask"))
        .flat_map(|(_, v)| v.clone())
        .collect();
    let kept = mask.iter().filter(|&&m| m == 1.0).count() as f64 / mask.len() as f64;
    assert!((kept - 0.05).abs() < 0.005, "expert 1 keeps {kept}");
}

#[test]
fn sweep_with_assemble_writes_its_row_and_its_checkpoint_evaluates_from_the_fused_head() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let bin = env!("CARGO_BIN_EXE_leangcn");
    let status = Command::new(bin)
        .args([
            "sweep",
            "--backend",
            "cpu",
            "--preset",
            "tiny",
            "--epochs",
            "1",
            "--sparsity",
            "0,0.5,0.9",
            "--assemble",
            "--quiet",
            "--set",
            "model.base_channels=4",
            "--set",
            "data.synthetic_samples_per_class=4",
            "--set",
            "clip_len=16",
            "--set",
            "batch_size=8",
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let methods: Vec<&str> = rows.iter().map(|r| r[col("method")]).collect();
    assert_eq!(methods, ["dense", "generator", "generator", "assembly"]);
    let row = &rows[3];
    let num = |c: &str| row[col(c)].parse::<f64>().unwrap();
    assert_eq!(row[col("experts")], "0.5/0.9");
    assert!((num("sparsity") - 0.7).abs() < 1e-12);
    // masked weights: (0.5 + 0.1) of one backbone's, i.e. 0.3 of the assembly's own
    assert!(
        (num("masked_of_dense") - 0.6).abs() < 1e-3,
        "{}",
        num("masked_of_dense")
    );
    assert!((num("kept_masked") / num("maskable") - 0.3).abs() < 1e-3);
    assert_eq!(num("maskable"), 2.0 * rows[0][col("maskable")].parse::<f64>().unwrap());
    assert!(num("kept_params") < num("total_params"));
    assert!(
        (num("params_of_dense") - num("kept_params") / rows[0][col("total_params")].parse::<f64>().unwrap()).abs()
            < 1e-6
    );
    assert!(num("effective_macs") < num("dense_macs"));
    let densities = std::fs::read_to_string(out.join("densities.csv")).unwrap();
    assert!(densities
        .lines()
        .any(|l| l.starts_with("assembly 0.5/0.9,backbone.experts.1.gcn.0.gcn.conv,")));
    for plot in ["accuracy_vs_params.svg", "accuracy_vs_masked.svg"] {
        assert!(std::fs::read_to_string(out.join(plot)).unwrap().contains("assembly"));
    }

    // the assembly's checkpoint evaluates to the sweep's accuracy (fused head, masks at targets)
    let ckpts = out.join("assembly/checkpoints");
    let latest = ckpts.join(std::fs::read_to_string(ckpts.join("latest")).unwrap().trim());
    let eval = Command::new(bin)
        .args(["eval", "--backend", "cpu"])
        .arg(&latest)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&eval.stdout);
    assert!(eval.status.success(), "{text}");
    let expected = format!("top-1 {:.2}%", 100.0 * num("top1"));
    assert!(text.contains(&expected), "{text} lacks {expected}");
    let prune = Command::new(bin)
        .args(["prune", "--sparsity", "0.9"])
        .arg(&latest)
        .output()
        .unwrap();
    assert!(!prune.status.success());
    assert!(String::from_utf8_lossy(&prune.stderr).contains("is an assembly checkpoint"));
}
