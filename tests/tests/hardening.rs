//! What the server makes in its data directory is its own: evidence, token hashes and logs
//! carry no permission for other users of the machine.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use support::TestServer;

/// Every file and directory under `dir`, `dir` included, with its permission bits.
fn modes(dir: &Path) -> Vec<(PathBuf, bool, u32)> {
    let meta = std::fs::symlink_metadata(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut out = vec![(dir.to_path_buf(), meta.is_dir(), meta.permissions().mode() & 0o777)];
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            out.extend(modes(&entry.expect("directory entry").path()));
        }
    }
    out
}

#[tokio::test]
async fn the_data_directory_grants_nothing_to_other_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Tokens made before the start (by the token command) and after it; a write, an audited
    // refusal, a registry change: the store, the logs and the token file all exist.
    let server = TestServer::judging(dir.path()).start().await;
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    assert_eq!(server.write_as("f1", format!("effluent,factory=f1,point=outfall-1 cod=50 {now}\n")).await, 204);
    assert_eq!(server.write_as("f1", format!("effluent,factory=f2,point=outfall-1 cod=50 {now}\n")).await, 403);
    let change = serde_json::json!({"op": "point", "factory": "f1",
                                    "point": {"id": "outfall-2", "kind": "effluent", "parameters": ["cod"]}});
    assert_eq!(server.post_json(server.admin_token(), "/api/v1/registry/changes", change).await.0, 201);
    let late = server.create_token(&["--factory", "f2"]);
    assert_eq!(server.write(&late.secret, format!("effluent,factory=f2,point=outfall-1 cod=50 {now}\n")).await, 204);

    let all = modes(server.data_dir());
    let names: Vec<String> =
        all.iter().filter_map(|(p, _, _)| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
    for expected in ["tokens.json", "audit.log", "listen-address"] {
        assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
    }
    for (path, is_dir, mode) in &all {
        assert_eq!(mode & 0o007, 0, "{} is {mode:o}: no bits for other users", path.display());
        if *is_dir {
            assert_eq!(*mode, 0o750, "directory {}", path.display());
        }
        if path.file_name().is_some_and(|n| n == "tokens.json") {
            assert_eq!(*mode, 0o600, "the token hashes are the service user's alone");
        }
    }
}
