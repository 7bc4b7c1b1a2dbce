//! Sensor faults of one series, from its newest samples: a flatline (the same valid value
//! for `flatline_after_s`), a spike (a change between the last two valid readings faster
//! than `max_change_per_min`), a value outside the catalog's plausible range.
//!
//! [`Recent`] keeps what that needs as runs of equal valid values, so a 1 Hz sensor costs a
//! few runs, not an hour of samples.

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};

use eitwatch_config::Catalog;
use eitwatch_config::reading::{Kind, Quality};
use eitwatch_config::site::Point;

use super::engine::{AlertKind, Condition, SeriesId, Severity};
use super::period::{SECOND_NS, local};

/// Consecutive valid readings of one value, from the key to `last_ns`.
#[derive(Debug, Clone, Copy)]
struct Run {
    last_ns: i64,
    value: f64,
}

/// Runs kept: the flatline and spike rules need the newest two (runs of one value merge);
/// a few more give late readings their place.
const RUNS_KEPT: usize = 8;

/// The newest readings of a series, as fault detection needs them.
#[derive(Debug, Default)]
pub(super) struct Recent {
    runs: BTreeMap<i64, Run>,
    /// The newest reading, any quality.
    latest: Option<(i64, f64, Quality)>,
}

impl Recent {
    /// Takes a reading, in any order.
    pub(super) fn add(&mut self, t: i64, value: f64, quality: Quality) {
        if self.latest.is_none_or(|(l, _, _)| t >= l) {
            self.latest = Some((t, value, quality));
        }
        if !quality.is_judged() {
            return;
        }
        let next = self.runs.range((Excluded(t), Unbounded)).next().map(|(s, r)| (*s, *r));
        match self.runs.range(..=t).next_back().map(|(s, r)| (*s, *r)) {
            Some((first, run)) if run.last_ns >= t => {
                if run.value != value {
                    // A late, different value inside a run: only the run's ends are known.
                    self.runs.insert(first, Run { last_ns: first, value: run.value });
                    self.runs.insert(run.last_ns, run);
                    self.runs.insert(t, Run { last_ns: t, value });
                }
                return self.trim();
            }
            Some((first, run)) if run.value == value => {
                self.runs.insert(first, Run { last_ns: t, value });
                self.merge_next(first, next);
            }
            _ => {
                self.runs.insert(t, Run { last_ns: t, value });
                self.merge_next(t, next);
            }
        }
        self.trim();
    }

    /// Joins the run after `first` into it when it holds the same value.
    fn merge_next(&mut self, first: i64, next: Option<(i64, Run)>) {
        if let Some((next_first, next)) = next
            && let Some(run) = self.runs.get_mut(&first)
            && run.value == next.value
        {
            run.last_ns = next.last_ns;
            self.runs.remove(&next_first);
        }
    }

    fn trim(&mut self) {
        while self.runs.len() > RUNS_KEPT {
            self.runs.pop_first();
        }
    }

    /// The newest reading, any quality.
    pub(super) fn latest(&self) -> Option<(i64, f64, Quality)> {
        self.latest
    }
}

pub(super) fn detect(id: &SeriesId, kind: Kind, point: &Point, recent: &Recent) -> Vec<Condition> {
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
    let mut runs = recent.runs.iter().rev();
    if let Some((&newest_first, newest)) = runs.next() {
        let newest_v = newest.value;
        let mut oldest_same = newest_first;
        let mut previous = (newest.last_ns > newest_first).then_some((newest.last_ns, newest_v));
        for (&first, run) in runs {
            if previous.is_none() {
                previous = Some((run.last_ns, run.value));
            }
            if run.value != newest_v {
                break;
            }
            oldest_same = first;
        }
        let newest_t = newest.last_ns;
        if flatline_ns > 0 && newest_t - oldest_same >= flatline_ns {
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
        if let (Some(bound), Some((prev_t, prev_v))) = (point.faults.max_change_per_min.get(&id.parameter), previous) {
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
    if let Some((t, v, _)) = recent.latest()
        && !Catalog::builtin().is_plausible(kind, &id.parameter, v)
    {
        out.push(condition("implausible", format!("{} reads {v}, outside its plausible range", id.parameter), v, t));
    }
    out
}
