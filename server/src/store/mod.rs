//! The embedded store: an append-only, segmented log in `<data_dir>/store/`, indexed in
//! memory.
//!
//! ## Why a log of our own
//! Ingest must acknowledge (204) only what is on disk, at the rate of the stores people
//! would otherwise use. A disk's cost of durability is the number of syncs, not the bytes,
//! so concurrent writes share one sync (group commit) and a point costs ≈ 12 bytes of
//! sequential append; a B-tree engine (SQLite, redb) would write each point into pages at
//! random places plus a journal. A log is also what retention (delete whole old segments)
//! and the InfluxDB write-through (a cursor over the same log) need. How fast it goes alone
//! (`examples/store-append`), through ingest beside VictoriaMetrics and InfluxDB
//! (`scripts/bench-ingest.sh`), and how fast a restart replays it: `docs/benchmarks.md`.
//!
//! ## In memory
//! Only what does not grow with history: the series index (`index`: each key once, its
//! names shared), the memtable of readings not yet in partition files (`memtable`: per
//! series a time-sorted vector; a reading older than its series' newest is inserted in
//! place, so bodies arriving out of order cost a move, never an unpack and repack), bounded
//! by `[store] memtable_max_readings`, the block indexes of the partition files in use
//! (≈ 40 bytes per series and day: yesterday's and today's, and those of older days read
//! or checked since the last maintenance round, which lets the others go; a file's index is
//! read back from it when next needed) and a cache of 64 decoded blocks for the checks of
//! back-filled writes. What that comes to is measured by `examples/store-history` and
//! `examples/memory-per-series` (`docs/benchmarks.md`).
//!
//! ## Partitions: history on disk
//! A Bangkok day (UTC+7, no daylight saving) is the partition: periods, availability and
//! retention all cut there. Its readings live in immutable partition files (`partition.rs`,
//! format in its module doc): per series, column blocks of at most 4 096 readings (times,
//! values, flags, each column in its codec with a codec id byte, and a CRC-32), a block
//! index (series key → offset, count, first and last time, CRC-32) and a footer. The store
//! is an LSM in miniature:
//! - **flush**: past its bound, or once it holds a day that has closed, the memtable is
//!   frozen (still read and checked) and written as one level-0 file per day it holds;
//! - **compaction**: a closed day with more than one file (the runs of a busy day, late
//!   data for an old day) or with a level-0 or level-2 file (packed: flushes and a filling
//!   day's merges skip the codecs' entropy coding)
//!   is merged into one level-1 file, replacing them in one step; at
//!   a clean stop the days still open too ([`Store::maintain_at_stop`]). A closed day that
//!   readings are still arriving for (within the memtable's span of times, as in a
//!   back-fill) waits until they stop, so that it is merged once; meanwhile each 16 level-0
//!   files of it are merged alone into one level-2 file (packed as a flush is; a series'
//!   blocks copied as they are when they follow one another in time), which bounds the
//!   files a read opens without decoding the day's readings again at each;
//! - **retirement**: a log segment is deleted once every reading in it is in partition
//!   files *and* it is before every reader's hold ([`Store::hold`]: the InfluxDB cursor, the
//!   compliance checkpoint), never before [`Store::start_retiring`] (the server calls it once
//!   the holds are registered). At a clean stop ([`Store::close`], after the server's last
//!   flush) the segment being written goes too once every reader's hold is at its end, so
//!   a stopped store is its partition files and manifest only. A position at the end of a
//!   retired segment stays valid (its seal keeps its length: nothing more to read there),
//!   and segment numbers never go back, so positions stay ordered.
//!
//! While a [`Pin`] is held ([`Store::pin`]: a backup copying the files of a [`Snapshot`],
//! `snapshot.rs`), compaction, retention and retirement skip their rounds: no file goes.
//!
//! The server runs them on a thread of its own ([`Store::spawn_maintenance`]), woken every
//! 10 s and at once when the memtable passes its bound. Each writes its file under a
//! temporary name, syncs it, renames it, syncs the directory, and only then names it in the
//! manifest (one line that adds, removes, and for a flush says up to which log position the
//! files hold everything); files it replaced are deleted after that line. A file the
//! manifest does not name is deleted at open, so a SIGKILL at any step leaves either the
//! old files or the new in use, never a half one, and the log still holds whatever the
//! manifest does not say is in files.
//!
//! A write checks each reading against the memtable, the frozen memtable, and the files of
//! its day: a block is read only if its first and last time span the reading's, so the
//! common reading newer than everything stored reads nothing. Reads ([`Store::scan`] /
//! [`Store::read`]) load one series' day at a time (the memtable's and the files' blocks
//! overlapping it), so a year of one series or a day of raw readings never loads history
//! whole.
//!
//! ## On disk
//! Segment files `NNNNNNNNNN.seg` of CRC-framed binary records, one per accepted batch (see
//! [`log`]), and a manifest ([`manifest`]) that announces each segment before anything in
//! it is acknowledged and seals it (length, CRC-32, what it holds per series) once it can
//! no longer change: when the store rolls to a new segment (`[store] segment_max_bytes`), at
//! a clean shutdown ([`Store::close`]), and at the next start after a crash. A new segment
//! starts at every start of the server, numbered after the highest the manifest names.
//!
//! The segment being written is bounded from below by `<store>/acknowledged` (`checkpoint.rs`),
//! the durable position, rewritten by a thread of its own every second when it moved.
//!
//! At open, the partition files the manifest names are opened (header, footer and block
//! index checked against their CRC-32, length and reading count against the manifest); then
//! the log segments not yet retired are checked against the manifest and those holding
//! readings past the last flush are replayed into the memtable (flushing as it fills): a
//! restart reads the files' indexes and at most the memtable's bound of the log, not
//! history. Segments whose readings are all in files are checked by length only. A torn tail of
//! the last, unsealed segment (short record or checksum mismatch in its last group commit,
//! past the acknowledged position: what a power cut mid-write leaves) is cut and logged,
//! since it was never acknowledged.
//! Everything else stops the start, naming the file (and byte) and what is wrong, and
//! changes nothing: a segment missing, shorter or longer than its seal, with other bytes
//! than its seal (CRC-32), a damaged record in a sealed segment, before the last group
//! commit or before the acknowledged position, the unsealed segment shorter than that
//! position, or a segment file the manifest never announced. A store that refuses bad
//! evidence rather than serving it silently short: `eitwatch-server repair` ([`repair`])
//! sets such a segment aside when the operator chooses, recording what it held as gaps.
//!
//! What this cannot see: after a crash, the writes of the last second before it (past the
//! acknowledged position) are indistinguishable from a torn tail, so a cut among them made
//! before the next start is taken for what the crash left.
//!
//! ## Group commit
//! [`Store::append`] checks and indexes its batch and encodes its record into a shared
//! pending buffer under the index lock, then waits until the record is durable. The first
//! waiter to take the commit lock writes *everything* pending, calls `fdatasync` once and
//! advances the durable sequence; the others find their record already durable. A caller
//! returns only after its own record (and any record it depends on, such as the earlier
//! copy of a re-sent batch) is synced. If a write or sync fails, the store refuses every
//! later append until restarted: an unsynced batch is already in the index, and a client's
//! retry must not be acknowledged as a duplicate of something not on disk.
//!
//! ## Invariants
//! - History is append-only: a reading identical to a stored one (same series and time,
//!   same value, quality and flags) is accepted and stored once; a *different* reading for
//!   a stored series and time is a rewrite and refuses its whole batch.
//! - A batch is stored whole or not at all (one record, one checksum).
//!
//! ## Retention
//! `[store] retention_days` (default: keep forever). A Bangkok day goes once all of it is
//! older than that: its partition files (recorded in the manifest, then deleted) and its
//! readings in the memtable; a segment whose newest point is older is deleted whole.
//! Checked at start and hourly.
//!
//! ## Format versions
//! - 1: segment files only ([`log`]).
//! - 2: segment files and the manifest ([`manifest`]).
//! - 3: as 2, plus partition files in `parts/` (`partition.rs`) named by the manifest's
//!   `parts` lines. A store of format 1 or 2 opens, replays its log once into partition
//!   files (in bounded memory), appends `{"op":"format","version":3}` and logs the
//!   migration; its segments are then retired as any others. A build that reads up to 2
//!   refuses a store of format 3 at its manifest, changing nothing.

mod checkpoint;
pub(crate) mod codec;
mod index;
pub mod log;
pub mod manifest;
mod memtable;
mod partition;
pub mod repair;
pub mod replay;
mod snapshot;

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use memtable::Memtable;
use partition::{BlockCache, LEVEL_DAY, LEVEL_FILLING, LEVEL_FLUSHED, Part, PartWriter, day_of, day_start};

use eitwatch_config::line_protocol::Row;
use eitwatch_config::reading::{Kind, Quality, Reading, Source};
use eitwatch_config::server_config::StoreSection;
pub use log::LogPosition;
pub use snapshot::{Pin, Snapshot, SnapshotFile, check_part_file};
use tokio::sync::watch;

/// Identifies a series: one parameter at one point.
///
/// The names are shared: the index holds each distinct name once (a factory's series share
/// its id, every factory's `outfall-1` is one string), and a clone costs no allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// Factory id.
    pub factory: Arc<str>,
    /// Point id.
    pub point: Arc<str>,
    /// Measurement kind.
    pub kind: Kind,
    /// Parameter code.
    pub parameter: Arc<str>,
}

/// What the store takes: an owned [`Reading`], or a [`Row`] decoded from a body (its names
/// borrowed from the body: ingest allocates nothing per reading).
pub trait Offered {
    /// Kind, factory, point and parameter.
    fn names(&self) -> (Kind, &str, &str, &str);
    /// Measurement time.
    fn time_ns(&self) -> i64;
    /// Value and flags.
    fn stored(&self) -> Stored;
    /// Known to be of `previous`'s kind, factory and point without comparing their text.
    fn same_point(&self, _previous: &Self) -> bool {
        false
    }
}

/// `Reading` and `Row` hold the same fields (names owned or borrowed).
macro_rules! offered_fields {
    () => {
        fn names(&self) -> (Kind, &str, &str, &str) {
            (self.kind, &self.factory, &self.point, &self.parameter)
        }
        fn time_ns(&self) -> i64 {
            self.time_ns
        }
        fn stored(&self) -> Stored {
            Stored {
                value: self.value,
                quality: self.quality,
                source: self.source,
                below_detection_limit: self.below_detection_limit,
            }
        }
    };
}

impl Offered for Reading {
    offered_fields!();
}

impl Offered for Row<'_> {
    offered_fields!();
    /// The rows of one line borrow the same factory and point text from the body.
    fn same_point(&self, previous: &Self) -> bool {
        let same = |a: &str, b: &str| std::ptr::eq(a, b);
        self.kind == previous.kind && same(&self.factory, &previous.factory) && same(&self.point, &previous.point)
    }
}

impl SeriesKey {
    /// A reading of this series.
    pub fn reading(&self, time_ns: i64, s: &Stored) -> Reading {
        Reading {
            kind: self.kind,
            factory: self.factory.to_string(),
            point: self.point.to_string(),
            parameter: self.parameter.to_string(),
            value: s.value,
            time_ns,
            quality: s.quality,
            source: s.source,
            below_detection_limit: s.below_detection_limit,
        }
    }
}

/// A stored value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stored {
    /// Canonical-unit value.
    pub value: f64,
    /// Quality.
    pub quality: Quality,
    /// Instrument or lab.
    pub source: Source,
    /// Lab "not detected".
    pub below_detection_limit: bool,
}

impl Stored {
    /// Identical to another, bit for bit (so `-0` differs from `0`, as a re-sent batch never does).
    fn same(&self, other: &Stored) -> bool {
        self.value.to_bits() == other.value.to_bits()
            && self.quality == other.quality
            && self.source == other.source
            && self.below_detection_limit == other.below_detection_limit
    }
}

/// Why a batch was not stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The batch would rewrite history.
    #[error(
        "{factory}/{point}/{parameter} at {time_ns} ns is stored as {stored}, refusing {offered}: history is append-only"
    )]
    Rewrite {
        /// Factory.
        factory: String,
        /// Point.
        point: String,
        /// Parameter.
        parameter: String,
        /// Timestamp.
        time_ns: i64,
        /// Value stored.
        stored: f64,
        /// Value offered.
        offered: f64,
    },
    /// The batch itself gives one series and time two different values: nothing is stored
    /// and nothing stored is contradicted.
    #[error("{factory}/{point}/{parameter} at {time_ns} ns is given twice in the batch, as {first} and {second}")]
    Contradiction {
        /// Factory.
        factory: String,
        /// Point.
        point: String,
        /// Parameter.
        parameter: String,
        /// Timestamp.
        time_ns: i64,
        /// The batch's first value.
        first: f64,
        /// Its second.
        second: f64,
    },
    /// A store file or directory.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A record that passed its checksum but does not decode, or damage before the tail.
    #[error("{path}: record at byte {offset} does not decode: {reason}; {}", repair_hint(.path))]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// Why.
        reason: String,
    },
    /// A segment is missing, shortened or altered, or the manifest is unreadable: starting
    /// would lose acknowledged readings without a word.
    #[error("{path}: {reason}; {}", repair_hint(.path))]
    Damaged {
        /// The segment (or the manifest).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An earlier write or sync failed; nothing more is accepted until a restart.
    #[error("the store stopped accepting writes after a failed write: {0}; restart the server")]
    Failed(String),
}

/// What to tell the operator of a damaged store file (`<data_dir>/store/<file>`).
fn repair_hint(path: &Path) -> String {
    let data_dir = path.parent().and_then(Path::parent).unwrap_or(Path::new("."));
    format!(
        "acknowledged readings would be lost: nothing was changed. `eitwatch-server repair --data-dir {}` sets the \
         damaged segment aside and records what it held as gaps (GET /api/v1/gaps)",
        data_dir.display()
    )
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Readings newly stored.
    pub stored: usize,
    /// Readings already stored identically (a re-sent batch).
    pub duplicates: usize,
}

/// Min, max, mean and count of one series over one bucket of time, for charts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Start of the bucket (a multiple of its width since the epoch).
    pub start_ns: i64,
    /// Readings in it.
    pub count: u64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// Readings a [`Store::query`] or [`Store::downsample`] takes under the index lock at a time.
const SLICE_POINTS: usize = 4096;

/// Where a read resumes: the first reading not yet given, by series key then time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// Its series.
    pub key: SeriesKey,
    /// Its time (a reading of `key` earlier than this is not read again).
    pub time_ns: i64,
}

/// A read in progress ([`Store::scan`], [`Store::read`]): the matching series in key
/// order, and how far it got.
#[derive(Debug)]
pub struct Scan {
    series: Vec<(SeriesKey, u32)>,
    from_ns: i64,
    to_ns: i64,
    /// The series being read, and the time from which its points are still to be loaded.
    next: usize,
    at_ns: i64,
    /// The series' readings loaded (one day of it at most), and how many were given.
    loaded: Vec<(i64, Stored)>,
    given: usize,
}

impl Scan {
    /// The key of the series at `i` of the scan (as [`Store::read`] gives it).
    pub fn key(&self, i: usize) -> &SeriesKey {
        &self.series[i].0
    }
}

/// Sums one series' readings, in time order, into buckets `every_ns` wide aligned to the
/// epoch.
#[derive(Debug)]
pub struct Summing {
    every_ns: i64,
    open: Option<Bucket>,
    sum: f64,
}

impl Summing {
    /// Buckets `every_ns` wide (at least 1 ns).
    pub fn new(every_ns: i64) -> Summing {
        Summing { every_ns: every_ns.max(1), open: None, sum: 0.0 }
    }

    /// The start of the bucket holding `time_ns`.
    pub fn start_of(&self, time_ns: i64) -> i64 {
        time_ns.div_euclid(self.every_ns) * self.every_ns
    }

    /// Adds a reading; returns the bucket it closed, if it starts the next.
    pub fn add(&mut self, time_ns: i64, value: f64) -> Option<Bucket> {
        let start_ns = self.start_of(time_ns);
        match &mut self.open {
            Some(b) if b.start_ns == start_ns => {
                b.count += 1;
                b.min = b.min.min(value);
                b.max = b.max.max(value);
                self.sum += value;
                b.mean = self.sum / b.count as f64;
                None
            }
            _ => {
                self.sum = value;
                self.open.replace(Bucket { start_ns, count: 1, min: value, max: value, mean: value })
            }
        }
    }

    /// The bucket being summed.
    pub fn open(&self) -> Option<&Bucket> {
        self.open.as_ref()
    }

    /// The bucket being summed, closed (before the next series).
    pub fn take(&mut self) -> Option<Bucket> {
        self.open.take()
    }
}

/// What the index lock guards: the index and the records not yet written.
#[derive(Debug)]
struct State {
    index: index::Index,
    /// Readings not yet in partition files.
    memtable: Memtable,
    /// The memtable being flushed: still read and checked until its files are in use.
    frozen: Option<Arc<Memtable>>,
    /// The partition files in use, by day.
    parts: PartsByDay,
    /// Readings in them.
    part_readings: u64,
    /// Per series id, the newest time it has in any partition file: a reading newer than
    /// that (the common case) is checked against the memtables only.
    files_newest_ns: Vec<i64>,
    /// Blocks recently read to check a write against a partition.
    cache: BlockCache,
    /// Everything the log holds before this position is in partition files.
    through: LogPosition,
    /// Records encoded but not yet written, by segment (a rotation starts a new entry).
    pending: Vec<Pending>,
    /// Sequence number of the last record encoded.
    seq: u64,
    /// The segment new records go to, and the bytes already given to it.
    segment: u64,
    segment_bytes: u64,
    /// Per series id, the segment in which it was last defined.
    defined_in: Vec<u64>,
    /// Per segment, the oldest and newest point time in it.
    segment_times: BTreeMap<u64, (i64, i64)>,
    /// What the segment being encoded holds, for its seal.
    summary: Summary,
    /// Per series id, its newest time in the batch being appended while its readings wait
    /// to go to the memtable together (`i64::MIN` otherwise).
    batch_newest_ns: Vec<i64>,
    /// Per series id, where its last memtable search landed (a guess, checked): a late
    /// body's readings of a series are searched for one after another.
    memtable_near: Vec<u32>,
}

/// Records of one segment on their way to disk.
#[derive(Debug)]
struct Pending {
    segment: u64,
    bytes: Vec<u8>,
    /// For the first records of a segment: the seal of the one before.
    seal_previous: Option<Vec<manifest::SeriesSummary>>,
}

/// Per series id, the oldest and newest time and the count of its points in one segment.
#[derive(Debug, Default)]
struct Summary {
    by_id: Vec<(i64, i64, u64)>,
}

impl Summary {
    fn add(&mut self, id: u32, time_ns: i64) {
        let i = id as usize;
        if self.by_id.len() <= i {
            self.by_id.resize(i + 1, (i64::MAX, i64::MIN, 0));
        }
        let e = &mut self.by_id[i];
        *e = (e.0.min(time_ns), e.1.max(time_ns), e.2 + 1);
    }

    fn of(&self, index: &index::Index) -> Vec<manifest::SeriesSummary> {
        manifest::summaries(
            (0u32..)
                .zip(&self.by_id)
                .filter(|(_, (_, _, count))| *count > 0)
                .filter_map(|(id, stats)| Some((index.key(id)?, *stats))),
        )
    }
}

/// What the commit lock guards: the open segment file.
#[derive(Debug)]
struct Commit {
    file: File,
    segment: u64,
    offset: u64,
    /// CRC-32 of the segment's bytes so far, for its seal.
    crc: crc32fast::Hasher,
    durable_seq: u64,
    /// The manifest, appended to at rotation, retention and close.
    manifest: File,
}

/// The embedded store.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    segment_max_bytes: u64,
    retention_ns: Option<i64>,
    memtable_max_readings: usize,
    /// The number of the next partition file.
    next_part: AtomicU64,
    /// Held by a flush or a compaction (one at a time).
    flushing: Mutex<()>,
    /// Whether log segments may be retired (set once the log's readers registered their holds).
    retiring: AtomicBool,
    /// [`Pin`]s held: while any is, maintenance deletes no file (see `snapshot.rs`).
    pins: AtomicUsize,
    /// Wakes the maintenance thread when the memtable passed its bound.
    wake: Arc<(Mutex<bool>, Condvar)>,
    state: Mutex<State>,
    commit: Mutex<Commit>,
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
    /// The segment being written (older ones are closed).
    written_segment: AtomicU64,
    durable: watch::Sender<LogPosition>,
    /// Per reader of the log (InfluxDB write-through, the compliance checkpoint), the
    /// position from which it still needs the log.
    holds: Mutex<BTreeMap<&'static str, LogPosition>>,
}

/// Level-0 files a closed day still being filled may gather before it is merged anyway
/// (each is one more file a read of the day opens).
const LEVEL0_WAITING_MAX: usize = 16;

/// How often the acknowledged position is written (see [`checkpoint`]).
const ACKNOWLEDGED_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Stops the process at the `EITWATCH_STORE_CRASH_AT`-th crash point reached (counted from
/// 1), as a SIGKILL would: the fault-injection tests loop it over every step of flushing,
/// compaction, retention and retirement.
pub(crate) fn crash_point(step: &str) {
    static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    static REACHED: AtomicU64 = AtomicU64::new(0);
    let Some(at) = *AT.get_or_init(|| std::env::var("EITWATCH_STORE_CRASH_AT").ok().and_then(|v| v.parse().ok()))
    else {
        return;
    };
    if REACHED.fetch_add(1, Ordering::SeqCst) + 1 == at {
        eprintln!("EITWATCH_STORE_CRASH_AT={at}: aborting at {step}");
        std::process::abort();
    }
}

/// The partition files in use, by day.
type PartsByDay = BTreeMap<i64, Vec<Arc<Part>>>;

/// One series' readings of one day, to be written.
type DaySeries<'a> = (&'a SeriesKey, u32, &'a [(i64, Stored)]);

/// How the manifest records a partition file.
fn part_line(p: &Part) -> manifest::PartLine {
    manifest::PartLine { file: p.name.clone(), day: p.day, level: p.level, bytes: p.bytes, readings: p.readings }
}

/// Opens the partition files the manifest names (checking each against its record) and
/// deletes those it does not (left by a flush or compaction that did not finish, or removed
/// by one that did). Returns them by day, their readings, and the next file number.
fn open_parts(
    parts_dir: &Path,
    known: Option<&manifest::Known>,
    index: &mut index::Index,
) -> Result<(PartsByDay, u64, u64), StoreError> {
    let mut parts: BTreeMap<i64, Vec<Arc<Part>>> = BTreeMap::new();
    let (mut readings, mut next) = (0, 1);
    let live = known.map(|k| &k.parts);
    for line in live.into_iter().flat_map(|l| l.values()) {
        let path = parts_dir.join(&line.file);
        let damaged = |reason: String| StoreError::Damaged { path: path.clone(), reason };
        let found = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(_) => return Err(damaged(format!("missing; the manifest has it with {} readings", line.readings))),
        };
        if found != line.bytes {
            return Err(damaged(format!("{found} bytes; the manifest has it with {}", line.bytes)));
        }
        let part = Part::open(&path, |key| index.intern_key(key))?;
        if part.readings != line.readings || part.day != line.day {
            return Err(damaged(format!(
                "holds {} readings of day {}; the manifest has {} of day {}",
                part.readings, part.day, line.readings, line.day
            )));
        }
        readings += part.readings;
        next = next.max(part.number + 1);
        parts.entry(part.day).or_default().push(Arc::new(part));
    }
    let entries =
        std::fs::read_dir(parts_dir).map_err(|source| StoreError::Io { path: parts_dir.to_path_buf(), source })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if live.is_some_and(|l| l.contains_key(&name)) {
            continue;
        }
        let base = name.strip_suffix(".tmp").unwrap_or(&name);
        if let Some(n) = partition::number_of(base) {
            next = next.max(n + 1);
        }
        tracing::info!(path = %entry.path().display(), "Deleted a partition file not in use (left by an unfinished flush or compaction, or replaced)");
        if let Err(source) = std::fs::remove_file(entry.path()) {
            return Err(StoreError::Io { path: entry.path(), source });
        }
    }
    Ok((parts, readings, next))
}

/// Writes a memtable's readings as level-0 partition files, one per day, and syncs the
/// directory; the caller records them in the manifest.
fn write_runs(
    dir: &Path,
    next_part: &AtomicU64,
    memtable: &Memtable,
    index: &index::Index,
) -> Result<Vec<Part>, StoreError> {
    let mut by_day: BTreeMap<i64, Vec<DaySeries<'_>>> = BTreeMap::new();
    for (id, points) in memtable.iter() {
        let Some(key) = index.key(id) else { continue };
        let mut rest = points;
        while let Some((t, _)) = rest.first() {
            let day = day_of(*t);
            let end = partition::day_end(day);
            let n = match rest.partition_point(|(t, _)| *t < end) {
                // The last day time can name ends at i64::MAX, which it holds too.
                0 => rest.len(),
                n => n,
            };
            by_day.entry(day).or_default().push((key, id, &rest[..n]));
            rest = &rest[n..];
        }
    }
    let parts_dir = partition::dir(dir);
    let mut out = Vec::new();
    for (day, mut series) in by_day {
        series.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let name = partition::file_name(day, next_part.fetch_add(1, Ordering::Relaxed));
        let mut writer = PartWriter::create(&parts_dir, &name, day, LEVEL_FLUSHED)?;
        for (key, id, points) in series {
            if let Err(e) = writer.add(id, key, points) {
                writer.abandon();
                return Err(e);
            }
        }
        out.push(writer.finish()?);
    }
    sync_dir(&parts_dir).map_err(|source| StoreError::Io { path: parts_dir.clone(), source })?;
    crash_point("runs-renamed");
    Ok(out)
}

/// Flushes the memtable during an open (the log replayed up to `through`).
fn flush_at_open(
    dir: &Path,
    next_part: &AtomicU64,
    memtable: &mut Memtable,
    index: &index::Index,
    manifest_file: &mut File,
    through: LogPosition,
    parts: &mut PartsByDay,
) -> Result<(), StoreError> {
    let written = write_runs(dir, next_part, memtable, index)?;
    let line = manifest::Line::Parts {
        add: written.iter().map(part_line).collect(),
        remove: Vec::new(),
        through: Some([through.segment, through.offset]),
    };
    manifest::append(manifest_file, &[line]).map_err(|source| StoreError::Io { path: manifest::path(dir), source })?;
    crash_point("runs-recorded");
    for p in written {
        parts.entry(p.day).or_default().push(Arc::new(p));
    }
    *memtable = Memtable::default();
    Ok(())
}

impl Store {
    /// Opens (or creates) the store in `dir`, replays its segments, cuts a torn tail, and
    /// starts a new segment.
    pub fn open(dir: &Path, options: &StoreSection) -> Result<Store, StoreError> {
        Store::open_with(dir, options, Some(ACKNOWLEDGED_EVERY))
    }

    /// [`Store::open`], writing the acknowledged position every `acknowledged_every` (never
    /// with `None`: tests that tear an acknowledged write, as no power cut can).
    pub(crate) fn open_with(
        dir: &Path,
        options: &StoreSection,
        acknowledged_every: Option<std::time::Duration>,
    ) -> Result<Store, StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let started = std::time::Instant::now();
        let retention_ns = options.retention_days.map(|d| i64::from(d).saturating_mul(86_400_000_000_000));
        let cutoff_ns = retention_ns.map_or(i64::MIN, |r| now_ns().saturating_sub(r));
        let known_all = manifest::read_all(dir)
            .map_err(|reason| StoreError::Damaged { path: manifest::path(dir), reason: reason.clone() })?;
        let known = known_all.as_ref().map(|k| &k.segments);
        let segments = log::list_segments(dir).map_err(io(dir))?;
        let acknowledged = checkpoint::read(dir);
        if let Some(known) = &known {
            for (n, state) in known.iter() {
                if !matches!(state, manifest::Segment::Dropped { .. }) && segments.binary_search(n).is_err() {
                    return Err(StoreError::Damaged {
                        path: log::segment_path(dir, *n),
                        reason: format!("missing; the manifest has it {}", state.describe()),
                    });
                }
            }
        }
        let memtable_max_readings = options.memtable_max_readings.max(1);
        let mut index = index::Index::default();
        let parts_dir = partition::dir(dir);
        std::fs::create_dir_all(&parts_dir).map_err(io(&parts_dir))?;
        let (mut parts, mut part_readings, next_part) = open_parts(&parts_dir, known_all.as_ref(), &mut index)?;
        let next_part = AtomicU64::new(next_part);
        let known_through = known_all.as_ref().map_or((0, 0), |k| k.through);
        let mut through = LogPosition { segment: known_through.0, offset: known_through.1 };
        // Retention keeps whole days.
        let cutoff_ns = if retention_ns.is_some() { day_start(day_of(cutoff_ns)) } else { i64::MIN };
        let mut memtable = Memtable::default();
        let mut manifest_file = manifest::open(dir).map_err(io(&manifest::path(dir)))?;
        let mut segment_times = BTreeMap::new();
        // Manifest lines this open owes: seals of the segments replayed unsealed, drops of
        // empty ones.
        let mut owed = Vec::new();
        for (i, &n) in segments.iter().enumerate() {
            let path = log::segment_path(dir, n);
            let last = i + 1 == segments.len();
            let state = match &known {
                None => None,
                Some(known) => match known.get(&n) {
                    Some(manifest::Segment::Dropped { reason }) => {
                        // Its deletion was cut short (a crash right after the drop line): finish it.
                        tracing::info!(path = %path.display(), %reason, "Deleted a segment the manifest dropped (its deletion was cut short)");
                        let _ = std::fs::remove_file(manifest::content_path(dir, n));
                        std::fs::remove_file(&path).map_err(io(&path))?;
                        continue;
                    }
                    Some(state) => Some(state),
                    // Made by a rotation that crashed before announcing it: nothing in it
                    // was acknowledged, so it is empty.
                    None if last && std::fs::metadata(&path).map_err(io(&path))?.len() == 0 => {
                        std::fs::remove_file(&path).map_err(io(&path))?;
                        continue;
                    }
                    None => {
                        return Err(StoreError::Damaged {
                            path,
                            reason: "not in the manifest: a segment this store never announced".into(),
                        });
                    }
                },
            };
            let sealed = match state {
                Some(manifest::Segment::Sealed { bytes: len, crc32, .. }) => Some((*len, *crc32)),
                _ => None,
            };
            // Its readings are in partition files: checked by length only, not read.
            if n < through.segment
                && let Some((len, _)) = sealed
            {
                let found = std::fs::metadata(&path).map_err(io(&path))?.len();
                if found != len {
                    let how = if found < len { "shortened" } else { "grown" };
                    return Err(StoreError::Damaged {
                        path,
                        reason: format!("{how}: {found} bytes, sealed with {len}"),
                    });
                }
                continue;
            }
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            if let Some((len, _)) = sealed
                && bytes.len() as u64 != len
            {
                let how = if (bytes.len() as u64) < len { "shortened" } else { "grown" };
                return Err(StoreError::Damaged {
                    path,
                    reason: format!("{how}: {} bytes, sealed with {len}", bytes.len()),
                });
            }
            let mut defs = HashMap::new();
            let mut ids: HashMap<u32, u32> = HashMap::new();
            let mut times = (i64::MAX, i64::MIN);
            // What an unsealed segment holds, for its seal.
            let mut summary = (sealed.is_none()).then(Summary::default);
            let mut offset = 0usize;
            while offset < bytes.len() {
                let Some(payload) = log::record_at(&bytes, offset) else { break };
                // Before `through` the readings are in partition files already.
                let replay = LogPosition { segment: n, offset: offset as u64 } >= through;
                log::decode_record(payload, &mut defs, |entry| match entry {
                    log::Entry::Def(file_id, key) => {
                        ids.insert(file_id, index.intern_key(key));
                    }
                    log::Entry::Point { id, time_ns, stored, .. } => {
                        times = (times.0.min(time_ns), times.1.max(time_ns));
                        let Some(&id) = ids.get(&id) else { return };
                        if let Some(summary) = &mut summary {
                            summary.add(id, time_ns);
                        }
                        if replay && time_ns >= cutoff_ns && memtable.get(id, time_ns).is_none() {
                            memtable.insert(id, time_ns, stored);
                        }
                    }
                })
                .map_err(|reason| StoreError::Corrupt {
                    path: path.clone(),
                    offset: offset as u64,
                    reason,
                })?;
                offset += log::HEADER_BYTES + payload.len();
            }
            // How much of an unsealed segment was acknowledged, at least.
            let floor = match acknowledged {
                Some(a) if a.segment == n && sealed.is_none() => a.offset as usize,
                _ => 0,
            };
            if bytes.len() < floor {
                return Err(StoreError::Damaged {
                    path,
                    reason: format!("shortened: {} bytes, but {floor} were acknowledged", bytes.len()),
                });
            }
            if offset < floor {
                return Err(StoreError::Corrupt {
                    path,
                    offset: offset as u64,
                    reason: format!("damaged record before the last acknowledged position (byte {floor})"),
                });
            }
            if offset < bytes.len() {
                if !last || sealed.is_some() {
                    let reason = match sealed {
                        Some(_) => "damaged record in a sealed segment",
                        None => "damaged record before the last segment's tail",
                    };
                    return Err(StoreError::Corrupt { path, offset: offset as u64, reason: reason.into() });
                }
                if let Some(next) = log::group_after(&bytes, offset) {
                    return Err(StoreError::Corrupt {
                        path,
                        offset: offset as u64,
                        reason: format!(
                            "damaged record followed by a later group commit at byte {next}: not a torn tail"
                        ),
                    });
                }
                tracing::warn!(path = %path.display(), cut_bytes = bytes.len() - offset, "Cut a torn tail off the store log (an unacknowledged write)");
                let file = OpenOptions::new().write(true).open(&path).map_err(io(&path))?;
                file.set_len(offset as u64).map_err(io(&path))?;
                file.sync_all().map_err(io(&path))?;
            }
            if let Some((_, crc32)) = sealed
                && crc32fast::hash(&bytes) != crc32
            {
                return Err(StoreError::Damaged {
                    path,
                    reason: "its bytes differ from its seal (CRC-32), though every record reads".into(),
                });
            }
            if offset == 0 {
                if known.is_some() {
                    owed.push(manifest::Line::Drop { segment: n, reason: "empty".into() });
                }
                std::fs::remove_file(&path).map_err(io(&path))?;
            } else if let Some(summary) = summary {
                let crc32 = crc32fast::hash(&bytes[..offset]);
                let series = summary.of(&index);
                owed.push(manifest::seal(dir, n, offset as u64, crc32, &series).map_err(io(dir))?);
            }
            if offset > 0 && times.0 <= times.1 {
                segment_times.insert(n, times);
            }
            // A long log (a migration, a reader holding it) is replayed in bounded memory.
            if memtable.len() >= memtable_max_readings {
                let upto = LogPosition { segment: n + 1, offset: 0 };
                flush_at_open(dir, &next_part, &mut memtable, &index, &mut manifest_file, upto, &mut parts)?;
                part_readings = parts.values().flatten().map(|p| p.readings).sum();
                through = upto;
            }
        }
        // After the highest number ever used: positions stay ordered once every file is retired.
        let last_known = known_all.as_ref().and_then(manifest::Known::last_segment);
        let segment = segments.last().copied().max(last_known).map_or(1, |n| n + 1);
        let path = log::segment_path(dir, segment);
        let file = OpenOptions::new().create_new(true).append(true).open(&path).map_err(io(&path))?;
        sync_dir(dir).map_err(io(dir))?;
        let manifest_path = manifest::path(dir);
        if known.is_none() {
            tracing::info!(
                path = %manifest_path.display(),
                segments = owed.len(),
                format = manifest::FORMAT,
                "Store manifest written: the segments found are sealed as they are"
            );
        }
        let mut manifest = manifest_file;
        // A store of an earlier format has its readings put in partition files once.
        let format = known_all.as_ref().map_or(0, |k| k.format);
        if known_all.is_some() && format < manifest::FORMAT || known_all.is_none() && !segments.is_empty() {
            let upto = LogPosition { segment, offset: 0 };
            flush_at_open(dir, &next_part, &mut memtable, &index, &mut manifest, upto, &mut parts)?;
            part_readings = parts.values().flatten().map(|p| p.readings).sum();
            through = upto;
            if known_all.is_some() {
                owed.push(manifest::Line::Format { version: manifest::FORMAT });
            }
            tracing::info!(
                dir = %dir.display(),
                from_format = format,
                to_format = manifest::FORMAT,
                readings = part_readings,
                files = parts.values().map(Vec::len).sum::<usize>(),
                "Store migrated: its readings are in partition files"
            );
        }
        owed.push(manifest::Line::Open { segment });
        manifest::append(&mut manifest, &owed).map_err(io(&manifest_path))?;
        tracing::info!(
            dir = %dir.display(),
            segments = segment_times.len(),
            partition_files = parts.values().map(Vec::len).sum::<usize>(),
            series = index.series.len(),
            readings = part_readings as usize + memtable.len(),
            replayed = memtable.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Store opened"
        );
        let defined_in = vec![0; index.series.len()];
        let store = Store {
            dir: dir.to_path_buf(),
            segment_max_bytes: options.segment_max_bytes.max(1),
            retention_ns,
            memtable_max_readings,
            next_part,
            flushing: Mutex::new(()),
            retiring: AtomicBool::new(false),
            pins: AtomicUsize::new(0),
            wake: Arc::new((Mutex::new(false), Condvar::new())),
            state: Mutex::new(State {
                index,
                memtable,
                frozen: None,
                parts,
                part_readings,
                files_newest_ns: Vec::new(),
                cache: BlockCache::default(),
                through,
                pending: Vec::new(),
                seq: 0,
                segment,
                segment_bytes: 0,
                defined_in,
                segment_times,
                summary: Summary::default(),
                batch_newest_ns: Vec::new(),
                memtable_near: Vec::new(),
            }),
            commit: Mutex::new(Commit {
                file,
                segment,
                offset: 0,
                crc: crc32fast::Hasher::new(),
                durable_seq: 0,
                manifest,
            }),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            written_segment: AtomicU64::new(segment),
            durable: watch::Sender::new(LogPosition { segment, offset: 0 }),
            holds: Mutex::new(BTreeMap::new()),
        };
        {
            let mut state = lock(&store.state);
            let parts: Vec<Arc<Part>> = state.parts.values().flatten().cloned().collect();
            for p in &parts {
                state.note_newest(p)?;
            }
            drop(state);
            store.release_indexes(day_of(now_ns()), true);
        }
        if let Some(every) = acknowledged_every {
            checkpoint::spawn(dir, store.durable(), every).map_err(io(dir))?;
        }
        store.apply_retention();
        Ok(store)
    }

    /// Stores a batch whole, durably (fdatasync) before returning; returns the readings that
    /// were new, in the batch's order. Identical re-sends are skipped; a rewrite refuses all.
    pub fn append(&self, batch: &[Reading]) -> Result<(Vec<Reading>, Appended), StoreError> {
        let (fresh, appended) = self.append_offered(batch, |_, i, _| i)?;
        Ok((fresh.into_iter().map(|i| batch[i].clone()).collect(), appended))
    }

    /// [`Store::append`] for rows decoded from a body; returns `fresh(series id, index in
    /// rows, row)` of each new one, in the batch's order. The series id is this store's,
    /// stable while it is open (the compliance engine finds its series by it, see
    /// [`Store::series_key`]). `fresh` runs as each row is indexed, under the store's lock:
    /// keep it cheap (it spares a second pass over the rows).
    pub fn append_rows<T>(
        &self,
        rows: &[Row<'_>],
        fresh: impl FnMut(u32, usize, &Row<'_>) -> T,
    ) -> Result<(Vec<T>, Appended), StoreError> {
        self.append_offered(rows, fresh)
    }

    /// The key of the series this store calls `id` (an id `append_rows` gave).
    pub fn series_key(&self, id: u32) -> Option<SeriesKey> {
        lock(&self.state).index.key(id).cloned()
    }

    /// Checks, indexes, encodes and syncs; returns `fresh(series id, batch index, reading)`
    /// of each new reading, in the batch's order.
    fn append_offered<R: Offered, T>(
        &self,
        batch: &[R],
        mut fresh: impl FnMut(u32, usize, &R) -> T,
    ) -> Result<(Vec<T>, Appended), StoreError> {
        self.check_failed()?;
        let mut duplicates = 0;
        let mut inserted: Vec<(u32, i64, usize)> = Vec::with_capacity(batch.len());
        let mut out = Vec::with_capacity(batch.len());
        let my_seq = {
            let mut state = lock(&self.state);
            // A series' readings go to the memtable after the batch is checked, a run per
            // series merged at once, while each series' times in the batch only grow (no
            // reading of the batch can then meet another of it); else from the first that
            // does not, one by one, each checked against those before it.
            let mut one_by_one = false;
            for (i, r) in batch.iter().enumerate() {
                let same_point = i > 0 && r.same_point(&batch[i - 1]);
                let id = state.index.intern(r, same_point);
                let offered = r.stored();
                let time_ns = r.time_ns();
                if !one_by_one && state.batch_newest(id) >= time_ns {
                    one_by_one = true;
                    state.insert_runs(&inserted, batch);
                }
                let found = match state.get(id, time_ns) {
                    Ok(found) => found,
                    Err(e) => {
                        state.undo(&inserted, one_by_one);
                        return Err(e);
                    }
                };
                match found {
                    Some(stored) if stored.same(&offered) => duplicates += 1,
                    Some(stored) => {
                        let own = inserted.iter().any(|&(i, t, _)| i == id && t == time_ns);
                        state.undo(&inserted, one_by_one);
                        let (_, factory, point, parameter) = r.names();
                        let (factory, point, parameter) =
                            (factory.to_string(), point.to_string(), parameter.to_string());
                        return Err(match own {
                            true => StoreError::Contradiction {
                                factory,
                                point,
                                parameter,
                                time_ns,
                                first: stored.value,
                                second: offered.value,
                            },
                            false => StoreError::Rewrite {
                                factory,
                                point,
                                parameter,
                                time_ns,
                                stored: stored.value,
                                offered: offered.value,
                            },
                        });
                    }
                    None => {
                        match one_by_one {
                            true => state.memtable.insert(id, time_ns, offered),
                            false => state.batch_newest_ns[id as usize] = time_ns,
                        }
                        inserted.push((id, time_ns, i));
                        out.push(fresh(id, i, r));
                    }
                }
            }
            if !one_by_one {
                state.insert_runs(&inserted, batch);
            }
            if !inserted.is_empty() {
                state.encode(&inserted, batch, self.segment_max_bytes);
                if state.memtable.len() >= self.memtable_max_readings {
                    self.wake_maintenance();
                }
            }
            // Even a batch of duplicates waits: its first copy may still be on its way to disk.
            state.seq
        };
        self.wait_durable(my_seq)?;
        Ok((out, Appended { stored: inserted.len(), duplicates }))
    }

    fn check_failed(&self) -> Result<(), StoreError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(StoreError::Failed(lock(&self.failure).clone().unwrap_or_default()));
        }
        Ok(())
    }

    /// Returns once record `seq` is on disk, writing and syncing everything pending if no
    /// one else is.
    fn wait_durable(&self, seq: u64) -> Result<(), StoreError> {
        let mut commit = lock(&self.commit);
        if commit.durable_seq >= seq {
            return Ok(());
        }
        self.check_failed()?;
        let (pending, upto) = {
            let mut state = lock(&self.state);
            (std::mem::take(&mut state.pending), state.seq)
        };
        match self.write_pending(&mut commit, pending) {
            Ok(()) => {
                commit.durable_seq = upto;
                self.durable.send_replace(LogPosition { segment: commit.segment, offset: commit.offset });
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "Store write failed; refusing further writes until restart");
                *lock(&self.failure) = Some(e.to_string());
                self.failed.store(true, Ordering::Release);
                Err(e)
            }
        }
    }

    fn write_pending(&self, commit: &mut Commit, pending: Vec<Pending>) -> Result<(), StoreError> {
        for Pending { segment, mut bytes, seal_previous } in pending {
            if segment != commit.segment {
                let old = log::segment_path(&self.dir, commit.segment);
                commit.file.sync_data().map_err(|source| StoreError::Io { path: old, source })?;
                let in_dir = |source| StoreError::Io { path: self.dir.clone(), source };
                let crc32 = std::mem::take(&mut commit.crc).finalize();
                let series = seal_previous.unwrap_or_default();
                let seal = manifest::seal(&self.dir, commit.segment, commit.offset, crc32, &series).map_err(in_dir)?;
                let path = log::segment_path(&self.dir, segment);
                let io = |source| StoreError::Io { path: path.clone(), source };
                commit.file = OpenOptions::new().create_new(true).append(true).open(&path).map_err(io)?;
                // One directory sync for the content file and the new segment.
                sync_dir(&self.dir).map_err(in_dir)?;
                self.record(commit, &[seal, manifest::Line::Open { segment }])?;
                // The previous segment is complete and synced: the sink may read it to its end.
                commit.segment = segment;
                commit.offset = 0;
                self.written_segment.store(segment, Ordering::Release);
            }
            let path = log::segment_path(&self.dir, segment);
            let io = |source| StoreError::Io { path: path.clone(), source };
            // The encoders left room for the group record at the start: one write, one sync.
            let group_bytes = (bytes.len() - log::GROUP_RECORD_BYTES) as u64;
            bytes[..log::GROUP_RECORD_BYTES].copy_from_slice(&log::group_record(group_bytes));
            commit.file.write_all(&bytes).map_err(io)?;
            commit.crc.update(&bytes);
            commit.offset += bytes.len() as u64;
        }
        let path = log::segment_path(&self.dir, commit.segment);
        commit.file.sync_data().map_err(|source| StoreError::Io { path, source })
    }

    /// Appends lines to the manifest, synced.
    fn record(&self, commit: &mut Commit, lines: &[manifest::Line]) -> Result<(), StoreError> {
        manifest::append(&mut commit.manifest, lines)
            .map_err(|source| StoreError::Io { path: manifest::path(&self.dir), source })
    }

    /// Seals the segment being written (a clean shutdown): the next start then knows its
    /// length and content, so that any later change to it is found. Appends are refused
    /// from now on.
    pub fn close(&self) -> Result<(), StoreError> {
        let mut commit = lock(&self.commit);
        if self.failed.load(Ordering::Acquire) {
            // Replayed and sealed at the next start.
            return Ok(());
        }
        let (pending, upto, series) = {
            let mut state = lock(&self.state);
            *lock(&self.failure) = Some("the store is closed".into());
            self.failed.store(true, Ordering::Release);
            let series = state.summary.of(&state.index);
            (std::mem::take(&mut state.pending), state.seq, series)
        };
        self.write_pending(&mut commit, pending)?;
        commit.durable_seq = upto;
        let io = |source| StoreError::Io { path: self.dir.clone(), source };
        let seal = manifest::seal(&self.dir, commit.segment, commit.offset, commit.crc.clone().finalize(), &series)
            .map_err(io)?;
        sync_dir(&self.dir).map_err(io)?;
        self.record(&mut commit, &[seal])?;
        let end = LogPosition { segment: commit.segment, offset: commit.offset };
        if !self.retirable_at_close(end) {
            tracing::info!(segment = end.segment, bytes = end.offset, "Store closed: its last segment sealed");
            return Ok(());
        }
        // Every reading in it is in partition files and every reader is at its end: the next
        // start has no log to check or replay. Its seal keeps its length, so a reader's
        // position at its end stays "nothing more" (see `replay`).
        let drop = manifest::Line::Drop { segment: end.segment, reason: "retired at a clean stop".into() };
        self.record(&mut commit, &[drop])?;
        crash_point("close-retire-recorded");
        lock(&self.state).segment_times.remove(&end.segment);
        let _ = std::fs::remove_file(manifest::content_path(&self.dir, end.segment));
        let path = log::segment_path(&self.dir, end.segment);
        std::fs::remove_file(&path).map_err(|source| StoreError::Io { path, source })?;
        tracing::info!(
            segment = end.segment,
            bytes = end.offset,
            "Store closed: its last segment sealed and retired (its readings are in partition files)"
        );
        Ok(())
    }

    /// Whether the segment being closed, ending at `end`, may go with the close: retiring
    /// has started, no [`Pin`] is held, every reading is in partition files (memtable empty, no flush under
    /// way), and no reader of the log holds a position before its end.
    fn retirable_at_close(&self, end: LogPosition) -> bool {
        if !self.retiring.load(Ordering::Acquire) || self.pinned() {
            return false;
        }
        let in_files = {
            let state = lock(&self.state);
            state.memtable.len() == 0 && state.frozen.is_none()
        };
        in_files && self.held_from().is_none_or(|h| h >= end)
    }

    /// Readings of the series matching a filter, within `[from_ns, to_ns)`, by series then time.
    pub fn query(
        &self,
        filter: impl Fn(&SeriesKey) -> bool,
        from_ns: i64,
        to_ns: i64,
    ) -> Vec<(SeriesKey, i64, Stored)> {
        let mut scan = self.scan(filter, from_ns, to_ns, None);
        let (mut out, mut slice) = (Vec::new(), Vec::new());
        while self.read(&mut scan, SLICE_POINTS, &mut slice) {
            out.extend(slice.drain(..).map(|(i, t, s)| (scan.key(i).clone(), t, s)));
        }
        out
    }

    /// A read of the series matching a filter within `[from_ns, to_ns)`, by series key then
    /// time, starting at `resume` (a reading earlier in that order is not read). Nothing is
    /// read yet: [`Store::read`] takes it a slice at a time.
    pub fn scan(&self, filter: impl Fn(&SeriesKey) -> bool, from_ns: i64, to_ns: i64, resume: Option<&Resume>) -> Scan {
        let state = lock(&self.state);
        let mut series: Vec<(SeriesKey, u32)> = state
            .index
            .series
            .iter()
            .enumerate()
            .filter(|(_, s)| resume.is_none_or(|r| s.key >= r.key) && filter(&s.key))
            .map(|(id, s)| (s.key.clone(), id as u32))
            .collect();
        drop(state);
        series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let at_ns = match (resume, series.first()) {
            (Some(r), Some((k, _))) if *k == r.key => r.time_ns.max(from_ns),
            _ => from_ns,
        };
        Scan { series, from_ns, to_ns, next: 0, at_ns, loaded: Vec::new(), given: 0 }
    }

    /// The next at most `max` readings of a scan into `out` (cleared first), each as its
    /// series' position in the scan ([`Scan::key`]), time and value. The index lock is held
    /// for one slice only, so that a long read never holds up writes. Returns whether it read
    /// anything (`false`: the scan is done).
    pub fn read(&self, scan: &mut Scan, max: usize, out: &mut Vec<(usize, i64, Stored)>) -> bool {
        out.clear();
        while scan.next < scan.series.len() && out.len() < max {
            if scan.given < scan.loaded.len() {
                let n = (max - out.len()).min(scan.loaded.len() - scan.given);
                let i = scan.next;
                out.extend(scan.loaded[scan.given..scan.given + n].iter().map(|(t, s)| (i, *t, *s)));
                scan.given += n;
                continue;
            }
            if scan.at_ns >= scan.to_ns || !self.load(scan) {
                scan.next += 1;
                scan.at_ns = scan.from_ns;
            }
        }
        !out.is_empty()
    }

    /// Loads the scan's series' readings from `at_ns` to the end of the first day that has
    /// any (a day of one series at most: reads stream); `false` when it has none left.
    fn load(&self, scan: &mut Scan) -> bool {
        scan.loaded.clear();
        scan.given = 0;
        let (id, at_ns) = (scan.series[scan.next].1, scan.at_ns);
        let (parts, end_ns) = {
            let state = lock(&self.state);
            let frozen = state.frozen.as_deref();
            let mut first = [state.memtable.first_from(id, at_ns), frozen.and_then(|f| f.first_from(id, at_ns))]
                .into_iter()
                .flatten()
                .min();
            for (day, parts) in state.parts.range(day_of(at_ns)..) {
                if first.is_some_and(|f| day_start(*day) > f) {
                    break;
                }
                let mut found = None;
                for p in parts {
                    match p.blocks_of(id) {
                        Ok(blocks) => {
                            let f = blocks.iter().filter(|b| b.last_ns >= at_ns).map(|b| b.first_ns.max(at_ns)).min();
                            if let Some(f) = f {
                                found = Some(found.map_or(f, |x: i64| x.min(f)));
                            }
                        }
                        Err(error) => {
                            tracing::error!(%error, "A partition file's index does not read; its readings are left out of this read");
                        }
                    }
                }
                if let Some(f) = found {
                    first = Some(first.map_or(f, |x| x.min(f)));
                    break;
                }
            }
            let Some(first) = first.filter(|f| *f < scan.to_ns) else { return false };
            let day = day_of(first);
            let end_ns = partition::day_end(day).min(scan.to_ns);
            scan.loaded.extend_from_slice(state.memtable.range(id, first, end_ns));
            if let Some(f) = frozen {
                scan.loaded.extend_from_slice(f.range(id, first, end_ns));
            }
            (state.parts.get(&day).cloned().unwrap_or_default(), end_ns)
        };
        let from_ns = at_ns;
        for p in parts {
            if let Err(error) = p.read_range(id, from_ns, end_ns, &mut scan.loaded) {
                tracing::error!(%error, "A partition file's block does not read; its readings are left out of this read");
            }
        }
        scan.loaded.sort_unstable_by_key(|(t, _)| *t);
        scan.loaded.dedup_by_key(|(t, _)| *t);
        scan.at_ns = end_ns;
        true
    }

    /// Per matching series (in key order, only those with readings in range), its readings
    /// within `[from_ns, to_ns)` summarised in buckets `every_ns` wide, aligned to the epoch.
    pub fn downsample(
        &self,
        filter: impl Fn(&SeriesKey) -> bool,
        from_ns: i64,
        to_ns: i64,
        every_ns: i64,
    ) -> Vec<(SeriesKey, Vec<Bucket>)> {
        let mut scan = self.scan(filter, from_ns, to_ns, None);
        let mut out: Vec<(usize, Vec<Bucket>)> = Vec::new();
        let mut summing = Summing::new(every_ns);
        let mut slice = Vec::new();
        while self.read(&mut scan, SLICE_POINTS, &mut slice) {
            for &(i, t, s) in &slice {
                if out.last().is_none_or(|(last, _)| *last != i) {
                    if let Some(b) = summing.take() {
                        out.last_mut().expect("a bucket is of a series").1.push(b);
                    }
                    out.push((i, Vec::new()));
                }
                if let Some(b) = summing.add(t, s.value) {
                    out.last_mut().expect("pushed above").1.push(b);
                }
            }
        }
        if let (Some(b), Some((_, buckets))) = (summing.take(), out.last_mut()) {
            buckets.push(b);
        }
        out.into_iter().map(|(i, buckets)| (scan.key(i).clone(), buckets)).collect()
    }

    /// Number of readings stored.
    pub fn len(&self) -> usize {
        lock(&self.state).len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of series.
    pub fn series_count(&self) -> usize {
        lock(&self.state).index.series.len()
    }

    /// Readings not yet in partition files (the memtable's, and one being flushed).
    pub fn memtable_readings(&self) -> usize {
        let state = lock(&self.state);
        state.memtable.len() + state.frozen.as_ref().map_or(0, |f| f.len())
    }

    /// Why the store refuses writes until a restart (an earlier write or sync failed);
    /// `None` while it writes.
    pub fn failure(&self) -> Option<String> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        Some(lock(&self.failure).clone().unwrap_or_else(|| "a write or sync failed".into()))
    }

    /// The store's directory (its segments).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The end of what is on disk, updated after every sync.
    pub fn durable(&self) -> watch::Receiver<LogPosition> {
        self.durable.subscribe()
    }

    /// Records that `reader` still needs the log from `at` on: no segment holding anything
    /// at or after the earliest hold is deleted (except by retention).
    pub fn hold(&self, reader: &'static str, at: LogPosition) {
        lock(&self.holds).insert(reader, at);
    }

    /// The earliest position a reader of the log still needs.
    pub(crate) fn held_from(&self) -> Option<LogPosition> {
        lock(&self.holds).values().min().copied()
    }

    /// Drops what is older than the retention period: whole Bangkok days of partition files
    /// and of the memtable (a day goes once all of it is older), and whole segments (not the
    /// one being written) from disk. Returns the segments deleted.
    pub fn apply_retention(&self) -> Vec<u64> {
        let Some(retention_ns) = self.retention_ns else { return Vec::new() };
        let cutoff_ns = now_ns().saturating_sub(retention_ns);
        let kept_from_ns = day_start(day_of(cutoff_ns));
        let written = self.written_segment.load(Ordering::Acquire);
        let _flushing = lock(&self.flushing);
        if self.pinned() {
            return Vec::new();
        }
        let (dropped, expired, old_parts) = {
            let mut state = lock(&self.state);
            let dropped = state.memtable.prune(kept_from_ns);
            let expired: Vec<u64> = state
                .segment_times
                .iter()
                .filter(|(n, (_, max))| **n < written && *max < kept_from_ns)
                .map(|(n, _)| *n)
                .collect();
            let old_parts: Vec<Arc<Part>> =
                state.parts.range(..day_of(cutoff_ns)).flat_map(|(_, v)| v.iter().cloned()).collect();
            (dropped, expired, old_parts)
        };
        let mut lines: Vec<_> =
            expired.iter().map(|n| manifest::Line::Drop { segment: *n, reason: "retention".into() }).collect();
        if !old_parts.is_empty() {
            let remove = old_parts.iter().map(|p| p.name.clone()).collect();
            lines.push(manifest::Line::Parts { add: Vec::new(), remove, through: None });
        }
        if !lines.is_empty() {
            if let Err(error) = self.record(&mut lock(&self.commit), &lines) {
                // Deleting them unrecorded would look like damage at the next start.
                tracing::warn!(%error, "Cannot record expired segments and partitions in the manifest; kept for now");
                return Vec::new();
            }
            crash_point("retention-recorded");
        }
        let mut part_readings = 0;
        {
            let mut state = lock(&self.state);
            for n in &expired {
                state.segment_times.remove(n);
            }
            for p in &old_parts {
                if let Some(v) = state.parts.get_mut(&p.day) {
                    v.retain(|q| q.number != p.number);
                    if v.is_empty() {
                        state.parts.remove(&p.day);
                    }
                }
                state.cache.forget(p.number);
                state.part_readings -= p.readings;
                part_readings += p.readings;
            }
        }
        for p in &old_parts {
            if let Err(error) = std::fs::remove_file(p.path()) {
                tracing::warn!(path = %p.path().display(), %error, "Cannot delete an expired partition file");
            }
            crash_point("retention-deleted");
        }
        for n in &expired {
            let _ = std::fs::remove_file(manifest::content_path(&self.dir, *n));
            let path = log::segment_path(&self.dir, *n);
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "Cannot delete an expired segment");
            }
        }
        if dropped > 0 || !expired.is_empty() || !old_parts.is_empty() {
            tracing::info!(
                readings = dropped as u64 + part_readings,
                segments = expired.len(),
                partition_files = old_parts.len(),
                kept_from_ns,
                "Retention dropped old readings"
            );
        }
        expired
    }

    /// Writes the memtable's readings into level-0 partition files (one per day it holds)
    /// and records them, with the log position they cover, in the manifest. Returns the
    /// readings written. Reads and writes go on meanwhile: the memtable being written is
    /// still read and checked until its files are in use.
    pub fn flush(&self) -> Result<usize, StoreError> {
        let _flushing = lock(&self.flushing);
        let (frozen, through, seq) = {
            let mut state = lock(&self.state);
            if state.memtable.len() == 0 {
                return Ok(0);
            }
            let frozen = Arc::new(std::mem::take(&mut state.memtable));
            state.frozen = Some(frozen.clone());
            (frozen, LogPosition { segment: state.segment, offset: state.segment_bytes }, state.seq)
        };
        let result = self.flush_frozen(&frozen, through, seq);
        let mut state = lock(&self.state);
        state.frozen = None;
        match result {
            Ok(written) => {
                state.part_readings += written.iter().map(|p| p.readings).sum::<u64>();
                for p in written {
                    // A file just written holds its index: nothing to read.
                    if let Err(error) = state.note_newest(&p) {
                        tracing::error!(%error, "A partition file just written gives no summary");
                    }
                    state.parts.entry(p.day).or_default().push(Arc::new(p));
                }
                state.through = through;
                Ok(frozen.len())
            }
            Err(e) => {
                // Back where it was: the log still holds it, and the next flush tries again.
                for (id, points) in frozen.iter() {
                    for (t, s) in points {
                        if state.memtable.get(id, *t).is_none() {
                            state.memtable.insert(id, *t, *s);
                        }
                    }
                }
                Err(e)
            }
        }
    }

    fn flush_frozen(&self, frozen: &Memtable, through: LogPosition, seq: u64) -> Result<Vec<Part>, StoreError> {
        // Only what the log holds durably goes into files.
        self.wait_durable(seq)?;
        let written = {
            let keys = lock(&self.state);
            // The series index only grows: the keys read now stay right.
            let index = &keys.index;
            let mut keyed = index::Index::default();
            for (id, _) in frozen.iter() {
                while keyed.series.len() <= id as usize {
                    let key = index.key(keyed.series.len() as u32).cloned();
                    match key {
                        Some(k) => keyed.series.push(index::Series { key: k }),
                        None => break,
                    }
                }
            }
            drop(keys);
            write_runs(&self.dir, &self.next_part, frozen, &keyed)?
        };
        let line = manifest::Line::Parts {
            add: written.iter().map(part_line).collect(),
            remove: Vec::new(),
            through: Some([through.segment, through.offset]),
        };
        self.record(&mut lock(&self.commit), &[line])?;
        crash_point("runs-recorded");
        tracing::debug!(files = written.len(), readings = frozen.len(), "Store memtable flushed");
        Ok(written)
    }

    /// Merges each day before `before_day` (the closed days, or every day at a clean stop)
    /// that has more than one partition file, or a level-0 or level-2 file (written with the
    /// packed codecs only), into one file (level 1), replacing them in one manifest line.
    /// Returns the days merged (none while a [`Pin`] is held).
    ///
    /// A day the memtable's span still covers is still being filled (a back-fill fills a
    /// closed day over several flushes): it waits until it has 16 level-0 files
    /// (`LEVEL0_WAITING_MAX`), which are then merged alone into one level-2 file (packed; a
    /// series whose blocks follow one another in time has them copied undecoded), and all
    /// its files become one once it stops being filled. Merging the whole day at each flush
    /// would decode and encode it again every time.
    pub fn compact(&self, before_day: i64) -> Result<usize, StoreError> {
        let _flushing = lock(&self.flushing);
        if self.pinned() {
            return Ok(0);
        }
        // Per day: the files to merge and the level of the one they become.
        let days: Vec<(i64, Vec<Arc<Part>>, u8)> = {
            let state = lock(&self.state);
            let filling = state.memtable.span_ns().map(|(from, to)| day_of(from)..=day_of(to));
            state
                .parts
                .range(..before_day)
                .filter_map(|(d, v)| {
                    if !filling.as_ref().is_some_and(|f| f.contains(d)) {
                        let unmerged = v.len() > 1 || v.iter().any(|p| p.level != LEVEL_DAY);
                        return unmerged.then(|| (*d, v.clone(), LEVEL_DAY));
                    }
                    let flushed: Vec<Arc<Part>> = v.iter().filter(|p| p.level == LEVEL_FLUSHED).cloned().collect();
                    (flushed.len() >= LEVEL0_WAITING_MAX).then_some((*d, flushed, LEVEL_FILLING))
                })
                .collect()
        };
        let parts_dir = partition::dir(&self.dir);
        for (day, old, level) in &days {
            let mut ids: Vec<u32> = old.iter().flat_map(|p| p.series()).collect();
            ids.sort_unstable();
            ids.dedup();
            let mut keyed: Vec<(SeriesKey, u32)> = {
                let state = lock(&self.state);
                ids.iter().filter_map(|id| Some((state.index.key(*id)?.clone(), *id))).collect()
            };
            keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let name = partition::file_name(*day, self.next_part.fetch_add(1, Ordering::Relaxed));
            let mut writer = PartWriter::create(&parts_dir, &name, *day, *level)?;
            let mut points = Vec::new();
            // A filling day's flushes are merged again when it closes: a series whose blocks
            // follow one another in time (in-order arrival, the usual case) has them copied
            // as they are, not decoded and encoded again.
            let copy = *level == LEVEL_FILLING && old.iter().all(|p| p.blocks_copyable());
            let mut blocks: Vec<(&Part, partition::BlockRef)> = Vec::new();
            for (key, id) in &keyed {
                points.clear();
                let added = (|| {
                    if copy {
                        blocks.clear();
                        for p in old {
                            blocks.extend(p.blocks_of(*id)?.iter().map(|b| (&**p, *b)));
                        }
                        blocks.sort_unstable_by_key(|(_, b)| b.first_ns);
                        if blocks.windows(2).all(|w| w[0].1.last_ns < w[1].1.first_ns) {
                            return writer.copy_blocks(*id, key, &blocks);
                        }
                    }
                    for p in old {
                        p.read_range(*id, i64::MIN, i64::MAX, &mut points)?;
                    }
                    points.sort_unstable_by_key(|(t, _)| *t);
                    points.dedup_by_key(|(t, _)| *t);
                    writer.add(*id, key, &points)
                })();
                if let Err(e) = added {
                    writer.abandon();
                    return Err(e);
                }
            }
            let merged = writer.finish()?;
            sync_dir(&parts_dir).map_err(|source| StoreError::Io { path: parts_dir.clone(), source })?;
            crash_point("compaction-renamed");
            let line = manifest::Line::Parts {
                add: vec![part_line(&merged)],
                remove: old.iter().map(|p| p.name.clone()).collect(),
                through: None,
            };
            self.record(&mut lock(&self.commit), &[line])?;
            crash_point("compaction-recorded");
            {
                let mut state = lock(&self.state);
                let v = state.parts.entry(*day).or_default();
                v.retain(|q| !old.iter().any(|p| p.number == q.number));
                v.push(Arc::new(merged));
                for p in old {
                    state.cache.forget(p.number);
                }
            }
            for p in old {
                if let Err(error) = std::fs::remove_file(p.path()) {
                    tracing::warn!(path = %p.path().display(), %error, "Cannot delete a merged partition file");
                }
                crash_point("compaction-deleted");
            }
            match *level {
                LEVEL_DAY => {
                    tracing::info!(day, files = old.len(), "Store compacted a closed day into one partition file")
                }
                _ => {
                    tracing::info!(day, files = old.len(), "Store merged the flushed files of a day still being filled")
                }
            }
        }
        Ok(days.len())
    }

    /// Deletes the log segments whose readings are all in partition files and that no
    /// reader of the log (InfluxDB write-through, compliance checkpoint) still needs; none
    /// before [`Store::start_retiring`] nor while a [`Pin`] is held. Returns the segments deleted.
    pub fn retire_segments(&self) -> Vec<u64> {
        let _flushing = lock(&self.flushing);
        if !self.retiring.load(Ordering::Acquire) || self.pinned() {
            return Vec::new();
        }
        let through = lock(&self.state).through;
        let limit = self.held_from().map_or(through.segment, |h| h.segment.min(through.segment));
        let written = self.written_segment.load(Ordering::Acquire);
        let segments = match log::list_segments(&self.dir) {
            Ok(s) => s,
            Err(error) => {
                tracing::warn!(%error, "Cannot list the store's segments");
                return Vec::new();
            }
        };
        let retired: Vec<u64> = segments.into_iter().filter(|n| *n < limit && *n < written).collect();
        if retired.is_empty() {
            return retired;
        }
        let lines: Vec<_> = retired
            .iter()
            .map(|n| manifest::Line::Drop {
                segment: *n,
                reason: "retired: its readings are in partition files".into(),
            })
            .collect();
        if let Err(error) = self.record(&mut lock(&self.commit), &lines) {
            tracing::warn!(%error, "Cannot record retired segments in the manifest; kept for now");
            return Vec::new();
        }
        crash_point("retire-recorded");
        for n in &retired {
            lock(&self.state).segment_times.remove(n);
            let _ = std::fs::remove_file(manifest::content_path(&self.dir, *n));
            let path = log::segment_path(&self.dir, *n);
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "Cannot delete a retired segment");
            }
            crash_point("retire-deleted");
        }
        tracing::debug!(segments = retired.len(), "Store retired log segments");
        retired
    }

    /// Lets [`Store::retire_segments`] delete segments: call once every reader of the log
    /// registered its hold ([`Store::hold`]).
    pub fn start_retiring(&self) {
        self.retiring.store(true, Ordering::Release);
    }

    /// One round of upkeep: flushes the memtable past its bound or once it holds a closed
    /// day, merges closed days' files, retires segments.
    pub fn maintain(&self) {
        self.maintain_at(now_ns());
    }

    /// [`Store::maintain`] as if it were `now_ns` (a day closes at its end in Bangkok).
    pub fn maintain_at(&self, now_ns: i64) {
        let today = day_of(now_ns);
        let (len, oldest_ns) = {
            let state = lock(&self.state);
            (state.memtable.len(), state.memtable.oldest_ns())
        };
        if len >= self.memtable_max_readings || oldest_ns.is_some_and(|o| day_of(o) < today) {
            if let Err(error) = self.flush() {
                tracing::warn!(%error, "Cannot flush the store's memtable; it stays in memory and the log");
            }
        }
        if let Err(error) = self.compact(today) {
            tracing::warn!(%error, "Cannot compact the store's closed days");
        }
        self.retire_segments();
        self.release_indexes(today, false);
    }

    /// Lets go of the block indexes of the days before yesterday not read since the last
    /// round (all of them, `now`): memory holds the indexes of the days in use, not of all
    /// history. Returns how many went.
    fn release_indexes(&self, today: i64, now: bool) -> usize {
        let parts: Vec<Arc<Part>> =
            lock(&self.state).parts.range(..today.saturating_sub(1)).flat_map(|(_, v)| v.iter().cloned()).collect();
        let released = parts.iter().filter(|p| p.release_index(now)).count();
        if released > 0 {
            tracing::debug!(files = released, "Store let go of unused partition files' block indexes");
        }
        released
    }

    /// The upkeep of a clean stop, after the last flush: [`Store::maintain`], and the files
    /// of days still open merged as well, so that a stopped store holds one file per day.
    /// A day still open gets more files once the server runs again, merged once it closes.
    pub fn maintain_at_stop(&self) {
        self.maintain();
        if let Err(error) = self.compact(i64::MAX) {
            tracing::warn!(%error, "Cannot merge the open days' partition files at the stop");
        }
    }

    /// Runs [`Store::maintain`] on a thread of its own every `every`, and as soon as the
    /// memtable passes its bound, until the store is dropped.
    pub fn spawn_maintenance(store: &Arc<Store>, every: std::time::Duration) -> std::io::Result<()> {
        let weak: Weak<Store> = Arc::downgrade(store);
        let wake = store.wake.clone();
        std::thread::Builder::new().name("store-maintenance".into()).spawn(move || {
            loop {
                {
                    let (woken, cvar) = &*wake;
                    let mut woken = lock(woken);
                    if !*woken {
                        woken = cvar.wait_timeout(woken, every).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
                    }
                    *woken = false;
                }
                // Not kept alive between rounds: a dropped store ends the thread.
                let Some(store) = weak.upgrade() else { return };
                if store.failed.load(Ordering::Acquire) {
                    continue;
                }
                store.maintain();
            }
        })?;
        Ok(())
    }

    fn wake_maintenance(&self) {
        let (woken, cvar) = &*self.wake;
        *lock(woken) = true;
        cvar.notify_one();
    }
}

/// `inserted` ordered by series id, each series' readings in their batch order: counted
/// into place when the batch's ids lie close together (a body names a few series of one
/// factory, interned together), else sorted.
fn by_series(inserted: &[(u32, i64, usize)]) -> Vec<(u32, i64, usize)> {
    let (Some(low), Some(high)) = (inserted.iter().map(|r| r.0).min(), inserted.iter().map(|r| r.0).max()) else {
        return Vec::new();
    };
    let span = (high - low) as usize + 1;
    if span > 4 * inserted.len().max(1024) {
        let mut sorted = inserted.to_vec();
        sorted.sort_unstable_by_key(|&(id, _, i)| (id, i));
        return sorted;
    }
    let mut starts = vec![0usize; span + 1];
    for r in inserted {
        starts[(r.0 - low) as usize + 1] += 1;
    }
    for k in 1..=span {
        starts[k] += starts[k - 1];
    }
    let mut out = vec![(0, 0, 0); inserted.len()];
    for r in inserted {
        let at = &mut starts[(r.0 - low) as usize];
        out[*at] = *r;
        *at += 1;
    }
    out
}

impl State {
    /// The newest time of series `id` in the batch being appended and not yet in the
    /// memtable (`i64::MIN` when none).
    fn batch_newest(&mut self, id: u32) -> i64 {
        let i = id as usize;
        if self.batch_newest_ns.len() <= i {
            self.batch_newest_ns.resize(i + 1, i64::MIN);
        }
        self.batch_newest_ns[i]
    }

    /// Puts the batch's readings checked so far (not yet in the memtable) in it, a run per
    /// series, and forgets their newest times.
    fn insert_runs(&mut self, inserted: &[(u32, i64, usize)], batch: &[impl Offered]) {
        // Each series' run in batch order, which is its time order.
        let by_series = by_series(inserted);
        let mut run = Vec::new();
        for group in by_series.chunk_by(|a, b| a.0 == b.0) {
            run.clear();
            run.extend(group.iter().map(|&(_, t, i)| (t, batch[i].stored())));
            self.memtable.insert_run(group[0].0, &run);
            self.batch_newest_ns[group[0].0 as usize] = i64::MIN;
        }
    }

    /// Takes a refused batch's readings back out of the memtable (if they went in) and
    /// forgets their newest times.
    fn undo(&mut self, inserted: &[(u32, i64, usize)], in_memtable: bool) {
        for &(id, t, _) in inserted {
            if in_memtable {
                self.memtable.remove(id, t);
            }
            self.batch_newest_ns[id as usize] = i64::MIN;
        }
    }

    /// Series `id`'s reading at `time_ns`, wherever it is: the memtable, the one being
    /// flushed, or a partition file of its day (whose block is read only if its span holds
    /// the time: a reading newer than a series' stored ones reads nothing).
    fn get(&mut self, id: u32, time_ns: i64) -> Result<Option<Stored>, StoreError> {
        let i = id as usize;
        if self.memtable_near.len() <= i {
            self.memtable_near.resize(i + 1, 0);
        }
        if let Some(s) = self.memtable.get_near(id, time_ns, &mut self.memtable_near[i]) {
            return Ok(Some(s));
        }
        if let Some(s) = self.frozen.as_ref().and_then(|f| f.get(id, time_ns)) {
            return Ok(Some(s));
        }
        if self.files_newest_ns.get(id as usize).is_none_or(|newest| time_ns > *newest) {
            return Ok(None);
        }
        if let Some(parts) = self.parts.get(&day_of(time_ns)) {
            for p in parts {
                if let Some(s) = self.cache.get(p, id, time_ns)? {
                    return Ok(Some(s));
                }
            }
        }
        Ok(None)
    }

    /// Raises the newest times in files by those of a file now in use.
    fn note_newest(&mut self, part: &Part) -> Result<(), StoreError> {
        for (id, (_, last_ns, _)) in part.summary()? {
            let i = id as usize;
            if self.files_newest_ns.len() <= i {
                self.files_newest_ns.resize(i + 1, i64::MIN);
            }
            self.files_newest_ns[i] = self.files_newest_ns[i].max(last_ns);
        }
        Ok(())
    }

    /// Readings stored.
    fn len(&self) -> usize {
        self.part_readings as usize + self.memtable.len() + self.frozen.as_ref().map_or(0, |f| f.len())
    }

    /// Encodes the batch's new points as one record into the pending buffer.
    fn encode(&mut self, inserted: &[(u32, i64, usize)], batch: &[impl Offered], segment_max_bytes: u64) {
        let mut seal_previous = None;
        if self.segment_bytes >= segment_max_bytes {
            seal_previous = Some(std::mem::take(&mut self.summary).of(&self.index));
            self.segment += 1;
            self.segment_bytes = 0;
        }
        let segment = self.segment;
        if self.pending.last().is_none_or(|p| p.segment != segment) {
            let mut group = Vec::with_capacity(log::GROUP_RECORD_BYTES + inserted.len() * log::POINT_BYTES + 64);
            group.extend_from_slice(&[0; log::GROUP_RECORD_BYTES]);
            self.segment_bytes += log::GROUP_RECORD_BYTES as u64;
            self.pending.push(Pending { segment, bytes: group, seal_previous });
        }
        if self.defined_in.len() < self.index.series.len() {
            self.defined_in.resize(self.index.series.len(), 0);
        }
        let (min, max) = inserted.iter().fold((i64::MAX, i64::MIN), |(a, b), (_, t, _)| (a.min(*t), b.max(*t)));
        let times = self.segment_times.entry(segment).or_insert((min, max));
        *times = (times.0.min(min), times.1.max(max));
        for &(id, t, _) in inserted {
            self.summary.add(id, t);
        }
        let out = &mut self.pending.last_mut().expect("pushed above").bytes;
        let before = out.len();
        let start = log::begin_record(out);
        // Definitions first, so that the points follow as one entry.
        for &(id, _, _) in inserted {
            if self.defined_in[id as usize] != segment {
                log::put_def(out, id, &self.index.series[id as usize].key);
                self.defined_in[id as usize] = segment;
            }
        }
        log::put_points(out, inserted.len(), inserted.iter().map(|&(id, t, i)| (id, t, batch[i].stored())));
        log::finish_record(out, start);
        self.segment_bytes += (out.len() - before) as u64;
        self.seq += 1;
    }
}

fn now_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod tests;
