//! The fault-notification clock of a no-data incident (DIW online-data rules): notify DIW on
//! the day of the fault or the next day, restore transmission within 7 days. One condition
//! per stage, so the "due" alert resolves when it becomes "overdue".

use super::engine::{AlertKind, Condition, Incident, Severity};
use crate::alerts::text::{Detail, Stage, What};

pub(super) fn conditions(incident: &Incident, now_ns: i64) -> Vec<Condition> {
    let base = |stage: Stage, severity, deadline_ns| Condition {
        key: format!("deadline/{}/{}/{}/{}", stage.as_str(), incident.factory, incident.point, incident.since_ns),
        kind: AlertKind::Deadline,
        severity,
        factory: incident.factory.clone(),
        point: incident.point.clone(),
        parameter: None,
        detail: Some(Box::new(Detail { measurement: None, what: What::Deadline { stage } })),
        value: None,
        limit: None,
        since_ns: incident.since_ns,
        deadline_ns: Some(deadline_ns),
    };
    let mut out = Vec::new();
    if now_ns < incident.notify_by_ns {
        out.push(base(Stage::NotifyDue, Severity::Info, incident.notify_by_ns));
    } else {
        out.push(base(Stage::NotifyOverdue, Severity::Critical, incident.notify_by_ns));
    }
    if now_ns >= incident.restore_by_ns {
        out.push(base(Stage::RestoreOverdue, Severity::Critical, incident.restore_by_ns));
    }
    out
}
