//! The Grafana files under `dashboards/grafana/`: every dashboard parses, uses the provisioned
//! datasource, and its Flux queries read only what the server writes to InfluxDB: the
//! canonical line protocol (measurements `effluent`/`emission`/`ambient`, tags
//! `factory`/`point`/`source`, fields the catalog's parameter codes of that measurement plus
//! `quality` and `not_detected`) and the applied limits (measurement `limit`, fields
//! `max`/`min`). The factory detail draws each effluent parameter's applied limit from the
//! `limit` series; fixed thresholds elsewhere are the standard's limits. The server's `limit`
//! series reach a real InfluxDB-compatible store (VictoriaMetrics) with a permit's and the
//! receiving-water rule's values.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use eitwatch_config::catalog::Catalog;
use eitwatch_config::reading::Kind;
use eitwatch_config::standards::Standards;
use serde_json::Value;

const TAGS: [&str; 3] = ["factory", "point", "source"];
/// Tags of the `limit` measurement (beside factory and point).
const LIMIT_TAGS: [&str; 6] = ["parameter", "kind", "basis", "averaging", "unit", "limit_id"];
/// Fields of the `limit` measurement.
const LIMIT_FIELDS: [&str; 2] = ["max", "min"];
/// Columns Flux gives every row, beside the tags.
const FLUX_COLUMNS: [&str; 6] = ["_measurement", "_field", "_value", "_time", "_start", "_stop"];
/// String fields of the canonical line.
const META_FIELDS: [&str; 2] = ["quality", "not_detected"];

fn grafana_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards/grafana")
}

/// The quoted string starting after `pattern` (spaces skipped), at each occurrence.
fn quoted_after(text: &str, pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices(pattern) {
        let rest = text[i + pattern.len()..].trim_start();
        if let Some(body) = rest.strip_prefix('"')
            && let Some(end) = body.find('"')
        {
            out.push(body[..end].to_string());
        }
    }
    out
}

/// Record columns a query touches: `r.name`, `r["name"]`, `columns: [...]`, `column: "…"`.
fn columns_used(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = q.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    for (i, _) in q.match_indices("r.") {
        if i > 0 && ident(bytes[i - 1]) {
            continue;
        }
        let name: String = q[i + 2..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        out.push(name);
    }
    out.extend(quoted_after(q, "r["));
    out.extend(quoted_after(q, "column:"));
    for (i, _) in q.match_indices("columns:") {
        let rest = &q[i + "columns:".len()..];
        if let (Some(open), Some(close)) = (rest.find('['), rest.find(']')) {
            for part in rest[open + 1..close].split(',') {
                out.push(part.trim().trim_matches('"').to_string());
            }
        }
    }
    out
}

/// What in a Flux query is not in the canonical schema (empty: nothing).
fn flux_problems(q: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let catalog = Catalog::builtin();
    let mut kinds = Vec::new();
    let mut limits = false;
    for m in quoted_after(q, "_measurement ==") {
        match Kind::ALL.iter().find(|k| k.as_str() == m) {
            Some(k) => kinds.push(*k),
            None if m == "limit" => limits = true,
            None => problems.push(format!("measurement \"{m}\" is not effluent, emission, ambient or limit")),
        }
    }
    if limits && !kinds.is_empty() {
        problems.push("reads readings and limits in one query".to_string());
    }
    if q.contains("from(") && kinds.is_empty() && !limits {
        problems.push("reads from the bucket without naming a measurement".to_string());
    }
    if q.contains("from(") && !q.contains("from(bucket: v.defaultBucket)") {
        problems.push("reads another bucket than the datasource's default (v.defaultBucket)".to_string());
    }
    let fields = quoted_after(q, "_field ==").into_iter().chain(quoted_after(q, "_field !="));
    for f in fields {
        if limits {
            if !LIMIT_FIELDS.contains(&f.as_str()) {
                problems.push(format!("field \"{f}\" is not a field of limit (max, min)"));
            }
            continue;
        }
        let known = META_FIELDS.contains(&f.as_str())
            || kinds.iter().any(|k| catalog.get(*k, &f).is_some())
            || (kinds.is_empty() && Kind::ALL.iter().any(|k| catalog.get(*k, &f).is_some()));
        if !known {
            problems.push(format!("field \"{f}\" is not a catalog parameter of {kinds:?} (nor quality/not_detected)"));
        }
    }
    for c in columns_used(q) {
        let limit_tag = limits && LIMIT_TAGS.contains(&c.as_str());
        if !TAGS.contains(&c.as_str()) && !FLUX_COLUMNS.contains(&c.as_str()) && !limit_tag {
            problems.push(format!("column \"{c}\" is neither a tag of the line protocol nor a Flux column"));
        }
    }
    for t in quoted_after(q, "tag:") {
        if !TAGS.contains(&t.as_str()) {
            problems.push(format!("tag \"{t}\" is not factory, point or source"));
        }
    }
    problems
}

/// The datasource uid the provisioning file defines.
fn provisioned_uid() -> String {
    let path = grafana_dir().join("provisioning/datasources/eitwatch-influxdb.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value = |key: &str| {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim().to_string())
            .next()
            .unwrap_or_else(|| panic!("{}: no `{key}`", path.display()))
    };
    assert_eq!(value("type:"), "influxdb");
    assert_eq!(value("version:"), "Flux", "the dashboards speak Flux (InfluxDB 2)");
    assert_eq!(value("defaultBucket:"), "${INFLUXDB_BUCKET}");
    value("uid:")
}

/// The dashboards on InfluxDB: all but the server-operations one, which reads Prometheus
/// (`tests/tests/metrics.rs` checks it against a real scrape).
fn dashboards() -> Vec<(PathBuf, Value)> {
    let dir = grafana_dir().join("dashboards");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| !p.ends_with("server-operations.json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()));
            (p, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every panel, rows' nested panels included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

#[test]
fn provisioning_points_grafana_at_the_folder() {
    let path = grafana_dir().join("provisioning/dashboards/eitwatch.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.lines().any(|l| l.trim() == "type: file"), "{text}");
    assert!(text.lines().any(|l| l.trim() == "path: ${EITWATCH_GRAFANA_DASHBOARDS}"), "{text}");
    assert_eq!(provisioned_uid(), "eitwatch-influxdb");
    let path = grafana_dir().join("provisioning/datasources/eitwatch-prometheus.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for line in ["uid: eitwatch-prometheus", "type: prometheus", "url: ${PROMETHEUS_URL}"] {
        assert!(text.lines().any(|l| l.trim() == line), "{}: no `{line}`", path.display());
    }
}

#[test]
fn every_dashboard_uses_the_provisioned_datasource_and_the_canonical_schema() {
    let uid = provisioned_uid();
    let all = dashboards();
    let mut uids: Vec<_> = all.iter().map(|(_, d)| d["uid"].as_str().unwrap_or("").to_string()).collect();
    uids.sort();
    assert_eq!(uids, ["eitwatch-data-availability", "eitwatch-factory-detail", "eitwatch-province-overview"]);
    let mut queries = 0;
    for (path, d) in &all {
        let name = path.display();
        assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()), "{name}: no title");
        let mut checked = |where_: String, ds: &Value, query: Option<&str>| {
            assert_eq!(ds["uid"], uid.as_str(), "{name}: {where_} does not use datasource {uid}: {ds}");
            assert_eq!(ds["type"], "influxdb", "{name}: {where_}");
            let query = query.unwrap_or_else(|| panic!("{name}: {where_} has no query"));
            let problems = flux_problems(query);
            assert!(problems.is_empty(), "{name}: {where_}: {problems:?}\n{query}");
            queries += 1;
        };
        for p in panels(d) {
            if p["type"] == "row" {
                continue;
            }
            let title = p["title"].as_str().unwrap_or("?");
            let targets = p["targets"].as_array().filter(|t| !t.is_empty());
            for t in targets.unwrap_or_else(|| panic!("{name}: panel \"{title}\" has no query")) {
                let ds = if t["datasource"].is_null() { &p["datasource"] } else { &t["datasource"] };
                checked(format!("panel \"{title}\" {}", t["refId"]), ds, t["query"].as_str());
            }
            assert_eq!(p["datasource"]["uid"], uid.as_str(), "{name}: panel \"{title}\"");
        }
        for v in d["templating"]["list"].as_array().into_iter().flatten().filter(|v| v["type"] == "query") {
            checked(format!("variable {}", v["name"]), &v["datasource"], v["query"].as_str());
        }
    }
    assert!(queries >= 20, "only {queries} queries checked");
}

/// Thresholds fixed in a dashboard are the effluent standard's limits, each found in the
/// built-in standard's data; the factory detail fixes none: each effluent panel draws the
/// applied limit of its parameter from the `limit` series, for exactly these parameters.
#[test]
fn effluent_limits_come_from_the_limit_series() {
    let standards = Standards::builtin();
    let in_standard = |code: &str, v: f64| {
        standards
            .iter()
            .filter(|s| s.kind == Kind::Effluent)
            .flat_map(|s| s.limit.iter())
            .any(|l| l.parameter == code && (l.max == Some(v) || l.min == Some(v)))
    };
    let mut drawn_in_detail = Vec::new();
    for (path, d) in dashboards() {
        for p in panels(&d) {
            let Some(query) = p["targets"][0]["query"].as_str() else { continue };
            let fields = quoted_after(query, "_field ==");
            let measurements = quoted_after(query, "_measurement ==");
            if measurements != ["effluent"] || fields.len() != 1 {
                continue;
            }
            let code = fields[0].as_str();
            let steps: Vec<f64> = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["value"].as_f64())
                .collect();
            for v in &steps {
                assert!(
                    in_standard(code, *v),
                    "{}: \"{}\": threshold {v} is no limit of {code}",
                    path.display(),
                    p["title"]
                );
            }
            if d["uid"] != "eitwatch-factory-detail" {
                continue;
            }
            assert!(steps.is_empty(), "{}: {code} has fixed thresholds {steps:?}", p["title"]);
            let limit = p["targets"].as_array().into_iter().flatten().find_map(|t| {
                let q = t["query"].as_str()?;
                (quoted_after(q, "_measurement ==") == ["limit"]).then_some(q)
            });
            if let Some(q) = limit {
                assert_eq!(quoted_after(q, "r.parameter =="), [code], "{}: the limit of another parameter", p["title"]);
                assert!(q.contains("r.factory == \"${factory}\""), "{}: not the factory's limit", p["title"]);
                drawn_in_detail.push(code.to_string());
            }
        }
    }
    drawn_in_detail.sort();
    assert_eq!(drawn_in_detail, ["bod", "cod", "oil_grease", "ph", "tds", "temp", "tss"], "each effluent limit once");
}

/// The latest value of every series of VictoriaMetrics named `<prefix>…`: name, labels, value.
async fn latest(vm: &support::victoria::Vm, prefix: &str) -> Vec<(String, Value, f64)> {
    let mut url = reqwest::Url::parse(&format!("http://{}/api/v1/export", vm.addr)).expect("url");
    url.query_pairs_mut().append_pair("match[]", &format!("{{__name__=~\"{prefix}.*\"}}"));
    let text = support::http().get(url).send().await.expect("export").text().await.expect("export body");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("export line");
            let name = v["metric"]["__name__"].as_str().unwrap_or_default().to_string();
            let last = v["values"].as_array().and_then(|a| a.last()).and_then(Value::as_f64).expect("a value");
            (name, v["metric"].clone(), last)
        })
        .collect()
}

/// The server writes the applied limits to a real InfluxDB-compatible store: BOD at the
/// factory's permit (60, not the standard's 20), TDS by the receiving-water rule
/// (receiving water 12 000 mg/L: max(3 000, 12 000 + 5 000) = 17 000), pH at the standard's
/// 5.5–9, each tagged with its basis; VictoriaMetrics names them `limit_<field>`.
#[tokio::test]
async fn the_server_writes_the_applied_limits_to_influxdb() {
    use support::victoria::Vm;
    use support::{Area, Factory, Point, Site, TestServer, wait_for};

    let dir = tempfile::tempdir().expect("tempdir");
    let vm = Vm::start(dir.path()).await;
    // The permit table follows the factory's last point (a TOML array of the same factory).
    let permit = "[[area.factory.permit]]\nreference = \"P-60\"\npoint = \"outfall-1\"\nparameter = \"bod\"\n\
                  max = 60.0\nunit = \"mg/L\"\naveraging = \"instantaneous\"";
    let site = Site::new().area(
        Area::new("a1", "Area one", "พื้นที่หนึ่ง", "Rayong").factory(
            Factory::new("f1", "Factory one").point(
                Point::outfall("outfall-1", &["bod", "tds", "ph"])
                    .with("receiving_water_tds_mg_per_l = 12000.0")
                    .with(permit),
            ),
        ),
    );
    let tail = format!(
        "[influxdb]\nurl = \"http://{}\"\norg = \"rayong\"\nbucket = \"eitwatch\"\ntoken = \"secret-token\"\n",
        vm.addr
    );
    let _server = TestServer::builder(dir.path()).site(site).config_tail(&tail).start().await;
    let got = wait_for("the limits in VictoriaMetrics", Duration::from_secs(60), || {
        let vm = &vm;
        async move { Some(latest(vm, "limit_").await).filter(|g| g.len() >= 4) }
    })
    .await;
    let mut seen: Vec<(String, String, String, f64)> = got
        .iter()
        .map(|(name, labels, value)| {
            let label = |k: &str| labels[k].as_str().unwrap_or_default().to_string();
            assert_eq!(
                (label("factory"), label("point"), label("kind")),
                ("f1".into(), "outfall-1".into(), "effluent".into())
            );
            (label("parameter"), name.clone(), label("basis"), *value)
        })
        .collect();
    seen.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    assert_eq!(
        seen,
        [
            ("bod".into(), "limit_max".into(), "permit".into(), 60.0),
            ("ph".into(), "limit_max".into(), "standard".into(), 9.0),
            ("ph".into(), "limit_min".into(), "standard".into(), 5.5),
            ("tds".into(), "limit_max".into(), "receiving_water".into(), 17000.0),
        ]
    );
}

/// The checker itself finds what is outside the schema.
#[test]
fn the_flux_check_refuses_what_the_line_protocol_does_not_write() {
    let good = "from(bucket: v.defaultBucket)\n |> range(start: -1h)\n |> filter(fn: (r) => r._measurement == \"effluent\" and r.factory == \"f1\")\n |> filter(fn: (r) => r._field == \"cod\")\n |> keep(columns: [\"_time\", \"_value\", \"point\"])";
    assert_eq!(flux_problems(good), Vec::<String>::new());
    let cases = [
        (good.replace("\"effluent\"", "\"water\""), "measurement \"water\""),
        (good.replace("\"cod\"", "\"cod_mg_l\""), "field \"cod_mg_l\""),
        // SO₂ is a stack parameter, not an effluent one.
        (good.replace("\"cod\"", "\"so2\""), "field \"so2\""),
        (good.replace("r.factory", "r.host"), "column \"host\""),
        (good.replace("\"point\"]", "\"device\"]"), "column \"device\""),
        (good.replace("r._measurement == \"effluent\" and ", ""), "without naming a measurement"),
        (good.replace("v.defaultBucket", "\"telegraf\""), "another bucket"),
        (
            "import \"influxdata/influxdb/schema\"\nschema.tagValues(bucket: v.defaultBucket, tag: \"host\")"
                .to_string(),
            "tag \"host\"",
        ),
    ];
    for (query, want) in cases {
        let problems = flux_problems(&query);
        assert!(problems.iter().any(|p| p.contains(want)), "{want}: {problems:?}\n{query}");
    }
}

/// InfluxData's Flux analyser (the language server's WebAssembly build, from npm) finds
/// every query valid: syntax, builtin functions and their parameters, with Grafana's macros
/// filled in. `--self-test` first proves it refuses broken queries.
#[test]
fn every_flux_query_passes_influxdatas_flux_analyser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("tests/browser/flux-check.mjs");
    let package = root.join("tests/browser/node_modules/@influxdata/flux-lsp-browser");
    assert!(package.exists(), "{} missing: run scripts/install-peers.sh (scripts/test.sh does)", package.display());
    for args in [vec!["--self-test".to_string()], vec![grafana_dir().join("dashboards").display().to_string()]] {
        let out = std::process::Command::new("node")
            .arg(&script)
            .args(&args)
            .output()
            .expect("node (install Node.js: scripts/install-peers.sh)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "flux-check {args:?}:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        if args[0] != "--self-test" {
            assert!(stdout.contains(" 0 invalid"), "{stdout}");
        }
    }
}
