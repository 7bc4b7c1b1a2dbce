//! Harness for the sources tests: a server whose registry lists the points a test needs,
//! pymodbus in its several modes, socat pty pairs, and readings read back whole.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Proc, bin, get_json, wait_for, workspace_root};

/// Starts the server with one factory `f1` whose points are `points` (all effluent, every
/// parameter a test may use); returns it with its token.
pub async fn server_with_points(dir: &Path, points: &[String]) -> super::Server {
    let data = dir.join("server");
    let conf = dir.join("server.toml");
    let mut toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[api]\nanonymous_read = \"loopback\"\n\
         [[area]]\nid = \"a\"\nname_en = \"A\"\nname_th = \"ก\"\nprovince = \"Lampang\"\n\
         [[area.factory]]\nid = \"f1\"\nname = \"Factory one\"\ncategory = 3\n",
        data.display()
    );
    for p in points {
        toml.push_str(&format!(
            "[[area.factory.point]]\nid = \"{p}\"\nkind = \"effluent\"\nparameters = [\"cod\", \"bod\", \"ph\", \"tss\", \"temp\", \"color\", \"zn\", \"cu\", \"cd\", \"ni\", \"pb\", \"mn\", \"tds\"]\n"
        ));
    }
    std::fs::write(&conf, toml).expect("server.toml");
    let token = super::create_token(&data, "f1");
    let (proc, url) = super::start_server(dir, &conf, &data, Duration::from_secs(20)).await;
    super::Server { proc, url, tokens: vec![("f1".into(), token)] }
}

/// pymodbus (tests/peers/modbus_server.py) with `args`, waited for until it says "ready".
pub async fn pymodbus_with(dir: &Path, name: &str, args: &[String]) -> Proc {
    let root = workspace_root();
    let python = root.join(".peers/venv/bin/python");
    assert!(python.exists(), "{} missing: run scripts/install-peers.sh (scripts/test.sh does)", python.display());
    let proc = Proc::spawn(name, dir, Command::new(python).arg(root.join("tests/peers/modbus_server.py")).args(args));
    wait_for(name, Duration::from_secs(30), || {
        let log = proc.log();
        async move { log.lines().any(|l| l.starts_with("ready ")).then_some(()) }
    })
    .await;
    proc
}

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
pub fn agent_head(dir: &Path, server: &super::Server, points: &[String]) -> String {
    let mut toml = format!(
        "[agent]\nfactory = \"f1\"\ndata_dir = \"{}\"\n[uplink]\nurl = \"{}\"\ntoken = \"{}\"\nbatch_max_age_ms = 100\n",
        dir.join("agent").display(),
        server.url,
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

/// mosquitto on `port` with `extra` lines of configuration; waited for until it listens.
pub async fn mosquitto_on(dir: &Path, name: &str, port: u16, extra: &str) -> Proc {
    let conf = dir.join(format!("{name}.conf"));
    std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}\n")).expect("conf");
    let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("mosquitto");
    let proc = Proc::spawn(name, dir, Command::new(exe).arg("-c").arg(&conf));
    super::wait_for_port(name, std::net::SocketAddr::from(([127, 0, 0, 1], port))).await;
    proc
}

/// Stops a child with SIGTERM (a graceful stop: mosquitto saves its persistence file) and
/// waits for it.
pub fn terminate(proc: &mut Proc) {
    let pid = proc.child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = proc.child.wait();
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
