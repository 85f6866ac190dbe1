//! The whole path from caller bytes to embeddings, with the models loaded once.

use std::path::Path;
use std::time::{Duration, Instant};

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::imageops::{self, FilterType};
use image::RgbImage;
use image::{ImageEncoder, ImageFormat};

use crate::align::{align_face_to, ALIGNED_SIDE, SFACE_TARGET, TEMPLATE};
use crate::decode::{decode_base64, decode_image, DecodeLimits};
use crate::descriptor::EmbedderDescriptor;
use crate::detect::{Detection, Detector, DetectorConfig};
use crate::embed::{Embedder, Embedding};
use crate::error::{Error, Result};
use crate::liveness::Liveness;
use crate::models::{read_verified, DETECTOR_FILE};
use crate::onnx::{resolve, EngineChoice, ResolvedEngine};
use crate::stage;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PipelineConfig {
    pub limits: DecodeLimits,
    pub detector: DetectorConfig,
    /// Average the embedding of each face with that of its mirror image. Off by default:
    /// on LFW it moved accuracy from 99.47% to 99.53% for twice the embedding time.
    /// Embeddings made with and without it should not be mixed in one gallery.
    pub flip_average: bool,
    pub thumbnail_quality: u8,
    pub engine: EngineChoice,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            limits: DecodeLimits::default(),
            detector: DetectorConfig::default(),
            flip_average: false,
            thumbnail_quality: 85,
            engine: EngineChoice::Auto,
        }
    }
}

/// One face, ready to store or compare.
#[derive(Debug, Clone)]
pub struct Face {
    pub detection: Detection,
    pub embedding: Embedding,
    /// The aligned face (at the embedder's input size) as JPEG.
    pub thumbnail_jpeg: Vec<u8>,
    /// The face aligned to the 112x112 five-point template whatever the embedder, as
    /// lossless PNG: what re-embedding by another model starts from.
    pub crop_png: Vec<u8>,
}

/// Time spent in each stage of one image, for benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    pub decode: Duration,
    pub detect: Duration,
    pub align: Duration,
    pub embed: Duration,
}

/// Decoding, detection, alignment and embedding. `Send + Sync`: share one per process.
pub struct Pipeline {
    detector: Detector,
    embedder: Embedder,
    /// `None` when the optional liveness models are not installed.
    liveness: Option<Liveness>,
    config: PipelineConfig,
    engine: ResolvedEngine,
}

impl Pipeline {
    /// Loads the face models from `models_dir` (SFace as the embedder), and the liveness
    /// models when they are installed, verifying every file against `models.lock`, on the
    /// engine `config` names.
    pub fn load(models_dir: &Path, config: PipelineConfig) -> Result<Self> {
        Self::load_with_embedder(models_dir, config, &EmbedderDescriptor::sface())
    }

    /// As [`Pipeline::load`], with the embedder `descriptor` describes; refused unless its
    /// file has the declared sha256 and gives the declared dimension.
    pub fn load_with_embedder(
        models_dir: &Path,
        config: PipelineConfig,
        descriptor: &EmbedderDescriptor,
    ) -> Result<Self> {
        let engine = resolve(config.engine, models_dir)?;
        let det_path = models_dir.join(DETECTOR_FILE);
        let detector = Detector::from_bytes(
            engine.engine,
            &det_path,
            &read_verified(models_dir, DETECTOR_FILE)?,
            config.detector,
        )?;
        let (emb_path, bytes) = if descriptor.file.is_relative() {
            // The built-in descriptor: its model is a locked file of the models directory.
            let name = descriptor.file.to_string_lossy();
            (
                models_dir.join(&descriptor.file),
                read_verified(models_dir, &name)?,
            )
        } else {
            let path = descriptor.file.clone();
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            (path, bytes)
        };
        let embedder = Embedder::load(engine.engine, descriptor, &emb_path, &bytes)?;
        Ok(Pipeline {
            detector,
            embedder,
            liveness: Liveness::load(engine.engine, models_dir)?,
            config,
            engine,
        })
    }

    /// The engine running the models, and what was loaded or why `auto` chose tract.
    pub fn engine(&self) -> &ResolvedEngine {
        &self.engine
    }

    /// The embedding model's descriptor: its id, dimension and score map.
    pub fn embedder(&self) -> &EmbedderDescriptor {
        self.embedder.descriptor()
    }

    /// The liveness models, if installed.
    pub fn liveness(&self) -> Option<&Liveness> {
        self.liveness.as_ref()
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// Base64 text (or a `data:` URI) to upright RGB pixels.
    pub fn decode_base64(&self, text: &str) -> Result<RgbImage> {
        stage::timed(stage::DECODE, || {
            let bytes = decode_base64(text, &self.config.limits)?;
            Ok(decode_image(&bytes, &self.config.limits)?)
        })
    }

    /// Encoded image bytes to upright RGB pixels.
    pub fn decode(&self, bytes: &[u8]) -> Result<RgbImage> {
        stage::timed(stage::DECODE, || {
            Ok(decode_image(bytes, &self.config.limits)?)
        })
    }

    /// Every face in the image, best score first.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        stage::timed(stage::DETECT, || self.detector.detect(img))
    }

    /// The aligned crop of one detected face, as the embedder wants it.
    pub fn align(&self, img: &RgbImage, face: &Detection) -> Result<RgbImage> {
        let target = self.embedder().align_target();
        stage::timed(stage::ALIGN, || {
            align_face_to(img, &face.landmarks, &target)
        })
        .ok_or_else(|| Error::Inference("degenerate landmarks".into()))
    }

    /// The embedding of an aligned face (averaged with its mirror image if configured).
    pub fn embed_aligned(&self, aligned: &RgbImage) -> Result<Embedding> {
        stage::timed(stage::EMBED, || self.embed_untimed(aligned))
    }

    fn embed_untimed(&self, aligned: &RgbImage) -> Result<Embedding> {
        let direct = self.embedder.embed(aligned, false)?;
        if !self.config.flip_average {
            return Ok(direct);
        }
        let mirrored = self.embedder.embed(aligned, true)?;
        Embedding::mean([&direct, &mirrored])
            .ok_or_else(|| Error::Inference("embedding and its mirror cancel out".into()))
    }

    /// Embeds an image that is itself a tight face crop (no detection, no landmarks):
    /// the fallback for crops too tight for the detector.
    pub fn embed_crop(&self, crop: &RgbImage) -> Result<Embedding> {
        let side = self.embedder().input_size;
        let resized = imageops::resize(crop, side, side, FilterType::Triangle);
        self.embed_aligned(&resized)
    }

    /// Aligns, embeds and thumbnails one detected face, and keeps its crop.
    pub fn face(&self, img: &RgbImage, detection: &Detection) -> Result<Face> {
        let aligned = self.align(img, detection)?;
        let crop = if self.embedder().align_target() == SFACE_TARGET {
            aligned.clone()
        } else {
            align_face_to(img, &detection.landmarks, &SFACE_TARGET)
                .ok_or_else(|| Error::Inference("degenerate landmarks".into()))?
        };
        Ok(Face {
            detection: detection.clone(),
            embedding: self.embed_aligned(&aligned)?,
            thumbnail_jpeg: self.thumbnail(&aligned)?,
            crop_png: encode_png(&crop)?,
        })
    }

    /// Embeds a kept crop ([`Face::crop_png`]): warped from the 112x112 template to this
    /// embedder's, when they differ.
    pub fn embed_kept_crop(&self, png: &[u8]) -> Result<Embedding> {
        let crop = image::load_from_memory_with_format(png, ImageFormat::Png)
            .map_err(|e| Error::Crop(e.to_string()))?
            .to_rgb8();
        if crop.dimensions() != (ALIGNED_SIDE, ALIGNED_SIDE) {
            return Err(Error::Crop(format!(
                "{:?} is not 112x112",
                crop.dimensions()
            )));
        }
        let target = self.embedder().align_target();
        let aligned = if target == SFACE_TARGET {
            crop
        } else {
            align_face_to(&crop, &TEMPLATE, &target)
                .ok_or_else(|| Error::Crop("cannot warp the template".into()))?
        };
        self.embed_aligned(&aligned)
    }

    /// The largest face of the image, if any.
    pub fn largest_face(&self, img: &RgbImage) -> Result<Option<Face>> {
        let faces = self.detect(img)?;
        match largest(&faces) {
            Some(d) => Ok(Some(self.face(img, d)?)),
            None => Ok(None),
        }
    }

    /// Runs every stage on encoded bytes and reports how long each took.
    pub fn timed_largest_face(&self, bytes: &[u8]) -> Result<(Option<Embedding>, StageTimes)> {
        let mut times = StageTimes::default();
        let t = Instant::now();
        let img = self.decode(bytes)?;
        times.decode = t.elapsed();
        let t = Instant::now();
        let faces = self.detect(&img)?;
        times.detect = t.elapsed();
        let Some(face) = largest(&faces) else {
            return Ok((None, times));
        };
        let t = Instant::now();
        let aligned = self.align(&img, face)?;
        times.align = t.elapsed();
        let t = Instant::now();
        let embedding = self.embed_aligned(&aligned)?;
        times.embed = t.elapsed();
        Ok((Some(embedding), times))
    }

    fn thumbnail(&self, aligned: &RgbImage) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, self.config.thumbnail_quality)
            .encode_image(aligned)
            .map_err(|e| Error::Thumbnail(e.to_string()))?;
        Ok(out)
    }
}

/// Lossless PNG of an aligned face.
fn encode_png(img: &RgbImage) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| Error::Crop(e.to_string()))?;
    Ok(out)
}

/// The detection with the largest box.
pub fn largest(faces: &[Detection]) -> Option<&Detection> {
    faces
        .iter()
        .max_by(|a, b| a.bbox.area().total_cmp(&b.bbox.area()))
}
