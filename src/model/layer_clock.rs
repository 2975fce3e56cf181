//! Per-layer wall time of a model's forward and backward passes, for the measurement API.
//!
//! The layers of a step are queued on the backend without waiting, so a layer's time is only
//! visible when each boundary waits for the work before it: while a clock is attached, the model
//! synchronizes the backend before and after every layer and adds the time between to that layer.
//! The waits cost a little (one host–device round trip per layer on a GPU) and serialize what the
//! backend could overlap, so clocked passes are timed apart from the model's plain throughput.

use std::time::Instant;

use serde::Serialize;

use crate::backend::Backend;

/// The accumulated forward and backward seconds of one layer, over `passes` passes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LayerTime {
    pub name: String,
    pub forward_seconds: f64,
    pub backward_seconds: f64,
}

/// Which pass a timed section belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    Forward,
    Backward,
}

/// Collects per-layer times in the order the layers are first seen.
#[derive(Clone, Debug, Default)]
pub struct LayerClock {
    layers: Vec<LayerTime>,
}

impl LayerClock {
    /// Runs `work` as layer `name`'s part of `pass`, waiting for the backend on both sides.
    pub fn time<B: Backend, R>(&mut self, be: &B, name: &str, pass: Pass, work: impl FnOnce() -> R) -> R {
        be.synchronize();
        let start = Instant::now();
        let out = work();
        be.synchronize();
        let seconds = start.elapsed().as_secs_f64();
        let layer = match self.layers.iter().position(|l| l.name == name) {
            Some(i) => &mut self.layers[i],
            None => {
                self.layers.push(LayerTime {
                    name: name.to_string(),
                    ..LayerTime::default()
                });
                self.layers.last_mut().expect("just pushed")
            }
        };
        match pass {
            Pass::Forward => layer.forward_seconds += seconds,
            Pass::Backward => layer.backward_seconds += seconds,
        }
        out
    }

    /// The accumulated times divided by `passes`: the mean per pass.
    pub fn mean(&self, passes: usize) -> Vec<LayerTime> {
        let d = passes.max(1) as f64;
        self.layers
            .iter()
            .map(|l| LayerTime {
                name: l.name.clone(),
                forward_seconds: l.forward_seconds / d,
                backward_seconds: l.backward_seconds / d,
            })
            .collect()
    }
}

/// Runs `work` under `clock` when there is one, else as it is.
pub fn timed<B: Backend, R>(
    clock: &mut Option<LayerClock>,
    be: &B,
    name: &str,
    pass: Pass,
    work: impl FnOnce() -> R,
) -> R {
    match clock {
        Some(c) => c.time(be, name, pass, work),
        None => work(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::CpuBackend;

    #[test]
    fn times_add_up_per_layer_and_pass_in_first_seen_order() {
        let be = CpuBackend::<f32>::new();
        let mut clock = LayerClock::default();
        let sleep = |ms| std::thread::sleep(std::time::Duration::from_millis(ms));
        for _ in 0..2 {
            clock.time(&be, "b", Pass::Forward, || sleep(4));
            clock.time(&be, "a", Pass::Forward, || sleep(1));
            clock.time(&be, "a", Pass::Backward, || sleep(2));
        }
        let mean = clock.mean(2);
        assert_eq!(mean.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        assert!(mean[0].forward_seconds >= 4e-3 && mean[0].backward_seconds == 0.0);
        assert!(mean[1].forward_seconds >= 1e-3 && mean[1].backward_seconds >= 2e-3);
        let mut none = None;
        assert_eq!(timed(&mut none, &be, "x", Pass::Forward, || 7), 7);
    }
}
