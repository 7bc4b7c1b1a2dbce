//! `[notify]` of `server.toml`: who is told of alerts, through which channel, and how
//! delivery behaves (retries, rate limit, escalation, digest). Recipients given here are the
//! base; the admin API adds, replaces and removes recipients over them (recorded).

use serde::{Deserialize, Serialize};

use crate::problems::Problems;
use crate::server_config::{AlertKind, Severity};

/// `[notify]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    /// The board's base URL; a message links to `<board_url>/#/factory/<id>`.
    #[serde(default)]
    pub board_url: String,
    /// `[notify.email]`: the SMTP server (absent: e-mail addresses are not written to).
    #[serde(default)]
    pub email: Option<EmailSection>,
    /// `[notify.line]`: the LINE Messaging API channel (absent: LINE ids are not written to).
    #[serde(default)]
    pub line: Option<LineSection>,
    /// Wait before the first retry of a failed delivery; doubles up to `retry_max_ms`.
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// Longest wait between retries. A delivery is retried until it succeeds or the channel
    /// refuses it for good (a 4xx other than 429, an SMTP permanent error).
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Messages per recipient per `rate_window_s`; beyond, alerts are held and summarised.
    #[serde(default = "default_rate_max")]
    pub rate_max: u32,
    /// The rate limit's window, and how long held alerts wait for their summary.
    #[serde(default = "default_rate_window_s")]
    pub rate_window_s: u64,
    /// `[notify.escalation]`: critical alerts left unacknowledged (absent: none).
    #[serde(default)]
    pub escalation: Option<EscalationSection>,
    /// `[[notify.recipient]]`.
    #[serde(default)]
    pub recipient: Vec<Recipient>,
}

impl Default for NotifySection {
    fn default() -> Self {
        NotifySection {
            board_url: String::new(),
            email: None,
            line: None,
            retry_initial_ms: default_retry_initial_ms(),
            retry_max_ms: default_retry_max_ms(),
            rate_max: default_rate_max(),
            rate_window_s: default_rate_window_s(),
            escalation: None,
            recipient: Vec::new(),
        }
    }
}

const fn default_retry_initial_ms() -> u64 {
    1000
}
const fn default_retry_max_ms() -> u64 {
    300_000
}
const fn default_rate_max() -> u32 {
    10
}
const fn default_rate_window_s() -> u64 {
    600
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required), usually port 587.
    Starttls,
    /// TLS from the first byte, usually port 465.
    Implicit,
    /// No TLS: a relay on the same host or network only.
    None,
}

/// `[notify.email]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSection {
    /// SMTP server host name (checked against its certificate).
    pub host: String,
    /// Port (default: 587 for STARTTLS, 465 for implicit TLS, 25 without TLS).
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls`, `implicit` or `none`.
    #[serde(default = "default_tls")]
    pub tls: SmtpTls,
    /// User name for SMTP authentication (absent: none).
    #[serde(default)]
    pub username: Option<String>,
    /// The environment variable holding the SMTP password (never the password itself).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Or a file holding it (a systemd credential, a secret mount); trailing newline ignored.
    #[serde(default)]
    pub password_file: Option<String>,
    /// The sender, `Name <address>`.
    pub from: String,
    /// A PEM file of further CA certificates the server's certificate may chain to (beside
    /// the system's).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Per-message timeout.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

impl EmailSection {
    /// The port, from `tls` when not given.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        })
    }
}

const fn default_tls() -> SmtpTls {
    SmtpTls::Starttls
}
const fn default_timeout_ms() -> u64 {
    10_000
}

/// `[notify.line]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineSection {
    /// The Messaging API's base URL.
    #[serde(default = "default_line_base_url")]
    pub base_url: String,
    /// The environment variable holding the channel access token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Or a file holding it; trailing newline ignored.
    #[serde(default)]
    pub token_file: Option<String>,
    /// Per-request timeout.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_line_base_url() -> String {
    "https://api.line.me".into()
}

/// `[notify.escalation]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationSection {
    /// A critical alert still firing, unacknowledged, this long after it fired is escalated.
    pub after_s: u64,
    /// Recipient ids told then (a factory's own contact only of its factory).
    pub to: Vec<String>,
}

/// Message language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// Thai.
    #[default]
    Th,
    /// English.
    En,
}

/// `[[notify.recipient]]`: a person or group told of alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// Unique id.
    pub id: String,
    /// Name, for the delivery log.
    #[serde(default)]
    pub name: String,
    /// `th` or `en`.
    #[serde(default)]
    pub language: Language,
    /// E-mail addresses.
    #[serde(default)]
    pub email: Vec<String>,
    /// LINE user ids (`U…`) or group ids (`C…`), pushed to through the channel.
    #[serde(default)]
    pub line: Vec<String>,
    /// A factory's own contact: told only of this factory, whatever the subscriptions say.
    #[serde(default)]
    pub factory: Option<String>,
    /// Bangkok time of the daily digest, `HH:MM` (absent: no digest).
    #[serde(default)]
    pub digest_at: Option<String>,
    /// `[[notify.recipient.subscription]]`: what they are told of (none: nothing but the
    /// digest and escalations).
    #[serde(default)]
    pub subscription: Vec<Subscription>,
}

/// One subscription: alerts of these areas or factories, of these kinds, at least this severe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// Area ids (empty, with `factories` empty: every area).
    #[serde(default)]
    pub areas: Vec<String>,
    /// Factory ids.
    #[serde(default)]
    pub factories: Vec<String>,
    /// Alert kinds (empty: all).
    #[serde(default)]
    pub kinds: Vec<AlertKind>,
    /// The least severity told of.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Also a message when the alert resolves.
    #[serde(default = "default_true")]
    pub resolved: bool,
}

const fn default_min_severity() -> Severity {
    Severity::Warning
}
const fn default_true() -> bool {
    true
}

/// Reads a secret from an environment variable or a file (trailing whitespace dropped);
/// `Err` names what is missing.
pub fn secret(env: Option<&str>, file: Option<&str>, key: &str) -> Result<Option<String>, String> {
    match (env, file) {
        (Some(var), _) => {
            std::env::var(var).map(Some).map_err(|_| format!("{key}_env: the environment variable {var} is not set"))
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|s| Some(s.trim_end().to_string()))
            .map_err(|e| format!("{key}_file: {path}: {e}")),
        (None, None) => Ok(None),
    }
}

/// Parses `HH:MM` into minutes after midnight.
pub fn minutes_of_day(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

impl Recipient {
    /// Adds every problem of this recipient, its keys under `path`.
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if self.id.is_empty() || !self.id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            problems.push(format!("{path}.id"), format!("\"{}\" must be letters, digits, -, _ or .", self.id));
        }
        if self.email.is_empty() && self.line.is_empty() {
            problems.push(path.to_string(), "no channel: give email addresses, LINE ids or both");
        }
        for (i, e) in self.email.iter().enumerate() {
            let ok = e.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !e.contains(' '));
            if !ok {
                problems.push(format!("{path}.email[{i}]"), format!("\"{e}\" is not an e-mail address"));
            }
        }
        for (i, l) in self.line.iter().enumerate() {
            let ok = l.len() == 33
                && (l.starts_with('U') || l.starts_with('C') || l.starts_with('R'))
                && l[1..].chars().all(|c| c.is_ascii_hexdigit());
            if !ok {
                problems.push(
                    format!("{path}.line[{i}]"),
                    format!("\"{l}\" is not a LINE user, group or room id (U, C or R and 32 hex digits)"),
                );
            }
        }
        if let Some(at) = &self.digest_at
            && minutes_of_day(at).is_none()
        {
            problems.push(format!("{path}.digest_at"), format!("\"{at}\" is not HH:MM (Bangkok time)"));
        }
    }
}

impl NotifySection {
    /// Adds every problem of `[notify]`.
    pub fn validate(&self, problems: &mut Problems) {
        if !self.board_url.is_empty() && !is_http_url(&self.board_url) {
            problems.push("notify.board_url", format!("\"{}\" is not an http:// or https:// URL", self.board_url));
        }
        if let Some(email) = &self.email {
            if email.host.is_empty() {
                problems.push("notify.email.host", "must not be empty");
            }
            if !email.from.contains('@') {
                problems.push("notify.email.from", format!("\"{}\" is not `Name <address>`", email.from));
            }
            let secret = email.password_env.is_some() as u8 + email.password_file.is_some() as u8;
            if secret > 1 {
                problems.push("notify.email", "give password_env or password_file, not both");
            }
            if email.username.is_some() != (secret > 0) {
                problems.push("notify.email", "give username with password_env or password_file");
            }
        }
        if let Some(line) = &self.line {
            if !is_http_url(&line.base_url) {
                problems
                    .push("notify.line.base_url", format!("\"{}\" is not an http:// or https:// URL", line.base_url));
            }
            if line.token_env.is_some() == line.token_file.is_some() {
                problems.push("notify.line", "give token_env or token_file (the channel access token), one of them");
            }
        }
        if self.retry_initial_ms == 0 {
            problems.push("notify.retry_initial_ms", "must be at least 1");
        }
        if self.retry_max_ms < self.retry_initial_ms {
            problems.push("notify.retry_max_ms", "must be at least retry_initial_ms");
        }
        if self.rate_max == 0 {
            problems.push("notify.rate_max", "must be at least 1");
        }
        if self.rate_window_s == 0 {
            problems.push("notify.rate_window_s", "must be at least 1");
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, r) in self.recipient.iter().enumerate() {
            r.validate(&format!("notify.recipient[{i}]"), problems);
            if !seen.insert(r.id.as_str()) {
                problems.push(format!("notify.recipient[{i}].id"), format!("\"{}\" is given twice", r.id));
            }
            if !r.email.is_empty() && self.email.is_none() {
                problems.push(format!("notify.recipient[{i}].email"), "needs [notify.email]");
            }
            if !r.line.is_empty() && self.line.is_none() {
                problems.push(format!("notify.recipient[{i}].line"), "needs [notify.line]");
            }
        }
        if let Some(esc) = &self.escalation {
            if esc.to.is_empty() {
                problems.push("notify.escalation.to", "name at least one recipient");
            }
            for (i, id) in esc.to.iter().enumerate() {
                if !self.recipient.iter().any(|r| r.id == *id) {
                    problems.push(format!("notify.escalation.to[{i}]"), format!("\"{id}\" is not a recipient"));
                }
            }
        }
    }
}

fn is_http_url(url: &str) -> bool {
    url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")).is_some_and(|rest| !rest.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server_config::ServerConfig;

    /// The `[notify]` blocks shown to people load as they are: the README's, and the
    /// example server.toml's once uncommented.
    #[test]
    fn the_shown_notify_configs_load() {
        let readme = include_str!("../../README.md");
        let start = readme.find("```toml\n[notify]").expect("the README's [notify] block") + 8;
        let block = &readme[start..start + readme[start..].find("```").expect("its end")];
        let example = include_str!("../examples/server.toml");
        let from = example.find("# [notify]").expect("the example's [notify]");
        let to = from + example[from..].find("\n\n").expect("its end");
        let uncommented: String = example[from..to].lines().map(|l| format!("{}\n", &l[2..])).collect();
        for (name, notify) in [("README.md", block.to_string()), ("config/examples/server.toml", uncommented)] {
            let text = format!("[server]\ndata_dir = \"/nonexistent\"\n{notify}");
            let config: ServerConfig = crate::problems::load(&text, name).unwrap_or_else(|p| panic!("{name}: {p}"));
            assert_eq!(config.notify.recipient[0].subscription.len(), 1, "{name}");
            assert!(config.notify.email.is_some() && config.notify.line.is_some(), "{name}");
        }
    }

    #[test]
    fn digest_times_parse_strictly() {
        assert_eq!(minutes_of_day("07:30"), Some(450));
        assert_eq!(minutes_of_day("00:00"), Some(0));
        for bad in ["7:30", "24:00", "07:60", "0730", "ab:cd"] {
            assert_eq!(minutes_of_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_recipient_with_bad_channels_is_named() {
        let r = Recipient {
            id: "a b".into(),
            name: String::new(),
            language: Language::Th,
            email: vec!["nobody".into()],
            line: vec!["U123".into()],
            factory: None,
            digest_at: Some("25:00".into()),
            subscription: Vec::new(),
        };
        let mut p = Problems::default();
        r.validate("notify.recipient[0]", &mut p);
        let text = p.to_string();
        for want in ["recipient[0].id", "email[0]", "line[0]", "digest_at"] {
            assert!(text.contains(want), "{want} in {text}");
        }
    }
}
