//! The on-disk half of the store: segment files of CRC-framed binary records.
//!
//! A record is `[len: u32 LE][crc32 of payload: u32 LE][payload]`; the payload is a stream
//! of tagged entries:
//! - `1` series definition: `[id: u32][kind: u8][factory, point, parameter: u16 len + UTF-8]`;
//! - `2` point: `[id: u32][time_ns: i64][value: f64 bits][flags: u8]`, all little-endian
//!   (written by earlier builds; still read);
//! - `4` points: `[n: varint]`, then n × `[id: varint][time: zig-zag varint, the difference
//!   from the previous point's (the first's from 0)][flags: u8][value: f64 bits LE]`: a
//!   batch's points in ≈ 12 bytes each instead of 22 (a line's parameters share a time);
//! - `3` group: a record of its own, `[bytes: u64]`, written before the records of one
//!   group commit (those that one fdatasync made durable), saying how many bytes follow.
//!
//! A power cut tears only the last group: its pages may reach the disk in any order, so a
//! good record may follow a bad one there, but no later group exists. A good group record
//! after a bad record therefore means damage to synced, acknowledged data.
//!
//! Series ids are the writing process's; each segment defines a series before its first
//! point in that segment, so a segment decodes on its own (retention may delete the ones
//! before it) and a new process always starts a new segment.
//!
//! ## Format versions
//! - 1: segment files only.
//! - 2: segment files as in 1, plus the manifest ([`super::manifest`]), which names every
//!   segment and seals each finished one with its length, CRC-32 and per-series content.
//!   A store of format 1 opens as before and gets its manifest at that start (logged),
//!   every segment found sealed as it is; from then on it is checked as any other.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use eitwatch_config::reading::{Kind, Quality, Source};

use super::{SeriesKey, Stored};

/// Bytes of a record's header (length and checksum).
pub(crate) const HEADER_BYTES: usize = 8;
/// Bytes of one point entry (tag 2).
pub(crate) const POINT_BYTES: usize = 1 + 4 + 8 + 8 + 1;
/// The fewest bytes a point takes in any entry: in a points entry (tag 4), one-byte id and
/// time varints, the flags and the value.
pub(crate) const MIN_POINT_BYTES: usize = 1 + 1 + 1 + 8;

const TAG_DEF: u8 = 1;
const TAG_POINT: u8 = 2;
const TAG_GROUP: u8 = 3;
const TAG_POINTS: u8 = 4;
const GROUP_PAYLOAD_BYTES: usize = 9;

/// A position in the log: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct LogPosition {
    /// Segment number.
    pub segment: u64,
    /// Byte offset within the segment.
    pub offset: u64,
}

/// The file of segment `n` in `dir`.
pub(crate) fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:010}.seg"))
}

/// The segment numbers in `dir`, ascending.
pub(crate) fn list_segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name.strip_suffix(".seg").and_then(|n| n.parse::<u64>().ok()) {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Starts a record in `out`; [`finish_record`] fills its header.
pub(crate) fn begin_record(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    start
}

/// Writes the header of the record begun at `start`.
pub(crate) fn finish_record(out: &mut [u8], start: usize) {
    let payload = &out[start + HEADER_BYTES..];
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32fast::hash(payload).to_le_bytes();
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&crc);
}

/// Appends a series definition entry.
pub(crate) fn put_def(out: &mut Vec<u8>, id: u32, key: &SeriesKey) {
    out.push(TAG_DEF);
    out.extend_from_slice(&id.to_le_bytes());
    out.push(kind_code(key.kind));
    for s in [&key.factory, &key.point, &key.parameter] {
        // Ids come from the registry and catalog: far below 64 KiB.
        let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        out.extend_from_slice(bytes);
    }
}

/// Appends a points entry: `points` yields (id, time, value and flags).
pub(crate) fn put_points(out: &mut Vec<u8>, n: usize, points: impl Iterator<Item = (u32, i64, Stored)>) {
    out.push(TAG_POINTS);
    put_varint(out, n as u64);
    let mut previous = 0i64;
    for (id, time_ns, stored) in points.take(n) {
        put_varint(out, u64::from(id));
        let delta = time_ns.wrapping_sub(previous);
        put_varint(out, ((delta << 1) ^ (delta >> 63)) as u64);
        previous = time_ns;
        out.push(flags_of(&stored));
        out.extend_from_slice(&stored.value.to_bits().to_le_bytes());
    }
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint at `*at`, which it moves past; `None` where it is cut short or over 64 bits.
pub(super) fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Appends a point entry (the earlier format, for tests of reading it).
#[cfg(test)]
pub(crate) fn put_point(out: &mut Vec<u8>, id: u32, time_ns: i64, stored: &Stored) {
    let mut entry = [0u8; POINT_BYTES];
    entry[0] = TAG_POINT;
    entry[1..5].copy_from_slice(&id.to_le_bytes());
    entry[5..13].copy_from_slice(&time_ns.to_le_bytes());
    entry[13..21].copy_from_slice(&stored.value.to_bits().to_le_bytes());
    entry[21] = flags_of(stored);
    out.extend_from_slice(&entry);
}

/// The payload of the record at `offset`, if it is whole and its checksum matches.
pub(crate) fn record_at(bytes: &[u8], offset: usize) -> Option<&[u8]> {
    let header = bytes.get(offset..offset.checked_add(HEADER_BYTES)?)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let payload = bytes.get(offset + HEADER_BYTES..(offset + HEADER_BYTES).checked_add(len)?)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

/// Bytes of a group record.
pub(crate) const GROUP_RECORD_BYTES: usize = HEADER_BYTES + GROUP_PAYLOAD_BYTES;

/// The group record that starts a group commit of `group_bytes` bytes of records.
pub(crate) fn group_record(group_bytes: u64) -> [u8; GROUP_RECORD_BYTES] {
    let mut out = [0u8; GROUP_RECORD_BYTES];
    out[HEADER_BYTES] = TAG_GROUP;
    out[HEADER_BYTES + 1..].copy_from_slice(&group_bytes.to_le_bytes());
    let crc = crc32fast::hash(&out[HEADER_BYTES..]);
    out[..4].copy_from_slice(&(GROUP_PAYLOAD_BYTES as u32).to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The offset of a whole group record somewhere after `from`, if any (see the module doc).
pub(crate) fn group_after(bytes: &[u8], from: usize) -> Option<usize> {
    let last = bytes.len().checked_sub(HEADER_BYTES + GROUP_PAYLOAD_BYTES)?;
    (from + 1..=last).find(|&at| {
        bytes[at..at + 4] == (GROUP_PAYLOAD_BYTES as u32).to_le_bytes()
            && bytes[at + HEADER_BYTES] == TAG_GROUP
            && record_at(bytes, at).is_some()
    })
}

/// One decoded entry.
#[derive(Debug)]
pub(crate) enum Entry<'a> {
    /// A series definition, with the writer's id.
    Def(u32, SeriesKey),
    /// A point of the series the writer called `id`.
    Point {
        /// Writer's series id.
        id: u32,
        /// Time.
        time_ns: i64,
        /// Value and flags.
        stored: Stored,
        /// The series, from its definition earlier in the segment.
        key: Option<&'a SeriesKey>,
    },
}

/// Decodes a record's entries in order; definitions are kept in `defs` (one map per segment).
pub(crate) fn decode_record(
    payload: &[u8],
    defs: &mut HashMap<u32, SeriesKey>,
    mut each: impl FnMut(Entry<'_>),
) -> Result<(), String> {
    let mut at = 0usize;
    while at < payload.len() {
        match payload[at] {
            TAG_POINT => {
                let e = payload.get(at..at + POINT_BYTES).ok_or("point entry cut short")?;
                let id = u32::from_le_bytes(e[1..5].try_into().map_err(|_| "id")?);
                let time_ns = i64::from_le_bytes(e[5..13].try_into().map_err(|_| "time")?);
                let value = f64::from_bits(u64::from_le_bytes(e[13..21].try_into().map_err(|_| "value")?));
                let stored = stored_of(value, e[21]).ok_or_else(|| format!("bad flags {:#x}", e[21]))?;
                let key = defs.get(&id);
                if key.is_none() {
                    return Err(format!("point of series {id} before its definition"));
                }
                each(Entry::Point { id, time_ns, stored, key });
                at += POINT_BYTES;
            }
            TAG_DEF => {
                let mut p = at + 1;
                let id =
                    u32::from_le_bytes(payload.get(p..p + 4).ok_or("def cut short")?.try_into().map_err(|_| "id")?);
                p += 4;
                let kind = kind_of(*payload.get(p).ok_or("def cut short")?).ok_or("bad kind")?;
                p += 1;
                let mut strings: [std::sync::Arc<str>; 3] = Default::default();
                for s in &mut strings {
                    let len = u16::from_le_bytes(
                        payload.get(p..p + 2).ok_or("def cut short")?.try_into().map_err(|_| "len")?,
                    ) as usize;
                    p += 2;
                    let bytes = payload.get(p..p + len).ok_or("def cut short")?;
                    *s = std::str::from_utf8(bytes).map_err(|e| e.to_string())?.into();
                    p += len;
                }
                let [factory, point, parameter] = strings;
                let key = SeriesKey { factory, point, kind, parameter };
                defs.insert(id, key.clone());
                each(Entry::Def(id, key));
                at = p;
            }
            TAG_POINTS => {
                at += 1;
                let n = get_varint(payload, &mut at).ok_or("points entry: count cut short")?;
                let mut time_ns = 0i64;
                for _ in 0..n {
                    let id = get_varint(payload, &mut at).ok_or("points entry: id cut short")?;
                    let id = u32::try_from(id).map_err(|_| format!("points entry: series id {id} over 32 bits"))?;
                    let z = get_varint(payload, &mut at).ok_or("points entry: time cut short")?;
                    time_ns = time_ns.wrapping_add(((z >> 1) as i64) ^ -((z & 1) as i64));
                    let e = payload.get(at..at + 9).ok_or("points entry: value cut short")?;
                    let value = f64::from_bits(u64::from_le_bytes(e[1..9].try_into().map_err(|_| "value")?));
                    let stored = stored_of(value, e[0]).ok_or_else(|| format!("bad flags {:#x}", e[0]))?;
                    at += 9;
                    let key = defs.get(&id);
                    if key.is_none() {
                        return Err(format!("point of series {id} before its definition"));
                    }
                    each(Entry::Point { id, time_ns, stored, key });
                }
            }
            TAG_GROUP if at == 0 && payload.len() == GROUP_PAYLOAD_BYTES => at = payload.len(),
            tag => return Err(format!("unknown entry tag {tag} at payload byte {at}")),
        }
    }
    Ok(())
}

fn kind_code(kind: Kind) -> u8 {
    match kind {
        Kind::Effluent => 0,
        Kind::Emission => 1,
        Kind::Ambient => 2,
    }
}

fn kind_of(code: u8) -> Option<Kind> {
    Kind::ALL.get(code as usize).copied()
}

/// Packs quality (bits 0–2), lab source (bit 3) and below-detection-limit (bit 4).
pub(crate) fn flags_of(s: &Stored) -> u8 {
    let q = Quality::ALL.iter().position(|q| *q == s.quality).unwrap_or(0) as u8;
    q | (u8::from(s.source == Source::Lab) << 3) | (u8::from(s.below_detection_limit) << 4)
}

/// Unpacks [`flags_of`].
pub(crate) fn stored_of(value: f64, flags: u8) -> Option<Stored> {
    if flags >> 5 != 0 {
        return None;
    }
    let quality = *Quality::ALL.get((flags & 0b111) as usize)?;
    let source = if flags & 0b1000 != 0 { Source::Lab } else { Source::Instrument };
    Some(Stored { value, quality, source, below_detection_limit: flags & 0b1_0000 != 0 })
}
