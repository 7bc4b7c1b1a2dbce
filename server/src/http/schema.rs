//! Schemas of the types the API shows but does not define (the shared vocabulary's enums,
//! the domain's records): string enums by their JSON names, records as objects described
//! where they are defined.

use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Array, RefOr};

fn strings(values: &[&str]) -> Object {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)).enum_values(Some(values.iter().copied())).build()
}

/// Measurement kinds.
pub(super) const KINDS: [&str; 3] = ["effluent", "emission", "ambient"];
/// Reading qualities.
pub(super) const QUALITIES: [&str; 5] = ["valid", "suspect", "invalid", "maintenance", "calibration"];
/// Alert kinds.
pub(super) const ALERT_KINDS: [&str; 5] = ["exceedance", "no_data", "sensor_fault", "availability", "deadline"];
/// Alert states.
pub(super) const ALERT_STATES: [&str; 4] = ["pending", "firing", "acknowledged", "resolved"];
/// Averaging of limits.
pub(super) const AVERAGINGS: [&str; 3] = ["instantaneous", "hourly", "daily"];
/// Outcomes of judged periods.
pub(super) const OUTCOMES: [&str; 4] = ["compliant", "exceeds", "insufficient_data", "cannot_correct"];

pub(super) fn kind() -> Object {
    strings(&KINDS)
}
pub(super) fn quality() -> Object {
    strings(&QUALITIES)
}
pub(super) fn source() -> Object {
    strings(&["instrument", "lab"])
}
pub(super) fn alert_kind() -> Object {
    strings(&ALERT_KINDS)
}
pub(super) fn alert_state() -> Object {
    strings(&ALERT_STATES)
}
pub(super) fn averaging() -> Object {
    strings(&AVERAGINGS)
}
pub(super) fn outcome() -> Object {
    strings(&OUTCOMES)
}

/// An object whose fields are documented where the type is defined (rustdoc).
pub(super) fn record(description: &str) -> Object {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::Object)).description(Some(description)).build()
}

/// A list of such objects.
pub(super) fn records(description: &str) -> Array {
    Array::new(RefOr::T(Schema::Object(record(description))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names listed here are the ones the types take.
    #[test]
    fn the_enums_name_every_variant_the_types_take() {
        fn all<T: serde::de::DeserializeOwned>(names: &[&str]) {
            for n in names {
                serde_json::from_value::<T>(serde_json::Value::String(n.to_string())).expect(n);
            }
        }
        all::<eitwatch_config::reading::Kind>(&KINDS);
        all::<eitwatch_config::reading::Quality>(&QUALITIES);
        all::<eitwatch_config::server_config::AlertKind>(&ALERT_KINDS);
        all::<crate::alerts::State>(&ALERT_STATES);
        all::<eitwatch_config::standards::Averaging>(&AVERAGINGS);
        all::<crate::compliance::Outcome>(&OUTCOMES);
        assert_eq!(eitwatch_config::reading::Quality::ALL.len(), QUALITIES.len());
    }
}
