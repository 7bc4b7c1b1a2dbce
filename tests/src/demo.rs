//! A simulated Eco Industrial Town area — Mae Moh, Lampang — on the embedded default:
//! the server (embedded store, `config/examples/server.toml`'s registry), a simulated
//! Modbus device, an embedded MQTT broker, and one agent per factory, all in one process
//! and all speaking the real protocols over loopback.
//!
//! - mm-ceramics, outfall-1: Modbus (slave 1). COD drifts over the 120 mg/L limit once
//!   `drift_after_s` have passed.
//! - mm-foods, outfall-1: MQTT JSON messages on `mm-foods/outfall-1/<parameter>`.
//! - mm-biomass, stack-1: Modbus (slave 2), a biomass boiler's CEMS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use eitwatch_agent::{Shutdown, broker};
use eitwatch_config::agent_config::{AgentConfig, ByteOrder};
use eitwatch_config::problems;
use eitwatch_config::server_config::{AnonymousRead, ServerConfig};
use rumqttc::{AsyncClient, MqttOptions, QoS};

use crate::simulate::{RegisterBank, serve_modbus};

/// What the demo needs to be told.
#[derive(Debug, Clone)]
pub struct Options {
    /// Server address (port 0: any free port).
    pub listen: SocketAddr,
    /// Data directory of the server and agents.
    pub data_dir: PathBuf,
    /// Seconds before mm-ceramics' COD starts to drift up.
    pub drift_after_s: u64,
}

/// The running demo.
#[derive(Debug)]
pub struct Demo {
    /// The server's address.
    pub addr: SocketAddr,
    /// Write token of each factory.
    pub tokens: Vec<(String, String)>,
    /// Cancelling stops agents and simulators.
    pub shutdown: Shutdown,
}

const SERVER_TOML: &str = include_str!("../../config/examples/server.toml");

fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// COD of mm-ceramics at `t_s` seconds: about 85 mg/L, then +1.5 mg/L per second after the
/// drift starts (over 120 mg/L some 25 s later), levelling off at 180 mg/L. Slow enough
/// (≤ 125 mg/L per minute with the wobble) not to trip the example's spike bound of
/// 200 mg/L per minute: the demo shows an exceedance, not a sensor fault.
pub fn ceramics_cod(t_s: f64, drift_after_s: f64) -> f64 {
    let base = 85.0 + 4.0 * (t_s / 7.0).sin();
    if t_s < drift_after_s { base } else { (base + 1.5 * (t_s - drift_after_s)).min(180.0) }
}

/// Starts everything; returns once the server accepts writes.
pub async fn start(options: Options) -> anyhow::Result<Demo> {
    let shutdown = Shutdown::new();
    let mut server: ServerConfig =
        problems::load(SERVER_TOML, "config/examples/server.toml").map_err(|p| anyhow::anyhow!("{p}"))?;
    server.server.listen = options.listen.to_string();
    server.server.data_dir = options.data_dir.join("server").display().to_string();
    server.api.anonymous_read = AnonymousRead::Loopback;
    let server_dir = PathBuf::from(&server.server.data_dir);
    let mut tokens = Vec::new();
    for factory in ["mm-ceramics", "mm-foods", "mm-biomass"] {
        let grant = eitwatch_server::auth::Grant::Write { factory: factory.to_string() };
        tokens.push((factory.to_string(), eitwatch_server::auth::Tokens::create(&server_dir, grant)?.1));
    }
    let stop = shutdown.clone();
    let (addr, _server) = eitwatch_server::serve(server, async move { stop.cancelled().await })
        .await
        .with_context(|| format!("starting the server on {}", options.listen))?;

    // The simulated Modbus device: slave 1 is the ceramics outfall, slave 2 the boiler stack.
    let bank = RegisterBank::default();
    let modbus = serve_modbus("127.0.0.1:0".parse()?, bank.clone()).await?;
    let started = Instant::now();
    simulate(&bank, 0.0, options.drift_after_s as f64);
    let (sim_bank, sim_stop, drift) = (bank.clone(), shutdown.clone(), options.drift_after_s as f64);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! { _ = sim_stop.cancelled() => return, _ = tick.tick() => {} }
            simulate(&sim_bank, started.elapsed().as_secs_f64(), drift);
        }
    });

    let mqtt = free_port()?;
    broker::start(mqtt)?;
    tokio::spawn(publish_foods(mqtt, shutdown.clone()));

    let token = |f: &str| tokens.iter().find(|(x, _)| x == f).map(|(_, t)| t.clone()).unwrap_or_default();
    let agents = [
        agent_toml(
            "mm-ceramics",
            &token("mm-ceramics"),
            addr,
            &options,
            &format!(
                r#"[[point]]
id = "outfall-1"
kind = "effluent"
[[modbus]]
name = "wwtp-plc"
transport = {{ type = "tcp", address = "{modbus}" }}
poll_interval_ms = 2000
register = [
  {{ point = "outfall-1", parameter = "cod", slave = 1, table = "holding", address = 0, type = "f32", order = "ABCD", unit = "mg/L" }},
  {{ point = "outfall-1", parameter = "ph", slave = 1, table = "holding", address = 2, type = "f32", order = "CDAB", unit = "pH" }},
  {{ point = "outfall-1", parameter = "tss", slave = 1, table = "holding", address = 4, type = "f32", unit = "mg/L" }},
  {{ point = "outfall-1", parameter = "flow", slave = 1, table = "holding", address = 6, type = "f32", unit = "m3/d" }},
]"#
            ),
        ),
        agent_toml(
            "mm-foods",
            &token("mm-foods"),
            addr,
            &options,
            &format!(
                r#"[[point]]
id = "outfall-1"
kind = "effluent"
[[mqtt]]
name = "factory-broker"
broker = "{mqtt}"
client_id = "eitwatch-mm-foods"
[[mqtt.subscription]]
topic = "mm-foods/{{point}}/{{parameter}}"
payload = "json"
unit = "mg/L""#
            ),
        ),
        agent_toml(
            "mm-biomass",
            &token("mm-biomass"),
            addr,
            &options,
            &format!(
                r#"[[point]]
id = "stack-1"
kind = "emission"
[[modbus]]
name = "cems-logger"
transport = {{ type = "tcp", address = "{modbus}" }}
poll_interval_ms = 5000
register = [
  {{ point = "stack-1", parameter = "tsp", slave = 2, table = "holding", address = 0, type = "f32", unit = "mg/Nm3" }},
  {{ point = "stack-1", parameter = "so2", slave = 2, table = "holding", address = 2, type = "f32", unit = "ppm" }},
  {{ point = "stack-1", parameter = "nox", slave = 2, table = "holding", address = 4, type = "f32", unit = "ppm" }},
  {{ point = "stack-1", parameter = "co", slave = 2, table = "holding", address = 6, type = "f32", unit = "ppm" }},
  {{ point = "stack-1", parameter = "o2", slave = 2, table = "holding", address = 8, type = "f32", unit = "%" }},
  {{ point = "stack-1", parameter = "temp", slave = 2, table = "holding", address = 10, type = "f32", unit = "degC" }},
]"#
            ),
        ),
    ];
    for (name, text) in agents {
        let config: AgentConfig = problems::load(&text, &name).map_err(|p| anyhow::anyhow!("{p}"))?;
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(error) = eitwatch_agent::run(config, stop).await {
                tracing::error!(agent = %name, %error, "Demo agent stopped");
            }
        });
    }
    Ok(Demo { addr, tokens, shutdown })
}

fn agent_toml(factory: &str, token: &str, server: SocketAddr, options: &Options, sources: &str) -> (String, String) {
    let text = format!(
        r#"[agent]
factory = "{factory}"
data_dir = "{dir}"
[uplink]
url = "http://{server}"
token = "{token}"
batch_max_age_ms = 500
{sources}
"#,
        dir = options.data_dir.join(factory).display()
    );
    (format!("demo agent {factory}"), text)
}

fn simulate(bank: &RegisterBank, t: f64, drift_after_s: f64) {
    let wave = |period: f64, amplitude: f64| amplitude * (t / period).sin();
    bank.set_f32(1, 0, ceramics_cod(t, drift_after_s) as f32, ByteOrder::ABCD);
    bank.set_f32(1, 2, (7.2 + wave(11.0, 0.3)) as f32, ByteOrder::CDAB);
    bank.set_f32(1, 4, (22.0 + wave(13.0, 5.0)) as f32, ByteOrder::ABCD);
    bank.set_f32(1, 6, (1800.0 + wave(17.0, 200.0)) as f32, ByteOrder::ABCD);
    bank.set_f32(2, 0, (95.0 + wave(19.0, 10.0)) as f32, ByteOrder::ABCD);
    bank.set_f32(2, 2, (25.0 + wave(23.0, 5.0)) as f32, ByteOrder::ABCD);
    bank.set_f32(2, 4, (110.0 + wave(29.0, 15.0)) as f32, ByteOrder::ABCD);
    bank.set_f32(2, 6, (150.0 + wave(31.0, 20.0)) as f32, ByteOrder::ABCD);
    bank.set_f32(2, 8, (8.5 + wave(37.0, 0.8)) as f32, ByteOrder::ABCD);
    bank.set_f32(2, 10, (165.0 + wave(41.0, 5.0)) as f32, ByteOrder::ABCD);
}

/// mm-foods' analysers publish JSON to the factory broker every 5 s.
async fn publish_foods(broker: SocketAddr, shutdown: Shutdown) {
    let options = MqttOptions::new("mm-foods-analysers", broker.ip().to_string(), broker.port());
    let (client, mut events) = AsyncClient::new(options, 64);
    tokio::spawn(async move {
        loop {
            if events.poll().await.is_err() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! { _ = shutdown.cancelled() => return, _ = tick.tick() => {} }
        let t = started.elapsed().as_secs_f64();
        for (parameter, value, unit) in [
            ("cod", 70.0 + 6.0 * (t / 9.0).sin(), "mg/L"),
            ("bod", 14.0 + 2.0 * (t / 13.0).sin(), "mg/L"),
            ("ph", 7.6, "pH"),
            ("temp", 31.5, "degC"),
        ] {
            let payload = format!(r#"{{"value": {value:.2}, "unit": "{unit}"}}"#);
            if let Err(error) =
                client.publish(format!("mm-foods/outfall-1/{parameter}"), QoS::AtLeastOnce, false, payload).await
            {
                tracing::warn!(%error, "Demo publisher cannot publish");
            }
        }
    }
}
