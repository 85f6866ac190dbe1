//! `visage eval lfw-embeddings`: every LFW image through the real pipeline (the subject is
//! the face nearest the image centre, as in `visage eval lfw`), written as raw little-endian
//! f32 rows to FILE and, one line per row, `identity_number detected` to FILE.labels
//! (identities numbered in folder-name order; no names are written). The output is face
//! data: keep it outside the repository.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use rayon::prelude::*;

use crate::eval_lfw::{embed_image, folder_images, person_folders, Outcome};
use crate::progress::Progress;
use crate::PipelineArgs;

#[derive(Args)]
pub struct LfwEmbeddingsArgs {
    /// LFW root: one folder per person holding `Name_0001.jpg`, ...
    #[arg(long)]
    pub dataset: PathBuf,
    /// Where to write the embeddings (FILE.labels is written beside it).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

/// Every `.jpg` under each person folder, with the folder's number in name order.
fn images(root: &Path) -> anyhow::Result<Vec<(usize, PathBuf)>> {
    let mut out = Vec::new();
    for (identity, dir) in person_folders(root)?.iter().enumerate() {
        let files = folder_images(dir)?;
        out.extend(files.into_iter().map(|f| (identity, f)));
    }
    if out.is_empty() {
        bail!("no person folders with .jpg images in {}", root.display());
    }
    Ok(out)
}

pub fn run(args: &LfwEmbeddingsArgs) -> anyhow::Result<()> {
    let images = images(&args.dataset)?;
    let pipeline = args.pipeline.load()?;
    let started = Instant::now();
    let progress = Progress::new("embedding images", images.len() as u64);
    let rows: Vec<(usize, bool, Vec<f32>)> = images
        .par_iter()
        .map(|(identity, path)| {
            let (detected, embedding) = match embed_image(&pipeline, path, None)? {
                Outcome::Detected(e) => (true, e),
                Outcome::CentreCrop(e) => (false, e),
            };
            progress.advance(1);
            Ok((*identity, detected, embedding.as_slice().to_vec()))
        })
        .collect::<anyhow::Result<_>>()?;
    progress.finish();
    let mut bytes = Vec::with_capacity(rows.len() * 128 * 4);
    let mut labels = String::new();
    for (identity, detected, v) in &rows {
        bytes.extend(v.iter().flat_map(|x| x.to_le_bytes()));
        writeln!(labels, "{identity} {}", u8::from(*detected))?;
    }
    std::fs::write(&args.out, bytes).with_context(|| format!("writing {}", args.out.display()))?;
    let labels_path = args.out.with_extension("labels");
    std::fs::write(&labels_path, labels)
        .with_context(|| format!("writing {}", labels_path.display()))?;
    println!(
        "wrote {} embeddings ({} without a detected face) to {} and {}; images_per_s {:.1}",
        rows.len(),
        rows.iter().filter(|r| !r.1).count(),
        args.out.display(),
        labels_path.display(),
        rows.len() as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}
