//! Test harness: real peers and real binaries as child processes on ephemeral loopback
//! ports, killed on drop, waited for by polling (never a fixed sleep).

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod compliance;
pub mod ingest;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A binary of this workspace; the test command builds them before the tests run.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} missing: run `cargo build --workspace --bins --tests --examples` first (scripts/test.sh does)",
        path.display()
    );
    path
}

pub fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port")
}

/// A child process, killed on drop; its output goes to `<dir>/<name>.log`, shown on failure
/// or with TEST_LOG set.
pub struct Proc {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, dir: &Path, command: &mut Command) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        Proc { name: name.to_string(), child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() || std::env::var_os("TEST_LOG").is_some() {
            eprintln!("----- {} log -----\n{}", self.name, self.log());
        }
    }
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn wait_for_port(what: &str, addr: SocketAddr) {
    wait_for(
        what,
        Duration::from_secs(20),
        || async move { tokio::net::TcpStream::connect(addr).await.ok().map(|_| ()) },
    )
    .await;
}

pub fn mosquitto(dir: &Path) -> (Proc, SocketAddr) {
    let addr = free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(&conf, format!("listener {} 127.0.0.1\nallow_anonymous true\npersistence false\n", addr.port()))
        .expect("conf");
    let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("mosquitto");
    (Proc::spawn("mosquitto", dir, Command::new(exe).arg("-c").arg(&conf)), addr)
}

pub fn pymodbus(dir: &Path) -> (Proc, SocketAddr) {
    let addr = free_port();
    let root = workspace_root();
    let python = root.join(".peers/venv/bin/python");
    assert!(python.exists(), "{} missing: run scripts/install-peers.sh (scripts/test.sh does)", python.display());
    let script = root.join("tests/peers/modbus_server.py");
    (Proc::spawn("pymodbus", dir, Command::new(python).arg(script).arg("--port").arg(addr.port().to_string())), addr)
}

pub const SERVER_TOML: &str = r#"
[server]
listen = "127.0.0.1:0"
data_dir = "DATA"
[api]
anonymous_read = "loopback"
[[area]]
id = "mae-moh"
name_en = "Mae Moh"
name_th = "แม่เมาะ"
province = "Lampang"
[[area.factory]]
id = "f1"
name = "Factory one"
category = 3
[[area.factory.point]]
id = "outfall-1"
kind = "effluent"
parameters = ["cod", "bod", "ph", "tss", "temp"]
[[area.factory]]
id = "f2"
name = "Factory two"
category = 3
[[area.factory.point]]
id = "outfall-1"
kind = "effluent"
parameters = ["cod"]
"#;

pub struct Server {
    pub proc: Proc,
    pub url: String,
    pub tokens: Vec<(String, String)>,
}

impl Server {
    pub fn token(&self, factory: &str) -> &str {
        self.tokens.iter().find(|(f, _)| f == factory).map(|(_, t)| t.as_str()).expect("token")
    }
}

/// Creates a token per factory with the admin command, starts the server, learns its port.
pub async fn server(dir: &Path, factories: &[&str]) -> Server {
    let data = dir.join("server");
    let conf = dir.join("server.toml");
    std::fs::write(&conf, SERVER_TOML.replace("DATA", &data.display().to_string())).expect("conf");
    let tokens = factories.iter().map(|f| (f.to_string(), create_token(&data, f))).collect();
    let (proc, url) = start_server(dir, &conf, &data, Duration::from_secs(20)).await;
    Server { proc, url, tokens }
}

/// `eitwatch-server token create --factory <factory>` on a data directory: the new write token.
pub fn create_token(data_dir: &Path, factory: &str) -> String {
    let out = Command::new(bin("eitwatch-server"))
        .args(["token", "create", "--data-dir"])
        .arg(data_dir)
        .args(["--factory", factory])
        .output()
        .expect("token create");
    assert!(out.status.success(), "token create: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts the server binary on `conf` (whose data directory is `data_dir`) and waits for the
/// address it writes once listening; returns the process and its base URL.
pub async fn start_server(dir: &Path, conf: &Path, data_dir: &Path, limit: Duration) -> (Proc, String) {
    let addr_file = data_dir.join("listen-address");
    let _ = std::fs::remove_file(&addr_file);
    let proc = Proc::spawn("server", dir, Command::new(bin("eitwatch-server")).arg("--config").arg(conf));
    let addr = wait_for("the server's listen-address", limit, || {
        let f = addr_file.clone();
        async move { std::fs::read_to_string(f).ok().filter(|s| !s.is_empty()) }
    })
    .await;
    (proc, format!("http://{addr}"))
}

pub fn http() -> reqwest::Client {
    eitwatch_agent::install_tls_provider();
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client")
}

pub async fn get_json(url: &str) -> serde_json::Value {
    let r = http().get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.json().await.expect("json")
}

/// `(time_ns, value)` of one series, from the read API.
pub async fn series(url: &str, factory: &str, parameter: &str) -> Vec<(i64, f64)> {
    let v = get_json(&format!("{url}/api/v1/readings?factory={factory}&parameter={parameter}")).await;
    v["readings"]
        .as_array()
        .expect("readings")
        .iter()
        .map(|r| (r["time_ns"].as_i64().expect("time_ns"), r["value"].as_f64().expect("value")))
        .collect()
}
pub mod proxy;
pub mod sources;
pub mod store_peers;
