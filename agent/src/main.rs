//! `eitwatch-agent`: run the factory agent, or check its config.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use eitwatch_config::agent_config::AgentConfig;
use eitwatch_config::logs::LogFormat;
use eitwatch_config::problems;

#[derive(Parser)]
#[command(
    name = "eitwatch-agent",
    version,
    about = "eitwatch factory agent: Modbus and MQTT in, readings to the server"
)]
struct Cli {
    /// agent.toml to run with (also after a subcommand: `status --config agent.toml`).
    #[arg(long, global = true, default_value = "/etc/eitwatch/agent.toml")]
    config: PathBuf,
    /// Log format on stderr: text or json (default: the EITWATCH_LOG_FORMAT variable, else
    /// text).
    #[arg(long, global = true, value_name = "text|json")]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent (the default).
    Run,
    /// Load and validate an agent.toml, print every problem, start nothing. A config this build
    /// cannot run (a part it leaves out, such as the embedded broker) is refused too.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
    /// Print the outbox's state and each sink's delivery counts, from the files (works
    /// whether or not the agent runs).
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
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

// One thread: the agent's work is I/O waits (polls, broker, uplink, the outbox's own fsync
// thread); a multi-threaded runtime spent markedly more CPU on task switches in
// scripts/bench-agent.sh (docs/benchmarks.md, "Measurements behind design choices").
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    eitwatch_config::logs::init(cli.log_format)?;
    // The outbox holds the factory's evidence until delivered: readable by the service's user
    // and group, never by every user of the machine.
    // SAFETY: umask only replaces the process's file-mode mask; no pointer is involved.
    unsafe {
        libc::umask(0o027);
    }
    match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig { file } => {
            let config = load(&file)?;
            eitwatch_agent::check_build(&config).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            println!("{}: ok", file.display());
        }
        Command::Status { json } => {
            let config = load(&cli.config)?;
            let dir = eitwatch_agent::outbox_dir(&config);
            let status = eitwatch_agent::outbox::inspect(&dir, config.outbox.max_bytes)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status_text(&dir, &status));
            }
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
                stop_signal().await;
                stop.cancel();
            });
            eitwatch_agent::run(config, shutdown).await?;
        }
    }
    Ok(())
}

fn status_text(dir: &std::path::Path, s: &eitwatch_agent::outbox::Status) -> String {
    use std::fmt::Write as _;
    let now_ns = jiff::Timestamp::now().as_nanosecond() as i64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "outbox {}: {} readings appended, ids {}..{} on disk, {} segments, {} of {} bytes",
        dir.display(),
        s.appended,
        s.oldest_id,
        s.appended,
        s.segments,
        s.bytes,
        s.max_bytes
    );
    for k in &s.sinks {
        let age = k.oldest_undelivered_ns.map_or("-".to_string(), |t| format!("{:.1} s", (now_ns - t) as f64 / 1e9));
        let _ = writeln!(
            out,
            "sink {}: waiting {} (oldest {age}), delivered {}, retried {}, dead-lettered {}, dropped {}, gap records pending {}{}",
            k.name,
            k.depth,
            k.ledger.delivered,
            k.ledger.retried,
            k.ledger.dead_lettered,
            k.ledger.dropped,
            k.ledger.gaps.len(),
            k.ledger.stopped.as_ref().map_or(String::new(), |r| format!(", STOPPED: {r}"))
        );
    }
    out
}

/// Ctrl-C or SIGTERM (systemd's stop). Readings already in the outbox are delivered after
/// the next start, so stopping needs no flush.
async fn stop_signal() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}
