//! The site registry: area (EIT area, province) → factory → monitoring point → parameters.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::problems::Problems;
use crate::reading::Kind;

/// An Eco Industrial Town area.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Area {
    /// Short id (`mae-moh`).
    pub id: String,
    /// Name in English.
    pub name_en: String,
    /// Name in Thai.
    pub name_th: String,
    /// Province.
    pub province: String,
    /// EIT designation phase (1, 2, 3), where known.
    #[serde(default)]
    pub phase: Option<u8>,
    /// The monitored factories of the area.
    #[serde(default)]
    pub factory: Vec<Factory>,
}

/// A monitored factory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Factory {
    /// Short id used in tokens, tags and URLs (`[A-Za-z0-9_.-]`).
    pub id: String,
    /// Name as registered.
    pub name: String,
    /// DIW factory registration number (ทะเบียนโรงงาน), where known.
    #[serde(default)]
    pub diw_registration: Option<String>,
    /// Factory category (จำพวก) 1, 2 or 3 under the Factory Act; decides which standards apply.
    pub category: u8,
    /// Its monitoring points.
    #[serde(default)]
    pub point: Vec<Point>,
    /// Limits set for this factory by permit (DIW clause 9/10 values, an EIA condition),
    /// replacing the standard's limit of the same parameter.
    #[serde(default)]
    pub permit: Vec<Permit>,
}

/// A limit set for one factory (optionally one of its points) by permit: it replaces every
/// standard limit of its parameter there (loosening or tightening), and the judgement names
/// its reference.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permit {
    /// The permit's reference (number, document), shown with every judgement made under it.
    pub reference: String,
    /// The point it covers (absent: every point of the factory monitoring the parameter).
    #[serde(default)]
    pub point: Option<String>,
    /// Catalog parameter code.
    pub parameter: String,
    /// Upper bound, in `unit`.
    #[serde(default)]
    pub max: Option<f64>,
    /// Lower bound, in `unit`.
    #[serde(default)]
    pub min: Option<f64>,
    /// Unit of the bounds.
    pub unit: String,
    /// Over what it is judged (absent: as the standard's limit it replaces, else instantaneous).
    #[serde(default)]
    pub averaging: Option<crate::standards::Averaging>,
    /// Reference O₂ (%) the value is corrected to (absent: as the replaced limit).
    #[serde(default)]
    pub reference_o2_pct: Option<f64>,
}

/// An outfall or a stack.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// Id unique within the factory (`outfall-1`, `stack-boiler-1`).
    pub id: String,
    /// Effluent outfall, emission stack, or ambient station.
    pub kind: Kind,
    /// Catalog codes of the parameters monitored here.
    pub parameters: Vec<String>,
    /// How often a reading is expected, in seconds.
    #[serde(default = "default_expected_interval_s")]
    pub expected_interval_s: u64,
    /// TDS of the receiving water, mg/L, for the effluent standard's TDS rule.
    #[serde(default)]
    pub receiving_water_tds_mg_per_l: Option<f64>,
    /// What the stack serves (emission points only).
    #[serde(default)]
    pub emission: Option<EmissionPoint>,
    /// Sensor-fault detection for this point.
    #[serde(default)]
    pub faults: Faults,
}

/// Sensor-fault and no-data detection settings of a point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// The point is "no data" once its newest reading is older than this (absent: three
    /// expected intervals).
    #[serde(default)]
    pub no_data_after_s: Option<u64>,
    /// A parameter repeating the same valid value for this long is a flatline (0: off).
    #[serde(default = "default_flatline_after_s")]
    pub flatline_after_s: u64,
    /// Largest believable change per minute, per parameter (canonical unit); a faster change
    /// between consecutive valid readings is a spike.
    #[serde(default)]
    pub max_change_per_min: std::collections::BTreeMap<String, f64>,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            no_data_after_s: None,
            flatline_after_s: default_flatline_after_s(),
            max_change_per_min: Default::default(),
        }
    }
}

const fn default_flatline_after_s() -> u64 {
    3600
}

const fn default_expected_interval_s() -> u64 {
    60
}

/// What an emission stack serves, which picks its limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmissionPoint {
    /// Kind of source.
    pub source: EmissionSource,
    /// Fuel burnt, where there is combustion.
    #[serde(default)]
    pub fuel: Option<Fuel>,
    /// Whether the process burns fuel.
    pub combustion: bool,
}

/// Source categories of the air-emission standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmissionSource {
    /// Boiler or other heat source.
    Boiler,
    /// Steel and aluminium manufacture.
    SteelAluminium,
    /// Any other production process.
    ProductionProcess,
}

/// Fuels of the air-emission standard's boiler rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fuel {
    /// Heavy (fuel) oil.
    HeavyOil,
    /// Coal.
    Coal,
    /// Biomass.
    Biomass,
    /// Any other fuel.
    Other,
}

/// Whether an id is usable in tags, tokens and URLs.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Checks a registry: ids well formed and unique, parameters in the catalog, emission
/// points described. `path` is the key path of the `area` array.
pub fn validate_areas(areas: &[Area], path: &str, catalog: &Catalog, problems: &mut Problems) {
    let mut area_ids = BTreeSet::new();
    let mut factory_ids = BTreeSet::new();
    for (a, area) in areas.iter().enumerate() {
        let at = format!("{path}[{a}]");
        check_id(&area.id, &format!("{at}.id"), &mut area_ids, problems);
        for (f, factory) in area.factory.iter().enumerate() {
            let at = format!("{at}.factory[{f}]");
            check_id(&factory.id, &format!("{at}.id"), &mut factory_ids, problems);
            if !(1..=3).contains(&factory.category) {
                problems.push(
                    format!("{at}.category"),
                    format!("{} is not a factory category, expected 1, 2 or 3", factory.category),
                );
            }
            validate_permits(factory, &at, catalog, problems);
            let mut point_ids = BTreeSet::new();
            for (p, point) in factory.point.iter().enumerate() {
                let at = format!("{at}.point[{p}]");
                check_id(&point.id, &format!("{at}.id"), &mut point_ids, problems);
                for (i, code) in point.parameters.iter().enumerate() {
                    if catalog.get(point.kind, code).is_none() {
                        problems.push(
                            format!("{at}.parameters[{i}]"),
                            format!("unknown {} parameter \"{code}\"", point.kind),
                        );
                    }
                }
                if point.kind == Kind::Emission && point.emission.is_none() {
                    problems.push(
                        format!("{at}.emission"),
                        "missing: an emission point says what it serves (source, fuel, combustion)",
                    );
                }
                if point.expected_interval_s == 0 {
                    problems.push(format!("{at}.expected_interval_s"), "must be at least 1");
                }
                if point.faults.no_data_after_s == Some(0) {
                    problems.push(format!("{at}.faults.no_data_after_s"), "must be at least 1");
                }
                for (code, bound) in &point.faults.max_change_per_min {
                    if !point.parameters.contains(code) {
                        problems.push(
                            format!("{at}.faults.max_change_per_min.{code}"),
                            format!("\"{code}\" is not a parameter of this point"),
                        );
                    }
                    if !(bound.is_finite() && *bound > 0.0) {
                        problems.push(format!("{at}.faults.max_change_per_min.{code}"), "must be a positive number");
                    }
                }
            }
        }
    }
}

fn validate_permits(factory: &Factory, at: &str, catalog: &Catalog, problems: &mut Problems) {
    for (i, permit) in factory.permit.iter().enumerate() {
        let at = format!("{at}.permit[{i}]");
        if permit.reference.trim().is_empty() {
            problems.push(format!("{at}.reference"), "must name the permit (number or document)");
        }
        let points: Vec<&Point> = match &permit.point {
            Some(id) => match factory.point.iter().find(|p| &p.id == id) {
                Some(p) => vec![p],
                None => {
                    problems.push(format!("{at}.point"), format!("\"{id}\" is not a point of this factory"));
                    continue;
                }
            },
            None => factory.point.iter().filter(|p| p.parameters.contains(&permit.parameter)).collect(),
        };
        if points.is_empty() {
            problems
                .push(format!("{at}.parameter"), format!("no point of this factory monitors \"{}\"", permit.parameter));
        }
        if permit.max.is_none() && permit.min.is_none() {
            problems.push(format!("{at}.max"), "a permit sets max, min or both");
        }
        for point in points {
            if let Err(e) = catalog.from_canonical(point.kind, &permit.parameter, 1.0, &permit.unit) {
                problems.push(format!("{at}.unit"), e.to_string());
                break;
            }
        }
    }
}

fn check_id(id: &str, path: &str, seen: &mut BTreeSet<String>, problems: &mut Problems) {
    if !is_valid_id(id) {
        problems.push(path, format!("\"{id}\" is not a valid id, expected 1 to 64 of A-Z a-z 0-9 - _ ."));
    } else if !seen.insert(id.to_string()) {
        problems.push(path, format!("\"{id}\" is used twice"));
    }
}

/// Finds factories and points by id.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    areas: Vec<Area>,
    /// Factory id → (area index, factory index): ingest looks up every reading's factory,
    /// and a scan of a province's thousand factories per reading was most of ingest's CPU.
    factories: std::collections::HashMap<String, (usize, usize)>,
}

impl Registry {
    /// A registry over these areas (validated by the caller).
    pub fn new(areas: Vec<Area>) -> Registry {
        let mut factories = std::collections::HashMap::new();
        for (a, area) in areas.iter().enumerate() {
            for (f, factory) in area.factory.iter().enumerate() {
                factories.entry(factory.id.clone()).or_insert((a, f));
            }
        }
        Registry { areas, factories }
    }

    /// Every area.
    pub fn areas(&self) -> &[Area] {
        &self.areas
    }

    /// The factory with this id, with its area.
    pub fn factory(&self, id: &str) -> Option<(&Area, &Factory)> {
        let &(a, f) = self.factories.get(id)?;
        let area = self.areas.get(a)?;
        Some((area, area.factory.get(f)?))
    }

    /// The point of a factory.
    pub fn point(&self, factory: &str, point: &str) -> Option<(&Factory, &Point)> {
        let (_, f) = self.factory(factory)?;
        f.point.iter().find(|p| p.id == point).map(|p| (f, p))
    }
}
