//! The floor of a training step on a device: the least time its arithmetic needs at the device's
//! peak rates and the least time its memory traffic needs at the device's measured bandwidth; the
//! larger of the two is the floor, and a measured step is reported as a fraction of it.
//!
//! Arithmetic: a training step is 3 forward passes' worth (the forward, and the input and weight
//! gradients of every conv and aggregation), 2 FLOPs a multiply-add ([`ModelCost`]'s MACs). The
//! convolutions run at the peak of their arithmetic (`--precision`), the graph aggregation (dense
//! V×V, on the CUDA cores) at the f32 peak. BN, ReLU, pooling and the optimizer are left out (under
//! 0.5%).
//!
//! Memory: the least traffic of the kernel sequence this engine runs for one training step, every
//! kernel reading each of its operands once and writing each output once, activations and their
//! gradients in the backend's storage (4 bytes a value in f32, 2 in bf16), the input stage (the
//! permute and the data BN, f32 in every storage), parameters, their gradients, momenta and
//! gathered moments in f32, with the fusions it has: batch statistics gathered by the conv and aggregation, the
//! batch norm's pass adding the residual and applying the ReLU, the backward's ReLU mask read on the
//! fly, the residual's gradient added as the conv writes dx. Per block, in values of the block input
//! X = c_in·t_in·v, the conv output Z = 3·c_mid·t_in·v, the aggregation output A = c_mid·t_in·v and
//! the block output U = c_out·t_out·v (per person-sequence):
//!
//! | kernel | forward | backward |
//! |---|---|---|
//! | graph unit's 1x1 conv | X + Z | wgrad X + Z, dx Z + X (+ the residual's gradient: U, or dy and y) |
//! | aggregation | Z + A (statistics gathered) | dz A + Z, da Z + A |
//! | its BN and ReLU | A + A | statistics 3A, dx 4A |
//! | temporal conv | A + U (statistics gathered: + 3/32 U of moments) | wgrad A + U, dx U + A |
//! | its BN, residual and ReLU | U + U (+ U residual) | statistics 3U, dx 4U |
//! | conv residual: 1x1 conv, BN | X + U (+ 3/32 U), U + U | wgrad X + U, dx U + X; BN 3U, 4U |
//!
//! The moments a conv gathers are 24 bytes per channel and 128-column tile, written and read; the
//! aggregation's, one set per (n, c), are left out (1/400 of its output at t·v = 2500). Plus, with
//! dropout in the temporal unit, its passes (and the residual add and ReLU it unfuses),
//! the input permute and data BN, pooling and the classifier, and the SGD step (parameters,
//! gradients and momenta read, parameters and momenta written). Operands the GEMM tiles re-read
//! from L2 are counted once: this is DRAM traffic, the floor no kernel sequence of this structure
//! can beat.

use std::time::Instant;

use super::count::ModelCost;
use crate::backend::{Backend, ConvMath, Storage};
use crate::model::config::ResidualKind;
use crate::model::StgcnConfig;

/// Bytes of one f32 value (parameters, their gradients, momenta, gathered moments).
const F32_BYTES: f64 = 4.0;
/// The partial moments a conv forward gathers, in f32 values per output value: 3 doubles (6
/// values) per output channel and 128-column tile, written by the conv and read by the batch norm.
const CONV_MOMENTS: f64 = 2.0 * 6.0 / 128.0;

/// Dense peak rates in FLOP/s of a device in each arithmetic, as its datasheet gives them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeakRates {
    pub f32: f64,
    pub tf32: f64,
    pub bf16: f64,
}

impl PeakRates {
    /// The peak of the conv arithmetic `math`.
    pub fn of(&self, math: ConvMath) -> f64 {
        match math {
            ConvMath::F32 => self.f32,
            ConvMath::Tf32 => self.tf32,
            ConvMath::Bf16 => self.bf16,
        }
    }
}

/// The dense datasheet peaks of an H100 or H200 SXM (FP32 66.9, TF32 494.7, bf16 989.4 TFLOP/s)
/// when `device` (a backend's description) names one; `None` for any other device, whose floor is
/// then not reported.
pub fn datasheet_peaks(device: &str) -> Option<PeakRates> {
    (device.contains("H100") || device.contains("H200")).then_some(PeakRates {
        f32: 66.9e12,
        tf32: 494.7e12,
        bf16: 989.4e12,
    })
}

/// The device-to-device copy bandwidth of `be` in bytes/s (each byte read once and written once):
/// the median of 9 timed copies of 256 MiB after one untimed, the ceiling of a streaming kernel.
pub fn copy_bandwidth<B: Backend>(be: &B) -> f64 {
    const VALUES: usize = 64 << 20;
    let src = be.zeros(VALUES);
    let mut dst = be.zeros(VALUES);
    be.copy(&src, &mut dst);
    be.synchronize();
    let mut seconds: Vec<f64> = (0..9)
        .map(|_| {
            let t0 = Instant::now();
            be.copy(&src, &mut dst);
            be.synchronize();
            t0.elapsed().as_secs_f64()
        })
        .collect();
    seconds.sort_by(f64::total_cmp);
    let bytes = 2.0 * (VALUES * std::mem::size_of::<B::Elem>()) as f64;
    bytes / seconds[seconds.len() / 2]
}

/// The FLOPs of one training step of `batch` samples: (convolutions, graph aggregation).
pub fn step_flop(cost: &ModelCost, batch: usize) -> (f64, f64) {
    let conv: u64 = cost.layers.iter().map(|l| l.conv_macs).sum();
    let other = cost.macs() - conv;
    let per_step = |macs: u64| 3.0 * 2.0 * macs as f64 * batch as f64;
    // every layer's MACs are its conv's but the graph unit's, which adds the aggregation
    (per_step(conv), per_step(other))
}

/// The least bytes one training step of `batch` samples at `clip_len` frames moves with activations
/// in `storage` (see the module comment for the model).
pub fn step_bytes(cfg: &StgcnConfig, clip_len: usize, batch: usize, storage: Storage) -> f64 {
    let sequences = (batch * cfg.num_person) as f64;
    let v = cfg.layout.num_joints() as f64;
    let mut t = clip_len as f64;
    // the input permute and the data BN (statistics, then the normalisation) and its backward:
    // the input is read and written a few times; 7 passes of it, in f32
    let input = 7.0 * t * v * cfg.in_channels as f64;
    // the activations' values and the f32 moments the convs gather, per sequence
    let mut values = 0.0;
    let mut moments = 0.0;
    for b in cfg.blocks() {
        let t_out = (t / b.stride as f64).ceil();
        let x = b.c_in as f64 * t * v;
        let z = 3.0 * b.c_mid as f64 * t * v;
        let a = b.c_mid as f64 * t * v;
        let u = b.c_out as f64 * t_out * v;
        let dropout = b.tcn_dropout && cfg.tcn_dropout > 0.0;
        let residual = b.residual != ResidualKind::None;
        // graph unit: conv, aggregation, BN + ReLU; forward then backward
        values += (x + z) + (z + a) + 2.0 * a;
        values += 2.0 * (x + z) + 2.0 * (a + z) + 7.0 * a;
        // temporal unit: conv, BN with the block's residual and ReLU
        values += a + u;
        moments += CONV_MOMENTS * u;
        values += if dropout {
            // BN, dropout, then the residual add and the ReLU as passes of their own; the backward
            // copies dy and drops it out before the BN backward
            2.0 * u + 2.0 * u + if residual { 3.0 * u } else { 0.0 } + 2.0 * u + 4.0 * u
        } else if residual {
            3.0 * u
        } else {
            2.0 * u
        };
        values += 7.0 * u + 2.0 * (a + u);
        // the residual: a 1x1 conv and its BN, or the masked dy added as dx is written
        match b.residual {
            ResidualKind::Conv => {
                values += (x + u) + 2.0 * u + 7.0 * u + 2.0 * (x + u) + x;
                moments += CONV_MOMENTS * u;
            }
            ResidualKind::Identity => values += 2.0 * x,
            ResidualKind::None => {}
        }
        t = t_out;
    }
    // pooling and the classifier (forward and backward) read the last features twice each
    let features = cfg.out_channels() as f64 * t * v;
    values += 4.0 * features;
    let params = ModelCost::of(cfg, clip_len).params() as f64;
    // SGD: parameters, gradients, momenta read; parameters, momenta written (once per step)
    values * sequences * storage.bytes() as f64 + ((input + moments) * sequences + 5.0 * params) * F32_BYTES
}

/// The floor of one training step on a device.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StepFloor {
    /// FLOPs of the step: the convolutions and the graph aggregation.
    pub conv_flop: f64,
    pub aggregation_flop: f64,
    /// The least bytes the step moves.
    pub bytes: f64,
    /// Seconds at the peaks: the convs at their arithmetic's, the aggregation at f32's.
    pub compute_seconds: f64,
    /// Seconds at the measured bandwidth.
    pub memory_seconds: f64,
    /// The bandwidth used, bytes/s (a device-to-device copy measured on the device).
    pub bandwidth: f64,
}

impl StepFloor {
    pub fn new(
        cfg: &StgcnConfig,
        clip_len: usize,
        batch: usize,
        math: ConvMath,
        storage: Storage,
        peaks: PeakRates,
        bandwidth: f64,
    ) -> Self {
        let (conv_flop, aggregation_flop) = step_flop(&ModelCost::of(cfg, clip_len), batch);
        let bytes = step_bytes(cfg, clip_len, batch, storage);
        Self {
            conv_flop,
            aggregation_flop,
            bytes,
            compute_seconds: conv_flop / peaks.of(math) + aggregation_flop / peaks.f32,
            memory_seconds: bytes / bandwidth,
            bandwidth,
        }
    }

    /// The larger of the compute and memory floors.
    pub fn seconds(&self) -> f64 {
        self.compute_seconds.max(self.memory_seconds)
    }
}

impl std::fmt::Display for StepFloor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "step floor {:.2} ms: compute {:.2} ms ({:.2} TFLOP of convs, {:.2} of aggregation), memory {:.2} ms ({:.1} GB at a measured {:.0} GB/s)",
            self.seconds() * 1e3,
            self.compute_seconds * 1e3,
            self.conv_flop / 1e12,
            self.aggregation_flop / 1e12,
            self.memory_seconds * 1e3,
            self.bytes / 1e9,
            self.bandwidth / 1e9
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The step's FLOPs are the issue-independent count of the model: at batch 128 and clip 100,
    /// 3 × 2 × 5,697,615,360 MACs × 128 = 4.38 TFLOP.
    #[test]
    fn a_step_is_three_forward_passes() {
        let cfg = StgcnConfig::default();
        let (conv, aggregation) = step_flop(&ModelCost::of(&cfg, 100), 128);
        assert_eq!(conv + aggregation, 6.0 * 5_697_615_360.0 * 128.0);
        assert!(aggregation > 0.0 && aggregation < 0.1 * conv, "{aggregation} vs {conv}");
    }

    /// Three blocks by hand, 1 sequence at t 10, v 25: 4 → 8 (no residual), 8 → 16 with stride 2
    /// (a conv residual), 16 → 16 (an identity residual).
    #[test]
    fn bytes_follow_the_kernel_table() {
        let cfg = StgcnConfig {
            in_channels: 4,
            base_channels: 8,
            num_stages: 3,
            inflate_stages: vec![2],
            down_stages: vec![2],
            num_person: 1,
            num_classes: 5,
            tcn_dropout: 0.0,
            ..StgcnConfig::default()
        };
        let kinds: Vec<_> = cfg.blocks().iter().map(|b| b.residual).collect();
        assert_eq!(kinds, [ResidualKind::None, ResidualKind::Conv, ResidualKind::Identity]);
        let graph = |x: f64, z: f64, a: f64| (x + z) + (z + a) + 2.0 * a + 2.0 * (x + z) + 2.0 * (a + z) + 7.0 * a;
        let temporal = |a: f64, u: f64, tail: f64| (a + u) + 3.0 / 32.0 * u + tail + 7.0 * u + 2.0 * (a + u);
        let block0 = graph(1000.0, 6000.0, 2000.0) + temporal(2000.0, 2000.0, 2.0 * 2000.0);
        let (x, u) = (2000.0, 16.0 * 5.0 * 25.0);
        let residual = (x + u) + 3.0 / 32.0 * u + 2.0 * u + 7.0 * u + 2.0 * (x + u) + x;
        let block1 = graph(x, 12000.0, 4000.0) + temporal(4000.0, u, 3.0 * u) + residual;
        // 16 channels at t 5: x = a = u, z = 3a; the masked dy and y read as dx is written
        let block2 = graph(u, 3.0 * u, u) + temporal(u, u, 3.0 * u) + 2.0 * u;
        let input = 7.0 * 10.0 * 25.0 * 4.0;
        let features = 4.0 * u;
        let params = ModelCost::of(&cfg, 10).params() as f64;
        let want = (input + block0 + block1 + block2 + features + 5.0 * params) * 4.0;
        assert_eq!(step_bytes(&cfg, 10, 1, Storage::F32), want);
        // bf16 storage halves the activations' bytes, not the parameters' or the moments'
        let moments = 3.0 / 32.0 * (2000.0 + u + u + u);
        let bf16 = (block0 + block1 + block2 + features - moments) * 2.0 + (input + moments + 5.0 * params) * 4.0;
        let got = step_bytes(&cfg, 10, 1, Storage::Bf16);
        assert!((got / bf16 - 1.0).abs() < 1e-12, "{got} vs {bf16}");
    }

    /// The NTU model at batch 128, clip 100 moves tens of GB a step: what the memory floor is made of.
    #[test]
    fn the_ntu_step_moves_tens_of_gigabytes() {
        let bytes = step_bytes(&StgcnConfig::default(), 100, 128, Storage::F32);
        assert!((1e10..1e11).contains(&bytes), "{bytes}");
        let bf16 = step_bytes(&StgcnConfig::default(), 100, 128, Storage::Bf16);
        assert!(bf16 > 0.5 * bytes && bf16 < 0.51 * bytes, "{bf16} of {bytes}");
    }

    /// On an H100's peaks at 3.35 TB/s the NTU step in bf16 is memory-bound: the convs' 4.4 TFLOP
    /// take about 5 ms at the bf16 peak (the f32 aggregation adds its share), the traffic longer.
    #[test]
    fn the_floor_is_the_larger_of_compute_and_memory() {
        let cfg = StgcnConfig::default();
        let peaks = datasheet_peaks("cuda f32 NVIDIA H100 80GB HBM3 (sm_90)").expect("an H100");
        assert!(datasheet_peaks("cuda f32 NVIDIA A100-SXM4-80GB (sm_80)").is_none());
        let floor = StepFloor::new(&cfg, 100, 128, ConvMath::Bf16, Storage::F32, peaks, 3.35e12);
        let (conv, aggregation) = step_flop(&ModelCost::of(&cfg, 100), 128);
        assert_eq!(floor.compute_seconds, conv / 989.4e12 + aggregation / 66.9e12);
        assert_eq!(floor.memory_seconds, step_bytes(&cfg, 100, 128, Storage::F32) / 3.35e12);
        assert!(floor.memory_seconds > floor.compute_seconds);
        assert_eq!(floor.seconds(), floor.memory_seconds);
        let text = floor.to_string();
        assert!(
            text.starts_with(&format!("step floor {:.2} ms", floor.memory_seconds * 1e3)),
            "{text}"
        );
    }
}
