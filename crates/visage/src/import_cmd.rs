//! `visage import --embeddings FILE`: bulk-load face embeddings as persons (one face each),
//! for benchmarks at 10^5-10^6 faces and for migrations from another system's vectors.
//! Run it while the server is stopped; the server builds its index from the store at start.

use std::io::{BufReader, Read};
use std::path::PathBuf;

use crate::progress::Progress;

use anyhow::{bail, Context};
use clap::Args;
use store::{ClientId, CollectionId, NewFace, NewPerson, PersonStatus};

#[derive(Args)]
pub struct ImportArgs {
    #[arg(long, env = "VISAGE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    #[arg(long)]
    pub client: String,
    /// Raw little-endian f32 values, 128 per face (what `visage bench index --export` writes).
    /// Each row is normalised to unit length; rows that are all zero or not finite are refused.
    #[arg(long)]
    pub embeddings: PathBuf,
    /// Put every imported person in this (existing) collection.
    #[arg(long)]
    pub collection: Option<String>,
    /// On PostgreSQL: drop the faces' HNSW index first and build it again at the end (in
    /// the time reported), much faster than keeping it up to date row by row for a large
    /// import; FAST searches by other nodes are exact meanwhile.
    #[arg(long)]
    pub rebuild_search_index: bool,
    /// Persons per transaction.
    #[arg(long, default_value_t = 20_000)]
    pub batch: usize,
    #[command(flatten)]
    pub database: crate::serve_cmd::DatabaseArgs,
}

/// A 16x16 mid-grey JPEG: imported faces come without a picture, and the store keeps one
/// thumbnail per face.
fn placeholder_thumbnail() -> anyhow::Result<Vec<u8>> {
    let img = image::RgbImage::from_pixel(16, 16, image::Rgb([128, 128, 128]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 75).encode_image(&img)?;
    Ok(out)
}

fn unit(row: &[u8]) -> Option<Vec<f32>> {
    let v: Vec<f32> = row
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    (norm.is_finite() && norm > 0.0).then(|| v.into_iter().map(|x| x / norm).collect())
}

pub fn run(args: &ImportArgs) -> anyhow::Result<()> {
    let client = ClientId::parse(&args.client).map_err(|e| anyhow::anyhow!("bad --client: {e}"))?;
    let collection = args
        .collection
        .as_deref()
        .map(CollectionId::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("bad --collection: {e}"))?;
    let row_bytes = store::EMBEDDING_DIM * 4;
    let file = std::fs::File::open(&args.embeddings)
        .with_context(|| format!("opening {}", args.embeddings.display()))?;
    let len = file.metadata()?.len() as usize;
    if len == 0 || !len.is_multiple_of(row_bytes) {
        bail!(
            "{}: {len} bytes is not a whole number of {row_bytes}-byte rows",
            args.embeddings.display()
        );
    }
    let rows = len / row_bytes;
    let runtime = crate::serve_cmd::runtime()?;
    let open = runtime.block_on(
        args.database
            .open(&args.data_dir, service::Access::Exclusive),
    )?;
    let store = &open.store;
    let rebuild = match (args.rebuild_search_index, open.postgres()) {
        (true, Some(pg)) => Some(pg.clone()),
        (true, None) => bail!("--rebuild-search-index is for --database (PostgreSQL)"),
        (false, _) => None,
    };
    let thumbnail = placeholder_thumbnail()?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let started = std::time::Instant::now();
    if let Some(pg) = &rebuild {
        runtime.block_on(pg.drop_face_index())?;
    }
    let progress = Progress::new("importing rows", rows as u64);
    let mut done = 0;
    let mut row = vec![0u8; row_bytes];
    while done < rows {
        let take = args.batch.max(1).min(rows - done);
        let mut persons = Vec::with_capacity(take);
        for i in done..done + take {
            reader.read_exact(&mut row)?;
            let embedding = unit(&row).with_context(|| format!("row {i} is zero or not finite"))?;
            persons.push(NewPerson {
                name: "Imported Person".to_owned(),
                notes: Some(format!("import row {i}")),
                status: PersonStatus::Active,
                collections: collection.iter().cloned().collect(),
                faces: vec![NewFace {
                    model: store::DEFAULT_MODEL.into(),
                    embedding,
                    thumbnail_jpeg: thumbnail.clone(),
                    crop_png: Vec::new(),
                }],
                ..NewPerson::default()
            });
        }
        runtime.block_on(store.seed_persons(&client, persons))?;
        done += take;
        progress.advance(take as u64);
    }
    progress.finish();
    if let Some(pg) = &rebuild {
        let t = std::time::Instant::now();
        runtime.block_on(pg.build_face_index(1024))?;
        eprintln!("search index built in {:.1} s", t.elapsed().as_secs_f64());
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("imported {rows} persons in {seconds:.1} s");
    println!("faces_per_s {:.0}", rows as f64 / seconds.max(1e-9));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_normalised_and_degenerate_rows_refused() {
        let mut row: Vec<u8> = Vec::new();
        for i in 0..store::EMBEDDING_DIM {
            row.extend_from_slice(&(if i == 3 { 2.0f32 } else { 0.0 }).to_le_bytes());
        }
        let v = unit(&row).expect("unit");
        assert_eq!(v[3], 1.0);
        assert!(unit(&vec![0u8; row.len()]).is_none());
        let nan: Vec<u8> = std::iter::repeat_n(f32::NAN.to_le_bytes(), store::EMBEDDING_DIM)
            .flatten()
            .collect();
        assert!(unit(&nan).is_none());
    }
}
