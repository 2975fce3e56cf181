//! The throughput sweep behind `leangcn bench --sweep`: the dense model and, for every sparsity level
//! and kind, a pruned one (weights from the same initialisation), each measured at every batch size
//! and clip length; written as a table (Markdown, CSV, JSON with the per-layer reports) and one plot
//! per batch size and clip length of training-step samples/s against kept parameters, with the
//! dense line and the ideal line (throughput proportional to 1 / kept parameters).
//!
//! The kinds:
//! - `unstructured`: one global magnitude threshold over the backbone conv weights (fixed masks; the
//!   backend's kernels still compute with the zeros unless it has sparse kernels);
//! - `channel`: each free channel group keeps 1 − s of its channels by a structured criterion and
//!   the model is compacted, so it really is smaller (see [`crate::sparse::compact`]);
//! - `2:4`: 2 of every 4 consecutive input weights kept; its level is always 0.5.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use super::report::{measure_model, ModelReport};
use super::Repeats;
use crate::backend::Backend;
use crate::model::{Stgcn, StgcnConfig};
use crate::sparse::compact::{compact, plan_by_criterion, ChannelCriterion};
use crate::sparse::lottery::{prune_by_magnitude, PruneScope};
use crate::sparse::semi_structured::prune_n_of_m;
use crate::train::checkpoint::write_atomic;
use crate::train::plot::plot_lines_log_log;
use crate::{Error, Result};

/// How a configuration is made sparse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SparsityKind {
    #[serde(rename = "dense")]
    Dense,
    #[serde(rename = "unstructured")]
    Unstructured,
    #[serde(rename = "channel")]
    Channel,
    #[serde(rename = "2:4")]
    TwoFour,
}

impl FromStr for SparsityKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "unstructured" => Ok(Self::Unstructured),
            "channel" => Ok(Self::Channel),
            "2:4" => Ok(Self::TwoFour),
            other => Err(Error::config(format!(
                "unknown sparsity kind '{other}' (expected unstructured, channel or 2:4)"
            ))),
        }
    }
}

impl fmt::Display for SparsityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dense => "dense",
            Self::Unstructured => "unstructured",
            Self::Channel => "channel",
            Self::TwoFour => "2:4",
        })
    }
}

/// What to sweep.
#[derive(Clone, Debug)]
pub struct BenchSweepOptions {
    pub model: StgcnConfig,
    /// Sparsity levels of the unstructured and channel kinds (0 is the dense model).
    pub sparsities: Vec<f64>,
    pub kinds: Vec<SparsityKind>,
    pub batches: Vec<usize>,
    pub clip_lens: Vec<usize>,
    pub criterion: ChannelCriterion,
    pub warmup: usize,
    pub iters: usize,
    pub out: PathBuf,
    pub quiet: bool,
}

/// One measured configuration.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    pub kind: SparsityKind,
    /// The requested sparsity level (the kept channel fraction is 1 − level for `channel`).
    pub level: f64,
    pub batch: usize,
    pub clip_len: usize,
    pub params: u64,
    pub kept_params: u64,
    pub dense_macs: u64,
    pub effective_macs: u64,
    pub saved_bytes: u64,
    pub forward_seconds: f64,
    pub step_seconds: f64,
    pub forward_samples_per_sec: f64,
    pub step_samples_per_sec: f64,
    /// Training-step samples/s over the dense model's at the same batch size and clip length.
    pub step_speedup: f64,
    pub report: ModelReport,
}

/// The configurations in order: dense first, then each kind over its levels.
fn configurations(opts: &BenchSweepOptions) -> Result<Vec<(SparsityKind, f64)>> {
    let mut out = vec![(SparsityKind::Dense, 0.0)];
    for &kind in &opts.kinds {
        let levels: Vec<f64> = match kind {
            SparsityKind::TwoFour => vec![0.5],
            _ => opts.sparsities.iter().copied().filter(|&s| s > 0.0).collect(),
        };
        for level in levels {
            if !(0.0..1.0).contains(&level) {
                return Err(Error::config(format!("sparsity {level} outside [0, 1)")));
            }
            out.push((kind, level));
        }
    }
    Ok(out)
}

/// The model of one configuration, from the seed-0 initialisation.
fn build<B: Backend>(be: &B, opts: &BenchSweepOptions, kind: SparsityKind, level: f64) -> Result<Stgcn<B>> {
    let mut model = Stgcn::new(be, opts.model.clone(), 0)?;
    match kind {
        SparsityKind::Dense => {}
        SparsityKind::Unstructured => {
            prune_by_magnitude(be, &mut model, level, PruneScope::Global);
        }
        SparsityKind::Channel => {
            let plan = plan_by_criterion(be, &mut model, opts.criterion, 1.0 - level)?;
            model = compact(be, &mut model, &plan)?;
        }
        SparsityKind::TwoFour => {
            prune_n_of_m(be, &mut model, 2, 4)?;
        }
    }
    Ok(model)
}

/// Runs the sweep and writes `bench.md`, `bench.csv`, `bench.json` and `throughput_b<B>_t<T>.svg`
/// into `opts.out`.
pub fn run_bench_sweep<B: Backend>(be: &B, opts: &BenchSweepOptions) -> Result<Vec<BenchRow>> {
    if opts.model.sparse.is_some() {
        return Err(Error::config(
            "the throughput sweep starts from a dense model (model.sparse unset)",
        ));
    }
    for &t in &opts.clip_lens {
        opts.model.validate(t)?;
    }
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::io(&opts.out, e))?;
    let mut rows: Vec<BenchRow> = Vec::new();
    for (kind, level) in configurations(opts)? {
        let mut model = build(be, opts, kind, level)?;
        for &batch in &opts.batches {
            for &clip_len in &opts.clip_lens {
                let repeats = Repeats {
                    warmup: opts.warmup,
                    iters: opts.iters,
                    per_layer: false,
                };
                let report = measure_model(be, &mut model, batch, clip_len, repeats)?;
                let t = &report.throughput;
                let dense_sps = rows
                    .iter()
                    .find(|r| r.kind == SparsityKind::Dense && r.batch == batch && r.clip_len == clip_len)
                    .map_or(t.step_samples_per_sec, |r| r.step_samples_per_sec);
                let row = BenchRow {
                    kind,
                    level,
                    batch,
                    clip_len,
                    params: report.params(),
                    kept_params: report.kept_params(),
                    dense_macs: report.macs(),
                    effective_macs: report.effective_macs(),
                    saved_bytes: report.saved_bytes(),
                    forward_seconds: t.forward_seconds,
                    step_seconds: t.step_seconds,
                    forward_samples_per_sec: t.forward_samples_per_sec,
                    step_samples_per_sec: t.step_samples_per_sec,
                    step_speedup: t.step_samples_per_sec / dense_sps,
                    report,
                };
                if !opts.quiet {
                    eprintln!(
                        "{kind} {level}: batch {batch}, clip {clip_len}: {} of {} parameters kept, step {:.2} samples/s ({:.2}x dense)",
                        row.kept_params, row.params, row.step_samples_per_sec, row.step_speedup
                    );
                }
                rows.push(row);
            }
        }
    }
    write_outputs(opts, &rows)?;
    Ok(rows)
}

fn write_outputs(opts: &BenchSweepOptions, rows: &[BenchRow]) -> Result<()> {
    let mut csv = String::from("kind,level,batch,clip_len,params,kept_params,dense_macs,effective_macs,saved_bytes,forward_seconds,step_seconds,forward_samples_per_sec,step_samples_per_sec,step_speedup\n");
    let backend = rows
        .first()
        .map_or(String::new(), |r| r.report.throughput.backend.clone());
    let mut md = format!(
        "Backend: {backend}. Forward in training mode; a step is forward, loss, backward and SGD. FLOPs per sample (2 per multiply-add).\n\n| kind | level | batch | clip | params | kept params | kept % | dense GFLOP | effective GFLOP | saved activations MiB | forward samples/s | step samples/s | step vs dense |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for r in rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{:.6},{:.6},{:.4},{:.4},{:.4}",
            r.kind,
            r.level,
            r.batch,
            r.clip_len,
            r.params,
            r.kept_params,
            r.dense_macs,
            r.effective_macs,
            r.saved_bytes,
            r.forward_seconds,
            r.step_seconds,
            r.forward_samples_per_sec,
            r.step_samples_per_sec,
            r.step_speedup
        );
        let dense_params = rows.first().map_or(r.params, |d| d.params);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {:.1} | {:.3} | {:.3} | {:.1} | {:.2} | {:.2} | {:.2}x |",
            r.kind,
            r.level,
            r.batch,
            r.clip_len,
            r.params,
            r.kept_params,
            100.0 * r.kept_params as f64 / dense_params.max(1) as f64,
            2.0 * r.dense_macs as f64 / 1e9,
            2.0 * r.effective_macs as f64 / 1e9,
            r.saved_bytes as f64 / (1u64 << 20) as f64,
            r.forward_samples_per_sec,
            r.step_samples_per_sec,
            r.step_speedup
        );
    }
    write_atomic(&opts.out.join("bench.csv"), csv.as_bytes())?;
    write_atomic(&opts.out.join("bench.md"), md.as_bytes())?;
    let json = serde_json::to_string_pretty(rows).expect("bench rows serialise");
    write_atomic(&opts.out.join("bench.json"), json.as_bytes())?;
    for &batch in &opts.batches {
        for &clip_len in &opts.clip_lens {
            let here: Vec<&BenchRow> = rows
                .iter()
                .filter(|r| r.batch == batch && r.clip_len == clip_len)
                .collect();
            plot_throughput(&here, &opts.out.join(format!("throughput_b{batch}_t{clip_len}.svg")))?;
        }
    }
    Ok(())
}

/// Training-step samples/s against kept parameters, one series per kind (each through the dense
/// point), the dense throughput as a flat line and the ideal proportional line.
fn plot_throughput(rows: &[&BenchRow], out: &Path) -> Result<()> {
    let Some(dense) = rows.iter().find(|r| r.kind == SparsityKind::Dense) else {
        return Ok(());
    };
    let point = |r: &BenchRow| (r.kept_params as f64, r.step_samples_per_sec);
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in rows.iter().filter(|r| r.kind != SparsityKind::Dense) {
        match series.iter_mut().find(|(name, _)| *name == r.kind.to_string()) {
            Some((_, pts)) => pts.push(point(r)),
            None => series.push((r.kind.to_string(), vec![point(dense), point(r)])),
        }
    }
    for (_, pts) in series.iter_mut() {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let mut xs: Vec<f64> = rows.iter().map(|r| r.kept_params as f64).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let (dense_x, dense_y) = point(dense);
    series.push(("dense".into(), xs.iter().map(|&x| (x, dense_y)).collect()));
    series.push((
        "ideal (proportional)".into(),
        xs.iter().map(|&x| (x, dense_y * dense_x / x)).collect(),
    ));
    plot_lines_log_log(
        &format!(
            "training step, batch {}, clip {}: samples/s against kept parameters",
            dense.batch, dense.clip_len
        ),
        "kept parameters",
        "training-step samples/s",
        &series,
        out,
    )
}
