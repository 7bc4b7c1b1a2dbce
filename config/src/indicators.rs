//! Indicator definitions as data: the EIT assessment team maps each to its own numbering
//! (`eit_code`) without a code change. A definition picks one of the built-in kinds and a
//! filter (area, factory categories, parameters). The official list of the 41 EIT
//! indicators is not in our reference material, so no official code is built in.
//!
//! The built-in default set is `config/examples/indicators.toml` itself (embedded), so the
//! annotated example and what a server without its own file computes are one text.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::problems::{Problems, Validate};
use crate::reading::Kind;
use crate::site::is_valid_id;

const BUILTIN: &str = include_str!("../examples/indicators.toml");

/// The whole indicators file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorsFile {
    /// `[[indicator]]`, in the order they are reported.
    #[serde(default)]
    pub indicator: Vec<Definition>,
}

/// One indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Short stable id (`effluent-compliance`).
    pub id: String,
    /// Name in Thai.
    pub name_th: String,
    /// Name in English.
    pub name_en: String,
    /// What it computes.
    pub kind: IndicatorKind,
    /// Which factories, points and parameters it covers.
    #[serde(default)]
    pub filter: DefinitionFilter,
    /// The assessment's own code for it, where the team assigned one.
    #[serde(default)]
    pub eit_code: Option<String>,
}

/// The built-in kinds of indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorKind {
    /// Effluent judged periods compliant / judged, and factories fully compliant / monitored.
    EffluentCompliance,
    /// The same over stack emissions.
    EmissionCompliance,
    /// Share of point-days meeting the daily availability rule (≥ 80 %), per point and overall.
    DataAvailability,
    /// Exceedance episodes and exceedance hours, by parameter.
    Exceedances,
    /// kg of BOD, COD, TSS and t of SO₂, NOx, particulate, where flow is measured.
    PollutantLoad,
}

impl IndicatorKind {
    /// Every kind, for messages.
    pub const ALL: [IndicatorKind; 5] = [
        IndicatorKind::EffluentCompliance,
        IndicatorKind::EmissionCompliance,
        IndicatorKind::DataAvailability,
        IndicatorKind::Exceedances,
        IndicatorKind::PollutantLoad,
    ];

    /// The name used in the file and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            IndicatorKind::EffluentCompliance => "effluent_compliance",
            IndicatorKind::EmissionCompliance => "emission_compliance",
            IndicatorKind::DataAvailability => "data_availability",
            IndicatorKind::Exceedances => "exceedances",
            IndicatorKind::PollutantLoad => "pollutant_load",
        }
    }
}

/// Which part of the site an indicator covers; every field empty: everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefinitionFilter {
    /// Only this area (absent: the area of the request).
    #[serde(default)]
    pub area: Option<String>,
    /// Only factories of these categories (จำพวก 1, 2, 3; empty: all).
    #[serde(default)]
    pub factory_categories: Vec<u8>,
    /// Only these parameters (catalog codes; empty: every parameter the kind uses).
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// Parameters a load is computed for, per kind of point: concentration code and the mass
/// unit it is reported in.
pub const LOAD_PARAMETERS: [(Kind, &str); 6] = [
    (Kind::Effluent, "bod"),
    (Kind::Effluent, "cod"),
    (Kind::Effluent, "tss"),
    (Kind::Emission, "so2"),
    (Kind::Emission, "nox"),
    (Kind::Emission, "tsp"),
];

impl IndicatorsFile {
    /// The built-in default set.
    pub fn builtin() -> IndicatorsFile {
        // The embedded text is the shipped example, which `tests/examples.rs` loads: a broken
        // one fails that test before it can ship.
        crate::problems::load(BUILTIN, "indicators.toml (built in)").expect("the built-in indicators.toml is valid")
    }
}

impl Validate for IndicatorsFile {
    fn validate(&self, problems: &mut Problems) {
        let mut ids = BTreeSet::new();
        for (i, d) in self.indicator.iter().enumerate() {
            let at = format!("indicator[{i}]");
            if !is_valid_id(&d.id) {
                problems.push(
                    format!("{at}.id"),
                    format!("\"{}\" is not a valid id, expected 1 to 64 of A-Z a-z 0-9 - _ .", d.id),
                );
            } else if !ids.insert(d.id.clone()) {
                problems.push(format!("{at}.id"), format!("\"{}\" is used twice", d.id));
            }
            for (key, value) in [("name_th", &d.name_th), ("name_en", &d.name_en)] {
                if value.trim().is_empty() {
                    problems.push(format!("{at}.{key}"), "must not be empty");
                }
            }
            if d.eit_code.as_deref().is_some_and(|c| c.trim().is_empty()) {
                problems.push(format!("{at}.eit_code"), "must not be empty (leave it out instead)");
            }
            if let Some(area) = &d.filter.area
                && !is_valid_id(area)
            {
                problems.push(format!("{at}.filter.area"), format!("\"{area}\" is not a valid area id"));
            }
            for (c, category) in d.filter.factory_categories.iter().enumerate() {
                if !(1..=3).contains(category) {
                    problems.push(
                        format!("{at}.filter.factory_categories[{c}]"),
                        format!("{category} is not a factory category, expected 1, 2 or 3"),
                    );
                }
            }
            for (p, code) in d.filter.parameters.iter().enumerate() {
                let path = format!("{at}.filter.parameters[{p}]");
                match d.kind {
                    IndicatorKind::PollutantLoad => {
                        if !LOAD_PARAMETERS.iter().any(|(_, c)| c == code) {
                            let known: Vec<&str> = LOAD_PARAMETERS.iter().map(|(_, c)| *c).collect();
                            problems.push(
                                path,
                                format!("no load is computed for \"{code}\", expected one of {}", known.join(", ")),
                            );
                        }
                    }
                    kind => {
                        let kinds: &[Kind] = match kind {
                            IndicatorKind::EffluentCompliance => &[Kind::Effluent],
                            IndicatorKind::EmissionCompliance => &[Kind::Emission],
                            _ => &Kind::ALL,
                        };
                        if !kinds.iter().any(|k| Catalog::builtin().get(*k, code).is_some()) {
                            let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                            problems.push(path, format!("unknown {} parameter \"{code}\"", kinds.join("/")));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problems::load;

    #[test]
    fn builtin_set_has_every_kind() {
        let set = IndicatorsFile::builtin();
        for kind in IndicatorKind::ALL {
            assert!(set.indicator.iter().any(|d| d.kind == kind), "{kind:?} missing from the built-in set");
        }
    }

    #[test]
    fn every_problem_with_its_key_path() {
        let text = r#"
[[indicator]]
id = "a"
name_th = "ก"
name_en = "A"
kind = "effluent_compliance"
filter = { factory_categories = [4], parameters = ["so2"] }

[[indicator]]
id = "a"
name_th = " "
name_en = "B"
kind = "pollutant_load"
filter = { parameters = ["ph"] }
"#;
        let p = load::<IndicatorsFile>(text, "indicators.toml").unwrap_err();
        let got: Vec<String> = p.list.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
        assert_eq!(
            got,
            [
                "indicator[0].filter.factory_categories[0]: 4 is not a factory category, expected 1, 2 or 3",
                "indicator[0].filter.parameters[0]: unknown effluent parameter \"so2\"",
                "indicator[1].id: \"a\" is used twice",
                "indicator[1].name_th: must not be empty",
                "indicator[1].filter.parameters[0]: no load is computed for \"ph\", expected one of bod, cod, tss, so2, nox, tsp",
            ]
        );
        let p = load::<IndicatorsFile>(
            "[[indicator]]\nid='x'\nname_th='x'\nname_en='x'\nkind='made_up'\n",
            "indicators.toml",
        )
        .unwrap_err();
        assert!(p.to_string().starts_with("indicators.toml: indicator[0].kind: unknown variant `made_up`"), "{p}");
    }
}
