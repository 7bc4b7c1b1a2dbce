//! Pollutant loads from the stored readings: mass = Σ over clock hours of the hour's
//! flow-weighted mean concentration × its mean flow × 1 h, counted only in hours with both a
//! valid concentration and a valid flow reading at the point. Readings taken at the same
//! instant pair up (C̄ = Σ Cᵢ·Qᵢ / Σ Qᵢ); an hour whose concentration readings have no flow
//! reading at the same instant (a grab sample beside a flow meter) uses the plain mean of
//! its concentrations. Hours with a concentration but no flow are counted and reported, not
//! guessed; nothing is extrapolated over hours without data.
//!
//! Effluent: mg/L = g/m³, flow m³/h → kg. Stacks: concentration in mg/Nm³ (ppm converted at
//! 25 °C, 1 atm through the catalog), the stack flow (m³/h) read as normal m³/h → t.

use std::collections::BTreeMap;

use eitwatch_config::Catalog;
use eitwatch_config::indicators::LOAD_PARAMETERS;
use eitwatch_config::reading::Kind;
use eitwatch_config::site::{Factory, Point};

use super::compute::{Evidence, Value};
use super::periods::Range;
use crate::compliance::period::HOUR_NS;

const FLOW: &str = "flow";

/// Hour start → valid (time, value) readings of one series.
type Hours = BTreeMap<i64, Vec<(i64, f64)>>;

fn hours_of(readings: Vec<(i64, f64)>) -> Hours {
    let mut out = Hours::new();
    for (t, v) in readings {
        out.entry(t.div_euclid(HOUR_NS) * HOUR_NS).or_default().push((t, v));
    }
    out
}

/// One point's load of one parameter over a range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadPart {
    /// kg (effluent) or t (stacks), over the hours used.
    pub mass: f64,
    /// Hours with both a valid concentration and a valid flow.
    pub used: u64,
    /// Hours with a valid concentration but no valid flow.
    pub no_flow: u64,
    /// Hours with a valid concentration.
    pub conc_hours: u64,
    /// Whether the point has a flow meter at all.
    pub flow_measured: bool,
    /// Why the mass could not be computed.
    pub error: Option<String>,
}

/// Valid readings `(time, value)` of a series in `[from, to)`.
pub type Fetch<'a> = dyn FnMut(&str, &str, &str, i64, i64) -> Vec<(i64, f64)> + 'a;

/// The load parts of every load parameter measured at these points.
pub fn gather(
    points: &[(&Factory, &Point)],
    range: &Range,
    fetch: &mut Fetch<'_>,
) -> BTreeMap<(String, String, String), LoadPart> {
    let mut out = BTreeMap::new();
    for (f, p) in points {
        let flow_measured = p.parameters.iter().any(|c| c == FLOW);
        let mut flow: Option<Hours> = None;
        for (kind, code) in LOAD_PARAMETERS.iter().filter(|(k, c)| *k == p.kind && p.parameters.iter().any(|x| x == c))
        {
            let conc = hours_of(fetch(&f.id, &p.id, code, range.from_ns, range.to_ns));
            let mut part = LoadPart { conc_hours: conc.len() as u64, flow_measured, ..LoadPart::default() };
            if flow_measured {
                let flow = flow.get_or_insert_with(|| hours_of(fetch(&f.id, &p.id, FLOW, range.from_ns, range.to_ns)));
                match mass(&conc, flow, *kind, code) {
                    Ok((m, used, no_flow)) => (part.mass, part.used, part.no_flow) = (m, used, no_flow),
                    Err(e) => part.error = Some(e),
                }
            }
            out.insert((f.id.clone(), p.id.clone(), code.to_string()), part);
        }
    }
    out
}

/// Mass in the report's unit (kg or t) of the hours with both series, with the hours used
/// and the hours with a concentration but no flow.
fn mass(conc: &Hours, flow: &Hours, kind: Kind, code: &str) -> Result<(f64, u64, u64), String> {
    let (mut total, mut used, mut no_flow) = (0.0, 0u64, 0u64);
    for (hour, c) in conc {
        let Some(q) = flow.get(hour).filter(|q| !q.is_empty()) else {
            no_flow += 1;
            continue;
        };
        let q_mean = q.iter().map(|(_, v)| v).sum::<f64>() / q.len() as f64;
        let paired: Vec<(f64, f64)> =
            c.iter().filter_map(|(t, cv)| q.iter().find(|(tq, _)| tq == t).map(|(_, qv)| (*cv, *qv))).collect();
        let q_sum: f64 = paired.iter().map(|(_, q)| q).sum();
        let c_mean = if !paired.is_empty() && q_sum > 0.0 {
            paired.iter().map(|(c, q)| c * q).sum::<f64>() / q_sum
        } else {
            c.iter().map(|(_, v)| v).sum::<f64>() / c.len() as f64
        };
        let c_mass = match kind {
            // mg/L = g/m³
            Kind::Effluent => c_mean,
            _ => Catalog::builtin().from_canonical(kind, code, c_mean, "mg/Nm3").map_err(|e| e.to_string())?,
        };
        // g/m³ × m³/h × 1 h = g → kg; mg/Nm³ × Nm³/h × 1 h = mg → t
        total += match kind {
            Kind::Effluent => c_mass * q_mean / 1e3,
            _ => c_mass * q_mean / 1e9,
        };
        used += 1;
    }
    Ok((total, used, no_flow))
}

/// The load values (one per parameter) and their evidence (one row per point and parameter).
pub(super) fn pollutant_loads(
    points: &[(&Factory, &Point)],
    covers: &dyn Fn(&str) -> bool,
    parts: &BTreeMap<(String, String, String), LoadPart>,
) -> (Vec<Value>, Vec<Evidence>) {
    let mut values = Vec::new();
    let mut evidence = Vec::new();
    for (kind, code) in LOAD_PARAMETERS.iter().filter(|(_, c)| covers(c)) {
        let unit = if *kind == Kind::Effluent { "kg" } else { "t" };
        let (mut total, mut any_hour, mut measured, mut reasons) = (0.0, false, false, Vec::new());
        for (f, p) in points.iter().filter(|(_, p)| p.kind == *kind && p.parameters.iter().any(|c| c == code)) {
            measured = true;
            let part = parts.get(&(f.id.clone(), p.id.clone(), code.to_string())).cloned().unwrap_or_default();
            let row = |used: u64, excluded: u64, note: String| Evidence {
                factory: f.id.clone(),
                point: Some(p.id.clone()),
                parameter: Some(code.to_string()),
                counted: "hours".into(),
                used,
                excluded,
                note,
            };
            if !part.flow_measured {
                let note =
                    format!("flow is not measured at this point: no load ({} hours with {code})", part.conc_hours);
                reasons.push(format!("{}/{}: flow not measured", f.id, p.id));
                evidence.push(row(0, part.conc_hours, note));
                continue;
            }
            if let Some(e) = &part.error {
                reasons.push(format!("{}/{}: {e}", f.id, p.id));
                evidence.push(row(0, part.conc_hours, format!("cannot convert {code} to mg/Nm3: {e}")));
                continue;
            }
            total += part.mass;
            any_hour |= part.used > 0;
            let mut note = format!("{:.6} {unit} from {} hours with both {code} and flow", part.mass, part.used);
            if part.no_flow > 0 {
                note.push_str(&format!("; {} hours with {code} but no valid flow reading: not counted", part.no_flow));
            }
            if part.conc_hours == 0 {
                note = format!("no valid {code} reading in the range");
            }
            if part.used == 0 {
                reasons.push(format!("{}/{}: no hour with both {code} and flow", f.id, p.id));
            }
            evidence.push(row(part.used, part.no_flow, note));
        }
        let why = if !measured {
            format!("{code} is not measured at any point in the selection")
        } else {
            reasons.join("; ")
        };
        let (th, en) = name(code);
        values.push(Value {
            key: format!("load:{code}"),
            name_th: format!("ปริมาณ{th}ที่ระบาย"),
            name_en: format!("{en} load"),
            value: any_hour.then_some(total),
            unit: unit.into(),
            numerator: None,
            denominator: None,
            not_computed: (!any_hour).then_some(why),
            previous: None,
            change: None,
        });
    }
    (values, evidence)
}

fn name(code: &str) -> (&'static str, &'static str) {
    match code {
        "bod" => ("บีโอดี", "BOD"),
        "cod" => ("ซีโอดี", "COD"),
        "tss" => ("ของแข็งแขวนลอยทั้งหมด", "TSS"),
        "so2" => ("ก๊าซซัลเฟอร์ไดออกไซด์", "SO₂"),
        "nox" => ("ก๊าซออกไซด์ของไนโตรเจน", "NOx (as NO₂)"),
        _ => ("ฝุ่นละออง", "Particulate (TSP)"),
    }
}
