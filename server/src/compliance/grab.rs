//! Judged grab samples of one instantaneous limit, kept compact.
//!
//! An effluent standard judges every grab sample, so a busy outfall is judged once a minute
//! forever. A judged period per sample would make the engine's memory grow with every reading
//! (see docs/benchmarks.md for what that cost). What the answers need is less:
//! - exceeding samples, individually (alerts, episodes, evidence);
//! - where compliant samples lie between them, to split episodes: a compliant **stretch**
//!   (its first and last sample) between exceedances;
//! - per hour, how many samples were compliant (and not correctable), and the compliant one
//!   nearest the limit, for listings and compliance rates.
//!
//! Memory grows with exceedances and hours, not with readings. Exact when a series' readings
//! arrive in time order (as agents deliver them, and as the store replays them). A late
//! exceedance landing inside a compliant stretch splits it knowing only the stretch's ends, so
//! a *second* late exceedance into the same stretch may join its neighbour's episode.

use super::checkpoint::{Dec, Enc};
use super::columns::{ColReader, ColWriter, split};
use super::engine::{Outcome, Period};
use super::judge::LimitUsed;
use super::period::{self, DAY_NS, HOUR_NS};
use super::timeline::Timeline;

/// One judged grab sample.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    /// Judged value (NaN: none).
    value: f64,
    /// Value before correction (NaN: none).
    measured: f64,
    /// O₂ used (NaN: none).
    o2_pct: f32,
    outcome: Outcome,
}

impl Sample {
    pub(super) fn of(p: &Period) -> Sample {
        Sample {
            value: p.value.unwrap_or(f64::NAN),
            measured: p.measured.unwrap_or(f64::NAN),
            o2_pct: p.o2_pct.map_or(f32::NAN, |o| o as f32),
            outcome: p.outcome,
        }
    }

    /// A sample judged as measured (no unit conversion, no O₂ correction).
    pub(super) fn measured(value: f64, outcome: Outcome) -> Sample {
        Sample { value, measured: value, o2_pct: f32::NAN, outcome }
    }

    pub(super) fn outcome(&self) -> Outcome {
        self.outcome
    }

    pub(super) fn value(&self) -> Option<f64> {
        (!self.value.is_nan()).then_some(self.value)
    }

    /// As a period of `samples` samples from `start` to `end`.
    fn period(&self, start: i64, end: i64, samples: u32, limit: &LimitUsed) -> Period {
        let some = |v: f64| (!v.is_nan()).then_some(v);
        let o2 = (!self.o2_pct.is_nan()).then_some(self.o2_pct as f64);
        let reason = (self.outcome == Outcome::CannotCorrect).then(|| match (some(self.measured), o2) {
            (None, _) => format!("cannot convert to {}", limit.unit),
            (Some(_), None) => format!(
                "cannot be corrected to {} % O₂: no valid O₂ reading in the period",
                limit.reference_o2_pct.unwrap_or(f64::NAN)
            ),
            (Some(_), Some(o2)) => format!(
                "cannot be corrected to {} % O₂: measured O₂ {o2} % ≥ 21 %",
                limit.reference_o2_pct.unwrap_or(f64::NAN)
            ),
        });
        Period {
            start_ns: start,
            end_ns: end,
            closed: true,
            outcome: self.outcome,
            value: some(self.value),
            measured: some(self.measured),
            o2_pct: o2,
            valid: samples,
            expected: samples,
            excluded: 0,
            availability_pct: 100.0,
            reason,
            samples,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Item {
    Exceeds(Sample),
    /// Compliant samples from the key to `last_ns`, no exceedance between.
    Compliant {
        last_ns: i64,
    },
}

/// The samples of one hour that are not kept individually.
#[derive(Debug, Clone)]
struct Hour {
    compliant: u32,
    cannot_correct: u32,
    /// The compliant sample nearest the limit, and how far beyond it (≤ 0).
    nearest: Option<(Sample, f32)>,
    /// A sample that could not be corrected, for its reason (boxed: rare, and inline it would
    /// cost every hour of every grab limit 16 bytes more).
    cannot: Option<Box<Sample>>,
}

/// An episode's exceeding samples.
pub(super) struct Run<'a> {
    pub(super) start_ns: i64,
    pub(super) end_ns: i64,
    pub(super) samples: Vec<&'a Sample>,
}

/// The judged grab samples of one track.
#[derive(Debug, Default, Clone)]
pub(super) struct Grabs {
    items: Timeline<Item>,
    hours: Timeline<Hour>,
    latest: Option<(i64, Sample)>,
}

impl Grabs {
    pub(super) const fn new() -> Grabs {
        Grabs { items: Timeline::new(), hours: Timeline::new(), latest: None }
    }

    /// Records a judged sample; `beyond` is how far beyond the limit its value lies.
    /// Returns whether it changed a stretch that starts before `t`'s Bangkok day (one that
    /// crosses a day's start, as a version 1 file may hold): a closed day's state.
    pub(super) fn add(&mut self, t: i64, s: Sample, beyond: f64) -> bool {
        if self.latest.is_none_or(|(l, _)| t >= l) {
            self.latest = Some((t, s));
        }
        let hour_start = t.div_euclid(HOUR_NS) * HOUR_NS;
        match s.outcome {
            Outcome::Exceeds => {
                if let Some((first, &Item::Compliant { last_ns })) = self.items.at_or_before(t)
                    && last_ns >= t
                {
                    // Only the stretch's ends are known to be compliant samples (one of them
                    // may be `t` itself, when a correction makes it exceed).
                    if first < t {
                        self.items.insert(first, Item::Compliant { last_ns: first });
                    }
                    if last_ns > t {
                        self.items.insert(last_ns, Item::Compliant { last_ns });
                    }
                    self.items.insert(t, Item::Exceeds(s));
                    return first < period::day(t).0;
                }
                self.items.insert(t, Item::Exceeds(s));
            }
            Outcome::Compliant => {
                let hour = self.hour(hour_start);
                hour.compliant += 1;
                let beyond = beyond as f32;
                if hour.nearest.is_none_or(|(_, b)| beyond > b) {
                    hour.nearest = Some((s, beyond));
                }
                self.add_compliant(t);
            }
            Outcome::CannotCorrect | Outcome::InsufficientData => {
                let hour = self.hour(hour_start);
                hour.cannot_correct += 1;
                hour.cannot = Some(Box::new(s));
            }
        }
        false
    }

    /// Takes back a sample recorded with [`Grabs::add`] (a correction replaces it). An hour's
    /// nearest-to-limit sample is not recomputed: it may name the value corrected.
    pub(super) fn remove(&mut self, t: i64, s: &Sample) {
        let hour_start = t.div_euclid(HOUR_NS) * HOUR_NS;
        match s.outcome {
            Outcome::Exceeds => {
                if matches!(self.items.get(t), Some(Item::Exceeds(_))) {
                    self.items.remove(t);
                    // The stretches on both sides now touch: one stretch.
                    let before = self.items.before(t).map(|(k, i)| (k, *i));
                    let after = self.items.after(t).map(|(k, i)| (k, *i));
                    if let (Some((first, Item::Compliant { .. })), Some((next, Item::Compliant { last_ns }))) =
                        (before, after)
                        && next < period::day(first).1
                    {
                        self.items.remove(next);
                        self.items.insert(first, Item::Compliant { last_ns });
                    }
                }
            }
            Outcome::Compliant => {
                if let Some(h) = self.hours.get_mut(hour_start) {
                    h.compliant = h.compliant.saturating_sub(1);
                    if h.compliant == 0 {
                        h.nearest = None;
                    }
                }
            }
            Outcome::CannotCorrect | Outcome::InsufficientData => {
                if let Some(h) = self.hours.get_mut(hour_start) {
                    h.cannot_correct = h.cannot_correct.saturating_sub(1);
                    if h.cannot_correct == 0 {
                        h.cannot = None;
                    }
                }
            }
        }
    }

    fn hour(&mut self, start: i64) -> &mut Hour {
        self.hours.entry(start, || Hour { compliant: 0, cannot_correct: 0, nearest: None, cannot: None })
    }

    /// A stretch never grows across a Bangkok day's start: a closed day's samples then stay
    /// as they were when it closed, and its judgement day file with them.
    fn add_compliant(&mut self, t: i64) {
        let (day_start, day_end) = period::day(t);
        // In time order, the newest item is the stretch `t` extends: nothing after it.
        if let Some((first, Item::Compliant { last_ns })) = self.items.last_mut()
            && first <= t
            && first >= day_start
        {
            *last_ns = (*last_ns).max(t);
            return;
        }
        let next = match self.items.after(t) {
            Some((s, &Item::Compliant { last_ns })) if s < day_end => Some((s, last_ns)),
            _ => None,
        };
        // The stretch `t` joins (the one before it, that day) or starts, and the one after
        // it that day, if any, merges into it.
        let start = match self.items.at_or_before(t) {
            Some((_, &Item::Compliant { last_ns })) if last_ns >= t => return,
            Some((first, &Item::Compliant { .. })) if first >= day_start => first,
            _ => t,
        };
        let last_ns = match next {
            Some((s, last)) => {
                self.items.remove(s);
                last
            }
            None => t,
        };
        self.items.insert(start, Item::Compliant { last_ns });
    }

    /// Forgets samples measured before `cutoff_ns` (retention).
    pub(super) fn forget_before(&mut self, cutoff_ns: i64) {
        self.items.retain(|t, item| match item {
            Item::Exceeds(_) => t >= cutoff_ns,
            Item::Compliant { last_ns } => *last_ns >= cutoff_ns,
        });
        self.hours.forget_before(cutoff_ns);
    }

    /// Entries kept: exceedances, compliant stretches and hours.
    pub(super) fn entries(&self) -> usize {
        self.items.len() + self.hours.len()
    }

    /// The newest judged sample.
    pub(super) fn latest(&self, limit: &LimitUsed) -> Option<Period> {
        self.latest.map(|(t, s)| s.period(t, t, 1, limit))
    }

    /// Exceeding samples starting in `[from, to)` and hourly summaries of the others for the
    /// hours overlapping it, by start.
    pub(super) fn periods(&self, from: i64, to: i64, limit: &LimitUsed) -> Vec<Period> {
        if from >= to {
            return Vec::new();
        }
        let mut out: Vec<Period> = self
            .items
            .range(from, to)
            .iter()
            .filter_map(|(t, i)| match i {
                Item::Exceeds(s) => Some(s.period(*t, *t, 1, limit)),
                Item::Compliant { .. } => None,
            })
            .collect();
        // Hours starting after `from - 1 h` overlap the range.
        for (start, h) in self.hours.range(from.saturating_sub(HOUR_NS - 1), to) {
            let (start, end) = (*start, start + HOUR_NS);
            if let Some((s, _)) = h.nearest {
                out.push(s.period(start, end, h.compliant, limit));
            }
            if let Some(s) = &h.cannot {
                out.push(s.period(start, end, h.cannot_correct, limit));
            }
        }
        out.sort_by_key(|p| (p.start_ns, p.end_ns));
        out
    }

    /// The first sample of the newest run of exceeding samples, if the newest judgement
    /// exceeds (the run may go on): what [`Grabs::runs`]' last run flagged newest starts
    /// at, found from the end, without a pass over every item kept.
    pub(super) fn ongoing_start(&self) -> Option<i64> {
        let items = self.items.all();
        let n = items.iter().rev().take_while(|(_, item)| matches!(item, Item::Exceeds(_))).count();
        items.len().checked_sub(n).and_then(|first| items.get(first)).filter(|_| n > 0).map(|(t, _)| *t)
    }

    /// Runs of consecutive exceeding samples (no compliant sample between), oldest first;
    /// the flag says whether the run is the newest judgement (it may go on).
    pub(super) fn runs(&self) -> Vec<(Run<'_>, bool)> {
        let mut out = Vec::new();
        let mut run: Option<Run<'_>> = None;
        for &(t, ref item) in self.items.all() {
            match item {
                Item::Exceeds(s) => {
                    let r = run.get_or_insert(Run { start_ns: t, end_ns: t, samples: Vec::new() });
                    r.end_ns = t;
                    r.samples.push(s);
                }
                Item::Compliant { .. } => out.extend(run.take().map(|r| (r, false))),
            }
        }
        out.extend(run.map(|r| (r, true)));
        out
    }
}

impl Sample {
    fn put(&self, e: &mut Enc) {
        e.f64(self.value);
        e.f64(self.measured);
        e.f32(self.o2_pct);
        e.u8(self.outcome.code());
    }

    fn get(d: &mut Dec<'_>) -> Result<Sample, String> {
        Ok(Sample {
            value: d.f64("grab sample value")?,
            measured: d.f64("grab sample measured value")?,
            o2_pct: d.f32("grab sample O₂")?,
            outcome: Outcome::of_code(d.u8("grab sample outcome")?)?,
        })
    }
}

impl Grabs {
    /// Moves the samples (exceedances, stretches by their start, hours) of `[from, to)` out.
    pub(super) fn take_range(&mut self, from: i64, to: i64) -> Grabs {
        Grabs { items: self.items.take_range(from, to), hours: self.hours.take_range(from, to), latest: None }
    }

    /// The latest sample, for the checkpoint (the rest is in its days' sections).
    pub(super) fn put_latest(&self, e: &mut Enc) {
        e.opt(self.latest.as_ref(), |e, (t, s)| {
            e.i64(*t);
            s.put(e);
        });
    }

    /// Decodes what [`Grabs::put_latest`] wrote.
    pub(super) fn get_latest(d: &mut Dec<'_>) -> Result<Option<(i64, Sample)>, String> {
        d.opt("grab latest", |d| Ok((d.i64("grab latest time")?, Sample::get(d)?)))
    }

    /// Sets the latest sample (from a checkpoint).
    pub(super) fn set_latest(&mut self, latest: Option<(i64, Sample)>) {
        self.latest = latest;
    }

    /// Days holding its items or hours, added to `out`.
    pub(super) fn days(&self, out: &mut std::collections::BTreeSet<i64>) {
        self.items.days(out);
        self.hours.days(out);
    }

    /// The samples of the day from `day` of `tracks`, as columns ([`super::days`] specifies
    /// them).
    pub(super) fn put_day(w: &mut ColWriter, day: i64, tracks: &[&Grabs]) {
        let end = day.saturating_add(DAY_NS);
        let items: Vec<&[(i64, Item)]> = tracks.iter().map(|g| g.items.range(day, end)).collect();
        let hours: Vec<&[(i64, Hour)]> = tracks.iter().map(|g| g.hours.range(day, end)).collect();
        let counts: Vec<usize> = items.iter().map(|i| i.len()).collect();
        w.ints(&counts.iter().map(|&n| n as i64).collect::<Vec<_>>());
        let all: Vec<&(i64, Item)> = items.iter().flat_map(|i| i.iter()).collect();
        w.times(&all.iter().map(|(t, _)| *t).collect::<Vec<_>>());
        w.ints(&all.iter().map(|(_, i)| i64::from(matches!(i, Item::Compliant { .. }))).collect::<Vec<_>>());
        let ends: Vec<i64> = all
            .iter()
            .filter_map(|(t, i)| match i {
                Item::Compliant { last_ns } => Some(last_ns.wrapping_sub(*t)),
                Item::Exceeds(_) => None,
            })
            .collect();
        w.ints(&ends);
        let exceeding: Vec<&Sample> = all
            .iter()
            .filter_map(|(_, i)| match i {
                Item::Exceeds(s) => Some(s),
                Item::Compliant { .. } => None,
            })
            .collect();
        put_samples(w, &exceeding);

        let counts: Vec<usize> = hours.iter().map(|h| h.len()).collect();
        let all: Vec<&(i64, Hour)> = hours.iter().flat_map(|h| h.iter()).collect();
        w.keys(day, &counts, &all.iter().map(|(t, _)| *t).collect::<Vec<_>>());
        w.ints(&all.iter().map(|(_, h)| i64::from(h.compliant)).collect::<Vec<_>>());
        w.ints(&all.iter().map(|(_, h)| i64::from(h.cannot_correct)).collect::<Vec<_>>());
        let has = |h: &Hour| i64::from(h.nearest.is_some()) | (i64::from(h.cannot.is_some()) << 1);
        w.ints(&all.iter().map(|(_, h)| has(h)).collect::<Vec<_>>());
        let nearest: Vec<&(Sample, f32)> = all.iter().filter_map(|(_, h)| h.nearest.as_ref()).collect();
        put_samples(w, &nearest.iter().map(|(s, _)| s).collect::<Vec<_>>());
        w.values(&nearest.iter().map(|(_, b)| f32_as_f64_bits(*b)).collect::<Vec<_>>());
        let cannot: Vec<&Sample> = all.iter().filter_map(|(_, h)| h.cannot.as_deref()).collect();
        put_samples(w, &cannot);
    }

    /// Decodes what [`Grabs::put_day`] wrote for `n` tracks.
    pub(super) fn get_day(r: &mut ColReader<'_>, day: i64, n: usize) -> Result<Vec<Grabs>, String> {
        let counts: Vec<usize> =
            r.uints("grab item counts", n, u32::MAX.into())?.into_iter().map(|c| c as usize).collect();
        let total: usize = counts.iter().sum();
        let keys = r.times("grab item times", total)?;
        let tags = r.uints("grab item kinds", total, 1)?;
        let stretches = tags.iter().filter(|t| **t == 1).count();
        let ends = r.ints("grab stretch ends", stretches)?;
        let exceeding = get_samples(r, "exceeding grab samples", total - stretches)?;
        let (mut ends, mut exceeding) = (ends.into_iter(), exceeding.into_iter());
        let mut items = Vec::with_capacity(total);
        for (&t, &tag) in keys.iter().zip(&tags) {
            items.push(match tag {
                1 => Item::Compliant { last_ns: t.wrapping_add(ends.next().unwrap_or_default()) },
                _ => Item::Exceeds(exceeding.next().unwrap_or(Sample::measured(f64::NAN, Outcome::Exceeds))),
            });
        }
        let (hour_counts, hour_keys) = r.keys("grab hours", day, n)?;
        let h = hour_keys.len();
        let compliant = r.uints("grab hour compliant", h, u32::MAX.into())?;
        let cannot_correct = r.uints("grab hour cannot correct", h, u32::MAX.into())?;
        let has = r.uints("grab hour samples kept", h, 3)?;
        let nearest_n = has.iter().filter(|x| **x & 1 != 0).count();
        let nearest = get_samples(r, "nearest grab samples", nearest_n)?;
        let beyond = r.values("nearest grab samples' distance", nearest_n)?;
        let cannot_n = has.iter().filter(|x| **x & 2 != 0).count();
        let cannot = get_samples(r, "grab samples not corrected", cannot_n)?;
        let (mut nearest, mut beyond, mut cannot) = (nearest.into_iter(), beyond.into_iter(), cannot.into_iter());
        let mut out = Vec::with_capacity(n);
        let mut hours_at = 0;
        for (list, (keys, &hn)) in split(&items, &counts).zip(split(&keys, &counts).zip(&hour_counts)) {
            let mut g = Grabs::new();
            g.items = Timeline::from_sorted(keys.iter().copied().zip(list.iter().copied()).collect())
                .ok_or("grab items out of order")?;
            let mut hours = Vec::with_capacity(hn);
            for i in hours_at..hours_at + hn {
                let nearest =
                    (has[i] & 1 != 0).then(|| Some((nearest.next()?, f32_of_f64_bits(beyond.next()?)))).flatten();
                let cannot = (has[i] & 2 != 0).then(|| cannot.next().map(Box::new)).flatten();
                hours.push((
                    hour_keys[i],
                    Hour { compliant: compliant[i] as u32, cannot_correct: cannot_correct[i] as u32, nearest, cannot },
                ));
            }
            hours_at += hn;
            g.hours = Timeline::from_sorted(hours).ok_or("grab hours out of order")?;
            out.push(g);
        }
        Ok(out)
    }

    /// The starts of its items and hours before `cutoff`.
    pub(super) fn starts_before(&self, cutoff: i64) -> impl Iterator<Item = i64> + '_ {
        let items = self.items.range(i64::MIN, cutoff).iter().map(|(s, _)| *s);
        items.chain(self.hours.range(i64::MIN, cutoff).iter().map(|(s, _)| *s))
    }

    /// Takes the samples of `other` (a day loaded back, or a day on disk for a query).
    pub(super) fn merge(&mut self, other: Grabs) {
        self.items.merge(other.items);
        self.hours.merge(other.hours);
        if let Some((t, s)) = other.latest
            && self.latest.is_none_or(|(l, _)| t >= l)
        {
            self.latest = Some((t, s));
        }
    }

    /// Decodes the judged samples of a version 1 checkpoint or judgement day: items and
    /// hours as timelines, then the latest sample.
    pub(super) fn get(d: &mut Dec<'_>) -> Result<Grabs, String> {
        let items = Timeline::decode(d, "grab items", 9, |d| match d.u8("grab item tag")? {
            0 => Ok(Item::Exceeds(Sample::get(d)?)),
            1 => Ok(Item::Compliant { last_ns: d.i64("compliant stretch end")? }),
            tag => Err(format!("byte {}: grab item tag {tag}, expected 0 or 1", d.at() - 1)),
        })?;
        let hours = Timeline::decode(d, "grab hours", 10, |d| {
            Ok(Hour {
                compliant: d.u32("grab hour compliant")?,
                cannot_correct: d.u32("grab hour cannot correct")?,
                nearest: d.opt("grab hour nearest", |d| Ok((Sample::get(d)?, d.f32("grab hour nearest beyond")?)))?,
                cannot: d.opt("grab hour cannot", |d| Sample::get(d).map(Box::new))?,
            })
        })?;
        let latest = d.opt("grab latest", |d| Ok((d.i64("grab latest time")?, Sample::get(d)?)))?;
        Ok(Grabs { items, hours, latest })
    }
}

/// An `f32`'s bits as the low bits of an `f64`'s, so that a values column keeps them exactly.
fn f32_as_f64_bits(v: f32) -> f64 {
    f64::from_bits(u64::from(v.to_bits()))
}

fn f32_of_f64_bits(v: f64) -> f32 {
    f32::from_bits(v.to_bits() as u32)
}

/// Samples as columns: `values` of their values, `ints` of their outcome codes, `ints` of 0
/// (measured = value, bit for bit) or 1 and `values` of those measured values, `ints` of 0
/// (no O₂) or 1 and `values` of those O₂ values (the `f32`'s bits as an `f64`'s low bits).
fn put_samples(w: &mut ColWriter, samples: &[&Sample]) {
    w.values(&samples.iter().map(|s| s.value).collect::<Vec<_>>());
    w.ints(&samples.iter().map(|s| i64::from(s.outcome.code())).collect::<Vec<_>>());
    let measured_other = |s: &Sample| s.measured.to_bits() != s.value.to_bits();
    w.ints(&samples.iter().map(|s| i64::from(measured_other(s))).collect::<Vec<_>>());
    w.values(&samples.iter().filter(|s| measured_other(s)).map(|s| s.measured).collect::<Vec<_>>());
    let o2 = |s: &Sample| s.o2_pct.to_bits() != f32::NAN.to_bits();
    w.ints(&samples.iter().map(|s| i64::from(o2(s))).collect::<Vec<_>>());
    w.values(&samples.iter().filter(|s| o2(s)).map(|s| f32_as_f64_bits(s.o2_pct)).collect::<Vec<_>>());
}

fn get_samples(r: &mut ColReader<'_>, what: &str, n: usize) -> Result<Vec<Sample>, String> {
    let values = r.values(what, n)?;
    let outcomes = r.uints(what, n, 3)?;
    let measured_kinds = r.uints(what, n, 1)?;
    let measured = r.values(what, measured_kinds.iter().filter(|k| **k == 1).count())?;
    let o2_kinds = r.uints(what, n, 1)?;
    let o2 = r.values(what, o2_kinds.iter().filter(|k| **k == 1).count())?;
    let (mut measured, mut o2) = (measured.into_iter(), o2.into_iter());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(Sample {
            value: values[i],
            measured: if measured_kinds[i] == 1 { measured.next().unwrap_or(f64::NAN) } else { values[i] },
            o2_pct: if o2_kinds[i] == 1 { o2.next().map_or(f32::NAN, f32_of_f64_bits) } else { f32::NAN },
            outcome: Outcome::of_code(outcomes[i] as u8)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod unit_tests {
    /// Every hour of every grab limit holds one (issue 5's memory): an upper bound, growth
    /// costs every series an hour.
    #[test]
    fn an_hours_summary_is_at_most_56_bytes() {
        assert!(size_of::<(i64, super::Hour)>() <= 56);
    }

    /// The ongoing run found from the end is the last run `runs` flags newest.
    #[test]
    fn the_ongoing_run_starts_where_runs_says() {
        use super::super::engine::Outcome;
        use super::{Grabs, Sample};
        const MINUTE: i64 = 60_000_000_000;
        let mut g = Grabs::new();
        assert_eq!(g.ongoing_start(), None);
        let ongoing = |g: &Grabs| g.runs().pop().filter(|(_, newest)| *newest).map(|(r, _)| r.start_ns);
        for (i, exceeds) in [false, true, true, false, true, true].into_iter().enumerate() {
            let (outcome, beyond) = if exceeds { (Outcome::Exceeds, 1.0) } else { (Outcome::Compliant, -1.0) };
            g.add(i as i64 * MINUTE, Sample::measured(i as f64, outcome), beyond);
            let expected = match i {
                1 | 2 => Some(MINUTE),
                4 | 5 => Some(4 * MINUTE),
                _ => None,
            };
            assert_eq!(g.ongoing_start(), expected, "after sample {i}");
            assert_eq!(ongoing(&g), expected, "runs after sample {i}");
        }
        g.add(6 * MINUTE, Sample::measured(0.0, Outcome::Compliant), -1.0);
        assert_eq!((g.ongoing_start(), ongoing(&g)), (None, None));
    }
}
