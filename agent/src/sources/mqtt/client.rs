//! One shape over rumqttc's MQTT 3.1.1 and MQTT 5 clients: options (persistent session,
//! manual acks, credentials, TLS with rustls) and the few events the source acts on.

use std::time::Duration;

use eitwatch_config::agent_config::{MqttSource, MqttVersion};
use rumqttc::{Outgoing, Transport};

/// Why a source could not be set up (before any connection is tried).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// `broker` is not host:port.
    #[error("broker \"{0}\" is not host:port")]
    Broker(String),
    /// A TLS file cannot be read.
    #[error("cannot read {key} {path}: {reason}")]
    File {
        /// The config key (`tls.ca_file`).
        key: &'static str,
        /// The file.
        path: String,
        /// The OS's reason.
        reason: String,
    },
}

/// How long a broker keeps a persistent MQTT 5 session after the agent goes away. MQTT 3.1.1
/// sessions have no expiry; a week covers any maintenance window.
const SESSION_EXPIRY_S: u32 = 7 * 24 * 3600;

/// The largest packet the client reads: MQTT's own maximum (a remaining length of
/// 268 435 455 bytes), so that no message makes rumqttc drop the connection; the source
/// dead-letters what is over its `max_message_bytes`. MQTT 5 announces it to the broker.
const READ_LIMIT_BYTES: u32 = 268_435_455;

/// The largest packet the client writes (subscribes, acks): rumqttc's default.
const WRITE_LIMIT_BYTES: usize = 10 * 1024;

/// Requests (acks, subscribes) queued towards the event loop. Larger than the message
/// queue, so that an ack never waits for an event loop that waits for the worker.
pub(crate) const REQUEST_CAPACITY: usize = 1024;

/// The client half: subscribe, acknowledge.
#[derive(Debug, Clone)]
pub(crate) enum Client {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// The event loop half, polled by its own task.
pub(crate) enum EventLoop {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventLoop")
    }
}

/// What acknowledges one message.
#[derive(Debug, Clone)]
pub(crate) enum Ack {
    V4(rumqttc::Publish),
    V5(rumqttc::v5::mqttbytes::v5::Publish),
}

/// The events the source acts on.
// One event lives at a time; boxing the message would allocate for each one.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Event {
    /// CONNACK: connected; whether the broker still had our session.
    Connected { session_present: bool },
    /// A message.
    Message { topic: String, payload: bytes::Bytes, ack: Ack },
    /// A SUBSCRIBE left with this packet id.
    Subscribing { pkid: u16 },
    /// SUBACK: the refused filters' reasons, empty when all were granted.
    SubAck { pkid: u16, refused: Vec<String> },
    /// Anything else (pings, acks going out).
    Other,
}

/// Builds client and event loop for a source.
pub(crate) fn build(source: &MqttSource) -> Result<(Client, EventLoop), SetupError> {
    let (host, port) = source
        .broker
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_string(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| SetupError::Broker(source.broker.clone()))?;
    let persistent = source.qos >= 1;
    let transport = match &source.tls {
        None => Transport::Tcp,
        Some(tls) => {
            let read = |key: &'static str, path: &str| {
                std::fs::read(path).map_err(|e| SetupError::File { key, path: path.to_string(), reason: e.to_string() })
            };
            let ca = read("tls.ca_file", &tls.ca_file)?;
            let client_auth = match (&tls.client_cert_file, &tls.client_key_file) {
                (Some(cert), Some(key)) => {
                    Some((read("tls.client_cert_file", cert)?, read("tls.client_key_file", key)?))
                }
                _ => None,
            };
            crate::install_tls_provider();
            Transport::tls(ca, client_auth, None)
        }
    };
    let keep_alive = Duration::from_secs(source.keep_alive_s);
    Ok(match source.version {
        MqttVersion::V311 => {
            let mut o = rumqttc::MqttOptions::new(&source.client_id, host, port);
            o.set_keep_alive(keep_alive).set_clean_session(!persistent).set_manual_acks(true).set_transport(transport);
            o.set_max_packet_size(READ_LIMIT_BYTES as usize, WRITE_LIMIT_BYTES);
            if let Some(user) = &source.username {
                o.set_credentials(user, source.password.as_ref().map(|p| p.0.as_str()).unwrap_or_default());
            }
            let (c, e) = rumqttc::AsyncClient::new(o, REQUEST_CAPACITY);
            (Client::V4(c), EventLoop::V4(Box::new(e)))
        }
        MqttVersion::V5 => {
            let mut o = rumqttc::v5::MqttOptions::new(&source.client_id, host, port);
            o.set_keep_alive(keep_alive).set_clean_start(!persistent).set_manual_acks(true).set_transport(transport);
            o.set_max_packet_size(Some(READ_LIMIT_BYTES));
            if persistent {
                o.set_session_expiry_interval(Some(SESSION_EXPIRY_S));
            }
            if let Some(user) = &source.username {
                o.set_credentials(user, source.password.as_ref().map(|p| p.0.as_str()).unwrap_or_default());
            }
            let (c, e) = rumqttc::v5::AsyncClient::new(o, REQUEST_CAPACITY);
            (Client::V5(c), EventLoop::V5(Box::new(e)))
        }
    })
}

impl EventLoop {
    /// The next event; an error means the connection is gone (the next poll reconnects).
    pub(crate) async fn poll(&mut self) -> Result<Event, String> {
        use rumqttc::v5::mqttbytes::v5 as p5;
        Ok(match self {
            EventLoop::V4(e) => match e.poll().await.map_err(|e| e.to_string())? {
                rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(a)) => {
                    Event::Connected { session_present: a.session_present }
                }
                rumqttc::Event::Incoming(rumqttc::Packet::Publish(mut p)) => {
                    // Moved out: an ack needs only the packet id and QoS.
                    let (topic, payload) = (std::mem::take(&mut p.topic), std::mem::take(&mut p.payload));
                    Event::Message { topic, payload, ack: Ack::V4(p) }
                }
                rumqttc::Event::Incoming(rumqttc::Packet::SubAck(s)) => Event::SubAck {
                    pkid: s.pkid,
                    refused: s
                        .return_codes
                        .iter()
                        .filter(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                        .map(|c| format!("{c:?}"))
                        .collect(),
                },
                rumqttc::Event::Outgoing(Outgoing::Subscribe(pkid)) => Event::Subscribing { pkid },
                _ => Event::Other,
            },
            EventLoop::V5(e) => match e.poll().await.map_err(|e| e.to_string())? {
                rumqttc::v5::Event::Incoming(p5::Packet::ConnAck(a)) => {
                    Event::Connected { session_present: a.session_present }
                }
                rumqttc::v5::Event::Incoming(p5::Packet::Publish(mut p)) => Event::Message {
                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                    payload: std::mem::take(&mut p.payload),
                    ack: Ack::V5(p),
                },
                rumqttc::v5::Event::Incoming(p5::Packet::SubAck(s)) => Event::SubAck {
                    pkid: s.pkid,
                    refused: s
                        .return_codes
                        .iter()
                        .filter(|c| !matches!(c, p5::SubscribeReasonCode::Success(_)))
                        .map(|c| format!("{c:?}"))
                        .collect(),
                },
                rumqttc::v5::Event::Outgoing(Outgoing::Subscribe(pkid)) => Event::Subscribing { pkid },
                _ => Event::Other,
            },
        })
    }
}

impl EventLoop {
    /// Acknowledges a batch of messages. MQTT 3.1.1: the PUBACKs go into the connection's
    /// buffer and leave in one write (through the client's request queue each would be a
    /// poll of the event loop and a write of its own). When not connected they go through
    /// the client's queue, as [`Client::ack`] would. MQTT 5's event loop keeps its
    /// connection private: the worker acknowledges through the client there.
    pub(crate) async fn ack_all(&mut self, client: &Client, acks: &[Ack]) -> Result<(), String> {
        if let (EventLoop::V4(e), Client::V4(c)) = (&mut *self, client) {
            let Some(network) = e.network.as_mut() else {
                return acks.iter().try_for_each(|a| match a {
                    Ack::V4(p) => c.try_ack(p).map_err(|e| e.to_string()),
                    Ack::V5(_) => Err("an ack of the other protocol version".into()),
                });
            };
            for ack in acks {
                match ack {
                    Ack::V4(p) if p.qos == rumqttc::QoS::AtLeastOnce => {
                        let puback = rumqttc::Packet::PubAck(rumqttc::PubAck::new(p.pkid));
                        network.write(puback).await.map_err(|e| e.to_string())?;
                    }
                    // QoS 0 needs none; QoS 2 (never subscribed to) its own handshake.
                    Ack::V4(p) => c.try_ack(p).map_err(|e| e.to_string())?,
                    Ack::V5(_) => return Err("an ack of the other protocol version".into()),
                }
            }
            return network.flush().await.map_err(|e| e.to_string());
        }
        for ack in acks {
            match (client, ack) {
                (Client::V5(c), Ack::V5(p)) => c.try_ack(p).map_err(|e| e.to_string())?,
                _ => return Err("an ack of the other protocol version".into()),
            }
        }
        Ok(())
    }
}

impl Client {
    /// Whether the worker hands acks to the event loop in batches ([`EventLoop::ack_all`]).
    pub(crate) fn acks_in_batches(&self) -> bool {
        matches!(self, Client::V4(_))
    }

    /// Queues a SUBSCRIBE without waiting (safe from the event loop's own task).
    pub(crate) fn try_subscribe(&self, filter: &str, qos: u8) -> Result<(), String> {
        match self {
            Client::V4(c) => {
                let qos = if qos == 0 { rumqttc::QoS::AtMostOnce } else { rumqttc::QoS::AtLeastOnce };
                c.try_subscribe(filter, qos).map_err(|e| e.to_string())
            }
            Client::V5(c) => {
                let qos = if qos == 0 {
                    rumqttc::v5::mqttbytes::QoS::AtMostOnce
                } else {
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce
                };
                c.try_subscribe(filter, qos).map_err(|e| e.to_string())
            }
        }
    }

    /// Acknowledges a message (a no-op for QoS 0).
    pub(crate) async fn ack(&self, ack: &Ack) -> Result<(), String> {
        match (self, ack) {
            (Client::V4(c), Ack::V4(p)) => c.ack(p).await.map_err(|e| e.to_string()),
            (Client::V5(c), Ack::V5(p)) => c.ack(p).await.map_err(|e| e.to_string()),
            _ => Err("an ack of the other protocol version".into()),
        }
    }

    /// Asks for a clean DISCONNECT, without waiting.
    pub(crate) fn try_disconnect(&self) {
        let _ = match self {
            Client::V4(c) => c.try_disconnect().map_err(|e| e.to_string()),
            Client::V5(c) => c.try_disconnect().map_err(|e| e.to_string()),
        };
    }
}
