//! The points not yet in a partition file: per series id, its points sorted by time.
//!
//! A point newer than its series' newest is pushed; an older one (a back-fill, a body that
//! overtook an earlier one on another connection) is inserted at its place, a move of the
//! newer points of that series only. Nothing is packed: the memtable is bounded
//! (`[store] memtable_max_readings`) and flushed to partition files past the bound.

use super::Stored;

/// Points by series id, each series' by time.
#[derive(Debug, Default)]
pub(crate) struct Memtable {
    series: Vec<Vec<(i64, Stored)>>,
    len: usize,
    /// The oldest time ever inserted (not raised by removals): whether a closed day is held.
    oldest_ns: Option<i64>,
}

impl Memtable {
    /// The point of series `id` at `time_ns`.
    pub(crate) fn get(&self, id: u32, time_ns: i64) -> Option<Stored> {
        let points = self.series.get(id as usize)?;
        let i = points.partition_point(|(t, _)| *t < time_ns);
        points.get(i).filter(|(t, _)| *t == time_ns).map(|(_, s)| *s)
    }

    /// Stores a point the caller checked is absent.
    pub(crate) fn insert(&mut self, id: u32, time_ns: i64, s: Stored) {
        let i = id as usize;
        if self.series.len() <= i {
            self.series.resize_with(i + 1, Vec::new);
        }
        let points = &mut self.series[i];
        match points.last() {
            Some((last, _)) if *last >= time_ns => {
                let at = points.partition_point(|(t, _)| *t < time_ns);
                points.insert(at, (time_ns, s));
            }
            _ => points.push((time_ns, s)),
        }
        self.len += 1;
        self.oldest_ns = Some(self.oldest_ns.map_or(time_ns, |o| o.min(time_ns)));
    }

    /// Removes a point (the undo of a refused batch).
    pub(crate) fn remove(&mut self, id: u32, time_ns: i64) {
        let Some(points) = self.series.get_mut(id as usize) else { return };
        let i = points.partition_point(|(t, _)| *t < time_ns);
        if points.get(i).is_some_and(|(t, _)| *t == time_ns) {
            points.remove(i);
            self.len -= 1;
        }
    }

    /// Series `id`'s points within `[from_ns, to_ns)`.
    pub(crate) fn range(&self, id: u32, from_ns: i64, to_ns: i64) -> &[(i64, Stored)] {
        let Some(points) = self.series.get(id as usize) else { return &[] };
        let a = points.partition_point(|(t, _)| *t < from_ns);
        let b = points.partition_point(|(t, _)| *t < to_ns);
        &points[a..b.max(a)]
    }

    /// The time of series `id`'s first point at or after `from_ns`.
    pub(crate) fn first_from(&self, id: u32, from_ns: i64) -> Option<i64> {
        let points = self.series.get(id as usize)?;
        let i = points.partition_point(|(t, _)| *t < from_ns);
        points.get(i).map(|(t, _)| *t)
    }

    /// Every series with points: its id and points.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &[(i64, Stored)])> {
        (0u32..).zip(&self.series).filter(|(_, p)| !p.is_empty()).map(|(id, p)| (id, p.as_slice()))
    }

    /// Drops every point before `cutoff_ns`; returns how many.
    pub(crate) fn prune(&mut self, cutoff_ns: i64) -> usize {
        let mut dropped = 0;
        for points in &mut self.series {
            let n = points.partition_point(|(t, _)| *t < cutoff_ns);
            points.drain(..n);
            dropped += n;
        }
        self.len -= dropped;
        dropped
    }

    /// Points held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The oldest time inserted since the memtable was empty.
    pub(crate) fn oldest_ns(&self) -> Option<i64> {
        if self.len == 0 { None } else { self.oldest_ns }
    }
}
