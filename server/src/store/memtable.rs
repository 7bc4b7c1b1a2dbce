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
    /// The newest time ever inserted (not lowered by removals).
    newest_ns: Option<i64>,
}

impl Memtable {
    /// The point of series `id` at `time_ns`.
    pub(crate) fn get(&self, id: u32, time_ns: i64) -> Option<Stored> {
        self.get_near(id, time_ns, &mut 0)
    }

    /// [`Memtable::get`], starting where `near` says the last search of the series landed
    /// (and leaving it where this one does): readings searched in time order then step
    /// from one to the next instead of searching the series' points each.
    pub(crate) fn get_near(&self, id: u32, time_ns: i64, near: &mut u32) -> Option<Stored> {
        let points = self.series.get(id as usize)?;
        // A reading newer than the series' newest (most are): no search.
        if points.last().is_none_or(|(t, _)| *t < time_ns) {
            return None;
        }
        let hint = (*near as usize).min(points.len());
        // Where `time_ns` goes: after every point before `hint`, then up to 4 steps on.
        let i = if hint == 0 || points[hint - 1].0 < time_ns {
            let ahead = points[hint..].iter().take(4).position(|(t, _)| *t >= time_ns);
            match ahead {
                Some(k) => hint + k,
                None => hint + points[hint..].partition_point(|(t, _)| *t < time_ns),
            }
        } else {
            points[..hint].partition_point(|(t, _)| *t < time_ns)
        };
        *near = i as u32;
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
        self.widen(time_ns, time_ns);
    }

    fn widen(&mut self, from_ns: i64, to_ns: i64) {
        self.oldest_ns = Some(self.oldest_ns.map_or(from_ns, |o| o.min(from_ns)));
        self.newest_ns = Some(self.newest_ns.map_or(to_ns, |n| n.max(to_ns)));
    }

    /// Stores points of series `id` the caller checked are absent, sorted by time: pushed
    /// when newer than the series' newest, else merged in one pass from the back, so that a
    /// body overtaken by a newer one moves the newer points once, not once per point.
    pub(crate) fn insert_run(&mut self, id: u32, run: &[(i64, Stored)]) {
        let Some(&(first_ns, first)) = run.first() else { return };
        let i = id as usize;
        if self.series.len() <= i {
            self.series.resize_with(i + 1, Vec::new);
        }
        let points = &mut self.series[i];
        if points.last().is_none_or(|(last, _)| *last < first_ns) {
            points.extend_from_slice(run);
        } else {
            let (mut a, mut b) = (points.len(), run.len());
            points.resize(a + b, (first_ns, first));
            let mut w = a + b;
            while b > 0 {
                w -= 1;
                if a > 0 && points[a - 1].0 > run[b - 1].0 {
                    points[w] = points[a - 1];
                    a -= 1;
                } else {
                    points[w] = run[b - 1];
                    b -= 1;
                }
            }
        }
        self.len += run.len();
        self.widen(first_ns, run.last().map_or(first_ns, |(t, _)| *t));
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

    /// The oldest and newest times inserted since the memtable was empty.
    pub(crate) fn span_ns(&self) -> Option<(i64, i64)> {
        self.oldest_ns().zip(self.newest_ns)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failure is the panic.
    use proptest::prelude::*;

    use super::*;
    use eitwatch_config::reading::{Quality, Source};

    fn stored(v: f64) -> Stored {
        Stored { value: v, quality: Quality::Valid, source: Source::Instrument, below_detection_limit: false }
    }

    proptest! {
        /// A run merged at once leaves what inserting its points one by one leaves.
        #[test]
        fn a_run_merges_as_its_points_one_by_one(
            times in prop::collection::btree_set(-1000i64..1000, 0..200),
            picks in prop::collection::vec(any::<bool>(), 200),
        ) {
            let times: Vec<i64> = times.into_iter().collect();
            let (mut held, mut run) = (Vec::new(), Vec::new());
            for (i, t) in times.iter().enumerate() {
                match picks[i] {
                    true => held.push(*t),
                    false => run.push((*t, stored(*t as f64 / 8.0))),
                }
            }
            let (mut merged, mut one_by_one) = (Memtable::default(), Memtable::default());
            for t in held.iter().rev() {
                merged.insert(3, *t, stored(-1.0));
                one_by_one.insert(3, *t, stored(-1.0));
            }
            merged.insert_run(3, &run);
            for (t, s) in &run {
                one_by_one.insert(3, *t, *s);
            }
            prop_assert_eq!(merged.len(), times.len());
            prop_assert_eq!(merged.range(3, i64::MIN, i64::MAX), one_by_one.range(3, i64::MIN, i64::MAX));
            prop_assert_eq!(merged.oldest_ns(), times.first().copied());
            prop_assert_eq!(merged.span_ns(), times.first().copied().zip(times.last().copied()));
            // Searched from wherever the last search landed, every time finds what a search does.
            let mut near = 0;
            for t in (-1010i64..1010).step_by(3).chain((-1010i64..1010).rev().step_by(7)) {
                prop_assert_eq!(merged.get_near(3, t, &mut near), merged.get(3, t), "time {}", t);
            }
        }
    }
}
