//! A report as CSV (one row per value) and as an XLSX workbook (sheets `indicators`,
//! `evidence`, `episodes`), headers in Thai and English, dates in Bangkok time, optionally
//! in the Buddhist era.

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::Report;
use super::periods::{date_text, datetime_text};

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
    Number(Option<f64>),
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn indicator_rows(r: &Report, be: bool) -> Vec<Vec<Cell>> {
    let (from, to) = (date_text(r.period.from_ns, be), date_text(r.period.to_ns - 1, be));
    let mut rows = Vec::new();
    for i in &r.indicators {
        for v in &i.values {
            rows.push(vec![
                text(&i.id),
                text(i.eit_code.clone().unwrap_or_default()),
                text(&i.name_th),
                text(&i.name_en),
                text(&v.key),
                text(&v.name_th),
                text(&v.name_en),
                Cell::Number(v.value),
                text(&v.unit),
                Cell::Number(v.numerator),
                Cell::Number(v.denominator),
                Cell::Number(v.previous),
                Cell::Number(v.change),
                text(v.not_computed.clone().unwrap_or_default()),
                text(&from),
                text(&to),
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
                Cell::Number(Some(e.used as f64)),
                Cell::Number(Some(e.excluded as f64)),
                text(&e.note),
            ]);
        }
    }
    rows
}

fn episode_rows(r: &Report, be: bool) -> Vec<Vec<Cell>> {
    r.episodes
        .iter()
        .map(|e| {
            vec![
                text(&e.area),
                text(&e.factory),
                text(&e.point),
                text(&e.parameter),
                text(&e.limit.describe),
                text(&e.limit.unit),
                text(datetime_text(e.start_ns, be)),
                text(datetime_text(e.end_ns, be)),
                Cell::Number(Some(e.periods as f64)),
                Cell::Number(Some(e.peak)),
                Cell::Number(Some(e.mean)),
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
    for row in indicator_rows(r, buddhist_era) {
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match cell {
                Cell::Text(s) => csv_field(&mut out, s),
                Cell::Number(Some(v)) => out.push_str(&v.to_string()),
                Cell::Number(None) => {}
            }
        }
        out.push_str("\r\n");
    }
    out
}

/// A sheet's name, headers and rows.
type Sheet<'a> = (&'a str, &'a [&'a str], Vec<Vec<Cell>>);

/// The workbook: sheets `indicators`, `evidence`, `episodes`.
pub fn xlsx(r: &Report, buddhist_era: bool) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let sheets: [Sheet<'_>; 3] = [
        ("indicators", &INDICATOR_HEADERS, indicator_rows(r, buddhist_era)),
        ("evidence", &EVIDENCE_HEADERS, evidence_rows(r)),
        ("episodes", &EPISODE_HEADERS, episode_rows(r, buddhist_era)),
    ];
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
                    Cell::Number(Some(v)) => {
                        sheet.write_number(row_no, c as u16, *v)?;
                    }
                    Cell::Number(None) => {}
                }
            }
        }
        sheet.set_freeze_panes(1, 0)?;
    }
    book.save_to_buffer()
}
