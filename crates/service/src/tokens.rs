//! Tokens: HS256 JWTs carrying `clientId`, `iat`, `exp` and `jti` (and `par`, the parent's
//! `jti`, when renewed), signed with a secret kept in the data directory (mode 0600) or given
//! by `VISAGE_JWT_SECRET`. Revocation is looked up in the store on every request (see
//! `Service::authenticate`).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use store::ClientId;

use crate::error::{Error, Result};

const SECRET_FILE: &str = "jwt-secret";
/// How far in the future a token's `iat` may be (clocks of nodes differ a little); beyond,
/// the token is refused.
pub const MAX_CLOCK_SKEW_SECS: i64 = 60;
/// Renewed tokens live `expiresIn` months: 1 by default, at most this unless the operator
/// sets another maximum (`--token-max-months`).
pub const DEFAULT_MAX_RENEWAL_MONTHS: u32 = 12;
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
    /// file, created with 64 random bytes and mode 0600 on first use (the directory, when
    /// new, with mode 0700). An existing secret file that its group or others may access is
    /// refused: anyone who reads it can sign tokens for every client.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<Secret> {
        if let Ok(value) = std::env::var("VISAGE_JWT_SECRET") {
            if value.len() < 32 {
                return Err(std::io::Error::other(
                    "VISAGE_JWT_SECRET must be at least 32 characters",
                ));
            }
            return Ok(Secret(value.into_bytes()));
        }
        create_private_dir(data_dir)?;
        let path = data_dir.join(SECRET_FILE);
        match fs::File::open(&path) {
            Ok(mut file) => {
                use std::io::Read;
                let mode = file.metadata()?.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        format!(
                            "{} is accessible by other users (mode {mode:03o}): anyone who can \
                             read it can sign tokens. Run `chmod 600 {}` (and consider \
                             replacing the secret, which revokes every token)",
                            path.display(),
                            path.display()
                        ),
                    ));
                }
                let mut text = String::new();
                file.read_to_string(&mut text)?;
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
                // Exactly 0600: the creation mode went through the umask.
                file.set_permissions(fs::Permissions::from_mode(0o600))?;
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
    /// Not valid before (this server issues none; honoured when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The `jti` of the token this one was renewed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub par: Option<String>,
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
    sign(secret, client, now, ttl_secs, None)
}

/// As [`issue`], for a token renewed from the token `parent` (a `jti`), which it names in its
/// `par` claim.
pub fn issue_renewal(
    secret: &Secret,
    client: &ClientId,
    now: i64,
    ttl_secs: i64,
    parent: &str,
) -> Result<(String, Claims)> {
    sign(secret, client, now, ttl_secs, Some(parent.to_owned()))
}

fn sign(
    secret: &Secret,
    client: &ClientId,
    now: i64,
    ttl_secs: i64,
    parent: Option<String>,
) -> Result<(String, Claims)> {
    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti)
        .map_err(|e| Error::internal(format!("no randomness for a token id: {e}")))?;
    let claims = Claims {
        client_id: client.as_str().to_owned(),
        iat: now,
        exp: now + ttl_secs,
        jti: hex::encode(jti),
        nbf: None,
        par: parent,
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

/// Checks the signature (constant time), the algorithm, the times and the expiry. A token not
/// valid yet (`nbf` in the future) or issued in the future (`iat` more than
/// [`MAX_CLOCK_SKEW_SECS`] ahead) is [`TokenError::Malformed`]: no server of ours makes one.
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
    if claims.nbf.is_some_and(|nbf| nbf > now) || claims.iat > now + MAX_CLOCK_SKEW_SECS {
        return Err(TokenError::Malformed);
    }
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

/// Creates `dir` (and missing parents) with mode 0700 whatever the umask; an existing one is
/// left as the operator made it.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
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

    /// A token with these claims, well signed.
    fn signed(claims: &serde_json::Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut mac = secret().mac();
        mac.update(input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{input}.{sig}")
    }

    #[test]
    fn tokens_from_the_future_are_refused() {
        let at = |iat: i64, nbf: Option<i64>| {
            let mut c =
                serde_json::json!({"clientId": "acme", "iat": iat, "exp": 10_000, "jti": "j"});
            if let Some(nbf) = nbf {
                c["nbf"] = nbf.into();
            }
            verify(&secret(), &signed(&c), 1_000).map(|c| (c.iat, c.nbf))
        };
        assert_eq!(at(1_000, None), Ok((1_000, None)));
        assert_eq!(at(1_060, None), Ok((1_060, None)), "a minute of clock skew");
        assert_eq!(at(1_061, None), Err(TokenError::Malformed));
        assert_eq!(at(900, Some(1_000)), Ok((900, Some(1_000))));
        assert_eq!(at(900, Some(1_001)), Err(TokenError::Malformed));
    }

    #[test]
    fn renewed_tokens_name_their_parent() {
        let client = ClientId::parse("acme").expect("valid");
        let (parent, p) = issue(&secret(), &client, 1_000, 60).expect("issued");
        assert_eq!(p.par, None);
        assert!(!parent.contains("par"), "no claim without a parent");
        let (child, c) = issue_renewal(&secret(), &client, 1_010, 60, &p.jti).expect("issued");
        assert_eq!(verify(&secret(), &child, 1_011), Ok(c.clone()));
        assert_eq!(c.par.as_deref(), Some(p.jti.as_str()));
        assert_ne!(c.jti, p.jti);
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(format!("{:?}", secret()), "Secret(<redacted>)");
    }

    #[test]
    fn secret_file_is_private_and_stable() {
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

    #[test]
    fn a_secret_others_can_read_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("new").join("data");
        Secret::load_or_create(&data).expect("created");
        let mode = |p: &Path| fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        let file = data.join(SECRET_FILE);
        for lax in [0o640, 0o604, 0o620] {
            fs::set_permissions(&file, fs::Permissions::from_mode(lax)).expect("chmod");
            let e = Secret::load_or_create(&data).expect_err("refused");
            let text = e.to_string();
            assert!(text.contains(&file.display().to_string()), "{text}");
            assert!(
                text.contains(&format!("chmod 600 {}", file.display())),
                "{text}"
            );
        }
        fs::set_permissions(&file, fs::Permissions::from_mode(0o400)).expect("chmod");
        Secret::load_or_create(&data).expect("owner-only is fine");
    }
}
