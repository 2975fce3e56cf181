//! `GenSkeFeat`: joint, bone, joint-motion and bone-motion features (`JointToBone`, `ToMotion`,
//! `MergeSkeFeat` in `pyskl/datasets/pipelines/pose_related.py`).

use super::layout::Layout;
use super::Skeleton;

/// One feature stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    Joint,
    Bone,
    JointMotion,
    BoneMotion,
}

impl Feature {
    /// Parses `j`, `b`, `jm`, `bm`.
    pub fn parse(name: &str) -> Option<Feature> {
        match name {
            "j" => Some(Feature::Joint),
            "b" => Some(Feature::Bone),
            "jm" => Some(Feature::JointMotion),
            "bm" => Some(Feature::BoneMotion),
            _ => None,
        }
    }
}

/// `JointToBone`: `bone[v1] = kp[v1] − kp[v2]` into a float32 array; for 2D layouts with C = 3
/// channel 2 is the mean score of the two joints.
pub fn bones(kp: &Skeleton, layout: Layout) -> Skeleton {
    let [m, t, v, c] = kp.shape;
    let mut out = Skeleton::zeros(kp.shape, true);
    let score = c == 3 && layout.third_channel_is_score();
    for p in 0..m {
        for f in 0..t {
            for &(v1, v2) in layout.bone_pairs() {
                if v1 >= v {
                    continue;
                }
                for ch in 0..c {
                    let a = kp.data[kp.index(p, f, v1, ch)];
                    let b = kp.data[kp.index(p, f, v2, ch)];
                    let x = if score && ch == 2 {
                        kp.round(kp.round(a + b) / 2.0)
                    } else {
                        kp.round(a - b)
                    };
                    let dst = out.index(p, f, v1, ch);
                    out.data[dst] = x as f32 as f64;
                }
            }
        }
    }
    out
}

/// `ToMotion`: `m[:, t] = x[:, t+1] − x[:, t]`, the last frame 0, in the source precision; for 2D
/// layouts with C = 3 channel 2 is the mean score of the two frames.
pub fn motion(x: &Skeleton, layout: Layout) -> Skeleton {
    let [m, t, v, c] = x.shape;
    let mut out = Skeleton::zeros(x.shape, x.is_f32);
    let score = c == 3 && layout.third_channel_is_score();
    for p in 0..m {
        for f in 0..t.saturating_sub(1) {
            for j in 0..v {
                for ch in 0..c {
                    let a = x.data[x.index(p, f, j, ch)];
                    let b = x.data[x.index(p, f + 1, j, ch)];
                    let dst = out.index(p, f, j, ch);
                    out.data[dst] = if score && ch == 2 {
                        x.round(x.round(a + b) / 2.0)
                    } else {
                        x.round(b - a)
                    };
                }
            }
        }
    }
    out
}

/// `GenSkeFeat(feats)`: the requested streams concatenated on the channel axis, in order.
/// `kp` is the normalised keypoint (`[M, T, V, C]`, C = 3 with the score for 2D layouts).
pub fn skeleton_features(kp: &Skeleton, layout: Layout, feats: &[Feature]) -> Skeleton {
    let needs_bone = feats.iter().any(|f| matches!(f, Feature::Bone | Feature::BoneMotion));
    let bone = needs_bone.then(|| bones(kp, layout));
    let streams: Vec<Skeleton> = feats
        .iter()
        .map(|f| match f {
            Feature::Joint => kp.clone(),
            Feature::Bone => bone.clone().expect("bones computed"),
            Feature::JointMotion => motion(kp, layout),
            Feature::BoneMotion => motion(bone.as_ref().expect("bones computed"), layout),
        })
        .collect();
    concat_channels(&streams)
}

/// Concatenates same-shaped arrays on the last axis; float32 only if all are.
fn concat_channels(streams: &[Skeleton]) -> Skeleton {
    if streams.len() == 1 {
        return streams[0].clone();
    }
    let [m, t, v, _] = streams[0].shape;
    let total_c: usize = streams.iter().map(|s| s.shape[3]).sum();
    let mut out = Skeleton::zeros([m, t, v, total_c], streams.iter().all(|s| s.is_f32));
    let mut offset = 0;
    for s in streams {
        let c = s.shape[3];
        for (dst, src) in out.data.chunks_exact_mut(total_c).zip(s.data.chunks_exact(c)) {
            dst[offset..offset + c].copy_from_slice(src);
        }
        offset += c;
    }
    out
}
