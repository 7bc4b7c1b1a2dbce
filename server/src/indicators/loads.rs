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
use eitwatch_config::reading::{Kind, Reading};
use eitwatch_config::site::{Factory, Point};

use super::compute::{Evidence, Value};
use super::periods::Range;
use crate::compliance::period::HOUR_NS;

const FLOW: &str = "flow";

/// Hour start → valid (time, value) readings of one series.
type Hours = BTreeMap<i64, Vec<(i64, f64)>>;

fn hours_of<'a>(readings: impl Iterator<Item = &'a Reading>, range: &Range) -> Hours {
    let mut out = Hours::new();
    for r in readings.filter(|r| r.quality.is_judged() && r.time_ns >= range.from_ns && r.time_ns < range.to_ns) {
        out.entry(r.time_ns.div_euclid(HOUR_NS) * HOUR_NS).or_default().push((r.time_ns, r.value));
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
    range: &Range,
    readings: &[Reading],
) -> (Vec<Value>, Vec<Evidence>) {
    let mut values = Vec::new();
    let mut evidence = Vec::new();
    for (kind, code) in LOAD_PARAMETERS.iter().filter(|(_, c)| covers(c)) {
        let unit = if *kind == Kind::Effluent { "kg" } else { "t" };
        let (mut total, mut any_hour, mut measured, mut reasons) = (0.0, false, false, Vec::new());
        for (f, p) in points.iter().filter(|(_, p)| p.kind == *kind && p.parameters.iter().any(|c| c == code)) {
            measured = true;
            let series = |c: &str| {
                let of = readings.iter().filter(|r| r.factory == f.id && r.point == p.id && r.parameter == c);
                hours_of(of, range)
            };
            let conc = series(code);
            let row = |used: u64, excluded: u64, note: String| Evidence {
                factory: f.id.clone(),
                point: Some(p.id.clone()),
                parameter: Some(code.to_string()),
                counted: "hours".into(),
                used,
                excluded,
                note,
            };
            if !p.parameters.iter().any(|c| c == FLOW) {
                let note = format!("flow is not measured at this point: no load ({} hours with {code})", conc.len());
                reasons.push(format!("{}/{}: flow not measured", f.id, p.id));
                evidence.push(row(0, conc.len() as u64, note));
                continue;
            }
            match mass(&conc, &series(FLOW), *kind, code) {
                Ok((m, used, no_flow)) => {
                    total += m;
                    any_hour |= used > 0;
                    let mut note = format!("{m:.6} {unit} from {used} hours with both {code} and flow");
                    if no_flow > 0 {
                        note.push_str(&format!("; {no_flow} hours with {code} but no valid flow reading: not counted"));
                    }
                    if used == 0 && conc.is_empty() {
                        note = format!("no valid {code} reading in the range");
                    }
                    if used == 0 {
                        reasons.push(format!("{}/{}: no hour with both {code} and flow", f.id, p.id));
                    }
                    evidence.push(row(used, no_flow, note));
                }
                Err(e) => {
                    reasons.push(format!("{}/{}: {e}", f.id, p.id));
                    evidence.push(row(0, conc.len() as u64, format!("cannot convert {code} to mg/Nm3: {e}")));
                }
            }
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
