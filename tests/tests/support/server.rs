//! The server binary under test: one builder for its config and tokens, restartable on its
//! data directory, with the requests the tests make of it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::site::Site;
use super::{Proc, bin, free_port, http, wait_for};

/// How long a start may take: opening the store replays its log.
const START_LIMIT: Duration = Duration::from_secs(30);

/// What a test asks of the server before it starts.
pub struct TestServerBuilder {
    dir: PathBuf,
    config: Config,
    factory_tokens: Vec<String>,
    read_token: bool,
    admin_token: bool,
}

/// The parts of `server.toml` a test chooses.
#[derive(Clone)]
struct Config {
    site: Site,
    /// `host:port`, or `127.0.0.1:0` for a port the server picks (learnt from its
    /// listen-address file).
    listen: String,
    server_keys: Vec<String>,
    anonymous_read: String,
    api_keys: Vec<String>,
    tail: Vec<String>,
    /// Command-line arguments before `--config` (`--log-format json`) and environment.
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// A token the admin command created: its id (for revoking it) and its secret.
#[derive(Debug, Clone)]
pub struct Token {
    pub id: String,
    pub secret: String,
}

pub struct TestServer {
    dir: PathBuf,
    data: PathBuf,
    conf: PathBuf,
    config: Config,
    url: String,
    proc: Option<Proc>,
    starts: usize,
    factory_tokens: Vec<(String, Token)>,
    read_token: Option<Token>,
    admin_token: Option<Token>,
}

impl TestServer {
    /// A server whose config, data directory and logs go in `dir`; by default on
    /// [`Site::mae_moh`], anonymous reads from loopback, no tokens.
    pub fn builder(dir: &Path) -> TestServerBuilder {
        TestServerBuilder {
            dir: dir.to_path_buf(),
            config: Config {
                site: Site::mae_moh(),
                listen: "127.0.0.1:0".into(),
                server_keys: Vec::new(),
                anonymous_read: "loopback".into(),
                api_keys: Vec::new(),
                tail: Vec::new(),
                args: Vec::new(),
                env: Vec::new(),
            },
            factory_tokens: Vec::new(),
            read_token: false,
            admin_token: false,
        }
    }
}

impl TestServer {
    /// The compliance and indicator tests' server: [`Site::area_one`], the engine ticking
    /// every 200 ms, write tokens for f1 and f2, a read and an admin token.
    pub fn judging(dir: &Path) -> TestServerBuilder {
        TestServer::builder(dir)
            .site(Site::area_one())
            .compliance_tick_ms(200)
            .factory_tokens(&["f1", "f2"])
            .read_token()
            .admin_token()
    }
}

impl TestServerBuilder {
    pub fn site(mut self, site: Site) -> Self {
        self.config.site = site;
        self
    }

    /// More keys of `[server]` (`max_body_bytes = 65536`).
    pub fn server_keys(mut self, keys: &str) -> Self {
        self.config.server_keys.push(keys.into());
        self
    }

    /// More tables (`[ingest]`, `[store]`, `[[webhook]]`…), appended to the config.
    pub fn config_tail(mut self, toml: &str) -> Self {
        self.config.tail.push(toml.into());
        self
    }

    /// The compliance engine's tick: how soon it judges what it was handed.
    pub fn compliance_tick_ms(self, ms: u64) -> Self {
        self.config_tail(&format!("[compliance]\ntick_ms = {ms}"))
    }

    /// `[api] anonymous_read`: `loopback` (the default here) or `never`.
    pub fn anonymous_read(mut self, when: &str) -> Self {
        self.config.anonymous_read = when.into();
        self
    }

    /// More keys of `[api]` (`trusted_proxies = ["127.0.0.1/32"]`).
    pub fn api_keys(mut self, keys: &str) -> Self {
        self.config.api_keys.push(keys.into());
        self
    }

    /// A command-line argument of the server (`--log-format`, `json`).
    pub fn arg(mut self, arg: &str) -> Self {
        self.config.args.push(arg.into());
        self
    }

    /// An environment variable of the server (`RUST_LOG`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.config.env.push((key.into(), value.into()));
        self
    }

    /// Listens on a port chosen now and kept across restarts, for peers configured with the
    /// server's URL before it starts (an agent).
    pub fn fixed_port(mut self) -> Self {
        self.config.listen = free_port().to_string();
        self
    }

    /// A write token for each factory, created before the start.
    pub fn factory_tokens(mut self, factories: &[&str]) -> Self {
        self.factory_tokens.extend(factories.iter().map(|f| f.to_string()));
        self
    }

    pub fn read_token(mut self) -> Self {
        self.read_token = true;
        self
    }

    pub fn admin_token(mut self) -> Self {
        self.admin_token = true;
        self
    }

    /// Writes the config, creates the tokens, starts the server and waits until it listens.
    pub async fn start(self) -> TestServer {
        // The server (or its token command) makes the data directory, with its own mode.
        let data = self.dir.join("server");
        let conf = self.dir.join("server.toml");
        let factory_tokens =
            self.factory_tokens.iter().map(|f| (f.clone(), create_token(&data, &["--factory", f]))).collect();
        let read_token = self.read_token.then(|| create_token(&data, &["--read"]));
        let admin_token = self.admin_token.then(|| create_token(&data, &["--admin"]));
        let mut server = TestServer {
            dir: self.dir,
            data,
            conf,
            config: self.config,
            url: String::new(),
            proc: None,
            starts: 0,
            factory_tokens,
            read_token,
            admin_token,
        };
        server.restart().await;
        server
    }
}

impl TestServer {
    /// `http://host:port`, of the running server.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Host and port of the running server.
    pub fn addr(&self) -> SocketAddr {
        self.url.trim_start_matches("http://").parse().expect("the listen-address is host:port")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    pub fn config_path(&self) -> &Path {
        &self.conf
    }

    /// The write token of `factory`, made by [`TestServerBuilder::factory_tokens`].
    pub fn token(&self, factory: &str) -> &str {
        let found = self.factory_tokens.iter().find(|(f, _)| f == factory);
        &found.unwrap_or_else(|| panic!("no write token for {factory}: ask factory_tokens")).1.secret
    }

    pub fn read_token(&self) -> &str {
        &self.read_token.as_ref().expect("no read token: ask read_token").secret
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token.as_ref().expect("no admin token: ask admin_token").secret
    }

    /// Creates another token on the data directory (the running server sees it): `args` as
    /// `eitwatch-server token create` takes them (`--factory f1`, `--read`, `--admin`).
    pub fn create_token(&self, args: &[&str]) -> Token {
        create_token(&self.data, args)
    }

    /// `eitwatch-server token <args…>` on the data directory: stdout and stderr.
    pub fn token_command(&self, args: &[&str]) -> (String, String) {
        token_command(&self.data, args)
    }

    /// The running server's log (this start's only).
    pub fn log(&self) -> String {
        self.proc.as_ref().map(Proc::log).unwrap_or_default()
    }

    /// The running server's process id.
    pub fn pid(&self) -> u32 {
        self.proc.as_ref().expect("the server runs").pid()
    }

    /// SIGTERM, waiting for the exit: a clean stop (the server flushes and closes its
    /// store). Returns the stopped server's log.
    pub fn stop(&mut self) -> String {
        let Some(mut p) = self.proc.take() else { return String::new() };
        p.terminate();
        p.log()
    }

    /// SIGKILL: nothing is flushed or saved on the way out.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Stops the server (if it runs) and starts it again on the same config and data
    /// directory; each start logs to its own file (`server.log`, `server-2.log`, …).
    pub async fn restart(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(self.data.join("listen-address"));
        let proc = self.spawn();
        self.url = listening(&self.data, "the server").await;
        self.proc = Some(proc);
    }

    /// Restarts with `[server]`'s extra keys replaced by `keys`.
    pub async fn restart_with_server_keys(&mut self, keys: &str) {
        self.config.server_keys = vec![keys.into()];
        self.restart().await;
    }

    /// Restarts with the tables appended to the config replaced by `toml` (a fixed
    /// `[[ingest.mapping]]`, say).
    pub async fn restart_with_config_tail(&mut self, toml: &str) {
        self.config.tail = vec![toml.into()];
        self.restart().await;
    }

    /// Stops the server (if it runs), starts it again and waits for it to refuse to start;
    /// returns its log.
    pub async fn restart_refused(&mut self) -> String {
        self.kill();
        let mut proc = self.spawn();
        let status = wait_for("the server to refuse to start", START_LIMIT, || {
            let status = proc.try_wait();
            async move { status }
        })
        .await;
        assert!(!status.success(), "the server started: {}", proc.log());
        proc.log()
    }

    fn spawn(&mut self) -> Proc {
        std::fs::write(&self.conf, self.config.to_toml(&self.data)).expect("server.toml");
        self.starts += 1;
        let name = if self.starts == 1 { "server".to_string() } else { format!("server-{}", self.starts) };
        let mut command = Command::new(bin("eitwatch-server"));
        command.args(&self.config.args).arg("--config").arg(&self.conf);
        command.envs(self.config.env.iter().map(|(k, v)| (k, v)));
        Proc::spawn(&name, &self.dir, &mut command)
    }

    /// GETs a JSON document anonymously; fails on any status but success.
    pub async fn get_json(&self, path_and_query: &str) -> serde_json::Value {
        get_json(&format!("{}{path_and_query}", self.url)).await
    }

    /// GETs with a token (or none).
    pub async fn get(&self, token: Option<&str>, path_and_query: &str) -> reqwest::Response {
        let url = format!("{}{path_and_query}", self.url);
        let mut req = http().get(&url);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Token {t}"));
        }
        req.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    /// GETs a JSON document with a token: status and body (Null when it is not JSON).
    pub async fn get_json_as(&self, token: &str, path_and_query: &str) -> (u16, serde_json::Value) {
        let r = self.get(Some(token), path_and_query).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    }

    /// POSTs `body` with a token: status and body text.
    pub async fn post(&self, token: &str, path: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let url = format!("{}{path}", self.url);
        let r = http()
            .post(&url)
            .header("Authorization", format!("Token {token}"))
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    /// POSTs a JSON document with a token: status and body (Null when it is not JSON).
    pub async fn post_json(&self, token: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let (status, text) = self.post(token, path, body.to_string()).await;
        (status, serde_json::from_str(&text).unwrap_or_default())
    }

    /// Writes line protocol (ns precision) with a token: the status.
    pub async fn write(&self, token: &str, body: String) -> u16 {
        write(&self.url, token, body).await.unwrap_or_else(|e| panic!("write to {}: {e}", self.url)).0
    }

    /// Writes line protocol (ns precision) with `factory`'s write token: the status.
    pub async fn write_as(&self, factory: &str, body: String) -> u16 {
        self.write(self.token(factory), body).await
    }

    /// `GET /api/v1/readings?<query>` with a token (or none): status and the readings.
    pub async fn readings(&self, token: Option<&str>, query: &str) -> (u16, Vec<serde_json::Value>) {
        let r = self.get(token, &format!("/api/v1/readings?{query}")).await;
        let status = r.status().as_u16();
        let v: serde_json::Value = r.json().await.expect("readings JSON");
        (status, v["readings"].as_array().cloned().unwrap_or_default())
    }

    /// `(time_ns, value)` of one series, read anonymously.
    pub async fn series(&self, factory: &str, parameter: &str) -> Vec<(i64, f64)> {
        series(&self.url, factory, parameter).await
    }

    /// `(time_ns, value)` of one series, read with `token`.
    pub async fn series_as(&self, token: &str, factory: &str, parameter: &str) -> Vec<(i64, f64)> {
        let (status, rows) = self.readings(Some(token), &format!("factory={factory}&parameter={parameter}")).await;
        assert_eq!(status, 200, "readings of {factory}/{parameter}");
        time_values(&rows)
    }

    /// Polls the alerts of a kind until there are at least `want`; returns them.
    pub async fn alerts(&self, kind: &str, want: usize) -> Vec<serde_json::Value> {
        let path = format!("/api/v1/alerts?kind={kind}");
        wait_for(&format!("{want} {kind} alert(s)"), Duration::from_secs(30), || {
            let path = path.clone();
            async move {
                let v = self.get_json(&path).await;
                v["alerts"].as_array().filter(|a| a.len() >= want).cloned()
            }
        })
        .await
    }

    /// The live event stream, opened anonymously.
    pub async fn events(&self) -> super::events::EventStream {
        super::events::EventStream::open(&self.url).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Config {
    fn to_toml(&self, data: &Path) -> String {
        let mut toml = format!("[server]\nlisten = \"{}\"\ndata_dir = \"{}\"\n", self.listen, data.display());
        for keys in &self.server_keys {
            toml.push_str(&format!("{keys}\n"));
        }
        toml.push_str(&format!("[api]\nanonymous_read = \"{}\"\n", self.anonymous_read));
        for keys in &self.api_keys {
            toml.push_str(&format!("{keys}\n"));
        }
        for table in &self.tail {
            toml.push_str(&format!("{table}\n"));
        }
        toml.push_str(&self.site.to_toml());
        toml
    }
}

/// Waits for the listen-address file a server writes in its data directory once it accepts
/// connections (`what` names the server); returns its base URL.
pub async fn listening(data_dir: &Path, what: &str) -> String {
    let addr_file = data_dir.join("listen-address");
    let addr = wait_for(&format!("{what} to listen ({})", addr_file.display()), START_LIMIT, || {
        let f = addr_file.clone();
        async move { std::fs::read_to_string(f).ok().filter(|s| !s.is_empty()) }
    })
    .await;
    format!("http://{addr}")
}

/// `eitwatch-server token <args[0]> --data-dir <data> <args[1..]>`: stdout and stderr.
fn token_command(data: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(bin("eitwatch-server"))
        .arg("token")
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

fn create_token(data: &Path, args: &[&str]) -> Token {
    let mut all = vec!["create"];
    all.extend_from_slice(args);
    let (stdout, stderr) = token_command(data, &all);
    let id = stderr.trim().strip_prefix("token id ").expect("token id on stderr").to_string();
    Token { id, secret: stdout.trim().to_string() }
}

pub async fn get_json(url: &str) -> serde_json::Value {
    let r = http().get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.json().await.expect("json")
}

/// `(time_ns, value)` of one series, read anonymously from the server at `url`.
pub async fn series(url: &str, factory: &str, parameter: &str) -> Vec<(i64, f64)> {
    let v = get_json(&format!("{url}/api/v1/readings?factory={factory}&parameter={parameter}")).await;
    time_values(v["readings"].as_array().expect("readings"))
}

fn time_values(rows: &[serde_json::Value]) -> Vec<(i64, f64)> {
    rows.iter().map(|r| (r["time_ns"].as_i64().expect("time_ns"), r["value"].as_f64().expect("value"))).collect()
}

/// POSTs line protocol (ns precision) to the server at `url` with a token: status and body.
/// An error when the server is gone (the store tests kill it under load).
pub async fn write(url: &str, token: &str, body: String) -> Result<(u16, String), reqwest::Error> {
    let r = http()
        .post(format!("{url}/api/v2/write?org=eitwatch&bucket=eitwatch&precision=ns"))
        .header("Authorization", format!("Token {token}"))
        .body(body)
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.text().await.unwrap_or_default()))
}

/// A response: status, `Retry-After`, JSON body (Null for an empty one).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: serde_json::Value,
}

/// POSTs to `url` with `headers`; the body of the reply must be JSON or empty.
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
