//! Live events: alert changes and period revisions, broadcast to the live stream
//! (`GET /api/v1/events`) and to the webhooks. A subscriber too slow to keep up learns how
//! many it missed; the API has the full history.

use std::sync::Arc;

use tokio::sync::broadcast;

/// One event.
#[derive(Debug, Clone)]
pub struct Event {
    /// `alert` or `revision`.
    pub kind: &'static str,
    /// The factory it concerns (for token scopes).
    pub factory: String,
    /// The JSON payload.
    pub data: Arc<str>,
}

/// The broadcast of events.
#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    /// With room for a burst of 4096 events per subscriber.
    pub fn new() -> Events {
        Events { tx: broadcast::channel(4096).0 }
    }

    /// Publishes an event (no subscriber: dropped).
    pub fn publish(&self, kind: &'static str, factory: &str, data: serde_json::Value) {
        let _ = self.tx.send(Event { kind, factory: factory.to_string(), data: data.to_string().into() });
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
