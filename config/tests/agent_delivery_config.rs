//! `agent.toml`'s delivery sections: `[outbox]`, `[uplink]`'s delivery keys, `[[influxdb]]`
//! sinks and `[agent] metrics_listen`, with their defaults and their problems.

use eitwatch_config::agent_config::AgentConfig;
use eitwatch_config::problems::load;

const BASE: &str = r#"
[agent]
factory = "f1"
[[point]]
id = "outfall-1"
kind = "effluent"
[uplink]
url = "http://127.0.0.1:8086"
token = "t"
[[mqtt]]
name = "m"
broker = "127.0.0.1:1883"
client_id = "c"
[[mqtt.subscription]]
topic = "f1/{point}/{parameter}"
payload = "json"
"#;

#[test]
fn defaults() {
    let c: AgentConfig = load(BASE, "agent.toml").unwrap_or_else(|p| panic!("{p}"));
    assert_eq!((c.outbox.max_bytes, c.outbox.segment_bytes), (1 << 30, 16 << 20));
    assert!(c.uplink.gzip);
    assert_eq!((c.uplink.backfill_readings_per_s, c.uplink.auth_retry_ms), (20_000, 60_000));
    assert!(c.influxdb.is_empty());
    assert_eq!(c.agent.metrics_listen, None);
}

#[test]
fn every_delivery_problem_is_named() {
    let text = BASE.replace("factory = \"f1\"", "factory = \"f1\"\nmetrics_listen = \"localhost\"")
        + r#"
[outbox]
max_bytes = 10000
segment_bytes = 8192
[[influxdb]]
name = "server"
url = "ftp://h"
token = "t"
org = "o"
bucket = "b"
batch_max_readings = 0
"#;
    let problems = load::<AgentConfig>(&text, "agent.toml").expect_err("problems");
    let got: Vec<String> = problems.list.iter().map(|p| p.path.clone()).collect();
    assert_eq!(
        got,
        [
            "agent.metrics_listen",
            "influxdb[0].name",
            "influxdb[0].url",
            "influxdb[0].batch_max_readings",
            "outbox.max_bytes",
        ],
        "{problems}"
    );
    assert!(problems.to_string().contains("less than two segments"), "{problems}");
}

#[test]
fn group_commit_keys_have_defaults_and_bounds() {
    let c: AgentConfig = load(BASE, "agent.toml").unwrap_or_else(|p| panic!("{p}"));
    assert_eq!((c.outbox.commit_interval_ms, c.mqtt[0].ack_linger_ms), (0, 50));
    let with = |linger: u64, interval: u64| {
        BASE.replace("client_id = \"c\"", &format!("client_id = \"c\"\nack_linger_ms = {linger}"))
            + &format!("[outbox]\ncommit_interval_ms = {interval}\n")
    };
    let c: AgentConfig = load(&with(1000, 1000), "agent.toml").unwrap_or_else(|p| panic!("{p}"));
    assert_eq!((c.outbox.commit_interval_ms, c.mqtt[0].ack_linger_ms), (1000, 1000));
    let problems = load::<AgentConfig>(&with(1001, 5000), "agent.toml").expect_err("problems");
    let got: Vec<String> = problems.list.iter().map(|p| p.path.clone()).collect();
    assert_eq!(got, ["outbox.commit_interval_ms", "mqtt[0].ack_linger_ms"], "{problems}");
    assert!(problems.to_string().contains("5000 is too long, expected at most 1000"), "{problems}");
}
