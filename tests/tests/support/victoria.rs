//! A real VictoriaMetrics on loopback: a store that takes the InfluxDB v2 write API, for the
//! server's write-through and the agent's InfluxDB sink.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, http, wait_for};

/// A VictoriaMetrics on loopback with its own data directory; killed on drop.
pub struct Vm {
    pub addr: SocketAddr,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    tls: Option<VmTls>,
}

/// HTTPS: its certificate and key, and the CA that signed them (which the tests trust).
struct VmTls {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

impl Vm {
    pub async fn start(dir: &Path) -> Vm {
        let mut vm =
            Vm { addr: free_port(), data: dir.join("vm-data"), log: dir.join("vm.log"), child: None, tls: None };
        vm.restart().await;
        vm
    }

    /// One serving HTTPS only (`-tls`) with `cert` and `key`, signed by the CA in `ca`; its
    /// data and log are `<dir>/<name>-data` and `<dir>/<name>.log`.
    pub async fn start_tls(dir: &Path, name: &str, cert: &Path, key: &Path, ca: &Path) -> Vm {
        let tls = VmTls { cert: cert.to_path_buf(), key: key.to_path_buf(), ca: ca.to_path_buf() };
        let (data, log) = (dir.join(format!("{name}-data")), dir.join(format!("{name}.log")));
        let mut vm = Vm { addr: free_port(), data, log, child: None, tls: Some(tls) };
        vm.restart().await;
        vm
    }

    /// Its base URL, `http://` or `https://`.
    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("https://{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    fn client(&self) -> reqwest::Client {
        match &self.tls {
            Some(tls) => super::tls::https(&tls.ca, None),
            None => http(),
        }
    }

    /// Starts it (again) on the same port and data directory, and waits for /health.
    pub async fn restart(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("vm log");
        let mut command = Command::new("victoria-metrics");
        if let Some(tls) = &self.tls {
            command
                .arg("-tls")
                .arg(format!("-tlsCertFile={}", tls.cert.display()))
                .arg(format!("-tlsKeyFile={}", tls.key.display()));
        }
        let child = command
            .arg(format!("-httpListenAddr={}", self.addr))
            .arg(format!("-storageDataPath={}", self.data.display()))
            .arg("-retentionPeriod=100y")
            .arg("-search.latencyOffset=1s")
            // Every export reads what is stored now: the tests poll until it is all there.
            .arg("-search.disableCache")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("vm log"))
            .stderr(log)
            .spawn()
            .expect("victoria-metrics (scripts/install-peers.sh installs it)");
        self.child = Some(child);
        let url = format!("{}/health", self.url());
        let client = self.client();
        wait_for("VictoriaMetrics /health", Duration::from_secs(30), || {
            let (url, client) = (url.clone(), client.clone());
            async move { client.get(url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
    }

    /// Stops it gracefully (SIGTERM: it flushes what it took) and waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    /// Every sample of the metrics named `<prefix>…`: `(metric, factory, timestamp ms, value)`, sorted.
    pub async fn export(&self, prefix: &str) -> Vec<(String, String, i64, f64)> {
        let url = format!("{}/api/v1/export", self.url());
        let text = self
            .client()
            .post(url)
            .form_compat(&[("match[]", format!("{{__name__=~\"{prefix}.*\"}}"))])
            .send()
            .await
            .expect("export")
            .text()
            .await
            .expect("export body");
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).expect("export line");
            let name = v["metric"]["__name__"].as_str().unwrap_or_default().to_string();
            // VictoriaMetrics keeps a string field (quality, not_detected) as a metric of zeros.
            if name.ends_with("_quality") || name.ends_with("_not_detected") {
                continue;
            }
            let factory = v["metric"]["factory"].as_str().unwrap_or_default().to_string();
            let times = v["timestamps"].as_array().expect("timestamps");
            let values = v["values"].as_array().expect("values");
            for (t, x) in times.iter().zip(values) {
                out.push((name.clone(), factory.clone(), t.as_i64().expect("ms"), x.as_f64().expect("value")));
            }
        }
        out.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        out
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Form bodies without reqwest's `form` feature.
trait FormCompat {
    fn form_compat(self, pairs: &[(&str, String)]) -> Self;
}

impl FormCompat for reqwest::RequestBuilder {
    fn form_compat(self, pairs: &[(&str, String)]) -> Self {
        let mut url = reqwest::Url::parse("http://x/").expect("url");
        url.query_pairs_mut().extend_pairs(pairs);
        let body = url.query().unwrap_or_default().to_string();
        self.header("Content-Type", "application/x-www-form-urlencoded").body(body)
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() || std::env::var_os("TEST_LOG").is_some() {
            eprintln!("----- victoria-metrics log -----\n{}", self.log());
        }
    }
}
