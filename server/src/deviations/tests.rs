//! E by hand, every validation problem at once, due/overdue by half-year, the log's round trip.

use eitwatch_config::site::Registry;

use std::io::Write as _;

use super::*;

/// The factories of area a1 (see [`crate::testkit::config`]).
const FACTORIES: &str = r#"[[area.factory]]
id = "f1"
name = "Factory one"
category = 3
[[area.factory.point]]
id = "outfall-1"
kind = "effluent"
parameters = ["bod", "cod", "flow"]
[[area.factory]]
id = "f2"
name = "Factory two"
category = 3
[[area.factory.point]]
id = "outfall-1"
kind = "effluent"
parameters = ["cod"]
[[area.factory.point]]
id = "stack-1"
kind = "emission"
parameters = ["so2"]
emission = { source = "boiler", fuel = "coal", combustion = true }
"#;

fn registry() -> Registry {
    crate::testkit::registry(FACTORIES)
}

/// 2026-11-23 12:00 Bangkok: the second half of 2026.
fn now() -> i64 {
    "2026-11-23T05:00:00Z".parse::<jiff::Timestamp>().expect("ts").as_nanosecond() as i64
}

fn submitted(factory: &str, parameter: &str, sampled: &str, reported: Option<&str>, m: f64, t: f64) -> Submitted {
    Submitted {
        factory: factory.into(),
        point: "outfall-1".into(),
        parameter: parameter.into(),
        sampled_on: sampled.into(),
        analyser_mg_per_l: m,
        lab_mg_per_l: t,
        laboratory: "Lab 7 (reg. ว-123)".into(),
        reported_on: reported.map(str::to_string),
        note: None,
    }
}

#[test]
fn deviation_at_the_reporting_precision() {
    assert_eq!(deviation("bod", 22.45, 20.1), Some(2.4), "22.5 − 20.1");
    assert_eq!(deviation("bod", 18.0, 20.04), Some(-2.0), "18.0 − 20.0");
    assert_eq!(deviation("cod", 130.6, 118.2), Some(13.0), "131 − 118");
    assert_eq!(deviation("cod", 99.5, 100.4), Some(0.0), "100 − 100");
    assert_eq!(deviation("ph", 7.0, 7.1), None);
}

#[test]
fn every_problem_of_a_submission_at_once() {
    let r = registry();
    let ok = submitted("f1", "bod", "2026-11-01", Some("2026-11-10"), 22.0, 20.0);
    assert_eq!(validate(&ok, &r, now()), Ok((date(2026, 11, 1), date(2026, 11, 10))));
    let mut bad = submitted("f1", "ph", "2026-12-01", Some("2026-11-30"), -1.0, f64::NAN);
    bad.laboratory = " ".into();
    assert_eq!(
        validate(&bad, &r, now()).unwrap_err(),
        [
            "parameter: \"ph\" is not monitored at f1/outfall-1",
            "parameter: \"ph\" has no deviation rule, expected bod or cod",
            "analyser_mg_per_l: -1 is not a concentration, expected a number ≥ 0",
            "lab_mg_per_l: NaN is not a concentration, expected a number ≥ 0",
            "laboratory: must name the registered laboratory",
            "sampled_on: 2026-12-01 is in the future (today is 2026-11-23)",
            "reported_on: 2026-11-30 is before sampled_on 2026-12-01",
        ]
    );
    let mut stack = submitted("f2", "cod", "1 Nov", None, 1.0, 1.0);
    stack.point = "stack-1".into();
    assert_eq!(
        validate(&stack, &r, now()).unwrap_err(),
        [
            "point: \"stack-1\" is not an effluent outfall",
            "sampled_on: \"1 Nov\" is not a date, expected YYYY-MM-DD (Bangkok)"
        ]
    );
}

#[test]
fn due_and_overdue_by_half_year_and_late_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = DeviationLog::new(dir.path());
    let add = |s: Submitted| {
        let (_, reported) = validate(&s, &registry(), now()).expect("valid");
        log.append(s, reported, "admin token t1".into(), now()).expect("append")
    };
    // f1 BOD: first half (reported 36 days after sampling: late) and second half → ok.
    let first = add(submitted("f1", "bod", "2026-03-10", Some("2026-04-15"), 22.45, 20.1));
    assert_eq!((first.id, first.deviation_mg_per_l, first.late), (1, 2.4, true));
    let second = add(submitted("f1", "bod", "2026-08-01", Some("2026-08-31"), 15.0, 15.3));
    assert_eq!((second.id, second.deviation_mg_per_l, second.late), (2, -0.3, false), "30 days is on time");
    // f1 COD: first half only, reported today (late) → due by 31 December. f2 COD: nothing → overdue.
    add(submitted("f1", "cod", "2026-05-02", None, 130.6, 118.2));

    let records = DeviationLog::new(dir.path()).list().expect("list");
    assert_eq!(records.len(), 3);
    assert_eq!(records[2].submitted.reported_on.as_deref(), Some("2026-11-23"), "reported today by default");
    assert_eq!(records[2].deviation_mg_per_l, 13.0);
    let st = statuses(&registry(), &records, now(), |_, _, _| true);
    let got: Vec<(&str, &str, Status, usize, usize)> =
        st.iter().map(|a| (a.factory.as_str(), a.parameter.as_str(), a.status, a.records, a.late_records)).collect();
    assert_eq!(
        got,
        [("f1", "bod", Status::Ok, 2, 1), ("f1", "cod", Status::Due, 1, 1), ("f2", "cod", Status::Overdue, 0, 0)]
    );
    assert_eq!(st[1].due_by, "2026-12-31");
    assert_eq!((st[0].last_sampled_on.as_deref(), st[0].last_deviation_mg_per_l), (Some("2026-08-01"), Some(-0.3)));
    // In January the second half of 2026 is the one that ended: f1 BOD becomes due, f1 COD overdue.
    let january = now() + 45 * crate::compliance::period::DAY_NS;
    let st = statuses(&registry(), &records, january, |_, _, _| true);
    assert_eq!((st[0].status, st[1].status, st[0].due_by.as_str()), (Status::Due, Status::Overdue, "2027-06-30"));

    // A torn last line (a crash mid-write) is skipped; the next record still gets its id.
    let path = dir.path().join("deviations.log");
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
    f.write_all(b"{\"id\": 4, \"fac").expect("torn");
    assert_eq!(DeviationLog::new(dir.path()).list().expect("list").len(), 3);
}
