//! The multi-level sparsity assembly (the reference's `Assemble_sparse_New` backbone with its
//! `Assemble_GCNHead`, `head_ada = head_conv = False`, `each_loss = True`): H independent ST-GCN
//! backbones ("experts"; each has its own data BN, weights, scores, biases, BN and adjacency, and
//! thresholds its own scores at its own sparsity), all fed the same clip. With F_h the features of
//! expert h and P the mean over (T', V) then over persons:
//!
//! - fused head: `z₀ = FC₀(P((1/H) Σ_h F_h))`, one shared classifier on the averaged features (not
//!   an ensemble of logits);
//! - auxiliary heads: `z_h = FC_h(P(F_h))`;
//! - training loss: `CE(z₀) + Σ_h CE(z_h)`; prediction: `z₀` only. (The reference also adds its
//!   GSGL penalty during warm-up, but computes it from detached tensors: a constant with no
//!   gradient, left out here.)
//!
//! `state_dict` names as the reference's: `backbone.experts.<h>.{data_bn,gcn.<i>}.*`,
//! `cls_head.fc_cls.0.*` (fused head) and `cls_head.fc_cls.<h+1>.*` (expert h's auxiliary head).

use super::backbone::Backbone;
use super::config::StgcnConfig;
use super::init::InitRng;
use super::recognizer::{cross_entropy, Objective, Recognizer};
use super::stgcn::score_seed;
use crate::backend::Backend;
use crate::layers::{join, ClassifierHead, DataDims, Entry, Module};
use crate::nvtx;
use crate::{Error, Result};

pub struct Assembly<B: Backend> {
    pub config: StgcnConfig,
    pub experts: Vec<Backbone<B>>,
    /// `fc_cls.0`: the shared classifier on the averaged features.
    pub fused_head: ClassifierHead<B>,
    /// `fc_cls.<h+1>`: expert h's auxiliary classifier.
    pub expert_heads: Vec<ClassifierHead<B>>,
}

/// The initialisation (and dropout) seed of expert `h`: expert 0 uses the model seed itself, so it
/// starts as the single model of that seed.
fn expert_seed(seed: u64, h: usize) -> u64 {
    seed ^ (h as u64).wrapping_mul(0xA24B_AED4_963E_E407)
}

/// The logits of one assembly forward.
pub struct AssemblyLogits<B: Backend> {
    /// `[N, classes]` from the fused head.
    pub fused: B::Buf,
    /// `[N, classes]` from each expert's auxiliary head (empty when not asked for).
    pub experts: Vec<B::Buf>,
}

impl<B: Backend> Assembly<B> {
    /// `experts` backbones of `config` (learned masks when `config.sparse` is set). Expert h's
    /// backbone and auxiliary head are drawn from the stream of `expert_seed(seed, h)`; the fused
    /// head comes right after expert 0's backbone, where a single model of `seed` draws its head.
    pub fn new(be: &B, config: StgcnConfig, experts: usize, seed: u64) -> Result<Self> {
        if experts == 0 {
            return Err(Error::config("an assembly needs at least one expert"));
        }
        let head = |rng: &mut InitRng| {
            ClassifierHead::new(be, config.out_channels(), config.num_classes, config.head_dropout, rng)
        };
        let mut backbones = Vec::with_capacity(experts);
        let mut expert_heads = Vec::with_capacity(experts);
        let mut fused_head = None;
        for h in 0..experts {
            let s = expert_seed(seed, h);
            let mut rng = InitRng::new(s);
            backbones.push(Backbone::new(be, &config, &mut rng, score_seed(s))?);
            if h == 0 {
                fused_head = Some(head(&mut rng));
            }
            expert_heads.push(head(&mut rng));
        }
        Ok(Self {
            config,
            experts: backbones,
            fused_head: fused_head.expect("at least one expert"),
            expert_heads,
        })
    }

    /// Runs every expert on x (`[N, M, T, V, C]`) and the fused head on their mean features; with
    /// `with_experts`, also each expert's auxiliary head.
    pub fn forward(
        &mut self,
        be: &B,
        x: &B::Buf,
        dims: DataDims,
        train: bool,
        seed: u64,
        with_experts: bool,
    ) -> Result<AssemblyLogits<B>> {
        for (h, expert) in self.experts.iter_mut().enumerate() {
            expert.forward(be, x, dims, train, expert_seed(seed, h))?;
        }
        let [n, m, ..] = dims;
        let s = self.experts[0].feature_size();
        // F̄ = (1/H) Σ_h F_h: [N·M, C_out, T', V]
        let mut mean = be.activation(be.buf_len(self.experts[0].features()));
        for expert in &self.experts {
            be.add_assign(&mut mean, expert.features());
            be.round_to_storage(&mut mean);
        }
        be.scale(&mut mean, 1.0 / self.experts.len() as f64);
        be.round_to_storage(&mut mean);
        let fused = self.fused_head.forward(be, &mean, n, m, s, train, seed);
        let mut experts = Vec::new();
        if with_experts {
            for (h, (head, expert)) in self.expert_heads.iter_mut().zip(&self.experts).enumerate() {
                // each auxiliary head draws a dropout mask of its own
                let head_seed = expert_seed(seed, h + 1) ^ 0x4EAD;
                experts.push(head.forward(be, expert.features(), n, m, s, train, head_seed));
            }
        }
        Ok(AssemblyLogits { fused, experts })
    }

    /// Backward of the last forward (made `with_experts`) from dL/dz₀ and dL/dz_h; accumulates
    /// every parameter gradient and returns dL/dx (`[N, M, T, V, C]`).
    pub fn backward(&mut self, be: &B, dfused: &B::Buf, dexperts: &[B::Buf]) -> B::Buf {
        assert_eq!(dexperts.len(), self.experts.len(), "one logit gradient per expert head");
        let [n, m, ..] = self.experts[0]
            .last_dims()
            .expect("Assembly::backward without a forward");
        let s = self.experts[0].feature_size();
        // dL/dF̄ reaches every expert scaled by 1/H
        let mut dmean = self.fused_head.backward(be, dfused, n, m, s);
        be.scale(&mut dmean, 1.0 / self.experts.len() as f64);
        be.round_to_storage(&mut dmean);
        let mut dx: Option<B::Buf> = None;
        for ((expert, head), dz) in self.experts.iter_mut().zip(&mut self.expert_heads).zip(dexperts) {
            let mut dfeatures = head.backward(be, dz, n, m, s);
            be.add_assign(&mut dfeatures, &dmean);
            be.round_to_storage(&mut dfeatures);
            let dxe = expert.backward(be, dfeatures);
            match &mut dx {
                Some(acc) => {
                    be.add_assign(acc, &dxe);
                    be.round_to_storage(acc);
                }
                None => dx = Some(dxe),
            }
        }
        dx.expect("at least one expert")
    }
}

impl<B: Backend> Module<B> for Assembly<B> {
    fn entries<'a>(&'a mut self, prefix: &str, out: &mut Vec<Entry<'a, B>>) {
        for (h, expert) in self.experts.iter_mut().enumerate() {
            expert.entries(&join(prefix, &format!("backbone.experts.{h}")), out);
        }
        self.fused_head.fc.entries(&join(prefix, "cls_head.fc_cls.0"), out);
        for (h, head) in self.expert_heads.iter_mut().enumerate() {
            head.fc
                .entries(&join(prefix, &format!("cls_head.fc_cls.{}", h + 1)), out);
        }
    }
}

impl<B: Backend> Recognizer<B> for Assembly<B> {
    fn config(&self) -> &StgcnConfig {
        &self.config
    }

    fn backbones_mut(&mut self) -> Vec<(String, &mut Backbone<B>)> {
        self.experts
            .iter_mut()
            .enumerate()
            .map(|(h, e)| (format!("backbone.experts.{h}"), e))
            .collect()
    }

    /// The fused head only, as the reference predicts.
    fn logits(&mut self, be: &B, x: &B::Buf, dims: DataDims, train: bool, seed: u64) -> Result<B::Buf> {
        Ok(self.forward(be, x, dims, train, seed, false)?.fused)
    }

    /// `CE(z₀) + Σ_h CE(z_h)`.
    fn objective(
        &mut self,
        be: &B,
        x: &B::Buf,
        labels: &B::IdxBuf,
        dims: DataDims,
        label_smoothing: f64,
        seed: u64,
    ) -> Result<Objective<B>> {
        let z = {
            let _r = nvtx::range(|| "forward".into());
            self.forward(be, x, dims, true, seed, true)?
        };
        let (n, classes) = (dims[0], self.config.num_classes);
        let (mut loss, dfused) = cross_entropy(be, &z.fused, labels, n, classes, label_smoothing);
        let mut dexperts = Vec::with_capacity(z.experts.len());
        for logits in &z.experts {
            let (expert_loss, d) = cross_entropy(be, logits, labels, n, classes, label_smoothing);
            be.add_assign(&mut loss, &expert_loss);
            dexperts.push(d);
        }
        {
            let _r = nvtx::range(|| "backward".into());
            self.backward(be, &dfused, &dexperts);
        }
        Ok(Objective { loss, logits: z.fused })
    }
}
