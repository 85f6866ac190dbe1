//! The HTTP face: routes, authentication, Joi-worded validation, the Verifik envelope and
//! the one error table. Handlers validate, make one call to the [`service::Service`] and
//! shape its answer; they never touch the store, the index or the models.

mod auth;
mod envelope;
pub mod error;
mod present;
mod query;
mod routes;
mod validate;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use service::Service;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

/// Everything `visage serve` needs to know.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub service: service::Config,
    pub addr: SocketAddr,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// `signature.message` of every envelope.
    pub signature_message: String,
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub message: Arc<str>,
}

impl AppState {
    pub fn new(service: Arc<Service>, signature_message: &str) -> Self {
        AppState {
            service,
            message: Arc::from(signature_message),
        }
    }

    /// A success envelope signed with this server's message.
    pub fn envelope(&self, data: serde_json::Value) -> envelope::Envelope {
        envelope::Envelope::new(self.message.clone(), data)
    }
}

/// The whole API as a router (used by `serve` and by tests).
pub fn router(state: AppState, body_limit: usize) -> Router {
    routes::routes()
        .fallback(|| async { error::ApiError::RouteNotFound })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                refuse_declared_oversize(req, next, body_limit)
            },
        ))
        .layer(axum::middleware::from_fn(close_after_unread_body))
        .layer(CatchPanicLayer::custom(|_| {
            use axum::response::IntoResponse;
            error::ApiError::internal("handler panicked").into_response()
        }))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// An error answered before the request body was read (a refused token, an unavailable
/// database, a body too large) leaves unread bytes on the connection, which the server then
/// closes; saying so in `Connection: close` stops the client from sending its next request
/// on a connection that is going away.
async fn close_after_unread_body(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
    let has_body = req.headers().contains_key(TRANSFER_ENCODING)
        || req
            .headers()
            .get(CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let mut response = next.run(req).await;
    let status = response.status();
    if has_body && (status.is_client_error() || status.is_server_error()) {
        response
            .headers_mut()
            .insert(CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    response
}

/// Answers 413 at once when `Content-Length` already says the body is too large, without
/// reading it (bodies without a length are cut off by `DefaultBodyLimit` as they stream).
async fn refuse_declared_oversize(
    req: axum::extract::Request,
    next: axum::middleware::Next,
    limit: usize,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => error::ApiError::PayloadTooLarge.into_response(),
        _ => next.run(req).await,
    }
}

/// Opens the service, binds, and serves until SIGTERM or SIGINT; in-flight requests finish
/// before the service is shut down (the search index saved, the database pool closed).
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    use anyhow::Context;
    let service = Arc::new(service::open(config.service).await?);
    let state = AppState::new(service.clone(), &config.signature_message);
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    let local = listener.local_addr()?;
    tracing::info!("visage listening on http://{local}");
    axum::serve(listener, router(state, config.body_limit))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
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
