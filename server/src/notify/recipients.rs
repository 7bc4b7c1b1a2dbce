//! Recipients: `server.toml`'s `[[notify.recipient]]` with the admin API's changes replayed
//! over them. A change (upsert by id, or removal) is recorded in
//! `<data_dir>/notify/recipients.log` with who (the admin token's id) and when, synced before
//! it is answered, as the registry's changes are; the result is validated as the config is.
//!
//! Routing: a recipient hears of an alert when one of its subscriptions covers the alert's
//! area or factory, kind and severity — and, for a factory's own contact, only when the
//! alert is of its factory.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use eitwatch_config::notify_config::{NotifySection, Recipient, Subscription};
use eitwatch_config::problems::Problems;
use serde::{Deserialize, Serialize};

use crate::alerts::Alert;

/// One change of the recipients.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// Create or replace a recipient (by id).
    Upsert {
        /// The recipient, as in `[[notify.recipient]]`.
        recipient: Recipient,
    },
    /// Remove a recipient.
    Remove {
        /// Its id.
        id: String,
    },
}

/// A recorded change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Sequence number, from 1.
    pub seq: u64,
    /// When (server clock), ns.
    pub at_ns: i64,
    /// When, Bangkok time.
    pub at_local: String,
    /// Who: `admin token <id>`.
    pub by: String,
    /// What.
    pub change: Change,
}

/// The current recipients and their change log.
#[derive(Debug)]
pub struct Recipients {
    path: PathBuf,
    base: Vec<Recipient>,
    current: RwLock<Vec<Recipient>>,
    write: Mutex<()>,
}

fn apply(list: &mut Vec<Recipient>, change: &Change) -> Result<(), String> {
    match change {
        Change::Upsert { recipient } => match list.iter_mut().find(|r| r.id == recipient.id) {
            Some(r) => *r = recipient.clone(),
            None => list.push(recipient.clone()),
        },
        Change::Remove { id } => {
            let before = list.len();
            list.retain(|r| r.id != *id);
            if list.len() == before {
                return Err(format!("id: \"{id}\" is not a recipient"));
            }
        }
    }
    Ok(())
}

impl Recipients {
    /// `[notify]`'s recipients with the log in `dir` replayed.
    pub fn open(dir: &Path, config: &NotifySection) -> std::io::Result<Recipients> {
        let path = dir.join("recipients.log");
        let mut list = config.recipient.clone();
        for e in crate::jsonl::read::<Entry>(&path)? {
            if let Err(error) = apply(&mut list, &e.change) {
                tracing::warn!(seq = e.seq, %error, "A recipient change no longer applies; skipped");
            }
        }
        Ok(Recipients { path, base: config.recipient.clone(), current: RwLock::new(list), write: Mutex::new(()) })
    }

    /// Every recipient now.
    pub fn list(&self) -> Vec<Recipient> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// One recipient.
    pub fn get(&self, id: &str) -> Option<Recipient> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).iter().find(|r| r.id == id).cloned()
    }

    /// Every recorded change, oldest first.
    pub fn entries(&self) -> std::io::Result<Vec<Entry>> {
        crate::jsonl::read(&self.path)
    }

    /// Applies a change and, when the result is valid for `config` (its channels configured),
    /// records it. Returns the recipients now, or every problem.
    pub fn record(
        &self,
        config: &NotifySection,
        change: Change,
        by: &str,
        now_ns: i64,
    ) -> std::io::Result<Result<Vec<Recipient>, Vec<String>>> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let entries = self.entries()?;
        let mut list = self.list();
        if let Err(e) = apply(&mut list, &change) {
            return Ok(Err(vec![e]));
        }
        let mut checked = config.clone();
        checked.recipient = list.clone();
        let mut problems = Problems::default();
        checked.validate(&mut problems);
        if !problems.is_empty() {
            return Ok(Err(problems
                .list
                .into_iter()
                .map(|p| format!("{}: {}", p.path.replacen("notify.", "", 1), p.message))
                .collect()));
        }
        let entry = Entry {
            seq: entries.len() as u64 + 1,
            at_ns: now_ns,
            at_local: crate::compliance::period::local(now_ns),
            by: by.to_string(),
            change,
        };
        crate::jsonl::append(&mut crate::jsonl::open(&self.path)?, std::slice::from_ref(&entry))?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = list.clone();
        Ok(Ok(list))
    }

    /// Whether `server.toml` gives this recipient (a change may still replace it).
    pub fn in_config(&self, id: &str) -> bool {
        self.base.iter().any(|r| r.id == id)
    }
}

/// Whether `r` may hear of `factory` at all.
pub fn may_see(r: &Recipient, factory: &str) -> bool {
    r.factory.as_deref().is_none_or(|own| own == factory)
}

/// The subscription of `r` that covers `alert` (in `area`), if any.
pub fn subscription<'a>(r: &'a Recipient, alert: &Alert, area: &str) -> Option<&'a Subscription> {
    if !may_see(r, &alert.factory) {
        return None;
    }
    r.subscription.iter().find(|s| {
        let place = (s.areas.is_empty() && s.factories.is_empty())
            || s.areas.iter().any(|a| a == area)
            || s.factories.contains(&alert.factory);
        place && (s.kinds.is_empty() || s.kinds.contains(&alert.kind)) && alert.severity >= s.min_severity
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::{AlertKind, Severity};
    use eitwatch_config::notify_config::Language;

    fn alert(factory: &str, kind: AlertKind, severity: Severity) -> Alert {
        Alert {
            id: 1,
            key: "k".into(),
            kind,
            severity,
            state: crate::alerts::State::Firing,
            factory: factory.into(),
            point: "outfall-1".into(),
            parameter: Some("cod".into()),
            detail: None,
            value: Some(150.0),
            limit: None,
            since_ns: 0,
            deadline_ns: None,
            pending_ns: 0,
            firing_ns: Some(0),
            ack: None,
            resolved_ns: None,
        }
    }

    fn recipient(factory: Option<&str>, subscription: Vec<Subscription>) -> Recipient {
        Recipient {
            id: "r".into(),
            name: String::new(),
            language: Language::Th,
            email: vec!["r@example.th".into()],
            line: Vec::new(),
            factory: factory.map(str::to_string),
            digest_at: None,
            subscription,
        }
    }

    fn sub(areas: &[&str], factories: &[&str], kinds: &[AlertKind], min: Severity) -> Subscription {
        Subscription {
            areas: areas.iter().map(|s| s.to_string()).collect(),
            factories: factories.iter().map(|s| s.to_string()).collect(),
            kinds: kinds.to_vec(),
            min_severity: min,
            resolved: true,
        }
    }

    #[test]
    fn subscriptions_select_by_place_kind_and_severity() {
        let area = recipient(None, vec![sub(&["a1"], &[], &[AlertKind::Exceedance], Severity::Critical)]);
        assert!(subscription(&area, &alert("f1", AlertKind::Exceedance, Severity::Critical), "a1").is_some());
        assert!(subscription(&area, &alert("f1", AlertKind::Exceedance, Severity::Critical), "a2").is_none());
        assert!(subscription(&area, &alert("f1", AlertKind::NoData, Severity::Critical), "a1").is_none());
        assert!(subscription(&area, &alert("f1", AlertKind::Exceedance, Severity::Warning), "a1").is_none());
        let everything = recipient(None, vec![sub(&[], &[], &[], Severity::Info)]);
        assert!(subscription(&everything, &alert("f9", AlertKind::Deadline, Severity::Info), "a9").is_some());
    }

    #[test]
    fn a_factory_contact_hears_only_of_its_factory_whatever_it_subscribes_to() {
        let own = recipient(Some("f1"), vec![sub(&["a1"], &["f2"], &[], Severity::Info)]);
        assert!(subscription(&own, &alert("f1", AlertKind::Exceedance, Severity::Critical), "a1").is_some());
        assert!(subscription(&own, &alert("f2", AlertKind::Exceedance, Severity::Critical), "a1").is_none());
    }
}
