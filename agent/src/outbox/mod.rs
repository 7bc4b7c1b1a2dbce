//! The outbox: readings kept on local disk from the moment a source hands them over until
//! every sink has taken them, across agent crashes, power cuts and outages.
//!
//! ## Why a log of our own
//! The workload is one writer appending small records in order and a few readers (one per
//! sink) consuming them in order: a segmented append-only log does exactly that with one
//! sequential write and one `fdatasync` per group of appends, and frees space by deleting
//! whole files. An embedded key-value engine (sled, redb, rocksdb) would add a B-tree or
//! LSM, compaction and its own crash story for no gain, and its crash behaviour would still
//! have to be tested here. The crash tests: `tests/tests/delivery.rs` SIGKILLs the agent 20
//! times mid-stream and finds the store exact; `tests.rs` cuts, tears and corrupts files as
//! power cuts and damage do. `scripts/bench-outbox.sh` measures durable appends beside the
//! disk's own sequential write + fdatasync, and how fast a large backlog opens; its latest
//! figures are in `docs/benchmarks.md`.
//!
//! ## On disk (`<data_dir>/outbox/`)
//! - `<first id, 20 digits>.seg`: segment files, in id order. Each starts with a 24-byte
//!   header: magic `EWOUTBOX`, format version (u32 LE, 1), reserved (u32, 0), the id of its
//!   first record (u64 LE, equal to the file name). Records follow back to back:
//!   `[payload length: u32 LE][CRC-32 of id + payload: u32 LE][id: u64 LE][payload]`.
//!   The payload of a reading: tag 1, kind, quality, source, below-detection-limit flag
//!   (one byte each), time in ns (i64 LE), value (f64 bits LE), then factory, point and
//!   parameter (each u16 LE length + UTF-8).
//! - The active segment is preallocated to `segment_bytes` (`fallocate`; its length is then
//!   `segment_bytes` and the unused part reads as zeros), so that the `fdatasync` of an
//!   append need not also log the file's new size: at a steady trickle of small appends the
//!   sync is a large share of the agent's CPU, and preallocation makes each one cheaper
//!   (measured in `docs/benchmarks.md`; writing zeros instead of `fallocate` was no better). An
//!   all-zero frame therefore ends the records. A segment gives its unused space back when
//!   it is closed and when the agent stops.
//! - `ledger.json`: per sink, its cursor (every id below is settled), the live range
//!   delivered ahead of the backlog after an outage, its counters (delivered, retried,
//!   dead-lettered, dropped) and the gap records still to deliver to it. Replaced whole:
//!   written to `ledger.json.tmp`, fsynced, renamed over, directory fsynced.
//!
//! ## Invariants
//! - Ids start at 0 and increase by one per reading, with no holes within a segment;
//!   a segment's ids continue where the previous one ended.
//! - [`Outbox::append`] returns only after its records are written and `fdatasync`ed (and,
//!   for a new segment, after the file and directory entry are synced). Concurrent appends
//!   share one write and one fsync (group commit) in a writer thread: the guarantee is never
//!   loosened for speed. A source acknowledges readings (MQTT ack, end of a Modbus poll)
//!   only after `append` returned.
//! - A failed write or fsync fails every append of its group and of those queued behind it
//!   (nothing of theirs is kept: the file is cut back), and their ids are handed out again.
//! - A segment is closed once a group commit takes it past `segment_bytes`; a closed segment
//!   is deleted when every sink's cursor is past its last id (the ledger is saved first).
//! - Bounded by `max_bytes`: before a write would exceed it, the oldest closed segment is
//!   dropped. For each sink, the readings of it that sink had not delivered become gap
//!   records (per point: parameters, time range, count, reason "agent buffer overflow") in
//!   the ledger, its `dropped` counter grows by their count, and its cursor moves past the
//!   segment; the ledger is saved before the file is deleted. So for every sink
//!   `appended = delivered + dead_lettered + dropped + depth` (a reading dropped while its
//!   batch was in flight is counted once, as dropped).
//!
//! ## Recovery at open
//! Every segment is scanned and each record's length, checksum and id checked, and the
//! bytes after the last record must all be zeros (preallocated space; a write reaches the
//! disk in any order, so zeros right after the last record prove nothing about the rest).
//! In the last segment, the first bad record and everything after it, or bytes other than
//! zeros after the last record, are a torn tail (a write cut short by a crash or power cut):
//! it was never fsynced, so never acknowledged, and is cut (logged with the bytes cut: up
//! to the last byte that is not zero) and the space preallocated again, so that only zeros
//! follow the last record before the next append. Nothing before it is touched: records
//! are only ever appended, so a crash cannot damage what an earlier fsync made durable.
//! (Media damage to a durable record of the last segment cannot be told from a torn write
//! by this scan: it is cut with what follows it, and logged the same way.) A bad record in
//! a closed segment is damage, not a torn write: logged as an error, the rest of that
//! segment is skipped and counted as dropped for the sinks that had not delivered it; a
//! segment with a bad header is renamed `*.corrupt` and kept for inspection. The agent never
//! needs its buffer deleted to start.

mod ledger;
mod segment;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write as _};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use eitwatch_config::Reading;
use serde::Serialize;
use tokio::sync::{oneshot, watch};

pub use ledger::{Gap, SinkLedger};
use segment::{HEADER_LEN, INDEX_EVERY, Next, Reader};

/// The reason gap records carry when the outbox was full.
pub const OVERFLOW_REASON: &str = "agent buffer overflow";

/// Size limits.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Bytes of segments kept at most.
    pub max_bytes: u64,
    /// A segment is closed past this size.
    pub segment_bytes: u64,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// A file of the outbox.
    #[error("outbox {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A file that is not what it should be.
    #[error("outbox {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The write or fsync of this append failed; nothing of it is kept.
    #[error("outbox write failed, the readings were not kept: {0}")]
    Write(String),
    /// The outbox was closed.
    #[error("the outbox is closed")]
    Closed,
    /// No such sink in the ledger.
    #[error("no sink \"{0}\" in the outbox ledger")]
    UnknownSink(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OutboxError + '_ {
    move |source| OutboxError::Io { path: path.to_path_buf(), source }
}

/// What opening found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Segment files in use.
    pub segments: usize,
    /// Readings on disk.
    pub readings: u64,
    /// Bytes cut from a torn tail.
    pub cut_bytes: u64,
    /// Readings lost to damage in closed segments (bad records, bad headers).
    pub lost_readings: u64,
    /// Fully delivered segments deleted at open (left by a crash before their deletion).
    pub reclaimed_segments: usize,
    /// Time the scan took.
    pub elapsed_ms: u64,
}

/// The state of the outbox and of each sink, for `/metrics` and `status`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Readings appended since the outbox was created (the next id).
    pub appended: u64,
    /// Oldest id still on disk.
    pub oldest_id: u64,
    /// Bytes of segment files.
    pub bytes: u64,
    /// The configured bound.
    pub max_bytes: u64,
    /// Segment files.
    pub segments: usize,
    /// Appends that failed (write or fsync errors) since start.
    pub append_errors: u64,
    /// Group commits (one write + fdatasync each) since start.
    pub commits: u64,
    /// Per sink.
    pub sinks: Vec<SinkStatus>,
}

/// One sink's side of [`Status`].
#[derive(Debug, Clone, Serialize)]
pub struct SinkStatus {
    /// Sink name.
    pub name: String,
    /// Readings waiting.
    pub depth: u64,
    /// Time of the oldest reading waiting, ns.
    pub oldest_undelivered_ns: Option<i64>,
    /// Cursor, counters, gaps.
    pub ledger: SinkLedger,
}

#[derive(Debug, Clone)]
struct SegMeta {
    first_id: u64,
    end_id: u64,
    len: u64,
    path: PathBuf,
    index: Vec<(u64, u64)>,
}

impl SegMeta {
    fn without_index(&self) -> SegMeta {
        SegMeta { first_id: self.first_id, end_id: self.end_id, len: self.len, path: self.path.clone(), index: vec![] }
    }

    /// Offset of a record at or before `id`, and its id.
    fn seek_point(&self, id: u64) -> (u64, u64) {
        let i = self.index.partition_point(|&(eid, _)| eid <= id);
        if i == 0 { (self.first_id, HEADER_LEN) } else { self.index[i - 1] }
    }
}

#[derive(Debug, Default)]
struct Log {
    segments: VecDeque<SegMeta>,
    bytes: u64,
}

type Waiter = oneshot::Sender<Result<(), String>>;

#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    first_id: u64,
    next_id: u64,
    index: Vec<(u64, u64)>,
    waiters: Vec<Waiter>,
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    options: Options,
    log: Mutex<Log>,
    pending: Mutex<Pending>,
    wake: Condvar,
    ledger: Mutex<ledger::Ledger>,
    durable: watch::Sender<u64>,
    append_errors: AtomicU64,
    commits: AtomicU64,
    /// See [`Outbox::set_commit_interval`].
    commit_interval_us: AtomicU64,
    /// Tests: how many coming group writes fail half-way (a torn write, then an I/O error).
    #[cfg(test)]
    fail_writes: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The durable queue between sources and sinks.
#[derive(Debug)]
pub struct Outbox {
    shared: Arc<Shared>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir` for `sinks`, recovering what is on disk.
    /// A sink new to the ledger starts at the oldest reading kept; a sink no longer named
    /// is forgotten (its cursor would otherwise pin every segment).
    pub fn open(dir: &Path, options: Options, sinks: &[&str]) -> Result<(Outbox, Recovery), OutboxError> {
        let started = Instant::now();
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        ledger::remove_tmp(dir);
        let mut recovery = Recovery::default();
        let mut ledger = match ledger::Ledger::load(dir) {
            Ok(Some(l)) => l,
            Ok(None) => ledger::Ledger::new(new_outbox_id()),
            Err(reason) => return Err(OutboxError::Corrupt { path: dir.join(ledger::FILE), reason }),
        };

        // Scan every segment; only the last one may have a torn tail.
        let files = segment::list(dir).map_err(io_err(dir))?;
        let mut segments: VecDeque<SegMeta> = VecDeque::new();
        let mut holes: Vec<Range<u64>> = Vec::new();
        let mut next_id = 0u64;
        let count = files.len();
        for (i, (first_id, path)) in files.into_iter().enumerate() {
            let last = i + 1 == count;
            let scan = match segment::scan(&path, first_id).map_err(io_err(&path))? {
                Ok(s) => s,
                Err(reason) => {
                    let aside = path.with_extension("corrupt");
                    tracing::error!(file = %path.display(), %reason, moved_to = %aside.display(), "Outbox segment unreadable; kept aside");
                    std::fs::rename(&path, &aside).map_err(io_err(&path))?;
                    next_id = next_id.max(first_id);
                    continue;
                }
            };
            if let Some(reason) = &scan.stopped {
                if last {
                    // Zeros past the torn bytes are preallocated space, not counted as cut;
                    // the cut removes both, the active segment is preallocated again below.
                    let cut = scan.dirty_end - scan.valid_len;
                    tracing::warn!(file = %path.display(), %reason, cut_bytes = cut, kept_readings = scan.records, "Outbox: torn tail cut (never acknowledged)");
                    let f = OpenOptions::new().write(true).open(&path).map_err(io_err(&path))?;
                    f.set_len(scan.valid_len).and_then(|_| f.sync_all()).map_err(io_err(&path))?;
                    recovery.cut_bytes += cut;
                } else {
                    tracing::error!(file = %path.display(), %reason, offset = scan.valid_len, "Outbox: damaged record in a closed segment; the rest of it is skipped");
                }
            } else if !last && scan.file_len > scan.valid_len {
                // A closed segment still preallocated (a crash before it was trimmed at its
                // close): only zeros follow its records; give their space back.
                let trimmed = OpenOptions::new().write(true).open(&path).and_then(|f| f.set_len(scan.valid_len));
                if let Err(error) = trimmed {
                    tracing::warn!(file = %path.display(), %error, "Outbox: cannot trim a closed segment's preallocated space");
                }
            }
            recovery.readings += scan.records;
            next_id = scan.end_id;
            segments.push_back(SegMeta { first_id, end_id: scan.end_id, len: scan.valid_len, path, index: scan.index });
        }
        // A damaged closed segment leaves a hole up to the next one's first id.
        for w in segments.iter().zip(segments.iter().skip(1)) {
            if w.0.end_id < w.1.first_id {
                holes.push(w.0.end_id..w.1.first_id);
            }
        }
        let next_id = next_id.max(ledger.sinks.values().map(|s| s.cursor).max().unwrap_or(0));
        let oldest = segments.front().map_or(next_id, |s| s.first_id);

        // Sinks: add the new, forget the gone, clamp cursors to what exists.
        ledger.sinks.retain(|name, _| {
            let keep = sinks.contains(&name.as_str());
            if !keep {
                tracing::warn!(sink = %name, "Outbox: sink no longer configured; its cursor is forgotten");
            }
            keep
        });
        for name in sinks {
            ledger.sinks.entry(name.to_string()).or_insert_with(|| SinkLedger { cursor: oldest, ..Default::default() });
        }
        for (name, sink) in ledger.sinks.iter_mut() {
            let mut lost = 0;
            if sink.cursor < oldest {
                lost += oldest - sink.cursor;
                sink.cursor = oldest;
            }
            for h in &holes {
                let from = h.start.max(sink.cursor);
                if from < h.end {
                    lost += h.end - from;
                }
            }
            if let Some((s, e)) = sink.live {
                if e > next_id || s > e {
                    sink.live = None;
                }
            }
            sink.merge();
            if lost > 0 {
                tracing::error!(sink = %name, readings = lost, "Outbox: readings lost to damage, counted as dropped");
                sink.dropped += lost;
                recovery.lost_readings = recovery.lost_readings.max(lost);
            }
        }
        ledger.save(dir).map_err(io_err(&dir.join(ledger::FILE)))?;

        // Closed segments every sink is past: a crash came between ledger save and delete.
        let min = ledger.min_cursor().unwrap_or(next_id);
        while segments.len() > 1 && segments.front().is_some_and(|s| s.end_id <= min) {
            if let Some(s) = segments.pop_front() {
                std::fs::remove_file(&s.path).map_err(io_err(&s.path))?;
                recovery.reclaimed_segments += 1;
            }
        }
        // The active segment: the last one, or a fresh one.
        let active_path = match segments.back() {
            Some(s) if s.end_id == next_id => s.path.clone(),
            _ => {
                let path = dir.join(segment::file_name(next_id));
                create_segment(dir, &path, next_id, options.segment_bytes)?;
                segments.push_back(SegMeta {
                    first_id: next_id,
                    end_id: next_id,
                    len: HEADER_LEN,
                    path: path.clone(),
                    index: vec![],
                });
                path
            }
        };
        let mut file = OpenOptions::new().write(true).open(&active_path).map_err(io_err(&active_path))?;
        let active_len = segments.back().map_or(HEADER_LEN, |s| s.len);
        if let Err(error) = segment::preallocate(&file, options.segment_bytes).and_then(|_| file.sync_all()) {
            tracing::warn!(file = %active_path.display(), %error, "Outbox: cannot preallocate the segment; appends will grow it");
        }
        file.seek(SeekFrom::Start(active_len)).map_err(io_err(&active_path))?;
        let bytes = segments.iter().map(|s| s.len).sum();
        recovery.segments = segments.len();
        recovery.elapsed_ms = started.elapsed().as_millis() as u64;

        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            options,
            log: Mutex::new(Log { segments, bytes }),
            pending: Mutex::new(Pending { first_id: next_id, next_id, ..Default::default() }),
            wake: Condvar::new(),
            ledger: Mutex::new(ledger),
            durable: watch::Sender::new(next_id),
            append_errors: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            commit_interval_us: AtomicU64::new(0),
            #[cfg(test)]
            fail_writes: AtomicU64::new(0),
        });
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("outbox-writer".into())
            .spawn(move || writer_shared.write_loop(file))
            .map_err(io_err(dir))?;
        tracing::info!(dir = %dir.display(), segments = recovery.segments, readings = recovery.readings, cut_bytes = recovery.cut_bytes, lost = recovery.lost_readings, elapsed_ms = recovery.elapsed_ms, "Outbox opened");
        Ok((Outbox { shared, writer: Mutex::new(Some(writer)) }, recovery))
    }

    /// Appends readings and returns their ids once they are written and fsynced: only then
    /// may the source acknowledge them. On error nothing of them is kept.
    pub async fn append(&self, readings: &[Reading]) -> Result<Range<u64>, OutboxError> {
        let (range, done) = {
            let mut p = lock(&self.shared.pending);
            if p.closed {
                return Err(OutboxError::Closed);
            }
            let first = p.next_id;
            if readings.is_empty() {
                return Ok(first..first);
            }
            for r in readings {
                let id = p.next_id;
                if id % INDEX_EVERY == 0 {
                    let at = p.buf.len() as u64;
                    p.index.push((id, at));
                }
                segment::encode(id, r, &mut p.buf);
                p.next_id += 1;
            }
            let (tx, rx) = oneshot::channel();
            p.waiters.push(tx);
            (first..p.next_id, rx)
        };
        self.shared.wake.notify_one();
        match done.await {
            Ok(Ok(())) => {
                // The writer thread left the wake-up of readers to us: from this thread it
                // costs no system call (see `write_loop`).
                self.shared.durable.send_modify(|_| {});
                Ok(range)
            }
            Ok(Err(e)) => Err(OutboxError::Write(e)),
            Err(_) => Err(OutboxError::Closed),
        }
    }

    /// How long the writer gathers appends after the first before it writes and fsyncs them
    /// together (`[outbox] commit_interval_ms`; zero, the default: at once). Appends made
    /// meanwhile share the write and the fsync; each waits up to this long more.
    pub fn set_commit_interval(&self, interval: std::time::Duration) {
        self.shared.commit_interval_us.store(interval.as_micros() as u64, Ordering::Relaxed);
    }

    /// One past the newest durable id; changes after every group commit.
    pub fn durable_end(&self) -> u64 {
        *self.shared.durable.borrow()
    }

    /// Watches [`Outbox::durable_end`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.durable.subscribe()
    }

    /// Up to `max` durable readings with ids in `[from, to)`, in id order, with their ids.
    /// Ids in a dropped segment are skipped.
    pub fn read(&self, from: u64, to: u64, max: usize) -> Result<Vec<(u64, Reading)>, OutboxError> {
        let to = to.min(self.durable_end());
        let plan: Vec<(SegMeta, u64, u64)> = {
            let log = lock(&self.shared.log);
            log.segments
                .iter()
                .filter(|s| s.end_id > from && s.first_id < to)
                .map(|s| {
                    let (id, off) = s.seek_point(from);
                    (s.without_index(), id, off)
                })
                .collect()
        };
        let mut out = Vec::new();
        for (seg, _, offset) in plan {
            if out.len() >= max {
                break;
            }
            let (mut reader, _) = match Reader::open_at(&seg.path, Some(seg.first_id), seg.len, offset) {
                Ok(Ok(r)) => r,
                Ok(Err(reason)) => return Err(OutboxError::Corrupt { path: seg.path, reason }),
                // Dropped (outbox full) between the plan and now: its ids are settled.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(OutboxError::Io { path: seg.path, source: e }),
            };
            reader.skip_below(from);
            loop {
                match reader.next().map_err(io_err(&seg.path))? {
                    Next::End => break,
                    Next::Bad(reason) => {
                        return Err(OutboxError::Corrupt {
                            path: seg.path,
                            reason: format!("at byte {}: {reason}", reader.offset),
                        });
                    }
                    Next::Record { id, reading, .. } => {
                        if id >= to || out.len() >= max {
                            break;
                        }
                        if id >= from {
                            out.push((id, reading));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// A sink's ledger entry (cursor, live range, counters, pending gaps).
    pub fn sink(&self, name: &str) -> Option<SinkLedger> {
        lock(&self.shared.ledger).sinks.get(name).cloned()
    }

    /// Changes a sink's ledger entry and saves the ledger.
    fn update<T>(&self, sink: &str, save: bool, f: impl FnOnce(&mut SinkLedger) -> T) -> Result<T, OutboxError> {
        let mut ledger = lock(&self.shared.ledger);
        let mut next = ledger.clone();
        let entry = next.sinks.get_mut(sink).ok_or_else(|| OutboxError::UnknownSink(sink.to_string()))?;
        let out = f(entry);
        if save {
            next.save(&self.shared.dir).map_err(io_err(&self.shared.dir.join(ledger::FILE)))?;
        }
        *ledger = next;
        Ok(out)
    }

    /// Records that the sink took the readings with ids in `[from, to)` (`readings` of them:
    /// fewer than `to - from` where damage left a hole), saves the ledger, and deletes the
    /// segments every sink is now past.
    pub fn delivered(&self, sink: &str, from: u64, to: u64, readings: u64) -> Result<(), OutboxError> {
        self.update(sink, true, |s| {
            let fresh = s.settle(from, to);
            s.delivered += readings.min(fresh);
            s.stopped = None;
        })?;
        self.reclaim();
        Ok(())
    }

    /// Records that the sink refused `[from, to)` for its content (now in a dead-letter file).
    pub fn dead_lettered(&self, sink: &str, from: u64, to: u64, readings: u64) -> Result<(), OutboxError> {
        self.update(sink, true, |s| {
            let fresh = s.settle(from, to);
            s.dead_lettered += readings.min(fresh);
        })?;
        self.reclaim();
        Ok(())
    }

    /// Marks where the live stream begins, if the sink is not already split: readings from
    /// the current end on go first, the backlog before it follows at the backfill rate.
    pub fn start_live(&self, sink: &str) -> Result<(), OutboxError> {
        let end = self.durable_end();
        self.update(sink, false, |s| {
            if s.live.is_none() && s.cursor < end {
                s.live = Some((end, end));
            }
        })
    }

    /// Counts a failed attempt that will be retried (saved with the next ledger change).
    pub fn retried(&self, sink: &str) -> Result<(), OutboxError> {
        self.update(sink, false, |s| s.retried += 1)
    }

    /// Records why delivery is stopped (or that it is not any more).
    pub fn set_stopped(&self, sink: &str, reason: Option<String>) -> Result<(), OutboxError> {
        if self.sink(sink).is_some_and(|s| s.stopped == reason) {
            return Ok(());
        }
        self.update(sink, true, |s| s.stopped = reason)
    }

    /// Records that the sink took gap record `id`.
    pub fn gap_delivered(&self, sink: &str, id: &str) -> Result<(), OutboxError> {
        self.update(sink, true, |s| s.gaps.retain(|g| g.id != id))
    }

    fn reclaim(&self) {
        let Some(min) = lock(&self.shared.ledger).min_cursor() else { return };
        let mut gone = Vec::new();
        {
            let mut log = lock(&self.shared.log);
            while log.segments.len() > 1 && log.segments.front().is_some_and(|s| s.end_id <= min) {
                if let Some(s) = log.segments.pop_front() {
                    log.bytes -= s.len;
                    gone.push(s.path);
                }
            }
        }
        for path in &gone {
            if let Err(error) = std::fs::remove_file(path) {
                tracing::error!(file = %path.display(), %error, "Outbox: cannot delete a delivered segment");
            }
        }
        if !gone.is_empty() {
            let _ = ledger::sync_dir(&self.shared.dir);
            tracing::debug!(segments = gone.len(), "Outbox: delivered segments deleted");
        }
    }

    /// The state of the outbox and its sinks.
    pub fn status(&self) -> Status {
        let (appended, oldest_id, bytes, ranges, sinks) = {
            let log = lock(&self.shared.log);
            let ledger = lock(&self.shared.ledger);
            let end = self.durable_end();
            let oldest = log.segments.front().map_or(end, |s| s.first_id);
            let ranges: Vec<(u64, u64)> = log.segments.iter().map(|s| (s.first_id, s.end_id)).collect();
            (end, oldest, log.bytes, ranges, ledger.sinks.clone())
        };
        let segments = ranges.len();
        let sinks = sinks
            .into_iter()
            .map(|(name, l)| {
                let depth = l.depth_in(&ranges);
                let oldest_undelivered_ns = if depth == 0 {
                    None
                } else {
                    let at = l.cursor;
                    self.read(at, appended, 1).ok().and_then(|v| v.first().map(|(_, r)| r.time_ns))
                };
                SinkStatus { name, depth, oldest_undelivered_ns, ledger: l }
            })
            .collect();
        Status {
            appended,
            oldest_id,
            bytes,
            max_bytes: self.shared.options.max_bytes,
            segments,
            append_errors: self.shared.append_errors.load(Ordering::Relaxed),
            commits: self.shared.commits.load(Ordering::Relaxed),
            sinks,
        }
    }

    /// Stops the writer after what is queued is written; later appends fail.
    pub fn close(&self) {
        lock(&self.shared.pending).closed = true;
        self.shared.wake.notify_all();
        if let Some(w) = lock(&self.writer).take() {
            let _ = w.join();
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.close();
    }
}

/// Reads the state of an outbox directory without changing anything, whether or not an
/// agent is running on it (a record being written is simply not counted yet).
pub fn inspect(dir: &Path, max_bytes: u64) -> Result<Status, OutboxError> {
    let ledger = match ledger::Ledger::load(dir) {
        Ok(Some(l)) => l,
        Ok(None) => {
            return Err(OutboxError::Corrupt {
                path: dir.join(ledger::FILE),
                reason: "no ledger: not an outbox (yet)".into(),
            });
        }
        Err(reason) => return Err(OutboxError::Corrupt { path: dir.join(ledger::FILE), reason }),
    };
    let files = segment::list(dir).map_err(io_err(dir))?;
    let mut bytes = 0;
    for (_, path) in files.iter().take(files.len().saturating_sub(1)) {
        bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    }
    let oldest_id = files.first().map_or(0, |f| f.0);
    // The active segment's records, without its preallocated space.
    let appended = match files.last() {
        Some((first, path)) => match segment::scan(path, *first).map_err(io_err(path))? {
            Ok(s) => {
                bytes += s.valid_len;
                s.end_id
            }
            Err(reason) => return Err(OutboxError::Corrupt { path: path.clone(), reason }),
        },
        None => ledger.sinks.values().map(|s| s.cursor).max().unwrap_or(0),
    };
    // A closed segment's ids run up to the next one's first (less any damage, not scanned here).
    let ranges: Vec<(u64, u64)> =
        files.iter().enumerate().map(|(i, (first, _))| (*first, files.get(i + 1).map_or(appended, |n| n.0))).collect();
    let time_at = |id: u64| -> Option<i64> {
        let (first, path) = files.iter().rev().find(|(f, _)| *f <= id)?;
        let (mut reader, _) = Reader::open(path, Some(*first), u64::MAX).ok()?.ok()?;
        loop {
            match reader.next().ok()? {
                Next::Record { id: rid, reading, .. } if rid >= id => return Some(reading.time_ns),
                Next::Record { .. } => {}
                _ => return None,
            }
        }
    };
    let sinks = ledger
        .sinks
        .into_iter()
        .map(|(name, l)| {
            let depth = l.depth_in(&ranges);
            let oldest_undelivered_ns = if depth == 0 { None } else { time_at(l.cursor) };
            SinkStatus { name, depth, oldest_undelivered_ns, ledger: l }
        })
        .collect();
    Ok(Status { appended, oldest_id, bytes, max_bytes, segments: files.len(), append_errors: 0, commits: 0, sinks })
}

fn new_outbox_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: the clock is unique enough to tell two outboxes of one agent apart.
        bytes = (crate::now_ns() as u64).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `buf` at `offset`: one `pwrite` on Unix, no seek first.
fn write_at(file: &mut File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
    }
    #[cfg(not(unix))]
    {
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(buf)
    }
}

/// Creates a segment preallocated to `segment_bytes` (see [`segment::preallocate`]), header
/// and directory entry synced.
fn create_segment(dir: &Path, path: &Path, first_id: u64, segment_bytes: u64) -> Result<File, OutboxError> {
    let mut f = OpenOptions::new().create(true).write(true).truncate(true).open(path).map_err(io_err(path))?;
    f.write_all(&segment::header(first_id)).map_err(io_err(path))?;
    if let Err(error) = segment::preallocate(&f, segment_bytes) {
        tracing::warn!(file = %path.display(), %error, "Outbox: cannot preallocate the segment; appends will grow it");
    }
    f.sync_all().map_err(io_err(path))?;
    ledger::sync_dir(dir).map_err(io_err(dir))?;
    Ok(f)
}

/// One point's dropped readings: parameters, oldest and newest time, count, first id.
type Dropped = (BTreeSet<String>, i64, i64, u64, u64);

struct Group {
    buf: Vec<u8>,
    first_id: u64,
    next_id: u64,
    index: Vec<(u64, u64)>,
    waiters: Vec<Waiter>,
}

impl Shared {
    fn write_loop(self: Arc<Self>, mut file: File) {
        loop {
            let group = {
                let mut p = lock(&self.pending);
                while p.buf.is_empty() && !p.closed {
                    p = self.wake.wait(p).unwrap_or_else(|e| e.into_inner());
                }
                if p.buf.is_empty() {
                    drop(p);
                    self.trim_active(&file);
                    return;
                }
                let interval = self.commit_interval_us.load(Ordering::Relaxed);
                if interval > 0 {
                    let until = Instant::now() + std::time::Duration::from_micros(interval);
                    while !p.closed {
                        let Some(left) = until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
                            break;
                        };
                        p = self.wake.wait_timeout(p, left).unwrap_or_else(|e| e.into_inner()).0;
                    }
                }
                let next_id = p.next_id;
                let group = Group {
                    buf: std::mem::take(&mut p.buf),
                    first_id: p.first_id,
                    next_id,
                    index: std::mem::take(&mut p.index),
                    waiters: std::mem::take(&mut p.waiters),
                };
                p.first_id = next_id;
                group
            };
            match self.write_group(&mut file, &group) {
                Ok(()) => {
                    self.commits.fetch_add(1, Ordering::Relaxed);
                    // Waking a reader (the uplink) from this thread costs the runtime a
                    // wake-up of its own besides the appender's: when an appender is still
                    // waiting it wakes the readers instead (`append`).
                    if group.waiters.iter().any(|w| !w.is_closed()) {
                        self.durable.send_if_modified(|end| {
                            *end = group.next_id;
                            false
                        });
                    } else {
                        self.durable.send_replace(group.next_id);
                    }
                    for w in group.waiters {
                        let _ = w.send(Ok(()));
                    }
                }
                Err(error) => {
                    self.append_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(%error, readings = group.next_id - group.first_id, "Outbox write failed; the appends are refused and will be retried by their sources");
                    let reason = error.to_string();
                    let mut p = lock(&self.pending);
                    // Appends queued behind hold ids after this group's: refuse them too, and
                    // hand the ids out again so they stay without holes.
                    for w in p.waiters.drain(..).chain(group.waiters) {
                        let _ = w.send(Err(reason.clone()));
                    }
                    p.buf.clear();
                    p.index.clear();
                    p.first_id = group.first_id;
                    p.next_id = group.first_id;
                }
            }
        }
    }

    /// At close: the active segment gives back its unused preallocated space (it is
    /// reserved again at the next open).
    fn trim_active(&self, file: &File) {
        let Some(len) = lock(&self.log).segments.back().map(|s| s.len) else { return };
        if let Err(error) = file.set_len(len).and_then(|_| file.sync_all()) {
            tracing::warn!(%error, "Outbox: cannot trim the active segment at close");
        }
    }

    fn write_group(&self, file: &mut File, group: &Group) -> Result<(), OutboxError> {
        let (active_len, active_records) = {
            let log = lock(&self.log);
            let a = log.segments.back().ok_or(OutboxError::Closed)?;
            (a.len, a.end_id - a.first_id)
        };
        let mut base = active_len;
        if active_len + group.buf.len() as u64 > self.options.segment_bytes && active_records > 0 {
            let path = self.dir.join(segment::file_name(group.first_id));
            let next = create_segment(&self.dir, &path, group.first_id, self.options.segment_bytes)?;
            // The closed segment gives back its unused preallocated space. Not synced: if a
            // crash undoes it, the open finds zeros after its records and trims again.
            if let Err(error) = file.set_len(active_len) {
                tracing::warn!(%error, "Outbox: cannot trim a closed segment's preallocated space");
            }
            *file = next;
            base = HEADER_LEN;
            let mut log = lock(&self.log);
            log.segments.push_back(SegMeta {
                first_id: group.first_id,
                end_id: group.first_id,
                len: HEADER_LEN,
                path,
                index: vec![],
            });
            log.bytes += HEADER_LEN;
        }
        self.make_room(group.buf.len() as u64);
        let path = lock(&self.log).segments.back().map(|s| s.path.clone()).unwrap_or_default();
        if let Err(source) = self.write_and_sync(file, base, &group.buf) {
            // Cut what may have been half written, so the next group starts on a record
            // boundary and only zeros follow the last record; then reserve the space again.
            let _ = file.set_len(base).and_then(|_| segment::preallocate(file, self.options.segment_bytes));
            return Err(OutboxError::Io { path, source });
        }
        let mut log = lock(&self.log);
        log.bytes += group.buf.len() as u64;
        if let Some(a) = log.segments.back_mut() {
            a.len = base + group.buf.len() as u64;
            a.end_id = group.next_id;
            a.index.extend(group.index.iter().map(|&(id, off)| (id, base + off)));
        }
        Ok(())
    }

    fn write_and_sync(&self, file: &mut File, base: u64, buf: &[u8]) -> std::io::Result<()> {
        #[cfg(test)]
        if self.fail_writes.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            write_at(file, &buf[..buf.len() / 2], base)?;
            return Err(std::io::Error::other("injected write failure"));
        }
        write_at(file, buf, base)?;
        file.sync_data()
    }

    /// Drops the oldest closed segments until `incoming` more bytes fit in `max_bytes`.
    fn make_room(&self, incoming: u64) {
        loop {
            let victim = {
                let log = lock(&self.log);
                if log.bytes + incoming <= self.options.max_bytes || log.segments.len() < 2 {
                    return;
                }
                match log.segments.front() {
                    Some(s) => s.without_index(),
                    None => return,
                }
            };
            if let Err(error) = self.drop_segment(&victim) {
                tracing::error!(%error, "Outbox full and the oldest segment cannot be dropped; going over max_bytes");
                return;
            }
        }
    }

    fn drop_segment(&self, seg: &SegMeta) -> Result<(), OutboxError> {
        let mut records = Vec::new();
        match Reader::open(&seg.path, Some(seg.first_id), seg.len).map_err(io_err(&seg.path))? {
            Ok((mut reader, _)) => {
                while let Next::Record { id, reading, .. } = reader.next().map_err(io_err(&seg.path))? {
                    records.push((id, reading));
                }
            }
            Err(reason) => {
                tracing::error!(file = %seg.path.display(), %reason, "Outbox: dropping an unreadable segment")
            }
        }
        let mut total = 0;
        {
            let mut ledger = lock(&self.ledger);
            let mut next = ledger.clone();
            for (name, sink) in next.sinks.iter_mut() {
                let undelivered = |id: u64| id >= sink.cursor && !sink.live.is_some_and(|(s, e)| id >= s && id < e);
                // Per point: parameters, time range, count, first id.
                let mut groups: BTreeMap<(String, String, String), Dropped> = BTreeMap::new();
                for (id, r) in records.iter().filter(|(id, _)| undelivered(*id)) {
                    let g = groups
                        .entry((r.factory.clone(), r.point.clone(), r.kind.as_str().to_string()))
                        .or_insert_with(|| (BTreeSet::new(), i64::MAX, i64::MIN, 0, *id));
                    g.0.insert(r.parameter.clone());
                    g.1 = g.1.min(r.time_ns);
                    g.2 = g.2.max(r.time_ns);
                    g.3 += 1;
                }
                let mut dropped = 0;
                for ((factory, point, kind), (parameters, from_ns, to_ns, count, first)) in groups {
                    dropped += count;
                    sink.gaps.push(Gap {
                        id: format!("{}-{first}-{point}", next.outbox_id),
                        factory,
                        point,
                        kind,
                        parameters: parameters.into_iter().collect(),
                        from_ns,
                        to_ns,
                        count,
                        reason: OVERFLOW_REASON.to_string(),
                    });
                }
                // Records that were unreadable still had ids: count them too.
                let unread = (seg.first_id..seg.end_id).filter(|&id| undelivered(id)).count() as u64;
                sink.dropped += unread.max(dropped);
                sink.cursor = sink.cursor.max(seg.end_id);
                sink.merge();
                if dropped > 0 {
                    tracing::warn!(sink = %name, readings = dropped, "Outbox full: oldest undelivered readings dropped; gap records will say so");
                }
                total += dropped;
            }
            next.save(&self.dir).map_err(io_err(&self.dir.join(ledger::FILE)))?;
            *ledger = next;
        }
        std::fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
        let _ = ledger::sync_dir(&self.dir);
        let mut log = lock(&self.log);
        if log.segments.front().is_some_and(|s| s.first_id == seg.first_id) {
            log.segments.pop_front();
            log.bytes -= seg.len;
        }
        tracing::debug!(
            segment = seg.first_id,
            readings_dropped = total,
            "Outbox: segment dropped to stay within max_bytes"
        );
        Ok(())
    }
}
