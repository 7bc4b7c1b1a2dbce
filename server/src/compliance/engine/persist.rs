//! The engine's state in its files: the checkpoint ([`super::super::checkpoint`] specifies it)
//! and the judgement days ([`super::super::days`]), encoded and decoded here, next to the
//! state's types. Versions 2 and later write a day as columns ([`super::super::columns`]);
//! every earlier version is still read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hasher;

use super::super::columns::{ColReader, ColWriter};
use super::*;

fn get_acc(d: &mut Dec<'_>) -> Result<Acc, String> {
    Ok(Acc {
        valid: d.u32("hour valid")?,
        excluded: d.u32("hour excluded")?,
        sum_nano: d.i128("hour sum")?,
        detected: d.bool("hour detected")?,
    })
}

fn get_period(d: &mut Dec<'_>) -> Result<Period, String> {
    Ok(Period {
        start_ns: d.i64("period start")?,
        end_ns: d.i64("period end")?,
        closed: d.bool("period closed")?,
        outcome: Outcome::of_code(d.u8("period outcome")?)?,
        value: d.opt("period value", |d| d.f64("period value"))?,
        measured: d.opt("period measured", |d| d.f64("period measured"))?,
        o2_pct: d.opt("period O₂", |d| d.f64("period O₂"))?,
        valid: d.u32("period valid")?,
        expected: d.u32("period expected")?,
        excluded: d.u32("period excluded")?,
        availability_pct: d.f64("period availability")?,
        reason: d.opt("period reason", |d| d.str("period reason"))?,
        samples: d.u32("period samples")?,
    })
}

fn put_gap(e: &mut Enc, g: &GapInfo) {
    e.str(&g.factory);
    e.str(&g.point);
    e.len(g.parameters.len());
    for p in &g.parameters {
        e.str(p);
    }
    e.i64(g.from_ns);
    e.i64(g.to_ns);
    e.u64(g.count);
    e.str(&g.reason);
}

/// A fixed-period track's open state, as both checkpoint versions write it: the periods to
/// judge again with their causes, and how far the empty hours were filled.
type OpenFixed = (BTreeMap<i64, Cause>, Option<i64>, Option<i64>);

fn get_open_fixed(d: &mut Dec<'_>) -> Result<OpenFixed, String> {
    let n = d.len("dirty periods", 9)?;
    let mut dirty = BTreeMap::new();
    for _ in 0..n {
        let start = d.i64("dirty period")?;
        dirty.insert(start, if d.bool("dirty cause")? { Cause::Gap } else { Cause::Reading });
    }
    let fill_from = d.opt("fill from", |d| d.i64("fill from"))?;
    let filled_to = d.opt("filled to", |d| d.i64("filled to"))?;
    Ok((dirty, fill_from, filled_to))
}

fn get_gap(d: &mut Dec<'_>) -> Result<GapInfo, String> {
    let factory = d.str("gap factory")?;
    let point = d.str("gap point")?;
    let n = d.len("gap parameters", 4)?;
    let parameters = (0..n).map(|_| d.str("gap parameter")).collect::<Result<Vec<_>, _>>()?;
    Ok(GapInfo {
        factory,
        point,
        parameters,
        from_ns: d.i64("gap from")?,
        to_ns: d.i64("gap to")?,
        count: d.u64("gap count")?,
        reason: d.str("gap reason")?,
    })
}

/// What the state of one series holds, decoded from a version 1 checkpoint before it
/// replaces anything.
struct Restored {
    at: usize,
    first_day: i64,
    hours: Timeline<Acc>,
    days: Timeline<DayCount>,
    recent: Recent,
    judged: Vec<Judged>,
}

impl Engine {
    /// A digest of what a series is judged with (its area, its point's settings, the limits
    /// applied to it): a checkpoint made under other settings is not used.
    pub(super) fn fingerprint(&self, at: usize) -> u32 {
        let s = &self.series[at];
        let limits: Vec<&LimitUsed> = self.tracks[s.tracks()].iter().map(|t| &*t.limit).collect();
        crc32fast::hash(format!("{}|{:?}|{limits:?}", s.area, s.point).as_bytes())
    }

    /// [`Engine::restore`] of a version 1 checkpoint: the whole state, with the days on disk.
    fn restore_v1(&mut self, payload: &[u8]) -> Result<Applied, String> {
        let mut d = Dec::new(payload);
        let applied = Applied {
            store: crate::store::LogPosition { segment: d.u64("store segment")?, offset: d.u64("store offset")? },
            gaps: d.u64("gaps applied")?,
            corrections: d.u64("corrections applied")?,
        };
        let _written_at_ns = d.i64("written at")?;
        let n = d.len("series", 16)?;
        let mut restored: Vec<Restored> = Vec::with_capacity(n);
        for _ in 0..n {
            let (factory, point, parameter) = (d.str("factory")?, d.str("point")?, d.str("parameter")?);
            let fingerprint = d.u32("fingerprint")?;
            let first_day = d.i64("first day")?;
            let hours = Timeline::decode(&mut d, "hourly aggregates", 25, get_acc)?;
            let days = Timeline::decode(&mut d, "days", 8, |d| {
                Ok(DayCount { valid: d.u32("day valid")?, excluded: d.u32("day excluded")? })
            })?;
            let recent = Recent::get(&mut d)?;
            let tracks = d.len("tracks", 1)?;
            let mut judged = Vec::with_capacity(tracks);
            for _ in 0..tracks {
                judged.push(match d.u8("track kind")? {
                    0 => {
                        let n = d.len("periods", 8)?;
                        let mut periods = BTreeMap::new();
                        for _ in 0..n {
                            periods.insert(d.i64("period key")?, get_period(&mut d)?);
                        }
                        let (dirty, fill_from, filled_to) = get_open_fixed(&mut d)?;
                        Judged::Fixed(Fixed { periods, dirty, fill_from, filled_to })
                    }
                    1 => Judged::Grab(Grabs::get(&mut d)?),
                    kind => return Err(format!("byte {}: track kind {kind}, expected 0 or 1", d.at() - 1)),
                });
            }
            // A point no longer registered: its readings are not judged (as a rebuild would not).
            if self.registry.point(&factory, &point).is_none() {
                continue;
            }
            let Some(at) = self.series_index(&factory, &point, &parameter) else { continue };
            if self.fingerprint(at) != fingerprint {
                return Err(format!(
                    "{factory}/{point}/{parameter}: its point's settings or limits changed since the checkpoint"
                ));
            }
            let kinds_match = self.series[at].tracks().len() == judged.len()
                && self.tracks[self.series[at].tracks()].iter().zip(&judged).all(|(t, j)| {
                    matches!((&t.judged, j), (Judged::Fixed(_), Judged::Fixed(_)) | (Judged::Grab(_), Judged::Grab(_)))
                });
            if !kinds_match {
                return Err(format!("{factory}/{point}/{parameter}: its limits changed since the checkpoint"));
            }
            restored.push(Restored { at, first_day, hours, days, recent, judged });
        }
        let n = d.len("gaps", 40)?;
        let gaps = (0..n).map(|_| get_gap(&mut d)).collect::<Result<Vec<_>, _>>()?;
        let next_generation = d.u32("next generation")?;
        let n = d.len("days on disk", 12)?;
        let mut archived = BTreeMap::new();
        for _ in 0..n {
            archived.insert(d.i64("day on disk")?, d.u32("its generation")?);
        }
        if !d.done() {
            return Err(format!("{} bytes after the last day on disk", payload.len() - d.at()));
        }
        if !archived.is_empty() && self.day_files.is_none() {
            return Err("it names judgement days on disk, and this engine has none".into());
        }
        for r in restored {
            let s = &mut self.series[r.at];
            let first_day = if r.first_day == i64::MAX { i32::MAX } else { day_number(r.first_day) };
            (s.hours, s.days, s.recent, s.first_day) = (r.hours, r.days, r.recent, first_day);
            let range = s.tracks();
            for (t, judged) in range.zip(r.judged) {
                self.tracks[t].judged = judged;
            }
        }
        self.gaps = gaps;
        self.next_generation = self.next_generation.max(next_generation);
        self.archived_end = archived.keys().next_back().map_or(i64::MIN, |d| d + DAY_NS);
        self.archived = archived;
        self.marked = true;
        Ok(applied)
    }
}

fn get_judged(d: &mut Dec<'_>) -> Result<Judged, String> {
    Ok(match d.u8("track kind")? {
        0 => {
            let n = d.len("periods", 8)?;
            let mut periods = BTreeMap::new();
            for _ in 0..n {
                periods.insert(d.i64("period key")?, get_period(d)?);
            }
            Judged::Fixed(Fixed { periods, ..Fixed::default() })
        }
        1 => Judged::Grab(Grabs::get(d)?),
        kind => return Err(format!("byte {}: track kind {kind}, expected 0 or 1", d.at() - 1)),
    })
}

/// Decodes a version 1 judgement day's payload.
fn decode_day_v1(payload: &[u8]) -> Result<(i64, Vec<DaySeries>), String> {
    let mut d = Dec::new(payload);
    let day = d.i64("day start")?;
    let n = d.len("series", 16)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (factory, point, parameter) = (d.str("factory")?, d.str("point")?, d.str("parameter")?);
        let hours = Timeline::decode(&mut d, "hourly aggregates", 25, get_acc)?;
        let count =
            d.opt("day count", |d| Ok(DayCount { valid: d.u32("day valid")?, excluded: d.u32("day excluded")? }))?;
        let tracks = d.len("tracks", 5)?;
        let mut judged = Vec::with_capacity(tracks);
        for _ in 0..tracks {
            judged.push((d.str("limit id")?, get_judged(&mut d)?));
        }
        out.push(DaySeries { factory, point, parameter, hours, day: count, tracks: judged });
    }
    if !d.done() {
        return Err(format!("{} bytes after the last series", payload.len() - d.at()));
    }
    Ok((day, out))
}

/// A day file as written: its generation and a stamp of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Written {
    pub(super) generation: u32,
    len: usize,
    crc: u32,
    hash: u64,
}

impl Written {
    pub(super) fn of(generation: u32, bytes: &[u8]) -> Written {
        let mut h = rustc_hash::FxHasher::default();
        h.write(bytes);
        Written { generation, len: bytes.len(), crc: crc32fast::hash(bytes), hash: h.finish() }
    }

    /// Whether `bytes` are what was written.
    fn holds(&self, bytes: &[u8]) -> bool {
        Written::of(self.generation, bytes) == *self
    }
}

/// One series' state on one day, as a section holds it (its tracks in the series' order).
struct DayState {
    hours: Timeline<Acc>,
    count: Option<DayCount>,
    tracks: Vec<Judged>,
}

/// The open state of a track in a checkpoint (the rest is in its days' sections).
enum OpenTrack {
    Fixed { dirty: BTreeMap<i64, Cause>, fill_from: Option<i64>, filled_to: Option<i64> },
    Grab(Option<(i64, grab::Sample)>),
}

impl OpenTrack {
    fn is_grab(&self) -> bool {
        matches!(self, OpenTrack::Grab(_))
    }
}

/// A series of a version 2 checkpoint.
struct Saved {
    factory: String,
    point: String,
    parameter: String,
    fingerprint: u32,
    first_day: i64,
    recent: Recent,
    open: Vec<OpenTrack>,
}

/// The days a fixed track's periods start in, added to `out`.
fn period_days(periods: &BTreeMap<i64, Period>, out: &mut BTreeSet<i64>) {
    let mut from = i64::MIN;
    while let Some((&start, _)) = periods.range(from..).next() {
        let (day, end) = period::day(start);
        out.insert(day);
        if start == i64::MAX {
            break;
        }
        from = end.max(start + 1);
    }
}

impl Engine {
    /// Every day some series or track holds state for.
    fn days_in_memory(&self) -> BTreeSet<i64> {
        let mut out = BTreeSet::new();
        for s in &self.series {
            s.hours.days(&mut out);
            s.days.days(&mut out);
        }
        for t in &self.tracks {
            match &t.judged {
                Judged::Fixed(f) => period_days(&f.periods, &mut out),
                Judged::Grab(g) => g.days(&mut out),
            }
        }
        out
    }

    /// Whether series `at` holds state for the day from `day`.
    fn holds_day(&self, at: usize, day: i64) -> bool {
        let end = day.saturating_add(DAY_NS);
        let s = &self.series[at];
        !s.hours.range(day, end).is_empty()
            || s.days.get(day).is_some()
            || self.tracks[s.tracks()].iter().any(|t| match &t.judged {
                Judged::Fixed(f) => f.periods.range(day..end).next().is_some(),
                Judged::Grab(g) => g.starts_before(end).any(|start| start >= day),
            })
    }

    /// The state of the day from `day` of the series `series` (indices), as a section
    /// ([`super::super::days`] specifies it).
    fn put_section(&self, w: &mut ColWriter, day: i64, series: &[usize]) {
        let end = day.saturating_add(DAY_NS);
        let mut fixed: Vec<Vec<&Period>> = Vec::new();
        let mut grabs: Vec<&Grabs> = Vec::new();
        let mut bounds: Vec<grab::Bounds> = Vec::new();
        let mut grab_valid: Vec<Vec<(i64, u32)>> = Vec::new();
        for &at in series {
            for t in &self.tracks[self.series[at].tracks()] {
                match &t.judged {
                    Judged::Fixed(f) => fixed.push(f.periods.range(day..end).map(|(_, p)| p).collect()),
                    Judged::Grab(g) => {
                        grabs.push(g);
                        bounds.push((t.limit.max_at(&self.series[at].point), t.limit.min));
                        grab_valid
                            .push(self.series[at].hours.range(day, end).iter().map(|(k, a)| (*k, a.valid)).collect());
                    }
                }
            }
        }
        let periods: Vec<&Period> = fixed.iter().flatten().copied().collect();
        let mut strings: Vec<&str> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let reasons: Vec<i64> = periods
            .iter()
            .map(|p| match p.reason.as_deref() {
                None => 0,
                Some(r) => {
                    let i = *index.entry(r).or_insert_with(|| {
                        strings.push(r);
                        strings.len() - 1
                    });
                    i as i64 + 1
                }
            })
            .collect();
        w.uvar(strings.len() as u64);
        for s in &strings {
            w.str(s);
        }

        let hours: Vec<&[(i64, Acc)]> = series.iter().map(|&at| self.series[at].hours.range(day, end)).collect();
        let counts: Vec<usize> = hours.iter().map(|h| h.len()).collect();
        let all: Vec<Acc> = hours.iter().flat_map(|h| h.iter().map(|(_, a)| *a)).collect();
        w.keys(day, &counts, &hours.iter().flat_map(|h| h.iter().map(|(k, _)| *k)).collect::<Vec<_>>());
        w.ints(&all.iter().map(|a| i64::from(a.valid)).collect::<Vec<_>>());
        w.ints(&all.iter().map(|a| i64::from(a.excluded)).collect::<Vec<_>>());
        w.ints(&all.iter().map(|a| i64::from(a.detected)).collect::<Vec<_>>());
        // Only fixed periods and the O₂ correction read an hour's sum: a series judged per grab
        // sample only (and not O₂) keeps none on disk.
        let kept: Vec<bool> = series
            .iter()
            .map(|&at| {
                let s = &self.series[at];
                *s.id.parameter == *O2 || self.tracks[s.tracks()].iter().any(|t| matches!(t.judged, Judged::Fixed(_)))
            })
            .collect();
        w.ints(&kept.iter().map(|k| i64::from(*k)).collect::<Vec<_>>());
        let kept_counts: Vec<usize> = counts.iter().zip(&kept).map(|(c, k)| if *k { *c } else { 0 }).collect();
        let sums: Vec<i128> =
            hours.iter().zip(&kept).filter(|(_, k)| **k).flat_map(|(h, _)| h.iter().map(|(_, a)| a.sum_nano)).collect();
        w.sums_per_list(&kept_counts, &sums);

        let day_counts: Vec<Option<DayCount>> =
            series.iter().map(|&at| self.series[at].days.get(day).copied()).collect();
        w.ints(&day_counts.iter().map(|c| i64::from(c.is_some())).collect::<Vec<_>>());
        w.ints(&day_counts.iter().flatten().map(|c| i64::from(c.valid)).collect::<Vec<_>>());
        w.ints(&day_counts.iter().flatten().map(|c| i64::from(c.excluded)).collect::<Vec<_>>());

        w.ints(&fixed.iter().map(|f| f.len() as i64).collect::<Vec<_>>());
        let keys: Vec<i64> = series
            .iter()
            .flat_map(|&at| self.tracks[self.series[at].tracks()].iter())
            .flat_map(|t| match &t.judged {
                Judged::Fixed(f) => f.periods.range(day..end).map(|(k, _)| *k).collect::<Vec<_>>(),
                Judged::Grab(_) => Vec::new(),
            })
            .collect();
        w.times(&keys);
        w.ints(&periods.iter().zip(&keys).map(|(p, k)| p.start_ns.wrapping_sub(*k)).collect::<Vec<_>>());
        w.ints(&periods.iter().map(|p| p.end_ns.wrapping_sub(p.start_ns)).collect::<Vec<_>>());
        w.ints(&periods.iter().map(|p| i64::from(p.closed)).collect::<Vec<_>>());
        w.ints(&periods.iter().map(|p| i64::from(p.outcome.code())).collect::<Vec<_>>());
        let present = |p: &Period| {
            i64::from(p.value.is_some()) | i64::from(p.measured.is_some()) << 1 | i64::from(p.o2_pct.is_some()) << 2
        };
        w.ints(&periods.iter().map(|p| present(p)).collect::<Vec<_>>());
        w.values(&periods.iter().filter_map(|p| p.value).collect::<Vec<_>>());
        w.values(&periods.iter().filter_map(|p| p.measured).collect::<Vec<_>>());
        w.values(&periods.iter().filter_map(|p| p.o2_pct).collect::<Vec<_>>());
        let fields: [fn(&Period) -> u32; 4] = [|p| p.valid, |p| p.expected, |p| p.excluded, |p| p.samples];
        for field in fields {
            w.ints(&periods.iter().map(|p| i64::from(field(p))).collect::<Vec<_>>());
        }
        // Availability is valid / expected as the engine computes it, but where it is not.
        let own = |p: &Period| p.availability_pct.to_bits() != availability_pct(p.valid, p.expected).to_bits();
        w.ints(&periods.iter().map(|p| i64::from(own(p))).collect::<Vec<_>>());
        w.values(&periods.iter().filter(|p| own(p)).map(|p| p.availability_pct).collect::<Vec<_>>());
        w.ints(&reasons);

        Grabs::put_day(w, day, &grabs, &bounds, &grab_valid);
    }

    /// A judgement day file of the day from `day` (the current format): the series holding
    /// state that day, named, and their section.
    fn day_file(&self, day: i64) -> Vec<u8> {
        let series: Vec<usize> = (0..self.series.len()).filter(|&at| self.holds_day(at, day)).collect();
        let mut names: Vec<&str> = Vec::new();
        let mut index: HashMap<&str, u64> = HashMap::new();
        let mut ids: [Vec<i64>; 3] = Default::default();
        let (mut track_counts, mut limits, mut kinds) = (Vec::new(), Vec::new(), Vec::new());
        for &at in &series {
            let s = &self.series[at];
            for (column, id) in ids.iter_mut().zip([&s.id.factory, &s.id.point, &s.id.parameter]) {
                column.push(intern(id, &mut names, &mut index) as i64);
            }
            track_counts.push(s.tracks().len() as i64);
            for t in &self.tracks[s.tracks()] {
                limits.push(intern(&t.limit.id, &mut names, &mut index) as i64);
                kinds.push(i64::from(matches!(t.judged, Judged::Grab(_))));
            }
        }
        let mut w = ColWriter::default();
        w.out.extend_from_slice(&day.to_le_bytes());
        w.uvar(names.len() as u64);
        for n in &names {
            w.str(n);
        }
        w.uvar(series.len() as u64);
        for column in ids {
            w.ints(&column);
        }
        w.ints(&track_counts);
        w.ints(&limits);
        w.ints(&kinds);
        self.put_section(&mut w, day, &series);
        checkpoint::frame_as(days::MAGIC, checkpoint::VERSION, &pack(&w.out))
    }

    /// The closed days in memory whose day file is missing or no longer holds what memory
    /// does (only those a change may have reached since their file are encoded again):
    /// each one's start, the generation it takes, and the file's bytes. The caller
    /// writes them and says so ([`Engine::day_written`]) before the checkpoint that names
    /// them; a day it could not write stays in the checkpoint itself.
    pub fn days_to_write(&mut self) -> Vec<(i64, u32, Vec<u8>)> {
        if self.day_files.is_none() {
            return Vec::new();
        }
        let today = period::day(self.now_ns()).0;
        let mut out = Vec::new();
        let touched_all = std::mem::take(&mut self.touched_all);
        let touched = std::mem::take(&mut self.touched);
        for day in self.days_in_memory().range(..today).copied() {
            if self.written.contains_key(&day) && !touched_all && !touched.contains(&day) {
                // Nothing changed it since its file was written.
                continue;
            }
            let bytes = self.day_file(day);
            if self.written.get(&day).is_some_and(|w| w.holds(&bytes)) {
                continue;
            }
            self.written.remove(&day);
            let generation = self.next_generation;
            self.next_generation += 1;
            out.push((day, generation, bytes));
        }
        out
    }

    /// A day [`Engine::days_to_write`] returned is in its file.
    pub fn day_written(&mut self, day: i64, generation: u32, bytes: &[u8]) {
        self.written.insert(day, Written::of(generation, bytes));
        self.written_end = self.written_end.max(day + DAY_NS);
    }

    /// Drops from memory the closed days older than the recent ones whose day file holds
    /// them; returns how many. A day with periods still to judge waits, as does one whose
    /// file is not written (or no longer holds it).
    pub fn evict(&mut self) -> usize {
        if self.day_files.is_none() {
            return 0;
        }
        let cutoff = period::day(self.now_ns()).0 - (i64::from(self.settings.recent_days.max(2)) - 1) * DAY_NS;
        let mut evicted = 0;
        for day in self.days_in_memory().range(..cutoff).copied() {
            let end = day + DAY_NS;
            let pending = self.tracks.iter().any(|t| match &t.judged {
                Judged::Fixed(f) => f.dirty.range(day..end).next().is_some(),
                Judged::Grab(_) => false,
            });
            let Some(written) = self.written.get(&day).copied() else { continue };
            if pending || !written.holds(&self.day_file(day)) {
                continue;
            }
            self.drop_day(day);
            self.written.remove(&day);
            self.archived.insert(day, written.generation);
            self.archived_end = self.archived_end.max(end);
            evicted += 1;
        }
        evicted
    }

    /// Forgets a day's state (its file holds it).
    fn drop_day(&mut self, day: i64) {
        let end = day + DAY_NS;
        for at in 0..self.series.len() {
            let s = &mut self.series[at];
            s.hours.take_range(day, end);
            s.days.remove(day);
            for t in s.tracks() {
                match &mut self.tracks[t].judged {
                    Judged::Fixed(f) => {
                        let mut day_periods = f.periods.split_off(&day);
                        let mut later = day_periods.split_off(&end);
                        f.periods.append(&mut later);
                    }
                    Judged::Grab(g) => {
                        g.take_range(day, end);
                    }
                }
            }
        }
    }

    /// Takes a judgement day file's state into memory.
    pub(super) fn load_day(&mut self, bytes: &[u8]) -> Result<(), String> {
        let (day, series) = decode_day(bytes)?;
        self.apply_day(day, series);
        Ok(())
    }

    fn apply_day(&mut self, day: i64, series: Vec<DaySeries>) {
        for ds in series {
            let Some(at) = self.series_index(&ds.factory, &ds.point, &ds.parameter) else { continue };
            let s = &mut self.series[at];
            s.hours.merge(ds.hours);
            if let Some(c) = ds.day {
                s.days.insert(day, c);
            }
            let range = s.tracks();
            for (t, (limit, judged)) in range.zip(ds.tracks) {
                let track = &mut self.tracks[t];
                if track.limit.id != limit || !track.judged.same_kind(&judged) {
                    continue;
                }
                match (&mut track.judged, judged) {
                    (Judged::Fixed(a), Judged::Fixed(b)) => a.periods.extend(b.periods),
                    (Judged::Grab(a), Judged::Grab(b)) => a.merge(b),
                    _ => {}
                }
            }
        }
    }

    /// The engine's state as a checkpoint file's bytes ([`super::super::checkpoint`]
    /// specifies them), saying it has judged `applied`: the open state, the days in memory
    /// that no day file holds as sections, and the day files that hold the others (call
    /// [`Engine::days_to_write`] first, so that they hold what memory does). Revisions are
    /// not in it: they have their log.
    pub fn checkpoint(&self, applied: &Applied) -> Vec<u8> {
        let mut e = Enc::default();
        e.u64(applied.store.segment);
        e.u64(applied.store.offset);
        e.u64(applied.gaps);
        e.u64(applied.corrections);
        e.i64(self.now_ns());
        e.len(self.series.len());
        for (at, s) in self.series.iter().enumerate() {
            e.str(&s.id.factory);
            e.str(&s.id.point);
            e.str(&s.id.parameter);
            e.u32(self.fingerprint(at));
            e.i64(day_start(s.first_day).unwrap_or(i64::MAX));
            s.recent.put(&mut e);
            e.len(s.tracks().len());
            for t in &self.tracks[s.tracks()] {
                match &t.judged {
                    Judged::Fixed(f) => {
                        e.u8(0);
                        e.len(f.dirty.len());
                        for (start, cause) in &f.dirty {
                            e.i64(*start);
                            e.u8(matches!(cause, Cause::Gap).into());
                        }
                        e.opt(f.fill_from, Enc::i64);
                        e.opt(f.filled_to, Enc::i64);
                    }
                    Judged::Grab(g) => {
                        e.u8(1);
                        g.put_latest(&mut e);
                    }
                }
            }
        }
        e.len(self.gaps.len());
        for g in &self.gaps {
            put_gap(&mut e, g);
        }
        e.u32(self.next_generation);
        let named = self.named_days();
        e.len(named.len());
        for (day, generation) in &named {
            e.i64(*day);
            e.u32(*generation);
            e.bool(self.written.contains_key(day));
        }
        let all: Vec<usize> = (0..self.series.len()).collect();
        let sections: Vec<i64> = self.days_in_memory().into_iter().filter(|d| !self.written.contains_key(d)).collect();
        e.len(sections.len());
        for day in sections {
            let mut w = ColWriter::default();
            self.put_section(&mut w, day, &all);
            e.i64(day);
            e.u64(w.out.len() as u64);
            e.out.extend_from_slice(&w.out);
        }
        // `applied` stays as it is, readable without inflating the rest.
        let (applied, rest) = e.out.split_at(APPLIED_BYTES);
        checkpoint::frame(&[applied, &pack(rest)].concat())
    }

    /// Takes the state of a checkpoint file's `bytes` (made by [`Engine::checkpoint`], this
    /// version or the one before) into this engine, just made over the current registry,
    /// with the day files it names in memory read back; returns what it had judged. An
    /// error says why the checkpoint cannot be used (damaged, another format, a series judged
    /// with other settings or limits now, a day file missing); the engine is then unchanged.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<Applied, String> {
        let (version, packed) = checkpoint::unframe(bytes)?;
        if version == 1 {
            return self.restore_v1(packed);
        }
        let body = match version {
            2 => std::borrow::Cow::Borrowed(packed),
            _ => {
                let Some((applied, rest)) = packed.split_at_checked(APPLIED_BYTES) else {
                    return Err(format!("payload of {} bytes, shorter than its judged positions", packed.len()));
                };
                std::borrow::Cow::Owned([applied, &unpack(rest)?].concat())
            }
        };
        let payload: &[u8] = &body;
        let mut d = Dec::new(payload);
        let applied = Applied {
            store: crate::store::LogPosition { segment: d.u64("store segment")?, offset: d.u64("store offset")? },
            gaps: d.u64("gaps applied")?,
            corrections: d.u64("corrections applied")?,
        };
        let _written_at_ns = d.i64("written at")?;
        let n = d.len("series", 16)?;
        let mut saved = Vec::with_capacity(n);
        for _ in 0..n {
            let (factory, point, parameter) = (d.str("factory")?, d.str("point")?, d.str("parameter")?);
            let fingerprint = d.u32("fingerprint")?;
            let first_day = d.i64("first day")?;
            let recent = Recent::get(&mut d)?;
            let tracks = d.len("tracks", 1)?;
            let mut open = Vec::with_capacity(tracks);
            for _ in 0..tracks {
                open.push(match d.u8("track kind")? {
                    0 => {
                        let (dirty, fill_from, filled_to) = get_open_fixed(&mut d)?;
                        OpenTrack::Fixed { dirty, fill_from, filled_to }
                    }
                    1 => OpenTrack::Grab(Grabs::get_latest(&mut d)?),
                    kind => return Err(format!("byte {}: track kind {kind}, expected 0 or 1", d.at() - 1)),
                });
            }
            saved.push(Saved { factory, point, parameter, fingerprint, first_day, recent, open });
        }
        let n = d.len("gaps", 40)?;
        let gaps = (0..n).map(|_| get_gap(&mut d)).collect::<Result<Vec<_>, _>>()?;
        let next_generation = d.u32("next generation")?;
        let n = d.len("day files", 13)?;
        let mut named = Vec::with_capacity(n);
        for _ in 0..n {
            named.push((d.i64("day file")?, d.u32("its generation")?, d.bool("in memory")?));
        }
        let kinds: Vec<Vec<bool>> = saved.iter().map(|s| s.open.iter().map(OpenTrack::is_grab).collect()).collect();
        let n = d.len("sections", 16)?;
        let mut sections = Vec::with_capacity(n);
        for _ in 0..n {
            let day = d.i64("section day")?;
            let len = usize::try_from(d.u64("section length")?).unwrap_or(usize::MAX);
            let bytes = d.bytes(len, "section")?;
            let mut r = ColReader::new(bytes);
            let states = get_section(&mut r, day, &kinds, version)
                .map_err(|e| format!("section of {}: {e}", period::local_date(day)))?;
            if !r.done() {
                return Err(format!(
                    "section of {}: {} bytes after its end",
                    period::local_date(day),
                    bytes.len() - r.at()
                ));
            }
            sections.push((day, states));
        }
        if !d.done() {
            return Err(format!("{} bytes after the last section", payload.len() - d.at()));
        }
        if !named.is_empty() && self.day_files.is_none() {
            return Err("it names judgement days on disk, and this engine has none".into());
        }

        // Which series of this engine each saved one is; none changed its settings or limits.
        let mut at_of = Vec::with_capacity(saved.len());
        for s in &saved {
            // A point no longer registered: its readings are not judged (as a rebuild would not).
            if self.registry.point(&s.factory, &s.point).is_none() {
                at_of.push(None);
                continue;
            }
            let Some(at) = self.series_index(&s.factory, &s.point, &s.parameter) else {
                at_of.push(None);
                continue;
            };
            let who = format!("{}/{}/{}", s.factory, s.point, s.parameter);
            if self.fingerprint(at) != s.fingerprint {
                return Err(format!("{who}: its point's settings or limits changed since the checkpoint"));
            }
            let kinds_match = self.series[at].tracks().len() == s.open.len()
                && self.tracks[self.series[at].tracks()]
                    .iter()
                    .zip(&s.open)
                    .all(|(t, o)| matches!(t.judged, Judged::Grab(_)) == o.is_grab());
            if !kinds_match {
                return Err(format!("{who}: its limits changed since the checkpoint"));
            }
            at_of.push(Some(at));
        }
        // The days in memory that day files hold, read back before anything changes.
        let mut loaded = Vec::new();
        if let Some(files) = self.day_files.clone() {
            for &(day, generation, in_memory) in &named {
                if !in_memory {
                    continue;
                }
                let bytes = files.read(day, generation).map_err(|e| e.to_string())?;
                let (_, series) =
                    decode_day(&bytes).map_err(|e| format!("{}: {e}", files.path(day, generation).display()))?;
                loaded.push((day, Written::of(generation, &bytes), series));
            }
        }

        let mut sections: Vec<(i64, std::vec::IntoIter<DayState>)> =
            sections.into_iter().map(|(day, states)| (day, states.into_iter())).collect();
        for (s, at) in saved.into_iter().zip(at_of) {
            let states: Vec<(i64, DayState)> =
                sections.iter_mut().filter_map(|(day, states)| Some((*day, states.next()?))).collect();
            let Some(at) = at else { continue };
            let series = &mut self.series[at];
            series.first_day = if s.first_day == i64::MAX { i32::MAX } else { day_number(s.first_day) };
            series.recent = s.recent;
            series.hours = Timeline::default();
            series.days = Timeline::default();
            let range = series.tracks();
            for (t, open) in range.clone().zip(s.open) {
                self.tracks[t].judged = match open {
                    OpenTrack::Fixed { dirty, fill_from, filled_to } => {
                        Judged::Fixed(Fixed { periods: BTreeMap::new(), dirty, fill_from, filled_to })
                    }
                    OpenTrack::Grab(latest) => {
                        let mut g = Grabs::default();
                        g.set_latest(latest);
                        Judged::Grab(g)
                    }
                };
            }
            for (day, state) in states {
                let series = &mut self.series[at];
                series.hours.merge(state.hours);
                if let Some(c) = state.count {
                    series.days.insert(day, c);
                }
                for (t, judged) in range.clone().zip(state.tracks) {
                    match (&mut self.tracks[t].judged, judged) {
                        (Judged::Fixed(a), Judged::Fixed(b)) => a.periods.extend(b.periods),
                        (Judged::Grab(a), Judged::Grab(b)) => a.merge(b),
                        _ => {}
                    }
                }
            }
        }
        for (day, written, series) in loaded {
            self.apply_day(day, series);
            self.written.insert(day, written);
            self.written_end = self.written_end.max(day + DAY_NS);
        }
        self.gaps = gaps;
        self.next_generation = self.next_generation.max(next_generation);
        self.archived = named.iter().filter(|(_, _, in_memory)| !in_memory).map(|(d, g, _)| (*d, *g)).collect();
        self.archived_end = self.archived.keys().next_back().map_or(i64::MIN, |d| d + DAY_NS);
        self.marked = true;
        Ok(applied)
    }
}

/// The index of `name` in `names`, added if new.
fn intern<'a>(name: &'a str, names: &mut Vec<&'a str>, index: &mut HashMap<&'a str, u64>) -> u64 {
    *index.entry(name).or_insert_with(|| {
        names.push(name);
        names.len() as u64 - 1
    })
}

/// Decodes a section ([`Engine::put_section`]) of the day from `day` in format `version` (2
/// or later), for series whose tracks are of `kinds` (`true`: grab samples).
fn get_section(r: &mut ColReader<'_>, day: i64, kinds: &[Vec<bool>], version: u32) -> Result<Vec<DayState>, String> {
    let n = kinds.len();
    let strings = (0..r.count("strings")?).map(|_| r.str("string")).collect::<Result<Vec<_>, _>>()?;

    let (counts, keys) = r.keys("hours", day, n)?;
    let m = keys.len();
    let valid = r.uints("hour valid", m, u32::MAX.into())?;
    let excluded = r.uints("hour excluded", m, u32::MAX.into())?;
    let detected = r.uints("hour detected", m, 1)?;
    let kept = if version >= 3 { r.uints("hour sums kept", n, 1)? } else { vec![1; n] };
    let kept_counts: Vec<usize> = counts.iter().zip(&kept).map(|(c, k)| if *k == 1 { *c } else { 0 }).collect();
    let sums = r.sums("hour sums", &kept_counts)?;

    let has_count = r.uints("day counts", n, 1)?;
    let k = has_count.iter().filter(|h| **h == 1).count();
    let day_valid = r.uints("day valid", k, u32::MAX.into())?;
    let day_excluded = r.uints("day excluded", k, u32::MAX.into())?;

    let fixed = kinds.iter().flatten().filter(|grab| !**grab).count();
    let period_counts: Vec<usize> =
        r.uints("period counts", fixed, u32::MAX.into())?.into_iter().map(|c| c as usize).collect();
    let p = period_counts.iter().sum();
    let period_keys = r.times("period keys", p)?;
    let start_offsets = r.ints("period starts", p)?;
    let lengths = r.ints("period lengths", p)?;
    let closed = r.uints("period closed", p, 1)?;
    let outcomes = r.uints("period outcomes", p, 3)?;
    let present = r.uints("period values present", p, 7)?;
    let with = |bit: u64| present.iter().filter(|x| **x & bit != 0).count();
    let (values, measured, o2) =
        (r.values("period values", with(1))?, r.values("period measured", with(2))?, r.values("period O₂", with(4))?);
    let period_valid = r.uints("period valid", p, u32::MAX.into())?;
    let expected = r.uints("period expected", p, u32::MAX.into())?;
    let period_excluded = r.uints("period excluded", p, u32::MAX.into())?;
    let samples = r.uints("period samples", p, u32::MAX.into())?;
    let availability = if version >= 3 {
        let kinds = r.uints("period availability kinds", p, 1)?;
        let own = r.values("period availability", kinds.iter().filter(|k| **k == 1).count())?;
        let mut own = own.into_iter();
        kinds
            .iter()
            .zip(period_valid.iter().zip(&expected))
            .map(|(k, (v, x))| match k {
                0 => availability_pct(*v as u32, *x as u32),
                _ => own.next().unwrap_or(f64::NAN),
            })
            .collect()
    } else {
        r.values("period availability", p)?
    };
    let reasons = r.uints("period reasons", p, strings.len() as u64)?;

    let mut grab_valid: Vec<Vec<(i64, u32)>> = Vec::new();
    let mut at = 0;
    for (kinds, &c) in kinds.iter().zip(&counts) {
        let end = (at + c).min(m);
        let hours: Vec<(i64, u32)> = (at..end).map(|h| (keys[h], valid[h] as u32)).collect();
        grab_valid.extend(kinds.iter().filter(|grab| **grab).map(|_| hours.clone()));
        at = end;
    }
    let mut grabs = Grabs::get_day(r, day, grab_valid.len(), version, &grab_valid)?.into_iter();

    let (mut values, mut measured, mut o2) = (values.into_iter(), measured.into_iter(), o2.into_iter());
    let mut periods = Vec::with_capacity(p);
    for i in 0..p {
        let start_ns = period_keys[i].wrapping_add(start_offsets[i]);
        let take =
            |bit: u64, column: &mut std::vec::IntoIter<f64>| (present[i] & bit != 0).then(|| column.next()).flatten();
        periods.push((
            period_keys[i],
            Period {
                start_ns,
                end_ns: start_ns.wrapping_add(lengths[i]),
                closed: closed[i] == 1,
                outcome: Outcome::of_code(outcomes[i] as u8)?,
                value: take(1, &mut values),
                measured: take(2, &mut measured),
                o2_pct: take(4, &mut o2),
                valid: period_valid[i] as u32,
                expected: expected[i] as u32,
                excluded: period_excluded[i] as u32,
                availability_pct: availability[i],
                reason: reasons[i].checked_sub(1).and_then(|i| strings.get(i as usize).cloned()),
                samples: samples[i] as u32,
            },
        ));
    }
    let mut periods = periods.into_iter();
    let mut period_counts = period_counts.into_iter();
    let (mut hour_lists, mut hours, mut sums) = (counts.into_iter(), 0..m, sums.into_iter());
    let (mut day_valid, mut day_excluded) = (day_valid.into_iter(), day_excluded.into_iter());
    let mut out = Vec::with_capacity(n);
    for (i, kinds) in kinds.iter().enumerate() {
        let mut list = Vec::new();
        for _ in 0..hour_lists.next().unwrap_or_default() {
            let Some(h) = hours.next() else { break };
            let acc = Acc {
                valid: valid[h] as u32,
                excluded: excluded[h] as u32,
                sum_nano: if kept[i] == 1 { sums.next().unwrap_or_default() } else { 0 },
                detected: detected[h] == 1,
            };
            list.push((keys[h], acc));
        }
        let hours = Timeline::from_sorted(list).ok_or("hours out of order")?;
        let count = (has_count[i] == 1).then(|| DayCount {
            valid: day_valid.next().unwrap_or_default() as u32,
            excluded: day_excluded.next().unwrap_or_default() as u32,
        });
        let mut tracks = Vec::with_capacity(kinds.len());
        for &grab in kinds {
            tracks.push(if grab {
                Judged::Grab(grabs.next().unwrap_or_default())
            } else {
                let n = period_counts.next().unwrap_or_default();
                Judged::Fixed(Fixed { periods: periods.by_ref().take(n).collect(), ..Fixed::default() })
            });
        }
        out.push(DayState { hours, count, tracks });
    }
    Ok(out)
}

/// Decodes a judgement day file's bytes (format version 1 or 2): its day start and its series.
pub(super) fn decode_day(bytes: &[u8]) -> Result<(i64, Vec<DaySeries>), String> {
    let (version, payload) = checkpoint::unframe_as(days::MAGIC, "a judgement day", bytes)?;
    if version == 1 {
        return decode_day_v1(payload);
    }
    if version == 2 {
        return decode_day_columns(&mut ColReader::new(payload), version);
    }
    let body = unpack(payload)?;
    decode_day_columns(&mut ColReader::new(&body), version)
}

/// Bytes of a checkpoint's judged positions and clock (`applied`), before its packed rest.
const APPLIED_BYTES: usize = 5 * 8;

/// A day file's or checkpoint's body as its payload: `[0]` then the body, or `[1]`, the
/// body's length (varint) and its DEFLATE stream (RFC 1951) where that is smaller.
fn pack(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut out = vec![1u8];
    crate::store::codec::put_varint(&mut out, body.len() as u64);
    let mut e = flate2::write::DeflateEncoder::new(out, flate2::Compression::default());
    let deflated = e.write_all(body).and_then(|()| e.finish());
    match deflated {
        Ok(out) if out.len() < body.len() + 1 => out,
        _ => [&[0u8][..], body].concat(),
    }
}

/// What [`pack`] made, unpacked.
fn unpack(payload: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    use std::io::Read;
    match payload.first() {
        Some(0) => Ok(std::borrow::Cow::Borrowed(&payload[1..])),
        Some(1) => {
            let mut at = 1;
            let len = crate::store::codec::get_varint(payload, &mut at).map_err(|e| format!("body length: {e}"))?;
            // A deflated byte expands to at most 1032 bytes: a damaged length cannot ask for more.
            let most = (payload.len() as u64).saturating_mul(1032);
            if len > most {
                return Err(format!("body length {len} cannot come from {} deflated bytes", payload.len()));
            }
            let mut body = Vec::with_capacity(len as usize);
            flate2::read::DeflateDecoder::new(&payload[at..])
                .take(len + 1)
                .read_to_end(&mut body)
                .map_err(|e| format!("deflated body: {e}"))?;
            if body.len() as u64 != len {
                return Err(format!("deflated body: {} bytes, its length says {len}", body.len()));
            }
            Ok(std::borrow::Cow::Owned(body))
        }
        Some(kind) => Err(format!("body kind {kind}, expected 0 (stored) or 1 (deflated)")),
        None => Err("no body".into()),
    }
}

/// Decodes the payload of a judgement day in format `version` (2 or later).
fn decode_day_columns(r: &mut ColReader<'_>, version: u32) -> Result<(i64, Vec<DaySeries>), String> {
    let payload = r.bytes();
    let Some(day) = payload.get(..8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default())) else {
        return Err("no day start".into());
    };
    r.skip(8, "day start")?;
    let names = (0..r.count("names")?).map(|_| r.str("name")).collect::<Result<Vec<_>, _>>()?;
    let name = |r: &mut ColReader<'_>, what: &str| -> Result<String, String> {
        let i = r.uvar(what)?;
        names
            .get(usize::try_from(i).unwrap_or(usize::MAX))
            .cloned()
            .ok_or_else(|| format!("byte {}: {what}: name {i} of {}", r.at(), names.len()))
    };
    let n = r.count("series")?;
    let mut series = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    if version >= 3 {
        let name_of = |r: &ColReader<'_>, what: &str, i: u64| -> Result<String, String> {
            names
                .get(usize::try_from(i).unwrap_or(usize::MAX))
                .cloned()
                .ok_or_else(|| format!("byte {}: {what}: name {i} of {}", r.at(), names.len()))
        };
        let max = names.len().saturating_sub(1) as u64;
        let factories = r.uints("factories", n, max)?;
        let points = r.uints("points", n, max)?;
        let parameters = r.uints("parameters", n, max)?;
        let track_counts = r.uints("track counts", n, u32::MAX.into())?;
        let tracks = track_counts.iter().try_fold(0usize, |a, c| a.checked_add(*c as usize)).unwrap_or(usize::MAX);
        let limit_ids = r.uints("limit ids", tracks, max)?;
        let track_kinds = r.uints("track kinds", tracks, 1)?;
        let mut at = 0;
        for i in 0..n {
            let c = track_counts[i] as usize;
            let limits = limit_ids[at..at + c].iter().map(|&l| name_of(r, "limit id", l)).collect::<Result<_, _>>()?;
            kinds.push(track_kinds[at..at + c].iter().map(|k| *k == 1).collect());
            at += c;
            series.push((
                name_of(r, "factory", factories[i])?,
                name_of(r, "point", points[i])?,
                name_of(r, "parameter", parameters[i])?,
                limits,
            ));
        }
    } else {
        for _ in 0..n {
            let (factory, point, parameter) = (name(r, "factory")?, name(r, "point")?, name(r, "parameter")?);
            let tracks = r.count("tracks")?;
            let mut limits = Vec::with_capacity(tracks);
            let mut grab = Vec::with_capacity(tracks);
            for _ in 0..tracks {
                limits.push(name(r, "limit id")?);
                grab.push(match r.u8("track kind")? {
                    0 => false,
                    1 => true,
                    kind => return Err(format!("byte {}: track kind {kind}, expected 0 or 1", r.at() - 1)),
                });
            }
            series.push((factory, point, parameter, limits));
            kinds.push(grab);
        }
    }
    let states = get_section(r, day, &kinds, version)?;
    if !r.done() {
        return Err(format!("{} bytes after the section", payload.len() - r.at()));
    }
    Ok((
        day,
        series
            .into_iter()
            .zip(states)
            .map(|((factory, point, parameter, limits), state)| DaySeries {
                factory,
                point,
                parameter,
                hours: state.hours,
                day: state.count,
                tracks: limits.into_iter().zip(state.tracks).collect(),
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::tests::{effluent, engine, minutes, t0};

    /// A day of every kind of state: hourly and daily periods, grab samples exceeding and not.
    fn a_day() -> (Engine, i64) {
        let (mut e, _) = engine(t0() + 2 * DAY_NS);
        let mut r = minutes("f1", "so2", 900.0, t0(), 120);
        r.extend(minutes("f1", "o2", 7.0, t0(), 120));
        r.extend(minutes("f2", "so2", 400.0, t0(), 90));
        for i in 0..90 {
            r.push(effluent(
                "cod",
                if i % 10 == 3 { 150.0 } else { 90.0 + i as f64 / 10.0 },
                t0() + i * 60 * SECOND_NS,
            ));
            r.push(effluent("ph", 7.0 + i as f64 / 100.0, t0() + i * 60 * SECOND_NS));
        }
        e.ingest(&r);
        e.tick();
        (e, period::day(t0()).0)
    }

    /// Frames a day body as a file of the current format.
    fn file_of(body: &[u8]) -> Vec<u8> {
        checkpoint::frame_as(days::MAGIC, checkpoint::VERSION, &pack(body))
    }

    /// The day files of a history benchmark's data directory (`REENCODE_DIR`, its
    /// `judgements/`; `REENCODE_FACTORIES` bench factories), written again in the current
    /// format: bytes and decode time of both, and each new file read back to the same bytes.
    #[test]
    #[ignore = "reads REENCODE_DIR's judgement days, prints their sizes in the current format"]
    fn day_files_written_again_in_the_current_format() {
        let dir = std::path::PathBuf::from(std::env::var("REENCODE_DIR").expect("REENCODE_DIR"));
        let factories: usize = std::env::var("REENCODE_FACTORIES").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
        let mut toml = String::new();
        for f in 1..=factories {
            toml.push_str(&format!(
                "[[area.factory]]\nid = \"f{f:04}\"\nname = \"F\"\ncategory = 3\n[[area.factory.point]]\nid = \"outfall-1\"\nkind = \"effluent\"\nparameters = [\"cod\", \"bod\", \"ph\", \"tss\", \"tds\", \"temp\", \"flow\", \"oil_grease\", \"tkn\", \"zn\"]\n\n"
            ));
        }
        let clock = Arc::new(super::super::super::clock::ManualClock::new(0));
        let mut e = Engine::new(crate::testkit::registry(&toml), clock, Settings::default());
        let mut paths: Vec<_> = std::fs::read_dir(&dir).expect("dir").map(|e| e.expect("entry").path()).collect();
        paths.sort();
        let (mut old_bytes, mut new_bytes, mut series_days) = (0usize, 0usize, 0usize);
        let (mut old_decode, mut new_decode) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
        for path in &paths {
            let bytes = std::fs::read(path).expect("read");
            let started = std::time::Instant::now();
            let (day, series) = decode_day(&bytes).expect("decode");
            old_decode += started.elapsed();
            series_days += series.len();
            e.apply_day(day, series);
            let new = e.day_file(day);
            e.drop_day(day);
            let started = std::time::Instant::now();
            let (_, series) = decode_day(&new).expect("decode");
            new_decode += started.elapsed();
            e.apply_day(day, series);
            assert_eq!(e.day_file(day), new, "{}", path.display());
            e.drop_day(day);
            old_bytes += bytes.len();
            new_bytes += new.len();
        }
        let per = |b: usize| b as f64 / series_days as f64;
        eprintln!(
            "{} files, {series_days} series-days: {old_bytes} bytes ({:.1} B/series-day, decoded in {old_decode:?}) \
             → {new_bytes} bytes ({:.1} B/series-day, decoded in {new_decode:?})",
            paths.len(),
            per(old_bytes),
            per(new_bytes)
        );
    }

    /// A history benchmark's checkpoint (`REENCODE_DIR`: its `server.toml`,
    /// `compliance.checkpoint` and `judgements/`) written again in the current format.
    #[test]
    #[ignore = "reads REENCODE_DIR's checkpoint, prints its size in the current format"]
    fn a_checkpoint_written_again_in_the_current_format() {
        let dir = std::path::PathBuf::from(std::env::var("REENCODE_DIR").expect("REENCODE_DIR"));
        let toml = std::fs::read_to_string(dir.join("server.toml")).expect("server.toml");
        let registry = || {
            Registry::new(
                eitwatch_config::problems::load::<eitwatch_config::server_config::ServerConfig>(&toml, "server.toml")
                    .expect("config")
                    .area,
            )
        };
        let old = std::fs::read(dir.join("compliance.checkpoint")).expect("checkpoint");
        let written_at = i64::from_le_bytes(old[56..64].try_into().expect("8 bytes"));
        let clock = Arc::new(super::super::super::clock::ManualClock::new(written_at));
        let mut e = Engine::new(registry(), clock.clone(), Settings::default());
        e.archive_to(Arc::new(DayFiles::open(&dir.join("judgements")).expect("dir")));
        let applied = e.restore(&old).expect("restores");
        let new = e.checkpoint(&applied);
        let mut again = Engine::new(registry(), clock, Settings::default());
        again.archive_to(Arc::new(DayFiles::open(&dir.join("judgements")).expect("dir")));
        assert_eq!(again.restore(&new), Ok(applied));
        assert_eq!(again.checkpoint(&applied), new);
        eprintln!("checkpoint: {} bytes → {} bytes", old.len(), new.len());
    }

    #[test]
    fn a_day_file_decodes_to_what_encodes_to_it_again() {
        let (e, day) = a_day();
        let bytes = e.day_file(day);
        let (decoded_day, series) = decode_day(&bytes).expect("decodes");
        assert_eq!(decoded_day, day);
        assert_eq!(series.len(), 5, "f1: cod, ph, so2, o2; f2: so2 (its o2: no reading, no limit)");
        let (mut again, _) = engine(t0() + 2 * DAY_NS);
        again.apply_day(day, series);
        assert_eq!(again.day_file(day), bytes);
        let body = unpack(checkpoint::unframe_as(days::MAGIC, "a day", &bytes).expect("frame").1).expect("unpack");
        assert_eq!(file_of(&body), bytes, "deflated: smaller");
        assert_eq!(pack(&[7]), vec![0, 7], "stored: deflate would be larger");
        assert_eq!(unpack(&[0, 7]).expect("stored").as_ref(), &[7]);
    }

    #[test]
    fn a_checkpoint_keeps_its_judged_positions_readable_and_the_rest_deflated() {
        let (e, _) = a_day();
        let store = crate::store::LogPosition { segment: 7, offset: 4242 };
        let bytes = e.checkpoint(&checkpoint::Applied { store, gaps: 3, corrections: 2 });
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        assert_eq!((word(24), word(32), word(40), word(48)), (7, 4242, 3, 2));
        assert_eq!(bytes[24 + APPLIED_BYTES], 1, "the rest deflated");
        let (mut again, _) = engine(t0() + 2 * DAY_NS);
        assert_eq!(again.restore(&bytes).map(|a| a.store), Ok(store));
        assert_eq!(again.checkpoint(&checkpoint::Applied { store, gaps: 3, corrections: 2 }), bytes);
    }

    #[test]
    fn a_damaged_day_body_is_an_error_naming_a_column_never_a_panic() {
        let (e, day) = a_day();
        let bytes = e.day_file(day);
        let body = unpack(checkpoint::unframe_as(days::MAGIC, "a day", &bytes).expect("frame").1).expect("unpack");
        let body = body.to_vec();
        // Every cut: the column it cuts into is named (`byte N: <column>: …`).
        for cut in 8..body.len() {
            let error = decode_day(&file_of(&body[..cut])).err().unwrap_or_else(|| panic!("cut at {cut} decodes"));
            assert!(error.starts_with("byte ") && error.matches(": ").count() >= 2, "cut at {cut}: {error}");
        }
        // Every byte changed: an error or a day, never a panic.
        let mut errors = 0;
        for at in 8..body.len() {
            let mut damaged = body.clone();
            damaged[at] ^= 0x5a;
            errors += usize::from(decode_day(&file_of(&damaged)).is_err());
        }
        assert!(errors > 0);
        // A damaged deflate stream, its length, an unknown body kind.
        let payload = pack(&body);
        let mut stream = payload.clone();
        let last = stream.len() - 1;
        stream[last] ^= 0xff;
        assert!(unpack(&stream).is_err());
        assert_eq!(unpack(&[2]).err(), Some("body kind 2, expected 0 (stored) or 1 (deflated)".to_string()));
        assert!(unpack(&[1, 0xff, 0xff, 0xff, 0xff, 0x7f, 0]).expect_err("too long").starts_with("body length"));
    }

    #[test]
    fn a_damaged_day_file_a_checkpoint_relies_on_names_the_file_and_the_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut e, day) = a_day();
        let files = Arc::new(DayFiles::open(dir.path()).expect("dir"));
        e.archive_to(files.clone());
        for (day, generation, bytes) in e.days_to_write() {
            files.write(day, generation, &bytes).expect("write");
            e.day_written(day, generation, &bytes);
        }
        let checkpoint = e.checkpoint(&checkpoint::Applied::default());
        let generation = e.named_days()[&day];
        let bytes = files.read(day, generation).expect("read");
        let body = unpack(checkpoint::unframe_as(days::MAGIC, "a day", &bytes).expect("frame").1).expect("unpack");
        files.write(day, generation, &file_of(&body[..body.len() - 3])).expect("write");
        let (mut restored, _) = engine(t0() + 2 * DAY_NS);
        restored.archive_to(files.clone());
        let error = restored.restore(&checkpoint).expect_err("a damaged day file");
        let name = files.path(day, generation).display().to_string();
        assert!(error.starts_with(&format!("{name}: byte ")), "{error}");
    }

    /// Bytes per column of the day files in `SIM_DIR/judgements` (made by the ignored test
    /// `realistic_fortnight_files`), per series-day.
    #[test]
    #[ignore = "reads SIM_DIR's judgement days, prints their bytes per column"]
    fn day_file_bytes_per_column() {
        let dir = std::env::var("SIM_DIR")
            .map_or_else(|_| std::env::temp_dir().join("eitwatch-judgement-sizes"), std::path::PathBuf::from)
            .join("judgements");
        let mut tally: BTreeMap<String, usize> = BTreeMap::new();
        let (mut series_days, mut total, mut files) = (0usize, 0usize, 0usize);
        let mut paths: Vec<_> = std::fs::read_dir(&dir).expect("dir").map(|e| e.expect("entry").path()).collect();
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path).expect("read");
            let (version, payload) = checkpoint::unframe_as(days::MAGIC, "a judgement day", &bytes).expect("unframe");
            let started = std::time::Instant::now();
            let (_, series) = decode_day(&bytes).expect("decode");
            let decode = started.elapsed();
            if version >= 2 {
                let body =
                    if version == 2 { std::borrow::Cow::Borrowed(payload) } else { unpack(payload).expect("unpack") };
                *tally.entry("packed payload (vs body)".into()).or_default() += payload.len();
                *tally.entry("body".into()).or_default() += body.len();
                let mut r = ColReader::new(&body);
                decode_day_columns(&mut r, version).expect("decode");
                for (k, v) in r.tally {
                    *tally.entry(k).or_default() += v;
                }
            }
            *tally.entry("frame".into()).or_default() += bytes.len() - payload.len();
            let started = std::time::Instant::now();
            let _ = pack(&unpack(payload).expect("unpack"));
            *tally.entry("~ pack and unpack, µs".into()).or_default() += started.elapsed().as_micros() as usize;
            eprintln!("{}: {} bytes, {} series, decoded in {decode:?}", path.display(), bytes.len(), series.len());
            for ds in &series {
                for (_, j) in &ds.tracks {
                    if let Judged::Grab(g) = j {
                        let runs = g.runs();
                        let exceeding: usize = runs.iter().map(|(r, _)| r.samples.len()).sum();
                        *tally.entry(format!("~ {} exceeding samples (count)", ds.parameter)).or_default() += exceeding;
                        *tally.entry(format!("~ {} runs (count)", ds.parameter)).or_default() += runs.len();
                    }
                }
            }
            series_days += series.len();
            total += bytes.len();
            files += 1;
        }
        let mut rows: Vec<_> = tally.into_iter().collect();
        rows.sort_by_key(|(_, v)| std::cmp::Reverse(*v));
        for (k, v) in rows {
            eprintln!("{:>10.2} B/series-day {k}", v as f64 / series_days as f64);
        }
        eprintln!(
            "{files} files, {total} bytes, {series_days} series-days: {:.1} B/series-day",
            total as f64 / series_days as f64
        );
    }
}
