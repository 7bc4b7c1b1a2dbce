//! The API's contract: the generated OpenAPI document and the routes are the same set, read
//! queries are strict, and docs/api.md is what the document generates.

use std::path::{Path, PathBuf};

use eitwatch_config::server_config::ServerConfig;
use eitwatch_server::auth::{Grant, Tokens};

/// The demo's server config on a free port and a fresh data directory.
fn demo_config(data_dir: &Path) -> ServerConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples/server.toml");
    let text = std::fs::read_to_string(&path).expect("config/examples/server.toml");
    let mut config: ServerConfig = eitwatch_config::problems::load(&text, "server.toml").expect("valid");
    config.server.listen = "127.0.0.1:0".into();
    config.server.data_dir = data_dir.display().to_string();
    config
}

struct Server {
    url: String,
    admin: String,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, admin) = Tokens::create(dir.path(), Grant::Admin).expect("admin token");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, _) = eitwatch_server::serve(demo_config(dir.path()), async move {
        let _ = stopped.await;
    })
    .await
    .expect("serve");
    Server { url: format!("http://{addr}"), admin, _stop: stop, _dir: dir }
}

impl Server {
    async fn call(&self, method: &str, path: &str) -> (u16, serde_json::Value) {
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let r = reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .header("Authorization", format!("Token {}", self.admin))
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        // The live stream never ends: its status is what matters.
        if r.headers().get("content-type").is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream")) {
            return (status, serde_json::Value::Null);
        }
        let bytes = r.bytes().await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }
}

fn is_fallback(status: u16, body: &serde_json::Value) -> bool {
    status == 405 || (status == 404 && body["message"].as_str().is_some_and(|m| m.starts_with("no route for")))
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_nothing_else_under_the_api() {
    let server = start().await;
    let doc = serde_json::to_value(eitwatch_server::http::openapi()).expect("json");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 20, "{:?}", paths.keys());
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            let (status, body) = server.call(method, &path.replace("{id}", "1")).await;
            assert!(!is_fallback(status, &body), "{method} {path} is documented but not routed: {status} {body}");
        }
    }
    for path in ["/api/v1/nothing", "/api/v2/query", "/api/v1/alerts/1/unack"] {
        let (status, body) = server.call("get", path).await;
        assert!(is_fallback(status, &body), "{path} is routed but not documented: {status} {body}");
    }
    let (_, served) = server.call("get", "/api/v1/openapi.json").await;
    assert_eq!(served, doc, "the document served is the one generated");
}

/// Only the board's pages are routed outside the documented router: in server/src/http,
/// `.route(` (axum's, which the document does not see) appears in the board's pages only.
#[test]
fn no_route_bypasses_the_document() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir.join("http")).expect("src/http").map(|e| e.expect("entry").path()).collect();
    files.push(dir.join("lib.rs"));
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        for (n, line) in text.lines().enumerate() {
            if line.contains(".route(") || line.contains(".route_service(") || line.contains(".nest(") {
                let board_page = file.ends_with("board.rs") && !line.contains("/api/");
                assert!(board_page, "{}:{}: routed outside the OpenAPI document: {line}", file.display(), n + 1);
            }
        }
    }
}

#[tokio::test]
async fn read_queries_refuse_unknown_keys_and_values_naming_the_key() {
    let server = start().await;
    for (path, key, expected) in [
        ("/api/v1/alerts?kind=bogus", "kind", "exceedance"),
        ("/api/v1/alerts?state=gone", "state", "firing"),
        ("/api/v1/periods?averaging=weekly", "averaging", "hourly"),
        ("/api/v1/periods?outcome=fine", "outcome", "compliant"),
        ("/api/v1/periods?max_rows=many", "max_rows", ""),
        ("/api/v1/readings?facotry=f1", "facotry", "factory"),
        ("/api/v1/readings?to=garbage", "to", "RFC 3339"),
        ("/api/v1/corrections?to=garbage", "to", "RFC 3339"),
        ("/api/v1/gaps?from_ns=soon", "from_ns", "ns"),
        ("/api/v1/status?from=2026-01-01T00:00:00Z&from_ns=1", "from", "not both"),
        ("/api/v1/deviations?from=2026-01-01T00:00:00Z", "from", "factory"),
        ("/api/v1/indicators?period=2026-10&format=pdf", "format", "csv"),
        ("/api/v1/site?x=1", "x", ""),
        ("/api/v1/events?tokn=abc", "tokn", "token"),
    ] {
        let (status, body) = server.call("get", path).await;
        let message = body["message"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{path}: {body}");
        assert!(message.starts_with(&format!("{key}: ")), "{path}: {message}");
        assert!(message.contains(expected), "{path}: {message}");
    }
    // The known values and keys still work, and the write endpoints stay lenient.
    let (status, body) = server.call("get", "/api/v1/alerts?kind=exceedance&state=firing&factory=f1").await;
    assert_eq!((status, body["alerts"].as_array().map(Vec::len)), (200, Some(0)), "{body}");
    let (status, _) = server.call("get", "/ping?whatever=1").await;
    assert_eq!(status, 204);
}

/// docs/api.md is generated from the document: `EITWATCH_WRITE_DOCS=1 cargo test -p
/// eitwatch-server --test api_contract` rewrites it.
#[test]
fn docs_api_md_is_generated_from_the_document() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    let generated = eitwatch_server::http::markdown(&eitwatch_server::http::openapi());
    if std::env::var_os("EITWATCH_WRITE_DOCS").is_some() {
        std::fs::create_dir_all(path.parent().expect("docs")).expect("docs/");
        std::fs::write(&path, &generated).expect("write docs/api.md");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/api.md differs from the OpenAPI document: run EITWATCH_WRITE_DOCS=1 cargo test -p eitwatch-server --test api_contract"
    );
}
