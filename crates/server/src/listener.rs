//! The accept loop: HTTP/1.1 connections with a header-read deadline (which also closes
//! idle keep-alive connections), a cap on open connections, and a graceful stop that waits
//! for in-flight requests at most a grace period. `axum::serve` has none of these knobs.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::parse_errors::ParseErrorBodies;
use crate::tls::Tls;

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request's headers must arrive within this; an idle keep-alive connection is closed
    /// after it too (hyper runs one timer while it waits for a request head).
    pub header_timeout: Duration,
    /// Connections open at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// After SIGTERM, how long in-flight requests may take before their connections are
    /// dropped.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(15),
            max_connections: default_max_connections(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// 1,024, or less where the open-file limit would be reached first (the store, the models
/// and the listener need descriptors too).
fn default_max_connections() -> usize {
    const RESERVED: usize = 128;
    let soft_limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|n| n.parse::<usize>().ok())
        });
    match soft_limit {
        Some(n) => n.saturating_sub(RESERVED).clamp(16, 1024),
        None => 512,
    }
}

/// Serves `router` on `listener` (HTTPS with `tls`) until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish within the grace period and drops whatever is
/// left.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    tls: Option<Tls>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        // A free connection slot first, so that a full server stops accepting rather than
        // accepting and dropping.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let (http, watcher) = (http.clone(), graceful.watcher());
        let acceptor = tls.as_ref().map(Tls::acceptor);
        tokio::spawn(async move {
            // A connection error (a client gone, a header or handshake timeout) concerns that
            // client only.
            let served = match acceptor {
                None => {
                    let io = TokioIo::new(ParseErrorBodies::new(stream));
                    watcher.watch(http.serve_connection(io, service)).await
                }
                Some(acceptor) => {
                    // The handshake gets the same deadline as a request head.
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls_stream)) => {
                            let io = TokioIo::new(ParseErrorBodies::new(tls_stream));
                            watcher.watch(http.serve_connection(io, service)).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection closed");
            }
            drop(permit);
        });
    }
    drop(listener);
    match tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!("every connection closed"),
        Err(_) => tracing::warn!(
            grace_secs = limits.shutdown_grace.as_secs_f64(),
            "requests still running after the grace period were dropped"
        ),
    }
}
