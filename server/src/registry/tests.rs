//! Changes applied, validated whole, logged with who and when, replayed.

use eitwatch_config::reading::Kind;

use super::*;

/// The factories of area a1 (see [`crate::testkit::config`]).
const FACTORIES: &str = r#"[[area.factory]]
id = "f1"
name = "Factory one"
category = 3
[[area.factory.point]]
id = "outfall-1"
kind = "effluent"
parameters = ["cod"]
"#;

fn base() -> Vec<Area> {
    let config = crate::testkit::config(FACTORIES);
    config.area
}

fn point(id: &str, parameters: &[&str]) -> Point {
    serde_json::from_value(serde_json::json!({"id": id, "kind": "effluent", "parameters": parameters})).expect("point")
}

#[test]
fn changes_upsert_and_are_validated_whole() {
    let changes = vec![
        Change::Area {
            id: "a2".into(),
            name_en: "Two".into(),
            name_th: "สอง".into(),
            province: "Chonburi".into(),
            phase: Some(2),
        },
        Change::Factory {
            area: "a2".into(),
            id: "f2".into(),
            name: "F2".into(),
            diw_registration: Some("3-105-1/60ชบ".into()),
            category: 2,
        },
        Change::Point { factory: "f2".into(), point: point("outfall-1", &["bod", "flow"]) },
        Change::Point { factory: "f1".into(), point: point("outfall-1", &["cod", "bod"]) },
    ];
    let areas = apply_all(base(), &changes).expect("valid");
    let r = Registry::new(areas.clone());
    assert_eq!(r.factory("f2").map(|(a, f)| (a.id.as_str(), f.category)), Some(("a2", 2)));
    assert_eq!(r.point("f1", "outfall-1").map(|(_, p)| p.parameters.clone()), Some(vec!["cod".into(), "bod".into()]));
    assert_eq!(r.point("f2", "outfall-1").map(|(_, p)| p.kind), Some(Kind::Effluent));

    let bad = vec![
        Change::Factory {
            area: "nowhere".into(),
            id: "f3".into(),
            name: "F3".into(),
            diw_registration: None,
            category: 3,
        },
        Change::Factory { area: "a1".into(), id: "f4".into(), name: "F4".into(), diw_registration: None, category: 7 },
        Change::Point { factory: "f1".into(), point: point("outfall-2", &["made_up"]) },
        Change::Factory { area: "a1".into(), id: "f2".into(), name: "F2".into(), diw_registration: None, category: 2 },
    ];
    assert_eq!(
        apply_all(areas, &bad).unwrap_err(),
        [
            "change 0: area: \"nowhere\" is not registered",
            "change 3: id: factory \"f2\" is registered in area \"a2\"",
            "area[0].factory[0].point[1].parameters[0]: unknown effluent parameter \"made_up\"",
            "area[0].factory[1].category: 7 is not a factory category, expected 1, 2 or 3",
        ]
    );
}

#[test]
fn recorded_with_who_and_when_all_or_nothing_and_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = RegistryLog::new(dir.path());
    let added = log
        .record(
            &base(),
            vec![Change::Point { factory: "f1".into(), point: point("outfall-2", &["cod"]) }],
            "admin token t1",
            42,
        )
        .expect("io")
        .expect("valid");
    assert_eq!(added[0].factory[0].point.len(), 2);
    // A batch with one bad change records nothing.
    let refused = log
        .record(
            &base(),
            vec![
                Change::Point { factory: "f1".into(), point: point("outfall-3", &["cod"]) },
                Change::Point { factory: "f9".into(), point: point("outfall-1", &["cod"]) },
            ],
            "admin token t1",
            43,
        )
        .expect("io");
    assert_eq!(refused.unwrap_err(), ["change 1: factory: \"f9\" is not registered"]);
    let entries = log.entries().expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].seq, entries[0].at_ns, entries[0].by.as_str()), (1, 42, "admin token t1"));
    let now = current(&base(), dir.path()).expect("current");
    assert_eq!(now[0].factory[0].point.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["outfall-1", "outfall-2"]);

    // A file of [[area]] tables is the same as its changes.
    let file: RegistryFile = eitwatch_config::problems::load(
        "[[area]]\nid = \"a1\"\nname_en = \"Area one\"\nname_th = \"หนึ่ง\"\nprovince = \"Rayong\"\n\
         [[area.factory]]\nid = \"f5\"\nname = \"F5\"\ncategory = 3\n\
         [[area.factory.point]]\nid = \"stack-1\"\nkind = \"emission\"\nparameters = [\"so2\"]\n\
         emission = { source = \"boiler\", fuel = \"coal\", combustion = true }\n",
        "import",
    )
    .expect("file");
    let changes = changes_of(&file.area);
    assert_eq!(changes.len(), 3);
    let areas = log.record(&base(), changes, "admin token t2", 44).expect("io").expect("valid");
    assert_eq!(areas[0].name_th, "หนึ่ง");
    assert_eq!(Registry::new(areas).point("f5", "stack-1").map(|(f, _)| f.category), Some(3));
    assert_eq!(log.entries().expect("entries").iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
}

#[test]
fn the_engine_watches_a_new_point_at_once() {
    use std::sync::Arc;

    use crate::compliance::{Engine, ManualClock, Settings};
    let t = "2026-11-23T00:00:00Z".parse::<jiff::Timestamp>().expect("ts").as_nanosecond() as i64;
    let clock = Arc::new(ManualClock::new(t));
    let mut e = Engine::new(Registry::new(base()), clock.clone(), Settings::default());
    let areas = apply_all(base(), &[Change::Point { factory: "f1".into(), point: point("outfall-2", &["cod"]) }])
        .expect("valid");
    e.update_registry(Registry::new(areas));
    e.ingest(&[eitwatch_config::reading::Reading::new(Kind::Effluent, "f1", "outfall-2", "cod", 130.0, t)]);
    let f = crate::compliance::Filter { point: Some("outfall-2".into()), ..Default::default() };
    let judged = e.periods(&f, 10);
    assert_eq!(judged.len(), 1, "the new point's grab sample is judged");
    assert_eq!(judged[0].period.outcome, crate::compliance::Outcome::Exceeds);
}

#[test]
fn a_point_added_at_run_time_is_silent_from_when_it_was_added() {
    use std::sync::Arc;

    use crate::compliance::{AlertKind, Engine, ManualClock, Settings};
    let hour_ns = 3_600_000_000_000;
    let t = "2026-11-23T00:00:00Z".parse::<jiff::Timestamp>().expect("ts").as_nanosecond() as i64;
    let clock = Arc::new(ManualClock::new(t));
    let mut e = Engine::new(Registry::new(base()), clock.clone(), Settings::default());
    // Added two hours after the engine started: outfall-1 (never reported) is silent by then.
    clock.set(t + 2 * hour_ns);
    let areas = apply_all(base(), &[Change::Point { factory: "f1".into(), point: point("outfall-2", &["cod"]) }])
        .expect("valid");
    e.update_registry(Registry::new(areas));
    let silent = |e: &Engine| e.incidents().into_iter().map(|i| (i.point, i.since_ns)).collect::<Vec<_>>();
    assert_eq!(silent(&e), [("outfall-1".to_string(), t)]);
    assert!(e.conditions().iter().all(|c| c.point != "outfall-2"), "no alert of any kind for the new point");
    // Its default interval is 60 s and silence is 3 intervals: silent 3 min after it was added.
    clock.set(t + 2 * hour_ns + 181_000_000_000);
    assert_eq!(silent(&e), [("outfall-1".to_string(), t), ("outfall-2".to_string(), t + 2 * hour_ns)]);
    assert!(e.conditions().iter().any(|c| c.point == "outfall-2" && c.kind == AlertKind::NoData));
}
