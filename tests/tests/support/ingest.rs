//! InfluxData's Python client as a writer, the audit log, gzip bodies: what the ingest tests
//! bring beside the server.

use std::path::Path;
use std::process::{Command, Stdio};

use super::workspace_root;

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
    let mut child = Command::new(super::python())
        .arg(workspace_root().join("tests/peers/influx_client_write.py"))
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
