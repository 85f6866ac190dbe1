//! The journal: one JSON line per person enrolled, appended and flushed to disk as soon as the
//! server answers, so that a second run skips them (and retries only the others).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

pub struct Journal {
    file: File,
}

impl Journal {
    /// Opens (creating, mode 0600: it names people) the journal at `path`, and the persons it
    /// records as enrolled, with their ids. A damaged line (a run killed mid-write) is
    /// ignored.
    pub fn open(path: &Path) -> anyhow::Result<(Journal, HashMap<String, String>)> {
        let enrolled = match std::fs::read_to_string(path) {
            Ok(text) => text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter_map(|v| {
                    let person = v["person"].as_str()?.to_owned();
                    Some((person, v["id"].as_str().unwrap_or_default().to_owned()))
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("reading the journal {}", path.display()))
            }
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("opening the journal {}", path.display()))?;
        Ok((Journal { file }, enrolled))
    }

    /// Records `person` as enrolled with the id the server gave, durably.
    pub fn record(&mut self, person: &str, id: &str, files: &[String]) -> anyhow::Result<()> {
        let line = json!({
            "person": person,
            "id": id,
            "files": files,
            "at": chrono::Utc::now().to_rfc3339(),
        });
        writeln!(self.file, "{line}").context("writing the journal")?;
        self.file.sync_data().context("writing the journal")?;
        Ok(())
    }
}
