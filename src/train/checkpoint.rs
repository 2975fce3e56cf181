//! Checkpoints: one safetensors file of named tensors (model state and optimizer state) with the
//! run state as JSON in its metadata, written atomically (temporary file, fsync, rename, fsync of the
//! directory), plus a readable `.json` sidecar. A run directory keeps the last few and a `latest`
//! pointer that is itself replaced atomically.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::{Error, Result};

const FORMAT: &str = "leangcn-checkpoint/1";

/// Tensor values in their stored type.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
}

impl TensorData {
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F64(v) => v.len(),
            TensorData::I64(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The values widened to f64 (exact for f32 and f64).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            TensorData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::F64(v) => v.clone(),
            TensorData::I64(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }
    fn dtype_and_bytes(&self) -> (Dtype, &[u8]) {
        match self {
            TensorData::F32(v) => (Dtype::F32, bytemuck::cast_slice(v)),
            TensorData::F64(v) => (Dtype::F64, bytemuck::cast_slice(v)),
            TensorData::I64(v) => (Dtype::I64, bytemuck::cast_slice(v)),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl NamedTensor {
    pub fn new(name: &str, shape: &[usize], data: TensorData) -> Self {
        Self {
            name: name.to_string(),
            shape: shape.to_vec(),
            data,
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // make the rename durable
        fs::File::open(dir)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Saves tensors and the run state to `path`.
pub fn save_checkpoint(path: &Path, tensors: &[NamedTensor], state: &serde_json::Value) -> Result<()> {
    let state_text = serde_json::to_string_pretty(state).expect("JSON values serialise");
    let mut sidecar = path.as_os_str().to_owned();
    sidecar.push(".json");
    write_atomic(Path::new(&sidecar), state_text.as_bytes())?;
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|t| {
            let (dtype, bytes) = t.data.dtype_and_bytes();
            let view = TensorView::new(dtype, t.shape.clone(), bytes)
                .map_err(|e| Error::format(path, format!("tensor '{}': {e}", t.name)))?;
            Ok((t.name.clone(), view))
        })
        .collect::<Result<_>>()?;
    let meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("leangcn_state".to_string(), state_text),
    ]);
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| Error::format(path, e.to_string()))?;
    write_atomic(path, &bytes)
}

/// Loads a checkpoint written by [`save_checkpoint`].
pub fn load_checkpoint(path: &Path) -> Result<(Vec<NamedTensor>, serde_json::Value)> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::format(path, format!("not a checkpoint (truncated or not safetensors): {e}")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(Error::format(
            path,
            format!("not a leangcn checkpoint (no '{FORMAT}' format key)"),
        ));
    }
    let state: serde_json::Value = serde_json::from_str(meta.get("leangcn_state").map_or("", String::as_str))
        .map_err(|e| Error::format(path, format!("unreadable run state: {e}")))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| Error::format(path, format!("unreadable tensors: {e}")))?;
    let mut tensors = Vec::new();
    for (name, view) in st.tensors() {
        let data = match view.dtype() {
            Dtype::F32 => TensorData::F32(bytemuck::pod_collect_to_vec(view.data())),
            Dtype::F64 => TensorData::F64(bytemuck::pod_collect_to_vec(view.data())),
            Dtype::I64 => TensorData::I64(bytemuck::pod_collect_to_vec(view.data())),
            other => {
                return Err(Error::format(
                    path,
                    format!("tensor '{name}' has unsupported dtype {other:?}"),
                ))
            }
        };
        tensors.push(NamedTensor {
            name,
            shape: view.shape().to_vec(),
            data,
        });
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((tensors, state))
}

/// The checkpoints of one run directory.
pub struct CheckpointDir {
    dir: PathBuf,
    keep: usize,
}

impl CheckpointDir {
    pub fn new(dir: &Path, keep: usize) -> Result<Self> {
        Ok(Self {
            dir: dir.to_path_buf(),
            keep: keep.max(1),
        })
    }

    /// Saves `ckpt-<tag>.safetensors`, points `latest` at it, and removes checkpoints beyond the
    /// last `keep` (only after the new one is durable).
    pub fn save(&self, tag: &str, tensors: &[NamedTensor], state: &serde_json::Value) -> Result<PathBuf> {
        let name = format!("ckpt-{tag}.safetensors");
        let path = self.dir.join(&name);
        save_checkpoint(&path, tensors, state)?;
        write_atomic(&self.dir.join("latest"), name.as_bytes())?;
        let mut all = self.list()?;
        all.retain(|p| p != &path);
        let excess = (all.len() + 1).saturating_sub(self.keep);
        for old in all.into_iter().take(excess) {
            let _ = fs::remove_file(&old);
            let mut sidecar = old.into_os_string();
            sidecar.push(".json");
            let _ = fs::remove_file(sidecar);
        }
        Ok(path)
    }

    /// Checkpoint files, oldest first (names sort by epoch and step).
    fn list(&self) -> Result<Vec<PathBuf>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.starts_with("ckpt-") && name.ends_with(".safetensors")
            })
            .collect();
        files.sort();
        Ok(files)
    }

    /// The checkpoint `latest` points at, if any.
    pub fn latest(&self) -> Result<Option<PathBuf>> {
        let pointer = self.dir.join("latest");
        match fs::read_to_string(&pointer) {
            Ok(name) => {
                let path = self.dir.join(name.trim());
                if path.exists() {
                    Ok(Some(path))
                } else {
                    Err(Error::format(
                        &pointer,
                        format!("points at {}, which does not exist", path.display()),
                    ))
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&pointer, e)),
        }
    }
}
