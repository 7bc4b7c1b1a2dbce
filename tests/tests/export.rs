//! History out to analysts: `GET /api/v1/readings?format=parquet` and `eitwatch-server
//! export readings` write Apache Parquet that pyarrow (what pandas and DuckDB users have)
//! reads back row for row, value for value, with the registry's Thai names intact in the
//! file's metadata.

mod support;

use std::path::Path;
use std::process::Command;

use serde::Deserialize;
use support::{Area, Factory, Point, Site, TestServer, bin, python};

const MINUTE_NS: i64 = 60_000_000_000;
/// More than one row group's worth (`ROW_GROUP_ROWS`, 65 536) in the area.
const F1_MINUTES: i64 = 14_000;
const F2_MINUTES: i64 = 2_000;

const AREA_TH: &str = "เขตประกอบการอุตสาหกรรมระยอง";
const F1_NAME: &str = "บริษัท ไทยน้ำใส จำกัด";

fn site() -> Site {
    Site::new()
        .area(
            Area::new("rayong-eit", "Rayong Industrial Estate", AREA_TH, "ระยอง")
                .factory(
                    Factory::new("f1", F1_NAME)
                        .point(Point::outfall("outfall-1", &["cod", "bod", "ph", "tss", "temp"])),
                )
                .factory(Factory::new("f2", "Siam Dye Co.").point(Point::outfall("outfall-1", &["cod", "ph", "cd"]))),
        )
        .area(
            Area::new("other-eit", "Other Estate", "นิคมอื่น", "ชลบุรี")
                .factory(Factory::new("f3", "Other Co.").point(Point::outfall("outfall-1", &["cod"]))),
        )
}

/// One exported row, as the test expects it and as pyarrow reads it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Row {
    time: i64,
    factory: String,
    point: String,
    kind: String,
    parameter: String,
    value: f64,
    unit: String,
    quality: String,
    source: String,
    below_detection_limit: bool,
}

/// What the Python reader prints.
#[derive(Debug, Deserialize)]
struct Read {
    rows: Vec<Row>,
    metadata: std::collections::BTreeMap<String, String>,
    types: std::collections::BTreeMap<String, String>,
    row_groups: usize,
}

const READER: &str = r#"
import json, sys
import pyarrow.parquet as pq
f = pq.ParquetFile(sys.argv[1])
t = f.read()
cols = {name: t.column(name) for name in t.column_names}
cols["time"] = cols["time"].cast("int64")
names = t.column_names
lists = [cols[n].to_pylist() for n in names]
rows = [dict(zip(names, r)) for r in zip(*lists)]
meta = {k.decode(): v.decode() for k, v in (f.metadata.metadata or {}).items()}
types = {field.name: str(field.type) for field in t.schema}
json.dump({"rows": rows, "metadata": meta, "types": types, "row_groups": f.metadata.num_row_groups}, sys.stdout, ensure_ascii=False)
"#;

fn read_parquet(file: &Path) -> Read {
    let out = Command::new(python()).arg("-c").arg(READER).arg(file).output().expect("python runs");
    assert!(out.status.success(), "pyarrow cannot read {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the reader's JSON")
}

fn row(factory: &str, parameter: &str, time: i64, text: &str, unit: &str) -> Row {
    Row {
        time,
        factory: factory.into(),
        point: "outfall-1".into(),
        kind: "effluent".into(),
        parameter: parameter.into(),
        value: text.parse().expect("a number"),
        unit: unit.into(),
        quality: "valid".into(),
        source: "instrument".into(),
        below_detection_limit: false,
    }
}

/// Writes f1's, f2's and f3's readings; returns what the area `rayong-eit` must export,
/// by series then time, and f3's count.
async fn write_history(server: &TestServer, t0_ns: i64) -> (Vec<Row>, usize) {
    let mut expected = Vec::new();
    // f1: a minute of five parameters at instrument resolution, in bodies of 2 000 minutes.
    for chunk in 0..F1_MINUTES / 2000 {
        let mut body = String::new();
        for m in chunk * 2000..(chunk + 1) * 2000 {
            let t = t0_ns + m * MINUTE_NS;
            let values = [
                ("cod", format!("{:.1}", 40.0 + ((m * 37) % 301) as f64 / 10.0), "mg/L"),
                ("bod", format!("{:.1}", 12.0 + ((m * 11) % 97) as f64 / 10.0), "mg/L"),
                ("ph", format!("{:.2}", 6.5 + ((m * 7) % 151) as f64 / 100.0), "pH"),
                ("tss", format!("{:.1}", 20.0 + ((m * 13) % 251) as f64 / 10.0), "mg/L"),
                ("temp", format!("{:.1}", 28.0 + ((m * 3) % 41) as f64 / 10.0), "degC"),
            ];
            let fields: Vec<String> = values.iter().map(|(p, v, _)| format!("{p}={v}")).collect();
            body.push_str(&format!("effluent,factory=f1,point=outfall-1 {} {t}\n", fields.join(",")));
            for (p, v, unit) in &values {
                expected.push(row("f1", p, t, v, unit));
            }
        }
        assert_eq!(server.write_as("f1", body).await, 204, "f1's write");
    }
    // f2: COD and pH, every tenth minute suspect; and a lab cadmium "not detected" daily.
    let mut body = String::new();
    for m in 0..F2_MINUTES {
        let t = t0_ns + m * MINUTE_NS;
        let (cod, ph) = (format!("{:.0}", 80.0 + (m % 17) as f64), format!("{:.2}", 7.0 + (m % 9) as f64 / 100.0));
        let quality = if m % 10 == 0 { "suspect" } else { "valid" };
        body.push_str(&format!("effluent,factory=f2,point=outfall-1 cod={cod},ph={ph},quality=\"{quality}\" {t}\n"));
        for (p, v, unit) in [("cod", &cod, "mg/L"), ("ph", &ph, "pH")] {
            expected.push(Row { quality: quality.into(), ..row("f2", p, t, v, unit) });
        }
    }
    for d in 0..2 {
        let t = t0_ns + d * 1440 * MINUTE_NS + 30 * MINUTE_NS;
        body.push_str(&format!("effluent,factory=f2,point=outfall-1,source=lab cd=0.003,not_detected=\"cd\" {t}\n"));
        expected.push(Row { source: "lab".into(), below_detection_limit: true, ..row("f2", "cd", t, "0.003", "mg/L") });
    }
    assert_eq!(server.write_as("f2", body).await, 204, "f2's write");
    // f3, in another area: never in the area's export.
    let body: String =
        (0..100).map(|m| format!("effluent,factory=f3,point=outfall-1 cod=50 {}\n", t0_ns + m * MINUTE_NS)).collect();
    assert_eq!(server.write_as("f3", body).await, 204, "f3's write");
    // The file's order: series key (factory, point, kind, parameter), then time.
    expected.sort_by(|a, b| {
        (&a.factory, &a.point, &a.parameter, a.time).cmp(&(&b.factory, &b.point, &b.parameter, b.time))
    });
    (expected, 100)
}

fn t0_ns() -> i64 {
    let now_ns =
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos())
            .expect("ns");
    // Whole minutes, ending a day before now.
    (now_ns / MINUTE_NS - F1_MINUTES - 1440) * MINUTE_NS
}

async fn get_parquet(server: &TestServer, token: &str, query: &str, to: &Path) -> (u16, String) {
    let r = server.get(Some(token), &format!("/api/v1/readings?{query}")).await;
    let status = r.status().as_u16();
    let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let bytes = r.bytes().await.expect("the body");
    if status == 200 {
        std::fs::write(to, &bytes).expect("write the file");
        assert_eq!(content_type, "application/vnd.apache.parquet", "{query}");
        (status, String::new())
    } else {
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        (status, body["message"].as_str().map_or_else(|| String::from_utf8_lossy(&bytes).into_owned(), str::to_string))
    }
}

fn assert_rows(what: &str, read: &[Row], expected: &[Row]) {
    assert_eq!(read.len(), expected.len(), "{what}: rows out vs in");
    for (i, (r, e)) in read.iter().zip(expected).enumerate() {
        // Exact: the same f64 bits as the text the factory sent parses to.
        assert!(r == e && r.value.to_bits() == e.value.to_bits(), "{what}: row {i}: read {r:?}, wrote {e:?}");
    }
}

fn assert_metadata(what: &str, read: &Read, query: serde_json::Value) {
    let json = |key: &str| -> serde_json::Value {
        serde_json::from_str(
            read.metadata.get(key).unwrap_or_else(|| panic!("{what}: no {key} in {:?}", read.metadata)),
        )
        .expect("JSON metadata")
    };
    assert_eq!(
        json("eitwatch.areas"),
        serde_json::json!([{"id": "rayong-eit", "name_en": "Rayong Industrial Estate", "name_th": AREA_TH, "province": "ระยอง"}]),
        "{what}"
    );
    assert_eq!(
        json("eitwatch.factories"),
        serde_json::json!([
            {"id": "f1", "area": "rayong-eit", "name": F1_NAME},
            {"id": "f2", "area": "rayong-eit", "name": "Siam Dye Co."},
        ]),
        "{what}"
    );
    let parameters = json("eitwatch.parameters");
    let codes: Vec<&str> = parameters.as_array().expect("a list").iter().filter_map(|p| p["code"].as_str()).collect();
    assert_eq!(codes, ["bod", "cd", "cod", "ph", "temp", "tss"], "{what}");
    let cod = parameters.as_array().expect("a list").iter().find(|p| p["code"] == "cod").expect("cod");
    assert_eq!(cod["name_th"], "ซีโอดี", "{what}");
    assert_eq!(cod["unit"], "mg/L", "{what}");
    assert_eq!(json("eitwatch.query"), query, "{what}");
    assert_eq!(read.metadata.get("eitwatch.version").map(String::as_str), Some(env!("CARGO_PKG_VERSION")), "{what}");
    assert_eq!(read.types.get("time").map(String::as_str), Some("timestamp[ns, tz=UTC]"), "{what}");
    assert_eq!(read.types.get("value").map(String::as_str), Some("double"), "{what}");
    assert_eq!(read.types.get("below_detection_limit").map(String::as_str), Some("bool"), "{what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn parquet_from_the_api_and_the_cli_reads_back_in_pyarrow_row_for_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server =
        TestServer::builder(dir.path()).site(site()).factory_tokens(&["f1", "f2", "f3"]).read_token().start().await;
    let t0 = t0_ns();
    let (expected, f3_count) = write_history(&server, t0).await;
    assert_eq!(expected.len(), 5 * F1_MINUTES as usize + 2 * F2_MINUTES as usize + 2);
    let file = dir.path().join("api.parquet");

    // The API: the area, every reading, in more than one row group.
    let (status, text) = get_parquet(&server, server.read_token(), "area=rayong-eit&format=parquet", &file).await;
    assert_eq!(status, 200, "{text}");
    let read = read_parquet(&file);
    assert_rows("API, area", &read.rows, &expected);
    assert_eq!(read.row_groups, 2, "74 002 rows in groups of 65 536");
    assert_metadata("API, area", &read, serde_json::json!({"area": "rayong-eit"}));

    // A span: `from` inclusive, `to` exclusive, as JSON reads.
    let (from, to) = (t0 + 100 * MINUTE_NS, t0 + 1500 * MINUTE_NS);
    let (status, text) = get_parquet(
        &server,
        server.read_token(),
        &format!("factory=f2&parameter=cd&from_ns={from}&to_ns={to}&format=parquet"),
        &file,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let spanned: Vec<Row> = expected
        .iter()
        .filter(|r| r.factory == "f2" && r.parameter == "cd" && (from..to).contains(&r.time))
        .cloned()
        .collect();
    assert_eq!(spanned.len(), 1, "the second day's lab result only");
    assert_rows("API, span", &read_parquet(&file).rows, &spanned);

    // A factory's read token sees its factory only, whatever it asks.
    let f2_reader = server.create_token(&["--read", "--factory", "f2"]);
    let (status, text) = get_parquet(&server, &f2_reader.secret, "format=parquet", &file).await;
    assert_eq!(status, 200, "{text}");
    let f2_rows: Vec<Row> = expected.iter().filter(|r| r.factory == "f2").cloned().collect();
    assert_rows("API, f2's token", &read_parquet(&file).rows, &f2_rows);
    let (status, text) = get_parquet(&server, &f2_reader.secret, "factory=f1&format=parquet", &file).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(read_parquet(&file).rows, [], "f2's token asking for f1: nothing, as in JSON");

    // Bad queries are named.
    for (query, names) in [
        ("format=xml", "format: \"xml\" is not one of json, parquet"),
        ("format=parquet&limit=10", "limit: not taken with format=parquet"),
        ("format=parquet&every_s=60", "every_s: not taken with format=parquet"),
    ] {
        let (status, text) = get_parquet(&server, server.read_token(), query, &file).await;
        assert_eq!(status, 400, "{query}: {text}");
        assert!(text.contains(names), "{query}: {text}");
    }

    // The CLI refuses a data directory a server is running on.
    let out = dir.path().join("cli.parquet");
    let (config, data) = (server.config_path().to_path_buf(), server.data_dir().to_path_buf());
    let cli = |extra: &[&str]| {
        let mut c = Command::new(bin("eitwatch-server"));
        c.arg("--config").arg(&config).args(["export", "readings", "--data-dir"]);
        c.arg(&data).args(extra).arg("--out").arg(&out);
        c.output().expect("eitwatch-server runs")
    };
    let window = ["--area", "rayong-eit", "--from", "2020-01-01", "--to", "2100-01-01T00:00:00Z"];
    let refused = cli(&window);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("a server is running on this data directory"), "{stderr}");
    assert!(!out.exists());

    // Stopped, the same export from the data directory.
    server.kill();
    let done = cli(&window);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("({} readings)", expected.len())), "{stderr}");
    let read = read_parquet(&out);
    assert_rows("CLI, area", &read.rows, &expected);
    // 2020-01-01 at Bangkok midnight is 2019-12-31T17:00:00Z.
    assert_metadata(
        "CLI, area",
        &read,
        serde_json::json!({"area": "rayong-eit", "from_ns": 1_577_811_600_000_000_000_i64, "to_ns": 4_102_444_800_000_000_000_i64}),
    );
    let mut partial = out.clone().into_os_string();
    partial.push(".partial");
    assert!(!Path::new(&partial).exists(), "no partial file is left");

    // The other area: only f3.
    let other = cli(&["--area", "other-eit", "--from", "2020-01-01", "--to", "2100-01-01"]);
    assert!(other.status.success(), "{}", String::from_utf8_lossy(&other.stderr));
    let rows = read_parquet(&out).rows;
    assert_eq!(rows.len(), f3_count);
    assert!(rows.iter().all(|r| r.factory == "f3" && r.value == 50.0));

    // A bad time is named.
    let bad = cli(&["--from", "yesterday", "--to", "2100-01-01"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("--from: \"yesterday\" is neither a date"), "{stderr}");

    // The server starts again on the directory the export opened, with everything.
    server.restart().await;
    let (status, text) = get_parquet(&server, server.read_token(), "area=rayong-eit&format=parquet", &file).await;
    assert_eq!(status, 200, "{text}");
    assert_rows("API after the CLI", &read_parquet(&file).rows, &expected);
}
