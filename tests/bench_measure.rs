//! The measurement API against hand counts: PYSKL's ST-GCN parameters and MACs, the kept parameters
//! and effective MACs of masked models, the activation bytes the layers keep for the backward, and
//! the command-line contracts of `bench --count-only` and `bench --sweep`.

use std::process::Command;

use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::{Backend, Scalar};
use leangcn::bench::count::ModelCost;
use leangcn::bench::report::measure_model;
use leangcn::bench::Repeats;
use leangcn::layers::params_of;
use leangcn::model::config::ResidualKind;
use leangcn::model::{BlockWidths, Stgcn, StgcnConfig};
use leangcn::sparse::lottery::{prune_by_magnitude, PruneScope};
use leangcn::sparse::semi_structured::prune_n_of_m;

/// A small ST-GCN with every block kind: no residual, identity and strided conv residuals.
fn small_config() -> StgcnConfig {
    StgcnConfig {
        base_channels: 8,
        num_stages: 6,
        inflate_stages: vec![3, 5],
        down_stages: vec![3, 5],
        num_classes: 5,
        ..StgcnConfig::default()
    }
}

fn stored_params<B: Backend>(model: &mut Stgcn<B>) -> u64 {
    params_of(model)
        .into_iter()
        .filter(|(name, _)| !name.ends_with("weight_score"))
        .map(|(_, p)| p.len() as u64)
        .sum()
}

/// PYSKL's ST-GCN for NTU-60 has 3,098,832 parameters and 5,697,615,360 forward MACs per 2-person
/// sample at 100 frames (PyTorch's FLOP counter: 11.40 GFLOP, twice that). This is mmaction2's
/// "5.7G": the count covers the convs, the dense V×V graph aggregation and the classifier; BN,
/// ReLU, the residual adds and pooling (about 0.4% more as FLOPs) are not counted.
#[test]
fn stgcn_counts_match_the_hand_counts() {
    let cfg = StgcnConfig::default();
    let cost = ModelCost::of(&cfg, 100);
    assert_eq!(cost.params(), 3_098_832);
    assert_eq!(cost.macs(), 5_697_615_360);
    assert!((cost.macs() as f64 / 1e9 - 5.7).abs() < 0.01);
    assert_eq!(ModelCost::of(&cfg, 64).macs(), 3_646_479_360);
    // hand count of block 4 (64 -> 128, stride 2, conv residual) at T = 100, M = 2, V = 25
    let layer = |name: &str| cost.layers.iter().find(|l| l.name == name).unwrap();
    let (m, v) = (2u64, 25u64);
    assert_eq!(
        layer("backbone.gcn.4.gcn").macs,
        m * 100 * v * 64 * 3 * 128 + m * 3 * 128 * 100 * v * v
    );
    assert_eq!(layer("backbone.gcn.4.tcn").macs, m * 50 * v * 128 * 9 * 128);
    assert_eq!(layer("backbone.gcn.4.residual").macs, m * 50 * v * 64 * 128);
    assert_eq!(
        layer("backbone.gcn.4.gcn").params
            + layer("backbone.gcn.4.tcn").params
            + layer("backbone.gcn.4.residual").params,
        183_507
    );
    // the built model holds exactly the counted parameters
    let be = CpuBackend::<f32>::new();
    let mut model = Stgcn::new(&be, cfg, 0).unwrap();
    assert_eq!(
        ModelCost::of_model(&be, &model, 100).params(),
        stored_params(&mut model)
    );
    assert_eq!(ModelCost::of_model(&be, &model, 100).kept_params(), 3_098_832);
}

#[test]
fn counts_follow_widths_and_masks() {
    let be = CpuBackend::<f32>::new();
    // any widths: the counts still equal the built model's parameters
    let mut cfg = small_config();
    let widths = [(5, 7), (3, 7), (9, 11), (2, 11), (4, 6), (1, 6)];
    cfg.widths = Some(widths.iter().map(|&(mid, out)| BlockWidths { mid, out }).collect());
    let mut model = Stgcn::new(&be, cfg.clone(), 0).unwrap();
    let cost = ModelCost::of_model(&be, &model, 16);
    assert_eq!(cost.params(), stored_params(&mut model));
    assert_eq!(cost.params(), cost.kept_params());
    let tcn2 = cost.layers.iter().find(|l| l.name == "backbone.gcn.2.tcn").unwrap();
    assert_eq!(
        tcn2.macs,
        2 * 8 * 25 * 9 * 9 * 11,
        "block 2: 9 -> 11 channels, 16 -> 8 frames"
    );

    // unstructured: kept parameters drop by the masked-out weights, conv MACs scale by density
    let mut model = Stgcn::new(&be, small_config(), 0).unwrap();
    let dense = ModelCost::of_model(&be, &model, 16);
    prune_by_magnitude(&be, &mut model, 0.8, PruneScope::Global);
    let masked = ModelCost::of_model(&be, &model, 16);
    let mut zeros = 0u64;
    for block in &model.backbone.blocks {
        for conv in block.convs_ref() {
            let mask = be.download(&conv.mask.as_ref().unwrap().mask().value);
            zeros += mask.iter().filter(|m| m.as_f64() == 0.0).count() as u64;
        }
    }
    assert_eq!(masked.params(), dense.params());
    assert_eq!(masked.kept_params(), dense.params() - zeros);
    for (d, m) in dense.layers.iter().zip(&masked.layers) {
        let kept = m.conv_weights - (m.params - m.kept_params);
        let expected = (d.macs - d.conv_macs) as f64 + d.conv_macs as f64 * kept as f64 / d.conv_weights.max(1) as f64;
        assert!((m.effective_macs as f64 - expected).abs() <= 0.5, "{}", m.name);
    }
    assert!(masked.effective_macs() < dense.macs());
    // the sparsity accounting of the same model agrees with the per-layer table
    let measured = leangcn::sparse::accounting::measure(&be, &mut model, 16);
    assert_eq!(measured.dense_macs, dense.macs());
    assert_eq!(measured.effective_macs, masked.effective_macs(), "effective MACs");

    // 2:4: every temporal conv (rows of 9·c_mid, a multiple of 4) costs exactly half
    let mut model = Stgcn::new(&be, small_config(), 0).unwrap();
    prune_n_of_m(&be, &mut model, 2, 4).unwrap();
    let half = ModelCost::of_model(&be, &model, 16);
    for (d, h) in dense.layers.iter().zip(&half.layers) {
        if h.name.ends_with(".tcn") {
            assert_eq!(2 * h.effective_macs, d.macs, "{}", h.name);
        }
    }
    for block in &model.backbone.blocks {
        for conv in block.convs_ref() {
            let mask = be.download(&conv.mask.as_ref().unwrap().mask().value);
            for group in mask.chunks(conv.c_in * conv.kt).flat_map(|row| row.chunks(4)) {
                let kept = group.iter().filter(|m| m.as_f64() != 0.0).count();
                assert_eq!(kept, group.len().min(2));
            }
        }
    }
}

/// Per layer, the bytes the report gives are what the layers hold for the backward: the graph unit
/// keeps its conv output z (k·c_mid channels), the aggregation output and its own output (c_mid
/// each), the adjacency and the BN statistics; a temporal unit its conv output, the block output
/// and the BN statistics; a residual conv its conv output and BN statistics.
#[test]
fn saved_activations_and_times_are_reported() {
    let be = CpuBackend::<f32>::new();
    let cfg = small_config();
    let mut model = Stgcn::new(&be, cfg.clone(), 0).unwrap();
    let before: Vec<f32> = be.download(&model.backbone.blocks[1].tcn.conv.weight.value);
    let (batch, clip) = (3, 16);
    let repeats = Repeats {
        warmup: 1,
        iters: 1,
        per_layer: true,
    };
    let report = measure_model(&be, &mut model, batch, clip, repeats).unwrap();
    assert_eq!(report.element_bytes, 4);
    let nm = (batch * cfg.num_person) as u64;
    let (k, v) = (3u64, 25u64);
    let bytes = |name: &str| report.layers.iter().find(|l| l.cost.name == name).unwrap().saved_bytes;
    let mut t = clip as u64;
    for (i, b) in cfg.blocks().iter().enumerate() {
        let (cm, co) = (b.c_mid as u64, b.c_out as u64);
        let t_out = t.div_ceil(b.stride as u64);
        let gcn = nm * (k + 2) * cm * t * v + k * v * v + 2 * cm;
        assert_eq!(bytes(&format!("backbone.gcn.{i}.gcn")), 4 * gcn, "block {i} graph unit");
        let tcn = nm * 2 * co * t_out * v + 2 * co;
        assert_eq!(
            bytes(&format!("backbone.gcn.{i}.tcn")),
            4 * tcn,
            "block {i} temporal unit"
        );
        if b.residual == ResidualKind::Conv {
            let res = nm * co * t_out * v + 2 * co;
            assert_eq!(
                bytes(&format!("backbone.gcn.{i}.residual")),
                4 * res,
                "block {i} residual"
            );
        }
        t = t_out;
    }
    let data = nm * clip as u64 * v * 3;
    assert_eq!(bytes("backbone.data_bn"), 4 * (2 * data + 2 * 75));
    assert_eq!(bytes("cls_head.fc_cls"), 4 * batch as u64 * 32);
    let tp = &report.throughput;
    assert!(tp.forward_seconds > 0.0 && tp.step_seconds > tp.forward_seconds);
    assert_eq!(tp.batch, batch);
    // per-layer times: the data stage, every block and the head, each with both passes, in order
    let names: Vec<&str> = tp.layer_times.iter().map(|l| l.name.as_str()).collect();
    let mut want = vec!["backbone.data_bn".to_string()];
    want.extend((0..cfg.blocks().len()).map(|i| format!("backbone.gcn.{i}")));
    want.push("cls_head".into());
    assert_eq!(names, want);
    for l in &tp.layer_times {
        assert!(l.forward_seconds > 0.0 && l.backward_seconds > 0.0, "{l:?}");
    }
    let layers: f64 = tp
        .layer_times
        .iter()
        .map(|l| l.forward_seconds + l.backward_seconds)
        .sum();
    assert!(
        layers < 10.0 * tp.step_seconds,
        "clocked layers {layers} s vs step {} s",
        tp.step_seconds
    );
    assert!(report.to_string().contains("| backbone.gcn.0 |"), "{report}");
    // measuring trains on random data but puts the model back as it was
    assert_eq!(be.download(&model.backbone.blocks[1].tcn.conv.weight.value), before);
    assert_eq!(model.backbone.blocks[1].tcn.bn.num_batches_tracked, 0);
}

#[test]
fn count_only_prints_the_table_without_running() {
    let out = Command::new(env!("CARGO_BIN_EXE_leangcn"))
        .args([
            "bench",
            "--count-only",
            "--preset",
            "stgcn",
            "--classes",
            "60",
            "--clip-len",
            "100",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("| backbone.gcn.9.tcn | 590592 |"), "{text}");
    assert!(
        text.contains("**3098832**") && text.contains("**5697.6** (11.40 GFLOP)"),
        "{text}"
    );
}

/// `leangcn bench --sweep` writes one row per configuration, batch size and clip length, with the
/// channel kind really smaller and 2:4 at half the backbone conv weights, and a plot per setting.
#[test]
fn sweep_writes_tables_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let status = Command::new(env!("CARGO_BIN_EXE_leangcn"))
        .args([
            "bench",
            "--sweep",
            "--backend",
            "cpu",
            "--preset",
            "tiny",
            "--sparsity",
            "0,0.5",
            "--kinds",
            "unstructured,channel,2:4",
            "--batch",
            "2",
            "--clip-len",
            "16,32",
            "--warmup",
            "0",
            "--iters",
            "1",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let csv = std::fs::read_to_string(out.join("bench.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r[col("kind")]).collect();
    assert_eq!(
        kinds,
        [
            "dense",
            "dense",
            "unstructured",
            "unstructured",
            "channel",
            "channel",
            "2:4",
            "2:4"
        ]
    );
    let num = |r: &Vec<&str>, c: &str| r[col(c)].parse::<f64>().unwrap();
    let dense = &rows[0];
    for r in &rows {
        assert!(num(r, "step_samples_per_sec") > 0.0);
        assert!(num(r, "effective_macs") <= num(r, "dense_macs"));
    }
    let channel = &rows[4];
    assert!(num(channel, "params") < 0.5 * num(dense, "params"));
    assert_eq!(num(channel, "params"), num(channel, "kept_params"));
    assert!(num(channel, "saved_bytes") < num(dense, "saved_bytes"));
    let two_four = &rows[6];
    assert_eq!(num(two_four, "level"), 0.5);
    assert!(num(two_four, "kept_params") < 0.6 * num(dense, "params"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 8);
    assert!(json[4]["report"]["layers"][1]["saved_bytes"].as_u64().unwrap() > 0);
    assert!(std::fs::read_to_string(out.join("bench.md"))
        .unwrap()
        .contains("| channel | 0.5 |"));
    for t in [16, 32] {
        let svg = std::fs::read_to_string(out.join(format!("throughput_b2_t{t}.svg"))).unwrap();
        assert!(svg.contains("ideal (proportional)") && svg.contains("channel"));
    }
}
