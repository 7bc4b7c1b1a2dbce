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
}

fn factory(i: usize) -> String {
    format!("f{:04}", i + 1)
}

/// The body of sequence number `k`, and its factory.
fn body(cli: &Cli, start_s: i64, k: u64, fields: &[String]) -> (usize, String) {
    let f = (k % cli.factories as u64) as usize;
    let lines = fields.len() as i64;
    let block = (k / cli.factories as u64) as i64;
    let name = factory(f);
    let mut out = String::with_capacity(fields.len() * (fields.first().map_or(0, String::len) + 64));
    for (l, fields) in fields.iter().enumerate() {
        let t_ns = (start_s + block * lines + l as i64) * 1_000_000_000;
        let _ = writeln!(out, "effluent,factory={name},point=outfall-1 {fields} {t_ns}");
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
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(cli.duration_s);
    let (prime, prime_start) = (cli.prime, start_s - 1);
    let mut tasks = Vec::new();
    for _ in 0..cli.connections {
        let (cli, client, next, errors, tokens, fields) =
            (cli.clone(), client.clone(), next.clone(), errors.clone(), tokens.clone(), fields.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies_us: Vec<u64> = Vec::new();
            let mut points = 0u64;
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if (prime && k >= cli.factories as u64) || (!prime && Instant::now() >= deadline) {
                    break;
                }
                let (f, body) =
                    if prime { body(&cli, prime_start, k, &fields) } else { body(&cli, start_s, k, &fields) };
                let mut req = client.post(&cli.url).body(body);
                if let Some(token) = &tokens[f] {
                    req = req.header("Authorization", format!("Token {token}"));
                }
                let sent = Instant::now();
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        latencies_us.push(sent.elapsed().as_micros() as u64);
                        points += (fields.len() * cli.parameters) as u64;
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
