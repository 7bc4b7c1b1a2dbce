//! HTTPS (`[server.tls]`): rustls with ring, TLS 1.2 and 1.3, HTTP/1.1.
//!
//! The certificate is swapped without a restart: `cert_file` and `key_file` are read every
//! `check_interval_ms` (and at once on SIGHUP), and when their contents changed, and the
//! new pair loads and matches, new handshakes get it; connections already open keep theirs.
//! Contents, not modification times, are compared: a renewal that swaps a symlink (certbot's
//! `live/` directory) or copies with the old times is still seen. A new pair that does not
//! load (a half-written renewal, a key of another certificate) leaves the previous one
//! served and is logged once, naming the file.
//!
//! With `client_ca_file`, a client without a certificate signed by it is refused at the
//! handshake; that file is read at start only.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use eitwatch_config::server_config::TlsSection;
use eitwatch_config::tls::{TlsError, certified_key, provider};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// The server's TLS: what accepts connections, built from `[server.tls]`, its certificate
/// checked for renewal by a task that [`acceptor`] starts.
pub fn acceptor(section: &TlsSection) -> Result<TlsAcceptor, TlsError> {
    let (cert_pem, key_pem) = (section.cert().read()?, section.key().read()?);
    let current =
        Arc::new(Current(RwLock::new(Arc::new(certified_key(section.cert(), &cert_pem, section.key(), &key_pem)?))));
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError { key: "cert_file", file: section.cert_file.clone(), reason: e.to_string() })?;
    let builder = match section.client_ca() {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()?), provider())
                .build()
                .map_err(|e| TlsError { key: ca.key, file: ca.path.to_string(), reason: e.to_string() })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(current.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Listened for from now on: a SIGHUP's default action would end the process.
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    tokio::spawn(watch(section.clone(), current, (cert_pem, key_pem), hangup));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The certificate served to new handshakes.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A poisoned lock still holds a whole Arc: the swap cannot be half done.
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// Reads the files every `check_interval_ms` and on SIGHUP; swaps in a changed pair that loads.
async fn watch(
    section: TlsSection,
    current: Arc<Current>,
    loaded: (Vec<u8>, Vec<u8>),
    mut hangup: Option<tokio::signal::unix::Signal>,
) {
    // What was last seen (loaded or refused): a change is acted on, and logged, once.
    let mut seen = loaded;
    let mut unreadable: Option<String> = None;
    let period = Duration::from_millis(section.check_interval_ms);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let asked = tokio::select! {
            _ = every.tick() => false,
            Some(()) = async {
                match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            } => true,
        };
        let (cert_pem, key_pem) = match read(&section).await {
            Ok(pair) => pair,
            Err((file, error)) => {
                let problem = format!("{file}: {error}");
                if asked || unreadable.as_ref() != Some(&problem) {
                    tracing::error!(%file, %error, "Cannot read the TLS certificate or key; serving the previous certificate");
                    unreadable = Some(problem);
                }
                continue;
            }
        };
        unreadable = None;
        if seen.0 == cert_pem && seen.1 == key_pem {
            if asked {
                tracing::info!(cert_file = %section.cert_file, "SIGHUP: the TLS certificate and key are unchanged");
            }
            continue;
        }
        match certified_key(section.cert(), &cert_pem, section.key(), &key_pem) {
            Ok(key) => {
                *current.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
                tracing::info!(cert_file = %section.cert_file, key_file = %section.key_file, "TLS certificate reloaded: new connections get it");
            }
            Err(error) => {
                let key = format!("server.tls.{}", error.key);
                tracing::error!(file = %error.file, %key, %error, "TLS certificate not reloaded; serving the previous certificate");
            }
        }
        seen = (cert_pem, key_pem);
    }
}

/// The certificate and key files' contents, or the file that cannot be read and why.
async fn read(section: &TlsSection) -> Result<(Vec<u8>, Vec<u8>), (String, std::io::Error)> {
    let cert = tokio::fs::read(&section.cert_file).await.map_err(|e| (section.cert_file.clone(), e))?;
    let key = tokio::fs::read(&section.key_file).await.map_err(|e| (section.key_file.clone(), e))?;
    Ok((cert, key))
}
