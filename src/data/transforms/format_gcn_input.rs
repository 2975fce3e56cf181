//! `PoseDecode` + `FormatGCNInput(num_person, mode='zero')`.

use super::Skeleton;

/// Gathers the frames `inds` (`num_clips * clip_len` indices) of `skel` `[M, T, V, C]` as f32,
/// zero-pads or truncates persons to `num_person`, and writes `[num_clips, num_person, clip_len,
/// V, C]` into `out`.
pub fn format_gcn_input(skel: &Skeleton, inds: &[usize], num_clips: usize, num_person: usize, out: &mut [f32]) {
    let [m, _, v, c] = skel.shape;
    let clip_len = inds.len() / num_clips;
    assert_eq!(out.len(), num_clips * num_person * clip_len * v * c, "output size");
    let frame = v * c;
    for clip in 0..num_clips {
        for p in 0..num_person {
            for i in 0..clip_len {
                let dst = ((clip * num_person + p) * clip_len + i) * frame;
                let dst = &mut out[dst..dst + frame];
                if p < m {
                    let src = skel.index(p, inds[clip * clip_len + i], 0, 0);
                    for (d, &s) in dst.iter_mut().zip(&skel.data[src..src + frame]) {
                        *d = s as f32;
                    }
                } else {
                    dst.fill(0.0);
                }
            }
        }
    }
}
