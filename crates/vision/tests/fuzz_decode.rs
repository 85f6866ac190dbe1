//! Property tests ("fuzzing on stable") of what a caller's image goes through first:
//! `decode_base64` (raw base64 and `data:` URIs) and `decode_image` under `DecodeLimits`.
//!
//! Every property runs a fixed number of cases from a fixed seed (ChaCha), so the test
//! command is deterministic and fast. To search harder locally:
//!
//! ```text
//! VISAGE_FUZZ_SCALE=50 VISAGE_FUZZ_SEED=12345 cargo nextest run --release -p vision --test fuzz_decode
//! ```
//!
//! `VISAGE_FUZZ_SCALE` multiplies every property's case count; `VISAGE_FUZZ_SEED` (a u64)
//! starts from another seed. Nothing is written to `.proptest-regressions`: an input that
//! fails is printed, shrunk, and then belongs here as an explicit regression test.
//!
//! The properties: nothing panics; every refusal is a typed `DecodeError` that tells the
//! truth (`Empty` only for nothing, `DimensionsTooLarge` only over the limits, ...); a header
//! claiming dimensions over the limits is refused as `DimensionsTooLarge` having allocated
//! next to nothing (a metering global allocator measures each decode's peak heap on its
//! thread); no decode allocates past what its limits allow; a valid image round-trips to the
//! same dimensions (and, lossless and opaque, the same pixels).

use std::fmt::Debug;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine;
use image::{DynamicImage, ImageFormat, RgbImage, RgbaImage};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use vision::{decode_base64, decode_image, DecodeError, DecodeLimits};

// ---------------------------------------------------------------------------------------
// The runner: fixed seed, explicit case counts, no failure files.

/// The seed every property starts from (ChaCha takes 32 bytes).
const SEED: [u8; 32] = *b"visage/fuzz_decode: fixed seed 1";

fn runner(cases: u32) -> TestRunner {
    let scale = std::env::var("VISAGE_FUZZ_SCALE")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    let mut seed = SEED;
    if let Some(s) = std::env::var("VISAGE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        seed[..8].copy_from_slice(&s.to_le_bytes());
    }
    let config = Config {
        cases: cases.saturating_mul(scale),
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
}

/// Runs `test` on `cases` inputs from `strategy`; a failure panics with the shrunk input.
fn check<S>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    if let Err(e) = runner(cases).run(&strategy, test) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------------
// A global allocator that meters the peak heap of one thread while a closure runs.

#[allow(unsafe_code)]
mod meter {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static LIVE: Cell<i64> = const { Cell::new(0) };
        static PEAK: Cell<i64> = const { Cell::new(0) };
    }

    fn grew(bytes: usize) {
        let _ = LIVE.try_with(|live| {
            let now = live.get() + bytes as i64;
            live.set(now);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
        });
    }

    fn shrank(bytes: usize) {
        let _ = LIVE.try_with(|live| live.set(live.get() - bytes as i64));
    }

    /// The system allocator, counting what this thread holds.
    pub struct Metered;

    unsafe impl GlobalAlloc for Metered {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                grew(layout.size());
            }
            p
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                grew(layout.size());
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) };
            shrank(layout.size());
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                shrank(layout.size());
                grew(new_size);
            }
            p
        }
    }

    /// `f`'s result and the most heap this thread held above its starting point meanwhile.
    pub fn peak<T>(f: impl FnOnce() -> T) -> (T, u64) {
        let start = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(start));
        let out = f();
        let peak = PEAK.with(Cell::get);
        (out, (peak - start).max(0) as u64)
    }
}

#[global_allocator]
static ALLOCATOR: meter::Metered = meter::Metered;

const MIB: u64 = 1 << 20;

/// What a refusal from the header may cost: the decoder's header parsing, nothing
/// proportional to the claimed pixels.
fn refusal_budget(input_len: usize) -> u64 {
    MIB + 2 * input_len as u64
}

/// Everything a decode may hold at once under `limits`: what decode.rs lets the decoder
/// allocate (8 bytes a pixel plus 64 MiB of slack) plus one RGBA8 copy while converting to
/// RGB, plus the input's size twice over for header parsing.
fn decode_budget(limits: &DecodeLimits, input_len: usize) -> u64 {
    limits.max_pixels * 12 + 64 * MIB + refusal_budget(input_len)
}

// ---------------------------------------------------------------------------------------
// The invariants every call must keep, whatever its input.

fn within(limits: &DecodeLimits, width: u32, height: u32) -> bool {
    width <= limits.max_side
        && height <= limits.max_side
        && u64::from(width) * u64::from(height) <= limits.max_pixels
}

/// Decodes `bytes` under `limits`, metered, and checks the result tells the truth.
fn decode_checked(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<Result<RgbImage, DecodeError>, TestCaseError> {
    decode_metered(bytes, limits).map(|(result, _)| result)
}

/// [`decode_checked`], for its checks alone.
fn check_decode(bytes: &[u8], limits: &DecodeLimits) -> Result<(), TestCaseError> {
    decode_checked(bytes, limits).map(drop)
}

/// [`decode_checked`], and the peak heap of the decode.
fn decode_metered(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<(Result<RgbImage, DecodeError>, u64), TestCaseError> {
    let (result, peak) = meter::peak(|| decode_image(bytes, limits));
    // Every error has a message (and formatting it must not panic either).
    if let Err(e) = &result {
        prop_assert!(!e.to_string().is_empty());
    }
    prop_assert!(
        peak <= decode_budget(limits, bytes.len()),
        "decode held {peak} bytes; limits {limits:?} allow {}",
        decode_budget(limits, bytes.len())
    );
    match &result {
        Ok(img) => {
            let (w, h) = img.dimensions();
            prop_assert!(w > 0 && h > 0, "an empty image decoded");
            prop_assert!(within(limits, w, h), "{w}x{h} decoded past {limits:?}");
            prop_assert!(bytes.len() <= limits.max_encoded_bytes);
        }
        Err(DecodeError::Empty) => prop_assert!(bytes.is_empty()),
        Err(DecodeError::EncodedTooLarge { bytes: n, max }) => {
            prop_assert_eq!(*n, bytes.len());
            prop_assert_eq!(*max, limits.max_encoded_bytes);
            prop_assert!(bytes.len() > limits.max_encoded_bytes);
        }
        Err(DecodeError::DimensionsTooLarge {
            width,
            height,
            max_pixels,
            max_side,
        }) => {
            prop_assert!(!within(limits, *width, *height), "{width}x{height} refused");
            prop_assert_eq!(*max_pixels, limits.max_pixels);
            prop_assert_eq!(*max_side, limits.max_side);
            prop_assert!(
                peak <= refusal_budget(bytes.len()),
                "refusing {width}x{height} from the header held {peak} bytes"
            );
        }
        Err(DecodeError::CannotHoldFace { width, height }) => {
            let (short, long) = ((*width).min(*height), (*width).max(*height));
            prop_assert!(
                short < limits.min_side
                    || u64::from(long) > u64::from(short) * u64::from(limits.max_aspect_ratio),
                "{width}x{height} can hold a face under {limits:?}"
            );
            prop_assert!(
                peak <= refusal_budget(bytes.len()),
                "refusing {width}x{height} from the header held {peak} bytes"
            );
        }
        Err(DecodeError::NotBase64) => {
            prop_assert!(false, "decode_image never sees base64");
        }
        Err(DecodeError::UnsupportedFormat | DecodeError::Corrupt(_)) => {
            prop_assert!(!bytes.is_empty());
        }
    }
    if bytes.is_empty() {
        prop_assert_eq!(&result, &Err(DecodeError::Empty));
    }
    Ok((result, peak))
}

/// `decode_base64`, then (on success) `decode_image`, checking both.
fn decode_text_checked(text: &str, limits: &DecodeLimits) -> Result<(), TestCaseError> {
    let result = decode_base64(text, limits);
    match &result {
        Ok(bytes) => {
            prop_assert!(!bytes.is_empty(), "decode_base64 answered no bytes");
            prop_assert!(bytes.len() <= limits.max_encoded_bytes);
            check_decode(bytes, limits)?;
        }
        Err(DecodeError::Empty | DecodeError::NotBase64 | DecodeError::EncodedTooLarge { .. }) => {}
        Err(other) => prop_assert!(false, "decode_base64 answered {other:?}"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Fixtures and image makers.

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/faces")
}

/// A fixture's bytes and the dimensions of its full decode.
struct Fixture {
    name: &'static str,
    bytes: Vec<u8>,
    dims: (u32, u32),
}

/// Small and mid-sized JPEGs and PNGs (RGB, RGBA, with and without EXIF).
fn fixtures() -> &'static [Fixture] {
    static FIXTURES: OnceLock<Vec<Fixture>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        [
            "Tom_Hanks_54745.png",
            "astronaut.png",
            "32bit.png",
            "t1.jpg",
            "obama2.jpg",
        ]
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(fixtures_dir().join(name)).expect("fixture");
            let img = decode_image(&bytes, &DecodeLimits::default()).expect("fixture decodes");
            Fixture {
                name,
                dims: img.dimensions(),
                bytes,
            }
        })
        .collect()
    })
}

fn fixture_index() -> impl Strategy<Value = usize> {
    0..fixtures().len()
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format)
        .expect("encode");
    out
}

/// A small real image in `format` (8x8 grey).
fn small(format: ImageFormat) -> Vec<u8> {
    encode(
        &DynamicImage::ImageRgb8(RgbImage::from_pixel(8, 8, image::Rgb([90, 120, 150]))),
        format,
    )
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
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

/// A real PNG whose IHDR claims `width` x `height` (with a valid CRC).
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = small(ImageFormat::Png);
    // Signature (8), IHDR length (4), "IHDR" (4), then width and height.
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// A real baseline JPEG whose SOF0 claims `width` x `height`.
fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut jpeg = small(ImageFormat::Jpeg);
    let mut i = 2;
    while i + 4 < jpeg.len() {
        assert_eq!(jpeg[i], 0xFF, "a marker at {i}");
        let marker = jpeg[i + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if (0xC0..=0xC3).contains(&marker) {
            // Length (2), precision (1), then height and width.
            jpeg[i + 5..i + 7].copy_from_slice(&height.to_be_bytes());
            jpeg[i + 7..i + 9].copy_from_slice(&width.to_be_bytes());
            return jpeg;
        }
        i += 2 + len;
    }
    panic!("no SOF in the encoded JPEG");
}

/// A real BMP whose header claims `width` x `height` (bottom-up).
fn bmp_claiming(width: i32, height: i32) -> Vec<u8> {
    let mut bmp = small(ImageFormat::Bmp);
    bmp[18..22].copy_from_slice(&width.to_le_bytes());
    bmp[22..26].copy_from_slice(&height.to_le_bytes());
    bmp
}

/// An extended WebP (VP8X) whose canvas is `width` x `height` (1..=2^24 each), around the
/// VP8L bitstream of a real 8x8 image.
fn webp_claiming(width: u32, height: u32) -> Vec<u8> {
    let lossless = small(ImageFormat::WebP);
    assert_eq!(&lossless[12..16], b"VP8L");
    let vp8l = &lossless[12..];
    let mut chunk = Vec::new();
    chunk.extend_from_slice(b"VP8X");
    chunk.extend_from_slice(&10u32.to_le_bytes());
    chunk.extend_from_slice(&[0, 0, 0, 0]);
    chunk.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    chunk.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    chunk.extend_from_slice(vp8l);
    let mut webp = Vec::new();
    webp.extend_from_slice(b"RIFF");
    webp.extend_from_slice(&(4 + chunk.len() as u32).to_le_bytes());
    webp.extend_from_slice(b"WEBP");
    webp.extend_from_slice(&chunk);
    webp
}

/// A simple (VP8L) WebP whose bitstream header claims `width` x `height` (1..=16384).
fn webp_lossless_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut webp = small(ImageFormat::WebP);
    assert_eq!(webp[20], 0x2F, "VP8L signature");
    let mut bits = u32::from_le_bytes([webp[21], webp[22], webp[23], webp[24]]);
    bits &= !((1 << 28) - 1);
    bits |= (width - 1) | ((height - 1) << 14);
    webp[21..25].copy_from_slice(&bits.to_le_bytes());
    webp
}

// ---------------------------------------------------------------------------------------
// Arbitrary bytes.

/// Starts of the formats the decoder sniffs (and of some it refuses).
const MAGICS: &[&[u8]] = &[
    &[0xFF, 0xD8, 0xFF],
    &[
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0,
    ],
    &[
        0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x40, b'E', b'x', b'i', b'f', 0, 0,
    ],
    b"\x89PNG\r\n\x1a\n",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR",
    b"RIFF\x00\x01\x00\x00WEBPVP8 ",
    b"RIFF\x00\x01\x00\x00WEBPVP8L",
    b"RIFF\x00\x01\x00\x00WEBPVP8X",
    b"BM",
    b"GIF89a",
    b"II*\x00",
    b"\x00\x00\x01\x00",
];

fn arbitrary_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        (
            prop::sample::select(MAGICS),
            prop::collection::vec(any::<u8>(), 0..2048),
            any::<bool>(),
        )
            .prop_map(|(magic, rest, eoi)| {
                let mut bytes = magic.to_vec();
                bytes.extend_from_slice(&rest);
                if eoi {
                    // Past decode.rs's check for a JPEG's end marker.
                    bytes.extend_from_slice(&[0xFF, 0xD9]);
                }
                bytes
            }),
    ]
}

#[test]
fn arbitrary_bytes_decode_within_limits_or_are_refused_typed() {
    let limits = DecodeLimits::default();
    check(4096, arbitrary_input(), |bytes| {
        check_decode(&bytes, &limits)?;
        Ok(())
    });
    // The encoded-size limit, with limits small enough for the inputs above.
    check(
        1024,
        (arbitrary_input(), 0usize..600),
        |(bytes, max_encoded_bytes)| {
            let limits = DecodeLimits {
                max_encoded_bytes,
                ..DecodeLimits::default()
            };
            check_decode(&bytes, &limits)?;
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// Strings, base64 and data: URIs.

fn arbitrary_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9+/=_ \\-]{0,300}",
        "[ \t\r\n]{0,3}[A-Za-z0-9+/]{0,200}={0,3}[ \t\r\n]{0,3}",
        "(?i:data:)[^,]{0,40}(;base64)?,[A-Za-z0-9+/=_\\-\n]{0,200}",
        "data:[^,]{0,20}",
        ("data:image/png;base64,", any::<String>()).prop_map(|(a, b)| format!("{a}{b}")),
    ]
}

#[test]
fn arbitrary_strings_are_decoded_or_refused_typed() {
    let limits = DecodeLimits::default();
    check(4096, arbitrary_text(), |text| {
        decode_text_checked(&text, &limits)
    });
    check(1024, (arbitrary_text(), 0usize..200), |(text, max)| {
        let limits = DecodeLimits {
            max_encoded_bytes: max,
            ..DecodeLimits::default()
        };
        decode_text_checked(&text, &limits)
    });
}

/// Found by `arbitrary_strings_are_decoded_or_refused_typed` (with a small limit):
/// `decode_base64` checked only `chars / 4 * 3` against `max_encoded_bytes`, which rounds an
/// unpadded tail of 2 or 3 characters down to nothing, so it answered up to 2 bytes over
/// the limit ("A_0" under a limit of 0 decoded to 2 bytes). Fixed: the decoded length is
/// checked exactly.
#[test]
fn decode_base64_never_answers_more_than_the_limit() {
    for (text, max) in [("A_0", 0), ("AAAAAAAAAAAAAAAAAAAAAAA", 16)] {
        let limits = DecodeLimits {
            max_encoded_bytes: max,
            ..DecodeLimits::default()
        };
        match decode_base64(text, &limits) {
            Ok(bytes) => assert!(
                bytes.len() <= max,
                "{text:?}: {} bytes over {max}",
                bytes.len()
            ),
            Err(e) => assert!(matches!(e, DecodeError::EncodedTooLarge { .. }), "{e:?}"),
        }
    }
}

/// A media type for a `data:` URI: anything without a comma (RFC 2397 escapes commas).
fn media_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("image/png".to_owned()),
        Just("image/jpeg".to_owned()),
        Just("image/png;name=a.png".to_owned()),
        "[a-z]{1,8}/[a-z0-9.+\\-]{1,12}(;[a-z]{1,6}=[a-z0-9\"]{0,8}){0,2}",
        "[^,]{0,40}",
    ]
}

#[derive(Debug, Clone)]
struct Encoding {
    engine: usize,
    /// Line length and whether lines end in CRLF.
    wrap: Option<(usize, bool)>,
    /// Leading and trailing whitespace (trimmed as a whole).
    pad: (String, String),
    data_uri: Option<String>,
}

fn encoding() -> impl Strategy<Value = Encoding> {
    (
        0usize..4,
        prop::option::of((1usize..100, any::<bool>())),
        ("[ \t\r\n\u{a0}\u{3000}]{0,3}", "[ \t\r\n\u{2028}]{0,3}"),
        prop::option::of(media_type()),
    )
        .prop_map(|(engine, wrap, pad, data_uri)| Encoding {
            engine,
            wrap,
            pad,
            data_uri,
        })
}

fn apply(enc: &Encoding, bytes: &[u8]) -> String {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let b64 = match enc.engine {
        0 => STANDARD.encode(bytes),
        1 => STANDARD_NO_PAD.encode(bytes),
        2 => URL_SAFE.encode(bytes),
        _ => URL_SAFE_NO_PAD.encode(bytes),
    };
    let body = match enc.wrap {
        None => b64,
        Some((width, crlf)) => b64
            .as_bytes()
            .chunks(width)
            .map(|line| {
                let line = std::str::from_utf8(line).expect("base64 is ASCII");
                format!("{line}{}", if crlf { "\r\n" } else { "\n" })
            })
            .collect(),
    };
    let text = match &enc.data_uri {
        None => body,
        Some(media) => format!("data:{media};base64,{body}"),
    };
    format!("{}{text}{}", enc.pad.0, enc.pad.1)
}

#[test]
fn valid_base64_and_data_uris_of_arbitrary_bytes_round_trip() {
    let limits = DecodeLimits::default();
    check(
        4096,
        (prop::collection::vec(any::<u8>(), 0..700), encoding()),
        |(bytes, enc)| {
            let text = apply(&enc, &bytes);
            let decoded = decode_base64(&text, &limits);
            if bytes.is_empty() {
                prop_assert_eq!(decoded, Err(DecodeError::Empty), "{:?}", text);
            } else {
                prop_assert_eq!(decoded, Ok(bytes), "{:?}", text);
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// The real fixtures, truncated and mutated.

#[test]
fn truncated_fixtures_are_refused_or_keep_their_dimensions() {
    let limits = DecodeLimits::default();
    let cut = (fixture_index(), any::<prop::sample::Index>(), 0usize..64);
    check(1000, cut, |(i, at, from_end)| {
        let f = &fixtures()[i];
        // Anywhere, or within the last few bytes (where a JPEG's end marker is).
        let len = if at.index(2) == 0 {
            at.index(f.bytes.len())
        } else {
            f.bytes.len().saturating_sub(from_end + 1)
        };
        if let Ok(img) = decode_checked(&f.bytes[..len], &limits)? {
            prop_assert_eq!(img.dimensions(), f.dims, "{} cut to {}", f.name, len);
        }
        Ok(())
    });
}

#[test]
fn mutated_fixtures_decode_within_limits_or_are_refused_typed() {
    let limits = DecodeLimits::default();
    // Positions in the headers (first 2 KiB) or anywhere; a byte set or bits flipped.
    let mutation = (
        any::<bool>(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        any::<bool>(),
    );
    let mutations = (fixture_index(), prop::collection::vec(mutation, 1..=4));
    check(1600, mutations, |(i, mutations)| {
        let f = &fixtures()[i];
        let mut bytes = f.bytes.clone();
        for (in_header, at, byte, xor) in &mutations {
            let span = if *in_header {
                bytes.len().min(2048)
            } else {
                bytes.len()
            };
            let at = at.index(span);
            bytes[at] = if *xor { bytes[at] ^ byte } else { *byte };
        }
        check_decode(&bytes, &limits)?;
        Ok(())
    });
    // A mutation followed by a cut.
    let cut_mutation = (fixture_index(), 0usize..2048, any::<u8>(), 0usize..4096);
    check(320, cut_mutation, |(i, at, byte, cut)| {
        let f = &fixtures()[i];
        let mut bytes = f.bytes.clone();
        bytes[at] = byte;
        bytes.truncate(bytes.len().saturating_sub(cut));
        check_decode(&bytes, &limits)?;
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// Headers claiming huge dimensions.

/// A side from tiny to absurd, biased to the limits' edges.
fn side() -> impl Strategy<Value = u32> {
    prop_oneof![
        1u32..=64,
        11_990u32..=12_010,
        6_000u32..=7_000,
        Just(100_000u32),
        Just(65_535u32),
        Just(16_384u32),
        Just((1u32 << 24) - 1),
        Just(1u32 << 24),
        Just(i32::MAX as u32),
        Just(u32::MAX),
        any::<u32>(),
    ]
}

/// Up to this many pixels a side, every format's decoder leaves the refusal to decode.rs;
/// past it some refuse the header themselves, as corrupt (see
/// `headers_far_over_the_limits_are_refused_as_too_large`).
const TYPED_SIDE: u32 = 65_535;

#[derive(Debug, Clone, Copy)]
enum Claim {
    Png,
    Jpeg,
    Bmp,
    WebpExtended,
    WebpLossless,
}

impl Claim {
    /// The bytes, if the format's header can say `w` x `h` at all.
    fn bytes(self, w: u32, h: u32) -> Option<Vec<u8>> {
        match self {
            // PNG allows up to 2^31 - 1 a side.
            Claim::Png if w <= i32::MAX as u32 && h <= i32::MAX as u32 => Some(png_claiming(w, h)),
            Claim::Jpeg => Some(jpeg_claiming(
                u16::try_from(w).ok()?,
                u16::try_from(h).ok()?,
            )),
            Claim::Bmp => Some(bmp_claiming(i32::try_from(w).ok()?, i32::try_from(h).ok()?)),
            Claim::WebpExtended if (1..=1 << 24).contains(&w) && (1..=1 << 24).contains(&h) => {
                Some(webp_claiming(w, h))
            }
            // The bitstream says 1..=16384, but image-webp reads 16384 as 0 (see
            // `headers_far_over_the_limits_are_refused_as_too_large`).
            Claim::WebpLossless if (1..1 << 14).contains(&w) && (1..1 << 14).contains(&h) => {
                Some(webp_lossless_claiming(w, h))
            }
            _ => None,
        }
    }
}

fn claim() -> impl Strategy<Value = Claim> {
    prop::sample::select(vec![
        Claim::Png,
        Claim::Jpeg,
        Claim::Bmp,
        Claim::WebpExtended,
        Claim::WebpLossless,
    ])
}

#[test]
fn headers_over_the_limits_are_refused_before_decoding() {
    let limits = DecodeLimits::default();
    let over = (claim(), side(), side())
        .prop_filter("over the limits", |(_, w, h)| !within(&limits, *w, *h));
    check(2000, over, |(claim, w, h)| {
        let Some(bytes) = claim.bytes(w, h) else {
            return Ok(());
        };
        let (result, peak) = decode_metered(&bytes, &limits)?;
        let too_large = DecodeError::DimensionsTooLarge {
            width: w,
            height: h,
            max_pixels: limits.max_pixels,
            max_side: limits.max_side,
        };
        if w <= TYPED_SIDE && h <= TYPED_SIDE {
            prop_assert_eq!(result, Err(too_large), "{:?} claiming {}x{}", claim, w, h);
        } else {
            prop_assert!(
                matches!(&result, Err(e) if *e == too_large || matches!(e, DecodeError::Corrupt(_))),
                "{:?} claiming {}x{}: {:?}",
                claim,
                w,
                h,
                result
            );
        }
        prop_assert!(
            peak <= refusal_budget(bytes.len()),
            "refusing {claim:?} claiming {w}x{h} held {peak} bytes"
        );
        Ok(())
    });
}

#[test]
fn a_header_claiming_100k_by_100k_is_refused_for_next_to_nothing() {
    let limits = DecodeLimits::default();
    // (BMP and WebP can only say 100k x 100k past TYPED_SIDE, where their decoders refuse
    // first; 60k x 60k is as absurd.)
    for bytes in [
        png_claiming(100_000, 100_000),
        webp_claiming(60_000, 60_000),
        bmp_claiming(60_000, 60_000),
        jpeg_claiming(60_000, 60_000),
    ] {
        let (result, peak) = meter::peak(|| decode_image(&bytes, &limits));
        assert!(
            matches!(result, Err(DecodeError::DimensionsTooLarge { .. })),
            "{result:?}"
        );
        assert!(peak < MIB, "refusing held {peak} bytes");
        // The same through base64, as a request's image arrives.
        let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let decoded = decode_base64(&text, &limits).expect("base64");
        assert!(matches!(
            decode_image(&decoded, &limits),
            Err(DecodeError::DimensionsTooLarge { .. })
        ));
    }
}

/// Found by `headers_over_the_limits_are_refused_before_decoding`: some headers far over
/// the limits are refused by the format's own decoder inside `ImageReader::into_decoder`,
/// before decode.rs compares the dimensions with the limits, so they come back as
/// `Corrupt` (the API's 412 `invalid_image`) instead of `DimensionsTooLarge`
/// (`image_too_large`): a BMP over 65535 px a side ("Image too large (one of (100000,
/// 100000) > soft limit of 65535)"), an extended WebP whose canvas is over 2^32 pixels
/// ("Image too large"), a PNG whose rows are over the allocation limit ("Memory limit
/// exceeded"); and a lossless WebP 16384 px wide, the most its header can say, which
/// image-webp 0.2.4 reads as 0 px wide (`(1 + bits) & 0x3FFF`), hence "zero-sized image".
/// Nothing is decoded or allocated either way; only the type is wrong.
#[test]
#[ignore = "bug: some headers over the limits (BMP > 65535 a side, WebP canvas > 2^32 px, PNG 2^31-1 wide, WebP 16384 wide) are refused as Corrupt, not DimensionsTooLarge"]
fn headers_far_over_the_limits_are_refused_as_too_large() {
    let limits = DecodeLimits::default();
    let cases = [
        ("BMP", bmp_claiming(100_000, 100_000), 100_000, 100_000),
        ("WebP", webp_claiming(100_000, 100_000), 100_000, 100_000),
        ("PNG", png_claiming(i32::MAX as u32, 1), i32::MAX as u32, 1),
        ("WebP", webp_lossless_claiming(16_384, 1), 16_384, 1),
    ];
    let mut wrong = Vec::new();
    for (format, bytes, width, height) in cases {
        let result = decode_image(&bytes, &limits);
        let expected = Err(DecodeError::DimensionsTooLarge {
            width,
            height,
            max_pixels: limits.max_pixels,
            max_side: limits.max_side,
        });
        if result != expected {
            wrong.push(format!("{format} {width}x{height}: {result:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

// ---------------------------------------------------------------------------------------
// Valid images.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Luma8,
    LumaA8,
    Rgb8,
    Rgba8,
    Rgb16,
    Rgba16,
}

fn image_of(layout: Layout, w: u32, h: u32, pixels: &[u8]) -> DynamicImage {
    let rgba = RgbaImage::from_fn(w, h, |x, y| {
        let i = ((y * w + x) * 4) as usize;
        image::Rgba([pixels[i], pixels[i + 1], pixels[i + 2], pixels[i + 3]])
    });
    let img = DynamicImage::ImageRgba8(rgba);
    match layout {
        Layout::Luma8 => DynamicImage::ImageLuma8(img.to_luma8()),
        Layout::LumaA8 => DynamicImage::ImageLumaA8(img.to_luma_alpha8()),
        Layout::Rgb8 => DynamicImage::ImageRgb8(img.to_rgb8()),
        Layout::Rgba8 => img,
        Layout::Rgb16 => DynamicImage::ImageRgb16(img.to_rgb16()),
        Layout::Rgba16 => DynamicImage::ImageRgba16(img.to_rgba16()),
    }
}

fn valid_image() -> impl Strategy<Value = (u32, u32, Layout, ImageFormat, Vec<u8>)> {
    let layout = prop::sample::select(vec![
        Layout::Luma8,
        Layout::LumaA8,
        Layout::Rgb8,
        Layout::Rgba8,
        Layout::Rgb16,
        Layout::Rgba16,
    ]);
    let format = prop::sample::select(vec![
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Bmp,
        ImageFormat::WebP,
    ]);
    (1u32..=80, 1u32..=80, layout, format).prop_flat_map(|(w, h, layout, format)| {
        let pixels = prop::collection::vec(any::<u8>(), (w * h * 4) as usize);
        (Just(w), Just(h), Just(layout), Just(format), pixels)
    })
}

/// `limits` without the checks of whether a face fits (smallest side, aspect ratio).
fn any_shape(limits: DecodeLimits) -> DecodeLimits {
    DecodeLimits {
        min_side: 1,
        max_aspect_ratio: u32::MAX,
        ..limits
    }
}

#[test]
fn valid_images_round_trip_to_the_same_dimensions() {
    // Any shape: whether a shape can hold a face is checked elsewhere.
    let limits = any_shape(DecodeLimits::default());
    check(1000, valid_image(), |(w, h, layout, format, pixels)| {
        let img = image_of(layout, w, h, &pixels);
        let bytes = encode(&img, format);
        let decoded = decode_checked(&bytes, &limits)?;
        let decoded = match decoded {
            Ok(d) => d,
            Err(e) => return Err(TestCaseError::fail(format!("{e:?}"))),
        };
        prop_assert_eq!(decoded.dimensions(), (w, h));
        // Lossless and opaque 8-bit: the very pixels.
        if layout == Layout::Rgb8 && format != ImageFormat::Jpeg {
            prop_assert!(decoded == img.to_rgb8(), "{:?} changed the pixels", format);
        }
        // Through a data: URI, as a request's image arrives.
        let text = format!(
            "data:image/x;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        );
        let again = decode_base64(&text, &limits).map(|b| decode_image(&b, &limits));
        prop_assert!(matches!(again, Ok(Ok(ref d)) if *d == decoded));
        Ok(())
    });
}

#[test]
fn the_limits_are_exact_on_real_images() {
    // Real images from 1x1 to 80x80 against small limits: decoded exactly when within.
    let case = (1u32..=80, 1u32..=80, 1u32..=80, 1u64..=6400, 0usize..3);
    check(1000, case, |(w, h, max_side, max_pixels, f)| {
        let format = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Bmp][f];
        let bytes = encode(
            &DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, image::Rgb([1, 2, 3]))),
            format,
        );
        let limits = any_shape(DecodeLimits {
            max_side,
            max_pixels,
            ..DecodeLimits::default()
        });
        let result = decode_checked(&bytes, &limits)?;
        if within(&limits, w, h) {
            prop_assert!(matches!(result, Ok(ref img) if img.dimensions() == (w, h)));
        } else {
            prop_assert_eq!(
                result,
                Err(DecodeError::DimensionsTooLarge {
                    width: w,
                    height: h,
                    max_pixels,
                    max_side,
                })
            );
        }
        Ok(())
    });
}

#[test]
fn the_fixtures_decode_whole_to_their_headers_dimensions() {
    // What the properties above compare truncations with: each fixture whole, upright,
    // directly and through a data: URI.
    let expected = [
        ("Tom_Hanks_54745.png", (112, 112)),
        ("astronaut.png", (512, 512)),
        ("32bit.png", (626, 1200)),
        ("t1.jpg", (1280, 886)),
        ("obama2.jpg", (626, 1200)),
    ];
    let limits = DecodeLimits::default();
    for (f, (name, dims)) in fixtures().iter().zip(expected) {
        assert_eq!((f.name, f.dims), (name, dims));
        let text = format!(
            "data:image/*;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&f.bytes)
        );
        let bytes = decode_base64(&text, &limits).expect("base64");
        assert_eq!(bytes, f.bytes);
        let img = decode_image(&bytes, &limits).expect("decodes");
        assert_eq!(img.dimensions(), dims, "{name}");
    }
}
