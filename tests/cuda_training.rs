//! Whole training steps on the GPU: a step replayed from its recorded graph computes exactly what
//! the eager step computes, and a short run's loss curve and the evaluation logits after it track
//! the CPU backend's, in f32, with the convolutions on TF32 and bf16 tensor cores, and in bf16 mixed
//! precision (bf16-stored activations). Without a GPU each test prints why it was skipped.

mod gpu_support;

use gpu_support::{assert_bits, assert_close, emulated, gpu};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::cuda::CudaBackend;
use leangcn::backend::select::device_precisions;
use leangcn::backend::Backend;
use leangcn::layers::params_of;
use leangcn::model::init::InitRng;
use leangcn::model::Stgcn;
use leangcn::optim::Sgd;
use leangcn::train::step::{train_step, StepGraph};
use leangcn::train::trainer::{export_state, import_state};
use leangcn::train::TrainConfig;

const DIMS: [usize; 5] = [8, 2, 32, 25, 3];
/// On the PTX emulator: fewer samples and frames, the same model.
const EMULATED_DIMS: [usize; 5] = [4, 2, 16, 25, 3];

fn dims(be: &CudaBackend) -> [usize; 5] {
    if emulated(be) {
        EMULATED_DIMS
    } else {
        DIMS
    }
}

/// The `tiny` preset's model and optimizer on `be`, from fixed seeds.
fn setup<B: Backend>(be: &B) -> (TrainConfig, Stgcn<B>, Sgd<B>) {
    let mut cfg = TrainConfig::preset("tiny").unwrap();
    // at the preset's 0.1 the loss of these small random batches jumps from step to step, and
    // any rounding difference (an operand rounded to the neighbouring TF32 or bf16 value) doubles
    // every step; at 0.02 ten steps stay within the allowance below
    cfg.lr = 0.02;
    let mut model = Stgcn::new(be, cfg.model.clone(), 5).unwrap();
    let lens: Vec<usize> = params_of(&mut model).into_iter().map(|(_, p)| p.len()).collect();
    let sgd = Sgd::new(be, cfg.sgd(), cfg.schedule(100), cfg.max_grad_norm, &lens);
    (cfg, model, sgd)
}

/// Batches of `dims` standard-normal clips with labels in the preset's classes.
fn batches(dims: [usize; 5], classes: usize, count: usize) -> Vec<(Vec<f32>, Vec<u32>)> {
    let mut rng = InitRng::new(9);
    (0..count)
        .map(|_| {
            let x = (0..dims.iter().product()).map(|_| rng.normal() as f32).collect();
            let labels = (0..dims[0])
                .map(|_| (rng.uniform() * classes as f64) as u32 % classes as u32)
                .collect();
            (x, labels)
        })
        .collect()
}

fn params<B: Backend<Elem = f32>>(be: &B, model: &mut Stgcn<B>) -> Vec<Vec<f32>> {
    params_of(model)
        .into_iter()
        .map(|(_, p)| be.download(&p.value))
        .collect()
}

#[test]
fn replayed_step_graphs_compute_exactly_the_eager_steps() {
    let Some(be) = gpu("replayed_step_graphs_compute_exactly_the_eager_steps") else {
        return;
    };
    let (cfg, mut eager, mut eager_sgd) = setup(&be);
    let (_, mut graphed, mut graphed_sgd) = setup(&be);
    let mut graph = StepGraph::new(&graphed);
    assert_eq!(graph.eager_reason(), None, "the tiny preset has no dropout");
    let dims = dims(&be);
    let mut x = be.zeros(dims.iter().product());
    let mut labels = be.upload_idx(&vec![0; dims[0]]);
    for (step, (host_x, host_labels)) in batches(dims, cfg.model.num_classes, 6).iter().enumerate() {
        be.upload_into(host_x, &mut x);
        be.upload_idx_into(host_labels, &mut labels);
        let a = train_step(&be, &mut eager, &mut eager_sgd, &x, &labels, dims, 0.1, 0).unwrap();
        let b = graph
            .step(&be, &mut graphed, &mut graphed_sgd, &x, &labels, dims, 0.1, 0)
            .unwrap();
        assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "loss of step {step}");
        assert_eq!(a.logits, b.logits, "logits of step {step}");
    }
    assert!(graph.is_recorded_for(dims), "steps after the first replay a graph");
    assert_eq!(eager_sgd.steps_taken(), graphed_sgd.steps_taken());
    for (i, (a, b)) in params(&be, &mut eager)
        .iter()
        .zip(&params(&be, &mut graphed))
        .enumerate()
    {
        assert_bits(&format!("parameter {i} after 6 steps"), b, a);
    }
    assert_eq!(
        eager.backbone.blocks[0].gcn.bn.num_batches_tracked, graphed.backbone.blocks[0].gcn.bn.num_batches_tracked,
        "BN counters advance on replay"
    );
}

/// In each precision, a short run on the GPU (its steps replayed from the recorded graph) against
/// the CPU in the same precision.
#[test]
fn a_short_run_tracks_the_cpu_loss_curve() {
    for (precision, math, storage) in device_precisions() {
        let be = match CudaBackend::open_with_precision(0, math, storage) {
            Ok(be) => be,
            Err(e) => {
                println!(
                    "skipped {}_run_tracks_the_cpu_loss_curve: {e}",
                    precision.replace('-', "_")
                );
                continue;
            }
        };
        let cpu = CpuBackend::<f32>::with_precision(math, storage);
        let (cfg, mut gpu_model, mut gpu_sgd) = setup(&be);
        let (_, mut cpu_model, mut cpu_sgd) = setup(&cpu);
        let mut graph = StepGraph::new(&gpu_model);
        let dims = dims(&be);
        let (mut gpu_losses, mut cpu_losses) = (Vec::new(), Vec::new());
        for (x, labels) in batches(dims, cfg.model.num_classes, 10) {
            let (gx, gl) = (be.upload(&x), be.upload_idx(&labels));
            let g = graph.step(&be, &mut gpu_model, &mut gpu_sgd, &gx, &gl, dims, 0.0, 0);
            gpu_losses.push(g.unwrap().loss as f32);
            let c = train_step(&cpu, &mut cpu_model, &mut cpu_sgd, &x, &labels, dims, 0.0, 0);
            cpu_losses.push(c.unwrap().loss as f32);
        }
        println!("{precision}: GPU losses {gpu_losses:?}\n{precision}: CPU losses {cpu_losses:?}");
        // f32 sums in another order drift apart over steps (as PyTorch's own f32 runs do, see the
        // golden README): 1e-3 relative over ten steps of lr 0.1. With rounded operands a sum that
        // differs in its last f32 bit can round to the neighbouring TF32 or bf16 value, a change
        // of 2u relative in that operand (or a stored bf16 activation): 4u more (u the unit
        // roundoff) allows for that.
        let u = math.unit_roundoff().max(storage.unit_roundoff());
        let tolerance = (1e-3 + 4.0 * u) as f32;
        assert_close(
            &format!("{precision} loss curve"),
            &gpu_losses,
            &cpu_losses,
            tolerance,
            0.0,
        );

        // then the evaluation forward (on the GPU, every batch norm runs in the epilogue of the
        // conv or aggregation before it) of the same model: the CPU's, whose parameters and
        // running statistics the GPU's takes over (the two have drifted apart by the allowance
        // above, which a forward would amplify: a comparison of the two would not test the
        // forward), with the same allowance relative to the logits' scale
        let state = export_state(&cpu, &mut cpu_model, &mut cpu_sgd);
        import_state(
            &be,
            &state,
            &mut gpu_model,
            None,
            std::path::Path::new("the CPU's model"),
        )
        .unwrap();
        let (x, _) = &batches(dims, cfg.model.num_classes, 1)[0];
        let gpu_logits = gpu_model.forward(&be, &be.upload(x), dims, false, 0).unwrap();
        let gpu_logits = be.download(&gpu_logits);
        be.check().expect("the GPU evaluation forward failed");
        let cpu_logits = cpu_model.forward(&cpu, x, dims, false, 0).unwrap();
        let scale = cpu_logits.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let what = format!("{precision} evaluation logits");
        assert_close(&what, &gpu_logits, &cpu_logits, tolerance, tolerance * scale);
    }
}
