use std::path::PathBuf;

/// Why an image given by a caller could not be turned into pixels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the image is empty")]
    Empty,
    #[error("the image is not valid base64")]
    NotBase64,
    #[error("the image is {bytes} bytes encoded; the limit is {max}")]
    EncodedTooLarge { bytes: usize, max: usize },
    #[error("the data is not an image in a supported format (JPEG, PNG, WebP, BMP)")]
    UnsupportedFormat,
    #[error("the image is {width}x{height} pixels; the limit is {max_pixels} pixels and {max_side} per side")]
    DimensionsTooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
        max_side: u32,
    },
    /// Too small, or too long and thin, for any face to fit (checked from the header).
    #[error("the image is {width}x{height} pixels; no face fits in that shape")]
    CannotHoldFace { width: u32, height: u32 },
    #[error("the image is corrupt or truncated: {0}")]
    Corrupt(String),
}

/// Everything the vision crate can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("model file {path} is missing; run `visage models fetch`")]
    ModelMissing { path: PathBuf },
    #[error("model file {path} has sha256 {actual}, but models.lock expects {expected}; delete it and run `visage models fetch`")]
    ModelHashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("embedder descriptor {path}: {message}")]
    Descriptor { path: PathBuf, message: String },
    #[error(
        "embedder {model} ({path}) has sha256 {actual}, but its descriptor declares {expected}"
    )]
    DescriptorHashMismatch {
        model: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("embedder {model} gives {actual} values per face, but its descriptor declares dimension {declared}")]
    DescriptorDimensionMismatch {
        model: String,
        declared: usize,
        actual: usize,
    },
    #[error("could not fetch models: {0}")]
    Fetch(String),
    #[error("could not load model {path}: {message}")]
    ModelLoad { path: PathBuf, message: String },
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("the face is {width:.0} px wide; liveness needs at least {min:.0}")]
    FaceTooSmall { width: f32, min: f32 },
    #[error("kept face crop: {0}")]
    Crop(String),
    #[error("could not encode the face thumbnail: {0}")]
    Thumbnail(String),
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn inference(e: impl std::fmt::Display) -> Self {
        Error::Inference(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
