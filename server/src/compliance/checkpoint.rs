//! The engine's checkpoint: its open state, written atomically with how far the store's
//! log, the gap log and the correction log had been judged, so that a start judges only
//! what was stored after it instead of every reading ever stored. Closed days are in their
//! judgement day files ([`super::days`]), which the checkpoint names.
//!
//! ## File format (`<data_dir>/compliance.checkpoint`, version 3)
//!
//! All integers little-endian.
//!
//! ```text
//! magic    8 bytes  "EITWCKPT"
//! version  u32      3
//! length   u64      bytes of the payload
//! crc32    u32      CRC-32 (IEEE) of the payload
//! payload  length bytes:
//!   applied   store segment u64, store offset u64 (the log position judged up to),
//!             gaps applied u64, corrections applied u64 (records of their logs, in order),
//!             written at i64 (engine clock, ns)
//!   then `[0]` and the rest below, or `[1]`, the rest's length (varint) and its DEFLATE
//!   stream (RFC 1951), whichever is smaller; the rest:
//!   series    u32 count, each:
//!             factory, point, parameter (str), fingerprint u32 (CRC-32 of the point's
//!             settings and the limits applied: a changed registry or standard fails it),
//!             first day i64 (start of its first Bangkok day with a reading, i64::MAX: none),
//!             recent (fault state), tracks u32 count, each: tag u8 — 0 fixed periods:
//!             dirty (u32 count of start i64 + cause u8), fill from (opt i64), filled to
//!             (opt i64); 1 grab samples: latest (opt: time i64 + sample)
//!   gaps      u32 count of gap records as the engine holds them
//!   days      next generation u32; u32 count of the judgement day files it relies on:
//!             day start i64, generation u32, in memory u8 (1: read back into memory at a
//!             start, the recent days; 0: on disk only, read when asked for)
//!   sections  u32 count of the days held in memory that no day file holds (today, and a
//!             closed day whose file could not be written): day start i64, length u64, a
//!             section of every series above ([`super::days`] specifies sections)
//! str        u32 byte length + UTF-8
//! opt T      u8 0 (none) or 1 followed by T
//! sample     value f64, measured f64, O₂ f32, outcome u8
//! ```
//!
//! Version 2 (the rest as it is, its sections in the judgement days' format 2) and
//! version 1 (the whole state, the recent days' hourly aggregates and judgements included,
//! at fixed width) are still read; the next checkpoint writes the current version and the
//! day files.
//!
//! Written to a temporary file, synced, renamed over the previous one, the directory synced:
//! a crash leaves the previous checkpoint or the new one, never a mix. A checkpoint that
//! fails its magic, version, CRC or fingerprints, or names a day file that cannot be read,
//! is not used: the engine is rebuilt from the store instead (logged), as for a data
//! directory that never had one.

use std::path::{Path, PathBuf};

use crate::store::LogPosition;

/// The file's magic.
const MAGIC: &[u8; 8] = b"EITWCKPT";
/// The format version written (of checkpoints and judgement days); this one and every one before are read.
pub const VERSION: u32 = 3;
const HEADER_BYTES: usize = 8 + 4 + 8 + 4;

/// How far the engine's state had judged the data directory's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// The store's log, up to this position.
    pub store: LogPosition,
    /// The first records of the gap log.
    pub gaps: u64,
    /// The first records of the correction log.
    pub corrections: u64,
}

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// Not a checkpoint this build reads, or damaged.
    #[error("{path}: {reason}")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Frames a payload as a checkpoint file of the current version.
pub(super) fn frame(payload: &[u8]) -> Vec<u8> {
    frame_as(MAGIC, VERSION, payload)
}

/// The format version and payload of a checkpoint file's bytes, checked.
pub(super) fn unframe(bytes: &[u8]) -> Result<(u32, &[u8]), String> {
    unframe_as(MAGIC, "an engine checkpoint", bytes)
}

/// Frames a payload under `magic` (a checkpoint, a judgement day) as format `version`.
pub(super) fn frame_as(magic: &[u8; 8], version: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The format version and payload of bytes framed under `magic` (`what` they should be,
/// for the message): version 1 or [`VERSION`].
pub(super) fn unframe_as<'a>(magic: &[u8; 8], what: &str, bytes: &'a [u8]) -> Result<(u32, &'a [u8]), String> {
    if bytes.len() < HEADER_BYTES || &bytes[..8] != magic {
        return Err(format!("not {what} (no magic \"{}\")", String::from_utf8_lossy(magic)));
    }
    let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let version = word(8);
    if !(1..=VERSION).contains(&version) {
        return Err(format!("format version {version}, this build reads 1 to {VERSION}"));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[12..20]);
    let len = u64::from_le_bytes(len);
    let payload = &bytes[HEADER_BYTES..];
    if payload.len() as u64 != len {
        return Err(format!("payload of {} bytes, the header says {len}", payload.len()));
    }
    if crc32fast::hash(payload) != word(20) {
        return Err("CRC-32 mismatch: the file is damaged".into());
    }
    Ok((version, payload))
}

/// Writes `bytes` to `path` atomically: beside it, synced, renamed over it, the directory synced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    crate::files::replace(path, &path.with_extension("tmp"), bytes, 0o666)
        .map(drop)
        .map_err(|e| CheckpointError::Io { path: e.path, source: e.source })
}

/// The checkpoint's bytes, `None` if there is none.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, CheckpointError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CheckpointError::Io { path: path.to_path_buf(), source }),
    }
}

/// Encodes the checkpoint's values.
#[derive(Debug, Default)]
pub(super) struct Enc {
    pub(super) out: Vec<u8>,
}

impl Enc {
    pub(super) fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    pub(super) fn bool(&mut self, v: bool) {
        self.out.push(u8::from(v));
    }
    pub(super) fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn i64(&mut self, v: i64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn f64(&mut self, v: f64) {
        self.out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    pub(super) fn f32(&mut self, v: f32) {
        self.out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    pub(super) fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    pub(super) fn str(&mut self, s: &str) {
        self.len(s.len());
        self.out.extend_from_slice(s.as_bytes());
    }
    pub(super) fn opt<T>(&mut self, v: Option<T>, put: impl FnOnce(&mut Enc, T)) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                put(self, v);
            }
        }
    }
}

/// Decodes what [`Enc`] encoded; every error names what was being read and where.
#[derive(Debug)]
pub(super) struct Dec<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Dec<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Dec<'a> {
        Dec { bytes, at: 0 }
    }
    pub(super) fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
    fn take<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let end = self.at.checked_add(N).filter(|e| *e <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!("payload ends at byte {} inside {what}", self.at));
        };
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.at..end]);
        self.at = end;
        Ok(out)
    }
    pub(super) fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take::<1>(what)?[0])
    }
    pub(super) fn bool(&mut self, what: &str) -> Result<bool, String> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("byte {}: {what}: {b} is not a flag (0 or 1)", self.at - 1)),
        }
    }
    pub(super) fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(what)?))
    }
    pub(super) fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(what)?))
    }
    pub(super) fn i64(&mut self, what: &str) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take(what)?))
    }
    pub(super) fn i128(&mut self, what: &str) -> Result<i128, String> {
        Ok(i128::from_le_bytes(self.take(what)?))
    }
    pub(super) fn f64(&mut self, what: &str) -> Result<f64, String> {
        Ok(f64::from_bits(u64::from_le_bytes(self.take(what)?)))
    }
    pub(super) fn f32(&mut self, what: &str) -> Result<f32, String> {
        Ok(f32::from_bits(u32::from_le_bytes(self.take(what)?)))
    }
    /// A count of items of at least `min_item_bytes` each: bounded by what remains, so a
    /// damaged count cannot ask for a huge allocation.
    pub(super) fn len(&mut self, what: &str, min_item_bytes: usize) -> Result<usize, String> {
        let n = self.u32(what)? as usize;
        if n.saturating_mul(min_item_bytes.max(1)) > self.bytes.len() - self.at {
            return Err(format!("byte {}: {what}: {n} items cannot fit in what remains", self.at - 4));
        }
        Ok(n)
    }
    /// The next `n` bytes.
    pub(super) fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.bytes.len() - self.at {
            return Err(format!("byte {}: {what}: {n} bytes, {} left", self.at, self.bytes.len() - self.at));
        }
        self.at += n;
        Ok(&self.bytes[self.at - n..self.at])
    }
    pub(super) fn str(&mut self, what: &str) -> Result<String, String> {
        let n = self.len(what, 1)?;
        let bytes = &self.bytes[self.at..self.at + n];
        let s = std::str::from_utf8(bytes).map_err(|e| format!("byte {}: {what}: {e}", self.at))?;
        self.at += n;
        Ok(s.to_string())
    }
    pub(super) fn opt<T>(
        &mut self,
        what: &str,
        get: impl FnOnce(&mut Dec<'a>) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => get(self).map(Some),
            b => Err(format!("byte {}: {what}: {b} is not an option tag (0 or 1)", self.at - 1)),
        }
    }
    /// The position, for messages.
    pub(super) fn at(&self) -> usize {
        self.at
    }
}
