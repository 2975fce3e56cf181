//! Per-epoch metrics as JSON lines (`metrics.jsonl`), and top-k accuracy.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One epoch of training and its validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based.
    pub epoch: usize,
    /// Optimizer steps at the end of the epoch.
    pub iterations: u64,
    pub train_loss: f64,
    pub train_top1: f64,
    pub val_loss: f64,
    pub val_top1: f64,
    pub val_top5: f64,
    /// Learning rate after the epoch.
    pub lr: f64,
    pub samples_per_sec: f64,
    pub seconds: f64,
}

impl EpochMetrics {
    pub fn summary_line(&self, epochs: usize) -> String {
        format!(
            "epoch {}/{epochs}: train loss {:.4} top-1 {:.1}% | val loss {:.4} top-1 {:.1}% top-5 {:.1}% | lr {:.2e} | {:.0} samples/s, {:.1} s",
            self.epoch,
            self.train_loss,
            100.0 * self.train_top1,
            self.val_loss,
            100.0 * self.val_top1,
            100.0 * self.val_top5,
            self.lr,
            self.samples_per_sec,
            self.seconds
        )
    }
}

/// The metrics file of a run.
pub struct MetricsLog {
    path: PathBuf,
    history: Vec<EpochMetrics>,
}

impl MetricsLog {
    /// Opens `path`, keeping the epochs up to `completed_epochs` (a resumed run drops lines written
    /// after its checkpoint) and rewriting the file to match.
    pub fn open(path: &Path, completed_epochs: usize) -> Result<Self> {
        let mut history = Vec::new();
        match fs::read_to_string(path) {
            Ok(text) => {
                for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    let m: EpochMetrics =
                        serde_json::from_str(line).map_err(|e| Error::format(path, format!("line {}: {e}", i + 1)))?;
                    if m.epoch <= completed_epochs {
                        history.push(m);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
        let log = Self {
            path: path.to_path_buf(),
            history,
        };
        let text: String = log
            .history
            .iter()
            .map(|m| serde_json::to_string(m).expect("metrics serialise") + "\n")
            .collect();
        super::checkpoint::write_atomic(path, text.as_bytes())?;
        Ok(log)
    }

    /// Appends one epoch and flushes it to disk.
    pub fn append(&mut self, m: &EpochMetrics) -> Result<()> {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        writeln!(f, "{}", serde_json::to_string(m).expect("metrics serialise"))
            .map_err(|e| Error::io(&self.path, e))?;
        f.sync_data().map_err(|e| Error::io(&self.path, e))?;
        self.history.push(m.clone());
        Ok(())
    }

    pub fn history(&self) -> &[EpochMetrics] {
        &self.history
    }
}

/// Rows of `logits` (`[n, classes]`) whose label is among the `k` largest scores. A score tied with
/// the label's counts against it only if it comes earlier (as a stable descending sort ranks them).
pub fn topk_correct(logits: &[f64], classes: usize, labels: &[u32], k: usize) -> usize {
    logits
        .chunks(classes)
        .zip(labels)
        .filter(|(row, &label)| {
            let l = label as usize;
            let target = row[l];
            let above = row
                .iter()
                .enumerate()
                .filter(|&(j, &z)| z > target || (z == target && j < l))
                .count();
            above < k
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topk_counts_rank_of_the_label() {
        let logits = [0.1, 0.9, 0.5, /* */ 0.7, 0.2, 0.1];
        assert_eq!(topk_correct(&logits, 3, &[1, 1], 1), 1);
        assert_eq!(topk_correct(&logits, 3, &[2, 1], 2), 2);
        assert_eq!(topk_correct(&logits, 3, &[0, 2], 2), 0);
    }

    #[test]
    fn resumed_log_drops_later_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut log = MetricsLog::open(&path, 0).unwrap();
        for epoch in 1..=3 {
            let m = EpochMetrics {
                epoch,
                iterations: epoch as u64 * 10,
                train_loss: 1.0,
                train_top1: 0.5,
                val_loss: 1.0,
                val_top1: 0.5,
                val_top5: 0.9,
                lr: 0.1,
                samples_per_sec: 100.0,
                seconds: 1.0,
            };
            log.append(&m).unwrap();
        }
        let log = MetricsLog::open(&path, 2).unwrap();
        assert_eq!(log.history().len(), 2);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }
}
