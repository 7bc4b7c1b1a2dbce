//! MQTT messages the agent cannot take, against real mosquitto: one over `max_message_bytes`
//! and one malformed, among valid QoS 1 messages. Both are acknowledged and recorded as dead
//! letters; every valid message enters the outbox and the store exactly once; the agent
//! keeps its one connection (no reconnect loop, no redelivery).

mod support;

use std::time::Duration;

use support::sources::*;
use support::*;

const T0_MS: i64 = 1_795_300_000_000;
const BIG_BYTES: usize = 2 << 20;

fn message(i: i64) -> String {
    format!(r#"{{"value": {}, "time": {}}}"#, i as f64 + 0.25, T0_MS + i * 60_000)
}

fn cod(all: &[Stored]) -> Vec<(i64, f64)> {
    of(all, "o1", "cod").iter().map(|r| (r.time_ns, r.value)).collect()
}

/// A QoS 1 publisher whose client may send messages of several MiB (rumqttc's default
/// limit is 10 KiB).
fn publisher(port: u16) -> rumqttc::AsyncClient {
    let mut options = rumqttc::MqttOptions::new("plant-publisher", "127.0.0.1", port);
    options.set_max_packet_size(4 * BIG_BYTES, 4 * BIG_BYTES);
    let (client, mut events) = rumqttc::AsyncClient::new(options, 100);
    tokio::spawn(async move {
        loop {
            if events.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    client
}

async fn publish(client: &rumqttc::AsyncClient, payload: impl Into<Vec<u8>>) {
    client.publish("f1/o1/cod", rumqttc::QoS::AtLeastOnce, false, payload).await.expect("publish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_3_1_1_an_oversize_and_a_malformed_message_are_dead_lettered_and_the_stream_goes_on_exactly_once() {
    oversize_and_malformed_among_valid_messages("3.1.1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_5_an_oversize_and_a_malformed_message_are_dead_lettered_and_the_stream_goes_on_exactly_once() {
    oversize_and_malformed_among_valid_messages("5").await;
}

async fn oversize_and_malformed_among_valid_messages(version: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port().port();
    let _broker = mosquitto(dir.path(), "mosquitto", port, "persistence false").await;
    let server = TestServer::builder(dir.path())
        .site(Site::outfalls_of_f1(&["o1".to_string()]))
        .factory_tokens(&["f1"])
        .start()
        .await;
    let agent = TestAgent::builder(dir.path(), &server)
        .point("o1")
        .config_tail(&format!(
            "[[mqtt]]\nname = \"plant\"\nbroker = \"127.0.0.1:{port}\"\nclient_id = \"agent-f1\"\nversion = \"{version}\"\nqos = 1\n\
             [[mqtt.subscription]]\ntopic = \"f1/{{point}}/{{parameter}}\"\npayload = \"json\"\nunit = \"mg/L\"\ntime_format = \"epoch_ms\""
        ))
        .start()
        .await;
    let client = publisher(port);
    // Message 0 until it is stored: the agent is subscribed. Repeats carry one timestamp.
    wait_for("message 0 to get through", Duration::from_secs(60), || async {
        publish(&client, message(0)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        (!cod(&stored(server.url()).await).is_empty()).then_some(())
    })
    .await;
    let appended_before = agent.metric("eitwatch_outbox_appended_total").await;

    for i in 1..=10 {
        publish(&client, message(i)).await;
    }
    publish(&client, vec![b' '; BIG_BYTES]).await;
    for i in 11..=20 {
        publish(&client, message(i)).await;
    }
    publish(&client, "{\"value\": oops}").await;
    for i in 21..=25 {
        publish(&client, message(i)).await;
    }

    let want: Vec<(i64, f64)> = (0..=25).map(|i| ((T0_MS + i * 60_000) * 1_000_000, i as f64 + 0.25)).collect();
    let got = wait_for("messages 0..=25 in the store", Duration::from_secs(60), || async {
        let got = cod(&stored(server.url()).await);
        (got.len() >= want.len()).then_some(got)
    })
    .await;
    assert_eq!(got, want, "every valid message, with its value and time");
    // Exactly once into the outbox: nothing redelivered after a lost connection.
    let appended = agent.metric("eitwatch_outbox_appended_total").await;
    assert_eq!(appended - appended_before, 25.0, "readings appended for 25 valid messages");

    let too_large = "eitwatch_mqtt_dead_letters_total{source=\"plant\",reason=\"too_large\"}";
    let malformed = "eitwatch_mqtt_dead_letters_total{source=\"plant\",reason=\"malformed\"}";
    assert_eq!(agent.metric(too_large).await, 1.0);
    assert_eq!(agent.metric(malformed).await, 1.0);
    let letters = std::fs::read_to_string(agent.data_dir().join("mqtt-dead-letters.jsonl")).expect("dead letters");
    let letters: Vec<serde_json::Value> =
        letters.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(letters.len(), 2, "{letters:?}");
    let big = &letters[0];
    assert_eq!((big["reason"].as_str(), big["topic"].as_str()), (Some("too_large"), Some("f1/o1/cod")), "{big}");
    assert_eq!(big["bytes"].as_u64(), Some(BIG_BYTES as u64), "{big}");
    assert_eq!(big["source"].as_str(), Some("plant"), "{big}");
    assert_eq!(letters[1]["reason"].as_str(), Some("malformed"), "{}", letters[1]);

    let log = agent.log();
    assert_eq!(log.matches("MQTT connected").count(), 1, "one connection:\n{log}");
    assert!(!log.contains("MQTT connection lost"), "no reconnect:\n{log}");
}
