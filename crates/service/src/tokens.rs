//! Tokens: HS256 JWTs carrying `clientId`, `iat`, `exp` and `jti`, signed with a secret kept
//! in the data directory (mode 0600) or given by `VISAGE_JWT_SECRET`. Revocation is looked up
//! in the store on every request (see `Service::authenticate`).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use store::ClientId;

use crate::error::{Error, Result};

const SECRET_FILE: &str = "jwt-secret";
/// Renewed tokens live `expiresIn` months: 1 by default, at most this.
pub const MAX_RENEWAL_MONTHS: u32 = 12;
/// A month, for token lifetimes.
pub const MONTH_SECS: i64 = 30 * 86_400;
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The signing key. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// `VISAGE_JWT_SECRET` when set (at least 32 bytes), else the data directory's secret
    /// file, created with 64 random bytes and mode 0600 on first use.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<Secret> {
        if let Ok(value) = std::env::var("VISAGE_JWT_SECRET") {
            if value.len() < 32 {
                return Err(std::io::Error::other(
                    "VISAGE_JWT_SECRET must be at least 32 characters",
                ));
            }
            return Ok(Secret(value.into_bytes()));
        }
        fs::create_dir_all(data_dir)?;
        let path = data_dir.join(SECRET_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim()).map_err(std::io::Error::other)?;
                if bytes.len() < 32 {
                    return Err(std::io::Error::other(format!(
                        "{} is too short",
                        path.display()
                    )));
                }
                Ok(Secret(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = vec![0u8; 64];
                getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                file.write_all(hex::encode(&bytes).as_bytes())?;
                file.sync_all()?;
                Ok(Secret(bytes))
            }
            Err(e) => Err(e),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length.
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "clientId")]
    pub client_id: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    BadSignature,
    Expired,
}

/// Signs a token for `client` valid `ttl_secs` seconds from `now`. Fails only when the
/// operating system gives no randomness for the token id: a predictable `jti` would let one
/// revocation hit another token.
pub fn issue(
    secret: &Secret,
    client: &ClientId,
    now: i64,
    ttl_secs: i64,
) -> Result<(String, Claims)> {
    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti)
        .map_err(|e| Error::internal(format!("no randomness for a token id: {e}")))?;
    let claims = Claims {
        client_id: client.as_str().to_owned(),
        iat: now,
        exp: now + ttl_secs,
        jti: hex::encode(jti),
    };
    let payload = serde_json::to_vec(&claims).map_err(Error::internal)?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = secret.mac();
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok((format!("{signing_input}.{signature}"), claims))
}

/// Checks the signature (constant time), the algorithm and the expiry.
pub fn verify(secret: &Secret, token: &str, now: i64) -> Result<Claims, TokenError> {
    let claims = decode_unverified(token)?;
    let (signing_input, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed)?;
    let mut mac = secret.mac();
    mac.update(signing_input.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)?;
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// The claims of a token without checking its signature: for the operator's revoke
/// command, which only needs the `jti` and `exp`.
pub fn decode_unverified(token: &str) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(TokenError::Malformed)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(TokenError::Malformed);
    }
    URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or(TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret(vec![7; 32])
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let client = ClientId::parse("acme").expect("valid");
        let (token, claims) = issue(&secret(), &client, 1_000, 60).expect("issued");
        assert_eq!(verify(&secret(), &token, 1_059), Ok(claims));
        assert_eq!(verify(&secret(), &token, 1_060), Err(TokenError::Expired));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let client = ClientId::parse("acme").expect("valid");
        let (token, _) = issue(&secret(), &client, 1_000, 60).expect("issued");
        let other = Secret(vec![8; 32]);
        assert_eq!(verify(&other, &token, 1_001), Err(TokenError::BadSignature));
        let (h, rest) = token.split_once('.').expect("three parts");
        let (_, sig) = rest.split_once('.').expect("three parts");
        let forged =
            URL_SAFE_NO_PAD.encode(br#"{"clientId":"evil","iat":0,"exp":99999999999,"jti":"x"}"#);
        assert_eq!(
            verify(&secret(), &format!("{h}.{forged}.{sig}"), 1_001),
            Err(TokenError::BadSignature)
        );
        let none_alg = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        assert_eq!(
            verify(&secret(), &format!("{none_alg}.{forged}."), 1_001),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            verify(&secret(), "garbage", 1_001),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(format!("{:?}", secret()), "Secret(<redacted>)");
    }

    #[test]
    fn secret_file_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Secret::load_or_create(dir.path()).expect("created");
        let b = Secret::load_or_create(dir.path()).expect("reloaded");
        assert_eq!(a.0, b.0);
        let mode = fs::metadata(dir.path().join(SECRET_FILE))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
