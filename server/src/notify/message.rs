//! What a person reads: an alert, its resolution or escalation, a storm's summary, the daily
//! digest and the test message, in Thai or English, as a subject, plain text and simple HTML.
//! LINE gets the plain text. An alert's sentence is the one the board and the API show
//! ([`crate::alerts::text::summary`]: applied limit and its basis, units, Thai names); the
//! lines under it repeat its parts for a quick read.

use std::fmt::Write as _;

use eitwatch_config::notify_config::Language;

use crate::alerts::Alert;
use crate::compliance::{AlertKind, Severity};

/// A message ready for any channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The e-mail subject (and the first line on LINE).
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// Simple HTML (e-mail only).
    pub html: String,
}

/// Why an alert is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Telling {
    /// It fired.
    Fired,
    /// It resolved.
    Resolved,
    /// Still unacknowledged after the escalation wait.
    Escalated,
}

fn kind_words(kind: AlertKind, lang: Language) -> &'static str {
    match (kind, lang) {
        (AlertKind::Exceedance, Language::Th) => "ค่าเกินมาตรฐาน",
        (AlertKind::NoData, Language::Th) => "ไม่มีข้อมูลส่งเข้ามา",
        (AlertKind::SensorFault, Language::Th) => "เครื่องวัดผิดปกติ",
        (AlertKind::Availability, Language::Th) => "ข้อมูลไม่ครบตามเกณฑ์",
        (AlertKind::Deadline, Language::Th) => "ใกล้หรือเลยกำหนดแจ้งเหตุขัดข้อง",
        (AlertKind::Exceedance, Language::En) => "Limit exceeded",
        (AlertKind::NoData, Language::En) => "No data",
        (AlertKind::SensorFault, Language::En) => "Sensor fault",
        (AlertKind::Availability, Language::En) => "Data availability below threshold",
        (AlertKind::Deadline, Language::En) => "Fault-notification deadline",
    }
}

fn severity_words(severity: Severity, lang: Language) -> &'static str {
    match (severity, lang) {
        (Severity::Critical, Language::Th) => "วิกฤต",
        (Severity::Warning, Language::Th) => "เตือน",
        (Severity::Info, Language::Th) => "แจ้งเพื่อทราบ",
        (Severity::Critical, Language::En) => "critical",
        (Severity::Warning, Language::En) => "warning",
        (Severity::Info, Language::En) => "info",
    }
}

/// `2026-11-23 14:05 น. (เวลาไทย)` / `2026-11-23 14:05 (Bangkok time)`.
pub fn bangkok(t_ns: i64, lang: Language) -> String {
    let full = crate::compliance::period::local(t_ns);
    let short = full.get(..16).unwrap_or(&full).replace('T', " ");
    match lang {
        Language::Th => format!("{short} น. (เวลาไทย)"),
        Language::En => format!("{short} (Bangkok time)"),
    }
}

/// The board's page of a factory.
pub fn factory_link(board_url: &str, factory: &str) -> String {
    if board_url.is_empty() {
        return String::new();
    }
    format!("{}/#/factory/{factory}", board_url.trim_end_matches('/'))
}

fn number(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The alert in lines of `label: value`: what, where, value and limit, since when.
fn alert_lines(a: &Alert, lang: Language) -> Vec<(&'static str, String)> {
    let th = lang == Language::Th;
    let mut lines = Vec::new();
    let text_lang = if th { crate::alerts::text::Lang::Th } else { crate::alerts::text::Lang::En };
    lines.push((if th { "เรื่อง" } else { "What" }, crate::alerts::text::summary(a, text_lang)));
    lines.push((if th { "ที่" } else { "Where" }, format!("{} / {}", a.factory, a.point)));
    let unit = a.limit.as_ref().map(|l| l.unit.clone()).unwrap_or_default();
    if let Some(v) = a.value {
        lines.push((if th { "ค่าที่วัดได้" } else { "Value" }, format!("{} {unit}", number(v)).trim_end().to_string()));
    }
    if let Some(l) = &a.limit {
        let bound = match (l.max, l.min) {
            (Some(max), Some(min)) => format!("{}–{} {}", number(min), number(max), l.unit),
            (Some(max), None) => format!("≤ {} {}", number(max), l.unit),
            (None, Some(min)) => format!("≥ {} {}", number(min), l.unit),
            (None, None) => l.describe.clone(),
        };
        let source = match (&l.permit, &l.standard, &l.clause) {
            (Some(p), _, _) => format!(" ({}{p})", if th { "ใบอนุญาต " } else { "permit " }),
            (None, Some(s), Some(c)) => format!(" ({s} {c})"),
            (None, Some(s), None) => format!(" ({s})"),
            _ => String::new(),
        };
        lines.push((if th { "ค่ามาตรฐานที่ใช้" } else { "Limit applied" }, format!("{bound}{source}")));
    }
    lines.push((if th { "ตั้งแต่" } else { "Since" }, bangkok(a.since_ns, lang)));
    lines.push((if th { "ระดับ" } else { "Severity" }, severity_words(a.severity, lang).to_string()));
    lines
}

/// An alert told to someone.
pub fn alert(a: &Alert, telling: Telling, lang: Language, board_url: &str) -> Message {
    let th = lang == Language::Th;
    let head = match (telling, th) {
        (Telling::Fired, true) => "แจ้งเตือน",
        (Telling::Resolved, true) => "กลับสู่ปกติ",
        (Telling::Escalated, true) => "ยังไม่มีผู้รับทราบ",
        (Telling::Fired, false) => "Alert",
        (Telling::Resolved, false) => "Resolved",
        (Telling::Escalated, false) => "Unacknowledged",
    };
    let subject = format!(
        "[eitwatch] {head}: {}{} — {}",
        kind_words(a.kind, lang),
        a.parameter.as_deref().map(|p| format!(" {p}")).unwrap_or_default(),
        a.factory
    );
    let mut lines = alert_lines(a, lang);
    if telling == Telling::Resolved
        && let Some(at) = a.resolved_ns
    {
        lines.push((if th { "กลับสู่ปกติเมื่อ" } else { "Resolved at" }, bangkok(at, lang)));
    }
    let link = factory_link(board_url, &a.factory);
    let ack = match (telling, th) {
        (Telling::Resolved, _) => String::new(),
        (_, true) => {
            format!("รับทราบการแจ้งเตือนได้ที่หน้าโรงงานบนกระดาน หรือ POST /api/v1/alerts/{}/ack (เลขที่ {})", a.id, a.id)
        }
        (_, false) => format!(
            "Acknowledge it on the factory's board page or with POST /api/v1/alerts/{}/ack (alert {}).",
            a.id, a.id
        ),
    };
    render(subject, &lines, &link, &ack, lang)
}

fn render(subject: String, lines: &[(&str, String)], link: &str, footer: &str, lang: Language) -> Message {
    let mut text = String::new();
    let mut html = String::from("<!DOCTYPE html><html><body><table>");
    for (label, value) in lines {
        let _ = writeln!(text, "{label}: {value}");
        let _ = write!(html, "<tr><th align=\"left\">{}</th><td>{}</td></tr>", escape(label), escape(value));
    }
    html.push_str("</table>");
    if !link.is_empty() {
        let label = if lang == Language::Th { "ดูบนกระดาน" } else { "On the board" };
        let _ = writeln!(text, "{label}: {link}");
        let _ = write!(html, "<p><a href=\"{}\">{}</a></p>", escape(link), escape(label));
    }
    if !footer.is_empty() {
        let _ = writeln!(text, "\n{footer}");
        let _ = write!(html, "<p>{}</p>", escape(footer));
    }
    html.push_str("</body></html>");
    Message { subject, text, html }
}

/// One line for an alert in a storm's summary.
pub fn summary_line(a: &Alert, lang: Language) -> String {
    let value = a.value.map(|v| format!(" {}", number(v))).unwrap_or_default();
    let unit = a.limit.as_ref().map(|l| format!(" {}", l.unit)).unwrap_or_default();
    format!(
        "#{} {} {}/{}{}{}{} {}",
        a.id,
        kind_words(a.kind, lang),
        a.factory,
        a.point,
        a.parameter.as_deref().map(|p| format!(" {p}")).unwrap_or_default(),
        value,
        if value.is_empty() { "" } else { &unit },
        if a.state == crate::alerts::State::Resolved {
            if lang == Language::Th { "(กลับสู่ปกติ)" } else { "(resolved)" }
        } else {
            ""
        }
    )
}

/// Alerts held back by the rate limit, told at once (at most `SUMMARY_LINES` of them by line).
pub fn summary(lines: &[String], lang: Language, board_url: &str) -> Message {
    const SUMMARY_LINES: usize = 50;
    let th = lang == Language::Th;
    let subject = match th {
        true => format!("[eitwatch] สรุปการแจ้งเตือน {} รายการ", lines.len()),
        false => format!("[eitwatch] {} more alerts", lines.len()),
    };
    let mut rows: Vec<(&str, String)> = lines.iter().take(SUMMARY_LINES).map(|l| ("", l.clone())).collect();
    if lines.len() > SUMMARY_LINES {
        let more = lines.len() - SUMMARY_LINES;
        rows.push(("", if th { format!("และอีก {more} รายการ") } else { format!("and {more} more") }));
    }
    let footer = match th {
        true => "ส่งเป็นสรุปเพราะมีการแจ้งเตือนจำนวนมากในเวลาสั้น ๆ ดูทั้งหมดที่ /api/v1/alerts",
        false => "Sent as one summary: many alerts came in a short time. All of them: /api/v1/alerts",
    };
    let mut m = render(subject, &[], board_url.trim_end_matches('/'), footer, lang);
    // The lines without labels.
    let list: String = rows.iter().map(|(_, l)| format!("{l}\n")).collect();
    m.text = format!("{list}\n{}", m.text);
    let items: String = rows.iter().map(|(_, l)| format!("<li>{}</li>", escape(l))).collect();
    m.html = m.html.replacen("<table></table>", &format!("<ul>{items}</ul>"), 1);
    m
}

/// The test message of `notify test`.
pub fn test(recipient: &str, lang: Language) -> Message {
    let (subject, body) = match lang {
        Language::Th => (
            "[eitwatch] ข้อความทดสอบ".to_string(),
            format!("ข้อความทดสอบถึง {recipient}: ช่องทางนี้ได้รับการแจ้งเตือนจาก eitwatch"),
        ),
        Language::En => (
            "[eitwatch] Test message".to_string(),
            format!("A test message to {recipient}: this channel receives eitwatch's alerts."),
        ),
    };
    render(subject, &[], "", &body, lang)
}

/// The daily digest.
pub fn digest(d: &super::digest::Digest, lang: Language, board_url: &str) -> Message {
    let th = lang == Language::Th;
    let subject = match th {
        true => format!("[eitwatch] สรุปประจำวัน {}", d.day),
        false => format!("[eitwatch] Daily digest {}", d.day),
    };
    let mut text = String::new();
    let mut html = String::from("<!DOCTYPE html><html><body>");
    let mut section = |title: &str, items: &[String], none: &str| {
        let _ = writeln!(text, "{title} ({})", items.len());
        let _ = write!(html, "<h3>{} ({})</h3><ul>", escape(title), items.len());
        if items.is_empty() {
            let _ = writeln!(text, "  {none}");
            let _ = write!(html, "<li>{}</li>", escape(none));
        }
        for i in items {
            let _ = writeln!(text, "  - {i}");
            let _ = write!(html, "<li>{}</li>", escape(i));
        }
        text.push('\n');
        html.push_str("</ul>");
    };
    let none = if th { "ไม่มี" } else { "none" };
    section(
        if th {
            "ช่วงเวลาที่ค่าเกินมาตรฐาน"
        } else {
            "Exceeding periods"
        },
        &d.exceedances,
        none,
    );
    section(
        if th {
            "เหตุการณ์ค่าเกินต่อเนื่อง"
        } else {
            "Exceedance episodes"
        },
        &d.episodes,
        none,
    );
    section(if th { "โรงงานที่ไม่มีข้อมูล" } else { "Factories without data" }, &d.silent, none);
    section(
        if th {
            "ความครบถ้วนของข้อมูลต่ำกว่า 80 %"
        } else {
            "Availability below 80 %"
        },
        &d.availability,
        none,
    );
    section(if th { "ถึงกำหนดแจ้งเหตุขัดข้อง" } else { "Deadlines due" }, &d.deadlines_due, none);
    section(if th { "เลยกำหนดแจ้งเหตุขัดข้อง" } else { "Deadlines overdue" }, &d.deadlines_overdue, none);
    if !board_url.is_empty() {
        let _ = writeln!(text, "{}", board_url);
        let _ = write!(html, "<p><a href=\"{0}\">{0}</a></p>", escape(board_url));
    }
    html.push_str("</body></html>");
    Message { subject, text, html }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The text of a LINE message: subject and text, cut to the API's 5000 characters (counted
/// as characters, as LINE counts them).
pub fn line_text(m: &Message) -> String {
    const LINE_TEXT_MAX_CHARS: usize = 5000;
    let full = format!("{}\n\n{}", m.subject, m.text.trim_end());
    if full.chars().count() <= LINE_TEXT_MAX_CHARS {
        return full;
    }
    let mut cut: String = full.chars().take(LINE_TEXT_MAX_CHARS - 1).collect();
    cut.push('…');
    cut
}
