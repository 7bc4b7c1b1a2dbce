//! Harness for the sources tests: the agent on a config the test writes, socat pty pairs,
//! an MQTT publisher, certificates, and readings read back whole.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Proc, TestServer, bin, get_json, wait_for};

/// A pseudo-terminal pair joined by socat: what one end writes, the other reads, as over a
/// serial cable. Returns the two device paths.
pub async fn pty_pair(dir: &Path) -> (Proc, PathBuf, PathBuf) {
    let (a, b) = (dir.join("tty-agent"), dir.join("tty-device"));
    let proc = Proc::spawn(
        "socat",
        dir,
        Command::new("socat")
            .arg("-d")
            .arg("-d")
            .arg(format!("pty,raw,echo=0,link={}", a.display()))
            .arg(format!("pty,raw,echo=0,link={}", b.display())),
    );
    let (pa, pb) = (a.clone(), b.clone());
    wait_for("socat's pty pair", Duration::from_secs(10), || {
        let ok = pa.exists() && pb.exists() && proc.log().contains("starting data transfer loop");
        async move { ok.then_some(()) }
    })
    .await;
    (proc, a, b)
}

/// One stored reading, as the read API returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub point: String,
    pub parameter: String,
    pub time_ns: i64,
    pub value: f64,
    pub quality: String,
}

/// Every reading of factory `f1`.
pub async fn stored(url: &str) -> Vec<Stored> {
    let v = get_json(&format!("{url}/api/v1/readings?factory=f1")).await;
    v["readings"]
        .as_array()
        .expect("readings")
        .iter()
        .map(|r| Stored {
            point: r["point"].as_str().unwrap_or_default().to_string(),
            parameter: r["parameter"].as_str().unwrap_or_default().to_string(),
            time_ns: r["time_ns"].as_i64().expect("time_ns"),
            value: r["value"].as_f64().expect("value"),
            quality: r["quality"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// Readings of one point and parameter, oldest first.
pub fn of<'a>(all: &'a [Stored], point: &str, parameter: &str) -> Vec<&'a Stored> {
    let mut v: Vec<&Stored> = all.iter().filter(|r| r.point == point && r.parameter == parameter).collect();
    v.sort_by_key(|r| r.time_ns);
    v
}

/// The `[agent]`, `[[point]]` and `[uplink]` part of an agent.toml for factory `f1`.
pub fn agent_head(dir: &Path, server: &TestServer, points: &[String]) -> String {
    let mut toml = format!(
        "[agent]\nfactory = \"f1\"\ndata_dir = \"{}\"\n[uplink]\nurl = \"{}\"\ntoken = \"{}\"\nbatch_max_age_ms = 100\n",
        dir.join("agent").display(),
        server.url(),
        server.token("f1")
    );
    for p in points {
        toml.push_str(&format!("[[point]]\nid = \"{p}\"\nkind = \"effluent\"\n"));
    }
    toml
}

/// Starts the agent binary on `toml`.
pub fn agent(dir: &Path, name: &str, toml: &str) -> Proc {
    let conf = dir.join(format!("{name}.toml"));
    std::fs::write(&conf, toml).expect("agent.toml");
    let check = Command::new(bin("eitwatch-agent")).arg("check-config").arg(&conf).output().expect("check-config");
    assert!(check.status.success(), "{}\n{toml}", String::from_utf8_lossy(&check.stderr));
    Proc::spawn(
        name,
        dir,
        Command::new(bin("eitwatch-agent")).arg("--config").arg(&conf).env("RUST_LOG", "info").env("NO_COLOR", "1"),
    )
}

/// A QoS 1 publisher that keeps reconnecting (briefly) while the broker is away.
pub struct Publisher {
    pub client: rumqttc::AsyncClient,
}

impl Publisher {
    pub fn connect(port: u16, client_id: &str) -> Publisher {
        let mut options = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
        options.set_clean_session(false);
        let (client, mut events) = rumqttc::AsyncClient::new(options, 1000);
        tokio::spawn(async move {
            loop {
                if events.poll().await.is_err() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Publisher { client }
    }

    pub async fn publish(&self, topic: &str, payload: String) {
        self.client.publish(topic, rumqttc::QoS::AtLeastOnce, false, payload).await.expect("publish");
    }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl;
/// returns the directory holding ca.pem, server.pem/.key, client.pem/.key.
pub fn certificates(dir: &Path) -> PathBuf {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).expect("dir");
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(&certs).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=eitwatch test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    for (name, ext) in [("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")] {
        run(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]);
        std::fs::write(certs.join(format!("{name}.ext")), format!("{ext}\n")).expect("ext");
        run(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ]);
    }
    // mosquitto drops to its own user before reading some of these.
    for entry in std::fs::read_dir(&certs).expect("dir").flatten() {
        let _ = std::fs::set_permissions(entry.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644));
    }
    certs
}
