//! Harness for the ingest tests: a server with extra `server.toml` keys, tokens of every kind
//! through the admin command, raw writes, InfluxData's Python client as a writer.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Proc, SERVER_TOML, bin, http, wait_for, workspace_root};

pub struct IngestServer {
    pub proc: Proc,
    pub url: String,
    pub data: PathBuf,
}

/// Starts the server on `support::SERVER_TOML` (factories f1 and f2) with `server_keys` added
/// to `[server]`, `anonymous_read` set, and `tail` (more tables: `[ingest]`, mappings) appended.
pub async fn start(dir: &Path, server_keys: &str, anonymous_read: &str, tail: &str) -> IngestServer {
    let data = dir.join("server");
    let conf = dir.join("server.toml");
    let text = SERVER_TOML
        .replace("data_dir = \"DATA\"", &format!("data_dir = \"{}\"\n{server_keys}", data.display()))
        .replace("anonymous_read = \"loopback\"", &format!("anonymous_read = \"{anonymous_read}\""));
    std::fs::write(&conf, format!("{text}\n{tail}\n")).expect("conf");
    std::fs::create_dir_all(&data).expect("data dir");
    let proc = Proc::spawn("server", dir, Command::new(bin("eitwatch-server")).arg("--config").arg(&conf));
    let addr_file = data.join("listen-address");
    let addr = wait_for("the server's listen-address", Duration::from_secs(20), || {
        let f = addr_file.clone();
        async move { std::fs::read_to_string(f).ok().filter(|s| !s.is_empty()) }
    })
    .await;
    IngestServer { proc, url: format!("http://{addr}"), data }
}

/// `eitwatch-server token <args> --data-dir <data>`; returns stdout (and stderr).
pub fn admin(data: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(bin("eitwatch-server"))
        .args(["token"])
        .args(&args[..1])
        .arg("--data-dir")
        .arg(data)
        .args(&args[1..])
        .output()
        .expect("eitwatch-server token");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string());
    assert!(out.status.success(), "token {args:?}: {stderr}");
    (stdout, stderr)
}

/// Creates a token: `(id, secret)`.
pub fn create_token(data: &Path, args: &[&str]) -> (String, String) {
    let mut all = vec!["create"];
    all.extend_from_slice(args);
    let (stdout, stderr) = admin(data, &all);
    let id = stderr.trim().strip_prefix("token id ").expect("token id on stderr").to_string();
    (id, stdout.trim().to_string())
}

/// A response: status, `Retry-After`, JSON body (Null for an empty one).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: serde_json::Value,
}

pub async fn post(url: &str, headers: &[(&str, &str)], body: impl Into<reqwest::Body>) -> Reply {
    let mut req = http().post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = r.status().as_u16();
    let retry_after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let text = r.text().await.expect("body");
    let body = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {url}: body {text:?} is not JSON: {e}"))
    };
    Reply { status, retry_after, body }
}

/// `GET /api/v1/readings?<query>` with an optional token: status and the readings.
pub async fn readings(url: &str, token: Option<&str>, query: &str) -> (u16, Vec<serde_json::Value>) {
    let mut req = http().get(format!("{url}/api/v1/readings?{query}"));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Token {t}"));
    }
    let r = req.send().await.expect("GET readings");
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.expect("json");
    (status, v["readings"].as_array().cloned().unwrap_or_default())
}

/// `(time_ns, value)` of one factory's parameter, read with `token`.
pub async fn series_of(url: &str, token: &str, factory: &str, parameter: &str) -> Vec<(i64, f64)> {
    let (status, rows) = readings(url, Some(token), &format!("factory={factory}&parameter={parameter}")).await;
    assert_eq!(status, 200);
    rows.iter().map(|r| (r["time_ns"].as_i64().expect("time_ns"), r["value"].as_f64().expect("value"))).collect()
}

/// Runs `tests/peers/influx_client_write.py` (InfluxData's `influxdb-client`) with `points`
/// (JSON) on stdin; returns its exit success and stdout.
pub fn python_client(args: &[&str], points: &serde_json::Value) -> (bool, String) {
    let child = spawn_python_client(args, points);
    let out = child.wait_with_output().expect("python output");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        eprintln!("python client stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    (out.status.success(), stdout)
}

/// [`python_client`] without waiting for it.
pub fn spawn_python_client(args: &[&str], points: &serde_json::Value) -> std::process::Child {
    let root = workspace_root();
    let python = root.join(".peers/venv/bin/python");
    assert!(python.exists(), "{} missing: run scripts/install-peers.sh (scripts/test.sh does)", python.display());
    let mut child = Command::new(python)
        .arg(root.join("tests/peers/influx_client_write.py"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(points.to_string().as_bytes()).expect("points to python");
    }
    child
}

/// The audit log's records.
pub fn audit(data: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(data.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}
