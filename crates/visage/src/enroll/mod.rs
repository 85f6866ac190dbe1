//! `visage enroll`: a photo archive (a folder per person, or a CSV manifest) enrolled through
//! the HTTP API of a running server, `--jobs` persons at a time, safely re-runnable (a
//! journal of who was enrolled), with a JSON-lines report.

mod api;
mod archive;
mod journal;
mod person;
mod progress;

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use anyhow::{bail, Context};
use clap::Args;

use api::Api;
use archive::PersonInput;
use journal::Journal;
use person::{Outcome, Status};
use progress::{Counts, Progress};

/// The journal's name inside the archive folder (or beside the manifest).
const JOURNAL_FILE: &str = ".visage-enroll.jsonl";

#[derive(Args)]
pub struct EnrollArgs {
    /// The archive: one sub-folder per person, named as the person, with 1-3 images (with
    /// more, the 3 with the largest faces are used).
    #[arg(required_unless_present = "manifest", conflicts_with = "manifest")]
    pub dir: Option<PathBuf>,
    /// A CSV manifest `name,file[,gender,date_of_birth,notes]` instead of folders (files
    /// relative to the manifest's folder; a name on several rows gathers their files).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// The server, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "VISAGE_URL")]
    pub url: String,
    /// An API token of the client to enrol into (`VISAGE_TOKEN` keeps it out of `ps`).
    #[arg(long, env = "VISAGE_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Put every person in this collection (`_id` or `code`).
    #[arg(long)]
    pub collection: Option<String>,
    /// Enrolments in flight at once (default: this machine's cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Write the report (one JSON line per person) here instead of standard output.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The journal of enrolled persons (default: DIR/.visage-enroll.jsonl).
    #[arg(long)]
    pub journal: Option<PathBuf>,
}

pub fn run(args: &EnrollArgs) -> anyhow::Result<()> {
    let (persons, default_journal) = inputs(args)?;
    let api = Api::new(&args.url, &args.token)?;
    api.check(args.collection.as_deref())?;
    let journal_path = args.journal.clone().unwrap_or(default_journal);
    let (mut journal, enrolled_before) = Journal::open(&journal_path)?;
    let mut report = report_sink(args.report.as_ref())?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    if jobs == 0 {
        bail!("--jobs must be at least 1");
    }

    let total = persons.len() as u64;
    let mut progress = Progress::new(total);
    let mut counts = Counts::default();
    let mut todo: Vec<PersonInput> = Vec::new();
    for p in persons {
        match enrolled_before.get(&p.name) {
            Some(id) => {
                let outcome = Outcome::skipped(&p, id);
                write_line(&mut report, &outcome)?;
                counts.skipped += 1;
            }
            None => todo.push(p),
        }
    }
    progress.update(counts);

    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<anyhow::Result<Outcome>>();
    let fatal = std::thread::scope(|scope| -> anyhow::Result<Option<anyhow::Error>> {
        for _ in 0..jobs.min(todo.len().max(1)) {
            let (tx, api, todo, next, stop) = (tx.clone(), api.clone(), &todo, &next, &stop);
            let collection = args.collection.as_deref();
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(p) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    if tx.send(person::enrol(&api, p, collection)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut fatal = None;
        for result in rx {
            match result {
                Ok(outcome) => {
                    if let (Status::Enrolled, Some(id)) = (outcome.status, &outcome.id) {
                        journal.record(&outcome.person, id, &outcome.files)?;
                        counts.enrolled += 1;
                    } else {
                        counts.failed += 1;
                    }
                    write_line(&mut report, &outcome)?;
                    progress.update(counts);
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    fatal.get_or_insert(e);
                }
            }
        }
        Ok(fatal)
    })?;
    report.flush().context("writing the report")?;
    progress.finish(counts);
    if let Some(e) = fatal {
        return Err(
            e.context("enrolment stopped (re-run to continue: enrolled persons are skipped)")
        );
    }
    let secs = progress.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "enroll: throughput {:.2} persons/s with --jobs {jobs}",
        counts.enrolled as f64 / secs
    );
    if counts.failed > 0 {
        bail!(
            "{} of {total} persons failed (see the report; a re-run retries them)",
            counts.failed
        );
    }
    Ok(())
}

/// The persons to enrol and the journal's default place.
fn inputs(args: &EnrollArgs) -> anyhow::Result<(Vec<PersonInput>, PathBuf)> {
    match (&args.dir, &args.manifest) {
        (Some(dir), None) => {
            if !dir.is_dir() {
                bail!("{} is not a folder", dir.display());
            }
            Ok((archive::from_folders(dir)?, dir.join(JOURNAL_FILE)))
        }
        (None, Some(manifest)) => {
            let base = manifest.parent().unwrap_or(std::path::Path::new("."));
            Ok((archive::from_manifest(manifest)?, base.join(JOURNAL_FILE)))
        }
        _ => bail!("give a folder DIR or --manifest FILE"),
    }
}

/// The report file (mode 0600: it names people), or standard output.
fn report_sink(path: Option<&PathBuf>) -> anyhow::Result<Box<dyn Write>> {
    match path {
        Some(p) => {
            let file = File::options()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(p)
                .with_context(|| format!("creating the report {}", p.display()))?;
            Ok(Box::new(std::io::BufWriter::new(file)))
        }
        None => Ok(Box::new(std::io::stdout())),
    }
}

fn write_line(out: &mut dyn Write, outcome: &Outcome) -> anyhow::Result<()> {
    writeln!(out, "{}", outcome.to_json()).context("writing the report")
}
