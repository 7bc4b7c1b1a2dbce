use eitwatch_config::agent_config::{Payload, Subscription, TimeFormat};
use eitwatch_config::reading::Quality;
use serde_json::json;

use super::{PayloadError, decode, parse_time};
use crate::normalise::Raw;
use crate::sources::mqtt::topic::TopicMatch;

const ARRIVAL: i64 = 7;
/// 2026-11-22T10:00:00Z.
const T: i64 = 1_795_341_600;

fn sub(extra: &str) -> Subscription {
    toml::from_str(&format!("topic = \"p/{{point}}/{{parameter}}\"\n{extra}")).expect("subscription")
}

fn at(point: &str, parameter: Option<&str>) -> TopicMatch {
    TopicMatch { point: Some(point.into()), parameter: parameter.map(Into::into) }
}

fn raw(point: &str, parameter: &str, value: f64, unit: &str, time_ns: i64, quality: Quality) -> Raw {
    Raw { point: point.into(), parameter: parameter.into(), value, unit: unit.into(), time_ns, quality }
}

fn one(s: &Subscription, payload: &str) -> Result<Vec<Raw>, PayloadError> {
    decode(s, &at("o", Some("cod")), payload.as_bytes(), ARRIVAL)
}

#[test]
fn plain_numbers() {
    let s = sub("payload = \"number\"\nunit = \"mg/L\"");
    assert_eq!(one(&s, " 12.5\n"), Ok(vec![raw("o", "cod", 12.5, "mg/L", ARRIVAL, Quality::Valid)]));
    assert_eq!(one(&s, "-3e2"), Ok(vec![raw("o", "cod", -300.0, "mg/L", ARRIVAL, Quality::Valid)]));
    assert_eq!(one(&s, "high"), Err(PayloadError::NotANumber));
    assert_eq!(one(&s, ""), Err(PayloadError::NotANumber));
    assert_eq!(decode(&s, &at("o", Some("cod")), b"\xff1", 0), Err(PayloadError::NotUtf8));
}

#[test]
fn json_with_default_and_configured_paths() {
    let s = sub("payload = \"json\"\nunit = \"mg/L\"");
    let got =
        one(&s, r#"{"value": 85.25, "unit": "ug/L", "time": "2026-11-22T17:00:00+07:00", "quality": "maintenance"}"#);
    assert_eq!(got, Ok(vec![raw("o", "cod", 85.25, "ug/L", T * 1_000_000_000, Quality::Maintenance)]));
    assert_eq!(one(&s, r#"{"value": 2}"#), Ok(vec![raw("o", "cod", 2.0, "mg/L", ARRIVAL, Quality::Valid)]));
    assert_eq!(
        one(&s, r#"{"value": "2.5", "time": null}"#),
        Ok(vec![raw("o", "cod", 2.5, "mg/L", ARRIVAL, Quality::Valid)])
    );
    assert_eq!(one(&s, r#"{"value": true}"#).map(|r| r[0].value), Ok(1.0), "a status bit");

    let s = sub(concat!(
        "payload = \"json\"\nunit = \"mg/L\"\nvalue_path = \"data.readings.1.v\"\n",
        "time_path = \"data.ts\"\ntime_format = \"epoch_ms\"\nunit_path = \"data.u\"\nquality_path = \"data.q\"\n"
    ));
    let got = one(
        &s,
        r#"{"data": {"ts": 1795341600123, "u": "mg/l", "q": "suspect", "readings": [{"v": 1}, {"v": 42.125}]}}"#,
    );
    assert_eq!(got, Ok(vec![raw("o", "cod", 42.125, "mg/l", 1_795_341_600_123_000_000, Quality::Suspect)]));
}

#[test]
fn one_json_object_with_several_parameters() {
    let s: Subscription = toml::from_str(concat!(
        "topic = \"plant/{point}/analyser\"\npayload = \"json\"\ntime_path = \"ts\"\ntime_format = \"epoch_s\"\n",
        "[[field]]\npath = \"cod\"\nparameter = \"cod\"\nunit = \"mg/L\"\n",
        "[[field]]\npath = \"ph\"\nparameter = \"ph\"\nunit = \"pH\"\n",
        "[[field]]\npath = \"t.c\"\nparameter = \"temp\"\nunit = \"degC\"\n",
    ))
    .expect("subscription");
    let got = decode(
        &s,
        &at("outfall-1", None),
        br#"{"ts": 1795341600.5, "cod": 85, "ph": 7.25, "t": {"c": 31.5}}"#,
        ARRIVAL,
    );
    let t = 1_795_341_600_500_000_000;
    assert_eq!(
        got,
        Ok(vec![
            raw("outfall-1", "cod", 85.0, "mg/L", t, Quality::Valid),
            raw("outfall-1", "ph", 7.25, "pH", t, Quality::Valid),
            raw("outfall-1", "temp", 31.5, "degC", t, Quality::Valid),
        ])
    );
    // A parameter absent this time is not measured now; none at all is an error.
    let got = decode(&s, &at("outfall-1", None), br#"{"ts": 1795341600, "ph": 7}"#, ARRIVAL);
    assert_eq!(got, Ok(vec![raw("outfall-1", "ph", 7.0, "pH", T * 1_000_000_000, Quality::Valid)]));
    assert_eq!(decode(&s, &at("outfall-1", None), br#"{"ts": 1795341600}"#, ARRIVAL), Err(PayloadError::Empty));
    assert_eq!(
        decode(&s, &at("outfall-1", None), br#"{"cod": "n/a"}"#, ARRIVAL),
        Err(PayloadError::NotNumeric { path: "cod".into(), found: "\"n/a\"".into() })
    );
}

#[test]
fn influx_line_protocol() {
    let s: Subscription = toml::from_str("topic = \"lp/{point}\"\npayload = \"influx\"\n").expect("subscription");
    let body = "effluent,point=outfall-2 cod=85.5,ph=7i,quality=\"calibration\" 1795341600000000000\n\
                # a comment\n\
                \n\
                effluent cod=90 1795341660000000000\r\n";
    let got = decode(&s, &at("outfall-1", None), body.as_bytes(), ARRIVAL);
    assert_eq!(
        got,
        Ok(vec![
            raw("outfall-2", "cod", 85.5, "", T * 1_000_000_000, Quality::Calibration),
            raw("outfall-2", "ph", 7.0, "", T * 1_000_000_000, Quality::Calibration),
            raw("outfall-1", "cod", 90.0, "", (T + 60) * 1_000_000_000, Quality::Valid),
        ])
    );
    let got = decode(&s, &at("o", None), b"x cod=1", ARRIVAL);
    assert_eq!(got, Ok(vec![raw("o", "cod", 1.0, "", ARRIVAL, Quality::Valid)]), "no timestamp: arrival");
    let seconds: Subscription =
        toml::from_str("topic = \"lp/{point}\"\npayload = \"influx\"\ntime_format = \"epoch_s\"\n").expect("sub");
    assert_eq!(
        decode(&seconds, &at("o", None), b"x cod=1 1795341600", ARRIVAL).map(|r| r[0].time_ns),
        Ok(T * 1_000_000_000)
    );
    // One bad line refuses the whole message, naming the line.
    let got = decode(&s, &at("o", None), b"x cod=1 1\nx cod=oops 2\n", ARRIVAL);
    assert!(matches!(got, Err(PayloadError::Line { line: 2, .. })), "{got:?}");
    let got = decode(&s, &at("o", None), b"x cod=\"text\" 1", ARRIVAL);
    assert_eq!(got, Err(PayloadError::Line { line: 1, reason: "field cod is a string, expected a number".into() }));
    let got = decode(&s, &at("o", None), b"x quality=\"good\",cod=1 1", ARRIVAL);
    assert!(
        matches!(got, Err(PayloadError::Line { line: 1, ref reason }) if reason.contains("unknown quality")),
        "{got:?}"
    );
    assert_eq!(decode(&s, &at("o", None), b"# nothing\n", ARRIVAL), Err(PayloadError::Empty));
    let no_point = TopicMatch::default();
    assert!(matches!(decode(&s, &no_point, b"x cod=1", ARRIVAL), Err(PayloadError::Line { line: 1, .. })));
}

#[test]
fn timestamps_in_every_format() {
    let ns = T * 1_000_000_000;
    for (v, format, expected) in [
        (json!("2026-11-22T10:00:00Z"), TimeFormat::Auto, ns),
        (json!("2026-11-22T10:00:00.25Z"), TimeFormat::Rfc3339, ns + 250_000_000),
        (json!(T), TimeFormat::Auto, ns),
        (json!(T * 1000 + 1), TimeFormat::Auto, ns + 1_000_000),
        (json!(T * 1_000_000 + 1), TimeFormat::Auto, ns + 1_000),
        (json!(ns + 1), TimeFormat::Auto, ns + 1),
        (json!("1795341600"), TimeFormat::Auto, ns),
        (json!(1795341600.25), TimeFormat::EpochS, ns + 250_000_000),
        (json!(T), TimeFormat::EpochS, ns),
        (json!(T * 1000), TimeFormat::EpochMs, ns),
        (json!(T * 1_000_000), TimeFormat::EpochUs, ns),
        (json!(ns), TimeFormat::EpochNs, ns),
        // Explicit formats do not guess: 1795341600 ms is in January 1970.
        (json!(T), TimeFormat::EpochMs, T * 1_000_000),
    ] {
        assert_eq!(parse_time(&v, format), Ok(expected), "{v} as {format:?}");
    }
    for (v, format) in [
        (json!("yesterday"), TimeFormat::Auto),
        (json!(T), TimeFormat::Rfc3339),
        (json!(i64::MAX), TimeFormat::EpochS),
        (json!(1e300), TimeFormat::EpochS),
        (json!([1]), TimeFormat::Auto),
        (json!(true), TimeFormat::EpochMs),
    ] {
        assert!(matches!(parse_time(&v, format), Err(PayloadError::Time { .. })), "{v} as {format:?}");
    }
    let s = sub("payload = \"json\"\nunit = \"mg/L\"\ntime_format = \"arrival\"");
    assert_eq!(one(&s, r#"{"value": 1, "time": "garbage"}"#).map(|r| r[0].time_ns), Ok(ARRIVAL));
}

#[test]
fn malformed_json_is_named() {
    let s = sub("payload = \"json\"");
    for (payload, expected) in [
        ("{", "not JSON"),
        ("[1, 2]", "no \"value\" in the JSON"),
        (r#"{"v": 1}"#, "no \"value\" in the JSON"),
        (r#"{"value": "1x"}"#, "\"value\" is \"1x\", expected a number"),
        (r#"{"value": {"a": 1}}"#, "\"value\" is {\"a\":1}, expected a number"),
        (r#"{"value": 1}"#, "no unit in the payload and none configured"),
        (r#"{"value": 1, "unit": 5}"#, "\"unit\" is 5, expected a string"),
        (r#"{"value": 1, "unit": "mg/L", "time": "yesterday"}"#, "time \"yesterday\": not RFC 3339"),
        (r#"{"value": 1, "unit": "mg/L", "quality": "good"}"#, "unknown quality \"good\""),
    ] {
        let e = one(&s, payload).expect_err(payload);
        assert!(e.to_string().starts_with(expected), "{payload}: {e}");
    }
    let long = format!(r#"{{"value": "{}"}}"#, "x".repeat(100));
    let e = one(&s, &long).expect_err("long");
    assert!(e.to_string().len() < 120, "excerpts stay short: {e}");
    assert_eq!(s.payload, Payload::Json);
}

/// `pick` finds what `lookup` finds in the whole document, or declines.
fn picked_as_whole(text: &str, paths: &[&str]) -> Option<Vec<Option<serde_json::Value>>> {
    let found = super::pick::pick(text, paths)?;
    let whole: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
    for (path, value) in paths.iter().zip(&found) {
        assert_eq!(value.as_ref(), super::lookup(&whole, path), "path {path} in {text}");
    }
    Some(found)
}

#[test]
fn picking_paths_reads_only_scalars_and_declines_the_rest() {
    let text = r#"{"value": 12.5, "time": 1795341600000, "unit": "mg/L", "q": null,
        "data": {"readings": [{"v": 1}, {"v": -2, "x": [1, 2]}], "0": true},
        "big": 18446744073709551615, "esc\"aped": "a\u00e9"}"#;
    let got = picked_as_whole(
        text,
        &[
            "value",
            "time",
            "unit",
            "q",
            "data.readings.1.v",
            "data.0",
            "big",
            "esc\"aped",
            "nope",
            "value.x",
            "data.readings.7",
        ],
    )
    .expect("all scalars");
    assert_eq!(
        got,
        vec![
            Some(json!(12.5)),
            Some(json!(1_795_341_600_000u64)),
            Some(json!("mg/L")),
            None, // null is absent, as lookup says
            Some(json!(-2)),
            Some(json!(true)),
            Some(json!(u64::MAX)),
            Some(json!("aé")),
            None,
            None,
            None,
        ]
    );
    // A key seen twice: the last one counts, also when it no longer holds the path.
    assert_eq!(picked_as_whole(r#"{"a": 1, "a": 2}"#, &["a"]), Some(vec![Some(json!(2))]));
    assert_eq!(picked_as_whole(r#"{"a": {"b": 1}, "a": 2}"#, &["a.b"]), Some(vec![None]));
    // An object or array at a path, or no JSON at all: the caller reads the whole document.
    assert_eq!(super::pick::pick(r#"{"value": {"v": 1}}"#, &["value"]), None);
    assert_eq!(super::pick::pick(r#"{"value": [1]}"#, &["value"]), None);
    assert_eq!(super::pick::pick(r#"{"value": 1"#, &["value"]), None);
    assert_eq!(super::pick::pick(r#"{"value": 1} x"#, &["value"]), None);
}

#[test]
fn decoding_is_the_same_whether_the_paths_are_picked_or_the_document_read_whole() {
    // Each payload through `decode` (picked when it can be) and the whole-document path.
    let s = sub("payload = \"json\"\nunit = \"mg/L\"\ntime_format = \"epoch_ms\"");
    for payload in [
        r#"{"value": 12.5, "time": 1795341600000}"#,
        r#"{"value": "12.5", "time": 1795341600000, "unit": "g/m3", "quality": "suspect"}"#,
        r#"{"value": {"x": 1}, "time": 1}"#,
        r#"{"value": 1, "time": "soon"}"#,
        r#"{"value": 1, "unit": 5}"#,
        r#"{"time": 1}"#,
        r#"{"value": 1, "value": null}"#,
        r#"[1, 2]"#,
        r#"{"value": 1,}"#,
    ] {
        let whole = super::json(
            &s,
            &mut at("o", Some("cod")),
            &super::Doc::Whole(serde_json::from_str(payload).unwrap_or_default()),
            ARRIVAL,
        );
        let decoded = one(&s, payload);
        match serde_json::from_str::<serde_json::Value>(payload) {
            Ok(_) => assert_eq!(decoded, whole, "{payload}"),
            Err(_) => assert!(matches!(decoded, Err(PayloadError::NotJson(_))), "{payload}: {decoded:?}"),
        }
    }
}

/// Documents over a few keys (some of them digits, so that array indexes and object keys
/// meet), written with duplicate keys at times.
fn document() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (-1e6f64..1e6).prop_map(|x| format!("{x:?}")),
        "[a-z0-9.]{0,4}".prop_map(|s| format!("\"{s}\"")),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            proptest::collection::vec((proptest::sample::select(vec!["a", "b", "0", "1"]), inner), 0..5).prop_map(
                |m| format!("{{{}}}", m.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect::<Vec<_>>().join(","))
            ),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn picking_finds_what_the_whole_document_holds(
        text in document(),
        paths in proptest::collection::vec(proptest::collection::vec(proptest::sample::select(vec!["a", "b", "0", "1"]), 1..4), 1..5),
    ) {
        let paths: Vec<String> = paths.iter().map(|p| p.join(".")).collect();
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        // Declining is always allowed; an answer must be lookup's (checked inside).
        let _ = picked_as_whole(&text, &paths);
    }
}
