//! The in-memory half of the store: interned series and their points in sorted, columnar
//! chunks.
//!
//! Per series: its key once (plus one lookup string), and chunks of at most
//! [`CHUNK_POINTS`] points as three parallel columns (`i64` time, `f64` value, `u8` flags:
//! 17 bytes a point). Points arrive mostly in time order, so an append is a push onto the
//! last chunk; a back-filled point lands in the chunk that covers its time, which splits
//! when it grows past twice the size. Chunks are filled to exactly their capacity, so a
//! full chunk wastes nothing.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use eitwatch_config::reading::{Kind, Reading};

use super::log::{flags_of, stored_of};
use super::{SeriesKey, Stored};

/// Points per chunk (a power of two: a full chunk's `Vec`s have no spare capacity).
pub(crate) const CHUNK_POINTS: usize = 1024;

#[derive(Debug, Default)]
struct Chunk {
    times: Vec<i64>,
    values: Vec<f64>,
    flags: Vec<u8>,
}

impl Chunk {
    fn first(&self) -> i64 {
        self.times[0]
    }
    fn last(&self) -> i64 {
        self.times[self.times.len() - 1]
    }
    fn get(&self, i: usize) -> Stored {
        stored_of(self.values[i], self.flags[i]).unwrap_or_else(|| Stored::of_value(self.values[i]))
    }
    fn insert(&mut self, i: usize, time_ns: i64, s: &Stored) {
        self.times.insert(i, time_ns);
        self.values.insert(i, s.value);
        self.flags.insert(i, flags_of(s));
    }
    fn split_off(&mut self, at: usize) -> Chunk {
        Chunk { times: self.times.split_off(at), values: self.values.split_off(at), flags: self.flags.split_off(at) }
    }
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
        let c = &self.chunks[self.chunk_for(time_ns)?];
        c.times.binary_search(&time_ns).ok().map(|i| c.get(i))
    }

    /// Stores a point not yet stored.
    fn insert(&mut self, time_ns: i64, s: &Stored) {
        let Some(ci) = self.chunk_for(time_ns) else {
            let mut c = Chunk::default();
            c.insert(0, time_ns, s);
            self.chunks.push(c);
            return;
        };
        let last = self.chunks.len() - 1;
        if ci == last && time_ns > self.chunks[last].last() {
            if self.chunks[last].times.len() >= CHUNK_POINTS {
                let mut c = Chunk::default();
                c.insert(0, time_ns, s);
                self.chunks.push(c);
            } else {
                let c = &mut self.chunks[last];
                c.times.push(time_ns);
                c.values.push(s.value);
                c.flags.push(flags_of(s));
            }
            return;
        }
        let c = &mut self.chunks[ci];
        let i = c.times.partition_point(|t| *t < time_ns);
        c.insert(i, time_ns, s);
        if c.times.len() > 2 * CHUNK_POINTS {
            let tail = c.split_off(CHUNK_POINTS);
            self.chunks.insert(ci + 1, tail);
        }
    }

    /// Removes the point at `time_ns` (undoing an insert of a refused batch).
    fn remove(&mut self, time_ns: i64) {
        let Some(ci) = self.chunk_for(time_ns) else { return };
        let c = &mut self.chunks[ci];
        if let Ok(i) = c.times.binary_search(&time_ns) {
            c.times.remove(i);
            c.values.remove(i);
            c.flags.remove(i);
            if c.times.is_empty() {
                self.chunks.remove(ci);
            }
        }
    }

    /// Points in `[from_ns, to_ns)`, by time.
    pub(crate) fn range(&self, from_ns: i64, to_ns: i64) -> impl Iterator<Item = (i64, Stored)> + '_ {
        let start = self.chunk_for(from_ns).unwrap_or(0);
        self.chunks[start.min(self.chunks.len())..].iter().take_while(move |c| c.first() < to_ns).flat_map(move |c| {
            let a = c.times.partition_point(|t| *t < from_ns);
            let b = c.times.partition_point(|t| *t < to_ns);
            (a..b).map(move |i| (c.times[i], c.get(i)))
        })
    }

    /// Drops points before `cutoff_ns`; returns how many.
    fn prune(&mut self, cutoff_ns: i64) -> usize {
        let whole = self.chunks.partition_point(|c| c.last() < cutoff_ns);
        let mut dropped: usize = self.chunks.drain(..whole).map(|c| c.times.len()).sum();
        if let Some(c) = self.chunks.first_mut() {
            let n = c.times.partition_point(|t| *t < cutoff_ns);
            if n > 0 {
                c.times.drain(..n);
                c.values.drain(..n);
                c.flags.drain(..n);
                dropped += n;
            }
        }
        dropped
    }

    fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.times.len()).sum()
    }
}

/// FxHash (as in rustc): the series map is looked up for every reading, and its keys are
/// ids from our own registry, not attacker-chosen, so SipHash's flood resistance buys nothing.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        for b in chunks.remainder() {
            self.add(u64::from(*b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Every series, by id.
#[derive(Debug, Default)]
pub(crate) struct Index {
    ids: HashMap<Box<str>, u32, BuildHasherDefault<FxHasher>>,
    pub(crate) series: Vec<Series>,
    len: usize,
    lookup: String,
    /// The last reading's point and the ids of its parameters seen so far: the readings of
    /// a line (and of a factory's batch) share kind, factory and point.
    recent: (Option<Kind>, String, String, Vec<(Box<str>, u32)>),
}

fn lookup_key(buf: &mut String, kind: Kind, factory: &str, point: &str, parameter: &str) {
    buf.clear();
    buf.push_str(kind.as_str());
    for s in [factory, point, parameter] {
        // A separator no id may contain (ids are checked against the registry and catalog).
        buf.push('\u{1f}');
        buf.push_str(s);
    }
}

impl Index {
    /// The id of a reading's series, interning it when new.
    pub(crate) fn intern(&mut self, r: &Reading) -> u32 {
        let (kind, factory, point, ids) = &mut self.recent;
        if *kind == Some(r.kind) && *factory == r.factory && *point == r.point {
            if let Some((_, id)) = ids.iter().find(|(p, _)| **p == *r.parameter) {
                return *id;
            }
        } else {
            *kind = Some(r.kind);
            factory.clone_from(&r.factory);
            point.clone_from(&r.point);
            ids.clear();
        }
        lookup_key(&mut self.lookup, r.kind, &r.factory, &r.point, &r.parameter);
        let id = match self.ids.get(self.lookup.as_str()) {
            Some(id) => *id,
            None => self.intern_key(SeriesKey::of(r)),
        };
        if self.recent.3.len() < 64 {
            self.recent.3.push((r.parameter.as_str().into(), id));
        }
        id
    }

    /// The id of a series, interning it when new.
    pub(crate) fn intern_key(&mut self, key: SeriesKey) -> u32 {
        lookup_key(&mut self.lookup, key.kind, &key.factory, &key.point, &key.parameter);
        if let Some(id) = self.ids.get(self.lookup.as_str()) {
            return *id;
        }
        let id = self.series.len() as u32;
        self.ids.insert(self.lookup.as_str().into(), id);
        self.series.push(Series { key, chunks: Vec::new() });
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
