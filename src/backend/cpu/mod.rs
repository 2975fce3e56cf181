//! The CPU backend: the reference every GPU kernel is tested against, and the fallback without a GPU.
//! Generic over f32 and f64; parallel over samples with rayon, GEMMs by `matrixmultiply`.

use std::marker::PhantomData;

use super::{Backend, BnGeom, ConvGeom, CosineSchedule, GraphGeom, Scalar, SgdHyper};

/// The CPU backend computing in `T` (f32 or f64).
#[derive(Clone, Debug, Default)]
pub struct CpuBackend<T: Scalar> {
    _elem: PhantomData<T>,
}

impl<T: Scalar> CpuBackend<T> {
    pub fn new() -> Self {
        Self { _elem: PhantomData }
    }
}

#[allow(unused_variables)]
impl<T: Scalar> Backend for CpuBackend<T> {
    type Elem = T;
    type Buf = Vec<T>;
    type IdxBuf = Vec<u32>;

    fn describe(&self) -> String {
        format!("cpu {} ({} threads)", T::NAME, rayon::current_num_threads())
    }
    fn zeros(&self, len: usize) -> Vec<T> {
        vec![T::zero(); len]
    }
    fn upload(&self, host: &[T]) -> Vec<T> {
        host.to_vec()
    }
    fn download(&self, buf: &Vec<T>) -> Vec<T> {
        buf.clone()
    }
    fn upload_idx(&self, host: &[u32]) -> Vec<u32> {
        host.to_vec()
    }
    fn download_idx(&self, buf: &Vec<u32>) -> Vec<u32> {
        buf.clone()
    }
    fn buf_len(&self, buf: &Vec<T>) -> usize {
        buf.len()
    }
    fn copy(&self, src: &Vec<T>, dst: &mut Vec<T>) {
        dst.copy_from_slice(src);
    }
    fn fill(&self, buf: &mut Vec<T>, value: f64) {
        buf.fill(T::of(value));
    }
    fn synchronize(&self) {}

    fn add_assign(&self, acc: &mut Vec<T>, x: &Vec<T>) {
        todo!()
    }
    fn mul(&self, a: &Vec<T>, b: &Vec<T>, y: &mut Vec<T>) {
        todo!()
    }
    fn mul_acc(&self, a: &Vec<T>, b: &Vec<T>, acc: &mut Vec<T>) {
        todo!()
    }
    fn scale(&self, x: &mut Vec<T>, s: f64) {
        todo!()
    }
    fn relu_forward(&self, x: &mut Vec<T>) {
        todo!()
    }
    fn relu_backward(&self, y: &Vec<T>, dy: &mut Vec<T>) {
        todo!()
    }
    fn dropout(&self, x: &mut Vec<T>, p: f64, seed: u64) {
        todo!()
    }
    fn permute(&self, x: &Vec<T>, dims: &[usize], perm: &[usize], y: &mut Vec<T>) {
        todo!()
    }
    fn conv_t_forward(
        &self,
        g: &ConvGeom,
        x: &Vec<T>,
        w: &Vec<T>,
        b: Option<&Vec<T>>,
        y: &mut Vec<T>,
    ) {
        todo!()
    }
    fn conv_t_backward_input(&self, g: &ConvGeom, dy: &Vec<T>, w: &Vec<T>, dx: &mut Vec<T>) {
        todo!()
    }
    fn conv_t_backward_weight(
        &self,
        g: &ConvGeom,
        x: &Vec<T>,
        dy: &Vec<T>,
        dw: &mut Vec<T>,
        db: Option<&mut Vec<T>>,
    ) {
        todo!()
    }
    fn graph_forward(&self, g: &GraphGeom, z: &Vec<T>, a: &Vec<T>, y: &mut Vec<T>) {
        todo!()
    }
    fn graph_backward(
        &self,
        g: &GraphGeom,
        z: &Vec<T>,
        a: &Vec<T>,
        dy: &Vec<T>,
        dz: &mut Vec<T>,
        da: &mut Vec<T>,
    ) {
        todo!()
    }
    fn batch_norm_train(
        &self,
        g: &BnGeom,
        x: &Vec<T>,
        gamma: &Vec<T>,
        beta: &Vec<T>,
        running_mean: &mut Vec<T>,
        running_var: &mut Vec<T>,
        y: &mut Vec<T>,
        save_mean: &mut Vec<T>,
        save_invstd: &mut Vec<T>,
    ) {
        todo!()
    }
    fn batch_norm_eval(
        &self,
        g: &BnGeom,
        x: &Vec<T>,
        gamma: &Vec<T>,
        beta: &Vec<T>,
        running_mean: &Vec<T>,
        running_var: &Vec<T>,
        y: &mut Vec<T>,
    ) {
        todo!()
    }
    fn batch_norm_backward(
        &self,
        g: &BnGeom,
        x: &Vec<T>,
        dy: &Vec<T>,
        gamma: &Vec<T>,
        save_mean: &Vec<T>,
        save_invstd: &Vec<T>,
        dx: &mut Vec<T>,
        dgamma: &mut Vec<T>,
        dbeta: &mut Vec<T>,
    ) {
        todo!()
    }
    fn mean_pool_forward(
        &self,
        n: usize,
        persons: usize,
        c: usize,
        s: usize,
        x: &Vec<T>,
        y: &mut Vec<T>,
    ) {
        todo!()
    }
    fn mean_pool_backward(
        &self,
        n: usize,
        persons: usize,
        c: usize,
        s: usize,
        dy: &Vec<T>,
        dx: &mut Vec<T>,
    ) {
        todo!()
    }
    fn cross_entropy(
        &self,
        n: usize,
        classes: usize,
        logits: &Vec<T>,
        labels: &Vec<u32>,
        smoothing: f64,
        loss: &mut Vec<T>,
        dlogits: &mut Vec<T>,
    ) {
        todo!()
    }
    fn sum_squares(&self, bufs: &[&Vec<T>], out: &mut Vec<T>) {
        todo!()
    }
    fn clip_scale(&self, sq_norm: &Vec<T>, max_norm: f64, scale: &mut Vec<T>) {
        todo!()
    }
    fn cosine_lr(&self, sched: &CosineSchedule, step: &Vec<u32>, lr: &mut Vec<T>) {
        todo!()
    }
    fn increment_step(&self, step: &mut Vec<u32>) {
        todo!()
    }
    fn sgd_step(
        &self,
        params: &mut [&mut Vec<T>],
        grads: &[&Vec<T>],
        momentum: &mut [&mut Vec<T>],
        hyper: &SgdHyper,
        lr: &Vec<T>,
        scale: Option<&Vec<T>>,
        first_step: bool,
    ) {
        todo!()
    }
}
