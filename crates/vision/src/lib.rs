//! visage's eyes: image decoding with limits, face detection (YuNet), alignment, and
//! embedding (SFace, or any ONNX embedder an [`EmbedderDescriptor`] describes), run in-process with ONNX Runtime or tract. Knows nothing of HTTP or
//! storage; no engine's type appears in its public API.

mod align;
mod decode;
mod descriptor;
mod detect;
mod embed;
mod error;
mod liveness;
pub mod models;
mod onnx;
mod pipeline;
#[doc(hidden)]
pub mod projected;
mod score;
mod stage;

pub use align::{align_face, Similarity, ALIGNED_SIDE};
pub use decode::{decode_base64, decode_image, DecodeLimits};
pub use descriptor::{ColourOrder, EmbedderDescriptor, MAX_EMBEDDING_DIM, MAX_MODEL_ID_LEN};
pub use detect::{BoundingBox, Detection, DetectorConfig, Landmarks};
pub use embed::{Embedding, EMBEDDING_DIM};
pub use error::{DecodeError, Error, Result};
pub use liveness::{Liveness, MIN_FACE_WIDTH as MIN_LIVENESS_FACE_WIDTH};
pub use onnx::{resolve as resolve_engine, Engine, EngineChoice, ResolvedEngine};
pub use pipeline::{largest, Face, Pipeline, PipelineConfig, StageTimes};
pub use score::{round_score, Score, ScoreMap, SCORE_MAP_MODEL};
