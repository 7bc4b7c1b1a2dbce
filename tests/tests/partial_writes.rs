//! Partial writes for third-party writers: a token created with `--partial-writes` (or
//! `[ingest] partial_writes`) has its valid lines stored and the others answered 400 in
//! InfluxDB 3's shape and kept in the dead letters, which `dead-letters replay` writes
//! again once the catalog, a mapping or the registry is fixed. Without it, a batch stays
//! whole: accepted or refused.

mod support;

use std::process::Command;

use serde_json::json;
use support::ingest::*;
use support::server::post;
use support::{TestServer, bin};

const T0_S: i64 = 1_795_300_000; // 2026-11-22T08:26:40Z
const S: i64 = 1_000_000_000;

/// A gateway's own names: `analyser` lines with COD in mg/L, mapped onto outfall-1.
const MAPPING: &str = r#"
[[ingest.mapping]]
measurement = "analyser"
kind = "effluent"
point = "outfall-1"
fields = { cod_mg_l = { parameter = "cod" } }
"#;

/// The same, once it also maps the field the gateway started to send.
const MAPPING_FIXED: &str = r#"
[[ingest.mapping]]
measurement = "analyser"
kind = "effluent"
point = "outfall-1"
fields = { cod_mg_l = { parameter = "cod" }, tss_g_l = { parameter = "tss", unit = "g/L" } }
"#;

/// `eitwatch-server dead-letters <args…> --data-dir <data>`: stdout, asserting success.
fn dead_letters(data: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(bin("eitwatch-server"))
        .arg("dead-letters")
        .args(&args[..1])
        .arg("--data-dir")
        .arg(data)
        .args(&args[1..])
        .output()
        .expect("eitwatch-server dead-letters");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dead-letters {args:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn listed(data: &std::path::Path) -> Vec<serde_json::Value> {
    dead_letters(data, &["list", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("a dead letter is JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_clients_batch_with_one_unknown_field_stores_19_and_the_20th_after_the_mapping_is_fixed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server =
        TestServer::builder(dir.path()).anonymous_read("never").admin_token().config_tail(MAPPING).start().await;
    let whole = server.create_token(&["--factory", "f1"]).secret;
    let partial = server.create_token(&["--factory", "f1", "--partial-writes"]);
    let url = server.url().to_string();
    // 20 points a minute apart; the 7th also carries TSS, a field the mapping does not know.
    let points: Vec<_> = (0..20)
        .map(|i| {
            let mut fields = json!({"cod_mg_l": 50.0 + i as f64});
            if i == 6 {
                fields["tss_g_l"] = json!(0.125);
            }
            json!({"measurement": "analyser", "tags": {"host": "gw"}, "fields": fields, "time": T0_S + 60 * i})
        })
        .collect();
    let points = serde_json::Value::from(points);
    let write = |token: &str| {
        let (ok, out) =
            python_client(&["--url", &url, "--token", token, "--precision", "s", "--mode", "expect-error"], &points);
        assert!(ok, "{out}");
        serde_json::from_str::<serde_json::Value>(out.trim()).expect("script output")
    };

    // Whole-batch semantics, as before: all 20 refused, nothing stored, no dead letter.
    let reply = write(&whole);
    assert_eq!(reply["status"], 400, "{reply}");
    assert!(reply["message"].as_str().is_some_and(|m| m.starts_with("line 7: ") && m.contains("tss_g_l")), "{reply}");
    assert_eq!(server.series_as(&whole, "f1", "cod").await, vec![]);
    assert_eq!(listed(server.data_dir()), Vec::<serde_json::Value>::new());

    // Partial: 19 stored, the one answered (the client sees the 400 and its message) and kept.
    let reply = write(&partial.secret);
    assert_eq!(reply["status"], 400, "{reply}");
    let message = reply["message"].as_str().expect("message");
    assert!(message.starts_with("partial write: 1 line(s) refused") && message.contains("line 7: "), "{reply}");
    let cod = |skip: Option<i64>| -> Vec<(i64, f64)> {
        (0..20).filter(|&i| Some(i) != skip).map(|i| ((T0_S + 60 * i) * S, 50.0 + i as f64)).collect()
    };
    assert_eq!(server.series_as(&whole, "f1", "cod").await, cod(Some(6)), "the 7th line's COD stays with its TSS");
    assert_eq!(server.series_as(&whole, "f1", "tss").await, vec![]);
    let letters = listed(server.data_dir());
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["token_id"], partial.id.as_str());
    assert_eq!(letters[0]["factory"], "f1");
    assert_eq!(letters[0]["line_number"], 7);
    assert_eq!(letters[0]["precision"], "s");
    assert_eq!(letters[0]["line"], format!("analyser,host=gw cod_mg_l=56,tss_g_l=0.125 {}", T0_S + 360));
    assert!(letters[0]["reason"].as_str().is_some_and(|r| r.contains("tss_g_l")), "{letters:?}");

    // A replay before the fix stores nothing and keeps the letter.
    let admin = server.admin_token().to_string();
    assert_eq!(dead_letters(server.data_dir(), &["replay", "--token", &admin]).trim(), "stored 0, remaining 1");
    assert_eq!(listed(server.data_dir()).len(), 1);

    // The mapping learns TSS: the replay stores the line whole and the dead letters empty.
    server.restart_with_config_tail(MAPPING_FIXED).await;
    assert_eq!(dead_letters(server.data_dir(), &["replay", "--token", &admin]).trim(), "stored 1, remaining 0");
    assert_eq!(server.series_as(&whole, "f1", "cod").await, cod(None));
    assert_eq!(server.series_as(&whole, "f1", "tss").await, vec![((T0_S + 360) * S, 125.0)], "0.125 g/L");
    assert_eq!(listed(server.data_dir()), Vec::<serde_json::Value>::new());
    assert_eq!(dead_letters(server.data_dir(), &["replay", "--token", &admin]).trim(), "stored 0, remaining 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_write_answers_in_influxdb_3s_shape_and_what_is_not_one_lines_stays_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::builder(dir.path())
        .anonymous_read("never")
        .config_tail("[ingest]\npartial_writes = true")
        .start()
        .await;
    let f1 = server.create_token(&["--factory", "f1"]);
    let url = format!("{}/api/v2/write?org=eitwatch&bucket=eitwatch&precision=s", server.url());
    let auth = format!("Token {}", f1.secret);
    let headers = [("Authorization", auth.as_str())];
    let line = |param: &str, value: &str, i: i64| {
        format!("effluent,factory=f1,point=outfall-1 {param}={value} {}", T0_S + 60 * i)
    };

    // Two good lines around a malformed one, an unknown point, a too long line and 150 lines
    // of an unknown parameter: 153 refused, the first 100 listed.
    let long = format!("effluent,factory=f1,point=outfall-1,note={} cood=1 {T0_S}", "x".repeat(400));
    let mut body = vec![
        line("cod", "10", 0),
        line("cod", "5O", 1),
        format!("effluent,factory=f1,point=nowhere cod=1 {T0_S}"),
        long.clone(),
        line("cod", "11", 2),
    ];
    body.extend((0..150).map(|i| line("cood", "1", 10 + i)));
    let r = post(&url, &headers, body.join("\n")).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["code"], "invalid");
    assert_eq!(r.body["error"], "partial write of line protocol occurred");
    assert_eq!(r.body["rejected"], 153);
    let data = r.body["data"].as_array().expect("data");
    assert_eq!(data.len(), 100);
    assert_eq!(
        data[0],
        json!({"original_line": line("cod", "5O", 1), "line_number": 2,
               "error_message": "field cod: \"5O\" is not a number (a finite float, or an integer with i or u)"})
    );
    assert_eq!(data[1]["line_number"], 3);
    assert_eq!(data[1]["error_message"], "unknown point \"nowhere\" of factory \"f1\"");
    assert_eq!(data[2]["line_number"], 4);
    assert_eq!(data[2]["original_line"], format!("{}…", &long[..256]), "a long line is cut");
    assert_eq!(data[3]["line_number"], 6);
    assert_eq!(data[99]["line_number"], 102);
    assert_eq!(server.series_as(&f1.secret, "f1", "cod").await, vec![(T0_S * S, 10.0), ((T0_S + 120) * S, 11.0)]);
    let letters = dead_letters_of(&server);
    assert_eq!(letters.len(), 153);
    assert_eq!(letters[2]["line"], long, "the dead letter keeps the line whole");

    // A line of another factory refuses the batch whole (403, audited): nothing stored, no
    // dead letter; so does a rewrite of stored history (409, audited).
    let other =
        format!("{}\neffluent,factory=f2,point=outfall-1 cod=1 {T0_S}\n{}", line("cod", "12", 3), line("cood", "1", 3));
    let r = post(&url, &headers, other).await;
    assert_eq!(r.status, 403, "{r:?}");
    let rewrite = format!("{}\n{}\n{}", line("cod", "13", 4), line("cod", "99", 0), line("cood", "1", 4));
    let r = post(&url, &headers, rewrite).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(server.series_as(&f1.secret, "f1", "cod").await.len(), 2);
    assert_eq!(dead_letters_of(&server).len(), 153);
    let events: Vec<_> =
        audit(server.data_dir()).iter().map(|a| a["event"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(events, ["forbidden", "rewrite"]);

    // A batch with nothing wrong is still 204.
    let r = post(&url, &headers, line("cod", "14", 5)).await;
    assert_eq!((r.status, r.body), (204, serde_json::Value::Null));
}

fn dead_letters_of(server: &TestServer) -> Vec<serde_json::Value> {
    listed(server.data_dir())
}
