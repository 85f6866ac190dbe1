//! The HTTP face: routes, authentication, validation, the Verifik envelope and errors.
//! Thin by design: handlers validate, call the vision pipeline (on a bounded CPU pool)
//! and the store, and shape the answer. Knows no SQL and no tract.

pub mod auth;
mod cpu;
mod envelope;
pub mod error;
mod faces;
mod matching;
mod present;
mod query;
mod routes;
pub mod search_index;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use index::SyncedGallery;
use search_index::SearchIndex;
use store::{ClientId, CollectionId, PersonId, Store};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use vision::Pipeline;

pub use cpu::CpuPool;

/// Everything `visage serve` needs to know.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub addr: SocketAddr,
    pub models_dir: PathBuf,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Face-pipeline jobs that run at once.
    pub cpu_workers: usize,
    /// Face-pipeline jobs that may wait; beyond this requests get 503.
    pub cpu_queue: usize,
    /// `signature.message` of every envelope.
    pub signature_message: String,
    /// When FAST search switches to the graph, and how wide the graph search is.
    pub index: index::IndexParams,
    /// PostgreSQL instead of the embedded store (`postgres://...`): persons, faces and search
    /// live in the database, and any number of nodes may share it.
    pub database: Option<String>,
    /// On PostgreSQL, the shortest time between two `VACUUM`s after erasures.
    pub vacuum_every: std::time::Duration,
}

/// The search index saved at a clean shutdown (see `index::snapshot`).
const INDEX_SNAPSHOT: &str = "index.snapshot";

/// Takes the data directory for this process alone, for as long as the returned file is
/// open: a second server on the same SQLite store would keep its own search index and miss
/// the first one's writes, and a bulk import under a running server would leave the server's
/// index without the imported persons.
pub fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use anyhow::Context;
    let path = dir.join("visage.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another visage process (a running server?) is using {}: stop it first",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Where 1:N search runs; kept in step with each committed change.
    pub search: SearchIndex,
    pub pipeline: Arc<Pipeline>,
    pub cpu: CpuPool,
    pub secret: Arc<auth::Secret>,
    pub message: Arc<str>,
}

impl AppState {
    /// A success envelope signed with this server's message.
    pub fn envelope(&self, data: serde_json::Value) -> envelope::Envelope {
        envelope::Envelope::new(self.message.clone(), data)
    }

    /// Brings search in line with committed changes to these persons. The change itself
    /// stands whatever happens here; if the store cannot be read, the persons are out of
    /// search (never stale in it) until their next change or a restart.
    pub async fn reindex_persons(&self, client: &ClientId, ids: &[PersonId]) {
        if let Err(e) = self.search.refresh_persons(client, ids).await {
            tracing::error!(error = %e, "search index refresh failed");
        }
    }

    /// As [`Self::reindex_persons`], for everyone in or now listed in a collection.
    pub async fn reindex_collection(
        &self,
        client: &ClientId,
        collection: &CollectionId,
        now_listed: &[PersonId],
    ) {
        if let Err(e) = self
            .search
            .refresh_collection(client, collection, now_listed)
            .await
        {
            tracing::error!(error = %e, "search index refresh failed");
        }
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

/// Opens the store, loads the models, binds, and serves until SIGTERM or SIGINT; in-flight
/// requests finish before it returns.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    use anyhow::Context;
    let secret = auth::Secret::load_or_create(&config.data_dir)
        .with_context(|| format!("JWT secret in {}", config.data_dir.display()))?;
    let pipeline = Pipeline::load(&config.models_dir, vision::PipelineConfig::default())
        .context("loading the face models")?;
    if pipeline.liveness().is_none() {
        tracing::warn!("liveness models not installed (scripts/fetch-liveness.sh): liveness endpoints answer 501");
    }
    let snapshot = config.data_dir.join(INDEX_SNAPSHOT);
    let mut data_dir_lock = None;
    let (store, search): (Arc<dyn Store>, SearchIndex) = match &config.database {
        Some(url) => {
            let pg = store::PostgresStore::connect(url, store::PoolOptions::default())
                .await
                .context("connecting to PostgreSQL")?;
            let pg = Arc::new(pg);
            let db = search_index::Database::new(pg.clone());
            db.spawn_vacuum(config.vacuum_every);
            tracing::info!("store and search: PostgreSQL + pgvector");
            (pg, SearchIndex::Database(db))
        }
        None => {
            let store: Arc<dyn Store> =
                Arc::new(store::SqliteStore::open(&config.data_dir).with_context(|| {
                    format!("opening the store in {}", config.data_dir.display())
                })?);
            data_dir_lock = Some(lock_data_dir(&config.data_dir)?);
            let started = std::time::Instant::now();
            let (gallery, from) = SyncedGallery::load(store.clone(), config.index, Some(&snapshot))
                .await
                .context("loading faces into the search index")?;
            tracing::info!(
                faces = gallery.total_faces(),
                from = ?from,
                seconds = started.elapsed().as_secs_f64(),
                bytes = gallery.gallery().memory_bytes(),
                "search index loaded"
            );
            gallery
                .spawn_graph_builder()
                .context("starting the graph builder")?;
            (store, SearchIndex::Memory(Arc::new(gallery)))
        }
    };
    let state = AppState {
        store,
        search: search.clone(),
        pipeline: Arc::new(pipeline),
        cpu: CpuPool::new(config.cpu_workers, config.cpu_queue),
        secret: Arc::new(secret),
        message: Arc::from(config.signature_message.as_str()),
    };
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    let local = listener.local_addr()?;
    tracing::info!("visage listening on http://{local}");
    axum::serve(listener, router(state, config.body_limit))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    match &search {
        // Every request has finished: the gallery mirrors the store, and can be saved for a
        // fast next start.
        SearchIndex::Memory(gallery) => match gallery.save_snapshot(&snapshot).await {
            Ok(true) => tracing::info!("search index saved for the next start"),
            Ok(false) => tracing::warn!("search index not saved: it may differ from the store"),
            Err(e) => tracing::warn!(error = %e, "search index not saved"),
        },
        SearchIndex::Database(db) => db.store.close(),
    }
    drop(data_dir_lock);
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
