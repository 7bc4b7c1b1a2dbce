//! Gap records: what an agent's outbox had to drop when it was full (point, parameters, time
//! range, count, reason "agent buffer overflow"), so that the periods they cover are judged
//! "insufficient data" and nobody mistakes a hole for compliance.
//!
//! - `POST /api/v1/gaps` with the factory's write token and `{"gaps": [{"id", "factory",
//!   "point", "kind", "parameters", "from_ns", "to_ns", "count", "reason"}, …]}`. The token
//!   pins the factory: a gap of another factory refuses the request (403). Accepted whole
//!   (204, once on disk) or refused whole (400 naming the gap and the problem).
//! - `GET /api/v1/gaps?factory=&point=`: the stored gaps, oldest first; a factory token sees
//!   its own factory only, as for readings.
//!
//! On disk: `<data_dir>/gaps.log`, append-only, one JSON object per line, `fdatasync`ed before
//! the answer. A torn last line (a crash mid-write, never acknowledged) is cut at open.
//! A gap re-sent after a timeout (same factory and id, same content) is stored once; the
//! same id with other content is refused (409): history is append-only.

use std::collections::HashMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::ApiError;
use crate::auth::Grant;

pub use eitwatch_config::gap::Gap;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    gap: Gap,
    received: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    gaps: Vec<Gap>,
}

/// A gap as the compliance engine takes it: the periods it overlaps lack data for its reason.
pub fn gap_info(g: &Gap) -> crate::compliance::GapInfo {
    crate::compliance::GapInfo {
        factory: g.factory.clone(),
        point: g.point.clone(),
        parameters: g.parameters.clone(),
        from_ns: g.from_ns,
        to_ns: g.to_ns,
        count: g.count,
        reason: g.reason.clone(),
    }
}

/// The gap log.
#[derive(Debug)]
pub struct GapLog {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    gaps: Vec<Stored>,
    by_id: HashMap<(String, String), usize>,
}

impl GapLog {
    /// Opens (or creates) the log, cutting a torn last line.
    pub fn open(path: &Path) -> std::io::Result<GapLog> {
        let gaps: Vec<Stored> = crate::jsonl::read(path)?;
        let file = crate::jsonl::open(path)?;
        let by_id = gaps.iter().enumerate().map(|(i, g)| ((g.gap.factory.clone(), g.gap.id.clone()), i)).collect();
        Ok(GapLog { path: path.to_path_buf(), inner: Mutex::new(Inner { file, gaps, by_id }) })
    }

    /// Appends gaps, all or none; identical re-sent gaps are skipped. Returns how many were new.
    pub fn append(&self, gaps: Vec<Gap>) -> Result<usize, ApiError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut fresh = Vec::new();
        for gap in gaps {
            match inner.by_id.get(&(gap.factory.clone(), gap.id.clone())) {
                Some(&i) if inner.gaps[i].gap == gap => {}
                Some(_) => {
                    return Err(ApiError::conflict(format!(
                        "gap \"{}\" of {} is stored with other content: history is append-only",
                        gap.id, gap.factory
                    )));
                }
                None if fresh.iter().any(|s: &Stored| s.gap.id == gap.id) => {}
                None => fresh.push(Stored { gap, received: jiff::Timestamp::now().to_string() }),
            }
        }
        if fresh.is_empty() {
            return Ok(0);
        }
        if let Err(e) = crate::jsonl::append(&mut inner.file, &fresh) {
            return Err(ApiError::internal(format!("{}: {e}", self.path.display())));
        }
        let n = fresh.len();
        for s in fresh {
            let i = inner.gaps.len();
            inner.by_id.insert((s.gap.factory.clone(), s.gap.id.clone()), i);
            inner.gaps.push(s);
        }
        Ok(n)
    }

    /// Stored gaps matching `keep`, oldest first.
    pub fn list(&self, keep: impl Fn(&Gap) -> bool) -> Vec<Gap> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.gaps.iter().filter(|s| keep(&s.gap)).map(|s| s.gap.clone()).collect()
    }
}

fn check(app: &AppState, n: usize, gap: &Gap) -> Result<(), String> {
    let at = format!("gap {n} (\"{}\")", gap.id);
    let registry = app.registry();
    let Some((_, point)) = registry.point(&gap.factory, &gap.point) else {
        return Err(format!("{at}: unknown point \"{}\" of factory \"{}\"", gap.point, gap.factory));
    };
    if point.kind.as_str() != gap.kind {
        return Err(format!("{at}: point \"{}\" is an {} point, not {}", gap.point, point.kind, gap.kind));
    }
    if gap.id.is_empty() || gap.reason.is_empty() || gap.parameters.is_empty() {
        return Err(format!("{at}: id, reason and parameters must not be empty"));
    }
    if gap.count == 0 || gap.from_ns > gap.to_ns {
        return Err(format!("{at}: expected count ≥ 1 and from_ns ≤ to_ns"));
    }
    Ok(())
}

/// `POST /api/v1/gaps`.
pub async fn record(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<StatusCode, ApiError> {
    let token = crate::auth::presented(&headers, None)
        .ok_or_else(|| ApiError::unauthorized("missing token: send Authorization: Token <token>"))?;
    let bearer = app.tokens.check(&token).ok_or_else(|| ApiError::unauthorized("unknown or revoked token"))?;
    let Grant::Write { factory } = bearer.grant else {
        return Err(ApiError::forbidden(format!("a {} token may not write gap records", bearer.grant.kind())));
    };
    let body: Body = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("body is not {{\"gaps\": [...]}}: {e}")))?;
    for (i, gap) in body.gaps.iter().enumerate() {
        if gap.factory != factory {
            tracing::warn!(%factory, gap_factory = %gap.factory, "Refused a gap for another factory");
            return Err(ApiError::forbidden(format!(
                "gap {} (\"{}\"): factory \"{}\" is not the token's factory",
                i + 1,
                gap.id,
                gap.factory
            )));
        }
        check(&app, i + 1, gap).map_err(ApiError::invalid)?;
    }
    let summary: Vec<_> = body.gaps.iter().map(|g| (g.point.clone(), g.count)).collect();
    let infos: Vec<_> = body.gaps.iter().map(gap_info).collect();
    let store = app.clone();
    let fresh = tokio::task::spawn_blocking(move || {
        let fresh = store.gaps.append(body.gaps)?;
        for info in infos {
            store.compliance.gap(info);
        }
        Ok::<_, ApiError>(fresh)
    })
    .await
    .map_err(|e| ApiError::internal(format!("gap task: {e}")))??;
    for (point, count) in summary {
        tracing::warn!(%factory, %point, count, "Agent reports readings it had to drop (gap record)");
    }
    tracing::debug!(%factory, fresh, "Gaps stored");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/gaps?factory=&point=`.
pub async fn list(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let scope = crate::api::read_scope(&app, &headers, peer)?;
    let matches = |key: &str, value: &str| q.get(key).is_none_or(|v| v == value);
    let gaps = app.gaps.list(|g| {
        scope.as_deref().is_none_or(|f| f == g.factory) && matches("factory", &g.factory) && matches("point", &g.point)
    });
    Ok(Json(serde_json::json!({ "gaps": gaps })))
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write as _;

    use super::*;

    fn gap(id: &str, count: u64) -> Gap {
        Gap {
            id: id.into(),
            factory: "f1".into(),
            point: "outfall-1".into(),
            kind: "effluent".into(),
            parameters: vec!["cod".into()],
            from_ns: 1,
            to_ns: 2,
            count,
            reason: "agent buffer overflow".into(),
        }
    }

    #[test]
    fn the_log_survives_a_restart_and_a_torn_last_line_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gaps.log");
        {
            let log = GapLog::open(&path).expect("open");
            assert_eq!(log.append(vec![gap("a", 1), gap("b", 2)]).expect("append"), 2);
            assert_eq!(log.append(vec![gap("a", 1)]).expect("append"), 0, "a re-sent gap is stored once");
            assert!(log.append(vec![gap("b", 3)]).is_err(), "same id, other content");
        }
        let len = std::fs::metadata(&path).expect("meta").len();
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(br#"{"id":"c","fac"#).expect("write");
        drop(f);
        let log = GapLog::open(&path).expect("reopen");
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), len, "torn line cut");
        assert_eq!(log.list(|_| true), vec![gap("a", 1), gap("b", 2)]);
        assert_eq!(log.append(vec![gap("c", 4)]).expect("append"), 1);
        drop(log);
        assert_eq!(GapLog::open(&path).expect("reopen").list(|g| g.id == "c"), vec![gap("c", 4)]);
    }
}
