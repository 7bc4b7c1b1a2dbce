//! `eitwatch-load`: posts line-protocol batches to any InfluxDB-compatible write URL
//! (eitwatch, VictoriaMetrics, InfluxDB) from N connections for a fixed time, and prints
//! points/s and request latency.
//!
//! Every target gets the same bodies in the same order: body `k` carries the readings of
//! factory `k mod factories` (its `outfall-1`, `parameters` effluent parameters a line) for
//! `points / parameters` consecutive seconds after `--start-s`, so no point is ever sent
//! twice and a store that acknowledges only what is on disk writes every one. With a
//! token file (`<factory> <token>` lines), each body goes with its factory's token, as
//! each factory's agent would send it.
//!
//! ## `--realistic`
//! A history as analysers make it, sent once whole (`--readings`, no time limit): each
//! series a random walk at its instrument's resolution (COD 0.1 mg/L, pH 0.01, TDS 1 mg/L
//! …: noise of a few steps, a pull back to its level, now and then a plateau where the
//! value holds), one reading every `--interval-s` ending at `--end-s` (default now). Values
//! are the same at every run (a fixed seed per series), so every target stores the same
//! readings. Bodies go out as a back-fill after an outage does: `--connections` consecutive
//! bodies of one factory at a time, newest first, one per connection, so a factory's
//! consecutive bodies arrive in any order.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;

/// Effluent parameters, in the order they fill a line, with a compliant base value.
const PARAMETERS: [(&str, f64); 10] = [
    ("cod", 60.0),
    ("bod", 12.0),
    ("ph", 7.2),
    ("tss", 25.0),
    ("tds", 800.0),
    ("temp", 30.0),
    ("flow", 120.0),
    ("oil_grease", 2.0),
    ("tkn", 40.0),
    ("zn", 1.5),
];

#[derive(Parser, Debug)]
#[command(name = "eitwatch-load", about = "Line-protocol write load against any InfluxDB-compatible write URL")]
struct Cli {
    /// Full write URL, e.g. http://127.0.0.1:8086/api/v2/write?org=o&bucket=b&precision=ns
    #[arg(long)]
    url: String,
    /// A name for the target in the result line.
    #[arg(long, default_value = "target")]
    label: String,
    /// `<factory> <token>` per line; without it, no Authorization header is sent.
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// Factories `f0001`…; each has one effluent point `outfall-1`.
    #[arg(long, default_value_t = 1000)]
    factories: usize,
    /// Parameters per factory (at most 10).
    #[arg(long, default_value_t = 10)]
    parameters: usize,
    /// Points per body.
    #[arg(long, default_value_t = 5000)]
    points: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// How long to send.
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Timestamp of the first line, seconds since the epoch (default: 30 days ago).
    #[arg(long)]
    start_s: Option<i64>,
    /// Send one line (one point per series) per factory, one second before start, and stop:
    /// every series becomes active with one point.
    #[arg(long)]
    prime: bool,
    /// Random walks at instrument resolution, sent out of order (see the module doc).
    #[arg(long, conflicts_with = "prime")]
    realistic: bool,
    /// With --realistic: readings in all (factories × parameters series share them).
    #[arg(long, default_value_t = 20_000_000)]
    readings: u64,
    /// With --realistic: seconds between a series' readings.
    #[arg(long, default_value_t = 60)]
    interval_s: i64,
    /// With --realistic: time of the newest reading, seconds since the epoch (default: now,
    /// whole minutes).
    #[arg(long)]
    end_s: Option<i64>,
}

/// An instrument's reading of a parameter: its usual level, resolution (as decimals), and
/// the plausible band the walk stays in (in resolution steps).
struct Instrument {
    level: f64,
    decimals: u32,
    low: f64,
    high: f64,
}

/// In the order of `PARAMETERS`.
const INSTRUMENTS: [Instrument; 10] = [
    Instrument { level: 60.0, decimals: 1, low: 5.0, high: 400.0 }, // cod, mg/L
    Instrument { level: 12.0, decimals: 1, low: 1.0, high: 100.0 }, // bod, mg/L
    Instrument { level: 7.2, decimals: 2, low: 5.5, high: 9.5 },    // ph
    Instrument { level: 25.0, decimals: 1, low: 1.0, high: 200.0 }, // tss, mg/L
    Instrument { level: 800.0, decimals: 0, low: 100.0, high: 3000.0 }, // tds, mg/L
    Instrument { level: 30.0, decimals: 1, low: 20.0, high: 45.0 }, // temp, °C
    Instrument { level: 120.0, decimals: 1, low: 0.0, high: 600.0 }, // flow, m³/h
    Instrument { level: 2.0, decimals: 1, low: 0.0, high: 20.0 },   // oil_grease, mg/L
    Instrument { level: 40.0, decimals: 1, low: 1.0, high: 200.0 }, // tkn, mg/L
    Instrument { level: 1.5, decimals: 2, low: 0.0, high: 10.0 },   // zn, mg/L
];

/// SplitMix64: small, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One series' walk, in whole resolution steps.
struct Walk {
    rng: Rng,
    steps: i64,
    level: i64,
    low: i64,
    high: i64,
    /// Readings left on a plateau (the value holds).
    hold: u32,
}

impl Walk {
    fn new(series: u64, i: &Instrument) -> Walk {
        let scale = 10f64.powi(i.decimals as i32);
        let mut rng = Rng(series.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed);
        let level = (i.level * scale).round() as i64;
        // Factories differ: each series' level is within ±20 % of the parameter's.
        let spread = (level / 5).max(1);
        let level = level - spread + rng.below(2 * spread as u64 + 1) as i64;
        Walk {
            rng,
            steps: level,
            level,
            low: (i.low * scale).round() as i64,
            high: (i.high * scale).round() as i64,
            hold: 0,
        }
    }

    fn next(&mut self) -> i64 {
        if self.hold > 0 {
            self.hold -= 1;
            return self.steps;
        }
        let r = self.rng.next();
        if r % 100 == 0 {
            // A plateau: a sensor reading steady (or stuck) for 5 to 60 readings.
            self.hold = 5 + (r >> 8) as u32 % 56;
            return self.steps;
        }
        // Noise of -3..=3 steps, with a pull back to the series' level.
        let noise = ((r >> 16) % 7) as i64 - 3;
        let pull = (self.level - self.steps) / 64;
        self.steps = (self.steps + noise + pull).clamp(self.low, self.high);
        self.steps
    }
}

/// `steps` at `decimals` decimals, exactly (no binary rounding in the text).
fn decimal(out: &mut String, steps: i64, decimals: u32) {
    // Without core::fmt: formatting was most of this generator's CPU, which the target's
    // share of the machine's cores paid for.
    let mut digits = itoa::Buffer::new();
    if decimals == 0 {
        out.push_str(digits.format(steps));
    } else if steps < 0 {
        let scale = 10i64.pow(decimals);
        let _ = write!(out, "{}.{:0w$}", steps / scale, steps % scale, w = decimals as usize);
    } else {
        let scale = 10i64.pow(decimals);
        out.push_str(digits.format(steps / scale));
        out.push('.');
        let fraction = digits.format(steps % scale);
        out.extend(std::iter::repeat_n('0', (decimals as usize).saturating_sub(fraction.len())));
        out.push_str(fraction);
    }
}

/// Makes the realistic bodies in sending order on a thread of its own: (factory, body,
/// readings in it).
fn realistic_bodies(cli: &Cli, end_s: i64) -> tokio::sync::mpsc::Receiver<(usize, String, u64)> {
    let (tx, rx) = tokio::sync::mpsc::channel(cli.connections * 2);
    let (factories, parameters, connections) = (cli.factories, cli.parameters, cli.connections);
    let per_series = cli.readings / (factories * parameters) as u64;
    let lines = (cli.points / parameters).max(1) as u64;
    let blocks = per_series.div_ceil(lines);
    let interval_s = cli.interval_s;
    let start_s = end_s - (per_series as i64 - 1) * interval_s;
    std::thread::spawn(move || {
        let mut walks: Vec<Vec<Walk>> = (0..factories)
            .map(|f| (0..parameters).map(|p| Walk::new((f * 16 + p) as u64, &INSTRUMENTS[p])).collect())
            .collect();
        let mut first_block = 0;
        while first_block < blocks {
            let group = first_block..(first_block + connections as u64).min(blocks);
            for (f, walks) in walks.iter_mut().enumerate() {
                let name = factory(f);
                let mut bodies = Vec::new();
                for b in group.clone() {
                    let mut body = String::with_capacity(lines as usize * (40 + parameters * 14));
                    let rows = (b * lines..((b + 1) * lines).min(per_series)).collect::<Vec<_>>();
                    let series = format!("effluent,factory={name},point=outfall-1 ");
                    let mut time = itoa::Buffer::new();
                    for &i in &rows {
                        body.push_str(&series);
                        for (p, walk) in walks.iter_mut().enumerate() {
                            if p > 0 {
                                body.push(',');
                            }
                            body.push_str(PARAMETERS[p].0);
                            body.push('=');
                            decimal(&mut body, walk.next(), INSTRUMENTS[p].decimals);
                        }
                        body.push(' ');
                        body.push_str(time.format((start_s + i as i64 * interval_s) * 1_000_000_000));
                        body.push('\n');
                    }
                    bodies.push((f, body, rows.len() as u64 * parameters as u64));
                }
                // Newest first: the connections take them at once, and they land in any order.
                for item in bodies.into_iter().rev() {
                    if tx.blocking_send(item).is_err() {
                        return;
                    }
                }
            }
            first_block = group.end;
        }
    });
    rx
}

fn factory(i: usize) -> String {
    format!("f{:04}", i + 1)
}

/// The body of sequence number `k`, and its factory.
fn body(cli: &Cli, start_s: i64, k: u64, fields: &[String]) -> (usize, String) {
    let f = (k % cli.factories as u64) as usize;
    let lines = fields.len() as i64;
    let block = (k / cli.factories as u64) as i64;
    let series = format!("effluent,factory={},point=outfall-1 ", factory(f));
    let mut out = String::with_capacity(fields.len() * (fields.first().map_or(0, String::len) + 64));
    let mut time = itoa::Buffer::new();
    for (l, fields) in fields.iter().enumerate() {
        // Without core::fmt, as `decimal`: the generator shares the machine's cores with the target.
        out.push_str(&series);
        out.push_str(fields);
        out.push(' ');
        out.push_str(time.format((start_s + block * lines + l as i64) * 1_000_000_000));
        out.push('\n');
    }
    (f, out)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let cli = Arc::new(Cli::parse());
    anyhow::ensure!(cli.parameters >= 1 && cli.parameters <= PARAMETERS.len(), "--parameters: 1 to 10");
    anyhow::ensure!(cli.factories >= 1 && cli.connections >= 1, "--factories and --connections: at least 1");
    eitwatch_agent::install_tls_provider();
    let tokens: HashMap<String, String> = match &cli.tokens {
        None => HashMap::new(),
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(f, t)| (f.to_string(), t.trim().to_string())))
            .collect(),
    };
    let tokens: Arc<Vec<Option<String>>> =
        Arc::new((0..cli.factories).map(|i| tokens.get(&factory(i)).cloned()).collect());
    let start_s = cli.start_s.unwrap_or_else(|| jiff::Timestamp::now().as_second() - 30 * 86_400);
    // Line fields vary with the line (values stay within the limits: no alerts).
    let lines = if cli.prime { 1 } else { (cli.points / cli.parameters).max(1) };
    let fields: Arc<Vec<String>> = Arc::new(
        (0..lines)
            .map(|l| {
                PARAMETERS[..cli.parameters]
                    .iter()
                    .enumerate()
                    .map(|(p, (name, base))| format!("{name}={}", base + ((l * 7 + p * 3) % 10) as f64 * 0.125))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect(),
    );
    let client =
        reqwest::Client::builder().pool_max_idle_per_host(cli.connections).timeout(Duration::from_secs(60)).build()?;
    let realistic = cli.realistic.then(|| {
        let end_s = cli.end_s.unwrap_or_else(|| jiff::Timestamp::now().as_second() / 60 * 60 - 60);
        Arc::new(tokio::sync::Mutex::new(realistic_bodies(&cli, end_s)))
    });
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(cli.duration_s);
    let (prime, prime_start) = (cli.prime, start_s - 1);
    let mut tasks = Vec::new();
    for _ in 0..cli.connections {
        let (cli, client, next, errors, tokens, fields, realistic) = (
            cli.clone(),
            client.clone(),
            next.clone(),
            errors.clone(),
            tokens.clone(),
            fields.clone(),
            realistic.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies_us: Vec<u64> = Vec::new();
            let mut points = 0u64;
            loop {
                let (f, body, readings) = match &realistic {
                    Some(bodies) => match bodies.lock().await.recv().await {
                        Some(item) => item,
                        None => break,
                    },
                    None => {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if (prime && k >= cli.factories as u64) || (!prime && Instant::now() >= deadline) {
                            break;
                        }
                        let (f, body) =
                            if prime { body(&cli, prime_start, k, &fields) } else { body(&cli, start_s, k, &fields) };
                        (f, body, (fields.len() * cli.parameters) as u64)
                    }
                };
                let mut req = client.post(&cli.url).body(body);
                if let Some(token) = &tokens[f] {
                    req = req.header("Authorization", format!("Token {token}"));
                }
                let sent = Instant::now();
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        latencies_us.push(sent.elapsed().as_micros() as u64);
                        points += readings;
                    }
                    Ok(r) => {
                        if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            let status = r.status();
                            eprintln!("eitwatch-load: {status}: {}", r.text().await.unwrap_or_default());
                        }
                    }
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("eitwatch-load: {e}");
                        }
                    }
                }
            }
            (latencies_us, points)
        }));
    }
    let mut latencies_us = Vec::new();
    let mut points = 0u64;
    for t in tasks {
        let (l, p) = t.await?;
        latencies_us.extend(l);
        points += p;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    let pct = |p: f64| {
        if latencies_us.is_empty() {
            0.0
        } else {
            latencies_us[((latencies_us.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
        }
    };
    println!(
        "target={} points={} requests={} errors={} seconds={:.2} points_per_s={:.0} p50_ms={:.2} p99_ms={:.2}",
        cli.label,
        points,
        latencies_us.len(),
        errors.load(Ordering::Relaxed),
        elapsed,
        points as f64 / elapsed,
        pct(0.50),
        pct(0.99)
    );
    anyhow::ensure!(errors.load(Ordering::Relaxed) == 0, "some writes failed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    /// Each line: the series, the fields, a space and the time in ns; lines in time order.
    #[test]
    fn a_body_is_its_lines_in_time_order() {
        let cli = super::Cli::parse_from(["eitwatch-load", "--url", "http://x", "--factories", "3"]);
        let fields = ["cod=1.5".to_string(), "cod=2".to_string()];
        let (f, body) = super::body(&cli, 100, 4, &fields);
        assert_eq!(f, 1);
        // Body 4 is factory 2's second: lines 2 and 3 of its timeline.
        assert_eq!(
            body,
            "effluent,factory=f0002,point=outfall-1 cod=1.5 102000000000\n\
             effluent,factory=f0002,point=outfall-1 cod=2 103000000000\n"
        );
    }

    /// The same text as `format!` writes, so every run (and every target) gets the same bodies.
    #[test]
    fn decimals_are_written_as_format_writes_them() {
        for decimals in 0..=3u32 {
            let scale = 10i64.pow(decimals);
            for steps in (-2_050..2_050).chain([i64::MAX / 7, 123_456_789, 1_000_000]) {
                let mut out = String::new();
                super::decimal(&mut out, steps, decimals);
                let expected = match decimals {
                    0 => format!("{steps}"),
                    _ => format!("{}.{:0w$}", steps / scale, steps % scale, w = decimals as usize),
                };
                assert_eq!(out, expected, "{steps} at {decimals} decimals");
            }
        }
    }
}
