//! NTU RGB+D `.skeleton` files: the official text format, PYSKL's body selection
//! (`tools/data/ntu_preproc.py` as summarised in the data-format notes), and conversion of a
//! directory into the annotation model.

use std::path::Path;

use half::f16;

use super::annotation::{Annotation, AnnotationFile};
use super::ntu_splits::{parse_missing_list, Benchmark, NtuName};
use super::pickle::DTypeKind;
use super::Sequence;
use crate::{Error, Result};

pub const NTU_JOINTS: usize = 25;

/// One tracked body in one frame: its Kinect tracking id and the 25 camera-space joints (metres).
#[derive(Clone, Debug, PartialEq)]
pub struct BodyFrame {
    pub body_id: u64,
    pub joints: [[f32; 3]; NTU_JOINTS],
}

/// A parsed `.skeleton` file: the bodies of each frame, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct SkeletonFile {
    pub frames: Vec<Vec<BodyFrame>>,
}

/// Parses the official layout: frame count; per frame a body count; per body 10 body-info values,
/// the joint count (25) and 25 lines of 12 values (x y z depthX depthY colorX colorY oriW oriX oriY
/// oriZ trackingState). Tokens are whitespace-separated (CRLF is fine).
pub fn parse_skeleton(path: &Path, text: &str) -> Result<SkeletonFile> {
    let mut tokens = text.split_ascii_whitespace();
    let mut count = 0usize;
    let mut next = |what: &str| -> Result<&str> {
        count += 1;
        tokens
            .next()
            .ok_or_else(|| Error::format(path, format!("truncated: expected {what} (token {count})")))
    };
    fn num<T: std::str::FromStr>(path: &Path, tok: &str, what: &str) -> Result<T> {
        tok.parse()
            .map_err(|_| Error::format(path, format!("{what}: '{tok}' is not a valid number")))
    }
    let frame_count: usize = num(path, next("the frame count")?, "frame count")?;
    let mut frames = Vec::with_capacity(frame_count.min(10_000));
    for f in 0..frame_count {
        let bodies: usize = num(path, next("a body count")?, &format!("frame {f} body count"))?;
        let mut frame = Vec::with_capacity(bodies.min(8));
        for b in 0..bodies {
            let where_ = format!("frame {f} body {b}");
            let body_id: u64 = num(path, next("a body id")?, &format!("{where_} id"))?;
            for _ in 0..9 {
                next("body info")?;
            }
            let joints: usize = num(path, next("a joint count")?, &format!("{where_} joint count"))?;
            if joints != NTU_JOINTS {
                return Err(Error::format(
                    path,
                    format!("{where_}: {joints} joints; NTU files have {NTU_JOINTS}"),
                ));
            }
            let mut xyz = [[0f32; 3]; NTU_JOINTS];
            for (j, p) in xyz.iter_mut().enumerate() {
                for (c, v) in p.iter_mut().enumerate() {
                    let tok = next("a joint value")?;
                    let x: f32 = num(path, tok, &format!("{where_} joint {j}"))?;
                    if !x.is_finite() {
                        return Err(Error::format(
                            path,
                            format!("{where_} joint {j} channel {c}: '{tok}' is not a finite float32"),
                        ));
                    }
                    *v = x;
                }
                for _ in 0..9 {
                    next("joint values")?;
                }
            }
            frame.push(BodyFrame { body_id, joints: xyz });
        }
        frames.push(frame);
    }
    Ok(SkeletonFile { frames })
}

/// Minimum frames for a body to be kept.
const MIN_BODY_FRAMES: usize = 12;
/// A frame is noisy if its x-range exceeds this fraction of its y-range.
const SPREAD_RATIO: f32 = 0.8;
/// A body is dropped if at least this fraction of its frames is noisy.
const NOISY_FRAME_LIMIT: f64 = 0.69754;

struct Track {
    /// (frame in the non-empty timeline, joints)
    frames: Vec<(usize, [[f32; 3]; NTU_JOINTS])>,
    motion: f64,
}

/// PYSKL's selection of up to two bodies: bodies grouped by id over the non-empty frames; bodies
/// with fewer than 12 frames dropped; bodies with ≥ 69.754% noisy frames (x-range > 0.8·y-range)
/// dropped; the rest sorted by motion (sum of per-axis variances, descending) and packed greedily
/// into two slots where their frame ranges do not overlap; leading and trailing empty frames cut.
/// If denoising drops every body, the body with the most frames is kept.
/// Returns `[M, T, 25, 3]` (M = 1 or 2) or `None` if the file has no body at all.
pub fn select_bodies(file: &SkeletonFile) -> Option<(usize, usize, Vec<f32>)> {
    let timeline: Vec<&Vec<BodyFrame>> = file.frames.iter().filter(|f| !f.is_empty()).collect();
    let mut ids: Vec<u64> = Vec::new();
    let mut tracks: Vec<Track> = Vec::new();
    for (t, frame) in timeline.iter().enumerate() {
        for body in frame.iter() {
            let k = match ids.iter().position(|&id| id == body.body_id) {
                Some(k) => k,
                None => {
                    ids.push(body.body_id);
                    tracks.push(Track {
                        frames: Vec::new(),
                        motion: 0.0,
                    });
                    ids.len() - 1
                }
            };
            tracks[k].frames.push((t, body.joints));
        }
    }
    if tracks.is_empty() {
        return None;
    }
    for tr in &mut tracks {
        tr.motion = (0..3)
            .map(|c| variance(tr.frames.iter().flat_map(|(_, j)| j.iter().map(move |p| p[c] as f64))))
            .sum();
    }
    let longest = tracks
        .iter()
        .enumerate()
        .max_by_key(|(i, t)| (t.frames.len(), usize::MAX - i))?
        .0;
    let mut kept: Vec<usize> = (0..tracks.len())
        .filter(|&i| tracks[i].frames.len() >= MIN_BODY_FRAMES)
        .filter(|&i| {
            let noisy = tracks[i].frames.iter().filter(|(_, j)| is_noisy(j)).count();
            (noisy as f64) < NOISY_FRAME_LIMIT * tracks[i].frames.len() as f64
        })
        .collect();
    if kept.is_empty() {
        kept.push(longest);
    }
    // Stable sort by motion, descending.
    kept.sort_by(|&a, &b| tracks[b].motion.total_cmp(&tracks[a].motion));
    let mut slots: Vec<Vec<usize>> = vec![Vec::new(), Vec::new()];
    for &i in &kept {
        let (lo, hi) = span(&tracks[i]);
        let free = slots.iter_mut().find(|slot| {
            slot.iter().all(|&o| {
                let (olo, ohi) = span(&tracks[o]);
                hi < olo || ohi < lo
            })
        });
        if let Some(slot) = free {
            slot.push(i);
        }
    }
    let persons = if slots[1].is_empty() { 1 } else { 2 };
    let t_all = timeline.len();
    let mut kp = vec![0f32; persons * t_all * NTU_JOINTS * 3];
    for (m, slot) in slots.iter().take(persons).enumerate() {
        for &i in slot {
            for (t, joints) in &tracks[i].frames {
                let base = (m * t_all + t) * NTU_JOINTS * 3;
                for (j, p) in joints.iter().enumerate() {
                    kp[base + j * 3..base + j * 3 + 3].copy_from_slice(p);
                }
            }
        }
    }
    // Cut leading and trailing frames where every person is all zero.
    let frame_len = NTU_JOINTS * 3;
    let nonzero = |t: usize| {
        (0..persons).any(|m| {
            kp[(m * t_all + t) * frame_len..(m * t_all + t + 1) * frame_len]
                .iter()
                .any(|&x| x != 0.0)
        })
    };
    let first = (0..t_all).find(|&t| nonzero(t))?;
    let last = (0..t_all).rev().find(|&t| nonzero(t))?;
    let t_new = last - first + 1;
    let mut out = Vec::with_capacity(persons * t_new * frame_len);
    for m in 0..persons {
        out.extend_from_slice(&kp[(m * t_all + first) * frame_len..(m * t_all + last + 1) * frame_len]);
    }
    Some((persons, t_new, out))
}

fn span(t: &Track) -> (usize, usize) {
    (t.frames[0].0, t.frames[t.frames.len() - 1].0)
}

fn is_noisy(joints: &[[f32; 3]; NTU_JOINTS]) -> bool {
    let range = |c: usize| {
        let (lo, hi) = joints.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p[c]), hi.max(p[c]))
        });
        hi - lo
    };
    range(0) > SPREAD_RATIO * range(1)
}

/// Population variance (NumPy's `var`), by a two-pass sum in a fixed order.
fn variance(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let n = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / n;
    values.map(|x| (x - mean) * (x - mean)).sum::<f64>() / n
}

/// Reads one `.skeleton` file into an annotation (keypoints rounded to float16, as PYSKL stores
/// them); `None` if it holds no body.
pub fn read_skeleton_file(path: &Path) -> Result<Option<Annotation>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    skeleton_annotation(path, &bytes)
}

/// The annotation of a `.skeleton` file's content `bytes`; `path` names the file in errors and
/// its stem is the sample name (`SsssCcccPpppRrrrAaaa`), which gives the label.
pub fn skeleton_annotation(path: &Path, bytes: &[u8]) -> Result<Option<Annotation>> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let name = NtuName::parse(stem).ok_or_else(|| {
        Error::format(
            path,
            "file name is not an NTU sample name (SsssCcccPpppRrrrAaaa.skeleton)",
        )
    })?;
    let label = name.label().ok_or_else(|| Error::Sample {
        path: path.to_path_buf(),
        sample: stem.to_string(),
        field: "label".into(),
        detail: "action A000 is out of range (actions are numbered from A001)".into(),
    })?;
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::format(
            path,
            format!("not a text file: invalid UTF-8 at byte {}", e.valid_up_to()),
        )
    })?;
    let file = parse_skeleton(path, text)?;
    let Some((m, t, kp)) = select_bodies(&file) else {
        return Ok(None);
    };
    let keypoint: Vec<f32> = kp.iter().map(|&x| f16::from_f32(x).to_f32()).collect();
    if let Some(i) = keypoint.iter().position(|x| !x.is_finite()) {
        return Err(Error::Sample {
            path: path.to_path_buf(),
            sample: stem.to_string(),
            field: "keypoint".into(),
            detail: format!("value {} at flat index {i} overflows float16", kp[i]),
        });
    }
    Ok(Some(Annotation {
        sequence: Sequence {
            frame_dir: stem.to_string(),
            label,
            shape: [m, t, NTU_JOINTS, 3],
            keypoint,
        },
        keypoint_dtype: DTypeKind::F16,
        keypoint_score: None,
        img_shape: None,
        original_shape: None,
        total_frames: t,
    }))
}

/// What [`read_skeleton_dir`] skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SkipReport {
    /// Listed in a missing-skeleton file in the directory.
    pub listed_missing: usize,
    /// Files without any body.
    pub without_bodies: Vec<String>,
}

impl SkipReport {
    /// The warning to print for the samples of `dir` that were skipped (as PYSKL skips them), or
    /// `None` when none was.
    pub fn warning(&self, dir: &Path) -> Option<String> {
        let skipped = self.listed_missing + self.without_bodies.len();
        if skipped == 0 {
            return None;
        }
        const SHOWN: usize = 5;
        let mut names = self.without_bodies[..self.without_bodies.len().min(SHOWN)].join(", ");
        if self.without_bodies.len() > SHOWN {
            names.push_str(", …");
        }
        let bodies = if names.is_empty() {
            String::new()
        } else {
            format!(" ({names})")
        };
        Some(format!(
            "warning: {}: skipped {skipped} samples: {} listed as missing, {} without bodies{bodies}",
            dir.display(),
            self.listed_missing,
            self.without_bodies.len()
        ))
    }
}

/// Reads every `*.skeleton` in `dir` (sorted by name) into an annotation file with PYSKL's splits
/// (`xsub_*`/`xview_*` for NTU60, `xsub_*`/`xset_*` when a setup above 17 is present). Samples in a
/// `*missing*.txt` list in the directory, and files with no body, are left out of every split.
pub fn read_skeleton_dir(dir: &Path) -> Result<(AnnotationFile, SkipReport)> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    let mut missing = Vec::new();
    for entry in entries {
        let p = entry.map_err(|e| Error::io(dir, e))?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name.ends_with(".skeleton") {
            files.push(p);
        } else if name.ends_with(".txt") && name.contains("missing") {
            let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
            missing.extend(parse_missing_list(&text));
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::format(dir, "no .skeleton files in the directory"));
    }
    let mut report = SkipReport::default();
    let mut annotations = Vec::new();
    for f in &files {
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if missing.iter().any(|m| m == stem) {
            report.listed_missing += 1;
            continue;
        }
        match read_skeleton_file(f)? {
            Some(a) => annotations.push(a),
            None => report.without_bodies.push(stem.to_string()),
        }
    }
    let names: Vec<NtuName> = annotations
        .iter()
        .map(|a| NtuName::parse(&a.sequence.frame_dir).expect("parsed on read"))
        .collect();
    let ntu120 = names.iter().any(|n| n.setup > 17);
    let mut splits = Vec::new();
    for bench in Benchmark::for_dataset(ntu120) {
        for (suffix, train) in [("train", true), ("val", false)] {
            let dirs = annotations
                .iter()
                .zip(&names)
                .filter(|(_, n)| bench.is_train(n) == train)
                .map(|(a, _)| a.sequence.frame_dir.clone())
                .collect();
            splits.push((format!("{}_{suffix}", bench.prefix()), dirs));
        }
    }
    Ok((
        AnnotationFile {
            path: dir.to_path_buf(),
            splits,
            annotations,
        },
        report,
    ))
}
