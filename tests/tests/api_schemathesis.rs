//! schemathesis (PyPI, in .peers/venv) against the server on the demo's site (Mae Moh) with
//! an admin token and no anonymous reads: every operation of the generated OpenAPI document,
//! a fixed number of examples each and a bound on the wall time, with no failure.
//!
//! Every check runs but `positive_data_acceptance`: a request the schema allows may still
//! name a factory the registry does not hold or carry a body that is not line protocol,
//! which the server rightly refuses, and no schema can say which ids are registered.
//!
//! `POST /api/v1/admin/backup` is left out: it writes a backup wherever on the machine an
//! admin asks, and generated paths would litter the file system. `tests/backup.rs` tests it.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{TestServer, workspace_root};

/// Examples per operation and the run's time budget; the wait for schemathesis is bounded
/// a little beyond it.
const MAX_EXAMPLES: u32 = 5;
const MAX_TIME_S: u64 = 120;

/// `EITWATCH_SCHEMATHESIS` if set, else `.peers/venv/bin/schemathesis`.
fn schemathesis() -> PathBuf {
    let exe = std::env::var_os("EITWATCH_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".peers/venv/bin/schemathesis"));
    assert!(exe.exists(), "{} missing: run scripts/install-peers.sh (scripts/test.sh does)", exe.display());
    exe
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_against_the_demo_server() {
    let exe = schemathesis();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::builder(dir.path()).anonymous_read("never").admin_token().start().await;
    let (url, admin) = (server.url().to_string(), server.admin_token().to_string());
    let report = dir.path().join("schemathesis.txt");
    let args = [
        "run".to_string(),
        format!("{url}/api/v1/openapi.json"),
        "--header".into(),
        format!("Authorization: Token {admin}"),
        "--max-examples".into(),
        MAX_EXAMPLES.to_string(),
        "--max-time".into(),
        MAX_TIME_S.to_string(),
        "--request-timeout".into(),
        "2".into(),
        "--exclude-path".into(),
        "/api/v1/admin/backup".into(),
        "--exclude-checks".into(),
        "positive_data_acceptance".into(),
        "--no-shrink".into(),
        "--seed".into(),
        "1".into(),
    ];
    let out = std::fs::File::create(&report).expect("report file");
    // schemathesis keeps a cache in its working directory: the test's, not the repository.
    let cwd = dir.path().to_path_buf();
    let status = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&exe)
            .args(&args)
            .current_dir(&cwd)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("report"))
            .stderr(out)
            .spawn()
            .expect("start schemathesis");
        let deadline = Instant::now() + Duration::from_secs(MAX_TIME_S + 60);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .expect("schemathesis task");
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    drop(server);
    let status = status.unwrap_or_else(|| panic!("schemathesis ran past {} s:\n{text}", MAX_TIME_S + 60));
    assert!(status.success(), "schemathesis found failures ({status}):\n{text}");
}
