//! Progress of long commands on stderr: a bar on a terminal, and otherwise (logs, CI) a
//! plain line at most every ten seconds and one at the end. Shareable across threads.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

const LINE_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    label: &'static str,
    total: u64,
    done: AtomicU64,
    started: Instant,
    output: Output,
}

enum Output {
    Bar(ProgressBar),
    /// When the last plain line was written.
    Lines(Mutex<Instant>),
}

impl Progress {
    /// `total` units of work (images, faces, rows) described by `label`.
    pub fn new(label: &'static str, total: u64) -> Self {
        let output = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            let style =
                ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                    .map(|s| s.progress_chars("=> "))
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(label);
            Output::Bar(bar)
        } else {
            Output::Lines(Mutex::new(Instant::now()))
        };
        Progress {
            label,
            total,
            done: AtomicU64::new(0),
            started: Instant::now(),
            output,
        }
    }

    /// `n` more units done.
    pub fn advance(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        match &self.output {
            Output::Bar(bar) => bar.inc(n),
            Output::Lines(last) => {
                let Ok(mut last) = last.try_lock() else {
                    return; // another thread is writing the line
                };
                if last.elapsed() >= LINE_EVERY {
                    *last = Instant::now();
                    self.line(done);
                }
            }
        }
    }

    /// The last line (or the bar cleared).
    pub fn finish(&self) {
        match &self.output {
            Output::Bar(bar) => bar.finish_and_clear(),
            Output::Lines(_) => self.line(self.done.load(Ordering::Relaxed)),
        }
    }

    fn line(&self, done: u64) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "{} {done}/{} ({:.0}/s)",
            self.label,
            self.total,
            done as f64 / secs
        );
    }
}
