//! JSON request bodies: `application/json` only (415 otherwise), at most 1 MiB (413), unknown fields and
//! type errors reported per field (400 `validation_failed` with the field's path).

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode, FieldError};

/// Default request body limit (API.md §1).
pub const MAX_BODY: usize = 1024 * 1024;

pub struct ApiJson<T>(pub T);

pub fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| v == "application/json" || (v.starts_with("application/") && v.ends_with("+json")))
}

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
    limit: usize,
) -> Result<actix_web::web::Bytes, ApiError> {
    if let Some(len) = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok()) {
        if len > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
    }
    let mut buf = actix_web::web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            actix_web::error::PayloadError::Overflow => ApiError::PayloadTooLarge { limit },
            _ => ApiError::bad_request("the request body could not be read"),
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Parses JSON, naming the offending field in the error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                format!("malformed JSON: {inner}")
            }
            _ => strip_position(&inner.to_string()),
        };
        let field = if path == "." || path.is_empty() { "body".to_string() } else { path };
        ApiError::Validation { code: ErrorCode::ValidationFailed, errors: vec![FieldError::new(field, message)] }
    })
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            if !is_json(&req) {
                return Err(ApiError::UnsupportedMediaType { expected: "application/json" });
            }
            let bytes = read_body(&req, &mut payload, MAX_BODY).await?;
            parse(&bytes).map(ApiJson)
        })
    }
}

/// Query-string errors (`web::Query`) as problems.
pub fn query_error(err: actix_web::error::QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let msg = strip_position(&err.to_string());
    let msg = msg.strip_prefix("Query deserialize error: ").unwrap_or(&msg).to_string();
    ApiError::Validation { code: ErrorCode::ValidationFailed, errors: vec![FieldError::new("query", msg)] }.into()
}

/// Path-segment errors (`web::Path`) as problems.
pub fn path_error(err: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::Validation { code: ErrorCode::ValidationFailed, errors: vec![FieldError::new("path", err.to_string())] }
        .into()
}

/// Like [`ApiJson`], but an empty body (no content at all) reads as `T::default()`: for actions whose body
/// fields are all optional.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let bytes = read_body(&req, &mut payload, MAX_BODY).await?;
            if bytes.is_empty() {
                return Ok(OptionalJson(T::default()));
            }
            if !is_json(&req) {
                return Err(ApiError::UnsupportedMediaType { expected: "application/json" });
            }
            parse(&bytes).map(OptionalJson)
        })
    }
}
