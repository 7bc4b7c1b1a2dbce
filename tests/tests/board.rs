//! The built-in board in a real browser: the server binary, fed with line-protocol writes,
//! and Debian's headless Chromium driven by playwright-core (`tests/browser/board.test.js`).
//! The overview shows each factory's state, a reading over the limit reaches an open board
//! live, an acknowledgement survives a reload, the language switch changes the labels.
//! Screenshots of the main pages go to `target/screenshots/`.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{Area, Factory, Point, Site, TestServer, wait_for, workspace_root};

/// Two areas; one factory per state the overview distinguishes.
fn site() -> Site {
    let outfall = |parameter: &str| Point::outfall("outfall-1", &[parameter]);
    Site::new()
        .area(
            Area::new("map-ta-phut", "Map Ta Phut", "มาบตาพุด", "Rayong")
                .factory(Factory::new("f-ok", "Compliant Foods").point(outfall("cod")))
                .factory(Factory::new("f-exceed", "Exceeding Ceramics").point(outfall("cod")))
                .factory(
                    Factory::new("f-silent", "Silent Paper")
                        .point(outfall("cod").with("faults = { no_data_after_s = 2 }")),
                )
                .factory(Factory::new("f-fault", "Faulty Textiles").point(outfall("ph"))),
        )
        .area(
            Area::new("mae-moh", "Mae Moh", "แม่เมาะ", "Lampang")
                .factory(Factory::new("f-insufficient", "Biomass Power").point(Point::boiler_stack("stack-1"))),
        )
}

const S: i64 = 1_000_000_000;

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_nanos() as i64
}

/// The server with [`site`]; no anonymous reads: the board must work with its token (header,
/// and ?token= for SSE).
async fn start(dir: &Path) -> TestServer {
    TestServer::builder(dir)
        .site(site())
        .anonymous_read("never")
        .compliance_tick_ms(200)
        .factory_tokens(&["f-ok", "f-exceed", "f-fault", "f-insufficient", "f-silent"])
        .admin_token()
        .read_token()
        .start()
        .await
}

async fn write(board: &TestServer, factory: &str, body: String) {
    assert_eq!(board.write_as(factory, body).await, 204, "write for {factory}");
}

/// Open alerts of a kind for a factory, polled until there is one.
async fn wait_alert(board: &TestServer, factory: &str, kind: &str) -> serde_json::Value {
    let path = format!("/api/v1/alerts?factory={factory}&kind={kind}");
    wait_for(&format!("a {kind} alert of {factory}"), Duration::from_secs(30), || async {
        let (_, v) = board.get_json_as(board.admin_token(), &path).await;
        v["alerts"].as_array().and_then(|a| a.iter().find(|a| a["state"] != "resolved").cloned())
    })
    .await
}

/// The scenario: readings that put every factory in its state.
async fn feed(board: &TestServer) -> i64 {
    let now = now_ns();
    let cod = |f: &str, v: f64, t: i64| format!("effluent,factory={f},point=outfall-1 cod={v} {t}\n");
    // COD ≤ 120 mg/L (grab sample): compliant throughout.
    write(
        board,
        "f-ok",
        cod("f-ok", 40.0, now - 600 * S) + &cod("f-ok", 55.0, now - 300 * S) + &cod("f-ok", 60.0, now),
    )
    .await;
    // The latest grab sample over the limit; and a mixed hour two clock hours ago: two
    // compliant grab samples and one over the limit (the board must not show it compliant).
    let mixed_hour = (now / (3600 * S) - 2) * 3600 * S;
    write(
        board,
        "f-exceed",
        cod("f-exceed", 70.0, mixed_hour + 600 * S)
            + &cod("f-exceed", 160.0, mixed_hour + 1200 * S)
            + &cod("f-exceed", 65.0, mixed_hour + 1800 * S)
            + &cod("f-exceed", 80.0, now - 600 * S)
            + &cod("f-exceed", 150.0, now),
    )
    .await;
    // pH 20 is outside the catalog's plausible 0–14: a sensor fault.
    write(
        board,
        "f-fault",
        format!(
            "effluent,factory=f-fault,point=outfall-1 ph=7 {}\neffluent,factory=f-fault,point=outfall-1 ph=20 {now}\n",
            now - 60 * S
        ),
    )
    .await;
    // One reading in an hour two hours ago (1 of 60 expected): that hour is insufficient data;
    // one now, so the stack is not silent.
    write(board,
            "f-insufficient",
            format!(
                "emission,factory=f-insufficient,point=stack-1 so2=300,o2=8 {}\nemission,factory=f-insufficient,point=stack-1 so2=310,o2=8.5 {now}\n",
                now - 7200 * S
            ),
        )
        .await;
    // f-silent does not report (until the browser test makes it): no data after 2 s.
    wait_alert(board, "f-exceed", "exceedance").await;
    wait_alert(board, "f-fault", "sensor_fault").await;
    wait_alert(board, "f-silent", "no_data").await;
    wait_for("the insufficient hour of f-insufficient", Duration::from_secs(30), || async move {
        let (_, v) =
            board.get_json_as(board.admin_token(), "/api/v1/status?factory=f-insufficient&parameter=so2").await;
        (v["series"][0]["judgements"][0]["current"]["outcome"] == "insufficient_data").then_some(())
    })
    .await;
    mixed_hour
}

fn node_script(args: &[(&str, String)]) -> std::process::Output {
    let root = workspace_root();
    let modules = root.join("tests/browser/node_modules/playwright-core");
    assert!(modules.exists(), "{} missing: run scripts/install-peers.sh (scripts/test.sh does)", modules.display());
    assert!(Path::new("/usr/bin/chromium").exists(), "/usr/bin/chromium missing: run scripts/install-peers.sh");
    let mut cmd = Command::new("node");
    cmd.arg(root.join("tests/browser/board.test.js")).current_dir(root.join("tests/browser"));
    for (k, v) in args {
        cmd.env(k, v);
    }
    cmd.output().expect("node (install Node.js: scripts/install-peers.sh)")
}

#[tokio::test]
async fn the_board_in_a_real_browser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let board = start(dir.path()).await;
    let mixed_hour = feed(&board).await;

    let shots = workspace_root().join("target/screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let expect = serde_json::json!({
        "f-ok": "compliant", "f-exceed": "exceeding", "f-silent": "no_data",
        "f-fault": "sensor_fault", "f-insufficient": "insufficient_data",
    });
    let env = vec![
        ("BOARD_URL", board.url().to_string()),
        ("ADMIN_TOKEN", board.admin_token().to_string()),
        ("READ_TOKEN", board.read_token().to_string()),
        ("EXPECT_STATES", expect.to_string()),
        ("LIVE_FACTORY", "f-ok".to_string()),
        ("LIVE_TOKEN", board.token("f-ok").to_string()),
        // No timestamp: the server stamps it on arrival, so it is the newest grab sample.
        ("LIVE_LINE", "effluent,factory=f-ok,point=outfall-1 cod=200".to_string()),
        ("SILENT_FACTORY", "f-silent".to_string()),
        ("SILENT_TOKEN", board.token("f-silent").to_string()),
        ("SCREENSHOT_DIR", shots.display().to_string()),
        ("MIXED_FACTORY", "f-exceed".to_string()),
        ("MIXED_HOUR_NS", mixed_hour.to_string()),
    ];
    let out = tokio::task::spawn_blocking(move || node_script(&env)).await.expect("node task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "the browser test failed ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("board: all checks passed"), "{stdout}");

    // What the browser did is what the server kept: the live alert, acknowledged by the admin
    // token with the comment typed on the board.
    let alert = wait_alert(&board, "f-ok", "exceedance").await;
    assert_eq!(alert["value"], 200.0);
    assert_eq!(alert["state"], "acknowledged");
    assert_eq!(alert["ack"]["comment"], "Operator called, aerator restarted (ทดสอบ)");
    assert!(alert["ack"]["by"].as_str().is_some_and(|b| b.starts_with("admin token ")), "{alert}");
    for name in [
        "overview-en",
        "overview-live-alert",
        "overview-th-be",
        "factory-th",
        "factory-mixed-hour",
        "factory-stack",
        "indicators",
        "indicators-th",
        "overview-phone",
    ] {
        let path = shots.join(format!("{name}.png"));
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "{} missing or empty", path.display());
    }
}

/// The board's assets are served by the server itself, and the board's API keeps to the
/// token's scope, the event stream included.
#[tokio::test]
async fn board_assets_site_listing_and_event_stream_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let board = start(dir.path()).await;
    let client = support::http();
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");

    let r = no_redirect.get(format!("{}/", board.url())).send().await.expect("GET /");
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/board/");
    for (path, ty, needle) in [
        ("/board/", "text/html; charset=utf-8", "<script src=\"/board/board.js\">"),
        ("/board/board.js", "text/javascript; charset=utf-8", "new EventSource("),
        ("/board/board.css", "text/css; charset=utf-8", "@media"),
    ] {
        let r = client.get(format!("{}{path}", board.url())).send().await.expect("GET");
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], ty, "{path}");
        let body = r.text().await.expect("body");
        assert!(body.contains(needle), "{path} lacks {needle}");
        // Offline: nothing is fetched from another host.
        assert!(!body.contains("http://") && !body.contains("https://"), "{path} refers to another host");
    }
    // The charting library, vendored (its banner names its home page; it fetches nothing).
    for (path, ty) in [
        ("/board/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
        ("/board/uPlot.min.css", "text/css; charset=utf-8"),
    ] {
        let r = client.get(format!("{}{path}", board.url())).send().await.expect("GET");
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], ty, "{path}");
        assert!(r.text().await.expect("body").contains("uplot"), "{path} is not uPlot");
    }
    let r = client.get(format!("{}/board/nope.js", board.url())).send().await.expect("GET");
    assert_eq!(r.status().as_u16(), 404);

    // The admin sees both areas and every factory, with catalog names in both languages.
    let (status, site) = board.get_json_as(board.admin_token(), "/api/v1/site").await;
    assert_eq!(status, 200);
    assert_eq!(site["scope"], serde_json::json!({"factory": null, "kind": "admin"}));
    let ids: Vec<_> = site["areas"].as_array().expect("areas").iter().map(|a| a["id"].as_str().unwrap_or("")).collect();
    assert_eq!(ids, ["map-ta-phut", "mae-moh"]);
    assert_eq!(site["areas"][0]["factories"].as_array().map(Vec::len), Some(4));
    assert_eq!(site["areas"][0]["name_th"], "มาบตาพุด");
    let cod = &site["areas"][0]["factories"][0]["points"][0]["parameters"][0];
    assert_eq!(cod["code"], "cod");
    assert_eq!(cod["name_en"], "Chemical oxygen demand (COD)");
    assert_eq!(cod["name_th"], "ซีโอดี");
    assert_eq!(cod["unit"], "mg/L");
    // A factory's token sees only its factory (and its area).
    let (_, mine) = board.get_json_as(board.token("f-insufficient"), "/api/v1/site").await;
    assert_eq!(mine["scope"], serde_json::json!({"factory": "f-insufficient", "kind": "write"}));
    assert_eq!(mine["areas"].as_array().map(Vec::len), Some(1));
    assert_eq!(mine["areas"][0]["factories"][0]["id"], "f-insufficient");
    assert_eq!(mine["areas"][0]["factories"].as_array().map(Vec::len), Some(1));
    let (_, openapi) = board.get_json_as(board.admin_token(), "/api/v1/openapi.json").await;
    assert!(openapi["paths"]["/api/v1/site"]["get"].is_object(), "/api/v1/site in the OpenAPI document");
    assert_eq!(openapi["paths"]["/api/v1/events"]["get"]["parameters"][0]["name"], "token");
    // Without a token (and anonymous reads off): 401.
    let r = client.get(format!("{}/api/v1/site", board.url())).send().await.expect("GET");
    assert_eq!(r.status().as_u16(), 401);

    // The event stream takes ?token= (EventSource sends no headers); an unknown one is 401.
    let r = client.get(format!("{}/api/v1/events?token=not-a-token", board.url())).send().await.expect("GET");
    assert_eq!(r.status().as_u16(), 401);
    let r = client.get(format!("{}/api/v1/events", board.url())).send().await.expect("GET");
    assert_eq!(r.status().as_u16(), 401);
    // A factory's stream carries its own alerts and not another factory's.
    let mut stream = client
        .get(format!("{}/api/v1/events?token={}", board.url(), board.token("f-exceed")))
        .send()
        .await
        .expect("GET events");
    assert_eq!(stream.status().as_u16(), 200);
    let now = now_ns();
    write(&board, "f-ok", format!("effluent,factory=f-ok,point=outfall-1 cod=130 {now}\n")).await;
    wait_alert(&board, "f-ok", "exceedance").await;
    write(&board, "f-exceed", format!("effluent,factory=f-exceed,point=outfall-1 cod=140 {now}\n")).await;
    let mut text = String::new();
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = stream.chunk().await.expect("chunk") {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("\"factory\":\"f-exceed\"") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(got, Ok(true), "no f-exceed alert on its stream: {text}");
    assert!(text.contains("event: alert"), "{text}");
    assert!(!text.contains("\"factory\":\"f-ok\""), "another factory's alert on f-exceed's stream: {text}");
}

/// One server-sent event as it came over the wire.
#[derive(Debug, Default, Clone)]
struct Sse {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// Reads events off `stream` (after what `buf` already holds) until `done` says so.
async fn read_events(
    stream: &mut reqwest::Response,
    buf: &mut String,
    mut done: impl FnMut(&[Sse]) -> bool,
) -> Vec<Sse> {
    let mut events = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let mut e = Sse::default();
                for line in block.lines() {
                    match line.split_once(':') {
                        Some(("id", v)) => e.id = Some(v.trim().to_string()),
                        Some(("event", v)) => e.event = Some(v.trim().to_string()),
                        Some(("data", v)) => e.data.push_str(v.trim()),
                        // Keep-alive comments (": …") carry nothing.
                        _ => {}
                    }
                }
                if e.event.is_some() || !e.data.is_empty() {
                    events.push(e);
                }
                if done(&events) {
                    return;
                }
            }
            match stream.chunk().await.expect("chunk") {
                Some(chunk) => buf.push_str(&String::from_utf8_lossy(&chunk)),
                None => panic!("the stream ended: {events:?}"),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "timed out reading events: {events:?}");
    events
}

async fn open_stream(board: &TestServer, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = support::http().get(format!("{}/api/v1/events?token={}", board.url(), board.admin_token()));
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    request.send().await.expect("GET events")
}

fn is_alert_of(e: &Sse, factory: &str) -> bool {
    e.event.as_deref() == Some("alert") && e.data.contains(&format!("\"factory\":\"{factory}\""))
}

/// Every event has an id; a reconnect with `Last-Event-ID` replays what it missed, in order,
/// and an id older than the replay ring gets a `reload` event. The board's other routes:
/// `/favicon.ico`, and the display precision and typeset units of `/api/v1/site`.
#[tokio::test]
async fn event_ids_resume_favicon_and_display_units() {
    let dir = tempfile::tempdir().expect("tempdir");
    let board = start(dir.path()).await;
    let client = support::http();

    let r = client.get(format!("{}/favicon.ico", board.url())).send().await.expect("GET favicon");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/x-icon");
    let icon = r.bytes().await.expect("icon");
    // An ICO header: reserved 0, type 1 (icon), one image of 16×16.
    assert_eq!(&icon[..6], &[0, 0, 1, 0, 1, 0]);
    assert_eq!((icon[6], icon[7]), (16, 16));

    let (_, site) = board.get_json_as(board.admin_token(), "/api/v1/site").await;
    let params = |f: usize| site["areas"][0]["factories"][f]["points"][0]["parameters"][0].clone();
    let (cod, ph) = (params(0), params(3));
    assert_eq!(
        (cod["code"].as_str(), cod["unit_display"].as_str(), cod["display_decimals"].as_u64()),
        (Some("cod"), Some("mg/L"), Some(0))
    );
    assert_eq!(
        (ph["code"].as_str(), ph["unit_display"].as_str(), ph["display_decimals"].as_u64()),
        (Some("ph"), Some(""), Some(2))
    );
    let o2 = &site["areas"][1]["factories"][0]["points"][0]["parameters"][1];
    assert_eq!(
        (o2["code"].as_str(), o2["unit_display"].as_str(), o2["display_decimals"].as_u64()),
        (Some("o2"), Some("%"), Some(1))
    );

    // A live alert on the stream, with its id.
    let mut stream = open_stream(&board, None).await;
    assert_eq!(stream.status().as_u16(), 200);
    let mut buf = String::new();
    write(&board, "f-ok", format!("effluent,factory=f-ok,point=outfall-1 cod=130 {}\n", now_ns())).await;
    let seen = read_events(&mut stream, &mut buf, |e| e.iter().any(|e| is_alert_of(e, "f-ok"))).await;
    assert!(seen.iter().all(|e| e.id.as_deref().is_some_and(|id| id.parse::<u64>().is_ok())), "{seen:?}");
    let ids: Vec<u64> = seen.iter().filter_map(|e| e.id.as_deref()?.parse().ok()).collect();
    assert!(ids.windows(2).all(|w| w[1] > w[0]), "increasing ids: {ids:?}");
    let alert = seen.iter().find(|e| is_alert_of(e, "f-ok")).expect("f-ok alert");
    let alert_json: serde_json::Value = serde_json::from_str(&alert.data).expect("alert json");
    assert!(alert_json["summary"].as_str().is_some_and(|s| s.contains("130 mg/L")), "{alert_json}");
    assert!(alert_json["summary_th"].as_str().is_some_and(|s| s.contains("ซีโอดี")), "{alert_json}");
    let last = seen.last().and_then(|e| e.id.clone()).expect("last id");
    drop(stream);

    // Disconnected, another factory exceeds.
    write(&board, "f-exceed", format!("effluent,factory=f-exceed,point=outfall-1 cod=140 {}\n", now_ns())).await;
    wait_alert(&board, "f-exceed", "exceedance").await;

    // Resuming after the last id seen: what was missed, from the next id on, in order.
    let mut stream = open_stream(&board, Some(&last)).await;
    assert_eq!(stream.status().as_u16(), 200);
    let mut buf = String::new();
    let missed = read_events(&mut stream, &mut buf, |e| e.iter().any(|e| is_alert_of(e, "f-exceed"))).await;
    let ids: Vec<u64> = missed.iter().map(|e| e.id.as_deref().and_then(|i| i.parse().ok()).expect("id")).collect();
    let first: u64 = last.parse::<u64>().expect("id") + 1;
    assert_eq!(ids, (first..first + ids.len() as u64).collect::<Vec<_>>(), "no gap, no repeat: {missed:?}");
    drop(stream);

    // An id the ring no longer holds (or never held): reload, with the newest id to resume from.
    let mut stream = open_stream(&board, Some("1")).await;
    let mut buf = String::new();
    let reload = read_events(&mut stream, &mut buf, |e| !e.is_empty()).await;
    assert_eq!(reload[0].event.as_deref(), Some("reload"), "{reload:?}");
    assert!(reload[0].id.as_deref().is_some_and(|id| id.parse::<u64>().is_ok_and(|id| id >= first)), "{reload:?}");
    drop(stream);

    // An id that is not one: 400 naming the header.
    let r = open_stream(&board, Some("yesterday")).await;
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body["message"].as_str().is_some_and(|m| m.starts_with("Last-Event-ID: \"yesterday\"")), "{body}");
}
