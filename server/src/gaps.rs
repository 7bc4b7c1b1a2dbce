//! Gap records: what an agent's outbox had to drop when it was full (point, parameters, time
//! range, count, reason "agent buffer overflow"), so that the periods they cover are judged
//! "insufficient data" and nobody mistakes a hole for compliance.
//!
//! A writer sends gaps of its own factory ([`record`]; `POST /api/v1/gaps`): a gap of another
//! factory refuses the batch; they are accepted whole (once on disk) or refused whole,
//! naming the gap and the problem.
//!
//! On disk: `<data_dir>/gaps.log`, append-only, one JSON object per line, `fdatasync`ed before
//! the answer. A torn last line (a crash mid-write, never acknowledged) is cut at open.
//! A gap re-sent after a timeout (same factory and id, same content) is stored once; the
//! same id with other content is refused (409): history is append-only.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use eitwatch_config::site::Registry;
use serde::{Deserialize, Serialize};

use crate::App;

pub use eitwatch_config::gap::Gap;

/// Why gaps were refused.
#[derive(Debug, thiserror::Error)]
pub enum GapError {
    /// A gap of another factory than the writer's.
    #[error("{0}")]
    Forbidden(String),
    /// A gap that does not name a registered point, or is empty or reversed.
    #[error("{0}")]
    Invalid(String),
    /// The same id with other content: history is append-only.
    #[error("gap \"{id}\" of {factory} is stored with other content: history is append-only")]
    Conflict {
        /// The gap's id.
        id: String,
        /// Its factory.
        factory: String,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    gap: Gap,
    received: String,
}

/// A gap as the compliance engine takes it: the periods it overlaps lack data for its reason.
pub fn gap_info(g: &Gap) -> crate::compliance::GapInfo {
    crate::compliance::GapInfo {
        factory: g.factory.clone(),
        point: g.point.clone(),
        parameters: g.parameters.clone(),
        from_ns: g.from_ns,
        to_ns: g.to_ns,
        count: g.count,
        reason: g.reason.clone(),
    }
}

/// The gap log.
#[derive(Debug)]
pub struct GapLog {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    gaps: Vec<Stored>,
    by_id: HashMap<(String, String), usize>,
}

impl GapLog {
    /// Opens (or creates) the log, cutting a torn last line.
    pub fn open(path: &Path) -> std::io::Result<GapLog> {
        let gaps: Vec<Stored> = crate::jsonl::read(path)?;
        let file = crate::jsonl::open(path)?;
        let by_id = gaps.iter().enumerate().map(|(i, g)| ((g.gap.factory.clone(), g.gap.id.clone()), i)).collect();
        Ok(GapLog { path: path.to_path_buf(), inner: Mutex::new(Inner { file, gaps, by_id }) })
    }

    /// Appends gaps, all or none; identical re-sent gaps are skipped. Returns how many were new.
    pub fn append(&self, gaps: Vec<Gap>) -> Result<usize, GapError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut fresh = Vec::new();
        for gap in gaps {
            match inner.by_id.get(&(gap.factory.clone(), gap.id.clone())) {
                Some(&i) if inner.gaps[i].gap == gap => {}
                Some(_) => {
                    return Err(GapError::Conflict { id: gap.id, factory: gap.factory });
                }
                None if fresh.iter().any(|s: &Stored| s.gap.id == gap.id) => {}
                None => fresh.push(Stored { gap, received: jiff::Timestamp::now().to_string() }),
            }
        }
        if fresh.is_empty() {
            return Ok(0);
        }
        crate::jsonl::append(&mut inner.file, &fresh)
            .map_err(|source| GapError::Io { path: self.path.clone(), source })?;
        let n = fresh.len();
        for s in fresh {
            let i = inner.gaps.len();
            inner.by_id.insert((s.gap.factory.clone(), s.gap.id.clone()), i);
            inner.gaps.push(s);
        }
        Ok(n)
    }

    /// Records stored.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).gaps.len()
    }

    /// Whether none is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stored gaps matching `keep`, oldest first.
    pub fn list(&self, keep: impl Fn(&Gap) -> bool) -> Vec<Gap> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.gaps.iter().filter(|s| keep(&s.gap)).map(|s| s.gap.clone()).collect()
    }
}

fn check(registry: &Registry, n: usize, gap: &Gap) -> Result<(), String> {
    let at = format!("gap {n} (\"{}\")", gap.id);
    let Some((_, point)) = registry.point(&gap.factory, &gap.point) else {
        return Err(format!("{at}: unknown point \"{}\" of factory \"{}\"", gap.point, gap.factory));
    };
    if point.kind.as_str() != gap.kind {
        return Err(format!("{at}: point \"{}\" is an {} point, not {}", gap.point, point.kind, gap.kind));
    }
    if gap.id.is_empty() || gap.reason.is_empty() || gap.parameters.is_empty() {
        return Err(format!("{at}: id, reason and parameters must not be empty"));
    }
    if gap.count == 0 || gap.from_ns > gap.to_ns {
        return Err(format!("{at}: expected count ≥ 1 and from_ns ≤ to_ns"));
    }
    Ok(())
}

/// Records the gaps a writer of `factory` sent, all or none, and has the compliance engine
/// judge the periods they cover; returns how many were new. Blocking (the log is synced).
pub fn record(app: &App, factory: &str, gaps: Vec<Gap>) -> Result<usize, GapError> {
    let registry = app.registry();
    for (i, gap) in gaps.iter().enumerate() {
        if gap.factory != factory {
            tracing::warn!(%factory, gap_factory = %gap.factory, "Refused a gap for another factory");
            return Err(GapError::Forbidden(format!(
                "gap {} (\"{}\"): factory \"{}\" is not the token's factory",
                i + 1,
                gap.id,
                gap.factory
            )));
        }
        check(&registry, i + 1, gap).map_err(GapError::Invalid)?;
    }
    let summary: Vec<_> = gaps.iter().map(|g| (g.point.clone(), g.count)).collect();
    let infos: Vec<_> = gaps.iter().map(gap_info).collect();
    // Stored and handed over as one step for the engine's checkpoint (see `Monitor::admit`).
    let _admitted = app.compliance.admit();
    let fresh = app.gaps.append(gaps)?;
    for info in infos {
        app.compliance.gap(info);
    }
    for (point, count) in summary {
        tracing::warn!(%factory, %point, count, "Agent reports readings it had to drop (gap record)");
    }
    tracing::debug!(%factory, fresh, "Gaps stored");
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write as _;

    use super::*;

    fn gap(id: &str, count: u64) -> Gap {
        Gap {
            id: id.into(),
            factory: "f1".into(),
            point: "outfall-1".into(),
            kind: "effluent".into(),
            parameters: vec!["cod".into()],
            from_ns: 1,
            to_ns: 2,
            count,
            reason: "agent buffer overflow".into(),
        }
    }

    #[test]
    fn the_log_survives_a_restart_and_a_torn_last_line_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gaps.log");
        {
            let log = GapLog::open(&path).expect("open");
            assert_eq!(log.append(vec![gap("a", 1), gap("b", 2)]).expect("append"), 2);
            assert_eq!(log.append(vec![gap("a", 1)]).expect("append"), 0, "a re-sent gap is stored once");
            assert!(log.append(vec![gap("b", 3)]).is_err(), "same id, other content");
        }
        let len = std::fs::metadata(&path).expect("meta").len();
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(br#"{"id":"c","fac"#).expect("write");
        drop(f);
        let log = GapLog::open(&path).expect("reopen");
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), len, "torn line cut");
        assert_eq!(log.list(|_| true), vec![gap("a", 1), gap("b", 2)]);
        assert_eq!(log.append(vec![gap("c", 4)]).expect("append"), 1);
        drop(log);
        assert_eq!(GapLog::open(&path).expect("reopen").list(|g| g.id == "c"), vec![gap("c", 4)]);
    }
}
