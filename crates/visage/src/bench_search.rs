//! `visage bench search`: 1:N search as the server runs it, minus the face pipeline, on a
//! gallery already in a store (see `visage import`): the embedded index over SQLite, and
//! pgvector in PostgreSQL, with the same query vectors. Prints p50/p99 latency (one query at
//! a time) and recall@1 of each approximate mode against its own exact mode.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use index::{IndexParams, Mode, SearchRequest, SyncedGallery};
use store::{ClientId, PersonId, PoolOptions, PostgresStore, SqliteStore, Store, EMBEDDING_DIM};

use crate::stats::{ms, quantile};

#[derive(Args)]
pub struct BenchSearchArgs {
    /// The embedded store holding the gallery (searched with the in-memory index).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL database holding the same gallery (searched with pgvector).
    #[arg(long)]
    pub database: Option<String>,
    #[arg(long)]
    pub client: String,
    /// Raw little-endian f32 query rows (`visage bench index --export` writes FILE.queries).
    #[arg(long)]
    pub queries: PathBuf,
    #[arg(long, default_value_t = 10)]
    pub k: usize,
}

fn read_queries(path: &std::path::Path) -> anyhow::Result<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.is_empty() || bytes.len() % (EMBEDDING_DIM * 4) != 0 {
        bail!("{}: not whole rows of {EMBEDDING_DIM} f32", path.display());
    }
    Ok(bytes
        .chunks_exact(EMBEDDING_DIM * 4)
        .map(|row| {
            let v: Vec<f32> = row
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let n = v
                .iter()
                .map(|x| x * x)
                .sum::<f32>()
                .sqrt()
                .max(f32::MIN_POSITIVE);
            v.into_iter().map(|x| x / n).collect()
        })
        .collect())
}

/// Runs every query once, timing each; returns (p50 ms, p99 ms, answers).
async fn run<F, Fut>(
    queries: &[Vec<f32>],
    search: F,
) -> anyhow::Result<(f64, f64, Vec<Vec<PersonId>>)>
where
    F: Fn(Vec<f32>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<PersonId>>>,
{
    let mut lat = Vec::with_capacity(queries.len());
    let mut out = Vec::with_capacity(queries.len());
    for q in queries {
        let t = Instant::now();
        out.push(search(q.clone()).await?);
        lat.push(ms(t.elapsed()));
    }
    Ok((
        quantile(&lat, 0.5).unwrap_or(0.0),
        quantile(&lat, 0.99).unwrap_or(0.0),
        out,
    ))
}

fn recall_at_1(truth: &[Vec<PersonId>], got: &[Vec<PersonId>]) -> f64 {
    let hits = truth
        .iter()
        .zip(got)
        .filter(|(t, g)| !t.is_empty() && t.first() == g.first())
        .count();
    hits as f64 / truth.len().max(1) as f64
}

fn row(backend: &str, mode: &str, faces: usize, p50: f64, p99: f64, recall: Option<f64>) {
    let recall = recall.map_or("1 (reference)".to_owned(), |r| format!("{r:.4}"));
    println!("{backend}\t{mode}\t{faces}\t{p50:.3}\t{p99:.3}\t{recall}");
}

pub fn run_cmd(args: &BenchSearchArgs) -> anyhow::Result<()> {
    let client = ClientId::parse(&args.client).map_err(|e| anyhow::anyhow!("bad --client: {e}"))?;
    let queries = read_queries(&args.queries)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "bench search: {} queries, k {}, one at a time, candidates re-scored as the server does",
        queries.len(),
        args.k
    );
    println!("backend\tmode\tfaces\tp50_ms\tp99_ms\trecall@1_vs_exact");
    rt.block_on(async {
        if let Some(dir) = &args.data_dir {
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir)?);
            // A server's snapshot is read from a copy: loading erases the file it reads.
            let saved = dir.join("index.snapshot");
            let copy = tempfile::tempdir()?;
            let snapshot = if saved.exists() {
                let to = copy.path().join("index.snapshot");
                std::fs::copy(&saved, &to)?;
                Some(to)
            } else {
                None
            };
            let started = Instant::now();
            let (gallery, from) =
                SyncedGallery::load(store, IndexParams::default(), snapshot.as_deref()).await?;
            eprintln!("embedded: index from {from:?}");
            let loaded = started.elapsed().as_secs_f64();
            while gallery.gallery().build_graphs(10_000) {}
            eprintln!(
                "embedded: loaded in {loaded:.1} s, graph in {:.1} s more",
                started.elapsed().as_secs_f64() - loaded
            );
            let faces = gallery.face_count(&client);
            let gallery = &gallery;
            let client = &client;
            let search = |mode: Mode| {
                move |q: Vec<f32>| async move {
                    let request = SearchRequest {
                        probe: &q,
                        collection: None,
                        mode,
                        min_cosine: -1.0,
                        max_results: args.k,
                    };
                    let found = gallery.search(client, &request).await?;
                    Ok(found.hits.into_iter().map(|h| h.person).collect())
                }
            };
            let (p50, p99, exact) = run(&queries, search(Mode::Exact)).await?;
            row("embedded", "ACCURATE (int8 scan)", faces, p50, p99, None);
            let (p50, p99, fast) = run(&queries, search(Mode::Fast)).await?;
            row(
                "embedded",
                "FAST (HNSW)",
                faces,
                p50,
                p99,
                Some(recall_at_1(&exact, &fast)),
            );
        }
        if let Some(url) = &args.database {
            let db = PostgresStore::connect(url, PoolOptions::default()).await?;
            let faces = db.searchable_faces(&client, None).await? as usize;
            let (db, client) = (&db, &client);
            let search = |exact: bool| {
                move |q: Vec<f32>| async move {
                    // As the server does: the persons, and the face count beside them.
                    let (found, _) = db.search(client, None, &q, args.k, exact).await?;
                    Ok(found.into_iter().map(|(p, _)| p).collect())
                }
            };
            let (p50, p99, exact) = run(&queries, search(true)).await?;
            row("pgvector", "ACCURATE (exact scan)", faces, p50, p99, None);
            let (p50, p99, fast) = run(&queries, search(false)).await?;
            row(
                "pgvector",
                "FAST (HNSW)",
                faces,
                p50,
                p99,
                Some(recall_at_1(&exact, &fast)),
            );
        }
        anyhow::Ok(())
    })
}
