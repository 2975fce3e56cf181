//! Reading a golden file: its tensors (any float or integer dtype, widened to f64) and its
//! configuration, which decides the model, the batch and the optimizer to check.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

use crate::backend::{CosineSchedule, SgdHyper};
use crate::model::{Adaptive, DataBnType, GraphMode, Layout, StgcnConfig};
use crate::{Error, Result};

/// The configuration of a golden case, read from the file's `stgcn_golden` metadata.
#[derive(Clone, Debug)]
pub struct GoldenConfig {
    pub model: StgcnConfig,
    /// Batch dimensions `[N, M, T, V, C]`.
    pub dims: [usize; 5],
    pub sgd: SgdHyper,
    pub lr: f64,
    pub schedule: CosineSchedule,
    /// SGD steps recorded (`delta1..=delta<steps>`).
    pub steps: usize,
    /// Set when the file holds only part of the case (e.g. iteration 0).
    pub subset: Option<String>,
    pub torch_version: String,
}

/// A golden file in memory.
pub struct GoldenFile {
    pub path: PathBuf,
    pub config: GoldenConfig,
    tensors: HashMap<String, (Vec<usize>, Vec<f64>)>,
}

impl GoldenFile {
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let (_, meta) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| Error::format(path, format!("not a safetensors file: {e}")))?;
        let golden = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("stgcn_golden"))
            .ok_or_else(|| Error::format(path, "no 'stgcn_golden' metadata: not a golden-vector file"))?;
        let config = parse_config(path, golden)?;
        let st =
            SafeTensors::deserialize(&bytes).map_err(|e| Error::format(path, format!("unreadable tensors: {e}")))?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let values = widen(view.dtype(), view.data()).ok_or_else(|| {
                Error::format(
                    path,
                    format!("tensor '{name}' has unsupported dtype {:?}", view.dtype()),
                )
            })?;
            tensors.insert(name, (view.shape().to_vec(), values));
        }
        Ok(Self {
            path: path.to_path_buf(),
            config,
            tensors,
        })
    }

    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// A tensor by name, checked against the expected element count.
    pub fn get(&self, name: &str, expected_len: usize) -> Result<&[f64]> {
        let (shape, data) = self
            .tensors
            .get(name)
            .ok_or_else(|| Error::format(&self.path, format!("missing tensor '{name}'")))?;
        if data.len() != expected_len {
            return Err(Error::format(
                &self.path,
                format!(
                    "tensor '{name}' has shape {shape:?} ({} values), expected {expected_len} values",
                    data.len()
                ),
            ));
        }
        Ok(data)
    }

    /// A tensor by name with its shape, if present.
    pub fn tensor(&self, name: &str) -> Option<(&[usize], &[f64])> {
        self.tensors.get(name).map(|(s, d)| (s.as_slice(), d.as_slice()))
    }

    /// Names starting with `prefix`, sorted.
    pub fn names_with_prefix(&self, prefix: &str) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .tensors
            .keys()
            .filter(|k| k.starts_with(prefix))
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names
    }
}

fn widen(dtype: Dtype, data: &[u8]) -> Option<Vec<f64>> {
    fn each<const W: usize>(data: &[u8], f: impl Fn([u8; W]) -> f64) -> Vec<f64> {
        data.chunks_exact(W)
            .map(|c| f(c.try_into().expect("chunk width")))
            .collect()
    }
    Some(match dtype {
        Dtype::F64 => each(data, f64::from_le_bytes),
        Dtype::F32 => each(data, |b| f32::from_le_bytes(b) as f64),
        Dtype::F16 => each(data, |b| half::f16::from_le_bytes(b).to_f64()),
        Dtype::BF16 => each(data, |b| half::bf16::from_le_bytes(b).to_f64()),
        Dtype::I64 => each(data, |b| i64::from_le_bytes(b) as f64),
        Dtype::I32 => each(data, |b| i32::from_le_bytes(b) as f64),
        Dtype::U8 => data.iter().map(|&b| b as f64).collect(),
        Dtype::BOOL => data.iter().map(|&b| (b != 0) as u8 as f64).collect(),
        _ => return None,
    })
}

fn parse_config(path: &Path, text: &str) -> Result<GoldenConfig> {
    let bad = |what: &str| Error::format(path, format!("stgcn_golden metadata: {what}"));
    let root: Value = serde_json::from_str(text).map_err(|e| bad(&format!("not JSON: {e}")))?;
    let format = root["format"].as_str().unwrap_or("");
    if format != "stgcn-golden/1" {
        return Err(bad(&format!("format is '{format}', expected 'stgcn-golden/1'")));
    }
    let cfg = &root["config"];
    let num = |v: &Value, key: &str| v[key].as_f64().ok_or_else(|| bad(&format!("missing number '{key}'")));
    let int = |v: &Value, key: &str| {
        v[key]
            .as_u64()
            .map(|x| x as usize)
            .ok_or_else(|| bad(&format!("missing integer '{key}'")))
    };
    let text_of = |v: &Value, key: &str| {
        v[key]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| bad(&format!("missing string '{key}'")))
    };
    let stages = |v: &Value, key: &str| -> Result<Vec<usize>> {
        v[key]
            .as_array()
            .ok_or_else(|| bad(&format!("missing list '{key}'")))?
            .iter()
            .map(|s| {
                s.as_u64()
                    .map(|x| x as usize)
                    .ok_or_else(|| bad(&format!("'{key}' holds a non-integer")))
            })
            .collect()
    };

    let layout: Layout = text_of(cfg, "layout")?.parse()?;
    let graph_mode: GraphMode = text_of(cfg, "graph_mode")?.parse()?;
    let adaptive = match cfg["adaptive"].as_str() {
        None | Some("none") => Adaptive::None,
        Some("init") => Adaptive::Init,
        Some("offset") => Adaptive::Offset,
        Some("importance") => Adaptive::Importance,
        Some(other) => return Err(bad(&format!("unknown adaptive option '{other}'"))),
    };
    let data_bn = match cfg["data_bn_type"].as_str().unwrap_or("VC") {
        "VC" => DataBnType::Vc,
        "MVC" => DataBnType::Mvc,
        _ => DataBnType::None,
    };
    let shape = &cfg["model_shape"];
    let dims = [
        int(cfg, "N")?,
        int(cfg, "M")?,
        int(cfg, "T")?,
        int(cfg, "V")?,
        int(cfg, "C")?,
    ];
    let bn = &cfg["bn"];
    let model = StgcnConfig {
        layout,
        graph_mode,
        adaptive,
        in_channels: dims[4],
        base_channels: int(shape, "base_channels")?,
        ch_ratio: num(shape, "ch_ratio")?,
        num_stages: int(shape, "num_stages")?,
        inflate_stages: stages(shape, "inflate_stages")?,
        down_stages: stages(shape, "down_stages")?,
        num_person: dims[1],
        num_classes: int(cfg, "num_classes")?,
        data_bn,
        tcn_kernel: int(shape, "tcn_kernel")?,
        tcn_dropout: 0.0,
        head_dropout: 0.0,
        graph_seed: 0,
        bn_eps: num(bn, "eps")?,
        bn_momentum: num(bn, "momentum")?,
        sparse: None,
        widths: None,
    };
    if model.layout.num_joints() != dims[3] {
        return Err(bad(&format!("V = {} does not match layout {}", dims[3], model.layout)));
    }
    if cfg["dropout"].as_f64().unwrap_or(0.0) != 0.0 {
        return Err(bad("only dropout 0 cases can be checked"));
    }
    let opt = &cfg["optimizer"];
    let sgd = SgdHyper {
        momentum: num(opt, "momentum")?,
        dampening: opt["dampening"].as_f64().unwrap_or(0.0),
        weight_decay: num(opt, "weight_decay")?,
        nesterov: opt["nesterov"].as_bool().unwrap_or(false),
    };
    let lr = num(opt, "lr")?;
    let sched = &cfg["scheduler"];
    let schedule = CosineSchedule {
        min_lr: sched["eta_min"].as_f64().unwrap_or(0.0),
        ..CosineSchedule::per_iteration(lr, int(sched, "T_max")? as u64)
    };
    Ok(GoldenConfig {
        model,
        dims,
        sgd,
        lr,
        schedule,
        steps: int(cfg, "steps")?,
        subset: root["subset"].as_str().map(str::to_string),
        torch_version: root["torch_version"].as_str().unwrap_or("unknown").to_string(),
    })
}
