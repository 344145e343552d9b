//! The one error type of the service and its RFC 9457 rendering. Every failure, including actix's own
//! extractor and routing errors, ends up as `application/problem+json` with a stable `code`.
//! `request_id` is filled in by the request-id middleware, which sees every response.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field (or CSV line) of a request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `credit_code` or `location.lat`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// RFC 9457 problem details, as every error response carries them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "https://shuiwu.example/problems/validation_failed", "title": "Validation failed", "status": 400,
    "detail": "1 field is invalid", "code": "validation_failed", "request_id": "01938c1e-7a52-7c4e-9d43-1e8a0c1f2b3d",
    "errors": [{"field": "region_code", "message": "must be 6 digits"}]
}))]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable snake_case error code, e.g. `validation_failed`, `not_found`, `invalid_transition`.
    pub code: String,
    /// The request's `X-Request-Id`.
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with per-field errors; `code` is `validation_failed` or a more specific one (`invalid_credit_code`).
    #[error("validation failed")]
    Validation { code: &'static str, errors: Vec<FieldError> },
    /// 400 for a malformed request that is not about one field (bad JSON syntax, bad cursor).
    #[error("bad request: {detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: Vec<String> },
    /// 409: a business rule refused the request; `code` says which.
    #[error("conflict {code}: {detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("precondition required")]
    PreconditionRequired,
    #[error("payload too large")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type")]
    UnsupportedMediaType { expected: &'static str },
    #[error("idempotency key reused")]
    IdempotencyKeyReused,
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::Internal(msg.into())
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict { code, detail: detail.into() }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation { code: "validation_failed", errors: vec![FieldError::new(field, message)] }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest { code, detail: detail.into() }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation { code, .. } | Self::BadRequest { code, .. } | Self::Conflict { code, .. } => code,
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PreconditionFailed => "precondition_failed",
            Self::PreconditionRequired => "precondition_required",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable => "service_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    fn title_and_detail(&self) -> (&'static str, String) {
        match self {
            Self::Validation { errors, .. } => (
                "Validation failed",
                match errors.len() {
                    1 => format!("{}: {}", errors[0].field, errors[0].message),
                    n => format!("{n} fields are invalid"),
                },
            ),
            Self::BadRequest { detail, .. } => ("Bad request", detail.clone()),
            Self::Unauthorized(why) => ("Unauthorized", (*why).to_string()),
            Self::Forbidden => ("Forbidden", "your roles do not allow this operation".into()),
            Self::NotFound => ("Not found", "no such resource".into()),
            Self::MethodNotAllowed { allow } => {
                ("Method not allowed", format!("this resource supports: {}", allow.join(", ")))
            }
            Self::Conflict { detail, .. } => ("Conflict", detail.clone()),
            Self::PreconditionFailed => {
                ("Precondition failed", "If-Match does not match the current version; reload and retry".into())
            }
            Self::PreconditionRequired => {
                ("Precondition required", "this request needs an If-Match header with the resource's ETag".into())
            }
            Self::PayloadTooLarge { limit } => ("Payload too large", format!("request body exceeds {limit} bytes")),
            Self::UnsupportedMediaType { expected } => {
                ("Unsupported media type", format!("the request body must be {expected}"))
            }
            Self::IdempotencyKeyReused => {
                ("Idempotency key reused", "this Idempotency-Key was already used with a different request".into())
            }
            Self::RateLimited { retry_after_secs } => {
                ("Too many requests", format!("too many attempts; retry after {retry_after_secs} s"))
            }
            Self::Unavailable => ("Service unavailable", "the database is not reachable; retry later".into()),
            Self::Internal(_) => ("Internal server error", "an unexpected error occurred".into()),
        }
    }

    pub fn to_problem(&self) -> Problem {
        let (title, detail) = self.title_and_detail();
        let code = self.code();
        Problem {
            type_: format!("https://shuiwu.example/problems/{code}"),
            title: title.into(),
            status: self.status_code().as_u16(),
            detail,
            code: code.into(),
            request_id: None,
            errors: match self {
                Self::Validation { errors, .. } => Some(errors.clone()),
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation { .. } | Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(msg) = self {
            tracing::error!(error = %msg, "internal error");
        }
        let mut res = HttpResponse::build(self.status_code());
        res.content_type(PROBLEM_JSON);
        match self {
            Self::Unauthorized(_) => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"shuiwu\""));
            }
            Self::MethodNotAllowed { allow } => {
                res.insert_header((header::ALLOW, allow.join(", ")));
            }
            Self::RateLimited { retry_after_secs } => {
                res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            Self::Unavailable => {
                res.insert_header((header::RETRY_AFTER, "5"));
            }
            _ => {}
        }
        res.body(serde_json::to_vec(&self.to_problem()).unwrap_or_default())
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as K, Error as E};
        match e {
            E::NotFound => Self::NotFound,
            E::DatabaseError(K::ClosedConnection | K::UnableToSendCommand, _) | E::BrokenTransactionManager => {
                tracing::warn!(error = %e, "database connection lost");
                Self::Unavailable
            }
            E::DatabaseError(_, ref info) if is_busy(info.message()) => {
                tracing::warn!(error = %e, "database busy");
                Self::Unavailable
            }
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

fn is_busy(message: &str) -> bool {
    message.contains("database is locked") || message.contains("database is busy")
}

impl From<diesel::ConnectionError> for ApiError {
    fn from(e: diesel::ConnectionError) -> Self {
        tracing::warn!(error = %e, "database connection failed");
        Self::Unavailable
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
