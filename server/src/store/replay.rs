//! A reader of the store's log from a [`LogPosition`] on: the readings appended after it,
//! in the order they were written, a bounded batch at a time.
//!
//! Two readers of the log use it: the InfluxDB write-through (its cursor) and the compliance
//! engine's start (its checkpoint's position: the readings judged after the checkpoint are
//! judged again from here). Each reader registers its position with [`super::Store::hold`],
//! so the segments it still needs are kept. A position at the end of a segment retired since
//! (its length is in the manifest's seal) means nothing is left to read there; only a
//! position inside a deleted segment makes [`Reader::lost`] true.
//!
//! The reader reads the segment files directly (the record format of [`super::log`]), never
//! beyond the position the caller passes as durable: what it returns is on disk.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use eitwatch_config::reading::Reading;

use super::SeriesKey;
use super::log::{self, LogPosition};
use super::manifest;

/// Reads the segments after a position.
#[derive(Debug)]
pub struct Reader {
    dir: PathBuf,
    /// The segment read, its series definitions so far and how far they were read.
    segment: u64,
    defs: HashMap<u32, SeriesKey>,
    defs_offset: u64,
    /// A segment holding readings after the position was gone when the reader got to it.
    lost: bool,
}

/// Readings read, and where the next read starts.
#[derive(Debug)]
pub struct Batch {
    /// The readings, in log order.
    pub readings: Vec<Reading>,
    /// The position after them.
    pub next: LogPosition,
}

impl Reader {
    /// A reader of the segments in `dir` (the store's directory).
    pub fn new(dir: &Path) -> Reader {
        Reader { dir: dir.to_path_buf(), segment: 0, defs: HashMap::new(), defs_offset: 0, lost: false }
    }

    /// Whether a segment the reader needed (one it had begun, at a non-zero offset short of
    /// its sealed end) was deleted before it was read: the readings after that offset are not
    /// in what it returned.
    pub fn lost(&self) -> bool {
        self.lost
    }

    /// Whether `at` is at (or past) the end the manifest sealed its segment with: a segment
    /// retired with every reader at its end leaves nothing unread.
    fn at_end_of_sealed(&self, at: LogPosition) -> bool {
        match manifest::read_all(&self.dir) {
            Ok(Some(known)) => known.sealed_bytes.get(&at.segment).is_some_and(|len| at.offset >= *len),
            _ => false,
        }
    }

    /// The readings after `at` (at most `max_points`, unless its first record alone holds
    /// more: a record is read whole), reading no further than `durable`; `None` when caught up.
    pub fn next_batch(
        &mut self,
        at: LogPosition,
        durable: LogPosition,
        max_points: usize,
    ) -> std::io::Result<Option<Batch>> {
        let mut at = at;
        loop {
            if at >= durable {
                return Ok(None);
            }
            let path = log::segment_path(&self.dir, at.segment);
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Deleted (empty at a restart, retired, or expired by retention): go to the next one.
                    let next = log::list_segments(&self.dir)?.into_iter().find(|n| *n > at.segment);
                    match next {
                        Some(n) if n <= durable.segment => {
                            if at.offset > 0 && !self.at_end_of_sealed(at) {
                                tracing::warn!(
                                    segment = at.segment,
                                    offset = at.offset,
                                    "A segment was deleted before its reader got to its end"
                                );
                                self.lost = true;
                            }
                            at = LogPosition { segment: n, offset: 0 };
                            continue;
                        }
                        _ => return Ok(None),
                    }
                }
                Err(e) => return Err(e),
            };
            let end = if at.segment < durable.segment { file.metadata()?.len() } else { durable.offset };
            if at.offset >= end {
                if at.segment < durable.segment {
                    at = LogPosition { segment: at.segment + 1, offset: 0 };
                    continue;
                }
                return Ok(None);
            }
            if self.segment != at.segment || self.defs_offset > at.offset {
                self.segment = at.segment;
                self.defs.clear();
                self.defs_offset = 0;
            }
            // Definitions of series come before their first point in a segment: learn the
            // ones before the position without returning their points.
            if self.defs_offset < at.offset {
                let mut bytes = vec![0; (at.offset - self.defs_offset) as usize];
                file.read_exact_at(&mut bytes, self.defs_offset)?;
                let mut offset = 0;
                while let Some(payload) = log::record_at(&bytes, offset) {
                    let _ = log::decode_record(payload, &mut self.defs, |_| {});
                    offset += log::HEADER_BYTES + payload.len();
                }
                self.defs_offset = at.offset;
            }
            let want = ((max_points * log::POINT_BYTES + 4096) as u64).min(end - at.offset);
            let mut bytes = vec![0; want as usize];
            file.read_exact_at(&mut bytes, at.offset)?;
            let mut readings: Vec<Reading> = Vec::new();
            let mut offset = 0usize;
            let damaged = |reason: String| std::io::Error::other(format!("{}: {reason}", path.display()));
            while let Some(payload) = log::record_at(&bytes, offset) {
                // At most this many points: a record that might pass the bound waits.
                if !readings.is_empty() && readings.len() + payload.len() / log::MIN_POINT_BYTES > max_points {
                    break;
                }
                log::decode_record(payload, &mut self.defs, |entry| {
                    if let log::Entry::Point { time_ns, stored, key: Some(key), .. } = entry {
                        readings.push(key.reading(time_ns, &stored));
                    }
                })
                .map_err(|reason| damaged(reason.to_string()))?;
                offset += log::HEADER_BYTES + payload.len();
            }
            if offset == 0 {
                // One record larger than the read: read it whole.
                let mut header = [0u8; log::HEADER_BYTES];
                file.read_exact_at(&mut header, at.offset)?;
                let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as u64;
                let whole = (log::HEADER_BYTES as u64 + len).min(end - at.offset);
                bytes = vec![0; whole as usize];
                file.read_exact_at(&mut bytes, at.offset)?;
                let payload = log::record_at(&bytes, 0)
                    .ok_or_else(|| damaged(format!("damaged record at byte {}", at.offset)))?;
                log::decode_record(payload, &mut self.defs, |entry| {
                    if let log::Entry::Point { time_ns, stored, key: Some(key), .. } = entry {
                        readings.push(key.reading(time_ns, &stored));
                    }
                })
                .map_err(|reason| damaged(reason.to_string()))?;
                offset = bytes.len();
            }
            let next = LogPosition { segment: at.segment, offset: at.offset + offset as u64 };
            self.defs_offset = next.offset;
            return Ok(Some(Batch { readings, next }));
        }
    }
}
