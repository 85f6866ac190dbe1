//! The backup file: a magic line, a JSON header line, then the database and the JWT secret.
//!
//! ```text
//! visage-backup
//! {"format":1,"schema_version":4,"created_at":"…","last_audit_seq":812,
//!  "database_bytes":…,"secret_bytes":…,"sha256":"…"}
//! <database bytes><secret bytes>
//! ```
//!
//! `sha256` covers the bytes after the header line; `last_audit_seq` is where the backup stands
//! in the store's audit log (erasures recorded after it are what `restore
//! --replay-erasures-from` re-applies).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const MAGIC: &str = "visage-backup";
const FORMAT: u32 = 1;
/// Longest header line accepted (it is a few hundred bytes).
const MAX_HEADER: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    pub schema_version: i64,
    pub created_at: String,
    pub last_audit_seq: i64,
    pub database_bytes: u64,
    pub secret_bytes: u64,
    pub sha256: String,
}

impl Header {
    pub fn new(
        schema_version: i64,
        last_audit_seq: i64,
        database: &Path,
        secret: &[u8],
    ) -> anyhow::Result<Header> {
        let database_bytes = std::fs::metadata(database)?.len();
        let mut hash = Sha256::new();
        copy_hashing(
            &mut File::open(database)?,
            &mut std::io::sink(),
            &mut hash,
            database_bytes,
        )?;
        hash.update(secret);
        Ok(Header {
            format: FORMAT,
            schema_version,
            created_at: chrono::Utc::now().to_rfc3339(),
            last_audit_seq,
            database_bytes,
            secret_bytes: secret.len() as u64,
            sha256: hex::encode(hash.finalize()),
        })
    }
}

/// Writes the backup file: header, then the database's bytes, then the secret; synced.
pub fn write(
    out: &mut File,
    header: &Header,
    database: &Path,
    secret: &[u8],
) -> anyhow::Result<()> {
    writeln!(out, "{MAGIC}")?;
    writeln!(out, "{}", serde_json::to_string(header)?)?;
    let mut copied = Sha256::new();
    copy_hashing(
        &mut File::open(database)?,
        out,
        &mut copied,
        header.database_bytes,
    )?;
    out.write_all(secret)?;
    copied.update(secret);
    if hex::encode(copied.finalize()) != header.sha256 {
        bail!("the database changed while the backup was written");
    }
    out.sync_all()?;
    Ok(())
}

/// Reads and checks the header of the backup at `path`; the reader is left at the payload.
pub fn read_header(path: &Path) -> anyhow::Result<(Header, BufReader<File>)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let not_a_backup = || format!("{} is not a visage backup", path.display());
    let mut magic = String::new();
    (&mut reader)
        .take(MAX_HEADER)
        .read_line(&mut magic)
        .with_context(not_a_backup)?;
    if magic.trim_end() != MAGIC {
        bail!(not_a_backup());
    }
    let mut line = String::new();
    (&mut reader)
        .take(MAX_HEADER)
        .read_line(&mut line)
        .with_context(not_a_backup)?;
    let header: Header = serde_json::from_str(line.trim_end()).with_context(not_a_backup)?;
    if header.format != FORMAT {
        bail!(
            "{}: backup format {} is not supported (this build reads {FORMAT})",
            path.display(),
            header.format
        );
    }
    Ok((header, reader))
}

/// Checks the payload against the header (length and checksum) without writing anything.
pub fn verify(path: &Path) -> anyhow::Result<Header> {
    let (header, mut reader) = read_header(path)?;
    let mut hash = Sha256::new();
    let total = header.database_bytes + header.secret_bytes;
    let n = copy_hashing(&mut reader, &mut std::io::sink(), &mut hash, total)?;
    let mut extra = [0u8; 1];
    if n != total || reader.read(&mut extra)? != 0 {
        bail!(
            "{}: the backup is truncated or has extra bytes (damaged)",
            path.display()
        );
    }
    if hex::encode(hash.finalize()) != header.sha256 {
        bail!(
            "{}: the checksum does not match (the backup is damaged)",
            path.display()
        );
    }
    Ok(header)
}

/// Copies exactly `len` bytes (fewer at end of input) from `from` to `to`, hashing them.
pub fn copy_hashing(
    from: &mut impl Read,
    to: &mut impl Write,
    hash: &mut Sha256,
    len: u64,
) -> anyhow::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = from.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(len - left)
}
