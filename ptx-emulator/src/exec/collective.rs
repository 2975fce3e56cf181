//! Warp-collective instructions: `bar.warp.sync`, `shfl.sync`, `vote.sync` and the tensor-core
//! `mma`. Each names the lanes that take part (a member mask, or the whole warp for `.aligned`
//! `mma`); a named lane that is not executing the instruction with the others is reported, never
//! guessed, as is a lane reading from a lane that does not take part.

use super::ir::*;
use super::mma;
use super::warp::Ctx;
use super::{Fault, FaultKind};

impl Ctx<'_> {
    /// Checks that every active lane names itself in its member mask and that every lane any of
    /// them names is active here; returns the mask.
    pub(super) fn check_members(&self, members: Src, active: u32, what: &str) -> Result<u32, Box<Fault>> {
        let masks = self.read(members);
        let first = active.trailing_zeros();
        let m = masks[first as usize] as u32;
        for lane in 0..32u32 {
            if active >> lane & 1 == 0 {
                continue;
            }
            let own = masks[lane as usize] as u32;
            if own != m {
                return Err(self.fault(
                    FaultKind::DivergentCollective,
                    lane,
                    format!("{what}: lanes disagree on the member mask ({own:#010x} here, {m:#010x} in lane {first})"),
                ));
            }
            if own >> lane & 1 == 0 {
                return Err(self.fault(
                    FaultKind::DivergentCollective,
                    lane,
                    format!("{what}: the executing lane is not in its member mask {own:#010x}"),
                ));
            }
        }
        let missing = m & !active;
        if missing != 0 {
            let exited = missing & !self.warp.live;
            let detail = if exited != 0 {
                format!("{what}: member mask {m:#010x} names lanes {exited:#010x} that have exited or do not exist")
            } else {
                format!(
                    "{what}: member mask {m:#010x} names lanes {missing:#010x} that are on another path (divergent)"
                )
            };
            return Err(self.fault(FaultKind::DivergentCollective, missing.trailing_zeros(), detail));
        }
        Ok(m)
    }

    pub(super) fn warp_sync(&mut self, members: Src, active: u32) -> Result<(), Box<Fault>> {
        self.check_members(members, active, "bar.warp.sync")?;
        self.warp.sync_epoch += 1;
        Ok(())
    }

    /// `shfl.sync` (PTX ISA, "shfl.sync"): lane `j` is computed from `b` and the clamp and segment
    /// mask packed in `c`; out-of-range lanes read their own value and get a false predicate.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn shuffle(
        &mut self,
        mode: ShflMode,
        d: Reg,
        p: Option<Pred>,
        a: Src,
        b: Src,
        c: Src,
        members: Src,
        active: u32,
    ) -> Result<(), Box<Fault>> {
        let m = self.check_members(members, active, "shfl.sync")?;
        let (av, bv, cv) = (self.read(a), self.read(b), self.read(c));
        let mut out = [0u64; 32];
        let mut in_range = 0u32;
        for lane in 0..32i32 {
            if active >> lane & 1 == 0 {
                continue;
            }
            let bval = (bv[lane as usize] & 0x1f) as i32;
            let cval = (cv[lane as usize] & 0x1f) as i32;
            let segmask = ((cv[lane as usize] >> 8) & 0x1f) as i32;
            let max_lane = (lane & segmask) | (cval & !segmask);
            let min_lane = lane & segmask;
            let (j, ok) = match mode {
                ShflMode::Up => (lane - bval, lane - bval >= max_lane),
                ShflMode::Down => (lane + bval, lane + bval <= max_lane),
                ShflMode::Bfly => (lane ^ bval, (lane ^ bval) <= max_lane),
                ShflMode::Idx => {
                    let j = min_lane | (bval & !segmask);
                    (j, j <= max_lane)
                }
            };
            let j = if ok { j } else { lane };
            if m >> j & 1 == 0 {
                return Err(self.fault(
                    FaultKind::DivergentCollective,
                    lane as u32,
                    format!("shfl.sync reads lane {j}, which is not in the member mask {m:#010x}"),
                ));
            }
            out[lane as usize] = av[j as usize] & 0xFFFF_FFFF;
            in_range |= u32::from(ok) << lane;
        }
        self.write(d, &out, active);
        if let Some(p) = p {
            let reg = &mut self.warp.preds[p as usize];
            *reg = (*reg & !active) | (in_range & active);
        }
        Ok(())
    }

    /// `mma` / `mma.sp`: the whole warp takes part (`.aligned`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn mma(
        &mut self,
        shape: MmaShape,
        d: &[Reg; 4],
        a: &[Src; 4],
        b: &[Src; 4],
        c: &[Src; 4],
        meta: Option<(Src, Src)>,
        active: u32,
    ) -> Result<(), Box<Fault>> {
        if active != u32::MAX {
            let missing = !active;
            return Err(self.fault(
                FaultKind::DivergentCollective,
                missing.trailing_zeros(),
                format!("mma needs all 32 lanes of the warp (.aligned); lanes {missing:#010x} are not executing it"),
            ));
        }
        let gather = |srcs: &[Src]| -> [[u32; 4]; 32] {
            let mut out = [[0u32; 4]; 32];
            for (i, s) in srcs.iter().enumerate() {
                let v = self.read(*s);
                for lane in 0..32 {
                    out[lane][i] = v[lane] as u32;
                }
            }
            out
        };
        let av = gather(a);
        let cv = gather(c).map(|r| r.map(f32::from_bits));
        let result = match shape {
            MmaShape::M16N8K8Tf32 => {
                let bv = gather(&b[..2]).map(|r| [r[0], r[1]]);
                mma::mma_m16n8k8_tf32(&av, &bv, &cv)
            }
            MmaShape::M16N8K16Bf16 => {
                let bv = gather(&b[..2]).map(|r| [r[0], r[1]]);
                mma::mma_m16n8k16_bf16(&av, &bv, &cv)
            }
            MmaShape::SpM16N8K32Bf16 => {
                let (e, selector) = meta.expect("mma.sp has metadata");
                let bv = gather(b);
                let ev = self.read(e).map(|x| x as u32);
                let selector = self.read_lane(selector, 0) as u32;
                mma::mma_sp_m16n8k32_bf16(&av, &bv, &cv, &ev, selector)
                    .map_err(|e| self.fault(FaultKind::Invalid, 0, format!("mma.sp: {e}")))?
            }
        };
        for (i, r) in d.iter().enumerate() {
            let mut v = [0u64; 32];
            for lane in 0..32 {
                v[lane] = u64::from(result[lane][i].to_bits());
            }
            self.write(*r, &v, active);
        }
        Ok(())
    }
}
