//! What anyone who can connect may do to the server, and what it answers: silent and idle
//! connections are closed, a flood of connections leaves `/health` answering, a slow writer
//! holds only its share of the write slots, forwarding headers count only from a trusted
//! proxy, a refusal reaches a client still sending, the board's pages limit what they run.

mod support;

use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use support::{TestServer, wait_for};

/// A client that gives up soon: a request the server does not answer is retried.
fn impatient() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(1)).build().expect("client")
}

/// Reads until the server closes the connection (an end or a reset); what was read, or
/// `None` if it was still open after `limit`.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut read = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut read)).await {
        Ok(_) => Some(read),
        Err(_) => None,
    }
}

fn now_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

#[tokio::test]
async fn a_silent_or_idle_connection_is_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::builder(dir.path()).server_keys("header_read_timeout_ms = 500").start().await;

    let mut silent = TcpStream::connect(server.addr()).await.expect("connect");
    assert!(until_closed(&mut silent, Duration::from_secs(10)).await.is_some(), "a silent connection stays open");

    let mut idle = TcpStream::connect(server.addr()).await.expect("connect");
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: eitwatch\r\n\r\n").await.expect("request");
    let read = until_closed(&mut idle, Duration::from_secs(10)).await.expect("an idle keep-alive connection is closed");
    assert!(read.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&read));
}

#[tokio::test]
async fn with_256_open_files_300_idle_connections_leave_health_answering() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The header timeout is long: the cap, not the timeout, keeps the server answering.
    let server = TestServer::builder(dir.path())
        .server_keys("max_connections = 128\nheader_read_timeout_ms = 60000")
        .start()
        .await;
    let pid = server.pid().to_string();
    let limited = Command::new("prlimit").args(["--pid", &pid, "--nofile=256:256"]).status().expect("prlimit");
    assert!(limited.success(), "prlimit");

    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(server.addr()).await.expect("connect"));
    }
    let client = impatient();
    let health = format!("{}/health", server.url());
    let body: serde_json::Value = wait_for("/health to answer past the cap", Duration::from_secs(10), || async {
        let r = client.get(&health).send().await.ok()?;
        (r.status() == 200).then_some(r.json().await.ok()?)
    })
    .await;
    assert_eq!(body["status"], "pass");
    let site = format!("{}/api/v1/site", server.url());
    let (retry_after, body) = wait_for("a request past the cap to be answered", Duration::from_secs(10), || async {
        let r = client.get(&site).send().await.ok()?;
        assert_eq!(r.status(), 503, "past the cap");
        let retry_after = r.headers().get("retry-after")?.to_str().ok()?.to_string();
        Some((retry_after, r.json::<serde_json::Value>().await.ok()?))
    })
    .await;
    assert_eq!(retry_after, "1");
    assert_eq!(body["code"], "unavailable");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("max_connections")), "{body}");

    drop(idle);
    wait_for("the API to answer once the idle connections are gone", Duration::from_secs(10), || async {
        client.get(&site).send().await.ok().filter(|r| r.status() == 200)
    })
    .await;
}

#[tokio::test]
async fn a_slow_writer_holds_only_its_share_of_the_write_slots() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Uploads may take long: the old admission let f1 hold all 8 slots for 30 s, and f2's
    // write waited `queue_timeout_ms` (10 s) for a 503.
    let server = TestServer::builder(dir.path())
        .server_keys("body_read_timeout_ms = 30000")
        .factory_tokens(&["f1", "f2"])
        .start()
        .await;
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(server.addr()).await.expect("connect");
        let head = format!(
            "POST /api/v2/write?bucket=b HTTP/1.1\r\nHost: eitwatch\r\nAuthorization: Token {}\r\n\
             Content-Length: 1000\r\n\r\neffluent,",
            server.token("f1")
        );
        s.write_all(head.as_bytes()).await.expect("a slow upload starts");
        slow.push(s);
    }
    // Bounded: long enough for the 8 uploads to be admitted (or queued).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let line = format!("effluent,factory=f2,point=outfall-1 cod=50 {}\n", now_ns());
    let status = tokio::time::timeout(Duration::from_secs(5), server.write_as("f2", line))
        .await
        .expect("f2's write is answered while f1 uploads slowly");
    assert_eq!(status, 204);
    drop(slow);
}

#[tokio::test]
async fn forwarding_headers_name_the_client_only_from_a_trusted_proxy() {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["proxied", "direct"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("a server's directory");
    }
    let proxied = TestServer::builder(&dir.path().join("proxied"))
        .api_keys("trusted_proxies = [\"127.0.0.1/32\", \"::1/128\"]")
        .start()
        .await;
    let direct = TestServer::builder(&dir.path().join("direct")).start().await;
    let client = support::http();
    let status = |server: &TestServer, header: Option<(&'static str, &'static str)>| {
        let mut r = client.get(format!("{}/api/v1/site", server.url()));
        if let Some((k, v)) = header {
            r = r.header(k, v);
        }
        async move { r.send().await.expect("GET /api/v1/site").status().as_u16() }
    };
    let outside = Some(("X-Forwarded-For", "203.0.113.5"));
    assert_eq!(status(&proxied, outside).await, 401, "a client the proxy forwards from outside needs a token");
    assert_eq!(status(&proxied, Some(("Forwarded", "for=203.0.113.5;proto=https"))).await, 401);
    assert_eq!(status(&proxied, Some(("X-Forwarded-For", "127.0.0.1"))).await, 200, "a loopback client");
    assert_eq!(status(&proxied, None).await, 200, "a request that did not pass the proxy");
    assert_eq!(status(&direct, outside).await, 200, "without trusted_proxies the header is ignored");
}

#[tokio::test]
async fn a_client_still_sending_gets_an_early_413() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server =
        TestServer::builder(dir.path()).server_keys("max_body_bytes = 65536").factory_tokens(&["f1"]).start().await;
    // As Python's requests or curl do: the whole body is sent before the answer is read;
    // its declared length is refused before a byte of it is read.
    let body = vec![b'x'; 8 * 1024 * 1024];
    let mut s = TcpStream::connect(server.addr()).await.expect("connect");
    let head = format!(
        "POST /api/v2/write?bucket=b HTTP/1.1\r\nHost: eitwatch\r\nAuthorization: Token {}\r\n\
         Content-Length: {}\r\n\r\n",
        server.token("f1"),
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("the head");
    s.write_all(&body).await.expect("the whole body is taken, not reset");
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut answer)).await.expect("answered").expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"code\":\"request too large\""), "{answer}");
}

#[tokio::test]
async fn the_board_runs_only_its_own_files_and_is_not_framed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::builder(dir.path()).start().await;
    for page in ["/board/", "/board/board.js", "/board/board.css"] {
        let r = support::http().get(format!("{}{page}", server.url())).send().await.expect("GET");
        assert_eq!(r.status(), 200, "{page}");
        let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let csp = header("content-security-policy");
        for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
            assert!(csp.contains(directive), "{page}: {directive} in {csp:?}");
        }
        assert!(!csp.contains("unsafe-inline"), "{page}: {csp}");
        assert_eq!(header("x-frame-options"), "DENY", "{page}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{page}");
    }
    for file in ["index.html", "board.js"] {
        let text = std::fs::read_to_string(support::workspace_root().join("dashboards/board").join(file)).expect(file);
        assert!(!text.contains("style=\"") && !text.contains("<style"), "{file}: an inline style the CSP refuses");
    }
}

#[tokio::test]
async fn a_request_that_cannot_be_parsed_gets_an_error_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::builder(dir.path()).start().await;
    let huge = format!("X-Padding: {}\r\n", "a".repeat(1024 * 1024));
    for (request, status, code) in [
        (format!("GET /health HTTP/1.1\r\nHost: eitwatch\r\n{huge}\r\n"), "431", "request too large"),
        (
            "POST /api/v2/write?bucket=b HTTP/1.1\r\nHost: eitwatch\r\nContent-Length: ten\r\n\r\n".to_string(),
            "400",
            "invalid",
        ),
    ] {
        let mut s = TcpStream::connect(server.addr()).await.expect("connect");
        // The server may answer (and close) before it has read the whole of a huge header.
        let _ = s.write_all(request.as_bytes()).await;
        let read = until_closed(&mut s, Duration::from_secs(10)).await.expect("answered and closed");
        let text = String::from_utf8_lossy(&read);
        assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
        let (_, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        let body: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(body["code"], code, "{text}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{text}");
    }
}
