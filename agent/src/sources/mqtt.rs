//! MQTT brokers, subscribed.
//!
//! With QoS 1 the session is persistent (fixed client id, clean session off) and each
//! message is acknowledged to the broker only after its readings are in the outbox. The
//! event loop sleeps with backoff after an error (rumqttc reconnects at once otherwise and
//! spins on a dead broker), and subscribes again on every new connection the broker does
//! not remember.

use std::time::Duration;

use eitwatch_config::agent_config::{MqttSource, Payload, Subscription};
use eitwatch_config::reading::Quality;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use super::{Backoff, Context};
use crate::normalise::Raw;

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PayloadError {
    /// Not UTF-8, not a number, not the expected JSON.
    #[error("{0}")]
    Malformed(String),
}

/// Matches a topic against a subscription template, returning `(point, parameter)`.
pub fn match_topic(sub: &Subscription, topic: &str) -> Option<(String, String)> {
    let mut point = sub.point.clone();
    let mut parameter = sub.parameter.clone();
    let mut levels = topic.split('/');
    for pattern in sub.topic.split('/') {
        if pattern == "#" {
            break;
        }
        let level = levels.next()?;
        match pattern {
            "{point}" => point = Some(level.to_string()),
            "{parameter}" => parameter = Some(level.to_string()),
            "+" => {}
            literal if literal == level => {}
            _ => return None,
        }
    }
    if !sub.topic.ends_with('#') && levels.next().is_some() {
        return None;
    }
    Some((point?, parameter?))
}

/// Reads a timestamp: RFC 3339, or epoch seconds/ms/µs/ns told apart by magnitude.
fn parse_time(v: &serde_json::Value) -> Result<i64, PayloadError> {
    match v {
        serde_json::Value::String(s) => s
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_nanosecond() as i64)
            .map_err(|e| PayloadError::Malformed(format!("time \"{s}\": {e}"))),
        serde_json::Value::Number(n) if n.as_i64().is_some() => {
            // Integers stay integers: an f64 cannot hold epoch nanoseconds exactly.
            let x = n.as_i64().unwrap_or_default();
            let factor = match x.unsigned_abs() {
                a if a < 100_000_000_000 => 1_000_000_000,
                a if a < 100_000_000_000_000 => 1_000_000,
                a if a < 100_000_000_000_000_000 => 1_000,
                _ => 1,
            };
            x.checked_mul(factor).ok_or_else(|| PayloadError::Malformed(format!("time {x} overflows nanoseconds")))
        }
        serde_json::Value::Number(n) => {
            let x = n.as_f64().ok_or_else(|| PayloadError::Malformed("time: not a number".into()))?;
            let ns = match x.abs() {
                a if a < 1e11 => x * 1e9,
                a if a < 1e14 => x * 1e6,
                a if a < 1e17 => x * 1e3,
                _ => x,
            };
            Ok(ns.round() as i64)
        }
        other => Err(PayloadError::Malformed(format!("time: {other} is neither RFC 3339 nor epoch"))),
    }
}

/// Decodes one message into a raw value.
pub fn decode(sub: &Subscription, topic: &str, payload: &[u8], arrival_ns: i64) -> Result<Raw, PayloadError> {
    let (point, parameter) = match_topic(sub, topic)
        .ok_or_else(|| PayloadError::Malformed(format!("topic {topic} does not match {}", sub.topic)))?;
    let text = std::str::from_utf8(payload).map_err(|_| PayloadError::Malformed("payload is not UTF-8".into()))?;
    let mut raw = Raw {
        point,
        parameter,
        value: f64::NAN,
        unit: sub.unit.clone().unwrap_or_default(),
        time_ns: arrival_ns,
        quality: Quality::Valid,
    };
    match sub.payload {
        Payload::Number => {
            raw.value = text.trim().parse().map_err(|_| PayloadError::Malformed("payload is not a number".into()))?;
        }
        Payload::Json => {
            let json: serde_json::Value =
                serde_json::from_str(text).map_err(|e| PayloadError::Malformed(format!("not JSON: {e}")))?;
            raw.value = json
                .get("value")
                .and_then(|v| v.as_f64())
                .ok_or_else(|| PayloadError::Malformed("no numeric \"value\"".into()))?;
            if let Some(unit) = json.get("unit") {
                raw.unit = unit
                    .as_str()
                    .ok_or_else(|| PayloadError::Malformed("\"unit\" is not a string".into()))?
                    .to_string();
            }
            if let Some(time) = json.get("time") {
                raw.time_ns = parse_time(time)?;
            }
            if let Some(q) = json.get("quality") {
                raw.quality = q
                    .as_str()
                    .ok_or_else(|| PayloadError::Malformed("\"quality\" is not a string".into()))?
                    .parse()
                    .map_err(PayloadError::Malformed)?;
            }
        }
    }
    if raw.unit.is_empty() {
        return Err(PayloadError::Malformed("no unit in the payload and none configured".into()));
    }
    Ok(raw)
}

fn excerpt(payload: &[u8]) -> String {
    String::from_utf8_lossy(&payload[..payload.len().min(80)]).into_owned()
}

/// Runs one broker's subscriptions until shutdown.
pub async fn run(source: MqttSource, ctx: Context) {
    let (host, port) = match source
        .broker
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
    {
        Some(hp) => hp,
        None => {
            tracing::error!(source = %source.name, broker = %source.broker, "Broker is not host:port; source not started");
            return;
        }
    };
    let qos = if source.qos == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce };
    let mut options = MqttOptions::new(&source.client_id, host, port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(qos == QoS::AtMostOnce);
    options.set_manual_acks(true);
    if let (Some(user), Some(password)) = (&source.username, &source.password) {
        options.set_credentials(user, &password.0);
    }
    let (client, mut events) = AsyncClient::new(options, 64);
    let mut backoff = Backoff::new();
    let mut malformed: u64 = 0;
    loop {
        let event = tokio::select! {
            _ = ctx.shutdown.cancelled() => {
                let _ = client.try_disconnect();
                return;
            }
            event = events.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                tracing::info!(source = %source.name, broker = %source.broker, session_present = ack.session_present, "MQTT connected");
                if !ack.session_present {
                    for sub in &source.subscription {
                        if let Err(error) = client.try_subscribe(sub.filter(), qos) {
                            tracing::error!(source = %source.name, topic = %sub.filter(), %error, "Cannot subscribe");
                        }
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let arrival = crate::now_ns();
                let decoded = source.subscription.iter().find_map(|sub| match_topic(sub, &publish.topic).map(|_| sub));
                match decoded.map(|sub| decode(sub, &publish.topic, &publish.payload, arrival)) {
                    Some(Ok(raw)) => {
                        ctx.deliver(&source.name, vec![raw]).await;
                    }
                    Some(Err(error)) => {
                        malformed += 1;
                        tracing::warn!(source = %source.name, topic = %publish.topic, %error, excerpt = %excerpt(&publish.payload), malformed, "Malformed message skipped");
                    }
                    None => {
                        tracing::warn!(source = %source.name, topic = %publish.topic, "Message on a topic no subscription maps")
                    }
                }
                // Acknowledged only now that its reading is queued (or judged unreadable).
                if let Err(error) = client.try_ack(&publish) {
                    tracing::warn!(source = %source.name, %error, "Cannot acknowledge");
                }
            }
            Ok(_) => {}
            Err(error) => {
                let delay = backoff.next();
                tracing::warn!(source = %source.name, broker = %source.broker, %error, retry_in_ms = delay.as_millis() as u64, "MQTT connection lost");
                tokio::select! { _ = ctx.shutdown.cancelled() => return, _ = tokio::time::sleep(delay) => {} }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(topic: &str, payload: Payload) -> Subscription {
        Subscription { topic: topic.into(), payload, point: None, parameter: None, unit: Some("mg/L".into()) }
    }

    #[test]
    fn topic_templates() {
        let s = sub("plant/{point}/{parameter}", Payload::Number);
        assert_eq!(s.filter(), "plant/+/+");
        assert_eq!(match_topic(&s, "plant/outfall-1/cod"), Some(("outfall-1".into(), "cod".into())));
        assert_eq!(match_topic(&s, "plant/outfall-1"), None);
        assert_eq!(match_topic(&s, "plant/outfall-1/cod/x"), None);
        assert_eq!(match_topic(&s, "other/outfall-1/cod"), None);
        let mut fixed = sub("lab/+/{parameter}/#", Payload::Number);
        fixed.point = Some("outfall-2".into());
        assert_eq!(match_topic(&fixed, "lab/x/bod/a/b"), Some(("outfall-2".into(), "bod".into())));
    }

    #[test]
    fn payloads_with_exact_values() {
        let s = sub("p/{point}/{parameter}", Payload::Json);
        let raw = decode(
            &s,
            "p/o/cod",
            br#"{"value": 85.25, "unit": "ug/L", "time": "2026-11-22T10:00:00Z", "quality": "maintenance"}"#,
            7,
        )
        .unwrap();
        assert_eq!((raw.value, raw.unit.as_str(), raw.quality), (85.25, "ug/L", Quality::Maintenance));
        assert_eq!(raw.time_ns, 1_795_341_600_000_000_000);
        let raw = decode(&s, "p/o/cod", br#"{"value": 1, "time": 1795341600123}"#, 7).unwrap();
        assert_eq!((raw.value, raw.unit.as_str(), raw.time_ns), (1.0, "mg/L", 1_795_341_600_123_000_000));
        let raw = decode(&s, "p/o/cod", br#"{"value": 2}"#, 7).unwrap();
        assert_eq!(raw.time_ns, 7, "no time: arrival time");
        let n = decode(&sub("p/{point}/{parameter}", Payload::Number), "p/o/cod", b" 12.5\n", 7).unwrap();
        assert_eq!(n.value, 12.5);
    }

    #[test]
    fn malformed_payloads_are_named() {
        let s = sub("p/{point}/{parameter}", Payload::Json);
        for (payload, expected) in [
            (&b"{"[..], "not JSON"),
            (b"{\"v\": 1}", "no numeric \"value\""),
            (b"{\"value\": \"1\"}", "no numeric \"value\""),
            (b"{\"value\": 1, \"time\": \"yesterday\"}", "time \"yesterday\""),
            (b"{\"value\": 1, \"quality\": \"good\"}", "unknown quality"),
            (b"\xff", "not UTF-8"),
        ] {
            let e = decode(&s, "p/o/cod", payload, 0).unwrap_err();
            assert!(e.to_string().contains(expected), "{e}");
        }
        assert!(decode(&sub("p/{point}/{parameter}", Payload::Number), "p/o/cod", b"high", 0).is_err());
    }
}
