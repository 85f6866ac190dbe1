//! HTTPS with rustls (`--tls-cert`, `--tls-key`, PEM). The certificate and key are read at
//! start and again on every SIGHUP, so a renewed certificate is served without a restart;
//! a reload that fails keeps the one in use, and says why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// Where the PEM files are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The acceptor in use, swapped whole on reload.
#[derive(Clone)]
pub struct Tls {
    files: TlsFiles,
    current: Arc<RwLock<TlsAcceptor>>,
}

impl Tls {
    /// Reads and checks the files now: a server that cannot serve HTTPS does not start.
    pub fn load(files: TlsFiles) -> anyhow::Result<Self> {
        let acceptor = acceptor(&files)?;
        Ok(Tls {
            files,
            current: Arc::new(RwLock::new(acceptor)),
        })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        match self.current.read() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the files again; on failure the current certificate stays in use.
    pub fn reload(&self) {
        match acceptor(&self.files) {
            Ok(fresh) => {
                match self.current.write() {
                    Ok(mut a) => *a = fresh,
                    Err(poisoned) => *poisoned.into_inner() = fresh,
                }
                tracing::info!("TLS certificate reloaded");
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "TLS reload failed; keeping the current certificate")
            }
        }
    }
}

/// Handles SIGHUP for as long as the process runs: reloads the certificate when HTTPS is on,
/// and otherwise only says so. Either way SIGHUP never ends the server (its default action
/// would), so `systemctl reload` and `kill -HUP` are always safe.
pub fn reload_on_sighup(tls: Option<Tls>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: a TLS reload needs a restart");
        return;
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match &tls {
                Some(tls) => tls.reload(),
                None => tracing::info!("SIGHUP: nothing to reload (HTTPS is off)"),
            }
        }
    });
}

fn acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    let chain = read_chain(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading a PEM private key from {}", files.key.display()))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("the TLS certificate does not match its key, or is not usable")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing the PEM certificates in {}", path.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "{} holds no PEM certificate",
        path.display()
    );
    Ok(chain)
}
