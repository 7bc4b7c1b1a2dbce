//! `eitwatch-server`: run the provincial server, check its config, manage tokens.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use eitwatch_config::problems;
use eitwatch_config::server_config::ServerConfig;
use eitwatch_server::auth::{Grant, Tokens};

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
    /// Create a token; prints it (shown only this once). One of: `--factory F` (write for F),
    /// `--read` (read everything) or `--read --factory F` (read F), `--admin`.
    Create {
        /// The server's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Factory the token writes for (or, with --read, reads).
        #[arg(long, required_unless_present_any = ["read", "admin"])]
        factory: Option<String>,
        /// A read-only token for the API.
        #[arg(long, conflicts_with = "admin")]
        read: bool,
        /// An admin token.
        #[arg(long, conflicts_with = "factory")]
        admin: bool,
    },
    /// List tokens: id, kind, factory, created, revoked. Never the secret.
    List {
        /// The server's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id; a running server refuses it from its next request.
    Revoke {
        /// The server's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// The token's id, from `token create` or `token list`.
        id: String,
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
        Command::Token { command } => token(command)?,
        Command::Run => {
            let config = load(&cli.config)?;
            let (_, handle) = eitwatch_server::serve(config, shutdown_signal()).await?;
            handle.await??;
            tracing::info!("Server stopped");
        }
    }
    Ok(())
}

fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { data_dir, factory, read, admin } => {
            let grant = match (factory, read, admin) {
                (_, _, true) => Grant::Admin,
                (factory, true, _) => Grant::Read { factory },
                (Some(factory), false, false) => Grant::Write { factory },
                (None, false, false) => anyhow::bail!("give --factory F, --read or --admin"),
            };
            let (id, token) = Tokens::create(&data_dir, grant)?;
            // The token alone on stdout, for scripts; its id on stderr.
            eprintln!("token id {id}");
            println!("{token}");
        }
        TokenCommand::List { data_dir, json } => {
            let list = Tokens::list(&data_dir)?;
            if json {
                for t in &list {
                    println!("{}", serde_json::to_string(t)?);
                }
            } else {
                println!("{:<14} {:<6} {:<24} {:<32} revoked", "id", "kind", "factory", "created");
                for t in &list {
                    println!(
                        "{:<14} {:<6} {:<24} {:<32} {}",
                        t.id,
                        t.grant.kind(),
                        t.grant.factory().unwrap_or("*"),
                        t.created,
                        t.revoked.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        TokenCommand::Revoke { data_dir, id } => match Tokens::revoke(&data_dir, &id)? {
            true => println!("revoked {id}"),
            false => println!("{id} was already revoked"),
        },
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
