//! Element-wise ops: add, multiply, scale, ReLU and counter-based dropout.

use rayon::prelude::*;

use crate::backend::epilogue::{relu, relu_grad};
use crate::backend::{dropout_uniform, Scalar};

/// Elements per parallel task: large enough to amortise scheduling, small enough to balance.
const CHUNK: usize = 1 << 14;

pub fn add_assign<T: Scalar>(acc: &mut [T], x: &[T]) {
    assert_eq!(acc.len(), x.len(), "add_assign: length mismatch");
    acc.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(a, x)| {
        for (a, &x) in a.iter_mut().zip(x) {
            *a += x;
        }
    });
}

pub fn mul<T: Scalar>(a: &[T], b: &[T], y: &mut [T]) {
    assert!(a.len() == b.len() && a.len() == y.len(), "mul: length mismatch");
    for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
        *y = a * b;
    }
}

pub fn mul_acc<T: Scalar>(a: &[T], b: &[T], acc: &mut [T]) {
    assert!(a.len() == b.len() && a.len() == acc.len(), "mul_acc: length mismatch");
    for ((acc, &a), &b) in acc.iter_mut().zip(a).zip(b) {
        *acc += a * b;
    }
}

pub fn scale<T: Scalar>(x: &mut [T], s: f64) {
    let s = T::of(s);
    x.par_chunks_mut(CHUNK).for_each(|c| c.iter_mut().for_each(|v| *v *= s));
}

pub fn relu_forward<T: Scalar>(x: &mut [T]) {
    x.par_chunks_mut(CHUNK).for_each(|c| {
        for v in c {
            *v = relu(*v);
        }
    });
}

pub fn relu_backward<T: Scalar>(y: &[T], dy: &mut [T]) {
    assert_eq!(y.len(), dy.len(), "relu_backward: length mismatch");
    dy.par_chunks_mut(CHUNK).zip(y.par_chunks(CHUNK)).for_each(|(d, y)| {
        for (d, &y) in d.iter_mut().zip(y) {
            *d = relu_grad(y, *d);
        }
    });
}

/// `acc += relu_grad(y, dy)` element-wise.
pub fn relu_backward_add<T: Scalar>(y: &[T], dy: &[T], acc: &mut [T]) {
    assert!(
        y.len() == dy.len() && dy.len() == acc.len(),
        "relu_backward_add: length mismatch"
    );
    acc.par_iter_mut()
        .zip(y.par_iter().zip(dy.par_iter()))
        .for_each(|(a, (&y, &d))| *a += relu_grad(y, d));
}

pub fn dropout<T: Scalar>(x: &mut [T], p: f64, seed: u64) {
    if p <= 0.0 {
        return;
    }
    let keep_scale = T::of(1.0 / (1.0 - p));
    let p = p as f32;
    x.par_chunks_mut(CHUNK).enumerate().for_each(|(chunk, c)| {
        for (j, v) in c.iter_mut().enumerate() {
            let i = (chunk * CHUNK + j) as u64;
            *v = if dropout_uniform(seed, i) >= p {
                *v * keep_scale
            } else {
                T::zero()
            };
        }
    });
}

pub fn abs<T: Scalar>(x: &[T], y: &mut [T]) {
    assert_eq!(x.len(), y.len(), "abs: length mismatch");
    for (y, &x) in y.iter_mut().zip(x) {
        *y = x.abs();
    }
}
