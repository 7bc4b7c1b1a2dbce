//! Analyser deviation records (DIW, online BOD/COD analysers): at least twice a year a grab
//! sample analysed by a registered laboratory beside the analyser's reading at sampling,
//! E = M − T (M the analyser, T the laboratory, mg/L), BOD to one decimal and COD as an
//! integer, reported within 30 days of sampling (the first report within June, the second
//! within December). Both M and T are taken at that precision before subtracting, so E is
//! exact in that unit: M 22.45 and T 20.1 give 22.5 − 20.1 = 2.4 (see [`deviation`]).
//!
//! A record (`POST /api/v1/deviations`) is stored with E, whether it was reported late, who
//! recorded it and when. Each analyser's status ([`statuses`]) is `ok`, `due` (nothing
//! sampled yet in the current half-year; due by 30 June or 31 December) or `overdue`
//! (nothing sampled in the last half-year that ended), and a factory's the worst of its
//! analysers ([`worst_by_factory`]).
//!
//! On disk: `<data_dir>/deviations.log`, append-only JSON lines, `fdatasync`ed before the
//! answer, never rewritten (DIW keeps them at least a year; we keep them all).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use eitwatch_config::reading::Kind;
use eitwatch_config::site::Registry;
use jiff::civil::{Date, date};
use serde::{Deserialize, Serialize};

/// Days from sampling within which a report is due.
pub const REPORT_WITHIN_DAYS: i32 = 30;

/// A deviation record as submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submitted {
    /// Factory id.
    pub factory: String,
    /// The outfall the analyser measures.
    pub point: String,
    /// `bod` or `cod`.
    pub parameter: String,
    /// Sampling date, Bangkok (`2026-06-10`).
    pub sampled_on: String,
    /// M: the analyser's reading at sampling, mg/L.
    pub analyser_mg_per_l: f64,
    /// T: the registered laboratory's result, mg/L.
    pub lab_mg_per_l: f64,
    /// The laboratory (name, registration number).
    pub laboratory: String,
    /// Date of the report (absent: today, Bangkok).
    #[serde(default)]
    pub reported_on: Option<String>,
    /// Anything else.
    #[serde(default)]
    pub note: Option<String>,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Sequence number, from 1.
    pub id: u64,
    /// As submitted (with `reported_on` filled in).
    #[serde(flatten)]
    pub submitted: Submitted,
    /// E = M − T at the parameter's precision, mg/L.
    pub deviation_mg_per_l: f64,
    /// Reported more than 30 days after sampling.
    pub late: bool,
    /// Who recorded it (`admin token …`, `write token …`).
    pub recorded_by: String,
    /// When (server clock), ns.
    pub recorded_ns: i64,
}

/// E = M − T with M and T first taken at the parameter's reporting precision (BOD 0.1 mg/L,
/// COD 1 mg/L, half away from zero), so the difference is exact in that unit.
pub fn deviation(parameter: &str, analyser: f64, lab: f64) -> Option<f64> {
    let scale = match parameter {
        "bod" => 10.0,
        "cod" => 1.0,
        _ => return None,
    };
    // The tiny nudge keeps 22.45 (stored as 22.4499…) at 22.5, as written on the report.
    let at = |v: f64| (v * scale + v.signum() * 1e-9).round() as i64;
    Some((at(analyser) - at(lab)) as f64 / scale)
}

fn parse_date(key: &str, value: &str) -> Result<Date, String> {
    value.parse::<Date>().map_err(|_| format!("{key}: \"{value}\" is not a date, expected YYYY-MM-DD (Bangkok)"))
}

fn today(now_ns: i64) -> Date {
    crate::compliance::period::local_date(now_ns).parse().unwrap_or(date(1970, 1, 1))
}

/// Checks a submission against the registry; every problem at once.
pub fn validate(s: &Submitted, registry: &Registry, now_ns: i64) -> Result<(Date, Date), Vec<String>> {
    let mut problems = Vec::new();
    match registry.point(&s.factory, &s.point) {
        None => problems.push(format!("factory/point: \"{}/{}\" is not a registered point", s.factory, s.point)),
        Some((_, p)) if p.kind != Kind::Effluent => {
            problems.push(format!("point: \"{}\" is not an effluent outfall", s.point))
        }
        Some((_, p)) if !p.parameters.contains(&s.parameter) => {
            problems.push(format!("parameter: \"{}\" is not monitored at {}/{}", s.parameter, s.factory, s.point))
        }
        Some(_) => {}
    }
    if !matches!(s.parameter.as_str(), "bod" | "cod") {
        problems.push(format!("parameter: \"{}\" has no deviation rule, expected bod or cod", s.parameter));
    }
    for (key, v) in [("analyser_mg_per_l", s.analyser_mg_per_l), ("lab_mg_per_l", s.lab_mg_per_l)] {
        if !(v.is_finite() && v >= 0.0) {
            problems.push(format!("{key}: {v} is not a concentration, expected a number ≥ 0"));
        }
    }
    if s.laboratory.trim().is_empty() {
        problems.push("laboratory: must name the registered laboratory".into());
    }
    let today = today(now_ns);
    let sampled = parse_date("sampled_on", &s.sampled_on).map_err(|e| problems.push(e)).ok();
    let reported = match &s.reported_on {
        Some(r) => parse_date("reported_on", r).map_err(|e| problems.push(e)).ok(),
        None => Some(today),
    };
    if let Some(d) = sampled
        && d > today
    {
        problems.push(format!("sampled_on: {d} is in the future (today is {today})"));
    }
    if let (Some(sd), Some(rd)) = (sampled, reported)
        && rd < sd
    {
        problems.push(format!("reported_on: {rd} is before sampled_on {sd}"));
    }
    match (sampled, reported) {
        (Some(sd), Some(rd)) if problems.is_empty() => Ok((sd, rd)),
        _ => Err(problems),
    }
}

/// The append-only log.
#[derive(Debug)]
pub struct DeviationLog {
    path: PathBuf,
}

/// One writer at a time per process: ids are the line count.
static WRITE: Mutex<()> = Mutex::new(());

impl DeviationLog {
    /// The log of a data directory.
    pub fn new(data_dir: &Path) -> DeviationLog {
        DeviationLog { path: data_dir.join("deviations.log") }
    }

    /// Every record, oldest first; a torn last line (a crash mid-write, never answered) is skipped.
    pub fn list(&self) -> std::io::Result<Vec<Record>> {
        crate::jsonl::read(&self.path)
    }

    /// Stores a validated submission, durably; returns the record.
    pub fn append(&self, mut s: Submitted, reported: Date, by: String, now_ns: i64) -> std::io::Result<Record> {
        let _guard = WRITE.lock().unwrap_or_else(|p| p.into_inner());
        let id = self.list()?.len() as u64 + 1;
        let sampled: Date = s.sampled_on.parse().map_err(std::io::Error::other)?;
        s.reported_on = Some(reported.to_string());
        let late = (reported - sampled).get_days() > REPORT_WITHIN_DAYS;
        let record = Record {
            id,
            deviation_mg_per_l: deviation(&s.parameter, s.analyser_mg_per_l, s.lab_mg_per_l).unwrap_or(f64::NAN),
            submitted: s,
            late,
            recorded_by: by,
            recorded_ns: now_ns,
        };
        crate::jsonl::append(&mut crate::jsonl::open(&self.path)?, std::slice::from_ref(&record))?;
        Ok(record)
    }
}

/// Where an analyser stands with its reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Sampled in the current half-year and the last one.
    Ok,
    /// Nothing sampled yet in the current half-year.
    Due,
    /// Nothing sampled in the last half-year that ended.
    Overdue,
}

/// One analyser's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalyserStatus {
    /// Factory.
    pub factory: String,
    /// Point.
    pub point: String,
    /// `bod` or `cod`.
    pub parameter: String,
    /// The status.
    pub status: Status,
    /// The current half-year's report is due by this date.
    pub due_by: String,
    /// The latest sampling date recorded.
    pub last_sampled_on: Option<String>,
    /// Its E.
    pub last_deviation_mg_per_l: Option<f64>,
    /// Records in the history.
    pub records: usize,
    /// Records reported more than 30 days after sampling.
    pub late_records: usize,
}

/// First day of the half-year holding `d`, and of the next one.
fn half(d: Date) -> (Date, Date) {
    if d.month() <= 6 {
        (date(d.year(), 1, 1), date(d.year(), 7, 1))
    } else {
        (date(d.year(), 7, 1), date(d.year() + 1, 1, 1))
    }
}

/// The status of every BOD/COD analyser at a registered outfall matching `covers`.
pub fn statuses(
    registry: &Registry,
    records: &[Record],
    now_ns: i64,
    covers: impl Fn(&str, &str, &str) -> bool,
) -> Vec<AnalyserStatus> {
    let today = today(now_ns);
    let (current, next) = half(today);
    let (previous, _) = half(current.yesterday().unwrap_or(current));
    let mut out = Vec::new();
    for f in registry.areas().iter().flat_map(|a| a.factory.iter()) {
        for p in f.point.iter().filter(|p| p.kind == Kind::Effluent) {
            for code in p.parameters.iter().filter(|c| matches!(c.as_str(), "bod" | "cod")) {
                if !covers(&f.id, &p.id, code) {
                    continue;
                }
                let mine: Vec<&Record> = records
                    .iter()
                    .filter(|r| {
                        r.submitted.factory == f.id && r.submitted.point == p.id && &r.submitted.parameter == code
                    })
                    .collect();
                let sampled: Vec<Date> = mine.iter().filter_map(|r| r.submitted.sampled_on.parse().ok()).collect();
                let within = |from: Date, to: Date| sampled.iter().any(|d| *d >= from && *d < to);
                let status = if !within(previous, current) {
                    Status::Overdue
                } else if !within(current, next) {
                    Status::Due
                } else {
                    Status::Ok
                };
                let last = mine.iter().max_by_key(|r| (r.submitted.sampled_on.clone(), r.id));
                out.push(AnalyserStatus {
                    factory: f.id.clone(),
                    point: p.id.clone(),
                    parameter: code.clone(),
                    status,
                    due_by: next.yesterday().unwrap_or(next).to_string(),
                    last_sampled_on: last.map(|r| r.submitted.sampled_on.clone()),
                    last_deviation_mg_per_l: last.map(|r| r.deviation_mg_per_l),
                    records: mine.len(),
                    late_records: mine.iter().filter(|r| r.late).count(),
                });
            }
        }
    }
    out
}

/// A factory's status: the worst of its analysers'.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FactoryStatus {
    /// Factory.
    pub factory: String,
    /// The worst status of its analysers.
    pub status: Status,
}

/// Each factory's worst analyser status, by factory id.
pub fn worst_by_factory(statuses: &[AnalyserStatus]) -> Vec<FactoryStatus> {
    let mut factories: BTreeMap<&str, Status> = BTreeMap::new();
    for a in statuses {
        let s = factories.entry(a.factory.as_str()).or_insert(Status::Ok);
        *s = (*s).max(a.status);
    }
    factories.into_iter().map(|(f, status)| FactoryStatus { factory: f.to_string(), status }).collect()
}

#[cfg(test)]
mod tests;
