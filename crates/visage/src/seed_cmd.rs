//! `visage seed`: fill a store with synthetic persons through the store layer, for load
//! benchmarks (enrolment speed is not what they measure). With `--faces-from`, the persons
//! carry real faces (embedding, thumbnail and kept crop of photos in a folder of person
//! folders, such as LFW's, used in turn), so that `visage reembed` has real crops to embed.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use image::RgbImage;
use store::{ClientId, NewFace, NewPerson, PersonStatus};

use crate::progress::Progress;

#[derive(Args)]
pub struct SeedArgs {
    #[arg(long, env = "VISAGE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    #[arg(long)]
    pub client: String,
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Write the new person ids here, one per line.
    #[arg(long)]
    pub ids_out: Option<PathBuf>,
    #[command(flatten)]
    pub database: crate::serve_cmd::DatabaseArgs,
    /// Real faces instead of random vectors: the largest face of each `*.jpg` in this
    /// folder's sub-folders (LFW's layout), by SFace, each used for many persons in turn.
    #[arg(long)]
    pub faces_from: Option<PathBuf>,
    /// At most this many photos are read from `--faces-from`.
    #[arg(long, default_value_t = 1_000)]
    pub faces_limit: usize,
    #[command(flatten)]
    pub models: crate::ModelsArgs,
}

/// The faces persons are given, one after the other.
enum FaceSource {
    Random(Noise),
    Real(Vec<NewFace>),
}

impl FaceSource {
    fn open(args: &SeedArgs) -> anyhow::Result<FaceSource> {
        let Some(root) = &args.faces_from else {
            return Ok(FaceSource::Random(Noise(
                0x9E37_79B9_7F4A_7C15 ^ args.count as u64,
            )));
        };
        let pipeline = vision::Pipeline::load(&args.models.models_dir, Default::default())?;
        let mut faces = Vec::new();
        'folders: for folder in crate::eval_lfw::person_folders(root)? {
            for image in crate::eval_lfw::folder_images(&folder)? {
                if faces.len() >= args.faces_limit {
                    break 'folders;
                }
                let img = pipeline.decode(&std::fs::read(&image)?)?;
                if let Some(face) = pipeline.largest_face(&img)? {
                    faces.push(NewFace {
                        model: store::DEFAULT_MODEL.into(),
                        embedding: face.embedding.as_slice().to_vec(),
                        thumbnail_jpeg: face.thumbnail_jpeg,
                        crop_png: face.crop_png,
                    });
                }
            }
        }
        anyhow::ensure!(!faces.is_empty(), "no face found under {}", root.display());
        eprintln!("seeding with {} real faces, in turn", faces.len());
        Ok(FaceSource::Real(faces))
    }

    fn face(&mut self, i: usize) -> anyhow::Result<NewFace> {
        Ok(match self {
            FaceSource::Random(noise) => NewFace {
                model: store::DEFAULT_MODEL.into(),
                embedding: (0..store::EMBEDDING_DIM).map(|_| noise.unit()).collect(),
                thumbnail_jpeg: thumbnail(noise)?,
                crop_png: Vec::new(),
            },
            FaceSource::Real(faces) => faces[i % faces.len()].clone(),
        })
    }
}

/// A small xorshift generator: synthetic data needs no cryptographic randomness.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

fn thumbnail(noise: &mut Noise) -> anyhow::Result<Vec<u8>> {
    let img = RgbImage::from_fn(112, 112, |_, _| {
        let v = noise.next();
        image::Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&img)?;
    Ok(out)
}

/// Persons written per transaction.
const SEED_BATCH: usize = 10_000;

pub fn run(args: &SeedArgs) -> anyhow::Result<()> {
    let client = ClientId::parse(&args.client).map_err(|e| anyhow::anyhow!("bad --client: {e}"))?;
    let mut faces = FaceSource::open(args)?;
    let mut person = |i: usize| -> anyhow::Result<NewPerson> {
        Ok(NewPerson {
            name: format!("Seeded Person {}", i + 1).replace(char::is_numeric, ""),
            gender: None,
            date_of_birth: None,
            nationality: None,
            notes: Some(format!("seed {i}")),
            status: PersonStatus::Active,
            collections: Vec::new(),
            faces: vec![faces.face(i)?],
        })
    };
    let runtime = crate::serve_cmd::runtime()?;
    let open = runtime.block_on(
        args.database
            .open(&args.data_dir, service::Access::Exclusive),
    )?;
    let store = &open.store;
    let started = std::time::Instant::now();
    let progress = Progress::new("seeding persons", args.count as u64);
    let mut ids = Vec::with_capacity(args.count);
    // Made a batch at a time: real faces keep a crop of ~20 KB each.
    for first in (0..args.count).step_by(SEED_BATCH) {
        let batch = (first..args.count.min(first + SEED_BATCH))
            .map(&mut person)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let n = batch.len() as u64;
        ids.extend(runtime.block_on(store.seed_persons(&client, batch))?);
        progress.advance(n);
    }
    progress.finish();
    eprintln!(
        "seeded {} persons in {:.1} s",
        ids.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.ids_out {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        for id in &ids {
            writeln!(f, "{id}")?;
        }
        f.flush()?;
    }
    Ok(())
}
