//! The daily digest of one recipient: for the Bangkok day before, the periods judged
//! exceeding and the exceedance episodes, the factories without data, the series whose
//! availability fell below 80 %, and the fault-notification deadlines due and overdue —
//! from the compliance engine's own queries, within what the recipient may see.

use crate::compliance::period::{DAY_NS, day, local, local_date};
use crate::compliance::{Engine, Filter, Outcome};

/// Availability below this (percent) is listed.
pub const AVAILABILITY_MIN_PCT: f64 = 80.0;

/// What a digest lists, each item one line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Digest {
    /// The Bangkok day it covers (`2026-11-23`).
    pub day: String,
    /// Periods judged exceeding that day.
    pub exceedances: Vec<String>,
    /// Exceedance episodes overlapping that day.
    pub episodes: Vec<String>,
    /// Factories with a point silent now.
    pub silent: Vec<String>,
    /// Series below 80 % availability that day.
    pub availability: Vec<String>,
    /// Fault notifications due within the next day.
    pub deadlines_due: Vec<String>,
    /// Fault notifications or restorations overdue.
    pub deadlines_overdue: Vec<String>,
}

fn short(t_ns: i64) -> String {
    let full = local(t_ns);
    full.get(..16).unwrap_or(&full).replace('T', " ")
}

fn number(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The digest of the Bangkok day before `now_ns`, of the factories `sees` accepts.
pub fn compose(
    engine: &Engine,
    registry: &eitwatch_config::site::Registry,
    now_ns: i64,
    sees: &dyn Fn(&str, &str) -> bool,
) -> Digest {
    let (today, _) = day(now_ns);
    let (from, to) = (today - DAY_NS, today);
    let filter = Filter { from_ns: Some(from), to_ns: Some(to), ..Filter::default() };
    let mut d = Digest { day: local_date(from), ..Digest::default() };
    for p in engine.periods(&filter, usize::MAX) {
        if p.period.outcome == Outcome::Exceeds && sees(&p.area, &p.factory) {
            d.exceedances.push(format!(
                "{} {}/{} {}: {} {} > {} {}",
                short(p.period.start_ns),
                p.factory,
                p.point,
                p.parameter,
                p.period.value.map_or("-".into(), number),
                p.limit.unit,
                p.limit.max.map_or("-".into(), number),
                p.limit.unit,
            ));
        }
    }
    for e in engine.episodes(&filter) {
        if sees(&e.area, &e.factory) {
            d.episodes.push(format!(
                "{} – {} {}/{} {}: {} period(s), peak {} {}{}",
                short(e.start_ns),
                short(e.end_ns),
                e.factory,
                e.point,
                e.parameter,
                e.periods,
                number(e.peak),
                e.limit.unit,
                if e.ongoing { ", ongoing" } else { "" }
            ));
        }
    }
    for a in engine.availability(&filter) {
        if a.day_start_ns == from && a.availability_pct < AVAILABILITY_MIN_PCT && sees(&a.area, &a.factory) {
            d.availability.push(format!(
                "{}/{} {}: {} % ({} of {})",
                a.factory,
                a.point,
                a.parameter,
                number(a.availability_pct),
                a.valid,
                a.expected
            ));
        }
    }
    let area_of = |factory: &str| {
        registry
            .areas()
            .iter()
            .find(|a| a.factory.iter().any(|f| f.id == factory))
            .map_or(String::new(), |a| a.id.clone())
    };
    for i in engine.incidents() {
        if !sees(&area_of(&i.factory), &i.factory) {
            continue;
        }
        let line = format!("{}/{} silent since {}", i.factory, i.point, short(i.since_ns));
        if !d.silent.iter().any(|s| s.starts_with(&format!("{}/", i.factory))) {
            d.silent.push(line.clone());
        }
        if now_ns > i.restore_by_ns {
            d.deadlines_overdue.push(format!("{line}: restore by {}", short(i.restore_by_ns)));
        } else if now_ns > i.notify_by_ns {
            d.deadlines_overdue.push(format!("{line}: notify DIW by {}", short(i.notify_by_ns)));
        } else {
            d.deadlines_due.push(format!("{line}: notify DIW by {}", short(i.notify_by_ns)));
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::period::{HOUR_NS, SECOND_NS};
    use crate::compliance::tests::{effluent, engine, t0};

    /// A scripted day, 2026-11-23 (Bangkok): f1's outfall COD every minute from 07:00 to
    /// 14:59, three readings over the 120 mg/l limit at 10:00–10:02, then silence. The digest
    /// at 07:00 on the 24th covers the 23rd.
    #[test]
    fn the_digest_of_a_scripted_day() {
        let (mut e, clock) = engine(t0());
        let mut readings = Vec::new();
        for m in 0..(8 * 60) {
            let t = t0() + m * 60 * SECOND_NS;
            let exceeding = (180..183).contains(&m);
            readings.push(effluent("cod", if exceeding { 150.0 } else { 40.0 }, t));
        }
        e.ingest(&readings);
        clock.set(t0() + DAY_NS);
        e.tick();
        let d = compose(&e, &crate::compliance::tests::registry(), t0() + DAY_NS, &|_, f| f == "f1");
        assert_eq!(d.day, "2026-11-23");
        // COD's limit is instantaneous (grab samples): each exceeding reading is a period.
        assert_eq!(d.exceedances.len(), 3, "{d:#?}");
        assert!(d.exceedances[0].starts_with("2026-11-23 10:00 f1/outfall-1 cod: 150 "), "{d:#?}");
        assert_eq!(d.episodes.len(), 1, "{d:#?}");
        assert!(d.episodes[0].contains("3 period(s), peak 150"), "{d:#?}");
        // 480 of 1440 minutes: 33.333 %.
        assert_eq!(d.availability, ["f1/outfall-1 cod: 33.333 % (480 of 1440)"], "{d:#?}");
        // Silent since 14:59 on the 23rd: notify DIW by the end of the 24th (due, not over).
        assert_eq!(d.silent, ["f1/outfall-1 silent since 2026-11-23 14:59"]);
        assert!(d.deadlines_due.iter().any(|l| l.contains("f1/outfall-1") && l.contains("2026-11-25 00:00")), "{d:#?}");
        let _ = HOUR_NS;
    }
}
