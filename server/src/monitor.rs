//! The monitor: the compliance engine on its own thread, and what its results feed.
//!
//! Ingest hands accepted readings over with [`Monitor::accepted`] (a channel send) and
//! returns. The thread judges each batch and raises at once what the batch judged exceeding
//! (the engine's flashes); every `tick_ms` (and on a flush) it ticks the engine, appends the
//! period revisions to `<data_dir>/revisions.log`, reconciles the alert book with every
//! condition that holds (raising, firing, resolving), and publishes what changed as events
//! (SSE, webhooks). The engine knows nothing of alerts or events: it returns conditions and
//! revisions, and this module routes them.
//!
//! On start, [`rebuild`] replays the store, the gap log and the corrections into a fresh
//! engine (deterministic: the same readings give the same periods) and reconciles the alert
//! book with what holds, which deduplicates by condition, so a restart raises nothing twice.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::alerts::{Alert, AlertBook};
use crate::compliance::{Condition, CorrectionInfo, Engine, GapInfo, Measured, Revision, SeriesId};
use crate::events::Events;

/// Batches that may wait for the engine before ingest waits too.
pub const QUEUE_BATCHES: usize = 64;

/// Alerts changed at once (an outage's no-data alerts, their resolution) after which the
/// heap is trimmed.
const TRIM_AFTER_ALERTS: usize = 1000;

/// Gives the allocator's free pages back to the system after a burst: the alerts' copies
/// and events are freed by then, but glibc keeps freed memory for reuse (see
/// `examples/memory-per-series`, which measures what an alert burst leaves resident).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer; it only releases free memory of glibc's heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What the server's parts hand the engine's thread.
enum Msg {
    /// Readings the store took.
    Readings(Vec<Measured>),
    Gap(GapInfo),
    Correction(CorrectionInfo),
    Forget(i64),
    Flush(mpsc::Sender<()>),
    Stop,
}

/// The engine, its thread, and the alert book and event stream it feeds.
#[derive(Debug)]
pub struct Monitor {
    engine: Arc<Mutex<Engine>>,
    alerts: Arc<AlertBook>,
    tx: mpsc::SyncSender<Msg>,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Where the engine's results go: the alert book, the event stream, the revision log.
struct Feed {
    alerts: Arc<AlertBook>,
    events: Events,
    revisions_log: std::fs::File,
    revisions_path: PathBuf,
}

impl Feed {
    /// Records and publishes revisions.
    fn revisions(&mut self, revisions: &[Revision]) {
        if revisions.is_empty() {
            return;
        }
        if let Err(error) = crate::jsonl::append_each(&mut self.revisions_log, revisions) {
            tracing::error!(path = %self.revisions_path.display(), %error, "Cannot save period revisions");
        }
        for r in revisions {
            self.events.publish("revision", &r.factory, serde_json::to_value(r).unwrap_or_default());
        }
    }

    /// Brings the alert book in line with `conditions`: with `all`, they are every condition
    /// that holds (what is not among them resolves); otherwise only new ones are raised.
    fn alerts(&self, conditions: &[Condition], all: bool, now_ns: i64) {
        let changed: std::io::Result<Vec<Alert>> = match all {
            true => self.alerts.reconcile(conditions, now_ns),
            false if conditions.is_empty() => Ok(Vec::new()),
            false => self.alerts.raise(conditions, now_ns),
        };
        match changed {
            Ok(changed) => {
                let burst = changed.len() >= TRIM_AFTER_ALERTS;
                for a in changed {
                    self.events.publish("alert", &a.factory.clone(), serde_json::to_value(a).unwrap_or_default());
                }
                if burst {
                    trim_heap();
                }
            }
            Err(error) => tracing::error!(%error, "Cannot save alerts"),
        }
    }
}

impl Monitor {
    /// Starts the engine's thread. `engine` is already rebuilt ([`rebuild`]); `key_of` names
    /// the series of a store id (`Store::series_key`).
    pub fn start(
        engine: Engine,
        key_of: impl Fn(u32) -> Option<SeriesId> + Send + 'static,
        alerts: Arc<AlertBook>,
        events: Events,
        revisions_path: PathBuf,
        tick: Duration,
    ) -> std::io::Result<Monitor> {
        let engine = Arc::new(Mutex::new(engine));
        // Bounded: when the engine falls behind, ingest waits here (on its blocking thread,
        // holding its write slot, so admission answers 429/503) instead of queueing readings
        // without limit in memory.
        let (tx, rx) = mpsc::sync_channel(QUEUE_BATCHES);
        let mut feed = Feed {
            alerts: alerts.clone(),
            events,
            revisions_log: crate::jsonl::open(&revisions_path)?,
            revisions_path,
        };
        let worker_engine = engine.clone();
        let worker = std::thread::Builder::new().name("compliance".into()).spawn(move || {
            let mut next_tick = Instant::now();
            loop {
                let msgs = receive(&rx, next_tick.saturating_duration_since(Instant::now()));
                let Some(msgs) = msgs else { break };
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
                let now_ns = engine.now_ns();
                let (conditions, revisions) = if full {
                    let mut conditions = engine.conditions();
                    conditions.extend(flashes);
                    (conditions, engine.take_revisions())
                } else {
                    (flashes, Vec::new())
                };
                drop(engine);
                feed.revisions(&revisions);
                feed.alerts(&conditions, full, now_ns);
                for done in flushes {
                    let _ = done.send(());
                }
                if stop {
                    break;
                }
            }
        })?;
        Ok(Monitor { engine, alerts, tx, worker: Mutex::new(Some(worker)) })
    }

    /// Hands readings the store accepted to the engine; returns at once unless
    /// [`QUEUE_BATCHES`] batches already wait, then blocks until the engine takes one: call
    /// it from a blocking thread.
    pub fn accepted(&self, measured: Vec<Measured>) {
        if !measured.is_empty() {
            let _ = self.tx.send(Msg::Readings(measured));
        }
    }

    /// Hands a gap record to the engine; may block like [`Monitor::accepted`].
    pub fn gap(&self, gap: GapInfo) {
        let _ = self.tx.send(Msg::Gap(gap));
    }

    /// Hands a correction to the engine; may block like [`Monitor::accepted`].
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

/// The next message, waiting at most `wait`, and whatever else is queued (up to 4096);
/// `None` once every sender is gone.
fn receive(rx: &mpsc::Receiver<Msg>, wait: Duration) -> Option<Vec<Msg>> {
    let mut msgs = Vec::new();
    match rx.recv_timeout(wait) {
        Ok(m) => msgs.push(m),
        Err(mpsc::RecvTimeoutError::Timeout) => {}
        Err(mpsc::RecvTimeoutError::Disconnected) => return None,
    }
    while msgs.len() < 4096 {
        match rx.try_recv() {
            Ok(m) => msgs.push(m),
            Err(_) => break,
        }
    }
    Some(msgs)
}

/// Rebuilds the engine's judgements from what the data directory holds (every stored
/// reading, a factory at a time so the store is never copied whole; the gap records; the
/// corrections), then reconciles the alert book with the conditions that hold, before the
/// first request. Returns how many readings were replayed.
pub fn rebuild(
    engine: &mut Engine,
    registry: &eitwatch_config::site::Registry,
    store: &crate::store::Store,
    gaps: &crate::gaps::GapLog,
    corrections: &crate::corrections::CorrectionLog,
    alerts: &AlertBook,
    now_ns: i64,
) -> std::io::Result<usize> {
    engine.set_replaying(true);
    let mut replayed = 0usize;
    for factory in registry.areas().iter().flat_map(|a| a.factory.iter()) {
        let readings: Vec<_> = store
            .query(|k| *k.factory == *factory.id, i64::MIN, i64::MAX)
            .into_iter()
            .map(|(k, t, s)| k.reading(t, &s))
            .collect();
        replayed += readings.len();
        engine.ingest(&readings);
    }
    for g in gaps.list(|_| true) {
        engine.gap(crate::gaps::gap_info(&g));
    }
    for c in corrections.list(|_| true) {
        engine.correct(&crate::corrections::correction_info(&c));
    }
    engine.tick();
    engine.set_replaying(false);
    engine.take_flashes();
    alerts.reconcile(&engine.conditions(), now_ns)?;
    Ok(replayed)
}
