//! End to end: the real server and agent binaries, mosquitto, and a pymodbus Modbus server.

mod support;

use std::process::Command;
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, QoS};
use support::*;

const T0_MS: i64 = 1_795_300_000_000; // 2026-11-22T08:26:40Z

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_flow_from_modbus_and_mqtt_to_the_server_and_one_alert_fires() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = free_port();
    let _mosquitto = mosquitto(dir.path(), "mosquitto", broker.port(), "persistence false").await;
    let modbus = free_port();
    let _pymodbus = pymodbus(dir.path(), "pymodbus", &["--port".into(), modbus.port().to_string()]).await;
    let server = TestServer::builder(dir.path()).factory_tokens(&["f1"]).start().await;

    let agent_toml = format!(
        r#"
[agent]
factory = "f1"
data_dir = "{data}"
[[point]]
id = "outfall-1"
kind = "effluent"
[uplink]
url = "{url}"
token = "{token}"
batch_max_age_ms = 200
[[modbus]]
name = "plc"
transport = {{ type = "tcp", address = "{modbus}" }}
poll_interval_ms = 300
register = [
  {{ point = "outfall-1", parameter = "ph", table = "holding", address = 0, type = "f32", order = "ABCD", unit = "pH" }},
  {{ point = "outfall-1", parameter = "tss", table = "holding", address = 2, type = "f32", order = "CDAB", unit = "mg/L" }},
  {{ point = "outfall-1", parameter = "temp", table = "holding", address = 4, type = "u16", unit = "degC", scale = 0.1 }},
]
[[mqtt]]
name = "lab"
broker = "{broker}"
client_id = "e2e-agent-f1"
qos = 1
[[mqtt.subscription]]
topic = "f1/{{point}}/{{parameter}}"
payload = "json"
unit = "mg/L"
"#,
        data = dir.path().join("agent").display(),
        url = server.url(),
        token = server.token("f1"),
    );
    let conf = dir.path().join("agent.toml");
    std::fs::write(&conf, agent_toml).expect("agent.toml");
    let _agent = Proc::spawn("agent", dir.path(), Command::new(bin("eitwatch-agent")).arg("--config").arg(&conf));

    let (client, mut events) =
        AsyncClient::new(MqttOptions::new("e2e-publisher", broker.ip().to_string(), broker.port()), 64);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let publish = |parameter: &str, value: f64, t_ms: i64| {
        let client = client.clone();
        let topic = format!("f1/outfall-1/{parameter}");
        let payload = format!(r#"{{"value": {value}, "time": {t_ms}}}"#);
        async move { client.publish(topic, QoS::AtLeastOnce, false, payload).await.expect("publish") }
    };
    // The agent subscribes once connected; until its first reading is stored, repeat the
    // first message. Repeats carry the same timestamp, so the store keeps one.
    wait_for("the first MQTT reading", Duration::from_secs(30), || async {
        publish("cod", 85.0, T0_MS).await;
        (!server.series("f1", "cod").await.is_empty()).then_some(())
    })
    .await;
    publish("cod", 90.0, T0_MS + 60_000).await;
    publish("cod", 130.5, T0_MS + 120_000).await;
    publish("bod", 12.0, T0_MS + 120_000).await;

    let ms = |t: i64| t * 1_000_000;
    wait_for("all MQTT readings", Duration::from_secs(30), || async {
        (server.series("f1", "cod").await.len() >= 3 && !server.series("f1", "bod").await.is_empty()).then_some(())
    })
    .await;
    assert_eq!(
        server.series("f1", "cod").await,
        vec![(ms(T0_MS), 85.0), (ms(T0_MS + 60_000), 90.0), (ms(T0_MS + 120_000), 130.5)]
    );
    assert_eq!(server.series("f1", "bod").await, vec![(ms(T0_MS + 120_000), 12.0)]);

    let polls = wait_for("three Modbus polls", Duration::from_secs(30), || async {
        Some(server.series("f1", "ph").await).filter(|s| s.len() >= 3)
    })
    .await;
    assert!(polls.iter().all(|(_, v)| *v == 7.25), "pH f32 ABCD: {polls:?}");
    let tss = server.series("f1", "tss").await;
    let temp = server.series("f1", "temp").await;
    assert!(tss.len() >= 3 && tss.iter().all(|(_, v)| *v == 31.5), "TSS f32 CDAB: {tss:?}");
    assert!(temp.len() >= 3 && temp.iter().all(|(_, v)| *v == 253.0 * 0.1), "temp u16 × 0.1: {temp:?}");
    // One poll, one timestamp for every register of it.
    let ph_times: Vec<i64> = polls.iter().map(|(t, _)| *t).collect();
    assert!(tss.iter().take(3).all(|(t, _)| ph_times.contains(t)), "registers of one poll share its time");

    // Judged on the compliance thread: wait for it. (These readings are old, so no-data and
    // availability alerts come too; only the exceedance is asserted here.)
    let alerts = server.alerts("exceedance", 1).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(
        (a["kind"].as_str(), a["state"].as_str(), a["parameter"].as_str()),
        (Some("exceedance"), Some("firing"), Some("cod"))
    );
    assert_eq!(
        (a["value"].as_f64(), a["limit"]["describe"].as_str(), a["limit"]["clause"].as_str()),
        (Some(130.5), Some("≤ 120 mg/L"), Some("5.7"))
    );
    assert_eq!(a["since_ns"].as_i64(), Some(ms(T0_MS + 120_000)));
}

#[tokio::test]
async fn a_bad_write_is_refused_whole_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::builder(dir.path()).factory_tokens(&["f1", "f2"]).start().await;
    let write = |token: Option<String>, body: &'static str| {
        let url = format!("{}/api/v2/write?org=eitwatch&bucket=eitwatch&precision=s", server.url());
        async move {
            let mut req = http().post(url).body(body);
            if let Some(t) = token {
                req = req.header("Authorization", format!("Token {t}"));
            }
            let r = req.send().await.expect("write");
            let status = r.status().as_u16();
            let body: serde_json::Value =
                if status == 204 { serde_json::Value::Null } else { r.json().await.expect("json error body") };
            (status, body["message"].as_str().unwrap_or_default().to_string())
        }
    };
    let f1 = || Some(server.token("f1").to_string());

    let (status, message) = write(f1(), "effluent,factory=f1,point=outfall-1 cod=50 1795300000\neffluent,factory=f1,point=outfall-1 cod=5O 1795300060\n").await;
    assert_eq!(
        (status, message.as_str()),
        (400, "line 2: field cod: \"5O\" is not a number (a finite float, or an integer with i or u)")
    );
    let (status, message) = write(f1(), "effluent,factory=f1,point=outfall-1 cod=50 1795300000\neffluent,factory=f1,point=outfall-1 cood=5 1795300060\n").await;
    assert_eq!((status, message.as_str()), (400, "line 2: unknown effluent parameter \"cood\""));
    let (status, message) = write(
        f1(),
        "effluent,factory=f1,point=outfall-1 cod=50 1795300000\neffluent,factory=f1,point=outfall-9 cod=5 1795300060\n",
    )
    .await;
    assert_eq!((status, message.as_str()), (400, "line 2: unknown point \"outfall-9\" of factory \"f1\""));
    let (status, message) = write(
        f1(),
        "effluent,factory=f1,point=outfall-1 cod=50 1795300000\neffluent,factory=f2,point=outfall-1 cod=5 1795300000\n",
    )
    .await;
    assert_eq!((status, message.as_str()), (403, "line 2: factory \"f2\" is not the token's factory"));
    assert_eq!(write(Some("ewf_nope".into()), "effluent,factory=f1,point=outfall-1 cod=50 1").await.0, 401);
    assert_eq!(write(None, "effluent,factory=f1,point=outfall-1 cod=50 1").await.0, 401);
    assert_eq!(server.series("f1", "cod").await, vec![], "nothing of a refused batch is stored");
    assert_eq!(server.series("f2", "cod").await, vec![]);

    // Accepted, re-sent identically (stored once), then rewritten (refused, history kept).
    assert_eq!(write(f1(), "effluent,factory=f1,point=outfall-1 cod=50 1795300000").await.0, 204);
    assert_eq!(write(f1(), "effluent,factory=f1,point=outfall-1 cod=50 1795300000").await.0, 204);
    let (status, message) = write(f1(), "effluent,factory=f1,point=outfall-1 cod=60,bod=1 1795300000").await;
    assert_eq!(status, 409, "{message}");
    assert!(message.contains("history is append-only"), "{message}");
    assert_eq!(server.series("f1", "cod").await, vec![(1_795_300_000_000_000_000, 50.0)]);
    assert_eq!(server.series("f1", "bod").await, vec![]);
}

#[test]
fn check_config_reports_every_problem_with_file_and_key_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = std::fs::read_to_string(workspace_root().join("config/examples/agent.toml")).expect("example");
    let good = dir.path().join("agent.toml");
    std::fs::write(&good, &example).expect("write");
    let out = Command::new(bin("eitwatch-agent")).arg("check-config").arg(&good).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let bad = dir.path().join("broken-agent.toml");
    std::fs::write(&bad, example.replacen("type = \"f32\"", "type = \"f33\"", 2)).expect("write");
    let out = Command::new(bin("eitwatch-agent")).arg("check-config").arg(&bad).output().expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = bad.display().to_string();
    assert!(stderr.contains(&format!("{file}: modbus[0].register[0].type: unknown variant `f33`")), "{stderr}");
    assert!(stderr.contains(&format!("{file}: modbus[0].register[1].type: unknown variant `f33`")), "{stderr}");
}

#[tokio::test]
async fn the_demo_raises_the_drifting_cod_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _demo = Proc::spawn(
        "demo",
        dir.path(),
        Command::new(bin("eitwatch-demo"))
            .args(["--listen", "127.0.0.1:0", "--drift-after-s", "2", "--data-dir"])
            .arg(dir.path()),
    );
    // The demo runs its own server (the area's registry, simulated factories feeding it).
    let url = support::server::listening(&dir.path().join("server"), "the demo server").await;
    let alert = wait_for("the COD alert", Duration::from_secs(60), || async {
        let v = get_json(&format!("{url}/api/v1/alerts?kind=exceedance")).await;
        v["alerts"].as_array().and_then(|a| a.first().cloned())
    })
    .await;
    assert_eq!((alert["factory"].as_str(), alert["parameter"].as_str()), (Some("mm-ceramics"), Some("cod")));
    assert!(alert["value"].as_f64().is_some_and(|v| v > 120.0), "{alert}");
    // Every factory of the area delivers.
    for factory in ["mm-ceramics", "mm-foods", "mm-biomass"] {
        let v = get_json(&format!("{url}/api/v1/readings?factory={factory}")).await;
        assert!(v["readings"].as_array().is_some_and(|r| !r.is_empty()), "{factory}: no readings");
    }
}
