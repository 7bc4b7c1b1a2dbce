//! The request body: read up to `max_body_bytes`, then, for `Content-Encoding: gzip`,
//! decompressed up to `max_body_bytes` again, so neither a huge upload nor a small gzip
//! bomb gets further than the limit.

use std::io::Read as _;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt as _;

use super::ApiError;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(bytes).expect("gzip");
        e.finish().expect("gzip")
    }

    #[test]
    fn gunzip_takes_up_to_the_limit_and_concatenated_members() {
        let text = b"effluent,factory=f,point=p cod=1 1\n";
        assert_eq!(gunzip(&gzip(text), text.len()).expect("at the limit"), text);
        let e = gunzip(&gzip(text), text.len() - 1).expect_err("one byte over");
        assert_eq!(e.status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        let mut two = gzip(b"a\n");
        two.extend(gzip(b"b\n"));
        assert_eq!(gunzip(&two, 100).expect("two members"), b"a\nb\n", "as Go's gzip reader does");
        let e = gunzip(text, 100).expect_err("not gzip");
        assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![b'\n'; 64 * 1024 * 1024]);
        assert!(bomb.len() < 100 * 1024, "{}", bomb.len());
        let e = gunzip(&bomb, 1024 * 1024).expect_err("refused");
        assert_eq!(
            e.message(),
            "decompressed request body is larger than max_body_bytes (1048576); send smaller batches"
        );
    }

    #[tokio::test]
    async fn read_refuses_a_body_over_the_limit_whatever_its_declared_length() {
        let body = Body::from(vec![b'x'; 1001]);
        assert_eq!(read(body, 1000).await.expect_err("over").status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(read(Body::from(vec![b'x'; 1000]), 1000).await.expect("at the limit").len(), 1000);
    }
}
