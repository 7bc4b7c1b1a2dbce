//! A report as CSV (one row per value) and as an XLSX workbook (sheets `indicators`,
//! `evidence`, `episodes`), headers in Thai and English, dates in Bangkok time, optionally
//! in the Buddhist era.
//!
//! Values are rounded to their display precision: an indicator's by its unit (`%` to 2
//! decimals, hours and kg to 1, counts whole, tonnes to 3), an episode's peak and mean to its parameter's
//! (the catalog's `display_decimals`); the JSON report keeps full values. In the workbook,
//! dates are Excel date cells (Bangkok time) whose number format shows the Buddhist-era
//! year when asked (`[$-7041E]`: Thai locale, Thai Buddhist calendar), numbers carry a
//! format with their decimals, columns are as wide as their contents and the header row is
//! frozen.

use eitwatch_config::catalog::{Catalog, format_decimals};
use eitwatch_config::reading::Kind;
use eitwatch_config::standards::Standards;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, XlsxError};

use super::Report;
use super::periods::{date_text, datetime_text};
use crate::compliance::Episode;

/// Columns of the indicators table.
pub const INDICATOR_HEADERS: [&str; 16] = [
    "ตัวชี้วัด / indicator",
    "รหัส EIT / EIT code",
    "ชื่อตัวชี้วัด / indicator (Thai)",
    "indicator name / ชื่อ (English)",
    "รายการ / value key",
    "รายการ (ไทย) / item (Thai)",
    "item / รายการ (English)",
    "ค่า / value",
    "หน่วย / unit",
    "ตัวตั้ง / numerator",
    "ตัวหาร / denominator",
    "ช่วงก่อนหน้า / previous period",
    "เปลี่ยนแปลง / change",
    "คำนวณไม่ได้เพราะ / not computed because",
    "ตั้งแต่ / from",
    "ถึง (รวม) / to (inclusive)",
];

/// Columns of the evidence table.
pub const EVIDENCE_HEADERS: [&str; 8] = [
    "ตัวชี้วัด / indicator",
    "โรงงาน / factory",
    "จุดตรวจวัด / point",
    "พารามิเตอร์ / parameter",
    "หน่วยนับ / counted",
    "ใช้ / used",
    "ไม่นับ / excluded",
    "รายละเอียด / note",
];

/// Columns of the episodes table.
pub const EPISODE_HEADERS: [&str; 12] = [
    "พื้นที่ / area",
    "โรงงาน / factory",
    "จุดตรวจวัด / point",
    "พารามิเตอร์ / parameter",
    "ค่ามาตรฐาน / limit",
    "หน่วย / unit",
    "เริ่ม / start",
    "สิ้นสุด / end",
    "จำนวนช่วง / periods",
    "ค่าสูงสุด / peak",
    "ค่าเฉลี่ย / mean",
    "ยังดำเนินอยู่ / ongoing",
];

enum Cell {
    Text(String),
    /// A value and the decimals it is shown with.
    Number(Option<f64>, u8),
    /// A Bangkok date (`false`) or date and time (`true`), ns.
    Date(i64, bool),
}

/// Decimals an indicator value of `unit` is shown with: a percentage to 2, so that 2
/// exceedances in 4 320 samples (99.95 %) do not read as 100.
fn unit_decimals(unit: &str) -> u8 {
    match unit {
        "count" => 0,
        "%" => 2,
        "t" => 3,
        _ => 1,
    }
}

/// A count, or a numerator/denominator: whole where whole, else to 2 decimals.
fn count(v: Option<f64>) -> Cell {
    let whole = v.is_none_or(|v| v.fract() == 0.0);
    Cell::Number(v, if whole { 0 } else { 2 })
}

/// Decimals of an episode's values: its parameter's, in the measurement its standard is for.
fn episode_decimals(e: &Episode) -> u8 {
    let catalog = Catalog::builtin();
    let kind = e.limit.standard.as_deref().and_then(|id| Standards::builtin().get(id)).map(|s| s.kind);
    let kinds = kind.map_or_else(|| Kind::ALL.to_vec(), |k| vec![k]);
    kinds.into_iter().find_map(|k| catalog.get(k, &e.parameter)).map_or(3, |p| p.display_decimals)
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn indicator_rows(r: &Report) -> Vec<Vec<Cell>> {
    let (from, to) = (r.period.from_ns, r.period.to_ns - 1);
    let mut rows = Vec::new();
    for i in &r.indicators {
        for v in &i.values {
            let d = unit_decimals(&v.unit);
            rows.push(vec![
                text(&i.id),
                text(i.eit_code.clone().unwrap_or_default()),
                text(&i.name_th),
                text(&i.name_en),
                text(&v.key),
                text(&v.name_th),
                text(&v.name_en),
                Cell::Number(v.value, d),
                text(&v.unit),
                count(v.numerator),
                count(v.denominator),
                Cell::Number(v.previous, d),
                Cell::Number(v.change, d),
                text(v.not_computed.clone().unwrap_or_default()),
                Cell::Date(from, false),
                Cell::Date(to, false),
            ]);
        }
    }
    rows
}

fn evidence_rows(r: &Report) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for i in &r.indicators {
        for e in &i.evidence {
            rows.push(vec![
                text(&i.id),
                text(&e.factory),
                text(e.point.clone().unwrap_or_default()),
                text(e.parameter.clone().unwrap_or_default()),
                text(&e.counted),
                Cell::Number(Some(e.used as f64), 0),
                Cell::Number(Some(e.excluded as f64), 0),
                text(&e.note),
            ]);
        }
    }
    rows
}

fn episode_rows(r: &Report) -> Vec<Vec<Cell>> {
    r.episodes
        .iter()
        .map(|e| {
            let d = episode_decimals(e);
            vec![
                text(&e.area),
                text(&e.factory),
                text(&e.point),
                text(&e.parameter),
                text(&e.limit.describe),
                text(eitwatch_config::catalog::typeset_unit(&e.limit.unit)),
                Cell::Date(e.start_ns, true),
                Cell::Date(e.end_ns, true),
                Cell::Number(Some(e.periods as f64), 0),
                Cell::Number(Some(e.peak), d),
                Cell::Number(Some(e.mean), d),
                text(if e.ongoing { "ใช่ / yes" } else { "ไม่ / no" }),
            ]
        })
        .collect()
}

fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// The indicators table as CSV (RFC 4180, UTF-8 with a byte-order mark so spreadsheet
/// programs read the Thai correctly).
pub fn csv(r: &Report, buddhist_era: bool) -> String {
    let mut out = String::from('\u{feff}');
    out.push_str(&INDICATOR_HEADERS.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(","));
    out.push_str("\r\n");
    for row in indicator_rows(r) {
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match cell {
                Cell::Text(s) => csv_field(&mut out, s),
                Cell::Number(Some(v), d) => out.push_str(&shortest(*v, *d)),
                Cell::Number(None, _) => {}
                Cell::Date(t, false) => out.push_str(&date_text(*t, buddhist_era)),
                Cell::Date(t, true) => out.push_str(&datetime_text(*t, buddhist_era)),
            }
        }
        out.push_str("\r\n");
    }
    out
}

/// `v` to `decimals`, without trailing zeros (`50`, `33.3`, `0.25`): a number a program
/// reads back as the value shown.
fn shortest(v: f64, decimals: u8) -> String {
    let s = format_decimals(v, decimals);
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// An Excel number format with `decimals` decimals and grouped thousands.
fn number_format(decimals: u8) -> String {
    match decimals {
        0 => "#,##0".to_string(),
        d => format!("#,##0.{}", "0".repeat(usize::from(d))),
    }
}

/// An Excel date cell's value: the Bangkok civil date (and time) of `t_ns`.
fn excel_datetime(t_ns: i64, with_time: bool) -> Result<ExcelDateTime, XlsxError> {
    let invalid = || XlsxError::ParameterError(format!("time {t_ns} ns is not a date Excel holds"));
    let t = jiff::Timestamp::from_nanosecond(i128::from(t_ns)).map_err(|_| invalid())?;
    let local = jiff::tz::Offset::constant(7).to_datetime(t);
    let year = u16::try_from(local.year()).map_err(|_| invalid())?;
    let date = ExcelDateTime::from_ymd(year, local.month() as u8, local.day() as u8)?;
    match with_time {
        true => date.and_hms(local.hour() as u16, local.minute() as u8, local.second() as u8),
        false => Ok(date),
    }
}

/// A sheet's name, headers and rows.
type Sheet<'a> = (&'a str, &'a [&'a str], Vec<Vec<Cell>>);

/// The workbook: sheets `indicators`, `evidence`, `episodes`.
pub fn xlsx(r: &Report, buddhist_era: bool) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let sheets: [Sheet<'_>; 3] = [
        ("indicators", &INDICATOR_HEADERS, indicator_rows(r)),
        ("evidence", &EVIDENCE_HEADERS, evidence_rows(r)),
        ("episodes", &EPISODE_HEADERS, episode_rows(r)),
    ];
    let calendar = if buddhist_era { "[$-7041E]dd/mm/yyyy" } else { "yyyy-mm-dd" };
    let date = Format::new().set_num_format(calendar);
    let datetime = Format::new().set_num_format(format!("{calendar} hh:mm"));
    let numbers: Vec<Format> = (0..=6).map(|d| Format::new().set_num_format(number_format(d))).collect();
    for (name, headers, rows) in sheets {
        let sheet = book.add_worksheet();
        sheet.set_name(name)?;
        for (c, h) in headers.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, *h, &bold)?;
        }
        for (i, row) in rows.iter().enumerate() {
            let row_no = i as u32 + 1;
            for (c, cell) in row.iter().enumerate() {
                match cell {
                    Cell::Text(s) => {
                        sheet.write_string(row_no, c as u16, s)?;
                    }
                    Cell::Number(Some(v), d) => {
                        let d = (*d).min(6);
                        let rounded = format_decimals(*v, d).parse::<f64>().unwrap_or(*v);
                        sheet.write_number_with_format(row_no, c as u16, rounded, &numbers[usize::from(d)])?;
                    }
                    Cell::Number(None, _) => {}
                    Cell::Date(t, with_time) => {
                        let format = if *with_time { &datetime } else { &date };
                        sheet.write_datetime_with_format(row_no, c as u16, excel_datetime(*t, *with_time)?, format)?;
                    }
                }
            }
        }
        sheet.autofit();
        sheet.set_freeze_panes(1, 0)?;
    }
    book.save_to_buffer()
}
