//! Test harness: real peers and real binaries as child processes on ephemeral loopback
//! ports, killed on drop, waited for by polling with a time limit (never a fixed sleep, never
//! without a limit). Every test starts the server through [`TestServer`] on a [`Site`], and
//! the agent through [`TestAgent`].

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub mod agent;
pub mod events;
pub mod ingest;
pub mod judged;
pub mod lp;
pub mod proxy;
pub mod server;
pub mod site;
pub mod sources;
pub mod tls;
pub mod victoria;
pub mod webhook;

#[allow(unused_imports)] // each test binary uses some
pub use agent::TestAgent;
#[allow(unused_imports)]
pub use server::{TestServer, get_json, series};
#[allow(unused_imports)]
pub use site::{Area, Factory, Point, Site};

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

    /// Its process id (for `prlimit`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops it with SIGTERM (a graceful stop: mosquitto saves its persistence file) and
    /// waits for the exit.
    pub fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("child status")
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

/// The number after `key=` in the first log line holding `line` (its colour codes left out).
pub fn logged_number(log: &str, line: &str, key: &str) -> Option<u64> {
    let l = log.lines().find(|l| l.contains(line))?;
    let mut plain = String::new();
    let mut chars = l.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            plain.push(c);
        }
    }
    let at = plain.find(&format!("{key}="))? + key.len() + 1;
    plain[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    poll_every(Duration::from_millis(100), what, limit, f).await
}

/// Polls `f` every `interval` until it returns `Some`, for at most `limit`; fails naming
/// `what` it waited for.
pub async fn poll_every<T, F, Fut>(interval: Duration, what: &str, limit: Duration, mut f: F) -> T
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
        tokio::time::sleep(interval).await;
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

pub fn http() -> reqwest::Client {
    eitwatch_agent::install_tls_provider();
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client")
}

/// The Python of the test peers' virtualenv.
pub fn python() -> PathBuf {
    let python = workspace_root().join(".peers/venv/bin/python");
    assert!(python.exists(), "{} missing: run scripts/install-peers.sh (scripts/test.sh does)", python.display());
    python
}

/// mosquitto on `port` with `extra` lines of configuration; waited for until it listens.
pub async fn mosquitto(dir: &Path, name: &str, port: u16, extra: &str) -> Proc {
    let conf = format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}\n");
    mosquitto_with_config(dir, name, &conf, port).await
}

/// mosquitto on a whole configuration; waited for until it listens on `port`.
pub async fn mosquitto_with_config(dir: &Path, name: &str, conf: &str, port: u16) -> Proc {
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, conf).expect("mosquitto conf");
    let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("mosquitto");
    let proc = Proc::spawn(name, dir, Command::new(exe).arg("-c").arg(&path));
    wait_for_port(name, SocketAddr::from(([127, 0, 0, 1], port))).await;
    proc
}

/// pymodbus (tests/peers/modbus_server.py) with `args`, waited for until it says "ready".
pub async fn pymodbus(dir: &Path, name: &str, args: &[String]) -> Proc {
    let script = workspace_root().join("tests/peers/modbus_server.py");
    let proc = Proc::spawn(name, dir, Command::new(python()).arg(script).args(args));
    wait_for(name, Duration::from_secs(30), || {
        let log = proc.log();
        async move { log.lines().any(|l| l.starts_with("ready ")).then_some(()) }
    })
    .await;
    proc
}
