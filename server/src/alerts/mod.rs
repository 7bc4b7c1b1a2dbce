//! Alerts: one per ongoing condition, through pending → firing → acknowledged → resolved,
//! kept forever: the live ones in memory, the resolved history on disk.
//!
//! A condition (from the engine) that has an unresolved alert with its key gets no second
//! alert, so a restart, which rebuilds the same conditions from the store, raises nothing
//! twice. A condition must hold `for_s` (pending) before its alert fires;
//! `[alerts.kind.<kind>]` gives a kind its own `for_s` and severity.
//!
//! ## On disk
//! - `<data_dir>/alerts.log`, the live log: one JSON operation a line (`open` with the whole
//!   alert, its fields as in the API without `summary` and `summary_th`; `fire`, `ack`,
//!   `resolve`), appended and synced before a change is published.
//!   Replayed at open, it holds every unresolved alert and the resolved ones not yet
//!   archived. An `ack` of an alert not in it is of an archived alert.
//! - `<data_dir>/alerts/<seq>.seg`, the archive ([`archive`] specifies the format): sealed,
//!   compressed segments of resolved alerts.
//!
//! Once `KEEP_RESOLVED + SEGMENT_ALERTS` resolved alerts are in the log, compaction writes
//! all but the newest `KEEP_RESOLVED` of them into new segments of at most
//! `SEGMENT_ALERTS` each (each written to a `.tmp`, synced, renamed, its directory synced),
//! then rewrites the log with only what stays in it (`alerts.log.tmp`, synced, renamed, the
//! directory synced). A crash in between leaves alerts both in a segment and in the log: at
//! open, an alert found in both is taken once, from the segment (an acknowledgement only the
//! log has is carried over to the segment). A log holding more resolved alerts than that (a
//! log written before the archive existed holds them all) is archived the same way as it is
//! replayed, a segment at a time. An acknowledgement of an archived alert is logged first,
//! then its segment is replaced whole; at open, a logged `ack` its segment lacks is carried
//! over the same way.
//!
//! ## In memory
//! The log's alerts (every unresolved one and at most `KEEP_RESOLVED + SEGMENT_ALERTS`
//! resolved: what the board, the status and the notifier read) and the segments' headers.
//! [`AlertBook::get`] and [`AlertBook::history`] read the segments on demand, one at a
//! time (more only where their ids interleave), newest first.
//!
//! An alert is worded in Thai and English by [`text::summary`] from its fields and its
//! [`text::Detail`]; the JSON of an alert (API, live events, webhooks) carries both texts as
//! `summary` and `summary_th`, rendered when it is sent.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::hash::BuildHasher;
use std::io::BufRead as _;
use std::ops::ControlFlow;

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use eitwatch_config::server_config::AlertsSection;

use crate::compliance::{AlertKind, Condition, LimitUsed, Severity};

pub mod archive;
pub mod text;

use text::{Detail, Lang};

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The condition holds, not yet for `for_s`.
    Pending,
    /// The condition holds.
    Firing,
    /// Someone took note; the condition still holds.
    Acknowledged,
    /// It no longer holds.
    Resolved,
}

/// Who acknowledged, when, and what they said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// Token id (and kind) that acknowledged.
    pub by: String,
    /// When, ns since the epoch.
    pub at_ns: i64,
    /// Their comment.
    pub comment: String,
}

/// One alert. Its JSON adds `summary` (English) and `summary_th` (Thai), worded by
/// [`text::summary`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Alert {
    /// Unique, increasing.
    pub id: u64,
    /// The condition's key.
    pub key: String,
    /// Kind.
    pub kind: AlertKind,
    /// Severity.
    pub severity: Severity,
    /// Where it is.
    pub state: State,
    /// Factory.
    pub factory: String,
    /// Point.
    pub point: String,
    /// Parameter, where it is about one.
    pub parameter: Option<String>,
    /// What its text needs beyond these fields (`None` in alerts of logs written before the
    /// detail was kept: their text says less).
    #[serde(default)]
    pub detail: Option<Box<Detail>>,
    /// The value that raised it.
    pub value: Option<f64>,
    /// The limit, for exceedances (boxed: most conditions have none, and inline it would
    /// double the size of every one).
    pub limit: Option<Box<LimitUsed>>,
    /// Measurement time the condition started at.
    pub since_ns: i64,
    /// The deadline, for deadline alerts.
    pub deadline_ns: Option<i64>,
    /// When the condition was first seen (server clock).
    pub pending_ns: i64,
    /// When it fired.
    pub firing_ns: Option<i64>,
    /// The acknowledgement (boxed: most alerts have none, and inline it would cost every one
    /// 48 bytes more).
    pub ack: Option<Box<Ack>>,
    /// When it resolved.
    pub resolved_ns: Option<i64>,
}

impl Alert {
    /// The alert in words ([`text::summary`]).
    pub fn summary(&self, lang: Lang) -> String {
        text::summary(self, lang)
    }
}

/// An alert as JSON: its fields and, but in the log, its texts.
#[derive(Serialize)]
struct AlertJson<'a> {
    id: u64,
    key: &'a str,
    kind: AlertKind,
    severity: Severity,
    state: State,
    factory: &'a str,
    point: &'a str,
    parameter: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary_th: Option<String>,
    detail: &'a Option<Box<Detail>>,
    value: Option<f64>,
    limit: &'a Option<Box<LimitUsed>>,
    since_ns: i64,
    deadline_ns: Option<i64>,
    pending_ns: i64,
    firing_ns: Option<i64>,
    ack: &'a Option<Box<Ack>>,
    resolved_ns: Option<i64>,
}

impl Serialize for Alert {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json(true).serialize(serializer)
    }
}

impl Alert {
    fn json(&self, texts: bool) -> AlertJson<'_> {
        AlertJson {
            id: self.id,
            key: &self.key,
            kind: self.kind,
            severity: self.severity,
            state: self.state,
            factory: &self.factory,
            point: &self.point,
            parameter: &self.parameter,
            summary: texts.then(|| text::summary(self, Lang::En)),
            summary_th: texts.then(|| text::summary(self, Lang::Th)),
            detail: &self.detail,
            value: self.value,
            limit: &self.limit,
            since_ns: self.since_ns,
            deadline_ns: self.deadline_ns,
            pending_ns: self.pending_ns,
            firing_ns: self.firing_ns,
            ack: &self.ack,
            resolved_ns: self.resolved_ns,
        }
    }
}

/// An alert as the log keeps it: its fields, without the texts (worded when sent).
fn stored<A: std::ops::Deref<Target = Alert>, S: serde::Serializer>(alert: &A, s: S) -> Result<S::Ok, S::Error> {
    alert.json(false).serialize(s)
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    Open {
        #[serde(serialize_with = "stored")]
        alert: Box<Alert>,
    },
    Fire {
        id: u64,
        at_ns: i64,
    },
    Ack {
        id: u64,
        ack: Ack,
    },
    Resolve {
        id: u64,
        at_ns: i64,
    },
}

impl Op {
    /// The alert an operation on an existing alert is about.
    fn id(&self) -> Option<u64> {
        match self {
            Op::Open { .. } => None,
            Op::Fire { id, .. } | Op::Ack { id, .. } | Op::Resolve { id, .. } => Some(*id),
        }
    }
}

/// Why an acknowledgement was refused.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    /// No such alert.
    #[error("alert {0} does not exist")]
    NotFound(u64),
    /// Already acknowledged.
    #[error("alert {id} was already acknowledged by {by}")]
    Already {
        /// The alert.
        id: u64,
        /// Who.
        by: String,
    },
    /// The log could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The log.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

/// Resolved alerts the log keeps after a compaction: the newest, for the board and the
/// notifier.
const KEEP_RESOLVED: usize = 256;
/// Alerts in a segment, at most; a compaction waits for this many beyond `KEEP_RESOLVED`.
const SEGMENT_ALERTS: usize = 512;

/// When the log is compacted: `KEEP_RESOLVED` and `SEGMENT_ALERTS`, smaller in tests.
#[derive(Debug, Clone, Copy)]
struct Limits {
    keep_resolved: usize,
    segment_alerts: usize,
}

const LIMITS: Limits = Limits { keep_resolved: KEEP_RESOLVED, segment_alerts: SEGMENT_ALERTS };

#[derive(Debug)]
struct Book {
    /// The log's alerts, by id.
    live: Vec<Alert>,
    /// How many of them are resolved.
    resolved: usize,
    open: Open,
    file: std::fs::File,
    archive: archive::Archive,
    next_id: u64,
}

/// The unresolved alerts' indices in `Book::live`, found by their key's hash: a slot is
/// 4 bytes, where a map keyed by the key would hold a second copy of it.
#[derive(Debug, Default)]
struct Open(HashTable<u32>);

fn key_hash(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl Open {
    fn of(alerts: &[Alert]) -> Open {
        let mut open = Open::default();
        for (i, a) in alerts.iter().enumerate() {
            if a.state != State::Resolved {
                open.insert(alerts, i);
            }
        }
        open
    }

    fn get(&self, alerts: &[Alert], key: &str) -> Option<usize> {
        self.0.find(key_hash(key), |&i| alerts[i as usize].key == key).map(|&i| i as usize)
    }

    fn insert(&mut self, alerts: &[Alert], i: usize) {
        let key = &alerts[i].key;
        match self.0.find_mut(key_hash(key), |&j| alerts[j as usize].key == *key) {
            Some(slot) => *slot = i as u32,
            None => {
                self.0.insert_unique(key_hash(key), i as u32, |&j| key_hash(&alerts[j as usize].key));
            }
        }
    }

    fn remove(&mut self, alerts: &[Alert], key: &str) {
        if let Ok(entry) = self.0.find_entry(key_hash(key), |&i| alerts[i as usize].key == key) {
            entry.remove();
        }
    }

    fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().map(|&i| i as usize)
    }
}

/// An operation as the log is written: the alert by reference.
#[derive(Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum OpRef<'a> {
    Open {
        #[serde(serialize_with = "stored")]
        alert: &'a Alert,
    },
}

/// Every alert: the live ones in memory, the resolved history in the archive.
#[derive(Debug)]
pub struct AlertBook {
    path: PathBuf,
    policy: AlertsSection,
    limits: Limits,
    book: Mutex<Book>,
}

fn invalid(path: &Path, line: usize, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: line {line}: {e}", path.display()))
}

/// Acknowledgements of archived alerts found in the log: alert id and acknowledgement.
type Orphans = Vec<(u64, Ack)>;

/// Replays the log at `path` (none: empty), a line at a time: its alerts in id order, and
/// the acknowledgements of alerts not in it (archived ones). A torn last line is skipped.
/// Once `limits` allow a segment of resolved alerts, the oldest go into the archive as the
/// replay goes (a log written before the archive existed holds the whole history); whether
/// any did.
fn replay(path: &Path, archive: &mut archive::Archive, limits: Limits) -> std::io::Result<(Vec<Alert>, Orphans, bool)> {
    let (mut live, mut orphans) = (Vec::new(), Vec::new());
    let context = |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((live, orphans, false)),
        Err(e) => return Err(context(e)),
    };
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    let (mut resolved, mut archived, mut archiving) = (0usize, false, true);
    for n in 1.. {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(context)? == 0 {
            break;
        }
        let Some(whole) = line.strip_suffix(b"\n") else {
            tracing::warn!(file = %path.display(), bytes = line.len(), "Skipping a torn last line (a write never acknowledged)");
            break;
        };
        let op: Op = serde_json::from_slice(whole).map_err(|e| invalid(path, n, e))?;
        match op {
            // In id order but for a log rewritten (or edited) by hand.
            Op::Open { alert } => {
                resolved += usize::from(alert.state == State::Resolved);
                match live.binary_search_by_key(&alert.id, |a: &Alert| a.id) {
                    Ok(i) => {
                        resolved -= usize::from(live[i].state == State::Resolved);
                        live[i] = *alert;
                    }
                    Err(at) => live.insert(at, *alert),
                }
            }
            Op::Ack { id, ack } if find(&live, id).is_none() => orphans.push((id, ack)),
            op => {
                let was = op.id().and_then(|id| find(&live, id)).map(|i| live[i].state);
                if let Some(i) = apply(&mut live, op) {
                    resolved += usize::from(was != Some(State::Resolved) && live[i].state == State::Resolved);
                }
            }
        }
        if archiving && resolved >= limits.keep_resolved + limits.segment_alerts {
            match archive_oldest(&mut live, &mut orphans, archive, limits.segment_alerts.max(1)) {
                Ok(taken) => {
                    resolved -= taken;
                    archived = true;
                }
                Err(error) => {
                    tracing::error!(file = %path.display(), %error, "Cannot compact the alert log");
                    archiving = false;
                }
            }
        }
    }
    Ok((live, orphans, archived))
}

/// Moves the `n` oldest resolved alerts of `live` into a new segment (those a segment holds
/// already, from a compaction a crash interrupted, left out); how many left `live`. On an
/// error, `live` is as it was.
fn archive_oldest(
    live: &mut Vec<Alert>,
    orphans: &mut Orphans,
    archive: &mut archive::Archive,
    n: usize,
) -> std::io::Result<usize> {
    let (mut chunk, mut kept) = (Vec::with_capacity(n), Vec::with_capacity(live.len()));
    for a in std::mem::take(live) {
        if chunk.len() < n && a.state == State::Resolved {
            chunk.push(a);
        } else {
            kept.push(a);
        }
    }
    let taken = chunk.len();
    let mut carried = Orphans::new();
    let written = settle(&mut chunk, &mut carried, archive)
        .and_then(|_| if chunk.is_empty() { Ok(()) } else { archive.append(&chunk).map(|_| ()).map_err(Into::into) });
    match written {
        Ok(()) => {
            *live = kept;
            orphans.extend(carried);
            Ok(taken)
        }
        Err(e) => {
            kept.extend(chunk);
            kept.sort_by_key(|a| a.id);
            *live = kept;
            Err(e)
        }
    }
}

impl AlertBook {
    /// Opens the book of the log at `path` and the archive beside it (`alerts/` for
    /// `alerts.log`); none yet: empty. A torn last line (a crash mid-write) is cut; what a
    /// crash in a compaction left is settled (an alert in both the log and a segment taken
    /// once) and the compaction finished.
    pub fn open(path: &Path, policy: AlertsSection) -> std::io::Result<AlertBook> {
        AlertBook::open_with(path, policy, LIMITS)
    }

    fn open_with(path: &Path, policy: AlertsSection, limits: Limits) -> std::io::Result<AlertBook> {
        let mut archive = archive::Archive::open(&path.with_extension(""))?;
        let tmp = path.with_extension("log.tmp");
        if tmp.exists() {
            tracing::warn!(file = %tmp.display(), "Removing an alert log rewrite a crash left unfinished");
            std::fs::remove_file(&tmp)?;
        }
        let (mut live, mut orphans, archived) = replay(path, &mut archive, limits)?;
        let mut settled = settle(&mut live, &mut orphans, &archive)?;
        settled |= archived || !orphans.is_empty();
        for (id, ack) in orphans {
            carry_ack(&mut archive, id, ack)?;
        }
        let file = crate::jsonl::open(path)?;
        let resolved = live.iter().filter(|a| a.state == State::Resolved).count();
        let next_id = live.last().map_or(0, |a| a.id).max(archive.last_id().unwrap_or(0)) + 1;
        let open = Open::of(&live);
        let book = AlertBook {
            path: path.to_path_buf(),
            policy,
            limits,
            book: Mutex::new(Book { live, resolved, open, file, archive, next_id }),
        };
        {
            // The book is whole in memory: what is not done here is done at the next open.
            let mut b = book.lock();
            let done = if settled { book.rewrite_log(&mut b) } else { Ok(()) };
            if let Err(error) = done.and_then(|()| book.compact_if_due(&mut b)) {
                tracing::error!(file = %path.display(), %error, "Cannot compact the alert log");
            }
        }
        Ok(book)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, book: &mut Book, ops: &[Op]) -> std::io::Result<()> {
        crate::jsonl::append_each(&mut book.file, ops)
    }

    /// Brings the book in line with the conditions that hold at `now_ns`: opens an alert
    /// per new condition, fires those pending for `for_s`, resolves those whose condition
    /// is gone. Returns the alerts that changed.
    pub fn reconcile(&self, conditions: &[Condition], now_ns: i64) -> std::io::Result<Vec<Alert>> {
        self.update(conditions, now_ns, true)
    }

    /// Opens an alert per new condition and fires those pending for `for_s`, resolving
    /// nothing: for conditions just judged (an exceeding grab sample), raised at once,
    /// between the passes that see every condition.
    pub fn raise(&self, conditions: &[Condition], now_ns: i64) -> std::io::Result<Vec<Alert>> {
        self.update(conditions, now_ns, false)
    }

    fn update(&self, conditions: &[Condition], now_ns: i64, resolve: bool) -> std::io::Result<Vec<Alert>> {
        let mut book = self.lock();
        let mut ops = Vec::new();
        let mut next_id = book.next_id;
        let mut seen = FxHashSet::default();
        for c in conditions {
            if !seen.insert(c.key.as_str()) {
                continue;
            }
            let for_ns = (self.policy.for_s(c.kind) as i64).saturating_mul(1_000_000_000);
            match book.open.get(&book.live, &c.key).map(|i| &book.live[i]) {
                Some(a) if a.state == State::Pending && now_ns - a.pending_ns >= for_ns => {
                    ops.push(Op::Fire { id: a.id, at_ns: now_ns });
                }
                Some(_) => {}
                None => {
                    let fire = for_ns == 0;
                    let alert = Alert {
                        id: next_id,
                        key: c.key.clone(),
                        kind: c.kind,
                        severity: self.policy.severity(c.kind).unwrap_or(c.severity),
                        state: if fire { State::Firing } else { State::Pending },
                        factory: c.factory.clone(),
                        point: c.point.clone(),
                        parameter: c.parameter.clone(),
                        detail: c.detail.clone(),
                        value: c.value,
                        limit: c.limit.clone(),
                        since_ns: c.since_ns,
                        deadline_ns: c.deadline_ns,
                        pending_ns: now_ns,
                        firing_ns: fire.then_some(now_ns),
                        ack: None,
                        resolved_ns: None,
                    };
                    next_id += 1;
                    tracing::warn!(factory = %alert.factory, point = %alert.point, parameter = alert.parameter.as_deref().unwrap_or(""), kind = alert.kind.as_str(), summary = %alert.summary(Lang::En), "Alert");
                    ops.push(Op::Open { alert: Box::new(alert) });
                }
            }
        }
        if resolve {
            for i in book.open.indices() {
                if !seen.contains(book.live[i].key.as_str()) {
                    ops.push(Op::Resolve { id: book.live[i].id, at_ns: now_ns });
                }
            }
        }
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        self.write(&mut book, &ops)?;
        book.next_id = next_id;
        let mut changed = Vec::new();
        for op in ops {
            if let Some(i) = apply_book(&mut book, op) {
                changed.push(book.live[i].clone());
            }
        }
        // The change is stored and is published whatever becomes of the compaction.
        if let Err(error) = self.compact_if_due(&mut book) {
            tracing::error!(file = %self.path.display(), %error, "Cannot compact the alert log");
        }
        Ok(changed)
    }

    /// Records an acknowledgement.
    pub fn ack(&self, id: u64, by: &str, comment: &str, now_ns: i64) -> Result<Alert, AckError> {
        let mut book = self.lock();
        let ack = Ack { by: by.to_string(), at_ns: now_ns, comment: comment.to_string() };
        let Some(i) = find(&book.live, id) else { return self.ack_archived(&mut book, id, ack) };
        if let Some(ack) = &book.live[i].ack {
            return Err(AckError::Already { id, by: ack.by.clone() });
        }
        let op = Op::Ack { id, ack };
        self.write(&mut book, std::slice::from_ref(&op))
            .map_err(|source| AckError::Io { path: self.path.clone(), source })?;
        let i = apply_book(&mut book, op).ok_or(AckError::NotFound(id))?;
        Ok(book.live[i].clone())
    }

    /// Acknowledges an archived alert: logged, then carried into its segment.
    fn ack_archived(&self, book: &mut Book, id: u64, ack: Ack) -> Result<Alert, AckError> {
        let archived = |source: archive::ArchiveError| AckError::Io {
            path: book.archive.dir().to_path_buf(),
            source: source.into(),
        };
        let Some((seq, mut alert)) = book.archive.get(id).map_err(archived)? else {
            return Err(AckError::NotFound(id));
        };
        if let Some(ack) = &alert.ack {
            return Err(AckError::Already { id, by: ack.by.clone() });
        }
        let op = Op::Ack { id, ack: ack.clone() };
        self.write(book, std::slice::from_ref(&op))
            .map_err(|source| AckError::Io { path: self.path.clone(), source })?;
        set_ack(&mut alert, ack);
        // Logged: a failure here is made good at the next open.
        if let Err(error) = book.archive.replace(seq, &alert) {
            tracing::error!(alert = id, %error, "Cannot record an acknowledgement in the alert archive yet");
        }
        Ok(alert)
    }

    /// One alert, from memory or the archive.
    pub fn get(&self, id: u64) -> Option<Alert> {
        self.get_many(&BTreeSet::from([id])).remove(&id)
    }

    /// The alerts of `ids` there are, from memory or the archive (each archive segment read
    /// once, however many of them it holds), by id.
    pub fn get_many(&self, ids: &BTreeSet<u64>) -> BTreeMap<u64, Alert> {
        let (mut found, archive) = {
            let book = self.lock();
            let found: BTreeMap<u64, Alert> =
                ids.iter().filter_map(|&id| find(&book.live, id).map(|i| (id, book.live[i].clone()))).collect();
            (found, book.archive.clone())
        };
        let rest: BTreeSet<u64> = ids.iter().copied().filter(|id| !found.contains_key(id)).collect();
        if rest.is_empty() {
            return found;
        }
        match archive.get_many(&rest) {
            Ok(archived) => found.extend(archived),
            Err(error) => tracing::error!(alerts = rest.len(), %error, "Cannot read the alert archive"),
        }
        found
    }

    /// How many alerts are open (not resolved) per kind, severity and state.
    pub fn open_counts(&self) -> BTreeMap<(AlertKind, Severity, State), usize> {
        let book = self.lock();
        let mut counts = BTreeMap::new();
        for i in book.open.indices() {
            let a = &book.live[i];
            *counts.entry((a.kind, a.severity, a.state)).or_insert(0) += 1;
        }
        counts
    }

    /// The unresolved alerts, newest first.
    pub fn open_alerts(&self) -> Vec<Alert> {
        let book = self.lock();
        book.live.iter().rev().filter(|a| a.state != State::Resolved).cloned().collect()
    }

    /// How many alerts there are, every state.
    pub fn len(&self) -> u64 {
        let book = self.lock();
        book.live.len() as u64 + book.archive.count()
    }

    /// Whether there is no alert at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The alerts whose condition started in `[from_ns, to_ns)`, newest first, each given
    /// to `visit` until it breaks: the log's from memory, then the archive's, read a segment
    /// at a time (those whose ids interleave together), skipping the segments outside the
    /// span.
    pub fn history(
        &self,
        from_ns: i64,
        to_ns: i64,
        mut visit: impl FnMut(Alert) -> ControlFlow<()>,
    ) -> std::io::Result<()> {
        let within = |a: &Alert| a.since_ns >= from_ns && a.since_ns < to_ns;
        let (live, archive) = {
            let book = self.lock();
            (book.live.iter().filter(|a| within(a)).cloned().collect::<Vec<_>>(), book.archive.clone())
        };
        let mut segments: Vec<archive::Segment> =
            archive.segments().iter().filter(|s| s.overlaps(from_ns, to_ns)).copied().collect();
        // Those that may hold the largest ids first.
        segments.sort_by_key(|s| std::cmp::Reverse(s.last_id));
        // Sources, newest alert last in each; the log's is source 0 and wins a tie.
        let mut sources: Vec<Vec<Alert>> = vec![live];
        let mut heads = BinaryHeap::new();
        if let Some(a) = sources[0].last() {
            heads.push((a.id, std::cmp::Reverse(0usize)));
        }
        let mut next = 0;
        let mut last_given = None;
        loop {
            let top = heads.peek().map(|&(id, _)| id);
            if let Some(s) = segments.get(next).filter(|s| top.is_none_or(|t| s.last_id > t)) {
                next += 1;
                let mut alerts = archive::read(&archive.path(s.seq))?;
                alerts.retain(|a| within(a));
                if let Some(a) = alerts.last() {
                    heads.push((a.id, std::cmp::Reverse(sources.len())));
                }
                sources.push(alerts);
                continue;
            }
            let Some((id, std::cmp::Reverse(src))) = heads.pop() else { break };
            let Some(alert) = sources[src].pop() else { continue };
            match sources[src].last() {
                Some(a) => heads.push((a.id, std::cmp::Reverse(src))),
                None => sources[src] = Vec::new(),
            }
            // One alert in two places (a compaction between the two looks): taken once.
            if last_given == Some(id) {
                continue;
            }
            last_given = Some(id);
            if visit(alert).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Compacts once enough resolved alerts are in the log.
    fn compact_if_due(&self, book: &mut Book) -> std::io::Result<()> {
        if book.resolved < self.limits.keep_resolved + self.limits.segment_alerts {
            return Ok(());
        }
        self.compact(book)
    }

    /// Moves every resolved alert but the newest `KEEP_RESOLVED` into new segments, then
    /// rewrites the log with the rest.
    fn compact(&self, book: &mut Book) -> std::io::Result<()> {
        let archived = book.resolved.saturating_sub(self.limits.keep_resolved);
        if archived == 0 {
            return Ok(());
        }
        let mut left = archived;
        let (mut out, mut kept) = (Vec::with_capacity(archived), Vec::with_capacity(book.live.len() - archived));
        for a in std::mem::take(&mut book.live) {
            if left > 0 && a.state == State::Resolved {
                left -= 1;
                out.push(a);
            } else {
                kept.push(a);
            }
        }
        let mut written = 0;
        let mut result: std::io::Result<()> = Ok(());
        for chunk in out.chunks(self.limits.segment_alerts.max(1)) {
            match book.archive.append(chunk) {
                Ok(_) => written += chunk.len(),
                Err(e) => {
                    result = Err(e.into());
                    break;
                }
            }
        }
        // What no segment took stays in the log, in id order.
        if written < out.len() {
            kept.extend(out.drain(written..));
            kept.sort_by_key(|a| a.id);
        }
        book.live = kept;
        book.live.shrink_to_fit();
        book.resolved -= written;
        book.open = Open::of(&book.live);
        tracing::info!(file = %self.path.display(), archived = written, kept = book.live.len(), segments = book.archive.segments().len(), "Alert log compacted");
        result?;
        self.rewrite_log(book)
    }

    /// Rewrites the log with the live alerts only: tmp, sync, rename, sync the directory.
    fn rewrite_log(&self, book: &mut Book) -> std::io::Result<()> {
        let ops: Vec<OpRef> = book.live.iter().map(|alert| OpRef::Open { alert }).collect();
        let bytes = crate::jsonl::lines(&ops)?;
        match crate::files::replace(&self.path, &self.path.with_extension("log.tmp"), &bytes, 0o666) {
            Ok(file) => {
                book.file = file;
                Ok(())
            }
            Err(mut e) => {
                // Appends go on in the file in place, whichever it is.
                if let Some(file) = e.replaced.take() {
                    book.file = file;
                }
                Err(std::io::Error::new(e.source.kind(), e.to_string()))
            }
        }
    }
}

/// Drops from `live` the resolved alerts a segment holds too (a crash between a segment's
/// rename and the log's), an acknowledgement only the log has going to `orphans`; whether
/// any was dropped.
fn settle(live: &mut Vec<Alert>, orphans: &mut Orphans, archive: &archive::Archive) -> std::io::Result<bool> {
    let mut dropped = FxHashSet::default();
    for s in archive.segments() {
        if !live.iter().any(|a| a.state == State::Resolved && s.may_hold(a.id)) {
            continue;
        }
        for archived in archive::read(&archive.path(s.seq))? {
            let Some(i) = find(live, archived.id) else { continue };
            if live[i].state != State::Resolved {
                continue;
            }
            if let (Some(ack), None) = (&live[i].ack, &archived.ack) {
                orphans.push((archived.id, (**ack).clone()));
            }
            dropped.insert(archived.id);
        }
    }
    if dropped.is_empty() {
        return Ok(false);
    }
    tracing::warn!(
        alerts = dropped.len(),
        "Alerts both in the alert log and its archive (a compaction a crash interrupted): taken once"
    );
    live.retain(|a| !dropped.contains(&a.id));
    Ok(true)
}

/// Carries a logged acknowledgement of an archived alert into its segment, if it lacks it.
fn carry_ack(archive: &mut archive::Archive, id: u64, ack: Ack) -> std::io::Result<()> {
    let Some((seq, mut alert)) = archive.get(id)? else {
        tracing::warn!(alert = id, "An acknowledgement of an alert found nowhere: ignored");
        return Ok(());
    };
    if alert.ack.is_none() {
        set_ack(&mut alert, ack);
        archive.replace(seq, &alert)?;
    }
    Ok(())
}

fn set_ack(a: &mut Alert, ack: Ack) {
    if a.state != State::Resolved {
        a.state = State::Acknowledged;
    }
    a.ack = Some(Box::new(ack));
}

/// Applies an operation to the book; the index of the alert it changed.
fn apply_book(book: &mut Book, op: Op) -> Option<usize> {
    let i = apply(&mut book.live, op)?;
    let was_open = book.open.get(&book.live, &book.live[i].key) == Some(i);
    if book.live[i].state == State::Resolved {
        if was_open {
            book.resolved += 1;
        }
        book.open.remove(&book.live, &book.live[i].key);
    } else {
        book.open.insert(&book.live, i);
    }
    Some(i)
}

/// Where alert `id` is in `alerts` (in id order).
fn find(alerts: &[Alert], id: u64) -> Option<usize> {
    alerts.binary_search_by_key(&id, |a| a.id).ok()
}

/// Applies an operation; the index of the alert it changed (`None` for an unknown id).
fn apply(alerts: &mut Vec<Alert>, op: Op) -> Option<usize> {
    match op {
        Op::Open { alert } => {
            alerts.push(*alert);
            Some(alerts.len() - 1)
        }
        Op::Fire { id, at_ns } => {
            let i = find(alerts, id)?;
            alerts[i].state = State::Firing;
            alerts[i].firing_ns = Some(at_ns);
            Some(i)
        }
        Op::Ack { id, ack } => {
            let i = find(alerts, id)?;
            set_ack(&mut alerts[i], ack);
            Some(i)
        }
        Op::Resolve { id, at_ns } => {
            let i = find(alerts, id)?;
            alerts[i].state = State::Resolved;
            alerts[i].resolved_ns = Some(at_ns);
            Some(i)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod unit_tests {
    /// Every unresolved alert is in memory (an outage opens one per silent point): an upper
    /// bound, as a larger alert costs every one of them.
    #[test]
    fn an_alert_is_at_most_232_bytes() {
        assert!(size_of::<super::Alert>() <= 232, "{}", size_of::<super::Alert>());
    }
}
