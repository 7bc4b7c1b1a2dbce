//! Corrections: history is append-only, so a wrong reading is never rewritten (a different
//! value for a stored series and time is refused, 409). A correction is a new record that
//! names the reading it corrects (series and measurement time), the value it should have had,
//! why, who and when. The read API shows both; compliance judges the corrected value, and a
//! judgement that changes is a revision naming the correction.
//!
//! Corrections come from a write token for its own factory or an admin token ([`record`];
//! `POST /api/v1/corrections`), value in the catalog's unit of the parameter, and are
//! accepted whole (once on disk) or refused whole, naming the correction and the problem: no
//! such reading, empty reason, value not finite. A correction equal to the reading's current
//! value is a no-op, so a re-sent request stores nothing twice.
//!
//! On disk: `<data_dir>/corrections.log`, one JSON object per line, `fdatasync`ed before the
//! answer; a torn last line (never acknowledged) is cut at open.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use eitwatch_config::reading::Quality;
use serde::{Deserialize, Serialize};

use crate::App;
use crate::auth::{Bearer, Grant};

/// What a writer sends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Factory.
    pub factory: String,
    /// Point.
    pub point: String,
    /// Parameter.
    pub parameter: String,
    /// Measurement time of the reading corrected.
    pub time_ns: i64,
    /// The value it should have had (catalog unit).
    pub value: f64,
    /// Why.
    pub reason: String,
}

/// Why corrections were refused.
#[derive(Debug, thiserror::Error)]
pub enum CorrectionError {
    /// A token that may not correct, or a correction of another factory (audited).
    #[error("{0}")]
    Forbidden(String),
    /// No such reading, an empty reason, a value that is not finite (the correction named).
    #[error("{0}")]
    Invalid(String),
    /// The log could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The log.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

/// A stored correction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    /// Factory.
    pub factory: String,
    /// Point.
    pub point: String,
    /// Parameter.
    pub parameter: String,
    /// Measurement time of the reading corrected.
    pub time_ns: i64,
    /// The corrected value.
    pub value: f64,
    /// The value it replaced (the stored one, or an earlier correction's).
    pub was: f64,
    /// The reading's quality (unchanged by a correction).
    pub quality: Quality,
    /// The reading's "not detected" flag (unchanged).
    pub below_detection_limit: bool,
    /// Why.
    pub reason: String,
    /// Who sent it: the token's kind and id (never its secret).
    pub by: String,
    /// When the server stored it, ns.
    pub at_ns: i64,
}

type Key = (String, String, String, i64);

fn key(c: &Correction) -> Key {
    (c.factory.clone(), c.point.clone(), c.parameter.clone(), c.time_ns)
}

/// The correction log.
#[derive(Debug)]
pub struct CorrectionLog {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    all: Vec<Correction>,
    /// Reading → its corrections, oldest first.
    by_reading: HashMap<Key, Vec<usize>>,
}

impl CorrectionLog {
    /// Opens (or creates) the log, cutting a torn last line.
    pub fn open(path: &Path) -> std::io::Result<CorrectionLog> {
        let all: Vec<Correction> = crate::jsonl::read(path)?;
        let file = crate::jsonl::open(path)?;
        let mut by_reading: HashMap<Key, Vec<usize>> = HashMap::new();
        for (i, c) in all.iter().enumerate() {
            by_reading.entry(key(c)).or_default().push(i);
        }
        Ok(CorrectionLog { path: path.to_path_buf(), inner: Mutex::new(Inner { file, all, by_reading }) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every correction matching `keep`, oldest first.
    pub fn list(&self, keep: impl Fn(&Correction) -> bool) -> Vec<Correction> {
        self.lock().all.iter().filter(|c| keep(c)).cloned().collect()
    }

    /// The corrections of one reading, oldest first (none: empty).
    pub fn of(&self, factory: &str, point: &str, parameter: &str, time_ns: i64) -> Vec<Correction> {
        let inner = self.lock();
        if inner.all.is_empty() {
            return Vec::new();
        }
        let k = (factory.to_string(), point.to_string(), parameter.to_string(), time_ns);
        inner.by_reading.get(&k).map_or_else(Vec::new, |ix| ix.iter().map(|&i| inner.all[i].clone()).collect())
    }

    /// Corrections stored.
    pub fn len(&self) -> usize {
        self.lock().all.len()
    }

    /// Whether any correction is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().all.is_empty()
    }

    /// Checks every request against the store, then stores the new corrections, all or none,
    /// and hands each to `then` (the compliance engine) in order while the log is held.
    fn append(
        &self,
        app: &App,
        requests: Vec<Request>,
        by: &str,
        mut then: impl FnMut(&Correction),
    ) -> Result<usize, CorrectionError> {
        let mut inner = self.lock();
        let now = app.clock.now_ns();
        let mut fresh: Vec<Correction> = Vec::new();
        for (i, r) in requests.into_iter().enumerate() {
            let at = format!("correction {} ({}/{}/{} at {})", i + 1, r.factory, r.point, r.parameter, r.time_ns);
            if r.reason.trim().is_empty() {
                return Err(CorrectionError::Invalid(format!("{at}: a reason is required")));
            }
            if !r.value.is_finite() {
                return Err(CorrectionError::Invalid(format!("{at}: value must be a finite number")));
            }
            let stored = app.store.query(
                |k| *k.factory == *r.factory && *k.point == *r.point && *k.parameter == *r.parameter,
                r.time_ns,
                r.time_ns.saturating_add(1),
            );
            let Some((_, _, original)) = stored.into_iter().next() else {
                return Err(CorrectionError::Invalid(format!("{at}: no stored reading to correct at that time")));
            };
            let k: Key = (r.factory.clone(), r.point.clone(), r.parameter.clone(), r.time_ns);
            let current = fresh
                .iter()
                .rev()
                .find(|c| key(c) == k)
                .or_else(|| inner.by_reading.get(&k).and_then(|ix| ix.last()).map(|&i| &inner.all[i]))
                .map_or(original.value, |c| c.value);
            if current == r.value {
                continue;
            }
            fresh.push(Correction {
                factory: r.factory,
                point: r.point,
                parameter: r.parameter,
                time_ns: r.time_ns,
                value: r.value,
                was: current,
                quality: original.quality,
                below_detection_limit: original.below_detection_limit,
                reason: r.reason,
                by: by.to_string(),
                at_ns: now,
            });
        }
        if fresh.is_empty() {
            return Ok(0);
        }
        crate::jsonl::append(&mut inner.file, &fresh)
            .map_err(|source| CorrectionError::Io { path: self.path.clone(), source })?;
        let n = fresh.len();
        for c in fresh {
            then(&c);
            let i = inner.all.len();
            inner.by_reading.entry(key(&c)).or_default().push(i);
            inner.all.push(c);
        }
        Ok(n)
    }
}

/// A correction as the compliance engine takes it.
pub fn correction_info(c: &Correction) -> crate::compliance::CorrectionInfo {
    crate::compliance::CorrectionInfo {
        factory: c.factory.clone(),
        point: c.point.clone(),
        parameter: c.parameter.clone(),
        time_ns: c.time_ns,
        was: c.was,
        value: c.value,
        quality: c.quality,
        not_detected: c.below_detection_limit,
        reason: format!("corrected by {}: {}", c.by, c.reason),
    }
}

/// Records the corrections a bearer sent, all or none, and has the compliance engine judge
/// the corrected values; returns how many were new. Blocking (the log is synced).
pub fn record(app: &App, bearer: &Bearer, requests: Vec<Request>) -> Result<usize, CorrectionError> {
    let scope = match &bearer.grant {
        Grant::Write { factory } => Some(factory.clone()),
        Grant::Admin => None,
        other => {
            return Err(CorrectionError::Forbidden(format!("a {} token may not correct readings", other.kind())));
        }
    };
    for (i, r) in requests.iter().enumerate() {
        if scope.as_ref().is_some_and(|f| *f != r.factory) {
            let reason = format!("correction {}: factory \"{}\" is not the token's factory", i + 1, r.factory);
            app.ingest.audit(crate::ingest::Event::Forbidden, bearer, Some(&r.factory), &reason);
            return Err(CorrectionError::Forbidden(reason));
        }
    }
    let by = format!("{} token {}", bearer.grant.kind(), bearer.id);
    // Stored and handed over as one step for the engine's checkpoint (see `Monitor::admit`).
    let _admitted = app.compliance.admit();
    let stored = app.corrections.append(app, requests, &by, |c| {
        tracing::info!(factory = %c.factory, point = %c.point, parameter = %c.parameter, time_ns = c.time_ns, was = c.was, value = c.value, by = %c.by, "Reading corrected");
        app.compliance.correct(correction_info(c));
    })?;
    tracing::debug!(stored, "Corrections stored");
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn correction(value: f64) -> Correction {
        Correction {
            factory: "f1".into(),
            point: "outfall-1".into(),
            parameter: "cod".into(),
            time_ns: 7,
            value,
            was: 130.0,
            quality: Quality::Valid,
            below_detection_limit: false,
            reason: "lab".into(),
            by: "admin token x".into(),
            at_ns: 9,
        }
    }

    #[test]
    fn the_log_reads_back_and_a_torn_last_line_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("corrections.log");
        let mut text = String::new();
        for v in [98.0, 97.0] {
            text.push_str(&serde_json::to_string(&correction(v)).expect("json"));
            text.push('\n');
        }
        let whole = text.len() as u64;
        text.push_str(r#"{"factory":"f1","po"#);
        std::fs::write(&path, text).expect("write");
        let log = CorrectionLog::open(&path).expect("open");
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), whole, "torn line cut");
        assert_eq!(log.of("f1", "outfall-1", "cod", 7), vec![correction(98.0), correction(97.0)]);
        assert!(log.of("f1", "outfall-1", "cod", 8).is_empty());
        std::fs::write(&path, "not json\n").expect("write");
        let error = CorrectionLog::open(&path).expect_err("a broken complete line is an error");
        assert!(error.to_string().contains("corrections.log: line 1: "), "{error}");
    }
}
