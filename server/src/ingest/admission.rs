//! Admission under load: at most `max_writes_in_flight` writes are read, decoded and stored
//! at once; up to `max_writes_queued` more wait their turn. One more is answered 429, and
//! one that waited `queue_timeout_ms` 503, both with `Retry-After`, which InfluxDB clients
//! and Telegraf honour by retrying later: the server stays responsive and no accepted
//! write is slowed by a flood of others.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use eitwatch_config::server_config::IngestSection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api::ApiError;

/// The gate every write passes.
#[derive(Debug)]
pub(super) struct Admission {
    slots: Arc<Semaphore>,
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
            queued: AtomicUsize::new(0),
            max_queued: config.max_writes_queued,
            timeout: Duration::from_millis(config.queue_timeout_ms),
            retry_after_s: config.retry_after_s,
        }
    }

    /// A slot, held until the returned permit drops; or 429/503.
    pub(super) async fn enter(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let ahead = self.queued.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.queued);
        if ahead >= self.max_queued {
            tracing::warn!(queued = ahead, "Write refused: the queue is full");
            return Err(ApiError::too_many_requests(
                format!("too many writes waiting ({ahead}); retry after {} s", self.retry_after_s),
                self.retry_after_s,
            ));
        }
        match tokio::time::timeout(self.timeout, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(waited_ms = self.timeout.as_millis() as u64, "Write refused: waited too long");
                Err(ApiError::unavailable(
                    format!(
                        "the server is busy: no write slot within {} ms; retry after {} s",
                        self.timeout.as_millis(),
                        self.retry_after_s
                    ),
                    self.retry_after_s,
                ))
            }
        }
    }
}
