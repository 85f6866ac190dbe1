//! `visage eval lfw`: the LFW View-2 verification protocol. For each fold the cosine
//! threshold is chosen on the other folds and accuracy is measured on the fold itself.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use image::imageops;
use rayon::prelude::*;
use vision::{Detection, Embedding, Pipeline};

use crate::calibration::{knots_toml, print_operating_points, print_score_table, AllPairs};
use crate::progress::Progress;
use crate::stats::{mean, std_dev};
use crate::PipelineArgs;

#[derive(Args)]
pub struct LfwArgs {
    /// LFW root: one folder per person holding `Name_0001.jpg`, ...
    #[arg(long)]
    pub dataset: PathBuf,
    /// View-2 pairs file (`folds pairs_per_fold` header, then the pairs).
    #[arg(long)]
    pub pairs: PathBuf,
    /// Also write every pair's cosine to this file (`a b same cosine`, tab separated).
    #[arg(long)]
    pub scores: Option<PathBuf>,
    /// Embed each face again from its kept crop, as `visage reembed` does: `png` (what visage
    /// keeps, lossless) or `jpeg` (the crop round-tripped through JPEG at `--crop-jpeg-quality`
    /// first), to measure what a lossy crop would cost.
    #[arg(long, value_enum)]
    pub from_kept_crop: Option<KeptCrop>,
    /// JPEG quality for `--from-kept-crop jpeg`.
    #[arg(long, default_value_t = 95, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub crop_jpeg_quality: u8,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeptCrop {
    Png,
    Jpeg,
}

#[derive(Debug, Clone, PartialEq)]
struct Pair {
    a: PathBuf,
    b: PathBuf,
    same: bool,
    fold: usize,
}

fn image_path(root: &Path, name: &str, number: &str) -> anyhow::Result<PathBuf> {
    let n: u32 = number
        .parse()
        .with_context(|| format!("bad image number {number:?}"))?;
    Ok(root.join(name).join(format!("{name}_{n:04}.jpg")))
}

/// Parses a View-2 pairs file: per fold, `per_fold` matched then `per_fold` mismatched pairs.
/// The person folders under an LFW root, in name order.
pub(crate) fn person_folders(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .with_context(|| format!("reading {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// The `.jpg` images of one person folder, in name order.
pub(crate) fn folder_images(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    Ok(files)
}

fn parse_pairs(text: &str, root: &Path) -> anyhow::Result<(usize, Vec<Pair>)> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<usize> = lines
        .next()
        .context("empty pairs file")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("pairs header must be `folds pairs_per_fold`")?;
    let [folds, per_fold] = header[..] else {
        bail!("pairs header must be `folds pairs_per_fold`");
    };
    if folds == 0 || per_fold == 0 {
        bail!("pairs header announces no pairs");
    }
    let mut pairs = Vec::with_capacity(folds * per_fold * 2);
    for (i, line) in lines.enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (a, b, same) = match f[..] {
            [name, n1, n2] => (
                image_path(root, name, n1)?,
                image_path(root, name, n2)?,
                true,
            ),
            [p1, n1, p2, n2] => (image_path(root, p1, n1)?, image_path(root, p2, n2)?, false),
            _ => bail!("bad pairs line {}: {line:?}", i + 2),
        };
        pairs.push(Pair {
            a,
            b,
            same,
            fold: i / (2 * per_fold),
        });
    }
    if pairs.len() != folds * per_fold * 2 {
        bail!(
            "header announces {} pairs, file has {}",
            folds * per_fold * 2,
            pairs.len()
        );
    }
    Ok((folds, pairs))
}

/// How an image's embedding was obtained.
pub(crate) enum Outcome {
    Detected(Embedding),
    /// No face found: the central square (where LFW centres its subject) was embedded as
    /// a face crop, so that every pair still gets a score.
    CentreCrop(Embedding),
}

pub(crate) fn embed_image(
    pipeline: &Pipeline,
    path: &Path,
    kept: Option<(KeptCrop, u8)>,
) -> anyhow::Result<Outcome> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let img = pipeline
        .decode(&bytes)
        .with_context(|| format!("decoding {}", path.display()))?;
    let (w, h) = img.dimensions();
    let faces = pipeline.detect(&img)?;
    if let Some(subject) = centred(&faces, w, h) {
        let face = pipeline.face(&img, subject)?;
        let embedding = match kept {
            None => face.embedding,
            Some((KeptCrop::Png, _)) => pipeline.embed_kept_crop(&face.crop_png)?,
            Some((KeptCrop::Jpeg, quality)) => {
                pipeline.embed_kept_crop(&through_jpeg(&face.crop_png, quality)?)?
            }
        };
        return Ok(Outcome::Detected(embedding));
    }
    let side = w.min(h) / 2;
    let centre = imageops::crop_imm(&img, (w - side) / 2, (h - side) / 2, side, side).to_image();
    Ok(Outcome::CentreCrop(pipeline.embed_crop(&centre)?))
}

/// A PNG crop after a JPEG round trip at `quality`, as PNG again (what `embed_kept_crop` reads).
fn through_jpeg(png: &[u8], quality: u8) -> anyhow::Result<Vec<u8>> {
    let crop = image::load_from_memory_with_format(png, image::ImageFormat::Png)?.to_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, quality).encode_image(&crop)?;
    let lossy = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)?.to_rgb8();
    let mut out = std::io::Cursor::new(Vec::new());
    lossy.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

/// LFW centres each image on its subject (that is how the set was cut), so the subject
/// is the face whose box centre lies nearest the image centre; the largest face is often
/// someone standing beside them.
fn centred(faces: &[Detection], w: u32, h: u32) -> Option<&Detection> {
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let distance = |d: &Detection| {
        let b = &d.bbox;
        (b.x + b.width / 2.0 - cx).hypot(b.y + b.height / 2.0 - cy)
    };
    faces
        .iter()
        .min_by(|a, b| distance(a).total_cmp(&distance(b)))
}

/// The person an LFW image shows: the name of its folder.
fn identity(path: &Path) -> &str {
    path.parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or("")
}

/// The threshold that maximises accuracy on `scored` (score, same) pairs.
fn best_threshold(scored: &[(f32, bool)]) -> f32 {
    let mut sorted = scored.to_vec();
    sorted.sort_by(|x, y| x.0.total_cmp(&y.0));
    let positives = sorted.iter().filter(|p| p.1).count();
    // Threshold below everything: all positives right, all negatives wrong.
    let mut correct = positives;
    let mut best = (correct, sorted.first().map_or(0.0, |p| p.0 - 1e-6));
    for (i, &(score, same)) in sorted.iter().enumerate() {
        // Moving the threshold just above `score` flips this pair to "different".
        if same {
            correct -= 1
        } else {
            correct += 1
        }
        let next = sorted.get(i + 1).map_or(score + 1e-6, |p| p.0);
        if correct > best.0 && next > score {
            best = (correct, (score + next) / 2.0);
        }
    }
    best.1
}

fn accuracy(scored: &[(f32, bool)], threshold: f32) -> f64 {
    let right = scored
        .iter()
        .filter(|(s, same)| (*s > threshold) == *same)
        .count();
    right as f64 / scored.len().max(1) as f64
}

/// The lowest threshold with at most `far` of the impostor scores above it, and the
/// share of genuine scores above it.
fn at_far(genuine: &[f32], impostor: &[f32], far: f64) -> (f32, f64) {
    let mut imp = impostor.to_vec();
    imp.sort_by(|a, b| b.total_cmp(a));
    let allowed = (far * imp.len() as f64).floor() as usize;
    let threshold = imp.get(allowed).copied().unwrap_or(f32::MIN);
    let tar = genuine.iter().filter(|&&g| g > threshold).count() as f64 / genuine.len() as f64;
    (threshold, tar)
}

fn read_pairs(dataset: &Path, pairs_file: &Path) -> anyhow::Result<(usize, Vec<Pair>)> {
    let text = std::fs::read_to_string(pairs_file)
        .with_context(|| format!("reading {}", pairs_file.display()))?;
    parse_pairs(&text, dataset)
}

/// Every image the pairs name, once, sorted by path.
fn distinct_images(pairs: &[Pair]) -> Vec<PathBuf> {
    pairs
        .iter()
        .flat_map(|p| [p.a.clone(), p.b.clone()])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The images of a pairs file under `dataset`, once each, sorted by path.
pub fn pair_images(dataset: &Path, pairs_file: &Path) -> anyhow::Result<Vec<PathBuf>> {
    Ok(distinct_images(&read_pairs(dataset, pairs_file)?.1))
}

pub fn run(args: &LfwArgs) -> anyhow::Result<()> {
    let (folds, pairs) = read_pairs(&args.dataset, &args.pairs)?;
    let images = distinct_images(&pairs);
    let pipeline = args.pipeline.load()?;
    println!(
        "lfw folds {folds} pairs {} images {} flip_average {} threads {}",
        pairs.len(),
        images.len(),
        pipeline.config().flip_average,
        rayon::current_num_threads()
    );
    let started = Instant::now();
    let progress = Progress::new("embedding images", images.len() as u64);
    let outcomes: Vec<(PathBuf, Outcome)> = images
        .par_iter()
        .map(|p| {
            let kept = args.from_kept_crop.map(|c| (c, args.crop_jpeg_quality));
            let outcome = embed_image(&pipeline, p, kept)?;
            progress.advance(1);
            Ok((p.clone(), outcome))
        })
        .collect::<anyhow::Result<_>>()?;
    progress.finish();
    let elapsed = started.elapsed().as_secs_f64();
    let mut no_face = Vec::new();
    let embeddings: HashMap<PathBuf, Embedding> = outcomes
        .into_iter()
        .map(|(p, o)| match o {
            Outcome::Detected(e) => (p, e),
            Outcome::CentreCrop(e) => {
                no_face.push(p.clone());
                (p, e)
            }
        })
        .collect();
    let scored: Vec<(f32, bool, usize)> = pairs
        .iter()
        .map(|p| (embeddings[&p.a].cosine(&embeddings[&p.b]), p.same, p.fold))
        .collect();

    if let Some(out) = &args.scores {
        let lines: String = pairs
            .iter()
            .zip(&scored)
            .map(|(p, s)| {
                format!(
                    "{}\t{}\t{}\t{:.6}\n",
                    p.a.display(),
                    p.b.display(),
                    p.same,
                    s.0
                )
            })
            .collect();
        std::fs::write(out, lines).with_context(|| format!("writing {}", out.display()))?;
    }
    let mut accuracies = Vec::new();
    for fold in 0..folds {
        let others: Vec<(f32, bool)> = scored
            .iter()
            .filter(|s| s.2 != fold || folds == 1)
            .map(|s| (s.0, s.1))
            .collect();
        let this: Vec<(f32, bool)> = scored
            .iter()
            .filter(|s| s.2 == fold)
            .map(|s| (s.0, s.1))
            .collect();
        let threshold = best_threshold(&others);
        let acc = accuracy(&this, threshold) * 100.0;
        println!(
            "fold {} threshold {threshold:.4} accuracy {acc:.2}",
            fold + 1
        );
        accuracies.push(acc);
    }
    let genuine: Vec<f32> = scored.iter().filter(|s| s.1).map(|s| s.0).collect();
    let impostor: Vec<f32> = scored.iter().filter(|s| !s.1).map(|s| s.0).collect();
    let (t3, tar3) = at_far(&genuine, &impostor, 1e-3);
    let (t4, tar4) = at_far(&genuine, &impostor, 1e-4);
    println!("accuracy {:.2}", mean(&accuracies));
    println!("accuracy_std {:.2}", std_dev(&accuracies));
    println!("tar_at_far_1e-3 {tar3:.4}");
    println!("threshold_far_1e-3 {t3:.4}");
    println!("tar_at_far_1e-4 {tar4:.4}");
    println!(
        "threshold_far_1e-4 {t4:.4} (with {} impostor pairs this is the highest impostor score)",
        impostor.len()
    );
    let identities: Vec<(&str, &Embedding)> =
        embeddings.iter().map(|(p, e)| (identity(p), e)).collect();
    let all = AllPairs::compute(&identities);
    let descriptor = pipeline.embedder();
    println!("score_map {} (its descriptor's knots)", descriptor.id);
    print_score_table(&genuine, &impostor, &all, &descriptor.score_map);
    print_operating_points(&all);
    println!(
        "knots for {}'s descriptor (same false-match rate as SFace at each score):\n{}",
        descriptor.id,
        knots_toml(&all.proposed_knots())
    );
    println!(
        "no_face {} (each embedded from its central square as a face crop)",
        no_face.len()
    );
    for p in &no_face {
        println!("no_face_image {}", p.display());
    }
    println!("images_per_s {:.1}", images.len() as f64 / elapsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_split_into_folds() {
        let text = "2\t1\nA\t1\t2\nB\t1\tC\t3\nD\t2\t4\nE\t1\tF\t1\n";
        let (folds, pairs) = parse_pairs(text, Path::new("/lfw")).expect("parses");
        assert_eq!(folds, 2);
        assert_eq!(pairs.len(), 4);
        assert_eq!(pairs[0].a, PathBuf::from("/lfw/A/A_0001.jpg"));
        assert!(pairs[0].same && !pairs[1].same);
        assert_eq!(
            pairs.iter().map(|p| p.fold).collect::<Vec<_>>(),
            [0, 0, 1, 1]
        );
        assert!(parse_pairs("2\t1\nA\t1\t2\n", Path::new("/")).is_err());
    }

    #[test]
    fn best_threshold_separates_separable_scores() {
        let scored = [(0.1, false), (0.2, false), (0.6, true), (0.9, true)];
        let t = best_threshold(&scored);
        assert!(t > 0.2 && t < 0.6, "{t}");
        assert_eq!(accuracy(&scored, t), 1.0);
    }

    #[test]
    fn far_threshold_allows_the_given_share_of_impostors() {
        let impostor: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        let (t, tar) = at_far(&[0.9995, 0.5], &impostor, 1e-3);
        assert_eq!(t, 0.998);
        assert_eq!(tar, 0.5);
    }
}
