//! Ingest end to end: the real server binary, written to by InfluxData's Python client and
//! by raw HTTP requests; every status code with its body, gzip, InfluxDB 1.x `/write`,
//! overload, mappings, tokens and the audit log.

mod support;

use std::time::Duration;

use serde_json::json;
use support::ingest::*;
use support::server::{TestServerBuilder, Token, post};
use support::{TestServer, wait_for};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const T0_S: i64 = 1_795_300_000; // 2026-11-22T08:26:40Z
const S: i64 = 1_000_000_000;

fn v2(url: &str, query: &str) -> String {
    format!("{url}/api/v2/write?org=eitwatch&bucket=eitwatch&{query}")
}

/// The server with no anonymous reads: every read names its token.
fn builder(dir: &std::path::Path) -> TestServerBuilder {
    TestServer::builder(dir).anonymous_read("never")
}

fn token_header(t: &str) -> String {
    format!("Token {t}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxdatas_python_client_writes_and_every_value_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = builder(dir.path()).start().await;
    let f1 = server.create_token(&["--factory", "f1"]).secret;
    let url = server.url().to_string();

    // Synchronous, gzip, precision s: 120 lines of COD (float) and BOD (Python int → `i`).
    let sync: Vec<_> = (0..120)
        .map(|i| {
            json!({"measurement": "effluent", "tags": {"factory": "f1", "point": "outfall-1", "host": "gw"},
                   "fields": {"cod": 50.0 + i as f64 * 0.25, "bod": i % 30}, "time": T0_S + 60 * i})
        })
        .collect();
    let (ok, out) =
        python_client(&["--url", &url, "--token", &f1, "--precision", "s", "--gzip"], &serde_json::Value::from(sync));
    assert!(ok, "synchronous write: {out}");

    // Batching write_api, precision ms, 230 points in batches of 50: temperature.
    let t0_ms = T0_S * 1000 + 500;
    let batched: Vec<_> = (0..230)
        .map(|i| {
            json!({"measurement": "effluent", "tags": {"factory": "f1", "point": "outfall-1"},
                   "fields": {"temp": 20.0 + i as f64 / 100.0}, "time": t0_ms + 60_000 * i})
        })
        .collect();
    let (ok, out) = python_client(
        &["--url", &url, "--token", &f1, "--precision", "ms", "--mode", "batching", "--batch-size", "50"],
        &serde_json::Value::from(batched),
    );
    assert!(ok, "batching write: {out}");
    let reply: serde_json::Value = serde_json::from_str(out.trim()).expect("script output");
    assert_eq!(reply, json!({"written": 230, "batches": 5}));

    let cod: Vec<_> = (0..120).map(|i| ((T0_S + 60 * i) * S, 50.0 + i as f64 * 0.25)).collect();
    let bod: Vec<_> = (0..120).map(|i| ((T0_S + 60 * i) * S, (i % 30) as f64)).collect();
    let temp: Vec<_> = (0..230).map(|i| ((t0_ms + 60_000 * i) * 1_000_000, 20.0 + i as f64 / 100.0)).collect();
    assert_eq!(server.series_as(&f1, "f1", "cod").await, cod);
    assert_eq!(server.series_as(&f1, "f1", "bod").await, bod);
    assert_eq!(server.series_as(&f1, "f1", "temp").await, temp);

    // The client understands the server's errors: status and InfluxDB's `message`.
    let other = json!([{"measurement": "effluent", "tags": {"factory": "f2", "point": "outfall-1"},
                        "fields": {"cod": 1.0}, "time": T0_S}]);
    let (ok, out) =
        python_client(&["--url", &url, "--token", &f1, "--precision", "s", "--mode", "expect-error"], &other);
    assert!(ok, "{out}");
    let reply: serde_json::Value = serde_json::from_str(out.trim()).expect("script output");
    assert_eq!(reply, json!({"status": 403, "message": "line 1: factory \"f2\" is not the token's factory"}));
    let unknown = json!([{"measurement": "effluent", "tags": {"factory": "f1", "point": "outfall-1"},
                          "fields": {"cood": 1.0}, "time": T0_S}]);
    let (ok, out) =
        python_client(&["--url", &url, "--token", &f1, "--precision", "s", "--mode", "expect-error"], &unknown);
    assert!(ok, "{out}");
    let reply: serde_json::Value = serde_json::from_str(out.trim()).expect("script output");
    assert_eq!(reply, json!({"status": 400, "message": "line 1: unknown effluent parameter \"cood\""}));
    assert_eq!(server.series_as(&f1, "f1", "cod").await.len(), 120, "the refused writes stored nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_code_comes_with_influxdbs_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = builder(dir.path()).server_keys("max_body_bytes = 65536").start().await;
    let Token { id: f1_id, secret: f1 } = server.create_token(&["--factory", "f1"]);
    let reader = server.create_token(&["--read"]).secret;
    let url = v2(server.url(), "precision=s");
    let auth = token_header(&f1);
    let as_f1 = [("Authorization", auth.as_str())];
    let line = |param: &str, value: &str, t: i64| format!("effluent,factory=f1,point=outfall-1 {param}={value} {t}\n");

    let r = post(&url, &as_f1, line("cod", "50", T0_S)).await;
    assert_eq!((r.status, r.body), (204, serde_json::Value::Null));
    let bearer = format!("Bearer {f1}");
    assert_eq!(post(&url, &[("Authorization", &bearer)], line("cod", "51", T0_S + 60)).await.status, 204);

    let invalid = |message: &str| json!({"code": "invalid", "message": message});
    let cases: Vec<(String, String, serde_json::Value)> = vec![
        (
            url.clone(),
            format!("{}effluent,factory=f1,point=outfall-1 cod=5O 1", line("cod", "1", T0_S)),
            invalid("line 2: field cod: \"5O\" is not a number (a finite float, or an integer with i or u)"),
        ),
        (
            url.clone(),
            line("cod", "true", T0_S),
            invalid("line 1: field cod: a boolean, expected a number in the canonical unit"),
        ),
        (
            url.clone(),
            line("cod", "\"high\"", T0_S),
            invalid("line 1: field cod: a string, expected a number in the canonical unit"),
        ),
        (url.clone(), line("cod", "1e400", T0_S), invalid("line 1: field cod: inf is not a finite number")),
        (url.clone(), line("cood", "1", T0_S), invalid("line 1: unknown effluent parameter \"cood\"")),
        (
            url.clone(),
            line("cod", "1", T0_S + 10 * 365 * 86_400),
            invalid(&format!(
                "line 1: timestamp {} ns is more than 300 s in the future (max_future_s)",
                (T0_S + 10 * 365 * 86_400) * S
            )),
        ),
        (
            v2(server.url(), "precision=h"),
            line("cod", "1", 1),
            invalid("precision \"h\": expected one of ns, us, ms, s"),
        ),
        (
            format!("{}/api/v2/write?org=eitwatch&precision=s", server.url()),
            line("cod", "1", T0_S),
            invalid("bucket: missing; an InfluxDB v2 write names its bucket (any name is taken)"),
        ),
    ];
    for (to, body, expected) in cases {
        let r = post(&to, &as_f1, body.clone()).await;
        assert_eq!((r.status, &r.body), (400, &expected), "{body}");
    }

    // 401: no token, an unknown one.
    let r = post(&url, &[], line("cod", "1", T0_S)).await;
    assert_eq!(
        (r.status, r.body),
        (401, json!({"code": "unauthorized", "message": "missing token: send Authorization: Token <token>"}))
    );
    let r = post(&url, &[("Authorization", "Token ewf_0000")], line("cod", "1", T0_S)).await;
    assert_eq!((r.status, r.body), (401, json!({"code": "unauthorized", "message": "unknown or revoked token"})));

    // 403: another factory's line (recorded), a token that does not write.
    let r =
        post(&url, &as_f1, format!("{}effluent,factory=f2,point=outfall-1 cod=1 {T0_S}", line("cod", "1", T0_S))).await;
    assert_eq!(
        (r.status, r.body),
        (403, json!({"code": "forbidden", "message": "line 2: factory \"f2\" is not the token's factory"}))
    );
    let read_auth = token_header(&reader);
    let r = post(&url, &[("Authorization", &read_auth)], line("cod", "1", T0_S)).await;
    assert_eq!(
        (r.status, r.body),
        (403, json!({"code": "forbidden", "message": "a read token cannot write; use the factory's write token"}))
    );

    // 413: a declared length over the limit; a gzip body that decompresses over it.
    let r = post(&url, &as_f1, vec![b'\n'; 70_000]).await;
    let too_large = |what: &str| {
        json!({"code": "request too large",
               "message": format!("{what} is larger than max_body_bytes (65536); send smaller batches")})
    };
    assert_eq!((r.status, r.body), (413, too_large("request body of 70000 bytes")));
    let bomb = gzip(&vec![b'\n'; 8 * 1024 * 1024]);
    assert!(bomb.len() < 65_536, "the bomb itself is small: {}", bomb.len());
    let r = post(&url, &[as_f1[0], ("Content-Encoding", "gzip")], bomb).await;
    assert_eq!((r.status, r.body), (413, too_large("decompressed request body")));
    // gzip that is not gzip, an encoding we do not take.
    let r = post(&url, &[as_f1[0], ("Content-Encoding", "gzip")], line("cod", "1", T0_S)).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Content-Encoding gzip: the body does not decompress"))
    );
    let r = post(&url, &[as_f1[0], ("Content-Encoding", "br")], line("cod", "1", T0_S)).await;
    assert_eq!((r.status, r.body), (400, invalid("Content-Encoding \"br\": expected gzip or identity")));
    // gzip that is gzip.
    let r = post(&url, &[as_f1[0], ("Content-Encoding", "gzip")], gzip(line("cod", "52", T0_S + 120).as_bytes())).await;
    assert_eq!(r.status, 204);

    // 409: a different value for a stored series and time; recorded.
    let r = post(&url, &as_f1, line("cod", "49", T0_S)).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["code"], "conflict");
    let message = r.body["message"].as_str().expect("message");
    assert!(message.ends_with("history is append-only"), "{message}");

    let expected_cod = vec![(T0_S * S, 50.0), ((T0_S + 60) * S, 51.0), ((T0_S + 120) * S, 52.0)];
    assert_eq!(server.series_as(&f1, "f1", "cod").await, expected_cod, "only the accepted writes are stored");

    let audit = audit(server.data_dir());
    let events: Vec<_> = audit
        .iter()
        .map(|a| (a["event"].as_str(), a["token_kind"].as_str(), a["factory"].as_str(), a["reason"].as_str()))
        .collect();
    assert_eq!(
        events,
        vec![
            (Some("forbidden"), Some("write"), Some("f2"), Some("line 2: factory \"f2\" is not the token's factory")),
            (Some("forbidden"), Some("read"), None, Some("a read token cannot write; use the factory's write token")),
            (Some("rewrite"), Some("write"), Some("f1"), Some(message)),
        ]
    );
    assert_eq!(audit[0]["token_id"].as_str(), Some(f1_id.as_str()));
    assert_eq!(audit[2]["token_id"].as_str(), Some(f1_id.as_str()));
    let text = std::fs::read_to_string(server.data_dir().join("audit.log")).expect("audit");
    assert!(!text.contains(&f1) && !text.contains(&reader), "the audit log never holds a secret");
    assert!(!server.log().contains(&f1), "the server log never holds a secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_stores_nothing_a_resent_one_is_stored_once_a_revoked_token_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = builder(dir.path()).start().await;
    let f1 = server.create_token(&["--factory", "f1"]).secret;
    let Token { id: f2_id, secret: f2 } = server.create_token(&["--factory", "f2"]);
    let admin = server.create_token(&["--admin"]).secret;
    let url = v2(server.url(), "precision=s");
    let auth = token_header(&f1);
    let count = || async { server.readings(Some(&admin), "").await.1.len() };

    let good: String =
        (0..99).map(|i| format!("effluent,factory=f1,point=outfall-1 cod={i}.5,ph=7.25 {}\n", T0_S + 60 * i)).collect();
    let bad = format!("{good}effluent,factory=f1,point=outfall-1 ph=7.0,tss=oops {}\n", T0_S + 60 * 99);
    assert_eq!(count().await, 0);
    let r = post(&url, &[("Authorization", &auth)], bad).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["message"].as_str().is_some_and(|m| m.starts_with("line 100: field tss: \"oops\" is not a number")),
        "{r:?}"
    );
    assert_eq!(count().await, 0, "a refused batch stores nothing");

    assert_eq!(post(&url, &[("Authorization", &auth)], good.clone()).await.status, 204);
    assert_eq!(count().await, 198);
    assert_eq!(post(&url, &[("Authorization", &auth)], good.clone()).await.status, 204, "a re-send is accepted");
    assert_eq!(count().await, 198, "and stored once");

    // Out of the plausible range: stored, as suspect.
    let r = post(&url, &[("Authorization", &auth)], format!("effluent,factory=f1,point=outfall-1 ph=15 {}", T0_S - 60))
        .await;
    assert_eq!(r.status, 204);
    let (_, rows) = server.readings(Some(&admin), &format!("parameter=ph&to_ns={}", (T0_S - 60) * S + 1)).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0]["value"].as_f64(), rows[0]["quality"].as_str()), (Some(15.0), Some("suspect")));

    // Revocation reaches the running server.
    let f2_auth = token_header(&f2);
    let f2_line = format!("effluent,factory=f2,point=outfall-1 cod=10 {T0_S}");
    assert_eq!(post(&url, &[("Authorization", &f2_auth)], f2_line.clone()).await.status, 204);
    let (out, _) = server.token_command(&["revoke", &f2_id]);
    assert_eq!(out.trim(), format!("revoked {f2_id}"));
    let r = post(&url, &[("Authorization", &f2_auth)], f2_line).await;
    assert_eq!((r.status, r.body), (401, json!({"code": "unauthorized", "message": "unknown or revoked token"})));
    let (out, _) = server.token_command(&["list", "--json"]);
    let list: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(list.len(), 3);
    assert!(!out.contains(&f1) && !out.contains(&f2) && !out.contains(&admin), "list never shows a secret");
    assert_eq!(
        list.iter().map(|t| (t["role"].as_str(), t["factory"].as_str(), t["revoked"].is_string())).collect::<Vec<_>>(),
        vec![(Some("write"), Some("f1"), false), (Some("write"), Some("f2"), true), (Some("admin"), None, false)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxdb_1x_write_takes_db_precision_and_every_way_of_sending_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = builder(dir.path()).start().await;
    let f1 = server.create_token(&["--factory", "f1"]).secret;
    let base = format!("{}/write", server.url());
    let minute = T0_S / 60 + 1; // 29921667
    let hour = T0_S / 3600 + 1; // 498695

    let r = post(
        &format!("{base}?db=plant&precision=m&u=logger&p={f1}"),
        &[],
        format!("effluent,factory=f1,point=outfall-1 cod=11 {minute}"),
    )
    .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = http_basic(
        &format!("{base}?db=plant&precision=h"),
        "logger",
        &f1,
        format!("effluent,factory=f1,point=outfall-1 cod=12 {hour}"),
    )
    .await;
    assert_eq!(r, 204);
    let auth = token_header(&f1);
    let r = post(
        &format!("{base}?db=plant&precision=u"),
        &[("Authorization", &auth), ("Content-Encoding", "gzip")],
        gzip(format!("effluent,factory=f1,point=outfall-1 cod=13 {}", (T0_S + 7) * 1_000_000 + 1).as_bytes()),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        server.series_as(&f1, "f1", "cod").await,
        vec![((T0_S + 7) * S + 1000, 13.0), (minute * 60 * S, 11.0), (hour * 3600 * S, 12.0)]
    );

    // Errors carry InfluxDB 1.x's "error" beside v2's code and message.
    let r = post(&format!("{base}?precision=s&p={f1}"), &[], "effluent,factory=f1,point=outfall-1 cod=1 1").await;
    let m = "database is required: send db=<name> (any name is taken)";
    assert_eq!((r.status, r.body), (400, json!({"code": "invalid", "message": m, "error": m})));
    let r =
        post(&format!("{base}?db=plant&precision=s&u=x&p=wrong"), &[], "effluent,factory=f1,point=outfall-1 cod=1 1")
            .await;
    let m = "unknown or revoked token";
    assert_eq!((r.status, r.body), (401, json!({"code": "unauthorized", "message": m, "error": m})));
    let r =
        post(&format!("{base}?db=plant&precision=d&p={f1}"), &[], "effluent,factory=f1,point=outfall-1 cod=1 1").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "precision \"d\": expected one of n, u, ms, s, m, h");
}

async fn http_basic(url: &str, user: &str, password: &str, body: String) -> u16 {
    support::http().post(url).basic_auth(user, Some(password)).body(body).send().await.expect("POST").status().as_u16()
}

/// Sends the head of a write and part of its body, so that the server holds a write slot
/// waiting for the rest; `finish` sends the rest and returns the status.
struct HeldWrite {
    stream: tokio::net::TcpStream,
    rest: Vec<u8>,
}

impl HeldWrite {
    async fn open(addr: &str, token: &str) -> HeldWrite {
        let mut body = format!("effluent,factory=f1,point=outfall-1 cod=77 {T0_S}\n").into_bytes();
        body.resize(200, b'\n');
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST /api/v2/write?bucket=b&precision=s HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Token {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("head");
        stream.write_all(&body[..10]).await.expect("part of the body");
        HeldWrite { stream, rest: body[10..].to_vec() }
    }

    async fn finish(mut self) -> String {
        self.stream.write_all(&self.rest).await.expect("rest");
        let mut reply = String::new();
        let read = tokio::time::timeout(Duration::from_secs(60), self.stream.read_to_string(&mut reply)).await;
        read.expect("the server answered the finished write and closed within 60 s").expect("reply");
        reply.lines().next().unwrap_or_default().to_string()
    }
}

impl HeldWrite {
    /// The server's whole reply to a write whose body never finishes: status line and body.
    async fn reply_without_finishing(mut self) -> (String, serde_json::Value) {
        let mut reply = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(60), self.stream.read_to_end(&mut reply)).await;
        read.expect("the server answered and closed within 60 s").expect("reply");
        let reply = String::from_utf8(reply).expect("UTF-8 reply");
        let (head, body) = reply.split_once("\r\n\r\n").expect("head and body");
        let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON body {body:?}: {e}"));
        (head.lines().next().unwrap_or_default().to_string(), body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_body_read_timeout_ms_is_answered_408_and_frees_its_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    // One slot, no queue: while the stalled write holds the slot, any other write gets 429.
    let server = builder(dir.path())
        .server_keys("body_read_timeout_ms = 700")
        .config_tail("[ingest]\nmax_writes_in_flight = 1\nmax_writes_queued = 0")
        .start()
        .await;
    let f1 = server.create_token(&["--factory", "f1"]).secret;
    let addr = server.addr().to_string();
    // 10 bytes of a 200-byte body, then nothing more.
    let held = HeldWrite::open(&addr, &f1).await;
    let (status, body) = held.reply_without_finishing().await;
    assert_eq!(status, "HTTP/1.1 408 Request Timeout");
    assert_eq!(
        body,
        json!({"code": "request timeout", "message": "the request body did not arrive within body_read_timeout_ms (700 ms); send it faster or in smaller batches"})
    );
    // The slot is free again: the next write is taken at once, and the stalled one left nothing.
    let r = post(
        &v2(server.url(), "precision=s"),
        &[("Authorization", &token_header(&f1))],
        format!("effluent,factory=f1,point=outfall-1 bod=12 {T0_S}"),
    )
    .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(server.series_as(&f1, "f1", "bod").await, vec![(T0_S * S, 12.0)]);
    assert_eq!(server.series_as(&f1, "f1", "cod").await, vec![], "the stalled write stored nothing");
    assert!(server.log().contains("Write refused: body too slow"), "{}", server.log());

    // InfluxDB 1.x `/write` gets the same, with 1.x's "error".
    let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let head = format!(
        "POST /write?db=d&precision=s&p={f1} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 100\r\nConnection: close\r\n\r\neffluent"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let (status, body) = HeldWrite { stream, rest: Vec::new() }.reply_without_finishing().await;
    assert_eq!(status, "HTTP/1.1 408 Request Timeout");
    assert_eq!(body["code"], "request timeout");
    assert_eq!(body["error"], body["message"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_answered_429_or_503_with_retry_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    // One slot, no queue: a second write while one is in flight gets 429.
    let server = builder(dir.path())
        .config_tail("[ingest]\nmax_writes_in_flight = 1\nmax_writes_queued = 0\nretry_after_s = 2")
        .start()
        .await;
    let f1 = server.create_token(&["--factory", "f1"]).secret;
    let addr = server.addr().to_string();
    let held = HeldWrite::open(&addr, &f1).await;
    let url = v2(server.url(), "precision=s");
    let auth = token_header(&f1);
    // Until the held write has its slot, these go through (and store a reading each, once).
    let r = wait_for("a 429", Duration::from_secs(20), || {
        let (url, auth) = (url.clone(), auth.clone());
        async move {
            let r =
                post(&url, &[("Authorization", &auth)], format!("effluent,factory=f1,point=outfall-1 bod=1 {T0_S}"))
                    .await;
            (r.status != 204).then_some(r)
        }
    })
    .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.retry_after.as_deref(), Some("2"));
    assert_eq!(r.body, json!({"code": "too many requests", "message": "too many writes waiting (0); retry after 2 s"}));
    assert_eq!(held.finish().await, "HTTP/1.1 204 No Content");
    assert_eq!(server.series_as(&f1, "f1", "cod").await, vec![(T0_S * S, 77.0)]);

    // InfluxData's client, refused with 429 while a write holds the slot, retries after the
    // server's Retry-After and delivers everything once the slot frees.
    let refusals = |log: &str| log.matches("Write refused: the queue is full").count();
    let before = refusals(&server.log());
    let held = HeldWrite::open(&addr, &f1).await;
    let points: Vec<_> = (0..20)
        .map(|i| {
            json!({"measurement": "effluent", "tags": {"factory": "f1", "point": "outfall-1"},
                   "fields": {"tss": 10.0 + i as f64}, "time": T0_S + 60 * i})
        })
        .collect();
    // Until the held write has its slot, a probe of our own goes through; then the client starts.
    wait_for("the held write's slot", Duration::from_secs(20), || {
        let (url, auth) = (url.clone(), auth.clone());
        async move {
            let r =
                post(&url, &[("Authorization", &auth)], format!("effluent,factory=f1,point=outfall-1 bod=1 {T0_S}"))
                    .await;
            (r.status == 429).then_some(())
        }
    })
    .await;
    let client = spawn_python_client(
        &["--url", server.url(), "--token", &f1, "--precision", "s", "--mode", "batching", "--max-retries", "5"],
        &serde_json::Value::from(points),
    );
    let log_before = before + 1; // our probe's refusal
    wait_for("the client's write refused with 429", Duration::from_secs(30), || {
        let log = server.log();
        async move { (refusals(&log) > log_before).then_some(()) }
    })
    .await;
    assert_eq!(held.finish().await, "HTTP/1.1 204 No Content");
    let out = tokio::task::spawn_blocking(move || client.wait_with_output()).await.expect("join").expect("client");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tss: Vec<_> = (0..20).map(|i| ((T0_S + 60 * i) * S, 10.0 + i as f64)).collect();
    assert_eq!(server.series_as(&f1, "f1", "tss").await, tss);
    drop(server);

    // One slot, one place in the queue, 300 ms of patience: the queued write gets 503.
    let dir = tempfile::tempdir().expect("tempdir");
    let server = builder(dir.path())
        .config_tail(
            "[ingest]\nmax_writes_in_flight = 1\nmax_writes_queued = 1\nqueue_timeout_ms = 300\nretry_after_s = 2",
        )
        .start()
        .await;
    let f1 = server.create_token(&["--factory", "f1"]).secret;
    let addr = server.addr().to_string();
    let held = HeldWrite::open(&addr, &f1).await;
    let url = v2(server.url(), "precision=s");
    let auth = token_header(&f1);
    let r = wait_for("a 503", Duration::from_secs(20), || {
        let (url, auth) = (url.clone(), auth.clone());
        async move {
            let r =
                post(&url, &[("Authorization", &auth)], format!("effluent,factory=f1,point=outfall-1 bod=1 {T0_S}"))
                    .await;
            (r.status != 204).then_some(r)
        }
    })
    .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.retry_after.as_deref(), Some("2"));
    assert_eq!(
        r.body,
        json!({"code": "unavailable", "message": "the server is busy: no write slot within 300 ms; retry after 2 s"})
    );
    assert_eq!(held.finish().await, "HTTP/1.1 204 No Content");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegraf_modbus_line_is_mapped_and_converted_through_the_catalog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mapping = r#"
[[ingest.mapping]]
measurement = "modbus"
tags = { name = "analyser" }
kind = "effluent"
point = "outfall-1"
other_fields = "ignore"
fields = { cod_mg_l = { parameter = "cod", unit = "mg/L" }, tss_g_l = { parameter = "tss", unit = "g/L" }, t_f = { parameter = "temp", unit = "degF" } }
[[ingest.mapping]]
measurement = "logger"
kind = "effluent"
factory_tag = "site"
point_tag = "station"
point_values = { "1" = "outfall-1" }
fields = { cod = { parameter = "cod" } }
"#;
    let server = builder(dir.path()).config_tail(mapping).start().await;
    let f1 = server.create_token(&["--factory", "f1"]).secret;
    let auth = token_header(&f1);
    let url = v2(server.url(), "precision=s");
    // What Telegraf's inputs.modbus with `name = "analyser"` writes through outputs.influxdb_v2.
    let body = format!(
        "modbus,host=gw1,name=analyser,slave_id=1,type=holding_register cod_mg_l=85.25,tss_g_l=0.125,t_f=212,status=0i {T0_S}\n\
         logger,site=f1,station=1 cod=90.5 {}\n",
        T0_S + 60
    );
    let r = post(&url, &[("Authorization", &auth)], body).await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(server.series_as(&f1, "f1", "cod").await, vec![(T0_S * S, 85.25), ((T0_S + 60) * S, 90.5)]);
    assert_eq!(server.series_as(&f1, "f1", "tss").await, vec![(T0_S * S, 125.0)], "0.125 g/L = 125 mg/L");
    // 212 °F = (212 − 32) × 5/9 = 100 °C, as the catalog computes it.
    let temp = server.series_as(&f1, "f1", "temp").await;
    assert_eq!(temp.len(), 1);
    assert!((temp[0].1 - 100.0).abs() < 1e-12, "{temp:?}");

    // A mapped line naming another factory is refused like a canonical one.
    let r = post(&url, &[("Authorization", &auth)], format!("logger,site=f2,station=1 cod=1 {T0_S}")).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["message"], "line 1: factory \"f2\" is not the token's factory");
    let r = post(&url, &[("Authorization", &auth)], format!("logger,site=f1,station=9 cod=1 {T0_S}")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["message"], "line 1: tag station=\"9\" is not one of the mapping's point_values");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_api_shows_each_token_what_it_may_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = builder(dir.path()).start().await;
    let f1 = server.create_token(&["--factory", "f1"]).secret;
    let f2 = server.create_token(&["--factory", "f2"]).secret;
    let all = server.create_token(&["--read"]).secret;
    let only_f2 = server.create_token(&["--read", "--factory", "f2"]).secret;
    let admin = server.create_token(&["--admin"]).secret;
    let url = v2(server.url(), "precision=s");
    for (token, factory) in [(&f1, "f1"), (&f2, "f2")] {
        let auth = token_header(token);
        let body = format!("effluent,factory={factory},point=outfall-1 cod=5 {T0_S}");
        assert_eq!(post(&url, &[("Authorization", &auth)], body).await.status, 204);
    }
    let factories = |rows: Vec<serde_json::Value>| -> Vec<String> {
        rows.iter().map(|r| r["factory"].as_str().unwrap_or_default().to_string()).collect()
    };
    let (status, _) = server.readings(None, "").await;
    assert_eq!(status, 401, "no anonymous read unless configured");
    for (token, expected) in
        [(&f1, vec!["f1"]), (&only_f2, vec!["f2"]), (&all, vec!["f1", "f2"]), (&admin, vec!["f1", "f2"])]
    {
        let (status, rows) = server.readings(Some(token), "").await;
        assert_eq!((status, factories(rows)), (200, expected.iter().map(|s| s.to_string()).collect()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_parameters_are_kept_as_unmapped_when_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = builder(dir.path()).config_tail("[ingest]\nunknown_parameters = \"store_unmapped\"").start().await;
    let Token { id: f1_id, secret: f1 } = server.create_token(&["--factory", "f1"]);
    let auth = token_header(&f1);
    let url = v2(server.url(), "precision=s");
    let body = format!("effluent,factory=f1,point=outfall-1 cod=5,xyz=1.5,colour_units=30i {T0_S}\n");
    assert_eq!(post(&url, &[("Authorization", &auth)], body).await.status, 204);
    assert_eq!(server.series_as(&f1, "f1", "cod").await, vec![(T0_S * S, 5.0)]);
    let (_, all) = server.readings(Some(&f1), "").await;
    assert_eq!(all.len(), 1, "unmapped readings stay out of the store: {all:?}");
    let log = std::fs::read_to_string(server.data_dir().join("unmapped.log")).expect("unmapped.log");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(lines[0].starts_with("# received ") && lines[0].ends_with(&format!(" token {f1_id}")), "{log}");
    assert_eq!(lines[1], format!("effluent,factory=f1,point=outfall-1 xyz=1.5,colour_units=30 {}", T0_S * S));
    // Unknown points are still refused: the registry, not the catalog, says what exists.
    let r = post(&url, &[("Authorization", &auth)], format!("effluent,factory=f1,point=outfall-9 xyz=1 {T0_S}")).await;
    assert_eq!(r.status, 400);
    // A ping as InfluxDB answers it.
    let r = server.get(None, "/ping").await;
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(r.headers().get("x-influxdb-build").and_then(|v| v.to_str().ok()), Some("OSS"));
}
