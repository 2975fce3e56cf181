//! The compute backends. Layers are written once against [`Backend`]; the CPU backend (generic over
//! f32 and f64) is the reference, the CUDA backend runs the same ops in our own kernels.
//!
//! Conventions every implementation follows:
//! - Buffers are flat and contiguous; the shapes in the comments are row-major, last index fastest.
//! - Activations inside the network are `[n, c, t, v]`: sample (person-sequence), channel, frame, joint.
//!   Why this layout (T·V contiguous per channel) and not channels-last `[n, t, v, c]`:
//!   - the conv GEMMs' columns are (sample, frame, joint): for one input channel and tap,
//!     consecutive columns are consecutive addresses, so the kernels' operand gathers coalesce
//!     (a warp reads 32 consecutive floats), a strided conv reads whole V-rows of every other
//!     frame, and the 1x1 convs are plain GEMMs over each sample's `[c, t·v]` matrix;
//!   - graph aggregation applies a small `[v, w]` matrix per subset to contiguous V-rows;
//!   - batch norm reduces each channel over one contiguous run of T·V values per sample;
//!   - it is PyTorch's layout, so activations, gradients and weights compare with the reference
//!     without permutes; the input `[N, M, T, V, C]` is permuted once, at the data stage.
//!
//!   What channels-last would buy is contiguous reduction runs (16-byte copies of 4 channels in
//!   the GEMM loaders, which now copy 4-byte elements because the im2col gather is along T·V);
//!   that is the change to measure once the kernels are profiled on a GPU.
//! - Outputs named `y`, `dx`, `dz` are overwritten. Parameter gradients (`dw`, `db`, `da`, `dgamma`,
//!   `dbeta`) are accumulated (`+=`), so the caller zeroes them once per step and gradients of
//!   micro-batches add up.
//! - Results must not depend on the thread count: reductions use a fixed split and a fixed order.
//! - Activations (the outputs a layer passes on, and their gradients) are stored as
//!   [`Backend::storage`] says: every value an op writes into one is rounded to it ([`Storage`]).

pub mod cpu;
pub mod cuda;
pub mod select;
pub mod sparse;

pub mod epilogue;

mod conv_math;
mod geometry;
mod scalar;
mod storage;

pub use conv_math::ConvMath;
pub use epilogue::{BnEpilogue, BnEval, GradAdd};
pub use geometry::{BnGeom, ConvGeom, GraphGeom};
pub use scalar::Scalar;
pub use storage::{F32Region, Storage};

/// SGD hyper-parameters with PyTorch's semantics (coupled weight decay, dampening, Nesterov).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SgdHyper {
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

/// Cosine annealing with optional linear warm-up, evaluated at an iteration (or epoch) index `i`:
/// `lr = min_lr + (base_lr - min_lr)·(1 + cos(π·(i - warmup)/(total - warmup)))/2` after warm-up, and
/// a linear ramp from `warmup_start_lr` to `base_lr` over the first `warmup` indices.
/// This is mmcv's closed form (what PYSKL runs); PyTorch's recursive `CosineAnnealingLR` agrees to an ulp
/// up to `total`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CosineSchedule {
    pub base_lr: f64,
    pub min_lr: f64,
    /// Index at which the cosine reaches `min_lr` (T_max; iterations or epochs).
    pub total: u64,
    pub warmup: u64,
    pub warmup_start_lr: f64,
    /// How many optimizer steps one schedule index lasts: 1 for a per-iteration schedule, the number of
    /// iterations per epoch for a per-epoch one.
    pub steps_per_index: u64,
}

impl CosineSchedule {
    /// A per-iteration cosine from `base_lr` to 0 over `total` steps, without warm-up.
    pub fn per_iteration(base_lr: f64, total: u64) -> Self {
        Self {
            base_lr,
            min_lr: 0.0,
            total,
            warmup: 0,
            warmup_start_lr: 0.0,
            steps_per_index: 1,
        }
    }

    /// The learning rate of optimizer step `step` (0-based), evaluated in f64. Every backend's
    /// `cosine_lr` computes exactly this.
    pub fn lr_at(&self, step: u64) -> f64 {
        let index = step / self.steps_per_index.max(1);
        if index < self.warmup {
            return self.warmup_start_lr + (self.base_lr - self.warmup_start_lr) * index as f64 / self.warmup as f64;
        }
        let span = self.total.saturating_sub(self.warmup).max(1);
        let e = (index - self.warmup).min(span);
        self.min_lr + (self.base_lr - self.min_lr) * (1.0 + (std::f64::consts::PI * e as f64 / span as f64).cos()) / 2.0
    }
}

/// A compute backend: memory, and every forward and backward op of ST-GCN.
///
/// `Buf` is a device buffer of `Elem`; `IdxBuf` a device buffer of `u32` (labels, step counters).
pub trait Backend: Send + Sync {
    type Elem: Scalar;
    type Buf: Send + Sync;
    type IdxBuf: Send + Sync;
    /// A recorded sequence of ops that can be replayed (a CUDA graph); `()` where there is none.
    type Graph;
    /// Whether the ops run on an accelerator whose f32 sums are ordered differently from the CPU
    /// reference's (the golden check then applies its GPU tolerance).
    const ON_DEVICE: bool = false;

    /// A short description: `"cpu f64 (2 threads)"`, `"cuda f32 NVIDIA H100 (sm_90)"`.
    fn describe(&self) -> String;

    /// The arithmetic of the convolution ops (`conv_t_*`); everything else computes in `Elem`.
    fn conv_math(&self) -> ConvMath {
        ConvMath::F32
    }
    /// How activations and their gradients are stored: every op that writes one rounds it so.
    fn storage(&self) -> Storage {
        Storage::F32
    }
    /// Rounds `x`, an activation just written by an op that serves parameters too (`add_assign`,
    /// `scale`, `fill`), as [`Backend::storage`] keeps activations. A no-op in f32 storage, and on
    /// a backend whose activation buffers store bf16 themselves.
    fn round_to_storage(&self, _x: &mut Self::Buf) {}
    /// Runs `f` with activations in f32 whatever the storage: the ops it issues store f32 values
    /// and `activation` gives f32 buffers. What PyTorch's autocast leaves in f32 (the data batch
    /// norm, fed the f32 input batch) runs in such a region.
    fn with_f32_activations<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }

    // ---- memory -------------------------------------------------------------------------------
    fn zeros(&self, len: usize) -> Self::Buf;
    fn upload(&self, host: &[Self::Elem]) -> Self::Buf;
    /// A zeroed activation (an output a layer passes on, or the gradient of one) of `len` values,
    /// in [`Backend::storage`]; parameters, their gradients and statistics come from `zeros`.
    fn activation(&self, len: usize) -> Self::Buf {
        self.zeros(len)
    }
    /// `host` as an activation, in [`Backend::storage`] (rounded to it).
    fn upload_activation(&self, host: &[Self::Elem]) -> Self::Buf {
        let mut buf = self.upload(host);
        self.round_to_storage(&mut buf);
        buf
    }
    /// Overwrites `dst` (same length) with `host`: the per-step input path. A device backend
    /// stages through pinned host memory and copies asynchronously, so the host prepares the next
    /// batch while this one is in flight.
    fn upload_into(&self, host: &[Self::Elem], dst: &mut Self::Buf);
    /// `upload_into` for labels.
    fn upload_idx_into(&self, host: &[u32], dst: &mut Self::IdxBuf);
    fn download(&self, buf: &Self::Buf) -> Vec<Self::Elem>;
    fn upload_idx(&self, host: &[u32]) -> Self::IdxBuf;
    fn download_idx(&self, buf: &Self::IdxBuf) -> Vec<u32>;
    fn buf_len(&self, buf: &Self::Buf) -> usize;
    /// Overwrites `dst` (same length as `src`) with `src`.
    fn copy(&self, src: &Self::Buf, dst: &mut Self::Buf);
    /// `copy` for index buffers.
    fn copy_idx(&self, src: &Self::IdxBuf, dst: &mut Self::IdxBuf);
    fn fill(&self, buf: &mut Self::Buf, value: f64);
    /// Blocks until all queued work is done (a no-op on the CPU).
    fn synchronize(&self);
    /// The first failure since the last check (a kernel launch, an allocation, device memory
    /// exhausted), or `Ok`. Ops return nothing, so a device backend records its first failure and
    /// skips every later op until this is called; the trainer calls it once per step.
    fn check(&self) -> crate::Result<()>;

    // ---- step graphs --------------------------------------------------------------------------
    /// Starts recording the ops issued from now on (captured, not run) and returns true; returns
    /// false on a backend without graphs, whose ops then run as usual.
    fn begin_capture(&self) -> bool;
    /// Stops recording: the graph, or `None` if nothing was recorded or the capture failed (the
    /// failure is reported by `check`). Recording does not run the ops: replay the graph for that.
    fn end_capture(&self) -> Option<Self::Graph>;
    /// Runs a recorded graph once, in order with the other ops.
    fn replay(&self, graph: &Self::Graph);

    // ---- element-wise -------------------------------------------------------------------------
    /// `acc += x`
    fn add_assign(&self, acc: &mut Self::Buf, x: &Self::Buf);
    /// `y = a ⊙ b`
    fn mul(&self, a: &Self::Buf, b: &Self::Buf, y: &mut Self::Buf);
    /// `acc += a ⊙ b`
    fn mul_acc(&self, a: &Self::Buf, b: &Self::Buf, acc: &mut Self::Buf);
    /// `x *= s`
    fn scale(&self, x: &mut Self::Buf, s: f64);
    /// `x = max(x, 0)` in place.
    fn relu_forward(&self, x: &mut Self::Buf);
    /// `dy = dy ⊙ 1[y > 0]` in place, given the ReLU output `y`.
    fn relu_backward(&self, y: &Self::Buf, dy: &mut Self::Buf);
    /// `acc += dy ⊙ 1[y > 0]`: `relu_backward` of a copy of `dy` added onto `acc` (the same bits),
    /// in one pass and without the copy (an identity residual's share of a block's input gradient).
    fn relu_backward_add(&self, y: &Self::Buf, dy: &Self::Buf, acc: &mut Self::Buf);
    /// Inverted dropout in place with a counter-based RNG: element `i` is kept with probability `1 - p`
    /// (and scaled by `1/(1-p)`) iff `uniform(seed, i) >= p`. The same call on the gradient is the
    /// backward. `uniform` is [`dropout_uniform`], shared by every backend so masks agree exactly.
    fn dropout(&self, x: &mut Self::Buf, p: f64, seed: u64);

    // ---- sparsity masks -----------------------------------------------------------------------
    /// `out[0]` = the k-th smallest value (1-based `k`) over the concatenation of `bufs`, exactly.
    fn kth_smallest(&self, bufs: &[&Self::Buf], k: usize, out: &mut Self::Buf);
    /// `mask = 1[score >= tau[0]]` as 0/1 values.
    fn threshold_mask(&self, score: &Self::Buf, tau: &Self::Buf, mask: &mut Self::Buf);
    /// `y = |x|` element-wise (for magnitude pruning).
    fn abs(&self, x: &Self::Buf, y: &mut Self::Buf);

    // ---- layout -------------------------------------------------------------------------------
    /// `y = x.permute(perm)` made contiguous; `dims` is the shape of `x` (at most 6 axes). The backward
    /// of a permute is the permute by the inverse permutation.
    fn permute(&self, x: &Self::Buf, dims: &[usize], perm: &[usize], y: &mut Self::Buf);

    // ---- convolution over time (9x1 temporal conv, 1x1 conv, linear layer) -----------------------
    /// `y[n,o,t,v] = b[o] + Σ_i Σ_k w[o,i,k]·x[n,i,t·stride+k-pad,v]` (zero outside `[0, t_in)`).
    /// x: `[n, c_in, t_in, v]`, w: `[c_out, c_in, kt]`, b: `[c_out]`, y: `[n, c_out, t_out, v]`.
    /// A 1x1 conv is `kt = 1, pad = 0`; a linear layer is additionally `t_in = v = 1`.
    fn conv_t_forward(&self, g: &ConvGeom, x: &Self::Buf, w: &Self::Buf, b: Option<&Self::Buf>, y: &mut Self::Buf);
    /// `dx = ∂L/∂x` (overwritten) from `dy`.
    fn conv_t_backward_input(&self, g: &ConvGeom, dy: &Self::Buf, w: &Self::Buf, dx: &mut Self::Buf);
    /// `dx = ∂L/∂x + add` (overwritten, see [`GradAdd`]): `conv_t_backward_input`, then
    /// `add_assign(dx, grad)` or `relu_backward_add(relu_output, grad, dx)`, in one pass with the
    /// same bits.
    fn conv_t_backward_input_add(
        &self,
        g: &ConvGeom,
        dy: &Self::Buf,
        w: &Self::Buf,
        add: GradAdd<'_, Self::Buf>,
        dx: &mut Self::Buf,
    );
    /// `dw += ∂L/∂w`, `db += Σ dy`.
    fn conv_t_backward_weight(
        &self,
        g: &ConvGeom,
        x: &Self::Buf,
        dy: &Self::Buf,
        dw: &mut Self::Buf,
        db: Option<&mut Self::Buf>,
    );

    // ---- graph aggregation ------------------------------------------------------------------------
    /// `y[n,c,t,w] = Σ_k Σ_v z[n,k,c,t,v]·a[k,v,w]`; z: `[n, k, c, t, v]`, a: `[k, v, w]`, y: `[n, c, t, w]`.
    fn graph_forward(&self, g: &GraphGeom, z: &Self::Buf, a: &Self::Buf, y: &mut Self::Buf);
    /// `dz` (overwritten) and `da += Σ_n Σ_c Σ_t z[n,k,c,t,v]·dy[n,c,t,w]`.
    fn graph_backward(
        &self,
        g: &GraphGeom,
        z: &Self::Buf,
        a: &Self::Buf,
        dy: &Self::Buf,
        dz: &mut Self::Buf,
        da: &mut Self::Buf,
    );

    // ---- batch statistics gathered by the op that writes an activation ----------------------------
    /// The per-channel batch statistics of an activation `[n, c, s]` (mean and biased variance over
    /// (n, s)), gathered by the op that wrote it, while its outputs were still in registers or
    /// shared memory: the training-mode batch norm that reads the activation next takes them instead
    /// of a pass of its own over it (on a GPU, one read of the activation less per batch norm).
    type BnStats: Send + Sync;
    /// `conv_t_forward`, and the batch statistics of `y` as `[n, c_out, t_out·v]`; `None` when the
    /// op failed (a device backend records why for `check`).
    fn conv_t_forward_with_stats(
        &self,
        g: &ConvGeom,
        x: &Self::Buf,
        w: &Self::Buf,
        b: Option<&Self::Buf>,
        y: &mut Self::Buf,
    ) -> Option<Self::BnStats>;
    /// `graph_forward`, and the batch statistics of `y` as `[n, c, t·v]`; `None` when the op failed
    /// or the backend cannot gather them at this shape (a device backend whose tile of one (n, c)
    /// does not fit in shared memory; the batch norm then makes its own pass).
    fn graph_forward_with_stats(
        &self,
        g: &GraphGeom,
        z: &Self::Buf,
        a: &Self::Buf,
        y: &mut Self::Buf,
    ) -> Option<Self::BnStats>;

    // ---- evaluation-mode batch norm in the epilogue of the op that writes its input ----------------
    /// `y = epilogue(bn_eval(conv(x)))`: `conv_t_forward`, then `batch_norm_eval` with `bn` and
    /// `epilogue` over `[n, c_out, t_out·v]`, in one op that never stores the conv's output; the
    /// same operations and roundings as the two ops in sequence, so the same bits.
    #[allow(clippy::too_many_arguments)]
    fn conv_t_forward_bn_eval(
        &self,
        g: &ConvGeom,
        x: &Self::Buf,
        w: &Self::Buf,
        b: Option<&Self::Buf>,
        bn: BnEval<'_, Self::Buf>,
        epilogue: BnEpilogue<'_, Self::Buf>,
        y: &mut Self::Buf,
    );
    /// `y = epilogue(bn_eval(graph(z)))`: `graph_forward`, then `batch_norm_eval` over
    /// `[n, c, t·v]`, in one op, with the same bits as the two in sequence.
    fn graph_forward_bn_eval(
        &self,
        g: &GraphGeom,
        z: &Self::Buf,
        a: &Self::Buf,
        bn: BnEval<'_, Self::Buf>,
        epilogue: BnEpilogue<'_, Self::Buf>,
        y: &mut Self::Buf,
    );

    // ---- batch normalisation over [n, c, s] (BatchNorm1d: s = t; BatchNorm2d: s = t·v) -----------
    /// Training mode: normalise with the batch statistics over (n, s), write `save_mean` and
    /// `save_invstd = 1/sqrt(var_biased + eps)` (each `[c]`), and update the running stats as PyTorch
    /// does: `r = (1 - momentum)·r + momentum·stat`, with the unbiased variance for `running_var`.
    /// `epilogue` is applied to `y` in the same pass (its residual is `[n, c, s]`, like `x`).
    /// `stats`, from the op that wrote `x` (and of `x` as it is now), replaces the statistics pass:
    /// the results are those of computing them from `x`, up to the order of the sums.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_train(
        &self,
        g: &BnGeom,
        x: &Self::Buf,
        stats: Option<&Self::BnStats>,
        epilogue: BnEpilogue<'_, Self::Buf>,
        gamma: &Self::Buf,
        beta: &Self::Buf,
        running_mean: &mut Self::Buf,
        running_var: &mut Self::Buf,
        y: &mut Self::Buf,
        save_mean: &mut Self::Buf,
        save_invstd: &mut Self::Buf,
    );
    /// Evaluation mode: `y = (x - running_mean)/sqrt(running_var + eps)·gamma + beta`, then `epilogue`.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_eval(
        &self,
        g: &BnGeom,
        x: &Self::Buf,
        epilogue: BnEpilogue<'_, Self::Buf>,
        gamma: &Self::Buf,
        beta: &Self::Buf,
        running_mean: &Self::Buf,
        running_var: &Self::Buf,
        y: &mut Self::Buf,
    );
    /// Backward of the training-mode forward: `dx` overwritten, `dgamma`, `dbeta` accumulated.
    /// With `relu_output` (`[n, c, s]`: the output `y` of a forward whose epilogue had the ReLU,
    /// with or without a residual), `dy` is the gradient of that output and is masked by `y > 0` on
    /// the fly, exactly as `relu_backward` would have masked it; `dy` itself is not changed.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_backward(
        &self,
        g: &BnGeom,
        x: &Self::Buf,
        dy: &Self::Buf,
        relu_output: Option<&Self::Buf>,
        gamma: &Self::Buf,
        save_mean: &Self::Buf,
        save_invstd: &Self::Buf,
        dx: &mut Self::Buf,
        dgamma: &mut Self::Buf,
        dbeta: &mut Self::Buf,
    );

    // ---- pooling and loss -------------------------------------------------------------------------
    /// `y[n,c] = mean over (m, s) of x[n·persons + m, c, s]`; x: `[n·persons, c, s]`, y: `[n, c]`.
    fn mean_pool_forward(&self, n: usize, persons: usize, c: usize, s: usize, x: &Self::Buf, y: &mut Self::Buf);
    /// `dx[n·persons+m, c, s] = dy[n, c]/(persons·s)` (overwritten).
    fn mean_pool_backward(&self, n: usize, persons: usize, c: usize, s: usize, dy: &Self::Buf, dx: &mut Self::Buf);
    /// Softmax cross-entropy averaged over the `n` rows of `logits` (`[n, classes]`), with label smoothing
    /// ε (target `(1-ε)·onehot + ε/classes`, PyTorch's definition). Writes the loss into `loss[0]`
    /// and `dlogits = ∂loss/∂logits` (overwritten); nothing is read back to the host.
    #[allow(clippy::too_many_arguments)]
    fn cross_entropy(
        &self,
        n: usize,
        classes: usize,
        logits: &Self::Buf,
        labels: &Self::IdxBuf,
        smoothing: f64,
        loss: &mut Self::Buf,
        dlogits: &mut Self::Buf,
    );

    // ---- optimizer ----------------------------------------------------------------------------------
    /// `out[0] = Σ_i Σ_j bufs[i][j]²` (for global-norm clipping and monitoring).
    fn sum_squares(&self, bufs: &[&Self::Buf], out: &mut Self::Buf);
    /// Clip factor from a squared norm, as `torch.nn.utils.clip_grad_norm_`:
    /// `scale[0] = min(1, max_norm/(sqrt(sq_norm[0]) + 1e-6))`.
    fn clip_scale(&self, sq_norm: &Self::Buf, max_norm: f64, scale: &mut Self::Buf);
    /// Learning rate of step `step[0]` (a device counter) into `lr[0]`, from the schedule.
    fn cosine_lr(&self, sched: &CosineSchedule, step: &Self::IdxBuf, lr: &mut Self::Buf);
    /// `step[0] += 1`.
    fn increment_step(&self, step: &mut Self::IdxBuf);
    /// One SGD step on every (param, grad, momentum) triple, PyTorch's order of operations
    /// (`g' = g·scale + wd·p`; `buf = g'` on the first step, else `m·buf + (1-dampening)·g'`;
    /// `d = g' + m·buf` (Nesterov) or `buf`; `p -= lr·d`). `lr` and the optional gradient `scale`
    /// are device scalars; `first_step` says the momentum buffers are still empty.
    #[allow(clippy::too_many_arguments)]
    fn sgd_step(
        &self,
        params: &mut [&mut Self::Buf],
        grads: &[&Self::Buf],
        momentum: &mut [&mut Self::Buf],
        hyper: &SgdHyper,
        lr: &Self::Buf,
        scale: Option<&Self::Buf>,
        first_step: bool,
    );

    // ---- sparse conv weights (layouts in [`sparse`]) ---------------------------------------------
    /// Largest mask density (kept fraction) at which a conv with a fixed mask computes from CSR
    /// instead of densely (the policy of `layers::conv_sparse`). The default, 0.3, is for the GPU
    /// kernels and still to be measured on a GPU (`benches/cuda_masked_conv.rs`); published
    /// unstructured-sparse GPU kernels break even with dense ones between 70% and 95% sparsity.
    const CSR_MAX_DENSITY: f64 = 0.3;
    /// A conv weight compressed to the entries of an unstructured mask ([`sparse::CsrWeight`]).
    type SparseWeight: Send + Sync;
    /// A conv weight pruned to 2:4 and packed for the bf16 sparse tensor cores
    /// ([`sparse::Packed24Weight`]).
    type SemiSparseWeight: Send + Sync;

    /// The entries of `w` (`[c_out, c_in, kt]`) where `mask` (same shape) is non-zero, as CSR over
    /// the output channels and over the input channels. A device backend builds it on the device
    /// (row counts, an exclusive scan, an ordered scatter: deterministic) and reads back the entry
    /// count to size it, so it must not be called while a graph is being recorded.
    fn sparse_weight(
        &self,
        w: &Self::Buf,
        mask: &Self::Buf,
        c_out: usize,
        c_in: usize,
        kt: usize,
    ) -> Self::SparseWeight;
    /// Number of kept entries.
    fn sparse_weight_nnz(&self, sw: &Self::SparseWeight) -> usize;
    /// Re-reads the kept values from `w` with the pattern unchanged (a weight update under a fixed
    /// mask): a gather, cheap next to a conv.
    fn sparse_weight_update(&self, sw: &mut Self::SparseWeight, w: &Self::Buf);
    /// A host copy (for inspection and tests).
    fn sparse_weight_host(&self, sw: &Self::SparseWeight) -> sparse::CsrWeight<Self::Elem>;
    /// `conv_t_forward` with the weight `w ⊙ M` given as CSR: every output element is its bias (or
    /// 0) plus the products of its row's entries, added in CSR order.
    fn conv_t_forward_sparse(
        &self,
        g: &ConvGeom,
        x: &Self::Buf,
        w: &Self::SparseWeight,
        b: Option<&Self::Buf>,
        y: &mut Self::Buf,
    );
    /// `conv_t_backward_input` with the CSR weight: `dx` (overwritten) gathered over the CSR of the
    /// input channels, each element summing its row's entries in order.
    fn conv_t_backward_input_sparse(&self, g: &ConvGeom, dy: &Self::Buf, w: &Self::SparseWeight, dx: &mut Self::Buf);

    /// 2:4 pruning of `w` (`[c_out, c_in, kt]`) into `mask` (overwritten, 0/1): for each output
    /// channel, every group of 4 consecutive weights along `c_in·kt` keeps its 2 largest magnitudes
    /// (ties keep the lower position); when `c_in·kt % 4 ≠ 0` the last group is padded with zeros,
    /// so it keeps its 2 largest real weights (all of them when it has 1 or 2).
    fn prune_2_4(&self, w: &Self::Buf, c_out: usize, c_in: usize, kt: usize, mask: &mut Self::Buf);
    /// Packs the weights `mask` keeps into the 2:4 layout, rounded to bf16; an error names the
    /// first output channel and group that keeps more than 2 of 4.
    fn pack_2_4(
        &self,
        w: &Self::Buf,
        mask: &Self::Buf,
        c_out: usize,
        c_in: usize,
        kt: usize,
    ) -> crate::Result<Self::SemiSparseWeight>;
    /// A host copy of the packed values and metadata (for inspection and tests).
    fn semi_sparse_weight_host(&self, w: &Self::SemiSparseWeight) -> sparse::Packed24Weight;
    /// `conv_t_forward` on the sparse tensor cores: bf16(x) times the packed bf16 weights, summed
    /// in f32, plus the bias in f32.
    fn conv_t_forward_2_4(
        &self,
        g: &ConvGeom,
        x: &Self::Buf,
        w: &Self::SemiSparseWeight,
        b: Option<&Self::Buf>,
        y: &mut Self::Buf,
    );
    /// `conv_t_backward_input` with the packed weights: `dx` (overwritten) from bf16(dy) and the
    /// same bf16 weights, summed in f32. The input gradient reduces over `c_out`, and the transpose
    /// of a matrix that is 2:4 along its rows is not 2:4 along `c_out`, so this runs on the dense
    /// bf16 tensor cores (a device backend keeps a transposed dense bf16 copy made at packing).
    fn conv_t_backward_input_2_4(&self, g: &ConvGeom, dy: &Self::Buf, w: &Self::SemiSparseWeight, dx: &mut Self::Buf);
}

/// The uniform number in [0, 1) for element `i` of a dropout call seeded by `seed`: SplitMix64 of
/// `seed ^ i·golden`, top 24 bits. Every backend uses exactly this, so CPU and GPU masks agree.
pub fn dropout_uniform(seed: u64, i: u64) -> f32 {
    let mut z = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
}
