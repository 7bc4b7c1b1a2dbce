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

    /// The samples of the day from `day` of `tracks`, whose limits have `bounds` and whose
    /// series' hours hold `valid` readings (hour start, count), as columns of the current
    /// format ([`super::days`] specifies them).
    pub(super) fn put_day(
        w: &mut ColWriter,
        day: i64,
        tracks: &[&Grabs],
        bounds: &[Bounds],
        valid: &[Vec<(i64, u32)>],
    ) {
        let end = day.saturating_add(DAY_NS);
        w.ints(
            &bounds.iter().map(|(hi, lo)| i64::from(hi.is_some()) | i64::from(lo.is_some()) << 1).collect::<Vec<_>>(),
        );
        w.values(&bounds.iter().filter_map(|b| b.0).collect::<Vec<_>>());
        w.values(&bounds.iter().filter_map(|b| b.1).collect::<Vec<_>>());

        let items: Vec<&[(i64, Item)]> = tracks.iter().map(|g| g.items.range(day, end)).collect();
        let hours: Vec<&[(i64, Hour)]> = tracks.iter().map(|g| g.hours.range(day, end)).collect();
        let counts: Vec<usize> = items.iter().map(|i| i.len()).collect();
        w.ints(&counts.iter().map(|&n| n as i64).collect::<Vec<_>>());
        let all: Vec<&(i64, Item)> = items.iter().flat_map(|i| i.iter()).collect();
        w.ints(&all.iter().map(|(_, i)| i64::from(matches!(i, Item::Compliant { .. }))).collect::<Vec<_>>());
        let mut gaps = Vec::with_capacity(all.len());
        let mut lengths = Vec::new();
        for list in items.iter() {
            let mut last = day;
            for (t, item) in list.iter() {
                gaps.push(t.wrapping_sub(last));
                last = match item {
                    Item::Compliant { last_ns } => {
                        lengths.push(last_ns.wrapping_sub(*t));
                        *last_ns
                    }
                    Item::Exceeds(_) => *t,
                };
            }
        }
        let e = (0..=18u32).rev().find(|&e| gaps.iter().chain(&lengths).all(|v| v % 10i64.pow(e) == 0)).unwrap_or(0);
        w.u8(e as u8);
        w.ints(&gaps.iter().map(|v| v / 10i64.pow(e)).collect::<Vec<_>>());
        w.ints(&lengths.iter().map(|v| v / 10i64.pow(e)).collect::<Vec<_>>());
        let exceeding: Vec<Vec<&Sample>> = items
            .iter()
            .map(|list| {
                list.iter()
                    .filter_map(|(_, i)| match i {
                        Item::Exceeds(s) => Some(s),
                        Item::Compliant { .. } => None,
                    })
                    .collect()
            })
            .collect();
        put_samples(w, &exceeding);

        let counts: Vec<usize> = hours.iter().map(|h| h.len()).collect();
        let all: Vec<&(i64, Hour)> = hours.iter().flat_map(|h| h.iter()).collect();
        w.keys(day, &counts, &all.iter().map(|(t, _)| *t).collect::<Vec<_>>());
        let mut residuals = Vec::with_capacity(all.len());
        for ((list, items), valid) in hours.iter().zip(&items).zip(valid) {
            for (t, h) in list.iter() {
                let exceeding = exceeding_in_hour(items, *t);
                residuals.push(i64::from(h.compliant).wrapping_sub(compliant_expected(
                    valid,
                    *t,
                    h.cannot_correct,
                    exceeding,
                )));
            }
        }
        w.ints(&residuals);
        w.ints(&all.iter().map(|(_, h)| i64::from(h.cannot_correct)).collect::<Vec<_>>());
        let has = |h: &Hour| i64::from(h.nearest.is_some()) | (i64::from(h.cannot.is_some()) << 1);
        w.ints(&all.iter().map(|(_, h)| has(h)).collect::<Vec<_>>());
        let nearest: Vec<Vec<&(Sample, f32)>> =
            hours.iter().map(|h| h.iter().filter_map(|(_, h)| h.nearest.as_ref()).collect()).collect();
        put_samples(w, &nearest.iter().map(|l| l.iter().map(|(s, _)| s).collect()).collect::<Vec<_>>());
        let mut derived = Vec::new();
        let mut own = Vec::new();
        for (list, b) in nearest.iter().zip(bounds) {
            for (s, beyond) in list {
                let same = distance(*b, s.value).to_bits() == beyond.to_bits();
                derived.push(i64::from(!same));
                if !same {
                    own.push(f32_as_f64_bits(*beyond));
                }
            }
        }
        w.ints(&derived);
        w.values(&own);
        let cannot: Vec<Vec<&Sample>> =
            hours.iter().map(|h| h.iter().filter_map(|(_, h)| h.cannot.as_deref()).collect()).collect();
        put_samples(w, &cannot);
    }

    /// Decodes what [`Grabs::put_day`] wrote for `n` tracks, in format `version` (2 or later),
    /// their series' hours holding `valid` readings.
    pub(super) fn get_day(
        r: &mut ColReader<'_>,
        day: i64,
        n: usize,
        version: u32,
        valid: &[Vec<(i64, u32)>],
    ) -> Result<Vec<Grabs>, String> {
        let bounds = if version >= 3 {
            let present = r.uints("grab limit bounds", n, 3)?;
            let uppers = r.values("grab limit upper bounds", present.iter().filter(|p| **p & 1 != 0).count())?;
            let lowers = r.values("grab limit lower bounds", present.iter().filter(|p| **p & 2 != 0).count())?;
            let (mut uppers, mut lowers) = (uppers.into_iter(), lowers.into_iter());
            present
                .iter()
                .map(|p| ((p & 1 != 0).then(|| uppers.next()).flatten(), (p & 2 != 0).then(|| lowers.next()).flatten()))
                .collect()
        } else {
            vec![(None, None); n]
        };
        let counts: Vec<usize> =
            r.uints("grab item counts", n, u32::MAX.into())?.into_iter().map(|c| c as usize).collect();
        let total = counts.iter().try_fold(0usize, |a, c| a.checked_add(*c)).unwrap_or(usize::MAX);
        let (keys, tags, ends) = if version >= 3 {
            let tags = r.uints("grab item kinds", total, 1)?;
            let stretches = tags.iter().filter(|t| **t == 1).count();
            let e = u32::from(r.u8("grab item time unit")?);
            if e > 18 {
                return Err(format!("byte {}: grab item time unit: 10^{e} ns, the most is 10^18", r.at() - 1));
            }
            let unit = 10i64.pow(e);
            let gaps = r.ints("grab item gaps", total)?;
            let lengths = r.ints("grab stretch lengths", stretches)?;
            let (mut gaps, mut lengths) = (gaps.into_iter(), lengths.into_iter());
            let (mut keys, mut ends) = (Vec::with_capacity(total), Vec::with_capacity(stretches));
            let mut tag = tags.iter();
            for &c in &counts {
                let mut last = day;
                for _ in 0..c {
                    let t = last.wrapping_add(gaps.next().unwrap_or_default().wrapping_mul(unit));
                    keys.push(t);
                    last = t;
                    if tag.next() == Some(&1) {
                        let length = lengths.next().unwrap_or_default().wrapping_mul(unit);
                        ends.push(length);
                        last = t.wrapping_add(length);
                    }
                }
            }
            (keys, tags, ends)
        } else {
            let keys = r.times("grab item times", total)?;
            let tags = r.uints("grab item kinds", total, 1)?;
            let stretches = tags.iter().filter(|t| **t == 1).count();
            let ends = r.ints("grab stretch ends", stretches)?;
            (keys, tags, ends)
        };
        let mut exceeding_counts = Vec::with_capacity(n);
        for list in split(&tags, &counts) {
            exceeding_counts.push(list.iter().filter(|t| **t == 0).count());
        }
        let exceeding = get_samples(r, "exceeding grab samples", &exceeding_counts, version)?;
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
        let at = r.at();
        // Format 3: the differences from what the hour's valid readings give (below).
        let compliant = r.ints("grab hour compliant", h)?;
        let cannot_correct = r.uints("grab hour cannot correct", h, u32::MAX.into())?;
        let compliant: Vec<u64> =
            if version >= 3 {
                let mut out = Vec::with_capacity(h);
                let mut i = 0;
                for ((list, keys), (&hn, valid)) in
                    split(&items, &counts).zip(split(&keys, &counts)).zip(hour_counts.iter().zip(valid))
                {
                    let track: Vec<(i64, Item)> = keys.iter().copied().zip(list.iter().copied()).collect();
                    for _ in 0..hn {
                        let Some(&start) = hour_keys.get(i) else { break };
                        let exceeding = exceeding_in_hour(&track, start);
                        let cannot = u32::try_from(cannot_correct[i]).unwrap_or(u32::MAX);
                        let v = compliant[i].wrapping_add(compliant_expected(valid, start, cannot, exceeding));
                        out.push(u64::try_from(v).ok().filter(|v| *v <= u32::MAX.into()).ok_or_else(|| {
                            format!("byte {at}: grab hour compliant: {v} is not in 0..={}", u32::MAX)
                        })?);
                        i += 1;
                    }
                }
                out
            } else {
                compliant
                    .into_iter()
                    .map(|v| {
                        u64::try_from(v)
                            .ok()
                            .filter(|v| *v <= u32::MAX.into())
                            .ok_or_else(|| format!("byte {at}: grab hour compliant: {v} is not in 0..={}", u32::MAX))
                    })
                    .collect::<Result<_, _>>()?
            };
        let has = r.uints("grab hour samples kept", h, 3)?;
        let kept = |bit: u64| -> Vec<usize> {
            split(&has, &hour_counts).map(|list| list.iter().filter(|x| **x & bit != 0).count()).collect()
        };
        let (nearest_counts, cannot_counts) = (kept(1), kept(2));
        let nearest_n: usize = nearest_counts.iter().sum();
        let nearest = get_samples(r, "nearest grab samples", &nearest_counts, version)?;
        let beyond: Vec<f32> = if version >= 3 {
            let derived = r.uints("nearest grab samples' distance kinds", nearest_n, 1)?;
            let own = r.values("nearest grab samples' distance", derived.iter().filter(|d| **d == 1).count())?;
            let mut own = own.into_iter();
            let mut out = Vec::with_capacity(nearest_n);
            for ((samples, kinds), b) in
                split(&nearest, &nearest_counts).zip(split(&derived, &nearest_counts)).zip(&bounds)
            {
                for (s, kind) in samples.iter().zip(kinds) {
                    out.push(match kind {
                        0 => distance(*b, s.value),
                        _ => own.next().map_or(f32::NAN, f32_of_f64_bits),
                    });
                }
            }
            out
        } else {
            r.values("nearest grab samples' distance", nearest_n)?.into_iter().map(f32_of_f64_bits).collect()
        };
        let cannot = get_samples(r, "grab samples not corrected", &cannot_counts, version)?;
        let (mut nearest, mut beyond, mut cannot) = (nearest.into_iter(), beyond.into_iter(), cannot.into_iter());
        let mut out = Vec::with_capacity(n);
        let mut hours_at = 0;
        for (list, (keys, &hn)) in split(&items, &counts).zip(split(&keys, &counts).zip(&hour_counts)) {
            let mut g = Grabs::new();
            g.items = Timeline::from_sorted(keys.iter().copied().zip(list.iter().copied()).collect())
                .ok_or("grab items out of order")?;
            let mut hours = Vec::with_capacity(hn);
            for i in hours_at..hours_at + hn {
                let nearest = (has[i] & 1 != 0).then(|| Some((nearest.next()?, beyond.next()?))).flatten();
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

/// Exceeding samples among `items` in the hour from `start`.
fn exceeding_in_hour(items: &[(i64, Item)], start: i64) -> u32 {
    let from = items.partition_point(|(t, _)| *t < start);
    let to = items.partition_point(|(t, _)| *t < start.saturating_add(HOUR_NS));
    items[from..to].iter().filter(|(_, i)| matches!(i, Item::Exceeds(_))).count() as u32
}

/// The compliant samples an hour holds when each valid reading of its series (`valid`: hour
/// start, count) was judged once: the valid ones less those not correctable and exceeding.
fn compliant_expected(valid: &[(i64, u32)], start: i64, cannot_correct: u32, exceeding: u32) -> i64 {
    let valid = valid.binary_search_by_key(&start, |(t, _)| *t).map_or(0, |i| valid[i].1);
    i64::from(valid) - i64::from(cannot_correct) - i64::from(exceeding)
}

/// A limit's bounds as the distance of a value to it reads them: the upper (as it applies at
/// the point) and the lower.
pub(super) type Bounds = (Option<f64>, Option<f64>);

/// How far `v` lies beyond `bounds`, as an hour's nearest sample keeps it (the engine's
/// distance to the limit, as `f32`).
fn distance((upper, lower): Bounds, v: f64) -> f32 {
    let over = upper.map_or(f64::NEG_INFINITY, |m| v - m);
    let under = lower.map_or(f64::NEG_INFINITY, |m| m - v);
    over.max(under) as f32
}

/// Samples (lists of them, one a track) as columns: `decimals` of their values, `ints` of
/// their outcome codes, `ints` of 0 (measured = value, bit for bit) or 1 and `values` of
/// those measured values, `ints` of 0 (no O₂) or 1 and `values` of those O₂ values (the
/// `f32`'s bits as an `f64`'s low bits).
fn put_samples(w: &mut ColWriter, lists: &[Vec<&Sample>]) {
    let counts: Vec<usize> = lists.iter().map(Vec::len).collect();
    let samples: Vec<&Sample> = lists.iter().flatten().copied().collect();
    w.decimals(&counts, &samples.iter().map(|s| s.value).collect::<Vec<_>>());
    w.ints(&samples.iter().map(|s| i64::from(s.outcome.code())).collect::<Vec<_>>());
    let measured_other = |s: &Sample| s.measured.to_bits() != s.value.to_bits();
    w.ints(&samples.iter().map(|s| i64::from(measured_other(s))).collect::<Vec<_>>());
    w.values(&samples.iter().filter(|s| measured_other(s)).map(|s| s.measured).collect::<Vec<_>>());
    let o2 = |s: &Sample| s.o2_pct.to_bits() != f32::NAN.to_bits();
    w.ints(&samples.iter().map(|s| i64::from(o2(s))).collect::<Vec<_>>());
    w.values(&samples.iter().filter(|s| o2(s)).map(|s| f32_as_f64_bits(s.o2_pct)).collect::<Vec<_>>());
}

/// What [`put_samples`] wrote for lists of `counts` samples (format 2: `values` of the values).
fn get_samples(r: &mut ColReader<'_>, what: &str, counts: &[usize], version: u32) -> Result<Vec<Sample>, String> {
    let n = counts.iter().try_fold(0usize, |a, c| a.checked_add(*c)).unwrap_or(usize::MAX);
    let values = if version >= 3 { r.decimals(what, counts)? } else { r.values(what, n)? };
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
    use super::*;

    /// A day of one track's samples written and read back, in the current format: every
    /// item, hour and distance as it was; the distances the bounds give are not written.
    #[test]
    fn a_days_samples_round_trip_and_distances_come_from_the_bounds() {
        let day = period::day(1_795_366_800 * 1_000_000_000).0;
        let minute = 60 * 1_000_000_000;
        let bounds: Bounds = (Some(120.0), None);
        let mut g = Grabs::new();
        // Hour 0: compliant 60.3 (distance 60.3 − 120 as f32), 150 exceeding, compliant again.
        g.add(day, Sample::measured(60.3, Outcome::Compliant), 60.3 - 120.0);
        g.add(day + minute, Sample::measured(150.0, Outcome::Exceeds), 30.0);
        g.add(day + 2 * minute, Sample::measured(61.0, Outcome::Compliant), 61.0 - 120.0);
        // Hour 1: a distance the bounds do not give (written as its own).
        g.add(day + HOUR_NS, Sample::measured(70.5, Outcome::Compliant), -1.0);
        let valid = vec![(day, 3), (day + HOUR_NS, 1)];
        let mut w = ColWriter::default();
        Grabs::put_day(&mut w, day, &[&g], &[bounds], std::slice::from_ref(&valid));
        let mut r = ColReader::new(&w.out);
        let back = Grabs::get_day(&mut r, day, 1, 3, std::slice::from_ref(&valid)).expect("decodes");
        assert!(r.done());
        assert_eq!(format!("{:?}", back[0].items), format!("{:?}", g.items));
        assert_eq!(format!("{:?}", back[0].hours), format!("{:?}", g.hours));
        let hours = back[0].hours.all();
        assert_eq!(hours.len(), 2);
        assert_eq!((hours[0].1.compliant, hours[1].1.compliant), (2, 1));
        assert_eq!(hours[0].1.nearest.map(|(s, d)| (s.value, d)), Some((61.0, -59.0)));
        assert_eq!(hours[1].1.nearest.map(|(_, d)| d), Some(-1.0));
        // Items: a stretch from day start, the exceeding sample, a stretch: gaps 0, 1, 1
        // minutes from the item before's end.
        let items: Vec<i64> = back[0].items.all().iter().map(|(t, _)| (t - day) / minute).collect();
        assert_eq!(items, vec![0, 1, 2]);
    }

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
