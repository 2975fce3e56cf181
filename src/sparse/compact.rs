//! Channel compaction: removing whole channels and rebuilding the model smaller and dense.
//!
//! Which channels can go. A block computes `relu(tcn(gcn(x)) + residual(x))`, so it has two kinds
//! of channels:
//! - its *internal* channels, between the graph unit and the temporal conv (`c_mid`). Each block's
//!   are its own: removing channel j slices the graph conv's rows `k·c_mid + j` (for every subset k),
//!   the graph BN's channel j and the temporal conv's input column j.
//! - its *output* channels, which the residual add ties to its input channels when the residual is
//!   the identity. A *segment* is a run of blocks joined by identity residuals (it starts at a block
//!   with a conv residual or none); its blocks share one stream of channels, so stream channels are
//!   chosen per segment, never per block. Removing stream channel j slices, in every block of the
//!   segment, the temporal conv's row j and its BN, the segment's residual conv row j and its BN,
//!   and every reader's input column j: the graph convs and residual conv of the blocks after each
//!   block of the segment, and the classifier for the last segment. A segment whose stream is the
//!   network input (an identity residual on the first block) keeps all its channels.
//!
//! A channel is *removed by the masks* when every weight that reads it is masked out (the temporal
//! conv's input column for an internal channel, every reader's column for a stream channel): masking
//! the producing conv's rows is not enough, since its bias and BN shift still reach the next layer.
//! [`mask_channels`] masks both the producers and the readers; [`plan_from_masks`] finds the
//! channels the masks remove; [`compact`] builds the smaller model, whose logits equal the masked
//! model's (in evaluation and in training mode: BN statistics are per channel).
//!
//! Structured criteria ([`plan_by_criterion`]) score each channel from the masked weights that
//! produce it: the L1 or L2 norm of the producing conv rows (all subsets of the graph conv for an
//! internal channel; the rows of every temporal conv of a segment and its residual conv for a
//! stream channel, as one vector), or the BN scale |γ| (summed over a segment's BNs), and keep the
//! same fraction of every group (internal channels of each block, stream channels of each segment).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::layers::{load_state, Conv, WeightMask};
use crate::model::config::{BlockPlan, ResidualKind};
use crate::model::{BlockWidths, Stgcn};
use crate::optim::Sgd;
use crate::train::checkpoint::NamedTensor;
use crate::train::trainer::export_state;
use crate::train::TrainConfig;
use crate::{Error, Result};

/// How a channel's importance is scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelCriterion {
    /// L1 norm of the weights producing the channel.
    L1,
    /// L2 norm of the weights producing the channel.
    L2,
    /// The producing BN's scale |γ|.
    BnScale,
}

impl FromStr for ChannelCriterion {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "l1" => Ok(Self::L1),
            "l2" => Ok(Self::L2),
            "bn" => Ok(Self::BnScale),
            other => Err(Error::config(format!(
                "unknown channel criterion '{other}' (expected l1, l2 or bn)"
            ))),
        }
    }
}

impl fmt::Display for ChannelCriterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::L1 => "l1",
            Self::L2 => "l2",
            Self::BnScale => "bn",
        })
    }
}

/// The channels each free group keeps, ascending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChannelPlan {
    /// Per block: its internal channels (graph-unit outputs, temporal-conv inputs).
    pub internal: Vec<Vec<usize>>,
    /// Per residual segment: the output channels its blocks share.
    pub streams: Vec<Vec<usize>>,
}

/// The block structure of a model as compaction sees it.
struct Structure {
    blocks: Vec<BlockPlan>,
    /// Graph subsets of each block's graph conv.
    subsets: Vec<usize>,
    /// Segment of each block.
    segment: Vec<usize>,
    /// Per segment: whether its stream is the network input (then it keeps every channel).
    pinned: Vec<bool>,
}

impl Structure {
    fn of<B: Backend>(model: &Stgcn<B>) -> Self {
        let blocks: Vec<BlockPlan> = model.backbone.blocks.iter().map(|b| b.plan).collect();
        let mut segment = Vec::new();
        let mut pinned = Vec::new();
        for (i, b) in blocks.iter().enumerate() {
            if i == 0 || b.residual != ResidualKind::Identity {
                pinned.push(b.residual == ResidualKind::Identity);
            }
            segment.push(pinned.len() - 1);
        }
        Self {
            blocks,
            subsets: model.backbone.blocks.iter().map(|b| b.gcn.k).collect(),
            segment,
            pinned,
        }
    }

    /// Width of segment `s`'s stream.
    fn stream_width(&self, s: usize) -> usize {
        let last = self
            .segment
            .iter()
            .rposition(|&x| x == s)
            .expect("every segment has a block");
        self.blocks[last].c_out
    }

    /// Blocks of segment `s`.
    fn members(&self, s: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.blocks.len()).filter(move |&b| self.segment[b] == s)
    }

    /// Blocks whose input is segment `s`'s stream.
    fn readers(&self, s: usize) -> impl Iterator<Item = usize> + '_ {
        (1..self.blocks.len()).filter(move |&b| self.segment[b - 1] == s)
    }

    fn last_segment(&self) -> usize {
        self.pinned.len() - 1
    }
}

/// Kept indices along a tensor's first two axes (`None`: all of them).
#[derive(Default)]
struct Selection {
    rows: Option<Vec<usize>>,
    cols: Option<Vec<usize>>,
}

impl Selection {
    fn is_all(&self) -> bool {
        self.rows.is_none() && self.cols.is_none()
    }

    /// `values` of `shape` viewed as `[rows, cols, inner]`, restricted to the kept rows and columns.
    fn apply(&self, shape: &[usize], values: &[f64]) -> (Vec<usize>, Vec<f64>) {
        let rows = shape.first().copied().unwrap_or(1);
        let cols = shape.get(1).copied().unwrap_or(1);
        let inner = values.len() / (rows * cols).max(1);
        let all = |n: usize| (0..n).collect::<Vec<_>>();
        let kept_rows = self.rows.clone().unwrap_or_else(|| all(rows));
        let kept_cols = self.cols.clone().unwrap_or_else(|| all(cols));
        let mut out = Vec::with_capacity(kept_rows.len() * kept_cols.len() * inner);
        for &r in &kept_rows {
            for &c in &kept_cols {
                let start = (r * cols + c) * inner;
                out.extend_from_slice(&values[start..start + inner]);
            }
        }
        let mut new_shape = shape.to_vec();
        if let Some(d) = new_shape.first_mut() {
            *d = kept_rows.len();
        }
        if let Some(d) = new_shape.get_mut(1) {
            *d = kept_cols.len();
        }
        (new_shape, out)
    }
}

impl ChannelPlan {
    /// What compaction keeps of the state tensor `name` (PyTorch `state_dict` names).
    fn selection(&self, s: &Structure, name: &str) -> Selection {
        if let Some(tensor) = name.strip_prefix("cls_head.fc_cls.") {
            return if tensor.starts_with("weight") {
                Selection {
                    rows: None,
                    cols: Some(self.streams[s.last_segment()].clone()),
                }
            } else {
                Selection::default()
            };
        }
        let Some((i, tensor)) = name
            .strip_prefix("backbone.gcn.")
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(i, tensor)| Some((i.parse::<usize>().ok()?, tensor)))
        else {
            return Selection::default();
        };
        if i >= s.blocks.len() || tensor.ends_with("num_batches_tracked") {
            return Selection::default();
        }
        let internal = &self.internal[i];
        let out = &self.streams[s.segment[i]];
        let input = (i > 0).then(|| self.streams[s.segment[i - 1]].clone());
        let c_mid = s.blocks[i].c_mid;
        let subset_rows = || {
            (0..s.subsets[i])
                .flat_map(|k| internal.iter().map(move |&j| k * c_mid + j))
                .collect::<Vec<_>>()
        };
        // weight, weight_mask and weight_score share the weight's layout
        match tensor {
            t if t.starts_with("gcn.conv.weight") => Selection {
                rows: Some(subset_rows()),
                cols: input,
            },
            "gcn.conv.bias" => Selection {
                rows: Some(subset_rows()),
                cols: None,
            },
            t if t.starts_with("gcn.bn.") => Selection {
                rows: Some(internal.clone()),
                cols: None,
            },
            t if t.starts_with("tcn.conv.weight") => Selection {
                rows: Some(out.clone()),
                cols: Some(internal.clone()),
            },
            t if t.starts_with("residual.conv.weight") => Selection {
                rows: Some(out.clone()),
                cols: input,
            },
            t if t.starts_with("tcn.") || t.starts_with("residual.") => Selection {
                rows: Some(out.clone()),
                cols: None,
            },
            _ => Selection::default(),
        }
    }

    /// The widths of the compacted blocks.
    fn widths(&self, s: &Structure) -> Vec<BlockWidths> {
        (0..s.blocks.len())
            .map(|i| BlockWidths {
                mid: self.internal[i].len(),
                out: self.streams[s.segment[i]].len(),
            })
            .collect()
    }

    /// Checks the plan against a model: one group per block and segment, ascending indices within
    /// the widths, at least one channel per group, pinned segments whole.
    fn check(&self, s: &Structure) -> Result<()> {
        if self.internal.len() != s.blocks.len() || self.streams.len() != s.pinned.len() {
            return Err(Error::config(format!(
                "channel plan has {} blocks and {} segments, the model {} and {}",
                self.internal.len(),
                self.streams.len(),
                s.blocks.len(),
                s.pinned.len()
            )));
        }
        let groups = self
            .internal
            .iter()
            .enumerate()
            .map(|(i, g)| (format!("block {i}'s internal channels"), g, s.blocks[i].c_mid))
            .chain(
                self.streams
                    .iter()
                    .enumerate()
                    .map(|(j, g)| (format!("segment {j}'s channels"), g, s.stream_width(j))),
            );
        for (what, kept, width) in groups {
            let ascending = kept.windows(2).all(|w| w[0] < w[1]);
            if kept.is_empty() || !ascending || kept.last().is_some_and(|&c| c >= width) {
                return Err(Error::config(format!(
                    "channel plan: {what} must be ascending indices below {width}, at least one, got {kept:?}"
                )));
            }
        }
        for (j, &pinned) in s.pinned.iter().enumerate() {
            if pinned && self.streams[j].len() != s.stream_width(j) {
                return Err(Error::config(format!(
                    "channel plan: segment {j} carries the network input and must keep all its channels"
                )));
            }
        }
        Ok(())
    }
}

/// The model's state on the host, by name.
struct HostState(Vec<NamedTensor>);

impl HostState {
    fn of<B: Backend>(be: &B, model: &mut Stgcn<B>) -> Self {
        let cfg = TrainConfig::default();
        let mut no_optimizer = Sgd::new(be, cfg.sgd(), cfg.schedule(1), None, &[]);
        Self(export_state(be, model, &mut no_optimizer))
    }

    fn get(&self, name: &str) -> Option<&NamedTensor> {
        self.0.iter().find(|t| t.name == name)
    }

    /// A conv's weight ⊙ mask as `(rows, values)`, values in the weight's layout `[rows, ...]`.
    fn effective_weight(&self, conv: &str) -> Option<(usize, Vec<f64>)> {
        let w = self.get(&format!("{conv}.weight"))?;
        let mut values = w.data.to_f64();
        if let Some(m) = self.get(&format!("{conv}.weight_mask")) {
            for (v, m) in values.iter_mut().zip(m.data.to_f64()) {
                *v *= m;
            }
        }
        Some((w.shape[0], values))
    }

    /// Whether some weight reading input column `c` of `conv` is kept (always, without a mask).
    fn reads_column(&self, conv: &str, c: usize) -> bool {
        let Some(m) = self.get(&format!("{conv}.weight_mask")) else {
            return true;
        };
        let (rows, cols) = (m.shape[0], m.shape.get(1).copied().unwrap_or(1));
        let inner = m.data.len() / (rows * cols);
        let values = m.data.to_f64();
        (0..rows).any(|r| values[(r * cols + c) * inner..][..inner].iter().any(|&v| v != 0.0))
    }
}

/// Every conv of the model with its state-dict prefix: per block the graph, temporal and residual
/// convs, then the classifier.
fn named_convs_mut<B: Backend>(model: &mut Stgcn<B>) -> Vec<(String, &mut Conv<B>)> {
    let names = ["gcn.conv", "tcn.conv", "residual.conv"];
    let mut out = Vec::new();
    for (i, block) in model.backbone.blocks.iter_mut().enumerate() {
        for ((conv, _), name) in block.convs_mut().into_iter().zip(names) {
            out.push((format!("backbone.gcn.{i}.{name}"), conv));
        }
    }
    out.push(("cls_head.fc_cls".to_string(), &mut model.head.fc));
    out
}

/// Compaction works on dense models and fixed masks; learned masks change with their threshold.
fn refuse_learned_masks<B: Backend>(model: &mut Stgcn<B>) -> Result<()> {
    let learned = named_convs_mut(model)
        .into_iter()
        .find(|(_, c)| matches!(c.mask, Some(WeightMask::Learned { .. })));
    match learned {
        Some((name, _)) => Err(Error::config(format!(
            "{name} has a learned mask: bake the final mask first (leangcn prune --sparsity) before removing channels"
        ))),
        None => Ok(()),
    }
}

/// The `max(1, round(fraction·n))` highest-scoring indices (ties to the lower index), ascending.
fn top_fraction(scores: &[f64], fraction: f64) -> Vec<usize> {
    let n = ((fraction * scores.len() as f64).round() as usize).clamp(1, scores.len());
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut kept = order[..n].to_vec();
    kept.sort_unstable();
    kept
}

/// Adds to `score[r mod width]` the squared L2 norm (`squared`) or the L1 norm of each weight row `r`
/// of a conv (`[rows, ...]`): a graph conv's rows `k·c_mid + j` all produce channel j.
fn add_row_norms(score: &mut [f64], rows: usize, values: &[f64], squared: bool) {
    let row_len = values.len() / rows;
    for (r, row) in values.chunks(row_len).enumerate() {
        let norm: f64 = if squared {
            row.iter().map(|v| v * v).sum()
        } else {
            row.iter().map(|v| v.abs()).sum()
        };
        score[r % score.len()] += norm;
    }
}

/// Scores of one group's channels from its producers: convs (by prefix, without `.conv`) whose rows
/// (modulo the group's width) and BNs produce the channels.
fn group_scores(state: &HostState, producers: &[String], width: usize, criterion: ChannelCriterion) -> Vec<f64> {
    let mut score = vec![0.0; width];
    for unit in producers {
        match criterion {
            ChannelCriterion::BnScale => {
                if let Some(gamma) = state.get(&format!("{unit}.bn.weight")) {
                    for (s, g) in score.iter_mut().zip(gamma.data.to_f64()) {
                        *s += g.abs();
                    }
                }
            }
            ChannelCriterion::L1 | ChannelCriterion::L2 => {
                if let Some((rows, w)) = state.effective_weight(&format!("{unit}.conv")) {
                    add_row_norms(&mut score, rows, &w, criterion == ChannelCriterion::L2);
                }
            }
        }
    }
    if criterion == ChannelCriterion::L2 {
        score.iter_mut().for_each(|s| *s = s.sqrt());
    }
    score
}

/// Keeps `keep_fraction` of every free group (at least one channel each) by `criterion`, scored on
/// the masked weights.
pub fn plan_by_criterion<B: Backend>(
    be: &B,
    model: &mut Stgcn<B>,
    criterion: ChannelCriterion,
    keep_fraction: f64,
) -> Result<ChannelPlan> {
    if !(keep_fraction > 0.0 && keep_fraction <= 1.0) {
        return Err(Error::config(format!(
            "the kept channel fraction must be in (0, 1], got {keep_fraction}"
        )));
    }
    refuse_learned_masks(model)?;
    let s = Structure::of(model);
    let state = HostState::of(be, model);
    let internal = (0..s.blocks.len())
        .map(|i| {
            let unit = format!("backbone.gcn.{i}.gcn");
            top_fraction(
                &group_scores(&state, &[unit], s.blocks[i].c_mid, criterion),
                keep_fraction,
            )
        })
        .collect();
    let streams = (0..s.pinned.len())
        .map(|j| {
            let width = s.stream_width(j);
            if s.pinned[j] {
                return (0..width).collect();
            }
            let producers: Vec<String> = s
                .members(j)
                .flat_map(|b| [format!("backbone.gcn.{b}.tcn"), format!("backbone.gcn.{b}.residual")])
                .collect();
            top_fraction(&group_scores(&state, &producers, width, criterion), keep_fraction)
        })
        .collect();
    Ok(ChannelPlan { internal, streams })
}

/// The channels the model's fixed masks still read (a group none of whose channels is read keeps
/// its first, so the model keeps a shape).
pub fn plan_from_masks<B: Backend>(be: &B, model: &mut Stgcn<B>) -> Result<ChannelPlan> {
    refuse_learned_masks(model)?;
    let s = Structure::of(model);
    let state = HostState::of(be, model);
    let at_least_one = |kept: Vec<usize>| if kept.is_empty() { vec![0] } else { kept };
    let internal = (0..s.blocks.len())
        .map(|i| {
            let reader = format!("backbone.gcn.{i}.tcn.conv");
            at_least_one(
                (0..s.blocks[i].c_mid)
                    .filter(|&c| state.reads_column(&reader, c))
                    .collect(),
            )
        })
        .collect();
    let streams = (0..s.pinned.len())
        .map(|j| {
            let width = s.stream_width(j);
            if s.pinned[j] {
                return (0..width).collect();
            }
            let mut readers: Vec<String> = s
                .readers(j)
                .flat_map(|b| {
                    [
                        format!("backbone.gcn.{b}.gcn.conv"),
                        format!("backbone.gcn.{b}.residual.conv"),
                    ]
                })
                .filter(|conv| state.get(&format!("{conv}.weight")).is_some())
                .collect();
            if j == s.last_segment() {
                readers.push("cls_head.fc_cls".into());
            }
            at_least_one(
                (0..width)
                    .filter(|&c| readers.iter().any(|r| state.reads_column(r, c)))
                    .collect(),
            )
        })
        .collect();
    Ok(ChannelPlan { internal, streams })
}

/// Masks out the channels `plan` removes, in their producers' rows and their readers' columns (on
/// top of any fixed masks): the dense model with those channels zeroed, same widths.
pub fn mask_channels<B: Backend>(be: &B, model: &mut Stgcn<B>, plan: &ChannelPlan) -> Result<()> {
    refuse_learned_masks(model)?;
    let s = Structure::of(model);
    plan.check(&s)?;
    for (name, conv) in named_convs_mut(model) {
        let sel = plan.selection(&s, &format!("{name}.weight"));
        if sel.is_all() {
            continue;
        }
        let mut mask: Vec<f64> = match &conv.mask {
            Some(m) => be
                .download(&m.mask().value)
                .into_iter()
                .map(crate::backend::Scalar::as_f64)
                .collect(),
            None => vec![1.0; conv.weight.len()],
        };
        let (rows, cols) = (conv.weight.shape[0], conv.weight.shape.get(1).copied().unwrap_or(1));
        let inner = mask.len() / (rows * cols);
        let keeps = |kept: &Option<Vec<usize>>, n: usize| {
            let mut flags = vec![kept.is_none(); n];
            for &i in kept.iter().flatten() {
                flags[i] = true;
            }
            flags
        };
        let (row_kept, col_kept) = (keeps(&sel.rows, rows), keeps(&sel.cols, cols));
        for (i, m) in mask.iter_mut().enumerate() {
            let (r, c) = (i / inner / cols, i / inner % cols);
            if !(row_kept[r] && col_kept[c]) {
                *m = 0.0;
            }
        }
        conv.set_fixed_mask(be, &mask);
    }
    Ok(())
}

/// The smaller dense model that keeps `plan`'s channels: every conv, BN, residual and reader sliced,
/// the widths recorded in its configuration. Fixed masks are sliced along; a mask left all ones is
/// dropped, so a model pruned only by channels runs on the plain dense kernels.
pub fn compact<B: Backend>(be: &B, model: &mut Stgcn<B>, plan: &ChannelPlan) -> Result<Stgcn<B>> {
    refuse_learned_masks(model)?;
    let s = Structure::of(model);
    plan.check(&s)?;
    let state = HostState::of(be, model);
    let sliced: Vec<(String, Vec<usize>, Vec<f64>)> = state
        .0
        .iter()
        .map(|t| {
            let (shape, values) = plan.selection(&s, &t.name).apply(&t.shape, &t.data.to_f64());
            (t.name.clone(), shape, values)
        })
        .collect();
    let mut config = model.config.clone();
    config.widths = Some(plan.widths(&s));
    let mut small = Stgcn::new(be, config, 0)?;
    for (name, conv) in named_convs_mut(&mut small) {
        let mask = sliced.iter().find(|(n, _, _)| *n == format!("{name}.weight_mask"));
        if let Some((_, _, values)) = mask.filter(|(_, _, v)| v.contains(&0.0)) {
            conv.set_fixed_mask(be, values);
        }
    }
    load_state(be, &mut small, |name, len| {
        match sliced.iter().find(|(n, _, _)| n == name) {
            Some((_, _, values)) if values.len() == len => Ok(values.clone()),
            _ => Err(Error::format(
                Path::new("the compacted model"),
                format!("no sliced tensor '{name}' of {len} values"),
            )),
        }
    })?;
    Ok(small)
}
