//! The messages as a person reads them, from an alert's fields.

use eitwatch_config::notify_config::Language;

use super::message::{self, Telling};
use crate::alerts::{Alert, State};
use crate::compliance::{AlertKind, LimitUsed, Severity};

/// 2026-11-23 03:04 UTC = 10:04 Bangkok.
const SINCE_NS: i64 = 1_795_403_040_000_000_000;

fn limit() -> LimitUsed {
    serde_json::from_value(serde_json::json!({
        "id": "moi-effluent-2560 5.7", "standard": "moi-effluent-2560", "clause": "5.7", "permit": null,
        "source": "s", "confidence": "primary", "unconfirmed": [], "describe": "≤ 120 mg/l",
        "parameter": "cod", "max": 120.0, "min": null, "not_detected": false, "unit": "mg/l",
        "averaging": "instantaneous", "reference_o2_pct": null, "availability_min_pct": 80.0
    }))
    .expect("a limit")
}

fn alert() -> Alert {
    Alert {
        id: 7,
        key: "k".into(),
        kind: AlertKind::Exceedance,
        severity: Severity::Critical,
        state: State::Firing,
        factory: "f1".into(),
        point: "outfall-1".into(),
        parameter: Some("cod".into()),
        detail: None,
        value: Some(150.5),
        limit: Some(Box::new(limit())),
        since_ns: SINCE_NS,
        deadline_ns: None,
        pending_ns: SINCE_NS,
        firing_ns: Some(SINCE_NS),
        ack: None,
        resolved_ns: None,
    }
}

#[test]
fn an_alert_in_thai_names_what_where_value_limit_since_link_and_ack() {
    let m = message::alert(&alert(), Telling::Fired, Language::Th, "https://eit.example/board/");
    assert_eq!(m.subject, "[eitwatch] แจ้งเตือน: ค่าเกินมาตรฐาน cod — f1");
    let what = crate::alerts::text::summary(&alert(), crate::alerts::text::Lang::Th);
    assert!(what.contains("ซีโอดี") && what.contains("151 mg/l") && what.contains("120 mg/l"), "{what}");
    assert_eq!(
        m.text,
        format!("เรื่อง: {what}\n")
            + "ที่: f1 / outfall-1\n\
         ค่าที่วัดได้: 150.5 mg/l\n\
         ค่ามาตรฐานที่ใช้: ≤ 120 mg/l (moi-effluent-2560 5.7)\n\
         ตั้งแต่: 2026-11-23 10:04 น. (เวลาไทย)\n\
         ระดับ: วิกฤต\n\
         ดูบนกระดาน: https://eit.example/board/#/factory/f1\n\
         \n\
         รับทราบการแจ้งเตือนได้ที่หน้าโรงงานบนกระดาน หรือ POST /api/v1/alerts/7/ack (เลขที่ 7)\n"
    );
    assert!(m.html.contains("<td>150.5 mg/l</td>") && m.html.contains("<td>≤ 120 mg/l (moi-effluent-2560 5.7)</td>"));
}

#[test]
fn a_resolution_in_english_says_when_and_asks_nothing() {
    let mut a = alert();
    a.state = State::Resolved;
    a.resolved_ns = Some(SINCE_NS + 3_600_000_000_000);
    let m = message::alert(&a, Telling::Resolved, Language::En, "");
    assert_eq!(m.subject, "[eitwatch] Resolved: Limit exceeded cod — f1");
    assert!(m.text.contains("Since: 2026-11-23 10:04 (Bangkok time)\n"), "{}", m.text);
    assert!(m.text.contains("Resolved at: 2026-11-23 11:04 (Bangkok time)\n"), "{}", m.text);
    assert!(!m.text.contains("ack"), "{}", m.text);
}

#[test]
fn line_text_stays_within_5000_characters() {
    let lines: Vec<String> = (0..400).map(|i| format!("#{i} ค่าเกินมาตรฐาน f1/outfall-{i} cod 150 mg/l")).collect();
    let m = message::summary(&lines, Language::Th, "");
    // 50 alerts by line, then how many more.
    assert!(m.text.contains("#49 ") && !m.text.contains("#50 ") && m.text.contains("และอีก 350 รายการ"), "{}", m.text);
}

#[test]
fn a_long_text_is_cut_to_lines_5000_characters() {
    let long = message::Message { subject: "ส".repeat(10), text: "ค".repeat(6000), html: String::new() };
    let text = message::line_text(&long);
    assert_eq!(text.chars().count(), 5000);
    assert!(text.starts_with(&format!("{}\n\nค", "ส".repeat(10))) && text.ends_with('…'));
    let short = message::Message { subject: "s".into(), text: "t\n".into(), html: String::new() };
    assert_eq!(message::line_text(&short), "s\n\nt");
}
