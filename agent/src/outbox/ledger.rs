//! `ledger.json`: each sink's cursor, counters and pending gap records, replaced atomically.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Name of the ledger file in the outbox directory.
pub(crate) const FILE: &str = "ledger.json";
const TMP: &str = "ledger.json.tmp";

/// The whole ledger.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ledger {
    pub(crate) version: u32,
    /// Random at creation: makes gap ids unique even if the directory is ever wiped.
    pub(crate) outbox_id: String,
    pub(crate) sinks: BTreeMap<String, SinkLedger>,
}

/// One sink's delivery state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkLedger {
    /// Every id below is delivered (or dead-lettered, or dropped).
    pub cursor: u64,
    /// `[start, end)`: ids above the cursor already delivered, newest first after an outage
    /// (live readings go before the backlog). Merged into the cursor when it catches up.
    pub live: Option<(u64, u64)>,
    /// Readings the sink accepted.
    pub delivered: u64,
    /// Attempts that failed and were retried (link errors, 5xx, 429).
    pub retried: u64,
    /// Readings the sink refused for their content (400), kept in the dead-letter directory.
    pub dead_lettered: u64,
    /// Readings dropped undelivered because the outbox was full (told by gap records).
    pub dropped: u64,
    /// Gap records waiting for delivery to this sink.
    pub gaps: Vec<Gap>,
    /// Why delivery is stopped (token refused), if it is.
    pub stopped: Option<String>,
}

pub use eitwatch_config::gap::Gap;

impl Ledger {
    pub(crate) fn new(outbox_id: String) -> Ledger {
        Ledger { version: 1, outbox_id, sinks: BTreeMap::new() }
    }

    /// Reads the ledger of `dir`; `Ok(None)` if there is none yet.
    pub(crate) fn load(dir: &Path) -> Result<Option<Ledger>, String> {
        let path = dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Replaces the ledger: write a temporary file, fsync it, rename it over, fsync the
    /// directory. A crash leaves the old ledger or the new one, never a mix.
    pub(crate) fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(TMP);
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(FILE))?;
        sync_dir(dir)
    }

    /// Lowest id any sink still needs.
    pub(crate) fn min_cursor(&self) -> Option<u64> {
        self.sinks.values().map(|s| s.cursor).min()
    }
}

/// Makes a directory's entries (a created, renamed or deleted file) durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes a temporary ledger a crash left behind.
pub(crate) fn remove_tmp(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(TMP));
}

impl SinkLedger {
    /// Readings not yet delivered among `[cursor, end)`.
    pub fn depth(&self, end: u64) -> u64 {
        self.depth_in(&[(0, end)])
    }

    /// Readings not yet delivered among the id ranges `[first, end)` that exist on disk.
    pub(crate) fn depth_in(&self, ranges: &[(u64, u64)]) -> u64 {
        let overlap = |a: u64, b: u64, c: u64, d: u64| b.min(d).saturating_sub(a.max(c));
        ranges
            .iter()
            .map(|&(first, end)| {
                let waiting = overlap(first, end, self.cursor, u64::MAX);
                let live = self.live.map_or(0, |(s, e)| overlap(first, end, s.max(self.cursor), e));
                waiting - live.min(waiting)
            })
            .sum()
    }

    /// Advances past `[from, to)`, delivered or otherwise settled; returns how many of those
    /// ids were not settled before (a race with an overflow drop can settle some first).
    pub(crate) fn settle(&mut self, from: u64, to: u64) -> u64 {
        let fresh;
        match self.live {
            Some((s, e)) if from >= s && from <= e => {
                fresh = to.saturating_sub(e.max(from));
                self.live = Some((s, e.max(to)));
            }
            _ => {
                fresh = to.saturating_sub(self.cursor.max(from));
                if from <= self.cursor {
                    self.cursor = self.cursor.max(to);
                }
            }
        }
        self.merge();
        fresh
    }

    /// Folds the live range into the cursor once the backlog reached it.
    pub(crate) fn merge(&mut self) {
        if let Some((s, e)) = self.live {
            if self.cursor >= s {
                self.cursor = self.cursor.max(e);
                self.live = None;
            }
        }
    }
}
