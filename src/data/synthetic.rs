//! The built-in synthetic skeleton-action dataset: the zero-setup default of the trainer.
//!
//! NTU RGB+D 25-joint skeletons (x right, y up, z forward, metres) perform one of 12 whole-body
//! motions. Every clip draws, from its own seed, the view (rotation about the vertical axis), body
//! size, position, speed, phase and amplitude of the motion, sensor noise, and whether a second,
//! idle person stands nearby (PYSKL's layout: an absent person is all zeros). The labels are only
//! recoverable from how joints move relative to each other, so a template classifier on raw
//! coordinates does poorly while an ST-GCN learns them.

use super::{ClipDataset, ClipShape};
use crate::model::init::InitRng;
use crate::{Error, Result};

/// The actions, by label.
pub const CLASS_NAMES: [&str; 12] = [
    "wave right hand",
    "wave left hand",
    "raise both arms",
    "clap",
    "squat",
    "jump",
    "kick right",
    "kick left",
    "bow",
    "twist torso",
    "walk in place",
    "punch forward",
];

/// NTU joint indices used below.
mod joint {
    pub const SPINE_BASE: usize = 0;
    pub const SPINE_MID: usize = 1;
    pub const NECK: usize = 2;
    pub const HEAD: usize = 3;
    pub const L_SHOULDER: usize = 4;
    pub const L_ELBOW: usize = 5;
    pub const L_WRIST: usize = 6;
    pub const L_HAND: usize = 7;
    pub const R_SHOULDER: usize = 8;
    pub const R_ELBOW: usize = 9;
    pub const R_WRIST: usize = 10;
    pub const R_HAND: usize = 11;
    pub const L_HIP: usize = 12;
    pub const L_KNEE: usize = 13;
    pub const L_ANKLE: usize = 14;
    pub const L_FOOT: usize = 15;
    pub const R_HIP: usize = 16;
    pub const R_KNEE: usize = 17;
    pub const R_ANKLE: usize = 18;
    pub const R_FOOT: usize = 19;
    pub const SPINE_SHOULDER: usize = 20;
    pub const L_HAND_TIP: usize = 21;
    pub const L_THUMB: usize = 22;
    pub const R_HAND_TIP: usize = 23;
    pub const R_THUMB: usize = 24;
}
use joint::*;

/// Rest pose, arms hanging, `[x, y, z]` per NTU joint.
const REST: [[f64; 3]; 25] = [
    [0.0, 0.95, 0.0],    // spine base
    [0.0, 1.20, 0.0],    // spine mid
    [0.0, 1.52, 0.0],    // neck
    [0.0, 1.68, 0.02],   // head
    [-0.19, 1.45, 0.0],  // left shoulder
    [-0.23, 1.18, 0.0],  // left elbow
    [-0.25, 0.93, 0.02], // left wrist
    [-0.25, 0.86, 0.03], // left hand
    [0.19, 1.45, 0.0],   // right shoulder
    [0.23, 1.18, 0.0],   // right elbow
    [0.25, 0.93, 0.02],  // right wrist
    [0.25, 0.86, 0.03],  // right hand
    [-0.10, 0.93, 0.0],  // left hip
    [-0.11, 0.50, 0.02], // left knee
    [-0.11, 0.08, 0.0],  // left ankle
    [-0.11, 0.02, 0.10], // left foot
    [0.10, 0.93, 0.0],   // right hip
    [0.11, 0.50, 0.02],  // right knee
    [0.11, 0.08, 0.0],   // right ankle
    [0.11, 0.02, 0.10],  // right foot
    [0.0, 1.45, 0.0],    // spine shoulder
    [-0.25, 0.80, 0.04], // left hand tip
    [-0.22, 0.88, 0.06], // left thumb
    [0.25, 0.80, 0.04],  // right hand tip
    [0.22, 0.88, 0.06],  // right thumb
];

const RIGHT_ARM: [usize; 6] = [R_ELBOW, R_WRIST, R_HAND, R_HAND_TIP, R_THUMB, R_SHOULDER];
const LEFT_ARM: [usize; 6] = [L_ELBOW, L_WRIST, L_HAND, L_HAND_TIP, L_THUMB, L_SHOULDER];
const UPPER_BODY: [usize; 17] = [
    SPINE_MID,
    NECK,
    HEAD,
    L_SHOULDER,
    L_ELBOW,
    L_WRIST,
    L_HAND,
    R_SHOULDER,
    R_ELBOW,
    R_WRIST,
    R_HAND,
    SPINE_SHOULDER,
    L_HAND_TIP,
    L_THUMB,
    R_HAND_TIP,
    R_THUMB,
    SPINE_BASE,
];

/// Settings of the synthetic dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticConfig {
    pub seed: u64,
    /// Number of classes (at most 12, the first ones of [`CLASS_NAMES`]).
    pub classes: usize,
    pub samples_per_class: usize,
    /// Frames per clip.
    pub frames: usize,
    /// Person slots per clip (1 or 2).
    pub persons: usize,
    /// Standard deviation of the per-joint sensor noise, metres.
    pub noise: f64,
    /// Largest view rotation about the vertical axis, radians.
    pub max_yaw: f64,
    /// Probability that a second, idle person is present (with two person slots).
    pub second_person: f64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            classes: 12,
            samples_per_class: 100,
            frames: 32,
            persons: 2,
            noise: 0.015,
            max_yaw: std::f64::consts::FRAC_PI_2,
            second_person: 0.5,
        }
    }
}

impl SyntheticConfig {
    /// The matching validation set: a quarter of the samples, from a disjoint seed stream.
    pub fn validation(&self) -> Self {
        Self {
            seed: self.seed ^ 0x7A11_D47E_0000_0001,
            samples_per_class: self.samples_per_class.div_ceil(4),
            ..self.clone()
        }
    }
}

/// The synthetic dataset: clip `i` has label `i % classes` and is a pure function of (seed, i).
#[derive(Clone, Debug)]
pub struct SyntheticDataset {
    cfg: SyntheticConfig,
}

impl SyntheticDataset {
    pub fn new(cfg: SyntheticConfig) -> Result<Self> {
        if cfg.classes == 0 || cfg.classes > CLASS_NAMES.len() {
            return Err(Error::config(format!(
                "the synthetic dataset has 1 to {} classes, {} were asked for",
                CLASS_NAMES.len(),
                cfg.classes
            )));
        }
        if cfg.persons == 0 || cfg.persons > 2 || cfg.frames == 0 || cfg.samples_per_class == 0 {
            return Err(Error::config(format!(
                "synthetic dataset: persons must be 1 or 2, frames and samples_per_class at least 1 (got {}, {}, {})",
                cfg.persons, cfg.frames, cfg.samples_per_class
            )));
        }
        Ok(Self { cfg })
    }

    pub fn config(&self) -> &SyntheticConfig {
        &self.cfg
    }
}

/// Per-clip random draws.
struct Performance {
    yaw: f64,
    scale: f64,
    offset: [f64; 3],
    cycles: f64,
    phase: f64,
    amplitude: f64,
}

impl Performance {
    fn draw(rng: &mut InitRng, max_yaw: f64) -> Self {
        Self {
            yaw: (2.0 * rng.uniform() - 1.0) * max_yaw,
            scale: 0.75 + 0.5 * rng.uniform(),
            // position in the room and camera height
            offset: [
                (rng.uniform() - 0.5) * 0.8,
                (rng.uniform() - 0.5) * 0.5,
                (rng.uniform() - 0.5) * 0.8,
            ],
            cycles: 0.7 + 1.3 * rng.uniform(),
            phase: rng.uniform() * std::f64::consts::TAU,
            amplitude: 0.6 + 0.6 * rng.uniform(),
        }
    }
}

/// Adds `d` to every joint in `joints`.
fn shift(pose: &mut [[f64; 3]; 25], joints: &[usize], d: [f64; 3]) {
    for &j in joints {
        for c in 0..3 {
            pose[j][c] += d[c];
        }
    }
}

/// Rotates `joints` about the horizontal x axis through `pivot` by `angle` (positive: forward).
fn pitch(pose: &mut [[f64; 3]; 25], joints: &[usize], pivot: [f64; 3], angle: f64) {
    let (s, c) = angle.sin_cos();
    for &j in joints {
        let (y, z) = (pose[j][1] - pivot[1], pose[j][2] - pivot[2]);
        pose[j][1] = pivot[1] + c * y - s * z;
        pose[j][2] = pivot[2] + s * y + c * z;
    }
}

/// Rotates `joints` about the vertical axis through `pivot` by `angle`.
fn yaw(pose: &mut [[f64; 3]; 25], joints: &[usize], pivot: [f64; 3], angle: f64) {
    let (s, c) = angle.sin_cos();
    for &j in joints {
        let (x, z) = (pose[j][0] - pivot[0], pose[j][2] - pivot[2]);
        pose[j][0] = pivot[0] + c * x + s * z;
        pose[j][2] = pivot[2] - s * x + c * z;
    }
}

/// Raises an arm sideways by `angle` (0 hanging, π/2 horizontal) about its shoulder.
fn raise_arm(pose: &mut [[f64; 3]; 25], arm: &[usize; 6], angle: f64) {
    let shoulder = pose[arm[5]];
    let side = shoulder[0].signum();
    let (s, c) = angle.sin_cos();
    for &j in &arm[..5] {
        let (x, y) = (pose[j][0] - shoulder[0], pose[j][1] - shoulder[1]);
        pose[j][0] = shoulder[0] + c * x - side * s * y;
        pose[j][1] = shoulder[1] + side * s * x + c * y;
    }
}

/// The pose of class `label` at motion phase `p` (radians) with amplitude `a`.
fn pose_at(label: usize, p: f64, a: f64) -> [[f64; 3]; 25] {
    let mut pose = REST;
    let wave = p.sin();
    let lift = 0.5 * (1.0 - p.cos()); // 0..1
    let leg_r = [R_KNEE, R_ANKLE, R_FOOT];
    let leg_l = [L_KNEE, L_ANKLE, L_FOOT];
    match label {
        0 | 1 => {
            let arm = if label == 0 { &RIGHT_ARM } else { &LEFT_ARM };
            raise_arm(&mut pose, arm, 2.3);
            let side = if label == 0 { 1.0 } else { -1.0 };
            shift(&mut pose, &arm[1..5], [side * 0.18 * a * wave, 0.0, 0.0]);
        }
        2 => {
            raise_arm(&mut pose, &RIGHT_ARM, 2.6 * a * lift);
            raise_arm(&mut pose, &LEFT_ARM, 2.6 * a * lift);
        }
        3 => {
            for (arm, side) in [(&RIGHT_ARM, 1.0), (&LEFT_ARM, -1.0)] {
                let shoulder = pose[arm[5]];
                pitch(&mut pose, &arm[..5], shoulder, -1.3);
                shift(&mut pose, &arm[1..5], [-side * 0.2 * a * lift, 0.0, 0.0]);
            }
        }
        4 => {
            let depth = 0.35 * a * lift;
            shift(&mut pose, &UPPER_BODY, [0.0, -depth, 0.0]);
            shift(&mut pose, &[L_HIP, R_HIP], [0.0, -depth, -0.1 * lift]);
            shift(&mut pose, &[L_KNEE, R_KNEE], [0.0, -depth * 0.4, 0.2 * a * lift]);
        }
        5 => {
            let height = 0.3 * a * wave.max(0.0);
            let crouch = 0.12 * a * (-wave).max(0.0);
            let all: Vec<usize> = (0..25).collect();
            shift(&mut pose, &all, [0.0, height - crouch, 0.0]);
            shift(&mut pose, &[L_ANKLE, L_FOOT, R_ANKLE, R_FOOT], [0.0, crouch, 0.0]);
            raise_arm(&mut pose, &RIGHT_ARM, 0.8 * a * wave.max(0.0));
            raise_arm(&mut pose, &LEFT_ARM, 0.8 * a * wave.max(0.0));
        }
        6 | 7 => {
            let (leg, hip) = if label == 6 { (leg_r, R_HIP) } else { (leg_l, L_HIP) };
            let hip_pos = pose[hip];
            pitch(&mut pose, &leg, hip_pos, -1.2 * a * lift);
        }
        8 => {
            let base = pose[SPINE_BASE];
            let upper: Vec<usize> = UPPER_BODY.iter().copied().filter(|&j| j != SPINE_BASE).collect();
            pitch(&mut pose, &upper, base, 0.9 * a * lift);
        }
        9 => {
            let base = pose[SPINE_BASE];
            let upper: Vec<usize> = UPPER_BODY.iter().copied().filter(|&j| j != SPINE_BASE).collect();
            yaw(&mut pose, &upper, base, 0.8 * a * wave);
        }
        10 => {
            let (r, l) = (pose[R_HIP], pose[L_HIP]);
            pitch(&mut pose, &leg_r, r, -0.9 * a * wave.max(0.0));
            pitch(&mut pose, &leg_l, l, -0.9 * a * (-wave).max(0.0));
            let (rs, ls) = (pose[R_SHOULDER], pose[L_SHOULDER]);
            pitch(&mut pose, &RIGHT_ARM[..5], rs, 0.5 * a * wave);
            pitch(&mut pose, &LEFT_ARM[..5], ls, -0.5 * a * wave);
        }
        _ => {
            // punch forward, hands alternating
            for (arm, sign) in [(&RIGHT_ARM, 1.0), (&LEFT_ARM, -1.0)] {
                let shoulder = pose[arm[5]];
                pitch(&mut pose, &arm[..5], shoulder, -1.4);
                let reach = 0.25 * a * (sign * wave).max(0.0);
                shift(&mut pose, &arm[1..5], [0.0, 0.25, reach - 0.05]);
            }
        }
    }
    pose
}

/// An idle person: slight sway.
fn idle_pose(p: f64, a: f64) -> [[f64; 3]; 25] {
    let mut pose = REST;
    let all: Vec<usize> = (0..25).collect();
    shift(&mut pose, &all, [0.03 * a * p.sin(), 0.0, 0.02 * a * p.cos()]);
    pose
}

/// Writes one person's frames into `out` (`[T, V, 3]`).
fn render(
    out: &mut [f32],
    frames: usize,
    perf: &Performance,
    noise: f64,
    rng: &mut InitRng,
    pose: impl Fn(f64) -> [[f64; 3]; 25],
) {
    let (s, c) = perf.yaw.sin_cos();
    for t in 0..frames {
        let p = perf.phase + std::f64::consts::TAU * perf.cycles * t as f64 / frames as f64;
        let joints = pose(p);
        for (v, j) in joints.iter().enumerate() {
            let (x, y, z) = (j[0] * perf.scale, j[1] * perf.scale, j[2] * perf.scale);
            let world = [
                c * x + s * z + perf.offset[0],
                y + perf.offset[1],
                -s * x + c * z + perf.offset[2],
            ];
            for ch in 0..3 {
                out[(t * 25 + v) * 3 + ch] = (world[ch] + noise * rng.normal()) as f32;
            }
        }
    }
}

impl ClipDataset for SyntheticDataset {
    fn len(&self) -> usize {
        self.cfg.classes * self.cfg.samples_per_class
    }

    fn num_classes(&self) -> usize {
        self.cfg.classes
    }

    fn clip_shape(&self) -> ClipShape {
        ClipShape {
            persons: self.cfg.persons,
            frames: self.cfg.frames,
            joints: 25,
            channels: 3,
        }
    }

    /// Clip `index` is fixed by (dataset seed, index); the synthetic data needs no per-epoch
    /// augmentation, so `seed` is not used.
    fn load_clip(&self, index: usize, _seed: u64, out: &mut [f32]) -> Result<u32> {
        let shape = self.clip_shape();
        if index >= self.len() || out.len() != shape.len() {
            return Err(Error::config(format!(
                "synthetic clip {index} of {} into a buffer of {} values (expected {})",
                self.len(),
                out.len(),
                shape.len()
            )));
        }
        let label = index % self.cfg.classes;
        let mut rng = InitRng::new(self.cfg.seed.wrapping_mul(0x9E37_79B9).wrapping_add(index as u64));
        let person = shape.frames * 25 * 3;
        let perf = Performance::draw(&mut rng, self.cfg.max_yaw);
        render(&mut out[..person], shape.frames, &perf, self.cfg.noise, &mut rng, |p| {
            pose_at(label, p, perf.amplitude)
        });
        if shape.persons == 2 {
            if rng.uniform() < self.cfg.second_person {
                let mut other = Performance::draw(&mut rng, self.cfg.max_yaw);
                other.offset[0] += if rng.uniform() < 0.5 { 1.0 } else { -1.0 };
                render(
                    &mut out[person..],
                    shape.frames,
                    &other,
                    self.cfg.noise,
                    &mut rng,
                    |p| idle_pose(p, other.amplitude),
                );
            } else {
                out[person..].fill(0.0);
            }
        }
        Ok(label as u32)
    }
}
