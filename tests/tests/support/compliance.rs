//! Harness for the compliance tests: a server with an outfall and a boiler stack, tokens of
//! every kind, writes in line protocol, the SSE stream read as text.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::ingest::create_token;
use super::{Proc, bin, wait_for};

pub const SITE: &str = r#"
[server]
listen = "127.0.0.1:0"
data_dir = "DATA"

[api]
anonymous_read = "loopback"

[compliance]
tick_ms = 200

[[area]]
id = "a1"
name_en = "Area one"
name_th = "พื้นที่หนึ่ง"
province = "Rayong"

[[area.factory]]
id = "f1"
name = "Factory one"
category = 3

[[area.factory.point]]
id = "outfall-1"
kind = "effluent"
parameters = ["cod"]

[[area.factory.point]]
id = "stack-1"
kind = "emission"
parameters = ["so2", "o2"]
expected_interval_s = 60
emission = { source = "boiler", fuel = "heavy_oil", combustion = true }

[[area.factory]]
id = "f2"
name = "Factory two"
category = 3

[[area.factory.point]]
id = "outfall-1"
kind = "effluent"
parameters = ["cod"]
"#;

pub struct Tokens {
    pub f1: String,
    pub f2: String,
    pub read: String,
    pub admin: String,
}

pub struct ComplianceServer {
    pub proc: Proc,
    pub url: String,
    pub data: PathBuf,
    conf: PathBuf,
    dir: PathBuf,
}

impl ComplianceServer {
    /// Writes the config, creates tokens, starts the server.
    pub async fn start(dir: &Path) -> (ComplianceServer, Tokens) {
        ComplianceServer::start_with(dir, "").await
    }

    /// The same with more TOML (`[[webhook]]` tables) appended to the config.
    pub async fn start_with(dir: &Path, extra: &str) -> (ComplianceServer, Tokens) {
        let data = dir.join("server");
        std::fs::create_dir_all(&data).expect("data dir");
        let conf = dir.join("server.toml");
        std::fs::write(&conf, format!("{}\n{extra}\n", SITE.replace("DATA", &data.display().to_string())))
            .expect("conf");
        let tokens = Tokens {
            f1: create_token(&data, &["--factory", "f1"]).1,
            f2: create_token(&data, &["--factory", "f2"]).1,
            read: create_token(&data, &["--read"]).1,
            admin: create_token(&data, &["--admin"]).1,
        };
        let (proc, url) = spawn(dir, &data, &conf).await;
        (ComplianceServer { proc, url, data, conf, dir: dir.to_path_buf() }, tokens)
    }

    /// Stops the server and starts it again on the same data directory.
    pub async fn restart(&mut self) {
        self.proc.kill();
        let _ = std::fs::remove_file(self.data.join("listen-address"));
        let (proc, url) = spawn(&self.dir, &self.data, &self.conf).await;
        self.proc = proc;
        self.url = url;
    }

    /// Writes line protocol (ns precision) with a token; returns the status.
    pub async fn write(&self, token: &str, body: String) -> u16 {
        let r = super::http()
            .post(format!("{}/api/v2/write?org=o&bucket=b&precision=ns", self.url))
            .header("Authorization", format!("Token {token}"))
            .body(body)
            .send()
            .await
            .expect("write");
        r.status().as_u16()
    }

    /// GET a JSON document anonymously (loopback).
    pub async fn get(&self, path_and_query: &str) -> serde_json::Value {
        super::get_json(&format!("{}{path_and_query}", self.url)).await
    }

    /// POSTs an acknowledgement; returns the status and body.
    pub async fn ack(&self, token: &str, id: u64, comment: &str) -> (u16, serde_json::Value) {
        let r = super::http()
            .post(format!("{}/api/v1/alerts/{id}/ack", self.url))
            .header("Authorization", format!("Token {token}"))
            .body(serde_json::json!({ "comment": comment }).to_string())
            .send()
            .await
            .expect("ack");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    }

    /// Polls the alerts of a kind until `want` of them are there.
    pub async fn alerts(&self, kind: &str, want: usize) -> Vec<serde_json::Value> {
        let url = format!("{}/api/v1/alerts?kind={kind}", self.url);
        wait_for(&format!("{want} {kind} alert(s)"), Duration::from_secs(30), || {
            let url = url.clone();
            async move {
                let v = super::get_json(&url).await;
                v["alerts"].as_array().filter(|a| a.len() >= want).cloned()
            }
        })
        .await
    }
}

async fn spawn(dir: &Path, data: &Path, conf: &Path) -> (Proc, String) {
    let proc = Proc::spawn("server", dir, Command::new(bin("eitwatch-server")).arg("--config").arg(conf));
    let addr_file = data.join("listen-address");
    let addr = wait_for("the server's listen-address", Duration::from_secs(30), || {
        let f = addr_file.clone();
        async move { std::fs::read_to_string(f).ok().filter(|s| !s.is_empty()) }
    })
    .await;
    (proc, format!("http://{addr}"))
}

/// The SSE stream, read as text.
pub struct EventStream {
    response: reqwest::Response,
    pub text: String,
}

impl EventStream {
    pub async fn open(url: &str) -> EventStream {
        // No overall timeout: the stream stays open.
        let client = reqwest::Client::builder().build().expect("client");
        let response = client.get(format!("{url}/api/v1/events")).send().await.expect("events");
        assert_eq!(response.status().as_u16(), 200);
        let ct = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert!(ct.starts_with("text/event-stream"), "content-type {ct}");
        EventStream { response, text: String::new() }
    }

    /// Reads until the stream's text contains `needle`.
    pub async fn until(&mut self, needle: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.text.contains(needle) {
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no {needle} on the stream; got:\n{}", self.text))
                .expect("stream");
            match chunk {
                Some(bytes) => self.text.push_str(&String::from_utf8_lossy(&bytes)),
                None => panic!("stream ended; got:\n{}", self.text),
            }
        }
    }

    /// Reads until an `event: alert` whose data contains `needle` arrives; returns its data.
    pub async fn alert_containing(&mut self, needle: &str, limit: Duration) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            for block in self.text.split("\n\n") {
                if block.lines().any(|l| l == "event: alert") && block.contains(needle) {
                    let data: String = block.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                    return serde_json::from_str(&data).expect("alert json");
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no alert with {needle} on the stream; got:\n{}", self.text))
                .expect("stream");
            match chunk {
                Some(bytes) => self.text.push_str(&String::from_utf8_lossy(&bytes)),
                None => panic!("stream ended; got:\n{}", self.text),
            }
        }
    }
}

/// `n` lines a minute apart from `start_ns`.
pub fn minutes(
    measurement: &str,
    factory: &str,
    point: &str,
    field: &str,
    value: f64,
    start_ns: i64,
    n: i64,
) -> String {
    (0..n)
        .map(|i| {
            format!("{measurement},factory={factory},point={point} {field}={value} {}\n", start_ns + i * 60_000_000_000)
        })
        .collect()
}

/// A webhook receiver on a loopback port: answers 500 to the first `fail_first` requests,
/// 204 after; keeps every request body.
pub struct WebhookReceiver {
    pub url: String,
    pub bodies: std::sync::Arc<std::sync::Mutex<Vec<(u16, serde_json::Value)>>>,
}

impl WebhookReceiver {
    pub async fn start(fail_first: usize) -> WebhookReceiver {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let bodies: std::sync::Arc<std::sync::Mutex<Vec<(u16, serde_json::Value)>>> = Default::default();
        let kept = bodies.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let length: usize = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= head_end + 4 + length {
                            break Some(buf[head_end + 4..head_end + 4 + length].to_vec());
                        }
                    }
                };
                let Some(body) = body else { continue };
                let status = if kept.lock().expect("lock").len() < fail_first { 500 } else { 204 };
                kept.lock().expect("lock").push((status, serde_json::from_slice(&body).unwrap_or_default()));
                let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = conn.write_all(reply.as_bytes()).await;
            }
        });
        WebhookReceiver { url, bodies }
    }
}
