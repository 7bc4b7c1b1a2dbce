//! Values by period start (hours, days, grab samples), in a sorted vector: readings arrive in
//! time order, so entries are appended, and a series' first entry costs a few dozen bytes
//! instead of a map node of several hundred. A late period is inserted in place, and the
//! place of the last change is kept: a late body's readings land next to each other.

use super::checkpoint::Dec;

/// Values keyed by period start, oldest first.
#[derive(Clone)]
pub(super) struct Timeline<V> {
    entries: Vec<(i64, V)>,
    /// The index the last change was at (a guess: checked before use).
    hint: u32,
}

/// Its entries (the hint is no part of what it holds).
impl<V: std::fmt::Debug> std::fmt::Debug for Timeline<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeline").field("entries", &self.entries).finish()
    }
}

impl<V> Default for Timeline<V> {
    fn default() -> Self {
        Timeline::new()
    }
}

impl<V> Timeline<V> {
    pub(super) const fn new() -> Self {
        Timeline { entries: Vec::new(), hint: 0 }
    }

    const fn of(entries: Vec<(i64, V)>) -> Self {
        Timeline { entries, hint: 0 }
    }

    /// The index of the first entry starting at or after `start`.
    fn at(&self, start: i64) -> usize {
        self.prefix(|s| s < start)
    }

    /// How many entries, oldest first, start at times `before` holds for (a prefix),
    /// searched from the newest entries back in steps that double: readings land among the
    /// newest periods (a late body's too), and this search touches only those, where a
    /// binary search from the middle would wander memory that grows with the history held.
    fn prefix(&self, before: impl Fn(i64) -> bool) -> usize {
        let n = self.entries.len();
        // Near the last change first: where a late body's readings are searched for.
        let e = &self.entries;
        let ends_at = |i: usize| i <= n && (i == 0 || before(e[i - 1].0)) && (i == n || !before(e[i].0));
        let hint = self.hint as usize;
        if ends_at(hint) {
            return hint;
        }
        if ends_at(hint + 1) {
            return hint + 1;
        }
        // No entry from `hi` on satisfies `before`.
        let (mut hi, mut step) = (n, 1);
        loop {
            let lo = n.saturating_sub(step);
            if lo == 0 || before(self.entries[lo].0) {
                return lo + self.entries[lo..hi].partition_point(|(s, _)| before(*s));
            }
            hi = lo;
            step *= 2;
        }
    }

    /// [`Timeline::at`], the place of a change: kept as the next search's first guess.
    fn at_near(&mut self, start: i64) -> usize {
        let at = self.at(start);
        self.hint = u32::try_from(at).unwrap_or(0);
        at
    }

    /// The value of the period starting at `start`, created with `new` if absent.
    pub(super) fn entry(&mut self, start: i64, new: impl FnOnce() -> V) -> &mut V {
        // In time order, the newest period or the next one: no search.
        let at = match self.entries.last() {
            Some((last, _)) if *last == start => self.entries.len() - 1,
            Some((last, _)) if *last < start => self.entries.len(),
            _ => self.at_near(start),
        };
        if self.entries.get(at).is_none_or(|(s, _)| *s != start) {
            self.insert_at(at, start, new());
        }
        &mut self.entries[at].1
    }

    fn insert_at(&mut self, at: usize, start: i64, v: V) {
        if self.entries.capacity() == 0 {
            // Room for one: many series never get a second entry here (one grab stretch).
            self.entries.reserve_exact(1);
        }
        self.entries.insert(at, (start, v));
    }

    /// Sets the value at `start`.
    pub(super) fn insert(&mut self, start: i64, v: V) {
        let at = self.at_near(start);
        match self.entries.get_mut(at) {
            Some((s, old)) if *s == start => *old = v,
            _ => self.insert_at(at, start, v),
        }
    }

    /// Removes the value at `start`.
    pub(super) fn remove(&mut self, start: i64) {
        let at = self.at_near(start);
        if self.entries.get(at).is_some_and(|(s, _)| *s == start) {
            self.entries.remove(at);
        }
    }

    /// The last entry starting at or before `t`.
    pub(super) fn at_or_before(&self, t: i64) -> Option<(i64, &V)> {
        let at = self.prefix(|s| s <= t);
        at.checked_sub(1).map(|i| (self.entries[i].0, &self.entries[i].1))
    }

    /// The last entry starting before `t`.
    pub(super) fn before(&self, t: i64) -> Option<(i64, &V)> {
        self.at(t).checked_sub(1).map(|i| (self.entries[i].0, &self.entries[i].1))
    }

    /// The first entry starting after `t`.
    pub(super) fn after(&self, t: i64) -> Option<(i64, &V)> {
        let at = self.prefix(|s| s <= t);
        self.entries.get(at).map(|(s, v)| (*s, v))
    }

    /// Keeps the entries `keep` says to.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(i64, &V) -> bool) {
        self.entries.retain(|(s, v)| keep(*s, v));
    }

    /// The newest entry, to change.
    pub(super) fn last_mut(&mut self) -> Option<(i64, &mut V)> {
        self.entries.last_mut().map(|(s, v)| (*s, v))
    }

    /// Every entry, oldest first.
    pub(super) fn all(&self) -> &[(i64, V)] {
        &self.entries
    }

    /// The value of the period starting at `start`.
    pub(super) fn get(&self, start: i64) -> Option<&V> {
        self.entries.get(self.at(start)).filter(|(s, _)| *s == start).map(|(_, v)| v)
    }

    /// The same, to change.
    pub(super) fn get_mut(&mut self, start: i64) -> Option<&mut V> {
        let at = self.at(start);
        self.entries.get_mut(at).filter(|(s, _)| *s == start).map(|(_, v)| v)
    }

    /// Entries starting in `[from, to)`.
    pub(super) fn range(&self, from: i64, to: i64) -> &[(i64, V)] {
        let (a, b) = (self.at(from), self.at(to));
        &self.entries[a..b.max(a)]
    }

    /// Forgets periods starting before `cutoff`.
    pub(super) fn forget_before(&mut self, cutoff: i64) {
        let at = self.at(cutoff);
        self.entries.drain(..at);
    }

    /// Entries kept.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Moves the entries starting in `[from, to)` out.
    pub(super) fn take_range(&mut self, from: i64, to: i64) -> Timeline<V> {
        let (a, b) = (self.at(from), self.at(to));
        Timeline::of(self.entries.drain(a..b.max(a)).collect())
    }

    /// Takes the entries of `other`, which replace those at the same starts.
    pub(super) fn merge(&mut self, other: Timeline<V>) {
        // Days loaded back in time order append: room for exactly them, where inserting one
        // by one would leave a doubled vector's spare half in every series.
        let after = match (self.entries.last(), other.entries.first()) {
            (Some((last, _)), Some((first, _))) => last < first,
            _ => true,
        };
        if after {
            self.entries.reserve_exact(other.entries.len());
            self.entries.extend(other.entries);
            return;
        }
        // Interleaved (a restart loads the recent days' files after the newer days the
        // checkpoint held): one pass into exact room, where inserting one by one would move
        // the newer entries once per entry and leave a doubled vector's spare half.
        let mut merged = Vec::with_capacity(self.entries.len() + other.entries.len());
        let mut mine = std::mem::take(&mut self.entries).into_iter().peekable();
        let mut theirs = other.entries.into_iter().peekable();
        loop {
            let next = match (mine.peek(), theirs.peek()) {
                (Some((a, _)), Some((b, _))) if a < b => mine.next(),
                (Some((a, _)), Some((b, _))) if a == b => {
                    mine.next();
                    theirs.next()
                }
                (_, Some(_)) => theirs.next(),
                (Some(_), None) => mine.next(),
                (None, None) => break,
            };
            merged.extend(next);
        }
        merged.shrink_to_fit();
        self.entries = merged;
    }

    /// A timeline of `entries`, `None` unless their starts ascend strictly.
    pub(super) fn from_sorted(entries: Vec<(i64, V)>) -> Option<Self> {
        entries.windows(2).all(|w| w[0].0 < w[1].0).then_some(Timeline::of(entries))
    }

    /// The Bangkok days its entries start in, added to `out` (one search a day).
    pub(super) fn days(&self, out: &mut std::collections::BTreeSet<i64>) {
        let mut at = 0;
        while let Some((start, _)) = self.entries.get(at) {
            let (day, end) = super::period::day(*start);
            out.insert(day);
            at += self.entries[at..].partition_point(|(s, _)| *s < end).max(1);
        }
    }

    /// Decodes a version 1 timeline (a u32 count, then each start i64 and value); starts
    /// must ascend strictly.
    pub(super) fn decode(
        d: &mut Dec<'_>,
        what: &str,
        min_value_bytes: usize,
        mut get: impl FnMut(&mut Dec<'_>) -> Result<V, String>,
    ) -> Result<Self, String> {
        let n = d.len(what, 8 + min_value_bytes)?;
        let mut entries: Vec<(i64, V)> = Vec::with_capacity(n);
        for _ in 0..n {
            let start = d.i64(what)?;
            if entries.last().is_some_and(|(s, _)| *s >= start) {
                return Err(format!("byte {}: {what}: period starts out of order", d.at()));
            }
            entries.push((start, get(d)?));
        }
        Ok(Timeline::of(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_sorted_whatever_the_order() {
        let mut t: Timeline<u32> = Timeline::default();
        for s in [30, 10, 20, 10, 40] {
            *t.entry(s, || 0) += 1;
        }
        assert_eq!(t.range(i64::MIN, i64::MAX), &[(10, 2), (20, 1), (30, 1), (40, 1)]);
        assert_eq!(t.range(15, 40), &[(20, 1), (30, 1)]);
        assert!(t.range(40, 15).is_empty());
        assert_eq!((t.get(20), t.get(25)), (Some(&1), None));
        *t.get_mut(30).expect("30") = 7;
        t.forget_before(21);
        assert_eq!(t.range(i64::MIN, i64::MAX), &[(30, 7), (40, 1)]);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn the_search_from_the_end_finds_what_the_binary_search_finds() {
        for n in [0usize, 1, 2, 3, 7, 8, 9, 100] {
            let t: Timeline<u32> =
                Timeline::from_sorted((0..n).map(|i| (i as i64 * 10, i as u32)).collect()).expect("sorted");
            for start in -5..(n as i64 * 10 + 5) {
                let binary = |before: &dyn Fn(i64) -> bool| t.entries.partition_point(|(s, _)| before(*s));
                assert_eq!(t.at(start), binary(&|s| s < start), "{n} entries, start {start}");
                assert_eq!(t.prefix(|s| s <= start), binary(&|s| s <= start), "{n} entries, start {start}");
                let expected_after = t.entries.iter().find(|(s, _)| *s > start).map(|(s, v)| (*s, v));
                assert_eq!(t.after(start), expected_after, "{n} entries, start {start}");
            }
        }
    }

    #[test]
    fn changes_near_the_last_one_land_where_a_search_puts_them() {
        // A late body after a newer one: its periods go in one after another before the newer.
        let mut t: Timeline<u32> = Timeline::from_sorted(vec![(100, 0), (110, 0)]).expect("sorted");
        for s in [40, 40, 50, 60, 60, 70, 10, 105, 20, 120, 115, 0] {
            *t.entry(s, || 0) += 1;
        }
        t.insert(55, 9);
        t.remove(60);
        t.remove(61);
        let starts: Vec<i64> = t.all().iter().map(|(s, _)| *s).collect();
        assert_eq!(starts, [0, 10, 20, 40, 50, 55, 70, 100, 105, 110, 115, 120]);
        assert_eq!((t.get(40), t.get(55), t.get(100)), (Some(&2), Some(&9), Some(&0)));
        // A hint past the end after entries went is checked, not trusted.
        t.forget_before(1000);
        *t.entry(5, || 3) += 1;
        assert_eq!(t.all(), &[(5, 4)]);
    }

    #[test]
    fn a_merge_appends_exactly_after_and_interleaves_otherwise() {
        let t = |v: &[i64]| Timeline::from_sorted(v.iter().map(|s| (*s, *s as u32)).collect()).expect("sorted");
        let mut a = t(&[10, 20]);
        a.merge(t(&[30, 40]));
        assert_eq!(a.range(i64::MIN, i64::MAX), &[(10, 10), (20, 20), (30, 30), (40, 40)]);
        assert_eq!(a.entries.capacity(), 4);
        // An overlapping day: in place, a start already there takes the new value.
        let mut b = t(&[10, 30]);
        b.merge(Timeline::from_sorted(vec![(5, 1), (30, 99), (35, 2)]).expect("sorted"));
        assert_eq!(b.range(i64::MIN, i64::MAX), &[(5, 1), (10, 10), (30, 99), (35, 2)]);
        assert_eq!(b.entries.capacity(), 4, "exact room, not a doubled vector");
        // Days loaded back oldest first under newer ones: each goes before or between.
        let mut d = t(&[50, 60]);
        d.merge(t(&[10, 20]));
        d.merge(t(&[30, 40]));
        assert_eq!(d.range(i64::MIN, i64::MAX), &[(10, 10), (20, 20), (30, 30), (40, 40), (50, 50), (60, 60)]);
        assert_eq!(d.entries.capacity(), 6);
        let mut c: Timeline<u32> = Timeline::default();
        c.merge(t(&[7]));
        assert_eq!(c.range(i64::MIN, i64::MAX), &[(7, 7)]);
    }
}
