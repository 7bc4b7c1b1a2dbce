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

/// The server as the delivery task sees it: a clock and the alert book.
struct Book {
    now_ns: i64,
    alerts: std::collections::BTreeMap<u64, Alert>,
}

impl super::Source for Book {
    fn now_ns(&self) -> i64 {
        self.now_ns
    }

    fn alerts(&self, ids: &std::collections::BTreeSet<u64>) -> std::collections::BTreeMap<u64, Alert> {
        ids.iter().filter_map(|id| Some((*id, self.alerts.get(id)?.clone()))).collect()
    }

    fn area_of(&self, _factory: &str) -> String {
        "a".into()
    }

    fn digest(&self, _now_ns: i64, _sees: &dyn Fn(&str, &str) -> bool) -> super::digest::Digest {
        panic!("no recipient has a digest")
    }
}

fn alert_in(id: u64, state: State, resolved_ns: Option<i64>) -> Alert {
    Alert { id, state, resolved_ns, ..alert() }
}

fn told_of(n: &super::Notifier, id: u64) -> Vec<super::Purpose> {
    n.log(|x| x.alert == Some(id), usize::MAX).iter().map(|x| x.purpose).collect()
}

#[tokio::test]
async fn after_a_compaction_and_a_restart_each_alert_is_told_fired_and_resolved_exactly_once() {
    use super::Purpose::{Fired, Resolved};
    let dir = tempfile::tempdir().expect("tempdir");
    let recipient = serde_json::from_value(serde_json::json!({
        "id": "r", "email": ["officer@diw.example"], "subscription": [{}]
    }))
    .expect("a recipient");
    let config = eitwatch_config::notify_config::NotifySection {
        recipient: vec![recipient],
        rate_max: 1_000_000,
        ..Default::default()
    };
    let hour = 3_600_000_000_000;
    let now = SINCE_NS + 10 * hour;
    let mut book = Book { now_ns: now, alerts: Default::default() };
    let notifier = super::Notifier::open(dir.path(), &config).expect("open");
    // 1100 alerts fired and resolved (4 lines each: 2 notifications, 2 keys); 2000 still
    // firing; 3000 and 3001 resolved in the book, their resolutions not routed: 3000 an hour
    // ago (missed), 3001 a minute ago (on its way).
    for id in 1..=1100 {
        notifier.on_alerts(&book, &[alert_in(id, State::Firing, None)]);
        let resolved = alert_in(id, State::Resolved, Some(now - hour));
        notifier.on_alerts(&book, std::slice::from_ref(&resolved));
        book.alerts.insert(id, resolved);
    }
    for id in [2000, 3000, 3001] {
        notifier.on_alerts(&book, &[alert_in(id, State::Firing, None)]);
    }
    book.alerts.insert(2000, alert_in(2000, State::Firing, None));
    book.alerts.insert(3000, alert_in(3000, State::Resolved, Some(now - hour)));
    book.alerts.insert(3001, alert_in(3001, State::Resolved, Some(now - 60_000_000_000)));
    // Every notification is tried (no e-mail configured: refused), then the log compacted.
    notifier.run_once(&book).await;
    let counts = notifier.counters.snapshot();
    assert_eq!((counts.queued, counts.failed, counts.held), (2203, 2203, 0));
    assert_eq!(notifier.log(|_| true, usize::MAX).len(), super::outbox::KEEP_FINISHED);
    assert_eq!(told_of(&notifier, 2000), [Fired]);
    drop(notifier);

    let notifier = super::Notifier::open(dir.path(), &config).expect("reopen");
    let log = std::fs::read_to_string(dir.path().join("notify/outbox.log")).expect("log");
    // next, 1000 notifications, fired:2000 and fired:3001, the address's rate count.
    assert_eq!(log.lines().count(), 1004);
    assert!(log.contains(r#"{"op":"told","key":"fired:2000"}"#) && log.contains(r#""key":"fired:3001"}"#));
    // Changes already told, seen again, tell nothing.
    notifier.on_alerts(&book, &[alert_in(2000, State::Firing, None), alert_in(5, State::Resolved, Some(now - hour))]);
    assert_eq!(notifier.counters.snapshot().queued, 0);
    // The resolutions: 2000 and 3001 told once; 3000's was missed and stays untold.
    let resolved = |id| alert_in(id, State::Resolved, Some(now));
    notifier.on_alerts(&book, &[resolved(2000), resolved(3001), resolved(3000)]);
    notifier.on_alerts(&book, &[resolved(2000), resolved(3001)]);
    assert_eq!(notifier.counters.snapshot().queued, 2);
    assert_eq!(told_of(&notifier, 2000), [Resolved, Fired]);
    assert_eq!(told_of(&notifier, 3001), [Resolved, Fired]);
    assert_eq!(told_of(&notifier, 3000), [Fired]);
    // Ids go on after the 2203 given before.
    let ids: Vec<u64> = notifier.log(|_| true, 2).iter().map(|x| x.id).collect();
    assert_eq!(ids, [2205, 2204]);
}
