//! Judgement days on disk: what the engine judged on one closed Bangkok day, written once
//! the day closes (the recent days stay in memory as well; older ones leave it).
//!
//! ## Files (`<data_dir>/judgements/`)
//!
//! One file per day and generation, `YYYY-MM-DD.g<generation>.jdg` (the Bangkok date). A
//! file is never changed once written. At each checkpoint the engine encodes each closed
//! day it holds in memory that has no file or may have changed since (late data, a gap
//! record, a correction, the last hour judged after the day closed); one whose bytes differ
//! from its file's is written as the next generation, so a quiet day is written once. A day on disk only that late data needs
//! is loaded back first. The checkpoint ([`super::checkpoint`]) names the generation of
//! every day file it relies on; files it does not name (older generations, a crash's
//! leftovers, days retention dropped) are deleted only after a newer checkpoint is written,
//! so a crash leaves the previous checkpoint with every file it names.
//!
//! ## Format version 3
//!
//! Framed like the checkpoint (magic `EITWJDAY`, version u32 = 3, payload length u64,
//! CRC-32 of the payload u32, little-endian); the payload is `[0]` and the body, or `[1]`,
//! the body's length (varint) and its DEFLATE stream (RFC 1951), whichever is smaller; the
//! body:
//!
//! ```text
//! day start  i64 (ns, little-endian)
//! names      varint count, each: varint length + UTF-8 (factories, points, parameters,
//!            limit ids, each once)
//! series     varint count s, then ints(s) factory, ints(s) point, ints(s) parameter (name
//!            indices), ints(s) track count; over the t tracks: ints(t) limit id (name
//!            index), ints(t) kind (0 fixed periods, 1 grab samples)
//! section    the day's state of those series, as below
//! ```
//!
//! A **section** holds one day's state of a list of series (a day file's, or in the
//! checkpoint every series'), as columns (`columns.rs`: `ints(n)` frame-of-reference
//! bit-packed integers, `times(n)` and `values(n)` the store's codecs, `keys` period starts
//! as hour masks, `sums` exact sums as scaled deltas, `decimals` values as decimals with an
//! exponent per list), each column over every series (and track) in order:
//!
//! ```text
//! strings   varint count, each varint length + UTF-8 (the periods' reasons)
//! hours     keys(series), then over the m hours: valid ints(m), excluded ints(m),
//!           detected ints(m) (0/1); sums kept ints(series) (1 for a series with a
//!           fixed-period limit, or of O₂: only those periods and the O₂ correction read
//!           an hour's sum; the others' read as 0), then the kept series' sums (Σ of the
//!           valid values in 1e-9 units, exact; a unit per series)
//! day count present ints(series) (0/1), then over the k present: valid ints(k),
//!           excluded ints(k)
//! periods   per fixed track: count ints; over the p periods: key times(p), start − key
//!           ints(p), end − start ints(p), closed ints(p), outcome ints(p) (0 compliant,
//!           1 exceeds, 2 insufficient data, 3 cannot correct), present ints(p) (bit 0
//!           value, 1 measured, 2 O₂), then values of the values, measured values and O₂
//!           present, valid, expected, excluded, samples ints(p), availability: ints(p)
//!           (0 valid × 100 / expected in f64, 1 its own) and values of its own, reason
//!           ints(p) (0 none, i + 1: string i)
//! grabs     per grab track g: its limit's bounds present ints (bit 0 upper, as it applies at
//!           the point; bit 1 lower), values of the upper and of the lower bounds present;
//!           item count ints; over the items: kind ints (0 exceeding sample, 1 compliant
//!           stretch), unit e u8 (times in 10^e ns, the largest that divides them all),
//!           gap ints (from the end of the track's item before — a sample's time, a
//!           stretch's last — or for its first from the day start), each stretch's
//!           last − first ints, the exceeding samples; hours keys(grab tracks), then
//!           compliant ints (less what the series' valid readings of the hour give: valid −
//!           not correctable − exceeding samples of the hour), not correctable ints, kept
//!           ints (bit 0 nearest sample, 1 a sample not corrected), the nearest samples,
//!           their distance to the limit: ints (0 the track's bounds give it:
//!           max(value − upper, lower − value) as f32, 1 its own) and values of its own
//!           (f32 bits as the low bits of values), the samples not corrected
//! samples   value decimals(per track), outcome ints(n), measured: ints(n) (0 the value's
//!           bits, 1 its own) and values of its own; O₂: ints(n) (0 none, 1 one) and those
//!           (f32 bits as the low bits of values)
//! ```
//!
//! Every value keeps its bits (but the hour sums nothing reads): a day read back judges
//! exactly as before it was written.
//!
//! Version 2 files are still read: the payload is the body; the series as varints per
//! series (factory, point, parameter name indices, track count, each track's limit id and
//! kind u8); every series' hour sums, in one unit for the whole section; every period's
//! availability in values(p); no bounds; item times as times(items) followed by the kinds
//! and the stretches' last − first in ns; values of the samples as values(n); the hours'
//! compliant counts as they are; every nearest sample's distance in values.
//! Version 1 files (every value at fixed width, per series) are still read.
//!
//! Written like the checkpoint: temporary file, sync, rename, directory sync.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::checkpoint::{self, CheckpointError};
use super::period::{BANGKOK_OFFSET_NS, DAY_NS};

/// The file's magic.
pub(super) const MAGIC: &[u8; 8] = b"EITWJDAY";

/// The judgement days' directory.
#[derive(Debug)]
pub struct DayFiles {
    dir: PathBuf,
}

impl DayFiles {
    /// The directory (created if missing).
    pub fn open(dir: &Path) -> std::io::Result<DayFiles> {
        std::fs::create_dir_all(dir)?;
        Ok(DayFiles { dir: dir.to_path_buf() })
    }

    /// The file of a day's generation.
    pub fn path(&self, day_start_ns: i64, generation: u32) -> PathBuf {
        self.dir.join(format!("{}.g{generation}.jdg", super::period::local_date(day_start_ns)))
    }

    /// Writes a day's generation atomically.
    pub fn write(&self, day_start_ns: i64, generation: u32, bytes: &[u8]) -> Result<(), CheckpointError> {
        checkpoint::write_atomic(&self.path(day_start_ns, generation), bytes)
    }

    /// Reads a day's generation.
    pub fn read(&self, day_start_ns: i64, generation: u32) -> Result<Vec<u8>, CheckpointError> {
        let path = self.path(day_start_ns, generation);
        std::fs::read(&path).map_err(|source| CheckpointError::Io { path, source })
    }

    /// The files there: (day start, generation).
    fn list(&self) -> std::io::Result<Vec<(i64, u32, PathBuf)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let Some((date, generation)) = name.strip_suffix(".jdg").and_then(|n| n.split_once(".g")) else {
                continue;
            };
            let (Ok(date), Ok(generation)) = (date.parse::<jiff::civil::Date>(), generation.parse::<u32>()) else {
                continue;
            };
            let days = i64::from(date.since(jiff::civil::date(1970, 1, 1)).map_or(0, |s| s.get_days()));
            out.push((days * DAY_NS - BANGKOK_OFFSET_NS, generation, path));
        }
        Ok(out)
    }

    /// The highest generation of any file there (0: none).
    pub fn max_generation(&self) -> u32 {
        self.list().map(|l| l.iter().map(|(_, g, _)| *g).max().unwrap_or(0)).unwrap_or(0)
    }

    /// Deletes every file but the generations `keep` names (day start → generation).
    pub fn remove_others(&self, keep: &BTreeMap<i64, u32>) -> std::io::Result<usize> {
        let mut removed = 0;
        for (day, generation, path) in self.list()? {
            if keep.get(&day) != Some(&generation) {
                std::fs::remove_file(&path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
