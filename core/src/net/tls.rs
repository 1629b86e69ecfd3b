//! TLS on the hub's own listeners (rustls, ALPN `http/1.1`): the
//! certificate chain and key of [`HubConfig::tls_cert`](crate::HubConfig::tls_cert)
//! and [`tls_key`](crate::HubConfig::tls_key), swapped in place by
//! [`Hub::reload_tls`](crate::Hub::reload_tls) (new handshakes get the new
//! pair; connections already open keep theirs).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where a PEM text comes from: a file (read at start and again on every
/// [`Hub::reload_tls`](crate::Hub::reload_tls)) or bytes the host holds.
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    /// A PEM file, read when the hub starts and on each reload.
    File(PathBuf),
    /// PEM text in memory.
    Bytes(Vec<u8>),
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pem::File(path) => f.debug_tuple("File").field(path).finish(),
            // Never print a key.
            Pem::Bytes(bytes) => write!(f, "Bytes(<{} bytes>)", bytes.len()),
        }
    }
}

impl Pem {
    fn read(&self) -> Result<std::borrow::Cow<'_, [u8]>, TlsError> {
        match self {
            Pem::Bytes(bytes) => Ok(bytes.as_slice().into()),
            Pem::File(path) => {
                std::fs::read(path)
                    .map(Into::into)
                    .map_err(|source| TlsError::Read {
                        path: path.clone(),
                        source,
                    })
            }
        }
    }

    fn name(&self) -> String {
        match self {
            Pem::File(path) => path.display().to_string(),
            Pem::Bytes(_) => "the PEM given".into(),
        }
    }
}

/// Why a TLS certificate and key could not be used. The hub keeps serving
/// the pair it had (or, at start, does not start).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The hub was started without TLS: there is nothing to reload.
    #[error("the hub was started without TLS (tls_cert and tls_key)")]
    NotConfigured,
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The certificate or key is not usable: no certificate, no key, a key
    /// of a kind rustls does not sign with, or a key that does not match
    /// the certificate.
    #[error("{0}")]
    Invalid(String),
}

/// The certificate chain and key to serve, and where they come from.
pub(crate) struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    current: Arc<Current>,
    source: Mutex<(Pem, Pem)>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

/// The pair new handshakes get.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses and checks a certificate chain and its key.
fn load(cert: &Pem, key: &Pem) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_pem = cert.read()?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid(format!("{}: not a PEM certificate: {e}", cert.name())))?;
    if chain.is_empty() {
        return Err(TlsError::Invalid(format!(
            "{}: no CERTIFICATE in it",
            cert.name()
        )));
    }
    let key_pem = key.read()?;
    let der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        TlsError::Invalid(format!("{}: no usable PRIVATE KEY in it ({e})", key.name()))
    })?;
    let signing = provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| TlsError::Invalid(format!("{}: {e}", key.name())))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        TlsError::Invalid(format!(
            "the key in {} does not belong to the certificate in {}: {e}",
            key.name(),
            cert.name()
        ))
    })?;
    Ok(Arc::new(certified))
}

impl Tls {
    /// Reads and checks the pair; the acceptor serves it with ALPN
    /// `http/1.1`.
    pub(crate) fn new(cert: Pem, key: Pem) -> Result<Tls, TlsError> {
        let pair = load(&cert, &key)?;
        let current = Arc::new(Current(RwLock::new(pair)));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Invalid(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            current,
            source: Mutex::new((cert, key)),
        })
    }

    /// Reads the pair again from where it came from (or from `new`, which
    /// then becomes where it comes from) and serves it to new handshakes.
    /// On an error nothing changes.
    pub(crate) fn reload(&self, new: Option<(Pem, Pem)>) -> Result<(), TlsError> {
        let mut source = self.source.lock().unwrap_or_else(|e| e.into_inner());
        let (cert, key) = new.as_ref().unwrap_or(&source);
        let pair = load(cert, key)?;
        *self.current.0.write().unwrap_or_else(|e| e.into_inner()) = pair;
        if let Some(new) = new {
            *source = new;
        }
        Ok(())
    }

    pub(crate) fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }
}

/// The config's text form of a PEM source: its path, `(PEM in memory)`,
/// or empty for none.
pub(crate) fn describe(pem: &Option<Pem>) -> String {
    match pem {
        None => String::new(),
        Some(Pem::File(path)) => path.display().to_string(),
        Some(Pem::Bytes(_)) => "(PEM in memory)".into(),
    }
}

/// A path's PEM source, for the config's text form.
pub(crate) fn file(path: &Path) -> Option<Pem> {
    (!path.as_os_str().is_empty()).then(|| Pem::File(path.to_owned()))
}
