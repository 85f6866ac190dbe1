//! `visage bench vision`: per-stage latency of the face pipeline, single-threaded, and
//! throughput on all cores, for the given files (the fixtures by default) and optionally
//! for small photos (LFW's 250x250); then what images made to cost much for their size cost.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use rayon::prelude::*;
use vision::StageTimes;

use crate::stats::{mean, ms, quantile};
use crate::PipelineArgs;

#[derive(Args)]
pub struct BenchArgs {
    /// Images to run (default: every JPEG/PNG in fixtures/faces).
    pub files: Vec<PathBuf>,
    /// Timed runs per image.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// An LFW directory (with `pairs-dev.txt`): its first `--lfw-images` pair images, by
    /// path, are run as a second set after the files.
    #[arg(long)]
    pub lfw: Option<PathBuf>,
    /// How many LFW images to run.
    #[arg(long, default_value_t = 200)]
    pub lfw_images: usize,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

fn default_files() -> anyhow::Result<Vec<PathBuf>> {
    let dir = PathBuf::from("fixtures/faces");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg" || x == "png"))
        .collect();
    files.sort();
    Ok(files)
}

/// Milliseconds of the liveness pair on each image's largest face (decoding and detection
/// outside the timer); `None` when the liveness models are not installed.
fn liveness_times(
    pipeline: &vision::Pipeline,
    images: &[Vec<u8>],
    repeat: usize,
) -> anyhow::Result<Option<Vec<f64>>> {
    let Some(liveness) = pipeline.liveness() else {
        return Ok(None);
    };
    let mut times = Vec::new();
    for bytes in images {
        let img = pipeline.decode(bytes)?;
        let faces = pipeline.detect(&img)?;
        let Some(face) = vision::largest(&faces) else {
            continue;
        };
        if face.bbox.width < vision::MIN_LIVENESS_FACE_WIDTH {
            continue;
        }
        for _ in 0..repeat {
            let t = Instant::now();
            liveness.score(&img, face)?;
            times.push(ms(t.elapsed()));
        }
    }
    Ok(Some(times))
}

/// Images that cost much for their size, built here: faceless, and shaped or filled to make
/// the pipeline work (name, encoded bytes).
fn adversarial_images() -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
    let png = |img: &image::RgbImage| -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)?;
        Ok(out)
    };
    let grey = image::Rgb([128, 128, 128]);
    // Noise in 4x4-px blocks: at one random colour a pixel it would be 48 MB of PNG, over
    // the 10 MB encoded limit; this is about 6 MB, and decodes to the same 48 MB of pixels.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut blocks = image::RgbImage::new(1000, 1000);
    for p in blocks.pixels_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let [r, g, b, ..] = state.to_le_bytes();
        *p = image::Rgb([r, g, b]);
    }
    let noise = image::imageops::resize(&blocks, 4000, 4000, image::imageops::FilterType::Nearest);
    Ok(vec![
        (
            "1x11999 grey PNG",
            png(&image::RgbImage::from_pixel(1, 11_999, grey))?,
        ),
        (
            "12000x1 grey PNG",
            png(&image::RgbImage::from_pixel(12_000, 1, grey))?,
        ),
        ("4000x4000 noise PNG", png(&noise)?),
    ])
}

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`); `None` off Linux.
fn proc_status_kib(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Runs `f` and returns how far the peak resident memory rose above what was resident
/// before, in MiB (`None` where the peak cannot be reset: not Linux, or before 4.0).
fn peak_rss_growth_mib<T>(f: impl FnOnce() -> T) -> (T, Option<f64>) {
    // Writing 5 to clear_refs resets VmHWM to the current RSS (proc(5)).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = proc_status_kib("VmRSS");
    let out = f();
    let growth = match (reset, before, proc_status_kib("VmHWM")) {
        (true, Some(before), Some(peak)) => Some(peak.saturating_sub(before) as f64 / 1024.0),
        _ => None,
    };
    (out, growth)
}

/// ms and peak memory of each adversarial image through decode, detection and (if a face
/// is found) alignment and embedding, one thread, after one warm-up run.
fn adversarial(pipeline: &vision::Pipeline, repeat: usize) -> anyhow::Result<()> {
    let images = adversarial_images()?;
    println!(
        "{:<20} {:>9} {:>9} {:>13}  outcome",
        "adversarial", "bytes", "p50_ms", "peak_rss_mib"
    );
    for (name, bytes) in &images {
        let outcome = |r: &vision::Result<(Option<vision::Embedding>, StageTimes)>| match r {
            Ok((Some(_), _)) => "a face".to_owned(),
            Ok((None, _)) => "no face".to_owned(),
            Err(e) => format!("refused: {e}"),
        };
        let warm = pipeline.timed_largest_face(bytes);
        let mut times = Vec::new();
        let mut peak: Option<f64> = None;
        for _ in 0..repeat.max(1) {
            let t = Instant::now();
            let (_, growth) = peak_rss_growth_mib(|| pipeline.timed_largest_face(bytes));
            times.push(ms(t.elapsed()));
            peak = growth.map(|g| peak.map_or(g, |p| p.max(g)));
        }
        println!(
            "{name:<20} {:>9} {:>9.2} {:>13}  {}",
            bytes.len(),
            quantile(&times, 0.5).unwrap_or(0.0),
            peak.map_or("n/a".to_owned(), |p| format!("{p:.1}")),
            outcome(&warm)
        );
    }
    Ok(())
}

/// Picks one stage's milliseconds out of a run.
type StagePick = fn(&StageTimes) -> f64;

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let files = if args.files.is_empty() {
        default_files()?
    } else {
        args.files.clone()
    };
    let pipeline = args.pipeline.load()?;
    bench_set("files", &pipeline, &files, args.repeat)?;
    if let Some(lfw) = &args.lfw {
        let mut images = crate::eval_lfw::pair_images(lfw, &lfw.join("pairs-dev.txt"))?;
        images.truncate(args.lfw_images);
        bench_set("lfw", &pipeline, &images, args.repeat)?;
    }
    adversarial(&pipeline, args.repeat)
}

/// Per-stage p50/p95 on one thread, then images/s on all cores, for one set of images;
/// the summary lines (`mean_total_ms`, `images_per_s`, ...) are prefixed with the set's
/// name after the first set (`lfw_mean_total_ms`).
fn bench_set(
    set: &str,
    pipeline: &vision::Pipeline,
    files: &[PathBuf],
    repeat: usize,
) -> anyhow::Result<()> {
    let key = |name: &str| {
        if set == "files" {
            name.to_owned()
        } else {
            format!("{set}_{name}")
        }
    };
    let mut images: Vec<Vec<u8>> = Vec::with_capacity(files.len());
    for file in files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        // Warm-up: builds the detector plan for each input shape outside the timings. An
        // image the decoder refuses is left out (and said so): it has no stages to time.
        match pipeline.timed_largest_face(&bytes) {
            Ok(_) => images.push(bytes),
            Err(vision::Error::Decode(e)) => println!("left out {}: {e}", file.display()),
            Err(e) => return Err(e.into()),
        }
    }
    let mut runs: Vec<StageTimes> = Vec::new();
    let mut missing = 0;
    for _ in 0..repeat {
        for bytes in &images {
            let (face, times) = pipeline.timed_largest_face(bytes)?;
            missing += usize::from(face.is_none());
            runs.push(times);
        }
    }
    println!(
        "bench vision {set}: {} images x {repeat} runs, single thread, flip_average {}",
        images.len(),
        pipeline.config().flip_average
    );
    println!("{:<8} {:>9} {:>9}", "stage", "p50_ms", "p95_ms");
    let stages: [(&str, StagePick); 5] = [
        ("decode", |t| ms(t.decode)),
        ("detect", |t| ms(t.detect)),
        ("align", |t| ms(t.align)),
        ("embed", |t| ms(t.embed)),
        ("total", |t| ms(t.decode + t.detect + t.align + t.embed)),
    ];
    for (name, pick) in stages {
        let v: Vec<f64> = runs.iter().map(pick).collect();
        println!(
            "{name:<8} {:>9.2} {:>9.2}",
            quantile(&v, 0.5).unwrap_or(0.0),
            quantile(&v, 0.95).unwrap_or(0.0)
        );
    }
    match liveness_times(pipeline, &images, repeat)? {
        Some(v) => println!(
            "{:<8} {:>9.2} {:>9.2}   (both liveness models, largest face; extra to total)",
            "liveness",
            quantile(&v, 0.5).unwrap_or(0.0),
            quantile(&v, 0.95).unwrap_or(0.0)
        ),
        None => println!("liveness not installed (scripts/fetch-liveness.sh)"),
    }
    let totals: Vec<f64> = runs.iter().map(stages[4].1).collect();
    println!("{} {:.2}", key("mean_total_ms"), mean(&totals));
    println!("{} {}", key("faces_missing"), missing / repeat.max(1));

    let started = Instant::now();
    let work: Vec<&Vec<u8>> = (0..repeat).flat_map(|_| images.iter()).collect();
    work.par_iter()
        .try_for_each(|bytes| pipeline.timed_largest_face(bytes).map(|_| ()))?;
    println!(
        "{} {:.1} (all {} cores)",
        key("images_per_s"),
        work.len() as f64 / started.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    Ok(())
}
