//! PYSKL's `unit_gcn` (conv position 'pre', no residual): a 1x1 conv to K·C_out channels, aggregation
//! over the K adjacency subsets, BatchNorm2d and ReLU.

use super::{join, BatchNorm, Buffer, Conv, Entry, Module, Param};
use crate::backend::{Backend, BnEpilogue, GradAdd, GraphGeom};
use crate::model::init::InitRng;
use crate::model::{Adaptive, Adjacency, StgcnConfig};

/// The adjacency and how it is learned.
enum AdjacencyState<B: Backend> {
    /// `A` fixed (adaptive None).
    Fixed(Buffer<B>),
    /// `A` learned directly (adaptive 'init').
    Learned(Param<B>),
    /// `A + PA` (adaptive 'offset').
    Offset(Buffer<B>, Param<B>),
    /// `A ⊙ PA` (adaptive 'importance').
    Importance(Buffer<B>, Param<B>),
}

struct Cache<B: Backend> {
    /// The adjacency used: `[k, v, v]`.
    a_eff: B::Buf,
    /// Conv output `[n, k·c_out, t, v]`.
    z: B::Buf,
    /// Aggregation output (the BN input) `[n, c_out, t, v]`.
    agg: B::Buf,
}

pub struct GraphConv<B: Backend> {
    pub c_out: usize,
    pub k: usize,
    pub v: usize,
    pub conv: Conv<B>,
    pub bn: BatchNorm<B>,
    adjacency: AdjacencyState<B>,
    cache: Option<Cache<B>>,
}

impl<B: Backend> GraphConv<B> {
    pub fn new(be: &B, c_in: usize, c_out: usize, graph: &Adjacency, cfg: &StgcnConfig, rng: &mut InitRng) -> Self {
        let shape = [graph.k, graph.v, graph.v];
        let a = || Buffer::new(be, &shape, &graph.data);
        let adjacency = match cfg.adaptive {
            Adaptive::None => AdjacencyState::Fixed(a()),
            Adaptive::Init => AdjacencyState::Learned(Param::new(be, &shape, &graph.data)),
            Adaptive::Offset => {
                let pa = rng.uniform_vec(graph.data.len(), 1e-6);
                AdjacencyState::Offset(a(), Param::new(be, &shape, &pa))
            }
            Adaptive::Importance => {
                AdjacencyState::Importance(a(), Param::new(be, &shape, &vec![1.0; graph.data.len()]))
            }
        };
        Self {
            c_out,
            k: graph.k,
            v: graph.v,
            conv: Conv::conv2d(be, c_in, graph.k * c_out, 1, 1, rng),
            bn: BatchNorm::new(be, c_out, cfg.bn_eps, cfg.bn_momentum),
            adjacency,
            cache: None,
        }
    }

    fn effective_adjacency(&self, be: &B) -> B::Buf {
        let mut out = be.zeros(self.k * self.v * self.v);
        match &self.adjacency {
            AdjacencyState::Fixed(a) => be.copy(&a.value, &mut out),
            AdjacencyState::Learned(a) => be.copy(&a.value, &mut out),
            AdjacencyState::Offset(a, pa) => {
                be.copy(&a.value, &mut out);
                be.add_assign(&mut out, &pa.value);
            }
            AdjacencyState::Importance(a, pa) => be.mul(&a.value, &pa.value, &mut out),
        }
        out
    }

    fn graph_geom(&self, n: usize, t: usize) -> GraphGeom {
        GraphGeom {
            n,
            k: self.k,
            c: self.c_out,
            t,
            v: self.v,
        }
    }

    /// x: `[n, c_in, t, v]` → `relu(bn(Σ_k conv(x)_k · A_k))`: `[n, c_out, t, v]`.
    pub fn forward(&mut self, be: &B, x: &B::Buf, n: usize, t: usize, train: bool) -> B::Buf {
        let a_eff = self.effective_adjacency(be);
        let z = self.conv.forward(be, x, n, t, self.v);
        let g = self.graph_geom(n, t);
        let mut agg = be.activation(g.y_len());
        if !train {
            // the aggregation applies the BN and the ReLU to its outputs: none is stored twice
            self.cache = None;
            be.graph_forward_bn_eval(&g, &z, &a_eff, self.bn.fused_eval(), BnEpilogue::relu(), &mut agg);
            return agg;
        }
        // training normalises with the batch statistics, which the aggregation gathers as it writes
        let stats = be.graph_forward_with_stats(&g, &z, &a_eff, &mut agg);
        let out = self
            .bn
            .forward(be, &agg, stats.as_ref(), n, t * self.v, true, BnEpilogue::relu());
        self.cache = Some(Cache { a_eff, z, agg });
        out
    }

    /// Values the last forward keeps for the backward: the adjacency used, the conv output `z`, the
    /// aggregation output and the BN statistics (the unit's output is its caller's).
    pub fn saved_for_backward(&self, be: &B) -> usize {
        let cache = self
            .cache
            .as_ref()
            .map_or(0, |c| be.buf_len(&c.a_eff) + be.buf_len(&c.z) + be.buf_len(&c.agg));
        cache + self.bn.saved_for_backward(be)
    }

    /// Backward given the forward's input `x` and output `out`; accumulates every parameter gradient
    /// and returns dx, plus `add` when given (added as the conv writes dx; see [`GradAdd`]).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &mut self,
        be: &B,
        x: &B::Buf,
        out: &B::Buf,
        dout: B::Buf,
        n: usize,
        t: usize,
        add: Option<GradAdd<'_, B::Buf>>,
    ) -> B::Buf {
        let cache = self.cache.take().expect("GraphConv::backward without a forward");
        // the ReLU's backward is the BN backward's mask
        let dagg = self.bn.backward(be, &cache.agg, &dout, Some(out), n, t * self.v);
        let g = self.graph_geom(n, t);
        let mut dz = be.activation(g.z_len());
        let mut da_eff = be.zeros(g.a_len());
        be.graph_backward(&g, &cache.z, &cache.a_eff, &dagg, &mut dz, &mut da_eff);
        match &mut self.adjacency {
            AdjacencyState::Fixed(_) => {}
            AdjacencyState::Learned(a) => be.add_assign(&mut a.grad, &da_eff),
            AdjacencyState::Offset(_, pa) => be.add_assign(&mut pa.grad, &da_eff),
            // d(A ⊙ PA)/dPA = A: exactly zero where the graph has no edge
            AdjacencyState::Importance(a, pa) => be.mul_acc(&da_eff, &a.value, &mut pa.grad),
        }
        self.conv.backward(be, x, &dz, n, t, self.v, add)
    }
}

impl<B: Backend> Module<B> for GraphConv<B> {
    fn entries<'a>(&'a mut self, prefix: &str, out: &mut Vec<Entry<'a, B>>) {
        match &mut self.adjacency {
            AdjacencyState::Fixed(a) => out.push(Entry::Buffer(join(prefix, "A"), a)),
            AdjacencyState::Learned(a) => out.push(Entry::Param(join(prefix, "A"), a)),
            AdjacencyState::Offset(a, pa) | AdjacencyState::Importance(a, pa) => {
                out.push(Entry::Param(join(prefix, "PA"), pa));
                out.push(Entry::Buffer(join(prefix, "A"), a));
            }
        }
        self.conv.entries(&join(prefix, "conv"), out);
        self.bn.entries(&join(prefix, "bn"), out);
    }
}
