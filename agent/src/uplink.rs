//! Delivers the outbox to the server's InfluxDB v2 write API, oldest first, in batches by
//! size and age, with the factory's token.
//!
//! A batch leaves the outbox only on 204. Link errors and 5xx/429 are retried with backoff;
//! 401/403 stop delivery loudly until the token is fixed (retried slowly, nothing dropped);
//! a 400 means the server refuses the content: the batch is logged with the server's reason
//! and dropped so it cannot block the queue.

use std::sync::Arc;
use std::time::Duration;

use eitwatch_config::agent_config;
use eitwatch_config::line_protocol;
use reqwest::StatusCode;

use crate::Shutdown;
use crate::outbox::Outbox;
use crate::sources::Backoff;

/// The uplink to one server.
#[derive(Debug)]
pub struct Uplink {
    client: reqwest::Client,
    url: String,
    token: String,
    batch_max_readings: usize,
    batch_max_age: Duration,
}

enum Outcome {
    Delivered,
    Refused(String),
    Retry(String, Option<Duration>),
    Unauthorized(String),
}

impl Uplink {
    /// Builds the HTTP client for `[uplink]`.
    pub fn new(config: &agent_config::Uplink) -> anyhow::Result<Uplink> {
        crate::install_tls_provider();
        let client = reqwest::Client::builder().timeout(Duration::from_millis(config.timeout_ms)).build()?;
        let url = format!(
            "{}/api/v2/write?org={}&bucket={}&precision=ns",
            config.url.trim_end_matches('/'),
            config.org,
            config.bucket
        );
        Ok(Uplink {
            client,
            url,
            token: config.token.0.clone(),
            batch_max_readings: config.batch_max_readings,
            batch_max_age: Duration::from_millis(config.batch_max_age_ms),
        })
    }

    async fn send(&self, body: String) -> Outcome {
        let response = self
            .client
            .post(&self.url)
            .header("Authorization", format!("Token {}", self.token))
            .body(body)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(e.to_string(), None),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.unwrap_or_default();
        match status {
            s if s.is_success() => Outcome::Delivered,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Outcome::Unauthorized(format!("{status}: {text}")),
            StatusCode::TOO_MANY_REQUESTS => Outcome::Retry(format!("{status}: {text}"), retry_after),
            s if s.is_client_error() => Outcome::Refused(format!("{status}: {text}")),
            _ => Outcome::Retry(format!("{status}: {text}"), retry_after),
        }
    }

    /// Delivers until shutdown.
    pub async fn run(self, outbox: Arc<Outbox>, shutdown: Shutdown) {
        let mut backoff = Backoff::new();
        loop {
            // Wait for a first reading, then for a full batch or its age limit.
            while outbox.is_empty() {
                tokio::select! { _ = shutdown.cancelled() => return, _ = outbox.appended() => {} }
            }
            let deadline = tokio::time::Instant::now() + self.batch_max_age;
            while outbox.len() < self.batch_max_readings {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = outbox.appended() => {}
                }
            }
            let batch = outbox.peek(self.batch_max_readings);
            let body = line_protocol::encode(&batch);
            let delay = match self.send(body).await {
                Outcome::Delivered => {
                    outbox.commit(batch.len());
                    backoff.reset();
                    tracing::debug!(readings = batch.len(), waiting = outbox.len(), "Batch delivered");
                    continue;
                }
                Outcome::Refused(reason) => {
                    tracing::error!(readings = batch.len(), %reason, "Server refused a batch for its content; dropped");
                    outbox.commit(batch.len());
                    continue;
                }
                Outcome::Unauthorized(reason) => {
                    tracing::error!(%reason, waiting = outbox.len(), "Server refuses the token: delivery stopped until it is fixed");
                    Duration::from_secs(30)
                }
                Outcome::Retry(error, retry_after) => {
                    let delay = retry_after.unwrap_or_else(|| backoff.next());
                    tracing::warn!(%error, waiting = outbox.len(), retry_in_ms = delay.as_millis() as u64, "Delivery failed; will retry");
                    delay
                }
            };
            tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(delay) => {} }
        }
    }
}
