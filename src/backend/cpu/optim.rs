//! SGD in PyTorch's order of operations (and, in f32, its FMA forms bit for bit), global squared
//! norm, clip factor and the cosine schedule.

use rayon::prelude::*;

use crate::backend::{CosineSchedule, Scalar, SgdHyper};

pub fn sum_squares<T: Scalar>(bufs: &[&Vec<T>], out: &mut [T]) {
    // one f64 sum per tensor (each in a fixed order), added in tensor order
    let per_tensor: Vec<f64> = bufs
        .par_iter()
        .map(|b| b.iter().map(|v| v.as_f64() * v.as_f64()).sum())
        .collect();
    out[0] = T::of(per_tensor.iter().sum());
}

pub fn clip_scale<T: Scalar>(sq_norm: &[T], max_norm: f64, scale: &mut [T]) {
    let norm = sq_norm[0].as_f64().sqrt();
    scale[0] = T::of((max_norm / (norm + 1e-6)).min(1.0));
}

pub fn cosine_lr<T: Scalar>(sched: &CosineSchedule, step: &[u32], lr: &mut [T]) {
    lr[0] = T::of(sched.lr_at(step[0] as u64));
}

#[allow(clippy::too_many_arguments)]
pub fn sgd_step<T: Scalar>(
    params: &mut [&mut Vec<T>],
    grads: &[&Vec<T>],
    momentum: &mut [&mut Vec<T>],
    hyper: &SgdHyper,
    lr: &[T],
    scale: Option<&[T]>,
    first_step: bool,
) {
    assert!(
        params.len() == grads.len() && params.len() == momentum.len(),
        "sgd_step: tensor counts differ"
    );
    let wd = T::of(hyper.weight_decay);
    let m = T::of(hyper.momentum);
    let keep = T::of(1.0 - hyper.dampening);
    let neg_lr = -lr[0];
    let scale = scale.map(|s| s[0]);
    params
        .par_iter_mut()
        .zip(grads.par_iter())
        .zip(momentum.par_iter_mut())
        .for_each(|((p, g), buf)| {
            assert!(
                p.len() == g.len() && p.len() == buf.len(),
                "sgd_step: tensor lengths differ"
            );
            for ((p, &g), b) in p.iter_mut().zip(g.iter()).zip(buf.iter_mut()) {
                let g = match scale {
                    Some(s) => g * s,
                    None => g,
                };
                let g = if hyper.weight_decay != 0.0 { p.mul_add(wd, g) } else { g };
                let d = if hyper.momentum != 0.0 {
                    *b = if first_step {
                        g
                    } else if hyper.dampening == 0.0 {
                        *b * m + g
                    } else {
                        g.mul_add(keep, *b * m)
                    };
                    if hyper.nesterov {
                        b.mul_add(m, g)
                    } else {
                        *b
                    }
                } else {
                    g
                };
                *p = d.mul_add(neg_lr, *p);
            }
        });
}
