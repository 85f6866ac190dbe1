//! Request images to faces: the checks Verifik makes on image strings, then the vision
//! pipeline on the CPU pool.

use std::sync::Arc;

use vision::{Face, Pipeline};

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

/// The largest face of each image, all or nothing: any image without a face, or that is
/// not an image, fails the whole call.
pub async fn largest_faces(
    pipeline: &Arc<Pipeline>,
    cpu: &CpuPool,
    images: &[&str],
) -> Result<Vec<Face>, ApiError> {
    for s in images {
        check_image_string(s)?;
    }
    let owned: Vec<String> = images.iter().map(|s| s.to_string()).collect();
    let pipeline = pipeline.clone();
    cpu.run(move || {
        owned
            .iter()
            .map(|text| {
                let img = pipeline.decode_base64(text)?;
                pipeline.largest_face(&img)?.ok_or(ApiError::NoFaceDetected)
            })
            .collect()
    })
    .await
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
