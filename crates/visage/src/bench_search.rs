//! `visage bench search`: 1:N search as the server runs it (the service's own search use
//! case, from the probe's embedding on: index or pgvector, exact re-scoring, the persons
//! read back), minus the face pipeline, on a gallery already in a store (see `visage
//! import`): the embedded store, and PostgreSQL, with the same query vectors. Prints p50/p99
//! latency (one query at a time) and recall@1 of FAST against ACCURATE on the same backend,
//! then named lines per backend (`pg_fast_p50_ms`, `pg_fast_recall_at_1`, `pg_accurate_p50_ms`;
//! `embedded_...` likewise).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use service::{ClientId, Embedding, PersonId, Score, SearchMode, SearchParams};
use vision::EMBEDDING_DIM;

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
    /// Raw little-endian f32 query rows (`visage bench index --export` writes them beside its FILE, with the extension `.queries`).
    #[arg(long)]
    pub queries: PathBuf,
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    #[command(flatten)]
    pub models: crate::ModelsArgs,
}

fn read_queries(path: &std::path::Path) -> anyhow::Result<Vec<Embedding>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.is_empty() || bytes.len() % (EMBEDDING_DIM * 4) != 0 {
        bail!("{}: not whole rows of {EMBEDDING_DIM} f32", path.display());
    }
    bytes
        .chunks_exact(EMBEDDING_DIM * 4)
        .enumerate()
        .map(|(i, row)| {
            let v: Vec<f32> = row
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Embedding::from_slice(&v).with_context(|| format!("query {i} is zero or not finite"))
        })
        .collect()
}

/// Runs every query once, timing each; returns (p50 ms, p99 ms, faces searched, answers).
async fn run<F, Fut>(
    queries: &[Embedding],
    search: F,
) -> anyhow::Result<(f64, f64, usize, Vec<Vec<PersonId>>)>
where
    F: Fn(Embedding) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(usize, Vec<PersonId>)>>,
{
    let mut lat = Vec::with_capacity(queries.len());
    let mut out = Vec::with_capacity(queries.len());
    let mut faces = 0;
    for q in queries {
        let t = Instant::now();
        let (searched, found) = search(q.clone()).await?;
        lat.push(ms(t.elapsed()));
        faces = searched;
        out.push(found);
    }
    Ok((
        quantile(&lat, 0.5).unwrap_or(0.0),
        quantile(&lat, 0.99).unwrap_or(0.0),
        faces,
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

/// The service as `visage serve` opens it by default, on the gallery in `store`.
async fn open_service(
    models: &crate::ModelsArgs,
    store: service::StoreConfig,
) -> anyhow::Result<service::Service> {
    service::open(service::Config::new(store, models.models_dir.clone())).await
}

/// Both modes on one backend: the exact one as the reference, then the approximate one.
async fn bench_backend(
    name: &str,
    svc: &service::Service,
    client: &ClientId,
    queries: &[Embedding],
    k: usize,
) -> anyhow::Result<Summary> {
    // Score 0 is cosine -1: every one of the k nearest is returned, as a recall measure needs.
    let min_score = Score::new(0.0).context("score 0")?;
    let search = |mode: SearchMode| {
        move |q: Embedding| async move {
            let params = SearchParams {
                min_score,
                mode,
                collection: None,
                max_results: k,
            };
            let found = svc.search_embedding(client, &q, &params).await?;
            Ok((
                found.faces_searched,
                found.matches.into_iter().map(|m| m.person.id).collect(),
            ))
        }
    };
    let (p50, p99, faces, exact) = run(queries, search(SearchMode::Accurate)).await?;
    row(name, SearchMode::Accurate.as_str(), faces, p50, p99, None);
    let accurate_p50 = p50;
    let (p50, p99, faces, fast) = run(queries, search(SearchMode::Fast)).await?;
    let recall = recall_at_1(&exact, &fast);
    row(name, "FAST", faces, p50, p99, Some(recall));
    Ok(Summary {
        fast_p50: p50,
        fast_recall_at_1: recall,
        accurate_p50,
    })
}

/// A backend's figures for the summary lines.
struct Summary {
    fast_p50: f64,
    fast_recall_at_1: f64,
    accurate_p50: f64,
}

impl Summary {
    fn print(&self, prefix: &str) {
        println!("{prefix}_fast_p50_ms {:.3}", self.fast_p50);
        println!("{prefix}_fast_recall_at_1 {:.4}", self.fast_recall_at_1);
        println!("{prefix}_accurate_p50_ms {:.3}", self.accurate_p50);
    }
}

pub fn run_cmd(args: &BenchSearchArgs) -> anyhow::Result<()> {
    let client = ClientId::parse(&args.client).map_err(|e| anyhow::anyhow!("bad --client: {e}"))?;
    let queries = read_queries(&args.queries)?;
    let rt = crate::serve_cmd::runtime()?;
    println!(
        "bench search: {} queries, k {}, one at a time, through the service's own search (no face pipeline)",
        queries.len(),
        args.k
    );
    println!("backend\tmode\tfaces\tp50_ms\tp99_ms\trecall@1_vs_exact");
    rt.block_on(async {
        if let Some(dir) = &args.data_dir {
            let started = Instant::now();
            let store = service::StoreConfig {
                data_dir: dir.clone(),
                database: None,
            };
            let svc = open_service(&args.models, store).await?;
            let loaded = started.elapsed().as_secs_f64();
            svc.settle().await;
            eprintln!(
                "embedded: loaded in {loaded:.1} s, graph in {:.1} s more",
                started.elapsed().as_secs_f64() - loaded
            );
            let measured = bench_backend("embedded", &svc, &client, &queries, args.k).await;
            // Saves the index snapshot again, as a server's clean stop does.
            svc.shutdown().await;
            measured?.print("embedded");
        }
        if let Some(url) = &args.database {
            let scratch = tempfile::tempdir()?;
            let store = service::StoreConfig {
                data_dir: scratch.path().to_owned(),
                database: Some(url.clone()),
            };
            let svc = open_service(&args.models, store).await?;
            let measured = bench_backend("pgvector", &svc, &client, &queries, args.k).await;
            svc.shutdown().await;
            measured?.print("pg");
        }
        anyhow::Ok(())
    })
}
