//! Prometheus text exposition (format 0.0.4), shared by the agent's and the server's
//! `/metrics`: metric families with their `# HELP` and `# TYPE` lines, label values escaped,
//! numbers as Prometheus reads them (`+Inf`, `-Inf`, `NaN`), and a histogram of atomics
//! cheap enough for a hot path.
//!
//! Hand-written rather than the `prometheus-client` crate: both programs compute most
//! figures at scrape time from state they keep anyway (the outbox's ledger, the store, the
//! alert book), which a registry of live metric objects would only duplicate; what remains
//! is a few atomic counters and one histogram.
//!
//! ```
//! use eitwatch_config::prometheus::{Exposition, Type};
//! let mut out = Exposition::new();
//! out.family("eitwatch_example_total", "Things done.", Type::Counter)
//!     .sample(&[("kind", "a \"quoted\" one")], 3.0);
//! assert_eq!(
//!     out.finish(),
//!     "# HELP eitwatch_example_total Things done.\n# TYPE eitwatch_example_total counter\n\
//!      eitwatch_example_total{kind=\"a \\\"quoted\\\" one\"} 3\n"
//! );
//! ```

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The `Content-Type` of a scrape.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Only goes up (its name ends `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
}

impl Type {
    fn as_str(self) -> &'static str {
        match self {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
        }
    }
}

/// A scrape being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// One family's samples, written after its `# HELP` and `# TYPE` lines.
#[derive(Debug)]
pub struct Family<'a> {
    out: &'a mut String,
    name: &'a str,
}

impl Exposition {
    /// An empty scrape.
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a family: its help and type lines; its samples follow through the result.
    pub fn family<'a>(&'a mut self, name: &'a str, help: &str, kind: Type) -> Family<'a> {
        debug_assert!(valid_name(name), "metric name {name:?}");
        debug_assert!(kind != Type::Counter || name.ends_with("_total"), "counter {name} must end _total");
        header(&mut self.out, name, help, kind.as_str());
        Family { out: &mut self.out, name }
    }

    /// A family of one unlabelled sample.
    pub fn single(&mut self, name: &str, help: &str, kind: Type, value: f64) {
        self.family(name, help, kind).sample(&[], value);
    }

    /// A histogram family: `<name>_bucket{le=…}` (cumulative, ending with `+Inf`),
    /// `<name>_sum` and `<name>_count`, for each labelled snapshot.
    pub fn histogram(&mut self, name: &str, help: &str, series: &[(&[(&str, &str)], HistogramSnapshot)]) {
        debug_assert!(valid_name(name), "metric name {name:?}");
        header(&mut self.out, name, help, "histogram");
        for (labels, h) in series {
            let mut cumulative = 0;
            let bucket = format!("{name}_bucket");
            for (i, bound) in h.bounds.iter().enumerate() {
                cumulative += h.counts[i];
                let le = number(*bound);
                sample(&mut self.out, &bucket, labels, Some(("le", &le)), cumulative as f64);
            }
            sample(&mut self.out, &bucket, labels, Some(("le", "+Inf")), h.count as f64);
            sample(&mut self.out, &format!("{name}_sum"), labels, None, h.sum);
            sample(&mut self.out, &format!("{name}_count"), labels, None, h.count as f64);
        }
    }

    /// Appends text already in the exposition format (another part's families).
    pub fn append(&mut self, text: &str) {
        self.out.push_str(text);
    }

    /// The scrape's text.
    pub fn finish(self) -> String {
        self.out
    }
}

impl Family<'_> {
    /// One sample with its labels (name, value), in the order given.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        sample(self.out, self.name, labels, None, value);
        self
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", escape(help, false));
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], extra: Option<(&str, &str)>, value: f64) {
    out.push_str(name);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        for (i, (k, v)) in labels.iter().copied().chain(extra).enumerate() {
            debug_assert!(valid_name(k) && !k.contains(':'), "label name {k:?}");
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape(v, true));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", number(value));
}

/// A value as the exposition format writes it: integers without a fraction, `+Inf`,
/// `-Inf`, `NaN`.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's shortest round-trip form: `5`, `0.25`, `1e21`; Prometheus parses each.
        v.to_string()
    }
}

/// Escapes a help text (backslash, newline) or a label value (also the double quote).
pub fn escape(text: &str, label_value: bool) -> std::borrow::Cow<'_, str> {
    let quote = label_value && text.contains('"');
    if !quote && !text.contains(['\\', '\n']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if label_value => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A histogram of observations in fixed buckets, updated with atomics only (no lock), so
/// every request may observe into it.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket, not cumulative; the last one is past every bound.
    counts: Box<[AtomicU64]>,
    /// The sum in millionths of the unit, so that it adds atomically.
    sum_micros: AtomicU64,
}

/// A [`Histogram`] read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Upper bounds, ascending.
    pub bounds: &'static [f64],
    /// Observations per bucket (not cumulative), without those past the last bound.
    pub counts: Vec<u64>,
    /// Every observation, those past the last bound too.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
}

impl Histogram {
    /// Buckets with these ascending upper bounds (and one past them).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds ascend");
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Counts one observation (negative ones as 0).
    pub fn observe(&self, value: f64) {
        let value = value.max(0.0);
        let i = self.bounds.partition_point(|b| *b < value);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((value * 1e6).round() as u64, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        HistogramSnapshot {
            bounds: self.bounds,
            count: counts.iter().sum(),
            counts: counts[..self.bounds.len()].to_vec(),
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut out = Exposition::new();
        out.family("eitwatch_x", "Back\\slash and\nnewline \"kept\".", Type::Gauge)
            .sample(&[("a", "q\"b\\n\nl"), ("b", "ไทย")], -0.5);
        assert_eq!(
            out.finish(),
            "# HELP eitwatch_x Back\\\\slash and\\nnewline \"kept\".\n# TYPE eitwatch_x gauge\n\
             eitwatch_x{a=\"q\\\"b\\\\n\\nl\",b=\"ไทย\"} -0.5\n"
        );
    }

    #[test]
    fn numbers_are_written_as_prometheus_reads_them() {
        assert_eq!(number(5.0), "5");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(1_700_000_000.5), "1700000000.5");
    }

    #[test]
    fn a_histogram_is_cumulative_with_sum_and_count() {
        static BOUNDS: [f64; 3] = [0.01, 0.1, 1.0];
        let h = Histogram::new(&BOUNDS);
        for v in [0.005, 0.01, 0.05, 0.5, 2.0, -1.0] {
            h.observe(v);
        }
        let snap = h.snapshot();
        // 0.01 is in the bucket it bounds (le is "less than or equal"); -1 counts as 0.
        assert_eq!(snap.counts, vec![3, 1, 1]);
        assert_eq!(snap.count, 6);
        assert!((snap.sum - 2.565).abs() < 1e-9, "{}", snap.sum);
        let mut out = Exposition::new();
        out.histogram("eitwatch_t_seconds", "Time.", &[(&[("path", "/w")], snap)]);
        assert_eq!(
            out.finish(),
            "# HELP eitwatch_t_seconds Time.\n# TYPE eitwatch_t_seconds histogram\n\
             eitwatch_t_seconds_bucket{path=\"/w\",le=\"0.01\"} 3\n\
             eitwatch_t_seconds_bucket{path=\"/w\",le=\"0.1\"} 4\n\
             eitwatch_t_seconds_bucket{path=\"/w\",le=\"1\"} 5\n\
             eitwatch_t_seconds_bucket{path=\"/w\",le=\"+Inf\"} 6\n\
             eitwatch_t_seconds_sum{path=\"/w\"} 2.565\n\
             eitwatch_t_seconds_count{path=\"/w\"} 6\n"
        );
    }
}
