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
//! Every `[compliance] checkpoint_interval_s`, and at a clean stop, the engine's state is
//! checkpointed ([`crate::compliance::checkpoint`]) with how far it judged the store's log
//! and the gap and correction logs; the store then keeps the log from that position
//! (`Store::hold("compliance", …)`). The position is exact: ingest stores a batch and hands
//! it over under a shared gate ([`Monitor::admit`]), and the checkpoint takes its position
//! under the gate exclusively, so every reading before the position is in the engine's
//! queue ahead of the checkpoint request and none after it is. On the engine's thread, in
//! queue order, the closed days whose judgement day files are missing or stale are written
//! (`days`) and those older than `recent_days` leave memory (`evicted`, both in `evict_ms`),
//! and the open state is encoded (`encode_ms`): writing the days there means a day is never
//! wanted back before its file exists. The checkpoint file is written on the checkpoint
//! thread, which then deletes the day files it no longer names.
//!
//! On start, [`resume`] loads the checkpoint and judges what the logs hold after it (the
//! store's log through [`crate::store::replay`]). Without a usable checkpoint (a data
//! directory of an earlier release, a damaged file, changed limits) it falls back to
//! [`rebuild`]: every stored reading, gap and correction into a fresh engine, once, then a
//! checkpoint. Either way the engine is deterministic (the same readings give the same
//! periods) and the alert book is reconciled with what holds, which deduplicates by
//! condition, so a restart raises nothing twice.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use crate::alerts::{Alert, AlertBook};
use crate::compliance::checkpoint::{self, Applied, CheckpointError};
use crate::compliance::days::DayFiles;
use crate::compliance::{Condition, CorrectionInfo, Engine, GapInfo, Measured, Revision, SeriesId};
use crate::corrections::CorrectionLog;
use crate::events::Events;
use crate::gaps::GapLog;
use crate::store::Store;
use crate::store::replay::Reader;

/// The store's name for the engine's hold on the log.
const HOLD: &str = "compliance";

/// Readings replayed at once at a start.
const REPLAY_BATCH: usize = 65_536;

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
    /// Write the old closed days out, encode the state, which has judged `Applied`, and
    /// send the bytes back with the day files the checkpoint names.
    Checkpoint(Applied, mpsc::Sender<(Vec<u8>, BTreeMap<i64, u32>)>),
    Stop,
}

/// Where and how often the engine's state is checkpointed, and what it is checkpointed with.
#[derive(Debug, Clone)]
pub struct Checkpointing {
    /// The checkpoint file (`<data_dir>/compliance.checkpoint`).
    pub path: PathBuf,
    /// How often.
    pub every: Duration,
    /// The store, for its log position and the hold.
    pub store: Arc<Store>,
    /// The gap log, for how many records were handed over.
    pub gaps: Arc<GapLog>,
    /// The correction log, likewise.
    pub corrections: Arc<CorrectionLog>,
    /// The judgement days: those the checkpoint no longer names are deleted after it.
    pub day_files: Arc<DayFiles>,
}

/// What the checkpoint thread shares with the monitor.
#[derive(Debug)]
struct Checkpointer {
    config: Checkpointing,
    gate: Arc<RwLock<()>>,
    tx: mpsc::SyncSender<Msg>,
    /// One checkpoint at a time (the thread's and the stop's).
    busy: Mutex<()>,
}

impl Checkpointer {
    /// Checkpoints now: takes the position with every write between storing and handing
    /// over shut out, has the engine encode its state in its queue's order, writes it, and
    /// moves the store's hold there.
    fn run(&self) -> Result<Applied, CheckpointError> {
        self.run_with(|_| Ok(()), |_, _, _| Ok(())).map(|(applied, ())| applied)
    }

    /// [`Checkpointer::run`], calling `at` with the position under the gate (nothing is
    /// stored meanwhile) and `written` with the checkpoint's bytes and the day files it
    /// names once they are on disk, before the day files it no longer names are deleted.
    fn run_with<T>(
        &self,
        at: impl FnOnce(&Applied) -> Result<T, CheckpointError>,
        written: impl FnOnce(&[u8], &BTreeMap<i64, u32>, &DayFiles) -> Result<(), CheckpointError>,
    ) -> Result<(Applied, T), CheckpointError> {
        let _one = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let (reply, bytes) = mpsc::channel();
        let (applied, taken) = {
            let _shut = self.gate.write().unwrap_or_else(|p| p.into_inner());
            let applied = Applied {
                store: *self.config.store.durable().borrow(),
                gaps: self.config.gaps.len() as u64,
                corrections: self.config.corrections.len() as u64,
            };
            let taken = at(&applied)?;
            let io = |e| CheckpointError::Io { path: self.config.path.clone(), source: std::io::Error::other(e) };
            self.tx.send(Msg::Checkpoint(applied, reply)).map_err(|_| io("the engine's thread has stopped"))?;
            (applied, taken)
        };
        let (bytes, keep) = bytes.recv().map_err(|_| CheckpointError::Io {
            path: self.config.path.clone(),
            source: std::io::Error::other("the engine's thread stopped before the checkpoint"),
        })?;
        checkpoint::write_atomic(&self.config.path, &bytes)?;
        written(&bytes, &keep, &self.config.day_files)?;
        // Older generations, and days retention dropped: the checkpoint no longer names them.
        match self.config.day_files.remove_others(&keep) {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(removed, "Judgement day files no longer needed deleted"),
            Err(error) => tracing::warn!(%error, "Cannot delete judgement day files no longer needed"),
        }
        self.config.store.hold(HOLD, applied.store);
        tracing::debug!(
            bytes = bytes.len(),
            segment = applied.store.segment,
            offset = applied.store.offset,
            "Compliance checkpoint written"
        );
        Ok((applied, taken))
    }
}

/// The engine, its thread, and the alert book and event stream it feeds.
#[derive(Debug)]
pub struct Monitor {
    engine: Arc<Mutex<Engine>>,
    alerts: Arc<AlertBook>,
    tx: mpsc::SyncSender<Msg>,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Held shared from storing to handing over, exclusively to take a checkpoint's position.
    gate: Arc<RwLock<()>>,
    checkpointer: Option<Arc<Checkpointer>>,
    /// The checkpoint thread and what stops it.
    ticker: Mutex<Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
    progress: Arc<Progress>,
}

/// The newest measurement time handed over and the newest judged, for the compliance lag
/// (`i64::MIN` until the first).
#[derive(Debug)]
struct Progress {
    accepted_ns: AtomicI64,
    judged_ns: AtomicI64,
}

/// The newest measurement time of a batch (`i64::MIN` for none).
fn newest(measured: &[Measured]) -> i64 {
    measured.iter().map(|m| m.time_ns).max().unwrap_or(i64::MIN)
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
    /// Starts the engine's thread. `engine` is already resumed or rebuilt ([`resume`]);
    /// `key_of` names the series of a store id (`Store::series_key`); with `checkpointing`,
    /// a thread checkpoints the engine as often as it says.
    pub fn start(
        engine: Engine,
        key_of: impl Fn(u32) -> Option<SeriesId> + Send + 'static,
        alerts: Arc<AlertBook>,
        events: Events,
        revisions_path: PathBuf,
        tick: Duration,
        checkpointing: Option<Checkpointing>,
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
        let progress =
            Arc::new(Progress { accepted_ns: AtomicI64::new(i64::MIN), judged_ns: AtomicI64::new(i64::MIN) });
        let judged = progress.clone();
        let day_files = checkpointing.as_ref().map(|c| c.day_files.clone());
        let worker = std::thread::Builder::new().name("compliance".into()).spawn(move || {
            let mut next_tick = Instant::now();
            loop {
                let msgs = receive(&rx, next_tick.saturating_duration_since(Instant::now()));
                let Some(msgs) = msgs else { break };
                let (mut flushes, mut stop) = (Vec::new(), false);
                let mut engine = worker_engine.lock().unwrap_or_else(|p| p.into_inner());
                for m in msgs {
                    match m {
                        Msg::Readings(measured) => {
                            engine.ingest_stored(&measured, &key_of);
                            judged.judged_ns.fetch_max(newest(&measured), Ordering::Relaxed);
                        }
                        Msg::Gap(g) => engine.gap(g),
                        Msg::Correction(c) => engine.correct(&c),
                        Msg::Forget(cutoff_ns) => engine.forget_before(cutoff_ns),
                        Msg::Flush(done) => flushes.push(done),
                        Msg::Checkpoint(applied, reply) => {
                            // Revisions made so far are logged first: the state saved has them.
                            feed.revisions(&engine.take_revisions());
                            let started = Instant::now();
                            let (days, evicted) = write_days(&mut engine, day_files.as_deref());
                            let evict_ms = started.elapsed().as_secs_f64() * 1e3;
                            let started = Instant::now();
                            let bytes = engine.checkpoint(&applied);
                            tracing::info!(
                                bytes = bytes.len(),
                                days,
                                evicted,
                                evict_ms,
                                encode_ms = started.elapsed().as_secs_f64() * 1e3,
                                "Compliance state encoded for its checkpoint"
                            );
                            let _ = reply.send((bytes, engine.named_days()));
                        }
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
        let gate = Arc::new(RwLock::new(()));
        let checkpointer = checkpointing
            .map(|config| Arc::new(Checkpointer { config, gate: gate.clone(), tx: tx.clone(), busy: Mutex::new(()) }));
        let ticker = match &checkpointer {
            None => None,
            Some(c) => {
                let (stop, stopped) = mpsc::channel::<()>();
                let c = c.clone();
                let every = c.config.every;
                let thread = std::thread::Builder::new().name("compliance-checkpoint".into()).spawn(move || {
                    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                        if let Err(error) = c.run() {
                            tracing::error!(%error, "Cannot checkpoint the compliance engine; a start will replay more of the log");
                        }
                    }
                })?;
                Some((stop, thread))
            }
        };
        Ok(Monitor {
            engine,
            alerts,
            tx,
            worker: Mutex::new(Some(worker)),
            gate,
            checkpointer,
            ticker: Mutex::new(ticker),
            progress,
        })
    }

    /// A shared hold on the gate between storing and handing over: take it before storing
    /// readings (or gap records, or corrections) and keep it until they are handed to the
    /// engine, so that a checkpoint's log position never falls between the two.
    pub fn admit(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Checkpoints the engine now (the checkpoint thread does every interval); returns how
    /// far the checkpoint had judged, `None` without checkpointing.
    pub fn checkpoint(&self) -> Result<Option<Applied>, CheckpointError> {
        self.checkpointer.as_ref().map(|c| c.run()).transpose()
    }

    /// Checkpoints the engine for a backup: `at` runs with the checkpoint's position while
    /// nothing is stored (so a store snapshot taken there holds exactly what the engine
    /// judged), `written` with the checkpoint's bytes and the judgement day files it names
    /// (day start → generation) while they are sure to be on disk.
    pub fn checkpoint_with<T>(
        &self,
        at: impl FnOnce(&Applied) -> Result<T, CheckpointError>,
        written: impl FnOnce(&[u8], &BTreeMap<i64, u32>, &DayFiles) -> Result<(), CheckpointError>,
    ) -> Result<Option<(Applied, T)>, CheckpointError> {
        self.checkpointer.as_ref().map(|c| c.run_with(at, written)).transpose()
    }

    /// Hands readings the store accepted to the engine; returns at once unless
    /// [`QUEUE_BATCHES`] batches already wait, then blocks until the engine takes one: call
    /// it from a blocking thread.
    pub fn accepted(&self, measured: Vec<Measured>) {
        if !measured.is_empty() {
            self.progress.accepted_ns.fetch_max(newest(&measured), Ordering::Relaxed);
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

    /// Finishes what was handed over, checkpoints, then stops the thread (ordered shutdown).
    pub fn stop(&self) {
        if let Some((stop, thread)) = self.ticker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = stop.send(());
            let _ = thread.join();
            if let Err(error) = self.checkpoint() {
                tracing::error!(%error, "Cannot checkpoint the compliance engine at shutdown; the next start replays more of the log");
            }
        }
        let _ = self.tx.send(Msg::Stop);
        if let Some(worker) = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = worker.join();
        }
    }

    /// How far the judgement is behind ingest: the newest measurement time handed over
    /// minus the newest judged, in seconds (0 when it has judged the newest one).
    pub fn lag_s(&self) -> f64 {
        let accepted = self.progress.accepted_ns.load(Ordering::Relaxed);
        let judged = self.progress.judged_ns.load(Ordering::Relaxed);
        match accepted > judged {
            true if judged == i64::MIN => 0.0,
            true => (accepted - judged) as f64 / 1e9,
            false => 0.0,
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

/// Writes the engine's closed days whose files are missing or stale (on the engine's thread,
/// so that a day is never wanted back before its file exists), then drops from memory the
/// old ones their files hold. A day whose file cannot be written stays in the checkpoint.
/// Returns how many files were written and how many days left memory.
fn write_days(engine: &mut Engine, files: Option<&DayFiles>) -> (usize, usize) {
    let Some(files) = files else { return (0, 0) };
    let mut written = 0;
    for (day, generation, bytes) in engine.days_to_write() {
        match files.write(day, generation, &bytes) {
            Ok(()) => {
                engine.day_written(day, generation, &bytes);
                written += 1;
            }
            Err(error) => tracing::error!(%error, "Cannot write a judgement day; the checkpoint holds it instead"),
        }
    }
    (written, engine.evict())
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

/// What the engine is started from.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The site registry.
    pub registry: &'a eitwatch_config::site::Registry,
    /// The readings.
    pub store: &'a Store,
    /// The gap records.
    pub gaps: &'a GapLog,
    /// The corrections.
    pub corrections: &'a CorrectionLog,
    /// The alert book, reconciled with what holds once the engine is ready.
    pub alerts: &'a AlertBook,
}

/// How the engine was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// From its checkpoint, judging the readings stored after it.
    Resumed {
        /// Readings judged after the checkpoint.
        replayed: usize,
    },
    /// From every stored reading (no usable checkpoint): checkpoint it at once.
    Rebuilt {
        /// Readings judged.
        replayed: usize,
    },
}

/// The engine as the data directory leaves it: `make` gives a fresh one (revisions loaded);
/// it takes the checkpoint at `checkpoint_path` and judges what the logs hold after it, or,
/// without a usable checkpoint, every stored reading ([`rebuild`]). The alert book is then
/// reconciled with what holds. The store holds its log from the checkpoint's position.
pub fn resume(
    make: impl Fn() -> Engine,
    checkpoint_path: &std::path::Path,
    from: Sources<'_>,
    now_ns: i64,
) -> std::io::Result<(Engine, Started)> {
    let path = checkpoint_path.display();
    let bytes = checkpoint::read(checkpoint_path).unwrap_or_else(|error| {
        tracing::warn!(%error, "Cannot read the compliance checkpoint; judging every stored reading again");
        None
    });
    match bytes {
        None => tracing::info!(
            %path,
            "No compliance checkpoint (a data directory of an earlier release, or a new one): judging every stored reading once, then checkpointing"
        ),
        Some(bytes) => {
            let mut engine = make();
            let resumed = engine.restore(&bytes).and_then(|applied| {
                from.store.hold(HOLD, applied.store);
                replay(&mut engine, applied, from)
            });
            match resumed {
                Ok(replayed) => {
                    finish(&mut engine, from.alerts, now_ns)?;
                    return Ok((engine, Started::Resumed { replayed }));
                }
                Err(reason) => tracing::warn!(
                    %path,
                    %reason,
                    "The compliance checkpoint cannot be used: judging every stored reading again"
                ),
            }
        }
    }
    let mut engine = make();
    let replayed = rebuild(&mut engine, from.registry, from.store, from.gaps, from.corrections, from.alerts, now_ns)?;
    Ok((engine, Started::Rebuilt { replayed }))
}

/// Judges what the logs hold after `applied` (the readings, as the log has them; the gap
/// records and corrections after the first ones), as a replay (no revisions, no flashes).
fn replay(engine: &mut Engine, applied: Applied, from: Sources<'_>) -> Result<usize, String> {
    engine.set_replaying(true);
    let until = *from.store.durable().borrow();
    let mut reader = Reader::new(from.store.dir());
    let (mut at, mut replayed) = (applied.store, 0usize);
    while let Some(batch) = reader.next_batch(at, until, REPLAY_BATCH).map_err(|e| e.to_string())? {
        replayed += batch.readings.len();
        engine.ingest(&batch.readings);
        at = batch.next;
    }
    if reader.lost() {
        return Err(format!(
            "the store's log from segment {} byte {} was deleted before the engine judged it",
            applied.store.segment, applied.store.offset
        ));
    }
    let gaps = from.gaps.list(|_| true);
    let corrections = from.corrections.list(|_| true);
    if (gaps.len() as u64) < applied.gaps || (corrections.len() as u64) < applied.corrections {
        return Err(format!(
            "it had judged {} gap records and {} corrections, the logs hold {} and {}",
            applied.gaps,
            applied.corrections,
            gaps.len(),
            corrections.len()
        ));
    }
    for g in gaps.into_iter().skip(applied.gaps as usize) {
        engine.gap(crate::gaps::gap_info(&g));
    }
    for c in corrections.into_iter().skip(applied.corrections as usize) {
        engine.correct(&crate::corrections::correction_info(&c));
    }
    Ok(replayed)
}

/// Closes what the clock passed, ends the replay and reconciles the alert book.
fn finish(engine: &mut Engine, alerts: &AlertBook, now_ns: i64) -> std::io::Result<()> {
    engine.tick();
    engine.set_replaying(false);
    engine.take_flashes();
    alerts.reconcile(&engine.conditions(), now_ns)?;
    Ok(())
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
    finish(engine, alerts, now_ns)?;
    Ok(replayed)
}
