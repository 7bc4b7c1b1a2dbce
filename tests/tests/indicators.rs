//! EIT indicators end to end, against the real server binary: readings written over the
//! InfluxDB API, judged by the engine, and the indicators read back as JSON, CSV and XLSX
//! through `GET /api/v1/indicators`, with values computed by hand here.

mod support;

use std::io::Cursor;
use std::time::Duration;

use calamine::{Data, Reader as _, Xlsx};
use support::lp::minutes;
use support::{TestServer, wait_for};

fn ts(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().expect("timestamp").as_nanosecond() as i64
}

const RANGE: &str = "from=2026-10-01&to=2026-10-03";

fn value<'a>(report: &'a serde_json::Value, id: &str, key: &str) -> &'a serde_json::Value {
    let indicator = report["report"]["indicators"]
        .as_array()
        .expect("indicators")
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("no indicator {id} in {report}"));
    indicator["values"]
        .as_array()
        .expect("values")
        .iter()
        .find(|v| v["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {indicator}"))
}

/// The workbook as openpyxl reads it: per sheet the frozen cell, headers and column widths,
/// and for some cells their type (`n` number, `d` date), number format and value.
fn openpyxl(path: &std::path::Path) -> serde_json::Value {
    const SCRIPT: &str = r#"
import json, sys, openpyxl
from openpyxl.utils import get_column_letter
book = openpyxl.load_workbook(sys.argv[1])
def cell(c):
    v = c.value
    return {"type": c.data_type, "format": c.number_format, "value": v.isoformat() if hasattr(v, "isoformat") else v}
out = {}
for ws in book.worksheets:
    headers = [c.value for c in ws[1]]
    widths = [ws.column_dimensions[get_column_letter(i + 1)].width for i in range(len(headers))]
    sheet = {"freeze": ws.freeze_panes, "headers": headers, "widths": widths}
    for row in ws.iter_rows(min_row=2):
        if ws.title == "indicators" and row[0].value == "effluent-compliance" and row[4].value == "judged_compliant_pct":
            sheet["judged_compliant_pct"] = {"value": cell(row[7]), "numerator": cell(row[9]), "from": cell(row[14]), "to": cell(row[15])}
        if ws.title == "episodes" and "start" not in sheet:
            sheet["start"] = cell(row[6])
            sheet["peak"] = cell(row[9])
    out[ws.title] = sheet
print(json.dumps(out))
"#;
    let python = support::workspace_root().join(".peers/venv/bin/python");
    let run = std::process::Command::new(&python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/install-peers.sh installs openpyxl)", python.display()));
    assert!(run.status.success(), "openpyxl: {}", String::from_utf8_lossy(&run.stderr));
    serde_json::from_slice(&run.stdout).expect("openpyxl's JSON")
}

#[tokio::test]
async fn indicators_over_http_as_json_csv_and_xlsx() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::judging(dir.path()).start().await;
    // 1 and 2 October 2026, Bangkok (the range asked for). f1's outfall reports COD once a
    // minute on 1 October only: 100 mg/L, but 150 at 10:00 and 10:01. f2's reports 80 on both
    // days. f1's stack never reports.
    let day1 = ts("2026-09-30T17:00:00Z");
    let mut f1 = minutes("effluent", "f1", "outfall-1", "cod", 100.0, day1, 1440);
    for minute in [600, 601] {
        let t = day1 + minute * 60_000_000_000;
        f1 = f1.replace(&format!("cod=100 {t}\n"), &format!("cod=150 {t}\n"));
    }
    assert_eq!(f1.matches("cod=150").count(), 2);
    assert_eq!(server.write_as("f1", f1).await, 204);
    let f2 = minutes("effluent", "f2", "outfall-1", "cod", 80.0, day1, 2880);
    assert_eq!(server.write_as("f2", f2).await, 204);

    let url = format!("/api/v1/indicators?area=a1&{RANGE}");
    let report = wait_for("every grab sample judged", Duration::from_secs(60), || {
        let url = url.clone();
        let server = &server;
        async move {
            let r = server.get_json(&url).await;
            (value(&r, "effluent-compliance", "judged_compliant_pct")["denominator"] == 4320.0).then_some(r)
        }
    })
    .await;

    // 1440 + 2880 grab samples judged, 2 exceeding; f1 exceeded, f2 did not.
    let rate = value(&report, "effluent-compliance", "judged_compliant_pct");
    assert_eq!((rate["numerator"].as_f64(), rate["denominator"].as_f64()), (Some(4318.0), Some(4320.0)));
    assert!((rate["value"].as_f64().expect("value") - 431800.0 / 4320.0).abs() < 1e-9, "{rate}");
    assert_eq!(rate["previous"], serde_json::Value::Null, "nothing before 1 October");
    let factories = value(&report, "effluent-compliance", "factories_compliant_pct");
    assert_eq!((factories["numerator"].as_f64(), factories["denominator"].as_f64()), (Some(1.0), Some(2.0)));
    // The stack never reported: no value, and why.
    let emission = value(&report, "emission-compliance", "judged_compliant_pct");
    assert_eq!(emission["value"], serde_json::Value::Null);
    assert!(
        emission["not_computed"].as_str().expect("why").starts_with("no grab sample or period judged"),
        "{emission}"
    );
    // Point-days meeting 80 %: f1 outfall 1 of 2 (silent on 2 October), f1 stack 0 of 2, f2 2 of 2.
    let days = value(&report, "data-availability", "point_days_meeting_pct");
    assert_eq!((days["numerator"].as_f64(), days["denominator"].as_f64()), (Some(3.0), Some(6.0)));
    assert_eq!(value(&report, "data-availability", "point:f1/outfall-1")["value"].as_f64(), Some(50.0));
    // One episode (10:00 and 10:01), in one clock hour.
    assert_eq!(value(&report, "exceedances", "episodes")["value"].as_f64(), Some(1.0));
    assert_eq!(value(&report, "exceedances", "hours:cod")["value"].as_f64(), Some(1.0));
    let episode = &report["report"]["episodes"][0];
    assert_eq!((episode["periods"].as_u64(), episode["peak"].as_f64()), (Some(2), Some(150.0)), "{episode}");
    // No flow meter anywhere: the COD load says so instead of 0.
    let cod = value(&report, "pollutant-load", "load:cod");
    assert_eq!(cod["value"], serde_json::Value::Null);
    assert_eq!(cod["not_computed"], "f1/outfall-1: flow not measured; f2/outfall-1: flow not measured");

    // A factory's own token sees its factory only.
    let r = server.get(Some(server.token("f2")), &format!("/api/v1/indicators?{RANGE}")).await;
    assert_eq!(r.status(), 200);
    let own: serde_json::Value = r.json().await.expect("json");
    let rate = value(&own, "effluent-compliance", "judged_compliant_pct");
    assert_eq!((rate["numerator"].as_f64(), rate["denominator"].as_f64()), (Some(2880.0), Some(2880.0)));
    let r = server.get(Some(server.token("f2")), &format!("/api/v1/indicators?factory=f1&{RANGE}")).await;
    assert_eq!(r.status(), 403);
    // Bad input names the key and what was expected.
    let r = server.get(None, "/api/v1/indicators?period=2026-13").await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body["message"].as_str().expect("message").starts_with("period: \"2026-13\" is not a period"), "{body}");
    let r = server.get(None, &format!("/api/v1/indicators?area=nowhere&{RANGE}")).await;
    assert_eq!(r.status(), 400);

    // CSV, Buddhist era.
    let r = server.get(None, &format!("{url}&format=csv&be=true")).await;
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.expect("csv");
    let header = csv.trim_start_matches('\u{feff}').lines().next().expect("header");
    assert!(header.starts_with("ตัวชี้วัด / indicator,รหัส EIT / EIT code,"), "{header}");
    let row = csv.lines().find(|l| l.contains(",factories_compliant_pct,") && l.starts_with("effluent-")).expect("row");
    assert!(row.ends_with(",50,%,1,2,,,,2569-10-01,2569-10-02"), "{row}");

    // XLSX, opened again and its cells checked.
    let r = server.get(None, &format!("{url}&format=xlsx")).await;
    assert_eq!(r.headers()["content-type"], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    let bytes = r.bytes().await.expect("xlsx").to_vec();
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes.clone())).expect("open xlsx");
    assert_eq!(book.sheet_names(), ["indicators", "evidence", "episodes"]);
    let sheet = book.worksheet_range("indicators").expect("indicators");
    assert_eq!(sheet.get_value((0, 7)), Some(&Data::String("ค่า / value".into())));
    let row = (1..sheet.height() as u32)
        .find(|&i| sheet.get_value((i, 4)) == Some(&Data::String("judged_compliant_pct".into())))
        .expect("row");
    assert_eq!(sheet.get_value((row, 9)), Some(&Data::Float(4318.0)));
    assert_eq!(sheet.get_value((row, 10)), Some(&Data::Float(4320.0)));
    let episodes = book.worksheet_range("episodes").expect("episodes");
    // A date cell: 2026-10-01 10:00 Bangkok is Excel's day 46296 and 10/24 of a day.
    match episodes.get_value((1, 6)) {
        Some(Data::DateTime(t)) => assert!((t.as_f64() - (46296.0 + 10.0 / 24.0)).abs() < 1e-9, "{t}"),
        other => panic!("episode start is not a date cell: {other:?}"),
    }
    // What an official's spreadsheet program sees, read by openpyxl (PyPI).
    let xlsx_path = dir.path().join("a1.xlsx");
    std::fs::write(&xlsx_path, &bytes).expect("write xlsx");
    let seen = openpyxl(&xlsx_path);
    assert_eq!(seen["indicators"]["freeze"], "A2", "{seen}");
    assert_eq!(seen["episodes"]["freeze"], "A2", "{seen}");
    // judged_compliant_pct: 4318 of 4320 is 99.9537…%, stored and shown to 2 decimals.
    let rate = &seen["indicators"]["judged_compliant_pct"];
    assert_eq!(rate["value"], serde_json::json!({"type": "n", "format": "#,##0.00", "value": 99.95}), "{seen}");
    assert_eq!(rate["numerator"], serde_json::json!({"type": "n", "format": "#,##0", "value": 4318}), "{seen}");
    assert_eq!(rate["from"], serde_json::json!({"type": "d", "format": "yyyy-mm-dd", "value": "2026-10-01T00:00:00"}));
    assert_eq!(rate["to"], serde_json::json!({"type": "d", "format": "yyyy-mm-dd", "value": "2026-10-02T00:00:00"}));
    let start = &seen["episodes"]["start"];
    assert_eq!(start, &serde_json::json!({"type": "d", "format": "yyyy-mm-dd hh:mm", "value": "2026-10-01T10:00:00"}));
    // COD is shown as an integer (peak 150).
    assert_eq!(seen["episodes"]["peak"], serde_json::json!({"type": "n", "format": "#,##0", "value": 150}));
    // Every column as wide as its header at least (header widths counted in characters).
    for sheet in ["indicators", "episodes"] {
        for (i, w) in seen[sheet]["widths"].as_array().expect("widths").iter().enumerate() {
            let header = seen[sheet]["headers"][i].as_str().expect("header");
            assert!(
                w.as_f64().expect("width") >= header.chars().count() as f64 * 0.8,
                "{sheet} column {i}: {w} for {header}"
            );
        }
    }

    // The command-line export for scheduled reports: the same workbook, from the running server.
    let out = dir.path().join("a1-2026-10.xlsx");
    let run = std::process::Command::new(support::bin("eitwatch-server"))
        .arg("--config")
        .arg(server.config_path())
        .args(["export", "indicators", "--area", "a1", "--from", "2026-10-01", "--to", "2026-10-03"])
        .args(["--format", "xlsx", "--be", "--token", server.read_token(), "--out"])
        .arg(&out)
        .output()
        .expect("export");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("wrote "), "progress and result on stderr: {stderr}");
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(std::fs::read(&out).expect("exported file"))).expect("open");
    let sheet = book.worksheet_range("indicators").expect("indicators");
    assert_eq!(sheet.get_value((row, 9)), Some(&Data::Float(4318.0)));
    assert!(matches!(sheet.get_value((row, 14)), Some(Data::DateTime(t)) if t.as_f64() == 46296.0));
    // B.E. by the number format: Thai locale, Thai Buddhist calendar.
    let seen = openpyxl(&out);
    assert_eq!(seen["indicators"]["judged_compliant_pct"]["from"]["format"], "[$-7041E]dd/mm/yyyy", "{seen}");
    assert_eq!(seen["episodes"]["start"]["format"], "[$-7041E]dd/mm/yyyy hh:mm", "{seen}");
    let refused = std::process::Command::new(support::bin("eitwatch-server"))
        .arg("--config")
        .arg(server.config_path())
        .args(["export", "indicators", "--period", "FY20x7", "--out"])
        .arg(dir.path().join("never.xlsx"))
        .output()
        .expect("export");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("period: \"FY20x7\" is not a period"));
    assert!(!dir.path().join("never.xlsx").exists());

    // Definitions from the data directory, read at the next request.
    std::fs::write(
        server.data_dir().join("indicators.toml"),
        "[[indicator]]\nid = \"eff-cat3\"\nname_th = \"น้ำทิ้ง\"\nname_en = \"Effluent\"\nkind = \"effluent_compliance\"\n\
         eit_code = \"ENV-2.1\"\nfilter = { factory_categories = [3], parameters = [\"cod\"] }\n",
    )
    .expect("indicators.toml");
    let custom = server.get_json(&url).await;
    let list = custom["report"]["indicators"].as_array().expect("indicators");
    assert_eq!(list.len(), 1);
    assert_eq!((list[0]["id"].as_str(), list[0]["eit_code"].as_str()), (Some("eff-cat3"), Some("ENV-2.1")));
    assert_eq!(value(&custom, "eff-cat3", "judged_compliant_pct")["denominator"].as_f64(), Some(4320.0));

    // A bad definitions file is refused at start with the file and the key path.
    server.kill();
    std::fs::write(
        server.data_dir().join("indicators.toml"),
        "[[indicator]]\nid = \"x\"\nname_th = \"x\"\nname_en = \"x\"\nkind = \"exceedances\"\n\
         filter = { factory_categories = [9] }\n",
    )
    .expect("indicators.toml");
    let stderr = server.restart_refused().await;
    assert!(
        stderr.contains("indicators.toml: indicator[0].filter.factory_categories[0]: 9 is not a factory category"),
        "{stderr}"
    );
}

#[tokio::test]
async fn analyser_deviation_records_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::judging(dir.path()).start().await;
    let url = "/api/v1/deviations";
    // Today in Bangkok, the first day of its half-year, and a day in the half before.
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(7))).date();
    let half_start = jiff::civil::date(today.year(), if today.month() <= 6 { 1 } else { 7 }, 1);
    let before = half_start.yesterday().expect("date");
    let record = |sampled: jiff::civil::Date, m: f64, t: f64| {
        serde_json::json!({
            "factory": "f1", "point": "outfall-1", "parameter": "cod", "sampled_on": sampled.to_string(),
            "reported_on": sampled.to_string(), "analyser_mg_per_l": m, "lab_mg_per_l": t,
            "laboratory": "Lab 7",
        })
    };
    let (status, body) = server.post_json(server.token("f1"), url, record(before, 130.6, 118.2)).await;
    assert_eq!(status, 201, "{body}");
    // E = 131 − 118 (COD as integers).
    assert_eq!(body["record"]["deviation_mg_per_l"].as_f64(), Some(13.0), "{body}");
    assert_eq!((body["record"]["id"].as_u64(), body["record"]["late"].as_bool()), (Some(1), Some(false)));
    assert!(body["record"]["recorded_by"].as_str().expect("by").starts_with("write token "), "{body}");

    // Who may record: the factory itself or an admin; not another factory, not a reader.
    assert_eq!(server.post_json(server.token("f2"), url, record(today, 100.0, 100.0)).await.0, 403);
    assert_eq!(server.post_json(server.read_token(), url, record(today, 100.0, 100.0)).await.0, 403);
    let mut bad = record(today, -5.0, 100.0);
    bad["parameter"] = "bod".into();
    let (status, body) = server.post_json(server.admin_token(), url, bad).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "parameter: \"bod\" is not monitored at f1/outfall-1; analyser_mg_per_l: -5 is not a concentration, expected a number ≥ 0"
    );
    let (status, body) = server.post_json(server.admin_token(), url, record(today, 99.5, 100.4)).await;
    assert_eq!((status, body["record"]["deviation_mg_per_l"].as_f64()), (201, Some(0.0)), "{body}");

    // f1 sampled in both half-years: ok; f2 never: overdue.
    let v = server.get_json(url).await;
    let analysers = v["analysers"].as_array().expect("analysers");
    let got: Vec<(&str, &str, u64)> = analysers
        .iter()
        .map(|a| {
            (a["factory"].as_str().expect("f"), a["status"].as_str().expect("s"), a["records"].as_u64().expect("n"))
        })
        .collect();
    assert_eq!(got, [("f1", "ok", 2), ("f2", "overdue", 0)]);
    assert_eq!(v["factories"][1], serde_json::json!({"factory": "f2", "status": "overdue"}));
    assert_eq!(v["records"].as_array().expect("records").len(), 2);
    // A factory's token sees its own analysers only.
    let r = server.get(Some(server.token("f2")), url).await;
    let own: serde_json::Value = r.json().await.expect("json");
    assert_eq!(own["analysers"].as_array().expect("analysers").len(), 1);
    assert_eq!(own["records"].as_array().expect("records").len(), 0);
    // On disk, append-only: one line per record.
    let log = std::fs::read_to_string(server.data_dir().join("deviations.log")).expect("log");
    assert_eq!(log.lines().count(), 2);
}

#[tokio::test]
async fn the_site_registry_through_the_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::judging(dir.path()).start().await;
    let url = "/api/v1/registry/changes";
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    let new_point = |t: i64| format!("effluent,factory=f1,point=outfall-2 cod=130 {t}\n");
    assert_eq!(server.write_as("f1", new_point(now)).await, 400, "not registered yet");
    let change = serde_json::json!({
        "op": "point", "factory": "f1",
        "point": {"id": "outfall-2", "kind": "effluent", "parameters": ["cod", "flow"], "expected_interval_s": 300},
    });
    // Only an admin changes the registry.
    assert_eq!(server.post_json(server.token("f1"), url, change.clone()).await.0, 403);
    assert_eq!(server.post_json(server.read_token(), url, change.clone()).await.0, 403);
    let (status, body) = server.post_json(server.admin_token(), url, change).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["changes"], 1);

    // The engine watches the new point at once: it is in the status.
    let status = server.get_json("/api/v1/status?factory=f1&point=outfall-2").await;
    let params: Vec<&str> =
        status["series"].as_array().expect("series").iter().map(|s| s["parameter"].as_str().expect("p")).collect();
    assert_eq!(params, ["cod", "flow"], "{status}");
    // Ingest takes its readings at once, and they are judged.
    assert_eq!(server.write_as("f1", new_point(now)).await, 204);
    let alerts = server.alerts("exceedance", 1).await;
    assert_eq!((alerts[0]["point"].as_str(), alerts[0]["value"].as_f64()), (Some("outfall-2"), Some(130.0)));

    // Indicators and deviation records count it too (nothing measured there in October).
    let report = server.get_json("/api/v1/indicators?area=a1&period=2026-10").await;
    let days = value(&report, "data-availability", "point:f1/outfall-2");
    assert_eq!((days["numerator"].as_f64(), days["denominator"].as_f64()), (Some(0.0), Some(31.0)), "{days}");
    let deviations = server.get_json("/api/v1/deviations?point=outfall-2").await;
    assert_eq!(deviations["analysers"][0]["status"], "overdue", "{deviations}");

    // A batch with a bad change is refused whole, every problem named.
    let (status, body) = server
        .post_json(
            server.admin_token(),
            url,
        serde_json::json!([
            {"op": "factory", "area": "a1", "id": "f3", "name": "Factory three", "category": 2, "diw_registration": "3-105-1/60รย"},
            {"op": "factory", "area": "a9", "id": "f4", "name": "Factory four", "category": 4},
        ]),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], "change 1: area: \"a9\" is not registered");
    // A registry file, imported: recorded change by change.
    let toml = "[[area]]\nid = \"a1\"\nname_en = \"Area one\"\nname_th = \"พื้นที่หนึ่ง\"\nprovince = \"Rayong\"\nphase = 1\n\
                [[area.factory]]\nid = \"f3\"\nname = \"Factory three\"\ncategory = 2\ndiw_registration = \"3-105-1/60รย\"\n";
    let (status, body) = server.post(server.admin_token(), "/api/v1/registry/import", toml).await;
    assert_eq!(status, 201, "{body}");

    let registry = server.get_json("/api/v1/registry").await;
    let a1 = &registry["area"][0];
    assert_eq!(a1["phase"], 1);
    let ids: Vec<&str> =
        a1["factory"].as_array().expect("factories").iter().map(|f| f["id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["f1", "f2", "f3"]);
    assert_eq!(a1["factory"][2]["diw_registration"], "3-105-1/60รย");
    assert_eq!(a1["factory"][0]["point"][2]["id"], "outfall-2");
    // Every change with who and when.
    let r = server.get(Some(server.admin_token()), "/api/v1/registry/log").await;
    let log: serde_json::Value = r.json().await.expect("json");
    let changes = log["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 3, "the point, then the imported area and factory");
    assert!(
        changes
            .iter()
            .all(|c| c["by"].as_str().is_some_and(|b| b.starts_with("admin token ")) && c["at_ns"].as_i64().is_some())
    );
    assert_eq!(changes[0]["change"]["op"], "point");
    assert_eq!(server.get(Some(server.read_token()), "/api/v1/registry/log").await.status(), 403);
    // A factory's token sees its own factory only.
    let own: serde_json::Value =
        server.get(Some(server.token("f2")), "/api/v1/registry").await.json().await.expect("json");
    assert_eq!(own["area"][0]["factory"].as_array().map(|f| f.len()), Some(1));
    assert_eq!(own["area"][0]["factory"][0]["id"], "f2");
    // After a restart the server starts from the changed registry.
    server.restart().await;
    assert_eq!(server.write_as("f1", new_point(now + 60_000_000_000)).await, 204);
    let registry = server.get_json("/api/v1/registry").await;
    assert_eq!(registry["area"][0]["factory"][0]["point"][2]["id"], "outfall-2");
}
