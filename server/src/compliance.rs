//! Judges readings against the limits that cover their point.
//!
//! This first cut judges instantaneous limits (the effluent standard's grab sample) as each
//! reading arrives. Only `valid` readings are judged; maintenance, calibration, suspect and
//! invalid readings are stored and shown but never make or clear an exceedance.

use eitwatch_config::Catalog;
use eitwatch_config::reading::Reading;
use eitwatch_config::site::Registry;
use eitwatch_config::standards::{Averaging, Limit, Standard, Standards, Verdict};

/// One reading judged against one limit.
#[derive(Debug, Clone, Copy)]
pub struct Judgement<'a> {
    /// The standard the limit comes from.
    pub standard: &'a Standard,
    /// The limit.
    pub limit: &'a Limit,
    /// The outcome.
    pub verdict: Verdict,
}

/// Judges `reading` against every instantaneous limit covering its point. Readings of
/// points not in the registry, or not of judged quality, yield nothing.
pub fn judge(registry: &Registry, reading: &Reading) -> Vec<Judgement<'static>> {
    if !reading.quality.is_judged() {
        return Vec::new();
    }
    let Some((factory, point)) = registry.point(&reading.factory, &reading.point) else {
        return Vec::new();
    };
    let catalog = Catalog::builtin();
    Standards::builtin()
        .limits_for(point, factory.category, &reading.parameter)
        .filter(|(_, limit)| limit.averaging == Averaging::Instantaneous)
        .filter_map(|(standard, limit)| {
            match limit.judge(catalog, reading.kind, point, reading.value, reading.below_detection_limit) {
                Ok(verdict) => Some(Judgement { standard, limit, verdict }),
                Err(error) => {
                    tracing::error!(standard = %standard.id, parameter = %reading.parameter, %error, "Limit cannot be judged");
                    None
                }
            }
        })
        .collect()
}
