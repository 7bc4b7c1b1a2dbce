//! eitwatch's factory agent.
//!
//! In data-flow order:
//! - [`sources`]: Modbus devices polled and MQTT brokers subscribed to, each yielding raw
//!   values (point, parameter, value in the device's unit, time, quality);
//! - [`normalise`]: raw values → canonical [`Reading`]s (catalog unit, plausibility);
//! - [`outbox`]: readings kept on disk (fsynced before a source acknowledges them) until
//!   every sink has them; bounded, with gap records for what it had to drop;
//! - [`uplink`]: one task per sink (the server, InfluxDB 2 buckets) delivering batches over
//!   the InfluxDB v2 write API with the factory's token;
//! - [`metrics`]: the outbox and delivery state as Prometheus text on `/metrics`.
//!
//! [`simulate`] is a simulated factory (Modbus device, MQTT publisher) for the demo.
//!
//! [`Reading`]: eitwatch_config::Reading

pub mod broker;
pub mod metrics;
pub mod normalise;
pub mod outbox;
pub mod simulate;
pub mod sources;
pub mod uplink;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use eitwatch_config::agent_config::AgentConfig;
use tokio::task::JoinSet;
pub use tokio_util::sync::CancellationToken as Shutdown;

/// The outbox directory of an agent config.
pub fn outbox_dir(config: &AgentConfig) -> PathBuf {
    Path::new(&config.agent.data_dir).join("outbox")
}

/// The outbox limits of an agent config.
pub fn outbox_options(config: &AgentConfig) -> outbox::Options {
    outbox::Options { max_bytes: config.outbox.max_bytes, segment_bytes: config.outbox.segment_bytes }
}

/// Runs every source and every sink's uplink of `config` until `shutdown` is cancelled.
pub async fn run(config: AgentConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let sinks = uplink::SinkConfig::all(&config);
    let names: Vec<String> = sinks.iter().map(|s| s.name.clone()).collect();
    let (dir, options) = (outbox_dir(&config), outbox_options(&config));
    let (outbox, _recovery) = tokio::task::spawn_blocking(move || {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        outbox::Outbox::open(&dir, options, &names)
    })
    .await?
    .context("cannot open the outbox")?;
    outbox.set_commit_interval(std::time::Duration::from_millis(config.outbox.commit_interval_ms));
    let outbox = Arc::new(outbox);
    let normaliser = Arc::new(normalise::Normaliser::new(&config));
    let mut tasks = JoinSet::new();
    if let Some(listen) = &config.agent.metrics_listen {
        let server =
            metrics::serve(listen, Path::new(&config.agent.data_dir), outbox.clone(), shutdown.clone()).await?;
        tasks.spawn(server);
    }
    for device in config.modbus.clone() {
        let ctx = sources::Context {
            config: config.clone(),
            normaliser: normaliser.clone(),
            outbox: outbox.clone(),
            shutdown: shutdown.clone(),
        };
        tasks.spawn(sources::modbus::run(device, ctx));
    }
    for source in config.mqtt.clone() {
        let ctx = sources::Context {
            config: config.clone(),
            normaliser: normaliser.clone(),
            outbox: outbox.clone(),
            shutdown: shutdown.clone(),
        };
        tasks.spawn(sources::mqtt::run(source, ctx));
    }
    for sink in sinks {
        tasks.spawn(uplink::Uplink::new(sink)?.run(outbox.clone(), shutdown.clone()));
    }
    tracing::info!(factory = %config.agent.factory, modbus = config.modbus.len(), mqtt = config.mqtt.len(), sinks = 1 + config.influxdb.len(), "Agent started");
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "An agent task failed");
        }
    }
    Ok(())
}

/// Installs the process-wide TLS provider (rustls with ring); call once at start.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Current time in ns since the epoch.
pub(crate) fn now_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}
