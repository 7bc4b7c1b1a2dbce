//! Admission under load: at most `max_writes_in_flight` writes are read, decoded and stored
//! at once, at most `max_writes_in_flight_per_token` of them with one token; up to
//! `max_writes_queued` more wait their turn. One more is answered 429, and one that waited
//! `queue_timeout_ms` 503, both with `Retry-After`, which InfluxDB clients and Telegraf
//! honour by retrying later: the server stays responsive, no accepted write is slowed by a
//! flood of others, and a writer uploading slowly holds only its own share of the slots.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eitwatch_config::server_config::IngestSection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A write slot, held until dropped: one of the server's and one of its token's.
#[derive(Debug)]
pub struct Permit {
    _slot: OwnedSemaphorePermit,
    _own: OwnedSemaphorePermit,
}

/// Why a write was not admitted; both ask the client to retry after `retry_after_s`.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The queue is full.
    #[error("too many writes waiting ({queued}); retry after {retry_after_s} s")]
    QueueFull {
        /// Writes waiting.
        queued: usize,
        /// When to retry.
        retry_after_s: u64,
    },
    /// No slot came free in time.
    #[error("the server is busy: no write slot within {waited_ms} ms; retry after {retry_after_s} s")]
    Waited {
        /// How long it waited.
        waited_ms: u64,
        /// When to retry.
        retry_after_s: u64,
    },
}

/// The gate every write passes.
#[derive(Debug)]
pub(super) struct Admission {
    slots: Arc<Semaphore>,
    /// Each token's share, by token id (only valid tokens get here: bounded by the tokens).
    per_token: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_token_max: usize,
    queued: AtomicUsize,
    max_queued: usize,
    timeout: Duration,
    retry_after_s: u64,
}

/// Counts a waiting write for as long as it waits (also when its client goes away).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Admission {
    /// A gate as `[ingest]` says.
    pub(super) fn new(config: &IngestSection) -> Admission {
        Admission {
            slots: Arc::new(Semaphore::new(config.max_writes_in_flight)),
            per_token: Mutex::new(HashMap::new()),
            per_token_max: config.max_writes_in_flight_per_token.min(config.max_writes_in_flight),
            queued: AtomicUsize::new(0),
            max_queued: config.max_writes_queued,
            timeout: Duration::from_millis(config.queue_timeout_ms),
            retry_after_s: config.retry_after_s,
        }
    }

    /// A slot for a write with token `token_id`, held until the returned permit drops.
    pub(super) async fn enter(&self, token_id: &str) -> Result<Permit, Refused> {
        let own = self
            .per_token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(token_id.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_token_max)))
            .clone();
        if let Ok(own) = own.clone().try_acquire_owned()
            && let Ok(slot) = self.slots.clone().try_acquire_owned()
        {
            return Ok(Permit { _slot: slot, _own: own });
        }
        let ahead = self.queued.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.queued);
        if ahead >= self.max_queued {
            tracing::warn!(queued = ahead, token = token_id, "Write refused: the queue is full");
            return Err(Refused::QueueFull { queued: ahead, retry_after_s: self.retry_after_s });
        }
        // The token's share first: a writer at its share waits without holding a slot.
        let both = async {
            let own = own.acquire_owned().await?;
            let slot = self.slots.clone().acquire_owned().await?;
            Ok::<_, tokio::sync::AcquireError>(Permit { _slot: slot, _own: own })
        };
        match tokio::time::timeout(self.timeout, both).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => {
                let waited_ms = self.timeout.as_millis() as u64;
                tracing::warn!(waited_ms, token = token_id, "Write refused: waited too long");
                Err(Refused::Waited { waited_ms, retry_after_s: self.retry_after_s })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(in_flight: usize, queued: usize, timeout_ms: u64) -> Arc<Admission> {
        Arc::new(Admission::new(&IngestSection {
            max_writes_in_flight: in_flight,
            max_writes_in_flight_per_token: in_flight,
            max_writes_queued: queued,
            queue_timeout_ms: timeout_ms,
            retry_after_s: 3,
            ..IngestSection::default()
        }))
    }

    #[tokio::test]
    async fn a_full_queue_and_a_long_wait_are_refused() {
        let g = gate(1, 1, 50);
        let held = g.enter("t").await.expect("the slot");
        // The queue has one place: the first waiter takes it and times out, the second is refused.
        let waiter = tokio::spawn({
            let g = g.clone();
            async move { g.enter("t").await.map(drop) }
        });
        while g.queued.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let e = g.enter("t").await.expect_err("queue full");
        assert!(matches!(e, Refused::QueueFull { queued: 1, retry_after_s: 3 }), "{e:?}");
        let e = waiter.await.expect("task").expect_err("waited too long");
        assert!(matches!(e, Refused::Waited { waited_ms: 50, retry_after_s: 3 }), "{e:?}");
        assert_eq!(g.queued.load(Ordering::SeqCst), 0, "a waiter that gave up leaves the queue");
        drop(held);
        let _again = g.enter("t").await.expect("the slot is free again");
    }

    #[tokio::test]
    async fn a_queued_write_gets_the_slot_when_it_frees() {
        let g = gate(1, 1, 10_000);
        let held = g.enter("t").await.expect("the slot");
        let waiter = tokio::spawn({
            let g = g.clone();
            async move { g.enter("t").await.is_ok() }
        });
        while g.queued.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        drop(held);
        assert!(waiter.await.expect("task"));
    }

    #[tokio::test]
    async fn one_token_holds_only_its_share_of_the_slots() {
        let g = Arc::new(Admission::new(&IngestSection {
            max_writes_in_flight: 4,
            max_writes_in_flight_per_token: 2,
            max_writes_queued: 8,
            queue_timeout_ms: 10_000,
            ..IngestSection::default()
        }));
        let slow = [g.enter("slow").await.expect("first"), g.enter("slow").await.expect("second")];
        let third = tokio::spawn({
            let g = g.clone();
            async move { g.enter("slow").await.is_ok() }
        });
        while g.queued.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let others = [g.enter("a").await.expect("a slot left"), g.enter("b").await.expect("a slot left")];
        assert_eq!(g.slots.available_permits(), 0);
        drop(slow);
        assert!(third.await.expect("task"), "the slow token's third write gets its turn");
        drop(others);
    }
}
