//! The HTTP face: routes, authentication, Joi-worded validation, the Verifik envelope and
//! the one error table. Handlers validate, make one call to the [`service::Service`] and
//! shape its answer; they never touch the store, the index or the models.

mod access_log;
mod admission;
mod auth;
mod console;
mod cors;
mod envelope;
pub mod error;
mod guards;
mod listener;
mod metrics;
mod openapi;
mod parse_errors;
mod present;
mod query;
mod routes;
mod tls;
mod validate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use admission::{BodyBudget, RateLimiter};
use axum::extract::DefaultBodyLimit;
pub use axum::http::HeaderValue;
use axum::Router;
use service::{OverloadLog, Service};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use admission::RateLimit;
pub use listener::ConnectionLimits;
pub use metrics::MetricsConfig;
pub use tls::TlsFiles;

/// Everything `visage serve` needs to know.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub service: service::Config,
    pub addr: SocketAddr,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    pub requests: RequestLimits,
    pub connections: ConnectionLimits,
    /// `signature.message` of every envelope.
    pub signature_message: String,
    pub metrics: MetricsConfig,
    /// Browser origins allowed by CORS; none by default.
    pub cors_origins: Vec<HeaderValue>,
    /// HTTPS instead of HTTP.
    pub tls: Option<TlsFiles>,
}

/// Limits on requests, past the connection level.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// A body must be read in full within this.
    pub body_timeout: Duration,
    /// Bytes of request bodies being read at once, server-wide; over it: 503.
    pub body_budget: usize,
    /// Per client, per node; over it: 429.
    pub rate: RateLimit,
}

impl RequestLimits {
    /// The defaults for a body limit: 60 s to send a body (32 MiB at ~4.5 Mbit/s), room for
    /// four bodies of the largest size at once.
    pub fn for_body_limit(body_limit: usize) -> Self {
        RequestLimits {
            body_timeout: Duration::from_secs(60),
            body_budget: body_limit.saturating_mul(4),
            rate: RateLimit::default(),
        }
    }
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub message: Arc<str>,
    rate_limiter: Arc<RateLimiter>,
    overload: Arc<OverloadLog>,
    body_budget: BodyBudget,
    body_timeout: Duration,
    metrics: MetricsConfig,
    cors_origins: Arc<[HeaderValue]>,
}

impl AppState {
    pub fn new(service: Arc<Service>, signature_message: &str, limits: RequestLimits) -> Self {
        AppState {
            service,
            message: Arc::from(signature_message),
            rate_limiter: Arc::new(RateLimiter::new(limits.rate)),
            overload: Arc::new(OverloadLog::default()),
            body_budget: BodyBudget::new(limits.body_budget),
            body_timeout: limits.body_timeout,
            metrics: MetricsConfig::default(),
            cors_origins: Arc::from([]),
        }
    }

    /// Who may read `/metrics` and how detailed its HTTP series are.
    pub fn with_metrics(mut self, config: MetricsConfig) -> Self {
        self.metrics = config;
        self
    }

    /// Browser origins allowed to call the API (CORS); none by default.
    pub fn with_cors_origins(mut self, origins: Vec<HeaderValue>) -> Self {
        self.cors_origins = origins.into();
        self
    }

    /// A success envelope signed with this server's message.
    pub fn envelope(&self, data: serde_json::Value) -> envelope::Envelope {
        envelope::Envelope::new(self.message.clone(), data)
    }
}

/// The whole API as a router (used by `serve` and by tests).
pub fn router(state: AppState, body_limit: usize) -> Router {
    let guard_state = state.clone();
    let app = routes::routes()
        .merge(openapi::routes())
        .merge(console::routes())
        .route_layer(axum::middleware::from_fn(access_log::record_route))
        .fallback(|| async { error::ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                guards::admit(req, next, body_limit, guard_state.body_budget.clone())
            },
        ))
        .layer(axum::middleware::from_fn(guards::close_after_unread_body))
        .layer(axum::middleware::from_fn(guards::private_responses))
        .layer(CatchPanicLayer::custom(|_| {
            use axum::response::IntoResponse;
            error::ApiError::internal("handler panicked").into_response()
        }))
        // 5xx are logged where they arise, with what caused them (an internal error's
        // detail, an overload once per client per interval), not once more per response.
        .layer(TraceLayer::new_for_http().on_failure(()));
    // Preflights are answered before the guards and the method table see them.
    let app = match cors::layer(&state.cors_origins) {
        Some(cors) => app.layer(cors),
        None => app,
    };
    app.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        access_log::log_request,
    ))
    .with_state(state)
}

/// The OpenAPI 3.1 document `GET /openapi.json` serves, pretty-printed.
pub fn openapi_json() -> anyhow::Result<String> {
    use utoipa::OpenApi;
    Ok(openapi::ApiDoc::openapi().to_pretty_json()?)
}

/// Opens the service, binds, and serves until SIGTERM or SIGINT; in-flight requests get the
/// grace period to finish, then the service is shut down (the search index saved, the
/// database pool closed).
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    use anyhow::Context;
    let tls = config.tls.map(tls::Tls::load).transpose()?;
    metrics::install();
    let service = Arc::new(service::open(config.service).await?);
    let state = AppState::new(service.clone(), &config.signature_message, config.requests)
        .with_metrics(config.metrics)
        .with_cors_origins(config.cors_origins);
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tls::reload_on_sighup(tls.clone());
    tracing::info!("visage listening on {scheme}://{local}");
    let app = router(state, config.body_limit);
    listener::serve(listener, app, config.connections, tls, shutdown_signal()).await;
    service.shutdown().await;
    tracing::info!("visage stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
