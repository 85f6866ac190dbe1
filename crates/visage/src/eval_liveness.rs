//! `visage eval liveness`: how the liveness models behave on genuine faces. Every face of the
//! given images is scored (false rejects = live faces under the threshold), an optional LFW
//! sample likewise, and a size sweep shrinks the given images until their faces are tiny, to
//! show below which face width scores stop being trustworthy.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use image::imageops::{self, FilterType};
use image::RgbImage;
use vision::{largest, Liveness, Pipeline};

use crate::PipelineArgs;

#[derive(Args)]
pub struct LivenessArgs {
    /// Images of live people (every detected face is scored), e.g. fixtures/faces/*.jpg.
    pub images: Vec<PathBuf>,
    /// LFW root: also score the largest face of one image of every k-th person.
    #[arg(long)]
    pub lfw: Option<PathBuf>,
    /// How many LFW images to score.
    #[arg(long, default_value_t = 300)]
    pub sample: usize,
    /// Shrink these images (largest face) to a series of face widths and score each.
    #[arg(long = "sweep")]
    pub sweep: Vec<PathBuf>,
    #[arg(long, default_value_t = 0.6)]
    pub threshold: f32,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

const SWEEP_WIDTHS: [f32; 10] = [160.0, 128.0, 96.0, 80.0, 64.0, 56.0, 48.0, 40.0, 32.0, 24.0];

fn load(p: &Pipeline, path: &Path) -> anyhow::Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    p.decode(&bytes)
        .with_context(|| format!("decoding {}", path.display()))
}

/// (face width, live score) of every face, or of the largest only.
fn scores(
    p: &Pipeline,
    l: &Liveness,
    img: &RgbImage,
    all: bool,
) -> anyhow::Result<Vec<(f32, f32)>> {
    let faces = p.detect(img)?;
    let chosen: Vec<_> = if all {
        faces.iter().collect()
    } else {
        largest(&faces).into_iter().collect()
    };
    chosen
        .into_iter()
        .map(|f| Ok((f.bbox.width, l.score(img, f)?)))
        .collect()
}

fn summary(label: &str, results: &[(f32, f32)], threshold: f32) {
    let mut sorted: Vec<f32> = results.iter().map(|r| r.1).collect();
    sorted.sort_by(f32::total_cmp);
    let below = sorted.iter().filter(|&&s| s <= threshold).count();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    println!(
        "{label}: faces {} below_{threshold} {below} ({:.1}%) median {median:.3} min {:.3}",
        results.len(),
        100.0 * below as f64 / results.len().max(1) as f64,
        sorted.first().copied().unwrap_or(0.0)
    );
    let small: Vec<&(f32, f32)> = results.iter().filter(|r| r.0 < 64.0).collect();
    if !small.is_empty() {
        let below = small.iter().filter(|r| r.1 <= threshold).count();
        println!(
            "{label}: of which faces under 64 px wide {} below_{threshold} {below}",
            small.len()
        );
    }
}

pub fn run(args: &LivenessArgs) -> anyhow::Result<()> {
    let p = args.pipeline.load()?;
    let Some(l) = p.liveness() else {
        bail!("the liveness models are not installed: run scripts/fetch-liveness.sh");
    };
    if !args.images.is_empty() {
        let mut all = Vec::new();
        for path in &args.images {
            let found = scores(&p, l, &load(&p, path)?, true)?;
            for (w, s) in &found {
                println!("face {} width {w:.0} live {s:.3}", path.display());
            }
            all.extend(found);
        }
        summary("images", &all, args.threshold);
    }
    if let Some(root) = &args.lfw {
        let mut people: Vec<PathBuf> = std::fs::read_dir(root)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        people.sort();
        let step = (people.len() / args.sample.max(1)).max(1);
        let mut all = Vec::new();
        for dir in people.iter().step_by(step).take(args.sample) {
            let Some(first) = std::fs::read_dir(dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
                .min()
            else {
                continue;
            };
            all.extend(scores(&p, l, &load(&p, &first)?, false)?);
        }
        summary("lfw", &all, args.threshold);
    }
    for path in &args.sweep {
        let img = load(&p, path)?;
        let Some(&(width, _)) = scores(&p, l, &img, false)?.first() else {
            continue;
        };
        let mut line = format!("sweep {}", path.display());
        for target in SWEEP_WIDTHS.into_iter().filter(|&t| t <= width) {
            let k = target / width;
            let (w, h) = (
                (img.width() as f32 * k) as u32,
                (img.height() as f32 * k) as u32,
            );
            let small = imageops::resize(&img, w.max(1), h.max(1), FilterType::Triangle);
            match scores(&p, l, &small, false)?.first() {
                Some((fw, s)) => line += &format!("  {fw:.0}px:{s:.3}"),
                None => line += &format!("  {target:.0}px:no_face"),
            }
        }
        println!("{line}");
    }
    Ok(())
}
