//! The fault-notification clock of a no-data incident (DIW online-data rules): notify DIW on
//! the day of the fault or the next day, restore transmission within 7 days. One condition
//! per stage, so the "due" alert resolves when it becomes "overdue".

use super::engine::{AlertKind, Condition, Incident, Severity};
use super::period::local;

pub(super) fn conditions(incident: &Incident, now_ns: i64) -> Vec<Condition> {
    let base = |stage: &str, severity, summary: String, deadline_ns| Condition {
        key: format!("deadline/{stage}/{}/{}/{}", incident.factory, incident.point, incident.since_ns),
        kind: AlertKind::Deadline,
        severity,
        factory: incident.factory.clone(),
        point: incident.point.clone(),
        parameter: None,
        summary,
        value: None,
        limit: None,
        since_ns: incident.since_ns,
        deadline_ns: Some(deadline_ns),
    };
    let mut out = Vec::new();
    if now_ns < incident.notify_by_ns {
        out.push(base(
            "notify_due",
            Severity::Info,
            format!("no data since {}: notify DIW by {}", local(incident.since_ns), local(incident.notify_by_ns)),
            incident.notify_by_ns,
        ));
    } else {
        out.push(base(
            "notify_overdue",
            Severity::Critical,
            format!(
                "no data since {}: DIW notification was due by {}",
                local(incident.since_ns),
                local(incident.notify_by_ns)
            ),
            incident.notify_by_ns,
        ));
    }
    if now_ns >= incident.restore_by_ns {
        out.push(base(
            "restore_overdue",
            Severity::Critical,
            format!(
                "no data since {}: transmission was to be restored by {}",
                local(incident.since_ns),
                local(incident.restore_by_ns)
            ),
            incident.restore_by_ns,
        ));
    }
    out
}
