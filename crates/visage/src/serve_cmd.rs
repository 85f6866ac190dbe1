//! `visage serve` and `visage token create|revoke`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use service::tokens::{self, Secret};
use service::{Access, ClientId, OpenStore, StoreConfig};

use crate::ModelsArgs;

#[derive(Args)]
pub struct ServeArgs {
    /// Where the database and the JWT secret live (created if new).
    #[arg(long, env = "VISAGE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    #[arg(long, env = "VISAGE_PORT", default_value_t = 8080)]
    pub port: u16,
    #[arg(long, env = "VISAGE_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    #[command(flatten)]
    pub models: ModelsArgs,
    #[command(flatten)]
    pub engine: crate::EngineArgs,
    #[command(flatten)]
    pub embedder: crate::EmbedderArgs,
    /// A model clients may still be on (its descriptor, or `sface` for the built-in SFace):
    /// it keeps serving them while they are moved to `--embedder` from their kept crops (in
    /// the background on the embedded store; with `visage reembed` beside PostgreSQL
    /// nodes). Repeatable.
    #[arg(long, value_name = "DESCRIPTOR|sface")]
    pub reembed_from: Vec<PathBuf>,
    /// Largest request body, in MiB.
    #[arg(long, env = "VISAGE_BODY_LIMIT_MB", default_value_t = 32)]
    pub body_limit_mb: usize,
    /// Face-pipeline jobs run at once (default: the number of cores).
    #[arg(long, env = "VISAGE_CPU_WORKERS")]
    pub cpu_workers: Option<usize>,
    /// Face-pipeline jobs that may wait before requests get 503.
    #[arg(long, env = "VISAGE_CPU_QUEUE", default_value_t = 64)]
    pub cpu_queue: usize,
    /// Text of `signature.message` in every response.
    #[arg(long, env = "VISAGE_SIGNATURE", default_value = "Signed by visage")]
    pub signature: String,
    /// FAST search uses the approximate graph from this many faces in scope (exact below).
    #[arg(long, env = "VISAGE_GRAPH_MIN_FACES", default_value_t = index::IndexParams::default().graph_min_faces)]
    pub graph_min_faces: usize,
    /// Cores the background search-graph builder may use at once (default: all).
    #[arg(long, env = "VISAGE_GRAPH_THREADS")]
    pub graph_threads: Option<usize>,
    /// Candidates the graph collects per FAST search (HNSW ef). Default: 256, widened on a
    /// client of more than 400,000 faces to 640 per 10^6 faces (at most 1,000).
    #[arg(long, env = "VISAGE_EF_SEARCH")]
    pub ef_search: Option<usize>,
    /// A request's headers must arrive within this many seconds; an idle keep-alive
    /// connection is closed after as long.
    #[arg(long, env = "VISAGE_HEADER_TIMEOUT_SECS", default_value_t = 15)]
    pub header_timeout_secs: u64,
    /// A request's body must arrive within this many seconds (else 408).
    #[arg(long, env = "VISAGE_BODY_TIMEOUT_SECS", default_value_t = 60)]
    pub body_timeout_secs: u64,
    /// MiB of request bodies read at once, server-wide (else 503; default: 4 bodies of the
    /// largest size).
    #[arg(long, env = "VISAGE_BODY_BUDGET_MB")]
    pub body_budget_mb: Option<usize>,
    /// Connections open at once (default: 1024, or fewer under a low open-file limit).
    #[arg(long, env = "VISAGE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// After SIGTERM, seconds in-flight requests get before their connections are dropped.
    #[arg(long, env = "VISAGE_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Requests per second per client on this node (else 429), and the burst above it.
    #[arg(long, env = "VISAGE_RATE_LIMIT", default_value_t = server::RateLimit::default().per_second)]
    pub rate_limit: f64,
    #[arg(long, env = "VISAGE_RATE_BURST", default_value_t = server::RateLimit::default().burst)]
    pub rate_burst: f64,
    /// `/metrics` requires `Authorization: Bearer <this>` (default: open, like the probes).
    #[arg(long, env = "VISAGE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Adds a `client` label to the HTTP metrics (one series per tenant).
    #[arg(long, env = "VISAGE_METRICS_PER_CLIENT")]
    pub metrics_per_client: bool,
    /// A browser origin allowed to call the API (CORS), e.g. `https://console.example.com`;
    /// repeatable, or comma-separated in the variable. None by default.
    #[arg(
        long = "cors-origin",
        env = "VISAGE_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key); re-read on SIGHUP.
    #[arg(long, env = "VISAGE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "VISAGE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// On PostgreSQL: at most one VACUUM per this many seconds, and only after erasures.
    #[arg(long, env = "VISAGE_VACUUM_SECS", default_value_t = 60)]
    pub vacuum_secs: u64,
    /// Fetch image URLs under this prefix, `scheme://host[:port]/path-prefix` (repeatable;
    /// the variable takes a comma-separated list). Without any, every URL is refused.
    #[arg(long = "image-url-allow", env = "VISAGE_IMAGE_URL_ALLOW", value_delimiter = ',', value_parser = parse_url_prefix)]
    pub image_url_allow: Vec<service::UrlPrefix>,
    /// All the image URLs of one request must be fetched within this many seconds.
    #[arg(long, env = "VISAGE_IMAGE_URL_TIMEOUT_SECS", default_value_t = 10)]
    pub image_url_timeout_secs: u64,
    /// The longest lifetime, in months, of a token renewed through /v2/auth/session (a
    /// larger `expiresIn` is capped at it).
    #[arg(long, env = "VISAGE_TOKEN_MAX_MONTHS", default_value_t = service::tokens::DEFAULT_MAX_RENEWAL_MONTHS,
          value_parser = clap::value_parser!(u32).range(1..=120))]
    pub token_max_months: u32,
}

fn parse_url_prefix(text: &str) -> Result<service::UrlPrefix, String> {
    service::UrlPrefix::parse(text)
}

#[derive(Args, Clone, Default)]
pub struct DatabaseArgs {
    /// PostgreSQL (with pgvector) instead of the embedded SQLite store in --data-dir, e.g.
    /// postgres://visage@db.internal:5432/visage. Several nodes may share one database.
    #[arg(long = "database", env = "VISAGE_DATABASE_URL")]
    pub url: Option<String>,
}

impl DatabaseArgs {
    /// PostgreSQL when a URL is given, else SQLite in `data_dir`.
    pub fn store_config(&self, data_dir: &std::path::Path) -> StoreConfig {
        StoreConfig {
            data_dir: data_dir.to_owned(),
            database: self.url.clone(),
        }
    }

    /// The store these arguments name (see [`service::open_store`]).
    pub async fn open(
        &self,
        data_dir: &std::path::Path,
        access: Access,
    ) -> anyhow::Result<OpenStore> {
        service::open_store(&self.store_config(data_dir), access).await
    }
}

pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if !(args.rate_limit.is_finite() && args.rate_limit > 0.0) {
        bail!("--rate-limit must be a positive number of requests per second");
    }
    let body_limit = args.body_limit_mb.saturating_mul(1024 * 1024);
    let defaults = server::RequestLimits::for_body_limit(body_limit);
    let service_defaults = service::Config::new(
        args.database.store_config(&args.data_dir),
        args.models.models_dir,
    );
    let config = server::ServeConfig {
        service: service::Config {
            cpu_workers: args.cpu_workers.unwrap_or(service_defaults.cpu_workers),
            cpu_queue: args.cpu_queue,
            index: index::IndexParams {
                graph_min_faces: args.graph_min_faces,
                ef_search: args.ef_search.map_or(index::EfSearch::Auto, |ef| {
                    index::EfSearch::Fixed(ef.max(1))
                }),
                ..service_defaults.index
            },
            graph_threads: args
                .graph_threads
                .unwrap_or(service_defaults.graph_threads)
                .max(1),
            vacuum_every: Duration::from_secs(args.vacuum_secs.max(1)),
            image_urls: service::ImageUrlConfig {
                allow: args.image_url_allow,
                timeout: Duration::from_secs(args.image_url_timeout_secs.max(1)),
                max_bytes: body_limit,
            },
            max_renewal_months: args.token_max_months,
            embedder: args.embedder.embedder,
            previous_embedders: args
                .reembed_from
                .into_iter()
                .map(|d| (d.as_os_str() != "sface").then_some(d))
                .collect(),
            pipeline: vision::PipelineConfig {
                engine: args.engine.engine,
                ..service_defaults.pipeline
            },
            ..service_defaults
        },
        addr: SocketAddr::new(args.host, args.port),
        body_limit,
        requests: server::RequestLimits {
            body_timeout: Duration::from_secs(args.body_timeout_secs.max(1)),
            body_budget: args
                .body_budget_mb
                .map_or(defaults.body_budget, |mb| mb.saturating_mul(1024 * 1024)),
            rate: server::RateLimit {
                per_second: args.rate_limit,
                burst: args.rate_burst.max(1.0),
            },
        },
        connections: server::ConnectionLimits {
            header_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
            max_connections: args
                .max_connections
                .unwrap_or(server::ConnectionLimits::default().max_connections),
            shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
        },
        signature_message: args.signature,
        metrics: server::MetricsConfig {
            token: args
                .metrics_token
                .filter(|t| !t.is_empty())
                .map(|t| t.as_str().into()),
            per_client: args.metrics_per_client,
        },
        cors_origins: cors_origins(&args.cors_origins)?,
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(server::TlsFiles { cert, key }),
            _ => None,
        },
    };
    runtime()?.block_on(server::serve(config))
}

/// Each origin exactly as a browser sends it: `scheme://host[:port]`, no path.
fn cors_origins(origins: &[String]) -> anyhow::Result<Vec<server::HeaderValue>> {
    origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let (scheme, rest) = origin.split_once("://").unwrap_or(("", origin));
            if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('/') {
                bail!("bad --cors-origin {origin:?}: expected scheme://host[:port], e.g. https://console.example.com");
            }
            server::HeaderValue::from_str(origin)
                .with_context(|| format!("bad --cors-origin {origin:?}"))
        })
        .collect()
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Tokens live at most this long.
const MAX_TTL_SECS: i64 = 10 * 365 * 86_400;

/// `30d`, `12h`, `15m`, `90s`.
pub fn parse_ttl(text: &str) -> anyhow::Result<i64> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number
        .parse()
        .with_context(|| format!("bad --ttl {text:?}: expected e.g. 30d, 12h, 15m, 90s"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("bad --ttl {text:?}: the unit must be s, m, h or d"),
    };
    if secs <= 0 || secs > MAX_TTL_SECS {
        bail!("--ttl must be between 1s and 3650d");
    }
    Ok(secs)
}

/// The `--client` of a token command: refused with the reason (empty, padded, ...).
fn client_arg(client: &str) -> anyhow::Result<ClientId> {
    ClientId::parse(client).map_err(|e| anyhow::anyhow!("bad --client {client:?}: {e}"))
}

/// Issues a token and records it (its jti, client and times; never the token) in the store,
/// beside a running server if there is one, before printing it.
pub fn create_token(
    data_dir: &std::path::Path,
    database: &DatabaseArgs,
    client: &str,
    ttl: &str,
) -> anyhow::Result<()> {
    let client = client_arg(client)?;
    let ttl = parse_ttl(ttl)?;
    let secret = Secret::load_or_create(data_dir).context("JWT secret")?;
    let (token, claims) = tokens::issue(&secret, &client, chrono::Utc::now().timestamp(), ttl)?;
    let time = |s| chrono::DateTime::from_timestamp(s, 0).context("token time out of range");
    let issued = store::IssuedToken {
        jti: claims.jti,
        client,
        created_at: time(claims.iat)?,
        expires_at: time(claims.exp)?,
        parent: None,
    };
    runtime()?.block_on(async {
        let open = database.open(data_dir, Access::Shared).await?;
        open.store
            .record_token_issue(&issued)
            .await
            .context("recording the token")?;
        anyhow::Ok(())
    })?;
    println!("{token}");
    Ok(())
}

/// Revokes by `jti`, or by the token itself (whose `jti` and expiry are read from it).
pub fn revoke_token(
    data_dir: &std::path::Path,
    database: &DatabaseArgs,
    jti_or_token: &str,
) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp();
    let (jti, exp) = if jti_or_token.contains('.') {
        let claims = tokens::decode_unverified(jti_or_token)
            .map_err(|e| anyhow::anyhow!("not a visage token: {e:?}"))?;
        (claims.jti, claims.exp)
    } else {
        (jti_or_token.to_owned(), now + MAX_TTL_SECS)
    };
    let expires = chrono::DateTime::from_timestamp(exp, 0).context("bad expiry")?;
    runtime()?.block_on(async {
        // Revoking under a running server is what this command is for: no lock.
        let open = database.open(data_dir, Access::Shared).await?;
        open.store.revoke_token(&jti, expires).await?;
        anyhow::Ok(())
    })?;
    println!("revoked {jti}");
    Ok(())
}

/// Revokes every token of the client issued until now, on every node at their next request.
pub fn revoke_client_tokens(
    data_dir: &std::path::Path,
    database: &DatabaseArgs,
    client: &str,
) -> anyhow::Result<()> {
    let client = client_arg(client)?;
    let cutoff = chrono::Utc::now();
    runtime()?.block_on(async {
        let open = database.open(data_dir, Access::Shared).await?;
        open.store.revoke_client_tokens(&client, cutoff).await?;
        anyhow::Ok(())
    })?;
    // Tokens carry their issue time in whole seconds, so one issued later in the cutoff's
    // second is revoked too: return only once that second is over, so that a token created
    // after this command works.
    let wait = (cutoff.timestamp() + 1) * 1000 - chrono::Utc::now().timestamp_millis();
    if let Ok(ms) = u64::try_from(wait) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    println!("revoked every token of {client} issued until {cutoff}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_parse_with_units() {
        assert_eq!(parse_ttl("30d").ok(), Some(30 * 86_400));
        assert_eq!(parse_ttl("90s").ok(), Some(90));
        assert!(parse_ttl("0d").is_err());
        assert!(parse_ttl("5y").is_err());
        assert!(parse_ttl("").is_err());
    }
}
