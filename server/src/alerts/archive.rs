//! The alert archive: resolved alerts in sealed, compressed segment files under
//! `<data_dir>/alerts/`, read on demand.
//!
//! ## Segment file `alerts/<seq>.seg` (format version 1)
//! `<seq>` is a decimal sequence number, 8 digits, one more than the largest before it.
//! A header of 48 bytes, little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `EWALARCH` |
//! | 4 | format version, `1` (u32) |
//! | 4 | alerts in the segment (u32) |
//! | 8 | smallest id (u64) |
//! | 8 | largest id (u64) |
//! | 8 | smallest `since_ns` (i64) |
//! | 8 | largest `since_ns` (i64) |
//!
//! then a zlib stream (RFC 1950: deflate with an Adler-32 of the decoded bytes) holding:
//! - the strings: a varint count, then each as a varint byte length and its UTF-8 bytes;
//! - 16 columns, each a varint byte length and its bytes, one entry per alert in id order:
//!   1. `id`: varint, the difference from the previous alert's id (the first: from 0);
//!   2. `flags`: one byte, bit 0 a parameter, 1 a detail, 2 a value, 3 a limit, 4 a
//!      deadline, 5 a firing time, 6 an acknowledgement, 7 a resolution time;
//!   3. `key`, 4. `kind`, 5. `severity`, 6. `state`, 7. `factory`, 8. `point`: a string
//!      index each (kind, severity and state by their JSON names);
//!   9. `parameter`: a string index, where flagged;
//!   10. `detail`: a string index of the detail's JSON, where flagged;
//!   11. `value`: the f64's 8 bytes, where flagged;
//!   12. `limit`: a string index of the limit's JSON, where flagged;
//!   13. `since_ns`: zigzag varint, the difference from the previous alert's;
//!   14. `pending_ns`: zigzag varint, the difference from the previous alert's;
//!   15. `times`: where flagged, zigzag varints in this order: the deadline's difference
//!       from `since_ns`; the firing time's, the resolution time's from `pending_ns`;
//!   16. `ack`: where flagged, the string index of who, the zigzag varint difference of
//!       its time from `pending_ns`, the string index of the comment.
//!
//! Differences wrap (two's complement), so every i64 round-trips. Varints are LEB128;
//! zigzag maps 0, -1, 1, -2… to 0, 1, 2, 3….
//!
//! A segment is written to `<seq>.seg.tmp`, synced, renamed and its directory synced; it is
//! never appended to. An acknowledgement of an archived alert replaces its segment the same
//! way, whole. A `.tmp` file found at open is a write a crash interrupted, and is removed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;

use super::{Ack, Alert};

/// The magic a segment starts with.
pub const MAGIC: &[u8; 8] = b"EWALARCH";
/// The segment format this build writes and reads.
pub const VERSION: u32 = 1;
const HEADER_BYTES: usize = 48;
/// A decoded segment larger than this is damage, not a segment this code wrote.
const MAX_DECODED_BYTES: u64 = 1 << 30;

/// Why a segment could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The file system.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// Not a segment this build reads.
    #[error("{path}: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl From<ArchiveError> for std::io::Error {
    fn from(e: ArchiveError) -> std::io::Error {
        let kind = match &e {
            ArchiveError::Io { source, .. } => source.kind(),
            ArchiveError::Damaged { .. } => std::io::ErrorKind::InvalidData,
        };
        std::io::Error::new(kind, e.to_string())
    }
}

/// What the index keeps of a segment: its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Its sequence number.
    pub seq: u32,
    /// Alerts in it.
    pub count: u32,
    /// Smallest id.
    pub first_id: u64,
    /// Largest id.
    pub last_id: u64,
    /// Smallest `since_ns`.
    pub since_min_ns: i64,
    /// Largest `since_ns`.
    pub since_max_ns: i64,
}

impl Segment {
    /// Whether an alert whose condition started in `[from_ns, to_ns)` may be in it.
    pub fn overlaps(&self, from_ns: i64, to_ns: i64) -> bool {
        self.since_max_ns >= from_ns && self.since_min_ns < to_ns
    }

    /// Whether alert `id` may be in it.
    pub fn may_hold(&self, id: u64) -> bool {
        (self.first_id..=self.last_id).contains(&id)
    }
}

/// The segments of a directory, by sequence number.
#[derive(Debug, Clone)]
pub struct Archive {
    dir: PathBuf,
    segments: Vec<Segment>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io { path: path.to_path_buf(), source }
}

fn damaged(path: &Path, reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Damaged { path: path.to_path_buf(), reason: reason.into() }
}

impl Archive {
    /// Reads the headers of the segments in `dir` (none: empty) and removes the `.tmp` files
    /// a crash left.
    pub fn open(dir: &Path) -> Result<Archive, ArchiveError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Archive { dir: dir.to_path_buf(), segments: Vec::new() });
            }
            Err(source) => return Err(ArchiveError::Io { path: dir.to_path_buf(), source }),
        };
        let mut segments = Vec::new();
        for entry in entries {
            let path = entry.map_err(io(dir))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if name.ends_with(".tmp") {
                tracing::warn!(file = %path.display(), "Removing an alert archive segment a crash left unfinished");
                std::fs::remove_file(&path).map_err(io(&path))?;
                continue;
            }
            let Some(seq) = name.strip_suffix(".seg").and_then(|s| s.parse::<u32>().ok()) else { continue };
            let mut file = std::fs::File::open(&path).map_err(io(&path))?;
            let mut header = [0u8; HEADER_BYTES];
            file.read_exact(&mut header).map_err(|_| damaged(&path, "shorter than a segment header"))?;
            segments.push(parse_header(&path, seq, &header)?);
        }
        segments.sort_by_key(|s| s.seq);
        Ok(Archive { dir: dir.to_path_buf(), segments })
    }

    /// The segments, oldest first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Alerts archived.
    pub fn count(&self) -> u64 {
        self.segments.iter().map(|s| u64::from(s.count)).sum()
    }

    /// The largest id archived.
    pub fn last_id(&self) -> Option<u64> {
        self.segments.iter().map(|s| s.last_id).max()
    }

    /// The path of segment `seq`.
    pub fn path(&self, seq: u32) -> PathBuf {
        segment_path(&self.dir, seq)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Alert `id`, read from the segments that may hold it, newest first.
    pub fn get(&self, id: u64) -> Result<Option<(u32, Alert)>, ArchiveError> {
        for s in self.segments.iter().rev().filter(|s| s.may_hold(id)) {
            let alerts = read(&self.path(s.seq))?;
            if let Ok(i) = alerts.binary_search_by_key(&id, |a| a.id) {
                return Ok(alerts.into_iter().nth(i).map(|a| (s.seq, a)));
            }
        }
        Ok(None)
    }

    /// The alerts of `ids` it holds, by id: each segment that may hold one is read once
    /// (an alert in two segments is the newest's, as in [`Archive::get`]).
    pub fn get_many(&self, ids: &BTreeSet<u64>) -> Result<BTreeMap<u64, Alert>, ArchiveError> {
        let mut found = BTreeMap::new();
        for s in self.segments.iter().rev() {
            if ids.range(s.first_id..=s.last_id).all(|id| found.contains_key(id)) {
                continue;
            }
            for a in read(&self.path(s.seq))? {
                if ids.contains(&a.id) {
                    found.entry(a.id).or_insert(a);
                }
            }
        }
        Ok(found)
    }

    /// Writes `alerts` (in id order, at least one) as a new segment.
    pub fn append(&mut self, alerts: &[Alert]) -> Result<Segment, ArchiveError> {
        let seq = self.segments.last().map_or(1, |s| s.seq + 1);
        let created = !self.dir.exists();
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        if created {
            if let Some(parent) = self.dir.parent() {
                sync_dir(parent)?;
            }
        }
        let segment = write(&self.dir, seq, alerts)?;
        self.segments.push(segment);
        Ok(segment)
    }

    /// Replaces segment `seq`'s alert `id` with `alert` (its acknowledgement recorded).
    pub fn replace(&mut self, seq: u32, alert: &Alert) -> Result<(), ArchiveError> {
        let path = self.path(seq);
        let mut alerts = read(&path)?;
        let i = alerts
            .binary_search_by_key(&alert.id, |a| a.id)
            .map_err(|_| damaged(&path, format!("alert {} is not in this segment", alert.id)))?;
        alerts[i] = alert.clone();
        let segment = write(&self.dir, seq, &alerts)?;
        if let Some(s) = self.segments.iter_mut().find(|s| s.seq == seq) {
            *s = segment;
        }
        Ok(())
    }
}

fn segment_path(dir: &Path, seq: u32) -> PathBuf {
    dir.join(format!("{seq:08}.seg"))
}

/// Syncs a directory, so that a rename or a new entry in it is durable.
fn sync_dir(dir: &Path) -> Result<(), ArchiveError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

fn parse_header(path: &Path, seq: u32, h: &[u8; HEADER_BYTES]) -> Result<Segment, ArchiveError> {
    if &h[..8] != MAGIC {
        return Err(damaged(path, "not an alert archive segment (no EWALARCH magic)"));
    }
    let u32_at = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let version = u32_at(8);
    if version != VERSION {
        return Err(damaged(path, format!("segment format version {version}, this build reads {VERSION}")));
    }
    Ok(Segment {
        seq,
        count: u32_at(12),
        first_id: u64_at(16),
        last_id: u64_at(24),
        since_min_ns: u64_at(32) as i64,
        since_max_ns: u64_at(40) as i64,
    })
}

/// Writes segment `seq` of `alerts` (in id order): tmp, sync, rename, sync the directory.
fn write(dir: &Path, seq: u32, alerts: &[Alert]) -> Result<Segment, ArchiveError> {
    let path = segment_path(dir, seq);
    let (first, last) = match (alerts.first(), alerts.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err(damaged(&path, "a segment holds at least one alert")),
    };
    let segment = Segment {
        seq,
        count: u32::try_from(alerts.len()).map_err(|_| damaged(&path, "too many alerts for one segment"))?,
        first_id: first.id,
        last_id: last.id,
        since_min_ns: alerts.iter().map(|a| a.since_ns).min().unwrap_or(0),
        since_max_ns: alerts.iter().map(|a| a.since_ns).max().unwrap_or(0),
    };
    let body = encode(alerts).map_err(|reason| damaged(&path, reason))?;
    let mut bytes = Vec::with_capacity(HEADER_BYTES + body.len() / 4);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&segment.count.to_le_bytes());
    bytes.extend_from_slice(&segment.first_id.to_le_bytes());
    bytes.extend_from_slice(&segment.last_id.to_le_bytes());
    bytes.extend_from_slice(&segment.since_min_ns.to_le_bytes());
    bytes.extend_from_slice(&segment.since_max_ns.to_le_bytes());
    let mut z = ZlibEncoder::new(bytes, Compression::best());
    z.write_all(&body).map_err(io(&path))?;
    let bytes = z.finish().map_err(io(&path))?;
    crate::files::replace(&path, &path.with_extension("seg.tmp"), &bytes, 0o666).map_err(|e| io(&e.path)(e.source))?;
    Ok(segment)
}

/// Every alert of the segment at `path`, in id order.
pub fn read(path: &Path) -> Result<Vec<Alert>, ArchiveError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let header: &[u8; HEADER_BYTES] = bytes
        .get(..HEADER_BYTES)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| damaged(path, "shorter than a segment header"))?;
    let segment = parse_header(path, 0, header)?;
    let mut body = Vec::new();
    ZlibDecoder::new(&bytes[HEADER_BYTES..])
        .take(MAX_DECODED_BYTES)
        .read_to_end(&mut body)
        .map_err(|e| damaged(path, format!("compressed body: {e}")))?;
    let alerts = decode(&body, segment.count as usize).map_err(|reason| damaged(path, reason))?;
    if alerts.first().map(|a| a.id) != Some(segment.first_id) || alerts.last().map(|a| a.id) != Some(segment.last_id) {
        return Err(damaged(path, "ids differ from the header's"));
    }
    Ok(alerts)
}

const COLUMNS: usize = 16;
const ID: usize = 0;
const FLAGS: usize = 1;
const KEY: usize = 2;
const KIND: usize = 3;
const SEVERITY: usize = 4;
const STATE: usize = 5;
const FACTORY: usize = 6;
const POINT: usize = 7;
const PARAMETER: usize = 8;
const DETAIL: usize = 9;
const VALUE: usize = 10;
const LIMIT: usize = 11;
const SINCE: usize = 12;
const PENDING: usize = 13;
const TIMES: usize = 14;
const ACK: usize = 15;

const F_PARAMETER: u8 = 1;
const F_DETAIL: u8 = 1 << 1;
const F_VALUE: u8 = 1 << 2;
const F_LIMIT: u8 = 1 << 3;
const F_DEADLINE: u8 = 1 << 4;
const F_FIRING: u8 = 1 << 5;
const F_ACK: u8 = 1 << 6;
const F_RESOLVED: u8 = 1 << 7;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_delta(out: &mut Vec<u8>, v: i64, base: i64) {
    put_varint(out, zigzag(v.wrapping_sub(base)));
}

/// The strings of a segment, each once.
#[derive(Default)]
struct Strings {
    index: HashMap<String, u64>,
    list: Vec<String>,
}

impl Strings {
    fn put(&mut self, out: &mut Vec<u8>, s: &str) {
        let i = match self.index.get(s) {
            Some(&i) => i,
            None => {
                let i = self.list.len() as u64;
                self.index.insert(s.to_string(), i);
                self.list.push(s.to_string());
                i
            }
        };
        put_varint(out, i);
    }

    fn put_json<T: serde::Serialize>(&mut self, out: &mut Vec<u8>, v: &T) -> Result<(), String> {
        let json = serde_json::to_string(v).map_err(|e| e.to_string())?;
        self.put(out, &json);
        Ok(())
    }

    /// A unit enum's JSON name.
    fn put_name<T: serde::Serialize>(&mut self, out: &mut Vec<u8>, v: &T) -> Result<(), String> {
        match serde_json::to_value(v).map_err(|e| e.to_string())? {
            serde_json::Value::String(s) => {
                self.put(out, &s);
                Ok(())
            }
            other => Err(format!("expected a name, got {other}")),
        }
    }
}

fn encode(alerts: &[Alert]) -> Result<Vec<u8>, String> {
    let mut strings = Strings::default();
    let mut c: [Vec<u8>; COLUMNS] = Default::default();
    let (mut prev_id, mut prev_since, mut prev_pending) = (0u64, 0i64, 0i64);
    for a in alerts {
        put_varint(&mut c[ID], a.id.wrapping_sub(prev_id));
        prev_id = a.id;
        let mut flags = 0u8;
        for (set, bit) in [
            (a.parameter.is_some(), F_PARAMETER),
            (a.detail.is_some(), F_DETAIL),
            (a.value.is_some(), F_VALUE),
            (a.limit.is_some(), F_LIMIT),
            (a.deadline_ns.is_some(), F_DEADLINE),
            (a.firing_ns.is_some(), F_FIRING),
            (a.ack.is_some(), F_ACK),
            (a.resolved_ns.is_some(), F_RESOLVED),
        ] {
            if set {
                flags |= bit;
            }
        }
        c[FLAGS].push(flags);
        strings.put(&mut c[KEY], &a.key);
        strings.put_name(&mut c[KIND], &a.kind)?;
        strings.put_name(&mut c[SEVERITY], &a.severity)?;
        strings.put_name(&mut c[STATE], &a.state)?;
        strings.put(&mut c[FACTORY], &a.factory);
        strings.put(&mut c[POINT], &a.point);
        if let Some(p) = &a.parameter {
            strings.put(&mut c[PARAMETER], p);
        }
        if let Some(d) = &a.detail {
            strings.put_json(&mut c[DETAIL], d)?;
        }
        if let Some(v) = a.value {
            c[VALUE].extend_from_slice(&v.to_bits().to_le_bytes());
        }
        if let Some(l) = &a.limit {
            strings.put_json(&mut c[LIMIT], l)?;
        }
        put_delta(&mut c[SINCE], a.since_ns, prev_since);
        prev_since = a.since_ns;
        put_delta(&mut c[PENDING], a.pending_ns, prev_pending);
        prev_pending = a.pending_ns;
        if let Some(t) = a.deadline_ns {
            put_delta(&mut c[TIMES], t, a.since_ns);
        }
        if let Some(t) = a.firing_ns {
            put_delta(&mut c[TIMES], t, a.pending_ns);
        }
        if let Some(t) = a.resolved_ns {
            put_delta(&mut c[TIMES], t, a.pending_ns);
        }
        if let Some(ack) = &a.ack {
            strings.put(&mut c[ACK], &ack.by);
            put_delta(&mut c[ACK], ack.at_ns, a.pending_ns);
            strings.put(&mut c[ACK], &ack.comment);
        }
    }
    let mut out = Vec::new();
    put_varint(&mut out, strings.list.len() as u64);
    for s in &strings.list {
        put_varint(&mut out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
    for col in &c {
        put_varint(&mut out, col.len() as u64);
        out.extend_from_slice(col);
    }
    Ok(out)
}

/// A reader over bytes that names what ran out.
struct Cursor<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.bytes.split_first().ok_or_else(|| format!("{}: ends in a varint", self.what))?;
            self.bytes = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("{}: a varint longer than 10 bytes", self.what))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err(format!("{}: ends early", self.what));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn delta(&mut self, base: i64) -> Result<i64, String> {
        Ok(base.wrapping_add(unzigzag(self.varint()?)))
    }
}

fn decode(body: &[u8], count: usize) -> Result<Vec<Alert>, String> {
    let mut r = Cursor { bytes: body, what: "strings" };
    let n = r.varint()?;
    let mut strings = Vec::with_capacity(n.min(count as u64 * 8) as usize);
    for _ in 0..n {
        let len = usize::try_from(r.varint()?).map_err(|_| "strings: a length beyond memory")?;
        let s = std::str::from_utf8(r.take(len)?).map_err(|e| format!("strings: {e}"))?;
        strings.push(s.to_string());
    }
    const NAMES: [&str; COLUMNS] = [
        "id",
        "flags",
        "key",
        "kind",
        "severity",
        "state",
        "factory",
        "point",
        "parameter",
        "detail",
        "value",
        "limit",
        "since_ns",
        "pending_ns",
        "times",
        "ack",
    ];
    let mut c: Vec<Cursor> = Vec::with_capacity(COLUMNS);
    for what in NAMES {
        r.what = what;
        let len = usize::try_from(r.varint()?).map_err(|_| format!("{what}: a length beyond memory"))?;
        c.push(Cursor { bytes: r.take(len)?, what });
    }
    let string = |c: &mut Cursor| -> Result<String, String> {
        let i = c.varint()?;
        strings.get(i as usize).cloned().ok_or_else(|| format!("{}: string {i} of {}", c.what, strings.len()))
    };
    let json = |c: &mut Cursor| -> Result<serde_json::Value, String> {
        let what = c.what;
        let s = string(c)?;
        serde_json::from_str(&s).map_err(|e| format!("{what}: {e}"))
    };
    let name = |c: &mut Cursor| -> Result<serde_json::Value, String> { Ok(serde_json::Value::String(string(c)?)) };
    fn from<T: serde::de::DeserializeOwned>(what: &str, v: serde_json::Value) -> Result<T, String> {
        serde_json::from_value(v).map_err(|e| format!("{what}: {e}"))
    }
    let mut alerts = Vec::with_capacity(count);
    let (mut id, mut since_ns, mut pending_ns) = (0u64, 0i64, 0i64);
    for _ in 0..count {
        id = id.wrapping_add(c[ID].varint()?);
        let flags = c[FLAGS].byte()?;
        let key = string(&mut c[KEY])?;
        let kind = from("kind", name(&mut c[KIND])?)?;
        let severity = from("severity", name(&mut c[SEVERITY])?)?;
        let state = from("state", name(&mut c[STATE])?)?;
        let factory = string(&mut c[FACTORY])?;
        let point = string(&mut c[POINT])?;
        let parameter = if flags & F_PARAMETER != 0 { Some(string(&mut c[PARAMETER])?) } else { None };
        let detail = if flags & F_DETAIL != 0 { Some(Box::new(from("detail", json(&mut c[DETAIL])?)?)) } else { None };
        let value = if flags & F_VALUE != 0 {
            let b = c[VALUE].take(8)?;
            Some(f64::from_bits(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])))
        } else {
            None
        };
        let limit = if flags & F_LIMIT != 0 { Some(Box::new(from("limit", json(&mut c[LIMIT])?)?)) } else { None };
        since_ns = c[SINCE].delta(since_ns)?;
        pending_ns = c[PENDING].delta(pending_ns)?;
        let deadline_ns = if flags & F_DEADLINE != 0 { Some(c[TIMES].delta(since_ns)?) } else { None };
        let firing_ns = if flags & F_FIRING != 0 { Some(c[TIMES].delta(pending_ns)?) } else { None };
        let resolved_ns = if flags & F_RESOLVED != 0 { Some(c[TIMES].delta(pending_ns)?) } else { None };
        let ack = if flags & F_ACK != 0 {
            let by = string(&mut c[ACK])?;
            let at_ns = c[ACK].delta(pending_ns)?;
            let comment = string(&mut c[ACK])?;
            Some(Box::new(Ack { by, at_ns, comment }))
        } else {
            None
        };
        alerts.push(Alert {
            id,
            key,
            kind,
            severity,
            state,
            factory,
            point,
            parameter,
            detail,
            value,
            limit,
            since_ns,
            deadline_ns,
            pending_ns,
            firing_ns,
            ack,
            resolved_ns,
        });
    }
    if let Some(left) = c.iter().find(|c| !c.bytes.is_empty()) {
        return Err(format!("{}: {} bytes beyond its alerts", left.what, left.bytes.len()));
    }
    Ok(alerts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_zigzag_round_trip_at_the_edges() {
        for v in [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            put_delta(&mut out, v, 0);
            let mut c = Cursor { bytes: &out, what: "t" };
            assert_eq!(c.delta(0), Ok(v));
            assert!(c.bytes.is_empty());
        }
        assert_eq!([zigzag(0), zigzag(-1), zigzag(1), zigzag(-2)], [0, 1, 2, 3]);
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        // Differences wrap: the largest minus the smallest.
        let mut out = Vec::new();
        put_delta(&mut out, i64::MAX, i64::MIN);
        assert_eq!(Cursor { bytes: &out, what: "t" }.delta(i64::MIN), Ok(i64::MAX));
    }
}
