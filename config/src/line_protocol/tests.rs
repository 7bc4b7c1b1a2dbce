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
    let back = decode(&text, Precision::Ns, 0).unwrap();
    assert_eq!(back, rs, "{text}");
    assert!(text.contains(",source=lab pesticide=0.001,bod=12.5,not_detected=\"pesticide\" "), "{text}");
    assert!(text.contains("flow=123456789.125,quality=\"maintenance\""), "{text}");
    assert!(text.contains("emission,factory=a\\ b\\,c\\=d,point=stack\\ 1 so2=-0 -5"), "{text}");
}

#[test]
fn decodes_precision_integers_and_ignores_foreign_tags() {
    let body = "# comment\n\neffluent,factory=f,point=p,host=gw1 cod=85i,bod=3u 1700000000\r\n";
    let rs = decode(body, Precision::S, 0).unwrap();
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0].value, 85.0);
    assert_eq!(rs[1].value, 3.0);
    assert_eq!(rs[0].time_ns, 1_700_000_000_000_000_000);
    let rs = decode("effluent,factory=f,point=p cod=1", Precision::Ms, 42).unwrap();
    assert_eq!(rs[0].time_ns, 42, "a line without timestamp takes the receive time");
}

#[test]
fn refuses_bad_lines_naming_the_line() {
    let cases = [
        ("effluent,factory=f,point=p cod=1 1\nwater,factory=f,point=p cod=1 1", 2, "unknown kind \"water\""),
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
        let e = decode(body, precision, 0).unwrap_err();
        assert_eq!(e.line, line, "{body}: {e}");
        assert!(e.reason.contains(reason), "{body}: {e}");
    }
}

#[test]
fn precision_spellings() {
    assert_eq!(Precision::parse("ms"), Some(Precision::Ms));
    assert_eq!(Precision::parse("u"), Some(Precision::Us));
    assert_eq!(Precision::parse("h"), None);
}
