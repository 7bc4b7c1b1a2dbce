//! `eitwatch-demo`: a simulated EIT area on the embedded default. No other service needed.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use eitwatch_tests::demo::{self, Options};

#[derive(Parser)]
#[command(
    name = "eitwatch-demo",
    about = "A simulated Eco Industrial Town (Mae Moh, Lampang) on eitwatch's embedded default"
)]
struct Cli {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:8086")]
    listen: SocketAddr,
    /// Data directory (default: a new directory under the system's temp dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Seconds before mm-ceramics' COD starts drifting over its limit.
    #[arg(long, default_value_t = 60)]
    drift_after_s: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,rumqttd=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let data_dir =
        cli.data_dir.unwrap_or_else(|| std::env::temp_dir().join(format!("eitwatch-demo-{}", std::process::id())));
    let demo =
        demo::start(Options { listen: cli.listen, data_dir: data_dir.clone(), drift_after_s: cli.drift_after_s })
            .await?;
    let url = format!("http://{}", demo.addr);
    println!("eitwatch demo: Mae Moh, Lampang — 3 factories, 2 outfalls and 1 boiler stack");
    println!("  server      {url}   (data: {})", data_dir.display());
    for (factory, token) in &demo.tokens {
        println!("  token       {factory:<12} {token}");
    }
    println!("  mm-ceramics' COD drifts over 120 mg/L after {} s. Look at:", cli.drift_after_s);
    println!("    curl -s {url}/api/v1/alerts");
    println!("    curl -s '{url}/api/v1/readings?factory=mm-ceramics&parameter=cod'");
    println!("  Ctrl-C stops.");
    tokio::signal::ctrl_c().await?;
    demo.shutdown.cancel();
    Ok(())
}
