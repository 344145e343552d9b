//! Optimistic concurrency: every single-resource response carries `ETag: "<version>"`; writes to an existing
//! resource require `If-Match` (missing → 428, stale → 412).

use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use futures_util::future::{ready, Ready};
use serde::Serialize;

use crate::error::ApiError;

/// The parsed `If-Match` header: `None` when absent.
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<IfMatchValue>);

#[derive(Debug, Clone, Copy)]
pub enum IfMatchValue {
    Any,
    Version(i64),
    /// Present but not a version this service issued: never matches.
    Unknown,
}

impl IfMatch {
    /// Requires the header and checks it against the current version.
    pub fn check(&self, current: i64) -> Result<(), ApiError> {
        match self.0 {
            None => Err(ApiError::PreconditionRequired),
            Some(v) => Self::matches(v, current),
        }
    }

    /// Checks the header only when it was sent.
    pub fn check_if_present(&self, current: i64) -> Result<(), ApiError> {
        match self.0 {
            None => Ok(()),
            Some(v) => Self::matches(v, current),
        }
    }

    /// Fails with 428 before any work when the header is missing.
    pub fn require(&self) -> Result<(), ApiError> {
        self.0.map(|_| ()).ok_or(ApiError::PreconditionRequired)
    }

    fn matches(v: IfMatchValue, current: i64) -> Result<(), ApiError> {
        match v {
            IfMatchValue::Any => Ok(()),
            IfMatchValue::Version(n) if n == current => Ok(()),
            _ => Err(ApiError::PreconditionFailed),
        }
    }
}

fn parse(value: &str) -> IfMatchValue {
    let v = value.trim();
    if v == "*" {
        return IfMatchValue::Any;
    }
    // A list of tags matches when any does; weak tags never match (strong comparison, RFC 9110 §13.1.1).
    let mut found = IfMatchValue::Unknown;
    for tag in v.split(',').map(str::trim) {
        // `"3"` as issued; a bare `3` (a common client mistake) means the same.
        let bare = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(tag);
        if let Some(n) = bare.parse::<i64>().ok().filter(|_| !tag.starts_with("W/")) {
            if let IfMatchValue::Unknown = found {
                found = IfMatchValue::Version(n);
            }
        }
    }
    found
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let v = req.headers().get(header::IF_MATCH).map(|h| h.to_str().map(parse).unwrap_or(IfMatchValue::Unknown));
        ready(Ok(IfMatch(v)))
    }
}

pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// A JSON response for one resource, with its ETag.
pub fn respond<T: Serialize>(status: StatusCode, version: i64, body: &T) -> HttpResponse {
    HttpResponse::build(status).insert_header((header::ETAG, etag(version))).json(body)
}
