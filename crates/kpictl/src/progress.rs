//! The progress bar of long commands, on stderr: events sent, events
//! acknowledged and the rate. Hidden when stderr is not a terminal or the
//! output is JSON, so scripts and logs never see it.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A handle on the progress bar; cheap to clone, all clones draw the same bar.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
    counts: Arc<Counts>,
}

#[derive(Debug)]
struct Counts {
    started: Instant,
    sent: AtomicU64,
    acknowledged: AtomicU64,
}

impl Default for Counts {
    fn default() -> Counts {
        Counts {
            started: Instant::now(),
            sent: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
        }
    }
}

impl Progress {
    /// A bar drawn on stderr when `wanted` and stderr is a terminal.
    pub fn new(wanted: bool) -> Progress {
        if !wanted || !std::io::stderr().is_terminal() {
            return Progress::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(120));
        let progress = Progress {
            bar,
            counts: Arc::default(),
        };
        progress.redraw();
        progress
    }

    /// A bar that never draws.
    pub fn hidden() -> Progress {
        Progress {
            bar: ProgressBar::hidden(),
            counts: Arc::default(),
        }
    }

    /// `n` events sent so far.
    pub fn sent(&self, n: u64) {
        self.counts.sent.store(n, Ordering::Relaxed);
        self.redraw();
    }

    /// `n` events acknowledged so far.
    pub fn acknowledged(&self, n: u64) {
        self.counts.acknowledged.store(n, Ordering::Relaxed);
        self.redraw();
    }

    fn redraw(&self) {
        if self.bar.is_hidden() {
            return;
        }
        let sent = self.counts.sent.load(Ordering::Relaxed);
        let acknowledged = self.counts.acknowledged.load(Ordering::Relaxed);
        let seconds = self.counts.started.elapsed().as_secs_f64();
        let rate = if seconds > 0.0 {
            acknowledged as f64 / seconds
        } else {
            0.0
        };
        self.bar.set_message(format!(
            "sent {sent} · acknowledged {acknowledged} · {rate:.0} events/s"
        ));
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
