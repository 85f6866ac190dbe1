//! The shared suite against the PostgreSQL back-end, plus PostgreSQL-only tests: schema
//! versions and concurrent migration, 1:N search in the database, vacuum after erasure, and
//! the pool's behaviour when the database goes away and comes back.
//!
//! Needs a PostgreSQL with pgvector: `VISAGE_TEST_DATABASE_URL` (for instance the URL
//! `scripts/postgres.sh start DIR PORT` prints). Without it every test fails. Built only with
//! the `postgres-tests` feature: `cargo test -p store --features postgres-tests --test postgres`.
//! Each test works in a database of its own, created through that URL and dropped afterwards.

mod suite;

use std::sync::Arc;
use std::time::{Duration, Instant};

use store::{
    CollectionId, DetachOutcome, Error, NewPerson, PersonId, PersonStatus, PersonUpdate,
    PoolOptions, PostgresStore, Store, DEFAULT_MODEL, EMBEDDING_BYTES,
};
use suite::TestResult;
use tokio_postgres::{Client, NoTls};

const URL_VAR: &str = "VISAGE_TEST_DATABASE_URL";

fn admin_url() -> Result<String, String> {
    match std::env::var(URL_VAR) {
        Ok(u) if !u.trim().is_empty() => Ok(u),
        _ => Err(format!(
            "{URL_VAR} is not set: these tests need PostgreSQL with pgvector. Start one with \
             `scripts/postgres.sh start /tmp/visage-pg 55432` and set {URL_VAR} to the URL it \
             prints (docs/postgres.md)."
        )),
    }
}

/// `url` with its database name replaced (URL or key=value form).
fn with_dbname(url: &str, name: &str) -> String {
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            let query_at = rest.find('?').unwrap_or(rest.len());
            let (main, query) = rest.split_at(query_at);
            let authority = main.split('/').next().unwrap_or(main);
            return format!("{scheme}{authority}/{name}{query}");
        }
    }
    format!("{url} dbname={name}")
}

async fn connect_raw(url: &str) -> Result<Client, Box<dyn std::error::Error>> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// A database of this test's own, dropped (with its connections) when this goes away.
struct TestDb {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDb {
    async fn create() -> Result<Self, Box<dyn std::error::Error>> {
        let admin_url = admin_url()?;
        let name = format!("visage_test_{}", hex(&suite::random_bytes(8)));
        let admin = connect_raw(&admin_url).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        let url = with_dbname(&admin_url, &name);
        Ok(Self {
            admin_url,
            name,
            url,
        })
    }

    async fn store(&self) -> Result<PostgresStore, Error> {
        PostgresStore::connect(&self.url, PoolOptions::default()).await
    }

    /// A plain connection to this test's database.
    async fn client(&self) -> Result<Client, Box<dyn std::error::Error>> {
        connect_raw(&self.url).await
    }

    async fn admin(&self) -> Result<Client, Box<dyn std::error::Error>> {
        connect_raw(&self.admin_url).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Async work in Drop: on a thread of its own with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = connect_raw(&url).await.ok()?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether a byte string is still anywhere in the live rows: an embedding (512 bytes) in
/// `faces`, anything else in thumbnails, person text fields or audit rows. (Dead tuples are
/// covered by `erase_then_vacuum_leaves_no_dead_tuples`.)
async fn present_in_db(c: &Client, needle: &[u8]) -> Result<bool, tokio_postgres::Error> {
    // Embeddings of SFace's length or longer (whole needles, never thumbnail windows).
    if (EMBEDDING_BYTES..=4 * store::MAX_EMBEDDING_DIM).contains(&needle.len()) {
        if let Some(e) = store::model::embedding_from_bytes(needle) {
            let dims = e.len() as i32;
            let r = c
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM faces WHERE CASE \
                     WHEN vector_dims(embedding) = $2 THEN embedding = $1::real[]::vector \
                     ELSE false END)",
                    &[&e, &dims],
                )
                .await?;
            if r.try_get::<_, bool>(0)? {
                return Ok(true);
            }
        }
    }
    let r = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM thumbnails WHERE position($1 IN jpeg) > 0) \
             OR EXISTS (SELECT 1 FROM persons WHERE position($1 IN convert_to(concat_ws(E'\\n', \
                name, name_key, nationality, notes), 'UTF8')) > 0) \
             OR EXISTS (SELECT 1 FROM audit WHERE position($1 IN \
                convert_to(action || E'\\n' || object_id, 'UTF8')) > 0)",
            &[&needle],
        )
        .await?;
    r.try_get(0)
}

fn present_with(c: &Client) -> impl Fn(&[u8]) -> bool + Sync + '_ {
    move |needle: &[u8]| {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(present_in_db(c, needle))
                .expect("presence query")
        })
    }
}

macro_rules! pg_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() -> TestResult {
            let db = TestDb::create().await?;
            let s = db.store().await?;
            suite::$name(&s).await?;
            s.close();
            Ok(())
        }
    )*};
}

macro_rules! pg_erasure_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() -> TestResult {
            let db = TestDb::create().await?;
            let s = db.store().await?;
            let c = db.client().await?;
            suite::$name(&s, &present_with(&c)).await?;
            s.close();
            Ok(())
        }
    )*};
}

macro_rules! pg_concurrent_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() -> TestResult {
            let db = TestDb::create().await?;
            let s = Arc::new(db.store().await?);
            suite::$name(s.clone()).await?;
            s.close();
            Ok(())
        }
    )*};
}

mod postgres {
    use super::*;

    pg_tests!(
        collections_crud,
        resolve_by_id_and_code,
        persons_crud,
        faces_for_index,
        faces_carry_their_model,
        faces_without_crops_keep_their_client_on_its_model,
        embeddings_of_any_dimension,
        face_embeddings_and_generation,
        tenancy,
        person_already_set,
        create_is_all_or_nothing,
        seed_persons,
        detach_semantics,
        collection_people_sync,
        delete_collection_detaches,
        audit_rows,
        tokens,
        token_families,
        client_token_cutoff,
        update_keeps_duplicate_rule,
        nul_characters,
    );

    pg_erasure_tests!(
        erase_client_leaves_no_bytes,
        erasure_leaves_no_bytes,
        reembedded_faces_erase_leaves_no_bytes,
        wide_embeddings_erase_leaves_no_bytes,
        update_replacing_faces_erases_old,
        detach_as_last_erases_bytes,
    );

    pg_concurrent_tests!(
        concurrent_erasures,
        concurrent_mixed_writes,
        concurrent_duplicate_creates,
        concurrent_detaches,
    );
}

// ---------------------------------------------------------------- PostgreSQL only

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_newer_schema_and_upgrades_older() -> TestResult {
    let db = TestDb::create().await?;
    // An "older" database: only a version table at 0 (as a pre-release build would leave).
    {
        let c = db.client().await?;
        c.batch_execute(
            "CREATE TABLE schema_version (version bigint NOT NULL); \
             INSERT INTO schema_version VALUES (0);",
        )
        .await?;
    }
    let s = db.store().await?;
    let client = suite::client("schema");
    s.create_collection(&client, suite::coll("Works")).await?;
    s.close();
    // Connecting again changes nothing.
    db.store().await?.close();
    let c = db.client().await?;
    let rows = c.query("SELECT version FROM schema_version", &[]).await?;
    assert_eq!(rows.len(), 1);
    let v: i64 = rows[0].try_get(0)?;
    assert_eq!(v, store::postgres::SCHEMA_VERSION);
    c.execute("UPDATE schema_version SET version = $1", &[&(v + 1)])
        .await?;
    match db.store().await {
        Err(Error::SchemaTooNew { found, supported }) => {
            assert_eq!(found, store::postgres::SCHEMA_VERSION + 1);
            assert_eq!(supported, store::postgres::SCHEMA_VERSION);
        }
        Err(e) => return Err(format!("wrong error: {e}").into()),
        Ok(_) => return Err("a newer schema was accepted".into()),
    }
    Ok(())
}

/// Several nodes starting at once on an empty database: one migrates, all connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_connects_migrate_once() -> TestResult {
    let db = TestDb::create().await?;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let url = db.url.clone();
        tasks.push(tokio::spawn(async move {
            PostgresStore::connect(&url, PoolOptions::default()).await
        }));
    }
    let mut stores = Vec::new();
    for t in tasks {
        stores.push(t.await??);
    }
    let c = suite::client("many-nodes");
    let made = stores[0].create_collection(&c, suite::coll("A")).await?;
    assert_eq!(stores[5].list_collections(&c).await?, vec![made]);
    let rows = db
        .client()
        .await?
        .query("SELECT version FROM schema_version", &[])
        .await?;
    assert_eq!(rows.len(), 1);
    for s in stores {
        s.close();
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema_has_vector_column_and_hnsw_index() -> TestResult {
    let db = TestDb::create().await?;
    db.store().await?.close();
    let c = db.client().await?;
    let r = c
        .query_one(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = 'faces'::regclass AND attname = 'embedding'",
            &[],
        )
        .await?;
    assert_eq!(r.try_get::<_, String>(0)?, "vector");
    let r = c
        .query_one(
            "SELECT indexdef FROM pg_indexes \
             WHERE indexname = embedding_model_index_name('sface-2021dec')",
            &[],
        )
        .await?;
    let def: String = r.try_get(0)?;
    // One partial index per model, over half-precision copies from pgvector 0.7 on
    // (migration 0006), else over the vectors cast to the model's length.
    let s = db.store().await?;
    let want = if s.vector_extension().halfvec_index {
        "((embedding)::halfvec(128)) halfvec_cosine_ops"
    } else {
        "((embedding)::vector(128)) vector_cosine_ops"
    };
    s.close();
    assert!(
        def.contains("USING hnsw")
            && def.contains(want)
            && def.contains("WHERE (model = 'sface-2021dec'::text)"),
        "{def}"
    );
    let r = c
        .query_one(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = 'thumbnails'::regclass AND attname = 'jpeg'",
            &[],
        )
        .await?;
    assert_eq!(r.try_get::<_, String>(0)?, "bytea");
    Ok(())
}

// ---------------------------------------------------------------- 1:N search

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    for x in &mut v {
        *x /= n;
    }
    v
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    (dot / (na * nb)) as f32
}

/// A face near `base` (noise of the given size), unit length.
fn near(base: &[f32], noise: f32) -> Vec<f32> {
    let n = suite::face(1).embedding;
    unit(base.iter().zip(n).map(|(b, r)| b + noise * r).collect())
}

struct Enrolled {
    id: PersonId,
    faces: Vec<Vec<f32>>,
    collections: Vec<CollectionId>,
    active: bool,
}

/// Best face per person by brute force in Rust, restricted like the store does.
fn brute_force(
    gallery: &[Enrolled],
    probe: &[f32],
    collections: Option<&[CollectionId]>,
    k: usize,
) -> Vec<(PersonId, f32)> {
    let mut scored: Vec<(PersonId, f32)> = gallery
        .iter()
        .filter(|p| p.active)
        .filter(|p| collections.is_none_or(|cs| p.collections.iter().any(|c| cs.contains(c))))
        .map(|p| {
            let best = p
                .faces
                .iter()
                .map(|f| cosine(f, probe))
                .fold(f32::MIN, f32::max);
            (p.id.clone(), best)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored.truncate(k);
    scored
}

fn assert_same_ranking(got: &[(PersonId, f32)], want: &[(PersonId, f32)], what: &str) {
    assert_eq!(
        got.iter().map(|g| &g.0).collect::<Vec<_>>(),
        want.iter().map(|w| &w.0).collect::<Vec<_>>(),
        "{what}: ranking\n got {got:?}\nwant {want:?}"
    );
    for (g, w) in got.iter().zip(want) {
        assert!((g.1 - w.1).abs() < 1e-4, "{what}: score {} vs {}", g.1, w.1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nearest_persons_exact_and_hnsw_agree_and_filter() -> TestResult {
    let db = TestDb::create().await?;
    let s = db.store().await?;
    let me = suite::client("search");
    let other = suite::client("search-other");
    let a = s.create_collection(&me, suite::coll("A")).await?;
    let b = s.create_collection(&me, suite::coll("B")).await?;
    let theirs = s.create_collection(&other, suite::coll("Theirs")).await?;

    // 20 clusters of 4 persons with 1-3 faces each, some inactive, in A, B, both or none.
    let mut gallery = Vec::new();
    let mut seeds = Vec::new();
    for cluster in 0..20 {
        let centre = unit(suite::face(1).embedding);
        seeds.push(centre.clone());
        for j in 0..4 {
            let i = cluster * 4 + j;
            let faces: Vec<Vec<f32>> = (0..1 + i % 3).map(|_| near(&centre, 0.8)).collect();
            let collections = match i % 4 {
                0 => vec![a.id.clone()],
                1 => vec![b.id.clone()],
                2 => vec![a.id.clone(), b.id.clone()],
                _ => vec![],
            };
            let status = if i % 7 == 3 {
                PersonStatus::Inactive
            } else if i % 11 == 5 {
                PersonStatus::Pending
            } else {
                PersonStatus::Active
            };
            let new = NewPerson {
                status,
                collections: collections.clone(),
                faces: faces
                    .iter()
                    .map(|e| store::NewFace {
                        model: store::DEFAULT_MODEL.into(),
                        embedding: e.clone(),
                        thumbnail_jpeg: vec![1, 2, 3],
                        crop_png: Vec::new(),
                    })
                    .collect(),
                ..suite::person(&format!("Searchable {i}"), &[], 0)
            };
            let p = s.create_person(&me, new).await?;
            gallery.push(Enrolled {
                id: p.id,
                faces,
                collections,
                active: status == PersonStatus::Active,
            });
        }
    }
    // The other client has exact copies of my faces: never found by my searches.
    for p in gallery.iter().take(10) {
        let new = NewPerson {
            collections: vec![theirs.id.clone()],
            faces: p
                .faces
                .iter()
                .map(|e| store::NewFace {
                    model: store::DEFAULT_MODEL.into(),
                    embedding: e.clone(),
                    thumbnail_jpeg: vec![9],
                    crop_png: Vec::new(),
                })
                .collect(),
            ..suite::person(&format!("Their Copy {}", p.id), &[], 0)
        };
        s.create_person(&other, new).await?;
    }

    for (n, seed) in seeds.iter().enumerate().take(8) {
        let probe = near(seed, 0.5);
        for k in [1, 5, 10] {
            for filter in [
                None,
                Some(vec![a.id.clone()]),
                Some(vec![b.id.clone()]),
                Some(vec![a.id.clone(), b.id.clone()]),
            ] {
                let filter = filter.as_deref();
                let want = brute_force(&gallery, &probe, filter, k);
                let exact = s
                    .nearest_persons(&me, DEFAULT_MODEL, filter, &probe, k, true)
                    .await?;
                assert_same_ranking(&exact, &want, &format!("exact probe {n} k {k}"));
                let approx = s
                    .nearest_persons(&me, DEFAULT_MODEL, filter, &probe, k, false)
                    .await?;
                assert_same_ranking(&approx, &want, &format!("hnsw probe {n} k {k}"));
            }
        }
    }

    // faces_searched: every active face of mine in scope, none of the other client's.
    let faces_in = |filter: Option<&store::CollectionId>| -> u64 {
        gallery
            .iter()
            .filter(|p| p.active && filter.is_none_or(|c| p.collections.contains(c)))
            .map(|p| p.faces.len() as u64)
            .sum()
    };
    assert_eq!(
        s.searchable_faces(&me, DEFAULT_MODEL, None).await?,
        faces_in(None)
    );
    assert_eq!(
        s.searchable_faces(&me, DEFAULT_MODEL, Some(std::slice::from_ref(&a.id)))
            .await?,
        faces_in(Some(&a.id))
    );
    assert_eq!(
        s.searchable_faces(&me, DEFAULT_MODEL, Some(std::slice::from_ref(&theirs.id)))
            .await?,
        0
    );

    // The approximate search goes through the HNSW index (and, unfiltered, needs no exact
    // fallback), the exact one does not.
    let probe = near(&seeds[0], 0.5);
    let plan = s
        .explain_nearest_persons(&me, DEFAULT_MODEL, None, &probe, 5, false)
        .await?;
    assert!(plan.contains("faces_hnsw_"), "{plan}");
    assert!(
        plan.starts_with("-- approximate") && !plan.contains("-- exact"),
        "{plan}"
    );
    let plan = s
        .explain_nearest_persons(&me, DEFAULT_MODEL, None, &probe, 5, true)
        .await?;
    assert!(
        plan.starts_with("-- exact") && !plan.contains("faces_hnsw_"),
        "{plan}"
    );

    // More than the gallery: every searchable person once, in both modes.
    let all = brute_force(&gallery, &probe, None, 1000);
    assert!(all.len() > 50 && all.len() < gallery.len(), "{}", all.len());
    assert_same_ranking(
        &s.nearest_persons(&me, DEFAULT_MODEL, None, &probe, 1000, true)
            .await?,
        &all,
        "exact, all",
    );
    assert_same_ranking(
        &s.nearest_persons(&me, DEFAULT_MODEL, None, &probe, 200, false)
            .await?,
        &all,
        "hnsw, all",
    );

    // Filters that match nothing of mine.
    assert!(s
        .nearest_persons(&me, DEFAULT_MODEL, Some(&[]), &probe, 5, true)
        .await?
        .is_empty());
    for exact in [true, false] {
        assert!(s
            .nearest_persons(
                &me,
                DEFAULT_MODEL,
                Some(std::slice::from_ref(&theirs.id)),
                &probe,
                5,
                exact
            )
            .await?
            .is_empty());
        assert!(s
            .nearest_persons(
                &me,
                DEFAULT_MODEL,
                Some(&[CollectionId::new()]),
                &probe,
                5,
                exact
            )
            .await?
            .is_empty());
    }
    // The other client sees only its own copies.
    let theirs_found = s
        .nearest_persons(&other, DEFAULT_MODEL, None, &probe, 50, true)
        .await?;
    assert_eq!(theirs_found.len(), 10);
    assert!(theirs_found
        .iter()
        .all(|(id, _)| !gallery.iter().any(|g| &g.id == id)));

    // Erased, detached-as-last and deactivated persons are never returned.
    let top = s
        .nearest_persons(&me, DEFAULT_MODEL, None, &probe, 3, true)
        .await?;
    assert_eq!(top.len(), 3);
    assert!(s.erase_person(&me, &top[0].0).await?);
    let second = gallery
        .iter()
        .find(|g| g.id == top[1].0)
        .ok_or("in gallery")?;
    for c in &second.collections {
        s.detach_person(&me, &second.id, c).await?;
    }
    if second.collections.is_empty() {
        s.erase_person(&me, &second.id).await?;
    }
    s.update_person(
        &me,
        &top[2].0,
        PersonUpdate {
            status: Some(PersonStatus::Inactive),
            ..Default::default()
        },
    )
    .await?;
    for exact in [true, false] {
        for k in [1, 10, 200] {
            let found = s
                .nearest_persons(&me, DEFAULT_MODEL, None, &probe, k, exact)
                .await?;
            assert!(
                found.iter().all(|(id, _)| !top.iter().any(|t| &t.0 == id)),
                "exact {exact} k {k}: {found:?}"
            );
        }
    }

    // Bad probes.
    assert!(matches!(
        s.nearest_persons(&me, DEFAULT_MODEL, None, &probe[..127], 5, true)
            .await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        s.nearest_persons(&me, DEFAULT_MODEL, None, &[0.0; 128], 5, false)
            .await,
        Err(Error::Invalid { .. })
    ));
    let mut nan = probe.clone();
    nan[7] = f32::NAN;
    assert!(matches!(
        s.nearest_persons(&me, DEFAULT_MODEL, None, &nan, 5, true)
            .await,
        Err(Error::Invalid { .. })
    ));
    assert!(s
        .nearest_persons(&me, DEFAULT_MODEL, None, &probe, 0, true)
        .await?
        .is_empty());
    s.close();
    Ok(())
}

/// A small client in a table dominated by another client whose faces are all nearer to the
/// probe. With iterative index scans (pgvector 0.8+, detected at connect) FAST filters inside
/// the HNSW scan and finds the client's persons there, without the exact fallback; without
/// them it falls back to the exact scan. Both give the brute-force ranking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_search_of_a_small_client_among_nearer_strangers() -> TestResult {
    let db = TestDb::create().await?;
    let s = db.store().await?;
    let raw = connect_raw(&db.url).await?;
    let version: String = raw
        .query_one(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(s.vector_extension().version, version);
    let me = suite::client("small");
    let crowd = suite::client("crowd");
    let a = s.create_collection(&me, suite::coll("A")).await?;

    let seeds: Vec<Vec<f32>> = (0..4).map(|_| unit(suite::face(1).embedding)).collect();
    // 4 x 150 of the crowd's faces close to each seed, and 3 persons of mine further out.
    let mut strangers = Vec::new();
    for (n, seed) in seeds.iter().enumerate() {
        for j in 0..150 {
            strangers.push(NewPerson {
                faces: vec![store::NewFace {
                    model: DEFAULT_MODEL.into(),
                    embedding: near(seed, 0.08),
                    thumbnail_jpeg: vec![7],
                    crop_png: Vec::new(),
                }],
                ..suite::person(&format!("Stranger {n} {j}"), &[], 0)
            });
        }
    }
    s.seed_persons(&crowd, strangers).await?;
    let mut gallery = Vec::new();
    for (n, seed) in seeds.iter().enumerate() {
        for j in 0..3 {
            let faces = vec![near(seed, 0.3), near(seed, 0.3)];
            let collections = if j == 0 { vec![a.id.clone()] } else { vec![] };
            let p = s
                .create_person(
                    &me,
                    NewPerson {
                        collections: collections.clone(),
                        faces: faces
                            .iter()
                            .map(|e| store::NewFace {
                                model: DEFAULT_MODEL.into(),
                                embedding: e.clone(),
                                thumbnail_jpeg: vec![1],
                                crop_png: Vec::new(),
                            })
                            .collect(),
                        ..suite::person(&format!("Mine {n} {j}"), &[], 0)
                    },
                )
                .await?;
            gallery.push(Enrolled {
                id: p.id,
                faces,
                collections,
                active: true,
            });
        }
    }
    raw.batch_execute("ANALYZE faces, persons").await?;

    for (n, seed) in seeds.iter().enumerate() {
        let probe = near(seed, 0.15);
        for filter in [None, Some(vec![a.id.clone()])] {
            let filter = filter.as_deref();
            // The seed's own persons: well apart from the rest.
            let k = if filter.is_some() { 1 } else { 3 };
            let want = brute_force(&gallery, &probe, filter, k);
            let got = s
                .nearest_persons(&me, DEFAULT_MODEL, filter, &probe, k, false)
                .await?;
            assert_same_ranking(&got, &want, &format!("probe {n}, filter {filter:?}"));
            let plan = s
                .explain_nearest_persons(&me, DEFAULT_MODEL, filter, &probe, k, false)
                .await?;
            assert!(plan.starts_with("-- approximate"), "{plan}");
            if s.vector_extension().iterative_scan {
                assert!(
                    plan.contains("faces_hnsw_") && !plan.contains("-- exact"),
                    "{plan}"
                );
            } else {
                assert!(plan.contains("-- exact"), "{plan}");
            }
        }
    }
    s.close();
    Ok(())
}

/// A search by one model never compares, nor counts, the faces another model embedded,
/// even when their vectors are identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_never_compares_faces_of_another_model() -> TestResult {
    let db = TestDb::create().await?;
    let s = db.store().await?;
    let me = suite::client("models");
    let probe = unit((0..128).map(|i| (i as f32 * 0.37).sin()).collect());
    let enrol = |name: &str, model: &str| NewPerson {
        faces: vec![store::NewFace {
            model: model.into(),
            embedding: probe.clone(),
            thumbnail_jpeg: vec![1],
            crop_png: vec![2],
        }],
        ..suite::person(name, &[], 0)
    };
    let a = s.create_person(&me, enrol("By A", DEFAULT_MODEL)).await?;
    assert!(s
        .create_person(&me, enrol("By B", "other-model"))
        .await
        .is_err());
    let search = |model: &'static str, exact: bool| {
        let (s, me, probe) = (&s, &me, &probe);
        async move {
            let (found, searched) = s.search(me, model, None, probe, 10, exact).await?;
            let ids: Vec<PersonId> = found.into_iter().map(|(id, _)| id).collect();
            Ok::<_, store::Error>((ids, searched))
        }
    };
    for exact in [true, false] {
        assert_eq!(search(DEFAULT_MODEL, exact).await?, (vec![a.id.clone()], 1));
        assert_eq!(search("other-model", exact).await?, (vec![], 0));
    }
    // The client moves to the other model (the same vector): now only it finds the face.
    let face = s.faces_of_person(&me, &a.id).await?[0].face_id.clone();
    s.switch_client_model(&me, "other-model", vec![(face, probe.clone())])
        .await?;
    for exact in [true, false] {
        assert_eq!(search(DEFAULT_MODEL, exact).await?, (vec![], 0));
        assert_eq!(search("other-model", exact).await?, (vec![a.id.clone()], 1));
    }
    let (found, searched) = s
        .search(&me, "unused-model", None, &probe, 10, true)
        .await?;
    assert!(found.is_empty() && searched == 0);
    s.close();
    Ok(())
}

/// The schema itself refuses a face of another length than its model's, for writers that
/// bypass the store's own check: one statement bringing a new model in two lengths writes
/// nothing (not even the model), and an update to another length is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_refuses_a_statement_mixing_one_models_lengths() -> TestResult {
    let db = TestDb::create().await?;
    let s = db.store().await?;
    s.create_person(&suite::client("lengths"), suite::person("Holder", &[], 0))
        .await?;
    s.close();
    let c = db.client().await?;
    let pk: i64 = c
        .query_one("SELECT pk FROM persons", &[])
        .await?
        .try_get(0)?;
    let refused = |e: &Result<u64, tokio_postgres::Error>| matches!(e, Err(e) if e.code().is_some_and(|c| c.code() == "VS001"));
    let mixed = c
        .execute(
            "INSERT INTO faces (id, person_pk, embedding, model) VALUES \
             ('f1', $1, '[1,0,0]', 'new-model'), ('f2', $1, '[1,0,0,0]', 'new-model')",
            &[&pk],
        )
        .await;
    assert!(refused(&mixed), "{mixed:?}");
    let count = |sql: &'static str| {
        let c = &c;
        async move { c.query_one(sql, &[]).await?.try_get::<_, i64>(0) }
    };
    assert_eq!(
        count("SELECT count(*) FROM embedding_models WHERE model = 'new-model'").await?,
        0
    );
    assert_eq!(count("SELECT count(*) FROM faces").await?, 0);
    c.execute(
        "INSERT INTO faces (id, person_pk, embedding, model) VALUES ('f1', $1, '[1,0,0]', 'new-model')",
        &[&pk],
    )
    .await?;
    let longer = c
        .execute(
            "UPDATE faces SET embedding = '[1,0,0,0]' WHERE id = 'f1'",
            &[],
        )
        .await;
    assert!(refused(&longer), "{longer:?}");
    assert_eq!(
        count("SELECT dimension::bigint FROM embedding_models WHERE model = 'new-model'").await?,
        3
    );
    Ok(())
}

/// A 512-value model searches its own faces through its own partial HNSW index, created
/// when the model is registered, beside another client's SFace faces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_of_512_values_searches_on_its_own_index() -> TestResult {
    let db = TestDb::create().await?;
    let s = db.store().await?;
    let me = suite::client("wide");
    s.register_model("wide-512", 512).await?;
    let c = db.client().await?;
    let index: String = c
        .query_one("SELECT embedding_model_index_name('wide-512')", &[])
        .await?
        .try_get(0)?;
    let def: String = c
        .query_one(
            "SELECT indexdef FROM pg_indexes WHERE indexname = $1",
            &[&index],
        )
        .await?
        .try_get(0)?;
    // halfvec(512) from pgvector 0.7 on, vector(512) before.
    assert!(
        (def.contains("::halfvec(512)") || def.contains("::vector(512)"))
            && def.contains("'wide-512'"),
        "{def}"
    );
    let seeds: Vec<Vec<f32>> = (0..40)
        .map(|p| {
            unit(
                (0..512)
                    .map(|i| ((i * (p + 3)) as f32 * 0.37).sin())
                    .collect(),
            )
        })
        .collect();
    let mut ids = Vec::new();
    for (p, seed) in seeds.iter().enumerate() {
        let new = NewPerson {
            faces: vec![store::NewFace {
                model: "wide-512".into(),
                embedding: seed.clone(),
                thumbnail_jpeg: vec![1],
                crop_png: vec![2],
            }],
            ..suite::person(&format!("Wide {p}"), &[], 0)
        };
        ids.push(s.create_person(&me, new).await?.id);
    }
    let narrow = suite::client("narrow");
    s.create_person(&narrow, suite::person("Narrow", &[], 2))
        .await?;
    for (p, seed) in seeds.iter().enumerate().step_by(7) {
        for exact in [true, false] {
            let (found, searched) = s.search(&me, "wide-512", None, seed, 3, exact).await?;
            assert_eq!(found[0].0, ids[p], "person {p}, exact {exact}");
            assert!(found[0].1 > 0.999, "{found:?}");
            assert_eq!(searched, 40);
        }
    }
    let plan = s
        .explain_nearest_persons(&me, "wide-512", None, &seeds[0], 5, false)
        .await?;
    assert!(plan.contains(&index), "{plan}");
    // SFace's faces search as before, on theirs.
    let (found, searched) = s
        .search(
            &narrow,
            DEFAULT_MODEL,
            None,
            &suite::face(0).embedding,
            5,
            false,
        )
        .await?;
    assert_eq!((found.len(), searched), (1, 2));
    s.close();
    Ok(())
}

// ---------------------------------------------------------------- erasure and vacuum

/// Dead tuples left in a table (and its TOAST table), as the statistics system reports.
async fn dead_tuples(c: &Client, table: &str) -> Result<i64, tokio_postgres::Error> {
    c.batch_execute("SELECT pg_stat_clear_snapshot()").await?;
    let r = c
        .query_one(
            "SELECT coalesce(sum(s.n_dead_tup), 0)::bigint FROM pg_stat_all_tables s \
             WHERE s.relid = $1::text::regclass \
                OR s.relid = (SELECT reltoastrelid FROM pg_class WHERE oid = $1::text::regclass)",
            &[&table],
        )
        .await?;
    r.try_get(0)
}

/// Waits until no other session is connected to the test database (a backend flushes its
/// statistics when it exits).
async fn wait_sessions_gone(c: &Client) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await?;
        if r.try_get::<_, i64>(0)? == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("store sessions did not end".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Searchable faces counted the slow way: what the triggers' counters must always equal.
async fn counted_faces(
    c: &Client,
    client: &store::ClientId,
    collection: Option<&CollectionId>,
) -> Result<u64, tokio_postgres::Error> {
    let r = c
        .query_one(
            "SELECT count(*) FROM faces f JOIN persons p ON p.pk = f.person_pk \
             WHERE p.client = $1 AND p.status = 'active' AND ($2::text IS NULL OR EXISTS \
               (SELECT 1 FROM memberships m JOIN collections k ON k.pk = m.collection_pk \
                WHERE m.person_pk = p.pk AND k.id = $2))",
            &[&client.as_str(), &collection.map(|c| c.as_str())],
        )
        .await?;
    Ok(r.get::<_, i64>(0) as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn face_counters_follow_every_kind_of_write() -> TestResult {
    let db = TestDb::create().await?;
    let s = db.store().await?;
    let raw = db.client().await?;
    let me = suite::client("counted");
    let other = suite::client("counted-other");
    let a = s.create_collection(&me, suite::coll("A")).await?;
    let b = s.create_collection(&me, suite::coll("B")).await?;
    let theirs = s.create_collection(&other, suite::coll("Theirs")).await?;
    let check = |what: &'static str| {
        let (s, raw, me, a, b) = (&s, &raw, &me, &a, &b);
        async move {
            for scope in [None, Some(&a.id), Some(&b.id)] {
                let kept = s
                    .searchable_faces(me, DEFAULT_MODEL, scope.map(std::slice::from_ref))
                    .await?;
                let counted = counted_faces(raw, me, scope).await?;
                assert_eq!(kept, counted, "{what}: scope {scope:?}");
            }
            let both = [a.id.clone(), b.id.clone()];
            let union = s.searchable_faces(me, DEFAULT_MODEL, Some(&both)).await?;
            assert!(
                union >= counted_faces(raw, me, Some(&a.id)).await?,
                "{what}: A or B"
            );
            TestResult::Ok(())
        }
    };
    check("empty").await?;

    let mut ids = Vec::new();
    for i in 0..12usize {
        let colls: Vec<&dyn suite::CollRef> = match i % 4 {
            0 => vec![&a],
            1 => vec![&b],
            2 => vec![&a, &b],
            _ => vec![],
        };
        let new = NewPerson {
            status: if i % 5 == 4 {
                PersonStatus::Inactive
            } else {
                PersonStatus::Active
            },
            ..suite::person(&format!("Counted {i}"), &colls, 1 + i % 3)
        };
        ids.push(s.create_person(&me, new).await?.id);
    }
    s.create_person(&other, suite::person("Their One", &[&theirs], 3))
        .await?;
    check("enrolled").await?;
    let seeded = (0..4usize)
        .map(|i| {
            let both: [&dyn suite::CollRef; 2] = [&a, &b];
            suite::person(&format!("Seeded {i}"), &both[..i % 3], 1 + i % 2)
        })
        .collect();
    s.seed_persons(&me, seeded).await?;
    check("seeded").await?;
    assert!(s.searchable_faces(&me, DEFAULT_MODEL, None).await? > 0);
    assert_eq!(s.searchable_faces(&other, DEFAULT_MODEL, None).await?, 3);

    for (i, status) in [(0, PersonStatus::Inactive), (4, PersonStatus::Active)] {
        let update = PersonUpdate {
            status: Some(status),
            ..Default::default()
        };
        s.update_person(&me, &ids[i], update).await?;
    }
    check("status changed").await?;
    s.update_person(
        &me,
        &ids[1],
        PersonUpdate {
            faces: Some((0..3).map(|_| suite::face(10)).collect()),
            collections: Some(vec![a.id.clone()]),
            ..Default::default()
        },
    )
    .await?;
    check("faces and collections replaced").await?;
    assert!(matches!(
        s.detach_person(&me, &ids[2], &a.id).await?,
        DetachOutcome::Detached { .. }
    ));
    assert_eq!(
        s.detach_person(&me, &ids[5], &b.id).await?,
        DetachOutcome::Erased
    );
    check("detached").await?;
    assert!(s.erase_person(&me, &ids[6]).await?);
    check("erased").await?;
    s.update_collection(
        &me,
        &b.id,
        store::CollectionUpdate {
            people: Some(vec![ids[7].clone(), ids[8].clone(), ids[9].clone()]),
            ..Default::default()
        },
    )
    .await?;
    check("collection membership replaced").await?;
    s.delete_collection(&me, &a.id).await?;
    check("collection deleted").await?;
    s.erase_client(&me).await?;
    check("client erased").await?;
    assert_eq!(s.searchable_faces(&me, DEFAULT_MODEL, None).await?, 0);
    assert_eq!(s.searchable_faces(&other, DEFAULT_MODEL, None).await?, 3);
    s.close();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_then_vacuum_leaves_no_dead_tuples() -> TestResult {
    let db = TestDb::create().await?;
    let s = db.store().await?;
    let c = suite::client("vacuum");
    let a = s.create_collection(&c, suite::coll("A")).await?;
    let mut ids = Vec::new();
    for i in 0..30 {
        let new = NewPerson {
            // Large thumbnails go to the TOAST table.
            faces: (0..1 + i % 3)
                .map(|_| suite::face(3000 + 100 * i))
                .collect(),
            ..suite::person(&format!("Vacuumed {i}"), &[&a], 0)
        };
        ids.push(s.create_person(&c, new).await?.id);
    }
    for (i, id) in ids.iter().enumerate() {
        match i % 3 {
            0 => assert!(s.erase_person(&c, id).await?),
            1 => assert_eq!(s.detach_person(&c, id, &a.id).await?, DetachOutcome::Erased),
            _ => {}
        }
    }
    s.close();
    drop(s);
    let check = db.client().await?;
    wait_sessions_gone(&check).await?;
    let tables = ["persons", "faces", "thumbnails", "memberships"];
    for t in tables {
        assert!(
            dead_tuples(&check, t).await? > 0,
            "{t}: the statistics do not show the erased rows"
        );
    }

    let s = db.store().await?;
    s.vacuum().await?;
    for t in tables {
        assert_eq!(dead_tuples(&check, t).await?, 0, "{t} after vacuum");
    }
    // The rest is intact.
    let (left, total) = s
        .list_persons(&c, store::PersonFilter::default(), 1, 100)
        .await?;
    assert_eq!((left.len(), total), (10, 10));
    assert!(left.iter().all(|p| !p.thumbnails.is_empty()));
    s.close();
    Ok(())
}

// ---------------------------------------------------------------- availability

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_database_is_unavailable_quickly() -> TestResult {
    let url = with_dbname(&admin_url()?, "visage");
    // Nothing listens on port 1 of the loopback.
    let url = match url.strip_prefix("postgres://") {
        Some(rest) => {
            let (auth, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let user = auth.split('@').next().unwrap_or("postgres");
            format!("postgres://{user}@127.0.0.1:1{path}")
        }
        None => "postgres://postgres@127.0.0.1:1/visage".to_owned(),
    };
    let opts = PoolOptions {
        connect_timeout: Duration::from_secs(2),
        wait_timeout: Duration::from_secs(2),
        ..PoolOptions::default()
    };
    let started = Instant::now();
    match PostgresStore::connect(&url, opts).await {
        Err(Error::Unavailable(_)) => {}
        Err(e) => return Err(format!("wrong error: {e:?}").into()),
        Ok(_) => return Err("connected to nothing".into()),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(
        PostgresStore::connect("not a url ://", PoolOptions::default()).await,
        Err(Error::Invalid { .. })
    ));
    Ok(())
}

/// The database goes away (connections refused, open sessions killed) and comes back: calls
/// fail fast with `Unavailable` meanwhile, and work again afterwards without a new store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_recovers_when_the_database_comes_back() -> TestResult {
    let db = TestDb::create().await?;
    let s = Arc::new(
        PostgresStore::connect(
            &db.url,
            PoolOptions {
                max_size: 4,
                connect_timeout: Duration::from_secs(2),
                wait_timeout: Duration::from_secs(2),
            },
        )
        .await?,
    );
    let c = suite::client("recover");
    let a = s.create_collection(&c, suite::coll("A")).await?;
    // Fill the pool with open connections.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, c) = (Arc::clone(&s), c.clone());
        tasks.push(tokio::spawn(async move { s.list_collections(&c).await }));
    }
    for t in tasks {
        t.await??;
    }

    let admin = db.admin().await?;
    let kill = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{}' AND pid <> pg_backend_pid()",
        db.name
    );
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false; {kill}",
            db.name
        ))
        .await?;
    for _ in 0..3 {
        let started = Instant::now();
        match s.get_collection(&c, &a.id).await {
            Err(Error::Unavailable(_)) => {}
            other => return Err(format!("expected Unavailable, got {other:?}").into()),
        }
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            db.name
        ))
        .await?;
    assert_eq!(s.get_collection(&c, &a.id).await?, Some(a.clone()));
    let p = s
        .create_person(&c, suite::person("Back Again", &[&a], 1))
        .await?;
    assert!(s.erase_person(&c, &p.id).await?);

    // Sessions killed while the database stays up: the next calls just work.
    admin.batch_execute(&kill).await?;
    for _ in 0..4 {
        assert_eq!(s.list_collections(&c).await?, vec![a.clone()]);
    }
    s.close();
    assert!(matches!(s.list_collections(&c).await, Err(Error::Closed)));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_debug_hides_the_url() -> TestResult {
    let db = TestDb::create().await?;
    let s = db.store().await?;
    let shown = format!("{s:?}");
    assert!(
        !shown.contains("127.0.0.1") && !shown.contains(&db.name),
        "{shown}"
    );
    s.close();
    Ok(())
}

#[test]
fn dbname_replacement() {
    assert_eq!(
        with_dbname("postgres://postgres@127.0.0.1:55432/visage", "x"),
        "postgres://postgres@127.0.0.1:55432/x"
    );
    assert_eq!(
        with_dbname("postgresql://u:p@h/db?sslmode=disable", "x"),
        "postgresql://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_dbname("postgres://h:1", "x"), "postgres://h:1/x");
    assert_eq!(with_dbname("host=h user=u", "x"), "host=h user=u dbname=x");
}

/// The whole server stops and starts again (`scripts/postgres.sh stop` / `start`): calls fail
/// fast with `Unavailable` while it is down and work again once it is back, on the same store.
/// Stops the server under every other test, so it is ignored by default; run it alone with
/// `VISAGE_TEST_PG_DIR` set to the cluster directory given to `scripts/postgres.sh start`:
/// `cargo test -p store --features postgres-tests --test postgres -- --ignored server_restart`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn pool_survives_a_server_restart() -> TestResult {
    let dir = std::env::var("VISAGE_TEST_PG_DIR")
        .map_err(|_| "VISAGE_TEST_PG_DIR (the scripts/postgres.sh cluster directory) is not set")?;
    let cfg: tokio_postgres::Config = admin_url()?.parse()?;
    let port = cfg.get_ports().first().copied().unwrap_or(5432).to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/postgres.sh");
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(script).args(&args).output()?;
            if !out.status.success() {
                return Err(std::io::Error::other(format!(
                    "postgres.sh {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
            Ok(())
        })
    };

    let db = TestDb::create().await?;
    let s = Arc::new(
        PostgresStore::connect(
            &db.url,
            PoolOptions {
                max_size: 4,
                connect_timeout: Duration::from_secs(2),
                wait_timeout: Duration::from_secs(2),
            },
        )
        .await?,
    );
    let c = suite::client("restart");
    let a = s.create_collection(&c, suite::coll("A")).await?;

    run(vec!["stop".into(), dir.clone()]).await??;
    for _ in 0..3 {
        let started = Instant::now();
        match s.list_collections(&c).await {
            Err(Error::Unavailable(_)) => {}
            other => return Err(format!("expected Unavailable, got {other:?}").into()),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    run(vec!["start".into(), dir, port]).await??;
    assert_eq!(s.list_collections(&c).await?, vec![a.clone()]);
    let p = s
        .create_person(&c, suite::person("After Restart", &[&a], 1))
        .await?;
    assert!(s.erase_person(&c, &p.id).await?);
    s.close();
    Ok(())
}

/// A TLS front for the test server, which itself offers no TLS: it answers PostgreSQL's
/// SSLRequest with `S`, completes a rustls handshake with a certificate for `localhost`
/// signed by a throw-away CA, then relays the bytes to the real server. Counts sessions.
struct TlsFront {
    port: u16,
    ca_file: tempfile::NamedTempFile,
    sessions: Arc<std::sync::atomic::AtomicUsize>,
}

async fn tls_front(upstream: std::net::SocketAddr) -> Result<TlsFront, Box<dyn std::error::Error>> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use std::io::Write;
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::ServerConfig;

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let leaf_key = KeyPair::generate()?;
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&leaf_key, &ca)?;
    let mut ca_file = tempfile::NamedTempFile::new()?;
    ca_file.write_all(ca.as_ref().pem().as_bytes())?;
    let key = PrivateKeyDer::try_from(leaf_key.serialize_der())?;
    let config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![CertificateDer::from(leaf.der().to_vec())], key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let sessions = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = sessions.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (acceptor, counted) = (acceptor.clone(), counted.clone());
            tokio::spawn(async move {
                // SSLRequest: length 8, code 80877103.
                let mut request = [0u8; 8];
                if client.read_exact(&mut request).await.is_err()
                    || request != [0, 0, 0, 8, 4, 210, 22, 47]
                    || client.write_all(b"S").await.is_err()
                {
                    return;
                }
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                }
            });
        }
    });
    Ok(TlsFront {
        port,
        ca_file,
        sessions,
    })
}

/// The test server's address, from its URL.
async fn server_addr(url: &str) -> Result<std::net::SocketAddr, Box<dyn std::error::Error>> {
    let cfg: tokio_postgres::Config = url.parse()?;
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => return Err("the test database URL names no TCP host".into()),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .next()
        .ok_or("the test database host does not resolve")?;
    Ok(addr)
}

/// `db`'s URL through the TLS front on `localhost`, with `query` appended.
fn through_front(db: &TestDb, front: &TlsFront, query: &str) -> String {
    let cfg: tokio_postgres::Config = db.url.parse().expect("test url parses");
    let user = cfg.get_user().unwrap_or("postgres");
    format!(
        "postgres://{user}@localhost:{}/{}?{query}",
        front.port, db.name
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_verify_full_checks_the_chain_and_the_host() -> TestResult {
    use std::sync::atomic::Ordering;
    let db = TestDb::create().await?;
    let front = tls_front(server_addr(&db.url).await?).await?;
    let ca = front
        .ca_file
        .path()
        .to_str()
        .ok_or("utf-8 path")?
        .to_owned();

    let url = through_front(
        &db,
        &front,
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let store = PostgresStore::connect(&url, PoolOptions::default()).await?;
    let client = suite::client("tls");
    let made = store
        .create_collection(&client, suite::coll("Over TLS"))
        .await?;
    let listed = store.list_collections(&client).await?;
    assert_eq!(listed.first().map(|c| &c.id), Some(&made.id));
    assert!(front.sessions.load(Ordering::SeqCst) >= 1, "no TLS session");
    store.close();

    // The same CA, but the host name (127.0.0.1) is not the certificate's (localhost).
    let by_ip = url.replace("@localhost:", "@127.0.0.1:");
    let refused = PostgresStore::connect(&by_ip, PoolOptions::default()).await;
    assert!(
        refused.is_err(),
        "a certificate for another name was accepted"
    );

    // A CA that did not sign the server's certificate.
    let other = tls_front(server_addr(&db.url).await?).await?;
    let wrong_ca = other.ca_file.path().to_str().ok_or("utf-8 path")?;
    let url = through_front(
        &db,
        &front,
        &format!("sslmode=verify-full&sslrootcert={wrong_ca}"),
    );
    assert!(PostgresStore::connect(&url, PoolOptions::default())
        .await
        .is_err());

    // require: encrypted, certificate not checked (libpq without a root certificate).
    let before = front.sessions.load(Ordering::SeqCst);
    let url = through_front(&db, &front, "sslmode=require");
    let store = PostgresStore::connect(&url, PoolOptions::default()).await?;
    assert_eq!(store.list_collections(&client).await?.len(), 1);
    assert!(front.sessions.load(Ordering::SeqCst) > before);
    store.close();

    // require against a server that offers no TLS at all: no connection.
    let plain = format!(
        "{}{}sslmode=require",
        db.url,
        if db.url.contains('?') { "&" } else { "?" }
    );
    assert!(PostgresStore::connect(&plain, PoolOptions::default())
        .await
        .is_err());
    Ok(())
}
