use super::*;
use crate::site::{EmissionPoint, EmissionSource, Fuel, Point};

fn outfall(tds_background: Option<f64>) -> Point {
    Point {
        id: "outfall-1".into(),
        kind: Kind::Effluent,
        parameters: vec![],
        expected_interval_s: 60,
        receiving_water_tds_mg_per_l: tds_background,
        emission: None,
        faults: Default::default(),
    }
}

fn stack(source: EmissionSource, fuel: Option<Fuel>, combustion: bool) -> Point {
    Point {
        id: "stack-1".into(),
        kind: Kind::Emission,
        parameters: vec![],
        expected_interval_s: 60,
        receiving_water_tds_mg_per_l: None,
        emission: Some(EmissionPoint { source, fuel, combustion }),
        faults: Default::default(),
    }
}

fn only_limit<'a>(standards: &'a Standards, point: &'a Point, category: u8, parameter: &'a str) -> &'a Limit {
    let limits: Vec<_> = standards.limits_for(point, category, parameter).collect();
    assert_eq!(limits.len(), 1, "{parameter}: {limits:?}");
    limits[0].1
}

#[test]
fn the_effluent_table_is_complete_and_primary() {
    let s = Standards::builtin();
    let std = s.get("moi-effluent-2560").unwrap();
    assert_eq!(std.limit.len(), 27);
    assert_eq!(std.confidence, Confidence::Primary);
    assert!(std.limit.iter().all(|l| l.averaging == Averaging::Instantaneous));
    let p = outfall(None);
    assert_eq!(only_limit(s, &p, 3, "cod").max, Some(120.0));
    assert_eq!(only_limit(s, &p, 1, "bod").max, Some(20.0));
    assert_eq!(only_limit(s, &p, 2, "hg").max, Some(0.005));
    let ph = only_limit(s, &p, 3, "ph");
    assert_eq!((ph.min, ph.max), (Some(5.5), Some(9.0)));
    assert!(only_limit(s, &p, 3, "pesticide").not_detected);
}

#[test]
fn judges_max_range_and_not_detected() {
    let s = Standards::builtin();
    let c = Catalog::builtin();
    let p = outfall(None);
    let cod = only_limit(s, &p, 3, "cod");
    assert_eq!(cod.judge(c, Kind::Effluent, &p, 120.0, false).unwrap(), Verdict::Compliant);
    assert_eq!(cod.judge(c, Kind::Effluent, &p, 120.1, false).unwrap(), Verdict::Exceeds);
    let ph = only_limit(s, &p, 3, "ph");
    assert_eq!(ph.judge(c, Kind::Effluent, &p, 5.4, false).unwrap(), Verdict::Exceeds);
    assert_eq!(ph.judge(c, Kind::Effluent, &p, 5.5, false).unwrap(), Verdict::Compliant);
    assert_eq!(ph.judge(c, Kind::Effluent, &p, 9.1, false).unwrap(), Verdict::Exceeds);
    let pest = only_limit(s, &p, 3, "pesticide");
    assert_eq!(pest.judge(c, Kind::Effluent, &p, 0.001, true).unwrap(), Verdict::Compliant);
    assert_eq!(pest.judge(c, Kind::Effluent, &p, 0.001, false).unwrap(), Verdict::Exceeds);
}

#[test]
fn tds_rule_follows_the_receiving_water() {
    let s = Standards::builtin();
    let c = Catalog::builtin();
    let fresh = outfall(Some(500.0));
    let saline = outfall(Some(4000.0));
    let tds = only_limit(s, &fresh, 3, "tds");
    assert_eq!(tds.max_at(&fresh), Some(3000.0));
    // Receiving water at 4,000 mg/L: effluent may reach 4,000 + 5,000 = 9,000 mg/L.
    assert_eq!(tds.max_at(&saline), Some(9000.0));
    assert_eq!(tds.judge(c, Kind::Effluent, &saline, 8999.0, false).unwrap(), Verdict::Compliant);
    assert_eq!(tds.judge(c, Kind::Effluent, &fresh, 3001.0, false).unwrap(), Verdict::Exceeds);
}

#[test]
fn air_limits_pick_source_fuel_and_combustion_and_say_what_is_unconfirmed() {
    let s = Standards::builtin();
    let coal = stack(EmissionSource::Boiler, Some(Fuel::Coal), true);
    let oil = stack(EmissionSource::Boiler, Some(Fuel::HeavyOil), true);
    let process = stack(EmissionSource::ProductionProcess, None, false);
    assert_eq!(only_limit(s, &coal, 3, "so2").max, Some(700.0));
    assert_eq!(only_limit(s, &oil, 3, "so2").max, Some(950.0));
    assert_eq!(only_limit(s, &coal, 3, "tsp").max, Some(320.0));
    assert_eq!(only_limit(s, &oil, 3, "tsp").max, Some(240.0));
    assert_eq!(only_limit(s, &process, 3, "tsp").max, Some(400.0));
    assert_eq!(only_limit(s, &process, 3, "co").max, Some(870.0));
    assert_eq!(s.limits_for(&coal, 1, "so2").count(), 0, "category 1 factories are not covered");
    let l = only_limit(s, &coal, 2, "nox");
    assert_eq!(l.max, Some(400.0));
    assert_eq!(l.reference_o2_pct, Some(7.0));
    assert_eq!(l.unconfirmed, ["averaging", "reference_o2_pct"]);
    let air = s.get("moi-air-2549").unwrap();
    assert_eq!(l.confidence_in(air), Confidence::Secondary);
}

#[test]
fn describe() {
    let s = Standards::builtin();
    let p = outfall(None);
    assert_eq!(only_limit(s, &p, 3, "cod").describe(), "≤ 120 mg/L");
    assert_eq!(only_limit(s, &p, 3, "ph").describe(), "5.5–9 pH");
}
