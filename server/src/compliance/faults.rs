//! Sensor faults of one series, from its newest samples: a flatline (the same valid value
//! for `flatline_after_s`), a spike (a change between the last two valid readings faster
//! than `max_change_per_min`), a value outside the catalog's plausible range.

use eitwatch_config::Catalog;
use eitwatch_config::reading::Kind;
use eitwatch_config::site::Point;

use super::engine::{AlertKind, Condition, SamplesView, SeriesId, Severity};
use super::period::{SECOND_NS, local};

pub(super) fn detect(id: &SeriesId, kind: Kind, point: &Point, samples: &SamplesView<'_>) -> Vec<Condition> {
    let mut out = Vec::new();
    let condition = |what: &str, summary: String, value: f64, since_ns: i64| Condition {
        key: format!("sensor_fault/{what}/{}/{}/{}", id.factory, id.point, id.parameter),
        kind: AlertKind::SensorFault,
        severity: Severity::Warning,
        factory: id.factory.clone(),
        point: id.point.clone(),
        parameter: Some(id.parameter.clone()),
        summary,
        value: Some(value),
        limit: None,
        since_ns,
        deadline_ns: None,
    };
    let flatline_ns = (point.faults.flatline_after_s as i64).saturating_mul(SECOND_NS);
    let mut valid = samples.valid_rev();
    if let Some((newest_t, newest_v)) = valid.next() {
        if flatline_ns > 0 {
            // Walks back only as far as the flatline needs: bounded per tick.
            let mut oldest_same = newest_t;
            for (t, v) in samples.valid_rev().skip(1) {
                if v != newest_v {
                    break;
                }
                oldest_same = t;
                if newest_t - oldest_same >= flatline_ns {
                    break;
                }
            }
            if newest_t - oldest_same >= flatline_ns {
                out.push(condition(
                    "flatline",
                    format!(
                        "{} has read {newest_v} since {} (flatline ≥ {} s)",
                        id.parameter,
                        local(oldest_same),
                        point.faults.flatline_after_s
                    ),
                    newest_v,
                    oldest_same,
                ));
            }
        }
        if let (Some(bound), Some((prev_t, prev_v))) =
            (point.faults.max_change_per_min.get(&id.parameter), valid.next())
        {
            let minutes = (newest_t - prev_t) as f64 / (60.0 * SECOND_NS as f64);
            let rate = (newest_v - prev_v).abs() / minutes.max(1.0 / 60.0);
            if rate > *bound {
                out.push(condition(
                    "spike",
                    format!("{} jumped from {prev_v} to {newest_v} ({rate:.3} per min > {bound})", id.parameter),
                    newest_v,
                    newest_t,
                ));
            }
        }
    }
    if let Some((t, v)) = samples.latest()
        && !Catalog::builtin().is_plausible(kind, &id.parameter, v)
    {
        out.push(condition("implausible", format!("{} reads {v}, outside its plausible range", id.parameter), v, t));
    }
    out
}
