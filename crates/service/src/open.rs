//! The composition root: the one place that chooses SQLite or PostgreSQL, and the search
//! backend that goes with each.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use index::{IndexParams, SyncedGallery};
use store::{PoolOptions, PostgresStore, SqliteStore, Store};
use vision::{EmbedderDescriptor, Pipeline, PipelineConfig};

use crate::cpu::CpuPool;
use crate::faces::Faces;
use crate::image_url::{ImageFetcher, ImageUrlConfig};
use crate::models::ClientModels;
use crate::reembed::BackgroundMove;
use crate::search::memory::MemoryBackend;
use crate::search::pgvector::PgvectorBackend;
use crate::search::SearchBackend;
use crate::tokens::Secret;
use crate::Service;

/// The search index saved at a clean shutdown (see `index::SyncedGallery::save_snapshot`).
pub(crate) const INDEX_SNAPSHOT: &str = "index.snapshot";

/// Where the data lives.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The embedded store and the JWT secret live here (created if new).
    pub data_dir: PathBuf,
    /// PostgreSQL instead of the embedded store (`postgres://...`): persons, faces and search
    /// live in the database, and any number of nodes may share it.
    pub database: Option<String>,
}

/// Everything [`open`] needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub models_dir: PathBuf,
    /// The embedder's descriptor file; SFace's built-in one when `None`.
    pub embedder: Option<PathBuf>,
    /// Embedders of models that clients may still be on (`None`: SFace's built-in one):
    /// they keep serving those clients while the service moves them to `embedder` (in the
    /// background on the embedded store; with `visage reembed` beside PostgreSQL nodes).
    pub previous_embedders: Vec<Option<PathBuf>>,
    pub pipeline: PipelineConfig,
    /// Face-pipeline jobs that run at once.
    pub cpu_workers: usize,
    /// Face-pipeline jobs that may wait; beyond this use cases fail with `Busy`.
    pub cpu_queue: usize,
    /// When FAST search switches to the graph, and how wide the graph search is.
    pub index: IndexParams,
    /// Cores the background graph builder may use at once (in-memory search).
    pub graph_threads: usize,
    /// On PostgreSQL, the shortest time between two `VACUUM`s after erasures.
    pub vacuum_every: Duration,
    /// Which image URLs are fetched (none by default), and the limits of a fetch.
    pub image_urls: ImageUrlConfig,
    /// The longest lifetime, in months, a token renewal grants (`expiresIn` is capped at it).
    pub max_renewal_months: u32,
}

impl Config {
    /// The defaults `visage serve` starts with: a face-pipeline job per core, 64 waiting,
    /// the index's default parameters, the graph built on every core, at most one `VACUUM`
    /// a minute.
    pub fn new(store: StoreConfig, models_dir: PathBuf) -> Config {
        Config {
            store,
            models_dir,
            embedder: None,
            previous_embedders: Vec::new(),
            pipeline: PipelineConfig::default(),
            cpu_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            cpu_queue: 64,
            index: IndexParams::default(),
            graph_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            vacuum_every: Duration::from_secs(60),
            image_urls: ImageUrlConfig::default(),
            max_renewal_months: crate::tokens::DEFAULT_MAX_RENEWAL_MONTHS,
        }
    }
}

/// Whether other processes may use an embedded store at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// This process alone (a server, a bulk import): refused while another holds it.
    Exclusive,
    /// Beside a running server (revoking a token is what that is for).
    Shared,
}

/// An open store, and (for SQLite with [`Access::Exclusive`]) the lock that keeps other
/// processes off it meanwhile.
pub struct OpenStore {
    pub store: Arc<dyn Store>,
    /// `Some` on PostgreSQL.
    postgres: Option<Arc<PostgresStore>>,
    lock: Option<std::fs::File>,
}

impl OpenStore {
    /// The PostgreSQL store, when that is what was opened.
    pub fn postgres(&self) -> Option<&Arc<PostgresStore>> {
        self.postgres.as_ref()
    }
}

/// The store `config` names: PostgreSQL when a URL is given, else SQLite in the data
/// directory.
pub async fn open_store(config: &StoreConfig, access: Access) -> anyhow::Result<OpenStore> {
    match &config.database {
        Some(url) => {
            let pg = Arc::new(
                PostgresStore::connect(url, PoolOptions::default())
                    .await
                    .context("connecting to PostgreSQL")?,
            );
            Ok(OpenStore {
                store: pg.clone(),
                postgres: Some(pg),
                lock: None,
            })
        }
        None => {
            let dir = &config.data_dir;
            let store = SqliteStore::open(dir)
                .with_context(|| format!("opening the store in {}", dir.display()))?;
            let lock = match access {
                Access::Exclusive => Some(lock_data_dir(dir)?),
                Access::Shared => None,
            };
            Ok(OpenStore {
                store: Arc::new(store),
                postgres: None,
                lock,
            })
        }
    }
}

/// Opens the store, loads the search index and the face models: the service the server and
/// the command line run. Call [`Service::shutdown`] after the last use.
pub async fn open(config: Config) -> anyhow::Result<Service> {
    let data_dir = &config.store.data_dir;
    let secret = Secret::load_or_create(data_dir)
        .with_context(|| format!("JWT secret in {}", data_dir.display()))?;
    let pipeline = load_pipeline(
        &config.models_dir,
        config.embedder.as_deref(),
        config.pipeline,
    )?;
    let model = pipeline.embedder().id.clone();
    let engine = pipeline.engine();
    tracing::info!(engine = %engine.engine, "inference engine: {}", engine.note);
    if pipeline.liveness().is_none() {
        tracing::warn!("liveness models not installed (scripts/fetch-liveness.sh): liveness use cases are unavailable");
    }
    let previous = config
        .previous_embedders
        .iter()
        .map(|d| load_pipeline(&config.models_dir, d.as_deref(), config.pipeline))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(same) = previous.iter().find(|p| p.embedder().id == model) {
        anyhow::bail!(
            "--reembed-from names the running model {} itself",
            same.embedder().id
        );
    }
    let cpu = CpuPool::new(config.cpu_workers, config.cpu_queue);
    let opened = open_store(&config.store, Access::Exclusive).await?;
    for p in std::iter::once(&pipeline).chain(&previous) {
        let (id, dimension) = (&p.embedder().id, p.embedder().dimension);
        opened
            .store
            .register_model(id, dimension)
            .await
            .with_context(|| format!("recording embedding model {id}"))?;
    }
    let index_params = |p: &Pipeline| IndexParams {
        dimension: p.embedder().dimension,
        ..config.index
    };
    let search: Arc<dyn SearchBackend> = match &opened.postgres {
        Some(pg) => {
            let vector = pg.vector_extension();
            tracing::info!(
                pgvector = %vector.version,
                iterative_scan = vector.iterative_scan,
                "store and search: PostgreSQL + pgvector (FAST filters {} the HNSW index scan)",
                if vector.iterative_scan { "inside" } else { "after" }
            );
            if !previous.is_empty() {
                tracing::info!(
                    "previous models serve their clients until `visage reembed` moves them"
                );
            }
            Arc::new(PgvectorBackend::new(pg.clone(), config.vacuum_every))
        }
        None => {
            let snapshot = data_dir.join(INDEX_SNAPSHOT);
            let started = std::time::Instant::now();
            let (gallery, from) = SyncedGallery::load(
                opened.store.clone(),
                index_params(&pipeline),
                Some(&snapshot),
                &model,
            )
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
                .spawn_graph_builder(config.graph_threads)
                .context("starting the graph builder")?;
            let mut previous_galleries = Vec::new();
            for p in &previous {
                let id = &p.embedder().id;
                let (gallery, _) =
                    SyncedGallery::load(opened.store.clone(), index_params(p), None, id)
                        .await
                        .with_context(|| format!("loading model {id}'s faces"))?;
                tracing::info!(model = %id, faces = gallery.total_faces(), "previous model's search index loaded");
                gallery
                    .spawn_graph_builder(config.graph_threads)
                    .context("starting the graph builder")?;
                previous_galleries.push(gallery);
            }
            Arc::new(MemoryBackend::new(
                gallery,
                previous_galleries,
                cpu.clone(),
                snapshot,
            ))
        }
    };
    let urls = Arc::new(ImageFetcher::new(config.image_urls));
    let faces = |pipeline: Pipeline| Faces {
        pipeline: Arc::new(pipeline),
        cpu: cpu.clone(),
        urls: urls.clone(),
    };
    let models = Arc::new(ClientModels::new(
        faces(pipeline),
        previous.into_iter().map(faces).collect(),
    ));
    let mover = match (&opened.postgres, models.moving()) {
        (None, true) => BackgroundMove::start(opened.store.clone(), search.clone(), models.clone()),
        _ => BackgroundMove::none(),
    };
    Ok(Service {
        store: opened.store,
        search,
        models,
        mover,
        secret,
        max_renewal_months: config.max_renewal_months.max(1),
        _lock: opened.lock,
    })
}

/// The face models, with the embedder `descriptor` describes (SFace when `None`): refused
/// unless its file's sha256 and output dimension match the descriptor (which allows 1 to
/// 1,024 values, what the store and the index hold).
pub fn load_pipeline(
    models_dir: &Path,
    descriptor: Option<&Path>,
    config: PipelineConfig,
) -> anyhow::Result<Pipeline> {
    let descriptor = match descriptor {
        Some(path) => EmbedderDescriptor::from_file(path)?,
        None => EmbedderDescriptor::sface(),
    };
    let pipeline = Pipeline::load_with_embedder(models_dir, config, &descriptor)
        .context("loading the face models")?;
    tracing::info!(model = %descriptor.id, dimension = descriptor.dimension, "embedder loaded");
    Ok(pipeline)
}

/// Takes the data directory for this process alone, for as long as the returned file is
/// open: a second server on the same SQLite store would keep its own search index and miss
/// the first one's writes, and a bulk import under a running server would leave the server's
/// index without the imported persons.
pub fn lock_data_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = dir.join("visage.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // Private like every file in the data directory, whatever the umask (or an older build)
    // made it.
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o777 != 0o600 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private", path.display()))?;
    }
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
