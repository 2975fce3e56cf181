//! A [`ClipDataset`] over a PYSKL annotation file, with PYSKL's exact pre-processing:
//! PreNormalize3D (3D) or PreNormalize2D (2D), GenSkeFeat, UniformSample, FormatGCNInput(2).

use std::path::{Path, PathBuf};

use super::annotation::{Annotation, AnnotationFile};
use super::ntu_skeleton::{read_skeleton_dir, SkipReport};
use super::transforms::format_gcn_input::format_gcn_input;
use super::transforms::layout::Layout;
use super::transforms::numpy_random::NumpyRandomState;
use super::transforms::prenormalize::{frames_kept_3d, pre_normalize_2d, pre_normalize_3d};
use super::transforms::skeleton_features::{skeleton_features, Feature};
use super::transforms::uniform_sample::{uniform_sample, SampleMode};
use super::transforms::Skeleton;
use super::{ClipDataset, ClipShape};
use crate::{Error, Result};

/// PYSKL's `FormatGCNInput(num_person=2)`.
pub const NUM_PERSON: usize = 2;
/// PYSKL's test pipeline draws 10 clips per sample.
pub const TEST_CLIPS: usize = 10;

/// Which pipeline: train (random frames, 1 clip), val (seeded frames, 1 clip) or test (seeded
/// frames, [`TEST_CLIPS`] clips).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipelineMode {
    Train,
    Val,
    Test,
}

/// The samples of one split of an annotation file.
///
/// In test mode every sample yields `num_clips` consecutive dataset items (item `i` is clip
/// `i % num_clips` of sample `i / num_clips`), so averaging the softmax of consecutive groups
/// (see `transforms::test_time`) reproduces PYSKL's test-time scores.
pub struct PysklDataset {
    path: PathBuf,
    samples: Vec<Annotation>,
    layout: Layout,
    features: Vec<Feature>,
    clip_len: usize,
    mode: PipelineMode,
    num_clips: usize,
    num_classes: usize,
}

impl PysklDataset {
    /// Opens split `split` of the pickle (or `.skeleton` directory) at `path`. `modality` is a
    /// feature list such as `j`, `b`, `jm`, `bm` or `j,b` (concatenated on channels).
    pub fn open(path: &Path, split: &str, modality: &str, clip_len: usize, mode: PipelineMode) -> Result<PysklDataset> {
        let file = read_annotations(path)?;
        PysklDataset::from_annotations(file, split, modality, clip_len, mode)
    }

    /// [`PysklDataset::open`] on an annotation file already read; errors name `file.path`.
    pub fn from_annotations(
        mut file: AnnotationFile,
        split: &str,
        modality: &str,
        clip_len: usize,
        mode: PipelineMode,
    ) -> Result<PysklDataset> {
        let features = modality
            .split(',')
            .map(|f| {
                Feature::parse(f.trim())
                    .ok_or_else(|| Error::config(format!("unknown modality '{f}' (expected j, b, jm or bm)")))
            })
            .collect::<Result<Vec<_>>>()?;
        if clip_len == 0 {
            return Err(Error::config("clip_len must be at least 1"));
        }
        let path = file.path.clone();
        let indices = file.split_indices(split)?;
        if indices.is_empty() {
            return Err(Error::format(&path, format!("split '{split}' has no samples")));
        }
        let mut keep = vec![false; file.annotations.len()];
        for &i in &indices {
            keep[i] = true;
        }
        let mut flags = keep.into_iter();
        file.annotations.retain(|_| flags.next().unwrap_or(false));
        let samples = file.annotations;

        let sample_err = |a: &Annotation, field: &str, detail: String| Error::Sample {
            path: path.clone(),
            sample: a.sequence.frame_dir.clone(),
            field: field.into(),
            detail,
        };
        let [_, _, v, c] = samples[0].sequence.shape;
        let layout = Layout::from_joints(v)
            .ok_or_else(|| sample_err(&samples[0], "keypoint", format!("{v} joints match no known layout")))?;
        for a in &samples {
            let [_, _, sv, sc] = a.sequence.shape;
            if sv != v || sc != c {
                return Err(sample_err(
                    a,
                    "keypoint",
                    format!(
                        "{sv} joints × {sc} channels, but the split's first sample has {v} × {c} ({} layout)",
                        layout.name()
                    ),
                ));
            }
            match (c, a.keypoint_score.is_some()) {
                (3, true) => {
                    return Err(sample_err(
                        a,
                        "keypoint_score",
                        "present with 3-channel keypoints".into(),
                    ));
                }
                (2, false) => {
                    return Err(sample_err(
                        a,
                        "keypoint_score",
                        "missing: 2D keypoints need scores (the third input channel)".into(),
                    ));
                }
                (3, false) => {
                    let kept = frames_kept_3d(&a.sequence.keypoint, a.sequence.shape);
                    if kept.is_some_and(|(frames, _)| frames.is_empty()) {
                        return Err(sample_err(
                            a,
                            "keypoint",
                            "no frame where person 0 or 1 has a coordinate beyond 1e-8, so PreNormalize3D \
                             keeps no frame"
                                .into(),
                        ));
                    }
                }
                _ => {}
            }
        }
        let num_classes = samples.iter().map(|a| a.sequence.label as usize).max().unwrap_or(0) + 1;
        let num_clips = if mode == PipelineMode::Test { TEST_CLIPS } else { 1 };
        Ok(PysklDataset {
            path,
            samples,
            layout,
            features,
            clip_len,
            mode,
            num_clips,
            num_classes,
        })
    }

    /// Sets the class count (otherwise the largest label + 1); fails naming the first sample
    /// whose label is out of range.
    pub fn set_num_classes(&mut self, num_classes: usize) -> Result<()> {
        if let Some(a) = self.samples.iter().find(|a| a.sequence.label as usize >= num_classes) {
            return Err(Error::Sample {
                path: self.path.clone(),
                sample: a.sequence.frame_dir.clone(),
                field: "label".into(),
                detail: format!("{} is out of range for {num_classes} classes", a.sequence.label),
            });
        }
        self.num_classes = num_classes;
        Ok(())
    }

    /// Clips per sample (1, or [`TEST_CLIPS`] in test mode).
    pub fn num_clips(&self) -> usize {
        self.num_clips
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The sample behind each dataset item group.
    pub fn samples(&self) -> &[Annotation] {
        &self.samples
    }

    /// The normalised keypoints of sample `i` with the requested features: `[M, T', V, C']`.
    pub fn features(&self, i: usize) -> Skeleton {
        let a = &self.samples[i];
        let s = &a.sequence;
        let kp = if s.shape[3] == 3 && a.keypoint_score.is_none() {
            pre_normalize_3d(&s.keypoint, s.shape, a.keypoint_dtype).skeleton
        } else {
            pre_normalize_2d(&s.keypoint, s.shape, a.keypoint_score.as_deref(), a.img_shape)
        };
        skeleton_features(&kp, self.layout, &self.features)
    }
}

impl ClipDataset for PysklDataset {
    fn len(&self) -> usize {
        self.samples.len() * self.num_clips
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn clip_shape(&self) -> ClipShape {
        ClipShape {
            persons: NUM_PERSON,
            frames: self.clip_len,
            joints: self.layout.joints(),
            channels: 3 * self.features.len(),
        }
    }

    fn load_clip(&self, index: usize, seed: u64, out: &mut [f32]) -> Result<u32> {
        let (sample, clip) = (index / self.num_clips, index % self.num_clips);
        let feats = self.features(sample);
        let total = feats.shape[1];
        if total == 0 {
            return Err(Error::Sample {
                path: self.path.clone(),
                sample: self.samples[sample].sequence.frame_dir.clone(),
                field: "keypoint".into(),
                detail: "no frame with a non-zero person 0 or 1".into(),
            });
        }
        let (mode, mut rng) = match self.mode {
            PipelineMode::Train => {
                // One generator per (seed, index): the same clip on every run and thread.
                let mixed = seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                (SampleMode::Train, NumpyRandomState::new((mixed ^ (mixed >> 32)) as u32))
            }
            PipelineMode::Val | PipelineMode::Test => (SampleMode::Test, NumpyRandomState::new(0)),
        };
        // Test mode draws all clips from one reseeded stream; take this item's clip.
        let inds = uniform_sample(total, self.clip_len, self.num_clips, mode, &mut rng);
        let inds = &inds[clip * self.clip_len..(clip + 1) * self.clip_len];
        format_gcn_input(&feats, inds, 1, NUM_PERSON, out);
        // Finite coordinates can still overflow: float16 centring, float32 bones, motion or the
        // 2D scaling. Such a clip must not reach training.
        if let Some(bad) = out.iter().find(|x| !x.is_finite()) {
            let a = &self.samples[sample];
            let largest = a.sequence.keypoint.iter().fold(0f32, |m, x| m.max(x.abs()));
            return Err(Error::Sample {
                path: self.path.clone(),
                sample: a.sequence.frame_dir.clone(),
                field: "keypoint".into(),
                detail: format!(
                    "pre-processing overflows to {bad}: coordinates up to {largest:e} are too large for \
                     {} arithmetic",
                    a.keypoint_dtype.name()
                ),
            });
        }
        Ok(self.samples[sample].sequence.label)
    }
}

/// The cache a `.skeleton` directory is converted to on first use.
pub const SKELETON_CACHE: &str = "leangcn_annotations.pkl";

/// Reads an annotation pickle, or a directory of NTU `.skeleton` files through its cache
/// (`<dir>/leangcn_annotations.pkl`, a protocol-4 PYSKL pickle written on first use when the
/// directory is writable and reused while it is newer than every `.skeleton` file).
pub fn read_annotations(path: &Path) -> Result<AnnotationFile> {
    if !path.is_dir() {
        return AnnotationFile::read(path);
    }
    let cache = path.join(SKELETON_CACHE);
    if cache_is_fresh(path, &cache)? {
        return AnnotationFile::read(&cache);
    }
    let (file, skipped) = read_skeleton_dir(path)?;
    if let Some(w) = skipped.warning(path) {
        eprintln!("{w}");
    }
    // A read-only dataset directory still works, only without the cache.
    let _ = file.write_pickle(&cache);
    Ok(file)
}

fn cache_is_fresh(dir: &Path, cache: &Path) -> Result<bool> {
    let Ok(cache_time) = std::fs::metadata(cache).and_then(|m| m.modified()) else {
        return Ok(false);
    };
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .map_err(|e| Error::io(entry.path(), e))?;
        if entry.path() != cache && modified > cache_time {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Converts a directory of NTU `.skeleton` files into a protocol-4 PYSKL pickle at `out`
/// (float16 keypoints and PYSKL's split names, like `ntu60_3danno.pkl`); returns what was skipped.
pub fn convert_skeleton_dir(dir: &Path, out: &Path) -> Result<SkipReport> {
    let (file, skipped) = read_skeleton_dir(dir)?;
    file.write_pickle(out)?;
    Ok(skipped)
}

/// A few lines describing an annotation pickle or a `.skeleton` directory: samples per split,
/// classes, joints and persons, the frame-length histogram, and all-zero frames.
pub fn inspect(path: &Path) -> Result<String> {
    use std::fmt::Write;
    let (file, skipped) = if path.is_dir() {
        let (f, r) = read_skeleton_dir(path)?;
        (f, Some(r))
    } else {
        (AnnotationFile::read(path)?, None)
    };
    let a = &file.annotations;
    let mut s = String::new();
    let _ = writeln!(s, "{}: {} samples", path.display(), a.len());
    for (name, dirs) in &file.splits {
        let _ = writeln!(s, "  split {name}: {} samples", dirs.len());
    }
    if let Some(r) = skipped {
        let _ = writeln!(
            s,
            "  skipped: {} listed as missing, {} without bodies",
            r.listed_missing,
            r.without_bodies.len()
        );
    }
    let labels: std::collections::BTreeSet<u32> = a.iter().map(|x| x.sequence.label).collect();
    let max_label = labels.iter().next_back().copied().unwrap_or(0);
    let _ = writeln!(s, "  classes: {} distinct labels, max {max_label}", labels.len());
    let mut joints: Vec<String> = a
        .iter()
        .map(|x| {
            let [_, _, v, c] = x.sequence.shape;
            let layout = Layout::from_joints(v).map_or("?", |l| l.name());
            format!("{v} joints ({layout}) × {c} channels, {}", x.keypoint_dtype.name())
        })
        .collect();
    joints.sort();
    joints.dedup();
    let _ = writeln!(s, "  keypoints: {}", joints.join("; "));
    let mut persons = std::collections::BTreeMap::new();
    for x in a {
        *persons.entry(x.sequence.shape[0]).or_insert(0usize) += 1;
    }
    let _ = writeln!(s, "  persons: {persons:?} (persons → samples)");
    let buckets = [0usize, 50, 100, 150, 200, 300, usize::MAX];
    let mut hist = vec![0usize; buckets.len() - 1];
    let mut zero_frames = 0usize;
    for x in a {
        let [m, t, v, c] = x.sequence.shape;
        let b = buckets.windows(2).position(|w| t >= w[0] && t < w[1]).unwrap_or(0);
        hist[b] += 1;
        zero_frames += (0..t)
            .filter(|&f| {
                (0..m).all(|p| {
                    let o = (p * t + f) * v * c;
                    x.sequence.keypoint[o..o + v * c].iter().all(|&y| y == 0.0)
                })
            })
            .count();
    }
    let hist: Vec<String> = buckets
        .windows(2)
        .zip(&hist)
        .map(|(w, n)| {
            if w[1] == usize::MAX {
                format!("≥{}: {n}", w[0])
            } else {
                format!("{}–{}: {n}", w[0], w[1] - 1)
            }
        })
        .collect();
    let _ = writeln!(s, "  frames: {}", hist.join(", "));
    let _ = writeln!(s, "  all-zero frames: {zero_frames}; NaN/inf: none (rejected on read)");
    Ok(s)
}
