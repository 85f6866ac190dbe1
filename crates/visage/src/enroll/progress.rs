//! Progress of an enrolment run on stderr: a bar for a person at a terminal, else a plain line
//! every few seconds (for logs).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often the plain line is written.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// Persons done so far, by outcome.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub enrolled: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl Counts {
    pub fn done(&self) -> u64 {
        self.enrolled + self.skipped + self.failed
    }
}

pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    pub fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:40} {pos}/{len} persons, {per_sec}, eta {eta} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            total,
            started: now,
            last_line: now,
        }
    }

    pub fn update(&mut self, counts: Counts) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(counts.done());
                bar.set_message(format!("({} failed)", counts.failed));
            }
            None if self.last_line.elapsed() >= LINE_EVERY => {
                self.last_line = Instant::now();
                eprintln!("enroll: {}", self.line(counts));
            }
            None => {}
        }
    }

    pub fn finish(&self, counts: Counts) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!("enroll: {}", self.line(counts));
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn line(&self, c: Counts) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        format!(
            "{}/{} persons ({} enrolled, {} skipped, {} failed) in {:.1} s: {:.2} enrolled/s",
            c.done(),
            self.total,
            c.enrolled,
            c.skipped,
            c.failed,
            secs,
            c.enrolled as f64 / secs
        )
    }
}
