//! Mappings: how lines of writers with their own names become readings. A Telegraf modbus
//! input writes `modbus,name=analyser,slave_id=1,type=holding_register cod_reg=85.2,flow_ls=12.5`;
//! a mapping says that measurement `modbus` with tag `name=analyser` is the effluent of point
//! `outfall-1`, that `cod_reg` is COD in mg/L and `flow_ls` is flow in L/s (converted to the
//! catalog's m³/h). The factory is the writer's (its token pins it) unless a tag names it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::line::Line;
use super::{DecodeContext, Row, name, number};
use crate::catalog::Catalog;
use crate::problems::Problems;
use crate::reading::Kind;
use crate::site::is_valid_id;

/// `[[ingest.mapping]]`: lines with one measurement (and, optionally, some tag values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The writer's measurement name (not `effluent`, `emission` or `ambient`: those are canonical).
    pub measurement: String,
    /// Tag values a line must carry to use this mapping; the first mapping that matches wins.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The kind of reading the lines carry.
    pub kind: Kind,
    /// The tag naming the factory; absent: the writer's token's factory.
    #[serde(default)]
    pub factory_tag: Option<String>,
    /// A fixed point id for every line of this mapping …
    #[serde(default)]
    pub point: Option<String>,
    /// … or the tag whose value names the point.
    #[serde(default)]
    pub point_tag: Option<String>,
    /// With `point_tag`: tag value → point id, when the values are not point ids (`"1"` →
    /// `"outfall-1"`); a value not listed is refused.
    #[serde(default)]
    pub point_values: BTreeMap<String, String>,
    /// Field key → the parameter it carries and its unit.
    pub fields: BTreeMap<String, FieldMapping>,
    /// Fields the mapping does not list: refused (default) or ignored.
    #[serde(default)]
    pub other_fields: OtherFields,
}

/// One field of a mapped line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    /// Catalog parameter code.
    pub parameter: String,
    /// The unit the writer sends; converted to the catalog's canonical unit. Absent: canonical.
    #[serde(default)]
    pub unit: Option<String>,
}

/// What a mapped line's unlisted fields do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtherFields {
    /// Refuse the line, naming the field.
    #[default]
    Refuse,
    /// Skip the field (a logger's status words, counters).
    Ignore,
}

fn tag<'a>(line: &Line<'a>, key: &str) -> Option<&'a str> {
    line.tag(key)
}

pub(super) fn decode_mapped<'l>(
    line: &Line<'l>,
    cx: &DecodeContext<'l>,
    time_ns: i64,
    out: &mut Vec<Row<'l>>,
) -> Result<(), String> {
    let measurement = line.measurement;
    let mut candidates = cx.mappings.iter().filter(|m| m.measurement == measurement).peekable();
    if candidates.peek().is_none() {
        return Err(format!(
            "unknown measurement \"{measurement}\": expected effluent, emission, ambient or a measurement of [[ingest.mapping]]"
        ));
    }
    let m = candidates
        .find(|m| m.tags.iter().all(|(k, v)| tag(line, k) == Some(v.as_str())))
        .ok_or_else(|| format!("measurement \"{measurement}\": no [[ingest.mapping]] matches the line's tags"))?;
    let factory = match &m.factory_tag {
        Some(key) => tag(line, key).filter(|f| !f.is_empty()).ok_or_else(|| format!("missing tag {key}"))?,
        None => cx.factory.ok_or_else(|| format!("measurement \"{measurement}\": no factory (no factory_tag)"))?,
    };
    let point = match (&m.point, &m.point_tag) {
        (Some(point), _) => point.as_str(),
        (None, Some(key)) => {
            let value = tag(line, key).ok_or_else(|| format!("missing tag {key}"))?;
            match m.point_values.is_empty() {
                true => value,
                false => m
                    .point_values
                    .get(value)
                    .map(String::as_str)
                    .ok_or_else(|| format!("tag {key}=\"{value}\" is not one of the mapping's point_values"))?,
            }
        }
        (None, None) => return Err(format!("measurement \"{measurement}\": the mapping names no point")),
    };
    let (factory, point) = (name("factory", factory)?, name("point", point)?);
    let first = out.len();
    for &(key, ref value) in &line.fields {
        let Some(field) = m.fields.get(key) else {
            match m.other_fields {
                OtherFields::Ignore => continue,
                OtherFields::Refuse => {
                    let listed: Vec<&str> = m.fields.keys().map(String::as_str).collect();
                    return Err(format!(
                        "field {key}: not a field of the mapping for \"{measurement}\", expected one of: {}",
                        listed.join(", ")
                    ));
                }
            }
        };
        let raw = number(key, value)?;
        let canonical = match &field.unit {
            Some(unit) => Catalog::builtin()
                .to_canonical(m.kind, &field.parameter, raw, unit)
                .map_err(|e| format!("field {key}: {e}"))?,
            None => raw,
        };
        out.push(Row::new(m.kind, factory, point, &field.parameter, canonical, time_ns));
    }
    if out.len() == first {
        return Err(format!("measurement \"{measurement}\": no field of the mapping in the line"));
    }
    Ok(())
}

/// Checks mappings at config load: measurements not canonical, parameters and units in the
/// catalog, one way to name the point. `path` is the key path of the mapping array.
pub fn validate_mappings(mappings: &[Mapping], path: &str, catalog: &Catalog, problems: &mut Problems) {
    for (i, m) in mappings.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if m.measurement.is_empty() {
            problems.push(format!("{at}.measurement"), "must not be empty");
        } else if m.measurement.parse::<Kind>().is_ok() {
            problems.push(
                format!("{at}.measurement"),
                format!("\"{}\" is a canonical measurement and cannot be mapped", m.measurement),
            );
        }
        match (&m.point, &m.point_tag) {
            (Some(_), Some(_)) | (None, None) => {
                problems.push(format!("{at}.point"), "give exactly one of point (a fixed id) or point_tag")
            }
            (Some(p), None) if !is_valid_id(p) => {
                problems.push(format!("{at}.point"), format!("\"{p}\" is not a valid id"))
            }
            _ => {}
        }
        if !m.point_values.is_empty() && m.point_tag.is_none() {
            problems.push(format!("{at}.point_values"), "needs point_tag");
        }
        if m.fields.is_empty() {
            problems.push(format!("{at}.fields"), "map at least one field to a parameter");
        }
        for (key, field) in &m.fields {
            let fat = format!("{at}.fields.{key}");
            if let Err(e) = catalog.require(m.kind, &field.parameter) {
                problems.push(format!("{fat}.parameter"), e.to_string());
            } else if let Some(Err(e)) =
                field.unit.as_ref().map(|u| catalog.to_canonical(m.kind, &field.parameter, 1.0, u))
            {
                problems.push(format!("{fat}.unit"), e.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests;
