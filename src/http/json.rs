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

/// Parses a JSON request body: a JSON object and nothing after it, no control characters in any string (tabs and
/// line breaks aside; single-line fields check further), then the request type — naming the offending field and
/// saying what is expected in plain words.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        let message = match e.classify() {
            serde_json::error::Category::Eof => "the JSON ends too early".to_string(),
            _ => format!("is not well-formed JSON ({})", strip_position(&e.to_string())),
        };
        ApiError::Validation { code: ErrorCode::ValidationFailed, errors: vec![FieldError::new("body", message)] }
    })?;
    if !value.is_object() {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    let mut errors = Vec::new();
    find_control_characters(&value, "", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation { code: ErrorCode::ValidationFailed, errors });
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let error = humanize(&path, &e.into_inner().to_string());
        ApiError::Validation { code: ErrorCode::ValidationFailed, errors: vec![error] }
    })
}

fn find_control_characters(value: &serde_json::Value, path: &str, errors: &mut Vec<FieldError>) {
    use serde_json::Value;
    let at = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    match value {
        Value::String(s) if s.chars().any(crate::domain::text::is_forbidden_in_text) => {
            errors.push(FieldError::new(
                if path.is_empty() { "body" } else { path },
                "must not contain control characters",
            ));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_control_characters(item, &format!("{}[{i}]", if path.is_empty() { "body" } else { path }), errors);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                if key.chars().any(crate::domain::text::is_forbidden_in_line) {
                    errors.push(FieldError::new(at("?"), "field names must not contain control characters"));
                } else {
                    find_control_characters(item, &at(key), errors);
                }
            }
        }
        _ => {}
    }
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// The text between the first pair of backticks after `prefix` in `msg`.
fn quoted_after<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = msg.strip_prefix(prefix)?;
    let rest = rest.strip_prefix('`')?;
    rest.split_once('`').map(|(name, _)| name)
}

/// A deserializer's message about the value at `path` (serde's words) as a field error in plain words.
pub fn humanize(path: &str, msg: &str) -> FieldError {
    let msg = strip_position(msg);
    let join = |name: &str| if path.is_empty() || path == "." { name.to_string() } else { format!("{path}.{name}") };
    let field = if path.is_empty() || path == "." { "body".to_string() } else { path.to_string() };
    if let Some(name) = quoted_after(&msg, "missing field ") {
        return FieldError::new(join(name), "is required");
    }
    if let Some(name) = quoted_after(&msg, "unknown field ") {
        let field = if path.ends_with(name) { field } else { join(name) };
        return FieldError::new(field, "is not a field of this request");
    }
    if let Some(given) = quoted_after(&msg, "unknown variant ") {
        let allowed: Vec<&str> = msg.split('`').skip(3).step_by(2).collect();
        return FieldError::new(field, format!("must be one of: {} (got {given:?})", allowed.join(", ")));
    }
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        let (given, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        if given == "null" {
            return FieldError::new(field, "must not be null");
        }
        return FieldError::new(field, expected_words(expected));
    }
    if msg.starts_with("invalid value: ") || msg.contains("too large") || msg.contains("too small") {
        return FieldError::new(field, "is out of range");
    }
    if msg.contains("invalid digit") || msg.contains("cannot parse integer") {
        return FieldError::new(field, "must be a whole number");
    }
    if msg.contains("invalid float literal") {
        return FieldError::new(field, "must be a number");
    }
    if msg.contains("`true` or `false`") {
        return FieldError::new(field, "must be true or false");
    }
    FieldError::new(field, msg)
}

fn expected_words(expected: &str) -> String {
    let e = expected.trim();
    if ["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "usize", "isize"].contains(&e) || e.contains("integer") {
        "must be a whole number".into()
    } else if e == "f32" || e == "f64" {
        "must be a number".into()
    } else if e.contains("string") {
        "must be text".into()
    } else if e.contains("boolean") {
        "must be true or false".into()
    } else if e.starts_with("struct") || e.contains("map") {
        "must be an object".into()
    } else if e.contains("sequence") {
        "must be a list".into()
    } else if e.is_empty() {
        "has the wrong type".into()
    } else {
        format!("has the wrong type (expected {e})")
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
