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
//! With the cargo feature `embedded-broker` (off in the shipped agent), `broker` is an MQTT
//! broker inside the agent for a factory with none of its own (`[[mqtt]] embedded_broker`).
//!
//! [`Reading`]: eitwatch_config::Reading

mod backoff;
#[cfg(feature = "embedded-broker")]
pub mod broker;
pub mod metrics;
pub mod normalise;
pub mod outbox;
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

/// A config that asks for what this build of the agent leaves out.
#[derive(Debug, thiserror::Error)]
#[error("{key}: this agent is built without the {what} (cargo feature \"{feature}\")")]
pub struct Unsupported {
    key: String,
    what: &'static str,
    feature: &'static str,
}

/// Refuses a config that needs a part this build leaves out; the key names the first one.
pub fn check_build(config: &AgentConfig) -> Result<(), Unsupported> {
    match config.mqtt.iter().position(|s| s.embedded_broker) {
        Some(i) if !cfg!(feature = "embedded-broker") => Err(Unsupported {
            key: format!("mqtt[{i}].embedded_broker"),
            what: "embedded MQTT broker",
            feature: "embedded-broker",
        }),
        _ => Ok(()),
    }
}

/// Runs every source and every sink's uplink of `config` until `shutdown` is cancelled.
/// Fails at start on a config this build cannot run ([`check_build`]), and at the end if a
/// source had to stop with readings it could not keep (none of them acknowledged).
pub async fn run(config: AgentConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    check_build(&config)?;
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
    let data_dir = Path::new(&config.agent.data_dir);
    let dead_letters =
        Arc::new(sources::mqtt::dead_letter::DeadLetters::new(data_dir, config.mqtt.iter().map(|s| s.name.as_str())));
    let mut tasks = JoinSet::new();
    if let Some(listen) = &config.agent.metrics_listen {
        let state = metrics::Watched { outbox: outbox.clone(), mqtt_dead_letters: dead_letters.clone() };
        tasks.spawn(metrics::serve(listen, data_dir, state, shutdown.clone()).await?);
    }
    let context = || sources::Context {
        config: config.clone(),
        normaliser: normaliser.clone(),
        outbox: outbox.clone(),
        shutdown: shutdown.clone(),
    };
    let mut sources = JoinSet::new();
    for device in config.modbus.clone() {
        sources.spawn(sources::modbus::run(device, context()));
    }
    for source in config.mqtt.clone() {
        sources.spawn(sources::mqtt::run(source, context(), dead_letters.clone()));
    }
    for sink in sinks {
        tasks.spawn(uplink::Uplink::new(sink)?.run(outbox.clone(), shutdown.clone()));
    }
    tracing::info!(factory = %config.agent.factory, modbus = config.modbus.len(), mqtt = config.mqtt.len(), sinks = 1 + config.influxdb.len(), "Agent started");
    let mut not_kept = None;
    while let Some(done) = sources.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                not_kept.get_or_insert(error);
            }
            Err(e) => tracing::error!(error = %e, "An agent task failed"),
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "An agent task failed");
        }
    }
    not_kept.map_or(Ok(()), |e| Err(e.into()))
}

/// Installs the process-wide TLS provider (rustls with ring); call once at start.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Current time in ns since the epoch.
pub(crate) fn now_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_asking_for_the_embedded_broker_is_refused_by_a_build_without_it() {
        let toml = r#"
[agent]
factory = "f1"
[[point]]
id = "o1"
kind = "effluent"
[uplink]
url = "http://127.0.0.1:1"
token = "t"
[[mqtt]]
name = "local"
broker = "127.0.0.1:1883"
client_id = "agent-f1"
embedded_broker = true
[[mqtt.subscription]]
topic = "f1/{point}/{parameter}"
payload = "json"
unit = "mg/L"
"#;
        let config: AgentConfig = eitwatch_config::problems::load(toml, "agent.toml").expect("valid config");
        let checked = check_build(&config);
        if cfg!(feature = "embedded-broker") {
            assert!(checked.is_ok(), "{checked:?}");
        } else {
            let error = checked.expect_err("refused").to_string();
            assert!(error.starts_with("mqtt[0].embedded_broker: "), "{error}");
            assert!(error.contains("embedded-broker"), "{error}");
        }
    }
}
