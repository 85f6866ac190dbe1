//! What a use case can fail with, in the service's own terms (never an HTTP status: the
//! server maps each variant in its one error table).

use store::Person;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No token, or one that is malformed or badly signed.
    #[error("not authenticated")]
    Unauthenticated,
    /// A well-formed token that has expired or was revoked.
    #[error("token expired or revoked")]
    TokenExpired,
    /// An input the store refuses (too long, NUL characters, ...); nothing was written.
    #[error("invalid {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    #[error("person not found")]
    PersonNotFound,
    /// An unknown collection (or another client's).
    #[error("unknown collection")]
    CollectionNotFound,
    /// A person with the same name and date of birth is already in a requested collection.
    #[error("person already set")]
    DuplicatePerson(Box<Person>),
    /// Live enrolment found someone at or above the threshold in the collection.
    #[error("duplicated person")]
    DuplicatedFace,
    /// The probe's live score is not above the threshold.
    #[error("liveness failed")]
    LivenessFailed,
    #[error("no face detected")]
    NoFace,
    /// The face is too small for a trustworthy live score.
    #[error("face too small")]
    FaceTooSmall,
    /// A liveness step was asked for and the liveness models are not installed.
    #[error("liveness not available")]
    LivenessUnavailable,
    #[error("image: {0}")]
    Image(ImageError),
    /// The client's faces were embedded by a model this service does not load (the operator
    /// changed `--embedder` without moving the client, or another node moved it).
    #[error("embedding model {model} not served")]
    ModelNotServed { model: String },
    /// The CPU queue is full or the database cannot be reached: try again shortly.
    #[error("busy")]
    Busy,
    /// Anything unexpected; the detail is for the log only.
    #[error("internal: {0}")]
    Internal(String),
}

/// Why an image string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// Not base64, or too short to be an image.
    #[error("not base64")]
    NotBase64,
    /// An `http(s)://` address that no allowed prefix admits (or no prefix is allowed).
    #[error("image urls disabled")]
    UrlsDisabled,
    /// An allowed URL whose host resolves to an address that is not public.
    #[error("image url not allowed")]
    UrlNotAllowed,
    /// An allowed URL that could not be fetched in time: no answer, an error status, a
    /// redirect (never followed), or the deadline passed.
    #[error("image url unreachable")]
    UrlUnreachable,
    /// An allowed URL whose bytes (with the request's other fetches) exceed the body limit.
    #[error("image url too large")]
    UrlTooLarge,
    /// Not a supported image, or damaged.
    #[error("invalid image")]
    Invalid,
    /// More pixels than the decoder accepts.
    #[error("image dimensions too large")]
    DimensionsTooLarge,
    /// More encoded bytes than the decoder accepts.
    #[error("encoded image too large")]
    EncodedTooLarge,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::UnknownCollection(_) => Error::CollectionNotFound,
            store::Error::Invalid { field, reason } => Error::Invalid { field, reason },
            store::Error::PersonAlreadySet(person) => Error::DuplicatePerson(person),
            store::Error::Unavailable(_) => Error::Busy,
            store::Error::ClientModel { client_model, .. } => Error::ModelNotServed {
                model: client_model,
            },
            other => Error::internal(other),
        }
    }
}

impl From<vision::Error> for Error {
    fn from(e: vision::Error) -> Self {
        use vision::DecodeError as D;
        match e {
            vision::Error::Decode(D::NotBase64 | D::Empty) => Error::Image(ImageError::NotBase64),
            vision::Error::Decode(
                D::UnsupportedFormat | D::Corrupt(_) | D::CannotHoldFace { .. },
            ) => Error::Image(ImageError::Invalid),
            vision::Error::Decode(D::DimensionsTooLarge { .. }) => {
                Error::Image(ImageError::DimensionsTooLarge)
            }
            vision::Error::Decode(D::EncodedTooLarge { .. }) => {
                Error::Image(ImageError::EncodedTooLarge)
            }
            vision::Error::FaceTooSmall { .. } => Error::FaceTooSmall,
            other => Error::internal(other),
        }
    }
}
