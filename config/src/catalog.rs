//! The parameter catalog: what eitwatch can measure, in which unit it stores it, and how
//! other units convert to that one.
//!
//! The catalog is data (`config/catalog.toml`, embedded in the binary). Each parameter has a
//! *dimension*, which fixes the units it accepts. Conversions are exact linear maps, except
//! gas concentrations, where ppm ↔ mg/Nm³ uses the parameter's molar mass and the molar
//! volume at 25 °C and 1 atm (24.45 L/mol), the reference conditions of Thai standards.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::reading::Kind;

/// Molar volume of an ideal gas at 25 °C and 1 atm, in L/mol.
pub const MOLAR_VOLUME_L_PER_MOL: f64 = 24.45;

const CATALOG_TOML: &str = include_str!("../catalog.toml");

/// What a parameter physically is; fixes the units it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Mass per volume of water (mg/L).
    WaterConcentration,
    /// Gas in flue gas: volume fraction (ppm) or mass per normal volume (mg/Nm³).
    GasConcentration,
    /// Particulate or metal in flue gas: mass per normal volume only (mg/Nm³).
    DustConcentration,
    /// °C.
    Temperature,
    /// Volume per time of water (m³/h).
    WaterFlow,
    /// Volume per time of flue gas (m³/h).
    GasFlow,
    /// Percent (O₂ by volume, opacity).
    Percent,
    /// pH units.
    Ph,
    /// ADMI colour units.
    Colour,
}

/// One catalog entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    /// The measurement it belongs to; `(kind, code)` is the catalog key.
    pub kind: Kind,
    /// Code used as the line-protocol field key (`cod`, `so2`).
    pub code: String,
    /// English name.
    pub name_en: String,
    /// Thai name, as written in the cited Thai sources; `None` where no source showed one.
    #[serde(default)]
    pub name_th: Option<String>,
    /// Fixes the accepted units.
    pub dimension: Dimension,
    /// The unit values are stored in.
    pub unit: String,
    /// The unit as people write it (`°C`, `m³/h`, `mg/Nm³`; empty for pH).
    pub unit_display: String,
    /// Decimals a value is shown with wherever a person reads it (the API keeps full values).
    pub display_decimals: u8,
    /// Molar mass in g/mol, for ppm ↔ mg/Nm³ (gas concentrations only).
    #[serde(default)]
    pub molar_mass_g_per_mol: Option<f64>,
    /// Physically plausible range in the canonical unit; outside it a value is suspect.
    pub plausible: [f64; 2],
}

/// Why a unit could not be converted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UnitError {
    /// The parameter code is not in the catalog for this kind.
    #[error("unknown {kind} parameter \"{code}\"")]
    UnknownParameter {
        /// The measurement kind.
        kind: Kind,
        /// The code given.
        code: String,
    },
    /// The unit is not one the parameter's dimension accepts.
    #[error("parameter \"{parameter}\" does not accept unit \"{unit}\", expected one of: {expected}")]
    UnknownUnit {
        /// Parameter code.
        parameter: String,
        /// The unit given.
        unit: String,
        /// The accepted units, comma separated.
        expected: String,
    },
    /// The converted value is beyond what a float holds (a huge value times a factor).
    #[error("{value} {unit} of \"{parameter}\" is not a finite number in {canonical}")]
    NotFinite {
        /// Parameter code.
        parameter: String,
        /// The value given.
        value: f64,
        /// Its unit.
        unit: String,
        /// The unit it was converted to.
        canonical: String,
    },
}

/// The whole catalog, by code.
#[derive(Debug, Clone)]
pub struct Catalog {
    // One map per kind (in `Kind::ALL` order) rather than one keyed by `(Kind, String)`: a
    // lookup by `&str` then allocates no key (ingest and judgement look up every reading).
    by_code: [BTreeMap<String, Parameter>; 3],
}

fn slot(kind: Kind) -> usize {
    match kind {
        Kind::Effluent => 0,
        Kind::Emission => 1,
        Kind::Ambient => 2,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    parameter: Vec<Parameter>,
}

/// A linear conversion to the canonical unit of a dimension: `canonical = x * factor + offset`,
/// or a gas conversion that needs the molar mass.
#[derive(Debug, Clone, Copy)]
enum ToBase {
    Linear {
        factor: f64,
        offset: f64,
    },
    /// mg/Nm³ × this factor → the dimension base unit (ppm) needs `× 24.45 / M`.
    MassPerNormalVolume {
        mg_per_unit: f64,
    },
}

/// The units of each dimension, with their conversion to the dimension's base unit (the
/// first one listed). Spellings are normalised by [`normalise_unit`] before lookup.
fn dimension_units(dimension: Dimension) -> &'static [(&'static str, ToBase)] {
    use ToBase::*;
    const fn lin(factor: f64) -> ToBase {
        Linear { factor, offset: 0.0 }
    }
    match dimension {
        Dimension::WaterConcentration => {
            const {
                &[
                    ("mg/L", lin(1.0)),
                    ("ug/L", lin(0.001)),
                    ("g/L", lin(1000.0)),
                    ("g/m3", lin(1.0)),
                    // Analysers commonly label dilute aqueous mg/L as ppm.
                    ("ppm", lin(1.0)),
                    ("ppb", lin(0.001)),
                ]
            }
        }
        Dimension::GasConcentration => {
            const {
                &[
                    ("ppm", lin(1.0)),
                    ("ppb", lin(0.001)),
                    ("mg/Nm3", MassPerNormalVolume { mg_per_unit: 1.0 }),
                    ("ug/Nm3", MassPerNormalVolume { mg_per_unit: 0.001 }),
                    ("g/Nm3", MassPerNormalVolume { mg_per_unit: 1000.0 }),
                ]
            }
        }
        Dimension::DustConcentration => {
            const { &[("mg/Nm3", lin(1.0)), ("ug/Nm3", lin(0.001)), ("g/Nm3", lin(1000.0))] }
        }
        Dimension::Temperature => {
            const {
                &[
                    ("degC", lin(1.0)),
                    ("degF", Linear { factor: 5.0 / 9.0, offset: -32.0 * 5.0 / 9.0 }),
                    ("K", Linear { factor: 1.0, offset: -273.15 }),
                ]
            }
        }
        Dimension::WaterFlow => {
            const {
                &[
                    ("m3/h", lin(1.0)),
                    ("m3/d", lin(1.0 / 24.0)),
                    ("m3/min", lin(60.0)),
                    ("m3/s", lin(3600.0)),
                    ("L/s", lin(3.6)),
                    ("L/min", lin(0.06)),
                ]
            }
        }
        Dimension::GasFlow => const { &[("m3/h", lin(1.0)), ("m3/min", lin(60.0)), ("m3/s", lin(3600.0))] },
        Dimension::Percent => const { &[("%", lin(1.0))] },
        Dimension::Ph => const { &[("pH", lin(1.0))] },
        Dimension::Colour => const { &[("ADMI", lin(1.0))] },
    }
}

/// Folds the usual spellings of a unit onto the catalog's: `µg/l` → `ug/L`, `°C` → `degC`,
/// `mg/m³` → `mg/Nm3` (Thai standards write mg/m³ for normal conditions).
pub fn normalise_unit(unit: &str) -> String {
    let u = unit.trim().replace('³', "3").replace(['µ', 'μ'], "u");
    let folded = match u.to_ascii_lowercase().as_str() {
        "mg/l" => "mg/L",
        "ug/l" => "ug/L",
        "g/l" => "g/L",
        "g/m3" => "g/m3",
        "ppm" => "ppm",
        "ppb" => "ppb",
        "mg/nm3" | "mg/m3" => "mg/Nm3",
        "ug/nm3" | "ug/m3" => "ug/Nm3",
        "g/nm3" => "g/Nm3",
        "degc" | "°c" | "c" | "celsius" => "degC",
        "degf" | "°f" | "f" | "fahrenheit" => "degF",
        "k" | "kelvin" => "K",
        "m3/h" | "m3/hr" | "cmh" => "m3/h",
        "m3/d" | "m3/day" | "cmd" => "m3/d",
        "m3/min" => "m3/min",
        "m3/s" => "m3/s",
        "l/s" => "L/s",
        "l/min" => "L/min",
        "%" | "%vol" | "% vol" | "percent" => "%",
        "ph" | "-" | "" => "pH",
        "admi" => "ADMI",
        _ => return u,
    };
    folded.to_string()
}

/// A unit as people write it: `degC` → `°C`, `m3/h` → `m³/h`, `mg/Nm3` → `mg/Nm³`, `pH` →
/// nothing (pH has no unit); any other spelling as it is.
pub fn typeset_unit(unit: &str) -> std::borrow::Cow<'_, str> {
    match unit {
        "pH" => "".into(),
        "degC" => "°C".into(),
        "degF" => "°F".into(),
        "ug/L" => "µg/L".into(),
        "ug/Nm3" => "µg/Nm³".into(),
        u if u.contains('3') && u.starts_with(['m', 'g', 'L']) => u.replace("m3", "m³").into(),
        u => u.into(),
    }
}

/// `value` with `decimals` decimals (half away from zero, as TIS 929 rounds), never `-0`;
/// non-finite values as `NaN`, `inf`, `-inf`.
pub fn format_decimals(value: f64, decimals: u8) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let decimals = usize::from(decimals.min(12));
    let scale = 10f64.powi(decimals as i32);
    let rounded = (value * scale).round() / scale;
    // Rounding a tiny negative value gives -0.0.
    let rounded = if rounded == 0.0 { 0.0 } else { rounded };
    format!("{rounded:.decimals$}")
}

/// [`format_decimals`] with the thousands grouped by commas, as Thai and English texts write
/// them (`17,000`, `1,234.5`).
pub fn format_grouped(value: f64, decimals: u8) -> String {
    let plain = format_decimals(value, decimals);
    let (sign, digits) = plain.strip_prefix('-').map_or(("", plain.as_str()), |d| ("-", d));
    let (int, frac) = digits.split_once('.').map_or((digits, None), |(i, f)| (i, Some(f)));
    if !int.bytes().all(|b| b.is_ascii_digit()) {
        return plain;
    }
    let mut grouped = String::with_capacity(plain.len() + int.len() / 3);
    grouped.push_str(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if let Some(f) = frac {
        grouped.push('.');
        grouped.push_str(f);
    }
    grouped
}

impl Parameter {
    /// `value` (canonical unit) rounded to the display precision, as a number.
    pub fn round(&self, value: f64) -> f64 {
        let scale = 10f64.powi(i32::from(self.display_decimals.min(12)));
        let rounded = (value * scale).round() / scale;
        if rounded == 0.0 { 0.0 } else { rounded }
    }

    /// `value` (canonical unit) with the display precision, no unit (`5.40`, `17500`).
    pub fn format(&self, value: f64) -> String {
        format_decimals(value, self.display_decimals)
    }
}

/// Every unit spelling the catalog itself uses: [`normalise_unit`] maps each to itself.
const CATALOG_SPELLINGS: &[&str] = &[
    "mg/L", "ug/L", "g/L", "g/m3", "ppm", "ppb", "mg/Nm3", "ug/Nm3", "g/Nm3", "degC", "degF", "K", "m3/h", "m3/d",
    "m3/min", "m3/s", "L/s", "L/min", "%", "pH", "ADMI",
];

/// [`normalise_unit`] without an allocation for a unit already spelled as the catalog spells
/// it (what standards and agents send: every judged reading converts its limit's unit).
fn normalised(unit: &str) -> std::borrow::Cow<'_, str> {
    match CATALOG_SPELLINGS.contains(&unit) {
        true => std::borrow::Cow::Borrowed(unit),
        false => std::borrow::Cow::Owned(normalise_unit(unit)),
    }
}

impl Catalog {
    /// The catalog shipped with eitwatch.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
        CATALOG.get_or_init(|| {
            #[allow(clippy::expect_used)] // shipped data, checked by this crate's tests
            Catalog::from_toml(CATALOG_TOML).expect("the built-in catalog.toml is valid")
        })
    }

    /// Parses a catalog file; every entry's canonical unit must belong to its dimension.
    pub fn from_toml(text: &str) -> Result<Catalog, String> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut by_code: [BTreeMap<String, Parameter>; 3] = Default::default();
        for p in file.parameter {
            if !dimension_units(p.dimension).iter().any(|(u, _)| *u == p.unit) {
                return Err(format!("parameter {}: unit {} is not of its dimension", p.code, p.unit));
            }
            if p.dimension == Dimension::GasConcentration && p.molar_mass_g_per_mol.is_none() {
                return Err(format!("parameter {}: a gas needs molar_mass_g_per_mol", p.code));
            }
            if typeset_unit(&p.unit) != p.unit_display {
                return Err(format!(
                    "parameter {}: unit_display \"{}\" is not how unit {} is written (\"{}\")",
                    p.code,
                    p.unit_display,
                    p.unit,
                    typeset_unit(&p.unit)
                ));
            }
            if p.display_decimals > 6 {
                return Err(format!("parameter {}: display_decimals {} (at most 6)", p.code, p.display_decimals));
            }
            if let Some(old) = by_code[slot(p.kind)].insert(p.code.clone(), p) {
                return Err(format!("parameter {} {} listed twice", old.kind, old.code));
            }
        }
        Ok(Catalog { by_code })
    }

    /// The parameter with this code in this kind of measurement.
    pub fn get(&self, kind: Kind, code: &str) -> Option<&Parameter> {
        self.by_code[slot(kind)].get(code)
    }

    /// The parameter, or the error that names it.
    pub fn require(&self, kind: Kind, code: &str) -> Result<&Parameter, UnitError> {
        self.get(kind, code).ok_or_else(|| UnitError::UnknownParameter { kind, code: code.to_string() })
    }

    /// Every parameter, by kind then code.
    pub fn iter(&self) -> impl Iterator<Item = &Parameter> {
        self.by_code.iter().flat_map(BTreeMap::values)
    }

    /// Converts `value` in `unit` to the parameter's canonical unit.
    pub fn to_canonical(&self, kind: Kind, code: &str, value: f64, unit: &str) -> Result<f64, UnitError> {
        let p = self.require(kind, code)?;
        let base = to_base(p, &normalised(unit), value)?;
        let canonical = from_base(p, &p.unit, base)?;
        if value.is_finite() && !canonical.is_finite() {
            return Err(UnitError::NotFinite {
                parameter: p.code.clone(),
                value,
                unit: unit.to_string(),
                canonical: p.unit.clone(),
            });
        }
        Ok(canonical)
    }

    /// Converts `value` in the parameter's canonical unit to `unit`.
    pub fn from_canonical(&self, kind: Kind, code: &str, value: f64, unit: &str) -> Result<f64, UnitError> {
        let p = self.require(kind, code)?;
        let base = to_base(p, &p.unit, value)?;
        from_base(p, &normalised(unit), base)
    }

    /// The operations [`Catalog::to_canonical`] does to a value in `unit`, in order: applied
    /// one after the other they give the same bits for every value but -0.0 (an identity
    /// `+ 0` is left out). Empty for the canonical unit itself.
    pub fn conversion(&self, kind: Kind, code: &str, unit: &str) -> Result<Vec<Step>, UnitError> {
        steps(self.require(kind, code)?, &normalised(unit))
    }

    /// Every distinct conversion of another unit to a canonical one the catalog makes (see
    /// [`Catalog::conversion`]): what a converted value may have gone through.
    pub fn conversions(&self) -> Vec<Vec<Step>> {
        let mut out: Vec<Vec<Step>> = Vec::new();
        for p in self.iter() {
            for (unit, _) in dimension_units(p.dimension) {
                if let Ok(steps) = steps(p, unit)
                    && !steps.is_empty()
                    && !out.contains(&steps)
                {
                    out.push(steps);
                }
            }
        }
        out
    }

    /// Whether `value` (canonical unit) is inside the parameter's plausible range.
    pub fn is_plausible(&self, kind: Kind, code: &str, value: f64) -> bool {
        self.get(kind, code).is_some_and(|p| value.is_finite() && value >= p.plausible[0] && value <= p.plausible[1])
    }
}

fn lookup(p: &Parameter, unit: &str) -> Result<ToBase, UnitError> {
    let units = dimension_units(p.dimension);
    units.iter().find(|(u, _)| *u == unit).map(|(_, c)| *c).ok_or_else(|| UnitError::UnknownUnit {
        parameter: p.code.clone(),
        unit: unit.to_string(),
        expected: units.iter().map(|(u, _)| *u).collect::<Vec<_>>().join(", "),
    })
}

/// ppm per mg/Nm³ for this gas.
fn ppm_per_mg_nm3(p: &Parameter) -> f64 {
    p.molar_mass_g_per_mol.map_or(f64::NAN, |m| MOLAR_VOLUME_L_PER_MOL / m)
}

/// One `f64` operation of a conversion to a canonical unit ([`Catalog::conversion`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// `x * c`.
    Mul(f64),
    /// `x / c`.
    Div(f64),
    /// `x + c`.
    Add(f64),
    /// `x - c`.
    Sub(f64),
}

impl Step {
    /// The operation on `x`, rounded as `f64` arithmetic rounds.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Step::Mul(c) => x * c,
            Step::Div(c) => x / c,
            Step::Add(c) => x + c,
            Step::Sub(c) => x - c,
        }
    }

    /// The inverse operation on `y` (to within rounding).
    pub fn undo(self, y: f64) -> f64 {
        match self {
            Step::Mul(c) => y / c,
            Step::Div(c) => y * c,
            Step::Add(c) => y - c,
            Step::Sub(c) => y + c,
        }
    }

    /// Leaves every value but -0.0 as it is (`× 1`, `÷ 1`, `± 0`).
    fn is_identity(self) -> bool {
        matches!(self, Step::Mul(c) | Step::Div(c) if c == 1.0)
            || matches!(self, Step::Add(c) | Step::Sub(c) if c == 0.0)
    }
}

/// [`to_base`] then [`from_base`] as the operations they do, in order, identities left out.
fn steps(p: &Parameter, unit: &str) -> Result<Vec<Step>, UnitError> {
    let to = match lookup(p, unit)? {
        ToBase::Linear { factor, offset } => [Step::Mul(factor), Step::Add(offset)],
        ToBase::MassPerNormalVolume { mg_per_unit } => [Step::Mul(mg_per_unit), Step::Mul(ppm_per_mg_nm3(p))],
    };
    let from = match lookup(p, &p.unit)? {
        ToBase::Linear { factor, offset } => [Step::Sub(offset), Step::Div(factor)],
        ToBase::MassPerNormalVolume { mg_per_unit } => [Step::Div(ppm_per_mg_nm3(p)), Step::Div(mg_per_unit)],
    };
    Ok(to.into_iter().chain(from).filter(|s| !s.is_identity()).collect())
}

fn to_base(p: &Parameter, unit: &str, value: f64) -> Result<f64, UnitError> {
    Ok(match lookup(p, unit)? {
        ToBase::Linear { factor, offset } => value * factor + offset,
        ToBase::MassPerNormalVolume { mg_per_unit } => value * mg_per_unit * ppm_per_mg_nm3(p),
    })
}

fn from_base(p: &Parameter, unit: &str, base: f64) -> Result<f64, UnitError> {
    Ok(match lookup(p, unit)? {
        ToBase::Linear { factor, offset } => (base - offset) / factor,
        ToBase::MassPerNormalVolume { mg_per_unit } => base / ppm_per_mg_nm3(p) / mg_per_unit,
    })
}

#[cfg(test)]
mod tests;
