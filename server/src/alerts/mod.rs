//! Alerts: one per ongoing condition, through pending → firing → acknowledged → resolved,
//! kept forever.
//!
//! The book is an append-only log, `<data_dir>/alerts.log`, one JSON operation a line
//! (`open`, `fire`, `ack`, `resolve`), synced before the change is published; the state is
//! the log replayed. A condition (from the engine) that has an unresolved alert with its key
//! gets no second alert, so a restart, which rebuilds the same conditions from the store,
//! raises nothing twice. A condition must hold `for_s` (pending) before its alert fires;
//! `[alerts.kind.<kind>]` gives a kind its own `for_s` and severity.
//!
//! An alert is worded in Thai and English by [`text::summary`] from its fields and its
//! [`text::Detail`]; the JSON of an alert (API, live events, webhooks) carries both texts as
//! `summary` and `summary_th`, rendered when it is sent.

use std::collections::BTreeMap;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use eitwatch_config::server_config::AlertsSection;

use crate::compliance::{AlertKind, Condition, LimitUsed, Severity};

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

/// An alert as JSON: its fields and its texts.
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
    summary: String,
    summary_th: String,
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
        AlertJson {
            id: self.id,
            key: &self.key,
            kind: self.kind,
            severity: self.severity,
            state: self.state,
            factory: &self.factory,
            point: &self.point,
            parameter: &self.parameter,
            summary: text::summary(self, Lang::En),
            summary_th: text::summary(self, Lang::Th),
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
        .serialize(serializer)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    Open { alert: Box<Alert> },
    Fire { id: u64, at_ns: i64 },
    Ack { id: u64, ack: Ack },
    Resolve { id: u64, at_ns: i64 },
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

#[derive(Debug)]
struct Book {
    alerts: Vec<Alert>,
    open: Open,
    file: std::fs::File,
}

/// The unresolved alerts' indices in `Book::alerts`, found by their key's hash: a slot is
/// 4 bytes, where a map keyed by the key would hold a second copy of it.
#[derive(Debug, Default)]
struct Open(HashTable<u32>);

fn key_hash(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl Open {
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

/// Every alert, kept forever.
#[derive(Debug)]
pub struct AlertBook {
    path: PathBuf,
    policy: AlertsSection,
    book: Mutex<Book>,
}

impl AlertBook {
    /// Reads the log back (none yet: empty). A torn last line (a crash mid-write) is cut.
    pub fn open(path: &Path, policy: AlertsSection) -> std::io::Result<AlertBook> {
        let mut alerts: Vec<Alert> = Vec::new();
        for op in crate::jsonl::read::<Op>(path)? {
            apply(&mut alerts, op);
        }
        let mut open = Open::default();
        for (i, a) in alerts.iter().enumerate() {
            if a.state != State::Resolved {
                open.insert(&alerts, i);
            }
        }
        let file = crate::jsonl::open(path)?;
        Ok(AlertBook { path: path.to_path_buf(), policy, book: Mutex::new(Book { alerts, open, file }) })
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
        let mut next_id = book.alerts.last().map_or(1, |a| a.id + 1);
        let mut seen = FxHashSet::default();
        for c in conditions {
            if !seen.insert(c.key.as_str()) {
                continue;
            }
            let for_ns = (self.policy.for_s(c.kind) as i64).saturating_mul(1_000_000_000);
            match book.open.get(&book.alerts, &c.key).map(|i| &book.alerts[i]) {
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
                if !seen.contains(book.alerts[i].key.as_str()) {
                    ops.push(Op::Resolve { id: book.alerts[i].id, at_ns: now_ns });
                }
            }
        }
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        self.write(&mut book, &ops)?;
        let mut changed = Vec::new();
        for op in ops {
            if let Some(i) = apply_book(&mut book, op) {
                changed.push(i);
            }
        }
        Ok(changed.into_iter().map(|i| book.alerts[i].clone()).collect())
    }

    /// Records an acknowledgement.
    pub fn ack(&self, id: u64, by: &str, comment: &str, now_ns: i64) -> Result<Alert, AckError> {
        let mut book = self.lock();
        let alert = find(&book.alerts, id).map(|i| &book.alerts[i]).ok_or(AckError::NotFound(id))?;
        if let Some(ack) = &alert.ack {
            return Err(AckError::Already { id, by: ack.by.clone() });
        }
        let op = Op::Ack { id, ack: Ack { by: by.to_string(), at_ns: now_ns, comment: comment.to_string() } };
        self.write(&mut book, std::slice::from_ref(&op))
            .map_err(|source| AckError::Io { path: self.path.clone(), source })?;
        let i = apply_book(&mut book, op).ok_or(AckError::NotFound(id))?;
        Ok(book.alerts[i].clone())
    }

    /// One alert.
    pub fn get(&self, id: u64) -> Option<Alert> {
        let book = self.lock();
        find(&book.alerts, id).map(|i| book.alerts[i].clone())
    }

    /// How many alerts are open (not resolved) per kind, severity and state.
    pub fn open_counts(&self) -> BTreeMap<(AlertKind, Severity, State), usize> {
        let book = self.lock();
        let mut counts = BTreeMap::new();
        for i in book.open.indices() {
            let a = &book.alerts[i];
            *counts.entry((a.kind, a.severity, a.state)).or_insert(0) += 1;
        }
        counts
    }

    /// Every alert, newest first (cloned: [`AlertBook::open_counts`] for counts).
    pub fn list(&self) -> Vec<Alert> {
        let mut list = self.lock().alerts.clone();
        list.reverse();
        list
    }
}

/// Applies an operation to the book; the index of the alert it changed.
fn apply_book(book: &mut Book, op: Op) -> Option<usize> {
    let i = apply(&mut book.alerts, op)?;
    if book.alerts[i].state == State::Resolved {
        book.open.remove(&book.alerts, &book.alerts[i].key);
    } else {
        book.open.insert(&book.alerts, i);
    }
    Some(i)
}

/// Where alert `id` is: ids are given in order from 1, so at `id - 1` unless the log says
/// otherwise (then searched).
fn find(alerts: &[Alert], id: u64) -> Option<usize> {
    let at = usize::try_from(id).ok()?.checked_sub(1)?;
    if alerts.get(at).is_some_and(|a| a.id == id) {
        return Some(at);
    }
    alerts.iter().rposition(|a| a.id == id)
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
            let a = &mut alerts[i];
            if a.state != State::Resolved {
                a.state = State::Acknowledged;
            }
            a.ack = Some(Box::new(ack));
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
mod tests;

#[cfg(test)]
mod unit_tests {
    /// Every alert ever raised is kept: its size is memory that only grows. An upper bound:
    /// a larger alert costs every alert in the book.
    #[test]
    fn an_alert_is_at_most_232_bytes() {
        assert!(size_of::<super::Alert>() <= 232, "{}", size_of::<super::Alert>());
    }
}
