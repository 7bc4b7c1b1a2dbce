//! An alert in words, in Thai and in English, for people: the board, e-mail and LINE
//! messages, the log.
//!
//! [`summary`] renders an [`Alert`] from its fields and its [`Detail`] (what the engine knew
//! when it raised it: the limit applied at the point, the fault's figures, the day's counts).
//! Every value has its unit and is rounded to its parameter's display precision (the
//! catalog's `display_decimals`; the API keeps full values). An exceedance states the limit
//! that was applied and why (a permit, the standard's clause, the receiving-water TDS rule,
//! the O₂ reference), says "below the range" for a value under a range's floor, and calls a
//! grab sample a grab sample. Times are Bangkok local: `06/12/2569 06:36 น.` (day/month/
//! Buddhist-era year) in Thai, `2026-12-06 06:36 (UTC+7)` in English.
//!
//! Thai terms: a judged hour or day beyond the limit is a "ช่วงเวลาที่เกินค่ามาตรฐาน"
//! (exceeding period: `ค่าเฉลี่ยรายชั่วโมง` / `ค่าเฉลี่ยรายวัน` name which), a run of them a
//! "เหตุการณ์เกินค่ามาตรฐานต่อเนื่อง" (exceedance episode); a grab sample is a
//! "ตัวอย่างแบบจ้วง" as the effluent standard (clause 8.2) writes it. Parameters are named by
//! the catalog's Thai names, never by their codes.

use std::fmt::Write as _;

use eitwatch_config::catalog::{Catalog, Parameter, format_decimals, format_grouped, typeset_unit};
use eitwatch_config::reading::Kind;
use eitwatch_config::server_config::AlertKind;
use eitwatch_config::standards::{Averaging, Standards};
use serde::{Deserialize, Serialize};

use super::Alert;
use crate::compliance::LimitUsed;

/// The language of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Thai: Buddhist-era dates, Thai parameter names.
    Th,
    /// English.
    En,
}

/// What an alert's text needs beyond the alert's own fields, as the engine knew it when it
/// raised the alert (kept with the alert, so the text does not change with later config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detail {
    /// The measurement the parameter belongs to (`temp` is water or stack temperature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement: Option<Kind>,
    /// By kind of alert.
    #[serde(flatten)]
    pub what: What,
}

/// The figures of one kind of alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum What {
    /// A judged period or grab sample beyond its limit.
    Exceedance {
        /// The upper bound applied at the point (the TDS rule can raise the standard's).
        applied_max: Option<f64>,
        /// The receiving water's TDS, where the TDS rule raised the bound.
        receiving_water_tds: Option<f64>,
        /// Start of the exceeding period (the sample's time, for a grab sample).
        period_start_ns: i64,
    },
    /// The same value for too long.
    Flatline {
        /// How long a value may stay the same, in seconds.
        after_s: u64,
    },
    /// A change faster than allowed.
    Spike {
        /// The value before.
        from: f64,
        /// The change per minute.
        rate_per_min: f64,
        /// The change per minute allowed.
        bound_per_min: f64,
    },
    /// A value outside what is physically plausible.
    Implausible,
    /// A day below the availability threshold.
    Availability {
        /// Valid readings.
        valid: u32,
        /// Expected readings.
        expected: u32,
        /// The threshold, percent.
        threshold_pct: f64,
    },
    /// A point silent.
    NoData,
    /// A fault-notification deadline.
    Deadline {
        /// Which.
        stage: Stage,
    },
}

/// The stages of a no-data incident's fault-notification clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The DIW is to be notified by the deadline.
    NotifyDue,
    /// The DIW notification is overdue.
    NotifyOverdue,
    /// Transmission was to be restored by the deadline.
    RestoreOverdue,
}

impl Stage {
    /// The name in keys and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::NotifyDue => "notify_due",
            Stage::NotifyOverdue => "notify_overdue",
            Stage::RestoreOverdue => "restore_overdue",
        }
    }
}

/// The alert in words: what happened, the value with its unit, the limit applied and its
/// basis, when (Bangkok time). One sentence, no raw codes in Thai.
pub fn summary(alert: &Alert, lang: Lang) -> String {
    let detail = alert.detail.as_deref();
    let measurement = detail.and_then(|d| d.measurement);
    let param = Param::of(alert.parameter.as_deref(), measurement, alert.limit.as_deref());
    let what = detail.map(|d| &d.what);
    match (alert.kind, what) {
        (AlertKind::Exceedance, _) => exceedance(alert, &param, what, lang),
        (AlertKind::NoData, _) => match lang {
            Lang::Th => format!("ไม่ได้รับข้อมูลจากจุดตรวจวัด {} ตั้งแต่ {}", alert.point, time(alert.since_ns, lang)),
            Lang::En => format!("No reading from point {} since {}.", alert.point, time(alert.since_ns, lang)),
        },
        (AlertKind::Deadline, _) => deadline(alert, what, lang),
        (AlertKind::Availability, _) => availability(alert, &param, what, lang),
        (AlertKind::SensorFault, _) => fault(alert, &param, what, lang),
    }
}

/// `t_ns` as a person reads it, Bangkok time: `06/12/2569 06:36 น.` in Thai (Buddhist era),
/// `2026-12-06 06:36 (UTC+7)` in English.
pub fn time(t_ns: i64, lang: Lang) -> String {
    let Some(t) = local(t_ns) else { return t_ns.to_string() };
    match lang {
        Lang::Th => format!(
            "{:02}/{:02}/{} {:02}:{:02} น.",
            t.day(),
            t.month(),
            i32::from(t.year()) + 543,
            t.hour(),
            t.minute()
        ),
        Lang::En => {
            format!("{}-{:02}-{:02} {:02}:{:02} (UTC+7)", t.year(), t.month(), t.day(), t.hour(), t.minute())
        }
    }
}

/// The Bangkok date of `t_ns`: `05/12/2569` in Thai, `2026-12-05` in English.
pub fn date(t_ns: i64, lang: Lang) -> String {
    let Some(t) = local(t_ns) else { return t_ns.to_string() };
    match lang {
        Lang::Th => format!("{:02}/{:02}/{}", t.day(), t.month(), i32::from(t.year()) + 543),
        Lang::En => format!("{}-{:02}-{:02}", t.year(), t.month(), t.day()),
    }
}

fn local(t_ns: i64) -> Option<jiff::civil::DateTime> {
    let t = jiff::Timestamp::from_nanosecond(i128::from(t_ns)).ok()?;
    Some(jiff::tz::Offset::constant(7).to_datetime(t))
}

/// A parameter as texts name and show it.
struct Param<'a> {
    code: &'a str,
    catalog: Option<&'static Parameter>,
    /// The unit of the alert's value: the limit's, else the catalog's.
    unit: String,
    decimals: u8,
}

impl<'a> Param<'a> {
    fn of(code: Option<&'a str>, measurement: Option<Kind>, limit: Option<&'a LimitUsed>) -> Param<'a> {
        let code = code.or(limit.map(|l| l.parameter.as_str())).unwrap_or("");
        let catalog = Catalog::builtin();
        let kinds = match measurement {
            Some(k) => vec![k],
            // Without the measurement (an alert raised before it was recorded): the first
            // kind that has the code.
            None => Kind::ALL.to_vec(),
        };
        let entry = kinds.into_iter().find_map(|k| catalog.get(k, code));
        let unit = match (limit, entry) {
            (Some(l), _) => typeset_unit(&l.unit).into_owned(),
            (None, Some(p)) => p.unit_display.clone(),
            (None, None) => String::new(),
        };
        Param { code, catalog: entry, unit, decimals: entry.map_or(3, |p| p.display_decimals) }
    }

    fn name(&self, lang: Lang) -> &str {
        match (lang, self.catalog) {
            (Lang::Th, Some(p)) => p.name_th.as_deref().unwrap_or(&p.name_en),
            (Lang::En, Some(p)) => &p.name_en,
            (_, None) => self.code,
        }
    }

    /// A value with its unit: `123 mg/L`, `5.40` (pH), `25.0 °C`.
    fn value(&self, v: f64) -> String {
        with_unit(format_grouped(v, self.decimals), &self.unit)
    }

    /// A bound as written in standards: no trailing zeros (`5.5`, `9`, `17,000`).
    fn bound(&self, v: f64) -> String {
        trim(format_grouped(v, self.decimals.max(3)))
    }
}

fn with_unit(number: String, unit: &str) -> String {
    match unit {
        "" => number,
        "%" => format!("{number} %"),
        u => format!("{number} {u}"),
    }
}

fn trim(s: String) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

fn exceedance(alert: &Alert, param: &Param<'_>, what: Option<&What>, lang: Lang) -> String {
    let Some(limit) = alert.limit.as_deref() else {
        return match lang {
            Lang::Th => format!("{} เกินค่ามาตรฐาน ตั้งแต่ {}", param.name(lang), time(alert.since_ns, lang)),
            Lang::En => format!("{} exceeds its limit since {}.", param.name(lang), time(alert.since_ns, lang)),
        };
    };
    let (applied_max, receiving, period_start) = match what {
        Some(What::Exceedance { applied_max, receiving_water_tds, period_start_ns }) => {
            (*applied_max, *receiving_water_tds, *period_start_ns)
        }
        _ => (limit.max, None, alert.since_ns),
    };
    let grab = limit.averaging == Averaging::Instantaneous;
    let mut out = String::new();
    // What was judged, and when.
    let when = time(period_start, lang);
    let _ = match (lang, limit.averaging) {
        (Lang::Th, Averaging::Instantaneous) => write!(out, "{} ตัวอย่างแบบจ้วงเมื่อ {when}", param.name(lang)),
        (Lang::Th, Averaging::Hourly) => write!(out, "{} ค่าเฉลี่ยรายชั่วโมงของชั่วโมงที่เริ่ม {when}", param.name(lang)),
        (Lang::Th, Averaging::Daily) => {
            write!(out, "{} ค่าเฉลี่ยรายวันของวันที่ {}", param.name(lang), date(period_start, lang))
        }
        (Lang::En, Averaging::Instantaneous) => write!(out, "{} grab sample at {when}", param.name(lang)),
        (Lang::En, Averaging::Hourly) => write!(out, "{} hourly mean of the hour from {when}", param.name(lang)),
        (Lang::En, Averaging::Daily) => {
            write!(out, "{} daily mean of {}", param.name(lang), date(period_start, lang))
        }
    };
    out.push_str(": ");
    // The value against the bound it broke.
    let value = alert.value;
    let below = matches!((value, limit.min), (Some(v), Some(min)) if v < min);
    let shown = |v: f64, bound: Option<f64>| {
        // Never show an exceeding value rounded onto its bound (0.0052 as 0.005 against 0.005).
        let mut d = param.decimals;
        while let Some(b) = bound
            && d < param.decimals + 4
            && format_decimals(v, d) == format_decimals(b, d)
            && v != b
        {
            d += 1;
        }
        with_unit(format_grouped(v, d), &param.unit)
    };
    let range = match (limit.min, applied_max) {
        (Some(min), Some(max)) => Some(format!("{}–{}", param.bound(min), param.bound(max))),
        _ => None,
    };
    let unit = |s: String| with_unit(s, &param.unit);
    let _ = match (lang, value) {
        (_, _) if limit.not_detected => match lang {
            Lang::Th => write!(out, "ตรวจพบ ซึ่งค่ามาตรฐานกำหนดให้ต้องตรวจไม่พบ"),
            Lang::En => write!(out, "detected, where the limit requires it not to be"),
        },
        (Lang::Th, Some(v)) if below => match &range {
            Some(r) => write!(out, "{} ต่ำกว่าช่วงที่กำหนด {}", shown(v, limit.min), unit(r.clone())),
            None => {
                write!(out, "{} ต่ำกว่าค่าต่ำสุดที่กำหนด {}", shown(v, limit.min), unit(param.bound(limit.min.unwrap_or(v))))
            }
        },
        (Lang::En, Some(v)) if below => match &range {
            Some(r) => write!(out, "{}, below the range {}", shown(v, limit.min), unit(r.clone())),
            None => write!(
                out,
                "{}, below the minimum of {}",
                shown(v, limit.min),
                unit(param.bound(limit.min.unwrap_or(v)))
            ),
        },
        (Lang::Th, Some(v)) => match (&range, applied_max) {
            (Some(r), _) => write!(out, "{} สูงกว่าช่วงที่กำหนด {}", shown(v, applied_max), unit(r.clone())),
            (None, Some(max)) => write!(out, "{} เกินค่ามาตรฐานที่ใช้ {}", shown(v, Some(max)), unit(param.bound(max))),
            (None, None) => write!(out, "{} เกินค่ามาตรฐาน", param.value(v)),
        },
        (Lang::En, Some(v)) => match (&range, applied_max) {
            (Some(r), _) => write!(out, "{}, above the range {}", shown(v, applied_max), unit(r.clone())),
            (None, Some(max)) => {
                write!(out, "{}, above the applied limit of {}", shown(v, Some(max)), unit(param.bound(max)))
            }
            (None, None) => write!(out, "{}, beyond its limit", param.value(v)),
        },
        (Lang::Th, None) => write!(out, "ไม่เป็นไปตามค่ามาตรฐาน"),
        (Lang::En, None) => write!(out, "beyond its limit"),
    };
    // Why that bound.
    let raised = matches!((applied_max, limit.max), (Some(a), Some(m)) if a > m);
    let mut basis = Vec::new();
    match (lang, &limit.permit, &limit.standard, &limit.clause) {
        (Lang::Th, Some(permit), _, _) => basis.push(format!("ตามใบอนุญาต {permit}")),
        (Lang::En, Some(permit), _, _) => basis.push(format!("permit {permit}")),
        (Lang::Th, None, Some(s), Some(c)) => basis.push(format!("ตามประกาศ{} ข้อ {c}", standard(s, lang))),
        (Lang::En, None, Some(s), Some(c)) => basis.push(format!("{}, clause {c}", standard(s, lang))),
        (Lang::Th, None, Some(s), None) => basis.push(format!("ตามประกาศ{}", standard(s, lang))),
        (Lang::En, None, Some(s), None) => basis.push(standard(s, lang).to_string()),
        _ => {}
    }
    if raised {
        let r = receiving.map_or_else(String::new, |r| unit(param.bound(r)));
        let margin = match (applied_max, receiving) {
            (Some(a), Some(r)) => unit(param.bound(a - r)),
            _ => String::new(),
        };
        basis.push(match lang {
            Lang::Th => format!(
                "เกณฑ์ TDS ของแหล่งน้ำรับ: TDS ของแหล่งน้ำรับ {r} + {margin} แทนค่ามาตรฐาน {}",
                unit(param.bound(limit.max.unwrap_or_default()))
            ),
            Lang::En => format!(
                "receiving-water TDS rule: the receiving water's {r} + {margin}, in place of the standard's {}",
                unit(param.bound(limit.max.unwrap_or_default()))
            ),
        });
    }
    if let Some(o2) = limit.reference_o2_pct {
        basis.push(match lang {
            Lang::Th => format!("ปรับเทียบที่ออกซิเจน {} %", trim(format_decimals(o2, 1))),
            Lang::En => format!("corrected to {} % O₂", trim(format_decimals(o2, 1))),
        });
    }
    if !basis.is_empty() {
        let _ = write!(out, " ({})", basis.join("; "));
    }
    // The episode, when it began before this period.
    if !grab && alert.since_ns < period_start {
        let _ = match lang {
            Lang::Th => write!(out, "; เหตุการณ์เกินค่ามาตรฐานต่อเนื่องตั้งแต่ {}", time(alert.since_ns, lang)),
            Lang::En => write!(out, "; exceedance episode since {}", time(alert.since_ns, lang)),
        };
    }
    if lang == Lang::En {
        out.push('.');
    }
    out
}

/// A standard by its title's subject (`กำหนดมาตรฐานควบคุมการระบายน้ำทิ้งจากโรงงาน พ.ศ. 2560`,
/// `Standards for Controlling Effluent Discharge from Factories, B.E. 2560`), not its id.
fn standard(id: &str, lang: Lang) -> &str {
    let Some(s) = Standards::builtin().get(id) else { return id };
    match lang {
        Lang::Th => s.title_th.rsplit_once(" เรื่อง ").map_or(&s.title_th, |(_, subject)| subject),
        Lang::En => s.title_en.split_once(": ").map_or(&s.title_en, |(_, subject)| subject),
    }
}

fn deadline(alert: &Alert, what: Option<&What>, lang: Lang) -> String {
    let stage = match what {
        Some(What::Deadline { stage }) => Some(*stage),
        _ => None,
    };
    let since = time(alert.since_ns, lang);
    let by = alert.deadline_ns.map_or_else(String::new, |d| time(d, lang));
    let point = &alert.point;
    match (lang, stage) {
        (Lang::Th, Some(Stage::NotifyDue)) => {
            format!("ไม่มีข้อมูลจากจุดตรวจวัด {point} ตั้งแต่ {since}: ต้องแจ้งกรมโรงงานอุตสาหกรรมภายใน {by}")
        }
        (Lang::Th, Some(Stage::NotifyOverdue)) => {
            format!("ไม่มีข้อมูลจากจุดตรวจวัด {point} ตั้งแต่ {since}: เลยกำหนดแจ้งกรมโรงงานอุตสาหกรรม (ภายใน {by})")
        }
        (Lang::Th, Some(Stage::RestoreOverdue)) => {
            format!("ไม่มีข้อมูลจากจุดตรวจวัด {point} ตั้งแต่ {since}: เลยกำหนดแก้ไขให้ส่งข้อมูลได้ตามปกติ (ภายใน {by})")
        }
        (Lang::Th, None) => format!("ไม่มีข้อมูลจากจุดตรวจวัด {point} ตั้งแต่ {since}: กำหนดเวลา {by}"),
        (Lang::En, Some(Stage::NotifyDue)) => {
            format!("No data from point {point} since {since}: notify the DIW by {by}.")
        }
        (Lang::En, Some(Stage::NotifyOverdue)) => {
            format!("No data from point {point} since {since}: the DIW notification was due by {by}.")
        }
        (Lang::En, Some(Stage::RestoreOverdue)) => {
            format!("No data from point {point} since {since}: transmission was to be restored by {by}.")
        }
        (Lang::En, None) => format!("No data from point {point} since {since}: deadline {by}."),
    }
}

fn availability(alert: &Alert, param: &Param<'_>, what: Option<&What>, lang: Lang) -> String {
    let day = date(alert.since_ns, lang);
    let name = param.name(lang);
    let pct = alert.value.map_or_else(String::new, |v| format!("{} %", format_decimals(v, 1)));
    match (lang, what) {
        (Lang::Th, Some(What::Availability { valid, expected, threshold_pct })) => format!(
            "{name} วันที่ {day}: ข้อมูลที่ใช้ได้ {} จาก {} ค่าที่ควรได้รับ ({pct} ต่ำกว่าเกณฑ์ {} %)",
            format_grouped(f64::from(*valid), 0),
            format_grouped(f64::from(*expected), 0),
            trim(format_decimals(*threshold_pct, 1))
        ),
        (Lang::En, Some(What::Availability { valid, expected, threshold_pct })) => format!(
            "{name} on {day}: {} valid of {} expected readings ({pct}, below the {} % required).",
            format_grouped(f64::from(*valid), 0),
            format_grouped(f64::from(*expected), 0),
            trim(format_decimals(*threshold_pct, 1))
        ),
        (Lang::Th, _) => format!("{name} วันที่ {day}: ข้อมูลที่ใช้ได้ {pct} ต่ำกว่าเกณฑ์"),
        (Lang::En, _) => format!("{name} on {day}: {pct} of expected readings valid, below the threshold."),
    }
}

fn fault(alert: &Alert, param: &Param<'_>, what: Option<&What>, lang: Lang) -> String {
    let name = param.name(lang);
    let value = alert.value.map_or_else(String::new, |v| param.value(v));
    let since = time(alert.since_ns, lang);
    match (lang, what) {
        (Lang::Th, Some(What::Flatline { after_s })) => {
            format!("{name} ค่าคงที่ {value} ตั้งแต่ {since} (ไม่เปลี่ยนแปลงนานถึง {})", duration(*after_s, lang))
        }
        (Lang::En, Some(What::Flatline { after_s })) => format!(
            "{name} has read {value} unchanged since {since} (flatline: {} or longer).",
            duration(*after_s, lang)
        ),
        (Lang::Th, Some(What::Spike { from, rate_per_min, bound_per_min })) => format!(
            "{name} เปลี่ยนจาก {} เป็น {value} เมื่อ {since} ({} ต่อนาที เกินอัตราที่กำหนด {} ต่อนาที)",
            param.value(*from),
            param.value(*rate_per_min),
            param.value(*bound_per_min)
        ),
        (Lang::En, Some(What::Spike { from, rate_per_min, bound_per_min })) => format!(
            "{name} jumped from {} to {value} at {since} ({} per minute, more than the {} per minute allowed).",
            param.value(*from),
            param.value(*rate_per_min),
            param.value(*bound_per_min)
        ),
        (lang, Some(What::Implausible)) => {
            let range = param.catalog.map_or_else(String::new, |p| {
                with_unit(format!("{}–{}", param.bound(p.plausible[0]), param.bound(p.plausible[1])), &p.unit_display)
            });
            match lang {
                Lang::Th => format!("{name} อ่านได้ {value} เมื่อ {since} อยู่นอกช่วงที่เป็นไปได้ {range}"),
                Lang::En => format!("{name} reads {value} at {since}, outside its plausible range {range}."),
            }
        }
        (Lang::Th, _) => format!("{name} เซนเซอร์ผิดปกติ อ่านได้ {value} เมื่อ {since}"),
        (Lang::En, _) => format!("{name}: sensor fault, reading {value} at {since}."),
    }
}

/// `3600` → `60 minutes` / `60 นาที`; seconds when not whole minutes.
fn duration(s: u64, lang: Lang) -> String {
    let (n, unit) = match (s % 3600, s % 60) {
        (0, _) if s >= 3600 => (s / 3600, ["ชั่วโมง", "hours"]),
        (_, 0) => (s / 60, ["นาที", "minutes"]),
        _ => (s, ["วินาที", "seconds"]),
    };
    let n = format_grouped(n as f64, 0);
    match lang {
        Lang::Th => format!("{n} {}", unit[0]),
        Lang::En if n == "1" => format!("1 {}", unit[1].trim_end_matches('s')),
        Lang::En => format!("{n} {}", unit[1]),
    }
}

#[cfg(test)]
mod tests;
