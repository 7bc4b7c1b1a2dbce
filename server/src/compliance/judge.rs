//! Which limits cover a series, and how a value is compared with one: unit conversion
//! (ppm ↔ mg/Nm³ at 25 °C, 1 atm through the catalog), O₂ correction, ranges, "must not be
//! detected", the TDS rule of the receiving water, and permits replacing a standard's limit.

use eitwatch_config::Catalog;
use eitwatch_config::site::{Factory, Point};
use eitwatch_config::standards::{Averaging, Confidence, ReceivingWaterRule, Standards, Verdict};
use serde::{Deserialize, Serialize};

/// A limit as the engine applies it: from a standard, or from a permit that replaced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitUsed {
    /// Stable id within its series (`moi-air-2549 table, boiler / heat source`, `permit …`).
    pub id: String,
    /// Standard id (for a permit: the standard whose limit it replaced, if any).
    pub standard: Option<String>,
    /// Clause of that standard.
    pub clause: Option<String>,
    /// The permit's reference, where a permit set this limit.
    pub permit: Option<String>,
    /// Where the value comes from (the standard's source, or the permit).
    pub source: String,
    /// How well it is backed.
    pub confidence: Confidence,
    /// Attributes of the limit no source confirmed.
    pub unconfirmed: Vec<String>,
    /// The bound in words.
    pub describe: String,
    /// Catalog parameter code.
    pub parameter: String,
    /// Upper bound in `unit` (before the TDS rule).
    pub max: Option<f64>,
    /// Lower bound in `unit`.
    pub min: Option<f64>,
    /// Must not be detected.
    pub not_detected: bool,
    /// Unit of the bounds and of judged values.
    pub unit: String,
    /// Over what it is judged.
    pub averaging: Averaging,
    /// Reference O₂ (%) values are corrected to.
    pub reference_o2_pct: Option<f64>,
    /// Valid share of expected readings a period needs (percent).
    pub availability_min_pct: f64,
    /// The TDS rule, where it applies.
    #[serde(skip)]
    pub receiving_water: Option<ReceivingWaterRule>,
    /// Whether `unit` is the catalog's unit of the parameter (no conversion to judge).
    #[serde(skip)]
    pub catalog_unit: bool,
}

impl LimitUsed {
    /// The upper bound at `point`: the TDS rule raises it for receiving water above its threshold.
    pub fn max_at(&self, point: &Point) -> Option<f64> {
        match (self.max, self.receiving_water, point.receiving_water_tds_mg_per_l) {
            (Some(max), Some(rule), Some(background)) if background > rule.background_above => {
                Some(max.max(background + rule.max_above_background))
            }
            (max, _, _) => max,
        }
    }

    /// Compares a value in the limit's unit (already O₂-corrected where the limit asks).
    pub fn compare(&self, point: &Point, value: f64, not_detected: bool) -> Verdict {
        if self.not_detected {
            return if not_detected { Verdict::Compliant } else { Verdict::Exceeds };
        }
        let over = self.max_at(point).is_some_and(|max| value > max);
        let under = self.min.is_some_and(|min| value < min);
        if over || under { Verdict::Exceeds } else { Verdict::Compliant }
    }
}

fn describe(not_detected: bool, min: Option<f64>, max: Option<f64>, unit: &str) -> String {
    match (not_detected, min, max) {
        (true, _, _) => "not detected".to_string(),
        (_, Some(min), Some(max)) => format!("{min}–{max} {unit}"),
        (_, None, Some(max)) => format!("≤ {max} {unit}"),
        (_, Some(min), None) => format!("≥ {min} {unit}"),
        (_, None, None) => "no bound".to_string(),
    }
}

/// Every limit that covers `parameter` at `point` of `factory`: the standards' limits, each
/// replaced by the factory's permits for that parameter (and point) where there are any.
pub fn limits_for(standards: &Standards, factory: &Factory, point: &Point, parameter: &str) -> Vec<LimitUsed> {
    let mut limits = limits_from(standards, factory, point, parameter);
    let catalog = Catalog::builtin();
    for l in &mut limits {
        let same = |v: f64| catalog.from_canonical(point.kind, parameter, v, &l.unit).ok() == Some(v);
        l.catalog_unit = same(1.0) && same(1234.5);
    }
    limits
}

fn limits_from(standards: &Standards, factory: &Factory, point: &Point, parameter: &str) -> Vec<LimitUsed> {
    let from_standards: Vec<LimitUsed> = standards
        .limits_for(point, factory.category, parameter)
        .map(|(s, l)| LimitUsed {
            id: format!("{} {}", s.id, l.clause),
            standard: Some(s.id.clone()),
            clause: Some(l.clause.clone()),
            permit: None,
            source: s.source.clone(),
            confidence: l.confidence_in(s),
            unconfirmed: l.unconfirmed.clone(),
            describe: l.describe(),
            parameter: l.parameter.clone(),
            max: l.max,
            min: l.min,
            not_detected: l.not_detected,
            unit: l.unit.clone(),
            averaging: l.averaging,
            reference_o2_pct: l.reference_o2_pct,
            availability_min_pct: l.availability_min_pct.unwrap_or(s.availability_min_pct),
            receiving_water: l.receiving_water,
            catalog_unit: false,
        })
        .collect();
    let permits: Vec<_> = factory
        .permit
        .iter()
        .filter(|p| p.parameter == parameter && p.point.as_ref().is_none_or(|id| *id == point.id))
        .collect();
    if permits.is_empty() {
        return from_standards;
    }
    let replaced = from_standards.first();
    permits
        .into_iter()
        .map(|p| LimitUsed {
            id: format!("permit {}", p.reference),
            standard: replaced.and_then(|r| r.standard.clone()),
            clause: replaced.and_then(|r| r.clause.clone()),
            permit: Some(p.reference.clone()),
            source: format!("permit {}", p.reference),
            confidence: Confidence::Primary,
            unconfirmed: Vec::new(),
            describe: describe(false, p.min, p.max, &p.unit),
            parameter: p.parameter.clone(),
            max: p.max,
            min: p.min,
            not_detected: false,
            unit: p.unit.clone(),
            averaging: p.averaging.or(replaced.map(|r| r.averaging)).unwrap_or(Averaging::Instantaneous),
            reference_o2_pct: p.reference_o2_pct.or(replaced.and_then(|r| r.reference_o2_pct)),
            availability_min_pct: replaced.map_or(80.0, |r| r.availability_min_pct),
            receiving_water: None,
            catalog_unit: false,
        })
        .collect()
}

/// Corrects a concentration measured at `o2_measured_pct` to `o2_reference_pct`:
/// C_ref = C × (21 − O₂_ref) / (21 − O₂_meas). `None` when the measured O₂ leaves no
/// combustion gas to correct (≥ 21 %) or is not a number.
pub fn o2_corrected(value: f64, o2_measured_pct: f64, o2_reference_pct: f64) -> Option<f64> {
    let room = 21.0 - o2_measured_pct;
    (o2_measured_pct.is_finite() && room > 0.0).then(|| value * (21.0 - o2_reference_pct) / room)
}
