//! Judgement days on disk: what the engine judged on one closed Bangkok day, written once
//! the day is older than `[compliance] recent_days` and evicted from memory.
//!
//! ## Files (`<data_dir>/judgements/`)
//!
//! One file per day and generation, `YYYY-MM-DD.g<generation>.jdg` (the Bangkok date). A
//! day is written again only when late data (or a gap record, a correction) for it arrived:
//! the engine loads it back, judges again (recording the revisions), and the next eviction
//! writes the next generation. The checkpoint ([`super::checkpoint`]) names the generation
//! of every day on disk; files it does not name (older generations, a crash's leftovers,
//! days retention dropped) are deleted after each checkpoint. A file is never changed once
//! written, so the checkpoint and the day files always agree: a crash before the next
//! checkpoint leaves the previous generation, which the replay of the log then judges again.
//!
//! Format version 1, all integers little-endian, framed like the checkpoint (magic
//! `EITWJDAY`, version u32, payload length u64, CRC-32 of the payload u32), the payload:
//!
//! ```text
//! day start i64 (ns)
//! series u32 count, each: factory, point, parameter (str);
//!   hours (timeline of acc: the hourly aggregates of the day), day count (opt: valid u32,
//!   excluded u32), tracks u32 count, each: limit id (str), tag u8 — 0 fixed periods:
//!   u32 count of start i64 + period; 1 grab samples: items and hours (timelines)
//! ```
//!
//! The value encodings are the checkpoint's. Written like it: temporary file, sync, rename,
//! directory sync.

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
