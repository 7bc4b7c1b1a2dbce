//! `eitwatch-server`: run the provincial server, check its config, manage tokens.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use eitwatch_config::problems;
use eitwatch_config::server_config::ServerConfig;

#[derive(Parser)]
#[command(name = "eitwatch-server", version, about = "eitwatch provincial server: ingest, store, compliance, alerts")]
struct Cli {
    /// server.toml to run with.
    #[arg(long, default_value = "/etc/eitwatch/server.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Run,
    /// Load and validate a server.toml, print every problem, start nothing.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
    /// Manage tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a write token for one factory; prints the token (shown only this once).
    Create {
        /// The server's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Factory id the token writes for.
        #[arg(long)]
        factory: String,
    },
}

fn load(file: &PathBuf) -> anyhow::Result<ServerConfig> {
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
        Command::Token { command: TokenCommand::Create { data_dir, factory } } => {
            println!("{}", eitwatch_server::auth::Tokens::create(&data_dir, &factory)?);
        }
        Command::Run => {
            let config = load(&cli.config)?;
            let (_, handle) = eitwatch_server::serve(config, shutdown_signal()).await?;
            handle.await??;
            tracing::info!("Server stopped");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
