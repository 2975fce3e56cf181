//! A training run killed with SIGKILL and resumed from its last checkpoint ends with exactly the
//! weights of a run that was never interrupted (CPU backend, whose reductions have a fixed order);
//! a checkpoint records the run's full precision, and resuming it in another one is refused.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use leangcn::train::checkpoint::{load_checkpoint, CheckpointDir};

/// A small but complete configuration: several epochs of a few iterations, checkpoints every 3 steps.
const ARGS: &[&str] = &[
    "train",
    "--backend",
    "cpu",
    "--quiet",
    "--preset",
    "tiny",
    "--epochs",
    "4",
    "--batch-size",
    "8",
    "--clip-len",
    "16",
    "--set",
    "model.base_channels=4",
    "--set",
    "data.synthetic_samples_per_class=6",
    "--set",
    "checkpoint_every=3",
];

fn leangcn(run_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leangcn"));
    cmd.args(ARGS)
        .arg("--run-dir")
        .arg(run_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

fn final_tensors(run_dir: &Path) -> Vec<(String, Vec<f64>)> {
    let dir = CheckpointDir::new(&run_dir.join("checkpoints"), 2).unwrap();
    let latest = dir.latest().unwrap().expect("a finished run has a checkpoint");
    let (tensors, _) = load_checkpoint(&latest).unwrap();
    tensors.into_iter().map(|t| (t.name.clone(), t.data.to_f64())).collect()
}

#[test]
fn sigkill_then_resume_ends_with_identical_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, killed) = (tmp.path().join("whole"), tmp.path().join("killed"));
    assert!(leangcn(&whole).status().unwrap().success());

    let mut child = leangcn(&killed).spawn().unwrap();
    let checkpoints = CheckpointDir::new(&killed.join("checkpoints"), 2).unwrap();
    let started = Instant::now();
    while checkpoints.latest().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run was killed, not finished");

    let mut resume = leangcn(&killed);
    assert!(resume.arg("--resume").status().unwrap().success());

    let (a, b) = (final_tensors(&whole), final_tensors(&killed));
    assert!(a.len() > 20, "the checkpoint holds the model and the optimizer state");
    assert_eq!(a.len(), b.len());
    for ((name_a, va), (name_b, vb)) in a.iter().zip(&b) {
        assert_eq!(name_a, name_b);
        assert!(
            va.iter().zip(vb).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{name_a} differs after resume"
        );
    }
}

#[test]
fn a_bf16_checkpoint_says_bf16_and_refuses_to_resume_in_f32() {
    let tmp = tempfile::tempdir().unwrap();
    let run = leangcn(tmp.path())
        .args(["--precision", "bf16", "--max-steps", "1"])
        .status()
        .unwrap();
    assert!(run.success());
    let dir = CheckpointDir::new(&tmp.path().join("checkpoints"), 2).unwrap();
    let (_, state) = load_checkpoint(&dir.latest().unwrap().expect("a checkpoint at the last step")).unwrap();
    assert_eq!(state["precision"], "bf16", "f32 tensors with bf16 conv operands");

    let out = leangcn(tmp.path())
        .args(["--precision", "f32", "--resume"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "resumed a bf16 run in f32");
    assert!(
        stderr.contains("written by a bf16 run, and this run computes in f32; resume with --precision bf16"),
        "{stderr}"
    );
}
