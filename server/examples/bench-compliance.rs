//! Compliance benchmarks (run by `scripts/bench-compliance.sh`).
//!
//! - `bench-compliance engine [FACTORIES] [SECONDS]`: the engine alone, no HTTP: readings/s
//!   through `ingest` (judging instantaneous limits, marking periods), then the same with
//!   the rest of the compliance thread's work: the exceedances taken per batch, and a tick
//!   with every condition found once per second of wall time (`tick_ms` = 1000).
//! - `bench-compliance latency URL TOKEN [SECONDS] [READINGS_PER_S]`: a running server gets
//!   `READINGS_PER_S` readings/s over HTTP (100 bodies/s) while five exceeding COD readings
//!   a second ("probes") are written; each probe's alert is awaited on `GET /api/v1/events`.
//!   Prints write→SSE alert latency p50/p99 beside the write's own 204 latency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eitwatch_config::reading::{Kind, Reading};
use eitwatch_config::server_config::ServerConfig;
use eitwatch_config::site::Registry;
use eitwatch_server::compliance::{Engine, ManualClock, Settings};

fn site(factories: usize) -> String {
    let mut s = String::from(
        "[server]\ndata_dir = \"/x\"\n[[area]]\nid = \"a\"\nname_en = \"A\"\nname_th = \"A\"\nprovince = \"P\"\n",
    );
    for f in 0..factories {
        s.push_str(&format!(
            "[[area.factory]]\nid = \"f{f}\"\nname = \"F{f}\"\ncategory = 3\n\
             [[area.factory.point]]\nid = \"outfall-1\"\nkind = \"effluent\"\nparameters = [\"cod\", \"bod\", \"ph\", \"tss\"]\nexpected_interval_s = 1\n\
             [[area.factory.point]]\nid = \"stack-1\"\nkind = \"emission\"\nparameters = [\"so2\", \"o2\", \"nox\"]\nexpected_interval_s = 1\n\
             emission = {{ source = \"boiler\", fuel = \"heavy_oil\", combustion = true }}\n"
        ));
    }
    s
}

fn engine_bench(factories: usize, seconds: i64) {
    let config: ServerConfig = match eitwatch_config::problems::load(&site(factories), "bench.toml") {
        Ok(c) => c,
        Err(p) => panic!("{p}"),
    };
    let t0: i64 = 1_795_300_000 * 1_000_000_000;
    let batches: Vec<Vec<Reading>> = (0..seconds)
        .map(|s| {
            let t = t0 + s * 1_000_000_000;
            let mut batch = Vec::with_capacity(factories * 7);
            for f in 0..factories {
                let id = format!("f{f}");
                let wave = ((s + f as i64) % 17) as f64;
                for (p, v) in
                    [("cod", 60.0 + wave), ("bod", 10.0 + wave / 4.0), ("ph", 7.0 + wave / 20.0), ("tss", 20.0 + wave)]
                {
                    batch.push(Reading::new(Kind::Effluent, &id, "outfall-1", p, v, t));
                }
                for (p, v) in [("so2", 300.0 + wave), ("o2", 8.0 + wave / 10.0), ("nox", 120.0 + wave)] {
                    batch.push(Reading::new(Kind::Emission, &id, "stack-1", p, v, t));
                }
            }
            batch
        })
        .collect();
    let total: usize = batches.iter().map(Vec::len).sum();
    let mut rates = Vec::new();
    for (name, with_conditions) in
        [("ingest (judge + mark periods)", false), ("thread's work (+ flashes, tick and conditions/s)", true)]
    {
        let clock = Arc::new(ManualClock::new(t0));
        let mut engine = Engine::new(Registry::new(config.area.clone()), clock.clone(), Settings::default());
        let start = Instant::now();
        let mut next_tick = start;
        for (s, batch) in batches.iter().enumerate() {
            clock.set(t0 + (s as i64 + 1) * 1_000_000_000);
            engine.ingest(batch);
            if with_conditions {
                std::hint::black_box(engine.take_flashes());
                if Instant::now() >= next_tick {
                    engine.tick();
                    std::hint::black_box(engine.conditions());
                    next_tick += Duration::from_secs(1);
                }
            }
        }
        engine.tick();
        let elapsed = start.elapsed().as_secs_f64();
        let rate = total as f64 / elapsed;
        println!(
            "engine {name:<42} {total} readings ({factories} factories × 7 series × {seconds} s) in {elapsed:.2} s: {rate:.0} readings/s"
        );
        rates.push(rate);
    }
    println!(
        "ratio thread's work / ingest alone: {:.2}; thread's work / 10 000 readings/s target: {:.1}×",
        rates[1] / rates[0],
        rates[1] / 10_000.0
    );
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn latency_bench(url: String, token: String, seconds: u64, rate: usize) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().build().expect("client");
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let got: Arc<Mutex<Vec<f64>>> = Arc::default();

    let mut sse = client
        .get(format!("{url}/api/v1/events"))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await
        .expect("events");
    assert!(sse.status().is_success(), "events: {}", sse.status());
    let (sent_r, got_r) = (sent.clone(), got.clone());
    tokio::spawn(async move {
        let mut text = String::new();
        while let Ok(Some(chunk)) = sse.chunk().await {
            let now = Instant::now();
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                if !block.contains("event: alert") {
                    continue;
                }
                let data: String = block.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                let Ok(a) = serde_json::from_str::<serde_json::Value>(&data) else { continue };
                if a["kind"] != "exceedance"
                    || a["state"] != "firing"
                    || !a["point"].as_str().is_some_and(|p| p.starts_with("probe-"))
                {
                    continue;
                }
                let k = ((a["value"].as_f64().unwrap_or(0.0) - 200.0) * 1000.0).round() as u64;
                if let Some(t) = sent_r.lock().unwrap_or_else(|p| p.into_inner()).remove(&k) {
                    got_r.lock().unwrap_or_else(|p| p.into_inner()).push(now.duration_since(t).as_secs_f64() * 1000.0);
                }
            }
        }
    });

    let write_url = format!("{url}/api/v2/write?org=o&bucket=b&precision=ns");
    let per_body = rate / 100;
    let lines_per_body = per_body / 4;
    let writes: Arc<Mutex<Vec<f64>>> = Arc::default();
    let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut every = tokio::time::interval(Duration::from_millis(10));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut probes = 0u64;
    let mut readings = 0u64;
    for i in 0..(seconds * 100) {
        every.tick().await;
        let t = jiff::Timestamp::now().as_nanosecond() as i64;
        let mut body = String::with_capacity(lines_per_body * 80);
        for p in 0..lines_per_body {
            let w = ((i as usize + p) % 13) as f64;
            body.push_str(&format!(
                "effluent,factory=bench,point=o{p} cod={},bod={},ph={},tss={} {t}\n",
                50.0 + w,
                8.0 + w / 4.0,
                7.0 + w / 20.0,
                15.0 + w
            ));
            readings += 4;
        }
        let mut probe = None;
        if i % 20 == 0 {
            // Five probes a second, each on one of ten probe points in turn; resolved 50 ms later.
            let k = probes;
            probes += 1;
            body.push_str(&format!(
                "effluent,factory=bench,point=probe-{} cod={} {t}\n",
                k % 10,
                200.0 + k as f64 / 1000.0
            ));
            readings += 1;
            probe = Some(k);
        } else if i % 20 == 5 {
            body.push_str(&format!("effluent,factory=bench,point=probe-{} cod=50 {t}\n", (probes - 1) % 10));
            readings += 1;
        }
        let (client, url, token, sent, writes, failures) =
            (client.clone(), write_url.clone(), token.clone(), sent.clone(), writes.clone(), failures.clone());
        tokio::spawn(async move {
            let begun = Instant::now();
            if let Some(k) = probe {
                sent.lock().unwrap_or_else(|p| p.into_inner()).insert(k, begun);
            }
            match client.post(url).header("Authorization", format!("Token {token}")).body(body).send().await {
                Ok(r) if r.status().as_u16() == 204 => {
                    writes.lock().unwrap_or_else(|p| p.into_inner()).push(begun.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(r) => {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    eprintln!("write: {} {}", r.status(), r.text().await.unwrap_or_default());
                }
                Err(e) => {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    eprintln!("write: {e}");
                }
            }
        });
    }
    let elapsed = start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && got.lock().unwrap_or_else(|p| p.into_inner()).len() < probes as usize {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut alerts = got.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut writes = writes.lock().unwrap_or_else(|p| p.into_inner()).clone();
    alerts.sort_by(f64::total_cmp);
    writes.sort_by(f64::total_cmp);
    println!(
        "offered {readings} readings in {elapsed:.1} s = {:.0} readings/s over HTTP ({} bodies, {} failed)",
        readings as f64 / elapsed,
        seconds * 100,
        failures.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "write → 204            p50 {:7.2} ms  p99 {:7.2} ms  ({} writes)",
        percentile(&writes, 0.5),
        percentile(&writes, 0.99),
        writes.len()
    );
    println!(
        "write → SSE alert      p50 {:7.2} ms  p99 {:7.2} ms  ({} of {probes} probe alerts seen)",
        percentile(&alerts, 0.5),
        percentile(&alerts, 0.99),
        alerts.len()
    );
    println!(
        "ratio alert/204 latency: p50 {:.2}, p99 {:.2}; goal p99 ≤ 100 ms: {}",
        percentile(&alerts, 0.5) / percentile(&writes, 0.5),
        percentile(&alerts, 0.99) / percentile(&writes, 0.99),
        if percentile(&alerts, 0.99) <= 100.0 { "met" } else { "NOT met" }
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("engine") => engine_bench(
            args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100),
            args.get(3).and_then(|a| a.parse().ok()).unwrap_or(600),
        ),
        Some("latency") if args.len() >= 4 => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
            runtime.block_on(latency_bench(
                args[2].clone(),
                args[3].clone(),
                args.get(4).and_then(|a| a.parse().ok()).unwrap_or(30),
                args.get(5).and_then(|a| a.parse().ok()).unwrap_or(10_000),
            ));
        }
        _ => eprintln!(
            "usage: bench-compliance engine [FACTORIES] [SECONDS] | latency URL TOKEN [SECONDS] [READINGS_PER_S]"
        ),
    }
}
