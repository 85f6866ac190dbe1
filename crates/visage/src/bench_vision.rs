//! `visage bench vision`: per-stage latency of the face pipeline, single-threaded, and
//! throughput on all cores.

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

/// Picks one stage's milliseconds out of a run.
type StagePick = fn(&StageTimes) -> f64;

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let files = if args.files.is_empty() {
        default_files()?
    } else {
        args.files.clone()
    };
    let images: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).with_context(|| format!("reading {}", f.display())))
        .collect::<anyhow::Result<_>>()?;
    let pipeline = args.pipeline.load()?;
    // Warm-up: builds the detector plan for each input shape outside the timings.
    for bytes in &images {
        pipeline.timed_largest_face(bytes)?;
    }
    let mut runs: Vec<StageTimes> = Vec::new();
    let mut missing = 0;
    for _ in 0..args.repeat {
        for bytes in &images {
            let (face, times) = pipeline.timed_largest_face(bytes)?;
            missing += usize::from(face.is_none());
            runs.push(times);
        }
    }
    println!(
        "bench vision: {} images x {} runs, single thread, flip_average {}",
        images.len(),
        args.repeat,
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
    match liveness_times(&pipeline, &images, args.repeat)? {
        Some(v) => println!(
            "{:<8} {:>9.2} {:>9.2}   (both liveness models, largest face; extra to total)",
            "liveness",
            quantile(&v, 0.5).unwrap_or(0.0),
            quantile(&v, 0.95).unwrap_or(0.0)
        ),
        None => println!("liveness not installed (scripts/fetch-liveness.sh)"),
    }
    let totals: Vec<f64> = runs.iter().map(stages[4].1).collect();
    println!("mean_total_ms {:.2}", mean(&totals));
    println!("faces_missing {}", missing / args.repeat.max(1));

    let started = Instant::now();
    let work: Vec<&Vec<u8>> = (0..args.repeat).flat_map(|_| images.iter()).collect();
    work.par_iter()
        .try_for_each(|bytes| pipeline.timed_largest_face(bytes).map(|_| ()))?;
    println!(
        "images_per_s {:.1} (all {} cores)",
        work.len() as f64 / started.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    Ok(())
}
