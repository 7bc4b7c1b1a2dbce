//! Golden scenarios: expected values computed by hand and written here; a manual clock, no
//! sleeps.

use std::sync::Arc;

use eitwatch_config::reading::{Kind, Quality, Reading};
use eitwatch_config::site::Registry;

use super::clock::ManualClock;
use super::engine::{AlertKind, Condition, Engine, Filter, GapInfo, Measured, Outcome, PeriodView, SeriesId, Settings};
use super::period::{self, DAY_NS, HOUR_NS, SECOND_NS};
use eitwatch_config::standards::Averaging;

/// The factories of area a1 (see [`crate::testkit::config`]).
const FACTORIES: &str = r#"
[[area.factory]]
id = "f1"
name = "Factory one"
category = 3

[[area.factory.point]]
id = "outfall-1"
kind = "effluent"
parameters = ["cod", "ph", "tds", "pesticide"]
expected_interval_s = 60
receiving_water_tds_mg_per_l = 4000.0
[area.factory.point.faults]
flatline_after_s = 600
max_change_per_min = { tds = 100.0 }

[[area.factory.point]]
id = "stack-1"
kind = "emission"
parameters = ["so2", "o2"]
expected_interval_s = 60
emission = { source = "boiler", fuel = "heavy_oil", combustion = true }

[[area.factory]]
id = "f2"
name = "Factory two"
category = 3

[[area.factory.point]]
id = "stack-1"
kind = "emission"
parameters = ["so2", "o2"]
expected_interval_s = 60
emission = { source = "boiler", fuel = "heavy_oil", combustion = true }

[[area.factory.permit]]
reference = "P-42"
point = "stack-1"
parameter = "so2"
max = 500.0
unit = "mg/Nm3"
averaging = "daily"
"#;

fn ts(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().expect("timestamp").as_nanosecond() as i64
}

/// 2026-11-23 00:00 UTC = 07:00 Bangkok.
pub(crate) fn t0() -> i64 {
    ts("2026-11-23T00:00:00Z")
}

pub(crate) fn registry() -> Registry {
    crate::testkit::registry(FACTORIES)
}

pub(crate) fn engine(now_ns: i64) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(now_ns));
    (Engine::new(registry(), clock.clone(), Settings::default()), clock)
}

pub(crate) fn effluent(parameter: &str, value: f64, t: i64) -> Reading {
    Reading::new(Kind::Effluent, "f1", "outfall-1", parameter, value, t)
}

fn stack(factory: &str, parameter: &str, value: f64, t: i64) -> Reading {
    Reading::new(Kind::Emission, factory, "stack-1", parameter, value, t)
}

/// `n` readings a minute apart from `start`.
pub(crate) fn minutes(factory: &str, parameter: &str, value: f64, start: i64, n: i64) -> Vec<Reading> {
    (0..n).map(|i| stack(factory, parameter, value, start + i * 60 * SECOND_NS)).collect()
}

pub(crate) fn periods(e: &Engine, factory: &str, parameter: &str) -> Vec<PeriodView> {
    let f = Filter { factory: Some(factory.into()), parameter: Some(parameter.into()), ..Filter::default() };
    e.periods(&f, usize::MAX)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn instantaneous_max_range_not_detected_and_tds_rule() {
    let (mut e, _) = engine(t0() + DAY_NS);
    let t = t0();
    let mut bdl = effluent("pesticide", 0.001, t);
    bdl.below_detection_limit = true;
    e.ingest(&[
        effluent("cod", 120.0, t),
        effluent("cod", 120.5, t + SECOND_NS),
        effluent("ph", 5.4, t),
        effluent("ph", 5.5, t + SECOND_NS),
        effluent("ph", 9.0, t + 2 * SECOND_NS),
        effluent("ph", 9.1, t + 3 * SECOND_NS),
        bdl,
        effluent("pesticide", 0.001, t + SECOND_NS),
        // Receiving water at 4000 mg/L > 3000: the bound becomes max(3000, 4000 + 5000) = 9000.
        effluent("tds", 9000.0, t),
        effluent("tds", 9000.5, t + SECOND_NS),
    ]);
    // Exceeding grab samples one by one; the compliant ones of the hour in one summary
    // (starting at the hour, t0) with how many it stands for.
    let outcomes = |p: &str| {
        periods(&e, "f1", p)
            .iter()
            .map(|v| (v.period.start_ns - t, v.period.outcome, v.period.samples))
            .collect::<Vec<_>>()
    };
    let s = SECOND_NS;
    assert_eq!(outcomes("cod"), [(0, Outcome::Compliant, 1), (s, Outcome::Exceeds, 1)]);
    assert_eq!(outcomes("ph"), [(0, Outcome::Exceeds, 1), (0, Outcome::Compliant, 2), (3 * s, Outcome::Exceeds, 1)]);
    assert_eq!(outcomes("pesticide"), [(0, Outcome::Compliant, 1), (s, Outcome::Exceeds, 1)]);
    assert_eq!(outcomes("tds"), [(0, Outcome::Compliant, 1), (s, Outcome::Exceeds, 1)]);
    // pH 5.5 and 9.0 are both inside 5.5–9.0; 5.5 lies 0 from the lower bound, 9.0 0 from the upper:
    // the first of equals is kept as the nearest.
    let ph = &periods(&e, "f1", "ph")[1];
    assert_eq!((ph.period.end_ns - ph.period.start_ns, ph.period.value), (HOUR_NS, Some(5.5)));
    let cod = &periods(&e, "f1", "cod")[1];
    assert_eq!(cod.limit.standard.as_deref(), Some("moi-effluent-2560"));
    assert_eq!(cod.limit.clause.as_deref(), Some("5.7"));
    assert_eq!(cod.limit.describe, "≤ 120 mg/L");
    assert_eq!(cod.period.value, Some(120.5));
}

#[test]
fn hourly_availability_boundary_80_percent() {
    let (mut e, _) = engine(t0() + DAY_NS);
    // Hour 1: 48 of 60 expected (exactly 80 %): judged. Hour 2: 47 (78.3 %): insufficient.
    e.ingest(&minutes("f1", "so2", 100.0, t0(), 48));
    e.ingest(&minutes("f1", "o2", 7.0, t0(), 48));
    e.ingest(&minutes("f1", "so2", 100.0, t0() + HOUR_NS, 47));
    e.ingest(&minutes("f1", "o2", 7.0, t0() + HOUR_NS, 47));
    let p = periods(&e, "f1", "so2");
    assert_eq!(p.len(), 2);
    assert_eq!((p[0].period.valid, p[0].period.expected, p[0].period.outcome), (48, 60, Outcome::Compliant));
    assert!(close(p[0].period.availability_pct, 80.0));
    assert_eq!(p[0].period.value, Some(100.0), "at 7 % O₂ the correction factor is 1");
    assert_eq!((p[1].period.valid, p[1].period.outcome), (47, Outcome::InsufficientData));
    assert!(
        p[1].period.reason.as_deref().unwrap_or("").contains("47 valid of 60 expected"),
        "{:?}",
        p[1].period.reason
    );
}

#[test]
fn o2_correction_and_missing_o2() {
    let (mut e, _) = engine(t0() + DAY_NS);
    e.ingest(&minutes("f1", "so2", 800.0, t0(), 60));
    e.ingest(&minutes("f1", "o2", 12.0, t0(), 60));
    // Next hour: SO₂ but no O₂ at all.
    e.ingest(&minutes("f1", "so2", 800.0, t0() + HOUR_NS, 60));
    let p = periods(&e, "f1", "so2");
    // 800 × (21 − 7) / (21 − 12) = 11200 / 9 = 1244.44… ppm > 950 ppm.
    assert!(close(p[0].period.value.expect("value"), 11200.0 / 9.0), "{:?}", p[0].period.value);
    assert_eq!(p[0].period.measured, Some(800.0));
    assert_eq!(p[0].period.o2_pct, Some(12.0));
    assert_eq!(p[0].period.outcome, Outcome::Exceeds);
    assert_eq!(p[0].limit.reference_o2_pct, Some(7.0));
    assert_eq!(p[1].period.outcome, Outcome::CannotCorrect);
    assert!(p[1].period.reason.as_deref().unwrap_or("").contains("no valid O₂"), "{:?}", p[1].period.reason);
}

#[test]
fn permit_in_mg_per_nm3_over_a_bangkok_day_across_midnight() {
    // The Bangkok day of 2026-11-23 runs from 2026-11-22T17:00Z to 2026-11-23T17:00Z.
    let day_start = ts("2026-11-22T17:00:00Z");
    assert_eq!(period::day(day_start), (day_start, day_start + DAY_NS));
    assert_eq!(period::day(day_start - 1).0, day_start - DAY_NS);
    assert_eq!(period::day(ts("2026-11-23T16:59:59Z")).0, day_start);
    let (mut e, _) = engine(day_start + 2 * DAY_NS);
    // 1440 minutes from 00:00 to 23:59 Bangkok: 100 ppm on the first day, 200 on the next.
    e.ingest(&minutes("f2", "so2", 100.0, day_start, 1440));
    e.ingest(&minutes("f2", "o2", 7.0, day_start, 1440));
    e.ingest(&minutes("f2", "so2", 200.0, day_start + DAY_NS, 1440));
    e.ingest(&minutes("f2", "o2", 7.0, day_start + DAY_NS, 1440));
    let p = periods(&e, "f2", "so2");
    assert_eq!(p.len(), 2, "one period per Bangkok day");
    assert_eq!(p[0].start_local, "2026-11-23T00:00:00+07:00");
    assert_eq!((p[0].period.valid, p[0].period.expected), (1440, 1440));
    // 100 ppm × 64.066 g/mol / 24.45 L/mol = 262.0286… mg/Nm³ ≤ 500: compliant.
    assert!(close(p[0].period.value.expect("value"), 100.0 * 64.066 / 24.45));
    assert_eq!(p[0].period.outcome, Outcome::Compliant);
    // 200 ppm → 524.057… mg/Nm³ > 500.
    assert!(close(p[1].period.value.expect("value"), 200.0 * 64.066 / 24.45));
    assert_eq!(p[1].period.outcome, Outcome::Exceeds);
    assert_eq!(p[1].limit.permit.as_deref(), Some("P-42"));
    assert_eq!(p[1].limit.standard.as_deref(), Some("moi-air-2549"), "names the standard limit it replaced");
}

#[test]
fn maintenance_readings_are_excluded_but_counted() {
    let (mut e, _) = engine(t0() + DAY_NS);
    let mut so2 = minutes("f1", "so2", 100.0, t0(), 60);
    for r in so2.iter_mut().take(12) {
        r.value = 5000.0;
        r.quality = Quality::Maintenance;
    }
    let mut next = minutes("f1", "so2", 100.0, t0() + HOUR_NS, 60);
    for r in next.iter_mut().take(13) {
        r.quality = Quality::Calibration;
    }
    e.ingest(&so2);
    e.ingest(&next);
    e.ingest(&minutes("f1", "o2", 7.0, t0(), 120));
    let p = periods(&e, "f1", "so2");
    // 48 valid (mean 100, the 5000s excluded), 12 excluded: compliant.
    assert_eq!((p[0].period.valid, p[0].period.excluded, p[0].period.value), (48, 12, Some(100.0)));
    assert_eq!(p[0].period.outcome, Outcome::Compliant);
    // 47 valid: insufficient, the exclusions named.
    assert_eq!((p[1].period.valid, p[1].period.excluded, p[1].period.outcome), (47, 13, Outcome::InsufficientData));
    assert!(p[1].period.reason.as_deref().unwrap_or("").contains("13 excluded"));
}

#[test]
fn late_data_revises_a_closed_period_and_keeps_the_revision() {
    let (mut e, clock) = engine(t0() + 90 * 60 * SECOND_NS);
    e.ingest(&minutes("f1", "so2", 100.0, t0(), 30));
    e.ingest(&minutes("f1", "o2", 7.0, t0(), 30));
    e.tick();
    let p = periods(&e, "f1", "so2");
    assert_eq!((p[0].period.closed, p[0].period.outcome), (true, Outcome::InsufficientData));
    assert!(e.take_revisions().is_empty());
    clock.advance(HOUR_NS);
    // The agent back-fills the rest of the hour after the outage.
    e.ingest(&minutes("f1", "o2", 7.0, t0() + 30 * 60 * SECOND_NS, 30));
    e.ingest(&minutes("f1", "so2", 1000.0, t0() + 30 * 60 * SECOND_NS, 30));
    let p = periods(&e, "f1", "so2");
    // (30 × 100 + 30 × 1000) / 60 = 550 ppm ≤ 950.
    assert_eq!((p[0].period.valid, p[0].period.value, p[0].period.outcome), (60, Some(550.0), Outcome::Compliant));
    let revisions = e.take_revisions();
    let last = revisions.last().expect("a revision");
    assert_eq!(last.was.outcome, Outcome::InsufficientData);
    assert_eq!(last.became.outcome, Outcome::Compliant);
    assert_eq!(last.became.value, Some(550.0));
    assert_eq!(last.at_ns, t0() + 150 * 60 * SECOND_NS);
    assert!(last.reason.starts_with("late data"), "{}", last.reason);
    assert_eq!(p[0].revisions.len(), revisions.len(), "the period shows its revisions");
}

#[test]
fn judgements_do_not_depend_on_arrival_order() {
    let mut readings = minutes("f1", "so2", 0.0, t0(), 180);
    for (i, r) in readings.iter_mut().enumerate() {
        r.value = (i * 13 % 1100) as f64;
    }
    readings.extend(minutes("f1", "o2", 9.5, t0(), 170));
    let (mut a, _) = engine(t0() + 4 * HOUR_NS);
    let (mut b, _) = engine(t0() + 4 * HOUR_NS);
    a.ingest(&readings);
    a.tick();
    let mut reversed = readings.clone();
    reversed.reverse();
    for chunk in reversed.chunks(7) {
        b.ingest(chunk);
    }
    b.tick();
    let strip = |v: Vec<PeriodView>| v.into_iter().map(|p| p.period).collect::<Vec<_>>();
    let (pa, pb) = (strip(periods(&a, "f1", "so2")), strip(periods(&b, "f1", "so2")));
    assert_eq!(pa.len(), 5, "three hours with data, the empty fourth (closed), the open fifth");
    assert_eq!(pa[3].outcome, Outcome::InsufficientData);
    assert!(!pa[4].closed);
    assert_eq!(pa, pb);
}

#[test]
fn an_episode_spans_consecutive_exceeding_hours() {
    let (mut e, _) = engine(t0() + 5 * HOUR_NS);
    for (h, v) in [1000.0, 1200.0, 1100.0, 100.0].into_iter().enumerate() {
        e.ingest(&minutes("f1", "so2", v, t0() + h as i64 * HOUR_NS, 60));
    }
    e.ingest(&minutes("f1", "o2", 7.0, t0(), 240));
    e.tick();
    let episodes = e.episodes(&Filter { factory: Some("f1".into()), ..Filter::default() });
    assert_eq!(episodes.len(), 1);
    let ep = &episodes[0];
    assert_eq!((ep.start_ns, ep.end_ns, ep.periods), (t0(), t0() + 3 * HOUR_NS, 3));
    assert_eq!((ep.peak, ep.mean, ep.ongoing), (1200.0, 1100.0, false));
    assert_eq!(ep.limit.describe, "≤ 950 ppm");
}

#[test]
fn no_data_after_three_intervals_with_its_deadlines() {
    let last = t0() + 10 * 60 * SECOND_NS;
    let (mut e, clock) = engine(last);
    e.ingest(&[effluent("cod", 50.0, last)]);
    // Only outfall-1 here: the registry's other points have never reported (see
    // `a_point_that_never_reported_is_silent_since_the_engine_started`).
    let outfall = |c: &Condition| c.key.contains("/f1/outfall-1");
    clock.set(last + 180 * SECOND_NS);
    assert!(
        !e.conditions().iter().any(|c| c.kind == AlertKind::NoData && outfall(c)),
        "silent for exactly 3 intervals: not yet"
    );
    clock.set(last + 181 * SECOND_NS);
    let conditions: Vec<Condition> = e.conditions().into_iter().filter(|c| outfall(c)).collect();
    let no_data: Vec<_> = conditions.iter().filter(|c| c.kind == AlertKind::NoData).collect();
    assert_eq!(no_data.len(), 1);
    assert_eq!((no_data[0].point.as_str(), no_data[0].since_ns), ("outfall-1", last));
    // Last reading 2026-11-23 07:10 Bangkok: notify by the end of the next day (2026-11-25
    // 00:00 Bangkok = 2026-11-24T17:00Z), restore within 7 days.
    let incident = e.incidents().into_iter().find(|i| i.point == "outfall-1" && i.factory == "f1").expect("incident");
    assert_eq!(incident.notify_by_ns, ts("2026-11-24T17:00:00Z"));
    assert_eq!(incident.restore_by_ns, last + 7 * DAY_NS);
    let deadline = conditions.iter().find(|c| c.kind == AlertKind::Deadline).expect("deadline");
    assert!(deadline.key.starts_with("deadline/notify_due/"), "{}", deadline.key);
    clock.set(ts("2026-11-24T17:00:00Z"));
    let keys: Vec<_> =
        e.conditions().into_iter().filter(|c| c.kind == AlertKind::Deadline && outfall(c)).map(|c| c.key).collect();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].starts_with("deadline/notify_overdue/"), "{keys:?}");
    clock.set(last + 7 * DAY_NS);
    let overdue =
        e.conditions().into_iter().filter(|c| c.key.starts_with("deadline/restore_overdue/") && outfall(c)).count();
    assert_eq!(overdue, 1);
}

#[test]
fn a_point_that_never_reported_is_silent_since_the_engine_started() {
    let start = t0();
    let (e, clock) = engine(start);
    let registered: usize = registry().areas().iter().flat_map(|a| a.factory.iter()).map(|f| f.point.len()).sum();
    assert!(registered > 1);
    clock.set(start + 180 * SECOND_NS);
    assert!(e.incidents().is_empty(), "3 intervals of 60 s since the start: not yet");
    clock.set(start + 181 * SECOND_NS);
    let incidents = e.incidents();
    assert_eq!(incidents.len(), registered, "every registered point, none has reported");
    assert!(incidents.iter().all(|i| i.since_ns == start), "{incidents:?}");
}

#[test]
fn flatline_after_its_duration() {
    let (mut e, _) = engine(t0() + HOUR_NS);
    // 12.5 every minute from 0 to 9 min: 540 s < 600 s.
    e.ingest(&(0..10).map(|i| effluent("cod", 12.5, t0() + i * 60 * SECOND_NS)).collect::<Vec<_>>());
    let flat = |e: &Engine| e.conditions().into_iter().filter(|c| c.key.starts_with("sensor_fault/flatline/")).count();
    assert_eq!(flat(&e), 0);
    e.ingest(&[effluent("cod", 12.5, t0() + 600 * SECOND_NS)]);
    assert_eq!(flat(&e), 1);
    e.ingest(&[effluent("cod", 13.0, t0() + 660 * SECOND_NS)]);
    assert_eq!(flat(&e), 0, "a new value ends it");
}

#[test]
fn gap_record_names_its_reason_in_insufficient_periods() {
    let (mut e, _) = engine(t0() + DAY_NS);
    e.ingest(&minutes("f1", "so2", 100.0, t0(), 20));
    e.gap(GapInfo {
        factory: "f1".into(),
        point: "stack-1".into(),
        parameters: vec!["so2".into()],
        from_ns: t0() + 20 * 60 * SECOND_NS,
        to_ns: t0() + 59 * 60 * SECOND_NS,
        count: 40,
        reason: "outbox full".into(),
    });
    let p = periods(&e, "f1", "so2");
    assert_eq!(p[0].period.outcome, Outcome::InsufficientData);
    assert!(
        p[0].period
            .reason
            .as_deref()
            .unwrap_or("")
            .starts_with("insufficient data — agent buffer overflow (outbox full"),
        "{:?}",
        p[0].period.reason
    );
}

#[test]
fn an_exceedance_stays_open_through_an_outage_until_a_compliant_period() {
    let (mut e, clock) = engine(t0() + 3 * HOUR_NS);
    e.ingest(&minutes("f1", "so2", 1000.0, t0(), 60));
    e.ingest(&minutes("f1", "o2", 7.0, t0(), 60));
    e.tick();
    let exceeding = |e: &Engine| e.conditions().into_iter().filter(|c| c.kind == AlertKind::Exceedance).count();
    let outcomes: Vec<_> = periods(&e, "f1", "so2").into_iter().map(|p| p.period.outcome).collect();
    // Hour 0 exceeds; hours 1 and 2 had no data; hour 3 is open.
    assert_eq!(
        outcomes,
        [Outcome::Exceeds, Outcome::InsufficientData, Outcome::InsufficientData, Outcome::InsufficientData]
    );
    assert_eq!(exceeding(&e), 1, "no data is not compliance");
    clock.set(t0() + 4 * HOUR_NS);
    e.ingest(&minutes("f1", "so2", 100.0, t0() + 3 * HOUR_NS, 60));
    e.ingest(&minutes("f1", "o2", 7.0, t0() + 3 * HOUR_NS, 60));
    e.tick();
    assert_eq!(exceeding(&e), 0, "a compliant hour ends it");
}

#[test]
fn an_empty_or_reversed_range_yields_nothing() {
    let (mut e, _) = engine(t0() + HOUR_NS);
    e.ingest(&[effluent("cod", 130.0, t0())]);
    let reversed = Filter { from_ns: Some(t0() + 1), to_ns: Some(t0()), ..Filter::default() };
    assert!(e.periods(&reversed, usize::MAX).is_empty());
    assert!(e.episodes(&reversed).is_empty());
    let all = Filter::default();
    let p = &e.periods(&all, usize::MAX)[0];
    assert_eq!((p.period.value, p.period.outcome, p.period.closed), (Some(130.0), Outcome::Exceeds, true));
}

#[test]
fn grab_samples_keep_exceedances_not_readings() {
    let (mut e, _) = engine(t0() + DAY_NS);
    // Three hours of compliant COD a minute apart, one exceedance in the second hour.
    let mut readings: Vec<Reading> =
        (0..180).map(|i| effluent("cod", 100.0 + (i % 7) as f64, t0() + i * 60 * SECOND_NS)).collect();
    readings[90].value = 130.0;
    e.ingest(&readings);
    let cod = periods(&e, "f1", "cod");
    let summary: Vec<_> = cod.iter().map(|p| (p.period.outcome, p.period.samples, p.period.value)).collect();
    // Hour 1: minutes 60..119 without minute 90 → 59 compliant; the highest is 106 (i % 7 == 6).
    assert_eq!(
        summary,
        [
            (Outcome::Compliant, 60, Some(106.0)),
            (Outcome::Compliant, 59, Some(106.0)),
            (Outcome::Exceeds, 1, Some(130.0)),
            (Outcome::Compliant, 60, Some(106.0)),
        ]
    );
    // Kept: COD's exceedance, 2 compliant stretches around it and 3 hours — not 180 samples.
    assert_eq!(e.grab_entries(), 6);
    let more: Vec<Reading> = (180..1620).map(|i| effluent("cod", 100.0, t0() + i * 60 * SECOND_NS)).collect();
    e.ingest(&more);
    // One entry per further hour, and a stretch from the Bangkok midnight (17:00 UTC): a
    // stretch never grows across a day's start, so a closed day's file stays as it was.
    assert_eq!(e.grab_entries(), 6 + 24 + 1);
}

#[test]
fn grab_sample_episodes_split_on_a_compliant_sample_whatever_the_order() {
    let (mut e, _) = engine(t0() + DAY_NS);
    let m = 60 * SECOND_NS;
    let cod = |v: f64, minute: i64| effluent("cod", v, t0() + minute * m);
    // In order: 130, 140 | 100 | 125, then compliant.
    e.ingest(&[cod(130.0, 0), cod(140.0, 1), cod(100.0, 2), cod(125.0, 3), cod(100.0, 4), cod(100.0, 5)]);
    let cod_only = Filter { parameter: Some("cod".into()), ..Filter::default() };
    let runs = |e: &Engine| {
        e.episodes(&cod_only)
            .iter()
            .map(|x| ((x.start_ns - t0()) / m, (x.end_ns - t0()) / m, x.periods, x.peak, x.ongoing))
            .collect::<Vec<_>>()
    };
    assert_eq!(runs(&e), [(0, 1, 2, 140.0, false), (3, 3, 1, 125.0, false)]);
    let first = &e.episodes(&cod_only)[0];
    assert!(close(first.mean, 135.0));
    // Late: an exceedance at minute 10 after compliant minutes 5 and 20 arrived, then a
    // compliant minute 12, then exceedances 11 and 13 (13 joins nothing: 12 lies between).
    e.ingest(&[cod(100.0, 20)]);
    e.ingest(&[cod(150.0, 10)]);
    e.ingest(&[cod(100.0, 12), cod(121.0, 11), cod(122.0, 13)]);
    assert_eq!(
        runs(&e),
        [(0, 1, 2, 140.0, false), (3, 3, 1, 125.0, false), (10, 11, 2, 150.0, false), (13, 13, 1, 122.0, false)]
    );
    // A newest exceedance is ongoing and an alert condition since its episode's start.
    e.ingest(&[cod(131.0, 30), cod(132.0, 31)]);
    assert_eq!(runs(&e).last(), Some(&(30, 31, 2, 132.0, true)));
    let open: Vec<_> = e.conditions().into_iter().filter(|c| c.kind == AlertKind::Exceedance).collect();
    assert_eq!((open.len(), open[0].since_ns, open[0].value), (1, t0() + 30 * m, Some(132.0)));
}

#[test]
fn faults_from_runs_of_a_one_hertz_sensor() {
    let (mut e, _) = engine(t0() + DAY_NS);
    let faults = |e: &Engine, what: &str| {
        e.conditions().into_iter().filter(|c| c.key.starts_with(&format!("sensor_fault/{what}/"))).collect::<Vec<_>>()
    };
    // TDS 500 every second for 15 min, a maintenance reading (not judged) every minute.
    let mut readings: Vec<Reading> = (0..900).map(|i| effluent("tds", 500.0, t0() + i * SECOND_NS)).collect();
    for r in readings.iter_mut().step_by(60) {
        r.quality = Quality::Maintenance;
        r.value = 0.0;
    }
    e.ingest(&readings);
    let flat = faults(&e, "flatline");
    assert_eq!(flat.len(), 1);
    assert_eq!(flat[0].since_ns, t0() + SECOND_NS, "the first valid 500 (second 0 was maintenance)");
    // A late different value in the middle: only the run's ends are known, so the flat run
    // restarts at its end (second 899): no flatline until 600 s more.
    e.ingest(&[effluent("tds", 501.0, t0() + 450 * SECOND_NS)]);
    assert!(faults(&e, "flatline").is_empty());
    // Spike bound 100/min: +50 in 20 s is 150/min.
    e.ingest(&[effluent("tds", 550.0, t0() + 920 * SECOND_NS)]);
    let spike = faults(&e, "spike");
    assert_eq!((spike.len(), spike[0].value), (1, Some(550.0)));
    // +10 in one minute is not.
    e.ingest(&[effluent("tds", 560.0, t0() + 980 * SECOND_NS)]);
    assert!(faults(&e, "spike").is_empty());
}

#[test]
fn a_correction_revises_a_closed_hour_and_a_grab_sample() {
    let (mut e, _) = engine(t0() + DAY_NS);
    // SO₂ 900 ppm at 7 % O₂ for an hour (the limit is 950): compliant. One reading was 900
    // but should have read 3900: the mean becomes 900 + 3000 / 60 = 950, still within ≤ 950;
    // corrected again to 3960 → 951: exceeds.
    let mut hour = minutes("f1", "o2", 7.0, t0(), 60);
    hour.extend(minutes("f1", "so2", 900.0, t0(), 60));
    e.ingest(&hour);
    let fix = |was: f64, value: f64, parameter: &str, point: &str, t: i64| super::engine::CorrectionInfo {
        factory: "f1".into(),
        point: point.into(),
        parameter: parameter.into(),
        time_ns: t,
        was,
        value,
        quality: Quality::Valid,
        not_detected: false,
        reason: "corrected by admin token x: transcription".into(),
    };
    e.correct(&fix(900.0, 3900.0, "so2", "stack-1", t0() + 600 * SECOND_NS));
    let p = &periods(&e, "f1", "so2")[0];
    assert_eq!((p.period.outcome, p.period.value), (Outcome::Compliant, Some(950.0)));
    e.correct(&fix(3900.0, 3960.0, "so2", "stack-1", t0() + 600 * SECOND_NS));
    let p = &periods(&e, "f1", "so2")[0];
    assert_eq!((p.period.outcome, p.period.value), (Outcome::Exceeds, Some(951.0)));
    let revisions = e.take_revisions();
    assert_eq!(revisions.len(), 2, "{revisions:#?}");
    assert!(revisions[1].reason.contains("transcription"), "{:?}", revisions[1]);
    assert_eq!((revisions[1].was.outcome, revisions[1].became.outcome), (Outcome::Compliant, Outcome::Exceeds));

    // Grab samples 130, 140, 100, 125 (two episodes); correcting 100 → 135 joins them.
    let m = 60 * SECOND_NS;
    e.ingest(&[
        effluent("cod", 130.0, t0()),
        effluent("cod", 140.0, t0() + m),
        effluent("cod", 100.0, t0() + 2 * m),
        effluent("cod", 125.0, t0() + 3 * m),
        effluent("cod", 90.0, t0() + 4 * m),
    ]);
    let cod_only = Filter { parameter: Some("cod".into()), ..Filter::default() };
    assert_eq!(e.episodes(&cod_only).len(), 2);
    e.correct(&fix(100.0, 135.0, "cod", "outfall-1", t0() + 2 * m));
    let episodes = e.episodes(&cod_only);
    assert_eq!(episodes.iter().map(|x| (x.periods, x.peak)).collect::<Vec<_>>(), [(4, 140.0)]);
    assert!(close(episodes[0].mean, (130.0 + 140.0 + 135.0 + 125.0) / 4.0));
    // And back: 135 → 100 splits them again.
    e.correct(&fix(135.0, 100.0, "cod", "outfall-1", t0() + 2 * m));
    assert_eq!(e.episodes(&cod_only).len(), 2);
    let summary = periods(&e, "f1", "cod").iter().map(|p| (p.period.outcome, p.period.samples)).collect::<Vec<_>>();
    // 130 at the hour's start sorts before the hour's summary; 100 and 90 are its compliant samples.
    assert_eq!(summary, [(Outcome::Exceeds, 1), (Outcome::Compliant, 2), (Outcome::Exceeds, 1), (Outcome::Exceeds, 1)]);
}

#[test]
fn retention_forgets_judgements_before_the_cutoff_day() {
    let (mut e, _) = engine(t0() + 3 * DAY_NS);
    // Bangkok days start at 17:00 UTC; t0 is 00:00 UTC, inside the day that began at t0 − 7 h.
    let mut readings = minutes("f1", "so2", 100.0, t0(), 60);
    readings.extend(minutes("f1", "o2", 7.0, t0(), 60));
    readings.extend(minutes("f1", "so2", 100.0, t0() + DAY_NS, 60));
    readings.extend(minutes("f1", "o2", 7.0, t0() + DAY_NS, 60));
    readings.push(effluent("cod", 130.0, t0()));
    readings.push(effluent("cod", 100.0, t0() + DAY_NS));
    e.ingest(&readings);
    e.tick();
    let valid = |e: &Engine| {
        periods(e, "f1", "so2").iter().filter(|p| p.period.valid > 0).map(|p| p.period.start_ns).collect::<Vec<_>>()
    };
    assert_eq!(valid(&e), [t0(), t0() + DAY_NS]);
    let before = e.grab_entries();
    // A cutoff in the next Bangkok day (it starts at t0 + 17 h) keeps that whole day.
    e.forget_before(t0() + 20 * HOUR_NS);
    assert_eq!(valid(&e), [t0() + DAY_NS]);
    assert!(periods(&e, "f1", "so2").iter().all(|p| p.period.start_ns >= t0() + 17 * HOUR_NS));
    let cod = Filter { parameter: Some("cod".into()), ..Filter::default() };
    assert!(e.episodes(&cod).is_empty(), "the old exceedance is forgotten");
    assert!(e.grab_entries() < before);
    assert_eq!(periods(&e, "f1", "cod").iter().map(|p| p.period.samples).sum::<u32>(), 1);
}

#[test]
fn readings_measured_by_store_id_are_judged_as_readings_by_name() {
    // The store gives each series an id when first seen; a registered point's series and an
    // unregistered one (skipped) alike.
    let batch1 = vec![
        effluent("cod", 130.0, t0()),
        effluent("ph", 7.0, t0()),
        Reading::new(Kind::Effluent, "f9", "outfall-1", "cod", 500.0, t0()),
    ];
    let batch2 = vec![effluent("ph", 10.0, t0() + SECOND_NS), effluent("cod", 100.0, t0() + SECOND_NS)];
    let (mut by_strings, _) = engine(t0() + 2 * SECOND_NS);
    let (mut by_ids, _) = engine(t0() + 2 * SECOND_NS);
    by_strings.ingest(&batch1);
    by_strings.ingest(&batch2);
    // Ids as a store gives them, and the names it keeps for each.
    let keys = ["f1/outfall-1/cod", "f1/outfall-1/ph", "f9/outfall-1/cod"];
    let key_of = |id: u32| {
        let mut names = keys.get(id as usize)?.split('/').map(str::to_string);
        Some(SeriesId { factory: names.next()?.into(), point: names.next()?.into(), parameter: names.next()?.into() })
    };
    let measured = |batch: &[Reading], ids: &[u32]| -> Vec<Measured> {
        let each = batch.iter().zip(ids);
        each.map(|(r, &series)| Measured {
            series,
            time_ns: r.time_ns,
            value: r.value,
            quality: r.quality,
            below_detection_limit: r.below_detection_limit,
        })
        .collect()
    };
    by_ids.ingest_stored(&measured(&batch1, &[0, 1, 2]), key_of);
    by_ids.ingest_stored(&measured(&batch2, &[1, 0]), key_of);
    let all = Filter::default();
    let periods = by_ids.periods(&all, 100);
    assert_eq!(periods, by_strings.periods(&all, 100));
    let judged: Vec<_> = periods.iter().map(|p| (p.parameter.as_str(), p.period.value, p.period.outcome)).collect();
    assert!(judged.contains(&("cod", Some(130.0), Outcome::Exceeds)), "{judged:?}");
    assert!(judged.contains(&("cod", Some(100.0), Outcome::Compliant)), "{judged:?}");
    assert!(judged.contains(&("ph", Some(10.0), Outcome::Exceeds)), "{judged:?}");
    assert!(judged.iter().all(|(p, _, _)| *p == "cod" || *p == "ph"));
    assert_eq!(by_ids.take_flashes(), by_strings.take_flashes());
}

#[test]
fn periods_at_the_ends_of_time_hold_their_instant_without_overflow() {
    use eitwatch_config::standards::Averaging;
    // No overflow anywhere; within ±2^62 ns (1824–2116) the period holds its instant.
    for t in [i64::MIN, i64::MIN + 1, -(1 << 62), -1, 0, 1 << 62, i64::MAX - 1, i64::MAX] {
        for averaging in [Averaging::Hourly, Averaging::Daily] {
            let (start, end) = period::bounds(averaging, t);
            assert!(start < end, "{averaging:?} of {t}: [{start}, {end})");
            if t.unsigned_abs() <= 1 << 62 {
                assert!(start <= t && t < end, "{averaging:?} of {t}: [{start}, {end})");
            }
        }
    }
    // Away from the ends: exact Bangkok days and hours.
    assert_eq!(period::day(t0()), (t0() - 7 * HOUR_NS, t0() + 17 * HOUR_NS));
    assert_eq!(period::bounds(Averaging::Hourly, t0() + 1), (t0(), t0() + HOUR_NS));
}

/// Everything the engine answers, as JSON (period revisions left out: they come from their
/// log, which a restart reads back either way), in a fixed order.
fn answers(e: &Engine) -> serde_json::Value {
    let all = Filter::default();
    let mut periods: Vec<serde_json::Value> = e
        .periods(&all, usize::MAX)
        .into_iter()
        .map(|mut p| {
            p.revisions.clear();
            serde_json::to_value(p).expect("json")
        })
        .collect();
    periods.sort_by_key(|p| p.to_string());
    let mut episodes: Vec<serde_json::Value> =
        e.episodes(&all).iter().map(|x| serde_json::to_value(x).expect("json")).collect();
    episodes.sort_by_key(|p| p.to_string());
    let mut conditions: Vec<serde_json::Value> =
        e.conditions().iter().map(|x| serde_json::to_value(x).expect("json")).collect();
    conditions.sort_by_key(|p| p.to_string());
    serde_json::json!({
        "periods": periods,
        "episodes": episodes,
        "availability": e.availability(&all),
        "conditions": conditions,
        "status": e.status(&all),
        "incidents": e.incidents(),
    })
}

/// Readings of every kind the engine keeps state for: hourly O₂-corrected emissions, a
/// daily permit, grab samples exceeding and not, maintenance, a sensor run, a gap.
fn mixed_day(day: i64) -> (Vec<Reading>, GapInfo) {
    let start = t0() + day * DAY_NS;
    let mut r = minutes("f1", "so2", 900.0 + day as f64 * 40.0, start, 120);
    r.extend(minutes("f1", "o2", 7.0, start, 120));
    r.extend(minutes("f2", "so2", 400.0 + day as f64 * 50.0, start, 90));
    r.extend(minutes("f2", "o2", 8.0, start, 90));
    for i in 0..30 {
        let t = start + i * 60 * SECOND_NS;
        r.push(effluent("cod", if i % 10 == 3 { 150.0 } else { 90.0 + i as f64 }, t));
        r.push(effluent("ph", 7.0, t));
    }
    let mut m = effluent("tds", 5000.0, start + 5 * SECOND_NS);
    m.quality = Quality::Maintenance;
    r.push(m);
    let gap = GapInfo {
        factory: "f1".into(),
        point: "stack-1".into(),
        parameters: vec!["so2".into()],
        from_ns: start + 3 * HOUR_NS,
        to_ns: start + 4 * HOUR_NS,
        count: 60,
        reason: format!("outbox full on day {day}"),
    };
    (r, gap)
}

#[test]
fn a_checkpoint_plus_what_came_after_equals_a_rebuild_from_everything() {
    use super::checkpoint::Applied;
    let (mut live, clock) = engine(t0() + 2 * DAY_NS);
    let mut everything = Vec::new();
    let mut gaps = Vec::new();
    for day in 0..2 {
        let (r, g) = mixed_day(day);
        live.ingest(&r);
        live.gap(g.clone());
        everything.extend(r);
        gaps.push(g);
    }
    live.tick();
    let applied = Applied { store: crate::store::LogPosition { segment: 7, offset: 4242 }, gaps: 2, corrections: 0 };
    let bytes = live.checkpoint(&applied);

    // After the checkpoint: a third day, and late data for day 0's third so2 hour, judged
    // (closed, without data) before the checkpoint: 60 readings at 2000 ppm.
    clock.set(t0() + 3 * DAY_NS + HOUR_NS);
    let (mut after, g) = mixed_day(2);
    after.extend(minutes("f1", "so2", 2000.0, t0() + 2 * HOUR_NS, 60));
    after.extend(minutes("f1", "o2", 7.0, t0() + 2 * HOUR_NS, 60));
    let hour = |e: &Engine| {
        periods(e, "f1", "so2")
            .into_iter()
            .find(|p| p.limit.averaging == Averaging::Hourly && p.period.start_ns == t0() + 2 * HOUR_NS)
            .expect("day 0's third hour")
            .period
    };
    assert_eq!((hour(&live).valid, hour(&live).outcome), (0, Outcome::InsufficientData));
    everything.extend(after.clone());
    gaps.push(g.clone());

    // A restart: the checkpoint, then what was stored after it, as a replay.
    let resumed_clock = Arc::new(ManualClock::new(t0() + 3 * DAY_NS + HOUR_NS));
    let mut resumed = Engine::new(registry(), resumed_clock.clone(), Settings::default());
    assert_eq!(resumed.restore(&bytes), Ok(applied));
    resumed.set_replaying(true);
    for chunk in after.chunks(97) {
        resumed.ingest(chunk);
    }
    resumed.gap(g);
    resumed.tick();
    resumed.set_replaying(false);

    // A rebuild from every reading and gap, in another order.
    let mut rebuilt = Engine::new(registry(), resumed_clock, Settings::default());
    rebuilt.set_replaying(true);
    everything.reverse();
    rebuilt.ingest(&everything);
    for g in gaps {
        rebuilt.gap(g);
    }
    rebuilt.tick();
    rebuilt.set_replaying(false);

    let (a, b) = (answers(&resumed), answers(&rebuilt));
    assert_eq!(a, b);
    // The late hour: 60 valid readings of 2000 ppm, beyond 950 ppm.
    let late = hour(&resumed);
    assert_eq!((late.valid, late.measured, late.outcome), (60, Some(2000.0), Outcome::Exceeds));
    assert!(a["episodes"].as_array().is_some_and(|e| !e.is_empty()), "exceedances to compare: {a}");
    assert!(a["conditions"].as_array().is_some_and(|e| !e.is_empty()));
}

#[test]
fn a_checkpoint_restores_byte_for_byte_and_refuses_damage_and_changed_limits() {
    use super::checkpoint::Applied;
    let (mut e, _) = engine(t0() + 2 * DAY_NS);
    let (r, g) = mixed_day(0);
    e.ingest(&r);
    e.gap(g);
    e.tick();
    let applied = Applied::default();
    let bytes = e.checkpoint(&applied);
    assert_eq!(&bytes[..8], b"EITWCKPT");
    assert_eq!(u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]), 3, "format version 3");
    let (mut again, _) = engine(t0() + 2 * DAY_NS);
    again.restore(&bytes).expect("restores");
    assert_eq!(again.checkpoint(&applied), bytes, "what is restored encodes to the same bytes");
    assert_eq!(answers(&again), answers(&e));

    let mut damaged = bytes.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    let (mut fresh, _) = engine(t0());
    assert_eq!(fresh.restore(&damaged), Err("CRC-32 mismatch: the file is damaged".to_string()));
    let mut newer = bytes.clone();
    newer[8] = 4;
    assert_eq!(fresh.restore(&newer), Err("format version 4, this build reads 1 to 3".to_string()));
    assert_eq!(fresh.restore(&bytes[..10]), Err("not an engine checkpoint (no magic \"EITWCKPT\")".to_string()));

    // f2's permit changes: its series' checkpoint is not used.
    let changed = FACTORIES.replace("max = 500.0", "max = 450.0");
    let clock = Arc::new(ManualClock::new(t0()));
    let mut other = Engine::new(crate::testkit::registry(&changed), clock, Settings::default());
    let error = other.restore(&bytes).expect_err("changed limits");
    assert!(error.starts_with("f2/stack-1/so2: its point's settings or limits changed"), "{error}");
}

/// An engine keeping `recent_days` in memory, its older days in `dir`.
fn archiving(now_ns: i64, dir: &std::path::Path, recent_days: u32) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(now_ns));
    let settings = Settings { recent_days, ..Settings::default() };
    let mut e = Engine::new(registry(), clock.clone(), settings);
    e.archive_to(Arc::new(super::days::DayFiles::open(dir).expect("judgements dir")));
    (e, clock)
}

/// Writes the closed days' files and evicts the old ones, as the monitor does at a
/// checkpoint; returns how many files were written.
fn evict_to_disk(e: &mut Engine, dir: &std::path::Path) -> usize {
    let files = super::days::DayFiles::open(dir).expect("judgements dir");
    let days = e.days_to_write();
    for (day, generation, bytes) in &days {
        files.write(*day, *generation, bytes).expect("write a day");
        e.day_written(*day, *generation, bytes);
    }
    e.evict();
    days.len()
}

#[test]
fn old_days_go_to_disk_memory_keeps_the_recent_ones_and_answers_do_not_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 60 days, each: 4 hours of so2 and o2 at one a minute, day 10's second hour exceeding,
    // a COD grab sample an hour (two exceeding on day 20). Then "now" is day 60.
    let now = t0() + 60 * DAY_NS;
    let (mut kept, _) = engine(now);
    let (mut e, _) = archiving(now, dir.path(), 3);
    for day in 0..60 {
        let start = t0() + day * DAY_NS;
        let mut r = Vec::new();
        for h in 0..4 {
            let so2 = if (day, h) == (10, 1) { 1200.0 } else { 100.0 };
            r.extend(minutes("f1", "so2", so2, start + h * HOUR_NS, 60));
            r.extend(minutes("f1", "o2", 7.0, start + h * HOUR_NS, 60));
            let cod = if day == 20 && h < 2 { 150.0 } else { 80.0 };
            r.push(effluent("cod", cod, start + h * HOUR_NS));
        }
        kept.ingest(&r);
        e.ingest(&r);
    }
    kept.tick();
    e.tick();
    let before = e.entries_in_memory();
    // Today is day 60 (Bangkok days start at 17:00 UTC): days 58, 59, 60 are the recent 3.
    // Every closed day is written: the 58 evicted (Bangkok days -1 … 56 hold readings) and
    // the 2 closed recent ones, which stay in memory too.
    let written = evict_to_disk(&mut e, dir.path());
    assert_eq!(written, 60);
    let files = std::fs::read_dir(dir.path()).expect("dir").count();
    assert_eq!(files, 60);
    assert_eq!(e.archived().len(), 58, "on disk only");
    assert_eq!(e.named_days().len(), 60);
    assert_eq!(evict_to_disk(&mut e, dir.path()), 0, "nothing changed: no file written again");
    // A gap record for a recent closed day (in memory, its file written): its empty hours
    // are judged again with the gap's reason, and the day written again.
    let gap = GapInfo {
        factory: "f1".into(),
        point: "stack-1".into(),
        parameters: vec!["so2".into()],
        from_ns: t0() + 58 * DAY_NS + 5 * HOUR_NS,
        to_ns: t0() + 58 * DAY_NS + 6 * HOUR_NS,
        count: 60,
        reason: "outbox full".into(),
    };
    kept.gap(gap.clone());
    e.gap(gap);
    assert_eq!(evict_to_disk(&mut e, dir.path()), 1, "day 58 again");
    assert_eq!(evict_to_disk(&mut e, dir.path()), 0);
    let after = e.entries_in_memory();
    assert!(after * 15 < before, "memory keeps the recent days: {after} entries of {before}");
    // What remains: every hour of the last 3 days for so2's hourly track, nothing older.
    let oldest_in_memory = periods(&e, "f1", "so2").first().map(|p| p.period.start_ns);
    assert_eq!(oldest_in_memory, Some(t0()), "queries still reach the days on disk");
    assert_eq!(answers(&e), answers(&kept));

    // Late data for day 5 (on disk), hour 6 (judged empty): loaded back, judged, a revision.
    let late_start = t0() + 5 * DAY_NS + 6 * HOUR_NS;
    let mut late = minutes("f1", "so2", 1000.0, late_start, 60);
    late.extend(minutes("f1", "o2", 7.0, late_start, 60));
    kept.ingest(&late);
    e.ingest(&late);
    let revisions = e.take_revisions();
    assert_eq!(revisions.len(), kept.take_revisions().len());
    let hourly: Vec<_> = revisions.iter().filter(|r| r.start_ns == late_start).collect();
    assert!(!hourly.is_empty(), "{revisions:?}");
    assert!(hourly.iter().all(|r| r.was.outcome == Outcome::InsufficientData && r.became.valid == 60));
    assert!(!e.archived().contains_key(&period::day(late_start).0), "day 5 is back in memory");
    kept.tick();
    e.tick();
    assert_eq!(answers(&e), answers(&kept));
    // The next eviction writes day 5 again, as a new generation.
    assert_eq!(evict_to_disk(&mut e, dir.path()), 1);
    assert_eq!(answers(&e), answers(&kept));

    // A checkpoint names the days on disk; a restored engine answers the same.
    let bytes = e.checkpoint(&super::checkpoint::Applied::default());
    let (mut restored, _) = archiving(now, dir.path(), 3);
    restored.restore(&bytes).expect("restores");
    assert_eq!(restored.archived(), e.archived());
    assert_eq!(answers(&restored), answers(&kept));

    // Retention drops whole days on disk.
    e.forget_before(t0() + 30 * DAY_NS);
    assert!(e.archived().keys().all(|d| *d >= period::day(t0() + 30 * DAY_NS).0));
    let files = super::days::DayFiles::open(dir.path()).expect("dir");
    assert_eq!(
        files.remove_others(&e.named_days()).expect("remove"),
        32,
        "days before day 30, and the first generations of days 5 and 58"
    );
}

#[test]
fn a_version_1_checkpoint_and_day_files_are_read() {
    use super::checkpoint::Applied;
    // Made by the engine before format 2 (see testdata/README.md).
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/compliance/testdata/v1");
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(fixture.join("judgements")).expect("fixture") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    let version = |bytes: &[u8]| u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let now = t0() + 4 * DAY_NS + HOUR_NS;
    // What the fixture's engine was fed, into one of this version (the conditions behind
    // alerts are found in the recent days: it keeps as many).
    let kept_dir = tempfile::tempdir().expect("tempdir");
    let (mut kept, _) = archiving(now, kept_dir.path(), 2);
    for day in 0..4 {
        let (r, g) = mixed_day(day);
        kept.ingest(&r);
        kept.gap(g);
    }
    kept.tick();
    kept.take_revisions();
    assert_eq!(evict_to_disk(&mut kept, kept_dir.path()), 4);

    let (mut e, _) = archiving(now, dir.path(), 2);
    let v1 = std::fs::read(fixture.join("compliance.checkpoint")).expect("fixture");
    assert_eq!(version(&v1), 1);
    let applied = e.restore(&v1).expect("a version 1 checkpoint restores");
    let position = crate::store::LogPosition { segment: 3, offset: 99 };
    assert_eq!(applied, Applied { store: position, gaps: 4, corrections: 0 });
    assert_eq!(e.archived().len(), 3, "days 0, 1 and 2 on disk, in version 1 files");
    assert_eq!(answers(&e), answers(&kept));

    // The next checkpoint is of this build's format: day 3 (closed, in memory) gets its file; the days on
    // disk keep theirs.
    assert_eq!(evict_to_disk(&mut e, dir.path()), 1);
    let bytes = e.checkpoint(&applied);
    assert_eq!(version(&bytes), super::checkpoint::VERSION);
    let (mut again, _) = archiving(now, dir.path(), 2);
    assert_eq!(again.restore(&bytes), Ok(applied));
    assert_eq!(again.named_days().len(), 4);
    assert_eq!(answers(&again), answers(&kept));

    // Late data for day 1 (a version 1 file): loaded back and revised as where it never left
    // memory, then written again as version 2.
    let late_start = t0() + DAY_NS + 2 * HOUR_NS;
    let mut late = minutes("f1", "so2", 2000.0, late_start, 60);
    late.extend(minutes("f1", "o2", 7.0, late_start, 60));
    kept.ingest(&late);
    again.ingest(&late);
    let revisions = again.take_revisions();
    assert!(
        revisions.iter().any(|r| r.start_ns == late_start && r.became.outcome == Outcome::Exceeds),
        "{revisions:?}"
    );
    assert_eq!(revisions, kept.take_revisions());
    kept.tick();
    again.tick();
    assert_eq!(answers(&again), answers(&kept));
    let files = super::days::DayFiles::open(dir.path()).expect("dir");
    let before = again.named_days();
    assert_eq!(evict_to_disk(&mut again, dir.path()), 1, "day 1 only");
    assert_eq!(evict_to_disk(&mut kept, kept_dir.path()), 1);
    assert_eq!(answers(&again), answers(&kept));
    let (day1, generation) =
        again.named_days().into_iter().find(|(d, g)| before.get(d) != Some(g)).expect("day 1's new generation");
    assert_eq!(day1, period::day(late_start).0);
    assert_eq!(version(&files.read(day1, generation).expect("day 1")), super::checkpoint::VERSION);
}

#[test]
fn a_version_2_checkpoint_and_day_files_are_read() {
    use super::checkpoint::{Applied, VERSION};
    // Made by the engine of format 2 (see testdata/README.md).
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/compliance/testdata/v2");
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(fixture.join("judgements")).expect("fixture") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    let version = |bytes: &[u8]| u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let now = t0() + 4 * DAY_NS + HOUR_NS;
    let kept_dir = tempfile::tempdir().expect("tempdir");
    let (mut kept, _) = archiving(now, kept_dir.path(), 3);
    for day in 0..4 {
        let (r, g) = mixed_day(day);
        kept.ingest(&r);
        kept.gap(g);
    }
    kept.tick();
    kept.take_revisions();
    assert_eq!(evict_to_disk(&mut kept, kept_dir.path()), 4);

    let (mut e, _) = archiving(now, dir.path(), 3);
    let v2 = std::fs::read(fixture.join("compliance.checkpoint")).expect("fixture");
    assert_eq!(version(&v2), 2);
    let applied = e.restore(&v2).expect("a version 2 checkpoint restores");
    let position = crate::store::LogPosition { segment: 3, offset: 99 };
    assert_eq!(applied, Applied { store: position, gaps: 4, corrections: 0 });
    assert_eq!(e.archived().len(), 2, "days 0 and 1 on disk only");
    assert_eq!(e.named_days().len(), 3, "and day 2 read back into memory");
    assert_eq!(answers(&e), answers(&kept));

    // The next checkpoint is of this build's format: day 3 (closed, in memory) gets its
    // file; the days on disk keep theirs.
    assert_eq!(evict_to_disk(&mut e, dir.path()), 1);
    let bytes = e.checkpoint(&applied);
    assert_eq!(version(&bytes), VERSION);
    let (mut again, _) = archiving(now, dir.path(), 3);
    assert_eq!(again.restore(&bytes), Ok(applied));
    assert_eq!(again.named_days().len(), 4);
    assert_eq!(answers(&again), answers(&kept));

    // Late data for day 0 (a version 2 file on disk): loaded back and revised as where it
    // never left memory, then written again in this build's format.
    let late_start = t0() + 2 * HOUR_NS;
    let mut late = minutes("f1", "so2", 2000.0, late_start, 60);
    late.extend(minutes("f1", "o2", 7.0, late_start, 60));
    kept.ingest(&late);
    again.ingest(&late);
    let revisions = again.take_revisions();
    assert!(
        revisions.iter().any(|r| r.start_ns == late_start && r.became.outcome == Outcome::Exceeds),
        "{revisions:?}"
    );
    assert_eq!(revisions, kept.take_revisions());
    kept.tick();
    again.tick();
    assert_eq!(answers(&again), answers(&kept));
    let files = super::days::DayFiles::open(dir.path()).expect("dir");
    let before = again.named_days();
    // Day 0, and day 2: in memory, late data touched it, and its file is of format 2.
    assert_eq!(evict_to_disk(&mut again, dir.path()), 2);
    assert_eq!(evict_to_disk(&mut kept, kept_dir.path()), 1);
    assert_eq!(answers(&again), answers(&kept));
    let (day0, generation) =
        again.named_days().into_iter().find(|(d, g)| before.get(d) != Some(g)).expect("day 0's new generation");
    assert_eq!(day0, period::day(late_start).0);
    assert_eq!(version(&files.read(day0, generation).expect("day 0")), VERSION);
}

/// Writes a data directory's compliance files as the fixtures under `testdata/` were made
/// (see its README) into `FIXTURE_DIR`: the format this build writes, for the next one.
#[test]
#[ignore = "writes the compliance files of this build's format to FIXTURE_DIR"]
fn write_format_fixture() {
    use super::checkpoint::Applied;
    let dir = std::path::PathBuf::from(std::env::var("FIXTURE_DIR").expect("FIXTURE_DIR"));
    let judgements = dir.join("judgements");
    std::fs::create_dir_all(&judgements).expect("dir");
    let (mut e, _) = archiving(t0() + 4 * DAY_NS + HOUR_NS, &judgements, 3);
    for day in 0..4 {
        let (r, g) = mixed_day(day);
        e.ingest(&r);
        e.gap(g);
    }
    e.tick();
    e.take_revisions();
    let days = e.days_to_write();
    for (day, generation, bytes) in days.iter().filter(|(d, _, _)| *d < t0() + 2 * DAY_NS) {
        super::days::DayFiles::open(&judgements).expect("dir").write(*day, *generation, bytes).expect("write");
        e.day_written(*day, *generation, bytes);
    }
    e.evict();
    let applied = Applied { store: crate::store::LogPosition { segment: 3, offset: 99 }, gaps: 4, corrections: 0 };
    std::fs::write(dir.join("compliance.checkpoint"), e.checkpoint(&applied)).expect("write");
}

/// The bench's realistic effluent walk (tests/src/bin/eitwatch-load.rs), for the file sizes.
struct SimWalk {
    rng: u64,
    steps: i64,
    level: i64,
    low: i64,
    high: i64,
    hold: u32,
}

impl SimWalk {
    fn rand(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn new(series: u64, level: f64, decimals: u32, low: f64, high: f64) -> SimWalk {
        let scale = 10f64.powi(decimals as i32);
        let mut w = SimWalk {
            rng: series.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed,
            steps: 0,
            level: 0,
            low: (low * scale).round() as i64,
            high: (high * scale).round() as i64,
            hold: 0,
        };
        let level = (level * scale).round() as i64;
        let spread = (level / 5).max(1);
        let level = level - spread + (w.rand() % (2 * spread as u64 + 1)) as i64;
        w.steps = level;
        w.level = level;
        w
    }
    fn next(&mut self) -> i64 {
        if self.hold > 0 {
            self.hold -= 1;
            return self.steps;
        }
        let r = self.rand();
        if r % 100 == 0 {
            self.hold = 5 + (r >> 8) as u32 % 56;
            return self.steps;
        }
        let noise = ((r >> 16) % 7) as i64 - 3;
        let pull = (self.level - self.steps) / 64;
        self.steps = (self.steps + noise + pull).clamp(self.low, self.high);
        self.steps
    }
}

#[test]
#[ignore = "writes a realistic fortnight's judgement files to SIM_DIR, for their sizes"]
fn realistic_fortnight_files() {
    const PARAMS: [(&str, f64, u32, f64, f64); 10] = [
        ("cod", 60.0, 1, 5.0, 400.0),
        ("bod", 12.0, 1, 1.0, 100.0),
        ("ph", 7.2, 2, 5.5, 9.5),
        ("tss", 25.0, 1, 1.0, 200.0),
        ("tds", 800.0, 0, 100.0, 3000.0),
        ("temp", 30.0, 1, 20.0, 45.0),
        ("flow", 120.0, 1, 0.0, 600.0),
        ("oil_grease", 2.0, 1, 0.0, 20.0),
        ("tkn", 40.0, 1, 1.0, 200.0),
        ("zn", 1.5, 2, 0.0, 10.0),
    ];
    let factories: usize = std::env::var("SIM_FACTORIES").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let days: i64 = 14;
    let mut toml = String::new();
    for f in 0..factories {
        toml.push_str(&format!(
            "[[area.factory]]\nid = \"f{:04}\"\nname = \"F\"\ncategory = 3\n[[area.factory.point]]\nid = \"outfall-1\"\nkind = \"effluent\"\nparameters = [\"cod\", \"bod\", \"ph\", \"tss\", \"tds\", \"temp\", \"flow\", \"oil_grease\", \"tkn\", \"zn\"]\n\n",
            f + 1
        ));
    }
    let dir = std::env::var("SIM_DIR")
        .map_or_else(|_| std::env::temp_dir().join("eitwatch-judgement-sizes"), std::path::PathBuf::from);
    let _ = std::fs::remove_dir_all(&dir);
    let judgements = dir.join("judgements");
    std::fs::create_dir_all(&judgements).expect("dir");
    let end = t0() + days * DAY_NS;
    let clock = Arc::new(ManualClock::new(end + 60 * SECOND_NS));
    let mut e = Engine::new(crate::testkit::registry(&toml), clock, Settings::default());
    e.archive_to(Arc::new(super::days::DayFiles::open(&judgements).expect("dir")));
    let per_series = days * 1440;
    let start = end - (per_series - 1) * 60 * SECOND_NS;
    let started = std::time::Instant::now();
    for f in 0..factories {
        let mut walks: Vec<SimWalk> =
            PARAMS.iter().enumerate().map(|(p, i)| SimWalk::new((f * 16 + p) as u64, i.1, i.2, i.3, i.4)).collect();
        let mut batch = Vec::new();
        for i in 0..per_series {
            let t = start + i * 60 * SECOND_NS;
            for (p, w) in walks.iter_mut().enumerate() {
                let v = w.next() as f64 / 10f64.powi(PARAMS[p].2 as i32);
                batch.push(Reading::new(Kind::Effluent, &format!("f{:04}", f + 1), "outfall-1", PARAMS[p].0, v, t));
            }
            if batch.len() >= 50_000 {
                e.ingest(&batch);
                batch.clear();
            }
        }
        e.ingest(&batch);
    }
    e.tick();
    eprintln!("ingest: {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let written = evict_to_disk(&mut e, &judgements);
    eprintln!("day files written: {written} in {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let again = evict_to_disk(&mut e, &judgements);
    eprintln!("steady checkpoint's day files: {again} written in {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let bytes = e.checkpoint(&super::checkpoint::Applied::default());
    eprintln!("checkpoint: {} bytes in {:?}", bytes.len(), started.elapsed());
    std::fs::write(dir.join("compliance.checkpoint"), &bytes).expect("write");
}
