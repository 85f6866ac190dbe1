//! The shared back-end: PostgreSQL (13 or newer) with pgvector (0.5 or newer), for several
//! stateless visage nodes on one database. Same behaviour as
//! [`SqliteStore`](crate::sqlite::SqliteStore) behind the same trait, plus 1:N search in the
//! database ([`PostgresStore::nearest_persons`]).
//!
//! - A bounded pool of connections (deadpool), each checked with an empty query before use,
//!   so connections broken by a server restart are replaced on their own. Connecting and
//!   waiting for a free connection both time out: a database that went away gives
//!   [`Error::Unavailable`] in seconds, and calls succeed again once it is back.
//! - Every method is one transaction and returns after its commit (`synchronous_commit=on`
//!   is set on every connection). Writes run READ COMMITTED with explicit row locks (see
//!   `queries.rs`) and are retried on a deadlock; reads run in a read-only REPEATABLE READ
//!   transaction, one snapshot for all their statements.
//! - Migrations run at connect, in one transaction under an advisory lock.
//! - Erasure deletes the rows (person, faces, embeddings, thumbnails, memberships) in the same
//!   transaction as the audit row. PostgreSQL keeps the bytes of deleted rows in the table
//!   files until `VACUUM` ([`PostgresStore::vacuum`], or autovacuum) reclaims them; see
//!   `docs/postgres.md` for what remains in free space and the write-ahead log.
//!
//! No TLS: connect over loopback, a unix socket or a private network.

mod conv;
mod queries;
mod schema;
mod tls;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{
    Hook, HookError, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime,
};
use tokio_postgres::IsolationLevel;

use crate::api::{OperatorReads, Store};
use crate::error::{Error, Result};
use crate::ids::{ClientId, CollectionCode, CollectionId, FaceId, PersonId};
use crate::model::{
    AuditEntry, AuditFilter, ClientErasure, ClientSwitch, Collection, CollectionUpdate,
    DetachOutcome, FaceCrop, FaceRecord, IssuedToken, ListedToken, NewCollection, NewPerson,
    Person, PersonFilter, PersonUpdate, TokenRenewal, MAX_EMBEDDING_DIM, MAX_FACES_PER_PERSON,
};
use crate::rules::{
    check_collection_update, check_issued_token, check_jti, check_new_collection, check_new_person,
    check_person_update, check_renewal, storable,
};

use conv::{is_retryable, pg};

pub use schema::SCHEMA_VERSION;

/// Attempts of a write transaction that hit a deadlock or serialization failure.
const MAX_ATTEMPTS: u32 = 4;

/// Largest `hnsw.ef_search` pgvector accepts.
const MAX_EF_SEARCH: usize = 1000;

/// Smallest `hnsw.ef_search` of a FAST search with iterative index scans. The index then
/// filters as it goes, so the search asks for only the faces that can hold the k best persons
/// (k x 3); fewer candidates than this lose recall on a large gallery (docs/postgres.md,
/// "Search in the database": at 10^5 faces 64 found the best face for 195/200 queries, 100
/// for 198/200, 128 for 200/200).
const ITERATIVE_MIN_EF_SEARCH: usize = 128;

/// How the connection pool is used at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    pub in_use: usize,
    pub idle: usize,
    /// Requests waiting for a connection.
    pub waiting: usize,
}

/// Settings of the connection pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOptions {
    /// Most connections open at once (default 16).
    pub max_size: usize,
    /// Longest wait to open one connection (default 5 s).
    pub connect_timeout: Duration,
    /// Longest wait for a free connection when all are busy (default 5 s).
    pub wait_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 16,
            connect_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(5),
        }
    }
}

/// The pgvector extension the database has, as found at connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorExtension {
    /// `extversion`, e.g. "0.8.5".
    pub version: String,
    /// Iterative index scans (`hnsw.iterative_scan`, pgvector 0.8.0 and newer): a filtered
    /// HNSW scan goes on until enough rows pass the filters, so FAST filters inside the index
    /// scan instead of after it.
    pub iterative_scan: bool,
    /// The models' HNSW indexes hold half-precision copies of the embeddings (`halfvec`,
    /// pgvector 0.7 and newer): `embedding_model_index` (migration 0006) builds them so, and
    /// rebuilds an index of the other kind when the server registers its model.
    pub halfvec_index: bool,
}

impl VectorExtension {
    fn new(version: String) -> Self {
        let mut parts = version
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .chain(std::iter::repeat(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        let iterative_scan = (major, minor) >= (0, 8);
        let halfvec_index = (major, minor) >= (0, 7);
        Self {
            version,
            iterative_scan,
            halfvec_index,
        }
    }
}

/// The PostgreSQL store. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct PostgresStore {
    pool: Pool,
    vector: VectorExtension,
    /// Embedding lengths of the models searched so far: a recorded model's length never
    /// changes, so a search reads it from the database once per model, not per search.
    dimensions: std::sync::RwLock<HashMap<String, usize>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may carry a password.
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .finish()
    }
}

/// Runs `$body` (an expression using `$tx`, of type `Result<T>`) in a read-write transaction
/// and commits; runs it again from the start after a deadlock or serialization failure.
macro_rules! write_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut attempt = 1u32;
        loop {
            let mut conn = $store.conn().await?;
            let $tx = conn.transaction().await.map_err(pg)?;
            let result = async { $body }.await;
            let result = match result {
                Ok(v) => $tx.commit().await.map(|()| v).map_err(commit_error),
                Err(e) => {
                    let _ = $tx.rollback().await;
                    Err(e)
                }
            };
            match result {
                Err(e) if attempt < MAX_ATTEMPTS && is_retryable(&e) => attempt += 1,
                other => break other,
            }
        }
    }};
}

/// Runs `$body` in a read-only REPEATABLE READ transaction (one snapshot).
macro_rules! read_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut conn = $store.conn().await?;
        let $tx = conn
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg)?;
        let result = async { $body }.await;
        match result {
            Ok(v) => {
                $tx.commit().await.map_err(pg)?;
                Ok(v)
            }
            Err(e) => {
                let _ = $tx.rollback().await;
                Err(e)
            }
        }
    }};
}

/// A failed COMMIT: lost connection (the write may or may not have happened), or refused.
fn commit_error(e: tokio_postgres::Error) -> Error {
    match pg(e) {
        Error::Unavailable(why) => Error::Unavailable(format!(
            "connection lost during commit, the write may or may not have been committed: {why}"
        )),
        e if is_retryable(&e) => e,
        e => Error::Commit(e.to_string()),
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`, or the key=value
    /// form), creates the `vector` extension if needed, upgrades an older schema and refuses
    /// a newer one ([`Error::SchemaTooNew`]). An unreachable server is
    /// [`Error::Unavailable`] after at most `opts.connect_timeout`.
    pub async fn connect(url: &str, opts: PoolOptions) -> Result<Self> {
        if opts.max_size == 0 {
            return Err(Error::invalid(
                "pool options",
                "max_size must be at least 1",
            ));
        }
        let (mut cfg, tls) = tls::connection(url)?;
        cfg.connect_timeout(opts.connect_timeout);
        // A peer that vanished without closing (host down, network cut) is noticed: idle
        // connections by keepalives (~45 s), busy ones when sent data stays unacknowledged.
        cfg.keepalives(true);
        cfg.keepalives_idle(Duration::from_secs(30));
        cfg.keepalives_interval(Duration::from_secs(5));
        cfg.keepalives_retries(3);
        cfg.tcp_user_timeout(Duration::from_secs(30));
        if cfg.get_application_name().is_none() {
            cfg.application_name("visage");
        }
        let manager = Manager::from_config(
            cfg,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.max_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(opts.wait_timeout))
            .create_timeout(Some(opts.connect_timeout))
            .recycle_timeout(Some(opts.connect_timeout))
            .post_create(Hook::async_fn(|client, _| {
                Box::pin(async move {
                    // Per session rather than as startup options (which poolers such as
                    // PgBouncer refuse): commits are durable before they are acknowledged
                    // whatever the server default, and a session stuck inside a transaction
                    // does not hold its locks for ever.
                    client
                        .batch_execute(
                            "SET synchronous_commit = on; \
                             SET idle_in_transaction_session_timeout = '60s'",
                        )
                        .await
                        .map_err(HookError::Backend)
                })
            }))
            .build()
            .map_err(|_| Error::invalid("pool options", "max_size must be at least 1"))?;
        let mut conn = pool.get().await.map_err(conv::pool)?;
        schema::migrate(&mut conn).await?;
        let version: String = conn
            .query_one(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
                &[],
            )
            .await
            .map_err(pg)?
            .try_get(0)
            .map_err(pg)?;
        drop(conn);
        Ok(Self {
            pool,
            vector: VectorExtension::new(version),
            dimensions: std::sync::RwLock::default(),
        })
    }

    /// The pgvector extension found at connect.
    pub fn vector_extension(&self) -> &VectorExtension {
        &self.vector
    }

    async fn conn(&self) -> Result<Object> {
        self.pool.get().await.map_err(conv::pool)
    }

    /// The connection pool right now, for metrics.
    pub fn pool_usage(&self) -> PoolUsage {
        let status = self.pool.status();
        PoolUsage {
            in_use: status.size.saturating_sub(status.available),
            idle: status.available,
            waiting: status.waiting,
        }
    }

    /// Faces in the table by the planner's statistics (`reltuples`, kept by ANALYZE and
    /// autovacuum): free to read at every metrics scrape, unlike `count(*)`.
    pub async fn approximate_face_count(&self) -> Result<u64> {
        let conn = self.conn().await?;
        let row = conn
            .query_one(
                "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'faces'::regclass",
                &[],
            )
            .await
            .map_err(conv::pg)?;
        conv::count(&row, 0)
    }

    /// Drops the HNSW indexes of the faces (one per model), for a bulk import into a large or
    /// empty table: maintaining one row by row costs ~3 ms a face at 10^5 faces, building it
    /// afterwards (see [`Self::build_face_index`]) a fraction of that. FAST search is exact
    /// meanwhile.
    pub async fn drop_face_index(&self) -> Result<()> {
        let conn = self.conn().await?;
        let names = conn
            .query(
                "SELECT embedding_model_index_name(model) FROM embedding_models",
                &[],
            )
            .await
            .map_err(conv::pg)?;
        for row in names {
            let name: String = conv::get(&row, 0)?;
            // The name is embedding_model_index_name's: 'faces_hnsw_' and hex digits.
            conn.batch_execute(&format!("DROP INDEX IF EXISTS \"{name}\""))
                .await
                .map_err(conv::pg)?;
        }
        Ok(())
    }

    /// (Re)builds the HNSW index of every recorded model's faces when it is missing (over
    /// `halfvec` copies from pgvector 0.7 on, see migration 0006), with `maintenance_mib` MiB
    /// of build memory and the server's parallel maintenance workers.
    pub async fn build_face_index(&self, maintenance_mib: u32) -> Result<()> {
        let conn = self.conn().await?;
        conn.execute(
            "SELECT set_config('maintenance_work_mem', $1, false)",
            &[&format!("{maintenance_mib}MB")],
        )
        .await
        .map_err(conv::pg)?;
        conn.batch_execute(
            "SELECT embedding_model_index(model) FROM embedding_models; \
             RESET maintenance_work_mem;",
        )
        .await
        .map_err(conv::pg)
    }

    /// Closes the pool: idle connections are closed at once, busy ones when returned. Later
    /// calls fail with [`Error::Closed`].
    pub fn close(&self) {
        self.pool.close();
    }

    /// Runs `VACUUM` on the tables that hold face data and persons, so that the space of
    /// erased rows is reclaimed now rather than when autovacuum gets to it. Takes a while on a
    /// large database; does not block reads or writes.
    pub async fn vacuum(&self) -> Result<()> {
        let conn = self.conn().await?;
        conn.batch_execute("VACUUM thumbnails, faces, memberships, persons")
            .await
            .map_err(pg)
    }

    /// 1:N search in the database: the `k` persons of `client` whose best face is most
    /// similar (cosine) to `probe`, best first (ties: oldest person first), with that
    /// similarity. Only active persons, as in the in-memory index; with `collections`, only
    /// persons in at least one of them (an empty list finds nobody).
    ///
    /// `exact = true` compares every face of the client. `exact = false` uses the HNSW index:
    /// - with iterative index scans (pgvector 0.8+, [`VectorExtension::iterative_scan`]) the
    ///   client, status and collection filters run inside the index scan
    ///   (`hnsw.iterative_scan = relaxed_order`), which goes on until the `k x 3` nearest
    ///   searchable faces are found (`hnsw.ef_search` at least 128);
    /// - without them (pgvector 0.5-0.7) it takes the `max(100, k x 3 x 2)` faces nearest to
    ///   the probe (at most 1000; `hnsw.ef_search` set to match), then filters them.
    ///
    /// Either way each person's best face is kept, and when fewer than `k` persons remain (a
    /// small client in a large shared table whose faces the index scan gives up on, a narrow
    /// collection), the exact search answers instead: it then only reads that client's faces.
    pub async fn nearest_persons(
        &self,
        client: &ClientId,
        model: &str,
        collections: Option<&[CollectionId]>,
        probe: &[f32],
        k: usize,
        exact: bool,
    ) -> Result<Vec<(PersonId, f32)>> {
        self.nearest_persons_inner(client, model, collections, probe, k, exact, false)
            .await
            .map(|(found, _)| found)
    }

    /// What a 1:N search answers: [`Self::nearest_persons`], and beside it
    /// [`Self::searchable_faces`], read at the same time on two connections.
    pub async fn search(
        &self,
        client: &ClientId,
        model: &str,
        collections: Option<&[CollectionId]>,
        probe: &[f32],
        k: usize,
        exact: bool,
    ) -> Result<(Vec<(PersonId, f32)>, u64)> {
        tokio::try_join!(
            self.nearest_persons(client, model, collections, probe, k, exact),
            self.searchable_faces(client, model, collections)
        )
    }

    /// How many faces a search of the client (in any of `collections`, when given) by
    /// `model` compares.
    pub async fn searchable_faces(
        &self,
        client: &ClientId,
        model: &str,
        collections: Option<&[CollectionId]>,
    ) -> Result<u64> {
        let collections: Option<Vec<String>> =
            collections.map(|c| c.iter().map(|id| id.as_str().to_owned()).collect());
        let sql = queries::searchable_faces_sql(collections.as_ref().map(Vec::len));
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(&sql).await.map_err(pg)?;
        let row = conn
            .query_one(&stmt, &[&client.as_str(), &collections, &model])
            .await
            .map_err(pg)?;
        conv::count(&row, 0)
    }

    /// The query plans `nearest_persons` runs (for tests and diagnostics): `-- approximate`
    /// then the HNSW plan, `-- exact` then the exact plan (both when the first fell short).
    #[doc(hidden)]
    pub async fn explain_nearest_persons(
        &self,
        client: &ClientId,
        model: &str,
        collections: Option<&[CollectionId]>,
        probe: &[f32],
        k: usize,
        exact: bool,
    ) -> Result<String> {
        self.nearest_persons_inner(client, model, collections, probe, k, exact, true)
            .await
            .map(|(_, plan)| plan)
    }

    /// The recorded length of `model`'s embeddings (`None`: not recorded yet).
    async fn model_dimension(&self, model: &str) -> Result<Option<usize>> {
        let cached = self
            .dimensions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(model)
            .copied();
        if cached.is_some() {
            return Ok(cached);
        }
        let recorded = read_tx!(self, |tx| {
            let row = tx
                .query_opt(
                    "SELECT dimension FROM embedding_models WHERE model = $1",
                    &[&model],
                )
                .await
                .map_err(pg)?;
            row.map(|r| conv::get::<i32>(&r, 0)).transpose()
        });
        let Some(dimension) = recorded?.and_then(|d| usize::try_from(d).ok()) else {
            return Ok(None);
        };
        self.dimensions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(model.to_owned(), dimension);
        Ok(Some(dimension))
    }

    #[allow(clippy::too_many_arguments)]
    async fn nearest_persons_inner(
        &self,
        client: &ClientId,
        model: &str,
        collections: Option<&[CollectionId]>,
        probe: &[f32],
        k: usize,
        exact: bool,
        explain: bool,
    ) -> Result<(Vec<(PersonId, f32)>, String)> {
        if probe.is_empty() || probe.len() > MAX_EMBEDDING_DIM {
            return Err(Error::invalid("probe", "must have 1-1024 values"));
        }
        if !crate::rules::is_model_id(model) {
            return Err(Error::invalid(
                "model",
                "must be 1-64 of a-z, 0-9, '.', '_', '-'",
            ));
        }
        if !probe.iter().all(|v| v.is_finite()) {
            return Err(Error::invalid("probe", "has a non-finite value"));
        }
        if probe.iter().all(|v| *v == 0.0) {
            return Err(Error::invalid("probe", "is all zeros"));
        }
        if k == 0 || collections.is_some_and(|c| c.is_empty()) {
            return Ok((Vec::new(), String::new()));
        }
        let probe = probe.to_vec();
        let collections: Option<Vec<String>> =
            collections.map(|c| c.iter().map(|id| id.as_str().to_owned()).collect());
        let limit = i64::try_from(k).unwrap_or(i64::MAX);
        let iterative = self.vector.iterative_scan;
        // Faces the index scan returns, and the ef_search that makes it return that many.
        let (fetch, ef) = if iterative {
            let fetch = k.saturating_mul(MAX_FACES_PER_PERSON);
            (fetch, fetch.max(ITERATIVE_MIN_EF_SEARCH))
        } else {
            let fetch = k
                .saturating_mul(MAX_FACES_PER_PERSON)
                .saturating_mul(2)
                .max(100);
            (fetch, fetch)
        };
        let approx = !exact && ef <= MAX_EF_SEARCH;
        // A model with no faces yet finds nobody; a probe of another length than the
        // model's faces cannot be compared with them.
        let Some(dimension) = self.model_dimension(model).await? else {
            return Ok((Vec::new(), String::new()));
        };
        read_tx!(self, |tx| {
            if dimension != probe.len() {
                return Err(Error::invalid(
                    "probe",
                    "must have as many values as the model's embeddings",
                ));
            }
            let mut plan = String::new();
            if approx {
                // Seq scans and sorts off: the planner would otherwise sort a small table, a
                // small client's faces (found by persons_by_client) or the model's rows (found
                // by `faces_model`) itself rather than walk the model's HNSW index, so that
                // FAST is the index scan these settings tune.
                let settings = if iterative {
                    "SELECT set_config('hnsw.ef_search', $1, true), \
                            set_config('hnsw.iterative_scan', 'relaxed_order', true), \
                            set_config('enable_seqscan', 'off', true), \
                            set_config('enable_sort', 'off', true)"
                } else {
                    "SELECT set_config('hnsw.ef_search', $1, true), \
                            set_config('enable_seqscan', 'off', true), \
                            set_config('enable_sort', 'off', true)"
                };
                let half = self.vector.halfvec_index;
                let sql = if iterative {
                    queries::nearest_filtered_approx_sql(probe.len(), model, half)
                } else {
                    queries::nearest_approx_sql(probe.len(), model, half)
                };
                let settings = tx.prepare_cached(settings).await.map_err(pg)?;
                let ef = ef.to_string();
                let fetch = i64::try_from(fetch).unwrap_or(i64::MAX);
                let found = if explain {
                    tx.execute(&settings, &[&ef]).await.map_err(pg)?;
                    plan.push_str("-- approximate\n");
                    plan.push_str(
                        &explain_plan(
                            &tx,
                            &sql,
                            &probe,
                            client,
                            &collections,
                            model,
                            limit,
                            Some(fetch),
                        )
                        .await?,
                    );
                    queries::nearest(
                        &tx,
                        &sql,
                        &probe,
                        client,
                        &collections,
                        model,
                        limit,
                        Some(fetch),
                    )
                    .await?
                } else {
                    // One round trip for both: the settings are sent first on the same
                    // connection, so the search runs under them.
                    let search = queries::prepare(&tx, &sql).await?;
                    let (_, found) = tokio::try_join!(
                        async { tx.execute(&settings, &[&ef]).await.map_err(pg) },
                        queries::nearest_prepared(
                            &tx,
                            &search,
                            &probe,
                            client,
                            &collections,
                            model,
                            limit,
                            Some(fetch),
                        )
                    )?;
                    found
                };
                if found.len() >= k {
                    return Ok((found, plan));
                }
                tx.execute(
                    "SELECT set_config('enable_seqscan', 'on', true), \
                            set_config('enable_sort', 'on', true)",
                    &[],
                )
                .await
                .map_err(pg)?;
            }
            let sql = queries::nearest_exact_sql();
            if explain {
                plan.push_str("-- exact\n");
                plan.push_str(
                    &explain_plan(&tx, &sql, &probe, client, &collections, model, limit, None)
                        .await?,
                );
            }
            let found =
                queries::nearest(&tx, &sql, &probe, client, &collections, model, limit, None)
                    .await?;
            Ok((found, plan))
        })
    }
}

#[allow(clippy::too_many_arguments)]
async fn explain_plan(
    tx: &queries::Tx<'_>,
    sql: &str,
    probe: &Vec<f32>,
    client: &ClientId,
    collections: &Option<Vec<String>>,
    model: &str,
    limit: i64,
    fetch: Option<i64>,
) -> Result<String> {
    let sql = format!("EXPLAIN {sql}");
    let c = client.as_str();
    let rows = match &fetch {
        Some(f) => {
            tx.query(&sql, &[probe, &c, collections, &limit, &model, f])
                .await
        }
        None => {
            tx.query(&sql, &[probe, &c, collections, &limit, &model])
                .await
        }
    }
    .map_err(pg)?;
    let mut out = String::new();
    for r in rows {
        let line: &str = conv::get(&r, 0)?;
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_collection(&self, client: &ClientId, new: NewCollection) -> Result<Collection> {
        check_new_collection(&new)?;
        write_tx!(self, |tx| queries::create_collection(&tx, client, &new)
            .await)
    }

    async fn list_collections(&self, client: &ClientId) -> Result<Vec<Collection>> {
        read_tx!(self, |tx| queries::list_collections(&tx, client).await)
    }

    async fn get_collection(
        &self,
        client: &ClientId,
        id: &CollectionId,
    ) -> Result<Option<Collection>> {
        read_tx!(self, |tx| queries::get_collection(&tx, client, id).await)
    }

    async fn resolve_collection(
        &self,
        client: &ClientId,
        reference: &str,
    ) -> Result<Option<Collection>> {
        if let Ok(id) = CollectionId::parse(reference) {
            return self.get_collection(client, &id).await;
        }
        if let Ok(code) = CollectionCode::parse(reference) {
            return read_tx!(self, |tx| queries::collection_by_code(&tx, client, &code)
                .await);
        }
        Ok(None)
    }

    async fn update_collection(
        &self,
        client: &ClientId,
        id: &CollectionId,
        update: CollectionUpdate,
    ) -> Result<Option<Collection>> {
        check_collection_update(&update)?;
        write_tx!(self, |tx| queries::update_collection(
            &tx, client, id, &update
        )
        .await)
    }

    async fn delete_collection(
        &self,
        client: &ClientId,
        id: &CollectionId,
    ) -> Result<Option<Collection>> {
        write_tx!(self, |tx| queries::delete_collection(&tx, client, id).await)
    }

    async fn create_person(&self, client: &ClientId, new: NewPerson) -> Result<Person> {
        check_new_person(&new)?;
        write_tx!(self, |tx| queries::create_person(&tx, client, &new).await)
    }

    async fn list_persons(
        &self,
        client: &ClientId,
        filter: PersonFilter,
        page: u32,
        limit: u32,
    ) -> Result<(Vec<Person>, u64)> {
        read_tx!(self, |tx| queries::list_persons(
            &tx, client, &filter, page, limit
        )
        .await)
    }

    async fn lookup_persons(
        &self,
        client: &ClientId,
        name_contains: &str,
        date_of_birth: Option<NaiveDate>,
        page: u32,
        limit: u32,
    ) -> Result<(Vec<Person>, u64)> {
        read_tx!(self, |tx| queries::lookup_persons(
            &tx,
            client,
            name_contains,
            date_of_birth,
            page,
            limit
        )
        .await)
    }

    async fn get_person(&self, client: &ClientId, id: &PersonId) -> Result<Option<Person>> {
        read_tx!(self, |tx| queries::get_person(&tx, client, id).await)
    }

    async fn get_persons(&self, client: &ClientId, ids: &[PersonId]) -> Result<Vec<Person>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        read_tx!(self, |tx| queries::get_persons(&tx, client, ids).await)
    }

    async fn update_person(
        &self,
        client: &ClientId,
        id: &PersonId,
        update: PersonUpdate,
    ) -> Result<Option<Person>> {
        check_person_update(&update)?;
        write_tx!(self, |tx| queries::update_person(&tx, client, id, &update)
            .await)
    }

    async fn erase_person(&self, client: &ClientId, id: &PersonId) -> Result<bool> {
        write_tx!(self, |tx| queries::erase_person(&tx, client, id).await)
    }

    async fn detach_person(
        &self,
        client: &ClientId,
        id: &PersonId,
        collection: &CollectionId,
    ) -> Result<DetachOutcome> {
        write_tx!(self, |tx| queries::detach_person(
            &tx, client, id, collection
        )
        .await)
    }

    async fn erase_client(&self, client: &ClientId) -> Result<ClientErasure> {
        write_tx!(self, |tx| queries::erase_client(&tx, client).await)
    }

    async fn seed_persons(
        &self,
        client: &ClientId,
        persons: Vec<NewPerson>,
    ) -> Result<Vec<PersonId>> {
        for p in &persons {
            check_new_person(p)?;
        }
        write_tx!(self, |tx| queries::seed_persons(&tx, client, &persons)
            .await)
    }

    async fn faces_for_index(&self) -> Result<Vec<FaceRecord>> {
        read_tx!(self, |tx| queries::faces_for_index(&tx).await)
    }

    async fn faces_of_person(&self, client: &ClientId, id: &PersonId) -> Result<Vec<FaceRecord>> {
        read_tx!(self, |tx| queries::faces_of_person(&tx, client, id).await)
    }

    async fn face_embeddings(
        &self,
        client: &ClientId,
        model: &str,
        faces: &[FaceId],
    ) -> Result<Vec<(FaceId, Vec<f32>)>> {
        read_tx!(self, |tx| queries::face_embeddings(
            &tx, client, model, faces
        )
        .await)
    }

    async fn client_model(&self, client: &ClientId) -> Result<Option<String>> {
        read_tx!(self, |tx| queries::client_model(&tx, client).await)
    }

    async fn clients_off_model(&self, model: &str) -> Result<Vec<ClientId>> {
        read_tx!(self, |tx| queries::clients_off_model(&tx, model).await)
    }

    async fn crops_to_reembed(
        &self,
        client: &ClientId,
        model: &str,
        cursor: i64,
        limit: u32,
    ) -> Result<Vec<FaceCrop>> {
        read_tx!(self, |tx| queries::crops_to_reembed(
            &tx, client, model, cursor, limit
        )
        .await)
    }

    async fn switch_client_model(
        &self,
        client: &ClientId,
        model: &str,
        faces: Vec<(FaceId, Vec<f32>)>,
    ) -> Result<ClientSwitch> {
        crate::rules::check_replaced_embeddings(model, &faces)?;
        write_tx!(self, |tx| queries::switch_client_model(
            &tx, client, model, &faces
        )
        .await)
    }

    async fn register_model(&self, model: &str, dimension: usize) -> Result<()> {
        crate::rules::check_model(model, dimension)?;
        write_tx!(self, |tx| queries::register_model(&tx, model, dimension)
            .await)
    }

    async fn generation(&self) -> Result<u64> {
        read_tx!(self, |tx| queries::generation(&tx).await)
    }

    async fn revoke_token(&self, jti: &str, expires_at: DateTime<Utc>) -> Result<()> {
        check_jti(jti)?;
        write_tx!(self, |tx| queries::revoke_token(&tx, jti, expires_at).await)
    }

    async fn record_token_issue(&self, token: &IssuedToken) -> Result<()> {
        check_issued_token(token)?;
        write_tx!(self, |tx| queries::record_token_issue(&tx, token).await)
    }

    async fn record_token_renewal(&self, renewal: &TokenRenewal) -> Result<()> {
        check_renewal(renewal)?;
        write_tx!(self, |tx| queries::record_token_renewal(&tx, renewal).await)
    }

    async fn revoke_client_tokens(&self, client: &ClientId, cutoff: DateTime<Utc>) -> Result<()> {
        write_tx!(self, |tx| queries::revoke_client_tokens(
            &tx, client, cutoff
        )
        .await)
    }

    async fn is_token_revoked(
        &self,
        jti: &str,
        client: &ClientId,
        issued_at: DateTime<Utc>,
    ) -> Result<bool> {
        // A jti PostgreSQL cannot hold was never revoked nor renewed (both refuse it): only
        // the cutoff applies.
        let jti = Some(jti).filter(|j| storable(j));
        read_tx!(self, |tx| queries::is_token_revoked(
            &tx, jti, client, issued_at
        )
        .await)
    }

    async fn audit_log(&self, client: &ClientId, limit: u32) -> Result<Vec<AuditEntry>> {
        read_tx!(self, |tx| queries::audit_log(&tx, client, limit).await)
    }
}

#[async_trait]
impl OperatorReads for PostgresStore {
    async fn audit_entries(
        &self,
        filter: &AuditFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        read_tx!(self, |tx| queries::audit_entries(&tx, filter, after, limit)
            .await)
    }

    async fn issued_tokens(&self, client: Option<&ClientId>) -> Result<Vec<ListedToken>> {
        read_tx!(self, |tx| queries::issued_tokens(&tx, client).await)
    }
}

#[cfg(test)]
mod tests {
    use super::VectorExtension;

    #[test]
    fn iterative_scans_are_found_from_pgvector_0_8_on() {
        for (version, iterative) in [
            ("0.5.1", false),
            ("0.6.2", false),
            ("0.7.4", false),
            ("0.8.0", true),
            ("0.8.5", true),
            ("0.10.0", true),
            ("1.0", true),
            ("", false),
            ("unknown", false),
        ] {
            assert_eq!(
                VectorExtension::new(version.to_owned()).iterative_scan,
                iterative,
                "{version}"
            );
        }
    }

    #[test]
    fn half_precision_indexes_from_pgvector_0_7_on() {
        for (version, half) in [
            ("0.6.2", false),
            ("0.7.0", true),
            ("0.8.5", true),
            ("", false),
        ] {
            assert_eq!(
                VectorExtension::new(version.to_owned()).halfvec_index,
                half,
                "{version}"
            );
        }
    }
}
