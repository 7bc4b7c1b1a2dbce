//! The applied limits as their own InfluxDB series, so that Grafana draws the limit the
//! server judges by (a factory's permit, the receiving-water TDS rule) rather than a number
//! fixed in a dashboard.
//!
//! Measurement `limit`, one point per limit of every registered series: tags `factory`,
//! `point`, `parameter`, `kind` (the reading's measurement), `basis` (`permit`, `standard`
//! or `receiving_water`), `averaging`, `unit` (the catalog unit of the readings) and `limit_id`;
//! fields `max` and `min` in that unit (only those the limit has). Posted when the server
//! starts, when the registry changes, and every [`WRITE_EVERY_S`] seconds, so a dashboard's
//! window always holds recent points of the line. A limit whose unit cannot be converted to
//! the readings' (a bound in mg/Nm³ of a dust series measured in mg/Nm³ converts; none fails
//! today) is left out with a warning. Stack limits are at a reference O₂ while the readings
//! are as measured: their lines are for orientation; the server's judgement corrects.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use eitwatch_config::catalog::Catalog;
use eitwatch_config::server_config::InfluxdbSection;
use eitwatch_config::site::Registry;
use eitwatch_config::standards::{Averaging, Standards};

use crate::AppState;
use crate::compliance::judge::limits_for;

/// The measurement the limits are written to.
pub const MEASUREMENT: &str = "limit";
/// How often the limits are written again without a registry change.
pub const WRITE_EVERY_S: u64 = 60;

/// The limits of every registered series at `t_ns`, as line protocol.
pub fn lines(registry: &Registry, t_ns: i64) -> String {
    let catalog = Catalog::builtin();
    let mut out = String::new();
    for factory in registry.areas().iter().flat_map(|a| a.factory.iter()) {
        for point in &factory.point {
            for parameter in &point.parameters {
                let Some(p) = catalog.get(point.kind, parameter) else { continue };
                for limit in limits_for(Standards::builtin(), factory, point, parameter) {
                    let canonical = |v: f64| catalog.to_canonical(point.kind, parameter, v, &limit.unit).ok();
                    let applied = limit.max_at(point);
                    let (max, min) = (applied.map(canonical), limit.min.map(canonical));
                    if matches!(max, Some(None)) || matches!(min, Some(None)) {
                        tracing::warn!(factory = %factory.id, point = %point.id, parameter, unit = %limit.unit, "Limit not in the readings' unit; not written to InfluxDB");
                        continue;
                    }
                    let (max, min) = (max.flatten(), min.flatten());
                    if max.is_none() && min.is_none() {
                        continue;
                    }
                    let basis = match (&limit.permit, applied != limit.max) {
                        (Some(_), _) => "permit",
                        (None, true) => "receiving_water",
                        (None, false) => "standard",
                    };
                    let averaging = match limit.averaging {
                        Averaging::Instantaneous => "instantaneous",
                        Averaging::Hourly => "hourly",
                        Averaging::Daily => "daily",
                    };
                    out.push_str(MEASUREMENT);
                    for (key, value) in [
                        ("factory", factory.id.as_str()),
                        ("point", point.id.as_str()),
                        ("parameter", parameter.as_str()),
                        ("kind", point.kind.as_str()),
                        ("basis", basis),
                        ("averaging", averaging),
                        ("unit", p.unit.as_str()),
                        ("limit_id", limit.id.as_str()),
                    ] {
                        out.push(',');
                        out.push_str(key);
                        out.push('=');
                        escape_tag(value, &mut out);
                    }
                    let mut sep = ' ';
                    for (field, v) in [("max", max), ("min", min)] {
                        if let Some(v) = v {
                            let _ = write!(out, "{sep}{field}={v:?}");
                            sep = ',';
                        }
                    }
                    let _ = writeln!(out, " {t_ns}");
                }
            }
        }
    }
    out
}

/// A tag value escaped (commas, equals signs, spaces); an empty one (not allowed) as `-`.
fn escape_tag(s: &str, out: &mut String) {
    if s.is_empty() {
        out.push('-');
    }
    for c in s.chars() {
        if matches!(c, ',' | '=' | ' ' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Starts the task writing the limits to `[influxdb]`.
pub fn spawn(app: AppState, config: InfluxdbSection) {
    tokio::spawn(async move {
        let mut url = match reqwest::Url::parse(&config.url).and_then(|u| u.join("/api/v2/write")) {
            Ok(u) => u,
            Err(error) => {
                tracing::error!(url = %config.url, %error, "InfluxDB URL; limits not written");
                return;
            }
        };
        url.query_pairs_mut()
            .append_pair("org", &config.org)
            .append_pair("bucket", &config.bucket)
            .append_pair("precision", "ns");
        let client = match crate::influxdb::client(&config) {
            Ok(c) => c,
            Err(error) => {
                tracing::error!(%error, "HTTP client; limits not written to InfluxDB");
                return;
            }
        };
        let mut written: Option<(Arc<Registry>, std::time::Instant)> = None;
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let registry = app.registry();
            let due = written
                .as_ref()
                .is_none_or(|(r, at)| !Arc::ptr_eq(r, &registry) || at.elapsed() >= Duration::from_secs(WRITE_EVERY_S));
            if !due {
                continue;
            }
            let now_ns = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
            let body = lines(&registry, now_ns);
            if body.is_empty() {
                written = Some((registry, std::time::Instant::now()));
                continue;
            }
            let sent = client
                .post(url.clone())
                .header("Authorization", format!("Token {}", config.token))
                .header("Content-Type", "text/plain; charset=utf-8")
                .body(body)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => written = Some((registry, std::time::Instant::now())),
                // Tried again at the next tick.
                Ok(r) => tracing::warn!(url = %config.url, status = %r.status(), "InfluxDB refused the limits"),
                Err(error) => tracing::warn!(url = %config.url, %error, "InfluxDB unreachable; limits not written"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const FACTORIES: &str = r#"
[[area.factory]]
id = "f1"
name = "Factory one"
category = 3

[[area.factory.point]]
id = "outfall-1"
kind = "effluent"
parameters = ["bod", "tds", "ph"]
expected_interval_s = 60
receiving_water_tds_mg_per_l = 12000.0

[[area.factory.permit]]
reference = "P-60"
point = "outfall-1"
parameter = "bod"
max = 60.0
unit = "mg/L"
averaging = "instantaneous"
"#;

    #[test]
    fn the_applied_limits_of_every_series_with_their_basis() {
        let registry = crate::testkit::registry(FACTORIES);
        let text = lines(&registry, 1_000);
        let mut got: Vec<&str> = text.lines().collect();
        got.sort();
        assert_eq!(
            got,
            [
                "limit,factory=f1,point=outfall-1,parameter=bod,kind=effluent,basis=permit,averaging=instantaneous,unit=mg/L,limit_id=permit\\ P-60 max=60.0 1000",
                // pH 5.5–9.
                "limit,factory=f1,point=outfall-1,parameter=ph,kind=effluent,basis=standard,averaging=instantaneous,unit=pH,limit_id=moi-effluent-2560\\ 5.1 max=9.0,min=5.5 1000",
                // Receiving water 12 000 > 3 000: max(3 000, 12 000 + 5 000) = 17 000.
                "limit,factory=f1,point=outfall-1,parameter=tds,kind=effluent,basis=receiving_water,averaging=instantaneous,unit=mg/L,limit_id=moi-effluent-2560\\ 5.4 max=17000.0 1000",
            ]
        );
    }
}
