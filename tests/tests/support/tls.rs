//! Certificates made in the test with rcgen (a CA, server certificates for 127.0.0.1, client
//! certificates), written as PEM files; HTTPS clients trusting such a CA; and a raw TLS
//! connection that shows which certificate the server presented.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A certificate authority; its certificate is in `pem`.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate's PEM file.
    pub pem: PathBuf,
}

/// A certificate and its key, as PEM, and the certificate's DER (what a server presents).
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl Ca {
    /// A new CA named `name`, its certificate written to `<dir>/<name>.pem`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("eitwatch test {name}"));
        let cert = params.self_signed(&key).expect("CA certificate");
        let pem = dir.join(format!("{name}.pem"));
        std::fs::write(&pem, to_pem("CERTIFICATE", cert.der())).expect("CA PEM");
        Ca { issuer: Issuer::new(params, key), pem }
    }

    /// A server certificate for 127.0.0.1 with this serial, valid from the start of
    /// `from_year` to the start of the year after this one (a renewal: a new serial, a new
    /// validity, a new key).
    pub fn server(&self, serial: u64, from_year: i32) -> Issued {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, "eitwatch server");
        params.serial_number = Some(serial.into());
        params.not_before = rcgen::date_time_ymd(from_year, 1, 1);
        params.not_after = rcgen::date_time_ymd(this_year() + 1, 1, 1);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate (an agent's).
    pub fn client(&self, name: &str) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Issued {
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        Issued {
            cert_pem: to_pem("CERTIFICATE", cert.der()),
            key_pem: to_pem("PRIVATE KEY", &key.serialize_der()),
            der: cert.der().to_vec(),
        }
    }
}

impl Issued {
    /// Writes the certificate and the key as a renewal does: each to a new file renamed over
    /// the old one.
    pub fn write(&self, cert: &Path, key: &Path) {
        for (path, text) in [(cert, &self.cert_pem), (key, &self.key_pem)] {
            let tmp = path.with_extension("new");
            std::fs::write(&tmp, text).expect("PEM");
            std::fs::rename(&tmp, path).expect("rename");
        }
    }

    /// Writes them to `<dir>/<name>.pem` and `<dir>/<name>.key`; returns both paths.
    pub fn write_in(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
        self.write(&cert, &key);
        (cert, key)
    }
}

/// `[server.tls]` with these files (and `more` keys), for `TestServerBuilder::server_keys`.
pub fn server_tls(cert: &Path, key: &Path, more: &str) -> String {
    format!("[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n{more}", cert.display(), key.display())
}

/// A path as a TOML string.
pub fn toml_path(path: &Path) -> String {
    format!("\"{}\"", path.display())
}

/// An HTTPS client trusting only the CA in `ca`, presenting `identity` (certificate and key
/// files) when given.
pub fn https(ca: &Path, identity: Option<(&Path, &Path)>) -> reqwest::Client {
    eitwatch_agent::install_tls_provider();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).expect("CA PEM")).expect("CA");
    let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).tls_certs_only([ca]);
    if let Some((cert, key)) = identity {
        let mut pem = std::fs::read(cert).expect("client certificate");
        pem.extend(std::fs::read(key).expect("client key"));
        builder = builder.identity(reqwest::Identity::from_pem(&pem).expect("identity"));
    }
    builder.build().expect("client")
}

/// A TLS connection to `addr` trusting only the CA in `ca`, its handshake done.
pub async fn connect(addr: SocketAddr, ca: &Path) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read_to_string(ca).expect("CA PEM");
    roots.add(from_pem(&pem).into()).expect("CA root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS handshake")
}

/// The certificate the server presented on this connection (DER).
pub fn presented(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    let (_, connection) = stream.get_ref();
    connection.peer_certificates().and_then(|c| c.first()).expect("a server certificate").to_vec()
}

/// `GET path` on a kept-alive connection: the status and the body.
pub async fn get(stream: &mut TlsStream<TcpStream>, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: eitwatch\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.expect("response");
        assert!(n > 0, "the connection closed mid-response: {}", String::from_utf8_lossy(&read));
        read.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&read).to_string();
        let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
        let length = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
            .and_then(|v| v.parse::<usize>().ok())
            .expect("content-length");
        if body.len() >= length {
            let status = head.get(9..12).and_then(|s| s.parse().ok()).expect("status");
            return (status, body.to_string());
        }
    }
}

/// The current year (UTC): certificates made here are valid now.
pub fn this_year() -> i32 {
    i32::from(jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).year())
}

/// PEM of one DER object.
fn to_pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut base64 = String::new();
    for chunk in der.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                base64.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                base64.push('=');
            }
        }
    }
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("ASCII"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// The DER of the one PEM certificate in `pem`.
fn from_pem(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM certificate").to_vec()
}
