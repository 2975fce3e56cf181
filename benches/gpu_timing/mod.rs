//! What the GPU benchmarks share: ST-GCN's conv shapes at batch 128 x 2 persons, input data,
//! device time from CUDA events, and the measured copy bandwidth (the memory ceiling).

#![allow(dead_code)] // each bench uses a different subset

use std::cell::RefCell;
use std::time::Duration;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::CudaEvent;
use leangcn::backend::cuda::CudaBackend;
use leangcn::backend::{Backend, ConvGeom};

pub const SEQUENCES: usize = 256;
pub const JOINTS: usize = 25;
pub const SUBSETS: usize = 3;

pub fn geom(c_in: usize, c_out: usize, t_in: usize, kt: usize, stride: usize) -> ConvGeom {
    ConvGeom {
        n: SEQUENCES,
        c_in,
        c_out,
        t_in,
        v: JOINTS,
        kt,
        pad: (kt - 1) / 2,
        stride,
    }
}

/// (name, geometry) of every distinct conv of the network.
pub fn shapes() -> Vec<(String, ConvGeom)> {
    let mut shapes = Vec::new();
    for (c_in, c_out, t_in, stride) in [
        (64, 64, 100, 1),
        (64, 128, 100, 2),
        (128, 128, 50, 1),
        (128, 256, 50, 2),
        (256, 256, 25, 1),
    ] {
        shapes.push((
            format!("temporal_9x1_c{c_in}-{c_out}_t{t_in}_s{stride}"),
            geom(c_in, c_out, t_in, 9, stride),
        ));
    }
    for (c, t) in [(3, 100), (64, 100), (128, 50), (256, 25)] {
        let c_out = SUBSETS * if c == 3 { 64 } else { c };
        shapes.push((format!("graph_1x1_c{c}-{c_out}_t{t}"), geom(c, c_out, t, 1, 1)));
    }
    for (c_in, t_in) in [(64, 100), (128, 50)] {
        shapes.push((
            format!("residual_1x1_c{c_in}-{}_t{t_in}_s2", 2 * c_in),
            geom(c_in, 2 * c_in, t_in, 1, 2),
        ));
    }
    shapes
}

/// Deterministic, varied values in [-1, 1).
pub fn data(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919) % 2003) as f32 / 1001.5 - 1.0).collect()
}

/// Device time of `iters` calls of `op`, between two events on the backend's stream.
pub fn device_time(be: &CudaBackend, events: &(CudaEvent, CudaEvent), iters: u64, mut op: impl FnMut()) -> Duration {
    let stream = &be.device().stream;
    events.0.record(stream).expect("recording the start event");
    for _ in 0..iters {
        op();
    }
    events.1.record(stream).expect("recording the stop event");
    let ms = events.0.elapsed_ms(&events.1).expect("reading the event timer");
    be.check().expect("a conv op failed");
    Duration::from_secs_f64(ms as f64 * 1e-3)
}

/// A start and a stop event on the backend's context.
pub fn events(be: &CudaBackend) -> (CudaEvent, CudaEvent) {
    let new_event = || {
        be.device()
            .ctx
            .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .expect("creating a timing event")
    };
    (new_event(), new_event())
}

/// Per-call times (ms) of the samples criterion takes of one benchmark, and their median.
#[derive(Default)]
pub struct Samples(RefCell<Vec<f64>>);

impl Samples {
    /// `device_time` of `iters` calls, recorded per call.
    pub fn time(&self, be: &CudaBackend, events: &(CudaEvent, CudaEvent), iters: u64, op: impl FnMut()) -> Duration {
        let t = device_time(be, events, iters, op);
        self.0.borrow_mut().push(t.as_secs_f64() * 1e3 / iters as f64);
        t
    }

    pub fn median_ms(&self) -> f64 {
        let mut v = self.0.borrow().clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }
}

/// Bytes per second of a 1 GiB device-to-device copy (read plus write), the median of 5.
pub fn copy_bandwidth(be: &CudaBackend, events: &(CudaEvent, CudaEvent)) -> f64 {
    let len = (1usize << 30) / 4;
    let (src, mut dst) = (be.zeros(len), be.zeros(len));
    let mut runs: Vec<f64> = (0..5)
        .map(|_| device_time(be, events, 4, || be.copy(&src, &mut dst)).as_secs_f64() / 4.0)
        .collect();
    runs.sort_by(f64::total_cmp);
    2.0 * (len * 4) as f64 / runs[2]
}
