//! JSON request bodies: `application/json` only (415 otherwise), at most 1 MiB (413), unknown fields and
//! type errors reported per field (400 `validation_failed` with the field's path).

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode, FieldError};
use crate::messages::Msg;

/// Default request body limit (docs/api.md).
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
            _ => ApiError::bad_request(Msg::BodyUnreadable),
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
            serde_json::error::Category::Eof => Msg::JsonTooShort,
            _ => Msg::JsonMalformed(strip_position(&e.to_string())),
        };
        ApiError::Validation { code: ErrorCode::ValidationFailed, errors: vec![FieldError::new("body", message)] }
    })?;
    if !value.is_object() {
        return Err(ApiError::invalid("body", Msg::JsonObject));
    }
    let mut errors = Vec::new();
    find_control_characters(&value, &mut Vec::new(), &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation { code: ErrorCode::ValidationFailed, errors });
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let error = humanize(&path, &e.into_inner().to_string());
        ApiError::Validation { code: ErrorCode::ValidationFailed, errors: vec![error] }
    })
}

/// At most this many fields are reported (and looked at once that many are found).
const MAX_REPORTED: usize = 10;

/// One step of a path into a JSON body.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// The path as a field name, bounded (a hostile body may have keys of any length).
fn path_name(path: &[Step<'_>]) -> String {
    let mut name = String::new();
    for step in path {
        match step {
            Step::Key(k) if name.is_empty() => name.push_str(k),
            Step::Key(k) => {
                name.push('.');
                name.push_str(k);
            }
            Step::Index(i) => name.push_str(&format!("[{i}]")),
        }
        if name.len() > 200 {
            break;
        }
    }
    let name = if name.is_empty() { "body".to_string() } else { name };
    crate::domain::text::untrusted(&name, 100)
}

/// Finds strings holding control characters. The path is a stack of borrowed steps, written out only for a
/// field that is reported, so a large body costs one walk and no copies.
fn find_control_characters<'a>(value: &'a serde_json::Value, path: &mut Vec<Step<'a>>, errors: &mut Vec<FieldError>) {
    use serde_json::Value;
    if errors.len() >= MAX_REPORTED {
        return;
    }
    match value {
        Value::String(s) if s.chars().any(crate::domain::text::is_forbidden_in_text) => {
            errors.push(FieldError::new(path_name(path), Msg::NoControlChars));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                find_control_characters(item, path, errors);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                path.push(Step::Key(key));
                if key.chars().any(crate::domain::text::is_forbidden_in_line) {
                    errors.push(FieldError::new(path_name(path), Msg::FieldNameControlChars));
                } else {
                    find_control_characters(item, path, errors);
                }
                path.pop();
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
    let FieldError { field, message, .. } = humanize_unbounded(path, msg);
    // What a client sent is echoed bounded: names and values may be of any length.
    let bound = |s: String| crate::domain::text::untrusted(&s, 100);
    let message = match message {
        Msg::OneOf { allowed, given } => Msg::OneOf { allowed, given: bound(given) },
        Msg::Unreadable(raw) => Msg::Unreadable(bound(raw)),
        m => m,
    };
    FieldError::new(bound(field), message)
}

fn humanize_unbounded(path: &str, msg: &str) -> FieldError {
    let msg = strip_position(msg);
    let join = |name: &str| if path.is_empty() || path == "." { name.to_string() } else { format!("{path}.{name}") };
    let field = if path.is_empty() || path == "." { "body".to_string() } else { path.to_string() };
    // Our own value types (dates, months) say it in the catalogue's English already.
    for known in [Msg::Date, Msg::DateRange, Msg::NotCalendarDate, Msg::MonthFormat] {
        if msg == known.render(crate::messages::Lang::En) {
            return FieldError::new(field, known);
        }
    }
    if let Some(name) = quoted_after(&msg, "missing field ") {
        return FieldError::new(join(name), Msg::Required);
    }
    if let Some(name) = quoted_after(&msg, "unknown field ") {
        let field = if path.ends_with(name) { field } else { join(name) };
        return FieldError::new(field, Msg::UnknownField);
    }
    if let Some(given) = quoted_after(&msg, "unknown variant ") {
        let allowed = msg.split('`').skip(3).step_by(2).map(str::to_string).collect();
        return FieldError::new(field, Msg::OneOf { allowed, given: given.to_string() });
    }
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        let (given, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        if given == "null" {
            return FieldError::new(field, Msg::NotNull);
        }
        return FieldError::new(field, expected_words(expected));
    }
    if msg.starts_with("invalid value: ") || msg.contains("too large") || msg.contains("too small") {
        return FieldError::new(field, Msg::OutOfRange);
    }
    if msg.contains("invalid digit") || msg.contains("cannot parse integer") {
        return FieldError::new(field, Msg::WholeNumber);
    }
    if msg.contains("invalid float literal") {
        return FieldError::new(field, Msg::Number);
    }
    if msg.contains("`true` or `false`") {
        return FieldError::new(field, Msg::Boolean);
    }
    FieldError::new(field, Msg::Unreadable(msg))
}

fn expected_words(expected: &str) -> Msg {
    let e = expected.trim();
    if ["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "usize", "isize"].contains(&e) || e.contains("integer") {
        Msg::WholeNumber
    } else if e == "f32" || e == "f64" {
        Msg::Number
    } else if e.contains("string") {
        Msg::Text
    } else if e.contains("boolean") {
        Msg::Boolean
    } else if e.starts_with("struct") || e.contains("map") {
        Msg::Object
    } else if e.contains("sequence") {
        Msg::List
    } else {
        Msg::WrongType(e.to_string())
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
    ApiError::Validation {
        code: ErrorCode::ValidationFailed,
        errors: vec![FieldError::new("path", Msg::Unreadable(err.to_string()))],
    }
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
