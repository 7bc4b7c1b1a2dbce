//! LINE Messaging API push: `POST <base_url>/v2/bot/message/push` with
//! `Authorization: Bearer <channel access token>`, a body `{"to": id, "messages": [{"type":
//! "text", "text": …}]}` (text at most 5000 characters) and an `X-Line-Retry-Key` (a UUID,
//! the same on every retry of one notification, so LINE sends it once). A 429 is retried
//! after its `Retry-After`; a 409 answers a retry LINE already accepted.

use std::time::Duration;

use eitwatch_config::notify_config::LineSection;

use super::outbox::Notification;

/// Why the LINE client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The token's variable or file.
    #[error("notify.line.{0}")]
    Token(String),
    /// The HTTP client.
    #[error("notify.line: {0}")]
    Client(String),
}

/// A configured LINE channel.
#[derive(Debug, Clone)]
pub struct Line {
    client: reqwest::Client,
    url: String,
    token: String,
}

/// What a push came to.
#[derive(Debug)]
pub enum Pushed {
    /// Status and body of LINE's answer.
    Ok(String),
    /// Retry, at the earliest after `Some(wait)` (a 429's `Retry-After`).
    Transient(String, Option<Duration>),
    /// Refused for good (a 4xx other than 429).
    Permanent(String),
}

impl Line {
    /// The client of `[notify.line]`.
    pub fn new(config: &LineSection) -> Result<Line, LineError> {
        // reqwest is built without a provider: the tree's one, ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let token =
            eitwatch_config::notify_config::secret(config.token_env.as_deref(), config.token_file.as_deref(), "token")
                .map_err(LineError::Token)?
                .ok_or_else(|| LineError::Token("token_env: give token_env or token_file".into()))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|e| LineError::Client(e.to_string()))?;
        Ok(Line { client, url: format!("{}/v2/bot/message/push", config.base_url.trim_end_matches('/')), token })
    }

    /// Pushes one notification.
    pub async fn push(&self, n: &Notification) -> Pushed {
        let body = serde_json::json!({"to": n.to, "messages": [{"type": "text", "text": n.text}]});
        let sent = self
            .client
            .post(&self.url)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .header("x-line-retry-key", &n.retry_key)
            .body(body.to_string())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Pushed::Transient(format!("{}: {e}", self.url), None),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let request_id = response
            .headers()
            .get("x-line-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| format!(" request {v}"))
            .unwrap_or_default();
        let text = response.text().await.unwrap_or_default();
        let answer = format!("{}{request_id} {}", status.as_u16(), text.chars().take(500).collect::<String>());
        match status.as_u16() {
            200..=299 => Pushed::Ok(answer),
            // A retry of a request LINE already accepted.
            409 => Pushed::Ok(answer),
            429 => Pushed::Transient(answer, retry_after),
            400..=499 => Pushed::Permanent(answer),
            _ => Pushed::Transient(answer, retry_after),
        }
    }
}
