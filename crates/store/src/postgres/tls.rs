//! TLS to PostgreSQL with rustls, configured from the connection URL as libpq reads it:
//! `sslmode` (`disable`, `prefer`, `require`, `verify-full`) and `sslrootcert=FILE`.
//! tokio-postgres itself knows only `disable|prefer|require` and no root certificate, so
//! those two parameters are taken out of the URL here and turned into a rustls config.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider, WebPkiSupportedAlgorithms};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

/// What the URL asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Disable,
    /// TLS when the server offers it; its certificate unchecked.
    Prefer,
    /// TLS or nothing; the certificate checked only when a root certificate is given.
    Require,
    /// TLS, the chain checked against the root certificate and the host name against the
    /// certificate.
    VerifyFull,
}

/// A connection URL split into what tokio-postgres parses and the TLS settings.
#[derive(Debug, PartialEq, Eq)]
struct TlsParams {
    url: String,
    mode: Mode,
    root_cert: Option<PathBuf>,
}

/// The tokio-postgres config and TLS connector for `url`.
pub(crate) fn connection(url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect)> {
    let params = split(url)?;
    let mut cfg: tokio_postgres::Config = params
        .url
        .parse()
        .map_err(|_| Error::invalid("database url", "not a PostgreSQL connection string"))?;
    let roots = params.root_cert.as_deref().map(read_roots).transpose()?;
    let (ssl_mode, client) = match (&params.mode, roots) {
        (Mode::Disable, _) => (SslMode::Disable, unchecked()),
        (Mode::Prefer, _) => (SslMode::Prefer, unchecked()),
        (Mode::Require, None) => (SslMode::Require, unchecked()),
        (Mode::Require | Mode::VerifyFull, Some(roots)) => (SslMode::Require, checked(roots)),
        (Mode::VerifyFull, None) => {
            return Err(Error::invalid(
                "database url",
                "sslmode=verify-full needs sslrootcert=FILE (the CA that signed the server's certificate)",
            ))
        }
    };
    cfg.ssl_mode(ssl_mode);
    Ok((cfg, MakeRustlsConnect::new(client?)))
}

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL's query. A key=value
/// connection string passes through whole (tokio-postgres reads its `sslmode`).
fn split(url: &str) -> Result<TlsParams> {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return Ok(TlsParams {
            url: url.to_owned(),
            mode: if is_url {
                Mode::Prefer
            } else {
                key_value_mode(url)
            },
            root_cert: None,
        });
    };
    let mut mode = Mode::Prefer;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                mode = match value {
                    "disable" => Mode::Disable,
                    "prefer" | "allow" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-full" => Mode::VerifyFull,
                    "verify-ca" => {
                        return Err(Error::invalid(
                            "database url",
                            "sslmode=verify-ca is not supported: use verify-full (the host name is checked too)",
                        ))
                    }
                    _ => return Err(Error::invalid("database url", "unknown sslmode")),
                }
            }
            "sslrootcert" => root_cert = Some(PathBuf::from(percent_decode(value)?)),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(TlsParams {
        url,
        mode,
        root_cert,
    })
}

/// `sslmode` of a key=value string, for choosing the verifier (tokio-postgres applies it).
fn key_value_mode(conn: &str) -> Mode {
    match conn
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("sslmode="))
    {
        Some("disable") => Mode::Disable,
        Some("require") => Mode::Require,
        _ => Mode::Prefer,
    }
}

fn percent_decode(text: &str) -> Result<String> {
    let bad = || Error::invalid("database url", "bad percent-escape in sslrootcert");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

fn read_roots(path: &Path) -> Result<RootCertStore> {
    let unreadable = |why: &str| Error::Tls(format!("sslrootcert {}: {why}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(&e.to_string()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| unreadable(&e.to_string()))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(unreadable("no usable PEM certificate"));
    }
    Ok(roots)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(crypto::ring::default_provider())
}

fn checked(roots: RootCertStore) -> Result<ClientConfig> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn unchecked() -> Result<ClientConfig> {
    let provider = provider();
    let verifier = Arc::new(EncryptOnly(provider.signature_verification_algorithms));
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// `sslmode=require` without a root certificate, as libpq: the channel is encrypted and the
/// handshake signed by the certificate's key, but who the certificate names is not checked.
#[derive(Debug)]
struct EncryptOnly(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_leave_the_url_and_the_rest_stays() {
        let p = split("postgres://u@db:5432/v?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem")
            .expect("parses");
        assert_eq!(p.url, "postgres://u@db:5432/v?application_name=x");
        assert_eq!(p.mode, Mode::VerifyFull);
        assert_eq!(p.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        let p = split("postgres://u@db/v?sslmode=require").expect("parses");
        assert_eq!(
            (p.url.as_str(), p.mode),
            ("postgres://u@db/v", Mode::Require)
        );
        let p = split("postgres://u@db/v").expect("parses");
        assert_eq!(p.mode, Mode::Prefer);
        assert_eq!(
            split("host=db sslmode=disable").expect("kv").mode,
            Mode::Disable
        );
    }

    #[test]
    fn unknown_or_unsupported_modes_and_missing_roots_are_refused() {
        assert!(split("postgres://db/v?sslmode=verify-ca").is_err());
        assert!(split("postgres://db/v?sslmode=bogus").is_err());
        assert!(split("postgres://db/v?sslrootcert=%zz").is_err());
        let Err(err) = connection("postgres://db/v?sslmode=verify-full") else {
            panic!("verify-full without a root certificate was accepted");
        };
        assert!(err.to_string().contains("sslrootcert"), "{err}");
        let Err(err) =
            connection("postgres://db/v?sslmode=verify-full&sslrootcert=/nonexistent.pem")
        else {
            panic!("an unreadable root certificate was accepted");
        };
        assert!(err.to_string().contains("/nonexistent.pem"), "{err}");
    }
}
