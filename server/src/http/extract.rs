//! What handlers take from a request besides the state: the caller's read scope, the
//! bearer of a write or admin token, and query strings parsed strictly (an unknown key or a
//! value that is not one of those expected is a 400 naming the key).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use eitwatch_config::server_config::{AnonymousRead, IpNet};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::AppState;
use crate::auth::{self, Bearer, Grant};
use crate::compliance::Filter;

/// Which factory a reader may see: `Some(id)` for a write token or a one-factory read
/// token, `None` for everything (a read-all or admin token, or anonymous loopback when
/// configured).
#[derive(Debug, Clone)]
pub(super) struct ReadScope(pub(super) Option<String>);

impl ReadScope {
    fn of(app: &AppState, headers: &HeaderMap, peer: SocketAddr) -> Result<ReadScope, ApiError> {
        match auth::presented(authorization(headers), None) {
            Some(token) => match app.tokens.check(&token) {
                Some(bearer) => Ok(ReadScope(bearer.grant.factory().map(str::to_string))),
                None => Err(ApiError::unauthorized("unknown or revoked token")),
            },
            None if app.config.api.anonymous_read == AnonymousRead::Loopback
                && client(&app.config.api.trusted_proxies, headers, peer).is_some_and(|ip| ip.is_loopback()) =>
            {
                Ok(ReadScope(None))
            }
            None => Err(ApiError::unauthorized("missing token: send Authorization: Token <token>")),
        }
    }

    /// Whether this reader may see `factory`.
    pub(super) fn allows(&self, factory: &str) -> bool {
        self.0.as_deref().is_none_or(|f| f == factory)
    }
}

/// The client's address: the TCP peer's, or, when the peer is a trusted proxy, the last
/// address its forwarding header (`Forwarded`, else `X-Forwarded-For`) names that is not
/// itself a trusted proxy. `None` when a trusted proxy names no usable address (`unknown`,
/// an obfuscated name, garbage): that client is not known to be anyone in particular.
pub(super) fn client(proxies: &[IpNet], headers: &HeaderMap, peer: SocketAddr) -> Option<IpAddr> {
    let trusted = |ip: IpAddr| proxies.iter().any(|p| p.contains(ip));
    if !trusted(peer.ip()) {
        return Some(peer.ip());
    }
    let mut chain = forwarded_for(headers);
    if chain.is_empty() {
        // A request from the proxy's own host that did not pass through it.
        return Some(peer.ip());
    }
    while let Some(hop) = chain.pop() {
        match hop {
            Some(ip) if trusted(ip) && !chain.is_empty() => continue,
            hop => return hop,
        }
    }
    None
}

/// The hops a forwarding header lists, nearest last: `Forwarded`'s `for=` (RFC 7239) when
/// present, else `X-Forwarded-For`'s; `None` for an entry that is not an address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name| headers.get_all(name).iter().flat_map(|v| v.to_str().ok().unwrap_or("?").split(','));
    let forwarded: Vec<_> = values(header::FORWARDED)
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| hop_address(v.trim().trim_matches('"')))
            })
        })
        .collect();
    if !forwarded.is_empty() || headers.contains_key(header::FORWARDED) {
        return forwarded;
    }
    values(axum::http::HeaderName::from_static("x-forwarded-for")).map(|v| hop_address(v.trim())).collect()
}

/// An address as a forwarding header writes it: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`
/// or `[2001:db8::1]:4711`.
fn hop_address(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    text.parse::<SocketAddr>().ok().map(|a| a.ip())
}

fn peer(parts: &Parts) -> Result<SocketAddr, ApiError> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .ok_or_else(|| ApiError::internal("no peer address on the connection"))
}

impl FromRequestParts<AppState> for ReadScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        ReadScope::of(app, &parts.headers, peer(parts)?)
    }
}

/// The known, unrevoked token of a request that must present one.
#[derive(Debug)]
pub(super) struct Token(pub(super) Bearer);

impl Token {
    /// The bearer of `token`, or 401.
    pub(super) fn check(app: &AppState, token: Option<&str>) -> Result<Bearer, ApiError> {
        let token = token.ok_or_else(|| ApiError::unauthorized("missing token: send Authorization: Token <token>"))?;
        app.tokens.check(token).ok_or_else(|| ApiError::unauthorized("unknown or revoked token"))
    }

    /// Who did it, for the logs a change is recorded in: the token's kind and public id.
    pub(super) fn by(&self) -> String {
        format!("{} token {}", self.0.grant.kind(), self.0.id)
    }
}

impl FromRequestParts<AppState> for Token {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        Token::check(app, auth::presented(authorization(&parts.headers), None).as_deref()).map(Token)
    }
}

/// An admin token (registry changes and their log, notifications, backups): 401 without a
/// token, 403 with another.
#[derive(Debug)]
pub(super) struct Admin(pub(super) Token);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let token = Token::from_request_parts(parts, app).await?;
        match token.0.grant {
            Grant::Admin => Ok(Admin(token)),
            _ => Err(ApiError::forbidden("this takes an admin token")),
        }
    }
}

/// The live stream's read scope: browsers' EventSource cannot send an `Authorization`
/// header, so the token may also come as `?token=` (the header wins when both are there).
#[derive(Debug)]
pub(super) struct StreamScope(pub(super) ReadScope);

/// `GET /api/v1/events`'s query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct StreamQuery {
    /// The token, for clients that cannot send headers (EventSource).
    token: Option<String>,
}

impl FromRequestParts<AppState> for StreamScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let Strict(q) = Strict::<StreamQuery>::from_request_parts(parts, app).await?;
        let mut headers = parts.headers.clone();
        if let Some(token) = q.token.filter(|t| !t.is_empty())
            && !headers.contains_key(header::AUTHORIZATION)
        {
            let value = HeaderValue::from_str(&format!("Token {token}"))
                .map_err(|_| ApiError::unauthorized("token: not a token (control characters)"))?;
            headers.insert(header::AUTHORIZATION, value);
        }
        Ok(StreamScope(ReadScope::of(app, &headers, peer(parts)?)?))
    }
}

/// A query string parsed into `T` (which denies unknown fields): an unknown key, a
/// malformed value or one that is not among those expected is a 400 naming the key.
#[derive(Debug)]
pub(super) struct Strict<T>(pub(super) T);

impl<S: Sync, T: DeserializeOwned> FromRequestParts<S> for Strict<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse(form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()), &[]).map(Strict)
    }
}

/// Parses a query into `T`; an unknown key's error also names `common`, the keys taken
/// before `T` sees the rest.
fn parse<T: DeserializeOwned>(pairs: form_urlencoded::Parse<'_>, common: &[&str]) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(pairs)).map_err(|e| {
        let mut message = e.inner().to_string();
        if message.starts_with("unknown field") && !common.is_empty() {
            message = message.replace(", there are no fields", "");
            message.push_str(&format!("; or one of `{}`", common.join("`, `")));
        }
        match e.path().to_string().as_str() {
            "." => ApiError::invalid(format!("query: {message}")),
            key => ApiError::invalid(format!("{key}: {message}")),
        }
    })
}

/// The keys every filtered list takes (the rest are the list's own, in `T`).
const SELECTION: [&str; 4] = ["area", "factory", "point", "parameter"];
const SPAN: [&str; 4] = ["from", "to", "from_ns", "to_ns"];

/// Where and when a list looks (`area`, `factory`, `point`, `parameter`).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct Selection {
    /// Area id.
    area: Option<String>,
    /// Factory id.
    factory: Option<String>,
    /// Point id.
    point: Option<String>,
    /// Parameter code (`cod`, `so2`, …).
    parameter: Option<String>,
}

/// A time span: each end as RFC 3339 (`2026-11-23T07:00:00+07:00`) or ns since the epoch;
/// `from` inclusive, `to` exclusive.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct Span {
    /// From (inclusive), RFC 3339.
    #[param(format = DateTime)]
    from: Option<String>,
    /// To (exclusive), RFC 3339.
    #[param(format = DateTime)]
    to: Option<String>,
    /// From (inclusive), ns since the epoch.
    from_ns: Option<i64>,
    /// To (exclusive), ns since the epoch.
    to_ns: Option<i64>,
}

/// A list's own query keys, beside the selection and (when `TIMED`) the span.
pub(super) trait ListQuery: DeserializeOwned {
    /// Whether the list takes `from`/`to`.
    const TIMED: bool = true;
}

/// The common preamble of the read lists: the reader's scope, the selection and time span
/// (as a compliance [`Filter`], the scope in it), and the list's own keys `T`.
#[derive(Debug)]
pub(super) struct Filtered<T> {
    pub(super) filter: Filter,
    pub(super) own: T,
}

/// Whether a record of this factory and point, about these parameters (none: about no
/// single parameter), is in the filter; the factory's area is looked up only when the
/// filter names an area.
pub(super) fn covers<P: AsRef<str>>(
    app: &AppState,
    f: &Filter,
    factory: &str,
    point: &str,
    parameters: impl IntoIterator<Item = P>,
) -> bool {
    let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    eq(&f.scope, factory)
        && eq(&f.factory, factory)
        && eq(&f.point, point)
        && f.parameter.as_deref().is_none_or(|w| parameters.into_iter().any(|p| p.as_ref() == w))
        && f.area.as_deref().is_none_or(|a| app.registry().factory(factory).is_some_and(|(area, _)| area.id == a))
}

/// The filter's span as a half-open range.
pub(super) fn range(f: &Filter) -> (i64, i64) {
    (f.from_ns.unwrap_or(i64::MIN), f.to_ns.unwrap_or(i64::MAX))
}

impl<T: ListQuery> FromRequestParts<AppState> for Filtered<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let ReadScope(scope) = ReadScope::from_request_parts(parts, app).await?;
        let query = parts.uri.query().unwrap_or_default().as_bytes();
        let mut common: HashMap<String, String> = HashMap::new();
        let mut rest = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form_urlencoded::parse(query) {
            if SELECTION.contains(&&*k) || (T::TIMED && SPAN.contains(&&*k)) {
                if common.insert(k.to_string(), v.into_owned()).is_some() {
                    return Err(ApiError::invalid(format!("{k}: given more than once")));
                }
            } else {
                rest.append_pair(&k, &v);
            }
        }
        let rest = rest.finish();
        let taken: Vec<&str> = SELECTION.iter().chain(if T::TIMED { &SPAN[..] } else { &[] }).copied().collect();
        let own = parse(form_urlencoded::parse(rest.as_bytes()), &taken)?;
        let filter = Filter {
            scope,
            area: common.remove("area"),
            factory: common.remove("factory"),
            point: common.remove("point"),
            parameter: common.remove("parameter"),
            from_ns: time_bound(&common, "from")?,
            to_ns: time_bound(&common, "to")?,
        };
        Ok(Filtered { filter, own })
    }
}

/// A time bound: `<key>_ns` (ns since the epoch) or `<key>` (RFC 3339); not both.
fn time_bound(q: &HashMap<String, String>, key: &str) -> Result<Option<i64>, ApiError> {
    let ns_key = format!("{key}_ns");
    match (q.get(&ns_key), q.get(key)) {
        (Some(_), Some(_)) => Err(ApiError::invalid(format!("{key}: give either {key} or {ns_key}, not both"))),
        (Some(v), None) => {
            v.parse().map(Some).map_err(|_| ApiError::invalid(format!("{ns_key}: \"{v}\" is not a whole number of ns")))
        }
        (None, Some(v)) => {
            let t = v.parse::<jiff::Timestamp>().map_err(|e| {
                ApiError::invalid(format!("{key}: \"{v}\" is not an RFC 3339 time (2026-11-23T07:00:00+07:00): {e}"))
            })?;
            i64::try_from(t.as_nanosecond()).map(Some).map_err(|_| {
                ApiError::invalid(format!("{key}: \"{v}\" is outside the ns range (1677-09-21 to 2262-04-11)"))
            })
        }
        (None, None) => Ok(None),
    }
}

/// A list with no keys of its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoKeys {}

impl ListQuery for NoKeys {}

/// The same, for a list without a time span.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Untimed {}

impl ListQuery for Untimed {
    const TIMED: bool = false;
}

/// The `Authorization` header's value, where it is text.
pub(super) fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let proxies: Vec<IpNet> = ["127.0.0.1/32", "10.0.0.0/8"].iter().map(|p| p.parse().expect("net")).collect();
        let lo: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let outside: SocketAddr = "203.0.113.9:5000".parse().expect("addr");
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        let xff = headers(&[("x-forwarded-for", "198.51.100.7, 10.1.2.3")]);
        assert_eq!(client(&proxies, &xff, lo), ip("198.51.100.7"), "the last hop not a proxy");
        assert_eq!(client(&[], &xff, lo), ip("127.0.0.1"), "no trusted proxies: the header is ignored");
        assert_eq!(client(&proxies, &xff, outside), ip("203.0.113.9"), "from an untrusted peer: ignored");
        assert_eq!(client(&proxies, &headers(&[]), lo), ip("127.0.0.1"), "no header: the peer");
        let spoofed = headers(&[("x-forwarded-for", "127.0.0.1, 198.51.100.7")]);
        assert_eq!(client(&proxies, &spoofed, lo), ip("198.51.100.7"), "what the client wrote itself is not taken");
        let fwd = headers(&[
            ("forwarded", "for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\""),
            ("x-forwarded-for", "127.0.0.1"),
        ]);
        assert_eq!(client(&proxies, &fwd, lo), ip("2001:db8::1"), "Forwarded wins over X-Forwarded-For");
        assert_eq!(client(&proxies, &headers(&[("forwarded", "for=unknown")]), lo), None);
        assert_eq!(client(&proxies, &headers(&[("x-forwarded-for", "127.0.0.1, 10.0.0.1")]), lo), ip("127.0.0.1"));
        assert_eq!(client(&proxies, &headers(&[("x-forwarded-for", "192.0.2.1:80")]), lo), ip("192.0.2.1"));
    }
}
