//! The legal limits, as data.
//!
//! Each standard is a TOML file under `config/standards/`, embedded in the binary: the
//! notification's titles, source and how sure we are of it, then its limits. A limit names
//! its parameter, bound (max, min, both, or "must not be detected"), unit, averaging,
//! reference O₂ where one applies, clause, and which emission sources it covers. What the
//! sources we could read do not confirm is listed in `unconfirmed` and shown with the limit;
//! it is never presented as law.

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, UnitError};
use crate::reading::Kind;
use crate::site::{EmissionSource, Fuel, Point};

const BUILTIN: &[(&str, &str)] = &[
    ("moi-effluent-2560.toml", include_str!("../standards/moi-effluent-2560.toml")),
    ("moi-air-2549.toml", include_str!("../standards/moi-air-2549.toml")),
];

/// How well a value is backed by the sources read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Read in the notification's own text.
    Primary,
    /// From a secondary summary (consultancy, news), matching across sources.
    Secondary,
    /// No source we could read showed it.
    Unconfirmed,
}

/// Over what a limit is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Averaging {
    /// Each reading on its own (the effluent standard's grab sample).
    Instantaneous,
    /// Calendar hours, Asia/Bangkok.
    Hourly,
    /// Calendar days, Asia/Bangkok.
    Daily,
}

/// The TDS rule of the effluent standard: into water whose own TDS exceeds a threshold,
/// the effluent may exceed the receiving water's TDS by a margin instead.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceivingWaterRule {
    /// Receiving-water TDS above which the rule applies, in the limit's unit.
    pub background_above: f64,
    /// Allowed excess over the receiving water's TDS, in the limit's unit.
    pub max_above_background: f64,
}

/// One limit of a standard.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Catalog parameter code.
    pub parameter: String,
    /// Upper bound ("not exceeding"), in `unit`.
    #[serde(default)]
    pub max: Option<f64>,
    /// Lower bound, in `unit`.
    #[serde(default)]
    pub min: Option<f64>,
    /// The parameter must not be detected: judged on lab results' detection flags.
    #[serde(default)]
    pub not_detected: bool,
    /// Unit of the bounds, as the notification writes it.
    pub unit: String,
    /// Over what it is judged.
    pub averaging: Averaging,
    /// Reference O₂ (% by volume) the measured value is corrected to before comparison.
    #[serde(default)]
    pub reference_o2_pct: Option<f64>,
    /// Clause of the notification.
    pub clause: String,
    /// Emission sources this limit covers (emission standards only; empty: every source).
    #[serde(default)]
    pub source: Vec<EmissionSource>,
    /// Fuels this limit covers (empty: any fuel).
    #[serde(default)]
    pub fuel: Vec<Fuel>,
    /// Whether it covers processes with fuel combustion (`true`), without (`false`), or both.
    #[serde(default)]
    pub combustion: Option<bool>,
    /// The TDS rule, where it applies.
    #[serde(default)]
    pub receiving_water: Option<ReceivingWaterRule>,
    /// Overrides the standard's confidence for this limit.
    #[serde(default)]
    pub confidence: Option<Confidence>,
    /// Attributes of this limit no source we could read confirmed (`averaging`,
    /// `reference_o2_pct`, …).
    #[serde(default)]
    pub unconfirmed: Vec<String>,
    /// Anything a reader of the judgement should know.
    #[serde(default)]
    pub note: Option<String>,
    /// Share of a period's expected readings that must be valid for the period to be judged
    /// (overrides the standard's `availability_min_pct`).
    #[serde(default)]
    pub availability_min_pct: Option<f64>,
}

/// One standard (a notification), with its limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standard {
    /// Short stable id (`moi-effluent-2560`).
    pub id: String,
    /// Effluent or emission.
    pub kind: Kind,
    /// Title in Thai, as gazetted.
    pub title_th: String,
    /// Title in English.
    pub title_en: String,
    /// Date it took effect (ISO 8601).
    pub effective: String,
    /// Where its text and values were read.
    pub source: String,
    /// How well its values are backed.
    pub confidence: Confidence,
    /// Factory categories (จำพวก) it covers.
    pub factory_categories: Vec<u8>,
    /// Share of a period's expected readings (percent) that must be valid for an averaged
    /// period to be judged; below it the period is "insufficient data". DIW: 80 % of a day.
    #[serde(default = "default_availability_min_pct")]
    pub availability_min_pct: f64,
    /// Anything a reader should know.
    #[serde(default)]
    pub note: Option<String>,
    /// Its limits.
    pub limit: Vec<Limit>,
}

const fn default_availability_min_pct() -> f64 {
    80.0
}

/// The outcome of comparing one value with one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Within the limit.
    Compliant,
    /// Beyond it.
    Exceeds,
}

impl Limit {
    /// The limit's confidence: its own, or its standard's.
    pub fn confidence_in(&self, standard: &Standard) -> Confidence {
        self.confidence.unwrap_or(standard.confidence)
    }

    /// Whether this limit covers a monitoring point (by kind, emission source, fuel and combustion).
    pub fn covers(&self, point: &Point) -> bool {
        let Some(emission) = &point.emission else {
            return self.source.is_empty() && self.fuel.is_empty() && self.combustion.is_none();
        };
        (self.source.is_empty() || self.source.contains(&emission.source))
            && (self.fuel.is_empty() || emission.fuel.is_some_and(|f| self.fuel.contains(&f)))
            && self.combustion.is_none_or(|c| c == emission.combustion)
    }

    /// The upper bound that applies at `point`: the TDS rule raises it for receiving water
    /// above its threshold.
    pub fn max_at(&self, point: &Point) -> Option<f64> {
        match (self.max, self.receiving_water, point.receiving_water_tds_mg_per_l) {
            (Some(max), Some(rule), Some(background)) if background > rule.background_above => {
                Some(max.max(background + rule.max_above_background))
            }
            (max, _, _) => max,
        }
    }

    /// Judges one value given in the canonical unit of `(kind, parameter)`.
    /// `below_detection_limit` is a lab's "not detected".
    pub fn judge(
        &self,
        catalog: &Catalog,
        kind: Kind,
        point: &Point,
        canonical_value: f64,
        below_detection_limit: bool,
    ) -> Result<Verdict, UnitError> {
        if self.not_detected {
            return Ok(if below_detection_limit { Verdict::Compliant } else { Verdict::Exceeds });
        }
        let value = catalog.from_canonical(kind, &self.parameter, canonical_value, &self.unit)?;
        let over = self.max_at(point).is_some_and(|max| value > max);
        let under = self.min.is_some_and(|min| value < min);
        Ok(if over || under { Verdict::Exceeds } else { Verdict::Compliant })
    }

    /// The bound in words (`≤ 120 mg/L`, `5.5–9 pH`, `not detected`).
    pub fn describe(&self) -> String {
        match (self.not_detected, self.min, self.max) {
            (true, _, _) => "not detected".to_string(),
            (_, Some(min), Some(max)) => format!("{min}–{max} {}", self.unit),
            (_, None, Some(max)) => format!("≤ {max} {}", self.unit),
            (_, Some(min), None) => format!("≥ {min} {}", self.unit),
            (_, None, None) => "no bound".to_string(),
        }
    }
}

/// Every standard eitwatch knows.
#[derive(Debug, Clone)]
pub struct Standards {
    standards: Vec<Standard>,
}

impl Standards {
    /// The standards shipped with eitwatch.
    pub fn builtin() -> &'static Standards {
        static STANDARDS: std::sync::OnceLock<Standards> = std::sync::OnceLock::new();
        STANDARDS.get_or_init(|| {
            let standards = BUILTIN
                .iter()
                .map(|(file, text)| {
                    #[allow(clippy::expect_used)] // shipped data, checked by this crate's tests
                    Standard::from_toml(text, Catalog::builtin())
                        .map_err(|e| format!("{file}: {e}"))
                        .expect("built-in standard")
                })
                .collect();
            Standards { standards }
        })
    }

    /// Every standard.
    pub fn iter(&self) -> impl Iterator<Item = &Standard> {
        self.standards.iter()
    }

    /// The standard with this id.
    pub fn get(&self, id: &str) -> Option<&Standard> {
        self.standards.iter().find(|s| s.id == id)
    }

    /// The limits that apply to `parameter` at `point` of a factory of `category`.
    pub fn limits_for<'s, 'q>(
        &'s self,
        point: &'q Point,
        factory_category: u8,
        parameter: &'q str,
    ) -> impl Iterator<Item = (&'s Standard, &'s Limit)> + use<'s, 'q> {
        self.standards
            .iter()
            .filter(move |s| s.kind == point.kind && s.factory_categories.contains(&factory_category))
            .flat_map(|s| s.limit.iter().map(move |l| (s, l)))
            .filter(move |(_, l)| l.parameter == parameter && l.covers(point))
    }
}

impl Standard {
    /// Parses a standard and checks every limit against the catalog.
    pub fn from_toml(text: &str, catalog: &Catalog) -> Result<Standard, String> {
        let standard: Standard = toml::from_str(text).map_err(|e| e.to_string())?;
        for (i, l) in standard.limit.iter().enumerate() {
            let at = format!("limit[{i}] ({})", l.parameter);
            let p = catalog.get(standard.kind, &l.parameter).ok_or(format!("{at}: not in the catalog"))?;
            if l.max.is_none() && l.min.is_none() && !l.not_detected {
                return Err(format!("{at}: no bound"));
            }
            catalog.from_canonical(standard.kind, &p.code, 1.0, &l.unit).map_err(|e| format!("{at}: {e}"))?;
            if l.availability_min_pct.is_some_and(|a| !(0.0..=100.0).contains(&a)) {
                return Err(format!("{at}: availability_min_pct must be within 0–100"));
            }
        }
        if !(0.0..=100.0).contains(&standard.availability_min_pct) {
            return Err("availability_min_pct must be within 0–100".to_string());
        }
        Ok(standard)
    }
}

#[cfg(test)]
mod tests;
