//! The server's live event stream (server-sent events), read as text.

use std::time::Duration;

/// The SSE stream, read as text.
pub struct EventStream {
    response: reqwest::Response,
    pub text: String,
}

impl EventStream {
    pub async fn open(url: &str) -> EventStream {
        // No overall timeout: the stream stays open.
        let client = reqwest::Client::builder().build().expect("client");
        let response = client.get(format!("{url}/api/v1/events")).send().await.expect("events");
        assert_eq!(response.status().as_u16(), 200);
        let ct = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert!(ct.starts_with("text/event-stream"), "content-type {ct}");
        EventStream { response, text: String::new() }
    }

    /// Reads until the stream's text contains `needle`.
    pub async fn until(&mut self, needle: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.text.contains(needle) {
            self.read_more(deadline, needle).await;
        }
    }

    /// Reads until an `event: alert` whose data contains `needle` arrives; returns its data.
    pub async fn alert_containing(&mut self, needle: &str, limit: Duration) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            for block in self.text.split("\n\n") {
                if block.lines().any(|l| l == "event: alert") && block.contains(needle) {
                    let data: String = block.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                    return serde_json::from_str(&data).expect("alert json");
                }
            }
            self.read_more(deadline, &format!("alert with {needle}")).await;
        }
    }

    /// Appends the next chunk of the stream to `text`; fails at `deadline` naming `what` was
    /// awaited, or when the stream ends.
    async fn read_more(&mut self, deadline: tokio::time::Instant, what: &str) {
        let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {what} on the stream; got:\n{}", self.text))
            .expect("stream");
        match chunk {
            Some(bytes) => self.text.push_str(&String::from_utf8_lossy(&bytes)),
            None => panic!("stream ended; got:\n{}", self.text),
        }
    }
}
