//! Finite-difference checks (f64) of the whole model's gradients: every parameter tensor (a few
//! entries each) and the input, for each adaptive-adjacency option, data-BN type and graph mode.

use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::Backend;
use leangcn::layers::params_of;
use leangcn::model::init::InitRng;
use leangcn::model::{Adaptive, DataBnType, GraphMode, Layout, Stgcn, StgcnConfig};

type Be = CpuBackend<f64>;

fn loss(be: &Be, model: &mut Stgcn<Be>, x: &[f64], dims: [usize; 5], labels: &[u32]) -> (f64, Vec<f64>) {
    let classes = model.config.num_classes;
    let logits = model.forward(be, &x.to_vec(), dims, true, 0).unwrap();
    let (mut l, mut dl) = (be.zeros(1), be.zeros(dims[0] * classes));
    be.cross_entropy(dims[0], classes, &logits, &labels.to_vec(), 0.1, &mut l, &mut dl);
    (l[0], dl)
}

fn check(cfg: StgcnConfig) {
    let be = Be::new();
    let dims = [2, cfg.num_person, 8, cfg.layout.num_joints(), cfg.in_channels];
    let mut model = Stgcn::new(&be, cfg.clone(), 3).unwrap();
    let mut rng = InitRng::new(11);
    let x: Vec<f64> = (0..dims.iter().product()).map(|_| rng.normal()).collect();
    let labels = [1u32, 3];
    model.zero_grad(&be);
    let (_, dl) = loss(&be, &mut model, &x, dims, &labels);
    let dx = model.backward(&be, &dl);
    let h = 1e-5;
    let mut worst = 0.0f64;
    let names: Vec<String> = params_of(&mut model).into_iter().map(|(n, _)| n).collect();
    for name in &names {
        let (len, grad) = {
            let ps = params_of(&mut model);
            let p = ps.into_iter().find(|(n, _)| n == name).unwrap().1;
            (p.len(), p.grad.clone())
        };
        for probe in 0..3 {
            let i = (probe * 7919 + 13) % len;
            let mut eval = |delta: f64| {
                let mut ps = params_of(&mut model);
                ps.iter_mut().find(|(n, _)| n == name).unwrap().1.value[i] += delta;
                drop(ps);
                let l = loss(&be, &mut model, &x, dims, &labels).0;
                let mut ps = params_of(&mut model);
                ps.iter_mut().find(|(n, _)| n == name).unwrap().1.value[i] -= delta;
                l
            };
            let numeric = (eval(h) - eval(-h)) / (2.0 * h);
            // relative error, with an absolute floor of 1e-9 (FD rounding ~1e-11) for gradients that
            // are zero by construction (conv biases feeding a training-mode BN)
            let diff = (numeric - grad[i]).abs();
            let scale = numeric.abs().max(grad[i].abs());
            assert!(
                diff <= 1e-5 * scale + 1e-9,
                "{name}[{i}]: analytic {} numeric {numeric} ({cfg:?})",
                grad[i]
            );
            if scale > 1e-6 {
                worst = worst.max(diff / scale);
            }
        }
    }
    for probe in 0..4 {
        let i = (probe * 104_729 + 5) % x.len();
        let mut xp = x.clone();
        xp[i] += h;
        let lp = loss(&be, &mut model, &xp, dims, &labels).0;
        xp[i] -= 2.0 * h;
        let lm = loss(&be, &mut model, &xp, dims, &labels).0;
        let numeric = (lp - lm) / (2.0 * h);
        assert!(
            (numeric - dx[i]).abs() <= 1e-5 * numeric.abs().max(dx[i].abs()) + 1e-9,
            "input[{i}]: {} vs {numeric}",
            dx[i]
        );
    }
    println!(
        "{:?}/{:?}/{:?}: worst relative error {worst:.2e} over {} tensors",
        cfg.adaptive,
        cfg.data_bn,
        cfg.graph_mode,
        names.len()
    );
}

fn small(adaptive: Adaptive, data_bn: DataBnType, graph_mode: GraphMode, layout: Layout) -> StgcnConfig {
    StgcnConfig {
        layout,
        graph_mode,
        adaptive,
        data_bn,
        in_channels: 3,
        base_channels: 4,
        num_stages: 4,
        inflate_stages: vec![3],
        down_stages: vec![3],
        num_classes: 5,
        ..StgcnConfig::default()
    }
}

#[test]
fn importance_vc_stgcn_spatial() {
    check(small(
        Adaptive::Importance,
        DataBnType::Vc,
        GraphMode::StgcnSpatial,
        Layout::NtuRgbd,
    ));
}

#[test]
fn offset_mvc_coco() {
    check(small(
        Adaptive::Offset,
        DataBnType::Mvc,
        GraphMode::StgcnSpatial,
        Layout::Coco,
    ));
}

#[test]
fn spatial_graph_ntu() {
    check(small(
        Adaptive::Importance,
        DataBnType::Vc,
        GraphMode::Spatial,
        Layout::NtuRgbd,
    ));
}

#[test]
fn init_no_data_bn_random_graph_openpose() {
    check(small(
        Adaptive::Init,
        DataBnType::None,
        GraphMode::Random,
        Layout::OpenPose,
    ));
}

#[test]
fn fixed_adjacency_binary_one_subset() {
    let mut cfg = small(Adaptive::None, DataBnType::Vc, GraphMode::BinaryAdj, Layout::NtuRgbd);
    cfg.in_channels = 4; // equal to base_channels: no stage-1 block, PYSKL's 9-block form
    check(cfg);
}

#[test]
fn temporal_dropout_spatial_ntu() {
    // the temporal units drop out between their BN and the block's tail (the unfused forward path;
    // the backward's ReLU mask then follows the dropout's)
    check(StgcnConfig {
        tcn_dropout: 0.3,
        ..small(
            Adaptive::Importance,
            DataBnType::Vc,
            GraphMode::Spatial,
            Layout::NtuRgbd,
        )
    });
}
