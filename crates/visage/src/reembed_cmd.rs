//! `visage reembed --to DESCRIPTOR`: moves every client to another embedding model from the
//! face crops kept at enrolment, one client at a time, then prints what it did (faces,
//! clients, faces/s, crop bytes). With the server stopped, or beside PostgreSQL nodes started
//! with `--reembed-from` the old model.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use vision::PipelineConfig;

use crate::serve_cmd::runtime;
use crate::store_args::StoreArgs;
use crate::{EngineArgs, ModelsArgs};

#[derive(Args)]
pub struct ReembedArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub models: ModelsArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The new model's descriptor (TOML beside its ONNX file).
    #[arg(long)]
    pub to: PathBuf,
    /// Threads embedding at once (default: the number of cores).
    #[arg(long)]
    pub workers: Option<usize>,
}

pub fn run(args: &ReembedArgs) -> anyhow::Result<()> {
    let config = PipelineConfig {
        engine: args.engine.engine,
        ..PipelineConfig::default()
    };
    let pipeline = service::load_pipeline(&args.models.models_dir, Some(&args.to), config)?;
    let model = pipeline.embedder().id.clone();
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let progress = |n: u64| {
        if n % 1000 < 256 {
            eprintln!("re-embedded {n} faces");
        }
    };
    let done = runtime()?
        .block_on(service::reembed(
            &args.store.config(),
            Arc::new(pipeline),
            workers,
            &progress,
        ))
        .context("re-embedding")?;
    let seconds = done.embedding.as_secs_f64();
    println!(
        "reembed to {model}: faces {} clients {} clients_without_crops {} embedding_s {seconds:.2} \
         faces_per_s {:.1} commit_s {:.2} workers {workers} crop_bytes {} crop_bytes_per_face {:.0}",
        done.faces,
        done.clients,
        done.clients_without_crops,
        done.faces as f64 / seconds.max(1e-9),
        done.committing.as_secs_f64(),
        done.crop_bytes,
        done.crop_bytes as f64 / done.faces.max(1) as f64,
    );
    if done.clients_without_crops > 0 {
        println!(
            "{} clients stay on their model: faces enrolled without a kept crop cannot be re-embedded",
            done.clients_without_crops
        );
    }
    println!("restart the server with --embedder {}", args.to.display());
    Ok(())
}
