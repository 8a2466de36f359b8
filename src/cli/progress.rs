//! The progress line on stderr: objects done and bytes moved, with rates. Drawn only when stderr
//! is a terminal and `--quiet` is off; it is cleared before the summary line is printed.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mlflow_archive::transfer::progress::{Progress, Snapshot};

use crate::cli::Global;

/// A transfer's counters and, on a terminal, the line that shows them.
pub struct ProgressLine {
    counters: Arc<Progress>,
    bar: Option<ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl ProgressLine {
    /// Starts counting; draws `label` and the counters four times a second on a terminal.
    pub fn start(global: &Global, label: &'static str) -> Self {
        let counters = Arc::new(Progress::default());
        let draw = !global.quiet && std::io::stderr().is_terminal();
        if !draw {
            return ProgressLine {
                counters,
                bar: None,
                ticker: None,
            };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
        let style = ProgressStyle::with_template("{spinner} {prefix} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_prefix(label);
        let (b, c) = (bar.clone(), Arc::clone(&counters));
        let started = Instant::now();
        let ticker = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(250));
            loop {
                every.tick().await;
                b.set_message(describe(&c.snapshot(), started.elapsed()));
                b.tick();
            }
        });
        ProgressLine {
            counters,
            bar: Some(bar),
            ticker: Some(ticker),
        }
    }

    /// The counters the transfer advances.
    pub fn counters(&self) -> Arc<Progress> {
        Arc::clone(&self.counters)
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// `12 runs · 1,200,000 points (45,000/s) · 340 files, 1.20 GiB (85.00 MiB/s)`.
pub fn describe(s: &Snapshot, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let rate = |n: u64| (n as f64 / secs) as u64;
    let mut parts: Vec<String> = Vec::new();
    if s.experiments > 0 {
        parts.push(format!("{} experiments", HumanCount(s.experiments)));
    }
    parts.push(format!("{} runs", HumanCount(s.runs)));
    if s.logged_models > 0 {
        parts.push(format!("{} logged models", HumanCount(s.logged_models)));
    }
    if s.versions > 0 {
        parts.push(format!("{} versions", HumanCount(s.versions)));
    }
    parts.push(format!(
        "{} points ({}/s)",
        HumanCount(s.points),
        HumanCount(rate(s.points))
    ));
    parts.push(format!(
        "{} files, {} ({}/s)",
        HumanCount(s.files),
        HumanBytes(s.bytes),
        HumanBytes(rate(s.bytes))
    ));
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_counts_and_rates() {
        let mut s = Snapshot::default();
        (s.experiments, s.runs, s.points, s.files, s.bytes) = (1, 12, 1_200_000, 340, 3 << 30);
        assert_eq!(
            describe(&s, Duration::from_secs(2)),
            "1 experiments · 12 runs · 1,200,000 points (600,000/s) · 340 files, 3.00 GiB (1.50 GiB/s)"
        );
    }
}
