//! The annotation model of a PYSKL file: named splits of `frame_dir`s and validated sequences.

use std::path::{Path, PathBuf};

use super::pickle::{DTypeKind, Node, Pickle};
use super::Sequence;
use crate::{Error, Result};

/// The most classes a dataset may have, far above every skeleton benchmark (NTU-120 has 120,
/// Kinetics 400): a label beyond it is a corrupt file rather than a class, and would otherwise
/// size the classifier by itself.
pub const MAX_CLASSES: u32 = 1 << 16;

/// One annotation: the sequence (keypoints as f32) and PYSKL's optional fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    /// `keypoint` `[M, T, V, C]`, converted exactly to f32 from f16/f32 (f64 is rounded).
    pub sequence: Sequence,
    /// The stored dtype of `keypoint`; PreNormalize3D centres in this precision.
    pub keypoint_dtype: DTypeKind,
    /// `[M, T, V]` confidence scores (2D files).
    pub keypoint_score: Option<Vec<f32>>,
    /// `(h, w)`.
    pub img_shape: Option<(u32, u32)>,
    pub original_shape: Option<(u32, u32)>,
    /// As stored, else the keypoint's T.
    pub total_frames: usize,
}

/// A whole annotation file.
#[derive(Clone, Debug)]
pub struct AnnotationFile {
    pub path: PathBuf,
    /// Split name → `frame_dir`s, in file order.
    pub splits: Vec<(String, Vec<String>)>,
    pub annotations: Vec<Annotation>,
}

impl AnnotationFile {
    /// Reads a PYSKL pickle (`{'split': {...}, 'annotations': [...]}`) and validates every sample.
    pub fn read(path: &Path) -> Result<AnnotationFile> {
        let pickle = Pickle::open(path)?;
        AnnotationFile::from_pickle(&pickle)
    }

    pub fn from_pickle(pickle: &Pickle) -> Result<AnnotationFile> {
        let path = pickle.path();
        let root = pickle.root();
        let foreign = |what: &str| {
            Error::format(
                path,
                format!("not a PYSKL annotation file: {what} (expected a dict with 'split' and 'annotations')"),
            )
        };
        if root.as_dict().is_none() {
            return Err(foreign(&format!("the pickle holds a {}", root.type_name())));
        }
        let split = root.get("split").ok_or_else(|| foreign("no 'split' key"))?;
        let annos = root.get("annotations").ok_or_else(|| foreign("no 'annotations' key"))?;
        let split_pairs = split
            .as_dict()
            .ok_or_else(|| foreign(&format!("'split' is a {}", split.type_name())))?;
        let mut splits = Vec::with_capacity(split_pairs.len());
        for (name, dirs) in split_pairs {
            let name = name.as_str().ok_or_else(|| foreign("a split name is not a string"))?;
            let items = dirs
                .as_seq()
                .ok_or_else(|| foreign(&format!("split '{name}' is not a list")))?;
            let dirs = items
                .map(|d| d.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| foreign(&format!("split '{name}' holds a non-string")))?;
            splits.push((name.to_string(), dirs));
        }
        let items = annos
            .as_seq()
            .ok_or_else(|| foreign(&format!("'annotations' is a {}", annos.type_name())))?;
        let annotations = items
            .enumerate()
            .map(|(i, a)| read_annotation(path, i, a))
            .collect::<Result<Vec<_>>>()?;
        Ok(AnnotationFile {
            path: path.to_path_buf(),
            splits,
            annotations,
        })
    }

    /// The indices (into `annotations`) of the samples of split `name`, in annotation order, as
    /// PYSKL's `PoseDataset` keeps them.
    pub fn split_indices(&self, name: &str) -> Result<Vec<usize>> {
        let Some((_, dirs)) = self.splits.iter().find(|(n, _)| n == name) else {
            let names: Vec<&str> = self.splits.iter().map(|(n, _)| n.as_str()).collect();
            return Err(Error::format(
                &self.path,
                format!("unknown split '{name}'; the file has {names:?}"),
            ));
        };
        let wanted: std::collections::HashSet<&str> = dirs.iter().map(String::as_str).collect();
        Ok(self
            .annotations
            .iter()
            .enumerate()
            .filter(|(_, a)| wanted.contains(a.sequence.frame_dir.as_str()))
            .map(|(i, _)| i)
            .collect())
    }
}

fn sample_err(path: &Path, sample: &str, field: &str, detail: impl Into<String>) -> Error {
    Error::Sample {
        path: path.to_path_buf(),
        sample: sample.to_string(),
        field: field.to_string(),
        detail: detail.into(),
    }
}

fn read_annotation(path: &Path, index: usize, node: Node) -> Result<Annotation> {
    let index_name = format!("#{index}");
    let err = |sample: &str, field: &str, detail: String| sample_err(path, sample, field, detail);
    if node.as_dict().is_none() {
        return Err(err(
            &index_name,
            "annotation",
            format!("is a {}, not a dict", node.type_name()),
        ));
    }
    let frame_dir = node
        .get("frame_dir")
        .or_else(|| node.get("filename"))
        .ok_or_else(|| err(&index_name, "frame_dir", "missing".into()))?;
    let frame_dir = frame_dir
        .as_str()
        .ok_or_else(|| err(&index_name, "frame_dir", format!("is a {}", frame_dir.type_name())))?
        .to_string();
    let name = frame_dir.as_str();

    let label = node.get("label").ok_or_else(|| err(name, "label", "missing".into()))?;
    let label = label
        .as_i64()
        .ok_or_else(|| err(name, "label", format!("is a {}, not an int", label.type_name())))?;
    let label = u32::try_from(label)
        .ok()
        .filter(|&l| l < MAX_CLASSES)
        .ok_or_else(|| err(name, "label", format!("{label} is out of range (0..{MAX_CLASSES})")))?;

    let kp = node.get("keypoint").ok_or_else(|| {
        let hint = if node.get("raw_file").is_some() {
            " (Kinetics-400 tables of contents with separate kpfiles are not supported)"
        } else {
            ""
        };
        err(name, "keypoint", format!("missing{hint}"))
    })?;
    let arr = kp
        .as_array()
        .ok_or_else(|| err(name, "keypoint", format!("is a {}, not an array", kp.type_name())))?;
    if !arr.dtype.kind.is_float() {
        return Err(err(
            name,
            "keypoint",
            format!("dtype {} is not a float type", arr.dtype.kind.name()),
        ));
    }
    let &[m, t, v, c] = arr.shape else {
        return Err(err(
            name,
            "keypoint",
            format!("shape {:?} is not [M, T, V, C]", arr.shape),
        ));
    };
    if m == 0 || t == 0 {
        return Err(err(name, "keypoint", format!("empty sequence (shape {:?})", arr.shape)));
    }
    if !matches!(v, 17 | 18 | 25) {
        return Err(err(
            name,
            "keypoint",
            format!("{v} joints; expected 25 (nturgb+d), 17 (coco) or 18 (openpose)"),
        ));
    }
    if !matches!(c, 2 | 3) {
        return Err(err(name, "keypoint", format!("{c} channels; expected 2 or 3")));
    }
    let keypoint = arr.to_f32();
    check_finite(&keypoint, [m, t, v, c]).map_err(|d| err(name, "keypoint", d))?;

    let keypoint_score = match node.get("keypoint_score") {
        None => None,
        Some(s) => {
            let a = s
                .as_array()
                .ok_or_else(|| err(name, "keypoint_score", format!("is a {}, not an array", s.type_name())))?;
            if a.shape != [m, t, v] {
                return Err(err(
                    name,
                    "keypoint_score",
                    format!(
                        "shape {:?} does not match keypoint's [M, T, V] = {:?}",
                        a.shape,
                        [m, t, v]
                    ),
                ));
            }
            let scores = a.to_f32();
            check_finite(&scores, [m, t, v, 1]).map_err(|d| err(name, "keypoint_score", d))?;
            Some(scores)
        }
    };
    let shape_field = |field: &str| -> Result<Option<(u32, u32)>> {
        let Some(s) = node.get(field) else {
            return Ok(None);
        };
        let hw: Option<Vec<u32>> = s
            .as_seq()
            .map(|it| it.map(|d| d.as_i64().and_then(|x| u32::try_from(x).ok())).collect())
            .and_then(|v: Option<Vec<u32>>| v);
        // PreNormalize2D divides by h / 2 and w / 2.
        match hw.as_deref() {
            Some(&[h, w]) if h > 0 && w > 0 => Ok(Some((h, w))),
            _ => Err(err(name, field, "is not an (h, w) pair of positive ints".into())),
        }
    };
    let img_shape = shape_field("img_shape")?;
    let original_shape = shape_field("original_shape")?;
    let total_frames = match node.get("total_frames") {
        None => t,
        Some(n) => n
            .as_i64()
            .and_then(|x| usize::try_from(x).ok())
            .ok_or_else(|| err(name, "total_frames", "is not a non-negative int".into()))?,
    };
    Ok(Annotation {
        sequence: Sequence {
            frame_dir,
            label,
            shape: [m, t, v, c],
            keypoint,
        },
        keypoint_dtype: arr.dtype.kind,
        keypoint_score,
        img_shape,
        original_shape,
        total_frames,
    })
}

/// Fails on the first NaN or infinity, naming its `[m, t, v, c]` position.
fn check_finite(values: &[f32], shape: [usize; 4]) -> std::result::Result<(), String> {
    match values.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(i) => {
            let [_, t, v, c] = shape;
            Err(format!(
                "{} at person {}, frame {}, joint {}, channel {}",
                values[i],
                i / (t * v * c),
                i / (v * c) % t,
                i / c % v,
                i % c
            ))
        }
    }
}

impl AnnotationFile {
    /// Writes the file as a protocol-4 PYSKL pickle (`{'split', 'annotations'}`), readable by
    /// PYSKL and by [`AnnotationFile::read`]. Keypoints keep float16 when they were float16 and are
    /// float32 otherwise; scores are float32.
    pub fn write_pickle(&self, path: &Path) -> Result<()> {
        use super::pickle::{PickleWriter, WriteValue as V};
        use half::f16;
        let io = |e| Error::io(path, e);
        let file = std::fs::File::create(path).map_err(io)?;
        let mut w = PickleWriter::new(std::io::BufWriter::new(file)).map_err(io)?;
        let split = V::Dict(
            self.splits
                .iter()
                .map(|(n, dirs)| (V::Str(n), V::List(dirs.iter().map(|d| V::Str(d)).collect())))
                .collect(),
        );
        w.begin_dict().map_err(io)?;
        w.value(&V::Str("split")).map_err(io)?;
        w.value(&split).map_err(io)?;
        w.set_item().map_err(io)?;
        w.value(&V::Str("annotations")).map_err(io)?;
        w.begin_list().map_err(io)?;
        for a in &self.annotations {
            let s = &a.sequence;
            let (kind, kp_bytes) = if a.keypoint_dtype == DTypeKind::F16 {
                let h: Vec<f16> = s.keypoint.iter().map(|&x| f16::from_f32(x)).collect();
                (DTypeKind::F16, bytemuck::cast_slice::<f16, u8>(&h).to_vec())
            } else {
                (DTypeKind::F32, bytemuck::cast_slice::<f32, u8>(&s.keypoint).to_vec())
            };
            let [m, t, v, _] = s.shape;
            let mut fields = vec![
                (V::Str("frame_dir"), V::Str(&s.frame_dir)),
                (V::Str("label"), V::Int(s.label as i64)),
                (
                    V::Str("keypoint"),
                    V::Array {
                        kind,
                        shape: s.shape.to_vec(),
                        data: &kp_bytes,
                    },
                ),
                (V::Str("total_frames"), V::Int(a.total_frames as i64)),
            ];
            if let Some(scores) = &a.keypoint_score {
                fields.push((
                    V::Str("keypoint_score"),
                    V::Array {
                        kind: DTypeKind::F32,
                        shape: vec![m, t, v],
                        data: bytemuck::cast_slice(scores),
                    },
                ));
            }
            for (name, hw) in [("img_shape", a.img_shape), ("original_shape", a.original_shape)] {
                if let Some((h, wd)) = hw {
                    fields.push((V::Str(name), V::Tuple(vec![V::Int(h as i64), V::Int(wd as i64)])));
                }
            }
            w.value(&V::Dict(fields)).map_err(io)?;
            w.append().map_err(io)?;
        }
        w.set_item().map_err(io)?;
        let mut out = w.finish().map_err(io)?;
        std::io::Write::flush(&mut out).map_err(io)?;
        Ok(())
    }
}
