//! `visage backup --data-dir DIR --out FILE`: a consistent copy of the embedded store (and the
//! JWT secret) taken while the server runs, into a private file with a checksum and the
//! schema version.

use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use store::sqlite::{SqliteReadOnly, DB_FILE};

use crate::backup_file::{self, Header};

/// The JWT secret's file in a data directory.
pub const SECRET_FILE: &str = "jwt-secret";

#[derive(Args)]
pub struct BackupArgs {
    /// The embedded store's data directory (for PostgreSQL use pg_dump: docs/operations.md).
    #[arg(long, env = "VISAGE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// The backup file to create (mode 0600; an existing file is not overwritten).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: &BackupArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    if args.out.exists() {
        bail!("{} exists: give a new file", args.out.display());
    }
    let live = SqliteReadOnly::open(&args.data_dir)
        .with_context(|| format!("reading {}", args.data_dir.display()))?;
    let parent = match args.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    // Private scratch space beside the output (mode 0700), removed whatever happens.
    let scratch = tempfile::Builder::new()
        .prefix(".visage-backup-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a scratch folder in {}", parent.display()))?;
    let copy = scratch.path().join(DB_FILE);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&copy)?;
    live.copy_into(&copy).context("copying the database")?;
    // How long the read snapshot was held (what a running server's checkpoints waited for).
    let snapshot_secs = started.elapsed().as_secs_f64();
    let snapshot = SqliteReadOnly::open(scratch.path()).context("reading the copy")?;
    let last_audit_seq = snapshot.last_audit_seq()?;
    let secret = match std::fs::read(args.data_dir.join(SECRET_FILE)) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).context("reading the JWT secret"),
    };
    let header = Header::new(
        store::sqlite::SCHEMA_VERSION,
        last_audit_seq,
        &copy,
        &secret,
    )?;
    let staged = scratch.path().join("backup");
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&staged)?;
    backup_file::write(&mut out, &header, &copy, &secret)?;
    drop(out);
    // Only a complete, synced file gets the name (never overwriting one made meanwhile).
    std::fs::hard_link(&staged, &args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    if let Ok(dir) = std::fs::File::open(&parent) {
        let _ = dir.sync_all();
    }
    let size = header.database_bytes + header.secret_bytes;
    eprintln!(
        "backup of {} into {}: {} bytes, schema {}, audit seq {}, {:.2} s (snapshot {:.2} s){}",
        args.data_dir.display(),
        args.out.display(),
        size,
        header.schema_version,
        header.last_audit_seq,
        started.elapsed().as_secs_f64(),
        snapshot_secs,
        if secret.is_empty() {
            " (no jwt-secret file: VISAGE_JWT_SECRET is not backed up)"
        } else {
            ""
        }
    );
    Ok(())
}
