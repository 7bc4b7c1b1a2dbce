//! MQTT brokers (3.1.1 or 5, TCP or TLS), subscribed.
//!
//! Two tasks per broker. The event loop task only polls rumqttc: it subscribes on every
//! CONNACK and hands messages to the worker through a bounded queue, in batches of what one
//! read brought, then leaves the socket alone for `ack_linger_ms` (see `LINGER_BELOW`) so
//! that the next batch is not a single message; after an error it sleeps with backoff
//! (0.5 s doubling to 30 s, with jitter) before the next poll, because rumqttc reconnects at
//! once and would spin on a dead broker. The backoff starts again only after a connection
//! that lasted longer than its longest delay: a broker that accepts the connection and then
//! loses it at once is retried ever more slowly, not every half second. The worker decodes,
//! delivers a batch at once (one fsync), and only once `deliver` has returned (the readings
//! are in the outbox) acknowledges its messages, which the event loop task writes to the
//! broker together. So at high rates a read, a wake-up and an fsync are shared by dozens of
//! messages (about one fsync per linger) instead of costing each message its own system
//! calls and context switches (measured by `scripts/bench-agent.sh`; see docs/benchmarks.md).
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
//! A message the source cannot take (over `max_message_bytes`, malformed, on a topic no
//! template matches) is logged with its topic, recorded as a dead letter
//! ([`dead_letter`]), acknowledged (a poison message must not come back forever) and
//! skipped; the source goes on. So that rumqttc never drops the connection over a message's
//! size (the broker would send it again at once, and everything after it would wait), the
//! client reads packets up to MQTT's own maximum and the limit is ours.

pub mod client;
pub mod dead_letter;
pub mod payload;
pub mod topic;

use std::collections::HashMap;
use std::sync::Arc;

use eitwatch_config::agent_config::MqttSource;
use tokio::sync::mpsc;

use self::client::{Ack, Client, Event, EventLoop};
use self::dead_letter::{DeadLetter, DeadLetters, Reason};
use super::Context;
use crate::backoff::Backoff;

/// Messages handed to the worker at most at once; with QoS 1 the broker's in-flight window
/// bounds a batch anyway.
const BATCH_MAX: usize = 256;

/// Batches waiting for the worker (while it waits for the outbox).
const QUEUE: usize = 4;

/// The linger (`ack_linger_ms`): how long the event loop leaves the socket alone after
/// handing a batch over, so that the messages arriving meanwhile are read, stored (one
/// fsync) and acknowledged together. At 1 000 messages/s a message every millisecond
/// otherwise costs a wake-up, a read, a task switch and a share of an fsync each. It bounds
/// the extra latency before an ack; the broker's in-flight window (mosquitto: 20 by default)
/// over it is a cap on the rate, so it is skipped after a batch of this many messages or
/// more (the source is busy: the fsync time alone makes the batches).
const LINGER_BELOW: usize = 16;

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
fn route<'a, 's>(
    subs: &'a [payload::Decoder<'s>],
    topic: &str,
) -> Option<(&'a payload::Decoder<'s>, topic::TopicMatch)> {
    subs.iter().find_map(|d| topic::match_topic(d.sub, topic).map(|m| (d, m)))
}

/// Runs one broker's subscriptions until shutdown; an error if it stops with a batch's
/// readings not kept (those messages are not acknowledged: the broker sends them again).
/// Messages it cannot take go to `dead_letters`.
pub async fn run(source: MqttSource, ctx: Context, dead_letters: Arc<DeadLetters>) -> Result<(), super::NotKept> {
    if source.embedded_broker {
        match start_embedded_broker(&source).await {
            Ok(()) => tracing::info!(source = %source.name, listen = %source.broker, "Embedded MQTT broker listening"),
            Err(error) => {
                tracing::error!(source = %source.name, %error, "Embedded MQTT broker not started; source not started");
                return Ok(());
            }
        }
    }
    let (client, events) = match client::build(&source) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::error!(source = %source.name, %error, "MQTT source not started");
            return Ok(());
        }
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    let (acks_tx, acks_rx) = mpsc::channel(QUEUE);
    let poller = tokio::spawn(poll_events(source.clone(), client.clone(), events, tx, acks_rx, ctx.shutdown.clone()));
    let result = work(&source, &client, rx, acks_tx, &ctx, &dead_letters).await;
    client.try_disconnect();
    let _ = poller.await;
    result
}

#[cfg(feature = "embedded-broker")]
async fn start_embedded_broker(source: &MqttSource) -> Result<(), String> {
    let addr = source.broker.parse().map_err(|_| format!("\"{}\" is not ip:port", source.broker))?;
    tokio::task::spawn_blocking(move || crate::broker::start(addr))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "embedded-broker"))]
async fn start_embedded_broker(_source: &MqttSource) -> Result<(), String> {
    Err("this agent is built without the embedded broker (cargo feature \"embedded-broker\")".into())
}

/// The event loop task: polls, subscribes, hands messages on in batches, writes the
/// worker's acks, backs off after errors.
async fn poll_events(
    source: MqttSource,
    client: Client,
    mut events: EventLoop,
    tx: mpsc::Sender<Vec<Message>>,
    mut acks: mpsc::Receiver<Vec<Ack>>,
    shutdown: crate::Shutdown,
) {
    let mut backoff = Backoff::new();
    let mut connected_at: Option<tokio::time::Instant> = None;
    let mut connected_before = false;
    let mut failures: u64 = 0;
    let mut subscribing: Vec<String> = Vec::new();
    let mut pending: HashMap<u16, String> = HashMap::new();
    let mut batch: Vec<Message> = Vec::new();
    // While set, the socket is left alone (see LINGER_BELOW); acks still go out at once.
    let mut linger_until: Option<tokio::time::Instant> = None;
    let linger = std::time::Duration::from_millis(source.ack_linger_ms);
    let mut handed_over: Option<tokio::time::Instant> = None;
    loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            Some(done) = acks.recv() => {
                if let Err(error) = events.ack_all(&client, &done).await {
                    tracing::warn!(source = %source.name, %error, messages = done.len(), "Cannot acknowledge; the broker will send them again");
                }
                continue;
            }
            _ = tokio::time::sleep_until(linger_until.unwrap_or_else(tokio::time::Instant::now)), if linger_until.is_some() => {
                linger_until = None;
                continue;
            }
            event = events.poll(), if linger_until.is_none() && batch.len() < BATCH_MAX => event,
            // Nothing more ready now: hand over what was read together.
            _ = std::future::ready(()), if !batch.is_empty() && linger_until.is_none() => {
                let small = batch.len() < LINGER_BELOW;
                let now = tokio::time::Instant::now();
                // A few messages right after a handover (those that came while a large batch
                // was read) wait for the rest of the linger with what comes meanwhile: at
                // 1 000 messages/s that is one fsync per linger instead of two (a large batch,
                // then one or two messages). The rate a small in-flight window allows stays
                // window / linger, as with a linger after each small batch.
                if small && let Some(last) = handed_over.filter(|&t| now < t + linger) {
                    linger_until = Some(last + linger);
                    continue;
                }
                if tx.send(std::mem::replace(&mut batch, Vec::with_capacity(16))).await.is_err() {
                    return;
                }
                handed_over = Some(now);
                if small && !linger.is_zero() {
                    linger_until = Some(now + linger);
                }
                continue;
            }
        };
        match event {
            Ok(Event::Connected { session_present }) => {
                connected_at = Some(tokio::time::Instant::now());
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
            Ok(Event::Message { topic, payload, ack }) => batch.push(Message { topic, payload, ack }),
            Ok(Event::Other) => {}
            Err(error) => {
                // What came before the error is handed over: it is acknowledged if the
                // connection is back by then, else the broker sends it again.
                if !batch.is_empty() && tx.send(std::mem::take(&mut batch)).await.is_err() {
                    return;
                }
                // Only a connection that lasted is a success: one lost right after its
                // CONNACK (a message it cannot read, a broker that drops it) keeps backing off.
                if connected_at.take().is_some_and(|t| t.elapsed() > Backoff::max()) {
                    backoff.reset();
                    failures = 0;
                }
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
async fn work(
    source: &MqttSource,
    client: &Client,
    mut rx: mpsc::Receiver<Vec<Message>>,
    acks: mpsc::Sender<Vec<Ack>>,
    ctx: &Context,
    dead_letters: &Arc<DeadLetters>,
) -> Result<(), super::NotKept> {
    let mut malformed: u64 = 0;
    let mut unrouted: u64 = 0;
    let decoders: Vec<payload::Decoder<'_>> = source.subscription.iter().map(payload::Decoder::new).collect();
    loop {
        let mut batch = tokio::select! {
            _ = ctx.shutdown.cancelled() => return Ok(()),
            m = rx.recv() => match m { Some(m) => m, None => return Ok(()) },
        };
        while batch.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        let arrival_ns = crate::now_ns();
        let mut raws = Vec::with_capacity(batch.len());
        let mut dead = Vec::new();
        for message in &batch {
            let (topic, payload) = (&message.topic, &message.payload[..]);
            if payload.len() as u64 > source.max_message_bytes {
                let detail = format!("{} bytes, over max_message_bytes = {}", payload.len(), source.max_message_bytes);
                tracing::warn!(source = %source.name, %topic, bytes = payload.len(), max_message_bytes = source.max_message_bytes, "MQTT message too large: dead-lettered");
                dead.push(DeadLetter::new(&source.name, topic, payload, Reason::TooLarge, detail));
                continue;
            }
            match route(&decoders, topic) {
                Some((decoder, matched)) => match decoder.decode(matched, payload, arrival_ns) {
                    Ok(decoded) => raws.extend(decoded),
                    Err(error) => {
                        malformed += 1;
                        tracing::warn!(source = %source.name, %topic, %error, excerpt = %excerpt(payload), malformed, "Malformed MQTT message skipped");
                        dead.push(DeadLetter::new(&source.name, topic, payload, Reason::Malformed, error.to_string()));
                    }
                },
                None => {
                    unrouted += 1;
                    tracing::warn!(source = %source.name, %topic, unrouted, "MQTT message on a topic no subscription template matches");
                    let detail = "no subscription template matches the topic".to_string();
                    dead.push(DeadLetter::new(&source.name, topic, payload, Reason::Unrouted, detail));
                }
            }
        }
        // Acknowledged below, only once these have returned: the readings are stored and
        // the messages not taken recorded.
        if !raws.is_empty() {
            ctx.deliver(&source.name, raws).await?;
        }
        if !dead.is_empty() {
            let n = dead.len();
            if let Err(error) = dead_letters.record(dead).await {
                // Acknowledged all the same: sent again, they would be refused again.
                tracing::error!(source = %source.name, file = %dead_letters.path().display(), %error, messages = n, "Cannot record dead letters");
            }
        }
        if client.acks_in_batches() {
            // The event loop writes them all at once.
            if acks.send(batch.into_iter().map(|m| m.ack).collect()).await.is_err() {
                return Ok(());
            }
        } else {
            for message in batch {
                if let Err(error) = client.ack(&message.ack).await {
                    tracing::warn!(source = %source.name, topic = %message.topic, %error, "Cannot acknowledge; the broker will send it again");
                }
            }
        }
    }
}
