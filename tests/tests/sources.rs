//! Sources against real peers: Modbus read from pymodbus (a Modbus implementation none of us
//! wrote) over TCP, RTU over TCP and RTU on a pseudo-terminal pair; readings checked where
//! they end up, in the real server's store.

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use support::sources::*;
use support::*;

/// The type matrix of tests/peers/modbus_server.py: from holding 100, each type in each
/// order (ABCD, DCBA, BADC, CDAB), back to back. Values chosen so every byte differs.
const TYPES: [(&str, u16, f64); 8] = [
    ("u16", 1, 51234.0),
    ("i16", 1, -12345.0),
    ("u32", 2, 3_000_000_123.0),
    ("i32", 2, -1_234_567_890.0),
    ("u64", 4, 5_124_095_576_030_430.0), // 0x00123456789ABCDE, exact in an f64
    ("i64", 4, -5_124_095_576_030_430.0),
    ("f32", 2, 1234.5625),
    ("f64", 4, -98765.4321),
];
const ORDERS: [&str; 4] = ["ABCD", "DCBA", "BADC", "CDAB"];

/// `(point, register line, expected value)` of every type × order; slave given.
fn matrix(slave: u8) -> Vec<(String, String, f64)> {
    let mut address = 100;
    let mut out = Vec::new();
    for (kind, width, value) in TYPES {
        for order in ORDERS {
            let point = format!("s{slave}-{kind}-{order}");
            let line = format!(
                "  {{ point = \"{point}\", parameter = \"cod\", slave = {slave}, table = \"holding\", address = {address}, type = \"{kind}\", order = \"{order}\", unit = \"mg/L\" }},\n"
            );
            out.push((point, line, value));
            address += width;
        }
    }
    out
}

/// The server on [`Site::outfalls_of_f1`], with f1's write token.
async fn server_for(dir: &std::path::Path, points: &[String]) -> TestServer {
    TestServer::builder(dir).site(Site::outfalls_of_f1(points)).factory_tokens(&["f1"]).start().await
}

async fn wait_for_readings(url: &str, what: &str, enough: impl Fn(&[Stored]) -> bool) -> Vec<Stored> {
    wait_for(what, Duration::from_secs(60), || async {
        let all = stored(url).await;
        enough(&all).then_some(all)
    })
    .await
}

fn assert_matrix(all: &[Stored], slave: u8) {
    let mut times: Option<BTreeSet<i64>> = None;
    for (point, _, expected) in matrix(slave) {
        let got = of(all, &point, "cod");
        assert!(got.len() >= 2, "{point}: {got:?}");
        assert!(got.iter().all(|r| r.value == expected), "{point}: expected {expected}, got {got:?}");
        // All 80 registers are one request: every value of it carries the same instant.
        let t: BTreeSet<i64> = got.iter().map(|r| r.time_ns).collect();
        let common = times.get_or_insert_with(|| t.clone());
        assert!(t.is_superset(common) || common.is_superset(&t), "{point}: its times differ from the others'");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modbus_tcp_every_type_and_order_bits_scaling_units_and_exceptions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port().port();
    let _pymodbus = pymodbus(dir.path(), "pymodbus", &["--port".into(), port.to_string()]).await;
    let matrix = matrix(1);
    let mut points: Vec<String> = matrix.iter().map(|(p, _, _)| p.clone()).collect();
    points.extend(["o1", "o2", "o3", "o4"].map(String::from));
    let server = server_for(dir.path(), &points).await;

    let mut toml = agent_head(dir.path(), &server, &points);
    toml.push_str(&format!(
        "[[modbus]]\nname = \"pymodbus-tcp\"\ntransport = {{ type = \"tcp\", address = \"127.0.0.1:{port}\" }}\npoll_interval_ms = 300\nregister = [\n"
    ));
    for (_, line, _) in &matrix {
        toml.push_str(line);
    }
    toml.push_str(concat!(
        // Registers 0..11: near each other, one request.
        "  { point = \"o1\", parameter = \"ph\", table = \"holding\", address = 0, type = \"f32\", order = \"ABCD\", unit = \"pH\" },\n",
        "  { point = \"o1\", parameter = \"tss\", table = \"holding\", address = 2, type = \"f32\", order = \"CDAB\", unit = \"mg/L\" },\n",
        "  { point = \"o1\", parameter = \"temp\", table = \"holding\", address = 4, type = \"u16\", unit = \"degC\", scale = 0.1, offset = -5.0 },\n",
        "  { point = \"o1\", parameter = \"color\", table = \"holding\", address = 7, type = \"u16\", unit = \"ADMI\" },\n",
        "  { point = \"o1\", parameter = \"cod\", table = \"holding\", address = 10, type = \"u32\", unit = \"ug/L\" },\n",
        "  { point = \"o1\", parameter = \"bod\", table = \"input\", address = 0, type = \"f32\", unit = \"mg/L\" },\n",
        // Bits: of holding 8 (0xA005), coils (1,0,1,1,…) and discrete inputs (0,1,1,0,…).
        "  { point = \"o2\", parameter = \"zn\", table = \"holding\", address = 8, type = \"bit\", bit = 13, unit = \"mg/L\" },\n",
        "  { point = \"o2\", parameter = \"cu\", table = \"holding\", address = 8, type = \"bit\", bit = 1, unit = \"mg/L\" },\n",
        "  { point = \"o2\", parameter = \"cd\", table = \"coil\", address = 2, type = \"bit\", unit = \"mg/L\" },\n",
        "  { point = \"o2\", parameter = \"ni\", table = \"coil\", address = 4, type = \"bit\", unit = \"mg/L\" },\n",
        "  { point = \"o2\", parameter = \"pb\", table = \"discrete\", address = 1, type = \"bit\", unit = \"mg/L\" },\n",
        "  { point = \"o2\", parameter = \"mn\", table = \"discrete\", address = 0, type = \"bit\", unit = \"mg/L\" },\n",
        // Past the end of the device's holding registers: exception 0x02 every poll.
        "  { point = \"o3\", parameter = \"tds\", table = \"holding\", address = 500, type = \"u16\", unit = \"mg/L\" },\n",
        "]\n",
        // The same device counted from 1, as many manuals print addresses.
        "[[modbus]]\nname = \"pymodbus-one-based\"\n",
    ));
    toml.push_str(&format!(
        "transport = {{ type = \"tcp\", address = \"127.0.0.1:{port}\" }}\npoll_interval_ms = 300\naddress_base = 1\nregister = [\n  {{ point = \"o4\", parameter = \"ph\", table = \"holding\", address = 1, type = \"f32\", unit = \"pH\" }},\n]\n"
    ));
    let agent = agent(dir.path(), "agent", &toml);

    let all = wait_for_readings(server.url(), "two polls of everything", |all| {
        points.iter().all(|p| all.iter().filter(|r| &r.point == p).count() >= 2 * if p == "o1" { 6 } else { 1 })
    })
    .await;
    assert_matrix(&all, 1);

    let one = |point: &str, parameter: &str| -> (f64, String) {
        let got = of(&all, point, parameter);
        assert!(!got.is_empty(), "{point} {parameter}: nothing");
        let first = (got[0].value, got[0].quality.clone());
        assert!(
            got.iter().all(|r| (r.value, r.quality.as_str()) == (first.0, first.1.as_str())),
            "{point} {parameter}: {got:?}"
        );
        first
    };
    let valid = |v: f64| (v, "valid".to_string());
    assert_eq!(one("o1", "ph"), valid(7.25));
    assert_eq!(one("o1", "tss"), valid(31.5));
    assert_eq!(one("o1", "temp"), valid(20.3), "253 × 0.1 − 5");
    assert_eq!(one("o1", "color"), valid(1001.0), "slave 1 answered");
    assert_eq!(one("o1", "cod"), valid(85.25), "85250 µg/L in mg/L");
    assert_eq!(one("o1", "bod"), valid(42.5), "input register");
    assert_eq!(one("o2", "zn"), valid(1.0));
    assert_eq!(one("o2", "cu"), valid(0.0));
    assert_eq!(one("o2", "cd"), valid(1.0));
    assert_eq!(one("o2", "ni"), valid(0.0));
    assert_eq!(one("o2", "pb"), valid(1.0));
    assert_eq!(one("o2", "mn"), valid(0.0));
    assert_eq!(one("o3", "tds"), (0.0, "invalid".to_string()), "a refused request is recorded invalid");
    assert_eq!(one("o4", "ph"), valid(7.25), "address_base = 1: address 1 is protocol address 0");
    // One request for holding 0..11: its values share their instants.
    let ph: Vec<i64> = of(&all, "o1", "ph").iter().map(|r| r.time_ns).collect();
    assert_eq!(of(&all, "o1", "color").iter().map(|r| r.time_ns).collect::<Vec<_>>(), ph);
    // The exception is logged once, naming device, slave, table and address, not per poll.
    let log = agent.log();
    let refusals: Vec<&str> = log.lines().filter(|l| l.contains("Modbus exception")).collect();
    assert_eq!(refusals.len(), 1, "{log}");
    for part in ["device=pymodbus-tcp", "slave=1", "table=holding", "first=500", "IllegalDataAddress"] {
        assert!(refusals[0].contains(part), "{part} missing: {}", refusals[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modbus_rtu_on_a_serial_bus_keeps_polling_live_slaves_when_one_is_dead() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_socat, agent_end, device_end) = pty_pair(dir.path()).await;
    let _pymodbus = pymodbus(
        dir.path(),
        "pymodbus-rtu",
        &[
            "--serial".into(),
            device_end.display().to_string(),
            "--devices".into(),
            "1,2".into(),
            "--ignore-missing".into(),
        ],
    )
    .await;
    let matrix = matrix(1);
    let mut points: Vec<String> = matrix.iter().map(|(p, _, _)| p.clone()).collect();
    points.extend(["s1", "s2", "s3"].map(String::from));
    let server = server_for(dir.path(), &points).await;
    let mut toml = agent_head(dir.path(), &server, &points);
    toml.push_str(&format!(
        "[[modbus]]\nname = \"rs485\"\ntransport = {{ type = \"rtu\", port = \"{}\", baud = 115200, parity = \"none\" }}\npoll_interval_ms = 250\ntimeout_ms = 150\nregister = [\n",
        agent_end.display()
    ));
    for (_, line, _) in &matrix {
        toml.push_str(line);
    }
    for slave in 1..=3 {
        toml.push_str(&format!(
            "  {{ point = \"s{slave}\", parameter = \"ph\", slave = {slave}, table = \"holding\", address = 0, type = \"f32\", unit = \"pH\" }},\n  {{ point = \"s{slave}\", parameter = \"color\", slave = {slave}, table = \"holding\", address = 7, type = \"u16\", unit = \"ADMI\" }},\n"
        ));
    }
    toml.push_str("]\n");
    let agent = agent(dir.path(), "agent", &toml);

    // Slave 3 is configured but absent: pymodbus never answers it.
    let all = wait_for_readings(server.url(), "25 polls of slave 1", |all| of(all, "s1", "ph").len() >= 25).await;
    assert_matrix(&all, 1);
    assert!(of(&all, "s1", "color").iter().all(|r| r.value == 1001.0));
    assert!(of(&all, "s2", "color").iter().all(|r| r.value == 1002.0), "slave 2 answered for itself");
    assert!(of(&all, "s2", "ph").iter().all(|r| r.value == 7.25));
    assert!(of(&all, "s3", "ph").is_empty(), "a silent slave delivers nothing (stale, not repeated)");
    // Over the window the live slaves were read, they were read at every poll: count the
    // readings of each within the span of slave 1's, against the polls that span allows.
    let s1 = of(&all, "s1", "ph");
    let (from, to) = (s1[0].time_ns, s1[s1.len() - 1].time_ns);
    let in_window = |p: &str| of(&all, p, "ph").iter().filter(|r| (from..=to).contains(&r.time_ns)).count();
    let polls_possible = ((to - from) / 250_000_000 + 1) as usize;
    let (n1, n2) = (in_window("s1"), in_window("s2"));
    assert!(n2 + 1 >= n1 && n1 + 1 >= n2, "slave 1: {n1}, slave 2: {n2}");
    // A dead slave that blocked the bus (a timeout per poll plus a reconnect backoff) would
    // leave well under half the polls; a generous margin for a loaded machine.
    assert!(n1 * 2 >= polls_possible, "{n1} readings where {polls_possible} polls fit: the dead slave held the bus");
    let log = agent.log();
    let silent: Vec<&str> = log.lines().filter(|l| l.contains("does not answer")).collect();
    assert!(!silent.is_empty() && silent.iter().all(|l| l.contains("slave=3") && l.contains("device=rs485")), "{log}");
    assert!(silent.len() <= 2, "a silent slave is reported when it falls silent, not every poll: {silent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modbus_rtu_over_tcp_through_a_serial_gateway() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port().port();
    let _pymodbus = pymodbus(
        dir.path(),
        "pymodbus-gateway",
        &["--port".into(), port.to_string(), "--framer".into(), "rtu".into(), "--devices".into(), "1,7".into()],
    )
    .await;
    let matrix = matrix(7);
    let mut points: Vec<String> = matrix.iter().map(|(p, _, _)| p.clone()).collect();
    points.push("g9".into());
    let server = server_for(dir.path(), &points).await;
    let mut toml = agent_head(dir.path(), &server, &points);
    toml.push_str(&format!(
        "[[modbus]]\nname = \"gateway\"\ntransport = {{ type = \"rtu_over_tcp\", address = \"127.0.0.1:{port}\" }}\npoll_interval_ms = 300\nregister = [\n"
    ));
    for (_, line, _) in &matrix {
        toml.push_str(line);
    }
    // Slave 9 is not behind the gateway: pymodbus answers exception 0x0B for it.
    toml.push_str("  { point = \"g9\", parameter = \"ph\", slave = 9, table = \"holding\", address = 0, type = \"f32\", unit = \"pH\" },\n]\n");
    let _agent = agent(dir.path(), "agent", &toml);
    let all = wait_for_readings(server.url(), "two polls over the gateway", |all| {
        points.iter().all(|p| all.iter().filter(|r| &r.point == p).count() >= 2)
    })
    .await;
    assert_matrix(&all, 7);
    assert!(of(&all, "g9", "ph").iter().all(|r| r.quality == "invalid"));
}

#[test]
fn probe_names_the_type_and_order_of_a_word_swapped_float() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port().port();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _pymodbus = rt.block_on(pymodbus(dir.path(), "pymodbus", &["--port".into(), port.to_string()]));
    // f32 CDAB of the matrix: holding 100 + 4 + 4 + 8 + 8 + 16 + 16 (u16…i64) + 6 = 162.
    let out = Command::new(bin("eitwatch-agent"))
        .args(["probe", "modbus", "--address", &format!("127.0.0.1:{port}"), "--holding", "162", "--count", "2"])
        .args(["--parameter", "cod"])
        .output()
        .expect("probe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("type = \"f32\", order = \"CDAB\", address = 162 → 1234.5625 mg/L"), "{stdout}");
    // Raw registers: 1234.5625 = 0x449A5200, word-swapped.
    assert!(stdout.contains("     162      162    40163 0x5200  20992"), "{stdout}");
    // An address nobody maps: the exception, named.
    let out = Command::new(bin("eitwatch-agent"))
        .args(["probe", "modbus", "--address", &format!("127.0.0.1:{port}"), "--holding", "900", "--count", "2"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("probe");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("slave 1 holding 900: exception IllegalDataAddress (0x02)"), "{stderr}");
}

/// 2026-11-22T08:26:40Z, in ms.
const T0_MS: i64 = 1_795_300_000_000;

/// Message `i`: COD `i + 0.25` mg/L at `T0 + i` minutes.
fn message(i: i64) -> String {
    format!(r#"{{"value": {}, "time": {}}}"#, i as f64 + 0.25, T0_MS + i * 60_000)
}

fn expected(range: std::ops::RangeInclusive<i64>) -> Vec<(i64, f64)> {
    range.map(|i| ((T0_MS + i * 60_000) * 1_000_000, i as f64 + 0.25)).collect()
}

async fn cod_series(url: &str) -> Vec<(i64, f64)> {
    of(&stored(url).await, "o1", "cod").iter().map(|r| (r.time_ns, r.value)).collect()
}

/// Waits until the store holds exactly messages `range` (and nothing else), or fails.
async fn wait_for_messages(url: &str, range: std::ops::RangeInclusive<i64>) {
    let want = expected(range.clone());
    let got = wait_for(&format!("messages {range:?} in the store"), Duration::from_secs(60), || async {
        let got = cod_series(url).await;
        (got.len() >= want.len()).then_some(got)
    })
    .await;
    assert_eq!(got, want, "every message exactly once, with its value and time");
}

/// Publishes message `i` until the store has it: proves the agent is subscribed. Repeats
/// carry the same timestamp, so the store keeps one.
async fn publish_until_stored(url: &str, publisher: &Publisher, i: i64) {
    let want = expected(i..=i)[0];
    wait_for(&format!("message {i} to get through"), Duration::from_secs(60), || async {
        publisher.publish("f1/o1/cod", message(i)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        cod_series(url).await.contains(&want).then_some(())
    })
    .await;
}

fn mqtt_agent_toml(dir: &std::path::Path, server: &TestServer, port: u16, version: &str) -> String {
    let points = vec!["o1".to_string()];
    let mut toml = agent_head(dir, server, &points);
    toml.push_str(&format!(
        "[[mqtt]]\nname = \"plant\"\nbroker = \"127.0.0.1:{port}\"\nclient_id = \"agent-f1\"\nversion = \"{version}\"\nqos = 1\n\
         [[mqtt.subscription]]\ntopic = \"f1/{{point}}/{{parameter}}\"\npayload = \"json\"\nunit = \"mg/L\"\ntime_format = \"epoch_ms\"\n"
    ));
    toml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_qos1_through_broker_restarts_arrives_exactly_once_and_resubscribes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port().port();
    // Run as root, mosquitto drops to its own user: its persistence directory must be writable.
    let store = dir.path().join("mosquitto-db");
    std::fs::create_dir(&store).expect("dir");
    std::fs::set_permissions(&store, std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    let persist = format!("persistence true\npersistence_location {}/\n", store.display());
    let mut broker = mosquitto(dir.path(), "mosquitto", port, &persist).await;
    let server = server_for(dir.path(), &["o1".to_string()]).await;
    let agent = agent(dir.path(), "agent", &mqtt_agent_toml(dir.path(), &server, port, "3.1.1"));
    let publisher = Publisher::connect(port, "plant-publisher");
    publish_until_stored(server.url(), &publisher, 0).await;

    // A malformed message in the stream is skipped, and the stream goes on.
    publisher.publish("f1/o1/cod", "{\"value\": oops}".into()).await;
    for i in 1..=20 {
        publisher.publish("f1/o1/cod", message(i)).await;
    }
    // Restart 1: a graceful stop; the broker saves the session and its queued messages.
    broker.terminate();
    let mut broker = mosquitto(dir.path(), "mosquitto-restarted", port, &persist).await;
    for i in 21..=40 {
        publisher.publish("f1/o1/cod", message(i)).await;
    }
    wait_for_messages(server.url(), 0..=40).await;

    // Restart 2: killed, and back without persistence: the broker has forgotten the
    // agent's session and subscriptions. The agent must subscribe again on its own.
    broker.kill();
    let _broker = mosquitto(dir.path(), "mosquitto-forgetful", port, "persistence false").await;
    publish_until_stored(server.url(), &publisher, 41).await;
    for i in 42..=60 {
        publisher.publish("f1/o1/cod", message(i)).await;
    }
    wait_for_messages(server.url(), 0..=60).await;

    let log = agent.log();
    assert!(log.contains("MQTT reconnected; the broker kept the session"), "{log}");
    assert!(log.contains("MQTT reconnected; the broker lost the session"), "{log}");
    // Once, or twice when the broker stopped before the agent's ack of it arrived: QoS 1 is
    // at least once, and a redelivered malformed message is skipped again.
    let malformed: Vec<&str> = log.lines().filter(|l| l.contains("Malformed MQTT message skipped")).collect();
    assert!((1..=2).contains(&malformed.len()), "{log}");
    assert!(malformed[0].contains("topic=f1/o1/cod") && malformed[0].contains("oops"), "{}", malformed[0]);
    assert!(malformed[0].contains("malformed=1"), "the count: {}", malformed[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_agent_killed_and_restarted_gets_what_was_published_meanwhile_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port().port();
    let _broker = mosquitto(dir.path(), "mosquitto", port, "persistence false").await;
    let server = server_for(dir.path(), &["o1".to_string()]).await;
    let toml = mqtt_agent_toml(dir.path(), &server, port, "5");
    let mut first = agent(dir.path(), "agent-1", &toml);
    let publisher = Publisher::connect(port, "plant-publisher");
    publish_until_stored(server.url(), &publisher, 0).await;
    for i in 1..=20 {
        publisher.publish("f1/o1/cod", message(i)).await;
    }
    // SIGKILL once the first twenty are stored: today's outbox lives in memory, so a kill
    // in the middle of a batch could lose readings already acknowledged to the broker (the
    // durable outbox closes that window). What this test holds the agent to: a persistent
    // MQTT 5 session keeps what is published while the agent is down.
    wait_for_messages(server.url(), 0..=20).await;
    first.kill();
    for i in 21..=40 {
        publisher.publish("f1/o1/cod", message(i)).await;
    }
    let second = agent(dir.path(), "agent-2", &toml);
    for i in 41..=60 {
        publisher.publish("f1/o1/cod", message(i)).await;
    }
    wait_for_messages(server.url(), 0..=60).await;
    assert!(second.log().contains("session_present=true"), "{}", second.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_embedded_broker_takes_line_protocol_and_multi_parameter_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port().port();
    let points = vec!["o1".to_string(), "o2".to_string()];
    let server = server_for(dir.path(), &points).await;
    let mut toml = agent_head(dir.path(), &server, &points);
    toml.push_str(&format!(
        "[[mqtt]]\nname = \"embedded\"\nbroker = \"127.0.0.1:{port}\"\nclient_id = \"agent-f1\"\nembedded_broker = true\nqos = 1\n\
         [[mqtt.subscription]]\ntopic = \"lp/{{point}}\"\npayload = \"influx\"\ntime_format = \"epoch_s\"\n\
         [[mqtt.subscription]]\ntopic = \"json/{{point}}\"\npayload = \"json\"\ntime_path = \"ts\"\n\
         [[mqtt.subscription.field]]\npath = \"a.cod\"\nparameter = \"cod\"\nunit = \"ug/L\"\n\
         [[mqtt.subscription.field]]\npath = \"a.ph\"\nparameter = \"ph\"\nunit = \"pH\"\n"
    ));
    let _agent = agent(dir.path(), "agent", &toml);
    wait_for_port("the embedded broker", std::net::SocketAddr::from(([127, 0, 0, 1], port))).await;
    let publisher = Publisher::connect(port, "sensor");
    let t = T0_MS / 1000;
    let want = |all: &[Stored]| all.len() >= 4;
    let all = wait_for("four readings", Duration::from_secs(60), || async {
        publisher.publish("lp/o1", format!("effluent,point=o2 cod=12.5,bod=3i {t}\neffluent tss=40 {t}")).await;
        publisher
            .publish("json/o1", r#"{"ts": "2026-11-21T22:26:40Z", "a": {"cod": 85250, "ph": 7.25}}"#.to_string())
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let all = stored(server.url()).await;
        want(&all).then_some(all)
    })
    .await;
    let ns = T0_MS * 1_000_000;
    let got: BTreeSet<(String, String, i64, String)> =
        all.iter().map(|r| (r.point.clone(), r.parameter.clone(), r.time_ns, r.value.to_string())).collect();
    let want: BTreeSet<(String, String, i64, String)> =
        [("o2", "cod", "12.5"), ("o2", "bod", "3"), ("o1", "tss", "40"), ("o1", "cod", "85.25"), ("o1", "ph", "7.25")]
            .into_iter()
            .map(|(p, q, v)| (p.to_string(), q.to_string(), ns, v.to_string()))
            .collect();
    assert_eq!(got, want);
}

#[test]
fn check_config_names_every_source_problem_with_its_key_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = r#"
[agent]
factory = "f1"
[[point]]
id = "o1"
kind = "effluent"
[uplink]
url = "http://127.0.0.1:1"
token = "t"
[[modbus]]
name = "bus"
transport = { type = "rtu", port = "/dev/ttyUSB0", data_bits = 9, stop_bits = 3 }
address_base = 1
max_registers_per_request = 2
register = [
  { point = "o1", parameter = "cod", table = "holding", address = 0, type = "f32", unit = "mg/L" },
  { point = "o1", parameter = "cod", table = "holding", address = 5, type = "f64", unit = "mg/L" },
  { point = "o1", parameter = "cod", table = "coil", address = 5, type = "bit", bit = 2, unit = "mg/L" },
]
[[modbus]]
name = "same-bus"
transport = { type = "rtu", port = "/dev/ttyUSB0" }
register = []
[[mqtt]]
name = "m"
broker = "nowhere"
client_id = "c"
version = "5"
embedded_broker = true
password = "p"
[[mqtt.subscription]]
topic = "a/{point}/{parameter}/x#"
payload = "json"
[[mqtt.subscription.field]]
path = "cod"
parameter = "cod"
"#;
    let conf = dir.path().join("broken.toml");
    std::fs::write(&conf, toml).expect("write");
    let out = Command::new(bin("eitwatch-agent"))
        .arg("check-config")
        .arg(&conf)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = conf.display().to_string();
    for line in [
        "modbus[0].transport.data_bits: 9: expected 7 or 8",
        "modbus[0].transport.stop_bits: 3: expected 1 or 2",
        "modbus[0].register[0].address: 0 is below address_base = 1",
        "modbus[0].register[1].type: f64 needs 4 registers, more than max_registers_per_request = 2",
        "modbus[0].register[2].bit: coils and discrete inputs are single bits: remove bit",
        "modbus[1].transport.port: /dev/ttyUSB0 is already used by modbus[0]: put every slave of one bus in one [[modbus]]",
        "mqtt[0].broker: \"nowhere\" is not host:port",
        "mqtt[0].password: a password needs a username",
        "mqtt[0].version: the embedded broker speaks MQTT 3.1.1: expected \"3.1.1\"",
        "mqtt[0].subscription[0].topic: level 4: \"x#\" mixes a wildcard or placeholder with text",
        "mqtt[0].subscription[0].parameter: the parameters come from the payload (fields): remove parameter and {parameter}",
        "mqtt[0].subscription[0].field[0].unit: needs a unit (here or on the subscription)",
    ] {
        assert!(stderr.contains(&format!("{file}: {line}")), "missing {line}:\n{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_qos0_over_tls_with_client_certificate_and_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = certificates(dir.path());
    let passwords = dir.path().join("passwords");
    let out = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&passwords)
        .args(["agent", "s3cret"])
        .output()
        .expect("mosquitto_passwd");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::set_permissions(&passwords, std::os::unix::fs::PermissionsExt::from_mode(0o644)).expect("chmod");
    let (plain, tls) = (free_port().port(), free_port().port());
    let c = |f: &str| certs.join(f).display().to_string();
    // The TLS listener wants a client certificate signed by the CA, and every client a password.
    let conf = format!(
        "allow_anonymous false\npassword_file {}\npersistence false\n\
         listener {tls} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
        passwords.display(),
        c("ca.pem"),
        c("server.pem"),
        c("server.key"),
    );
    let conf = format!("listener {plain} 127.0.0.1\n{conf}");
    let _broker = mosquitto_with_config(dir.path(), "mosquitto", &conf, plain).await;
    wait_for_port("mosquitto (TLS)", std::net::SocketAddr::from(([127, 0, 0, 1], tls))).await;

    let server = server_for(dir.path(), &["o1".to_string()]).await;
    let mut toml = agent_head(dir.path(), &server, &["o1".to_string()]);
    toml.push_str(&format!(
        "[[mqtt]]\nname = \"secure\"\nbroker = \"127.0.0.1:{tls}\"\nclient_id = \"agent-f1\"\nversion = \"5\"\nqos = 0\n\
         username = \"agent\"\npassword = \"s3cret\"\n\
         [mqtt.tls]\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n\
         [[mqtt.subscription]]\ntopic = \"f1/{{point}}/{{parameter}}\"\npayload = \"number\"\nunit = \"mg/L\"\n",
        c("ca.pem"),
        c("client.pem"),
        c("client.key"),
    ));
    let agent = agent(dir.path(), "agent", &toml);

    let mut options = rumqttc::MqttOptions::new("publisher", "127.0.0.1", plain);
    options.set_credentials("agent", "s3cret");
    let (client, mut events) = rumqttc::AsyncClient::new(options, 100);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let got = wait_for("a reading over TLS", Duration::from_secs(60), || async {
        client.publish("f1/o1/cod", rumqttc::QoS::AtLeastOnce, false, "42.5").await.expect("publish");
        tokio::time::sleep(Duration::from_millis(300)).await;
        Some(of(&stored(server.url()).await, "o1", "cod").iter().map(|r| r.value).collect::<Vec<_>>())
            .filter(|v| !v.is_empty())
    })
    .await;
    assert!(got.iter().all(|v| *v == 42.5), "{got:?}");
    assert!(agent.log().contains("MQTT connected"), "{}", agent.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_without_a_broker_backs_off_instead_of_spinning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nobody = free_port().port(); // bound and released: nothing listens there
    let server = server_for(dir.path(), &["o1".to_string()]).await;
    let mut toml = agent_head(dir.path(), &server, &["o1".to_string()]);
    toml.push_str(&format!(
        "[[mqtt]]\nname = \"absent\"\nbroker = \"127.0.0.1:{nobody}\"\nclient_id = \"agent-f1\"\n\
         [[mqtt.subscription]]\ntopic = \"f1/{{point}}/{{parameter}}\"\npayload = \"number\"\nunit = \"mg/L\"\n"
    ));
    let agent = agent(dir.path(), "agent", &toml);
    let log = wait_for("the fourth failed attempt", Duration::from_secs(60), || {
        let log = agent.log();
        async move { log.contains("failures=4 ").then_some(log) }
    })
    .await;
    // Each attempt waits at least the delay the previous one announced (0.5 s doubling,
    // ±25 %): four attempts, not thousands, and spaced as announced.
    let attempts: Vec<(i64, u64)> = log
        .lines()
        .filter(|l| l.contains("MQTT connection lost or refused"))
        .map(|l| {
            let time = l.split_whitespace().next().and_then(rfc3339_ms).expect("timestamp");
            let delay =
                l.split("retry_in_ms=").nth(1).and_then(|r| r.split_whitespace().next()?.parse().ok()).expect("delay");
            (time, delay)
        })
        .collect();
    assert_eq!(attempts.len(), 4, "{log}");
    for pair in attempts.windows(2) {
        let waited = (pair[1].0 - pair[0].0) as u64;
        assert!(waited >= pair[0].1, "waited {waited} ms after announcing {} ms: {log}", pair[0].1);
    }
    assert!(attempts[1].1 > attempts[0].1 && attempts[3].1 > attempts[1].1, "the delay grows: {attempts:?}");
}

/// Milliseconds since the epoch of a log timestamp (`2026-11-22T23:22:32.976121Z`).
fn rfc3339_ms(t: &str) -> Option<i64> {
    let (date, time) = t.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut h = hms.split(':').map(|x| x.parse::<i64>());
    let (hh, mm, ss) = (h.next()?.ok()?, h.next()?.ok()?, h.next()?.ok()?);
    let ms: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms)
}

#[test]
fn log_timestamps_read_as_epoch_ms() {
    assert_eq!(rfc3339_ms("2026-11-22T10:00:00.25Z"), Some(1_795_341_600_250));
    assert_eq!(rfc3339_ms("2000-03-01T00:00:00Z"), Some(951_868_800_000));
}
