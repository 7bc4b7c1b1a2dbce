//! The store's manifest, `<store>/manifest`: which segments exist and what each sealed one
//! holds, so that a missing, emptied, shortened or altered segment is found at start instead
//! of being replayed as if nothing were gone.
//!
//! JSON lines (see [`crate::jsonl`]), each `fdatasync`ed before what it announces is used:
//! - `{"op":"format","version":2}` first;
//! - `{"op":"open","segment":N}` once segment N's file exists and before anything in it is
//!   acknowledged;
//! - `{"op":"seal","segment":N,"bytes":L,"crc32":C,"readings":R,"series":S}` when N will
//!   never change again (the store rolled to a new segment, shut down, or replayed N after a
//!   crash): its length, the CRC-32 of its bytes, and how many readings of how many series
//!   it holds. Per series what it holds (kind, factory, point, parameter, oldest and newest
//!   time, count) goes beside it, in `NNNNNNNNNN.content.json` (a JSON array, synced before
//!   the seal), so that a segment lost later is known exactly while the manifest, read at
//!   every start, stays a line per segment;
//! - `{"op":"drop","segment":N,"reason":"…"}` before N's file is deleted (retention, an
//!   empty segment, retirement once its readings are in partition files and no reader of
//!   the log holds it: at a clean stop the segment being written too, right after its
//!   seal) or set aside (`eitwatch-server repair`). A dropped segment's seal stays the
//!   record of its length, so a reader's position at its end still means "nothing more";
//!   segment numbers only grow (a new segment takes the one after the highest the
//!   manifest names), so positions stay ordered after every file is gone;
//! - `{"op":"parts","add":[{"file":F,"day":D,"level":L,"bytes":B,"readings":R}],
//!   "remove":[F…],"through":[S,O]}` once the partition files added are synced and renamed,
//!   before those removed are deleted: the one step that makes a flush, compaction or
//!   retention of partitions take effect. `through` (a flush's): every reading the log
//!   holds before segment S byte O is in partition files, so an open replays the log from
//!   there only;
//! - `{"op":"format","version":3}` again once a store of format 2 has its readings in
//!   partition files (the migration): the last format line is the store's format.
//!
//! A manifest is written once per segment and start, never per write: the durability of
//! each write stays one `fdatasync` of its segment.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The manifest's file name in the store directory.
pub(crate) const FILE: &str = "manifest";
/// The store format this build writes: 1 had segments only, 2 added the manifest, 3 the
/// partition files.
pub(crate) const FORMAT: u32 = 3;

/// One line of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Line {
    Format {
        version: u32,
    },
    Open {
        segment: u64,
    },
    Seal {
        segment: u64,
        bytes: u64,
        crc32: u32,
        readings: u64,
        series: u64,
    },
    Drop {
        segment: u64,
        reason: String,
    },
    Parts {
        add: Vec<PartLine>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        remove: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        through: Option<[u64; 2]>,
    },
}

/// A partition file as the manifest records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PartLine {
    pub(crate) file: String,
    pub(crate) day: i64,
    pub(crate) level: u8,
    pub(crate) bytes: u64,
    pub(crate) readings: u64,
}

/// Everything the manifest says.
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// The last format line's version.
    pub(crate) format: u32,
    pub(crate) segments: BTreeMap<u64, Segment>,
    /// The partition files in use, by name.
    pub(crate) parts: BTreeMap<String, PartLine>,
    /// Files the manifest removed (their deletion may not have happened).
    pub(crate) removed: Vec<String>,
    /// The log from here on is not in partition files.
    pub(crate) through: (u64, u64),
    /// Per segment ever sealed (deleted since or not), its length: a position at its end
    /// stays valid once it is gone.
    pub(crate) sealed_bytes: BTreeMap<u64, u64>,
}

impl Known {
    /// The highest segment number the manifest names: a new segment takes a higher one,
    /// even when every earlier segment file has been retired.
    pub(crate) fn last_segment(&self) -> Option<u64> {
        self.segments.keys().next_back().copied()
    }
}

/// What a segment holds of one series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesSummary {
    /// `effluent`, `emission` or `ambient`.
    pub kind: String,
    /// Factory.
    pub factory: String,
    /// Point.
    pub point: String,
    /// Parameter.
    pub parameter: String,
    /// Oldest reading's time.
    pub from_ns: i64,
    /// Newest reading's time.
    pub to_ns: i64,
    /// Readings.
    pub count: u64,
}

/// Summaries of series from their keys and (oldest time, newest time, count), in key order.
pub(crate) fn summaries<'a>(
    series: impl Iterator<Item = (&'a super::SeriesKey, (i64, i64, u64))>,
) -> Vec<SeriesSummary> {
    let mut out: Vec<SeriesSummary> = series
        .map(|(key, (from_ns, to_ns, count))| SeriesSummary {
            kind: key.kind.as_str().into(),
            factory: key.factory.to_string(),
            point: key.point.to_string(),
            parameter: key.parameter.to_string(),
            from_ns,
            to_ns,
            count,
        })
        .collect();
    out.sort_by(|a, b| (&a.factory, &a.point, &a.parameter).cmp(&(&b.factory, &b.point, &b.parameter)));
    out
}

/// What the manifest says of one segment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segment {
    /// Written by a process that did not seal it (it crashed, or is the one running).
    Open,
    /// Complete.
    Sealed { bytes: u64, crc32: u32, readings: u64, series: u64 },
    /// Deleted or set aside on purpose.
    Dropped { reason: String },
}

impl Segment {
    /// In words, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Segment::Open => "open (written by the last process)".into(),
            Segment::Sealed { bytes, readings, series, .. } => {
                format!("sealed with {bytes} bytes, {readings} readings of {series} series")
            }
            Segment::Dropped { reason } => format!("dropped ({reason})"),
        }
    }
}

/// The manifest's path in `dir`.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// The segments the manifest of `dir` knows; `None` for a store without one (format 1, or a
/// manifest whose first line never reached the disk).
pub(crate) fn read(dir: &Path) -> Result<Option<BTreeMap<u64, Segment>>, String> {
    Ok(read_all(dir)?.map(|k| k.segments))
}

/// Everything the manifest of `dir` says; `None` without one.
pub(crate) fn read_all(dir: &Path) -> Result<Option<Known>, String> {
    let path = path(dir);
    let lines: Vec<Line> = crate::jsonl::read(&path).map_err(|e| e.to_string())?;
    let Some(Line::Format { .. }) = lines.first() else {
        if lines.is_empty() {
            return Ok(None);
        }
        return Err(format!("{}: the first line is not the format", path.display()));
    };
    let mut out = Known::default();
    for line in lines {
        match line {
            Line::Format { version } => {
                if version > FORMAT {
                    return Err(format!(
                        "{}: store format {version}, written by a newer eitwatch-server (this one reads up to {FORMAT})",
                        path.display()
                    ));
                }
                out.format = version;
            }
            Line::Open { segment } => {
                out.segments.insert(segment, Segment::Open);
            }
            Line::Seal { segment, bytes, crc32, readings, series } => {
                out.segments.insert(segment, Segment::Sealed { bytes, crc32, readings, series });
                out.sealed_bytes.insert(segment, bytes);
            }
            Line::Drop { segment, reason } => {
                out.segments.insert(segment, Segment::Dropped { reason });
            }
            Line::Parts { add, remove, through } => {
                for name in remove {
                    out.parts.remove(&name);
                    out.removed.push(name);
                }
                for part in add {
                    out.parts.insert(part.file.clone(), part);
                }
                if let Some([segment, offset]) = through {
                    out.through = out.through.max((segment, offset));
                }
            }
        }
    }
    Ok(Some(out))
}

/// Opens the manifest of `dir` for appending (creating it, with its format line, if absent).
pub(crate) fn open(dir: &Path) -> std::io::Result<File> {
    let path = path(dir);
    let fresh = std::fs::metadata(&path).map_or(true, |m| m.len() == 0);
    let mut file = crate::jsonl::open(&path)?;
    if fresh {
        crate::jsonl::append(&mut file, &[Line::Format { version: FORMAT }])?;
        File::open(dir)?.sync_all()?;
    }
    Ok(file)
}

/// Appends lines in one write and syncs them.
pub(crate) fn append(file: &mut File, lines: &[Line]) -> std::io::Result<()> {
    crate::jsonl::append(file, lines)
}

/// The file beside segment `n` that says what it holds per series.
pub(crate) fn content_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:010}.content.json"))
}

/// Writes (and syncs) what segment `n` holds per series; returns its seal line. The caller
/// syncs the directory before appending the line.
pub(crate) fn seal(dir: &Path, n: u64, bytes: u64, crc32: u32, series: &[SeriesSummary]) -> std::io::Result<Line> {
    let mut file = File::create(content_path(dir, n))?;
    std::io::Write::write_all(&mut file, &serde_json::to_vec(series).map_err(std::io::Error::other)?)?;
    file.sync_data()?;
    let readings = series.iter().map(|s| s.count).sum();
    Ok(Line::Seal { segment: n, bytes, crc32, readings, series: series.len() as u64 })
}

/// What segment `n` holds per series, if its content file is there and reads.
pub(crate) fn content(dir: &Path, n: u64) -> Option<Vec<SeriesSummary>> {
    serde_json::from_slice(&std::fs::read(content_path(dir, n)).ok()?).ok()
}
