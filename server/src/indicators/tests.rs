//! A month (November 2026, Bangkok) of hand-built hourly readings for a small area, and
//! every indicator's expected value computed by hand below. A manual clock, no sleeps.
//!
//! Area a1:
//! - f1 (category 3), outfall-1 [cod, bod, flow], one reading an hour: cod 100 (exceeding
//!   150 on day 4 at 10, 11, 12 h and 130 on day 20 at 5 h), bod 10 (25 on day 4 at 11 h),
//!   flow 50 m³/h (suspect on day 2 at 3 h); a maintenance window on day 10, 8–13 h (6
//!   readings of each parameter); nothing at all on days 15 and 16.
//! - f2 (category 2), outfall-1 [cod] without flow: cod 80 every hour of the month.
//! - f3 (category 3), stack-1 [tsp, o2, flow], production process without combustion (tsp ≤
//!   400 mg/Nm³ at 7 % O₂, hourly): tsp 100 (500 on day 7 at 0 and 1 h), o2 7 %, flow
//!   10 000 m³/h; nothing on day 25, 0–5 h.
//!
//! Area a2: f9 with a COD of 500 all month, which no a1 figure may include.
//! The previous 30 days (2–31 October): f2 only, on 31 October: cod 80 every hour but 150
//! at 5 and 6 h.

use std::io::Cursor;
use std::sync::Arc;

use calamine::{Data, Reader as _, Xlsx};
use eitwatch_config::indicators::{Definition, DefinitionFilter, IndicatorKind, IndicatorsFile};
use eitwatch_config::reading::{Kind, Quality, Reading};
use eitwatch_config::site::Registry;

use super::compute::{Indicator, Inputs, Selection, Value};
use super::{Range, Report, export, report};
use crate::compliance::period::{DAY_NS, HOUR_NS};
use crate::compliance::{Engine, ManualClock, Settings};

/// The factories of area a1 (see [`crate::testkit::config`]).
const FACTORIES: &str = r#"
[[area.factory]]
id = "f1"
name = "Factory one"
category = 3
[[area.factory.point]]
id = "outfall-1"
kind = "effluent"
parameters = ["cod", "bod", "flow"]
expected_interval_s = 3600
[area.factory.point.faults]
flatline_after_s = 0

[[area.factory]]
id = "f2"
name = "Factory two"
category = 2
[[area.factory.point]]
id = "outfall-1"
kind = "effluent"
parameters = ["cod"]
expected_interval_s = 3600
[area.factory.point.faults]
flatline_after_s = 0

[[area.factory]]
id = "f3"
name = "Factory three"
category = 3
[[area.factory.point]]
id = "stack-1"
kind = "emission"
parameters = ["tsp", "o2", "flow"]
expected_interval_s = 3600
emission = { source = "production_process", combustion = false }
[area.factory.point.faults]
flatline_after_s = 0

[[area]]
id = "a2"
name_en = "Area two"
name_th = "พื้นที่สอง"
province = "Chonburi"

[[area.factory]]
id = "f9"
name = "Factory nine"
category = 3
[[area.factory.point]]
id = "outfall-1"
kind = "effluent"
parameters = ["cod", "flow"]
expected_interval_s = 3600
"#;

fn ts(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().expect("timestamp").as_nanosecond() as i64
}

/// Day `d` (0 = 1 November), hour `h`, Bangkok.
fn at(d: i64, h: i64) -> i64 {
    ts("2026-10-31T17:00:00Z") + d * DAY_NS + h * HOUR_NS
}

fn registry() -> Registry {
    crate::testkit::registry(FACTORIES)
}

fn month_readings() -> Vec<Reading> {
    let eff = |f: &str, p: &str, v: f64, t: i64| Reading::new(Kind::Effluent, f, "outfall-1", p, v, t);
    let stack = |p: &str, v: f64, t: i64| Reading::new(Kind::Emission, "f3", "stack-1", p, v, t);
    let mut out = Vec::new();
    for d in 0..30 {
        for h in 0..24 {
            let t = at(d, h);
            // f1
            if d != 15 && d != 16 {
                let maintenance = d == 10 && (8..=13).contains(&h);
                let cod = match (d, h) {
                    (4, 10..=12) => 150.0,
                    (20, 5) => 130.0,
                    _ => 100.0,
                };
                let bod = if (d, h) == (4, 11) { 25.0 } else { 10.0 };
                let mut flow = eff("f1", "flow", 50.0, t);
                if (d, h) == (2, 3) {
                    flow = flow.with_quality(Quality::Suspect);
                }
                for mut r in [eff("f1", "cod", cod, t), eff("f1", "bod", bod, t), flow] {
                    if maintenance {
                        r = r.with_quality(Quality::Maintenance);
                    }
                    out.push(r);
                }
            }
            // f2
            out.push(eff("f2", "cod", 80.0, t));
            // f3
            if !(d == 25 && h <= 5) {
                let tsp = if d == 7 && h <= 1 { 500.0 } else { 100.0 };
                out.extend([stack("tsp", tsp, t), stack("o2", 7.0, t), stack("flow", 10_000.0, t)]);
            }
            // f9, another area
            out.push(eff("f9", "cod", 500.0, t));
            out.push(eff("f9", "flow", 100.0, t));
        }
    }
    // The previous period: 31 October.
    for h in 0..24 {
        let v = if h == 5 || h == 6 { 150.0 } else { 80.0 };
        out.push(eff("f2", "cod", v, at(-1, h)));
    }
    out
}

/// The engine after the month, its clock at 1 December 07:00 Bangkok.
fn engine() -> Engine {
    let clock = Arc::new(ManualClock::new(at(30, 7)));
    let mut e = Engine::new(registry(), clock, Settings::default());
    e.ingest(&month_readings());
    e.tick();
    e
}

fn inputs(e: &Engine, sel: &Selection, range: &Range) -> Inputs {
    let registry = registry();
    let mut i = Inputs::gather(|| e, &registry, sel, range);
    let readings = month_readings();
    let mut fetch = |f: &str, p: &str, c: &str, from: i64, to: i64| {
        readings
            .iter()
            .filter(|r| r.factory == f && r.point == p && r.parameter == c && r.quality.is_judged())
            .filter(|r| r.time_ns >= from && r.time_ns < to)
            .map(|r| (r.time_ns, r.value))
            .collect()
    };
    i.gather_loads(&registry, sel, range, &mut fetch);
    i
}

fn run(defs: &IndicatorsFile, sel: &Selection) -> Report {
    let e = engine();
    let range = Range::parse_period("2026-11").expect("period");
    let (now, before) = (inputs(&e, sel, &range), inputs(&e, sel, &range.previous()));
    let mut seen = Vec::new();
    let r = report((defs, "test"), &registry(), sel, &range, &now, &before, &mut |i, n, id| {
        seen.push(format!("{i}/{n} {id}"))
    });
    assert_eq!(seen.len(), defs.indicator.len(), "progress is reported per indicator");
    r
}

fn a1() -> Selection {
    Selection { area: Some("a1".into()), ..Selection::default() }
}

fn indicator<'a>(r: &'a Report, id: &str) -> &'a Indicator {
    r.indicators.iter().find(|i| i.id == id).unwrap_or_else(|| panic!("no indicator {id}"))
}

fn value<'a>(i: &'a Indicator, key: &str) -> &'a Value {
    i.values.iter().find(|v| v.key == key).unwrap_or_else(|| panic!("{}: no value {key}: {:?}", i.id, i.values))
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[track_caller]
fn assert_value(v: &Value, expected: f64, num_den: Option<(f64, f64)>) {
    assert!(close(v.value, expected), "{}: {:?}, expected {expected}", v.key, v.value);
    if let Some((n, d)) = num_den {
        assert_eq!((v.numerator, v.denominator), (Some(n), Some(d)), "{}", v.key);
    }
    assert_eq!(v.not_computed, None, "{}", v.key);
}

#[test]
fn effluent_and_emission_compliance_by_hand() {
    let r = run(&IndicatorsFile::builtin(), &a1());

    // f1 judged 28 days × 24 h − 6 maintenance = 666 grab samples each of cod and bod;
    // exceeding: cod 3 + 1, bod 1. f2: 720 compliant. f9 (area a2) is not counted.
    let eff = indicator(&r, "effluent-compliance");
    let judged = 666.0 + 666.0 + 720.0;
    let compliant = judged - 5.0;
    let rate = value(eff, "judged_compliant_pct");
    assert_value(rate, compliant * 100.0 / judged, Some((compliant, judged)));
    // Previous 30 days: f2 on 31 October, 22 of 24 compliant.
    assert!(close(rate.previous, 22.0 * 100.0 / 24.0), "{:?}", rate.previous);
    assert!(close(rate.change, compliant * 100.0 / judged - 22.0 * 100.0 / 24.0));
    // Factories: f1 exceeded, f2 did not → 1 of 2; before: f2 only, which exceeded → 0 of 1.
    let fac = value(eff, "factories_compliant_pct");
    assert_value(fac, 50.0, Some((1.0, 2.0)));
    assert!(close(fac.previous, 0.0) && close(fac.change, 50.0));

    let cod = eff.evidence.iter().find(|e| e.factory == "f1" && e.parameter.as_deref() == Some("cod")).expect("f1 cod");
    assert_eq!((cod.used, cod.excluded), (666, 0));
    assert!(cod.note.contains("662 compliant, 4 exceeding"), "{}", cod.note);
    assert!(cod.note.contains("6 readings excluded from judgement (maintenance"), "{}", cod.note);
    assert!(eff.evidence.iter().all(|e| e.factory != "f9"));

    // f3: 720 hours − 6 without readings (insufficient data) = 714 judged, 2 exceeding.
    let emi = indicator(&r, "emission-compliance");
    assert_value(value(emi, "judged_compliant_pct"), 712.0 * 100.0 / 714.0, Some((712.0, 714.0)));
    assert_value(value(emi, "factories_compliant_pct"), 0.0, Some((0.0, 1.0)));
    let tsp = emi.evidence.iter().find(|e| e.parameter.as_deref() == Some("tsp")).expect("tsp");
    assert_eq!((tsp.used, tsp.excluded), (714, 6));
    assert!(tsp.note.contains("6 periods of insufficient data"), "{}", tsp.note);
    // Nothing judged before: said, not zero.
    let before = value(emi, "judged_compliant_pct");
    assert_eq!((before.previous, before.change), (None, None));
}

#[test]
fn availability_exceedances_and_loads_by_hand() {
    let r = run(&IndicatorsFile::builtin(), &a1());

    // f1 misses day 10 (18 of 24 valid: maintenance) and days 15, 16 (silent): 27 of 30.
    // f2 30 of 30; f3 misses day 25 (18 of 24): 29 of 30.
    let av = indicator(&r, "data-availability");
    assert_value(value(av, "point_days_meeting_pct"), 86.0 * 100.0 / 90.0, Some((86.0, 90.0)));
    assert_value(value(av, "point:f1/outfall-1"), 90.0, Some((27.0, 30.0)));
    assert_value(value(av, "point:f2/outfall-1"), 100.0, Some((30.0, 30.0)));
    assert_value(value(av, "point:f3/stack-1"), 29.0 * 100.0 / 30.0, Some((29.0, 30.0)));
    // Before: only f2's 31 October had readings: 1 of 90 point-days.
    assert!(close(value(av, "point_days_meeting_pct").previous, 100.0 / 90.0));
    let f1 = av.evidence.iter().find(|e| e.factory == "f1").expect("f1");
    assert!(f1.note.contains("2 days without any reading"), "{}", f1.note);
    assert!(f1.note.contains("2026-11-11 cod: 18 of 24 (75.0 %)"), "{}", f1.note);

    // Episodes: f1 cod 2, f1 bod 1, f3 tsp 1; hours: cod 3 + 1, bod 1, tsp 2.
    let ex = indicator(&r, "exceedances");
    assert_value(value(ex, "episodes"), 4.0, None);
    assert_value(value(ex, "exceedance_hours"), 7.0, None);
    assert_value(value(ex, "episodes:cod"), 2.0, None);
    assert_value(value(ex, "hours:cod"), 4.0, None);
    assert_value(value(ex, "episodes:bod"), 1.0, None);
    assert_value(value(ex, "hours:tsp"), 2.0, None);
    // Before: f2's two exceeding hours of 31 October, one episode.
    assert!(close(value(ex, "episodes").change, 3.0) && close(value(ex, "hours:cod").previous, 2.0));
    assert_eq!(r.episodes.len(), 4);

    // Loads, f1: 666 valid hours, one without valid flow (day 2, 3 h) → 665 hours at 50 m³/h.
    // bod: (664 × 10 + 25) g/m³ × 50 m³/h × 1 h / 1000 = 333.25 kg
    // cod: (661 × 100 + 3 × 150 + 130) × 50 / 1000 = 3334 kg; f2 has no flow meter.
    // tsp: (712 × 100 + 2 × 500) mg/Nm³ × 10 000 Nm³/h × 1 h / 1e9 = 0.722 t
    let loads = indicator(&r, "pollutant-load");
    let bod = value(loads, "load:bod");
    assert_value(bod, 333.25, None);
    assert_eq!(bod.unit, "kg");
    assert_value(value(loads, "load:cod"), 3334.0, None);
    let tsp = value(loads, "load:tsp");
    assert_value(tsp, 0.722, None);
    assert_eq!(tsp.unit, "t");
    let tss = value(loads, "load:tss");
    assert_eq!(tss.value, None);
    assert_eq!(tss.not_computed.as_deref(), Some("tss is not measured at any point in the selection"));
    let f2 = loads.evidence.iter().find(|e| e.factory == "f2").expect("f2 load evidence");
    assert!(f2.note.starts_with("flow is not measured at this point: no load (720 hours with cod)"), "{}", f2.note);
    let f1 = loads.evidence.iter().find(|e| e.factory == "f1" && e.parameter.as_deref() == Some("cod")).expect("f1");
    assert_eq!((f1.used, f1.excluded), (665, 1));
    // Before: f2 cod without flow, so no previous load: said, and no change.
    let cod = value(loads, "load:cod");
    assert_eq!((cod.previous, cod.change), (None, None));
}

#[test]
fn definitions_filter_categories_parameters_and_factory() {
    let def = |id: &str, kind, filter| Definition {
        id: id.into(),
        name_th: "ทดสอบ".into(),
        name_en: "test".into(),
        kind,
        filter,
        eit_code: Some("ENV-1".into()),
    };
    let defs = IndicatorsFile {
        indicator: vec![
            def(
                "cat3",
                IndicatorKind::EffluentCompliance,
                DefinitionFilter { factory_categories: vec![3], ..Default::default() },
            ),
            def(
                "bod",
                IndicatorKind::EffluentCompliance,
                DefinitionFilter { parameters: vec!["bod".into()], ..Default::default() },
            ),
            def("a2", IndicatorKind::Exceedances, DefinitionFilter { area: Some("a2".into()), ..Default::default() }),
        ],
    };
    let r = run(&defs, &a1());
    // Category 3 only: f1's 1332 judged, 1327 compliant.
    assert_value(value(indicator(&r, "cat3"), "judged_compliant_pct"), 1327.0 * 100.0 / 1332.0, Some((1327.0, 1332.0)));
    assert_value(value(indicator(&r, "bod"), "judged_compliant_pct"), 665.0 * 100.0 / 666.0, Some((665.0, 666.0)));
    assert_eq!(indicator(&r, "bod").eit_code.as_deref(), Some("ENV-1"));
    // A definition for area a2 in a report on a1 covers nothing: said, not zero.
    let a2 = value(indicator(&r, "a2"), "episodes");
    assert_eq!((a2.value, a2.not_computed.as_deref()), (None, Some("no monitoring point in the selection")));

    // One factory: f2 alone, fully compliant.
    let r = run(&IndicatorsFile::builtin(), &Selection { factory: Some("f2".into()), ..Selection::default() });
    let eff = indicator(&r, "effluent-compliance");
    assert_value(value(eff, "judged_compliant_pct"), 100.0, Some((720.0, 720.0)));
    assert_value(value(eff, "factories_compliant_pct"), 100.0, Some((1.0, 1.0)));
    let emi = value(indicator(&r, "emission-compliance"), "judged_compliant_pct");
    assert_eq!(emi.not_computed.as_deref(), Some("no stack emission point in the selection"));
}

fn date_serial(d: &Data) -> Option<f64> {
    match d {
        Data::DateTime(t) => Some(t.as_f64()),
        _ => None,
    }
}

fn cell(range: &calamine::Range<Data>, row: u32, col: u32) -> Data {
    range.get_value((row, col)).cloned().unwrap_or(Data::Empty)
}

#[test]
fn csv_and_xlsx_carry_the_values_with_thai_and_english_headers() {
    let r = run(&IndicatorsFile::builtin(), &a1());

    let csv = export::csv(&r, true);
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines[0], export::INDICATOR_HEADERS.join(","));
    let values: usize = r.indicators.iter().map(|i| i.values.len()).sum();
    assert_eq!(lines.len(), values + 1);
    let fac = lines
        .iter()
        .find(|l| l.starts_with("effluent-compliance,,") && l.contains(",factories_compliant_pct,"))
        .expect("row");
    // B.E. dates: November 2569, to its last day inclusive.
    assert!(fac.ends_with(",50,%,1,2,0,50,,2569-11-01,2569-11-30"), "{fac}");

    let bytes = export::xlsx(&r, false).expect("xlsx");
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).expect("open xlsx");
    assert_eq!(book.sheet_names(), ["indicators", "evidence", "episodes"]);
    let sheet = book.worksheet_range("indicators").expect("indicators");
    for (c, h) in export::INDICATOR_HEADERS.iter().enumerate() {
        assert_eq!(cell(&sheet, 0, c as u32), Data::String(h.to_string()));
    }
    let row = (1..sheet.height() as u32)
        .find(|&i| {
            cell(&sheet, i, 0) == Data::String("pollutant-load".into())
                && cell(&sheet, i, 4) == Data::String("load:cod".into())
        })
        .expect("load:cod row");
    assert_eq!(cell(&sheet, row, 7), Data::Float(3334.0));
    assert_eq!(cell(&sheet, row, 8), Data::String("kg".into()));
    // A date cell: Excel's serial day of 1 November 2026 (days since 1899-12-30).
    assert_eq!(date_serial(&cell(&sheet, row, 14)), Some(46327.0));
    let tss = (1..sheet.height() as u32).find(|&i| cell(&sheet, i, 4) == Data::String("load:tss".into())).expect("tss");
    assert_eq!(cell(&sheet, tss, 7), Data::Empty, "no value, not 0");
    assert_eq!(cell(&sheet, tss, 13), Data::String("tss is not measured at any point in the selection".into()));

    let evidence = book.worksheet_range("evidence").expect("evidence");
    let rows: usize = r.indicators.iter().map(|i| i.evidence.len()).sum();
    assert_eq!(evidence.height(), rows + 1);
    assert_eq!(cell(&evidence, 0, 5), Data::String("ใช้ / used".into()));

    let episodes = book.worksheet_range("episodes").expect("episodes");
    assert_eq!(episodes.height(), 5, "four episodes and the header");
    let tsp = (1..5).find(|&i| cell(&episodes, i, 3) == Data::String("tsp".into())).expect("tsp episode");
    assert_eq!(date_serial(&cell(&episodes, tsp, 6)), Some(46334.0), "2026-11-08 00:00");
    assert_eq!(cell(&episodes, tsp, 8), Data::Float(2.0));
    assert_eq!(cell(&episodes, tsp, 9), Data::Float(500.0));
}
