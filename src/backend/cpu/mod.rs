//! The CPU backend: the reference every GPU kernel is tested against, and the fallback without a GPU.
//! Generic over f32 and f64; parallel over samples with rayon, GEMMs by the `gemm` crate (AVX-512 kernels where the CPU has them).

mod batch_norm;
mod conv;
mod csr;
mod elementwise;
mod graph;
mod loss;
mod optim;
mod parallel;
mod permute;
mod pool;
mod select;
mod semi_sparse;

use std::marker::PhantomData;

pub use batch_norm::ChannelMoments;

use super::sparse::{CsrWeight, Packed24Weight};
use super::{
    Backend, BnEpilogue, BnEval, BnGeom, ConvGeom, ConvMath, CosineSchedule, F32Region, GradAdd, GraphGeom, Scalar,
    SgdHyper, Storage,
};

/// The CPU backend computing in `T` (f32 or f64).
#[derive(Clone, Debug, Default)]
pub struct CpuBackend<T: Scalar> {
    /// The arithmetic of the conv GEMMs: the rounded modes emulate the GPU's tensor cores exactly
    /// (operands rounded, products and sums in `T`), so they are the reference for those kernels.
    conv_math: ConvMath,
    /// How activations are stored: in bf16 storage every op rounds the activations it writes,
    /// the exact emulation of a device that stores them in bf16.
    storage: Storage,
    /// Inside `with_f32_activations`: nothing is rounded.
    f32_region: F32Region,
    _elem: PhantomData<T>,
}

impl<T: Scalar> CpuBackend<T> {
    pub fn new() -> Self {
        Self::with_conv_math(ConvMath::F32)
    }

    /// A backend whose conv GEMMs round their operands as `conv_math` says.
    pub fn with_conv_math(conv_math: ConvMath) -> Self {
        Self::with_precision(conv_math, Storage::F32)
    }

    /// A backend whose conv GEMMs round their operands as `conv_math` says and whose ops store
    /// activations as `storage` says.
    pub fn with_precision(conv_math: ConvMath, storage: Storage) -> Self {
        Self {
            conv_math,
            storage,
            f32_region: F32Region::default(),
            _elem: PhantomData,
        }
    }

    /// `y`, an activation an op just wrote, as the storage keeps it.
    fn stored(&self, y: &mut [T]) {
        if !self.f32_region.active() {
            self.storage.round_in_place(y)
        }
    }
}

/// The geometry of an evaluation-mode batch norm over `[n, c, s]` (its momentum is unused).
fn eval_geom(n: usize, c: usize, s: usize, eps: f64) -> BnGeom {
    BnGeom {
        n,
        c,
        s,
        eps,
        momentum: 0.0,
    }
}

// The trait takes `&Vec<T>` because `Buf = Vec<T>`.
#[allow(clippy::ptr_arg)]
impl<T: Scalar> Backend for CpuBackend<T> {
    type Elem = T;
    type Buf = Vec<T>;
    type IdxBuf = Vec<u32>;
    type Graph = ();

    fn describe(&self) -> String {
        let math = match self.conv_math {
            ConvMath::F32 => String::new(),
            m => format!(", {m}-rounded conv operands"),
        };
        let storage = match self.storage {
            Storage::F32 => "",
            Storage::Bf16 => ", bf16-stored activations",
        };
        format!(
            "cpu {} ({} threads{math}{storage})",
            T::NAME,
            rayon::current_num_threads()
        )
    }
    fn conv_math(&self) -> ConvMath {
        self.conv_math
    }
    fn storage(&self) -> Storage {
        self.storage
    }
    fn round_to_storage(&self, x: &mut Vec<T>) {
        self.stored(x)
    }
    fn with_f32_activations<R>(&self, f: impl FnOnce() -> R) -> R {
        self.f32_region.run(f)
    }
    fn zeros(&self, len: usize) -> Vec<T> {
        vec![T::zero(); len]
    }
    fn upload(&self, host: &[T]) -> Vec<T> {
        host.to_vec()
    }
    fn upload_into(&self, host: &[T], dst: &mut Vec<T>) {
        dst.copy_from_slice(host);
    }
    fn upload_idx_into(&self, host: &[u32], dst: &mut Vec<u32>) {
        dst.copy_from_slice(host);
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
    fn copy_idx(&self, src: &Vec<u32>, dst: &mut Vec<u32>) {
        dst.copy_from_slice(src);
    }
    fn fill(&self, buf: &mut Vec<T>, value: f64) {
        buf.fill(T::of(value));
    }
    fn synchronize(&self) {}
    fn check(&self) -> crate::Result<()> {
        Ok(())
    }
    fn begin_capture(&self) -> bool {
        false
    }
    fn end_capture(&self) -> Option<()> {
        None
    }
    fn replay(&self, _graph: &()) {}

    fn add_assign(&self, acc: &mut Vec<T>, x: &Vec<T>) {
        elementwise::add_assign(acc, x)
    }
    fn mul(&self, a: &Vec<T>, b: &Vec<T>, y: &mut Vec<T>) {
        elementwise::mul(a, b, y)
    }
    fn mul_acc(&self, a: &Vec<T>, b: &Vec<T>, acc: &mut Vec<T>) {
        elementwise::mul_acc(a, b, acc)
    }
    fn scale(&self, x: &mut Vec<T>, s: f64) {
        elementwise::scale(x, s)
    }
    fn relu_forward(&self, x: &mut Vec<T>) {
        elementwise::relu_forward(x)
    }
    fn relu_backward(&self, y: &Vec<T>, dy: &mut Vec<T>) {
        elementwise::relu_backward(y, dy)
    }
    fn relu_backward_add(&self, y: &Vec<T>, dy: &Vec<T>, acc: &mut Vec<T>) {
        elementwise::relu_backward_add(y, dy, acc);
        self.stored(acc)
    }
    fn dropout(&self, x: &mut Vec<T>, p: f64, seed: u64) {
        elementwise::dropout(x, p, seed);
        self.stored(x)
    }
    fn kth_smallest(&self, bufs: &[&Vec<T>], k: usize, out: &mut Vec<T>) {
        select::kth_smallest(bufs, k, out)
    }
    fn threshold_mask(&self, score: &Vec<T>, tau: &Vec<T>, mask: &mut Vec<T>) {
        select::threshold_mask(score, tau, mask)
    }
    fn abs(&self, x: &Vec<T>, y: &mut Vec<T>) {
        elementwise::abs(x, y)
    }
    fn permute(&self, x: &Vec<T>, dims: &[usize], perm: &[usize], y: &mut Vec<T>) {
        permute::permute(x, dims, perm, y);
        self.stored(y)
    }
    fn conv_t_forward(&self, g: &ConvGeom, x: &Vec<T>, w: &Vec<T>, b: Option<&Vec<T>>, y: &mut Vec<T>) {
        let (x, w) = (
            conv::rounded_operand(self.conv_math, x),
            conv::rounded_operand(self.conv_math, w),
        );
        conv::forward(g, &x, &w, b.map(Vec::as_slice), y);
        self.stored(y)
    }
    fn conv_t_backward_input(&self, g: &ConvGeom, dy: &Vec<T>, w: &Vec<T>, dx: &mut Vec<T>) {
        let (dy, w) = (
            conv::rounded_operand(self.conv_math, dy),
            conv::rounded_operand(self.conv_math, w),
        );
        conv::backward_input(g, &dy, &w, dx);
        self.stored(dx)
    }
    fn conv_t_backward_input_add(
        &self,
        g: &ConvGeom,
        dy: &Vec<T>,
        w: &Vec<T>,
        add: GradAdd<'_, Vec<T>>,
        dx: &mut Vec<T>,
    ) {
        // the CPU gains nothing from fusing: the two ops in sequence
        self.conv_t_backward_input(g, dy, w, dx);
        add.add_to(self, dx);
    }
    fn conv_t_backward_weight(&self, g: &ConvGeom, x: &Vec<T>, dy: &Vec<T>, dw: &mut Vec<T>, db: Option<&mut Vec<T>>) {
        // the bias gradient sums the unrounded dy, as the GPU kernels do
        if let Some(db) = db {
            conv::backward_bias(g, dy, db);
        }
        let (x, dy) = (
            conv::rounded_operand(self.conv_math, x),
            conv::rounded_operand(self.conv_math, dy),
        );
        conv::backward_weight(g, &x, &dy, dw)
    }
    fn graph_forward(&self, g: &GraphGeom, z: &Vec<T>, a: &Vec<T>, y: &mut Vec<T>) {
        graph::forward(g, z, a, y);
        self.stored(y)
    }
    fn graph_backward(&self, g: &GraphGeom, z: &Vec<T>, a: &Vec<T>, dy: &Vec<T>, dz: &mut Vec<T>, da: &mut Vec<T>) {
        graph::backward(g, z, a, dy, dz, da);
        self.stored(dz)
    }
    type BnStats = ChannelMoments;
    fn conv_t_forward_with_stats(
        &self,
        g: &ConvGeom,
        x: &Vec<T>,
        w: &Vec<T>,
        b: Option<&Vec<T>>,
        y: &mut Vec<T>,
    ) -> Option<ChannelMoments> {
        self.conv_t_forward(g, x, w, b, y);
        Some(batch_norm::moments((g.n, g.c_out, g.t_out() * g.v), y))
    }
    fn graph_forward_with_stats(
        &self,
        g: &GraphGeom,
        z: &Vec<T>,
        a: &Vec<T>,
        y: &mut Vec<T>,
    ) -> Option<ChannelMoments> {
        self.graph_forward(g, z, a, y);
        Some(batch_norm::moments((g.n, g.c, g.t * g.v), y))
    }
    fn batch_norm_train(
        &self,
        g: &BnGeom,
        x: &Vec<T>,
        stats: Option<&ChannelMoments>,
        epilogue: BnEpilogue<'_, Vec<T>>,
        gamma: &Vec<T>,
        beta: &Vec<T>,
        running_mean: &mut Vec<T>,
        running_var: &mut Vec<T>,
        y: &mut Vec<T>,
        save_mean: &mut Vec<T>,
        save_invstd: &mut Vec<T>,
    ) {
        batch_norm::train(
            g,
            x,
            stats,
            epilogue.map(Vec::as_slice),
            gamma,
            beta,
            running_mean,
            running_var,
            y,
            save_mean,
            save_invstd,
        );
        self.stored(y)
    }
    fn conv_t_forward_bn_eval(
        &self,
        g: &ConvGeom,
        x: &Vec<T>,
        w: &Vec<T>,
        b: Option<&Vec<T>>,
        bn: BnEval<'_, Vec<T>>,
        epilogue: BnEpilogue<'_, Vec<T>>,
        y: &mut Vec<T>,
    ) {
        // the CPU gains nothing from fusing: the two ops in sequence, through a scratch output
        let mut u = vec![T::zero(); g.y_len()];
        self.conv_t_forward(g, x, w, b, &mut u);
        batch_norm::eval_with(&eval_geom(g.n, g.c_out, g.t_out() * g.v, bn.eps), &u, bn, epilogue, y);
        self.stored(y)
    }
    fn graph_forward_bn_eval(
        &self,
        g: &GraphGeom,
        z: &Vec<T>,
        a: &Vec<T>,
        bn: BnEval<'_, Vec<T>>,
        epilogue: BnEpilogue<'_, Vec<T>>,
        y: &mut Vec<T>,
    ) {
        let mut u = vec![T::zero(); g.y_len()];
        self.graph_forward(g, z, a, &mut u);
        batch_norm::eval_with(&eval_geom(g.n, g.c, g.t * g.v, bn.eps), &u, bn, epilogue, y);
        self.stored(y)
    }
    fn batch_norm_eval(
        &self,
        g: &BnGeom,
        x: &Vec<T>,
        epilogue: BnEpilogue<'_, Vec<T>>,
        gamma: &Vec<T>,
        beta: &Vec<T>,
        running_mean: &Vec<T>,
        running_var: &Vec<T>,
        y: &mut Vec<T>,
    ) {
        batch_norm::eval(
            g,
            x,
            epilogue.map(Vec::as_slice),
            gamma,
            beta,
            running_mean,
            running_var,
            y,
        );
        self.stored(y)
    }
    fn batch_norm_backward(
        &self,
        g: &BnGeom,
        x: &Vec<T>,
        dy: &Vec<T>,
        relu_output: Option<&Vec<T>>,
        gamma: &Vec<T>,
        save_mean: &Vec<T>,
        save_invstd: &Vec<T>,
        dx: &mut Vec<T>,
        dgamma: &mut Vec<T>,
        dbeta: &mut Vec<T>,
    ) {
        batch_norm::backward(
            g,
            x,
            dy,
            relu_output.map(Vec::as_slice),
            gamma,
            save_mean,
            save_invstd,
            dx,
            dgamma,
            dbeta,
        );
        self.stored(dx)
    }
    fn mean_pool_forward(&self, n: usize, persons: usize, c: usize, s: usize, x: &Vec<T>, y: &mut Vec<T>) {
        pool::forward(n, persons, c, s, x, y);
        self.stored(y)
    }
    fn mean_pool_backward(&self, n: usize, persons: usize, c: usize, s: usize, dy: &Vec<T>, dx: &mut Vec<T>) {
        pool::backward(n, persons, c, s, dy, dx);
        self.stored(dx)
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
        loss::cross_entropy(n, classes, logits, labels, smoothing, loss, dlogits);
        self.stored(dlogits)
    }
    fn sum_squares(&self, bufs: &[&Vec<T>], out: &mut Vec<T>) {
        optim::sum_squares(bufs, out)
    }
    fn clip_scale(&self, sq_norm: &Vec<T>, max_norm: f64, scale: &mut Vec<T>) {
        optim::clip_scale(sq_norm, max_norm, scale)
    }
    fn cosine_lr(&self, sched: &CosineSchedule, step: &Vec<u32>, lr: &mut Vec<T>) {
        optim::cosine_lr(sched, step, lr)
    }
    fn increment_step(&self, step: &mut Vec<u32>) {
        step[0] += 1;
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
        optim::sgd_step(params, grads, momentum, hyper, lr, scale.map(Vec::as_slice), first_step)
    }

    /// The measured break-even of the CPU's CSR and GEMM convs at ST-GCN shapes (BENCHMARKS.md).
    const CSR_MAX_DENSITY: f64 = 0.1;
    type SparseWeight = CsrWeight<T>;
    type SemiSparseWeight = Packed24Weight;

    fn sparse_weight(&self, w: &Vec<T>, mask: &Vec<T>, c_out: usize, c_in: usize, kt: usize) -> CsrWeight<T> {
        csr::from_mask(w, mask, c_out, c_in, kt)
    }
    fn sparse_weight_nnz(&self, sw: &CsrWeight<T>) -> usize {
        sw.nnz()
    }
    fn sparse_weight_update(&self, sw: &mut CsrWeight<T>, w: &Vec<T>) {
        csr::update_values(sw, w)
    }
    fn sparse_weight_host(&self, sw: &CsrWeight<T>) -> CsrWeight<T> {
        sw.clone()
    }
    fn conv_t_forward_sparse(&self, g: &ConvGeom, x: &Vec<T>, w: &CsrWeight<T>, b: Option<&Vec<T>>, y: &mut Vec<T>) {
        csr::forward(g, x, w, b.map(Vec::as_slice), y);
        self.stored(y)
    }
    fn conv_t_backward_input_sparse(&self, g: &ConvGeom, dy: &Vec<T>, w: &CsrWeight<T>, dx: &mut Vec<T>) {
        csr::backward_input(g, dy, w, dx);
        self.stored(dx)
    }
    fn prune_2_4(&self, w: &Vec<T>, c_out: usize, c_in: usize, kt: usize, mask: &mut Vec<T>) {
        semi_sparse::prune_2_4(w, c_out, c_in, kt, mask)
    }
    fn pack_2_4(
        &self,
        w: &Vec<T>,
        mask: &Vec<T>,
        c_out: usize,
        c_in: usize,
        kt: usize,
    ) -> crate::Result<Packed24Weight> {
        semi_sparse::pack(w, mask, c_out, c_in, kt)
    }
    fn semi_sparse_weight_host(&self, w: &Packed24Weight) -> Packed24Weight {
        w.clone()
    }
    fn conv_t_forward_2_4(&self, g: &ConvGeom, x: &Vec<T>, w: &Packed24Weight, b: Option<&Vec<T>>, y: &mut Vec<T>) {
        semi_sparse::forward(g, x, w, b.map(Vec::as_slice), y);
        self.stored(y)
    }
    fn conv_t_backward_input_2_4(&self, g: &ConvGeom, dy: &Vec<T>, w: &Packed24Weight, dx: &mut Vec<T>) {
        semi_sparse::backward_input(g, dy, w, dx);
        self.stored(dx)
    }
}
