//! The embedded store: an append-only log in the data directory, indexed in memory.
//!
//! ## On disk (`readings.log`)
//! A sequence of records, one per accepted batch:
//! `[len: u32 LE][crc32 of payload: u32 LE][payload: canonical line protocol, ns timestamps]`.
//! A batch is acknowledged only after its record is written and `fdatasync`ed, so an
//! acknowledged batch survives SIGKILL and power cuts. At open, records are replayed in
//! order; a torn tail (short record or checksum mismatch, what a power cut mid-write leaves)
//! is cut off and logged: it was never acknowledged.
//!
//! ## Invariants
//! - History is append-only: a reading identical to a stored one (same series and time,
//!   same value, quality and flags) is accepted and stored once; a *different* reading for
//!   a stored series and time is a rewrite and refuses its whole batch.
//! - A batch is stored whole or not at all.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use eitwatch_config::line_protocol::{self, Precision};
use eitwatch_config::reading::{Kind, Quality, Reading, Source};

/// Identifies a series: one parameter at one point.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// Factory id.
    pub factory: String,
    /// Point id.
    pub point: String,
    /// Measurement kind.
    pub kind: Kind,
    /// Parameter code.
    pub parameter: String,
}

impl SeriesKey {
    /// The series of a reading.
    pub fn of(r: &Reading) -> SeriesKey {
        SeriesKey { factory: r.factory.clone(), point: r.point.clone(), kind: r.kind, parameter: r.parameter.clone() }
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
    fn of(r: &Reading) -> Stored {
        Stored { value: r.value, quality: r.quality, source: r.source, below_detection_limit: r.below_detection_limit }
    }

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
    /// The log file.
    #[error("{path}: {source}")]
    Io {
        /// The log.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A record that passed its checksum but does not decode: the file is not ours.
    #[error("{path}: record at byte {offset} does not decode: {reason}")]
    Corrupt {
        /// The log.
        path: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// Why.
        reason: String,
    },
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Readings newly stored.
    pub stored: usize,
    /// Readings already stored identically (a re-sent batch).
    pub duplicates: usize,
}

#[derive(Debug)]
struct Inner {
    file: File,
    series: HashMap<SeriesKey, BTreeMap<i64, Stored>>,
    len: usize,
}

/// The embedded store.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    inner: Mutex<Inner>,
}

const HEADER_BYTES: usize = 8;

impl Store {
    /// Opens (or creates) the log, replays it and cuts a torn tail.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let io = |source| StoreError::Io { path: path.to_path_buf(), source };
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path).map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let mut series: HashMap<SeriesKey, BTreeMap<i64, Stored>> = HashMap::new();
        let mut len = 0;
        let mut offset = 0usize;
        while offset < bytes.len() {
            let Some(payload) = record_at(&bytes, offset) else {
                break;
            };
            let text = std::str::from_utf8(payload).map_err(|e| StoreError::Corrupt {
                path: path.to_path_buf(),
                offset: offset as u64,
                reason: e.to_string(),
            })?;
            let readings = line_protocol::decode(text, Precision::Ns, 0).map_err(|e| StoreError::Corrupt {
                path: path.to_path_buf(),
                offset: offset as u64,
                reason: e.to_string(),
            })?;
            for r in &readings {
                if series.entry(SeriesKey::of(r)).or_default().insert(r.time_ns, Stored::of(r)).is_none() {
                    len += 1;
                }
            }
            offset += HEADER_BYTES + payload.len();
        }
        if offset < bytes.len() {
            tracing::warn!(path = %path.display(), cut_bytes = bytes.len() - offset, "Cut a torn tail off the store log (an unacknowledged write)");
            file.set_len(offset as u64).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok(Store { path: path.to_path_buf(), inner: Mutex::new(Inner { file, series, len }) })
    }

    /// Stores a batch whole, durably (fsync) before returning; returns the readings that
    /// were new, in the batch's order. Identical re-sends are skipped; a rewrite refuses all.
    pub fn append(&self, batch: &[Reading]) -> Result<(Vec<Reading>, Appended), StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut fresh: Vec<Reading> = Vec::with_capacity(batch.len());
        let mut in_batch: HashMap<(SeriesKey, i64), Stored> = HashMap::new();
        let mut duplicates = 0;
        for r in batch {
            let key = SeriesKey::of(r);
            let offered = Stored::of(r);
            let existing = inner
                .series
                .get(&key)
                .and_then(|s| s.get(&r.time_ns))
                .or_else(|| in_batch.get(&(key.clone(), r.time_ns)));
            match existing {
                Some(stored) if stored.same(&offered) => duplicates += 1,
                Some(stored) => {
                    return Err(StoreError::Rewrite {
                        factory: r.factory.clone(),
                        point: r.point.clone(),
                        parameter: r.parameter.clone(),
                        time_ns: r.time_ns,
                        stored: stored.value,
                        offered: r.value,
                    });
                }
                None => {
                    in_batch.insert((key, r.time_ns), offered);
                    fresh.push(r.clone());
                }
            }
        }
        if !fresh.is_empty() {
            let payload = line_protocol::encode(&fresh);
            let mut record = Vec::with_capacity(HEADER_BYTES + payload.len());
            record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            record.extend_from_slice(&crc32fast::hash(payload.as_bytes()).to_le_bytes());
            record.extend_from_slice(payload.as_bytes());
            let io = |source| StoreError::Io { path: self.path.clone(), source };
            inner.file.write_all(&record).map_err(io)?;
            inner.file.sync_data().map_err(io)?;
            for r in &fresh {
                inner.series.entry(SeriesKey::of(r)).or_default().insert(r.time_ns, Stored::of(r));
            }
            inner.len += fresh.len();
        }
        let stored = fresh.len();
        Ok((fresh, Appended { stored, duplicates }))
    }

    /// Readings of the series matching a filter, within `[from_ns, to_ns)`, by series then time.
    pub fn query(
        &self,
        filter: impl Fn(&SeriesKey) -> bool,
        from_ns: i64,
        to_ns: i64,
    ) -> Vec<(SeriesKey, i64, Stored)> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut keys: Vec<&SeriesKey> = inner.series.keys().filter(|k| filter(k)).collect();
        keys.sort();
        let mut out = Vec::new();
        for key in keys {
            if let Some(series) = inner.series.get(key) {
                out.extend(series.range(from_ns..to_ns).map(|(t, s)| (key.clone(), *t, *s)));
            }
        }
        out
    }

    /// Number of readings stored.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).len
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The payload of the record at `offset`, if it is whole and its checksum matches.
fn record_at(bytes: &[u8], offset: usize) -> Option<&[u8]> {
    let header = bytes.get(offset..offset + HEADER_BYTES)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let payload = bytes.get(offset + HEADER_BYTES..offset + HEADER_BYTES + len)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

#[cfg(test)]
mod tests;
