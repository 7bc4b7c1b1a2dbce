//! Drives the agent's outbox for `scripts/bench-outbox.sh`: durable append rate, recovery
//! time of a backlog, backfill rate to a server. Prints one `key=value` line per run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use eitwatch_agent::outbox::{Options, Outbox};
use eitwatch_agent::uplink::{SinkConfig, SinkKind, Uplink};
use eitwatch_config::reading::{Kind, Reading};

#[derive(Parser)]
#[command(name = "bench-outbox", about = "outbox benchmark driver (see scripts/bench-outbox.sh)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Appends readings from concurrent writers, each waiting for its fsync, as sources do.
    Append {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        readings: u64,
        /// Readings per append call (a Modbus poll is a few; an MQTT message one); a
        /// multiple of 5 keeps each (parameter, time) unique.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Concurrent appenders (sources).
        #[arg(long, default_value_t = 8)]
        writers: usize,
    },
    /// Opens an existing outbox (scan and checks of every record) and reports the time.
    Recover {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Delivers the whole outbox to a server through the real uplink, backfill unlimited.
    Backfill {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        url: String,
        #[arg(long)]
        token: String,
        #[arg(long, default_value_t = 5000)]
        batch: usize,
    },
}

const PARAMETERS: [(&str, f64); 5] = [("cod", 50.0), ("bod", 10.0), ("ph", 7.0), ("tss", 20.0), ("temp", 30.0)];

/// Reading `k`: five parameters a line, one line a millisecond, from 30 days ago.
fn reading(t0_ns: i64, k: u64) -> Reading {
    let (parameter, base) = PARAMETERS[(k % 5) as usize];
    Reading::new(
        Kind::Effluent,
        "f1",
        "outfall-1",
        parameter,
        base + (k % 97) as f64 * 0.01,
        t0_ns + (k / 5) as i64 * 1_000_000,
    )
}

fn options() -> Options {
    Options { max_bytes: 1 << 40, segment_bytes: 16 << 20 }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let t0_ns = jiff::Timestamp::now().as_nanosecond() as i64 - 30 * 86_400 * 1_000_000_000;
    match cli.command {
        Command::Append { dir, readings, batch, writers } => {
            let (outbox, _) = Outbox::open(&dir, options(), &["server"])?;
            let outbox = Arc::new(outbox);
            let per_writer = readings / writers as u64;
            let start = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for w in 0..writers as u64 {
                let outbox = outbox.clone();
                tasks.spawn(async move {
                    // Each writer owns a disjoint range of k, so timestamps never collide. The
                    // batch is built once and only its times move, so that the figure is the
                    // outbox's cost, not the allocation of test readings.
                    let first = w * per_writer;
                    let mut buf: Vec<Reading> = (first..first + batch as u64).map(|k| reading(t0_ns, k)).collect();
                    let mut k = first;
                    while k < first + per_writer {
                        let n = (batch as u64).min(first + per_writer - k);
                        for (j, r) in buf.iter_mut().enumerate() {
                            r.time_ns = t0_ns + ((k + j as u64) / 5) as i64 * 1_000_000;
                        }
                        outbox.append(&buf[..n as usize]).await?;
                        k += n;
                    }
                    anyhow::Ok(())
                });
            }
            while let Some(r) = tasks.join_next().await {
                r??;
            }
            let secs = start.elapsed().as_secs_f64();
            let status = outbox.status();
            let n = per_writer * writers as u64;
            println!(
                "append readings={n} batch={batch} writers={writers} seconds={secs:.3} readings_per_s={:.0} bytes={} mb_per_s={:.1} commits={} readings_per_commit={:.1}",
                n as f64 / secs,
                status.bytes,
                status.bytes as f64 / secs / 1e6,
                status.commits,
                n as f64 / status.commits.max(1) as f64
            );
        }
        Command::Recover { dir } => {
            let start = Instant::now();
            let (outbox, recovery) = Outbox::open(&dir, options(), &["server"])?;
            let secs = start.elapsed().as_secs_f64();
            let bytes = outbox.status().bytes;
            println!(
                "recover readings={} bytes={bytes} segments={} seconds={secs:.3} mb_per_s={:.0}",
                recovery.readings,
                recovery.segments,
                bytes as f64 / secs / 1e6
            );
        }
        Command::Backfill { dir, url, token, batch } => {
            let (outbox, recovery) = Outbox::open(&dir, options(), &["server"])?;
            let outbox = Arc::new(outbox);
            let sink = SinkConfig {
                name: "server".into(),
                kind: SinkKind::Server,
                url,
                token,
                org: "eitwatch".into(),
                bucket: "eitwatch".into(),
                batch_max_readings: batch,
                batch_max_age: Duration::from_millis(100),
                timeout: Duration::from_secs(60),
                // Today's server takes identity bodies; the uplink would fall back anyway.
                gzip: false,
                backfill_readings_per_s: 0,
                auth_retry: Duration::from_secs(1),
                dead_letter_dir: dir.join("dead-letter"),
                ca_file: None,
                client_cert_file: None,
                client_key_file: None,
            };
            let shutdown = eitwatch_agent::Shutdown::new();
            let start = Instant::now();
            let task = tokio::spawn(Uplink::new(sink)?.run(outbox.clone(), shutdown.clone()));
            let end = outbox.durable_end();
            loop {
                let s = outbox.sink("server").ok_or_else(|| anyhow::anyhow!("no sink"))?;
                if s.depth(end) == 0 {
                    break;
                }
                if s.stopped.is_some() || start.elapsed() > Duration::from_secs(3600) {
                    anyhow::bail!("backfill stuck: {s:?}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let secs = start.elapsed().as_secs_f64();
            shutdown.cancel();
            let _ = task.await;
            let s = outbox.sink("server").ok_or_else(|| anyhow::anyhow!("no sink"))?;
            println!(
                "backfill readings={} delivered={} dead_lettered={} retried={} batch={batch} seconds={secs:.3} readings_per_s={:.0}",
                recovery.readings,
                s.delivered,
                s.dead_lettered,
                s.retried,
                s.delivered as f64 / secs
            );
        }
    }
    Ok(())
}
