//! MQTT brokers (3.1.1 or 5, TCP or TLS), subscribed.
//!
//! Two tasks per broker. The event loop task only polls rumqttc: it subscribes on every
//! CONNACK and hands messages to the worker through a bounded queue; after an error it sleeps
//! with backoff (0.5 s doubling to 30 s, with jitter) before the next poll, because rumqttc
//! reconnects at once and would spin on a dead broker. The worker decodes, delivers, and only
//! once `deliver` has returned (the readings are in the outbox) acknowledges the message.
//!
//! With QoS 1 the session is persistent (fixed client id, clean session off; MQTT 5: clean
//! start off and a week's session expiry), so messages that arrive while the agent is away,
//! or that it received but had not yet stored, are delivered again by the broker. Every
//! CONNACK is followed by subscribing again, whatever the broker says it remembers: a
//! broker restarted without persistence has forgotten the subscriptions, and the log says
//! which happened. QoS 1 is at-least-once: a message redelivered after a crash carries the
//! same payload timestamp and is stored once; with `time_format = "arrival"` it would be
//! stored twice.
//!
//! A malformed message is counted, logged with its topic and an excerpt, acknowledged (a
//! poison message must not come back forever) and skipped; the source goes on.

pub mod client;
pub mod payload;
pub mod topic;

use std::collections::HashMap;

use eitwatch_config::agent_config::{MqttSource, Subscription};
use tokio::sync::mpsc;

use self::client::{Ack, Client, Event, EventLoop};
use super::{Backoff, Context};

/// Messages waiting for the worker; with QoS 1 the broker's in-flight window bounds it anyway.
const QUEUE: usize = 256;

/// A message on its way from the event loop to the worker.
#[derive(Debug)]
struct Message {
    topic: String,
    payload: bytes::Bytes,
    ack: Ack,
}

/// The first bytes of a payload, printable, for a log line.
pub fn excerpt(payload: &[u8]) -> String {
    let cut = &payload[..payload.len().min(60)];
    let mut s = format!("{:?}", String::from_utf8_lossy(cut));
    if payload.len() > cut.len() {
        s.push('…');
    }
    s
}

/// The first subscription whose template matches, with what the topic says.
fn route<'a>(subs: &'a [Subscription], topic: &str) -> Option<(&'a Subscription, topic::TopicMatch)> {
    subs.iter().find_map(|s| topic::match_topic(s, topic).map(|m| (s, m)))
}

/// Runs one broker's subscriptions until shutdown.
pub async fn run(source: MqttSource, ctx: Context) {
    if source.embedded_broker {
        let listen = source.broker.parse();
        let started = match listen {
            Ok(addr) => tokio::task::spawn_blocking(move || crate::broker::start(addr))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string())),
            Err(_) => Err(format!("\"{}\" is not ip:port", source.broker)),
        };
        match started {
            Ok(()) => tracing::info!(source = %source.name, listen = %source.broker, "Embedded MQTT broker listening"),
            Err(error) => {
                tracing::error!(source = %source.name, %error, "Embedded MQTT broker not started; source not started");
                return;
            }
        }
    }
    let (client, events) = match client::build(&source) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::error!(source = %source.name, %error, "MQTT source not started");
            return;
        }
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    let poller = tokio::spawn(poll_events(source.clone(), client.clone(), events, tx, ctx.shutdown.clone()));
    work(&source, &client, rx, &ctx).await;
    client.try_disconnect();
    let _ = poller.await;
}

/// The event loop task: polls, subscribes, hands messages on, backs off after errors.
async fn poll_events(
    source: MqttSource,
    client: Client,
    mut events: EventLoop,
    tx: mpsc::Sender<Message>,
    shutdown: crate::Shutdown,
) {
    let mut backoff = Backoff::new();
    let mut connected_before = false;
    let mut failures: u64 = 0;
    let mut subscribing: Vec<String> = Vec::new();
    let mut pending: HashMap<u16, String> = HashMap::new();
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.poll() => event,
        };
        match event {
            Ok(Event::Connected { session_present }) => {
                backoff.reset();
                failures = 0;
                match (connected_before, session_present, source.qos) {
                    (false, _, _) => {
                        tracing::info!(source = %source.name, broker = %source.broker, session_present, "MQTT connected")
                    }
                    (true, true, _) => {
                        tracing::info!(source = %source.name, broker = %source.broker, "MQTT reconnected; the broker kept the session")
                    }
                    (true, false, 1) => {
                        tracing::warn!(source = %source.name, broker = %source.broker, "MQTT reconnected; the broker lost the session (restarted without persistence?): subscribing again")
                    }
                    (true, false, _) => {
                        tracing::info!(source = %source.name, broker = %source.broker, "MQTT reconnected: subscribing again")
                    }
                }
                connected_before = true;
                // Always subscribe again: a broker may claim the session yet have lost it.
                subscribing.clear();
                pending.clear();
                for sub in &source.subscription {
                    let filter = sub.filter();
                    match client.try_subscribe(&filter, source.qos) {
                        Ok(()) => subscribing.push(filter),
                        Err(error) => {
                            tracing::error!(source = %source.name, topic = %filter, %error, "Cannot subscribe")
                        }
                    }
                }
            }
            Ok(Event::Subscribing { pkid }) => {
                if !subscribing.is_empty() {
                    pending.insert(pkid, subscribing.remove(0));
                }
            }
            Ok(Event::SubAck { pkid, refused }) => {
                let topic = pending.remove(&pkid).unwrap_or_default();
                if refused.is_empty() {
                    tracing::debug!(source = %source.name, %topic, "Subscribed");
                } else {
                    tracing::error!(source = %source.name, %topic, ?refused, "The broker refused the subscription (ACL? filter?)");
                }
            }
            Ok(Event::Message { topic, payload, ack }) => {
                if tx.send(Message { topic, payload, ack }).await.is_err() {
                    return;
                }
            }
            Ok(Event::Other) => {}
            Err(error) => {
                failures += 1;
                let delay = backoff.next();
                tracing::warn!(source = %source.name, broker = %source.broker, %error, failures, retry_in_ms = delay.as_millis() as u64, "MQTT connection lost or refused");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// The worker: decode, deliver, then acknowledge. Messages that queued up while the last
/// delivery waited for the outbox go together in the next one (a group commit): one
/// durable write for many messages, so the rate is not capped by the disk's syncs per second.
async fn work(source: &MqttSource, client: &Client, mut rx: mpsc::Receiver<Message>, ctx: &Context) {
    let mut malformed: u64 = 0;
    let mut unrouted: u64 = 0;
    let mut batch: Vec<Message> = Vec::with_capacity(QUEUE);
    loop {
        let first = tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            m = rx.recv() => match m { Some(m) => m, None => return },
        };
        batch.push(first);
        while batch.len() < QUEUE {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let arrival_ns = crate::now_ns();
        let mut raws = Vec::with_capacity(batch.len());
        for message in &batch {
            match route(&source.subscription, &message.topic) {
                Some((sub, matched)) => match payload::decode(sub, &matched, &message.payload, arrival_ns) {
                    Ok(decoded) => raws.extend(decoded),
                    Err(error) => {
                        malformed += 1;
                        tracing::warn!(source = %source.name, topic = %message.topic, %error, excerpt = %excerpt(&message.payload), malformed, "Malformed MQTT message skipped");
                    }
                },
                None => {
                    unrouted += 1;
                    tracing::warn!(source = %source.name, topic = %message.topic, unrouted, "MQTT message on a topic no subscription template matches");
                }
            }
        }
        if !raws.is_empty() {
            // Acknowledged below, only once this has returned: the readings are stored.
            ctx.deliver(&source.name, raws).await;
        }
        for message in batch.drain(..) {
            if let Err(error) = client.ack(&message.ack).await {
                tracing::warn!(source = %source.name, topic = %message.topic, %error, "Cannot acknowledge; the broker will send it again");
            }
        }
    }
}
