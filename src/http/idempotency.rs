//! `Idempotency-Key` on POST (API.md §1): the first request with a key runs and its response is stored in the
//! database; the same key and body again gets the stored response, a different body 422, and a request
//! arriving while the first still runs 409. Keys are scoped to the caller (token subject) and kept for
//! `SHUIWU_IDEMPOTENCY_TTL` (24 h). Responses that carry secrets (tokens, client secrets) are never stored:
//! on `/auth/` and `/service-accounts` the header is accepted and ignored.

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse, ResponseError};
use chrono::TimeDelta;
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::db::schema::idempotency_keys::dsl as k;
use crate::db::{is_unique_violation, DbConn};
use crate::error::ApiError;
use crate::startup::AppState;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotency-replayed");

/// How long an unfinished claim blocks its key before a retry may take it over (the first request died).
const IN_FLIGHT_TAKEOVER: TimeDelta = TimeDelta::seconds(120);
/// Largest response body stored for replay.
const MAX_STORED_BODY: usize = 4 * 1024 * 1024;

fn excluded(path: &str) -> bool {
    path.starts_with("/api/v1/auth/") || path.starts_with("/api/v1/service-accounts")
}

enum Claim {
    Proceed,
    Replay { status: i32, headers: String, body: Vec<u8> },
}

fn claim(conn: &mut DbConn, scope: &str, key: &str, hash: &str, ttl: TimeDelta) -> Result<Claim, ApiError> {
    let now = crate::db::now();
    let fresh = (
        k::scope.eq(scope),
        k::key.eq(key),
        k::request_hash.eq(hash),
        k::state.eq("in_flight"),
        k::created_at.eq(now),
        k::expires_at.eq(now + ttl),
    );
    let inserted = conn.transaction(|c| diesel::insert_into(k::idempotency_keys).values(fresh).execute(c));
    match inserted {
        Ok(_) => return Ok(Claim::Proceed),
        Err(e) if is_unique_violation(&e) => {}
        Err(e) => return Err(e.into()),
    }
    type Row =
        (String, String, Option<i32>, Option<String>, Option<Vec<u8>>, chrono::NaiveDateTime, chrono::NaiveDateTime);
    let (req_hash, state, status, headers, body, created, expires): Row = k::idempotency_keys
        .filter(k::scope.eq(scope).and(k::key.eq(key)))
        .select((
            k::request_hash,
            k::state,
            k::status_code,
            k::response_headers,
            k::response_body,
            k::created_at,
            k::expires_at,
        ))
        .first(conn)?;
    let stale_claim = state == "in_flight" && created + IN_FLIGHT_TAKEOVER < now;
    if expires <= now || stale_claim {
        // Expired, or abandoned by a request that died: start over under this request.
        diesel::update(
            k::idempotency_keys.filter(k::scope.eq(scope).and(k::key.eq(key)).and(k::created_at.eq(created))),
        )
        .set((
            k::request_hash.eq(hash),
            k::state.eq("in_flight"),
            k::status_code.eq(None::<i32>),
            k::response_headers.eq(None::<String>),
            k::response_body.eq(None::<Vec<u8>>),
            k::created_at.eq(now),
            k::expires_at.eq(now + ttl),
        ))
        .execute(conn)?;
        return Ok(Claim::Proceed);
    }
    match (state.as_str(), status) {
        ("done", Some(status)) if req_hash == hash => {
            Ok(Claim::Replay { status, headers: headers.unwrap_or_default(), body: body.unwrap_or_default() })
        }
        ("done", _) => Err(ApiError::IdempotencyKeyReused),
        _ => Err(ApiError::conflict(
            "idempotency_key_in_flight",
            "a request with this Idempotency-Key is still being processed; retry later",
        )),
    }
}

fn finish(conn: &mut DbConn, scope: &str, key: &str, status: u16, headers: &str, body: &[u8]) -> QueryResult<()> {
    diesel::update(k::idempotency_keys.filter(k::scope.eq(scope).and(k::key.eq(key))))
        .set((
            k::state.eq("done"),
            k::status_code.eq(Some(i32::from(status))),
            k::response_headers.eq(Some(headers)),
            k::response_body.eq(Some(body)),
        ))
        .execute(conn)
        .map(|_| ())
}

fn release(conn: &mut DbConn, scope: &str, key: &str) -> QueryResult<()> {
    diesel::delete(k::idempotency_keys.filter(k::scope.eq(scope).and(k::key.eq(key).and(k::state.eq("in_flight")))))
        .execute(conn)
        .map(|_| ())
}

/// Outcomes worth replaying: successes, and refusals that depend on the request alone (bad body, unknown
/// resource). Refusals that depend on the moment — auth, throttling, conflicts, stale or missing If-Match — and
/// server errors release the key, so that a retry with the same key runs for real.
fn storable(status: StatusCode) -> bool {
    status.is_success() || matches!(status.as_u16(), 400 | 404 | 413 | 415)
}

const STORED_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::ETAG, header::LOCATION];

pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let key = match req.headers().get(&IDEMPOTENCY_KEY) {
        Some(v) if req.method() == Method::POST && !excluded(req.path()) => v.clone(),
        _ => return Ok(next.call(req).await?.map_into_boxed_body()),
    };
    let key = match key.to_str() {
        Ok(s) if !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_graphic() || b == b' ') => {
            s.to_string()
        }
        _ => {
            let e = ApiError::invalid("Idempotency-Key", "must be 1 to 255 visible ASCII characters");
            return Ok(req.error_response(e));
        }
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    // The key is scoped to the authenticated caller; without a valid token the handler answers 401 anyway.
    let scope = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::auth::bearer_token)
        .and_then(|t| state.keys.verify(t))
        .map(|p| p.sub);
    let Some(scope) = scope else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let (http_req, payload) = req.parts_mut();
    let body = match crate::http::json::read_body(http_req, payload, crate::http::json::MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return Ok(req.error_response(e)),
    };
    let mut h = Sha256::new();
    h.update(req.method().as_str());
    h.update(b"\n");
    h.update(req.uri().to_string());
    h.update(b"\n");
    h.update(req.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes()).unwrap_or_default());
    h.update(b"\n");
    h.update(&body);
    let hash = hex::encode(h.finalize());

    let ttl = TimeDelta::from_std(state.settings.idempotency_ttl).unwrap_or(TimeDelta::hours(24));
    let (s, kk) = (scope.clone(), key.clone());
    let claimed = state.db.write(move |conn| claim(conn, &s, &kk, &hash, ttl)).await;
    match claimed {
        Err(e) => return Ok(req.error_response(e)),
        Ok(Claim::Replay { status, headers, body }) => {
            let mut res = HttpResponse::build(StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK));
            if let Ok(map) = serde_json::from_str::<Vec<(String, String)>>(&headers) {
                for (name, value) in map {
                    res.insert_header((name, value));
                }
            }
            res.insert_header((REPLAYED, HeaderValue::from_static("true")));
            return Ok(req.into_response(res.body(body)));
        }
        Ok(Claim::Proceed) => {}
    }
    req.set_payload(actix_web::dev::Payload::from(body));
    let res = match next.call(req).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) => {
            let (s, kk) = (scope.clone(), key.clone());
            let _ = state.db.run(move |conn| release(conn, &s, &kk).map_err(ApiError::from)).await;
            return Err(e);
        }
    };
    let status = res.status();
    if !storable(status) {
        let _ = state.db.run(move |conn| release(conn, &scope, &key).map_err(ApiError::from)).await;
        return Ok(res);
    }
    let headers: Vec<(String, String)> = STORED_HEADERS
        .iter()
        .filter_map(|n| res.headers().get(n).and_then(|v| v.to_str().ok()).map(|v| (n.to_string(), v.to_string())))
        .collect();
    let (http_req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = match body::to_bytes_limited(body, MAX_STORED_BODY).await {
        Ok(Ok(b)) => b,
        _ => {
            let _ = state.db.run(move |conn| release(conn, &scope, &key).map_err(ApiError::from)).await;
            let e = ApiError::internal("response too large to keep for Idempotency-Key");
            return Ok(ServiceResponse::new(http_req, e.error_response()));
        }
    };
    let headers_json = serde_json::to_string(&headers).unwrap_or_default();
    let stored = bytes.clone();
    let code = status.as_u16();
    if let Err(e) =
        state.db.run(move |conn| finish(conn, &scope, &key, code, &headers_json, &stored).map_err(ApiError::from)).await
    {
        tracing::warn!(error = %e, "could not store the idempotent response");
    }
    Ok(ServiceResponse::new(http_req, head.set_body(BoxBody::new(bytes))))
}
