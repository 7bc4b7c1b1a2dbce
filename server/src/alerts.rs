//! Exceedance alerts: one per ongoing condition (factory, point, parameter, limit), firing
//! from its first exceeding reading until a compliant reading that is newer than the last
//! exceeding one resolves it. Kept in `<data_dir>/alerts.json`, rewritten atomically.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use eitwatch_config::reading::Reading;
use eitwatch_config::standards::{Confidence, Verdict};
use serde::{Deserialize, Serialize};

use crate::compliance::Judgement;

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The condition holds.
    Firing,
    /// It no longer holds.
    Resolved,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique, increasing.
    pub id: u64,
    /// What kind of finding (`exceedance`).
    pub kind: String,
    /// Firing or resolved.
    pub state: State,
    /// Factory id.
    pub factory: String,
    /// Point id.
    pub point: String,
    /// Parameter code.
    pub parameter: String,
    /// The first exceeding value, in the canonical unit.
    pub value: f64,
    /// The worst exceeding value seen while firing.
    pub peak: f64,
    /// The limit, in words (`≤ 120 mg/L`).
    pub limit: String,
    /// Standard id.
    pub standard: String,
    /// Clause of the standard.
    pub clause: String,
    /// How well the limit is backed by the sources.
    pub confidence: Confidence,
    /// Attributes of the limit that are unconfirmed.
    pub unconfirmed: Vec<String>,
    /// Measurement time of the first exceeding reading (ns since the epoch).
    pub started_ns: i64,
    /// Measurement time of the latest exceeding reading.
    pub last_exceeding_ns: i64,
    /// Measurement time of the reading that resolved it.
    pub resolved_ns: Option<i64>,
}

impl Alert {
    fn same_condition(&self, r: &Reading, j: &Judgement<'_>) -> bool {
        self.state == State::Firing
            && self.factory == r.factory
            && self.point == r.point
            && self.parameter == r.parameter
            && self.standard == j.standard.id
            && self.clause == j.limit.clause
    }
}

/// Every alert, kept forever.
#[derive(Debug)]
pub struct AlertBook {
    path: PathBuf,
    alerts: Mutex<Vec<Alert>>,
}

impl AlertBook {
    /// Loads the alert file (none yet: empty).
    pub fn open(path: &Path) -> std::io::Result<AlertBook> {
        let alerts = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(AlertBook { path: path.to_path_buf(), alerts: Mutex::new(alerts) })
    }

    /// Applies the judgements of a batch (readings in time order). Returns the alerts
    /// opened and saves the book when anything changed.
    pub fn apply<'a>(
        &self,
        judged: impl IntoIterator<Item = (&'a Reading, Judgement<'a>)>,
    ) -> std::io::Result<Vec<Alert>> {
        let mut alerts = self.alerts.lock().unwrap_or_else(|p| p.into_inner());
        let mut opened = Vec::new();
        let mut changed = false;
        for (r, j) in judged {
            let open = alerts.iter_mut().find(|a| a.same_condition(r, &j));
            match (j.verdict, open) {
                (Verdict::Exceeds, Some(a)) => {
                    a.peak = if (r.value - a.value).abs() > (a.peak - a.value).abs() { r.value } else { a.peak };
                    a.last_exceeding_ns = a.last_exceeding_ns.max(r.time_ns);
                    changed = true;
                }
                (Verdict::Exceeds, None) => {
                    let alert = Alert {
                        id: alerts.iter().map(|a| a.id).max().unwrap_or(0) + 1,
                        kind: "exceedance".to_string(),
                        state: State::Firing,
                        factory: r.factory.clone(),
                        point: r.point.clone(),
                        parameter: r.parameter.clone(),
                        value: r.value,
                        peak: r.value,
                        limit: j.limit.describe(),
                        standard: j.standard.id.clone(),
                        clause: j.limit.clause.clone(),
                        confidence: j.limit.confidence_in(j.standard),
                        unconfirmed: j.limit.unconfirmed.clone(),
                        started_ns: r.time_ns,
                        last_exceeding_ns: r.time_ns,
                        resolved_ns: None,
                    };
                    tracing::warn!(factory = %r.factory, point = %r.point, parameter = %r.parameter, value = r.value, limit = %alert.limit, "Exceedance");
                    opened.push(alert.clone());
                    alerts.push(alert);
                    changed = true;
                }
                (Verdict::Compliant, Some(a)) if r.time_ns > a.last_exceeding_ns => {
                    a.state = State::Resolved;
                    a.resolved_ns = Some(r.time_ns);
                    changed = true;
                }
                (Verdict::Compliant, _) => {}
            }
        }
        if changed {
            let tmp = self.path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec(&*alerts).map_err(std::io::Error::other)?)?;
            std::fs::rename(&tmp, &self.path)?;
        }
        Ok(opened)
    }

    /// Every alert, newest first.
    pub fn list(&self) -> Vec<Alert> {
        let mut list = self.alerts.lock().unwrap_or_else(|p| p.into_inner()).clone();
        list.reverse();
        list
    }
}
