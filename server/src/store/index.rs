//! The store's series index: every series interned once, by id.
//!
//! A series' key shares its names with the other series' (see [`SeriesKey`]); the id table
//! hashes a key's fields and compares against the series' own key, so no key is held twice.
//! Points live elsewhere: the memtable ([`super::memtable`]) and the sealed partitions
//! ([`super::partition`]).

use std::hash::Hasher;

use rustc_hash::FxHasher;
use std::sync::Arc;

use eitwatch_config::reading::Kind;

use super::{Offered, SeriesKey};
use crate::names::{Names, same};

/// One series.
#[derive(Debug)]
pub(crate) struct Series {
    pub(crate) key: SeriesKey,
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
    same(&k.parameter, parameter) && k.kind == kind && same(&k.point, point) && same(&k.factory, factory)
}

impl Index {
    /// The id of an offered point's series, interning it when new. `same_point`: the caller
    /// knows it is of the previous call's kind, factory and point (a row of the same line).
    pub(crate) fn intern(&mut self, r: &impl Offered, same_point: bool) -> u32 {
        let (kind, factory, point, parameter) = r.names();
        let recent = &mut self.recent;
        if same_point || (recent.0 == Some(kind) && same(&recent.1, factory) && same(&recent.2, point)) {
            // Lines repeat their fields' order: the parameter after the last one found first.
            let (ids, next) = (&recent.3, recent.4);
            let found = match ids.get(next) {
                Some((p, _)) if same(p, parameter) => Some(next),
                _ => ids.iter().position(|(p, _)| same(p, parameter)),
            };
            if let Some(i) = found {
                // Not `%`: a division per reading costs more than the rest of the lookup.
                recent.4 = if i + 1 == ids.len() { 0 } else { i + 1 };
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
        self.series.push(Series { key });
        let series = &self.series;
        self.ids.insert_unique(hash, id, |&id| hash_key(&series[id as usize].key));
        id
    }
}
