//! The request body: read up to `max_body_bytes`, then, for `Content-Encoding: gzip`,
//! decompressed up to `max_body_bytes` again, so neither a huge upload nor a small gzip
//! bomb gets further than the limit.

use std::io::Read as _;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt as _;

use crate::api::ApiError;

/// How the body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    /// As is.
    Identity,
    /// gzip (one or more members, as Go's reader takes).
    Gzip,
}

/// The body's encoding from `Content-Encoding`; anything but identity and gzip is refused.
pub(super) fn encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    match headers.get(header::CONTENT_ENCODING).map(|v| v.to_str().map(str::trim)) {
        None => Ok(Encoding::Identity),
        Some(Ok(v)) if v.eq_ignore_ascii_case("identity") || v.is_empty() => Ok(Encoding::Identity),
        Some(Ok(v)) if v.eq_ignore_ascii_case("gzip") => Ok(Encoding::Gzip),
        Some(v) => Err(ApiError::invalid(format!(
            "Content-Encoding {:?}: expected gzip or identity",
            v.unwrap_or("(not text)")
        ))),
    }
}

/// Refuses, before reading anything, a body whose declared length is over the limit.
pub(super) fn check_declared_length(headers: &HeaderMap, max_bytes: usize) -> Result<(), ApiError> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match declared {
        Some(n) if n > max_bytes as u64 => Err(too_large(format!("request body of {n} bytes"), max_bytes)),
        _ => Ok(()),
    }
}

fn too_large(what: String, max_bytes: usize) -> ApiError {
    ApiError::too_large(format!("{what} is larger than max_body_bytes ({max_bytes}); send smaller batches"))
}

/// Reads the whole body, refusing it once it passes `max_bytes`.
pub(super) async fn read(mut body: Body, max_bytes: usize) -> Result<Bytes, ApiError> {
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::invalid(format!("reading the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            len += data.len();
            if len > max_bytes {
                return Err(too_large("request body".into(), max_bytes));
            }
            chunks.push(data);
        }
    }
    Ok(match chunks.len() {
        1 => chunks.remove(0),
        _ => Bytes::from(chunks.concat()),
    })
}

/// Decompresses a gzip body, refusing it once the output passes `max_bytes`.
pub(super) fn gunzip(data: &[u8], max_bytes: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(max_bytes));
    flate2::read::MultiGzDecoder::new(data)
        .take(max_bytes as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::invalid(format!("Content-Encoding gzip: the body does not decompress: {e}")))?;
    if out.len() > max_bytes {
        return Err(too_large("decompressed request body".into(), max_bytes));
    }
    Ok(out)
}
