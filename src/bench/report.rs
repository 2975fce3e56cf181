//! The measurement API: for a built model (any widths, any masks), per layer and in total the stored
//! and kept parameters, dense and effective FLOPs, the activation memory a training forward keeps
//! for the backward at a batch size, the whole model's forward and training-step time on the
//! backend, and, when asked, each layer's forward and backward time (see [`crate::model::layer_clock`]).

use std::fmt;

use serde::Serialize;

use super::count::{LayerCost, ModelCost};
use super::{time_model, Repeats, Throughput};
use crate::backend::Backend;
use crate::model::Stgcn;
use crate::Result;

/// One layer of a measured model.
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    #[serde(flatten)]
    pub cost: LayerCost,
    /// Bytes of activations the training forward keeps for the backward at the measured batch
    /// (masked-weight copies, parameter-sized, are not counted).
    pub saved_bytes: u64,
}

/// A measured model (its JSON has the throughput's fields at the top level).
#[derive(Clone, Debug, Serialize)]
pub struct ModelReport {
    #[serde(flatten)]
    pub throughput: Throughput,
    /// Bytes per activation value (4 for f32).
    pub element_bytes: usize,
    pub layers: Vec<LayerReport>,
}

impl ModelReport {
    pub fn params(&self) -> u64 {
        self.layers.iter().map(|l| l.cost.params).sum()
    }
    pub fn kept_params(&self) -> u64 {
        self.layers.iter().map(|l| l.cost.kept_params).sum()
    }
    /// Dense and effective forward multiply-adds per sample (FLOPs are twice these).
    pub fn macs(&self) -> u64 {
        self.layers.iter().map(|l| l.cost.macs).sum()
    }
    pub fn effective_macs(&self) -> u64 {
        self.layers.iter().map(|l| l.cost.effective_macs).sum()
    }
    pub fn saved_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.saved_bytes).sum()
    }
}

/// Measures `model` with the masks it holds (learned masks are thresholded first) at a batch size
/// and clip length: counts from the model and its mask buffers, saved activations from one training
/// forward, and times as [`time_model`] takes them. The model's state is left as it was.
pub fn measure_model<B: Backend>(
    be: &B,
    model: &mut Stgcn<B>,
    batch: usize,
    clip_len: usize,
    repeats: Repeats,
) -> Result<ModelReport> {
    model.update_masks(be);
    let cost = ModelCost::of_model(be, model, clip_len);
    let element_bytes = std::mem::size_of::<B::Elem>();
    let mut saved = Vec::new();
    let throughput = time_model(be, model, batch, clip_len, repeats, |m| {
        saved = m.saved_for_backward(be);
    })?;
    debug_assert_eq!(saved.len(), cost.layers.len());
    let layers = cost
        .layers
        .into_iter()
        .zip(saved)
        .map(|(cost, values)| LayerReport {
            cost,
            saved_bytes: (values * element_bytes) as u64,
        })
        .collect();
    Ok(ModelReport {
        throughput,
        element_bytes,
        layers,
    })
}

impl fmt::Display for ModelReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.throughput.batch;
        writeln!(
            f,
            "| layer | params | kept params | dense MFLOP / sample | effective MFLOP / sample | saved activations at batch {b} (MiB) |\n|---|---:|---:|---:|---:|---:|"
        )?;
        let mib = |bytes: u64| bytes as f64 / (1u64 << 20) as f64;
        for l in &self.layers {
            writeln!(
                f,
                "| {} | {} | {} | {:.1} | {:.1} | {:.2} |",
                l.cost.name,
                l.cost.params,
                l.cost.kept_params,
                2.0 * l.cost.macs as f64 / 1e6,
                2.0 * l.cost.effective_macs as f64 / 1e6,
                mib(l.saved_bytes)
            )?;
        }
        writeln!(
            f,
            "| **total** (clip {}, {} persons) | **{}** | **{}** | **{:.1}** | **{:.1}** | **{:.2}** |",
            self.throughput.clip_len,
            self.throughput.persons,
            self.params(),
            self.kept_params(),
            2.0 * self.macs() as f64 / 1e6,
            2.0 * self.effective_macs() as f64 / 1e6,
            mib(self.saved_bytes())
        )?;
        let times = &self.throughput.layer_times;
        if !times.is_empty() && !self.throughput.emulated {
            let total: f64 = times.iter().map(|l| l.forward_seconds + l.backward_seconds).sum();
            writeln!(
                f,
                "\n| layer | forward ms | backward ms | share of the layers' time |\n|---|---:|---:|---:|"
            )?;
            for l in times {
                writeln!(
                    f,
                    "| {} | {:.3} | {:.3} | {:.1}% |",
                    l.name,
                    l.forward_seconds * 1e3,
                    l.backward_seconds * 1e3,
                    100.0 * (l.forward_seconds + l.backward_seconds) / total
                )?;
            }
            writeln!(
                f,
                "| **layers** (each boundary waits for the backend; loss and optimizer not included) | **{:.3}** | **{:.3}** | |\n",
                times.iter().map(|l| l.forward_seconds).sum::<f64>() * 1e3,
                times.iter().map(|l| l.backward_seconds).sum::<f64>() * 1e3,
            )?;
        }
        write!(f, "{}", self.throughput)
    }
}
