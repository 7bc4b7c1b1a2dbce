//! Continuous compliance: every limit judged as a regulator would, from the readings ingest
//! accepted and the gap records agents sent.
//!
//! - [`period`]: Bangkok calendar periods, expected readings, availability;
//! - [`judge`]: limits per series (standards, permits), units, O₂ correction, bounds;
//! - [`engine`]: judged periods, late-data revisions, episodes, availability, conditions;
//! - faults (flatline, spike, implausible) and deadlines (the fault-notification clock);
//! - [`Compliance`]: the engine on its own thread. Ingest hands accepted readings over with
//!   [`Compliance::accepted`] (a channel send) and returns; the thread judges each batch and
//!   raises what it found exceeding at once; every `tick_ms` (and on a flush) it ticks,
//!   persists revisions (`<data_dir>/revisions.log`, append-only), reconciles the alert book
//!   with every condition that holds (raising, firing, resolving), and publishes changes as
//!   events (SSE, webhooks).
//!
//! On start the engine is rebuilt from the store and the gap log (deterministic: the same
//! readings give the same periods), so a restart loses no judgement; the alert book dedups
//! by condition, so it raises nothing twice.

pub mod clock;
mod deadlines;
pub mod engine;
mod faults;
mod grab;
pub mod judge;
pub mod period;
#[cfg(test)]
mod tests;
mod timeline;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{
    AlertKind, Condition, CorrectionInfo, DayAvailability, Engine, Episode, Filter, GapInfo, Incident, Measured,
    Outcome, Period, PeriodView, Revision, SeriesId, Settings, Severity,
};
pub use judge::LimitUsed;

use crate::alerts::AlertBook;
use crate::events::Events;

enum Msg {
    /// Readings the store took.
    Readings(Vec<Measured>),
    Gap(GapInfo),
    Correction(CorrectionInfo),
    Forget(i64),
    Flush(mpsc::Sender<()>),
    Stop,
}

/// The engine, its thread and what it feeds.
#[derive(Debug)]
pub struct Compliance {
    engine: Arc<Mutex<Engine>>,
    alerts: Arc<AlertBook>,
    tx: mpsc::SyncSender<Msg>,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Alerts changed at once (an outage's no-data alerts, their resolution) after which the
/// heap is trimmed.
const TRIM_AFTER_ALERTS: usize = 1000;

/// Gives the allocator's free pages back to the system after a burst: the alerts' copies
/// and events are freed by then, but glibc keeps freed memory for reuse (measured with
/// `examples/memory-per-series`: 16 000 alerts opened at once left ≈ 660 B per alert
/// resident beyond what the book holds).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer; it only releases free memory of glibc's heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

/// Reads the revision log back; a torn last line is skipped (and cut when the log is opened).
pub fn load_revisions(path: &Path) -> std::io::Result<Vec<Revision>> {
    crate::jsonl::read(path)
}

/// Batches that may wait for the engine before ingest waits too.
pub const QUEUE_BATCHES: usize = 64;

impl Compliance {
    /// Starts the engine's thread. `engine` is already rebuilt from the store; `key_of` names
    /// the series of a store id (`Store::series_key`).
    pub fn start(
        engine: Engine,
        key_of: impl Fn(u32) -> Option<SeriesId> + Send + 'static,
        alerts: Arc<AlertBook>,
        events: Events,
        revisions_path: PathBuf,
        tick: Duration,
    ) -> std::io::Result<Compliance> {
        let engine = Arc::new(Mutex::new(engine));
        // Bounded: when the engine falls behind, ingest waits here (on its blocking thread,
        // holding its write slot, so admission answers 429/503) instead of queueing readings
        // without limit in memory.
        let (tx, rx) = mpsc::sync_channel(QUEUE_BATCHES);
        let mut revisions_log = crate::jsonl::open(&revisions_path)?;
        let (worker_engine, worker_alerts) = (engine.clone(), alerts.clone());
        let worker = std::thread::Builder::new().name("compliance".into()).spawn(move || {
            let mut next_tick = Instant::now();
            loop {
                let wait = next_tick.saturating_duration_since(Instant::now());
                let mut msgs = Vec::new();
                match rx.recv_timeout(wait) {
                    Ok(m) => msgs.push(m),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
                while msgs.len() < 4096 {
                    match rx.try_recv() {
                        Ok(m) => msgs.push(m),
                        Err(_) => break,
                    }
                }
                let (mut flushes, mut stop) = (Vec::new(), false);
                let mut engine = worker_engine.lock().unwrap_or_else(|p| p.into_inner());
                for m in msgs {
                    match m {
                        Msg::Readings(measured) => engine.ingest_stored(&measured, &key_of),
                        Msg::Gap(g) => engine.gap(g),
                        Msg::Correction(c) => engine.correct(&c),
                        Msg::Forget(cutoff_ns) => engine.forget_before(cutoff_ns),
                        Msg::Flush(done) => flushes.push(done),
                        Msg::Stop => stop = true,
                    }
                }
                // Every condition is found once a tick (a pass over every series and track, with
                // thousands standing during a province-wide outage), not once a batch; what a
                // batch judged exceeding is raised at once.
                let full = Instant::now() >= next_tick || !flushes.is_empty() || stop;
                if full {
                    engine.tick();
                    next_tick = Instant::now() + tick;
                }
                let flashes = engine.take_flashes();
                let now = engine.now_ns();
                let changed = if full {
                    let revisions = engine.take_revisions();
                    let mut conditions = engine.conditions();
                    drop(engine);
                    conditions.extend(flashes);
                    if !revisions.is_empty() {
                        if let Err(error) = crate::jsonl::append_each(&mut revisions_log, &revisions) {
                            tracing::error!(path = %revisions_path.display(), %error, "Cannot save period revisions");
                        }
                        for r in &revisions {
                            events.publish("revision", &r.factory, serde_json::to_value(r).unwrap_or_default());
                        }
                    }
                    worker_alerts.reconcile(&conditions, now)
                } else {
                    drop(engine);
                    if flashes.is_empty() { Ok(Vec::new()) } else { worker_alerts.raise(&flashes, now) }
                };
                match changed {
                    Ok(changed) => {
                        let burst = changed.len() >= TRIM_AFTER_ALERTS;
                        for a in changed {
                            events.publish("alert", &a.factory.clone(), serde_json::to_value(a).unwrap_or_default());
                        }
                        if burst {
                            trim_heap();
                        }
                    }
                    Err(error) => tracing::error!(%error, "Cannot save alerts"),
                }
                for done in flushes {
                    let _ = done.send(());
                }
                if stop {
                    break;
                }
            }
        })?;
        Ok(Compliance { engine, alerts, tx, worker: Mutex::new(Some(worker)) })
    }

    /// Hands readings the store accepted to the engine; returns at once unless
    /// [`QUEUE_BATCHES`] batches already wait, then blocks until the engine takes one: call
    /// it from a blocking thread.
    pub fn accepted(&self, measured: Vec<Measured>) {
        if !measured.is_empty() {
            let _ = self.tx.send(Msg::Readings(measured));
        }
    }

    /// Hands a gap record to the engine; may block like [`Compliance::accepted`].
    pub fn gap(&self, gap: GapInfo) {
        let _ = self.tx.send(Msg::Gap(gap));
    }

    /// Hands a correction to the engine; may block like [`Compliance::accepted`].
    pub fn correct(&self, correction: CorrectionInfo) {
        let _ = self.tx.send(Msg::Correction(correction));
    }

    /// Forgets judgements of readings measured before `cutoff_ns` (the store's retention).
    pub fn forget_before(&self, cutoff_ns: i64) {
        let _ = self.tx.send(Msg::Forget(cutoff_ns));
    }

    /// Waits until everything handed over so far is judged and its alerts are saved.
    pub fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// Finishes what was handed over, then stops the thread (ordered shutdown).
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(worker) = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = worker.join();
        }
    }

    /// The engine, for queries.
    pub fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The alert book.
    pub fn alerts(&self) -> &AlertBook {
        &self.alerts
    }
}
