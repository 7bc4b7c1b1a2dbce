//! The TLS files the configs name (PEM) and the one builder of the clients' TLS.
//!
//! Loading is here, not in each binary, so that `check-config` and a start refuse a missing
//! file, a file without the expected PEM block and a key that is not its certificate's,
//! each under its config key. [`client_config`] builds the rustls client configuration of
//! every HTTP client that has `ca_file`, `client_cert_file` or `client_key_file`: the
//! agent's sinks (`[uplink]`, `[[influxdb]]`) and the server's `[influxdb]` write-through.
//! rustls with ring, TLS 1.2 and 1.3, like the rest of the tree.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::problems::Problems;

/// A TLS file that cannot be used: the config key naming it, the file and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct TlsError {
    /// The key that names the file, within its table (`cert_file`, `ca_file`).
    pub key: &'static str,
    /// The file, as configured.
    pub file: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A PEM file named by a config key.
#[derive(Debug, Clone, Copy)]
pub struct PemFile<'a> {
    /// The key, within its table (`key_file`).
    pub key: &'static str,
    /// The file, as configured.
    pub path: &'a str,
}

impl PemFile<'_> {
    /// The file's bytes.
    pub fn read(&self) -> Result<Vec<u8>, TlsError> {
        std::fs::read(self.path).map_err(|e| self.error(format!("cannot read it: {e}")))
    }

    fn error(&self, reason: impl Into<String>) -> TlsError {
        TlsError { key: self.key, file: self.path.to_string(), reason: reason.into() }
    }

    /// Every certificate in `pem` (this file's contents), in order; at least one.
    pub fn certificates(&self, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(format!("not valid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(self.error("holds no certificate (a PEM \"BEGIN CERTIFICATE\" block)"));
        }
        Ok(certs)
    }

    /// The private key in `pem` (this file's contents).
    pub fn private_key(&self, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
        PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => self.error(
                "holds no private key (a PEM \"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" block)",
            ),
            e => self.error(format!("not valid PEM: {e}")),
        })
    }

    /// The CA certificates in this file, as the only roots trusted.
    pub fn roots(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in self.certificates(&self.read()?)? {
            roots.add(cert).map_err(|e| self.error(format!("not a usable CA certificate: {e}")))?;
        }
        Ok(roots)
    }
}

/// The crypto of every TLS connection: rustls's ring provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain (end entity first) and its private key, from their files' contents;
/// refused when the key is not the certificate's.
pub fn certified_key(
    cert: PemFile<'_>,
    cert_pem: &[u8],
    key: PemFile<'_>,
    key_pem: &[u8],
) -> Result<CertifiedKey, TlsError> {
    let chain = cert.certificates(cert_pem)?;
    let private = key.private_key(key_pem)?;
    CertifiedKey::from_der(chain, private, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            key.error(format!("not the private key of the certificate in {}", cert.path))
        }
        e => key.error(format!("not a usable private key: {e}")),
    })
}

/// [`certified_key`] from the files.
pub fn load_certified_key(cert: PemFile<'_>, key: PemFile<'_>) -> Result<CertifiedKey, TlsError> {
    certified_key(cert, &cert.read()?, key, &key.read()?)
}

/// A client's TLS keys (`ca_file`, `client_cert_file`, `client_key_file` of `[uplink]`,
/// `[[influxdb]]` or the server's `[influxdb]`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientTls<'a> {
    /// PEM file of the CA(s) the server's certificate must chain to, trusted instead of the
    /// system's roots; absent: the system's roots.
    pub ca_file: Option<&'a str>,
    /// PEM file of the client's certificate chain, for a server that asks for one (mTLS).
    pub client_cert_file: Option<&'a str>,
    /// PEM file of its private key.
    pub client_key_file: Option<&'a str>,
}

impl ClientTls<'_> {
    /// Whether no key is set: the HTTP client's own defaults apply.
    pub fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.client_cert_file.is_none() && self.client_key_file.is_none()
    }

    /// Adds the problems of these keys, in the table at `at` (`uplink`, `influxdb[0]`).
    pub fn validate(&self, at: &str, problems: &mut Problems) {
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            problems.push(format!("{at}.client_cert_file"), "client_cert_file and client_key_file go together");
            return;
        }
        if let Err(e) = client_config(self) {
            problems.push(format!("{at}.{}", e.key), e.to_string());
        }
    }
}

/// The rustls configuration of an HTTP/1.1 client with these keys; `None` when none is set.
/// With `ca_file` only its CAs are trusted (a private CA; a public certificate for the same
/// name is refused), without it the system's roots.
pub fn client_config(tls: &ClientTls<'_>) -> Result<Option<rustls::ClientConfig>, TlsError> {
    if tls.is_empty() {
        return Ok(None);
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError { key: "ca_file", file: String::new(), reason: e.to_string() })?;
    let builder = match tls.ca_file {
        Some(path) => builder.with_root_certificates(PemFile { key: "ca_file", path }.roots()?),
        None => {
            use rustls_platform_verifier::BuilderVerifierExt as _;
            builder.with_platform_verifier().map_err(|e| TlsError {
                key: "ca_file",
                file: "(the system's roots)".into(),
                reason: e.to_string(),
            })?
        }
    };
    let mut config = match (tls.client_cert_file, tls.client_key_file) {
        (Some(cert), Some(key)) => {
            let cert = PemFile { key: "client_cert_file", path: cert };
            let key = PemFile { key: "client_key_file", path: key };
            let (cert_pem, key_pem) = (cert.read()?, key.read()?);
            // Checks that the key is the certificate's, naming the files.
            certified_key(cert, &cert_pem, key, &key_pem)?;
            builder
                .with_client_auth_cert(cert.certificates(&cert_pem)?, key.private_key(&key_pem)?)
                .map_err(|e| key.error(format!("not a usable private key: {e}")))?
        }
        (Some(cert), None) => {
            return Err(TlsError {
                key: "client_key_file",
                file: cert.into(),
                reason: "client_cert_file needs client_key_file".into(),
            });
        }
        (None, Some(key)) => {
            return Err(TlsError {
                key: "client_cert_file",
                file: key.into(),
                reason: "client_key_file needs client_cert_file".into(),
            });
        }
        (None, None) => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(config))
}

/// An error's text followed by its causes' (each once). An HTTP client's error names only
/// the URL; why it failed (a certificate refused, as `invalid peer certificate:
/// UnknownIssuer`, a connection refused) is in its causes.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
