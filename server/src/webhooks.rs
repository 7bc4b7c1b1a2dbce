//! `[[webhook]]`: every alert change of the configured kinds is POSTed as JSON
//! (`{"event": "alert", "alert": {…}}`), in order per webhook, retried with doubling waits
//! up to `max_attempts`; a delivery given up is logged with the alert id and counted. Logs
//! name a webhook by its origin only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use eitwatch_config::server_config::WebhookSection;
use tokio::sync::broadcast;

use crate::events::Events;

/// Deliveries of every webhook since the start, for the metrics (no label: a webhook's URL
/// may hold its secret).
#[derive(Debug, Default)]
pub struct Counters {
    /// Alerts a webhook answered 2xx.
    pub delivered: AtomicU64,
    /// Attempts refused or unanswered (each retry counts).
    pub attempts_failed: AtomicU64,
    /// Deliveries given up after `max_attempts`.
    pub given_up: AtomicU64,
}

/// Starts one delivery task per webhook.
pub fn spawn(hooks: &[WebhookSection], events: &Events, counters: Arc<Counters>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for hook in hooks.iter().cloned() {
        let mut rx = events.subscribe();
        let counters = counters.clone();
        tokio::spawn(async move {
            let client = match reqwest::Client::builder().timeout(Duration::from_millis(hook.timeout_ms)).build() {
                Ok(c) => c,
                Err(error) => {
                    tracing::error!(url = %origin(&hook.url), %error, "Webhook client cannot be built");
                    return;
                }
            };
            loop {
                let event = match rx.recv().await {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::error!(url = %origin(&hook.url), missed = n, "Webhook fell behind; alerts missed (see /api/v1/alerts)");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if event.kind != "alert" {
                    continue;
                }
                let alert: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
                let kind = alert.get("kind").and_then(|k| k.as_str()).unwrap_or("");
                if !hook.kinds.is_empty() && !hook.kinds.iter().any(|k| k == kind) {
                    continue;
                }
                let body = serde_json::json!({"event": "alert", "alert": alert});
                deliver(&client, &hook, &body, &counters).await;
            }
        });
    }
}

/// Where a webhook goes, for the log: its scheme, host and port only (a webhook URL's path or
/// query often holds its secret).
fn origin(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(|_| "(not a URL)".into(), |u| u.origin().ascii_serialization())
}

async fn deliver(client: &reqwest::Client, hook: &WebhookSection, body: &serde_json::Value, counters: &Counters) {
    let id = body["alert"]["id"].as_u64().unwrap_or(0);
    let mut wait = Duration::from_millis(hook.retry_initial_ms);
    for attempt in 1..=hook.max_attempts {
        let result =
            client.post(&hook.url).header("content-type", "application/json").body(body.to_string()).send().await;
        match result {
            Ok(r) if r.status().is_success() => {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(r) => {
                tracing::warn!(url = %origin(&hook.url), alert = id, attempt, status = %r.status(), "Webhook refused the alert")
            }
            Err(error) => {
                // Without its URL: the error would quote it whole.
                let error = error.without_url();
                tracing::warn!(url = %origin(&hook.url), alert = id, attempt, %error, "Webhook unreachable")
            }
        }
        counters.attempts_failed.fetch_add(1, Ordering::Relaxed);
        if attempt < hook.max_attempts {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
    }
    counters.given_up.fetch_add(1, Ordering::Relaxed);
    tracing::error!(url = %origin(&hook.url), alert = id, attempts = hook.max_attempts, "Webhook delivery given up");
}
