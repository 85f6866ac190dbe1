//! Request images to faces: the checks Verifik makes on image strings, the fetch of allowed
//! image URLs (outside the CPU pool), then the vision pipeline on the CPU pool.

use std::sync::Arc;

use image::RgbImage;
use vision::{largest, Detection, Embedding, Face, Pipeline, ScoreMap};

use store::ClientId;

use crate::cpu::CpuPool;
use crate::error::{Error, ImageError, Result};
use crate::image_url::{is_url, ImageFetcher};

/// Strings shorter than this cannot be an image; Verifik answers `only_images_in_base64`.
const MIN_IMAGE_CHARS: usize = 100;

/// Refuses, before any work, what cannot be an image: a short string, or a URL when no
/// URL is allowed.
fn check_image_string(s: &str, urls_enabled: bool) -> Result<()> {
    let t = s.trim();
    if is_url(t) {
        return match urls_enabled {
            true => Ok(()),
            false => Err(Error::Image(ImageError::UrlsDisabled)),
        };
    }
    if t.len() < MIN_IMAGE_CHARS {
        return Err(Error::Image(ImageError::NotBase64));
    }
    Ok(())
}

/// An image as the request gave it, or as its URL answered.
enum Source {
    Text(String),
    Fetched(Vec<u8>),
}

impl Source {
    fn decode(&self, pipeline: &Pipeline) -> vision::Result<RgbImage> {
        match self {
            Source::Text(text) => pipeline.decode_base64(text),
            Source::Fetched(bytes) => pipeline.decode(bytes),
        }
    }
}

/// The face pipeline, the pool it runs on, and the fetcher of allowed image URLs.
#[derive(Clone)]
pub(crate) struct Faces {
    pub pipeline: Arc<Pipeline>,
    pub cpu: CpuPool,
    pub urls: Arc<ImageFetcher>,
}

impl Faces {
    /// The id of the model that embeds faces here.
    pub fn model(&self) -> &str {
        &self.pipeline.embedder().id
    }

    /// The model's map from cosine to score.
    pub fn scores(&self) -> &ScoreMap {
        &self.pipeline.embedder().score_map
    }

    /// Checks every string, then decodes each image and applies `per_image` (with the image's
    /// index) to it on the CPU pool, in one job; the first failure fails the whole call.
    async fn each_image<T, F>(
        &self,
        client: &ClientId,
        images: &[&str],
        per_image: F,
    ) -> Result<Vec<T>>
    where
        T: Send + 'static,
        F: Fn(&Pipeline, usize, &RgbImage) -> Result<T> + Send + 'static,
    {
        for s in images {
            check_image_string(s, self.urls.enabled())?;
        }
        let sources = self.sources(images).await?;
        let pipeline = self.pipeline.clone();
        self.cpu
            .run(client, move || {
                sources
                    .iter()
                    .enumerate()
                    .map(|(i, source)| per_image(&pipeline, i, &source.decode(&pipeline)?))
                    .collect()
            })
            .await
    }

    /// The images, with the URLs among them fetched (all at once, before the CPU pool).
    async fn sources(&self, images: &[&str]) -> Result<Vec<Source>> {
        let urls: Vec<String> = images
            .iter()
            .filter(|s| is_url(s))
            .map(|s| s.trim().to_owned())
            .collect();
        let mut fetched = match urls.is_empty() {
            true => Vec::new(),
            false => self.urls.fetch_all(urls).await?,
        }
        .into_iter();
        images
            .iter()
            .map(|s| match is_url(s) {
                true => fetched
                    .next()
                    .map(Source::Fetched)
                    .ok_or_else(|| Error::internal("fewer fetched images than urls")),
                false => Ok(Source::Text(s.to_string())),
            })
            .collect()
    }

    /// Fails early, before any image work, when liveness is asked for and not installed.
    pub fn require_liveness(&self) -> Result<()> {
        match self.pipeline.liveness() {
            Some(_) => Ok(()),
            None => Err(Error::LivenessUnavailable),
        }
    }

    /// The largest face of each image; an image without a face fails the call.
    pub async fn largest_faces(&self, client: &ClientId, images: &[&str]) -> Result<Vec<Face>> {
        self.each_image(client, images, |p, _, img| {
            p.largest_face(img)?.ok_or(Error::NoFace)
        })
        .await
    }

    /// The live score of the largest face of one image.
    pub async fn liveness(&self, client: &ClientId, image: &str) -> Result<f32> {
        self.require_liveness()?;
        let mut scores = self
            .each_image(client, &[image], |p, _, img| {
                live_score(p, img, &largest_detection(p, img)?)
            })
            .await?;
        scores.pop().ok_or(Error::NoFace)
    }

    /// The largest face of each image, and the live score of the first image's face (the
    /// live capture, where a use case takes one).
    pub async fn largest_faces_first_live(
        &self,
        client: &ClientId,
        images: &[&str],
    ) -> Result<(Vec<Face>, f32)> {
        self.require_liveness()?;
        let scored = self
            .each_image(client, images, |p, i, img| {
                let detection = largest_detection(p, img)?;
                let live = if i == 0 {
                    Some(live_score(p, img, &detection)?)
                } else {
                    None
                };
                Ok((p.face(img, &detection)?, live))
            })
            .await?;
        let live = scored.first().and_then(|s| s.1).ok_or(Error::NoFace)?;
        Ok((scored.into_iter().map(|s| s.0).collect(), live))
    }

    /// One embedding for 1-3 images of the same person: the normalised mean of their
    /// largest faces' embeddings.
    pub async fn probe(&self, client: &ClientId, images: &[&str]) -> Result<Embedding> {
        let faces = self.largest_faces(client, images).await?;
        combine(faces.iter().map(|f| &f.embedding))
    }

    /// Like [`Self::probe`], for tight face crops: an image in which no face is detected is
    /// taken to be the face itself, resized to the embedder's input.
    pub async fn crop_probe(&self, client: &ClientId, images: &[&str]) -> Result<Embedding> {
        let embeddings = self
            .each_image(client, images, |p, _, img| {
                Ok(match p.largest_face(img)? {
                    Some(face) => face.embedding,
                    None => p.embed_crop(img)?,
                })
            })
            .await?;
        combine(embeddings.iter())
    }

    /// The first `max_faces` faces of one image, best detection score first; the first
    /// `embedded` of them with their embeddings.
    pub async fn all_faces(
        &self,
        client: &ClientId,
        image: &str,
        max_faces: usize,
        embedded: usize,
    ) -> Result<Vec<(Detection, Option<Embedding>)>> {
        let mut per_image = self
            .each_image(client, &[image], move |p, _, img| {
                let mut faces = p.detect(img)?;
                faces.truncate(max_faces);
                faces
                    .into_iter()
                    .enumerate()
                    .map(|(i, d)| {
                        let embedding = if i < embedded {
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
}

/// The live score of an image's largest face.
fn live_score(p: &Pipeline, img: &RgbImage, face: &Detection) -> Result<f32> {
    let liveness = p.liveness().ok_or(Error::LivenessUnavailable)?;
    Ok(liveness.score(img, face)?)
}

fn largest_detection(p: &Pipeline, img: &RgbImage) -> Result<Detection> {
    largest(&p.detect(img)?).cloned().ok_or(Error::NoFace)
}

/// The normalised mean of several embeddings of one person.
pub(crate) fn combine<'a>(
    embeddings: impl IntoIterator<Item = &'a Embedding>,
) -> Result<Embedding> {
    // Only fails if embeddings of one person cancel out exactly, which real faces do not.
    Embedding::mean(embeddings).ok_or(Error::NoFace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_and_urls_are_refused_before_decoding() {
        assert!(matches!(
            check_image_string("abc", false),
            Err(Error::Image(ImageError::NotBase64))
        ));
        assert!(matches!(
            check_image_string("https://example.com/face.jpg", false),
            Err(Error::Image(ImageError::UrlsDisabled))
        ));
        assert!(check_image_string("https://example.com/face.jpg", true).is_ok());
        assert!(check_image_string(&"A".repeat(200), false).is_ok());
    }
}
