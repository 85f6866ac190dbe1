//! The shared suite against the SQLite back-end (a real database in a temporary directory),
//! plus SQLite-only tests: reopening, schema versions, on-disk erasure under churn and with a
//! reader holding a snapshot.

mod suite;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use store::{ClientId, DetachOutcome, Error, NewPerson, PersonFilter, SqliteStore, Store};
use suite::TestResult;
use tempfile::TempDir;

fn open() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path()).expect("open store");
    (dir, store)
}

/// Every byte of every file under `dir` (database, -wal, -shm, anything else).
fn all_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                out.push((path.display().to_string(), bytes));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// For each needle (at least 8 bytes), whether it occurs in any of the files. One pass over
/// the bytes: every 8-byte window is looked up among the needles' first 8 bytes.
fn find_all(files: &[(String, Vec<u8>)], needles: &[&[u8]]) -> Vec<bool> {
    let mut by_prefix: std::collections::HashMap<[u8; 8], Vec<usize>> = Default::default();
    for (i, n) in needles.iter().enumerate() {
        let prefix: [u8; 8] = n[..8].try_into().expect("needles have at least 8 bytes");
        by_prefix.entry(prefix).or_default().push(i);
    }
    let mut found = vec![false; needles.len()];
    for (_, bytes) in files {
        for (at, w) in bytes.windows(8).enumerate() {
            let key: [u8; 8] = w.try_into().expect("window of 8");
            if let Some(candidates) = by_prefix.get(&key) {
                for &i in candidates {
                    if bytes[at..].starts_with(needles[i]) {
                        found[i] = true;
                    }
                }
            }
        }
    }
    found
}

fn present_in(dir: &Path) -> impl Fn(&[u8]) -> bool + Sync + '_ {
    move |needle: &[u8]| all_files(dir).iter().any(|(_, b)| contains(b, needle))
}

macro_rules! sqlite_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() -> TestResult {
            let (_dir, s) = open();
            suite::$name(&s).await?;
            s.close().await?;
            Ok(())
        }
    )*};
}

mod sqlite {
    use super::*;

    sqlite_tests!(
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn erase_client_leaves_no_bytes() -> TestResult {
        let (dir, s) = open();
        suite::erase_client_leaves_no_bytes(&s, &present_in(dir.path())).await?;
        s.close().await?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn erasure_leaves_no_bytes() -> TestResult {
        let (dir, s) = open();
        suite::erasure_leaves_no_bytes(&s, &present_in(dir.path())).await?;
        s.close().await?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wide_embeddings_erase_leaves_no_bytes() -> TestResult {
        let (dir, s) = open();
        suite::wide_embeddings_erase_leaves_no_bytes(&s, &present_in(dir.path())).await?;
        s.close().await?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reembedded_faces_erase_leaves_no_bytes() -> TestResult {
        let (dir, s) = open();
        suite::reembedded_faces_erase_leaves_no_bytes(&s, &present_in(dir.path())).await?;
        s.close().await?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn update_replacing_faces_erases_old() -> TestResult {
        let (dir, s) = open();
        suite::update_replacing_faces_erases_old(&s, &present_in(dir.path())).await?;
        s.close().await?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn detach_as_last_erases_bytes() -> TestResult {
        let (dir, s) = open();
        suite::detach_as_last_erases_bytes(&s, &present_in(dir.path())).await?;
        s.close().await?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_erasures() -> TestResult {
        let (_dir, s) = open();
        let s = Arc::new(s);
        suite::concurrent_erasures(s.clone()).await?;
        s.close().await?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_mixed_writes() -> TestResult {
        let (_dir, s) = open();
        let s = Arc::new(s);
        suite::concurrent_mixed_writes(s.clone()).await?;
        s.close().await?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_duplicate_creates() -> TestResult {
        let (_dir, s) = open();
        let s = Arc::new(s);
        suite::concurrent_duplicate_creates(s.clone()).await?;
        s.close().await?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_detaches() -> TestResult {
        let (_dir, s) = open();
        let s = Arc::new(s);
        suite::concurrent_detaches(s.clone()).await?;
        s.close().await?;
        Ok(())
    }
}

// ---------------------------------------------------------------- SQLite only

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_persists_across_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let c = suite::client("reopen");
    let (coll, person, audit) = {
        let s = SqliteStore::open(dir.path())?;
        let coll = s.create_collection(&c, suite::coll("Kept")).await?;
        let person = s
            .create_person(&c, suite::person("Kept Person", &[&coll.id], 2))
            .await?;
        s.revoke_token("reopen-jti", chrono::Utc::now() + chrono::Duration::days(1))
            .await?;
        let audit = s.audit_log(&c, 100).await?;
        s.close().await?;
        (coll, person, audit)
    };
    assert!(
        !dir.path().join("visage.db-wal").exists()
            || std::fs::metadata(dir.path().join("visage.db-wal"))?.len() == 0,
        "close leaves no WAL content"
    );
    let s = SqliteStore::open(dir.path())?;
    assert_eq!(s.get_collection(&c, &coll.id).await?, Some(coll.clone()));
    assert_eq!(s.get_person(&c, &person.id).await?, Some(person.clone()));
    assert_eq!(s.audit_log(&c, 100).await?, audit);
    let someone = suite::client("someone");
    let issued = chrono::Utc::now() - chrono::Duration::hours(1);
    assert!(s.is_token_revoked("reopen-jti", &someone, issued).await?);
    let faces = s.faces_for_index().await?;
    assert_eq!(faces.len(), 2);
    // Writes after reopening continue the sequences.
    s.erase_person(&c, &person.id).await?;
    let log = s.audit_log(&c, 1).await?;
    assert_eq!(log[0].action, "person.erase");
    assert!(log[0].seq > audit[0].seq);
    s.close().await?;
    assert!(matches!(
        s.get_person(&c, &person.id).await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        s.erase_person(&c, &person.id).await,
        Err(Error::Closed)
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refuses_newer_schema_and_upgrades_older() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("visage.db");
    // An "older" database: only a version table at 0 (as a pre-release build would leave).
    {
        let conn = rusqlite::Connection::open(&db)?;
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL); \
             INSERT INTO schema_version VALUES (0);",
        )?;
    }
    let s = SqliteStore::open(dir.path())?;
    let c = suite::client("schema");
    s.create_collection(&c, suite::coll("Works")).await?;
    s.close().await?;
    {
        let conn = rusqlite::Connection::open(&db)?;
        let v: i64 = conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0))?;
        assert_eq!(v, store::sqlite::SCHEMA_VERSION);
        conn.execute("UPDATE schema_version SET version = ?1", [v + 1])?;
    }
    match SqliteStore::open(dir.path()) {
        Err(Error::SchemaTooNew { found, supported }) => {
            assert_eq!(found, store::sqlite::SCHEMA_VERSION + 1);
            assert_eq!(supported, store::sqlite::SCHEMA_VERSION);
        }
        Err(e) => return Err(format!("wrong error: {e}").into()),
        Ok(_) => return Err("a newer schema was accepted".into()),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_settings() -> TestResult {
    let (dir, s) = open();
    s.close().await?;
    let conn = rusqlite::Connection::open(dir.path().join("visage.db"))?;
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    assert_eq!(mode, "wal", "WAL mode is persistent");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let sub = dir.path().join("nested/data");
        let s = SqliteStore::open(&sub)?;
        s.close().await?;
        let mode = std::fs::metadata(&sub)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        for f in ["visage.db", "visage.db-wal", "visage.db-shm"] {
            let p = dir.path().join(f);
            if p.exists() {
                let mode = std::fs::metadata(&p)?.permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{f}");
            }
        }
    }
    Ok(())
}

/// Many enrolments and erasures in random order (so b-tree pages split, merge and get
/// reused); afterwards no erased embedding, thumbnail window or name is anywhere on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_erasure_under_churn_leaves_no_bytes() -> TestResult {
    let (dir, s) = open();
    let s = Arc::new(s);
    let c = suite::client("churn");
    let a = s.create_collection(&c, suite::coll("A")).await?;
    let mut people = Vec::new();
    for i in 0..240 {
        let new = NewPerson {
            faces: (0..1 + i % 3)
                .map(|_| suite::face(1500 + 37 * (i % 50)))
                .collect(),
            ..suite::person(&format!("Churn{i:03}x{}", i * 7919), &[&a.id], 0)
        };
        let (emb, windows) = suite::face_needles(&new.faces);
        let name = new.name.clone();
        let p = if i % 2 == 0 {
            s.create_person(&c, new).await?
        } else {
            let ids = s.seed_persons(&c, vec![new]).await?;
            s.get_person(&c, &ids[0]).await?.ok_or("seeded")?
        };
        people.push((p.id, name, emb, windows));
        // Interleave erasures of earlier persons with the enrolments.
        if i % 5 == 4 {
            let k = (i * 13) % people.len();
            let _ = s.erase_person(&c, &people[k].0).await?;
        }
    }
    // Erase every third of the rest, concurrently.
    let mut tasks = Vec::new();
    for (k, (id, ..)) in people.iter().enumerate() {
        if k % 3 == 0 {
            let (s, c, id) = (Arc::clone(&s), c.clone(), id.clone());
            tasks.push(tokio::spawn(async move { s.erase_person(&c, &id).await }));
        }
    }
    for t in tasks {
        t.await??;
    }
    let mut erased = Vec::new();
    let mut kept = Vec::new();
    for (id, name, emb, windows) in &people {
        match s.get_person(&c, id).await? {
            None => erased.push((name, emb, windows)),
            Some(_) => kept.push((name, emb, windows)),
        }
    }
    assert!(
        erased.len() > 80 && kept.len() > 80,
        "{} {}",
        erased.len(),
        kept.len()
    );
    let files = all_files(dir.path());
    let mut needles: Vec<(&str, &[u8])> = Vec::new();
    for (name, emb, windows) in &erased {
        needles.push((name.as_str(), name.as_bytes()));
        needles.extend(emb.iter().map(|e| (name.as_str(), e.as_slice())));
        needles.extend(windows.iter().map(|w| (name.as_str(), w.as_slice())));
    }
    let found = find_all(&files, &needles.iter().map(|n| n.1).collect::<Vec<_>>());
    for (i, hit) in found.iter().enumerate() {
        assert!(!hit, "bytes of erased {} still on disk", needles[i].0);
    }
    // The scan can see what is still there.
    let mut live: Vec<&[u8]> = Vec::new();
    for (name, emb, _) in &kept {
        live.push(name.as_bytes());
        live.extend(emb.iter().map(|e| e.as_slice()));
    }
    assert!(find_all(&files, &live).iter().all(|hit| *hit));
    s.close().await?;
    Ok(())
}

/// A reader holding an old snapshot blocks the truncating checkpoint: the erasure is
/// committed but reported as not flushed, and the writer finishes the job once the reader
/// lets go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_blocked_checkpoint_is_reported_then_retried() -> TestResult {
    let (dir, s) = open();
    let present = present_in(dir.path());
    let c = suite::client("blocked");
    let new = suite::person("Blocked Checkpoint", &[], 1);
    let (emb, _) = suite::face_needles(&new.faces);
    let p = s.create_person(&c, new).await?;

    let reader = rusqlite::Connection::open(dir.path().join("visage.db"))?;
    reader.execute_batch("BEGIN")?;
    let n: i64 = reader.query_row("SELECT count(*) FROM faces", [], |r| r.get(0))?;
    assert_eq!(n, 1);

    let started = Instant::now();
    let r = s.erase_person(&c, &p.id).await;
    assert!(matches!(r, Err(Error::ErasureNotFlushed(_))), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Committed all the same: gone for every later read.
    assert_eq!(s.get_person(&c, &p.id).await?, None);
    assert!(!s.erase_person(&c, &p.id).await?);

    reader.execute_batch("COMMIT")?;
    drop(reader);
    // The idle writer retries within a fraction of a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    while present(&emb[0]) {
        assert!(Instant::now() < deadline, "erased bytes still on disk");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_detach_and_list_after_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let c = ClientId::parse("reopen-detach")?;
    let (a, b, p) = {
        let s = SqliteStore::open(dir.path())?;
        let a = s.create_collection(&c, suite::coll("A")).await?;
        let b = s.create_collection(&c, suite::coll("B")).await?;
        let p = s
            .create_person(&c, suite::person("Reopened", &[&a.id, &b.id], 1))
            .await?;
        s.close().await?;
        (a, b, p)
    };
    let s = SqliteStore::open(dir.path())?;
    assert_eq!(
        s.detach_person(&c, &p.id, &a.id).await?,
        DetachOutcome::Detached {
            remaining: vec![b.id.clone()]
        }
    );
    let (list, total) = s.list_persons(&c, PersonFilter::default(), 1, 10).await?;
    assert_eq!((list.len(), total), (1, 1));
    s.close().await?;
    Ok(())
}

// ---------------------------------------------------------------- measurement

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn top_up(
    s: &SqliteStore,
    c: &ClientId,
    coll: &store::CollectionId,
    ids: &mut Vec<store::PersonId>,
    target: usize,
) -> Result<(), Error> {
    while ids.len() < target {
        let n = (target - ids.len()).min(1000);
        let batch: Vec<_> = (0..n)
            .map(|i| NewPerson {
                faces: vec![suite::face(5000)],
                ..suite::person(&format!("Bench {} {i}", ids.len()), &[coll], 0)
            })
            .collect();
        ids.extend(s.seed_persons(c, batch).await?);
    }
    Ok(())
}

/// Erasure throughput and latency on a 10,000-person store (topped up before each run) with
/// 1 to 64 concurrent callers. Prints numbers; asserts none. Run with:
/// `cargo test --release -p store --test sqlite -- --ignored --nocapture bench`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn sqlite_bench_erasures_10k() -> TestResult {
    const PERSONS: usize = 10_000;
    let dir = tempfile::tempdir()?;
    let s = Arc::new(SqliteStore::open(dir.path())?);
    let c = suite::client("bench");
    let coll = s.create_collection(&c, suite::coll("Bench")).await?;

    let t = Instant::now();
    let mut ids = Vec::with_capacity(PERSONS);
    top_up(&s, &c, &coll.id, &mut ids, PERSONS).await?;
    let seed = t.elapsed();
    let db_size = std::fs::metadata(dir.path().join("visage.db"))?.len();
    println!(
        "seeded {PERSONS} persons (1 face, 5 KB thumbnail each) in {:.2} s ({:.0}/s); db {:.1} MB",
        seed.as_secs_f64(),
        PERSONS as f64 / seed.as_secs_f64(),
        db_size as f64 / 1e6
    );

    for (callers, per_caller) in [(1, 200), (8, 100), (16, 100), (32, 100), (64, 50)] {
        top_up(&s, &c, &coll.id, &mut ids, PERSONS).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let work: Vec<_> = ids.drain(..callers * per_caller).collect();
        let t = Instant::now();
        let mut tasks = Vec::new();
        for chunk in work.chunks(per_caller) {
            let (s, c, chunk) = (Arc::clone(&s), c.clone(), chunk.to_vec());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(chunk.len());
                for id in &chunk {
                    let t0 = Instant::now();
                    let ok = s.erase_person(&c, id).await?;
                    lat.push(t0.elapsed());
                    assert!(ok);
                }
                Ok::<_, Error>(lat)
            }));
        }
        let mut lat = Vec::new();
        for task in tasks {
            lat.extend(task.await??);
        }
        let wall = t.elapsed();
        lat.sort();
        println!(
            "{callers:>2} callers: {:>5} erasures in {:.2} s = {:>5.0}/s; p50 {:>5.1} ms, p99 {:>5.1} ms, max {:>5.1} ms",
            lat.len(),
            wall.as_secs_f64(),
            lat.len() as f64 / wall.as_secs_f64(),
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
            lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3
        );
    }

    let t = Instant::now();
    let faces = s.faces_for_index().await?;
    println!(
        "faces_for_index: {} faces in {:.1} ms",
        faces.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    s.close().await?;
    Ok(())
}
