//! Identifier newtypes. Each has a validating `parse`, `Display`, and serde as a plain string
//! (deserialising goes through `parse`, so an invalid id never gets inside the store).

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct IdError {
    /// Which identifier was being parsed (`client id`, `person id`, ...).
    pub kind: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl IdError {
    fn new(kind: &'static str, reason: &'static str) -> Self {
        Self { kind, reason }
    }
}

/// Fills `buf` from the operating system's random source.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS random source failing is not a condition the program can recover from or
    // meaningfully report per id; a weak id would be worse than stopping.
    getrandom::fill(&mut buf).expect("operating system random source unavailable");
    buf
}

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t>::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $t {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                <$t>::parse(s)
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
    };
}

/// The tenant: the `clientId` claim of the caller's token. Every stored object belongs to
/// exactly one client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

impl ClientId {
    /// Longest accepted client id, in characters.
    pub const MAX_LEN: usize = 128;

    /// Accepts a non-empty string of at most [`Self::MAX_LEN`] characters without control
    /// characters or leading or trailing whitespace (`"acme "` would be a tenant of its own
    /// that nobody means).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let id = Self::from_stored(s)?;
        if s.trim() != s {
            return Err(IdError::new("client id", "leading or trailing whitespace"));
        }
        Ok(id)
    }

    /// A client id read back from the store: the rules of [`Self::parse`] but padding, which
    /// builds before it was refused could store (their objects must stay readable).
    pub(crate) fn from_stored(s: &str) -> Result<Self, IdError> {
        const KIND: &str = "client id";
        if s.is_empty() {
            return Err(IdError::new(KIND, "empty"));
        }
        if s.chars().count() > Self::MAX_LEN {
            return Err(IdError::new(KIND, "longer than 128 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(IdError::new(KIND, "contains control characters"));
        }
        Ok(Self(s.to_owned()))
    }

    /// A random client id (24 lowercase hex, like the ObjectIds Verifik uses for clients).
    pub fn new_random() -> Self {
        Self(hex::encode(random_bytes::<12>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_serde!(ClientId);

/// What makes ObjectIds unique: five random bytes drawn once per process (as MongoDB's
/// drivers do) and a counter that starts at a random value.
struct ObjectIdSource {
    process: [u8; 5],
    counter: AtomicU32,
}

/// A new ObjectId, laid out as MongoDB's: the creation time in seconds since the Unix epoch
/// (4 bytes, big-endian), the process's 5 random bytes, a 3-byte big-endian counter. Ids
/// made by one process sort by creation; clients may read the time from the first 8 hex
/// digits, as they do from Verifik's.
fn new_object_id() -> [u8; 12] {
    static SOURCE: OnceLock<ObjectIdSource> = OnceLock::new();
    let source = SOURCE.get_or_init(|| ObjectIdSource {
        process: random_bytes::<5>(),
        counter: AtomicU32::new(u32::from_be_bytes(random_bytes::<4>())),
    });
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Four bytes of seconds last until 2106, as in MongoDB.
    let time = (secs as u32).to_be_bytes();
    let count = source.counter.fetch_add(1, Ordering::Relaxed).to_be_bytes();
    let mut id = [0u8; 12];
    id[..4].copy_from_slice(&time);
    id[4..9].copy_from_slice(&source.process);
    id[9..].copy_from_slice(&count[1..]);
    id
}

fn parse_object_id(kind: &'static str, s: &str) -> Result<String, IdError> {
    if s.len() != 24 {
        return Err(IdError::new(kind, "not 24 hexadecimal digits"));
    }
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(IdError::new(kind, "not 24 hexadecimal digits"));
    }
    Ok(s.to_ascii_lowercase())
}

macro_rules! object_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Accepts 24 hexadecimal digits; upper case is folded to lower case.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                parse_object_id($kind, s).map(Self)
            }

            /// A new ObjectId (creation time, per-process random bytes, counter) as 24
            /// lowercase hex digits.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(hex::encode(new_object_id()))
            }

            /// The creation time an id made by [`Self::new`] carries, in seconds since the
            /// Unix epoch (ids made before visage issued ObjectIds carry a random one).
            pub fn timestamp_secs(&self) -> u32 {
                let b = self.to_bytes();
                u32::from_be_bytes([b[0], b[1], b[2], b[3]])
            }

            /// The 12 bytes the hex digits spell (a compact key for in-memory indexes).
            pub fn to_bytes(&self) -> [u8; 12] {
                let mut out = [0u8; 12];
                // Always valid: `parse` and `new` only make 24 hex digits.
                let _ = hex::decode_to_slice(&self.0, &mut out);
                out
            }

            pub fn from_bytes(bytes: [u8; 12]) -> Self {
                Self(hex::encode(bytes))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        string_serde!($name);
    };
}

object_id!(
    /// A person's `_id`: 24 lowercase hex digits, laid out as a MongoDB ObjectId.
    PersonId,
    "person id"
);
object_id!(
    /// A collection's `_id`: 24 lowercase hex digits, laid out as a MongoDB ObjectId.
    CollectionId,
    "collection id"
);

fn parse_uuid(kind: &'static str, s: &str) -> Result<String, IdError> {
    // Only the hyphenated 36-character form: braces, URNs and bare hex are not ids we issue.
    if s.len() != 36 {
        return Err(IdError::new(kind, "not a hyphenated UUID"));
    }
    let u = Uuid::try_parse(s).map_err(|_| IdError::new(kind, "not a hyphenated UUID"))?;
    Ok(u.hyphenated().to_string())
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Accepts any hyphenated UUID (the ones we issue are v4); stored in lower case.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                parse_uuid($kind, s).map(Self)
            }

            /// A random UUID v4.
            pub fn new_random() -> Self {
                let u = uuid::Builder::from_random_bytes(random_bytes::<16>()).into_uuid();
                Self(u.hyphenated().to_string())
            }

            /// The UUID as one number (a compact key for in-memory indexes).
            pub fn to_u128(&self) -> u128 {
                // Always valid: `parse` and `new_random` only make hyphenated UUIDs.
                Uuid::try_parse(&self.0).map_or(0, |u| u.as_u128())
            }

            pub fn from_u128(v: u128) -> Self {
                Self(Uuid::from_u128(v).hyphenated().to_string())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        string_serde!($name);
    };
}

uuid_id!(
    /// A collection's `code`: a UUID v4 (the id the legacy face engine used for collections).
    CollectionCode,
    "collection code"
);
uuid_id!(
    /// One enrolled face (and its thumbnail): a UUID v4.
    FaceId,
    "face id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids() {
        let id = PersonId::new();
        assert_eq!(id.as_str().len(), 24);
        assert!(id
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(PersonId::parse(id.as_str()), Ok(id.clone()));
        assert_ne!(id, PersonId::new());
        assert_eq!(
            CollectionId::parse("65A1B2C3D4E5F60718293A4B").map(|c| c.to_string()),
            Ok("65a1b2c3d4e5f60718293a4b".to_owned())
        );
        assert!(PersonId::parse("").is_err());
        assert!(PersonId::parse("65a1b2c3d4e5f60718293a4").is_err());
        assert!(PersonId::parse("65a1b2c3d4e5f60718293a4g").is_err());
        assert!(PersonId::parse("65a1b2c3d4e5f60718293a4b0").is_err());
    }

    #[test]
    fn new_ids_are_object_ids_with_their_creation_time() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let ids: Vec<PersonId> = (0..1000).map(|_| PersonId::new()).collect();
        let after = before + 2;
        for id in &ids {
            let t = u64::from(id.timestamp_secs());
            assert!(
                (before..=after).contains(&t),
                "{id}: {t} not in {before}..={after}"
            );
            assert_eq!(PersonId::parse(id.as_str()).as_ref(), Ok(id));
            // One process: the same five bytes after the time.
            assert_eq!(id.to_bytes()[4..9], ids[0].to_bytes()[4..9]);
        }
        let unique: std::collections::HashSet<&PersonId> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        // Later ids count up in their last three bytes (other threads may take counts
        // in between; the counter wraps at 2^24).
        let count = |id: &PersonId| {
            let b = id.to_bytes();
            u32::from_be_bytes([0, b[9], b[10], b[11]])
        };
        let step = count(&ids[1]).wrapping_sub(count(&ids[0])) & 0xFF_FFFF;
        assert!((1..1 << 20).contains(&step), "{step}");
        // A collection id shares the layout (and the counter).
        let c = CollectionId::new();
        assert!((before..=after).contains(&u64::from(c.timestamp_secs())));
        // Ids issued before ObjectIds (12 random bytes) still parse.
        assert!(PersonId::parse("9f3c2a7be01d44c8a5f1b2c3").is_ok());
    }

    #[test]
    fn uuids() {
        let code = CollectionCode::new_random();
        let u = Uuid::parse_str(code.as_str()).map_err(|e| e.to_string());
        assert_eq!(u.map(|u| u.get_version_num()), Ok(4));
        assert_eq!(CollectionCode::parse(code.as_str()), Ok(code));
        assert_eq!(
            FaceId::parse("3F2504E0-4F89-41D3-9A0C-0305E82C3301").map(|f| f.to_string()),
            Ok("3f2504e0-4f89-41d3-9a0c-0305e82c3301".to_owned())
        );
        assert!(FaceId::parse("3f2504e04f8941d39a0c0305e82c3301").is_err());
        assert!(FaceId::parse("not-a-uuid").is_err());
    }

    #[test]
    fn compact_forms_round_trip() {
        let p = PersonId::parse("65A1B2C3D4E5F60718293A4B").expect("id");
        assert_eq!(p.to_bytes()[0], 0x65);
        assert_eq!(PersonId::from_bytes(p.to_bytes()), p);
        let f = FaceId::new_random();
        assert_eq!(FaceId::from_u128(f.to_u128()), f);
        assert_ne!(f.to_u128(), FaceId::new_random().to_u128());
    }

    #[test]
    fn client_ids() {
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse(&"x".repeat(129)).is_err());
        assert!(ClientId::parse(&"é".repeat(128)).is_ok());
        assert!(ClientId::parse("a\nb").is_err());
        for padded in [" acme", "acme ", "\u{a0}acme", "   "] {
            let e = ClientId::parse(padded).map_err(|e| e.to_string());
            assert_eq!(
                e,
                Err("invalid client id: leading or trailing whitespace".to_owned()),
                "{padded:?}"
            );
            if !padded.trim().is_empty() {
                assert!(ClientId::from_stored(padded).is_ok());
            }
        }
        assert!(ClientId::parse("ac me").is_ok());
        assert_eq!(ClientId::new_random().as_str().len(), 24);
    }

    #[test]
    fn serde_is_a_plain_string() -> Result<(), serde_json::Error> {
        let id: CollectionId = serde_json::from_str("\"65A1B2C3D4E5F60718293A4B\"")?;
        assert_eq!(serde_json::to_string(&id)?, "\"65a1b2c3d4e5f60718293a4b\"");
        assert!(serde_json::from_str::<PersonId>("\"nope\"").is_err());
        assert!(serde_json::from_str::<ClientId>("\"\"").is_err());
        Ok(())
    }
}
