//! Store write latency, `visage_store_write_seconds{op}`: the time a use case waits for its
//! transaction to be durable (SQLite's single writer, or a PostgreSQL round trip).

use std::future::Future;
use std::time::Instant;

/// Awaits `write` and records how long it took under `op`.
pub(crate) async fn timed_write<T>(op: &'static str, write: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = write.await;
    metrics::histogram!("visage_store_write_seconds", "op" => op)
        .record(started.elapsed().as_secs_f64());
    out
}
