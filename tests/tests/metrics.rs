//! Monitoring the programs themselves: the server's `/metrics` counts known writes exactly
//! (accepted, refused 400/401/403/409) and passes Prometheus's own `promtool check
//! metrics`, as does the agent's; every metric the server-operations Grafana dashboard
//! queries is in a real scrape, and its PromQL, the alerting rules and the scrape config
//! pass `promtool`; `/health` and `/ready` answer as InfluxDB 2 does, read by InfluxData's
//! Python client; `--log-format json` writes one JSON object a line and no token secret.

mod support;

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::victoria::Vm;
use support::{TestAgent, TestServer, free_port, http, mosquitto, python, wait_for, workspace_root};

/// A scrape, as `name{labels}` → value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_string(), v.parse().ok()?))))
        .collect()
}

/// `promtool check metrics` on a scrape: it must pass with nothing to say.
fn promtool_check_metrics(what: &str, text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/install-peers.sh installs Debian's prometheus package)");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("scrape to promtool");
    let out = child.wait_with_output().expect("promtool");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics on {what}: {said}\n{text}");
}

/// `promtool check <kind> <file>`: it must pass.
fn promtool_check(kind: &str, file: &std::path::Path) {
    let out = Command::new("promtool").args(["check", kind]).arg(file).output().expect("promtool");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check {kind} {}: {said}", file.display());
}

async fn scrape(server: &TestServer, token: Option<&str>) -> (u16, String, String) {
    let r = server.get(token, "/metrics").await;
    let status = r.status().as_u16();
    let kind = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (status, kind, r.text().await.expect("metrics text"))
}

fn now_s() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn git_commit() -> String {
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(workspace_root())
        .output()
        .expect("git");
    match out.status.success() {
        true => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        false => "unknown".into(),
    }
}

/// The metric names a PromQL expression reads (`eitwatch_…`, `process_…`).
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["eitwatch_", "process_"] {
        for (i, _) in expr.match_indices(prefix) {
            if i > 0 && expr.as_bytes()[i - 1].is_ascii_alphanumeric() {
                continue;
            }
            out.push(expr[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect());
        }
    }
    out
}

fn operations_dashboard() -> Value {
    let path = workspace_root().join("dashboards/grafana/dashboards/server-operations.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// Every PromQL expression of the dashboard: its panels' and its variables'.
fn dashboard_exprs(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        let title = p["title"].as_str().unwrap_or("?").to_string();
        assert_eq!(p["datasource"]["uid"], "eitwatch-prometheus", "panel {title}");
        let targets = p["targets"].as_array().filter(|t| !t.is_empty());
        for t in targets.unwrap_or_else(|| panic!("panel \"{title}\" has no query")) {
            assert_eq!(t["datasource"]["uid"], "eitwatch-prometheus", "panel {title}");
            out.push((title.clone(), t["expr"].as_str().unwrap_or_else(|| panic!("{title}: no expr")).to_string()));
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        assert_eq!(v["datasource"]["uid"], "eitwatch-prometheus", "variable {}", v["name"]);
        out.push((format!("variable {}", v["name"]), v["definition"].as_str().unwrap_or_default().to_string()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_counted_exactly_and_the_scrape_passes_promtool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vm = Vm::start(dir.path()).await;
    let influx =
        format!("[influxdb]\nurl = \"http://{}\"\norg = \"o\"\nbucket = \"eitwatch\"\ntoken = \"vm-token\"\n", vm.addr);
    let server = TestServer::builder(dir.path())
        .anonymous_read("never")
        .factory_tokens(&["f1"])
        .read_token()
        .config_tail(&influx)
        .compliance_tick_ms(200)
        .start()
        .await;

    // Who may scrape: province-wide readers only.
    assert_eq!(scrape(&server, None).await.0, 401, "no token, anonymous_read = never");
    assert_eq!(scrape(&server, Some(server.token("f1"))).await.0, 403, "a factory's token");

    let t = now_s() - 3600;
    let ns = |s: i64| s * 1_000_000_000;
    let line = |fields: &str, s: i64| format!("effluent,factory=f1,point=outfall-1 {fields} {}\n", ns(s));
    // 4 readings, 1 reading, the first batch again (identical: accepted, stored once).
    let a = line("cod=50,ph=7.1", t) + &line("cod=51,ph=7.2", t + 60);
    let b = line("bod=10", t + 120);
    // 400: an unknown parameter in the second of 3 lines; a malformed line (a comment and a
    // blank line are not lines).
    let unknown = line("cod=52", t + 180) + &line("zzz=1", t + 180) + &line("cod=53", t + 240);
    let malformed = format!("# a comment\n\n{}", line("cod=", t + 300)) + &line("cod=54", t + 360);
    // 409: another value for the stored COD at t; 403: a line of f2 with f1's token.
    let rewrite = line("cod=99", t) + &line("cod=55", t + 420);
    let other = "effluent,factory=f2,point=outfall-1 cod=5 ".to_string() + &ns(t).to_string();
    let f1 = server.token("f1").to_string();
    let mut received = 0;
    for (token, body, want) in [
        (f1.as_str(), &a, 204),
        (f1.as_str(), &b, 204),
        (f1.as_str(), &a, 204),
        (f1.as_str(), &unknown, 400),
        (f1.as_str(), &malformed, 400),
        ("not-a-token", &a, 401),
        (f1.as_str(), &rewrite, 409),
        (f1.as_str(), &other, 403),
    ] {
        assert_eq!(server.write(token, body.clone()).await, want, "{body}");
        if want != 401 {
            received += body.len();
        }
    }

    // An event stream client, connected while scraped.
    let client = reqwest::Client::new();
    let stream = client
        .get(format!("{}/api/v1/events", server.url()))
        .header("Authorization", format!("Token {}", server.read_token()))
        .send()
        .await
        .expect("events");
    assert_eq!(stream.status(), 200);

    let read = server.read_token().to_string();
    // Judged and written through: the lag gauges settle at 0.
    let (kind, text) = wait_for("compliance and the write-through to catch up", Duration::from_secs(30), || async {
        let (status, kind, text) = scrape(&server, Some(&read)).await;
        assert_eq!(status, 200, "{text}");
        let m = samples(&text);
        (m["eitwatch_compliance_lag_seconds"] == 0.0
            && m["eitwatch_influxdb_written_readings_total"] == 5.0
            && m["eitwatch_influxdb_behind_readings"] == 0.0
            && m["eitwatch_influxdb_behind_seconds"] == 0.0)
            .then_some((kind, text))
    })
    .await;
    assert_eq!(kind, "text/plain; version=0.0.4; charset=utf-8");
    let m = samples(&text);
    let expected = [
        ("eitwatch_write_requests_total{status=\"204\"}", 3.0),
        ("eitwatch_write_requests_total{status=\"400\"}", 2.0),
        ("eitwatch_write_requests_total{status=\"401\"}", 1.0),
        ("eitwatch_write_requests_total{status=\"403\"}", 1.0),
        ("eitwatch_write_requests_total{status=\"409\"}", 1.0),
        ("eitwatch_write_requests_total{status=\"413\"}", 0.0),
        ("eitwatch_write_requests_total{status=\"other\"}", 0.0),
        ("eitwatch_write_readings_accepted_total", 9.0),
        ("eitwatch_write_lines_refused_total{status=\"400\"}", 5.0),
        ("eitwatch_write_lines_refused_total{status=\"401\"}", 0.0),
        ("eitwatch_write_lines_refused_total{status=\"403\"}", 1.0),
        ("eitwatch_write_lines_refused_total{status=\"409\"}", 2.0),
        ("eitwatch_write_received_bytes_total", received as f64),
        ("eitwatch_write_duration_seconds_count", 8.0),
        ("eitwatch_write_duration_seconds_bucket{le=\"+Inf\"}", 8.0),
        ("eitwatch_store_readings", 5.0),
        ("eitwatch_store_series", 3.0),
        ("eitwatch_store_writable", 1.0),
        ("eitwatch_sse_clients", 1.0),
        ("eitwatch_webhook_delivered_total", 0.0),
        ("eitwatch_webhook_given_up_total", 0.0),
        ("eitwatch_notifications_sent_total{channel=\"email\"}", 0.0),
        ("eitwatch_notifications_failed_total{channel=\"line\"}", 0.0),
        ("eitwatch_influxdb_written_readings_total", 5.0),
    ];
    for (name, want) in expected {
        assert_eq!(m.get(name), Some(&want), "{name}\n{text}");
    }
    let build = format!("eitwatch_build_info{{version=\"{}\",commit=\"{}\"}}", env!("CARGO_PKG_VERSION"), git_commit());
    assert_eq!(m.get(&build), Some(&1.0), "{build}\n{text}");
    let started = m["process_start_time_seconds"];
    // now_s() is whole seconds: the start may be within the current one.
    assert!(started > (now_s() - 600) as f64 && started < (now_s() + 1) as f64, "process_start_time_seconds {started}");
    // Nothing flushed yet: the store's readings are all in its memtable and its log.
    assert_eq!(m["eitwatch_store_memtable_readings"], 5.0);
    assert!(m["eitwatch_store_log_bytes"] > 0.0 && m["eitwatch_store_disk_bytes"] >= m["eitwatch_store_log_bytes"]);
    // The latency buckets are cumulative and end at the count.
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("eitwatch_write_duration_seconds_bucket"))
        .map(|l| m[l.rsplit_once(' ').expect("sample").0])
        .collect();
    assert_eq!(buckets.len(), 15, "14 bounds and +Inf");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    promtool_check_metrics("the server's /metrics", &text);

    // Open alerts in the scrape are those of the API, by kind and severity (15 series).
    let open_rows = text.lines().filter(|l| l.starts_with("eitwatch_alerts_open{")).count();
    assert_eq!(open_rows, 15);
    wait_for("the open alerts of /metrics to match the API's", Duration::from_secs(10), || async {
        let (_, alerts) = server.get_json_as(&read, "/api/v1/alerts").await;
        let mut want: HashMap<String, f64> = HashMap::new();
        for a in alerts["alerts"].as_array().expect("alerts").iter().filter(|a| a["state"] != "resolved") {
            let key = format!("eitwatch_alerts_open{{kind={},severity={}}}", a["kind"], a["severity"]);
            *want.entry(key).or_default() += 1.0;
        }
        let (_, _, text) = scrape(&server, Some(&read)).await;
        let got: HashMap<String, f64> =
            samples(&text).into_iter().filter(|(k, v)| k.starts_with("eitwatch_alerts_open{") && *v > 0.0).collect();
        (got == want).then_some(())
    })
    .await;

    // Every metric the operations dashboard reads is in this scrape.
    for (panel, expr) in dashboard_exprs(&operations_dashboard()) {
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "{panel}: no metric in {expr}");
        for name in names {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))),
                "{panel}: {name} is not in a scrape\n{text}"
            );
        }
    }

    // The client gone, the gauge goes back (hyper notices at the next keep-alive, ≤ 15 s).
    drop(stream);
    wait_for("the event stream client to be gone", Duration::from_secs(30), || async {
        (samples(&scrape(&server, Some(&read)).await.2)["eitwatch_sse_clients"] == 0.0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_metrics_pass_promtool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = free_port();
    let _mosquitto = mosquitto(dir.path(), "mosquitto", broker.port(), "persistence false").await;
    let server = TestServer::builder(dir.path()).factory_tokens(&["f1"]).start().await;
    let source = format!(
        "[[mqtt]]\nname = \"plant\"\nbroker = \"{broker}\"\nclient_id = \"metrics-agent\"\nqos = 1\n\
         [[mqtt.subscription]]\ntopic = \"f1/{{point}}/{{parameter}}\"\npayload = \"json\"\nunit = \"mg/L\"\n"
    );
    let agent = TestAgent::builder(dir.path(), &server).point("outfall-1").config_tail(&source).start().await;
    let (kind, text) = agent.metrics_text().await;
    assert_eq!(kind, "text/plain; version=0.0.4; charset=utf-8");
    let m = samples(&text);
    assert_eq!(
        m.get(&format!("eitwatch_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"))),
        Some(&1.0),
        "{text}"
    );
    assert_eq!(m.get("eitwatch_sink_delivered_total{sink=\"server\"}"), Some(&0.0), "{text}");
    promtool_check_metrics("the agent's /metrics", &text);
}

/// The dashboard's PromQL parses (as recording rules, Grafana's variables filled in), and so
/// do the alerting rules and the scrape config shipped beside it.
#[test]
fn the_dashboard_rules_and_scrape_config_pass_promtool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = operations_dashboard();
    assert_eq!(d["uid"], "eitwatch-server");
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (panel, expr)) in dashboard_exprs(&d).into_iter().filter(|(p, _)| !p.starts_with("variable")).enumerate() {
        let expr = expr.replace("$__rate_interval", "5m").replace("$instance", ".*");
        rules.push_str(&format!("      # {panel}\n      - record: panel_{i}\n        expr: {}\n", Value::from(expr)));
    }
    let path = dir.path().join("dashboard-rules.yml");
    std::fs::write(&path, rules).expect("rules");
    promtool_check("rules", &path);

    let shipped = workspace_root().join("dashboards/prometheus");
    promtool_check("rules", &shipped.join("eitwatch-rules.yml"));
    // The example's token file, made here: promtool checks that it exists.
    let token = dir.path().join("token");
    std::fs::write(&token, "a-read-token\n").expect("token file");
    let config = std::fs::read_to_string(shipped.join("prometheus.yml")).expect("prometheus.yml");
    assert!(config.contains("/etc/prometheus/eitwatch-read-token"));
    let config = config.replace("/etc/prometheus/eitwatch-read-token", &token.display().to_string());
    std::fs::write(dir.path().join("prometheus.yml"), config).expect("prometheus.yml");
    std::fs::copy(shipped.join("eitwatch-rules.yml"), dir.path().join("eitwatch-rules.yml")).expect("rules copy");
    promtool_check("config", &dir.path().join("prometheus.yml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_ready_answer_as_influxdb_2_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::builder(dir.path()).anonymous_read("never").start().await;
    let version = env!("CARGO_PKG_VERSION");

    let r = http().get(format!("{}/health", server.url())).send().await.expect("/health");
    assert_eq!(r.status(), 200);
    let health: Value = r.json().await.expect("health JSON");
    assert_eq!(
        health,
        serde_json::json!({
            "name": "eitwatch",
            "message": "ready for queries and writes",
            "status": "pass",
            "checks": [],
            "version": version,
            "commit": git_commit(),
        })
    );
    let r = http().get(format!("{}/ready", server.url())).send().await.expect("/ready");
    assert_eq!(r.status(), 200);
    let ready: Value = r.json().await.expect("ready JSON");
    assert_eq!(ready["status"], "ready");
    let started: jiff::Timestamp = ready["started"].as_str().expect("started").parse().expect("RFC 3339");
    assert!(
        started <= jiff::Timestamp::now() && started > jiff::Timestamp::now() - jiff::SignedDuration::from_secs(600)
    );
    assert!(ready["up"].as_str().is_some_and(|u| u.ends_with('s')), "{ready}");

    // InfluxData's client: health() says pass (it says fail on anything it cannot read),
    // ready() reads the start time.
    let out = Command::new(python())
        .arg(workspace_root().join("tests/peers/influx_health.py"))
        .args(["--url", server.url()])
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(&out.stdout).expect("the script's JSON");
    assert_eq!(seen["health"]["status"], "pass", "{seen}");
    assert_eq!(seen["health"]["name"], "eitwatch");
    assert_eq!(seen["health"]["version"], version);
    assert_eq!(seen["health"]["commit"], git_commit().as_str());
    assert_eq!(seen["ready"]["status"], "ready", "{seen}");
    let by_client: jiff::Timestamp = seen["ready"]["started"].as_str().expect("started").parse().expect("ISO 8601");
    assert_eq!(by_client.as_second(), started.as_second());
    assert_eq!(seen["ping"], true);
    assert_eq!(seen["version"], format!("eitwatch-{version}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_a_line_without_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::builder(dir.path())
        .arg("--log-format")
        .arg("json")
        // Everything, each request's span too: a token in a query string must not show.
        .env("RUST_LOG", "debug")
        .factory_tokens(&["f1"])
        .read_token()
        .admin_token()
        .config_tail("[ingest]\npartial_writes = true")
        .start()
        .await;
    let f1 = server.token("f1").to_string();
    let bad = "bad-token-0123456789abcdef";
    let t = now_s() - 600;
    let good = format!("effluent,factory=f1,point=outfall-1 cod=50 {t}\n");
    // A write refused for a bad token, in the header and as InfluxDB 1.x's `p`.
    assert_eq!(server.write(bad, good.clone()).await, 401);
    let v1 = |token: &str| format!("{}/write?db=x&u=u&p={token}&precision=s", server.url());
    let r = http().post(v1(bad)).body(good.clone()).send().await.expect("write");
    assert_eq!(r.status(), 401);
    let r = http().post(v1(&f1)).body(good.clone()).send().await.expect("write");
    assert_eq!(r.status(), 204);
    // A partial write: logged as a warning with its fields.
    let partial = format!(
        "effluent,factory=f1,point=outfall-1 cod=51 {}\neffluent,factory=f1,point=outfall-1 zzz=1 {t}\n",
        t + 60
    );
    let r = http()
        .post(format!("{}/api/v2/write?bucket=b&precision=s", server.url()))
        .header("Authorization", format!("Token {f1}"))
        .body(partial)
        .send()
        .await
        .expect("write");
    assert_eq!(r.status(), 400);
    // The event stream with its `?token=`.
    let read = server.read_token().to_string();
    let r = http()
        .get(format!("{}/api/v1/events?token={read}", server.url()))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status(), 200);
    }
    // Tokens are made by the command line only: the secret on stdout, nothing of it on stderr.
    let (stdout, stderr) = server.token_command(&["create", "--admin"]);
    let created = stdout.trim().to_string();
    assert!(!created.is_empty() && !stderr.contains(&created), "{stderr}");
    let admin = server.admin_token().to_string();
    // Stopped gracefully, the shutdown is logged too.
    let pid = server.pid().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let log = wait_for("the server to log its stop", Duration::from_secs(30), || {
        let log = server.log();
        async move { log.contains("Server stopped").then_some(log) }
    })
    .await;
    server.kill();

    let mut objects = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for key in ["timestamp", "level", "target"] {
            assert!(v[key].is_string(), "no {key}: {line}");
        }
        objects.push(v);
    }
    assert!(objects.len() > 10, "{log}");
    let find = |message: &str| {
        objects
            .iter()
            .find(|v| v["message"].as_str().is_some_and(|m| m.starts_with(message)))
            .unwrap_or_else(|| panic!("no \"{message}\" in the log:\n{log}"))
    };
    let listening = find("Server listening");
    assert_eq!(listening["level"], "INFO");
    assert_eq!(listening["target"], "eitwatch_server");
    assert_eq!(listening["addr"], server.addr().to_string());
    let partial = find("Partial write");
    assert_eq!(partial["level"], "WARN");
    assert_eq!(partial["factory"], "f1");
    assert_eq!(partial["rejected"], 1);
    // Requests are logged by path, never their query string.
    assert!(objects.iter().any(|v| v["span"]["path"] == "/write"), "{log}");
    for secret in [f1.as_str(), bad, read.as_str(), admin.as_str(), created.as_str()] {
        assert!(!log.contains(secret), "a token secret in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fails_once_the_store_cannot_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::builder(dir.path())
        .factory_tokens(&["f1"])
        .config_tail("[store]\nsegment_max_bytes = 4096")
        .start()
        .await;
    let t = now_s() - 86_400;
    let batch = |from: i64| -> String {
        (0..1000)
            .map(|i| format!("effluent,factory=f1,point=outfall-1 cod={i} {}\n", (from + i) * 1_000_000_000))
            .collect()
    };
    // Past the segment's bound: the next write starts a new segment, in a directory that is
    // then no longer one.
    assert_eq!(server.write_as("f1", batch(t)).await, 204);
    let store = server.data_dir().join("store");
    std::fs::rename(&store, server.data_dir().join("store-aside")).expect("move the store aside");
    std::fs::write(&store, "not a directory").expect("a file in its place");
    assert_eq!(server.write_as("f1", batch(t + 1000)).await, 500);

    let r = http().get(format!("{}/health", server.url())).send().await.expect("/health");
    assert_eq!(r.status(), 503);
    let health: Value = r.json().await.expect("health JSON");
    assert_eq!(health["status"], "fail", "{health}");
    assert_eq!(health["name"], "eitwatch");
    let message = health["message"].as_str().expect("message");
    assert!(message.starts_with("the store refuses writes: "), "{message}");
    assert_eq!(health["checks"], serde_json::json!([{"name": "store", "status": "fail", "message": message}]));
    let m = samples(&scrape(&server, None).await.2);
    assert_eq!(m["eitwatch_store_writable"], 0.0);
    assert_eq!(m["eitwatch_write_requests_total{status=\"500\"}"], 1.0);

    // InfluxData's client reads it as a failed health.
    let out = Command::new(python())
        .arg(workspace_root().join("tests/peers/influx_health.py"))
        .args(["--url", server.url()])
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(&out.stdout).expect("the script's JSON");
    assert_eq!(seen["health"]["status"], "fail", "{seen}");
}
