//! The face pipeline on real fixture images through the real models.

mod common;

use std::sync::OnceLock;

use common::{config, models_dir, repo_path};
use vision::{DecodeError, Embedding, Engine, EngineChoice, Error, Pipeline, PipelineConfig};

fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        Pipeline::load(&models_dir(), config())
            .unwrap_or_else(|e| panic!("models must be fetched before the tests: {e}"))
    })
}

fn fixture(name: &str) -> Vec<u8> {
    let path = repo_path("fixtures/faces").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn face_count(name: &str) -> usize {
    let p = pipeline();
    let img = p.decode(&fixture(name)).expect("decodes");
    p.detect(&img).expect("detects").len()
}

fn embedding(name: &str) -> Embedding {
    let p = pipeline();
    let img = p.decode(&fixture(name)).expect("decodes");
    p.largest_face(&img)
        .expect("runs")
        .unwrap_or_else(|| panic!("no face in {name}"))
        .embedding
}

#[test]
fn face_counts_match_the_fixtures() {
    assert_eq!(face_count("t1.jpg"), 6);
    assert_eq!(face_count("obama.jpg"), 1);
    assert_eq!(face_count("astronaut.png"), 1);
    assert_eq!(face_count("32bit.png"), 1);
}

#[test]
fn a_face_filling_the_frame_is_found() {
    assert_eq!(face_count("Tom_Hanks_54745.png"), 1);
}

/// Where SFace's alignment puts the five landmarks in its 112x112 crop (align.rs).
const TEMPLATE: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

#[test]
fn a_crop_tighter_than_the_alignment_is_found_by_the_retry_where_it_is() {
    // The centre 70x70 of an aligned crop: the face fills the frame, which YuNet misses
    // until the image is put inside a border; the landmarks must come back in the crop's
    // own pixels, where the alignment template put them (shifted by the 21 px cut off).
    let p = pipeline();
    let aligned = p.decode(&fixture("Tom_Hanks_54745.png")).expect("decodes");
    for side in [112, 70] {
        let cut = (112 - side) / 2;
        let crop = image::imageops::crop_imm(&aligned, cut, cut, side, side).to_image();
        let faces = p.detect(&crop).expect("detects");
        assert_eq!(faces.len(), 1, "{side}x{side}");
        for (found, expected) in faces[0].landmarks.iter().zip(TEMPLATE) {
            let (dx, dy) = (
                found[0] - (expected[0] - cut as f32),
                found[1] - (expected[1] - cut as f32),
            );
            assert!(
                dx.hypot(dy) < 6.0,
                "{side}x{side}: {found:?} vs the template's {expected:?}"
            );
        }
    }
}

#[test]
fn a_hair_thin_image_is_refused_before_decoding() {
    // A PNG of a few KB: no face fits in its shape, so no pixel is decoded and the detector
    // never runs.
    let p = pipeline();
    for (w, h) in [(1, 11_999), (12_000, 1)] {
        let mut png = Vec::new();
        image::RgbImage::from_pixel(w, h, image::Rgb([128, 128, 128]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("encodes");
        assert!(matches!(
            p.decode(&png),
            Err(Error::Decode(DecodeError::CannotHoldFace { width, height })) if (width, height) == (w, h)
        ));
    }
    // Pixels that reach the detector some other way are still answered, without a face.
    let thin = image::RgbImage::from_pixel(1, 11_999, image::Rgb([128, 128, 128]));
    assert!(p.detect(&thin).expect("detects").is_empty());
}

#[test]
fn group_photos_give_their_counts() {
    let counts: Vec<usize> = (1..=6)
        .map(|i| face_count(&format!("groups/sample{i}.jpg")))
        .collect();
    assert_eq!(counts, vec![3, 3, 3, 4, 5, 4]);
}

/// Reference cosines from OpenCV's own YuNet + SFace pipeline (fixtures/faces/SOURCE.md).
const REFERENCE: [(&str, &str, f32, bool); 6] = [
    ("obama.jpg", "obama2.jpg", 0.755, true),
    ("obama.jpg", "obama3.jpg", 0.814, true),
    ("obama2.jpg", "obama3.jpg", 0.751, true),
    ("obama.jpg", "obama_partial_face.jpg", 0.873, true),
    ("obama.jpg", "biden.jpg", 0.118, false),
    ("obama2.jpg", "biden.jpg", 0.260, false),
];

#[test]
fn cosines_match_the_reference_and_separate_people() {
    let mut same = Vec::new();
    let mut different = Vec::new();
    for (a, b, reference, is_same) in REFERENCE {
        let cos = embedding(a).cosine(&embedding(b));
        assert!(
            (cos - reference).abs() <= 0.05,
            "{a} vs {b}: cosine {cos:.3}, reference {reference}"
        );
        if is_same {
            same.push(cos)
        } else {
            different.push(cos)
        }
    }
    let lowest_same = same.iter().copied().fold(f32::MAX, f32::min);
    let highest_different = different.iter().copied().fold(f32::MIN, f32::max);
    assert!(lowest_same > highest_different, "{same:?} vs {different:?}");
}

#[test]
fn exif_rotated_copy_matches_the_original() {
    // obama.jpg stored rotated by 90 degrees with EXIF orientation 6 ("rotate 90 CW to
    // display"): a correct decoder shows the same upright face.
    let p = pipeline();
    let upright = p.decode(&fixture("obama.jpg")).expect("decodes");
    let stored = image::imageops::rotate270(&upright);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .encode_image(&stored)
        .expect("encodes");
    let rotated = with_exif_orientation(&jpeg, 6);
    let decoded = p.decode(&rotated).expect("decodes");
    assert_eq!(decoded.dimensions(), upright.dimensions());
    let cos = embedding("obama.jpg").cosine(
        &p.largest_face(&decoded)
            .expect("runs")
            .expect("face in the rotated copy")
            .embedding,
    );
    assert!(cos >= 0.95, "cosine {cos}");
}

/// Inserts an APP1 Exif segment holding one Orientation tag right after the SOI marker.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2a\0\0\0\x08"); // big-endian TIFF header, IFD at 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn bad_inputs_give_typed_errors() {
    let p = pipeline();
    let decode_err = |r: vision::Result<image::RgbImage>| match r {
        Err(Error::Decode(e)) => e,
        other => panic!("expected a decode error, got {other:?}"),
    };
    assert_eq!(
        decode_err(p.decode_base64("%%% not base64 %%%")),
        DecodeError::NotBase64
    );
    assert_eq!(
        decode_err(p.decode(b"GIF89a not supported")),
        DecodeError::UnsupportedFormat
    );
    let jpeg = fixture("obama.jpg");
    assert!(matches!(
        decode_err(p.decode(&jpeg[..jpeg.len() / 3])),
        DecodeError::Corrupt(_)
    ));
    assert!(matches!(
        decode_err(p.decode(&png_claiming(50_000, 50_000))),
        DecodeError::DimensionsTooLarge {
            width: 50_000,
            height: 50_000,
            ..
        }
    ));
    let big = vec![0u8; p.config().limits.max_encoded_bytes + 1];
    assert!(matches!(
        decode_err(p.decode(&big)),
        DecodeError::EncodedTooLarge { .. }
    ));
}

#[test]
fn a_picture_without_a_face_gives_none() {
    let p = pipeline();
    let blank = image::RgbImage::from_pixel(200, 150, image::Rgb([120, 130, 140]));
    assert!(p.largest_face(&blank).expect("runs").is_none());
}

/// A tiny PNG whose header claims `w` x `h` pixels (a decompression bomb's calling card).
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut small = Vec::new();
    image::RgbImage::new(1, 1)
        .write_to(
            &mut std::io::Cursor::new(&mut small),
            image::ImageFormat::Png,
        )
        .expect("encodes");
    // Signature (8) + IHDR length (4) + "IHDR" (4), then width and height.
    small[16..20].copy_from_slice(&w.to_be_bytes());
    small[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&small[12..29]);
    small[29..33].copy_from_slice(&crc.to_be_bytes());
    assert!(small.len() < 1024);
    small
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn the_pipeline_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Pipeline>();
    let p = pipeline();
    let bytes = fixture("obama.jpg");
    let embeddings: Vec<Embedding> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    p.largest_face(&p.decode(&bytes).expect("decodes"))
                        .expect("runs")
                        .expect("face")
                        .embedding
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("thread"))
            .collect()
    });
    for e in &embeddings[1..] {
        assert!(e.cosine(&embeddings[0]) > 0.9999, "threads agree");
    }
}

#[test]
fn fetch_installs_verified_copies_from_a_mirror() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outcomes = vision::models::fetch(dir.path(), Some(&models_dir())).expect("fetch");
    assert!(outcomes
        .iter()
        .all(|(_, o)| *o == vision::models::FetchOutcome::CopiedFromMirror));
    let again = vision::models::fetch(dir.path(), None).expect("nothing to download");
    assert!(again
        .iter()
        .all(|(_, o)| *o == vision::models::FetchOutcome::AlreadyPresent));
    Pipeline::load(dir.path(), config()).expect("loads");
}

/// Without ONNX Runtime installed beside the models, `auto` runs tract and says why, and
/// `ort` refuses to start.
#[test]
fn auto_falls_back_to_tract_and_ort_demands_its_library() {
    if std::env::var_os("ORT_DYLIB_PATH").is_some() {
        panic!("unset ORT_DYLIB_PATH: this test checks the library beside the models");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for file in [vision::models::DETECTOR_FILE, vision::models::EMBEDDER_FILE] {
        std::fs::copy(models_dir().join(file), dir.path().join(file)).expect("copy");
    }
    let with = |engine| {
        let config = PipelineConfig {
            engine,
            ..PipelineConfig::default()
        };
        Pipeline::load(dir.path(), config)
    };
    let auto = with(EngineChoice::Auto).expect("auto loads");
    assert_eq!(auto.engine().engine, Engine::Tract);
    assert!(
        auto.engine().note.contains("visage models fetch"),
        "{:?}",
        auto.engine()
    );
    let ort = with(EngineChoice::Ort)
        .err()
        .expect("ort without its library");
    assert!(matches!(ort, Error::ModelMissing { .. }), "{ort}");
}

/// The two engines run the same models: the same faces, landmarks within a hundredth of a
/// pixel, embeddings within 1e-4 (elementwise) on every fixture with a face.
#[test]
fn tract_and_onnx_runtime_agree_on_every_fixture() {
    let load = |engine| {
        let config = PipelineConfig {
            engine,
            ..PipelineConfig::default()
        };
        Pipeline::load(&models_dir(), config).expect("loads")
    };
    let (tract, ort) = (load(EngineChoice::Tract), load(EngineChoice::Ort));
    assert_eq!(tract.engine().engine, Engine::Tract);
    assert_eq!(ort.engine().engine, Engine::Ort);
    let mut compared = 0;
    for name in [
        "obama.jpg",
        "obama2.jpg",
        "obama3.jpg",
        "biden.jpg",
        "Tom_Hanks_54745.png",
        "t1.jpg",
    ] {
        let bytes = fixture(name);
        let (img_t, img_o) = (
            tract.decode(&bytes).expect("decodes"),
            ort.decode(&bytes).expect("decodes"),
        );
        let (faces_t, faces_o) = (
            tract.detect(&img_t).expect("detects"),
            ort.detect(&img_o).expect("detects"),
        );
        assert_eq!(faces_t.len(), faces_o.len(), "{name}: face counts");
        for (a, b) in faces_t.iter().zip(&faces_o) {
            for (p, q) in a.landmarks.iter().zip(&b.landmarks) {
                assert!(
                    (p[0] - q[0]).abs() < 0.01 && (p[1] - q[1]).abs() < 0.01,
                    "{name}: {p:?} vs {q:?}"
                );
            }
            // The same aligned face through each engine's SFace.
            let aligned = tract.align(&img_t, a).expect("aligns");
            let (e_t, e_o) = (
                tract.embed_aligned(&aligned).expect("embeds"),
                ort.embed_aligned(&aligned).expect("embeds"),
            );
            let worst = e_t
                .as_slice()
                .iter()
                .zip(e_o.as_slice())
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(worst <= 1e-4, "{name}: embeddings differ by {worst}");
            compared += 1;
        }
    }
    assert!(compared >= 6, "{compared} faces compared");
}

#[test]
fn mutated_images_never_panic() {
    // Corrupt random bytes of real images: every outcome must be a value or a typed error.
    let p = pipeline();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for name in ["Tom_Hanks_54745.png", "32bit.png", "biden.jpg"] {
        let original = fixture(name);
        for _ in 0..60 {
            let mut bytes = original.clone();
            for _ in 0..1 + next() % 8 {
                let i = (next() as usize) % bytes.len();
                bytes[i] = next() as u8;
            }
            if next() % 4 == 0 {
                bytes.truncate((next() as usize) % bytes.len());
            }
            if let Ok(img) = p.decode(&bytes) {
                let _ = p.largest_face(&img);
            }
        }
    }
}
