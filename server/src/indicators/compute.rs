//! The built-in kinds, computed from what the compliance engine judged (and, for loads, the
//! stored readings): never from raw guesses. Every value carries its evidence; a value that
//! cannot be computed says why instead of showing zero.

use std::collections::{BTreeMap, BTreeSet};

use eitwatch_config::indicators::{Definition, IndicatorKind};
use eitwatch_config::reading::Kind;
use eitwatch_config::site::{Area, Factory, Point, Registry};
use serde::Serialize;

use super::loads;
use super::periods::Range;
use crate::compliance::period::{DAY_NS, HOUR_NS, day, expected};
use crate::compliance::{DayAvailability, Engine, Episode, Filter, Outcome};

/// What an indicator report covers: an area and/or a factory, within a token's scope.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Area id.
    pub area: Option<String>,
    /// Factory id.
    pub factory: Option<String>,
    /// The only factory a scoped token may see.
    pub scope: Option<String>,
}

/// (factory, point, parameter).
pub type SeriesKey = (String, String, String);

/// What the engine judged of one series over one range, summed up while reading it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesTally {
    /// Grab samples (or fixed periods) judged compliant.
    pub compliant: u64,
    /// Judged exceeding.
    pub exceeds: u64,
    /// Periods of insufficient data.
    pub insufficient: u64,
    /// Periods that could not be brought to the limit's basis.
    pub cannot_correct: u64,
    /// Periods not closed yet.
    pub open: u64,
    /// The first reason a period was not judged.
    pub first_reason: Option<String>,
    /// Clock hours (start, ns) with an exceeding period, within the range.
    pub exceedance_hours: BTreeSet<i64>,
    /// Exceeding grab samples.
    pub exceeding_grab_samples: u64,
}

/// What a report needs of one range, gathered a series at a time so that a fiscal year of a
/// province never sits in memory as judged periods: per series its tally, plus episodes,
/// daily availability and the loads' hourly sums.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Per registered series of the selection.
    pub series: BTreeMap<SeriesKey, SeriesTally>,
    /// Episodes overlapping the range.
    pub episodes: Vec<Episode>,
    /// Daily availability of the days overlapping the range.
    pub availability: Vec<DayAvailability>,
    /// The engine's clock.
    pub now_ns: i64,
    /// Per (factory, point, load parameter): the load's hourly computation.
    pub loads: BTreeMap<SeriesKey, loads::LoadPart>,
}

impl Inputs {
    /// Reads the engine a series at a time (`engine` is called, and its guard dropped, per
    /// series: ingest's judging waits for one series, never for a whole report).
    pub fn gather<G: std::ops::Deref<Target = Engine>>(
        engine: impl Fn() -> G,
        registry: &Registry,
        selection: &Selection,
        range: &Range,
    ) -> Inputs {
        let base = Filter {
            scope: selection.scope.clone(),
            area: selection.area.clone(),
            factory: selection.factory.clone(),
            from_ns: Some(range.from_ns),
            to_ns: Some(range.to_ns),
            ..Filter::default()
        };
        let mut series = BTreeMap::new();
        for (f, p, code) in selected_series(registry, selection) {
            let filter = Filter {
                factory: Some(f.clone()),
                point: Some(p.clone()),
                parameter: Some(code.clone()),
                ..base.clone()
            };
            let views = engine().periods(&filter, usize::MAX);
            let mut t = SeriesTally::default();
            for v in &views {
                t.add(&v.period, range);
            }
            series.insert((f, p, code), t);
        }
        let guard = engine();
        Inputs {
            series,
            episodes: guard.episodes(&base),
            availability: guard.availability(&base),
            now_ns: guard.now_ns(),
            loads: BTreeMap::new(),
        }
    }
}

impl Inputs {
    /// Adds the loads of the selection's points, from valid readings `fetch` returns.
    pub fn gather_loads(
        &mut self,
        registry: &Registry,
        selection: &Selection,
        range: &Range,
        fetch: &mut loads::Fetch<'_>,
    ) {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let points: Vec<(&Factory, &Point)> = registry
            .areas()
            .iter()
            .filter(|a| eq(&selection.area, &a.id))
            .flat_map(|a| a.factory.iter())
            .filter(|f| eq(&selection.factory, &f.id) && eq(&selection.scope, &f.id))
            .flat_map(|f| f.point.iter().map(move |p| (f, p)))
            .collect();
        self.loads = loads::gather(&points, range, fetch);
    }
}

/// Every registered series of a selection.
fn selected_series(registry: &Registry, selection: &Selection) -> Vec<(String, String, String)> {
    let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    let mut out = Vec::new();
    for a in registry.areas().iter().filter(|a| eq(&selection.area, &a.id)) {
        for f in a.factory.iter().filter(|f| eq(&selection.factory, &f.id) && eq(&selection.scope, &f.id)) {
            for p in &f.point {
                for code in &p.parameters {
                    out.push((f.id.clone(), p.id.clone(), code.clone()));
                }
            }
        }
    }
    out
}

impl SeriesTally {
    fn add(&mut self, p: &crate::compliance::Period, range: &Range) {
        if !p.closed {
            self.open += 1;
            return;
        }
        match p.outcome {
            Outcome::Compliant => self.compliant += p.samples as u64,
            Outcome::Exceeds => {
                self.exceeds += p.samples as u64;
                if p.start_ns == p.end_ns {
                    // A grab sample: the clock hour it was taken in counts as an exceedance hour.
                    self.exceedance_hours.insert(p.start_ns.div_euclid(HOUR_NS) * HOUR_NS);
                    self.exceeding_grab_samples += p.samples as u64;
                } else {
                    let mut h = p.start_ns.max(range.from_ns).div_euclid(HOUR_NS) * HOUR_NS;
                    while h < p.end_ns.min(range.to_ns) {
                        self.exceedance_hours.insert(h);
                        h += HOUR_NS;
                    }
                }
            }
            Outcome::InsufficientData => self.insufficient += 1,
            Outcome::CannotCorrect => self.cannot_correct += 1,
        }
        if matches!(p.outcome, Outcome::InsufficientData | Outcome::CannotCorrect) && self.first_reason.is_none() {
            self.first_reason = p.reason.clone();
        }
    }
}

/// One computed indicator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Indicator {
    /// Definition id.
    pub id: String,
    /// Assessment code, where assigned.
    pub eit_code: Option<String>,
    /// Name in Thai.
    pub name_th: String,
    /// Name in English.
    pub name_en: String,
    /// The formula.
    pub kind: IndicatorKind,
    /// Its values (an overall value first, then parts: per point, per parameter).
    pub values: Vec<Value>,
    /// What the values were computed from, and what was left out and why.
    pub evidence: Vec<Evidence>,
}

/// One number of an indicator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Value {
    /// Stable key within the indicator (`judged_compliant_pct`, `point:f1/outfall-1`, `load:bod`).
    pub key: String,
    /// In Thai.
    pub name_th: String,
    /// In English.
    pub name_en: String,
    /// The value; `None` when it cannot be computed (see `not_computed`).
    pub value: Option<f64>,
    /// `%`, `count`, `h`, `kg`, `t`.
    pub unit: String,
    /// For a ratio: what was counted.
    pub numerator: Option<f64>,
    /// For a ratio: out of what.
    pub denominator: Option<f64>,
    /// Why there is no value.
    pub not_computed: Option<String>,
    /// The same value over the previous period of the same length.
    pub previous: Option<f64>,
    /// value − previous (percentage points for a `%`).
    pub change: Option<f64>,
}

/// What one factory/point/parameter contributed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// Factory.
    pub factory: String,
    /// Point, where the row is about one.
    pub point: Option<String>,
    /// Parameter, where the row is about one.
    pub parameter: Option<String>,
    /// What is counted in `used` and `excluded` (`grab samples/periods`, `point-days`, `hours`).
    pub counted: String,
    /// Counted into the value.
    pub used: u64,
    /// Left out.
    pub excluded: u64,
    /// What was used, what was left out and why.
    pub note: String,
}

fn ratio(key: &str, th: &str, en: &str, num: u64, den: u64, none: impl FnOnce() -> String) -> Value {
    Value {
        key: key.into(),
        name_th: th.into(),
        name_en: en.into(),
        value: (den > 0).then(|| num as f64 * 100.0 / den as f64),
        unit: "%".into(),
        numerator: Some(num as f64),
        denominator: Some(den as f64),
        not_computed: (den == 0).then(none),
        previous: None,
        change: None,
    }
}

fn amount(key: &str, th: &str, en: &str, value: Option<f64>, unit: &str, none: Option<String>) -> Value {
    Value {
        key: key.into(),
        name_th: th.into(),
        name_en: en.into(),
        value,
        unit: unit.into(),
        numerator: None,
        denominator: None,
        not_computed: if value.is_none() { none.or_else(|| Some("no data".into())) } else { None },
        previous: None,
        change: None,
    }
}

/// Which registered factories and points a definition covers.
struct Scope<'a> {
    def: &'a Definition,
    selection: &'a Selection,
}

impl Scope<'_> {
    fn area(&self, area: &Area) -> bool {
        let eq = |want: &Option<String>| want.as_deref().is_none_or(|w| w == area.id);
        eq(&self.selection.area) && eq(&self.def.filter.area)
    }
    fn factory(&self, f: &Factory) -> bool {
        let eq = |want: &Option<String>| want.as_deref().is_none_or(|w| w == f.id);
        eq(&self.selection.factory)
            && eq(&self.selection.scope)
            && (self.def.filter.factory_categories.is_empty()
                || self.def.filter.factory_categories.contains(&f.category))
    }
    fn parameter(&self, code: &str) -> bool {
        self.def.filter.parameters.is_empty() || self.def.filter.parameters.iter().any(|p| p == code)
    }
    /// Covered (factory, point) pairs of the registry, optionally of one kind.
    fn points<'r>(&self, registry: &'r Registry, kind: Option<Kind>) -> Vec<(&'r Area, &'r Factory, &'r Point)> {
        let mut out = Vec::new();
        for a in registry.areas().iter().filter(|a| self.area(a)) {
            for f in a.factory.iter().filter(|f| self.factory(f)) {
                for p in f.point.iter().filter(|p| kind.is_none_or(|k| p.kind == k)) {
                    if p.parameters.iter().any(|c| self.parameter(c)) {
                        out.push((a, f, p));
                    }
                }
            }
        }
        out
    }
}

/// Computes one definition over inputs of one range.
pub fn indicator(
    def: &Definition,
    registry: &Registry,
    selection: &Selection,
    range: &Range,
    inputs: &Inputs,
) -> Indicator {
    let scope = Scope { def, selection };
    let (values, evidence) = match def.kind {
        IndicatorKind::EffluentCompliance => compliance(&scope, registry, inputs, Kind::Effluent),
        IndicatorKind::EmissionCompliance => compliance(&scope, registry, inputs, Kind::Emission),
        IndicatorKind::DataAvailability => availability(&scope, registry, range, inputs),
        IndicatorKind::Exceedances => exceedances(&scope, registry, inputs),
        IndicatorKind::PollutantLoad => loads::pollutant_loads(
            &scope.points(registry, None).into_iter().map(|(_, f, p)| (f, p)).collect::<Vec<_>>(),
            &|code| scope.parameter(code),
            &inputs.loads,
        ),
    };
    Indicator {
        id: def.id.clone(),
        eit_code: def.eit_code.clone(),
        name_th: def.name_th.clone(),
        name_en: def.name_en.clone(),
        kind: def.kind,
        values,
        evidence,
    }
}

/// Readings excluded from judgement (maintenance, calibration, suspect, invalid) per
/// (factory, point, parameter) on the days overlapping the range.
fn excluded_readings(inputs: &Inputs) -> BTreeMap<(String, String, String), u64> {
    let mut out = BTreeMap::new();
    for d in &inputs.availability {
        *out.entry((d.factory.clone(), d.point.clone(), d.parameter.clone())).or_default() += d.excluded as u64;
    }
    out
}

fn compliance(scope: &Scope<'_>, registry: &Registry, inputs: &Inputs, kind: Kind) -> (Vec<Value>, Vec<Evidence>) {
    let (what_th, what_en) = match kind {
        Kind::Effluent => ("น้ำทิ้ง", "effluent"),
        _ => ("อากาศเสียจากปล่อง", "stack emission"),
    };
    let points = scope.points(registry, Some(kind));
    let empty = SeriesTally::default();
    let mut tally: BTreeMap<SeriesKey, &SeriesTally> = BTreeMap::new();
    for (_, f, p) in &points {
        for code in p.parameters.iter().filter(|c| scope.parameter(c)) {
            let key = (f.id.clone(), p.id.clone(), code.clone());
            let t = inputs.series.get(&key).unwrap_or(&empty);
            tally.insert(key, t);
        }
    }
    let excluded = excluded_readings(inputs);
    let mut evidence = Vec::new();
    let (mut compliant, mut judged) = (0u64, 0u64);
    // factory → (judged anything, exceeded anything)
    let mut factories: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for (_, f, _) in &points {
        factories.entry(f.id.clone()).or_default();
    }
    for ((factory, point, parameter), t) in &tally {
        let n = t.compliant + t.exceeds;
        compliant += t.compliant;
        judged += n;
        let entry = factories.entry(factory.clone()).or_default();
        entry.0 |= n > 0;
        entry.1 |= t.exceeds > 0;
        let mut note = format!("{} compliant, {} exceeding", t.compliant, t.exceeds);
        if t.insufficient > 0 {
            note.push_str(&format!("; excluded: {} periods of insufficient data", t.insufficient));
        }
        if t.cannot_correct > 0 {
            note.push_str(&format!(
                "; excluded: {} periods that could not be corrected to the reference O₂",
                t.cannot_correct
            ));
        }
        if let Some(r) = &t.first_reason {
            note.push_str(&format!(" (first: {r})"));
        }
        if t.open > 0 {
            note.push_str(&format!("; {} periods still open, not counted", t.open));
        }
        let readings = excluded.get(&(factory.clone(), point.clone(), parameter.clone())).copied().unwrap_or(0);
        if readings > 0 {
            note.push_str(&format!(
                "; {readings} readings excluded from judgement (maintenance, calibration, suspect or invalid)"
            ));
        }
        if n == 0 && t.insufficient == 0 && t.cannot_correct == 0 && t.open == 0 {
            note = if readings > 0 {
                format!(
                    "no judged period: {readings} readings, all excluded from judgement (maintenance, calibration, suspect or invalid)"
                )
            } else {
                "no judged period in the range (no limit applies, or no reading)".to_string()
            };
        }
        evidence.push(Evidence {
            factory: factory.clone(),
            point: Some(point.clone()),
            parameter: Some(parameter.clone()),
            counted: "grab samples/periods".into(),
            used: n,
            excluded: t.insufficient + t.cannot_correct,
            note,
        });
    }
    let monitored = factories.values().filter(|(j, _)| *j).count() as u64;
    let fully = factories.values().filter(|(j, e)| *j && !*e).count() as u64;
    for (factory, (j, e)) in &factories {
        evidence.push(Evidence {
            factory: factory.clone(),
            point: None,
            parameter: None,
            counted: "factories".into(),
            used: *j as u64,
            excluded: !*j as u64,
            note: match (j, e) {
                (false, _) => "not monitored: no judged period in the range".into(),
                (true, false) => "fully compliant: no judged period exceeded".into(),
                (true, true) => "not fully compliant: at least one judged period exceeded".into(),
            },
        });
    }
    let none = |what: &str| {
        if points.is_empty() {
            format!("no {what_en} point in the selection")
        } else {
            format!("no {what} judged in the range (see the evidence for what was excluded and why)")
        }
    };
    let values = vec![
        ratio(
            "judged_compliant_pct",
            &format!("ร้อยละของผลการตรวจวัด{what_th}ที่เป็นไปตามมาตรฐาน"),
            &format!("Judged {what_en} samples/periods compliant"),
            compliant,
            judged,
            || none("grab sample or period"),
        ),
        ratio(
            "factories_compliant_pct",
            &format!("ร้อยละของโรงงานที่{what_th}เป็นไปตามมาตรฐานทุกครั้ง"),
            &format!("Factories fully compliant ({what_en}) of factories monitored"),
            fully,
            monitored,
            || none("factory period"),
        ),
    ];
    (values, evidence)
}

fn availability(scope: &Scope<'_>, registry: &Registry, range: &Range, inputs: &Inputs) -> (Vec<Value>, Vec<Evidence>) {
    let by_day: BTreeMap<(&str, &str, &str, i64), &DayAvailability> = inputs
        .availability
        .iter()
        .map(|d| ((d.factory.as_str(), d.point.as_str(), d.parameter.as_str(), d.day_start_ns), d))
        .collect();
    let first_day = day(range.from_ns).0;
    let mut values = Vec::new();
    let mut evidence = Vec::new();
    let (mut met_all, mut over_all) = (0u64, 0u64);
    for (_, f, p) in scope.points(registry, None) {
        let params: Vec<&String> = p.parameters.iter().filter(|c| scope.parameter(c)).collect();
        let (mut met, mut over, mut not_over, mut silent) = (0u64, 0u64, 0u64, 0u64);
        let mut short: Vec<String> = Vec::new();
        let mut d = first_day;
        while d < range.to_ns {
            if d + DAY_NS > inputs.now_ns {
                not_over += 1;
                d += DAY_NS;
                continue;
            }
            over += 1;
            let mut ok = true;
            let mut any = false;
            for code in &params {
                // A day the engine does not list (before the series' first reading) had no reading.
                match by_day.get(&(f.id.as_str(), p.id.as_str(), code.as_str(), d)) {
                    Some(a) => {
                        any |= a.valid + a.excluded > 0;
                        if a.meets != Some(true) {
                            ok = false;
                            short.push(format!(
                                "{} {}: {} of {} ({:.1} %)",
                                a.day, code, a.valid, a.expected, a.availability_pct
                            ));
                        }
                    }
                    None => ok = false,
                }
            }
            if !any {
                silent += 1;
            }
            if ok {
                met += 1;
            }
            d += DAY_NS;
        }
        let expected_day = expected(0, DAY_NS, p.expected_interval_s);
        met_all += met;
        over_all += over;
        let key = format!("{}/{}", f.id, p.id);
        values.push(ratio(
            &format!("point:{key}"),
            &format!("จุดตรวจวัด {key}: ร้อยละของวันที่ข้อมูลครบ"),
            &format!("Point {key}: days meeting the rule"),
            met,
            over,
            || "no day of the range is over yet".into(),
        ));
        let mut note = format!(
            "{met} of {over} days met the rule for every parameter ({}; {expected_day} readings expected a day)",
            params.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
        if silent > 0 {
            note.push_str(&format!("; {silent} days without any reading"));
        }
        if !short.is_empty() {
            let shown: Vec<&str> = short.iter().take(10).map(|s| s.as_str()).collect();
            note.push_str(&format!("; short: {}{}", shown.join(", "), if short.len() > 10 { ", …" } else { "" }));
        }
        if not_over > 0 {
            note.push_str(&format!("; {not_over} days not over yet, not counted"));
        }
        evidence.push(Evidence {
            factory: f.id.clone(),
            point: Some(p.id.clone()),
            parameter: None,
            counted: "point-days".into(),
            used: over,
            excluded: not_over,
            note,
        });
    }
    let overall = ratio(
        "point_days_meeting_pct",
        "ร้อยละของจุด-วันที่ข้อมูลครบตามเกณฑ์ ≥ 80 %",
        "Point-days meeting the availability rule (≥ 80 % valid)",
        met_all,
        over_all,
        || {
            if evidence.is_empty() {
                "no monitoring point in the selection".into()
            } else {
                "no day of the range is over yet".into()
            }
        },
    );
    values.insert(0, overall);
    (values, evidence)
}

fn exceedances(scope: &Scope<'_>, registry: &Registry, inputs: &Inputs) -> (Vec<Value>, Vec<Evidence>) {
    let covered = |factory: &str, parameter: &str| {
        registry.factory(factory).is_some_and(|(a, f)| scope.area(a) && scope.factory(f)) && scope.parameter(parameter)
    };
    let mut hours: BTreeMap<SeriesKey, u64> = BTreeMap::new();
    let mut grab: BTreeMap<SeriesKey, u64> = BTreeMap::new();
    for (key, t) in &inputs.series {
        if covered(&key.0, &key.2) && !t.exceedance_hours.is_empty() {
            hours.insert(key.clone(), t.exceedance_hours.len() as u64);
            grab.insert(key.clone(), t.exceeding_grab_samples);
        }
    }
    let mut episodes: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for e in inputs.episodes.iter().filter(|e| covered(&e.factory, &e.parameter)) {
        *episodes.entry((e.factory.clone(), e.point.clone(), e.parameter.clone())).or_default() += 1;
    }
    let mut by_parameter: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut evidence = Vec::new();
    let keys: BTreeSet<_> = hours.keys().chain(episodes.keys()).cloned().collect();
    for key in keys {
        let h = hours.get(&key).copied().unwrap_or(0);
        let e = episodes.get(&key).copied().unwrap_or(0);
        let entry = by_parameter.entry(key.2.clone()).or_default();
        entry.0 += e;
        entry.1 += h;
        let g = grab.get(&key).copied().unwrap_or(0);
        evidence.push(Evidence {
            factory: key.0.clone(),
            point: Some(key.1.clone()),
            parameter: Some(key.2.clone()),
            counted: "hours".into(),
            used: h,
            excluded: 0,
            note: format!(
                "{e} episodes, {h} exceedance hours{}",
                if g > 0 {
                    format!(" ({g} exceeding grab samples, each counting its clock hour once)")
                } else {
                    String::new()
                }
            ),
        });
    }
    let points = scope.points(registry, None);
    let (total_e, total_h) = by_parameter.values().fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
    let none = points.is_empty().then(|| "no monitoring point in the selection".to_string());
    let mut values = vec![
        amount(
            "episodes",
            "จำนวนครั้งของการเกินค่ามาตรฐาน (ช่วงต่อเนื่อง)",
            "Exceedance episodes",
            none.is_none().then_some(total_e as f64),
            "count",
            none.clone(),
        ),
        amount(
            "exceedance_hours",
            "จำนวนชั่วโมงที่เกินค่ามาตรฐาน",
            "Exceedance hours",
            none.is_none().then_some(total_h as f64),
            "h",
            none,
        ),
    ];
    for (parameter, (e, h)) in &by_parameter {
        values.push(amount(
            &format!("episodes:{parameter}"),
            &format!("จำนวนครั้งที่เกินค่ามาตรฐาน {parameter}"),
            &format!("Exceedance episodes, {parameter}"),
            Some(*e as f64),
            "count",
            None,
        ));
        values.push(amount(
            &format!("hours:{parameter}"),
            &format!("ชั่วโมงที่เกินค่ามาตรฐาน {parameter}"),
            &format!("Exceedance hours, {parameter}"),
            Some(*h as f64),
            "h",
            None,
        ));
    }
    if evidence.is_empty() && !points.is_empty() {
        for (_, f, p) in points {
            evidence.push(Evidence {
                factory: f.id.clone(),
                point: Some(p.id.clone()),
                parameter: None,
                counted: "hours".into(),
                used: 0,
                excluded: 0,
                note: "no exceeding period in the range".into(),
            });
        }
    }
    (values, evidence)
}

/// Sets `previous` and `change` of each value from the same indicator over the previous range.
pub fn with_previous(mut current: Indicator, previous: &Indicator) -> Indicator {
    for v in &mut current.values {
        let before = previous.values.iter().find(|p| p.key == v.key).and_then(|p| p.value);
        v.previous = before;
        v.change = match (v.value, before) {
            (Some(a), Some(b)) => Some(a - b),
            _ => None,
        };
    }
    current
}
