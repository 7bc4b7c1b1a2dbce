//! Sensor faults of one series, from its newest samples: a flatline (the same valid value
//! for `flatline_after_s`), a spike (a change between the last two valid readings faster
//! than `max_change_per_min`), a value outside the catalog's plausible range.
//!
//! [`Recent`] keeps what that needs as runs of equal valid values, so a 1 Hz sensor costs a
//! few runs, not an hour of samples.

use std::collections::VecDeque;

use eitwatch_config::Catalog;
use eitwatch_config::reading::{Kind, Quality};
use eitwatch_config::site::Point;

use super::checkpoint::{Dec, Enc};
use super::engine::{AlertKind, Condition, SeriesId, Severity};
use super::period::SECOND_NS;
use crate::alerts::text::{Detail, What};

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
    /// (first reading's time, run), oldest first; at most [`RUNS_KEPT`].
    runs: VecDeque<(i64, Run)>,
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
        // In time order: the newest run goes on, or a new one starts after it.
        if let Some((_, run)) = self.runs.back_mut()
            && run.last_ns < t
        {
            if run.value == value {
                run.last_ns = t;
            } else {
                self.runs.push_back((t, Run { last_ns: t, value }));
                if self.runs.len() > RUNS_KEPT {
                    self.runs.pop_front();
                }
            }
            return;
        }
        // Where `t` goes: after every run starting at or before it.
        let at = self.runs.partition_point(|(first, _)| *first <= t);
        if at == 0 && self.runs.len() >= RUNS_KEPT {
            // Older than every run kept (a back-fill's body overtaken by a newer one): it
            // could only change the oldest run, which no rule reads.
            return;
        }
        match at.checked_sub(1).map(|i| (i, self.runs[i])) {
            Some((i, (first, run))) if run.last_ns >= t => {
                if run.value != value {
                    // A late, different value inside a run: only the run's ends are known.
                    let mut j = i;
                    if t > first {
                        self.runs[i] = (first, Run { last_ns: first, value: run.value });
                        j += 1;
                        self.runs.insert(j, (t, Run { last_ns: t, value }));
                    } else {
                        self.runs[i] = (t, Run { last_ns: t, value });
                    }
                    if run.last_ns > t {
                        self.runs.insert(j + 1, (run.last_ns, run));
                    }
                }
            }
            Some((i, (first, run))) if run.value == value => {
                self.runs[i] = (first, Run { last_ns: t, value });
                self.merge_next(i);
            }
            _ => {
                if self.runs.capacity() == 0 {
                    // A series' first run: room for one, not the four a first insert reserves.
                    self.runs.reserve_exact(1);
                }
                self.runs.insert(at, (t, Run { last_ns: t, value }));
                self.merge_next(at);
            }
        }
        while self.runs.len() > RUNS_KEPT {
            self.runs.pop_front();
        }
    }

    /// Joins the run after `i` into it when it holds the same value.
    fn merge_next(&mut self, i: usize) {
        if let (Some(&(first, run)), Some(&(_, next))) = (self.runs.get(i), self.runs.get(i + 1))
            && run.value == next.value
        {
            self.runs[i] = (first, Run { last_ns: next.last_ns, value: run.value });
            self.runs.remove(i + 1);
        }
    }

    /// The newest reading, any quality.
    pub(super) fn latest(&self) -> Option<(i64, f64, Quality)> {
        self.latest
    }
}

impl Recent {
    /// Encodes the fault state for a checkpoint.
    pub(super) fn put(&self, e: &mut Enc) {
        e.len(self.runs.len());
        for (first, run) in &self.runs {
            e.i64(*first);
            e.i64(run.last_ns);
            e.f64(run.value);
        }
        e.opt(self.latest, |e, (t, v, q)| {
            e.i64(t);
            e.f64(v);
            e.u8(Quality::ALL.iter().position(|a| *a == q).unwrap_or(0) as u8);
        });
    }

    /// Decodes what [`Recent::put`] wrote.
    pub(super) fn get(d: &mut Dec<'_>) -> Result<Recent, String> {
        let n = d.len("fault runs", 24)?;
        if n > RUNS_KEPT {
            return Err(format!("byte {}: {n} fault runs, at most {RUNS_KEPT} are kept", d.at()));
        }
        let mut runs = VecDeque::with_capacity(n);
        for _ in 0..n {
            let first = d.i64("fault run start")?;
            runs.push_back((first, Run { last_ns: d.i64("fault run end")?, value: d.f64("fault run value")? }));
        }
        let latest = d.opt("latest reading", |d| {
            let (t, v) = (d.i64("latest reading time")?, d.f64("latest reading value")?);
            let q = d.u8("latest reading quality")?;
            let q = Quality::ALL.get(q as usize).copied().ok_or_else(|| format!("quality code {q}"))?;
            Ok((t, v, q))
        })?;
        Ok(Recent { runs, latest })
    }
}

pub(super) fn detect(id: &SeriesId, kind: Kind, point: &Point, recent: &Recent) -> Vec<Condition> {
    let mut out = Vec::new();
    let condition = |what: What, value: f64, since_ns: i64| Condition {
        key: format!("sensor_fault/{}/{}/{}/{}", fault_name(&what), id.factory, id.point, id.parameter),
        kind: AlertKind::SensorFault,
        severity: Severity::Warning,
        factory: id.factory.to_string(),
        point: id.point.to_string(),
        parameter: Some(id.parameter.to_string()),
        detail: Some(Box::new(Detail { measurement: Some(kind), what })),
        value: Some(value),
        limit: None,
        since_ns,
        deadline_ns: None,
    };
    let flatline_ns = (point.faults.flatline_after_s as i64).saturating_mul(SECOND_NS);
    let mut runs = recent.runs.iter().rev();
    if let Some((newest_first, newest)) = runs.next().map(|(f, r)| (*f, r)) {
        let newest_v = newest.value;
        let mut oldest_same = newest_first;
        let mut previous = (newest.last_ns > newest_first).then_some((newest.last_ns, newest_v));
        for &(first, ref run) in runs {
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
            out.push(condition(What::Flatline { after_s: point.faults.flatline_after_s }, newest_v, oldest_same));
        }
        if let (Some(bound), Some((prev_t, prev_v))) = (point.faults.max_change_per_min.get(&*id.parameter), previous) {
            let minutes = (newest_t - prev_t) as f64 / (60.0 * SECOND_NS as f64);
            let rate = (newest_v - prev_v).abs() / minutes.max(1.0 / 60.0);
            if rate > *bound {
                out.push(condition(
                    What::Spike { from: prev_v, rate_per_min: rate, bound_per_min: *bound },
                    newest_v,
                    newest_t,
                ));
            }
        }
    }
    if let Some((t, v, _)) = recent.latest()
        && !Catalog::builtin().is_plausible(kind, &id.parameter, v)
    {
        out.push(condition(What::Implausible, v, t));
    }
    out
}

/// The fault's name in its condition's key.
fn fault_name(what: &What) -> &'static str {
    match what {
        What::Flatline { .. } => "flatline",
        What::Spike { .. } => "spike",
        _ => "implausible",
    }
}
