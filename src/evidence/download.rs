//! Serving evidence bytes: streamed from the store with the stored content type, `Accept-Ranges: bytes`, and one
//! byte range when asked (`Range: bytes=a-b`, `a-`, `-n` → 206 with `Content-Range`; a range past the end → 416;
//! several ranges → the whole file, as RFC 9110 allows). The ETag is the digest, so a client can resume safely.

use actix_web::http::header::{self, ByteRangeSpec, ContentDisposition, DispositionParam, DispositionType, Range};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use futures_util::TryStreamExt;

use super::{BlobStore, EvidenceRow};
use crate::error::ApiError;

/// The one satisfiable range asked for, if any: `Ok(None)` for the whole file, `Err(())` when unsatisfiable.
fn wanted(req: &HttpRequest, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = req.headers().get(header::RANGE).and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let Ok(Range::Bytes(specs)) = value.parse::<Range>() else { return Ok(None) };
    let [spec]: [ByteRangeSpec; 1] = match specs.try_into() {
        Ok(one) => one,
        Err(_) => return Ok(None),
    };
    spec.to_satisfiable_range(size).map(Some).ok_or(())
}

/// The file name in ASCII for `filename=`: its ASCII letters, digits, `.`, `-` and `_`, or `evidence.<ext>`.
fn ascii_name(name: &str, content_type: &str) -> String {
    let kept: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')).collect();
    if kept.trim_matches('.').is_empty() || !kept.contains('.') || kept.starts_with('.') {
        let ext = std::path::Path::new(name).extension().and_then(|e| e.to_str()).filter(|e| e.is_ascii());
        format!("evidence.{}", ext.unwrap_or_else(|| content_type.rsplit('/').next().unwrap_or("bin")))
    } else {
        kept
    }
}

/// The response for evidence `row`: its bytes, or the range asked for.
pub async fn serve(req: &HttpRequest, store: &BlobStore, row: &EvidenceRow) -> Result<HttpResponse, ApiError> {
    let size = row.size_bytes as u64;
    let etag = format!("\"{}\"", row.sha256);
    let range = match wanted(req, size) {
        Ok(r) => r,
        Err(()) => {
            return Ok(HttpResponse::build(StatusCode::RANGE_NOT_SATISFIABLE)
                .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                .finish())
        }
    };
    let got = store.get(&row.sha256, range.map(|(a, b)| a..b + 1)).await?;
    let stream = got.into_stream().map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string()));
    let disposition = ContentDisposition {
        disposition: DispositionType::Inline,
        parameters: vec![
            // Old clients read `filename` (ASCII), current ones `filename*` (UTF-8).
            DispositionParam::Filename(ascii_name(&row.filename, &row.content_type)),
            DispositionParam::FilenameExt(header::ExtendedValue {
                charset: header::Charset::Ext("UTF-8".into()),
                language_tag: None,
                value: row.filename.clone().into_bytes(),
            }),
        ],
    };
    let mut res = match range {
        Some((a, b)) => {
            let mut r = HttpResponse::build(StatusCode::PARTIAL_CONTENT);
            r.insert_header((header::CONTENT_RANGE, format!("bytes {a}-{b}/{size}")));
            r.no_chunking(b - a + 1);
            r
        }
        None => {
            let mut r = HttpResponse::Ok();
            r.no_chunking(size);
            r
        }
    };
    Ok(res
        .content_type(row.content_type.as_str())
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::ETAG, etag))
        .insert_header(disposition)
        .streaming(stream))
}
