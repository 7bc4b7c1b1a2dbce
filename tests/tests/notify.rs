//! Alerts reaching people (issue 18), against the real server binary and real protocol peers
//! on loopback: aiosmtpd receiving the e-mails (STARTTLS and AUTH, or plain), parsed with
//! Python's own MIME parser; a local LINE Messaging API push endpoint (tests/peers/line_api.py)
//! that checks every request against the documented shape and answers as LINE does,
//! including 429 with `Retry-After`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::site::{Area, Factory, Point, Site};
use support::{Proc, TestServer, bin, free_port, python, wait_for, workspace_root};

const LINE_TOKEN: &str = "test-channel-access-token";
const SMTP_USER: &str = "eitwatch";
const SMTP_PASSWORD: &str = "smtp-secret";

fn line_id(n: u8) -> String {
    format!("U{:032x}", u128::from(n) * 0x1111_1111)
}

fn now_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

/// aiosmtpd on `port`, keeping messages in `<dir>/mail/`; with `certs`, STARTTLS and AUTH
/// are required.
async fn smtp(dir: &Path, port: u16, certs: Option<&Path>) -> Proc {
    let script = workspace_root().join("tests/peers/smtp_server.py");
    let mut command = Command::new(python());
    command.arg(script).arg(dir.join("mail")).arg(port.to_string());
    if let Some(c) = certs {
        command.args(["--user", SMTP_USER, "--password", SMTP_PASSWORD]);
        command.arg("--cert").arg(c.join("server.pem")).arg("--key").arg(c.join("server.key"));
    }
    let proc = Proc::spawn("smtp", dir, &mut command);
    wait_for("aiosmtpd ready", Duration::from_secs(30), || {
        let log = proc.log();
        async move { log.lines().any(|l| l.starts_with("ready ")).then_some(()) }
    })
    .await;
    proc
}

/// The LINE push endpoint; the first `too_many` requests are answered 429.
struct LineApi {
    _proc: Proc,
    log: PathBuf,
    url: String,
}

impl LineApi {
    async fn start(dir: &Path, too_many: u32, retry_after_s: u32) -> LineApi {
        let port = free_port().port();
        let log = dir.join("line-requests.jsonl");
        let script = workspace_root().join("tests/peers/line_api.py");
        let proc = Proc::spawn(
            "line-api",
            dir,
            Command::new(python()).arg(script).arg(&log).arg(port.to_string()).arg(LINE_TOKEN).args([
                "--too-many",
                &too_many.to_string(),
                "--retry-after",
                &retry_after_s.to_string(),
            ]),
        );
        wait_for("LINE API ready", Duration::from_secs(30), || {
            let log = proc.log();
            async move { log.lines().any(|l| l.starts_with("ready ")).then_some(()) }
        })
        .await;
        LineApi { _proc: proc, log, url: format!("http://127.0.0.1:{port}") }
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).expect("a logged request")).collect()
    }

    /// Waits until `want` requests were answered 200.
    async fn delivered(&self, want: usize) -> Vec<serde_json::Value> {
        wait_for(&format!("{want} LINE message(s) delivered"), Duration::from_secs(60), || async {
            let ok: Vec<_> = self.requests().into_iter().filter(|r| r["status"] == 200).collect();
            (ok.len() >= want).then_some(ok)
        })
        .await
    }
}

/// `[notify]` with the channels given and `recipients` (TOML) after it.
fn notify_toml(
    dir: &Path,
    smtp: Option<(u16, Option<&Path>)>,
    line: Option<&LineApi>,
    keys: &str,
    recipients: &str,
) -> String {
    let mut toml = format!(
        "[notify]\nboard_url = \"http://board.example/board\"\nretry_initial_ms = 100\nretry_max_ms = 500\n{keys}\n"
    );
    if let Some((port, certs)) = smtp {
        toml.push_str(&format!(
            "[notify.email]\nhost = \"127.0.0.1\"\nport = {port}\nfrom = \"eitwatch <alerts@eitwatch.example>\"\n"
        ));
        match certs {
            Some(c) => {
                let secret = dir.join("smtp-password");
                std::fs::write(&secret, format!("{SMTP_PASSWORD}\n")).expect("secret");
                toml.push_str(&format!(
                    "tls = \"starttls\"\nca_file = \"{}\"\nusername = \"{SMTP_USER}\"\npassword_file = \"{}\"\n",
                    c.join("ca.pem").display(),
                    secret.display()
                ));
            }
            None => toml.push_str("tls = \"none\"\n"),
        }
    }
    if let Some(l) = line {
        let secret = dir.join("line-token");
        std::fs::write(&secret, LINE_TOKEN).expect("secret");
        toml.push_str(&format!("[notify.line]\nbase_url = \"{}\"\ntoken_file = \"{}\"\n", l.url, secret.display()));
    }
    toml.push_str(recipients);
    toml
}

fn emails(dir: &Path) -> Vec<PathBuf> {
    let mut list: Vec<PathBuf> = std::fs::read_dir(dir.join("mail"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect()
        })
        .unwrap_or_default();
    list.sort();
    list
}

async fn wait_emails(dir: &Path, want: usize) -> Vec<PathBuf> {
    wait_for(&format!("{want} e-mail(s) received"), Duration::from_secs(60), || async {
        let list = emails(dir);
        (list.len() >= want).then_some(list)
    })
    .await
}

/// The e-mail parsed by Python's `email` package.
fn mime(path: &Path) -> serde_json::Value {
    let out = Command::new(python())
        .arg(workspace_root().join("tests/peers/mime_parts.py"))
        .arg(path)
        .output()
        .expect("mime_parts.py");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

async fn notifications(server: &TestServer, query: &str) -> Vec<serde_json::Value> {
    let (status, v) = server.get_json_as(server.admin_token(), &format!("/api/v1/notifications{query}")).await;
    assert_eq!(status, 200, "{v}");
    v["notifications"].as_array().expect("notifications").clone()
}

fn exceeding(factory: &str, point: &str, value: f64, t: i64) -> String {
    format!("effluent,factory={factory},point={point} cod={value} {t}\n")
}

const OFFICER: &str =
    "[[notify.recipient]]\nid = \"officer\"\nname = \"Provincial industrial officer\"\nlanguage = \"th\"\n";

#[tokio::test]
async fn an_alert_reaches_email_and_line_in_thai_and_its_resolution_follows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = support::sources::certificates(dir.path());
    let smtp_port = free_port().port();
    let _smtp = smtp(dir.path(), smtp_port, Some(&certs)).await;
    let line = LineApi::start(dir.path(), 0, 1).await;
    let recipients = format!(
        "{OFFICER}email = [\"officer@diw.example\"]\nline = [\"{}\"]\n[[notify.recipient.subscription]]\nareas = [\"a1\"]\n",
        line_id(1)
    );
    let tail = notify_toml(dir.path(), Some((smtp_port, Some(&certs))), Some(&line), "", &recipients);
    let server = TestServer::judging(dir.path()).config_tail(&tail).start().await;

    // `notify test` sends to both addresses at once and prints what each channel answered.
    let out = Command::new(bin("eitwatch-server"))
        .arg("--config")
        .arg(server.config_path())
        .args(["notify", "test", "--recipient", "officer"])
        .output()
        .expect("notify test");
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{printed}{}", String::from_utf8_lossy(&out.stderr));
    assert!(printed.contains("email officer@diw.example: sent: 250 2.0.0 Ok: queued as 0001"), "{printed}");
    assert!(printed.contains(&format!("line {}: sent: 200 request ", line_id(1))), "{printed}");
    assert!(printed.contains("sentMessages"), "{printed}");
    wait_emails(dir.path(), 1).await;
    line.delivered(1).await;

    let t = now_ns();
    assert_eq!(server.write_as("f1", exceeding("f1", "outfall-1", 150.0, t)).await, 204);
    let alert = server.alerts("exceedance", 1).await.remove(0);
    let (max, unit) = (alert["limit"]["max"].as_f64().expect("max"), alert["limit"]["unit"].as_str().expect("unit"));
    let mails = wait_emails(dir.path(), 2).await;
    let m = mime(&mails[1]);
    // The Thai subject travels RFC 2047-encoded (ASCII on the wire) and decodes exactly.
    let raw = m["subject_raw"].as_str().expect("subject");
    assert!(raw.is_ascii() && raw.to_ascii_lowercase().contains("=?utf-8?"), "{raw}");
    assert_eq!(m["subject"], "[eitwatch] แจ้งเตือน: ค่าเกินมาตรฐาน cod — f1");
    assert_eq!((m["type"].as_str(), m["to"].as_str()), (Some("multipart/alternative"), Some("officer@diw.example")));
    let parts = m["parts"].as_array().expect("parts");
    let types: Vec<_> = parts.iter().map(|p| p["type"].as_str().unwrap_or("")).collect();
    assert_eq!(types, ["text/plain", "text/html"]);
    let plain = parts[0]["text"].as_str().expect("text");
    assert!(plain.contains("ค่าที่วัดได้: 150 mg/l") || plain.contains(&format!("ค่าที่วัดได้: 150 {unit}")), "{plain}");
    assert!(plain.contains(&format!("ค่ามาตรฐานที่ใช้: ≤ {max} {unit}")), "{plain}");
    assert!(plain.contains("ที่: f1 / outfall-1"), "{plain}");
    assert!(plain.contains("(เวลาไทย)") && plain.contains("http://board.example/board/#/factory/f1"), "{plain}");
    assert!(plain.contains(&format!("/api/v1/alerts/{}/ack", alert["id"])), "{plain}");
    assert!(parts[1]["text"].as_str().is_some_and(|h| h.contains(&format!("≤ {max} {unit}"))));
    eprintln!("----- received e-mail -----\n{}", std::fs::read_to_string(&mails[1]).unwrap_or_default());

    let pushed = line.delivered(2).await;
    let r = &pushed[1];
    assert_eq!(r["problem"], serde_json::Value::Null, "{r}");
    assert_eq!(r["headers"]["authorization"], format!("Bearer {LINE_TOKEN}"));
    assert_eq!(r["headers"]["x-line-retry-key"].as_str().map(str::len), Some(36));
    assert_eq!(r["body"]["to"], line_id(1));
    let text = r["body"]["messages"][0]["text"].as_str().expect("text");
    assert!(text.starts_with("[eitwatch] แจ้งเตือน: ค่าเกินมาตรฐาน cod — f1\n\n"), "{text}");
    assert!(text.contains(&format!("≤ {max} {unit}")), "{text}");
    eprintln!("----- LINE request body -----\n{}", serde_json::to_string_pretty(&r["body"]).unwrap_or_default());

    // A compliant sample ends the condition: one message more per address, saying so.
    assert_eq!(server.write_as("f1", exceeding("f1", "outfall-1", 40.0, t + 60_000_000_000)).await, 204);
    let mails = wait_emails(dir.path(), 3).await;
    let m = mime(&mails[2]);
    assert_eq!(m["subject"], "[eitwatch] กลับสู่ปกติ: ค่าเกินมาตรฐาน cod — f1");
    let pushed = line.delivered(3).await;
    assert!(pushed[2]["body"]["messages"][0]["text"].as_str().is_some_and(|t| t.contains("กลับสู่ปกติเมื่อ")));

    let log = notifications(&server, "?recipient=officer").await;
    let summary: Vec<_> =
        log.iter().map(|n| (n["purpose"].as_str(), n["channel"].as_str(), n["status"].as_str())).collect();
    assert_eq!(
        summary,
        [
            (Some("resolved"), Some("line"), Some("sent")),
            (Some("resolved"), Some("email"), Some("sent")),
            (Some("fired"), Some("line"), Some("sent")),
            (Some("fired"), Some("email"), Some("sent")),
        ]
    );
    assert!(log[3]["answer"].as_str().is_some_and(|a| a.starts_with("250 ")), "{}", log[3]);
    let (_, v) = server.get_json_as(server.admin_token(), "/api/v1/notifications").await;
    assert_eq!((v["counters"]["sent"].as_u64(), v["counters"]["failed"].as_u64()), (Some(4), Some(0)), "{v}");
    let (status, _) = server.get_json_as(server.read_token(), "/api/v1/notifications").await;
    assert_eq!(status, 403, "the delivery log holds addresses: admin only");
}

#[tokio::test]
async fn a_critical_alert_left_unacknowledged_is_escalated_after_the_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let line = LineApi::start(dir.path(), 0, 1).await;
    // The director hears only of escalations; f2's manager only of f2, whatever it subscribes to.
    let recipients = format!(
        "{OFFICER}line = [\"{}\"]\n[[notify.recipient.subscription]]\nareas = [\"a1\"]\n\
         [[notify.recipient]]\nid = \"director\"\nlanguage = \"en\"\nline = [\"{}\"]\n\
         [[notify.recipient]]\nid = \"f2-manager\"\nlanguage = \"en\"\nfactory = \"f2\"\nline = [\"{}\"]\n\
         [[notify.recipient.subscription]]\nareas = [\"a1\"]\n",
        line_id(1),
        line_id(2),
        line_id(3)
    );
    let keys = "[notify.escalation]\nafter_s = 4\nto = [\"director\", \"f2-manager\"]\n";
    let tail = notify_toml(dir.path(), None, Some(&line), "", &format!("{keys}{recipients}"));
    let server = TestServer::judging(dir.path()).config_tail(&tail).start().await;
    let t = now_ns();
    assert_eq!(server.write_as("f1", exceeding("f1", "outfall-1", 150.0, t)).await, 204);
    assert_eq!(server.write_as("f2", exceeding("f2", "outfall-1", 160.0, t)).await, 204);
    let alerts = server.alerts("exceedance", 2).await;
    let f2 = alerts.iter().find(|a| a["factory"] == "f2").expect("f2's alert")["id"].as_u64().expect("id");
    let f1 = alerts.iter().find(|a| a["factory"] == "f1").expect("f1's alert")["id"].as_u64().expect("id");
    // f2's alert is acknowledged at once: never escalated.
    let (status, body) = server
        .post_json(server.token("f2"), &format!("/api/v1/alerts/{f2}/ack"), serde_json::json!({"comment": "on it"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let fired_ns = alerts.iter().find(|a| a["factory"] == "f1").and_then(|a| a["firing_ns"].as_i64()).expect("fired");

    let escalated = wait_for("f1's escalation delivered", Duration::from_secs(60), || async {
        let log = notifications(&server, "?status=sent").await;
        let e: Vec<_> = log.into_iter().filter(|n| n["purpose"] == "escalated").collect();
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(escalated.len(), 1, "to the director alone: f2's manager does not see f1 {escalated:?}");
    assert_eq!((escalated[0]["recipient"].as_str(), escalated[0]["alert"].as_u64()), (Some("director"), Some(f1)));
    assert!(escalated[0]["created_ns"].as_i64().expect("created") - fired_ns >= 4_000_000_000, "after the wait");
    assert!(escalated[0]["subject"].as_str().is_some_and(|s| s.starts_with("[eitwatch] Unacknowledged: ")));
    // Past f2's wait too, with a margin: still nothing for the acknowledged alert.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = notifications(&server, "").await;
    let who: Vec<_> = log
        .iter()
        .rev()
        .map(|n| (n["recipient"].as_str().unwrap_or(""), n["purpose"].as_str().unwrap_or(""), n["alert"].as_u64()))
        .collect();
    let mut sorted = who.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            ("director", "escalated", Some(f1)),
            ("f2-manager", "fired", Some(f2)),
            ("officer", "fired", Some(f1)),
            ("officer", "fired", Some(f2)),
        ],
        "{who:?}"
    );
    let requests = line.requests();
    assert!(requests.iter().all(|r| r["problem"].is_null()), "{requests:?}");
    assert_eq!(requests.iter().filter(|r| r["body"]["to"] == line_id(3)).count(), 1, "f2's manager: f2's alert only");
}

#[tokio::test]
async fn a_storm_of_500_alerts_becomes_a_bounded_number_of_messages_and_429_is_waited_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The first push is answered 429 with Retry-After: 2.
    let line = LineApi::start(dir.path(), 1, 2).await;
    let points: Vec<String> = (0..500).map(|i| format!("outfall-{i:03}")).collect();
    let f1 = points.iter().fold(Factory::new("f1", "Factory one"), |f, p| f.point(Point::outfall(p, &["cod"])));
    let site = Site::new().area(Area::new("a1", "Area one", "พื้นที่หนึ่ง", "Rayong").factory(f1));
    let recipients =
        format!("{OFFICER}line = [\"{}\"]\n[[notify.recipient.subscription]]\nareas = [\"a1\"]\n", line_id(1));
    let tail = notify_toml(dir.path(), None, Some(&line), "rate_max = 5\nrate_window_s = 3", &recipients);
    let server = TestServer::judging(dir.path()).site(site).config_tail(&tail).start().await;
    let t = now_ns();
    let body: String = points.iter().map(|p| exceeding("f1", p, 150.0, t)).collect();
    assert_eq!(server.write_as("f1", body).await, 204);
    server.alerts("exceedance", 500).await;

    let log = wait_for("the storm's summary sent", Duration::from_secs(60), || async {
        let log = notifications(&server, "?limit=10000").await;
        let summarised = log.iter().filter(|n| n["status"] == "summarised").count();
        let sent = log.iter().filter(|n| n["status"] == "sent").count();
        (summarised == 495 && sent == 6).then_some(log)
    })
    .await;
    let summaries: Vec<_> = log.iter().filter(|n| n["purpose"] == "summary").collect();
    assert_eq!(summaries.len(), 1, "one summary of the 495 held");
    let id = summaries[0]["id"].as_u64();
    assert!(log.iter().filter(|n| n["status"] == "summarised").all(|n| n["into"].as_u64() == id));
    let pushed = line.delivered(6).await;
    let requests = line.requests();
    assert_eq!(requests.len(), 7, "5 alerts, 1 summary, 1 retry after the 429");
    assert!(requests.iter().all(|r| r["problem"].is_null()), "every request in LINE's shape");
    let text =
        pushed.last().map(|r| r["body"]["messages"][0]["text"].as_str().unwrap_or("").to_string()).unwrap_or_default();
    assert!(text.starts_with("[eitwatch] สรุปการแจ้งเตือน 495 รายการ"), "{text}");
    assert!(text.contains("และอีก 445 รายการ") && text.chars().count() <= 5000, "{text}");
    eprintln!(
        "----- LINE summary request body -----\n{}",
        serde_json::to_string_pretty(&pushed.last().map(|r| r["body"].clone())).unwrap_or_default()
    );

    // The 429: the same notification (same retry key) again, not before its Retry-After.
    assert_eq!(requests[0]["status"], 429);
    let key = &requests[0]["headers"]["x-line-retry-key"];
    let again = requests.iter().skip(1).find(|r| r["headers"]["x-line-retry-key"] == *key).expect("retried");
    assert_eq!(again["status"], 200);
    let waited = again["at"].as_f64().unwrap_or(0.0) - requests[0]["at"].as_f64().unwrap_or(0.0);
    assert!(waited >= 1.9, "retried {waited} s after a Retry-After of 2 s");
}

#[tokio::test]
async fn with_the_smtp_server_down_for_a_while_and_a_restart_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let smtp_port = free_port().port();
    let recipients =
        format!("{OFFICER}email = [\"officer@diw.example\"]\n[[notify.recipient.subscription]]\nareas = [\"a1\"]\n");
    let tail = notify_toml(dir.path(), Some((smtp_port, None)), None, "", &recipients);
    let mut server = TestServer::judging(dir.path()).config_tail(&tail).start().await;
    assert_eq!(server.write_as("f1", exceeding("f1", "outfall-1", 150.0, now_ns())).await, 204);
    // Nobody listens on the SMTP port: attempts fail and are retried.
    wait_for("failed attempts", Duration::from_secs(60), || async {
        let log = notifications(&server, "").await;
        log.first().filter(|n| n["status"] == "queued" && n["attempts"].as_u64() >= Some(2)).map(|_| ())
    })
    .await;
    // The server stops (killed) with the message still queued, and starts again.
    server.kill();
    server.restart().await;
    let before = notifications(&server, "").await;
    assert_eq!((before.len(), before[0]["status"].as_str()), (1, Some("queued")), "{before:?}");
    let _smtp = smtp(dir.path(), smtp_port, None).await;
    let mails = wait_emails(dir.path(), 1).await;
    let m = mime(&mails[0]);
    assert_eq!(m["subject"], "[eitwatch] แจ้งเตือน: ค่าเกินมาตรฐาน cod — f1");
    let after = wait_for("the delivery recorded", Duration::from_secs(30), || async {
        let log = notifications(&server, "").await;
        log.first().filter(|n| n["status"] == "sent").cloned()
    })
    .await;
    assert!(after["attempts"].as_u64() >= Some(3), "{after}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(emails(dir.path()).len(), 1, "delivered once");
}

#[tokio::test]
async fn recipients_change_through_the_admin_api_recorded_and_a_digest_goes_once_a_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let line = LineApi::start(dir.path(), 0, 1).await;
    let tail = notify_toml(dir.path(), None, Some(&line), "", "");
    let mut server = TestServer::judging(dir.path()).config_tail(&tail).start().await;
    let path = "/api/v1/notifications/recipients";
    let manager = serde_json::json!({
        "id": "f1-manager", "language": "en", "factory": "f1", "line": [line_id(4)], "digest_at": "00:00",
        "subscription": [{"areas": ["a1"], "min_severity": "critical"}]
    });
    let (status, _) = server.post_json(server.read_token(), path, manager.clone()).await;
    assert_eq!(status, 403);
    let (status, body) = server
        .post_json(server.admin_token(), path, serde_json::json!({"id": "x", "email": ["nobody"], "line": ["U1"]}))
        .await;
    assert_eq!(status, 400);
    let message = body["message"].as_str().unwrap_or("");
    for want in
        ["recipient[0].email[0]: \"nobody\" is not an e-mail address", "needs [notify.email]", "recipient[0].line[0]"]
    {
        assert!(message.contains(want), "{want} in {message}");
    }
    let (status, body) = server.post_json(server.admin_token(), path, manager).await;
    assert_eq!(status, 201, "{body}");
    // Its digest (00:00 has passed today) goes out once, of yesterday.
    let pushed = line.delivered(1).await;
    let yesterday = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(7)))
        .date()
        .yesterday()
        .expect("a day before");
    let text = pushed[0]["body"]["messages"][0]["text"].as_str().unwrap_or("");
    assert!(text.starts_with(&format!("[eitwatch] Daily digest {yesterday}\n\n")), "{text}");
    for section in
        ["Exceeding periods (0)", "Exceedance episodes (0)", "Availability below 80 % (0)", "Deadlines overdue"]
    {
        assert!(text.contains(section), "{section} in {text}");
    }

    server.restart().await;
    let (_, v) = server.get_json_as(server.admin_token(), path).await;
    assert_eq!(v["recipients"][0]["id"], "f1-manager", "kept over a restart: {v}");
    let (status, v) = server.get_json_as(server.admin_token(), &format!("{path}/log")).await;
    assert_eq!(status, 200);
    assert_eq!(v["changes"][0]["change"]["op"], "upsert");
    assert!(v["changes"][0]["by"].as_str().is_some_and(|b| b.starts_with("admin token ")), "{v}");
    // Critical alerts of its own factory only.
    let t = now_ns();
    assert_eq!(server.write_as("f2", exceeding("f2", "outfall-1", 150.0, t)).await, 204);
    assert_eq!(server.write_as("f1", exceeding("f1", "outfall-1", 150.0, t)).await, 204);
    let pushed = line.delivered(2).await;
    assert!(pushed[1]["body"]["messages"][0]["text"].as_str().is_some_and(|t| t.contains("Where: f1 / outfall-1")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(line.requests().len(), 2, "one digest a day, and nothing of f2");

    let response = support::http()
        .delete(format!("{}{path}/f1-manager", server.url()))
        .header("Authorization", format!("Token {}", server.admin_token()))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 200);
    let (_, v) = server.get_json_as(server.admin_token(), &format!("{path}/log")).await;
    assert_eq!(v["changes"][1]["change"], serde_json::json!({"op": "remove", "id": "f1-manager"}));
}
