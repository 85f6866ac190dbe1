//! Request images to faces: the checks Verifik makes on image strings, then the vision
//! pipeline on the CPU pool.

use std::sync::Arc;

use image::RgbImage;
use vision::{largest, Detection, Embedding, Face, Pipeline};

use crate::cpu::CpuPool;
use crate::error::ApiError;

/// Strings shorter than this cannot be an image; Verifik answers `only_images_in_base64`.
const MIN_IMAGE_CHARS: usize = 100;

fn check_image_string(s: &str) -> Result<(), ApiError> {
    let t = s.trim();
    if t.starts_with("http://") || t.starts_with("https://") {
        return Err(ApiError::ImageUrlsDisabled);
    }
    if t.len() < MIN_IMAGE_CHARS {
        return Err(ApiError::NotBase64);
    }
    Ok(())
}

/// Checks every string, then decodes each image and applies `per_image` (with the image's
/// index) to it on the CPU pool, in one job; the first failure fails the whole call.
async fn each_image<T, F>(
    pipeline: &Arc<Pipeline>,
    cpu: &CpuPool,
    images: &[&str],
    per_image: F,
) -> Result<Vec<T>, ApiError>
where
    T: Send + 'static,
    F: Fn(&Pipeline, usize, &RgbImage) -> Result<T, ApiError> + Send + 'static,
{
    for s in images {
        check_image_string(s)?;
    }
    let owned: Vec<String> = images.iter().map(|s| s.to_string()).collect();
    let pipeline = pipeline.clone();
    cpu.run(move || {
        owned
            .iter()
            .enumerate()
            .map(|(i, text)| per_image(&pipeline, i, &pipeline.decode_base64(text)?))
            .collect()
    })
    .await
}

/// The largest face of each image; an image without a face fails the call.
pub async fn largest_faces(
    pipeline: &Arc<Pipeline>,
    cpu: &CpuPool,
    images: &[&str],
) -> Result<Vec<Face>, ApiError> {
    each_image(pipeline, cpu, images, |p, _, img| {
        p.largest_face(img)?.ok_or(ApiError::NoFaceDetected)
    })
    .await
}

/// The live score of an image's largest face. `LivenessNotAvailable` without the models.
fn live_score(p: &Pipeline, img: &RgbImage, face: &Detection) -> Result<f32, ApiError> {
    let liveness = p.liveness().ok_or(ApiError::LivenessNotAvailable)?;
    Ok(liveness.score(img, face)?)
}

fn largest_detection(p: &Pipeline, img: &RgbImage) -> Result<Detection, ApiError> {
    largest(&p.detect(img)?)
        .cloned()
        .ok_or(ApiError::NoFaceDetected)
}

/// The live score of the largest face of one image.
pub async fn liveness(
    pipeline: &Arc<Pipeline>,
    cpu: &CpuPool,
    image: &str,
) -> Result<f32, ApiError> {
    if pipeline.liveness().is_none() {
        return Err(ApiError::LivenessNotAvailable);
    }
    let mut scores = each_image(pipeline, cpu, &[image], |p, _, img| {
        live_score(p, img, &largest_detection(p, img)?)
    })
    .await?;
    scores.pop().ok_or(ApiError::NoFaceDetected)
}

/// The largest face of each image, and the live score of the first image's face (the live
/// capture, where an endpoint takes one).
pub async fn largest_faces_first_live(
    pipeline: &Arc<Pipeline>,
    cpu: &CpuPool,
    images: &[&str],
) -> Result<(Vec<Face>, f32), ApiError> {
    if pipeline.liveness().is_none() {
        return Err(ApiError::LivenessNotAvailable);
    }
    let scored = each_image(pipeline, cpu, images, |p, i, img| {
        let detection = largest_detection(p, img)?;
        let live = if i == 0 {
            Some(live_score(p, img, &detection)?)
        } else {
            None
        };
        Ok((p.face(img, &detection)?, live))
    })
    .await?;
    let live = scored
        .first()
        .and_then(|s| s.1)
        .ok_or(ApiError::NoFaceDetected)?;
    Ok((scored.into_iter().map(|s| s.0).collect(), live))
}

/// One embedding for 1-3 images of the same person: the normalised mean of their largest
/// faces' embeddings.
pub async fn probe(
    pipeline: &Arc<Pipeline>,
    cpu: &CpuPool,
    images: &[&str],
) -> Result<Embedding, ApiError> {
    let faces = largest_faces(pipeline, cpu, images).await?;
    combine(faces.iter().map(|f| &f.embedding))
}

/// Like [`probe`], for tight face crops: an image in which no face is detected is taken to
/// be the face itself, resized to the embedder's input.
pub async fn crop_probe(
    pipeline: &Arc<Pipeline>,
    cpu: &CpuPool,
    images: &[&str],
) -> Result<Embedding, ApiError> {
    let embeddings = each_image(pipeline, cpu, images, |p, _, img| {
        Ok(match p.largest_face(img)? {
            Some(face) => face.embedding,
            None => p.embed_crop(img)?,
        })
    })
    .await?;
    combine(embeddings.iter())
}

fn combine<'a>(embeddings: impl IntoIterator<Item = &'a Embedding>) -> Result<Embedding, ApiError> {
    // Only fails if embeddings of one person cancel out exactly, which real faces do not.
    Embedding::mean(embeddings).ok_or(ApiError::NoFaceDetected)
}

/// Every face of one image, best detection score first, each with its embedding when
/// `embed` is set.
pub async fn all_faces(
    pipeline: &Arc<Pipeline>,
    cpu: &CpuPool,
    image: &str,
    embed: bool,
) -> Result<Vec<(Detection, Option<Embedding>)>, ApiError> {
    let mut per_image = each_image(pipeline, cpu, &[image], move |p, _, img| {
        p.detect(img)?
            .into_iter()
            .map(|d| {
                let embedding = if embed {
                    Some(p.embed_aligned(&p.align(img, &d)?)?)
                } else {
                    None
                };
                Ok((d, embedding))
            })
            .collect()
    })
    .await?;
    Ok(per_image.pop().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_and_urls_are_refused_before_decoding() {
        assert!(matches!(
            check_image_string("abc"),
            Err(ApiError::NotBase64)
        ));
        assert!(matches!(
            check_image_string("https://example.com/face.jpg"),
            Err(ApiError::ImageUrlsDisabled)
        ));
        assert!(check_image_string(&"A".repeat(200)).is_ok());
    }
}
