//! What a batch-norm forward does to its output before writing it: `y = relu?(bn(x) + residual?)`,
//! so the residual add and the ReLU cost no pass of their own over the activation.

use super::Scalar;

/// The epilogue of `Backend::batch_norm_train`/`batch_norm_eval`. Applied per element in this
/// order, with exactly the operations of the unfused ops: `y = bn(x)` rounded to the element type,
/// then `y += residual` (as `add_assign`), then `y = max(y, 0)` (as `relu_forward`).
pub struct BnEpilogue<'a, Buf: ?Sized> {
    /// Added to the normalised output: `[n, c, s]`, the shape of `x` and `y`.
    pub residual: Option<&'a Buf>,
    /// Whether a ReLU follows (after the residual add).
    pub relu: bool,
}

impl<'a, Buf: ?Sized> BnEpilogue<'a, Buf> {
    /// Plain batch norm: `y = bn(x)`.
    pub fn none() -> Self {
        Self {
            residual: None,
            relu: false,
        }
    }

    /// `y = max(bn(x), 0)`.
    pub fn relu() -> Self {
        Self {
            residual: None,
            relu: true,
        }
    }

    /// The same epilogue over another view of the residual (`Vec<T>` → `[T]`).
    pub fn map<Other: ?Sized>(self, view: impl FnOnce(&'a Buf) -> &'a Other) -> BnEpilogue<'a, Other> {
        BnEpilogue {
            residual: self.residual.map(view),
            relu: self.relu,
        }
    }
}

// Manual impls: a derive would require `Buf: Clone`, but only a reference is held.
impl<Buf: ?Sized> Clone for BnEpilogue<'_, Buf> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<Buf: ?Sized> Copy for BnEpilogue<'_, Buf> {}

/// A batch norm in evaluation mode, applied by the op that writes its input in that op's epilogue
/// (`conv_t_forward_bn_eval`, `graph_forward_bn_eval`), so the input is never stored:
/// `y = x·scale + shift` with `scale = γ/sqrt(running_var + eps)`, `shift = β − running_mean·scale`,
/// computed and rounded exactly as `batch_norm_eval` does. Every tensor is `[c]`.
pub struct BnEval<'a, Buf: ?Sized> {
    pub gamma: &'a Buf,
    pub beta: &'a Buf,
    pub running_mean: &'a Buf,
    pub running_var: &'a Buf,
    pub eps: f64,
}

impl<'a, Buf: ?Sized> BnEval<'a, Buf> {
    /// The same parameters as other views of the buffers (`Vec<T>` → `[T]`, a device slice).
    pub fn try_map<Other: ?Sized, E>(
        self,
        view: impl Fn(&'a Buf) -> Result<&'a Other, E>,
    ) -> Result<BnEval<'a, Other>, E> {
        Ok(BnEval {
            gamma: view(self.gamma)?,
            beta: view(self.beta)?,
            running_mean: view(self.running_mean)?,
            running_var: view(self.running_var)?,
            eps: self.eps,
        })
    }
}

impl<Buf: ?Sized> Clone for BnEval<'_, Buf> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<Buf: ?Sized> Copy for BnEval<'_, Buf> {}

/// A gradient added to an op's output gradient as it is stored (`conv_t_backward_input_add`):
/// `dx = ∂L/∂x + grad`, or `∂L/∂x + grad ⊙ 1[relu_output > 0]` with `relu_output`: a block's
/// residual share of its input gradient, added in the pass that writes dx, with the one f32 add that
/// `add_assign` (`relu_backward_add`) would make afterwards, so the same bits. Shaped as dx.
pub struct GradAdd<'a, Buf: ?Sized> {
    pub grad: &'a Buf,
    pub relu_output: Option<&'a Buf>,
}

impl<Buf> GradAdd<'_, Buf> {
    /// `dx += grad` (⊙ the mask) as a pass of its own, `add_assign` or `relu_backward_add`: for
    /// an op that cannot add it as it writes dx. The sum is an activation gradient: stored as
    /// the backend's storage keeps activations.
    pub fn add_to<B: super::Backend<Buf = Buf>>(self, be: &B, dx: &mut Buf) {
        match self.relu_output {
            Some(y) => be.relu_backward_add(y, self.grad, dx),
            None => {
                be.add_assign(dx, self.grad);
                be.round_to_storage(dx);
            }
        }
    }
}

impl<'a, Buf: ?Sized> GradAdd<'a, Buf> {
    /// The same gradient as other views of the buffers (`Vec<T>` → `[T]`, a device slice).
    pub fn try_map<Other: ?Sized, E>(
        self,
        view: impl Fn(&'a Buf) -> Result<&'a Other, E>,
    ) -> Result<GradAdd<'a, Other>, E> {
        Ok(GradAdd {
            grad: view(self.grad)?,
            relu_output: self.relu_output.map(&view).transpose()?,
        })
    }
}

impl<Buf: ?Sized> Clone for GradAdd<'_, Buf> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<Buf: ?Sized> Copy for GradAdd<'_, Buf> {}

/// `max(v, 0)` as `relu_forward` computes it: only `v < 0` is replaced, so a NaN stays NaN and
/// `-0` stays `-0`. The CPU's fused and unfused ops both call this, so they agree bit for bit.
pub fn relu<T: Scalar>(v: T) -> T {
    if v < T::zero() {
        T::zero()
    } else {
        v
    }
}

/// The ReLU backward of one element as `relu_backward` computes it: `dy` where the ReLU output
/// `y > 0` (or NaN), else 0.
pub fn relu_grad<T: Scalar>(y: T, dy: T) -> T {
    if y <= T::zero() {
        T::zero()
    } else {
        dy
    }
}
