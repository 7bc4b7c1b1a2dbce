//! TLS between agents and the server (issue 19): the real server binary with `[server.tls]`
//! and certificates made here by a private CA (rcgen), the real agent binary with
//! `[uplink] ca_file`, mosquitto as the factory's broker. An agent delivers every reading
//! over TLS; one trusting another CA is refused and says why; a renewed certificate is
//! served to new connections without a restart while an open one goes on; with
//! `client_ca_file` only clients with a certificate from that CA are served; plain HTTP on
//! the TLS port fails cleanly and gives its connection slot back.

mod support;

use std::path::Path;
use std::time::Duration;

use support::agent::TestAgentBuilder;
use support::sources::Publisher;
use support::tls::{self, Ca};
use support::victoria::Vm;
use support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const T0_MS: i64 = 1_795_300_000_000; // 2026-11-22T08:26:40Z

fn time_ns(i: u64) -> i64 {
    (T0_MS + i as i64 * 1000) * 1_000_000
}

/// Exactly representable in binary and in JSON, so it round-trips bit for bit.
fn value(i: u64) -> f64 {
    10.0 + i as f64 * 0.5
}

/// A private CA, the server's certificate from it (serial 1) in `server.pem`/`server.key`.
struct Pki {
    ca: Ca,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    first: tls::Issued,
}

fn pki(dir: &Path) -> Pki {
    let ca = Ca::new(dir, "ca");
    let first = ca.server(1, tls::this_year() - 1);
    let (cert, key) = first.write_in(dir, "server");
    Pki { ca, cert, key, first }
}

fn https_url(server: &TestServer) -> String {
    format!("https://{}", server.addr())
}

/// `(time_ns, value)` of f1's COD, read over HTTPS.
async fn cod(client: &reqwest::Client, url: &str) -> Vec<(i64, f64)> {
    let r = client
        .get(format!("{url}/api/v1/readings?factory=f1&parameter=cod"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {}", eitwatch_config::tls::with_causes(&e)));
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("readings JSON");
    let rows = v["readings"].as_array().expect("readings");
    rows.iter().map(|r| (r["time_ns"].as_i64().expect("time_ns"), r["value"].as_f64().expect("value"))).collect()
}

/// The agent on outfall-1, subscribed to mosquitto at `broker` with QoS 1, delivering to
/// `url` with `ca_file`.
fn agent(dir: &Path, server: &TestServer, url: &str, ca: &Path, broker: std::net::SocketAddr) -> TestAgentBuilder {
    let mqtt = format!(
        "[[mqtt]]\nname = \"plant\"\nbroker = \"{broker}\"\nclient_id = \"tls-agent\"\nqos = 1\n\
         [[mqtt.subscription]]\ntopic = \"f1/{{point}}/{{parameter}}\"\npayload = \"json\"\nunit = \"mg/L\"\n"
    );
    TestAgent::builder(dir, server)
        .url(url)
        .uplink("ca_file", &tls::toml_path(ca))
        .uplink("timeout_ms", "2000")
        .point("outfall-1")
        .config_tail(&mqtt)
}

async fn publish(publisher: &Publisher, parameter: &str, v: f64, t_ns: i64) {
    publisher.publish(&format!("f1/outfall-1/{parameter}"), format!(r#"{{"value": {v}, "time": {t_ns}}}"#)).await;
}

/// Messages published before the agent subscribed are lost: probes with BOD (not counted)
/// until the first one is in the store; returns how many readings the agent took meanwhile.
async fn subscribed(publisher: &Publisher, client: &reqwest::Client, url: &str, agent: &TestAgent) -> f64 {
    wait_for("the agent's subscription and first delivery over TLS", Duration::from_secs(30), || async {
        publish(publisher, "bod", 1.0, time_ns(0) - 60_000_000_000).await;
        let r = client.get(format!("{url}/api/v1/readings?factory=f1&parameter=bod")).send().await.ok()?;
        let v: serde_json::Value = r.json().await.ok()?;
        (!v["readings"].as_array()?.is_empty()).then_some(())
    })
    .await;
    agent.metric("eitwatch_outbox_appended_total").await
}

/// Publishes COD readings 0..n in steps of ten, each taken by the agent before the next (as
/// the delivery tests do).
async fn publish_cod(publisher: &Publisher, agent: &TestAgent, probes: f64, n: u64) {
    for i in 0..n {
        publish(publisher, "cod", value(i), time_ns(i)).await;
        if (i + 1) % 10 == 0 {
            let want = probes + (i + 1) as f64;
            agent.wait_metric("eitwatch_outbox_appended_total", "the agent to take the readings", |n| n >= want).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_trusting_the_private_ca_delivers_every_reading_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    let server = TestServer::builder(dir.path())
        .factory_tokens(&["f1"])
        .server_keys(&tls::server_tls(&pki.cert, &pki.key, ""))
        .start()
        .await;
    let url = https_url(&server);
    let client = tls::https(&pki.ca.pem, None);
    let broker = free_port();
    let _mosquitto = mosquitto(dir.path(), "mosquitto", broker.port(), "persistence false").await;
    let agent = agent(dir.path(), &server, &url, &pki.ca.pem, broker).start().await;
    let publisher = Publisher::connect(broker.port(), "tls-publisher");

    let probes = subscribed(&publisher, &client, &url, &agent).await;
    publish_cod(&publisher, &agent, probes, 50).await;
    let expected: Vec<(i64, f64)> = (0..50).map(|i| (time_ns(i), value(i))).collect();
    wait_for("50 COD readings in the store", Duration::from_secs(30), || async {
        (cod(&client, &url).await.len() >= 50).then_some(())
    })
    .await;
    assert_eq!(cod(&client, &url).await, expected, "in: 50 published; out: exactly those 50 stored");
    agent.wait_metric("eitwatch_sink_queue_depth{sink=\"server\"}", "the server sink to settle", |d| d == 0.0).await;
    let m = agent.metrics().await;
    assert_eq!(m["eitwatch_outbox_appended_total"], probes + 50.0);
    assert_eq!(m["eitwatch_sink_delivered_total{sink=\"server\"}"], probes + 50.0, "every reading delivered: {m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_trusting_another_ca_is_refused_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    let other = Ca::new(dir.path(), "other-ca");
    let server = TestServer::builder(dir.path())
        .factory_tokens(&["f1"])
        .server_keys(&tls::server_tls(&pki.cert, &pki.key, ""))
        .start()
        .await;
    let url = https_url(&server);
    let broker = free_port();
    let _mosquitto = mosquitto(dir.path(), "mosquitto", broker.port(), "persistence false").await;
    let agent = agent(dir.path(), &server, &url, &other.pem, broker).start().await;
    let publisher = Publisher::connect(broker.port(), "tls-publisher");
    wait_for("the agent to take a reading", Duration::from_secs(30), || async {
        publish(&publisher, "cod", value(0), time_ns(0)).await;
        (agent.metric("eitwatch_outbox_appended_total").await >= 1.0).then_some(())
    })
    .await;

    let line = wait_for("the agent to log the refused certificate", Duration::from_secs(30), || {
        let log = agent.log();
        async move { log.lines().find(|l| l.contains("Delivery failed")).map(str::to_string) }
    })
    .await;
    assert!(line.contains("invalid peer certificate: UnknownIssuer"), "the TLS cause: {line}");
    assert!(line.contains(&format!("{url}/api/v2/write")), "the server's URL: {line}");
    assert!(line.contains("sink=server"), "{line}");
    let m = agent.metrics().await;
    assert_eq!(m["eitwatch_sink_delivered_total{sink=\"server\"}"], 0.0);
    assert!(m["eitwatch_sink_queue_depth{sink=\"server\"}"] >= 1.0, "the reading waits in the outbox: {m:?}");
    let client = tls::https(&pki.ca.pem, None);
    assert_eq!(cod(&client, &url).await, Vec::new(), "nothing reached the store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_to_new_connections_while_an_open_one_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    let server = TestServer::builder(dir.path())
        .factory_tokens(&["f1"])
        .server_keys(&tls::server_tls(&pki.cert, &pki.key, "check_interval_ms = 200"))
        .start()
        .await;
    let pid = server.pid();

    let mut open = tls::connect(server.addr(), &pki.ca.pem).await;
    assert_eq!(tls::presented(&open), pki.first.der, "the first certificate");
    assert_eq!(tls::get(&mut open, "/health").await.0, 200);

    // A renewal: new key, serial 2, valid from this year; written over the files.
    let renewed = pki.ca.server(2, tls::this_year());
    assert_ne!(renewed.der, pki.first.der);
    renewed.write(&pki.cert, &pki.key);
    wait_for("a new connection to get the renewed certificate", Duration::from_secs(10), || async {
        let fresh = tls::connect(server.addr(), &pki.ca.pem).await;
        (tls::presented(&fresh) == renewed.der).then_some(())
    })
    .await;
    let mut fresh = tls::connect(server.addr(), &pki.ca.pem).await;
    assert_eq!(tls::get(&mut fresh, "/health").await.0, 200);

    // The connection opened before goes on, with the certificate it began with.
    assert_eq!(tls::get(&mut open, "/health").await.0, 200, "the open connection still answers");
    assert_eq!(tls::presented(&open), pki.first.der);

    // A broken renewal (a key of another certificate) keeps the renewed one, and says so.
    let stray = pki.ca.server(3, tls::this_year());
    std::fs::write(&pki.key, &stray.key_pem).expect("stray key");
    let line = wait_for("the refused reload in the server's log", Duration::from_secs(10), || {
        let log = server.log();
        async move { log.lines().find(|l| l.contains("TLS certificate not reloaded")).map(str::to_string) }
    })
    .await;
    assert!(line.contains(&pki.key.display().to_string()), "names the key file: {line}");
    assert!(line.contains("not the private key of the certificate in"), "{line}");
    let after = tls::connect(server.addr(), &pki.ca.pem).await;
    assert_eq!(tls::presented(&after), renewed.der, "the previous certificate is still served");
    assert_eq!(server.pid(), pid, "no restart");
    assert_eq!(server.log().matches("Server listening").count(), 1, "started once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_has_the_renewed_certificate_read_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    // Checked hourly: within the test only SIGHUP has the files read.
    let server = TestServer::builder(dir.path())
        .server_keys(&tls::server_tls(&pki.cert, &pki.key, "check_interval_ms = 3600000"))
        .start()
        .await;
    assert_eq!(tls::presented(&tls::connect(server.addr(), &pki.ca.pem).await), pki.first.der);
    let renewed = pki.ca.server(2, tls::this_year());
    renewed.write(&pki.cert, &pki.key);
    let hup = std::process::Command::new("kill").args(["-HUP", &server.pid().to_string()]).status().expect("kill");
    assert!(hup.success());
    wait_for("a new connection to get the renewed certificate after SIGHUP", Duration::from_secs(10), || async {
        (tls::presented(&tls::connect(server.addr(), &pki.ca.pem).await) == renewed.der).then_some(())
    })
    .await;
    assert!(server.log().contains("TLS certificate reloaded"), "{}", server.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_only_clients_with_its_certificate_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    let clients = Ca::new(dir.path(), "agents-ca");
    let stranger = Ca::new(dir.path(), "stranger-ca");
    let more = format!("client_ca_file = {}\n", tls::toml_path(&clients.pem));
    let server = TestServer::builder(dir.path())
        .factory_tokens(&["f1"])
        .server_keys(&tls::server_tls(&pki.cert, &pki.key, &more))
        .start()
        .await;
    let url = https_url(&server);
    let write = format!("{url}/api/v2/write?org=eitwatch&bucket=eitwatch&precision=ns");
    let body = |i: u64| format!("effluent,factory=f1,point=outfall-1 cod={} {}", value(i), time_ns(i));

    // A refused client's reading must not be stored: the anonymous one writes reading 2, the
    // agent reading 3, and only reading 3 is read back at the end.
    let anonymous = tls::https(&pki.ca.pem, None);
    let error = anonymous
        .post(&write)
        .header("Authorization", format!("Token {}", server.token("f1")))
        .body(body(2))
        .send()
        .await
        .expect_err("a client without a certificate is refused");
    assert_refused_at_handshake(&error, &["CertificateRequired"]);

    let (cert, key) = stranger.client("f1-agent").write_in(dir.path(), "stranger");
    let strange = tls::https(&pki.ca.pem, Some((&cert, &key)));
    let error = strange.get(format!("{url}/health")).send().await.expect_err("another CA's client is refused");
    assert_refused_at_handshake(&error, &["UnknownCA", "BadCertificate"]);

    let (cert, key) = clients.client("f1-agent").write_in(dir.path(), "agent");
    let agent = tls::https(&pki.ca.pem, Some((&cert, &key)));
    let r = agent
        .post(&write)
        .header("Authorization", format!("Token {}", server.token("f1")))
        .body(body(3))
        .send()
        .await
        .expect("the agent's certificate is accepted");
    assert_eq!(r.status(), 204);
    assert_eq!(cod(&agent, &url).await, vec![(time_ns(3), value(3))], "the one reading written");
}

/// In TLS 1.3 the client's handshake is over before the server checks its certificate: the
/// client reads the server's alert (one of `alerts`) or the connection closing under its
/// request, whichever comes first. Either way no request was served.
fn assert_refused_at_handshake(error: &reqwest::Error, alerts: &[&str]) {
    let error = eitwatch_config::tls::with_causes(error);
    let alert = alerts.iter().any(|a| error.contains(a));
    let closed =
        ["connection was not ready", "connection closed", "Connection reset"].iter().any(|c| error.contains(c));
    assert!(alert || closed, "refused at the handshake: {error}");
}

/// Reads until the server closes the connection; what was read, or `None` if it was still
/// open after `limit`.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut read = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut read)).await {
        Ok(_) => Some(read),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_or_silence_on_the_tls_port_fails_cleanly_and_frees_the_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    // One slot: a connection that kept it would leave the next one a 503.
    let server = TestServer::builder(dir.path())
        .server_keys("max_connections = 1\nheader_read_timeout_ms = 1000")
        .server_keys(&tls::server_tls(&pki.cert, &pki.key, ""))
        .start()
        .await;
    let url = https_url(&server);
    // A new connection per request, closed after it: none keeps the slot.
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca.pem).expect("CA")).expect("CA");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .tls_certs_only([ca])
        .build()
        .expect("client");
    // Past the cap a connection is answered 503 (on /health: its health, still 200), so a
    // request to another path tells whether it had the slot.
    let served = || async {
        let r = client.get(format!("{url}/api/v1/site")).send().await.ok()?;
        (r.status() == 200).then_some(())
    };

    for _ in 0..3 {
        let mut plain = TcpStream::connect(server.addr()).await.expect("connect");
        plain.write_all(b"GET /api/v1/site HTTP/1.1\r\nHost: eitwatch\r\n\r\n").await.expect("request");
        let read = until_closed(&mut plain, Duration::from_secs(10)).await.expect("a plain-HTTP request is closed");
        assert!(!read.starts_with(b"HTTP/"), "no HTTP answer: {:?}", String::from_utf8_lossy(&read));
        wait_for("an HTTPS request to be served after plain HTTP", Duration::from_secs(10), served).await;
    }

    // A client that connects and sends nothing holds the slot only until the handshake's
    // timeout (header_read_timeout_ms).
    let mut silent = TcpStream::connect(server.addr()).await.expect("connect");
    let read = until_closed(&mut silent, Duration::from_secs(10)).await.expect("a silent connection is closed");
    assert!(read.is_empty(), "nothing sent to a silent client: {read:?}");
    wait_for("an HTTPS request to be served after a silent client", Duration::from_secs(10), served).await;
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

/// `(time_ns, value)` of the COD samples in a VictoriaMetrics, each once (it keeps a re-sent
/// sample twice where InfluxDB overwrites it).
async fn vm_cod(vm: &Vm) -> Vec<(i64, f64)> {
    let mut got: Vec<(i64, f64)> =
        vm.export("effluent_cod").await.into_iter().map(|(_, _, ms, v)| (ms * 1_000_000, v)).collect();
    got.dedup();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxdb_sinks_over_tls_trust_their_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    // The stores' certificates come from a CA of their own.
    let stores = Ca::new(dir.path(), "stores-ca");
    let (vm_cert, vm_key) = stores.server(7, tls::this_year() - 1).write_in(dir.path(), "vm");
    let historian = Vm::start_tls(dir.path(), "historian", &vm_cert, &vm_key, &stores.pem).await;
    let province = Vm::start_tls(dir.path(), "province-vm", &vm_cert, &vm_key, &stores.pem).await;
    let write_through = format!(
        "[influxdb]\nurl = \"{}\"\norg = \"o\"\nbucket = \"b\"\ntoken = \"t\"\nca_file = {}\n",
        province.url(),
        tls::toml_path(&stores.pem)
    );
    let server = TestServer::builder(dir.path())
        .factory_tokens(&["f1"])
        .server_keys(&tls::server_tls(&pki.cert, &pki.key, ""))
        .config_tail(&write_through)
        .start()
        .await;
    let url = https_url(&server);
    let client = tls::https(&pki.ca.pem, None);
    let broker = free_port();
    let _mosquitto = mosquitto(dir.path(), "mosquitto", broker.port(), "persistence false").await;
    let sink = format!(
        "[[influxdb]]\nname = \"historian\"\nurl = \"{}\"\ntoken = \"t\"\norg = \"factory\"\nbucket = \"effluent\"\n\
         batch_max_age_ms = 100\nca_file = {}\n",
        historian.url(),
        tls::toml_path(&stores.pem)
    );
    let agent = agent(dir.path(), &server, &url, &pki.ca.pem, broker).config_tail(&sink).start().await;
    let publisher = Publisher::connect(broker.port(), "tls-publisher");
    let probes = subscribed(&publisher, &client, &url, &agent).await;
    publish_cod(&publisher, &agent, probes, 20).await;

    let expected: Vec<(i64, f64)> = (0..20).map(|i| (time_ns(i), value(i))).collect();
    for (what, vm) in [("the agent's historian sink", &historian), ("the server's write-through", &province)] {
        let got = wait_for(&format!("20 COD readings through {what}"), Duration::from_secs(30), || async {
            let got = vm_cod(vm).await;
            (got.len() >= 20).then_some(got)
        })
        .await;
        assert_eq!(got, expected, "{what}");
    }
    assert_eq!(cod(&client, &url).await, expected);
    agent
        .wait_metric("eitwatch_sink_queue_depth{sink=\"historian\"}", "the historian sink to settle", |d| d == 0.0)
        .await;
    let m = agent.metrics().await;
    assert_eq!(m["eitwatch_sink_delivered_total{sink=\"historian\"}"], probes + 20.0, "{m:?}");
}
