//! Channel compaction: the compacted model gives the logits of the dense model with the same
//! channels masked out (f32, 1e-5, in evaluation and training mode), has the smaller widths in its
//! configuration, holds no masks, trains, and its checkpoint from `leangcn prune --channels` loads
//! and evaluates.

use std::path::Path;
use std::process::{Command, Stdio};

use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::Backend;
use leangcn::bench::count::ModelCost;
use leangcn::layers::{params_of, DataDims};
use leangcn::model::{SparseSpec, Stgcn, StgcnConfig};
use leangcn::optim::Sgd;
use leangcn::sparse::compact::{compact, mask_channels, plan_by_criterion, plan_from_masks, ChannelCriterion};
use leangcn::sparse::lottery::{prune_by_magnitude, PruneScope};
use leangcn::train::checkpoint::{load_checkpoint, CheckpointDir};
use leangcn::train::step::train_step;
use leangcn::train::trainer::{export_state, import_state, RunState};
use leangcn::train::TrainConfig;

type Be = CpuBackend<f32>;
const DIMS: DataDims = [3, 2, 16, 25, 3];

/// Every block kind: no residual (3 -> 8), identity, strided conv residual (8 -> 16, 16 -> 32).
fn config() -> StgcnConfig {
    StgcnConfig {
        base_channels: 8,
        num_stages: 6,
        inflate_stages: vec![3, 5],
        down_stages: vec![3, 5],
        num_classes: 5,
        ..StgcnConfig::default()
    }
}

fn input(be: &Be, seed: u64) -> (<Be as Backend>::Buf, <Be as Backend>::IdxBuf) {
    let mut rng = leangcn::model::init::InitRng::new(seed);
    let x: Vec<f32> = (0..DIMS.iter().product()).map(|_| rng.normal() as f32).collect();
    let labels: Vec<u32> = (0..DIMS[0] as u32).collect();
    (be.upload(&x), be.upload_idx(&labels))
}

fn sgd(be: &Be, model: &mut Stgcn<Be>) -> Sgd<Be> {
    let cfg = TrainConfig::default();
    let lens: Vec<usize> = params_of(model).into_iter().map(|(_, p)| p.len()).collect();
    Sgd::new(be, cfg.sgd(), cfg.schedule(1000), None, &lens)
}

/// A model after a few SGD steps on random data, so weights, BN scales and running statistics are
/// all away from their initial values.
fn trained_model(be: &Be) -> Stgcn<Be> {
    let mut model = Stgcn::new(be, config(), 7).unwrap();
    let mut opt = sgd(be, &mut model);
    for step in 0..3 {
        let (x, labels) = input(be, 100 + step);
        train_step(be, &mut model, &mut opt, &x, &labels, DIMS, 0.0, 0).unwrap();
    }
    model
}

/// A second model with `model`'s state.
fn copy_of(be: &Be, model: &mut Stgcn<Be>) -> Stgcn<Be> {
    let cfg = TrainConfig::default();
    let mut none = Sgd::new(be, cfg.sgd(), cfg.schedule(1), None, &[]);
    let state = export_state(be, model, &mut none);
    let mut copy = Stgcn::new(be, model.config.clone(), 0).unwrap();
    leangcn::sparse::lottery::attach_fixed_masks(be, &mut copy, &state);
    import_state(be, &state, &mut copy, None, Path::new("copy")).unwrap();
    copy
}

fn logits(be: &Be, model: &mut Stgcn<Be>, train: bool) -> Vec<f32> {
    let (x, _) = input(be, 1);
    be.download(&model.forward(be, &x, DIMS, train, 0).unwrap())
}

fn assert_close(a: &[f32], b: &[f32], what: &str) {
    let scale = a.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let err = a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(err <= 1e-5 * scale, "{what}: logits differ by {err} (scale {scale})");
}

#[test]
fn compacted_model_matches_the_channel_masked_model() {
    let be = Be::new();
    let mut model = trained_model(&be);
    let full = ModelCost::of_model(&be, &model, 16);
    for criterion in [ChannelCriterion::L1, ChannelCriterion::L2, ChannelCriterion::BnScale] {
        let plan = plan_by_criterion(&be, &mut model, criterion, 0.5).unwrap();
        // half of every group: internal widths 8, 8, 16, 16, 32, 32; streams of 8, 16, 32
        let sizes: Vec<usize> = plan.internal.iter().map(Vec::len).collect();
        assert_eq!(sizes, [4, 4, 8, 8, 16, 16], "{criterion}");
        let sizes: Vec<usize> = plan.streams.iter().map(Vec::len).collect();
        assert_eq!(sizes, [4, 8, 16], "{criterion}");

        let mut small = compact(&be, &mut model, &plan).unwrap();
        let mut masked = copy_of(&be, &mut model);
        mask_channels(&be, &mut masked, &plan).unwrap();
        assert_eq!(plan_from_masks(&be, &mut masked).unwrap(), plan, "{criterion}");
        for train in [false, true] {
            let expected = logits(&be, &mut masked, train);
            assert_close(
                &logits(&be, &mut small, train),
                &expected,
                &format!("{criterion}, train {train}"),
            );
        }
        // the removed channels mattered: the unmasked model's logits are elsewhere
        let original = logits(&be, &mut model, false);
        let expected = logits(&be, &mut masked, false);
        let moved = original
            .iter()
            .zip(&expected)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            moved > 1e-3,
            "{criterion}: removing half the channels moved the logits by {moved}"
        );

        // the smaller model records its widths, holds no masks and counts what it stores
        let widths = small.config.widths.clone().expect("compacted widths");
        assert_eq!(widths.iter().map(|w| w.out).collect::<Vec<_>>(), [4, 4, 8, 8, 16, 16]);
        assert!(small
            .backbone
            .blocks
            .iter()
            .all(|b| b.convs_ref().iter().all(|c| c.mask.is_none())));
        let cost = ModelCost::of_model(&be, &small, 16);
        let stored: u64 = params_of(&mut small).into_iter().map(|(_, p)| p.len() as u64).sum();
        assert_eq!(cost.params(), stored);
        assert!(cost.params() < full.params() / 2 && cost.macs() < full.macs() / 2);

        // and trains
        let mut opt = sgd(&be, &mut small);
        let (x, labels) = input(&be, 5);
        let before = be.download(&small.backbone.blocks[2].tcn.conv.weight.value);
        let out = train_step(&be, &mut small, &mut opt, &x, &labels, DIMS, 0.0, 0).unwrap();
        assert!(out.loss.is_finite());
        assert_ne!(be.download(&small.backbone.blocks[2].tcn.conv.weight.value), before);
    }
}

#[test]
fn compaction_keeps_unstructured_masks_and_drops_dead_channels() {
    let be = Be::new();
    let mut model = trained_model(&be);
    prune_by_magnitude(&be, &mut model, 0.5, PruneScope::Global);
    let plan = plan_by_criterion(&be, &mut model, ChannelCriterion::L2, 0.75).unwrap();
    let mut small = compact(&be, &mut model, &plan).unwrap();
    assert!(small
        .backbone
        .blocks
        .iter()
        .any(|b| b.convs_ref().iter().any(|c| c.mask.is_some())));
    let mut masked = copy_of(&be, &mut model);
    mask_channels(&be, &mut masked, &plan).unwrap();
    assert_close(
        &logits(&be, &mut small, false),
        &logits(&be, &mut masked, false),
        "masked",
    );
    let kept = |be: &Be, m: &Stgcn<Be>| ModelCost::of_model(be, m, 16).kept_params();
    assert!(kept(&be, &small) <= kept(&be, &masked));

    // a model whose masks remove whole channels compacts to the channels they leave
    let found = plan_from_masks(&be, &mut masked).unwrap();
    let mut again = compact(&be, &mut masked, &found).unwrap();
    assert_eq!(again.config.widths, small.config.widths);
    assert_close(
        &logits(&be, &mut again, false),
        &logits(&be, &mut small, false),
        "from masks",
    );
}

#[test]
fn bad_plans_and_learned_masks_are_refused() {
    let be = Be::new();
    let mut model = Stgcn::new(&be, config(), 0).unwrap();
    let err = plan_by_criterion(&be, &mut model, ChannelCriterion::L1, 0.0).unwrap_err();
    assert!(err.to_string().contains("(0, 1]"), "{err}");
    let mut plan = plan_by_criterion(&be, &mut model, ChannelCriterion::L1, 1.0).unwrap();
    plan.internal[3] = vec![2, 1];
    let err = compact(&be, &mut model, &plan)
        .err()
        .expect("a bad plan is refused")
        .to_string();
    assert!(err.contains("block 3's internal channels must be ascending"), "{err}");
    let sparse = StgcnConfig {
        sparse: Some(SparseSpec::default()),
        ..config()
    };
    let mut model = Stgcn::new(&be, sparse, 0).unwrap();
    let err = plan_by_criterion(&be, &mut model, ChannelCriterion::L1, 0.5).unwrap_err();
    assert!(err.to_string().contains("learned mask"), "{err}");
    assert!("l3"
        .parse::<ChannelCriterion>()
        .unwrap_err()
        .to_string()
        .contains("l1, l2 or bn"));
}

/// `leangcn prune CKPT --channels 0.5 --criterion bn` writes a checkpoint whose configuration has
/// the smaller widths; it loads, and `leangcn eval` runs it.
#[test]
fn prune_channels_writes_a_smaller_checkpoint_that_evaluates() {
    let bin = env!("CARGO_BIN_EXE_leangcn");
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let status = Command::new(bin)
        .args([
            "train",
            "--backend",
            "cpu",
            "--quiet",
            "--preset",
            "tiny",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--clip-len",
            "16",
            "--set",
            "data.synthetic_samples_per_class=4",
            "--run-dir",
        ])
        .arg(&run_dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let ckpt = CheckpointDir::new(&run_dir.join("checkpoints"), 2)
        .unwrap()
        .latest()
        .unwrap()
        .unwrap();
    let pruned = dir.path().join("small.safetensors");
    let out = Command::new(bin)
        .args(["prune", "--channels", "0.5", "--criterion", "bn", "-o"])
        .arg(&pruned)
        .arg(&ckpt)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("block widths (internal/output) 8/8 8/8 16/16"), "{text}");

    let (tensors, json) = load_checkpoint(&pruned).unwrap();
    let state: RunState = serde_json::from_value(json).unwrap();
    let widths = state.config.model.widths.clone().expect("widths in the configuration");
    assert_eq!(widths.iter().map(|w| w.mid).collect::<Vec<_>>(), [8, 8, 16, 16, 32, 32]);
    let be = Be::new();
    let mut model = Stgcn::new(&be, state.config.model.clone(), 0).unwrap();
    import_state(&be, &tensors, &mut model, None, &pruned).unwrap();
    let stored: u64 = params_of(&mut model).into_iter().map(|(_, p)| p.len() as u64).sum();
    assert!(text.contains(&format!("of {stored} parameters kept")), "{text}");

    let eval = Command::new(bin)
        .args(["eval", "--backend", "cpu"])
        .arg(&pruned)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&eval.stdout);
    assert!(eval.status.success() && text.contains("top-1"), "{text}");
}
