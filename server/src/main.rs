//! `eitwatch-server`: run the provincial server, check its config, manage tokens.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use eitwatch_config::logs::LogFormat;
use eitwatch_config::problems;
use eitwatch_config::server_config::ServerConfig;
use eitwatch_server::auth::{Grant, Tokens};

#[derive(Parser)]
#[command(name = "eitwatch-server", version, about = "eitwatch provincial server: ingest, store, compliance, alerts")]
struct Cli {
    /// server.toml to run with.
    #[arg(long, default_value = "/etc/eitwatch/server.toml")]
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
    /// Export from a running server (scheduled reports).
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Load and validate an indicators.toml, print every problem.
    CheckIndicators {
        /// The file.
        file: PathBuf,
    },
    /// Start without the store's damaged segments (the server refused to start, naming
    /// one): each is moved to `<data-dir>/store/damaged/` and what it held is recorded as
    /// gap records (series, time range, count; `GET /api/v1/gaps`). Run with the server
    /// stopped.
    Repair {
        /// The server's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Only say what is damaged and what setting it aside would lose.
        #[arg(long)]
        dry_run: bool,
    },
    /// Back up the running server's data directory into a new directory, while it goes on
    /// taking writes: the server itself writes the backup (`POST /api/v1/admin/backup`), so
    /// the directory is a path on the server's machine.
    Backup {
        /// The new directory (made as `<to>.partial`, renamed once complete).
        #[arg(long)]
        to: PathBuf,
        /// The server's URL (default: the address the server of `--config` listens on).
        #[arg(long)]
        url: Option<String>,
        /// An admin token (default: `EITWATCH_TOKEN`).
        #[arg(long)]
        token: Option<String>,
    },
    /// Check a backup (every file's size and SHA-256, every day file's blocks) and restore it
    /// into a new or empty data directory; start the server on that directory afterwards.
    Restore {
        /// The backup's directory.
        #[arg(long)]
        from: PathBuf,
        /// The data directory to restore into (new or empty).
        #[arg(long, required_unless_present = "check_only")]
        data_dir: Option<PathBuf>,
        /// Only check the backup; write nothing.
        #[arg(long)]
        check_only: bool,
    },
    /// Alert notifications (e-mail, LINE).
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// The lines partial writes refused, kept in `<data_dir>/dead-letters/`.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLettersCommand,
    },
}

#[derive(Subcommand)]
enum NotifyCommand {
    /// Send a test message to every address of a recipient (of `--config`'s `[notify]` and
    /// the recipients changed through the API) and print what each channel answered.
    Test {
        /// The recipient's id.
        #[arg(long)]
        recipient: String,
    },
}

#[derive(Subcommand)]
enum DeadLettersCommand {
    /// List them: received, token id, line number, reason, the line.
    List {
        /// The server's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Have the running server (found through the data directory's listen-address file)
    /// write them again, through the same checks: what is stored leaves them.
    Replay {
        /// The server's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// An admin token (default: the EITWATCH_TOKEN environment variable).
        #[arg(long)]
        token: Option<String>,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Stored readings as an Apache Parquet file (see docs/export.md), read from the store
    /// of a stopped server's data directory (refused while a server answers on it: then use
    /// `GET /api/v1/readings?format=parquet`). The registry's names come from `--config`'s
    /// areas and the data directory's registry log.
    Readings {
        /// The server's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Area id.
        #[arg(long)]
        area: Option<String>,
        /// Factory id.
        #[arg(long)]
        factory: Option<String>,
        /// Point id.
        #[arg(long)]
        point: Option<String>,
        /// Parameter code.
        #[arg(long)]
        parameter: Option<String>,
        /// Start, inclusive: a Bangkok date (`2026-10-01`, from its midnight) or RFC 3339.
        #[arg(long)]
        from: String,
        /// End, exclusive: a Bangkok date or RFC 3339.
        #[arg(long)]
        to: String,
        /// parquet.
        #[arg(long, default_value = "parquet")]
        format: String,
        /// The file to write (written whole: to `<out>.partial`, then renamed).
        #[arg(long)]
        out: PathBuf,
    },
    /// EIT indicators of an area (or factory) over a period, from the running server's
    /// `GET /api/v1/indicators`: the server's data directory is never opened by a second
    /// process. The server is found through `--config` (its listen-address file, else
    /// `server.listen`) unless `--url` is given.
    Indicators {
        /// Area id.
        #[arg(long)]
        area: Option<String>,
        /// Factory id.
        #[arg(long)]
        factory: Option<String>,
        /// `2026-10` (month), `2026-Q4` (quarter), `FY2027` (Thai fiscal year, Oct–Sep).
        #[arg(long, required_unless_present_all = ["from", "to"], conflicts_with_all = ["from", "to"])]
        period: Option<String>,
        /// Start (a Bangkok date `2026-10-01` or RFC 3339), with --to.
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// End, exclusive, with --from.
        #[arg(long, requires = "from")]
        to: Option<String>,
        /// json, csv or xlsx.
        #[arg(long, default_value = "xlsx")]
        format: String,
        /// Dates in the Buddhist era (B.E. = A.D. + 543).
        #[arg(long)]
        be: bool,
        /// The file to write (written whole: to a temporary name, then renamed).
        #[arg(long)]
        out: PathBuf,
        /// The server's base URL (default: from --config).
        #[arg(long)]
        url: Option<String>,
        /// A read or admin token (default: the EITWATCH_TOKEN environment variable; none for
        /// anonymous loopback reads).
        #[arg(long)]
        token: Option<String>,
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
        /// A write token whose batches are written in part: valid lines stored, the others
        /// answered 400 and kept in the dead letters.
        #[arg(long, requires = "factory", conflicts_with_all = ["read", "admin"])]
        partial_writes: bool,
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
    let cli = Cli::parse();
    eitwatch_config::logs::init(cli.log_format)?;
    // The data directory holds factories' evidence and token hashes: readable by the service's
    // user and group (backups, log shippers), never by every user of the machine. Set before
    // any file is made, so the token commands' files get it too.
    // SAFETY: umask only replaces the process's file-mode mask; no pointer is involved.
    unsafe {
        libc::umask(0o027);
    }
    match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig { file } => {
            load(&file)?;
            println!("{}: ok", file.display());
        }
        Command::Token { command } => token(command)?,
        Command::CheckIndicators { file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let defs: eitwatch_config::indicators::IndicatorsFile =
                problems::load(&text, &file.display().to_string()).map_err(|p| anyhow::anyhow!("{p}"))?;
            println!("{}: ok, {} indicators", file.display(), defs.indicator.len());
        }
        Command::Export {
            command: ExportCommand::Readings { data_dir, area, factory, point, parameter, from, to, format, out },
        } => {
            if format != "parquet" {
                anyhow::bail!("--format: \"{format}\" is not one of parquet");
            }
            let query = eitwatch_server::export::Query {
                area,
                factory,
                point,
                parameter,
                from_ns: Some(time_arg("--from", &from)?),
                to_ns: Some(time_arg("--to", &to)?),
            };
            let config = load(&cli.config)?;
            let started = std::time::Instant::now();
            let count = eitwatch_server::export::readings_to_file(&config, &data_dir, query, &out)?;
            eprintln!("wrote {} ({count} readings) in {:.1} s", out.display(), started.elapsed().as_secs_f64());
        }
        Command::Export { command } => export(&cli.config, command).await?,
        Command::Repair { data_dir, dry_run } => repair(&data_dir, dry_run)?,
        Command::Backup { to, url, token } => backup(&cli.config, &to, url, token).await?,
        Command::Restore { from, data_dir, check_only } => restore(&from, data_dir.as_deref(), check_only)?,
        Command::DeadLetters { command } => dead_letters(command).await?,
        Command::Notify { command: NotifyCommand::Test { recipient } } => notify_test(&cli.config, &recipient).await?,
        Command::Run => {
            let config = load(&cli.config)?;
            // A bad indicators.toml is refused at start, as a bad server.toml is, not at the
            // first report.
            eitwatch_server::indicators::definitions(std::path::Path::new(&config.server.data_dir))
                .map_err(|p| anyhow::anyhow!("{p}"))?;
            let (_, handle) = eitwatch_server::serve(config, shutdown_signal()).await?;
            handle.await??;
            tracing::info!("Server stopped");
        }
    }
    Ok(())
}

async fn notify_test(config: &PathBuf, recipient: &str) -> anyhow::Result<()> {
    use eitwatch_server::notify::outbox::Outcome;
    let config = load(config)?;
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    let data_dir = PathBuf::from(&config.server.data_dir);
    let answers = eitwatch_server::notify::send_test(&data_dir, &config.notify, recipient, now)
        .await?
        .with_context(|| format!("--recipient: \"{recipient}\" is not a recipient of [notify] or the API"))?;
    let mut failed = 0;
    for (to, outcome) in &answers {
        match outcome {
            Outcome::Sent(answer) => println!("{to}: sent: {answer}"),
            Outcome::Retry { answer, .. } => {
                failed += 1;
                println!("{to}: not delivered (would be retried): {answer}")
            }
            Outcome::Failed(answer) => {
                failed += 1;
                println!("{to}: refused: {answer}")
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} address(es) not delivered", answers.len());
    }
    Ok(())
}

fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { data_dir, factory, read, admin, partial_writes } => {
            let grant = match (factory, read, admin) {
                (_, _, true) => Grant::Admin,
                (factory, true, _) => Grant::Read { factory },
                (Some(factory), false, false) => Grant::Write { factory },
                (None, false, false) => anyhow::bail!("give --factory F, --read or --admin"),
            };
            let (id, token) = Tokens::create_with(&data_dir, grant, partial_writes)?;
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

fn repair(data_dir: &std::path::Path, dry_run: bool) -> anyhow::Result<()> {
    use eitwatch_server::store::repair;
    let store = data_dir.join("store");
    if !store.is_dir() {
        anyhow::bail!("{}: no store here (give the server's data directory)", data_dir.display());
    }
    let gaps = eitwatch_server::gaps::GapLog::open(&data_dir.join("gaps.log"))
        .with_context(|| format!("cannot open {}", data_dir.join("gaps.log").display()))?;
    let (mut segments, mut readings) = (0, 0);
    // Each pass sets one segment aside; a store has fewer segments than this.
    for _ in 0..1_000_000 {
        let Some(damage) = repair::find(&store)? else {
            println!("the store opens: {segments} segment(s) set aside, {readings} reading(s) recorded as lost");
            return Ok(());
        };
        let name = damage.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        println!("{}: {}", damage.path.display(), damage.what);
        for s in &damage.lost {
            println!(
                "  loses {} {}/{}/{}: {} reading(s) from {} to {}",
                s.kind,
                s.factory,
                s.point,
                s.parameter,
                s.count,
                ns_text(s.from_ns),
                ns_text(s.to_ns)
            );
        }
        if damage.undecoded_bytes > 0 {
            println!("  and {} byte(s) that no longer decode (their readings cannot be named)", damage.undecoded_bytes);
        }
        if !damage.sealed {
            println!("  (never sealed: what was cut off it, if anything, cannot be named)");
        }
        if dry_run {
            println!("dry run: nothing changed; later segments are checked once this one is set aside");
            return Ok(());
        }
        // The loss is recorded before the segment goes: a crash in between leaves the gaps
        // (stored once however often repair runs) and the damage to find again.
        let mut reason = format!("store segment {name} damaged; set aside by repair");
        if !damage.sealed {
            reason.push_str(&format!(
                " (never sealed: counted from what is left of it{})",
                match damage.undecoded_bytes {
                    0 => String::new(),
                    n => format!("; {n} more bytes do not decode"),
                }
            ));
        }
        let lost: Vec<_> = damage
            .lost
            .iter()
            .enumerate()
            .map(|(i, s)| eitwatch_server::gaps::Gap {
                id: format!("store-{}-{i}", name.split('.').next().unwrap_or_default()),
                factory: s.factory.clone(),
                point: s.point.clone(),
                kind: s.kind.clone(),
                parameters: vec![s.parameter.clone()],
                from_ns: s.from_ns,
                to_ns: s.to_ns,
                count: s.count,
                reason: reason.clone(),
            })
            .collect();
        gaps.append(lost).map_err(|e| anyhow::anyhow!("cannot record the loss in gaps.log: {e}"))?;
        let aside = repair::set_aside(&store, &damage)?;
        tracing::warn!(segment = %damage.path.display(), set_aside = ?aside, readings = damage.readings(), what = %damage.what, "Store segment set aside by repair; its readings recorded as gaps");
        match aside {
            Some(to) => println!("  moved to {}", to.display()),
            None => println!("  dropped from the manifest"),
        }
        segments += 1;
        readings += damage.readings();
    }
    anyhow::bail!("repair did not converge")
}

fn ns_text(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns)).map_or_else(|_| format!("{ns} ns"), |t| t.to_string())
}

async fn dead_letters(command: DeadLettersCommand) -> anyhow::Result<()> {
    match command {
        DeadLettersCommand::List { data_dir, json } => {
            let letters = eitwatch_server::ingest::list_dead_letters(&data_dir)?;
            for l in &letters {
                match json {
                    true => println!("{}", serde_json::to_string(l)?),
                    false => {
                        println!("{} {} line {}: {}\n    {}", l.received, l.token_id, l.line_number, l.reason, l.line)
                    }
                }
            }
            if !json {
                eprintln!("{} dead letter(s)", letters.len());
            }
        }
        DeadLettersCommand::Replay { data_dir, token } => {
            let path = data_dir.join("listen-address");
            let addr = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}: is the server running?", path.display()))?;
            let url = format!("http://{}/api/v1/dead-letters/replay", addr.trim());
            let token = token
                .or_else(|| std::env::var("EITWATCH_TOKEN").ok().filter(|t| !t.is_empty()))
                .context("give an admin token: --token or EITWATCH_TOKEN")?;
            let _ = rustls::crypto::ring::default_provider().install_default();
            let response = reqwest::Client::new()
                .post(&url)
                .header("Authorization", format!("Token {token}"))
                .send()
                .await
                .with_context(|| format!("cannot reach the server at {url}"))?;
            let status = response.status();
            let text = response.text().await.context("the server's answer")?;
            let body: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
            if !status.is_success() {
                anyhow::bail!("{url}: {status}: {}", body["message"].as_str().unwrap_or(&body.to_string()));
            }
            println!("stored {}, remaining {}", body["stored"], body["remaining"]);
        }
    }
    Ok(())
}

/// Asks the running server for a backup into `to` and prints what it made.
async fn backup(
    config: &PathBuf,
    to: &std::path::Path,
    url: Option<String>,
    token: Option<String>,
) -> anyhow::Result<()> {
    let base = match url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => server_url(config)?,
    };
    let token = token
        .or_else(|| std::env::var("EITWATCH_TOKEN").ok().filter(|t| !t.is_empty()))
        .context("give an admin token: --token or EITWATCH_TOKEN")?;
    // The server writes it: a relative path would be relative to the server's directory.
    let to = std::path::absolute(to).with_context(|| format!("{}", to.display()))?;
    let url = format!("{base}/api/v1/admin/backup");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .post(&url)
        .header("Authorization", format!("Token {token}"))
        .header("Content-Type", "application/json")
        .body(serde_json::json!({ "to": to }).to_string())
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {url}"))?;
    let status = response.status();
    let text = response.text().await.context("the server's answer")?;
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    if !status.is_success() {
        anyhow::bail!("{url}: {status}: {}", body["message"].as_str().unwrap_or(&body.to_string()));
    }
    println!(
        "backup {}: log position {}:{}, {} files, {} bytes ({} hard-linked), {} ms",
        body["to"].as_str().unwrap_or_default(),
        body["manifest"]["store_position"]["segment"],
        body["manifest"]["store_position"]["offset"],
        body["manifest"]["files"].as_array().map_or(0, Vec::len),
        body["bytes"],
        body["linked"],
        body["elapsed_ms"],
    );
    Ok(())
}

/// Checks a backup, and restores it unless `check_only`.
fn restore(from: &std::path::Path, data_dir: Option<&std::path::Path>, check_only: bool) -> anyhow::Result<()> {
    let data_dir = match (check_only, data_dir) {
        (false, Some(d)) => d,
        _ => {
            let v = eitwatch_server::backup::verify(from)?;
            println!(
                "{}: backup of {} (server {}), log position {}:{}: {} files, {} day files with {} readings, all intact",
                from.display(),
                v.manifest.taken,
                v.manifest.server_version,
                v.manifest.store_position.segment,
                v.manifest.store_position.offset,
                v.manifest.files.len(),
                v.part_files,
                v.part_readings,
            );
            return Ok(());
        }
    };
    let r = eitwatch_server::backup::restore(from, data_dir)?;
    println!(
        "restored {} into {}: {} readings of {} series over {} days, {} alerts, {} files (log position {}:{})",
        from.display(),
        data_dir.display(),
        r.readings,
        r.series,
        r.days,
        r.alerts,
        r.files,
        r.store_position.segment,
        r.store_position.offset,
    );
    Ok(())
}

/// A query value, percent-encoded (RFC 3986 unreserved characters kept).
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The base URL of the server a config runs: the address it wrote once listening, else
/// its configured listen address.
fn server_url(config: &PathBuf) -> anyhow::Result<String> {
    let config = load(config)?;
    let written = std::fs::read_to_string(PathBuf::from(&config.server.data_dir).join("listen-address")).ok();
    let addr = written.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).unwrap_or(config.server.listen);
    Ok(format!("http://{addr}"))
}

/// A time argument: a Bangkok date (its midnight, UTC+7) or RFC 3339, as ns since the epoch.
fn time_arg(name: &str, text: &str) -> anyhow::Result<i64> {
    // A date alone is `YYYY-MM-DD`; anything longer is a time.
    let time = match text.len() {
        10 => text
            .parse::<jiff::civil::Date>()
            .and_then(|date| date.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(7))))
            .map(|z| z.timestamp()),
        _ => text.parse::<jiff::Timestamp>(),
    }
    .map_err(|e| {
        anyhow::anyhow!(
            "{name}: \"{text}\" is neither a date (2026-10-01) nor an RFC 3339 time (2026-10-01T07:00:00+07:00): {e}"
        )
    })?;
    i64::try_from(time.as_nanosecond()).map_err(|_| anyhow::anyhow!("{name}: \"{text}\" is outside 1677–2262"))
}

async fn export(config: &PathBuf, command: ExportCommand) -> anyhow::Result<()> {
    let ExportCommand::Indicators { area, factory, period, from, to, format, be, out, url, token } = command else {
        anyhow::bail!("export readings reads the data directory, not the server");
    };
    if !matches!(format.as_str(), "json" | "csv" | "xlsx") {
        anyhow::bail!("--format: \"{format}\" is not one of json, csv, xlsx");
    }
    let base = match url {
        Some(u) => u,
        None => server_url(config)?,
    };
    let mut query: Vec<(&str, String)> = vec![("format", format.clone())];
    for (key, value) in [("area", area), ("factory", factory), ("period", period), ("from", from), ("to", to)] {
        if let Some(v) = value {
            query.push((key, v));
        }
    }
    if be {
        query.push(("be", "true".into()));
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().build().context("HTTP client")?;
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", percent_encode(v))).collect();
    let mut request = client.get(format!("{}/api/v1/indicators?{}", base.trim_end_matches('/'), query.join("&")));
    if let Some(t) = token.or_else(|| std::env::var("EITWATCH_TOKEN").ok().filter(|t| !t.is_empty())) {
        request = request.header("Authorization", format!("Token {t}"));
    }
    eprintln!("requesting indicators from {base} …");
    let started = std::time::Instant::now();
    let mut response = request.send().await.with_context(|| format!("cannot reach the server at {base}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or(body);
        anyhow::bail!("{base}: {status}: {message}");
    }
    eprintln!("computed in {:.1} s, receiving …", started.elapsed().as_secs_f64());
    let tmp = out.with_extension("partial");
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.context("receiving the export")? {
        bytes.extend_from_slice(&chunk);
        eprint!("\rreceived {} KiB", bytes.len() / 1024);
    }
    eprintln!();
    std::fs::write(&tmp, &bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &out).with_context(|| format!("cannot move {} to {}", tmp.display(), out.display()))?;
    eprintln!("wrote {} ({} bytes) in {:.1} s", out.display(), bytes.len(), started.elapsed().as_secs_f64());
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
