//! `POST /api/v2/write`: line protocol in, as InfluxDB v2 takes it (`org`, `bucket`,
//! `precision`, `Authorization: Token …` or `Bearer …`), judged as it lands.
//!
//! A batch is accepted whole (204, after it is on disk) or refused whole, the response naming
//! the first bad line: 400 for what is malformed or unknown, 401 for a missing or unknown
//! token, 403 for a line of another factory, 409 for a rewrite of stored history.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use eitwatch_config::Catalog;
use eitwatch_config::line_protocol::{Precision, decode_each};
use eitwatch_config::reading::{Quality, Reading};

use crate::api::ApiError;
use crate::auth::Grant;
use crate::store::StoreError;
use crate::{AppState, compliance};

/// The token of a request, from `Authorization: Token …` or `Bearer …`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    matches!(scheme, "Token" | "Bearer").then_some(token.trim())
}

/// The handler.
pub async fn write(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let token =
        bearer(&headers).ok_or_else(|| ApiError::unauthorized("missing token: send Authorization: Token <token>"))?;
    let Grant::Factory { factory } = app.tokens.check(token).ok_or_else(|| ApiError::unauthorized("unknown token"))?;
    let precision = match params.get("precision") {
        None => Precision::Ns,
        Some(p) => Precision::parse(p)
            .ok_or_else(|| ApiError::invalid(format!("precision \"{p}\": expected one of ns, us, ms, s")))?,
    };
    if headers.get(axum::http::header::CONTENT_ENCODING).is_some_and(|v| v != "identity") {
        return Err(ApiError::invalid("Content-Encoding: only identity bodies are taken by this version"));
    }
    let text = std::str::from_utf8(&body).map_err(|e| ApiError::invalid(format!("body is not UTF-8: {e}")))?;
    let now_ns = jiff::Timestamp::now().as_nanosecond() as i64;
    let max_future_ns = now_ns.saturating_add(app.config.server.max_future_s as i64 * 1_000_000_000);

    let mut batch: Vec<Reading> = Vec::new();
    let mut forbidden = None;
    let decoded = decode_each(text, precision, now_ns, |line, readings| {
        for r in readings.iter_mut() {
            if r.factory != factory {
                forbidden = Some(format!("line {line}: factory \"{}\" is not the token's factory", r.factory));
                return Err("another factory".into());
            }
            check(&app, r, max_future_ns)?;
        }
        batch.append(readings);
        Ok(())
    });
    if let Some(message) = forbidden {
        tracing::warn!(%factory, %message, "Refused a write for another factory");
        return Err(ApiError::forbidden(message));
    }
    decoded.map_err(|e| ApiError::invalid(e.to_string()))?;

    let store_app = app.clone();
    let (mut fresh, appended) = tokio::task::spawn_blocking(move || store_app.store.append_owned(batch))
        .await
        .map_err(|e| ApiError::internal(format!("store task: {e}")))?
        .map_err(|e| match e {
            StoreError::Rewrite { .. } => {
                tracing::warn!(%factory, error = %e, "Refused a rewrite of stored history");
                ApiError::conflict(e.to_string())
            }
            e => ApiError::internal(e.to_string()),
        })?;
    tracing::debug!(%factory, stored = appended.stored, duplicates = appended.duplicates, "Write accepted");

    fresh.sort_by_key(|r| r.time_ns);
    let judged = fresh.iter().flat_map(|r| compliance::judge(&app.registry, r).into_iter().map(move |j| (r, j)));
    if let Err(error) = app.alerts.apply(judged) {
        // The readings are stored; the alert file is what failed. Say so loudly.
        tracing::error!(%error, "Cannot save alerts");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Checks one reading against the registry and catalog; marks implausible values suspect.
fn check(app: &AppState, r: &mut Reading, max_future_ns: i64) -> Result<(), String> {
    let Some((_, point)) = app.registry.point(&r.factory, &r.point) else {
        return Err(format!("unknown point \"{}\" of factory \"{}\"", r.point, r.factory));
    };
    if point.kind != r.kind {
        return Err(format!("point \"{}\" is an {} point, not {}", r.point, point.kind, r.kind));
    }
    let catalog = Catalog::builtin();
    catalog.require(r.kind, &r.parameter).map_err(|e| e.to_string())?;
    if r.time_ns > max_future_ns {
        return Err(format!(
            "timestamp {} ns is more than {} s in the future",
            r.time_ns, app.config.server.max_future_s
        ));
    }
    if r.quality == Quality::Valid && !catalog.is_plausible(r.kind, &r.parameter, r.value) {
        r.quality = Quality::Suspect;
    }
    Ok(())
}
