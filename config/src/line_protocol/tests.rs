use std::borrow::Cow;

use super::*;
use crate::reading::{Kind, Quality, Reading, Source};

fn reading(p: &str, v: f64, t: i64) -> Reading {
    Reading::new(Kind::Effluent, "mm-01", "outfall-1", p, v, t)
}

#[test]
fn encodes_one_wide_line_per_instant() {
    let rs = vec![
        reading("cod", 85.2, 1_700_000_000_000_000_000),
        reading("ph", 7.0, 1_700_000_000_000_000_000),
        reading("cod", 90.0, 1_700_000_060_000_000_000),
    ];
    assert_eq!(
        encode(&rs),
        "effluent,factory=mm-01,point=outfall-1 cod=85.2,ph=7 1700000000000000000\n\
         effluent,factory=mm-01,point=outfall-1 cod=90 1700000060000000000\n"
    );
}

#[test]
fn round_trips_exactly_with_quality_lab_and_not_detected() {
    let t = 1_763_800_000_123_456_789;
    let mut lab = reading("pesticide", 0.001, t);
    lab.source = Source::Lab;
    lab.below_detection_limit = true;
    let mut lab2 = reading("bod", 12.5, t);
    lab2.source = Source::Lab;
    let rs = vec![
        reading("cod", 0.1 + 0.2, t),
        reading("tss", 1e-7, t),
        reading("flow", 123456789.125, t).with_quality(Quality::Maintenance),
        lab,
        lab2,
        Reading::new(Kind::Emission, "a b,c=d", "stack 1", "so2", -0.0, -5),
        Reading::new(Kind::Emission, "f", "s", "nox", f64::MAX, 0),
        Reading::new(Kind::Emission, "f", "s", "co", f64::MIN_POSITIVE, 0),
    ];
    let text = encode(&rs);
    let back = decode(&text, Precision::Ns, 0).expect("accepted");
    assert_eq!(back, rs, "{text}");
    assert!(text.contains(",source=lab pesticide=0.001,bod=12.5,not_detected=\"pesticide\" "), "{text}");
    assert!(text.contains("flow=123456789.125,quality=\"maintenance\""), "{text}");
    assert!(text.contains("emission,factory=a\\ b\\,c\\=d,point=stack\\ 1 so2=-0 -5"), "{text}");
}

#[test]
fn decodes_precision_integers_and_ignores_foreign_tags() {
    let body = "# comment\n\neffluent,factory=f,point=p,host=gw1 cod=85i,bod=3u 1700000000\r\n";
    let rs = decode(body, Precision::S, 0).expect("accepted");
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0].value, 85.0);
    assert_eq!(rs[1].value, 3.0);
    assert_eq!(rs[0].time_ns, 1_700_000_000_000_000_000);
    let rs = decode("effluent,factory=f,point=p cod=1", Precision::Ms, 42).expect("accepted");
    assert_eq!(rs[0].time_ns, 42, "a line without timestamp takes the receive time");
}

#[test]
fn refuses_bad_lines_naming_the_line() {
    let cases = [
        ("effluent,factory=f,point=p cod=1 1\nwater,factory=f,point=p cod=1 1", 2, "unknown measurement \"water\""),
        ("effluent,point=p cod=1 1", 1, "missing tag factory"),
        ("effluent,factory=f cod=1 1", 1, "missing tag point"),
        ("effluent,factory=f,point=p cod=\"high\" 1", 1, "field cod: a string"),
        ("effluent,factory=f,point=p cod=true 1", 1, "field cod: a boolean"),
        ("effluent,factory=f,point=p quality=\"valid\" 1", 1, "no numeric field"),
        ("effluent,factory=f,point=p cod=1,quality=\"good\" 1", 1, "unknown quality \"good\""),
        ("effluent,factory=f,point=p cod=1,not_detected=\"bod\" 1", 1, "names bod"),
        ("\n\neffluent,factory=f,point=p cod=1 1x", 3, "malformed line protocol"),
        ("effluent,factory=f,point=p cod=1 9223372036854775807", 1, "overflows"),
        ("effluent,factory=f,point=p,source=x cod=1 1", 1, "unknown source"),
    ];
    for (body, line, reason) in cases {
        let precision = if reason == "overflows" { Precision::S } else { Precision::Ns };
        let e = decode(body, precision, 0).expect_err("refused");
        assert_eq!(e.line, line, "{body}: {e}");
        assert!(e.reason.contains(reason), "{body}: {e}");
    }
}

#[test]
fn precision_spellings() {
    assert_eq!(Precision::parse("ms"), Some(Precision::Ms));
    assert_eq!(Precision::parse("u"), Some(Precision::Us));
    assert_eq!(Precision::parse("h"), None);
    assert_eq!(Precision::parse_v1("h"), Some(Precision::H));
    assert_eq!(Precision::parse_v1("m"), Some(Precision::M));
    assert_eq!(Precision::parse_v1("n"), Some(Precision::Ns));
    assert_eq!(Precision::H.ns_per_unit(), 3_600_000_000_000);
}

#[test]
fn takes_the_whole_grammar() {
    // Escaped tag values and field keys, quoted strings holding escapes and a newline,
    // integers, unsigned, exponents, tabs are not separators in values, comments anywhere.
    let body = concat!(
        "# a comment line\n",
        "   \n",
        "effluent,factory=a\\ b\\,c\\=d,point=out\\\\fall,host=\"gw\" cod=-1.5e2,bod=3i,tss=4u,quality=\"sus\\\"pect\" 5\n",
        "effluent,point=p,factory=f ph=70e-1,not_detected=\"ph\",note=\"multi\nline\" -2\n",
        "effluent,factory=f,point=p my\\ param\\=x=1e0 3\r\n",
    );
    let e = decode(body, Precision::Ns, 0).expect_err("refused");
    assert_eq!(e.line, 3);
    assert!(e.reason.contains(r#"unknown quality "sus"pect""#), "{e}");
    let body = body.replace("sus\\\"pect", "suspect");
    let e = decode(&body, Precision::Ns, 0).expect_err("refused");
    assert_eq!(e.line, 4, "the newline inside a quoted string does not split the line");
    assert!(e.reason.contains("field note: a string"), "{e}");
    let body = body.replace(",note=\"multi\nline\"", "");
    let rs = decode(&body, Precision::Ns, 0).expect("accepted");
    let mut expected = vec![
        Reading::new(Kind::Effluent, "a b,c=d", "out\\fall", "cod", -150.0, 5).with_quality(Quality::Suspect),
        Reading::new(Kind::Effluent, "a b,c=d", "out\\fall", "bod", 3.0, 5).with_quality(Quality::Suspect),
        Reading::new(Kind::Effluent, "a b,c=d", "out\\fall", "tss", 4.0, 5).with_quality(Quality::Suspect),
        Reading::new(Kind::Effluent, "f", "p", "ph", 7.0, -2),
        Reading::new(Kind::Effluent, "f", "p", "my param=x", 1.0, 3),
    ];
    expected[3].below_detection_limit = true;
    assert_eq!(rs, expected);
    assert_eq!(decode(&encode(&rs), Precision::Ns, 0).expect("accepted"), rs);
}

#[test]
fn refuses_what_is_not_a_finite_number() {
    for (field, reason) in [
        ("cod=NaN", "field cod: \"NaN\" is not a number"),
        ("cod=inf", "field cod: \"inf\" is not a number"),
        ("bod=5,cod=-Infinity", "field cod: \"-Infinity\" is not a number"),
        ("cod=high", "field cod: \"high\" is not a number"),
        ("cod=1e400", "field cod: inf is not a finite number"),
        ("cod=-1e400", "field cod: -inf is not a finite number"),
        ("cod=t", "field cod: a boolean"),
        ("cod=FALSE", "field cod: a boolean"),
        ("cod=9223372036854775808i", "9223372036854775808 is not an integer of its type"),
        ("cod=-1u", "field cod: \"-1u\" is not a number"),
        ("cod", "malformed line protocol: expected <kind>,factory=<id>,point=<id> <parameter>=<number>"),
    ] {
        let body = format!("effluent,factory=f,point=p {field} 1");
        let e = decode(&body, Precision::Ns, 0).expect_err("refused");
        assert!(e.reason.contains(reason), "{field}: {e}");
        assert!(!e.reason.contains("TakeWhile") && !e.reason.contains("No fields"), "{field}: {e}");
    }
    let e = decode("effluent,factory=f\\\n,point=p cod=1 1", Precision::Ns, 0);
    assert!(e.is_err(), "a control character in a name: {e:?}");
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    /// Decodes `body`; whatever it accepts must re-encode and decode to the same readings.
    fn accepted_round_trips(body: &str, precision: Precision) -> Result<(), TestCaseError> {
        if let Ok(readings) = decode(body, precision, 1_234) {
            let text = encode(&readings);
            let back = decode(&text, Precision::Ns, 0);
            prop_assert_eq!(back.as_ref(), Ok(&readings), "body {:?} re-encoded as {:?}", body, text);
        }
        Ok(())
    }

    fn precision() -> impl Strategy<Value = Precision> {
        prop_oneof![
            Just(Precision::Ns),
            Just(Precision::Us),
            Just(Precision::Ms),
            Just(Precision::S),
            Just(Precision::H)
        ]
    }

    /// Names drawn from the characters the grammar treats specially.
    fn piece() -> impl Strategy<Value = String> {
        proptest::string::string_regex(r##"[a-z0-9_\\ ,="#\n\t\rµ-]{0,8}"##).expect("regex")
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<f64>().prop_map(|v| v.to_string()),
            any::<f64>().prop_map(|v| format!("{v:e}")),
            any::<i64>().prop_map(|v| format!("{v}i")),
            any::<u64>().prop_map(|v| format!("{v}u")),
            prop_oneof![Just("t"), Just("true"), Just("F"), Just("NaN"), Just("-inf"), Just("1.")]
                .prop_map(String::from),
            piece().prop_map(|s| format!("\"{s}\"")),
            Just("\"valid\"".to_string()),
            Just("\"suspect\"".to_string()),
            Just("\"cod bod\"".to_string()),
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop_oneof![Just("cod"), Just("bod"), Just("quality"), Just("not_detected"), Just("ph")].prop_map(String::from),
            1 => piece(),
        ]
    }

    /// Lines close to canonical ones, so that many are accepted and many fail late.
    fn near_valid_line() -> impl Strategy<Value = String> {
        let measurement = prop_oneof![
            3 => Just("effluent".to_string()),
            1 => Just("emission".to_string()),
            1 => Just("ambient".to_string()),
            1 => piece()
        ];
        let tag = (
            prop_oneof![
                1 => Just("factory".to_string()),
                1 => Just("point".to_string()),
                1 => Just("source".to_string()),
                3 => Just("host".to_string()),
                1 => piece()
            ],
            prop_oneof![2 => Just("lab".to_string()), 1 => piece()],
        );
        let field = (key(), prop_oneof![3 => (-1e9..1e9f64).prop_map(|v| v.to_string()), 2 => value()]);
        let timestamp = proptest::option::of(any::<i64>().prop_map(|t| t.to_string()));
        (measurement, proptest::collection::vec(tag, 0..4), proptest::collection::vec(field, 0..4), timestamp).prop_map(
            |(m, tags, fields, ts)| {
                let mut line = m;
                for (k, v) in [("factory".to_string(), "f".to_string()), ("point".to_string(), "p".to_string())]
                    .into_iter()
                    .chain(tags)
                {
                    line.push_str(&format!(",{k}={v}"));
                }
                for (i, (k, v)) in fields.iter().enumerate() {
                    line.push(if i == 0 { ' ' } else { ',' });
                    line.push_str(&format!("{k}={v}"));
                }
                if let Some(ts) = ts {
                    line.push(' ');
                    line.push_str(&ts);
                }
                line
            },
        )
    }

    fn mappings() -> Vec<Mapping> {
        let toml = r#"
            measurement = "modbus"
            tags = { name = "analyser" }
            kind = "effluent"
            point_tag = "slave_id"
            point_values = { "1" = "outfall-1", "2" = "outfall 2" }
            other_fields = "ignore"
            fields = { cod = { parameter = "cod", unit = "g/L" }, q = { parameter = "flow", unit = "L/s" }, t = { parameter = "temp", unit = "degF" } }
        "#;
        vec![toml::from_str(toml).expect("mapping")]
    }

    /// Lines in the shape of a Telegraf modbus input, some of them off.
    fn mapped_line() -> impl Strategy<Value = String> {
        let tags = (
            prop_oneof![4 => Just("analyser".to_string()), 1 => piece()],
            prop_oneof![2 => Just("1".to_string()), 2 => Just("2".to_string()), 1 => piece()],
        );
        let key = prop_oneof![
            2 => Just("cod".to_string()),
            2 => Just("q".to_string()),
            2 => Just("t".to_string()),
            1 => piece()
        ];
        let value = prop_oneof![3 => (-1e6..1e6f64).prop_map(|v| v.to_string()), 1 => value()];
        let field = (key, value);
        let timestamp = proptest::option::of(any::<i64>().prop_map(|t| t.to_string()));
        (tags, proptest::collection::vec(field, 0..4), timestamp).prop_map(|((name, slave), fields, ts)| {
            let mut line = format!("modbus,name={name},slave_id={slave},type=holding_register");
            for (i, (k, v)) in fields.iter().enumerate() {
                line.push(if i == 0 { ' ' } else { ',' });
                line.push_str(&format!("{k}={v}"));
            }
            if let Some(ts) = ts {
                line.push(' ');
                line.push_str(&ts);
            }
            line
        })
    }

    fn name() -> impl Strategy<Value = String> {
        // The encoder's domain: InfluxData's parser refuses any name ending in a backslash.
        proptest::string::string_regex(r##"[a-zA-Z0-9_\\ ,="#.µก-ฮ-]{0,9}[a-zA-Z0-9_ ,="#.µก-ฮ-]"##).expect("regex")
    }

    fn reading() -> impl Strategy<Value = Reading> {
        (
            prop_oneof![Just(Kind::Effluent), Just(Kind::Emission), Just(Kind::Ambient)],
            name(),
            name(),
            name(),
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
            any::<i64>(),
            prop_oneof![Just(Quality::Valid), Just(Quality::Suspect), Just(Quality::Calibration)],
            any::<bool>(),
        )
            .prop_map(|(kind, factory, point, parameter, value, time_ns, quality, lab)| {
                let mut r = Reading::new(kind, &factory, &point, &parameter, value, time_ns).with_quality(quality);
                if lab {
                    r.source = Source::Lab;
                }
                r
            })
    }

    /// The generators must reach the accepting paths, or the round-trip properties test nothing.
    #[test]
    fn the_generators_produce_accepted_lines_too() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let mappings = mappings();
        let cx =
            DecodeContext { precision: Precision::Ns, default_time_ns: 0, mappings: &mappings, factory: Some("f") };
        let (mut canonical, mut mapped) = (0, 0);
        for _ in 0..1_000 {
            let line = near_valid_line().new_tree(&mut runner).expect("tree").current();
            canonical += usize::from(decode(&line, Precision::Ns, 0).is_ok_and(|r| !r.is_empty()));
            let line = mapped_line().new_tree(&mut runner).expect("tree").current();
            mapped += usize::from(decode_with(&line, &cx, |_, _| Ok(())).is_ok());
        }
        eprintln!("accepted: {canonical} near-valid, {mapped} mapped lines of 1000 each");
        assert!(canonical >= 100, "only {canonical} of 1000 near-valid lines accepted");
        assert!(mapped >= 100, "only {mapped} of 1000 mapped lines accepted");
    }

    /// Found by the fuzz test: a huge value times the mapping's unit factor is infinite,
    /// which no line can carry; it is refused, naming the field.
    #[test]
    fn a_mapped_value_that_overflows_its_conversion_is_refused() {
        let mappings = mappings();
        let cx =
            DecodeContext { precision: Precision::Ns, default_time_ns: 1, mappings: &mappings, factory: Some("f") };
        let line = "modbus,name=analyser,slave_id=1,type=holding_register cod=-3.0841039608694093e305";
        let error = decode_with(line, &cx, |_, _| Ok(())).expect_err("refused");
        assert_eq!(error.line, 1);
        assert!(
            error.reason.contains("field cod") && error.reason.contains("not a finite number in mg/L"),
            "{error:?}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), p in precision()) {
            accepted_round_trips(&String::from_utf8_lossy(&bytes), p)?;
        }

        #[test]
        fn near_valid_lines_round_trip_when_accepted(
            lines in proptest::collection::vec(near_valid_line(), 1..5),
            sep in prop_oneof![Just("\n"), Just("\r\n"), Just("\n# comment\n\n")],
            p in precision(),
        ) {
            accepted_round_trips(&lines.join(sep), p)?;
            for line in &lines {
                accepted_round_trips(line, p)?;
            }
        }

        #[test]
        fn mapped_lines_become_canonical_readings_that_round_trip(
            lines in proptest::collection::vec(mapped_line(), 1..5),
            p in precision(),
        ) {
            let mappings = mappings();
            let cx = DecodeContext { precision: p, default_time_ns: 1_234, mappings: &mappings, factory: Some("f") };
            let mut readings = Vec::new();
            let decoded = decode_with(&lines.join("\n"), &cx, |_, r| {
                readings.append(r);
                Ok(())
            });
            if decoded.is_ok() {
                let text = encode(&readings);
                prop_assert_eq!(decode(&text, Precision::Ns, 0), Ok(readings), "{}", text);
            }
        }

        #[test]
        fn encoded_readings_decode_exactly(readings in proptest::collection::vec(reading(), 0..12)) {
            let text = encode(&readings);
            prop_assert_eq!(decode(&text, Precision::Ns, 0), Ok(readings), "{}", text);
        }
    }
}

/// Rows borrow their names from the body where no unescaping is needed, own them where
/// InfluxData's parser unescaped them, and are the readings `decode` gives, field by field.
#[test]
fn rows_borrow_plain_names_and_equal_the_decoded_readings() {
    let body = "effluent,factory=f1,point=outfall-1 cod=85.25,bod=3i 1795300000000000000\n\
                emission,factory=f1,point=stack-1,source=lab so2=4u,quality=\"suspect\",not_detected=\"so2\" 1795300000000000001\n\
                effluent,factory=f\\ 2,point=outfall-1 ph=7 1795300000000000002\n\
                modbus,name=analyser cod_reg=12.5 1795300000000000003\n";
    let mapping: Mapping = toml::from_str(
        "measurement = \"modbus\"\nkind = \"effluent\"\npoint = \"outfall-2\"\n[fields]\ncod_reg = { parameter = \"cod\", unit = \"ug/L\" }",
    )
    .expect("mapping");
    let mappings = [mapping];
    let cx = DecodeContext { precision: Precision::Ns, default_time_ns: 0, mappings: &mappings, factory: Some("f1") };
    let mut rows = Vec::new();
    decode_rows(body, &cx, |_, r| {
        rows.append(r);
        Ok(())
    })
    .expect("decodes");
    let mut readings = Vec::new();
    decode_with(body, &cx, |_, r| {
        readings.append(r);
        Ok(())
    })
    .expect("decodes");
    assert_eq!(rows.iter().map(Row::to_reading).collect::<Vec<_>>(), readings);
    assert_eq!(rows.len(), 5);
    let borrowed = |c: &Cow<'_, str>| matches!(c, Cow::Borrowed(_));
    assert!(borrowed(&rows[0].factory) && borrowed(&rows[0].parameter), "a plain line's names are the body's");
    assert_eq!((rows[2].quality, rows[2].source, rows[2].below_detection_limit), (Quality::Suspect, Source::Lab, true));
    assert_eq!(rows[3].factory, "f 2", "unescaped");
    assert!(!borrowed(&rows[3].factory), "an unescaped name is owned");
    assert_eq!((rows[4].parameter.as_ref(), rows[4].value, rows[4].point.as_ref()), ("cod", 0.0125, "outfall-2"));
}

proptest::proptest! {
    /// The quick splitter agrees with InfluxData's on every body it is used for (no quote, no
    /// backslash), and InfluxData's is used for every other.
    #[test]
    fn the_quick_line_splitter_agrees_with_influxdatas(
        plain in "[a-z =,\n\r#0-9]{0,80}",
        any in "[a-z =,\"\\\\\n\r#0-9]{0,80}",
    ) {
        for body in [plain, any] {
            let ours: Vec<&str> = lines(&body).collect();
            let theirs: Vec<&str> = influxdb_line_protocol::split_lines(&body).collect();
            proptest::prop_assert_eq!(ours, theirs);
        }
    }
}

proptest::proptest! {
    /// Short decimals read by the quick path are `str::parse`'s, bit for bit.
    #[test]
    fn short_decimals_are_read_as_str_parse_reads_them(
        whole in "-?[0-9]{1,12}",
        fraction in proptest::option::of("[0-9]{1,8}"),
    ) {
        let text = match &fraction {
            Some(f) => format!("{whole}.{f}"),
            None => whole.clone(),
        };
        let line = format!("effluent,factory=f1,point=p1 cod={text} 1");
        let want: f64 = text.parse().expect("a number");
        let got = decode(&line, Precision::Ns, 0).expect("decodes");
        proptest::prop_assert_eq!(got[0].value.to_bits(), want.to_bits(), "{}", text);
    }
}
