//! The process's Prometheus recorder and the HTTP series (`routes/scrape.rs` serves
//! `GET /metrics`). Other crates record through the `metrics` facade where things happen
//! (pipeline stages in `vision`, the CPU queue and store writes in `service`); this module
//! installs the one recorder of the process and renders what it holds. Labels never carry ids, names or bodies; a client's
//! name only with `--metrics-per-client`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use service::ClientId;

/// Buckets of every `*_seconds` histogram: 1 ms (a cached read) to 30 s (a large image
/// behind a full queue).
const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Who may read `/metrics`, and how detailed the HTTP series are.
#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    pub token: Option<Arc<str>>,
    /// Adds a `client` label to the HTTP series (one series per tenant: mind the cardinality).
    pub per_client: bool,
}

/// The process's recorder, installed on first use. Several routers in one process (tests)
/// share it, as they share the `metrics` facade.
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_ok() {
            describe();
            // Counters exist from the start, so that `rate()` and alerts see a zero.
            metrics::counter!("visage_cpu_rejections_total").increment(0);
            metrics::counter!("visage_rate_limited_total").increment(0);
            metrics::gauge!("visage_cpu_queue_depth").set(0.0);
        } else {
            tracing::warn!("another metrics recorder is installed: /metrics shows nothing");
        }
        handle
    })
}

/// Installs the recorder now, so that series recorded before the first scrape are kept.
pub fn install() {
    let _ = handle();
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "visage_http_requests_total",
        "HTTP requests answered, by matched route, method and status"
    );
    describe_histogram!(
        "visage_http_request_duration_seconds",
        Unit::Seconds,
        "Time from the request head to the response head"
    );
    describe_histogram!(
        "visage_pipeline_stage_seconds",
        Unit::Seconds,
        "Face-pipeline stage time per image or face: decode, detect, align, embed, liveness"
    );
    describe_gauge!(
        "visage_cpu_queue_depth",
        "Face-pipeline jobs admitted and waiting for a worker"
    );
    describe_counter!(
        "visage_cpu_rejections_total",
        "Face-pipeline jobs refused with 503 (queue full, or the client's half share)"
    );
    describe_counter!(
        "visage_rate_limited_total",
        "Requests refused with 429 by a client's rate limit"
    );
    describe_gauge!("visage_index_faces", "Faces in the search index");
    describe_gauge!(
        "visage_index_graph_pending_faces",
        "Faces not yet in the approximate search graph (searched exactly meanwhile)"
    );
    describe_histogram!(
        "visage_store_write_seconds",
        Unit::Seconds,
        "Time for a write transaction to be durable, by operation"
    );
    describe_gauge!(
        "visage_db_pool_connections_in_use",
        "PostgreSQL connections checked out of the pool"
    );
    describe_gauge!(
        "visage_db_pool_connections_idle",
        "PostgreSQL connections open and idle in the pool"
    );
    describe_gauge!(
        "visage_db_pool_waiting",
        "Requests waiting for a PostgreSQL connection"
    );
}

/// One answered request, for the HTTP series.
pub fn record_request(
    config: &MetricsConfig,
    method: &Method,
    route: &str,
    status: StatusCode,
    elapsed: Duration,
    client: Option<&ClientId>,
) {
    let mut labels = vec![
        ("route", route.to_owned()),
        ("method", method.as_str().to_owned()),
        ("status", status.as_u16().to_string()),
    ];
    if config.per_client {
        labels.push(("client", client.map_or("-", ClientId::as_str).to_owned()));
    }
    metrics::counter!("visage_http_requests_total", &labels).increment(1);
    labels.retain(|(name, _)| *name != "status");
    metrics::histogram!("visage_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
}

/// A request refused by its client's rate limit.
pub fn record_rate_limited() {
    metrics::counter!("visage_rate_limited_total").increment(1);
}

/// Reads the index and pool gauges now, then renders every series.
pub async fn render(service: &service::Service) -> String {
    let stats = service.index_stats().await;
    metrics::gauge!("visage_index_faces").set(stats.faces as f64);
    metrics::gauge!("visage_index_graph_pending_faces").set(stats.graph_pending as f64);
    if let Some(pool) = stats.pool {
        metrics::gauge!("visage_db_pool_connections_in_use").set(pool.in_use as f64);
        metrics::gauge!("visage_db_pool_connections_idle").set(pool.idle as f64);
        metrics::gauge!("visage_db_pool_waiting").set(pool.waiting as f64);
    }
    handle().render()
}
