//! `eitwatch-agent`: run the factory agent, or check its config.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use eitwatch_config::agent_config::AgentConfig;
use eitwatch_config::problems;

#[derive(Parser)]
#[command(
    name = "eitwatch-agent",
    version,
    about = "eitwatch factory agent: Modbus and MQTT in, readings to the server"
)]
struct Cli {
    /// agent.toml to run with.
    #[arg(long, default_value = "/etc/eitwatch/agent.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent (the default).
    Run,
    /// Load and validate an agent.toml, print every problem, start nothing.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
    /// Commissioning: read a device once and show what its registers hold.
    #[command(subcommand)]
    Probe(Probe),
}

#[derive(Subcommand)]
enum Probe {
    /// Read registers once; print them raw and in every type and byte order, and name the
    /// likely decoding for a parameter.
    Modbus(eitwatch_agent::sources::modbus::probe::ProbeArgs),
}

fn load(file: &PathBuf) -> anyhow::Result<AgentConfig> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    problems::load(&text, &file.display().to_string()).map_err(|p| anyhow::anyhow!("{p}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig { file } => {
            load(&file)?;
            println!("{}: ok", file.display());
        }
        Command::Probe(Probe::Modbus(args)) => {
            let report = eitwatch_agent::sources::modbus::probe::run(&args).await.map_err(anyhow::Error::msg)?;
            print!("{report}");
        }
        Command::Run => {
            let config = load(&cli.config)?;
            let shutdown = eitwatch_agent::Shutdown::new();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                stop.cancel();
            });
            eitwatch_agent::run(config, shutdown).await?;
        }
    }
    Ok(())
}
