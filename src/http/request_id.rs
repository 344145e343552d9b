//! `X-Request-Id` on every request and response, the request's tracing span, and the last line of defence
//! for error bodies: every 4xx/5xx leaves as `application/problem+json` carrying `code` and `request_id`.

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

use crate::error::{ApiError, PROBLEM_JSON};
use crate::messages::{Lang, Msg};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The request's id, as the middleware assigned it.
pub fn request_id(req: &actix_web::HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(|r| r.0.clone())
}

fn acceptable(v: &str) -> bool {
    !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic())
}

/// Outermost middleware: assigns the request id (the caller's, when it sent a sane one) and normalises errors.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let api = req.path().starts_with("/api/");
    let lang = Lang::negotiate(req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    let res = next.call(req).await?.map_into_boxed_body();
    let mut res = if res.status().as_u16() >= 400 { into_problem(res, &id, lang).await } else { res };
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(X_REQUEST_ID, v);
    }
    harden(headers, api);
    Ok(res)
}

/// Browser hardening on every response: no MIME sniffing, no framing (clickjacking), no referrer; and API answers
/// (records, accounts, the audit trail) are never stored by browsers or proxies.
fn harden(headers: &mut actix_web::http::header::HeaderMap, api: bool) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if api {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    } else if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("frame-ancestors 'none'"));
    }
}

/// Writes the problem of an error response in the request's language with its request id: from the error itself
/// when it is one of ours, else from the body a problem already has, else the closest problem for its status.
async fn into_problem(res: ServiceResponse<BoxBody>, id: &str, lang: Lang) -> ServiceResponse<BoxBody> {
    let ours = res.response().error().and_then(|e| e.as_error::<ApiError>()).map(|e| e.to_problem(lang));
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON));
    let status = res.status();
    let (req, res) = res.into_parts();
    let (mut head, body) = res.into_parts();
    let mut problem = match ours {
        Some(p) => serde_json::to_value(p).ok(),
        None if is_problem => body::to_bytes_limited(body, 256 * 1024)
            .await
            .ok()
            .and_then(|b| b.ok())
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok()),
        None => None,
    }
    .unwrap_or_else(|| serde_json::to_value(fallback_error(status).to_problem(lang)).unwrap_or_default());
    problem["request_id"] = serde_json::Value::String(id.to_string());
    let headers = head.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    headers.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(if lang == Lang::En { "en" } else { "zh-CN" }));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    let bytes = serde_json::to_vec(&problem).unwrap_or_default();
    headers.remove(header::CONTENT_LENGTH);
    let res = head.set_body(BoxBody::new(bytes));
    ServiceResponse::new(req, res)
}

/// The closest problem for an error produced outside our handlers (actix internals).
fn fallback_error(status: StatusCode) -> ApiError {
    match status.as_u16() {
        400 => ApiError::bad_request(Msg::Malformed),
        401 => ApiError::Unauthorized(Msg::AuthenticationRequired),
        403 => ApiError::Forbidden,
        404 => ApiError::NotFound,
        405 => ApiError::MethodNotAllowed { allow: vec![] },
        412 => ApiError::PreconditionFailed,
        413 => ApiError::PayloadTooLarge { limit: crate::http::json::MAX_BODY },
        415 => ApiError::UnsupportedMediaType { expected: "application/json" },
        428 => ApiError::PreconditionRequired,
        429 => ApiError::RateLimited { retry_after_secs: 60 },
        503 => ApiError::Unavailable,
        s if s < 500 => ApiError::bad_request(Msg::Malformed),
        _ => ApiError::Internal(format!("status {status} without a problem body")),
    }
}

/// Root span per request, carrying the request id. Closing it logs the request (see `telemetry`);
/// client errors are not logged as events, server errors are.
pub struct RootSpan;

impl RootSpanBuilder for RootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = request.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
        let route = request.match_pattern().unwrap_or_else(|| "default".into());
        tracing::info_span!(
            "request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %request.uri(),
            request_id = %id,
            http.status_code = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        match outcome {
            Ok(res) => {
                span.record("http.status_code", res.status().as_u16());
            }
            Err(e) => {
                let status = e.as_response_error().status_code().as_u16();
                span.record("http.status_code", status);
                tracing::error!(parent: &span, error = %e, "request failed");
            }
        }
    }
}
