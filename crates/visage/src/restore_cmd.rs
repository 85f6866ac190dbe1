//! `visage restore --from FILE --data-dir NEW [--replay-erasures-from LIVE_DIR]`: a backup
//! verified, then written into a new data directory that `visage serve` starts on (the index is
//! rebuilt from the store at start). With `--replay-erasures-from`, the erasures the live
//! store recorded after the backup was taken are applied again, so that restoring does not
//! bring back erased persons.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use sha2::{Digest, Sha256};
use store::sqlite::{SqliteReadOnly, SqliteStore, DB_FILE, SCHEMA_VERSION};
use store::{AuditEntry, AuditFilter, OperatorReads, PersonId, Store};

use crate::backup_cmd::SECRET_FILE;
use crate::backup_file::{self, copy_hashing};
use crate::serve_cmd::runtime;

/// Audit rows read per transaction from the live store.
const PAGE: u32 = 5_000;

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup file (`visage backup --out`).
    #[arg(long)]
    pub from: PathBuf,
    /// The new data directory (must not exist, or be empty).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The live data directory the backup was taken from: re-apply the erasures it recorded
    /// after the backup (read-only; it may be in use by a server).
    #[arg(long)]
    pub replay_erasures_from: Option<PathBuf>,
}

pub fn run(args: &RestoreArgs) -> anyhow::Result<()> {
    refuse_non_empty(&args.data_dir)?;
    let header = backup_file::verify(&args.from)?;
    if header.schema_version > SCHEMA_VERSION {
        bail!(
            "the backup has schema {}, newer than this build's {SCHEMA_VERSION}: restore it with a newer visage",
            header.schema_version
        );
    }
    // Read the live store before writing anything: a wrong directory stops here.
    let live = args
        .replay_erasures_from
        .as_deref()
        .map(|dir| SqliteReadOnly::open(dir).with_context(|| format!("reading {}", dir.display())))
        .transpose()?;
    create_private_dir(&args.data_dir)?;
    write_payload(&args.from, &args.data_dir, &header)?;
    eprintln!(
        "restored {} into {} (schema {}, taken {}, audit seq {})",
        args.from.display(),
        args.data_dir.display(),
        header.schema_version,
        header.created_at,
        header.last_audit_seq
    );
    if let Some(live) = live {
        let replayed = runtime()?.block_on(replay_erasures(
            &live,
            &args.data_dir,
            header.last_audit_seq,
        ))?;
        eprintln!(
            "replayed {} erasures recorded after the backup ({} persons, {} clients)",
            replayed.persons + replayed.clients,
            replayed.persons,
            replayed.clients
        );
    }
    Ok(())
}

fn refuse_non_empty(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: restore into a new directory",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

fn private_file(path: &Path) -> anyhow::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

/// The database and the secret, checked against the header once more as they are written.
fn write_payload(from: &Path, dir: &Path, header: &backup_file::Header) -> anyhow::Result<()> {
    let (_, mut reader) = backup_file::read_header(from)?;
    let mut hash = Sha256::new();
    let mut db = private_file(&dir.join(DB_FILE))?;
    copy_hashing(&mut reader, &mut db, &mut hash, header.database_bytes)?;
    db.sync_all()?;
    if header.secret_bytes > 0 {
        let mut secret = private_file(&dir.join(SECRET_FILE))?;
        copy_hashing(&mut reader, &mut secret, &mut hash, header.secret_bytes)?;
        secret.sync_all()?;
    }
    if hex::encode(hash.finalize()) != header.sha256 {
        bail!("{} changed while it was restored", from.display());
    }
    if let Ok(d) = File::open(dir) {
        d.sync_all()?;
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Replayed {
    persons: u64,
    clients: u64,
}

/// Which erasure an audit row records, if any.
enum Erasure {
    Person(store::ClientId, PersonId),
    Client(store::ClientId),
}

fn erasure(e: &AuditEntry) -> Option<Erasure> {
    let client = e.client.clone()?;
    match e.action.as_str() {
        // Replaced faces were erased: the backup still holds the old ones, so the person goes.
        store::audit::PERSON_ERASE | store::audit::PERSON_FACES_REPLACE => {
            PersonId::parse(&e.object_id)
                .ok()
                .map(|id| Erasure::Person(client, id))
        }
        store::audit::CLIENT_ERASE => Some(Erasure::Client(client)),
        _ => None,
    }
}

async fn replay_erasures(
    live: &SqliteReadOnly,
    restored: &Path,
    after: i64,
) -> anyhow::Result<Replayed> {
    let restored_view = SqliteReadOnly::open(restored)?;
    if after > 0 {
        let ours = restored_view.audit_entry(after)?;
        let theirs = live.audit_entry(after)?;
        if ours.is_none() || ours != theirs {
            bail!(
                "the live store's audit log does not continue this backup's (row {after} differs): \
                 it is not the store the backup was taken from"
            );
        }
    }
    let store = SqliteStore::open(restored)?;
    let mut replayed = Replayed::default();
    let mut seq = after;
    loop {
        let page = live
            .audit_entries(&AuditFilter::default(), seq, PAGE)
            .await?;
        for e in &page {
            match erasure(e) {
                Some(Erasure::Person(client, id)) => {
                    let erased = store.erase_person(&client, &id).await?;
                    replayed.persons += u64::from(erased);
                }
                Some(Erasure::Client(client)) => {
                    store.erase_client(&client).await?;
                    replayed.clients += 1;
                }
                None => {}
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => seq = last.seq,
            _ => break,
        }
    }
    store.close().await?;
    Ok(replayed)
}
