//! The log both programs write to stderr: lines for people, or one JSON object a line for
//! journald and log shippers (`--log-format`, else `EITWATCH_LOG_FORMAT`, else text); levels
//! from `RUST_LOG` (default `info`).

use std::str::FromStr;

/// How the log is written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object a line: timestamp, level, target, message and the event's fields.
    Json,
}

/// A log format that is neither `text` nor `json`.
#[derive(Debug, thiserror::Error)]
#[error("\"{0}\" is not one of text, json")]
pub struct UnknownLogFormat(String);

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(UnknownLogFormat(other.to_owned())),
        }
    }
}

/// A bad `EITWATCH_LOG_FORMAT`.
#[derive(Debug, thiserror::Error)]
#[error("EITWATCH_LOG_FORMAT: {0}")]
pub struct LogFormatVar(UnknownLogFormat);

// Not `#[from]`: that would make the same sentence the error's source, printed twice.
impl From<UnknownLogFormat> for LogFormatVar {
    fn from(e: UnknownLogFormat) -> Self {
        LogFormatVar(e)
    }
}

/// Starts the log in `flag`'s format, else `EITWATCH_LOG_FORMAT`'s (empty or unset: text).
pub fn init(flag: Option<LogFormat>) -> Result<(), LogFormatVar> {
    let format = match flag {
        Some(f) => f,
        None => match std::env::var("EITWATCH_LOG_FORMAT").ok().as_deref() {
            None | Some("") => LogFormat::Text,
            Some(s) => s.parse()?,
        },
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).with_span_list(false).init(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_formats_parse_and_anything_else_is_named() {
        assert_eq!("text".parse::<LogFormat>().ok(), Some(LogFormat::Text));
        assert_eq!("json".parse::<LogFormat>().ok(), Some(LogFormat::Json));
        let err = "JSON".parse::<LogFormat>().err().map(|e| LogFormatVar::from(e).to_string());
        assert_eq!(err.as_deref(), Some("EITWATCH_LOG_FORMAT: \"JSON\" is not one of text, json"));
    }
}
