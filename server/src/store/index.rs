//! The in-memory half of the store: interned series and their points in sorted chunks.
//!
//! Per series: its key (names shared with the other series, see [`SeriesKey`]), an id in
//! the lookup table, and chunks of [`CHUNK_POINTS`] points. The newest chunk is open:
//! three columns (`i64` time, `f64` value, `u8` flags, 17 bytes a point) in one allocation
//! that a new point is pushed onto. A full chunk is packed:
//! timestamps as zig-zag varint delta-of-deltas (one byte for a regular interval), values
//! XOR'd with the previous one keeping only the non-zero bytes (one byte for a repeated
//! value), flags as runs — a few bytes a point instead of 17. A back-filled point unpacks
//! the chunk covering its time, goes in, and the chunk is packed again (split in two when
//! it grows past twice the size).

use std::hash::Hasher;

use rustc_hash::FxHasher;
use std::sync::Arc;

use eitwatch_config::reading::Kind;

use super::log::{flags_of, stored_of};
use super::{Offered, SeriesKey, Stored};
use crate::names::Names;

/// Points per chunk. Small enough that the open chunk of each series stays near 2 KiB.
pub(crate) const CHUNK_POINTS: usize = 128;

/// Bytes of a point in an open chunk: time, value and flags.
const OPEN_POINT_BYTES: usize = 8 + 8 + 1;

/// A chunk's points as columns in one allocation of `capacity` × 17 bytes: the times
/// (`i64`), then the values (`f64` bits), then the flags, each column `capacity` long, all
/// little-endian. One block rather than three: a series' first point costs one small
/// allocation (32 bytes with malloc's header), not three.
#[derive(Debug, Default, Clone)]
struct Columns {
    buf: Box<[u8]>,
    /// Points held, and room for them (`buf.len() / 17`, kept to spare a division on every
    /// access); `u32` so that a chunk stays 40 bytes.
    len: u32,
    capacity: u32,
}

fn word(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

impl Columns {
    fn with_capacity(capacity: usize) -> Columns {
        Columns { buf: vec![0; capacity * OPEN_POINT_BYTES].into_boxed_slice(), len: 0, capacity: capacity as u32 }
    }
    fn capacity(&self) -> usize {
        self.capacity as usize
    }
    fn len(&self) -> usize {
        self.len as usize
    }
    fn set_len(&mut self, len: usize) {
        self.len = len as u32;
    }
    fn time(&self, i: usize) -> i64 {
        word(&self.buf, 8 * i) as i64
    }
    fn last_time(&self) -> Option<i64> {
        self.len().checked_sub(1).map(|i| self.time(i))
    }
    fn value(&self, i: usize) -> f64 {
        f64::from_bits(word(&self.buf, 8 * (self.capacity() + i)))
    }
    fn flags(&self, i: usize) -> u8 {
        self.buf[16 * self.capacity() + i]
    }
    fn get(&self, i: usize) -> Stored {
        let value = self.value(i);
        stored_of(value, self.flags(i)).unwrap_or_else(|| Stored::of_value(value))
    }
    fn set_time(&mut self, i: usize, time_ns: i64) {
        self.buf[8 * i..8 * i + 8].copy_from_slice(&time_ns.to_le_bytes());
    }
    fn set_value(&mut self, i: usize, value: f64) {
        let at = 8 * (self.capacity() + i);
        self.buf[at..at + 8].copy_from_slice(&value.to_bits().to_le_bytes());
    }
    fn set_flags(&mut self, i: usize, flags: u8) {
        let at = 16 * self.capacity() + i;
        self.buf[at] = flags;
    }
    fn set(&mut self, i: usize, time_ns: i64, s: &Stored) {
        self.set_time(i, time_ns);
        self.set_value(i, s.value);
        self.set_flags(i, flags_of(s));
    }
    /// The bytes of the times, values and flags held.
    fn parts(&self) -> (&[u8], &[u8], &[u8]) {
        let (c, n) = (self.capacity(), self.len());
        (&self.buf[..8 * n], &self.buf[8 * c..8 * (c + n)], &self.buf[16 * c..16 * c + n])
    }
    /// The index of the first point not before `time_ns` (`len` if none).
    fn position(&self, time_ns: i64) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.time(mid) < time_ns { lo = mid + 1 } else { hi = mid }
        }
        lo
    }
    /// The index of the point at `time_ns`.
    fn find(&self, time_ns: i64) -> Option<usize> {
        let i = self.position(time_ns);
        (i < self.len() && self.time(i) == time_ns).then_some(i)
    }
    /// Copies `src`'s points `from..from + n` to `to..to + n` (the columns' capacities may
    /// differ; [`Columns::shift`] moves points within one chunk).
    fn copy_from(&mut self, src: &Columns, from: usize, n: usize, to: usize) {
        let (d, s) = (self.capacity(), src.capacity());
        self.buf[8 * to..8 * (to + n)].copy_from_slice(&src.buf[8 * from..8 * (from + n)]);
        self.buf[8 * (d + to)..8 * (d + to + n)].copy_from_slice(&src.buf[8 * (s + from)..8 * (s + from + n)]);
        self.buf[16 * d + to..16 * d + to + n].copy_from_slice(&src.buf[16 * s + from..16 * s + from + n]);
    }
    /// Moves the points from `from` on to start at `to`, within the capacity.
    fn shift(&mut self, from: usize, to: usize) {
        let (c, n) = (self.capacity(), self.len() - from);
        self.buf.copy_within(8 * from..8 * (from + n), 8 * to);
        self.buf.copy_within(8 * (c + from)..8 * (c + from + n), 8 * (c + to));
        self.buf.copy_within(16 * c + from..16 * c + from + n, 16 * c + to);
    }
    /// Room for one more point.
    #[inline]
    fn reserve_one(&mut self) {
        if self.len == self.capacity {
            self.grow();
        }
    }
    /// Doubles the room (at least 4) as a `Vec` does, but no further than [`CHUNK_POINTS`]
    /// while the chunk is within it (a full chunk is packed).
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let len = self.len();
        let mut capacity = (2 * len).max(4);
        if len < CHUNK_POINTS {
            capacity = capacity.min(CHUNK_POINTS);
        }
        let mut grown = Columns::with_capacity(capacity);
        grown.copy_from(self, 0, len, 0);
        grown.set_len(len);
        *self = grown;
    }
    fn insert(&mut self, i: usize, time_ns: i64, s: &Stored) {
        self.reserve_one();
        self.shift(i, i + 1);
        self.set(i, time_ns, s);
        self.len += 1;
    }
    #[inline]
    fn push(&mut self, time_ns: i64, s: &Stored) {
        self.reserve_one();
        self.set(self.len(), time_ns, s);
        self.len += 1;
    }
    fn remove(&mut self, i: usize) {
        self.shift(i + 1, i);
        self.len -= 1;
    }
    fn drain_front(&mut self, n: usize) {
        self.shift(n, 0);
        self.set_len(self.len() - n);
    }
    fn split_off(&mut self, at: usize) -> Columns {
        let n = self.len() - at;
        let mut tail = Columns::with_capacity(n);
        tail.copy_from(self, at, n, 0);
        tail.set_len(n);
        self.set_len(at);
        tail
    }
}

// A series' first chunk is allocated alone: up to 40 bytes fit a 48-byte block with malloc's
// header; more would take the next size class for every series.
const _: () = assert!(std::mem::size_of::<Chunk>() <= 40);

#[derive(Debug)]
enum Chunk {
    Open(Columns),
    Packed { first: i64, last: i64, len: u32, bytes: Box<[u8]> },
}

impl Chunk {
    fn first(&self) -> i64 {
        match self {
            Chunk::Open(c) => c.time(0),
            Chunk::Packed { first, .. } => *first,
        }
    }
    fn last(&self) -> i64 {
        match self {
            Chunk::Open(c) => c.time(c.len() - 1),
            Chunk::Packed { last, .. } => *last,
        }
    }
    fn len(&self) -> usize {
        match self {
            Chunk::Open(c) => c.len(),
            Chunk::Packed { len, .. } => *len as usize,
        }
    }
    fn columns(&self) -> std::borrow::Cow<'_, Columns> {
        match self {
            Chunk::Open(c) => std::borrow::Cow::Borrowed(c),
            Chunk::Packed { first, len, bytes, .. } => std::borrow::Cow::Owned(unpack(*first, *len as usize, bytes)),
        }
    }
    fn into_columns(self) -> Columns {
        match self {
            Chunk::Open(c) => c,
            Chunk::Packed { first, len, bytes, .. } => unpack(first, len as usize, &bytes),
        }
    }
    fn packed(c: &Columns) -> Chunk {
        Chunk::Packed {
            first: c.time(0),
            last: c.time(c.len() - 1),
            len: c.len() as u32,
            bytes: pack(c).into_boxed_slice(),
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&b) = bytes.get(*at) {
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 || shift >= 63 {
            break;
        }
        shift += 7;
    }
    v
}

/// Packs columns (see the module doc); `first` is kept outside.
fn pack(c: &Columns) -> Vec<u8> {
    let mut out = Vec::with_capacity(c.len() * 3);
    let (times, values, flags) = c.parts();
    let (mut prev_t, mut prev_delta) = (c.time(0), 0i64);
    for t in times.chunks_exact(8).skip(1).map(|b| word(b, 0) as i64) {
        let delta = t.wrapping_sub(prev_t);
        let dod = delta.wrapping_sub(prev_delta);
        put_varint(&mut out, ((dod << 1) ^ (dod >> 63)) as u64);
        (prev_t, prev_delta) = (t, delta);
    }
    let mut prev = 0u64;
    for v in values.chunks_exact(8).map(|b| word(b, 0)) {
        let x = v ^ prev;
        prev = v;
        if x == 0 {
            out.push(0);
            continue;
        }
        let lz = (x.leading_zeros() / 8) as usize;
        let tz = (x.trailing_zeros() / 8) as usize;
        let n = 8 - lz - tz;
        out.push(((lz as u8) << 4) | n as u8);
        out.extend_from_slice(&(x >> (tz * 8)).to_le_bytes()[..n]);
    }
    let mut i = 0;
    while i < flags.len() {
        let run = flags[i..].iter().take_while(|f| **f == flags[i]).count();
        out.push(flags[i]);
        put_varint(&mut out, run as u64);
        i += run;
    }
    out
}

fn unpack(first: i64, len: usize, bytes: &[u8]) -> Columns {
    let mut c = Columns::with_capacity(len);
    let mut at = 0;
    let (mut t, mut delta) = (first, 0i64);
    c.set_time(0, t);
    for i in 1..len {
        let z = get_varint(bytes, &mut at);
        let dod = ((z >> 1) as i64) ^ -((z & 1) as i64);
        delta = delta.wrapping_add(dod);
        t = t.wrapping_add(delta);
        c.set_time(i, t);
    }
    let mut prev = 0u64;
    for i in 0..len {
        let header = bytes.get(at).copied().unwrap_or(0);
        at += 1;
        if header != 0 {
            let (lz, n) = ((header >> 4) as usize, (header & 0x0f) as usize);
            let tz = 8usize.saturating_sub(lz + n);
            let mut word = [0u8; 8];
            let part = bytes.get(at..at + n).unwrap_or(&[]);
            word[..part.len()].copy_from_slice(part);
            at += n;
            prev ^= u64::from_le_bytes(word) << (tz * 8);
        }
        c.set_value(i, f64::from_bits(prev));
    }
    let mut i = 0;
    while i < len {
        let flags = bytes.get(at).copied().unwrap_or(0);
        at += 1;
        let run = (get_varint(bytes, &mut at) as usize).clamp(1, len - i);
        for j in i..i + run {
            c.set_flags(j, flags);
        }
        i += run;
    }
    c.set_len(len);
    c
}

/// One series' points, by time.
#[derive(Debug)]
pub(crate) struct Series {
    pub(crate) key: SeriesKey,
    chunks: Vec<Chunk>,
}

impl Series {
    fn chunk_for(&self, time_ns: i64) -> Option<usize> {
        if self.chunks.is_empty() {
            return None;
        }
        Some(self.chunks.partition_point(|c| c.first() <= time_ns).saturating_sub(1))
    }

    /// The point stored at `time_ns`.
    pub(crate) fn get(&self, time_ns: i64) -> Option<Stored> {
        if self.chunks.last().is_none_or(|c| time_ns > c.last()) {
            return None; // the common case: a point after every stored one
        }
        let chunk = &self.chunks[self.chunk_for(time_ns)?];
        if time_ns < chunk.first() || time_ns > chunk.last() {
            return None;
        }
        let c = chunk.columns();
        c.find(time_ns).map(|i| c.get(i))
    }

    /// Stores a point not yet stored.
    fn insert(&mut self, time_ns: i64, s: &Stored) {
        if let Some(Chunk::Open(c)) = self.chunks.last_mut()
            && c.len() < CHUNK_POINTS
            && c.last_time().is_some_and(|last| time_ns > last)
        {
            c.push(time_ns, s); // the common case: appended to the open chunk, in place
            return;
        }
        let Some(ci) = self.chunk_for(time_ns) else {
            // A series' first point: room for one, not the four a first push reserves (a new
            // series costs its key and a few dozen bytes until it is busy).
            let mut c = Columns::with_capacity(1);
            c.push(time_ns, s);
            self.chunks.reserve_exact(1);
            self.chunks.push(Chunk::Open(c));
            return;
        };
        let last = self.chunks.len() - 1;
        if ci == last && time_ns > self.chunks[last].last() {
            if self.chunks[last].len() >= CHUNK_POINTS {
                let mut c = Columns::default();
                if let Chunk::Open(full) = &mut self.chunks[last] {
                    let packed = Chunk::packed(full);
                    // The full chunk's columns, emptied, are the new open one's: no regrowth.
                    c = std::mem::take(full);
                    c.len = 0;
                    self.chunks[last] = packed;
                }
                c.push(time_ns, s);
                self.chunks.push(Chunk::Open(c));
            } else {
                let chunk = std::mem::replace(&mut self.chunks[last], Chunk::Open(Columns::default()));
                let mut c = chunk.into_columns();
                c.push(time_ns, s);
                self.chunks[last] = Chunk::Open(c);
            }
            return;
        }
        // A back-filled point: into the chunk covering its time.
        let chunk = std::mem::replace(&mut self.chunks[ci], Chunk::Open(Columns::default()));
        let mut c = chunk.into_columns();
        let i = c.position(time_ns);
        c.insert(i, time_ns, s);
        let tail = (c.len() > 2 * CHUNK_POINTS).then(|| c.split_off(CHUNK_POINTS));
        self.chunks[ci] = self.settle(ci, c);
        if let Some(tail) = tail {
            let at = ci + 1;
            self.chunks.insert(at, Chunk::Open(Columns::default()));
            self.chunks[at] = self.settle(at, tail);
        }
    }

    /// The last chunk stays open for appends; any other is packed.
    fn settle(&self, ci: usize, c: Columns) -> Chunk {
        if ci + 1 == self.chunks.len() { Chunk::Open(c) } else { Chunk::packed(&c) }
    }

    /// Removes the point at `time_ns` (undoing an insert of a refused batch).
    fn remove(&mut self, time_ns: i64) {
        let Some(ci) = self.chunk_for(time_ns) else { return };
        let chunk = std::mem::replace(&mut self.chunks[ci], Chunk::Open(Columns::default()));
        let mut c = chunk.into_columns();
        if let Some(i) = c.find(time_ns) {
            c.remove(i);
        }
        if c.len() == 0 {
            self.chunks.remove(ci);
        } else {
            self.chunks[ci] = self.settle(ci, c);
        }
    }

    /// The points within `[from_ns, to_ns)`, oldest first.
    #[cfg(test)]
    pub(crate) fn scan(&self, from_ns: i64, to_ns: i64, mut each: impl FnMut(i64, Stored)) {
        self.scan_while(from_ns, to_ns, |t, s| {
            each(t, s);
            true
        });
    }

    /// The points within `[from_ns, to_ns)`, oldest first, until `each` answers `false`
    /// (for the point it was given, which then counts as not taken).
    pub(crate) fn scan_while(&self, from_ns: i64, to_ns: i64, mut each: impl FnMut(i64, Stored) -> bool) {
        let start = self.chunk_for(from_ns).unwrap_or(0);
        for chunk in self.chunks[start.min(self.chunks.len())..].iter().take_while(|c| c.first() < to_ns) {
            if chunk.last() < from_ns {
                continue;
            }
            let c = chunk.columns();
            for i in c.position(from_ns)..c.position(to_ns) {
                if !each(c.time(i), c.get(i)) {
                    return;
                }
            }
        }
    }

    /// Drops points before `cutoff_ns`; returns how many.
    fn prune(&mut self, cutoff_ns: i64) -> usize {
        let whole = self.chunks.partition_point(|c| c.last() < cutoff_ns);
        let mut dropped: usize = self.chunks.drain(..whole).map(|c| c.len()).sum();
        if self.chunks.first().is_some_and(|c| c.first() < cutoff_ns) {
            let chunk = std::mem::replace(&mut self.chunks[0], Chunk::Open(Columns::default()));
            let mut c = chunk.into_columns();
            let n = c.position(cutoff_ns);
            c.drain_front(n);
            dropped += n;
            self.chunks[0] = self.settle(0, c);
        }
        dropped
    }

    fn len(&self) -> usize {
        self.chunks.iter().map(Chunk::len).sum()
    }
}

/// Every series, by id.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Series ids by key: the table hashes a key's fields and compares against the series'
    /// own key, so no key is held twice.
    ids: hashbrown::HashTable<u32>,
    /// Every distinct name (factory, point, parameter) of the keys, held once.
    names: Names,
    pub(crate) series: Vec<Series>,
    len: usize,
    /// The last reading's point and the ids of its parameters seen so far: the readings of
    /// a line (and of a factory's batch) share kind, factory and point.
    recent: RecentPoint,
}

/// Kind, factory and point of the last reading interned, its parameters' ids, and where
/// in them the next parameter is looked for first.
type RecentPoint = (Option<Kind>, String, String, Vec<(Arc<str>, u32)>, usize);

/// The hash of a key's fields for the id table.
fn hash_names(kind: Kind, factory: &str, point: &str, parameter: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write_u8(kind as u8);
    for s in [factory, point, parameter] {
        h.write(s.as_bytes());
        // As `str`'s `Hash` does: 0xff is in no UTF-8 text, so ("ab", "c") and ("a", "bc")
        // hash apart.
        h.write_u8(0xff);
    }
    h.finish()
}

fn hash_key(k: &SeriesKey) -> u64 {
    hash_names(k.kind, &k.factory, &k.point, &k.parameter)
}

fn is_key(k: &SeriesKey, kind: Kind, factory: &str, point: &str, parameter: &str) -> bool {
    // The parameter first: it tells a point's series apart.
    *k.parameter == *parameter && k.kind == kind && *k.point == *point && *k.factory == *factory
}

impl Index {
    /// The id of an offered point's series, interning it when new. `same_point`: the caller
    /// knows it is of the previous call's kind, factory and point (a row of the same line).
    pub(crate) fn intern(&mut self, r: &impl Offered, same_point: bool) -> u32 {
        let (kind, factory, point, parameter) = r.names();
        let recent = &mut self.recent;
        if same_point || (recent.0 == Some(kind) && recent.1 == factory && recent.2 == point) {
            // Lines repeat their fields' order: the parameter after the last one found first.
            let (ids, next) = (&recent.3, recent.4);
            let found = match ids.get(next) {
                Some((p, _)) if **p == *parameter => Some(next),
                _ => ids.iter().position(|(p, _)| **p == *parameter),
            };
            if let Some(i) = found {
                recent.4 = (i + 1) % ids.len();
                return ids[i].1;
            }
        } else {
            recent.0 = Some(kind);
            recent.1.replace_range(.., factory);
            recent.2.replace_range(.., point);
            recent.3.clear();
        }
        let hash = hash_names(kind, factory, point, parameter);
        let series = &self.series;
        let id = match self.ids.find(hash, |&id| is_key(&series[id as usize].key, kind, factory, point, parameter)) {
            Some(id) => *id,
            None => {
                let key = SeriesKey {
                    factory: self.names.get(factory),
                    point: self.names.get(point),
                    kind,
                    parameter: self.names.get(parameter),
                };
                self.push(hash, key)
            }
        };
        if self.recent.3.len() < 64 {
            self.recent.3.push((self.series[id as usize].key.parameter.clone(), id));
        }
        id
    }

    /// The key of series `id`.
    pub(crate) fn key(&self, id: u32) -> Option<&SeriesKey> {
        self.series.get(id as usize).map(|s| &s.key)
    }

    /// The id of a series, interning it when new.
    pub(crate) fn intern_key(&mut self, key: SeriesKey) -> u32 {
        let hash = hash_key(&key);
        let series = &self.series;
        let same = |&id: &u32| is_key(&series[id as usize].key, key.kind, &key.factory, &key.point, &key.parameter);
        if let Some(id) = self.ids.find(hash, same) {
            return *id;
        }
        // A key decoded from the log has names of its own: share the index's instead.
        let key = SeriesKey {
            factory: self.names.get(&key.factory),
            point: self.names.get(&key.point),
            kind: key.kind,
            parameter: self.names.get(&key.parameter),
        };
        self.push(hash, key)
    }

    /// Adds a series not yet interned, whose key hashes to `hash`.
    fn push(&mut self, hash: u64, key: SeriesKey) -> u32 {
        let id = self.series.len() as u32;
        self.series.push(Series { key, chunks: Vec::new() });
        let series = &self.series;
        self.ids.insert_unique(hash, id, |&id| hash_key(&series[id as usize].key));
        id
    }

    /// The point of series `id` at `time_ns`.
    pub(crate) fn get(&self, id: u32, time_ns: i64) -> Option<Stored> {
        self.series[id as usize].get(time_ns)
    }

    /// Stores a point the caller checked is absent.
    pub(crate) fn insert(&mut self, id: u32, time_ns: i64, s: &Stored) {
        self.series[id as usize].insert(time_ns, s);
        self.len += 1;
    }

    /// Removes a point.
    pub(crate) fn remove(&mut self, id: u32, time_ns: i64) {
        let series = &mut self.series[id as usize];
        let before = series.len();
        series.remove(time_ns);
        self.len -= before - series.len();
    }

    /// Drops every point before `cutoff_ns`; returns how many.
    pub(crate) fn prune(&mut self, cutoff_ns: i64) -> usize {
        let dropped: usize = self.series.iter_mut().map(|s| s.prune(cutoff_ns)).sum();
        self.len -= dropped;
        dropped
    }

    /// Points stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}
