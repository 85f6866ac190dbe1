//! `visage eval lfw-search`: 1:N identification on LFW, end to end through the HTTP API of a
//! running server. One image of every person is enrolled (the first), except for held-out
//! people, who are not enrolled at all; every other image is a probe. Probes of enrolled
//! people measure rank-1 identification; probes of held-out people measure how often someone
//! not enrolled is matched anyway at the default `min_score`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine;
use clap::Args;
use serde_json::{json, Value};

use crate::eval_lfw::{folder_images, person_folders};
use crate::progress::Progress;
use crate::stats::{ms, quantile};

#[derive(Args)]
pub struct LfwSearchArgs {
    /// LFW root: one folder per person holding `Name_0001.jpg`, ...
    #[arg(long)]
    pub dataset: PathBuf,
    /// Base URL of a running server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API token of the client to enrol into (use a fresh client: its persons are searched).
    #[arg(long, env = "VISAGE_TOKEN")]
    pub token: String,
    /// Every n-th person (in name order) is held out: not enrolled, probes only.
    #[arg(long, default_value_t = 10)]
    pub hold_out_every: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// The `min_score` whose false-match rate is reported (the API's search default).
    #[arg(long, default_value_t = 0.81)]
    pub min_score: f64,
    /// Use only the first n people (in name order), for a quick run.
    #[arg(long)]
    pub limit_people: Option<usize>,
    /// Send the central square of this side (pixels) of each image instead of the whole
    /// image; 0 sends images whole. LFW centres each 250x250 image on its subject, and the
    /// API uses the largest face, which in a whole LFW image is often someone beside them.
    #[arg(long, default_value_t = 160)]
    pub centre_crop: u32,
    /// Also write one line per probe (`identity held_out top_identity score`) to this file.
    #[arg(long)]
    pub details: Option<PathBuf>,
}

struct Person {
    name: String,
    images: Vec<PathBuf>,
    held_out: bool,
}

fn people(root: &Path, hold_out_every: usize, limit: Option<usize>) -> anyhow::Result<Vec<Person>> {
    let mut dirs = person_folders(root)?;
    dirs.truncate(limit.unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(dirs.len());
    for (i, dir) in dirs.into_iter().enumerate() {
        let images = folder_images(&dir)?;
        if images.is_empty() {
            continue;
        }
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        out.push(Person {
            name,
            images,
            held_out: hold_out_every > 0 && i % hold_out_every == hold_out_every / 2,
        });
    }
    if out.is_empty() {
        bail!("no person folders with .jpg images in {}", root.display());
    }
    Ok(out)
}

struct Api {
    http: reqwest::blocking::Client,
    url: String,
    token: String,
}

impl Api {
    fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .http
            .post(format!(
                "{}/v2/face-recognition{path}",
                self.url.trim_end_matches('/')
            ))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .with_context(|| format!("POST {path}"))?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().unwrap_or(Value::Null)))
    }
}

/// The image as base64: whole, or its central `crop` x `crop` square as PNG.
fn b64(path: &Path, crop: u32) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bytes = if crop == 0 {
        bytes
    } else {
        let img = image::load_from_memory(&bytes)
            .with_context(|| format!("decoding {}", path.display()))?;
        let side = crop.min(img.width()).min(img.height());
        let centre = img.crop_imm(
            (img.width() - side) / 2,
            (img.height() - side) / 2,
            side,
            side,
        );
        let mut png = Vec::new();
        centre.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
        png
    };
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Runs `job` over `items` on `threads` threads; results in input order.
fn parallel<T: Sync, R: Send>(
    label: &'static str,
    items: &[T],
    threads: usize,
    job: impl Fn(&T) -> anyhow::Result<R> + Sync,
) -> anyhow::Result<Vec<R>> {
    let progress = Progress::new(label, items.len() as u64);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() {
                    break;
                }
                match job(&items[i]) {
                    Ok(r) => {
                        if let Ok(mut all) = results.lock() {
                            all[i] = Some(r);
                        }
                        progress.advance(1);
                    }
                    Err(e) => {
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(e);
                        }
                        next.store(items.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    progress.finish();
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let all = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("worker panicked"))?;
    all.into_iter()
        .map(|r| r.context("a request was not made"))
        .collect()
}

/// What one probe search returned.
struct ProbeResult {
    identity: usize,
    held_out: bool,
    /// The best match's identity index and score, if any face was found in the probe.
    top: Option<(Option<usize>, f64)>,
    latency: Duration,
}

pub fn run(args: &LfwSearchArgs) -> anyhow::Result<()> {
    let people = people(&args.dataset, args.hold_out_every, args.limit_people)?;
    let api = Api {
        http: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()?,
        url: args.url.clone(),
        token: args.token.clone(),
    };
    let (status, body) = api.post("/search", &json!({}))?;
    if status == 401 || status == 403 {
        bail!("the server refused the token: {status} {body}");
    }

    // Enrol the first image of every person not held out.
    let to_enrol: Vec<usize> = (0..people.len()).filter(|&i| !people[i].held_out).collect();
    let started = Instant::now();
    let enrolled: Vec<Option<String>> = parallel("enrolling", &to_enrol, args.concurrency, |&i| {
        let p = &people[i];
        let body = json!({"name": p.name.replace('_', " "), "images": [b64(&p.images[0], args.centre_crop)?]});
        let (status, reply) = api.post("/persons", &body)?;
        match status {
            200 => Ok(reply["data"]["_id"].as_str().map(str::to_owned)),
            412 => Ok(None),
            _ => bail!("enrolling {}: {status} {reply}", p.name),
        }
    })?;
    let enrol_time = started.elapsed();
    let mut identity_of = std::collections::HashMap::new();
    for (&i, id) in to_enrol.iter().zip(&enrolled) {
        if let Some(id) = id {
            identity_of.insert(id.clone(), i);
        }
    }
    let enrol_failures = enrolled.iter().filter(|e| e.is_none()).count();

    // Probe with every other image (all images of held-out people).
    let probes: Vec<(usize, &PathBuf)> = people
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            let skip = if p.held_out { 0 } else { 1 };
            p.images.iter().skip(skip).map(move |img| (i, img))
        })
        .collect();
    let started = Instant::now();
    let results = parallel(
        "searching",
        &probes,
        args.concurrency,
        |&(identity, path)| {
            let body = json!({"images": [b64(path, args.centre_crop)?], "min_score": 0.2, "search_mode": "ACCURATE", "max_results": 1});
            let t = Instant::now();
            let (status, reply) = api.post("/search", &body)?;
            let latency = t.elapsed();
            let top = match status {
                200 => {
                    let best = &reply["data"][0];
                    match best["score"].as_f64() {
                        Some(score) => Some((
                            best["id"]
                                .as_str()
                                .and_then(|id| identity_of.get(id).copied()),
                            score,
                        )),
                        None => Some((None, 0.0)),
                    }
                }
                412 => None,
                _ => bail!("searching with {}: {status} {reply}", path.display()),
            };
            Ok(ProbeResult {
                identity,
                held_out: people[identity].held_out,
                top,
                latency,
            })
        },
    )?;
    let search_time = started.elapsed();
    if let Some(out) = &args.details {
        let lines: String = results
            .iter()
            .map(|r| {
                let (top, score) = match r.top {
                    Some((who, score)) => (who.map_or("-", |i| people[i].name.as_str()), score),
                    None => ("no_face", 0.0),
                };
                format!(
                    "{}\t{}\t{top}\t{score:.4}\n",
                    people[r.identity].name, r.held_out
                )
            })
            .collect();
        std::fs::write(out, lines).with_context(|| format!("writing {}", out.display()))?;
    }
    report(
        args,
        &people,
        enrolled.len(),
        enrol_failures,
        enrol_time,
        &results,
        search_time,
    );
    Ok(())
}

fn report(
    args: &LfwSearchArgs,
    people: &[Person],
    enrol_attempts: usize,
    enrol_failures: usize,
    enrol_time: Duration,
    results: &[ProbeResult],
    search_time: Duration,
) {
    let held_out_people = people.iter().filter(|p| p.held_out).count();
    let (known, unknown): (Vec<&ProbeResult>, Vec<&ProbeResult>) =
        results.iter().partition(|r| !r.held_out);
    let rank1 = known
        .iter()
        .filter(|r| matches!(r.top, Some((Some(who), _)) if who == r.identity))
        .count();
    let rank1_at_threshold = known
        .iter()
        .filter(
            |r| matches!(r.top, Some((Some(who), s)) if who == r.identity && s >= args.min_score),
        )
        .count();
    let false_matches = unknown
        .iter()
        .filter(|r| matches!(r.top, Some((_, s)) if s >= args.min_score))
        .count();
    let no_face = results.iter().filter(|r| r.top.is_none()).count();
    let latencies: Vec<f64> = results.iter().map(|r| ms(r.latency)).collect();
    let pct = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
    println!("centre_crop {} (0 = whole images)", args.centre_crop);
    println!(
        "people {} held_out {held_out_people} enrolled {} enrol_no_face {enrol_failures}",
        people.len(),
        enrol_attempts - enrol_failures
    );
    println!(
        "probes enrolled_people {} held_out_people {} no_face {no_face}",
        known.len(),
        unknown.len()
    );
    println!(
        "rank1 {:.2}% ({rank1} of {}; top match at any score)",
        pct(rank1, known.len()),
        known.len()
    );
    println!(
        "rank1_at_min_score_{} {:.2}% ({rank1_at_threshold} of {})",
        args.min_score,
        pct(rank1_at_threshold, known.len()),
        known.len()
    );
    println!(
        "false_match_not_enrolled_at_min_score_{} {:.2}% ({false_matches} of {})",
        args.min_score,
        pct(false_matches, unknown.len()),
        unknown.len()
    );
    println!(
        "enrol_per_s {:.1} ({enrol_attempts} in {:.1} s, concurrency {})",
        enrol_attempts as f64 / enrol_time.as_secs_f64(),
        enrol_time.as_secs_f64(),
        args.concurrency
    );
    println!(
        "search_per_s {:.1} ({} in {:.1} s)",
        results.len() as f64 / search_time.as_secs_f64(),
        results.len(),
        search_time.as_secs_f64()
    );
    println!(
        "search_latency_ms p50 {:.1} p95 {:.1}",
        quantile(&latencies, 0.5).unwrap_or(0.0),
        quantile(&latencies, 0.95).unwrap_or(0.0)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_are_read_in_order_and_every_nth_is_held_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, n) in [("Ann", 2), ("Bob", 1), ("Cy", 3), ("Dee", 1), ("Empty", 0)] {
            let d = dir.path().join(name);
            std::fs::create_dir(&d).expect("mkdir");
            for k in 1..=n {
                std::fs::write(d.join(format!("{name}_{k:04}.jpg")), b"x").expect("write");
            }
        }
        let p = people(dir.path(), 2, None).expect("people");
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["Ann", "Bob", "Cy", "Dee"]);
        assert_eq!(
            p.iter().map(|p| p.held_out).collect::<Vec<_>>(),
            [false, true, false, true]
        );
        assert!(p[2].images[0].ends_with("Cy_0001.jpg"));
        assert_eq!(people(dir.path(), 0, Some(1)).expect("people").len(), 1);
    }
}
