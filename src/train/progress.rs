//! The per-epoch progress bar: iteration, running loss, learning rate, samples/s and ETA. Hidden when
//! stderr is not a terminal or under CI, where a plain line per epoch is printed instead.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct EpochProgress {
    bar: Option<ProgressBar>,
    loss_sum: f64,
    steps: u64,
}

impl EpochProgress {
    pub fn new(epoch: usize, epochs: usize, iterations: usize, quiet: bool) -> Self {
        let interactive =
            !quiet && std::env::var_os("CI").is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bar = interactive.then(|| {
            let bar = ProgressBar::with_draw_target(Some(iterations as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(format!("{}/{epochs}", epoch + 1));
            bar
        });
        Self {
            bar,
            loss_sum: 0.0,
            steps: 0,
        }
    }

    /// After a step: `position` iterations done in this epoch.
    pub fn update(&mut self, position: usize, loss: f64, lr: f64, samples_per_sec: f64) {
        self.loss_sum += loss;
        self.steps += 1;
        if let Some(bar) = &self.bar {
            bar.set_position(position as u64);
            bar.set_message(format!(
                "loss {:.4} lr {lr:.2e} {samples_per_sec:.0} samples/s",
                self.loss_sum / self.steps as f64
            ));
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
