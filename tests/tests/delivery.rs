//! Delivery under faults (issue 4): the real server and agent binaries, mosquitto as the
//! factory's broker, a TCP chaos proxy on the link. A publisher sends an exactly known
//! sequence of COD readings with QoS 1 (each acknowledged by mosquitto), the agent takes
//! them from its persistent session, and each test asserts at the end that the server's
//! store holds exactly that sequence (count, times and values), or that sequence less what a
//! gap record says was dropped.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use support::proxy::ChaosProxy;
use support::victoria::Vm;
use support::*;

const T0_MS: i64 = 1_795_300_000_000; // 2026-11-22T08:26:40Z

fn time_ns(i: u64) -> i64 {
    (T0_MS + i as i64 * 1000) * 1_000_000
}

/// Exactly representable in binary and in JSON, so it round-trips bit for bit.
fn value(i: u64) -> f64 {
    10.0 + i as f64 * 0.5
}

fn expected(ids: impl IntoIterator<Item = u64>) -> Vec<(i64, f64)> {
    ids.into_iter().map(|i| (time_ns(i), value(i))).collect()
}

/// Publishes the sequence with QoS 1 and counts the broker's acknowledgements.
struct Publisher {
    client: AsyncClient,
    acked: Arc<AtomicUsize>,
}

impl Publisher {
    async fn connect(broker: SocketAddr) -> Publisher {
        let mut options = MqttOptions::new("delivery-publisher", broker.ip().to_string(), broker.port());
        options.set_inflight(50);
        let (client, mut events) = AsyncClient::new(options, 1000);
        let acked = Arc::new(AtomicUsize::new(0));
        let count = acked.clone();
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Publisher { client, acked }
    }

    async fn send(&self, point: &str, parameter: &str, v: f64, t_ns: i64) {
        let payload = format!(r#"{{"value": {v}, "time": {t_ns}}}"#);
        self.client
            .publish(format!("f1/{point}/{parameter}"), QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish");
    }

    /// Publishes in steps of ten, each taken by the agent before the next. (Faster, the
    /// agent's MQTT source loses acknowledgements when rumqttc's request channel is full,
    /// and the broker stops sending until the agent reconnects; see the report on issue 4.)
    async fn cod(&self, agent: &TestAgent, ids: std::ops::Range<u64>) {
        let base = agent.metric("eitwatch_outbox_appended_total").await;
        let start = ids.start;
        for i in ids {
            self.send("outfall-1", "cod", value(i), time_ns(i)).await;
            if (i - start + 1) % 10 == 0 {
                let want = base + (i - start + 1) as f64;
                let what = format!("the agent to take reading {i}");
                poll_every(Duration::from_millis(10), &what, Duration::from_secs(30), || async {
                    (agent.metric("eitwatch_outbox_appended_total").await >= want).then_some(())
                })
                .await;
            }
        }
    }

    async fn wait_acked(&self, n: usize) {
        let acked = self.acked.clone();
        wait_for("the broker's acks", Duration::from_secs(30), || {
            let acked = acked.clone();
            async move { (acked.load(Ordering::SeqCst) >= n).then_some(()) }
        })
        .await;
    }
}

/// The server on a fixed loopback port (so it can be restarted where the agent expects it).
async fn server(dir: &Path) -> TestServer {
    TestServer::builder(dir).fixed_port().factory_tokens(&["f1"]).start().await
}

async fn cod(server: &TestServer) -> Vec<(i64, f64)> {
    server.series("f1", "cod").await
}

async fn gaps(server: &TestServer) -> Vec<serde_json::Value> {
    server.get_json("/api/v1/gaps?factory=f1").await["gaps"].as_array().expect("gaps").clone()
}

/// Waits until the store holds `n` COD readings.
async fn wait_cod(server: &TestServer, n: usize, limit: Duration) {
    wait_for(&format!("{n} COD readings in the store"), limit, || async {
        (server.series("f1", "cod").await.len() >= n).then_some(())
    })
    .await;
}

/// The agent binary on a config this test writes; restartable on the same data directory.
struct TestAgent {
    dir: PathBuf,
    conf: PathBuf,
    data: PathBuf,
    proc: Option<Proc>,
    starts: usize,
    metrics: Option<SocketAddr>,
}

struct AgentOptions<'a> {
    url: String,
    token: &'a str,
    gzip: bool,
    extra_point: bool,
    /// TOML appended to `[uplink]` (more uplink keys, or an `[outbox]` table).
    extra: &'a str,
}

impl TestAgent {
    fn configure(dir: &Path, broker: SocketAddr, o: AgentOptions<'_>) -> TestAgent {
        let data = dir.join("agent");
        let point9 = if o.extra_point { "[[point]]\nid = \"outfall-9\"\nkind = \"effluent\"\n" } else { "" };
        let toml = format!(
            r#"
[agent]
factory = "f1"
data_dir = "{data}"
metrics_listen = "127.0.0.1:0"
[[point]]
id = "outfall-1"
kind = "effluent"
{point9}
[uplink]
url = "{url}"
token = "{token}"
batch_max_readings = 40
batch_max_age_ms = 100
timeout_ms = 2000
gzip = {gzip}
auth_retry_ms = 500
{extra}
[[mqtt]]
name = "plant"
broker = "{broker}"
client_id = "delivery-agent"
qos = 1
[[mqtt.subscription]]
topic = "f1/{{point}}/{{parameter}}"
payload = "json"
unit = "mg/L"
"#,
            data = data.display(),
            url = o.url,
            token = o.token,
            gzip = o.gzip,
            extra = o.extra,
        );
        let conf = dir.join("agent.toml");
        std::fs::write(&conf, toml).expect("agent.toml");
        TestAgent { dir: dir.to_path_buf(), conf, data, proc: None, starts: 0, metrics: None }
    }

    /// Starts the agent and waits until it has opened its outbox and serves /metrics.
    async fn start(&mut self) {
        let addr_file = self.data.join("metrics-address");
        let _ = std::fs::remove_file(&addr_file);
        self.starts += 1;
        let name = format!("agent-{}", self.starts);
        self.proc =
            Some(Proc::spawn(&name, &self.dir, Command::new(bin("eitwatch-agent")).arg("--config").arg(&self.conf)));
        let addr = wait_for("the agent's metrics-address", Duration::from_secs(20), || {
            let f = addr_file.clone();
            async move { std::fs::read_to_string(f).ok().and_then(|s| s.trim().parse::<SocketAddr>().ok()) }
        })
        .await;
        self.metrics = Some(addr);
    }

    /// SIGKILL.
    fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    fn log(&self) -> String {
        self.proc.as_ref().map(|p| p.log()).unwrap_or_default()
    }

    /// `/metrics`, as `name{labels}` → value.
    async fn metrics(&self) -> HashMap<String, f64> {
        let addr = self.metrics.expect("agent started");
        let text = http()
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_string(), v.parse().ok()?))))
            .collect()
    }

    async fn metric(&self, name: &str) -> f64 {
        let m = self.metrics().await;
        *m.get(name).unwrap_or_else(|| panic!("no {name} in /metrics: {m:?}"))
    }

    async fn wait_metric(&self, name: &str, what: &str, ok: impl Fn(f64) -> bool) {
        wait_for(&format!("{what} ({name})"), Duration::from_secs(30), || async {
            ok(self.metric(name).await).then_some(())
        })
        .await;
    }

    /// `eitwatch-agent status --json`, read from the files.
    fn status(&self) -> serde_json::Value {
        let out = Command::new(bin("eitwatch-agent"))
            .arg("--config")
            .arg(&self.conf)
            .args(["status", "--json"])
            .output()
            .expect("status");
        assert!(out.status.success(), "status: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }
}

/// Every sink settled: nothing waits, and appended = delivered + dead-lettered + dropped.
async fn assert_counts_add_up(agent: &TestAgent) {
    let m = agent.metrics().await;
    let get = |k: &str| m.get(k).copied().unwrap_or_else(|| panic!("no {k} in {m:?}"));
    assert_eq!(get("eitwatch_sink_queue_depth{sink=\"server\"}"), 0.0);
    assert_eq!(
        get("eitwatch_outbox_appended_total"),
        get("eitwatch_sink_delivered_total{sink=\"server\"}")
            + get("eitwatch_sink_dead_lettered_total{sink=\"server\"}")
            + get("eitwatch_sink_dropped_total{sink=\"server\"}"),
        "appended = delivered + dead-lettered + dropped: {m:?}"
    );
}

/// Until the agent's subscription is in place, messages to the broker are lost: publish a
/// probe (BOD, a series the tests do not count) until the server has it. From then on the
/// broker keeps the agent's persistent session across the agent's restarts.
async fn wait_subscribed(publisher: &Publisher, server: &TestServer) {
    wait_for("the agent's MQTT subscription", Duration::from_secs(30), || async {
        publisher.send("outfall-1", "bod", 1.0, time_ns(0) - 60_000_000_000).await;
        (!server.series("f1", "bod").await.is_empty()).then_some(())
    })
    .await;
}

struct Setup {
    _dir: tempfile::TempDir,
    _mosquitto: Proc,
    server: TestServer,
    publisher: Publisher,
    broker: SocketAddr,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = free_port();
    // Queues without limit for a disconnected persistent session (the agent while it is killed).
    let mosquitto = mosquitto(dir.path(), "mosquitto", broker.port(), "persistence false\nmax_queued_messages 0").await;
    let server = server(dir.path()).await;
    let publisher = Publisher::connect(broker).await;
    Setup { _dir: dir, _mosquitto: mosquitto, server, publisher, broker }
}

impl Setup {
    fn dir(&self) -> &Path {
        self._dir.path()
    }

    fn agent(&self, url: String, gzip: bool, extra: &str) -> TestAgent {
        let o = AgentOptions { url, token: self.server.token("f1"), gzip, extra_point: false, extra };
        TestAgent::configure(self.dir(), self.broker, o)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stopped_then_restarted_loses_and_duplicates_nothing() {
    let mut s = setup().await;
    let mut agent = s.agent(s.server.url().to_string(), false, "");
    agent.start().await;
    wait_subscribed(&s.publisher, &s.server).await;

    s.publisher.cod(&agent, 0..100).await;
    wait_cod(&s.server, 100, Duration::from_secs(30)).await;
    s.server.kill();
    s.publisher.cod(&agent, 100..300).await;
    s.publisher.wait_acked(300).await;
    // The agent has them all on disk and keeps retrying.
    agent.wait_metric("eitwatch_sink_queue_depth{sink=\"server\"}", "200 readings waiting", |v| v >= 200.0).await;
    agent.wait_metric("eitwatch_sink_retried_total{sink=\"server\"}", "a retry", |v| v >= 1.0).await;
    let status = agent.status();
    assert!(status["sinks"][0]["depth"].as_u64().expect("depth") >= 200, "status from the files: {status}");
    s.server.restart().await;

    wait_cod(&s.server, 300, Duration::from_secs(60)).await;
    agent.wait_metric("eitwatch_sink_queue_depth{sink=\"server\"}", "an empty queue", |v| v == 0.0).await;
    assert_eq!(cod(&s.server).await, expected(0..300));
    assert_counts_add_up(&agent).await;
    let status = agent.status();
    assert_eq!(status["sinks"][0]["depth"], 0, "{status}");
    assert_eq!(status["sinks"][0]["ledger"]["delivered"], status["appended"], "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_sigkilled_mid_stream_20_times_loses_and_duplicates_nothing() {
    let s = setup().await;
    let mut agent = s.agent(s.server.url().to_string(), false, "");
    agent.start().await;
    wait_subscribed(&s.publisher, &s.server).await;

    let total = 1000u64;
    let client = s.publisher.client.clone();
    let publishing = tokio::spawn(async move {
        for i in 0..total {
            let payload = format!(r#"{{"value": {}, "time": {}}}"#, value(i), time_ns(i));
            client.publish("f1/outfall-1/cod", QoS::AtLeastOnce, false, payload).await.expect("publish");
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
    });
    for round in 0..20u64 {
        // Let it take some readings (a varying number), then kill it in the middle of the stream.
        let appended = agent.metric("eitwatch_outbox_appended_total").await;
        let want = appended + 5.0 + (round % 4) as f64 * 7.0;
        // At most 5 s: a slow agent is killed all the same, with what it took by then.
        let start = std::time::Instant::now();
        while agent.metric("eitwatch_outbox_appended_total").await < want && start.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10 + round % 3 * 10)).await;
        }
        agent.kill();
        agent.start().await;
    }
    publishing.await.expect("publisher");
    s.publisher.wait_acked(total as usize).await;
    wait_cod(&s.server, total as usize, Duration::from_secs(60)).await;
    agent.wait_metric("eitwatch_sink_queue_depth{sink=\"server\"}", "an empty queue", |v| v == 0.0).await;
    assert_eq!(cod(&s.server).await, expected(0..total));
    let log = std::fs::read_dir(s.dir())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("agent-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert_eq!(log.matches("Outbox opened").count(), 21, "21 starts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_cut_and_restored_by_a_proxy_loses_and_duplicates_nothing() {
    let s = setup().await;
    let proxy = ChaosProxy::start(s.server.addr()).await;
    let mut agent = s.agent(format!("http://{}", proxy.addr), false, "");
    agent.start().await;
    wait_subscribed(&s.publisher, &s.server).await;

    s.publisher.cod(&agent, 0..100).await;
    wait_cod(&s.server, 100, Duration::from_secs(30)).await;
    proxy.break_networking();
    s.publisher.cod(&agent, 100..250).await;
    agent.wait_metric("eitwatch_sink_retried_total{sink=\"server\"}", "a failed attempt", |v| v >= 1.0).await;
    s.publisher.cod(&agent, 250..300).await;
    s.publisher.wait_acked(300).await;
    agent.wait_metric("eitwatch_sink_queue_depth{sink=\"server\"}", "200 waiting", |v| v >= 200.0).await;
    assert_eq!(cod(&s.server).await.len(), 100, "nothing passes a cut link");
    proxy.restore_networking();

    wait_cod(&s.server, 300, Duration::from_secs(60)).await;
    agent.wait_metric("eitwatch_sink_queue_depth{sink=\"server\"}", "an empty queue", |v| v == 0.0).await;
    assert_eq!(cod(&s.server).await, expected(0..300));
    assert_counts_add_up(&agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_full_during_an_outage_drops_the_oldest_and_the_gap_record_arrives() {
    let s = setup().await;
    let proxy = ChaosProxy::start(s.server.addr()).await;
    // About 70 readings a segment, two segments kept.
    let mut agent =
        s.agent(format!("http://{}", proxy.addr), false, "[outbox]\nmax_bytes = 8192\nsegment_bytes = 4096\n");
    agent.start().await;
    wait_subscribed(&s.publisher, &s.server).await;

    s.publisher.cod(&agent, 0..100).await;
    wait_cod(&s.server, 100, Duration::from_secs(30)).await;
    proxy.break_networking();
    let total = 600u64;
    s.publisher.cod(&agent, 100..total).await;
    s.publisher.wait_acked(total as usize).await;
    agent.wait_metric("eitwatch_outbox_appended_total", "every reading appended", |v| v >= (total + 1) as f64).await;
    let dropped = agent.metric("eitwatch_sink_dropped_total{sink=\"server\"}").await as u64;
    assert!(dropped > 200, "{dropped} dropped");
    assert!(agent.metric("eitwatch_outbox_bytes").await <= 8192.0);
    assert!(agent.metric("eitwatch_sink_gaps_pending{sink=\"server\"}").await > 0.0, "gap records wait");
    proxy.restore_networking();

    // The oldest are gone; the gap records say exactly which.
    let kept_from = 100 + dropped;
    wait_cod(&s.server, (100 + total - kept_from) as usize, Duration::from_secs(60)).await;
    agent.wait_metric("eitwatch_sink_gaps_pending{sink=\"server\"}", "gaps delivered", |v| v == 0.0).await;
    agent.wait_metric("eitwatch_sink_queue_depth{sink=\"server\"}", "an empty queue", |v| v == 0.0).await;
    assert_eq!(cod(&s.server).await, expected((0..100).chain(kept_from..total)));
    let mut gaps = gaps(&s.server).await;
    gaps.sort_by_key(|g| g["from_ns"].as_i64());
    let counts: u64 = gaps.iter().map(|g| g["count"].as_u64().expect("count")).sum();
    assert_eq!(counts, dropped, "the gap records count every dropped reading: {gaps:?}");
    assert_eq!(gaps[0]["from_ns"], time_ns(100), "from the oldest undelivered reading");
    assert_eq!(gaps[gaps.len() - 1]["to_ns"], time_ns(kept_from - 1), "to the newest dropped one");
    for pair in gaps.windows(2) {
        assert_eq!(pair[0]["to_ns"].as_i64().expect("to") + 1_000_000_000, pair[1]["from_ns"].as_i64().expect("from"));
    }
    for g in &gaps {
        assert_eq!((g["point"].as_str(), g["reason"].as_str()), (Some("outfall-1"), Some("agent buffer overflow")));
        assert_eq!(g["parameters"], serde_json::json!(["cod"]));
    }
    assert_counts_add_up(&agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reading_is_dead_lettered_and_a_refused_token_stops_delivery_without_loss() {
    let s = setup().await;
    // A wrong token first: delivery stops, nothing is dropped.
    let o =
        AgentOptions { url: s.server.url().to_string(), token: "ewf_wrong", gzip: false, extra_point: true, extra: "" };
    let mut agent = TestAgent::configure(s.dir(), s.broker, o);
    agent.start().await;
    // The subscription cannot be probed through the store yet: wait for the agent's own log.
    wait_for("the agent's subscription", Duration::from_secs(30), || {
        let log = agent.log();
        async move { log.contains("MQTT connected").then_some(()) }
    })
    .await;
    // Readings of outfall-9 are valid for the agent and unknown to the server (400).
    let bad: Vec<u64> = vec![3, 4, 17, 58];
    // Repeat the first reading until the agent has taken it (its subscription is then live).
    wait_for("the agent to take the first reading", Duration::from_secs(30), || async {
        s.publisher.send("outfall-1", "cod", value(0), time_ns(0)).await;
        (agent.metric("eitwatch_outbox_appended_total").await >= 1.0).then_some(())
    })
    .await;
    let base = agent.metric("eitwatch_outbox_appended_total").await;
    for i in 1..80u64 {
        let point = if bad.contains(&i) { "outfall-9" } else { "outfall-1" };
        s.publisher.send(point, "cod", value(i), time_ns(i)).await;
        if i % 10 == 0 {
            // In steps the agent keeps up with (see Publisher::cod).
            let want = base + i as f64;
            agent.wait_metric("eitwatch_outbox_appended_total", "the step taken", |v| v >= want).await;
        }
    }
    agent.wait_metric("eitwatch_sink_stopped{sink=\"server\"}", "delivery stopped", |v| v == 1.0).await;
    agent.wait_metric("eitwatch_outbox_appended_total", "all appended", |v| v >= 80.0).await;
    assert_eq!(agent.metric("eitwatch_sink_delivered_total{sink=\"server\"}").await, 0.0);
    assert_eq!(agent.metric("eitwatch_sink_dropped_total{sink=\"server\"}").await, 0.0);
    assert!(agent.log().contains("DELIVERY STOPPED"), "said loudly");
    assert!(cod(&s.server).await.is_empty());

    // The right token: everything flows, the four refused readings go to dead-letter files.
    agent.kill();
    let o = AgentOptions {
        url: s.server.url().to_string(),
        token: s.server.token("f1"),
        gzip: false,
        extra_point: true,
        extra: "",
    };
    let mut agent = TestAgent::configure(s.dir(), s.broker, o);
    agent.start().await;
    let good: Vec<u64> = (0..80).filter(|i| !bad.contains(i)).collect();
    wait_cod(&s.server, good.len(), Duration::from_secs(60)).await;
    agent.wait_metric("eitwatch_sink_queue_depth{sink=\"server\"}", "an empty queue", |v| v == 0.0).await;
    assert_eq!(cod(&s.server).await, expected(good));
    assert_eq!(agent.metric("eitwatch_sink_stopped{sink=\"server\"}").await, 0.0);
    assert_eq!(agent.metric("eitwatch_sink_dead_lettered_total{sink=\"server\"}").await, bad.len() as f64);
    let dead = agent.data.join("dead-letter");
    let mut lines = Vec::new();
    for e in std::fs::read_dir(&dead).expect("dead-letter dir").filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().to_string();
        let text = std::fs::read_to_string(e.path()).expect("read");
        if name.ends_with(".lp") {
            lines.extend(text.lines().map(str::to_string));
            let reason =
                std::fs::read_to_string(dead.join(name.replace(".lp", ".reason.txt"))).expect("reason beside it");
            assert!(reason.contains("unknown point \\\"outfall-9\\\"") || reason.contains("unknown point"), "{reason}");
        }
    }
    lines.sort();
    let mut want: Vec<String> =
        bad.iter().map(|&i| format!("effluent,factory=f1,point=outfall-9 cod={} {}", value(i), time_ns(i))).collect();
    want.sort();
    assert_eq!(lines, want);
    assert_counts_add_up(&agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_live_readings_overtake_the_rate_limited_backlog() {
    let s = setup().await;
    let proxy = ChaosProxy::start(s.server.addr()).await;
    // The backlog drains at 2 readings/s after a first 40-reading batch. The agent turns to
    // "live first" once it is a batch behind, early in the outage, so the backlog is the
    // readings from before that (about 50) and the rest go as live ones: at 2/s its last ones
    // take seconds, room for the live reading to overtake them on a loaded machine.
    let mut agent = s.agent(format!("http://{}", proxy.addr), false, "backfill_readings_per_s = 2\n");
    agent.start().await;
    wait_subscribed(&s.publisher, &s.server).await;
    proxy.break_networking();
    s.publisher.cod(&agent, 0..200).await;
    proxy.restore_networking();
    // Delivery resumed: the first backlog batch is in.
    wait_cod(&s.server, 40, Duration::from_secs(30)).await;
    // A present reading, an exceedance, arrives while the backlog still drains.
    s.publisher.send("outfall-1", "cod", 500.0, time_ns(1000)).await;
    let stored = wait_for("the live reading", Duration::from_secs(10), || async {
        let cod = cod(&s.server).await;
        cod.iter().any(|&(t, _)| t == time_ns(1000)).then_some(cod.len() - 1)
    })
    .await;
    assert!(stored < 200, "the live reading came before the backlog was done ({stored} of 200 then)");
    wait_cod(&s.server, 201, Duration::from_secs(60)).await;
    let mut want = expected(0..200);
    want.push((time_ns(1000), 500.0));
    assert_eq!(cod(&s.server).await, want);
    assert_counts_add_up(&agent).await;
}

/// `(time_ns, value)` of `effluent_cod` in VictoriaMetrics (it keeps milliseconds).
async fn vm_cod(vm: &Vm) -> Vec<(i64, f64)> {
    vm.export("effluent_cod").await.into_iter().map(|(_, _, ms, v)| (ms * 1_000_000, v)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_influxdb_sink_keeps_its_own_cursor_through_its_own_outage() {
    let s = setup().await;
    let vm = Vm::start(s.dir()).await;
    let proxy = ChaosProxy::start(vm.addr).await;
    let historian = format!(
        "[[influxdb]]\nname = \"historian\"\nurl = \"http://{}\"\ntoken = \"t\"\norg = \"factory\"\nbucket = \"effluent\"\nbatch_max_readings = 40\nbatch_max_age_ms = 100\ngzip = false\n",
        proxy.addr
    );
    let mut agent = s.agent(s.server.url().to_string(), false, &historian);
    agent.start().await;
    wait_subscribed(&s.publisher, &s.server).await;
    proxy.break_networking();
    s.publisher.cod(&agent, 0..150).await;
    // The server has everything while the historian's link is down; its readings wait.
    wait_cod(&s.server, 150, Duration::from_secs(30)).await;
    agent.wait_metric("eitwatch_sink_queue_depth{sink=\"historian\"}", "150 waiting", |v| v >= 150.0).await;
    assert_eq!(agent.metric("eitwatch_sink_queue_depth{sink=\"server\"}").await, 0.0);
    assert!(vm_cod(&vm).await.is_empty());
    proxy.restore_networking();
    agent.wait_metric("eitwatch_sink_queue_depth{sink=\"historian\"}", "an empty queue", |v| v == 0.0).await;
    let got = wait_for("150 readings in VictoriaMetrics", Duration::from_secs(30), || async {
        let mut got = vm_cod(&vm).await;
        // VictoriaMetrics keeps a re-sent sample twice where InfluxDB overwrites it: compare points.
        got.dedup();
        (got.len() >= 150).then_some(got)
    })
    .await;
    assert_eq!(got, expected(0..150));
    assert_eq!(cod(&s.server).await, expected(0..150));
    let m = agent.metrics().await;
    assert_eq!(m["eitwatch_sink_delivered_total{sink=\"historian\"}"], m["eitwatch_outbox_appended_total"], "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gap_records_are_pinned_to_the_token_factory_and_append_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path()).await;
    let f2_token = server.create_token(&["--factory", "f2"]).secret;
    let gap = |id: &str, factory: &str, point: &str, count: u64| {
        serde_json::json!({ "gaps": [{
            "id": id, "factory": factory, "point": point, "kind": "effluent", "parameters": ["cod"],
            "from_ns": time_ns(0), "to_ns": time_ns(9), "count": count, "reason": "agent buffer overflow",
        }]})
    };
    async fn post(server: &TestServer, token: &str, body: serde_json::Value) -> (u16, String) {
        server.post(token, "/api/v1/gaps", body.to_string()).await
    }
    let t1 = server.token("f1");
    let (status, text) = post(&server, &f2_token, gap("g1", "f1", "outfall-1", 10)).await;
    assert_eq!(status, 403, "another factory's gap: {text}");
    assert!(text.contains("not the token's factory"), "{text}");
    assert_eq!(post(&server, t1, gap("g1", "f1", "outfall-1", 10)).await.0, 204);
    assert_eq!(post(&server, t1, gap("g1", "f1", "outfall-1", 10)).await.0, 204, "a re-sent gap");
    let (status, text) = post(&server, t1, gap("g1", "f1", "outfall-1", 11)).await;
    assert_eq!(status, 409, "{text}");
    let (status, text) = post(&server, t1, gap("g2", "f1", "outfall-7", 10)).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("unknown point \\\"outfall-7\\\""), "{text}");
    let gaps = gaps(&server).await;
    assert_eq!(gaps.len(), 1, "stored once: {gaps:?}");
    assert_eq!(gaps[0]["count"], 10);
    let (status, seen) = server.get_json_as(&f2_token, "/api/v1/gaps").await;
    assert_eq!(status, 200);
    assert_eq!(seen["gaps"], serde_json::json!([]), "f2 sees only its own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outbox_drops_only_what_a_sink_lacks_and_tells_influxdb_with_gap_lines() {
    let s = setup().await;
    let vm = Vm::start(s.dir()).await;
    let proxy = ChaosProxy::start(vm.addr).await;
    let extra = format!(
        "[[influxdb]]\nname = \"historian\"\nurl = \"http://{}\"\ntoken = \"t\"\norg = \"factory\"\nbucket = \"effluent\"\nbatch_max_readings = 40\nbatch_max_age_ms = 100\ngzip = false\n[outbox]\nmax_bytes = 8192\nsegment_bytes = 4096\n",
        proxy.addr
    );
    let mut agent = s.agent(s.server.url().to_string(), false, &extra);
    agent.start().await;
    wait_subscribed(&s.publisher, &s.server).await;
    // The probe readings delivered to both, so that only COD readings can be dropped.
    agent.wait_metric("eitwatch_sink_queue_depth{sink=\"historian\"}", "the historian caught up", |v| v == 0.0).await;
    proxy.break_networking();
    let total = 400u64;
    s.publisher.cod(&agent, 0..total).await;
    wait_cod(&s.server, total as usize, Duration::from_secs(30)).await;
    let dropped = agent.metric("eitwatch_sink_dropped_total{sink=\"historian\"}").await as u64;
    assert!(dropped > 100, "{dropped} dropped for the historian");
    assert_eq!(agent.metric("eitwatch_sink_dropped_total{sink=\"server\"}").await, 0.0, "the server had them all");
    proxy.restore_networking();
    agent.wait_metric("eitwatch_sink_gaps_pending{sink=\"historian\"}", "gap lines delivered", |v| v == 0.0).await;
    agent.wait_metric("eitwatch_sink_queue_depth{sink=\"historian\"}", "an empty queue", |v| v == 0.0).await;
    let want = expected(dropped..total);
    let got = wait_for("the kept readings in VictoriaMetrics", Duration::from_secs(30), || async {
        let mut got = vm_cod(&vm).await;
        got.dedup();
        (got.len() >= (total - dropped) as usize).then_some(got)
    })
    .await;
    assert_eq!(got, want, "the historian has the newest, the oldest {dropped} are gone");
    // VictoriaMetrics keeps a gap line's integer fields as gap_count, gap_from_ns, gap_to_ns.
    let counted = wait_for("gap_count in VictoriaMetrics", Duration::from_secs(30), || async {
        let sum: f64 = vm.export("gap_count").await.iter().map(|(.., v)| v).sum();
        (sum > 0.0).then_some(sum)
    })
    .await;
    assert_eq!(counted as u64, dropped, "the gap lines count every reading the historian lost");
    assert_eq!(cod(&s.server).await, expected(0..total));
    assert!(gaps(&s.server).await.is_empty(), "the server lost nothing, so it was told of no gap");
}

/// gzip bodies (the default) arrive exactly; the agent's fallback to identity bodies (for a
/// server that refuses gzip) must not be what carried them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bodies_are_delivered_exactly() {
    let s = setup().await;
    let mut agent = s.agent(s.server.url().to_string(), true, "");
    agent.start().await;
    wait_subscribed(&s.publisher, &s.server).await;
    s.publisher.cod(&agent, 0..200).await;
    wait_cod(&s.server, 200, Duration::from_secs(30)).await;
    assert_eq!(cod(&s.server).await, expected(0..200));
    assert!(!agent.log().contains("refuses gzip"), "the server took gzip bodies");
    assert_counts_add_up(&agent).await;
}

/// A server that takes small bodies only (413 above `max_body_bytes`): the agent halves its
/// batches until they fit and delivers every reading once; a reading too large alone is
/// dead-lettered with the server's reason, and nothing else is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_refused_413_are_halved_until_they_fit_and_only_a_lone_reading_too_large_is_dead_lettered() {
    let mut s = setup().await;
    // One line is 66 bytes (`effluent,factory=f1,point=outfall-1 cod=10.5 1795300000000000000\n`):
    // 700 bytes take 10 lines, so the agent's batches of 40 go as 40 → 20 → 10.
    s.server.restart_with_server_keys("max_body_bytes = 700").await;
    let mut agent = s.agent(s.server.url().to_string(), false, "");
    agent.start().await;
    wait_subscribed(&s.publisher, &s.server).await;
    s.publisher.cod(&agent, 0..200).await;
    wait_cod(&s.server, 200, Duration::from_secs(60)).await;
    assert_eq!(cod(&s.server).await, expected(0..200), "every reading once, none lost or doubled");
    agent.wait_metric("eitwatch_sink_queue_depth{sink=\"server\"}", "an empty queue", |v| v == 0.0).await;
    assert_eq!(agent.metric("eitwatch_sink_dead_lettered_total{sink=\"server\"}").await, 0.0);
    assert!(
        agent.log().contains("Batch too large for the sink (413); splitting it"),
        "the server did refuse whole batches"
    );
    assert_counts_add_up(&agent).await;

    // 40 bytes take no line: each reading is refused alone, and dead-lettered with the reason.
    s.server.restart_with_server_keys("max_body_bytes = 40").await;
    let before = agent.metric("eitwatch_outbox_appended_total").await;
    s.publisher.cod(&agent, 200..205).await;
    agent.wait_metric("eitwatch_sink_dead_lettered_total{sink=\"server\"}", "5 dead letters", |v| v >= 5.0).await;
    assert_eq!(agent.metric("eitwatch_outbox_appended_total").await, before + 5.0);
    assert_eq!(agent.metric("eitwatch_sink_dead_lettered_total{sink=\"server\"}").await, 5.0);
    assert_eq!(cod(&s.server).await, expected(0..200), "nothing of the refused readings stored");
    let dead = agent.data.join("dead-letter");
    let (mut lines, mut reasons) = (Vec::new(), 0);
    for e in std::fs::read_dir(&dead).expect("dead-letter dir").filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".lp") {
            let text = std::fs::read_to_string(e.path()).expect("read");
            assert_eq!(text.lines().count(), 1, "one reading per dead letter: {text}");
            lines.extend(text.lines().map(str::to_string));
            let reason = std::fs::read_to_string(dead.join(format!("{stem}.reason.txt"))).expect("reason beside it");
            assert!(reason.starts_with("413 Payload Too Large"), "{reason}");
            assert!(reason.contains("larger than max_body_bytes (40)"), "{reason}");
            reasons += 1;
        }
    }
    lines.sort();
    let mut want: Vec<String> =
        (200..205).map(|i| format!("effluent,factory=f1,point=outfall-1 cod={} {}", value(i), time_ns(i))).collect();
    want.sort();
    assert_eq!(lines, want);
    assert_eq!(reasons, 5);
    assert_counts_add_up(&agent).await;
}
