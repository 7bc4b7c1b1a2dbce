//! The audit log, `<data_dir>/audit.log`: one JSON object per line, appended and synced,
//! for each refused attempt that matters to a regulator — a write for another factory (or
//! by a token that may not write), and a rewrite of stored history. Never the token itself,
//! only its public id.

use std::path::Path;

use serde_json::json;

use super::synced::SyncedFile;
use crate::auth::Bearer;

/// What was attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A line for a factory the token does not write for, or a token that writes nothing.
    Forbidden,
    /// A different value for a series and time already stored (answered 409).
    Rewrite,
}

impl Event {
    fn as_str(self) -> &'static str {
        match self {
            Event::Forbidden => "forbidden",
            Event::Rewrite => "rewrite",
        }
    }
}

/// The log.
#[derive(Debug)]
pub(super) struct Audit {
    file: SyncedFile,
}

impl Audit {
    /// The audit log of a data directory (created at the first record).
    pub(super) fn new(data_dir: &Path) -> Audit {
        Audit { file: SyncedFile::new(data_dir.join("audit.log")) }
    }

    /// Appends one record and syncs it. A failure is logged: the refusal stands either way.
    pub(super) fn record(&self, event: Event, bearer: &Bearer, factory: Option<&str>, reason: &str) {
        let line = json!({
            "time": jiff::Timestamp::now().to_string(),
            "event": event.as_str(),
            "token_id": bearer.id,
            "token_kind": bearer.grant.kind(),
            "token_factory": bearer.grant.factory(),
            "factory": factory,
            "reason": reason,
        });
        tracing::warn!(event = event.as_str(), token_id = %bearer.id, factory, reason, "Audit");
        if let Err(error) = self.file.append(&format!("{line}\n")) {
            tracing::error!(path = %self.file.path().display(), %error, "Cannot write the audit log");
        }
    }
}
