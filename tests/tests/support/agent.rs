//! The agent binary under test: one builder for its config, restartable on its data
//! directory (the outbox survives), with its metrics and status.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Proc, TestServer, bin, http, wait_for};

/// What a test asks of the agent before it starts.
pub struct TestAgentBuilder {
    dir: PathBuf,
    url: String,
    token: String,
    points: Vec<String>,
    /// Keys of `[uplink]` beside `url` and `token`, by name: a test's value replaces the default.
    uplink: BTreeMap<String, String>,
    tail: Vec<String>,
}

pub struct TestAgent {
    dir: PathBuf,
    conf: PathBuf,
    data: PathBuf,
    proc: Option<Proc>,
    starts: usize,
    metrics: Option<SocketAddr>,
}

impl TestAgent {
    /// Factory f1's agent, delivering to `server` with its f1 write token; its config and
    /// logs go in `dir`, its data in `<dir>/agent`. Batches leave after 100 ms; no point,
    /// no source until the test names them.
    pub fn builder(dir: &Path, server: &TestServer) -> TestAgentBuilder {
        TestAgentBuilder {
            dir: dir.to_path_buf(),
            url: server.url().to_string(),
            token: server.token("f1").to_string(),
            points: Vec::new(),
            uplink: BTreeMap::from([("batch_max_age_ms".to_string(), "100".to_string())]),
            tail: Vec::new(),
        }
    }
}

impl TestAgentBuilder {
    /// Delivers somewhere else than the server's own address (a proxy in front of it).
    pub fn url(mut self, url: &str) -> Self {
        self.url = url.into();
        self
    }

    pub fn token(mut self, token: &str) -> Self {
        self.token = token.into();
        self
    }

    /// An effluent point of f1.
    pub fn point(mut self, id: &str) -> Self {
        self.points.push(id.into());
        self
    }

    pub fn points(self, ids: &[String]) -> Self {
        ids.iter().fold(self, |b, id| b.point(id))
    }

    /// A key of `[uplink]`, its value as TOML (`"2"`, `"true"`), replacing any default.
    pub fn uplink(mut self, key: &str, value: &str) -> Self {
        self.uplink.insert(key.into(), value.into());
        self
    }

    /// More tables (`[[modbus]]`, `[[mqtt]]`, `[[influxdb]]`, `[outbox]`), appended to the
    /// config.
    pub fn config_tail(mut self, toml: &str) -> Self {
        self.tail.push(toml.into());
        self
    }

    /// Writes the config, has `check-config` accept it, starts the agent and waits until it
    /// has opened its outbox and serves /metrics.
    pub async fn start(self) -> TestAgent {
        let data = self.dir.join("agent");
        let conf = self.dir.join("agent.toml");
        let toml = self.to_toml(&data);
        std::fs::write(&conf, &toml).expect("agent.toml");
        let check = Command::new(bin("eitwatch-agent")).arg("check-config").arg(&conf).output().expect("check-config");
        assert!(check.status.success(), "{}\n{toml}", String::from_utf8_lossy(&check.stderr));
        let mut agent = TestAgent { dir: self.dir, conf, data, proc: None, starts: 0, metrics: None };
        agent.restart().await;
        agent
    }

    fn to_toml(&self, data: &Path) -> String {
        let mut toml =
            format!("[agent]\nfactory = \"f1\"\ndata_dir = \"{}\"\nmetrics_listen = \"127.0.0.1:0\"\n", data.display());
        for p in &self.points {
            toml.push_str(&format!("[[point]]\nid = \"{p}\"\nkind = \"effluent\"\n"));
        }
        toml.push_str(&format!("[uplink]\nurl = \"{}\"\ntoken = \"{}\"\n", self.url, self.token));
        for (key, value) in &self.uplink {
            toml.push_str(&format!("{key} = {value}\n"));
        }
        for table in &self.tail {
            toml.push_str(&format!("{table}\n"));
        }
        toml
    }
}

impl TestAgent {
    /// Its data directory: the outbox, dead letters, `metrics-address`.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Stops the agent (if it runs, with SIGKILL) and starts it again on the same config and
    /// data directory; each start logs to its own file (`agent.log`, `agent-2.log`, …).
    pub async fn restart(&mut self) {
        self.kill();
        let addr_file = self.data.join("metrics-address");
        let _ = std::fs::remove_file(&addr_file);
        self.starts += 1;
        let name = if self.starts == 1 { "agent".to_string() } else { format!("agent-{}", self.starts) };
        let mut command = Command::new(bin("eitwatch-agent"));
        command.arg("--config").arg(&self.conf).env("RUST_LOG", "info").env("NO_COLOR", "1");
        self.proc = Some(Proc::spawn(&name, &self.dir, &mut command));
        let addr = wait_for("the agent's metrics-address", Duration::from_secs(20), || {
            let f = addr_file.clone();
            async move { std::fs::read_to_string(f).ok().and_then(|s| s.trim().parse::<SocketAddr>().ok()) }
        })
        .await;
        self.metrics = Some(addr);
    }

    /// SIGKILL: what is not yet committed to the outbox is lost.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// The running agent's log (this start's only).
    pub fn log(&self) -> String {
        self.proc.as_ref().map(Proc::log).unwrap_or_default()
    }

    /// `/metrics` as served: its content type and text.
    pub async fn metrics_text(&self) -> (String, String) {
        let addr = self.metrics.expect("agent started");
        let url = format!("http://{addr}/metrics");
        let r = http().get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let kind = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        (kind, r.text().await.expect("metrics text"))
    }

    /// `/metrics`, as `name{labels}` → value.
    pub async fn metrics(&self) -> HashMap<String, f64> {
        let (_, text) = self.metrics_text().await;
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_string(), v.parse().ok()?))))
            .collect()
    }

    pub async fn metric(&self, name: &str) -> f64 {
        let m = self.metrics().await;
        *m.get(name).unwrap_or_else(|| panic!("no {name} in /metrics: {m:?}"))
    }

    /// Polls metric `name` until `ok` holds of it (`what` names the wait).
    pub async fn wait_metric(&self, name: &str, what: &str, ok: impl Fn(f64) -> bool) {
        wait_for(&format!("{what} ({name})"), Duration::from_secs(30), || async {
            ok(self.metric(name).await).then_some(())
        })
        .await;
    }

    /// `eitwatch-agent status --json`, read from the files.
    pub fn status(&self) -> serde_json::Value {
        let out = Command::new(bin("eitwatch-agent"))
            .arg("--config")
            .arg(&self.conf)
            .args(["status", "--json"])
            .output()
            .expect("status");
        assert!(out.status.success(), "status: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.kill();
    }
}
