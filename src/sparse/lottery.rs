//! Lottery tickets by iterative magnitude pruning (Frankle & Carbin's recipe; the paper's repository
//! has no lottery-ticket code, so this is our standard choice, not the authors'): train dense, prune
//! the smallest-magnitude fraction of the remaining backbone conv weights (globally or per layer),
//! rewind the survivors to their values at initialisation (or an early iteration), retrain, repeat.
//! The pruned set is the one the sparse generator masks: graph 1x1, temporal 9x1 and residual convs.

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Scalar};
use crate::layers::{Conv, Entry, Module};
use crate::model::Recognizer;

/// Where the magnitude threshold is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneScope {
    /// One threshold over every backbone conv weight.
    Global,
    /// Each conv loses the same fraction.
    PerLayer,
}

/// The maskable convs of every backbone of a model with their `state_dict` prefixes, in a fixed order.
fn named_convs<B: Backend>(model: &mut dyn Recognizer<B>) -> Vec<(String, &mut Conv<B>)> {
    model
        .backbones_mut()
        .into_iter()
        .flat_map(|(prefix, backbone)| {
            backbone
                .named_convs_mut()
                .into_iter()
                .map(move |(name, conv)| (format!("{prefix}.{name}"), conv))
        })
        .collect()
}

/// The maskable convs of a model, in a fixed order.
fn backbone_convs<B: Backend>(model: &mut dyn Recognizer<B>) -> Vec<&mut Conv<B>> {
    named_convs(model).into_iter().map(|(_, c)| c).collect()
}

/// `|W ⊙ M|` of a conv (pruned weights count as 0, so they sort first).
fn masked_magnitude<B: Backend>(be: &B, conv: &Conv<B>) -> B::Buf {
    let mut out = be.zeros(conv.weight.len());
    match &conv.mask {
        Some(m) => be.mul(&conv.weight.value, &m.mask().value, &mut out),
        None => be.copy(&conv.weight.value, &mut out),
    }
    let mut abs = be.zeros(conv.weight.len());
    be.abs(&out, &mut abs);
    abs
}

/// Number of weights currently pruned by a conv's mask.
fn pruned_count<B: Backend>(be: &B, conv: &Conv<B>) -> usize {
    conv.mask.as_ref().map_or(0, |m| {
        be.download(&m.mask().value)
            .iter()
            .filter(|v| v.as_f64() == 0.0)
            .count()
    })
}

/// Prunes `fraction` of the weights that are still alive (by magnitude), fixing the masks: one round
/// of iterative magnitude pruning over every backbone conv of the model. Returns the overall
/// sparsity of the backbone convs afterwards.
pub fn prune_by_magnitude<B: Backend>(be: &B, model: &mut dyn Recognizer<B>, fraction: f64, scope: PruneScope) -> f64 {
    let mut convs = backbone_convs(model);
    let groups: Vec<Vec<usize>> = match scope {
        PruneScope::Global => vec![(0..convs.len()).collect()],
        PruneScope::PerLayer => (0..convs.len()).map(|i| vec![i]).collect(),
    };
    let mut tau = be.zeros(1);
    for group in groups {
        let mags: Vec<B::Buf> = group.iter().map(|&i| masked_magnitude(be, convs[i])).collect();
        let total: usize = mags.iter().map(|m| be.buf_len(m)).sum();
        let pruned: usize = group.iter().map(|&i| pruned_count(be, convs[i])).sum();
        let alive = total - pruned;
        let remove = (fraction * alive as f64).round_ties_even() as usize;
        if remove == 0 {
            continue;
        }
        // the (pruned + remove)-th smallest magnitude; everything strictly above it survives
        let refs: Vec<&B::Buf> = mags.iter().collect();
        be.kth_smallest(&refs, pruned + remove, &mut tau);
        let tau_host = be.download(&tau)[0].as_f64();
        for (&i, mag) in group.iter().zip(&mags) {
            let keep: Vec<f64> = be
                .download(mag)
                .iter()
                .map(|m| if m.as_f64() > tau_host { 1.0 } else { 0.0 })
                .collect();
            convs[i].set_fixed_mask(be, &keep);
        }
    }
    sparsity_of(be, model)
}

/// Rewinds every parameter and buffer that `lookup(name)` knows (weights at initialisation or at
/// an early iteration) while keeping the masks: the "rewind" step of a lottery ticket.
pub fn rewind<B: Backend>(
    be: &B,
    model: &mut dyn Module<B>,
    lookup: impl Fn(&str) -> Option<Vec<f64>>,
) -> crate::Result<usize> {
    let mut entries = Vec::new();
    model.entries("", &mut entries);
    let mut rewound = 0;
    // the rewound values of `name` (a tensor of `len` values), if the rewind point has them
    let rewound_values = |name: &str, len: usize| -> crate::Result<Option<B::Buf>> {
        let Some(values) = lookup(name) else { return Ok(None) };
        if values.len() != len {
            return Err(crate::Error::config(format!(
                "rewind point has {} values for '{name}', the model {len}",
                values.len()
            )));
        }
        let host: Vec<B::Elem> = values.into_iter().map(B::Elem::of).collect();
        Ok(Some(be.upload(&host)))
    };
    for entry in entries {
        match entry {
            Entry::Param(name, p) => {
                if let Some(v) = rewound_values(&name, be.buf_len(&p.value))? {
                    p.value = v;
                    rewound += 1;
                }
            }
            Entry::Buffer(name, b) if !name.ends_with("weight_mask") => {
                if let Some(v) = rewound_values(&name, be.buf_len(&b.value))? {
                    b.replace(v);
                    rewound += 1;
                }
            }
            _ => {}
        }
    }
    Ok(rewound)
}

/// Gives every backbone conv whose `<prefix>.weight_mask` is in `tensors` that fixed mask (a pruned
/// model handed to a fresh one); returns how many convs were masked.
pub fn attach_fixed_masks<B: Backend>(
    be: &B,
    model: &mut dyn Recognizer<B>,
    tensors: &[crate::train::checkpoint::NamedTensor],
) -> usize {
    let mut attached = 0;
    for (name, conv) in named_convs(model) {
        let key = format!("{name}.weight_mask");
        if conv.mask.is_none() {
            if let Some(t) = tensors
                .iter()
                .find(|t| t.name == key && t.data.len() == conv.weight.len())
            {
                conv.set_fixed_mask(be, &t.data.to_f64());
                attached += 1;
            }
        }
    }
    attached
}

/// Fraction of backbone conv weights that are masked out.
pub fn sparsity_of<B: Backend>(be: &B, model: &mut dyn Recognizer<B>) -> f64 {
    let convs = backbone_convs(model);
    let total: usize = convs.iter().map(|c| c.weight.len()).sum();
    let pruned: usize = convs.iter().map(|c| pruned_count(be, c)).sum();
    pruned as f64 / total.max(1) as f64
}

/// Per-conv density (kept fraction) with the conv's state_dict prefix, for reports.
pub fn layer_densities<B: Backend>(be: &B, model: &mut dyn Recognizer<B>) -> Vec<(String, usize, f64)> {
    named_convs(model)
        .into_iter()
        .map(|(name, conv)| {
            let n = conv.weight.len();
            let kept = n - pruned_count(be, conv);
            (name, n, kept as f64 / n as f64)
        })
        .collect()
}
