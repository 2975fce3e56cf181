//! The experiment runner behind `leangcn sweep`: trains the dense model and, for every sparsity, the
//! sparse generator (learned masks), optionally lottery tickets (iterative magnitude pruning with
//! rewinding to initialisation) and optionally the multi-level sparsity assembly of one expert per
//! nonzero sparsity, then writes a table (Markdown and CSV) of accuracy, kept parameters (both
//! ways, see [`super::accounting`]), effective FLOPs and training time, the per-layer mask
//! densities, and plots of accuracy against kept parameters.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::accounting::measure;
use super::assembly::{AssemblyConfig, REFERENCE_MAX_GRAD_NORM};
use super::lottery::{attach_fixed_masks, prune_by_magnitude, rewind, PruneScope};
use super::SparsitySchedule;
use crate::backend::Backend;
use crate::data::ClipDataset;
use crate::layers::{Entry, Module};
use crate::model::{SparseSpec, Stgcn};
use crate::train::checkpoint::{load_checkpoint, write_atomic, NamedTensor};
use crate::train::model::{build_model, set_sparsities};
use crate::train::plot::{plot_lines, Series};
use crate::train::trainer::{export_state, import_state, train, RunOptions};
use crate::train::TrainConfig;
use crate::{Error, Result};

/// What to sweep.
pub struct SweepOptions {
    pub base: TrainConfig,
    pub sparsities: Vec<f64>,
    /// Rounds of iterative magnitude pruning per lottery ticket; `None` skips lottery tickets.
    pub lottery_rounds: Option<usize>,
    /// Dense epochs before the generator's masks take effect, as a fraction of all epochs (the
    /// reference: 60 of 100).
    pub warmup_fraction: f64,
    /// Also train the assembly of one expert per nonzero sparsity.
    pub assemble: bool,
    /// The assembly's dense warm-up as a fraction of the epochs (the reference: 80 of 100).
    pub assemble_warmup_fraction: f64,
    pub out: PathBuf,
    pub quiet: bool,
}

/// One trained configuration.
#[derive(Clone, Debug, Serialize)]
pub struct SweepRow {
    pub method: String,
    /// The target sparsity (an assembly: the fraction of its maskable weights that its experts'
    /// targets mask out, their mean).
    pub sparsity: f64,
    /// The experts' sparsities of an assembly (`0.6/0.8/...`), empty otherwise.
    pub experts: String,
    pub top1: f64,
    pub top5: f64,
    /// Parameters of the deployed model: kept masked weights plus every unmasked parameter
    /// (scores excluded: they only exist during training).
    pub kept_params: usize,
    pub total_params: usize,
    /// Kept and total maskable conv weights (the paper's way of counting).
    pub kept_masked: usize,
    pub maskable: usize,
    /// Kept masked weights over one dense backbone's maskable weights (the paper's fraction), and
    /// kept parameters over the dense single model's.
    pub masked_of_dense: f64,
    pub params_of_dense: f64,
    /// Forward multiply-adds per sample of a prediction with pruned weights skipped, and dense.
    pub effective_macs: u64,
    pub dense_macs: u64,
    pub train_seconds: f64,
}

/// Per-layer densities of one configuration's final masks.
struct Densities {
    label: String,
    layers: Vec<(String, usize, f64)>,
}

/// Trains one configuration in `dir` and measures its final model with the masks it evaluates with.
#[allow(clippy::too_many_arguments)]
fn run_one<B: Backend>(
    be: &B,
    cfg: &TrainConfig,
    data: (Arc<dyn ClipDataset>, Arc<dyn ClipDataset>),
    dir: &Path,
    init_state: Option<Vec<NamedTensor>>,
    method: &str,
    sparsity: f64,
    quiet: bool,
) -> Result<(SweepRow, Densities, Vec<NamedTensor>)> {
    let opts = RunOptions {
        run_dir: dir.to_path_buf(),
        resume: false,
        max_steps: None,
        quiet,
        init_state: init_state.clone(),
        profile_steps: None,
    };
    let _ = std::fs::remove_dir_all(dir);
    let summary = train(be, cfg, data.0, data.1, &opts)?;
    let last = summary
        .metrics
        .last()
        .ok_or_else(|| Error::config("the sweep needs at least one epoch"))?;
    let (tensors, _) = load_checkpoint(&summary.final_checkpoint)?;
    let mut model = build_model(be, cfg)?;
    if let Some(init) = &init_state {
        attach_fixed_masks(be, model.as_mut(), init);
    }
    import_state(be, &tensors, model.as_mut(), None, &summary.final_checkpoint)?;
    set_sparsities(model.as_mut(), cfg, None);
    for (_, backbone) in model.backbones_mut() {
        backbone.update_masks(be);
    }
    let m = measure(be, model.as_mut(), cfg.clip_len);
    let experts = cfg.assembly.as_ref().map_or(String::new(), |a| {
        let levels: Vec<String> = a.targets().iter().map(f64::to_string).collect();
        levels.join("/")
    });
    let row = SweepRow {
        method: method.to_string(),
        sparsity,
        experts,
        top1: last.val_top1,
        top5: last.val_top5,
        kept_params: m.params.kept_params,
        total_params: m.params.total_params,
        kept_masked: m.params.kept_masked,
        maskable: m.params.maskable,
        masked_of_dense: m.params.masked_fraction(),
        params_of_dense: m.params.params_fraction(),
        effective_macs: m.effective_macs,
        dense_macs: m.dense_macs,
        train_seconds: summary.metrics.iter().map(|m| m.seconds).sum(),
    };
    if !quiet {
        eprintln!(
            "{method} at sparsity {sparsity}: top-1 {:.2}%, {} of {} parameters kept",
            100.0 * row.top1,
            row.kept_params,
            row.total_params
        );
    }
    let label = if row.experts.is_empty() {
        format!("{method} {sparsity}")
    } else {
        format!("{method} {}", row.experts)
    };
    Ok((
        row,
        Densities {
            label,
            layers: m.densities,
        },
        tensors,
    ))
}

/// Runs the sweep and writes its outputs into `opts.out`.
pub fn run_sweep<B: Backend>(
    be: &B,
    opts: &SweepOptions,
    data: (Arc<dyn ClipDataset>, Arc<dyn ClipDataset>),
) -> Result<Vec<SweepRow>> {
    if let Some(s) = opts.sparsities.iter().find(|s| !(0.0..1.0).contains(*s)) {
        return Err(Error::config(format!("sparsity {s} outside [0, 1)")));
    }
    let levels: Vec<f64> = opts.sparsities.iter().copied().filter(|&s| s > 0.0).collect();
    if opts.assemble && levels.is_empty() {
        return Err(Error::config(
            "--assemble needs at least one nonzero sparsity (one expert per level)",
        ));
    }
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::io(&opts.out, e))?;
    let mut rows = Vec::new();
    let mut densities = Vec::new();
    let mut dense_final: Option<Vec<NamedTensor>> = None;
    let needs_dense = opts.sparsities.contains(&0.0) || opts.lottery_rounds.is_some();
    let warmup = |fraction: f64| (fraction * opts.base.epochs as f64).floor() as usize;
    if needs_dense {
        let mut cfg = opts.base.clone();
        cfg.model.sparse = None;
        cfg.sparsity = None;
        let (row, d, tensors) = run_one(
            be,
            &cfg,
            data.clone(),
            &opts.out.join("dense"),
            None,
            "dense",
            0.0,
            opts.quiet,
        )?;
        if opts.sparsities.contains(&0.0) {
            rows.push(row);
            densities.push(d);
        }
        dense_final = Some(tensors);
    }
    for &s in &levels {
        let mut cfg = opts.base.clone();
        cfg.model.sparse = Some(SparseSpec::default());
        cfg.sparsity = Some(SparsitySchedule {
            target: s,
            warmup_epochs: warmup(opts.warmup_fraction),
            ramp: false,
        });
        let (row, d, _) = run_one(
            be,
            &cfg,
            data.clone(),
            &opts.out.join(format!("generator-{s}")),
            None,
            "generator",
            s,
            opts.quiet,
        )?;
        rows.push(row);
        densities.push(d);

        if let (Some(rounds), Some(dense)) = (opts.lottery_rounds, &dense_final) {
            let (row, d) = lottery_ticket(be, opts, data.clone(), dense, s, rounds)?;
            rows.push(row);
            densities.push(d);
        }
    }
    if opts.assemble {
        let mut cfg = opts.base.clone();
        cfg.model.sparse = Some(SparseSpec::default());
        cfg.sparsity = None;
        cfg.assembly = Some(AssemblyConfig::levels(&levels, warmup(opts.assemble_warmup_fraction)));
        cfg.max_grad_norm = cfg.max_grad_norm.or(Some(REFERENCE_MAX_GRAD_NORM));
        let mean_sparsity = levels.iter().sum::<f64>() / levels.len() as f64;
        let (row, d, _) = run_one(
            be,
            &cfg,
            data.clone(),
            &opts.out.join("assembly"),
            None,
            "assembly",
            mean_sparsity,
            opts.quiet,
        )?;
        rows.push(row);
        densities.push(d);
    }
    write_outputs(opts, &rows, &densities)?;
    Ok(rows)
}

/// A lottery ticket at sparsity `s`: `rounds` rounds of global magnitude pruning from the trained
/// dense model, each rewinding the survivors to initialisation and retraining.
fn lottery_ticket<B: Backend>(
    be: &B,
    opts: &SweepOptions,
    data: (Arc<dyn ClipDataset>, Arc<dyn ClipDataset>),
    dense: &[NamedTensor],
    s: f64,
    rounds: usize,
) -> Result<(SweepRow, Densities)> {
    let mut cfg = opts.base.clone();
    cfg.model.sparse = None;
    cfg.sparsity = None;
    // prune a fraction q of the survivors per round so that `rounds` rounds reach s
    let q = 1.0 - (1.0 - s).powf(1.0 / rounds.max(1) as f64);
    let mut trained = dense.to_vec();
    let mut last = None;
    for round in 1..=rounds.max(1) {
        let mut model = Stgcn::new(be, cfg.model.clone(), cfg.seed)?;
        attach_fixed_masks(be, &mut model, &trained);
        import_state(be, &trained, &mut model, None, &opts.out)?;
        prune_by_magnitude(be, &mut model, q, PruneScope::Global);
        // rewind the survivors to their initial values (a fresh model of the same seed)
        let mut fresh = Stgcn::new(be, cfg.model.clone(), cfg.seed)?;
        let init: Vec<(String, Vec<f64>)> = {
            let mut entries = Vec::new();
            fresh.entries("", &mut entries);
            entries
                .into_iter()
                .filter_map(|e| match e {
                    Entry::Param(n, p) => Some((
                        n,
                        be.download(&p.value)
                            .into_iter()
                            .map(crate::backend::Scalar::as_f64)
                            .collect(),
                    )),
                    _ => None,
                })
                .collect()
        };
        rewind(be, &mut model, |name| {
            init.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
        })?;
        let mut scratch = crate::optim::Sgd::new(be, cfg.sgd(), cfg.schedule(1), None, &[]);
        let state = export_state(be, &mut model, &mut scratch);
        let dir = opts.out.join(format!("lottery-{s}-round{round}"));
        let (row, d, tensors) = run_one(be, &cfg, data.clone(), &dir, Some(state), "lottery", s, opts.quiet)?;
        trained = tensors;
        last = Some((row, d));
    }
    Ok(last.expect("at least one round"))
}

fn write_outputs(opts: &SweepOptions, rows: &[SweepRow], densities: &[Densities]) -> Result<()> {
    let mut csv = String::from("method,sparsity,experts,top1,top5,kept_params,total_params,kept_masked,maskable,masked_of_dense,params_of_dense,effective_macs,dense_macs,train_seconds\n");
    let mut md = String::from("| method | sparsity | top-1 % | top-5 % | kept params | of dense params | kept masked weights | of dense masked | effective GFLOP / sample | training s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            csv,
            "{},{},{},{:.6},{:.6},{},{},{},{},{:.6},{:.6},{},{},{:.3}",
            r.method,
            r.sparsity,
            r.experts,
            r.top1,
            r.top5,
            r.kept_params,
            r.total_params,
            r.kept_masked,
            r.maskable,
            r.masked_of_dense,
            r.params_of_dense,
            r.effective_macs,
            r.dense_macs,
            r.train_seconds
        );
        let sparsity = if r.experts.is_empty() {
            r.sparsity.to_string()
        } else {
            r.experts.clone()
        };
        let _ = writeln!(
            md,
            "| {} | {sparsity} | {:.2} | {:.2} | {} | {:.1}% | {} of {} | {:.1}% | {:.4} | {:.1} |",
            r.method,
            100.0 * r.top1,
            100.0 * r.top5,
            r.kept_params,
            100.0 * r.params_of_dense,
            r.kept_masked,
            r.maskable,
            100.0 * r.masked_of_dense,
            2.0 * r.effective_macs as f64 / 1e9,
            r.train_seconds
        );
    }
    write_atomic(&opts.out.join("sweep.csv"), csv.as_bytes())?;
    write_atomic(&opts.out.join("sweep.md"), md.as_bytes())?;
    let mut dens = String::from("configuration,layer,weights,density\n");
    for d in densities {
        for (layer, n, density) in &d.layers {
            let _ = writeln!(dens, "{},{layer},{n},{density:.6}", d.label);
        }
    }
    write_atomic(&opts.out.join("densities.csv"), dens.as_bytes())?;
    plot_lines(
        "accuracy against kept parameters (all)",
        "kept parameters",
        "validation top-1 %",
        &accuracy_series(rows, |r| r.kept_params as f64),
        &opts.out.join("accuracy_vs_params.svg"),
    )?;
    plot_lines(
        "accuracy against kept masked weights",
        "kept masked weights, % of one dense backbone",
        "validation top-1 %",
        &accuracy_series(rows, |r| 100.0 * r.masked_of_dense),
        &opts.out.join("accuracy_vs_masked.svg"),
    )
}

/// Top-1 against `x` per method; each pruning method's line starts at the dense point (the
/// assembly stays a point of its own).
fn accuracy_series(rows: &[SweepRow], x: impl Fn(&SweepRow) -> f64) -> Vec<Series> {
    let mut series: Vec<Series> = Vec::new();
    for r in rows {
        let point = (x(r), 100.0 * r.top1);
        match series.iter_mut().find(|(name, _)| *name == r.method) {
            Some((_, pts)) => pts.push(point),
            None => series.push((r.method.clone(), vec![point])),
        }
    }
    if let Some((_, dense)) = series.iter().find(|(n, _)| n == "dense").cloned() {
        for (name, pts) in series.iter_mut() {
            if name != "dense" && name != "assembly" {
                pts.extend(dense.iter().copied());
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
        }
    }
    series
}
