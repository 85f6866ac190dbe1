//! Caller bytes to pixels: base64 / `data:` URIs, format sniffing, size and shape limits
//! checked before any pixel is decoded, EXIF orientation, and conversion to 8-bit RGB.

use std::io::Cursor;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use crate::detect::{DetectorConfig, MIN_FACE_SIDE};
use crate::error::DecodeError;

/// Bounds on what a caller may make us decode. Checked against the encoded size and
/// the header's dimensions, so a small file claiming huge dimensions, or a shape no face
/// fits in, costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    pub max_encoded_bytes: usize,
    pub max_pixels: u64,
    pub max_side: u32,
    /// Images whose shorter side is under this many pixels hold no face.
    pub min_side: u32,
    /// Images whose longer side is more than this many times the shorter hold no face.
    pub max_aspect_ratio: u32,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_encoded_bytes: 10 * 1024 * 1024,
            max_pixels: 40_000_000,
            max_side: 12_000,
            // A face needs MIN_FACE_SIDE (10) px at the detector's input. The shorter side
            // holds one only if it has that many pixels in the image (enlarging adds no
            // detail) and still has them once the longer side is shrunk to the detector's
            // 640 px: a ratio of at most 640 / 10 = 64.
            min_side: MIN_FACE_SIDE,
            max_aspect_ratio: DetectorConfig::default().max_input_side / MIN_FACE_SIDE,
        }
    }
}

fn lenient_engine(alphabet: &alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
}

/// Decodes raw base64 (standard or URL-safe, padded or not, line breaks allowed) or a
/// `data:<mime>;base64,` URI into the encoded image bytes.
pub fn decode_base64(text: &str, limits: &DecodeLimits) -> Result<Vec<u8>, DecodeError> {
    let text = text.trim();
    let payload = match text.strip_prefix("data:") {
        Some(rest) => {
            let (header, data) = rest.split_once(',').ok_or(DecodeError::NotBase64)?;
            if !header.ends_with(";base64") {
                return Err(DecodeError::NotBase64);
            }
            data
        }
        None => text,
    };
    let compact: String = payload
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(DecodeError::Empty);
    }
    let decoded_len = compact.len() / 4 * 3;
    if decoded_len > limits.max_encoded_bytes {
        return Err(DecodeError::EncodedTooLarge {
            bytes: decoded_len,
            max: limits.max_encoded_bytes,
        });
    }
    let url_safe = compact.contains(['-', '_']);
    let engine = lenient_engine(if url_safe {
        &alphabet::URL_SAFE
    } else {
        &alphabet::STANDARD
    });
    let decoded = engine
        .decode(compact.as_bytes())
        .map_err(|_| DecodeError::NotBase64)?;
    // The estimate above rounds down (by up to 2 bytes for an unpadded tail): exact here.
    if decoded.len() > limits.max_encoded_bytes {
        return Err(DecodeError::EncodedTooLarge {
            bytes: decoded.len(),
            max: limits.max_encoded_bytes,
        });
    }
    Ok(decoded)
}

/// Decodes encoded image bytes into upright 8-bit RGB, refusing oversized input before
/// allocating pixels. Transparent pixels are composited over white.
pub fn decode_image(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > limits.max_encoded_bytes {
        return Err(DecodeError::EncodedTooLarge {
            bytes: bytes.len(),
            max: limits.max_encoded_bytes,
        });
    }
    let format = image::guess_format(bytes).map_err(|_| DecodeError::UnsupportedFormat)?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Bmp
    ) {
        return Err(DecodeError::UnsupportedFormat);
    }
    if format == ImageFormat::Jpeg && !has_jpeg_end_marker(bytes) {
        // Decoders fill a cut-off JPEG with grey and report success; refuse it instead.
        return Err(DecodeError::Corrupt("the JPEG is truncated".into()));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes));
    reader.set_format(format);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    let too_large = || DecodeError::DimensionsTooLarge {
        width,
        height,
        max_pixels: limits.max_pixels,
        max_side: limits.max_side,
    };
    if width == 0 || height == 0 {
        return Err(DecodeError::Corrupt("zero-sized image".into()));
    }
    if width > limits.max_side
        || height > limits.max_side
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(too_large());
    }
    let (long, short) = (width.max(height), width.min(height));
    if short < limits.min_side
        || u64::from(long) > u64::from(short) * u64::from(limits.max_aspect_ratio)
    {
        return Err(DecodeError::CannotHoldFace { width, height });
    }
    let mut alloc_limits = image::Limits::default();
    // 8 bytes per pixel covers 16-bit RGBA, the widest layout we accept, plus decoder slack.
    alloc_limits.max_alloc = Some(limits.max_pixels * 8 + (64 << 20));
    decoder.set_limits(alloc_limits).map_err(|_| too_large())?;
    // A broken EXIF block is not worth refusing a photo over: keep it as stored.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    img.apply_orientation(orientation);
    Ok(to_rgb_over_white(img))
}

/// Whether the end-of-image marker is near the end. Entropy-coded data never holds
/// `FF D9` (a data `FF` is always stuffed with `00`), so only a real EOI matches; looking
/// at the tail alone skips the EOI of an EXIF thumbnail at the front.
fn has_jpeg_end_marker(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

fn corrupt(e: image::ImageError) -> DecodeError {
    match e {
        image::ImageError::Unsupported(_) => DecodeError::UnsupportedFormat,
        other => DecodeError::Corrupt(other.to_string()),
    }
}

fn to_rgb_over_white(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u16::from(p[3]);
        let blend = |c: u8| ((u16::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([blend(p[0]), blend(p[1]), blend(p[2])])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        RgbImage::new(w, h)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .expect("encode png");
        out
    }

    #[test]
    fn base64_variants_decode_to_the_same_bytes() {
        let bytes = png_bytes(3, 2);
        let std_padded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let url_unpadded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        let data_uri = format!("data:image/png;base64,{std_padded}");
        let wrapped: String = std_padded
            .as_bytes()
            .chunks(10)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap_or_default()))
            .collect();
        let limits = DecodeLimits::default();
        for text in [&std_padded, &url_unpadded, &data_uri, &wrapped] {
            assert_eq!(decode_base64(text, &limits).as_deref(), Ok(&bytes[..]));
        }
    }

    #[test]
    fn bad_base64_is_typed() {
        let limits = DecodeLimits::default();
        assert_eq!(
            decode_base64("not base64 !!!", &limits),
            Err(DecodeError::NotBase64)
        );
        assert_eq!(decode_base64("   ", &limits), Err(DecodeError::Empty));
        assert_eq!(
            decode_base64("data:image/png,abcd", &limits),
            Err(DecodeError::NotBase64)
        );
    }

    #[test]
    fn encoded_size_limit_is_checked_before_decoding() {
        let limits = DecodeLimits {
            max_encoded_bytes: 30,
            ..DecodeLimits::default()
        };
        let text = "A".repeat(100);
        assert!(matches!(
            decode_base64(&text, &limits),
            Err(DecodeError::EncodedTooLarge { .. })
        ));
    }

    #[test]
    fn non_images_and_truncated_images_are_typed() {
        let limits = DecodeLimits::default();
        assert_eq!(
            decode_image(b"hello, world", &limits),
            Err(DecodeError::UnsupportedFormat)
        );
        assert_eq!(decode_image(b"", &limits), Err(DecodeError::Empty));
        let png = png_bytes(64, 64);
        let truncated = &png[..png.len() / 2];
        assert!(matches!(
            decode_image(truncated, &limits),
            Err(DecodeError::Corrupt(_))
        ));
    }

    #[test]
    fn shapes_no_face_fits_in_are_refused_from_the_header() {
        let limits = DecodeLimits::default();
        assert_eq!((limits.min_side, limits.max_aspect_ratio), (10, 64));
        for (w, h) in [
            (1, 11_999),
            (12_000, 1),
            (9, 400),
            (400, 9),
            (10, 641),
            (641, 10),
        ] {
            assert_eq!(
                decode_image(&png_bytes(w, h), &limits),
                Err(DecodeError::CannotHoldFace {
                    width: w,
                    height: h
                }),
                "{w}x{h}"
            );
        }
        for (w, h) in [(10, 10), (10, 640), (640, 10), (188, 12_000)] {
            let img = decode_image(&png_bytes(w, h), &limits).expect("a face could fit");
            assert_eq!(img.dimensions(), (w, h));
        }
    }

    #[test]
    fn rgba_is_composited_over_white() {
        let img = image::RgbaImage::from_pixel(16, 16, image::Rgba([0, 0, 0, 0]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .expect("encode png");
        let rgb = decode_image(&out, &DecodeLimits::default()).expect("decodes");
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
    }
}
