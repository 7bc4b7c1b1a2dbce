//! Readings waiting for delivery, oldest first.
//!
//! This first cut keeps them in memory: a reading is safe from a lost link or a server
//! restart, not from an agent crash or power cut. The durable on-disk log replaces it
//! behind the same three calls (`append`, `peek`, `commit`).

use std::collections::VecDeque;
use std::sync::Mutex;

use eitwatch_config::Reading;
use tokio::sync::Notify;

/// The queue between sources and uplink.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: Mutex<VecDeque<Reading>>,
    appended: Notify,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Queues readings; a source may acknowledge them to its device or broker afterwards.
    pub fn append(&self, readings: impl IntoIterator<Item = Reading>) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).extend(readings);
        self.appended.notify_waiters();
        self.appended.notify_one();
    }

    /// Up to `max` of the oldest undelivered readings, left in place.
    pub fn peek(&self, max: usize) -> Vec<Reading> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).iter().take(max).cloned().collect()
    }

    /// Removes the `n` oldest readings: they are delivered.
    pub fn commit(&self, n: usize) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let n = n.min(q.len());
        q.drain(..n);
    }

    /// Readings waiting.
    pub fn len(&self) -> usize {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves after the next append (or at once, if one raced this call).
    pub async fn appended(&self) {
        self.appended.notified().await;
    }
}
