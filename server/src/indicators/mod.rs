//! Environmental indicators of an area (or a factory) over a period, for the EIT assessment:
//! computed from what the compliance engine judged and the stored readings, each value with
//! the evidence it was computed from and what was left out and why.
//!
//! - [`periods`]: month, quarter, Thai fiscal year (October–September), any range; B.E. dates;
//! - [`compute`]: the built-in kinds (compliance rates, availability, exceedances) and the
//!   change against the previous period of the same length;
//! - [`loads`]: pollutant loads from the store's readings, where flow is measured;
//! - [`export`]: CSV and XLSX with Thai and English headers;
//! - served at `GET /api/v1/indicators` ([`crate::http`]).
//!
//! Definitions come from `<data_dir>/indicators.toml` when present, else the built-in set
//! (`config/examples/indicators.toml`).

pub mod compute;
pub mod export;
pub mod loads;
pub mod periods;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use eitwatch_config::indicators::IndicatorsFile;
use eitwatch_config::problems::Problems;
use eitwatch_config::site::Registry;
use serde::Serialize;

pub use compute::{Evidence, Indicator, Inputs, Selection, Value};
pub use periods::Range;

use crate::compliance::Episode;

/// The store is read this much at a time for loads.
const MONTH_NS: i64 = 31 * crate::compliance::period::DAY_NS;

/// The definitions file in a data directory.
pub fn definitions_path(data_dir: &Path) -> PathBuf {
    data_dir.join("indicators.toml")
}

/// The definitions a server with this data directory uses, and where they came from.
pub fn definitions(data_dir: &Path) -> Result<(IndicatorsFile, String), Problems> {
    let path = definitions_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let name = path.display().to_string();
            eitwatch_config::problems::load(&text, &name).map(|d| (d, name))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((IndicatorsFile::builtin(), "built in".into())),
        Err(e) => {
            let mut p = Problems { file: path.display().to_string(), list: Vec::new() };
            p.push("", format!("cannot read: {e}"));
            Err(p)
        }
    }
}

/// Every indicator of a definitions file over a range, with the previous range's values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Area asked for.
    pub area: Option<String>,
    /// Factory asked for.
    pub factory: Option<String>,
    /// The period.
    pub period: Range,
    /// The previous period of the same length (for `change`).
    pub previous: Range,
    /// When it was computed (engine clock), ns.
    pub generated_ns: i64,
    /// Where the definitions came from.
    pub definitions: String,
    /// The indicators, in the definitions' order.
    pub indicators: Vec<Indicator>,
    /// Exceedance episodes overlapping the period.
    pub episodes: Vec<Episode>,
}

/// Computes a report from inputs already gathered for the range and the previous one.
pub fn report(
    definitions: (&IndicatorsFile, &str),
    registry: &Registry,
    selection: &Selection,
    range: &Range,
    current: &Inputs,
    previous: &Inputs,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Report {
    let previous_range = range.previous();
    let total = definitions.0.indicator.len();
    let indicators = definitions
        .0
        .indicator
        .iter()
        .enumerate()
        .map(|(i, def)| {
            progress(i + 1, total, &def.id);
            let now = compute::indicator(def, registry, selection, range, current);
            let before = compute::indicator(def, registry, selection, &previous_range, previous);
            compute::with_previous(now, &before)
        })
        .collect();
    Report {
        area: selection.area.clone(),
        factory: selection.factory.clone(),
        period: range.clone(),
        previous: previous_range,
        generated_ns: current.now_ns,
        definitions: definitions.1.to_string(),
        indicators,
        episodes: current.episodes.clone(),
    }
}

/// Whether a selection asks for something the registry does not have.
pub fn check_selection(registry: &Registry, selection: &Selection) -> Result<(), String> {
    if let Some(a) = &selection.area
        && !registry.areas().iter().any(|x| &x.id == a)
    {
        return Err(format!("area: \"{a}\" is not a registered area"));
    }
    if let Some(f) = &selection.factory {
        match registry.factory(f) {
            None => return Err(format!("factory: \"{f}\" is not a registered factory")),
            Some((area, _)) if selection.area.as_ref().is_some_and(|a| a != &area.id) => {
                return Err(format!("factory: \"{f}\" is not in area \"{}\"", selection.area.as_deref().unwrap_or("")));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Gathers both ranges' inputs from a running server (the engine's lock is held only while
/// copying) and computes the report.
pub fn report_of(
    app: &crate::App,
    definitions: (&IndicatorsFile, &str),
    selection: &Selection,
    range: &Range,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Report {
    // Points added through the registry API count from the moment they were added.
    let registry = crate::registry::current_of(app);
    let gather = |r: &Range| {
        let mut inputs = Inputs::gather(|| app.compliance.engine(), &registry, selection, r);
        // A series at a time, a month at a time: a fiscal year of minute readings never sits
        // in memory whole.
        let mut fetch = |factory: &str, point: &str, parameter: &str, from: i64, to: i64| {
            let mut out = Vec::new();
            let mut start = from;
            while start < to {
                let end = start.saturating_add(MONTH_NS).min(to);
                let wanted = |k: &crate::store::SeriesKey| {
                    *k.factory == *factory && *k.point == *point && *k.parameter == *parameter
                };
                out.extend(
                    app.store
                        .query(wanted, start, end)
                        .into_iter()
                        .filter(|(_, _, s)| s.quality.is_judged())
                        .map(|(_, t, s)| (t, s.value)),
                );
                start = end;
            }
            out
        };
        inputs.gather_loads(&registry, selection, r, &mut fetch);
        inputs
    };
    let (current, previous) = (gather(range), gather(&range.previous()));
    report(definitions, &registry, selection, range, &current, &previous, progress)
}
