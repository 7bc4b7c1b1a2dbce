//! One parsed line, whichever parser read it: a fast path for the plain lines agents and
//! Telegraf send (no escapes, no quoted strings), InfluxData's parser for everything else.
//!
//! The fast path takes a line only when it is sure InfluxData's parser reads it the same;
//! anything unusual (a backslash, a quote, a tab, an empty key, a number in a form it does
//! not know) goes to InfluxData's parser, which then accepts or names the problem. The
//! equivalence is fuzzed differentially (`tests.rs`); `scripts/bench-line-protocol.sh`
//! measures both.

use influxdb_line_protocol::{FieldValue, ParsedLine};

/// A field's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Value<'a> {
    /// A float.
    F64(f64),
    /// An integer (`i`).
    I64(i64),
    /// An unsigned integer (`u`).
    U64(u64),
    /// A boolean.
    Bool(bool),
    /// A quoted string, unescaped.
    Str(&'a str),
}

/// A line: measurement, tags and fields in their order, the timestamp if any.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Line<'a> {
    // Field by field as InfluxData's `ParsedLine`, so that both parsers meet here.
    pub(super) measurement: &'a str,
    pub(super) tags: Vec<(&'a str, &'a str)>,
    pub(super) fields: Vec<(&'a str, Value<'a>)>,
    pub(super) timestamp: Option<i64>,
}

impl<'a> Line<'a> {
    /// The value of a tag (the last, if repeated).
    pub(super) fn tag(&self, key: &str) -> Option<&'a str> {
        self.tags.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// A line of InfluxData's parser, borrowed.
    pub(super) fn of(parsed: &'a ParsedLine<'_>) -> Line<'a> {
        Line {
            measurement: parsed.series.measurement.as_str(),
            tags: parsed.series.tag_set.iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            fields: parsed
                .field_set
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        FieldValue::F64(v) => Value::F64(*v),
                        FieldValue::I64(v) => Value::I64(*v),
                        FieldValue::U64(v) => Value::U64(*v),
                        FieldValue::Boolean(v) => Value::Bool(*v),
                        FieldValue::String(s) => Value::Str(s.as_str()),
                    };
                    (k.as_str(), v)
                })
                .collect(),
            timestamp: parsed.timestamp,
        }
    }

    /// An empty line, to be filled by [`Line::fast_into`].
    pub(super) fn empty() -> Line<'a> {
        Line { measurement: "", tags: Vec::new(), fields: Vec::new(), timestamp: None }
    }

    /// The fast path: `Some` only for a line InfluxData's parser would read identically.
    #[cfg(test)]
    pub(super) fn fast(text: &'a str) -> Option<Line<'a>> {
        let mut line = Line::empty();
        line.fast_into(text).then_some(line)
    }

    /// [`Line::fast`] into this line, reusing its buffers (a body's lines all borrow the
    /// body, so one `Line` serves them all without an allocation per line). `false` (the
    /// line's content then unspecified) where the fast path does not take the text.
    pub(super) fn fast_into(&mut self, text: &'a str) -> bool {
        self.tags.clear();
        self.fields.clear();
        self.fill(text).is_some()
    }

    fn fill(&mut self, text: &'a str) -> Option<()> {
        let bytes = text.as_bytes();
        // No early exit: the whole scan is vectorised, several times faster on a line's bytes.
        let special = bytes.iter().fold(false, |any, &b| any | matches!(b, b'\\' | b'"' | b'\t' | b'\n' | b'\0'));
        if bytes.first().is_none_or(|&b| b == b' ' || b == b'#') || special {
            return None;
        }
        // series, 1+ spaces, fields, then optionally 1+ spaces, timestamp and trailing spaces;
        // spaces after the fields without a timestamp are an error to InfluxData's parser.
        let (series, rest) = split_once_byte(text, b' ')?;
        let rest = rest.trim_start_matches(' ');
        let (field_set, rest) = match split_once_byte(rest, b' ') {
            Some((fields, rest)) => (fields, Some(rest)),
            None => (rest, None),
        };
        let timestamp = match rest {
            None => None,
            Some(rest) => {
                let rest = rest.trim_start_matches(' ');
                let (t, trailing) = split_once_byte(rest, b' ').unwrap_or((rest, ""));
                if t.is_empty() || trailing.bytes().any(|b| b != b' ') {
                    return None;
                }
                Some(integer(t)?.parse::<i64>().ok()?)
            }
        };
        if field_set.is_empty() {
            return None;
        }
        let (measurement, tag_set) = match split_once_byte(series, b',') {
            Some((m, tags)) => (m, Some(tags)),
            None => (series, None),
        };
        if measurement.is_empty() {
            return None;
        }
        for pair in tag_set.into_iter().flat_map(|t| split_byte(t, b',')) {
            let (k, v) = split_once_byte(pair, b'=')?;
            if k.is_empty() || v.is_empty() {
                return None;
            }
            self.tags.push((k, v));
        }
        for pair in split_byte(field_set, b',') {
            let (k, v) = split_once_byte(pair, b'=')?;
            if k.is_empty() {
                return None;
            }
            self.fields.push((k, value(v)?));
        }
        self.measurement = measurement;
        self.timestamp = timestamp;
        Some(())
    }
}

/// `str::split_once` for an ASCII separator, found with `memchr` alone, where the `char`
/// pattern's searcher adds a call to `memcmp` per match (a body has tens of them a line).
fn split_once_byte(s: &str, sep: u8) -> Option<(&str, &str)> {
    // A field (`cod=61.5`) is found faster by a plain scan than through memchr's dispatch.
    let at = match s.len() < 32 {
        true => s.bytes().position(|b| b == sep),
        false => memchr::memchr(sep, s.as_bytes()),
    }?;
    Some((&s[..at], &s[at + 1..]))
}

/// `str::split` for an ASCII separator (see [`split_once_byte`]).
pub(super) fn split_byte(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match split_once_byte(r, sep) {
            Some((part, after)) => {
                rest = Some(after);
                Some(part)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// `D+` or `D+.D+` of at most 15 digits (what sensors send: `61.5`, `7.02`, `1200`), read
/// as the integer of its digits divided by a power of ten: both exact in an `f64`, and IEEE
/// division rounds correctly, so the result is `str::parse`'s to the bit (Clinger's fast
/// path) without its general machinery. `None` for anything else (then `str::parse`).
fn short_decimal(s: &str) -> Option<f64> {
    const POWERS: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    let bytes = s.as_bytes();
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let (mut digits, mut point, mut value) = (0usize, None, 0u64);
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                value = value * 10 + u64::from(b - b'0');
                digits += 1;
            }
            b'.' if point.is_none() && i > 0 && i + 1 < bytes.len() => point = Some(i),
            _ => return None,
        }
    }
    if digits > 15 {
        return None;
    }
    let decimals = point.map_or(0, |p| bytes.len() - p - 1);
    Some(value as f64 / POWERS[decimals])
}

/// `-?[0-9]+`, as the text it is.
fn integer(s: &str) -> Option<&str> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A field value in one of the forms InfluxData's grammar gives: `-?D+i`, `D+u`,
/// `-?D+(.D+)?([eE][+-]?D+)?`, or a boolean spelling.
fn value(s: &str) -> Option<Value<'static>> {
    // What sensors send first: a short decimal is none of the other forms (all digits, one
    // point), and this spares the spellings' comparisons on every field.
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    if let Some(v) = short_decimal(unsigned) {
        return Some(Value::F64(if unsigned.len() < s.len() { -v } else { v }));
    }
    if let Some(i) = s.strip_suffix('i') {
        return Some(Value::I64(integer(i)?.parse().ok()?));
    }
    if let Some(u) = s.strip_suffix('u') {
        return digits(u).then(|| u.parse().ok().map(Value::U64))?;
    }
    match s {
        "t" | "T" | "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    let (mantissa, exponent) = match unsigned.bytes().position(|b| b == b'e' || b == b'E') {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let well_formed = match split_once_byte(mantissa, b'.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(mantissa),
    } && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    well_formed.then(|| s.parse().ok().map(Value::F64))?
}

#[cfg(test)]
mod tests {
    use influxdb_line_protocol::parse_lines;
    use proptest::prelude::*;

    use super::*;

    /// What InfluxData's parser makes of a line, as a [`Line`], or `None` if it refuses it.
    fn reference(text: &str) -> Option<String> {
        match parse_lines(text).next() {
            Some(Ok(parsed)) => Some(format!("{:?}", Line::of(&parsed))),
            _ => None,
        }
    }

    /// Whenever the fast path takes a line, InfluxData's parser reads the same line.
    fn agrees(text: &str) -> Result<(), TestCaseError> {
        if let Some(fast) = Line::fast(text) {
            prop_assert_eq!(Some(format!("{fast:?}")), reference(text), "line {:?}", text);
        }
        Ok(())
    }

    #[test]
    fn influxdatas_parser_refuses_spaces_after_fields_without_a_timestamp() {
        assert_eq!(reference("effluent cod=1 "), None);
        assert!(reference("effluent cod=1 5 ").is_some());
    }

    #[test]
    fn plain_lines_take_the_fast_path_and_agree() {
        for text in [
            "effluent,factory=f,point=p cod=85.25,bod=3i,tss=4u,ok=t,bad=FALSE 1795300000000000000",
            "effluent,factory=f,point=p cod=-1.5e-3,ph=7E2,x=-0,y=1.0e+5",
            "modbus,name=a=b,slave_id=1  cod_mg_l=12   -5   ",
            "m f=1",
        ] {
            assert!(Line::fast(text).is_some(), "{text}");
            agrees(text).expect("agrees");
        }
        for text in [
            "effluent,factory=a\\ b cod=1",
            "effluent cod=\"x\"",
            "effluent cod=1 ",
            " effluent cod=1",
            "effluent, cod=1",
            "effluent,a= cod=1",
            "effluent cod=1.",
            "effluent cod=.5",
            "effluent cod=+1",
            "effluent cod=1e",
            "effluent cod=9223372036854775808i",
            "effluent cod=1 1x",
            "# comment=1",
            "effluent\tcod=1",
            "effluent",
        ] {
            assert!(Line::fast(text).is_none(), "{text}");
        }
    }

    /// The differential fuzz means something only if the fast path takes many of its lines.
    #[test]
    fn the_noisy_generator_reaches_the_fast_path() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let taken = (0..4_000)
            .filter(|_| Line::fast(&noisy_line().new_tree(&mut runner).expect("tree").current()).is_some())
            .count();
        eprintln!("the fast path took {taken} of 4000 noisy lines");
        assert!(taken >= 80, "the fast path took only {taken} of 4000 generated lines");
    }

    /// A line in the shape of line protocol whose every part is a run of tricky tokens.
    fn noisy_line() -> impl Strategy<Value = String> {
        let part = || proptest::collection::vec(token_piece(), 1..4).prop_map(|v| v.concat());
        (
            part(),
            proptest::collection::vec((part(), part()), 0..3),
            proptest::collection::vec(
                (part(), prop_oneof![3 => "-?[0-9]{1,3}(\\.[0-9]{1,2})?([eE]-?[0-9])?[iu]?", 1 => part()]),
                1..3,
            ),
            proptest::option::of(part()),
            prop_oneof![Just(""), Just(" "), Just("  ")],
        )
            .prop_map(|(m, tags, fields, ts, trail)| {
                let mut text = m;
                for (k, v) in tags {
                    text.push_str(&format!(",{k}={v}"));
                }
                let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                text.push(' ');
                text.push_str(&fields.join(","));
                if let Some(ts) = ts {
                    text.push(' ');
                    text.push_str(&ts);
                }
                text.push_str(trail);
                text
            })
    }

    fn token() -> impl Strategy<Value = String> {
        proptest::collection::vec(token_piece(), 1..24).prop_map(|v| v.concat())
    }

    fn token_piece() -> impl Strategy<Value = &'static str> {
        let pieces = prop_oneof![
            8 => Just("1"),
            5 => Just("x"),
            3 => Just("7"),
            2 => Just("42"),
            2 => Just("cod"),
            2 => Just("."),
            2 => Just("-"),
            2 => Just("e"),
            2 => Just("i"),
            2 => Just("u"),
            1 => Just("0"),
            1 => Just(","),
            1 => Just("="),
            1 => Just(" "),
            1 => Just("  "),
            1 => Just("E"),
            1 => Just("+"),
            1 => Just("t"),
            1 => Just("true"),
            1 => Just("F"),
            1 => Just("9223372036854775808"),
            1 => Just("18446744073709551616"),
            1 => Just("effluent"),
            1 => Just("\\"),
            1 => Just("\""),
            1 => Just("\t"),
            1 => Just("\r"),
            1 => Just("#"),
            1 => Just("ก"),
        ];
        pieces
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        #[test]
        fn the_fast_path_agrees_with_influxdatas_parser(text in token(), line in noisy_line()) {
            agrees(&text)?;
            agrees(&line)?;
        }

        #[test]
        fn the_fast_path_agrees_on_well_formed_lines(
            m in "[a-z]{1,6}",
            tags in proptest::collection::vec(("[a-z_=]{0,4}", "[a-z0-9=-]{0,4}"), 0..3),
            fields in proptest::collection::vec(("[a-z]{1,3}", "-?[0-9]{1,3}(\\.[0-9]{0,2})?([eE][+-]?[0-9]{0,2})?[iu]?|[tTfF]|true|False"), 1..4),
            ts in proptest::option::of("-?[0-9]{1,20}"),
            gap in " {1,2}",
            trail in " {0,2}",
        ) {
            let mut text = m;
            for (k, v) in tags {
                text.push_str(&format!(",{k}={v}"));
            }
            text.push(' ');
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            text.push_str(&fields.join(","));
            if let Some(ts) = ts {
                text.push_str(&gap);
                text.push_str(&ts);
            }
            text.push_str(&trail);
            agrees(&text)?;
        }
    }
}
