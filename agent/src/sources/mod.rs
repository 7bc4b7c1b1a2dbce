//! Where readings come from: Modbus devices (polled) and MQTT brokers (subscribed).
//! Each source runs as one task built from its config and a [`Context`].

pub mod modbus;
pub mod mqtt;

use std::sync::Arc;
use std::time::Duration;

use eitwatch_config::agent_config::AgentConfig;

use crate::Shutdown;
use crate::normalise::{Normaliser, Raw};
use crate::outbox::Outbox;

/// What every source task needs.
#[derive(Debug, Clone)]
pub struct Context {
    /// The agent's config (points, factory).
    pub config: Arc<AgentConfig>,
    /// The points of `config`, indexed.
    pub normaliser: Arc<Normaliser>,
    /// Where readings go.
    pub outbox: Arc<Outbox>,
    /// Cancelled when the agent stops.
    pub shutdown: Shutdown,
}

/// A source stopped (the agent is stopping) while the outbox refused its readings: none of
/// them was acknowledged, so the broker sends them again and the device is polled again.
#[derive(Debug, thiserror::Error)]
#[error("source {source_name}: stopped with {readings} readings not kept in the outbox: {reason}")]
pub struct NotKept {
    source_name: String,
    readings: usize,
    reason: String,
}

impl Context {
    /// Normalises raw values and queues the readings; values that cannot be normalised are
    /// logged with their source and dropped. Returns how many were queued, once they are
    /// safe in the outbox: only then may a source acknowledge them (MQTT ack, end of a poll).
    /// While the outbox refuses them it retries with backoff; an error only if the agent
    /// stops meanwhile, and then the source must stop without acknowledging anything more.
    pub async fn deliver(&self, source: &str, raws: Vec<Raw>) -> Result<usize, NotKept> {
        let readings: Vec<_> = raws
            .into_iter()
            .filter_map(|raw| {
                self.normaliser
                    .normalise(raw)
                    .map_err(|e| {
                        let (error, raw) = *e;
                        tracing::warn!(source, point = %raw.point, parameter = %raw.parameter, %error, "Value dropped")
                    })
                    .ok()
            })
            .collect();
        let n = readings.len();
        let mut delay = Duration::from_millis(100);
        loop {
            match self.outbox.append(&readings).await {
                Ok(_) => return Ok(n),
                Err(error) => {
                    // The source waits (nothing is acknowledged) until the disk takes them again.
                    tracing::error!(source, %error, readings = n, retry_in_ms = delay.as_millis() as u64, "Cannot keep readings in the outbox");
                    tokio::select! {
                        _ = self.shutdown.cancelled() => {
                            return Err(NotKept { source_name: source.to_string(), readings: n, reason: error.to_string() });
                        }
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}
