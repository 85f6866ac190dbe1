//! `--data-dir DIR | --database URL`: which store an operator command works on.

use std::path::PathBuf;

use clap::Args;
use service::StoreConfig;

use crate::serve_cmd::DatabaseArgs;

#[derive(Args, Clone)]
pub struct StoreArgs {
    /// The embedded store's data directory (that of `visage serve --data-dir`).
    #[arg(long, env = "VISAGE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

impl StoreArgs {
    pub fn config(&self) -> StoreConfig {
        self.database.store_config(&self.data_dir)
    }
}

/// `--client NAME` checked as the server checks a token's client.
pub fn client_arg(client: &str) -> anyhow::Result<service::ClientId> {
    service::ClientId::parse(client).map_err(|e| anyhow::anyhow!("bad --client {client:?}: {e}"))
}
