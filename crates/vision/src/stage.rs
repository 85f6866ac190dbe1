//! Per-stage latency, recorded through the `metrics` facade as
//! `visage_pipeline_stage_seconds{stage}`. Without an installed recorder (benchmarks, the
//! CLI) recording costs a clock read and nothing else.

use std::time::Instant;

pub(crate) const DECODE: &str = "decode";
pub(crate) const DETECT: &str = "detect";
pub(crate) const ALIGN: &str = "align";
pub(crate) const EMBED: &str = "embed";
pub(crate) const LIVENESS: &str = "liveness";

/// Runs `work` and records how long it took under `stage`.
pub(crate) fn timed<T>(stage: &'static str, work: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = work();
    metrics::histogram!("visage_pipeline_stage_seconds", "stage" => stage)
        .record(started.elapsed().as_secs_f64());
    out
}
