//! The TLS keys of both configs (`[server.tls]`, `[uplink]`, `[[influxdb]]`, the server's
//! `[influxdb]`): every file is read at load, and each problem is named by its key: a
//! missing file, a file without the PEM block expected, a key that is not its certificate's.

use std::path::Path;

use eitwatch_config::agent_config::AgentConfig;
use eitwatch_config::problems::load;
use eitwatch_config::server_config::ServerConfig;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// PEM of one DER object.
fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in der.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            text.push(if i <= chunk.len() { ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char } else { '=' });
        }
    }
    let lines: Vec<&str> = text.as_bytes().chunks(64).map(|l| std::str::from_utf8(l).expect("ASCII")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// In `dir`: ca.pem, server.pem and server.key (its key), other.key (another key),
/// empty.pem, and not-pem.txt.
fn files(dir: &Path) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("certificate");
    let other = KeyPair::generate().expect("key");
    for (name, text) in [
        ("ca.pem", pem("CERTIFICATE", ca_cert.der())),
        ("server.pem", pem("CERTIFICATE", cert.der())),
        ("server.key", pem("PRIVATE KEY", &key.serialize_der())),
        ("other.key", pem("PRIVATE KEY", &other.serialize_der())),
        ("empty.pem", String::new()),
        ("not-pem.txt", "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n".to_string()),
    ] {
        std::fs::write(dir.join(name), text).expect("write");
    }
}

fn server(dir: &Path, tls: &str) -> Result<ServerConfig, String> {
    let text =
        format!("[server]\ndata_dir = \"/tmp/x\"\n[server.tls]\n{}", tls.replace("DIR", &dir.display().to_string()));
    load::<ServerConfig>(&text, "server.toml").map_err(|p| p.to_string())
}

#[test]
fn a_good_server_tls_table_loads_with_its_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    files(dir.path());
    let c = server(
        dir.path(),
        "cert_file = \"DIR/server.pem\"\nkey_file = \"DIR/server.key\"\nclient_ca_file = \"DIR/ca.pem\"",
    )
    .unwrap_or_else(|p| panic!("{p}"));
    let tls = c.server.tls.expect("[server.tls]");
    assert_eq!(tls.client_ca_file, Some(format!("{}/ca.pem", dir.path().display())));
    assert_eq!(tls.check_interval_ms, 5000);
    let plain = load::<ServerConfig>("[server]\ndata_dir = \"/tmp/x\"\n", "server.toml").expect("no TLS");
    assert!(plain.server.tls.is_none());
}

#[test]
fn every_server_tls_problem_names_its_key_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    files(dir.path());
    let d = dir.path().display().to_string();
    let cases = [
        (
            "cert_file = \"DIR/missing.pem\"\nkey_file = \"DIR/server.key\"",
            format!(
                "server.toml: server.tls.cert_file: {d}/missing.pem: cannot read it: No such file or directory (os error 2)"
            ),
        ),
        (
            "cert_file = \"DIR/empty.pem\"\nkey_file = \"DIR/server.key\"",
            format!(
                "server.toml: server.tls.cert_file: {d}/empty.pem: holds no certificate (a PEM \"BEGIN CERTIFICATE\" block)"
            ),
        ),
        (
            "cert_file = \"DIR/server.pem\"\nkey_file = \"DIR/server.pem\"",
            format!(
                "server.toml: server.tls.key_file: {d}/server.pem: holds no private key (a PEM \"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" block)"
            ),
        ),
        (
            "cert_file = \"DIR/server.pem\"\nkey_file = \"DIR/other.key\"",
            format!(
                "server.toml: server.tls.key_file: {d}/other.key: not the private key of the certificate in {d}/server.pem"
            ),
        ),
        (
            "cert_file = \"DIR/server.pem\"\nkey_file = \"DIR/server.key\"\nclient_ca_file = \"DIR/nope.pem\"\ncheck_interval_ms = 10",
            format!(
                "server.toml: server.tls.client_ca_file: {d}/nope.pem: cannot read it: No such file or directory (os error 2)\n\
                 server.toml: server.tls.check_interval_ms: must be at least 100"
            ),
        ),
    ];
    for (tls, want) in cases {
        assert_eq!(server(dir.path(), tls).expect_err(tls), want);
    }
    let bad_pem =
        server(dir.path(), "cert_file = \"DIR/not-pem.txt\"\nkey_file = \"DIR/server.key\"").expect_err("bad PEM");
    assert!(
        bad_pem.starts_with(&format!("server.toml: server.tls.cert_file: {d}/not-pem.txt: not valid PEM: ")),
        "{bad_pem}"
    );
    let unknown =
        server(dir.path(), "cert = \"DIR/server.pem\"\nkey_file = \"DIR/server.key\"").expect_err("unknown key");
    assert!(
        unknown.starts_with("server.toml: server.tls.cert: unknown field `cert`, expected one of `cert_file`"),
        "{unknown}"
    );
}

const AGENT: &str = r#"
[agent]
factory = "f1"
[[point]]
id = "outfall-1"
kind = "effluent"
[[mqtt]]
name = "m"
broker = "127.0.0.1:1883"
client_id = "c"
[[mqtt.subscription]]
topic = "f1/{point}/{parameter}"
payload = "json"
"#;

#[test]
fn the_clients_tls_keys_are_checked_under_their_own_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    files(dir.path());
    let d = dir.path().display().to_string();
    let good = format!(
        "{AGENT}[uplink]\nurl = \"https://server\"\ntoken = \"t\"\nca_file = \"{d}/ca.pem\"\n\
         client_cert_file = \"{d}/server.pem\"\nclient_key_file = \"{d}/server.key\"\n"
    );
    let c: AgentConfig = load(&good, "agent.toml").unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(c.uplink.tls().ca_file, Some(format!("{d}/ca.pem").as_str()));

    let bad = format!(
        "{AGENT}[uplink]\nurl = \"https://server\"\ntoken = \"t\"\nca_file = \"{d}/empty.pem\"\n\
         client_cert_file = \"{d}/server.pem\"\n\
         [[influxdb]]\nname = \"historian\"\nurl = \"https://h\"\ntoken = \"t\"\norg = \"o\"\nbucket = \"b\"\n\
         ca_file = \"{d}/ca.pem\"\nclient_cert_file = \"{d}/server.pem\"\nclient_key_file = \"{d}/other.key\"\n"
    );
    let problems = load::<AgentConfig>(&bad, "agent.toml").expect_err("problems").to_string();
    assert_eq!(
        problems,
        format!(
            "agent.toml: uplink.client_cert_file: client_cert_file and client_key_file go together\n\
             agent.toml: influxdb[0].client_key_file: {d}/other.key: not the private key of the certificate in {d}/server.pem"
        )
    );
    let bad_ca = format!("{AGENT}[uplink]\nurl = \"https://server\"\ntoken = \"t\"\nca_file = \"{d}/empty.pem\"\n");
    assert_eq!(
        load::<AgentConfig>(&bad_ca, "agent.toml").expect_err("problems").to_string(),
        format!("agent.toml: uplink.ca_file: {d}/empty.pem: holds no certificate (a PEM \"BEGIN CERTIFICATE\" block)")
    );

    let server = format!(
        "[server]\ndata_dir = \"/tmp/x\"\n[influxdb]\nurl = \"https://h\"\norg = \"o\"\nbucket = \"b\"\ntoken = \"t\"\n\
         ca_file = \"{d}/missing.pem\"\n"
    );
    assert_eq!(
        load::<ServerConfig>(&server, "server.toml").expect_err("problems").to_string(),
        format!(
            "server.toml: influxdb.ca_file: {d}/missing.pem: cannot read it: No such file or directory (os error 2)"
        )
    );
}
