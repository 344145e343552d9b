//! `Idempotency-Key` on POST (docs/api.md). Keys are scoped to the authenticated caller (issuer and subject) and
//! kept for `SHUIWU_IDEMPOTENCY_TTL` (24 h); they live in the database, so every instance sees them.
//!
//! 1. **Claim** (its own short transaction): the key is inserted `in_flight` with a fresh claim token. A key that
//!    is already `done` replays its stored response (same request) or answers 422 (different request); one still
//!    `in_flight` answers 409.
//! 2. **Write**: the handler's write runs through [`super::transact`], which marks the key `done` with the
//!    response *in the write's own transaction*, on the condition that the claim token is still ours. The change
//!    and its stored outcome therefore commit together or not at all: a crash or a dropped client can never leave
//!    a committed change behind a key that a retry would run again.
//! 3. **Failure**: a refusal or error writes nothing, so the key is released and a retry runs for real.
//!
//! A claim left `in_flight` by a crashed instance is taken over by a retry after [`IN_FLIGHT_TAKEOVER`]. That is
//! safe even if the first request is merely slow: taking over changes the claim token, and the first request's
//! write, which can only commit with its own token, then rolls back. Exactly one of them commits.
//!
//! **Streaming uploads** (evidence, imported tables: the routes listed in `STREAMING_UPLOADS`) are not read by the middleware: a 50 MiB file
//! is never held in memory, and its multipart framing differs between retries. The claim is *deferred*: the
//! handler streams the upload to storage and then calls [`claim_deferred`] with a digest of what it received (the
//! file's SHA-256, name and type), which replays, refuses or claims exactly as above, before anything is written.
//!
//! Responses that carry secrets (tokens, client secrets) are never stored: on `/auth/` and `/service-accounts`
//! the header is accepted and ignored.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse};
use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::reply::Reply;
use crate::db::schema::idempotency_keys::dsl as k;
use crate::db::{is_unique_violation, Db, DbConn};
use crate::error::{ApiError, ErrorCode};
use crate::messages::Msg;
use crate::security::Authenticator;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotency-replayed");

/// How long an unfinished claim blocks its key before a retry may take it over (the first request died).
pub const IN_FLIGHT_TAKEOVER: TimeDelta = TimeDelta::seconds(60);
/// Largest response body stored for replay.
const MAX_STORED_BODY: usize = 4 * 1024 * 1024;

/// How long keys are kept; registered as app data.
#[derive(Debug, Clone, Copy)]
pub struct KeyTtl(pub TimeDelta);

fn excluded(path: &str) -> bool {
    path.starts_with("/api/v1/auth/") || path.starts_with("/api/v1/service-accounts")
}

tokio::task_local! {
    static CLAIM: Arc<Claim>;
}

/// The key this request holds, while its handler runs.
#[derive(Debug)]
pub struct Claim {
    scope: String,
    key: String,
    /// Set once the key is claimed: at once for JSON requests, by [`claim_deferred`] for uploads.
    token: OnceLock<String>,
    finished: AtomicBool,
    /// How long the key is kept (for a deferred claim).
    ttl: TimeDelta,
}

/// The claim of the request being handled, if it carries an Idempotency-Key (read before leaving the request's task).
pub fn current_claim() -> Option<Arc<Claim>> {
    CLAIM.try_with(Arc::clone).ok()
}

impl Claim {
    /// The claim `token` (from [`claim`]) of `key` for `scope`.
    pub fn new(scope: &str, key: &str, token: &str) -> Self {
        let claim = Self::deferred(scope, key, TimeDelta::zero());
        let _ = claim.token.set(token.into());
        claim
    }

    /// A key not claimed yet: the handler claims it with [`claim_deferred`] once it knows what it received.
    fn deferred(scope: &str, key: &str, ttl: TimeDelta) -> Self {
        Self { scope: scope.into(), key: key.into(), token: OnceLock::new(), finished: AtomicBool::new(false), ttl }
    }

    /// Whether the key is claimed by this request.
    pub fn is_claimed(&self) -> bool {
        self.token.get().is_some()
    }

    fn token(&self) -> &str {
        self.token.get().map(String::as_str).unwrap_or_default()
    }

    /// Inside the write's transaction: records `reply` as the key's outcome, if the claim is still ours.
    pub fn finish_in(&self, conn: &mut DbConn, reply: &Reply) -> Result<(), ApiError> {
        if !self.is_claimed() {
            // A streaming upload whose handler wrote without claiming first: refused rather than written unclaimed.
            return Err(ApiError::internal("a deferred Idempotency-Key was never claimed"));
        }
        let headers: Vec<(String, String)> = reply.headers().into_iter().map(|(n, v)| (n.to_string(), v)).collect();
        let stored = store(conn, self, reply.status.as_u16(), &headers, reply.body.as_deref().unwrap_or_default())?;
        if !stored {
            return Err(ApiError::conflict(ErrorCode::IdempotencyKeyInFlight, Msg::IdempotencyTakenOver));
        }
        Ok(())
    }

    /// The transaction that finished the claim has committed.
    pub fn committed(&self) {
        self.finished.store(true, Ordering::Release);
    }

    fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

type Sql = <DbConn as Connection>::Backend;

/// The key's row while `claim` still holds it (in flight under its token).
fn held(claim: &Claim) -> Box<dyn BoxableExpression<k::idempotency_keys, Sql, SqlType = diesel::sql_types::Bool> + '_> {
    Box::new(
        k::scope
            .eq(&claim.scope)
            .and(k::key.eq(&claim.key))
            .and(k::claim_token.eq(claim.token()))
            .and(k::state.eq("in_flight")),
    )
}

fn store(
    conn: &mut DbConn,
    claim: &Claim,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> QueryResult<bool> {
    let headers = serde_json::to_string(headers).unwrap_or_default();
    diesel::update(k::idempotency_keys.filter(held(claim)))
        .set((
            k::state.eq("done"),
            k::status_code.eq(Some(i32::from(status))),
            k::response_headers.eq(Some(headers)),
            k::response_body.eq(Some(body)),
        ))
        .execute(conn)
        .map(|n| n == 1)
}

fn release(conn: &mut DbConn, claim: &Claim) -> QueryResult<()> {
    diesel::delete(k::idempotency_keys.filter(held(claim))).execute(conn).map(|_| ())
}

/// What claiming a key found.
#[derive(Debug)]
pub enum Claimed {
    /// The key is ours under this claim token: run the request.
    Proceed(String),
    /// The key is done with this request's outcome: give it back.
    Replay { status: i32, headers: String, body: Vec<u8> },
}

/// Claims `key` for `scope` and a request whose digest is `hash` (in the caller's transaction).
pub fn claim(
    conn: &mut DbConn,
    scope: &str,
    key: &str,
    hash: &str,
    now: NaiveDateTime,
    ttl: TimeDelta,
) -> Result<Claimed, ApiError> {
    let token = uuid::Uuid::now_v7().to_string();
    let fresh = (
        k::scope.eq(scope),
        k::key.eq(key),
        k::request_hash.eq(hash),
        k::state.eq("in_flight"),
        k::claim_token.eq(&token),
        k::created_at.eq(now),
        k::expires_at.eq(now + ttl),
    );
    type Row = (String, String, String, Option<i32>, Option<String>, Option<Vec<u8>>, NaiveDateTime, NaiveDateTime);
    let mut existing: Option<Row> = None;
    for _ in 0..2 {
        // In a savepoint: losing the race to another claim leaves this transaction usable.
        let inserted = conn.transaction(|c| diesel::insert_into(k::idempotency_keys).values(fresh).execute(c));
        match inserted {
            Ok(_) => return Ok(Claimed::Proceed(token)),
            Err(e) if is_unique_violation(&e) => {}
            Err(e) => return Err(e.into()),
        }
        existing = k::idempotency_keys
            .filter(k::scope.eq(scope).and(k::key.eq(key)))
            .select((
                k::request_hash,
                k::state,
                k::claim_token,
                k::status_code,
                k::response_headers,
                k::response_body,
                k::created_at,
                k::expires_at,
            ))
            .first(conn)
            .optional()?;
        if existing.is_some() {
            break;
        }
        // Released (or purged) between the two statements: claim it afresh.
    }
    let Some((req_hash, state, old_token, status, headers, body, created, expires)) = existing else {
        return Err(in_flight());
    };
    let abandoned = state == "in_flight" && created + IN_FLIGHT_TAKEOVER < now;
    if expires <= now || abandoned {
        // Expired, or abandoned by a request that died: start over under a new claim token — only if nobody
        // else changed the row since we read it (its write, if it ever commits, needs the old token and fails).
        let taken = diesel::update(k::idempotency_keys.filter(
            k::scope.eq(scope).and(k::key.eq(key)).and(k::claim_token.eq(&old_token)).and(k::state.eq(&state)),
        ))
        .set((
            k::request_hash.eq(hash),
            k::state.eq("in_flight"),
            k::claim_token.eq(&token),
            k::status_code.eq(None::<i32>),
            k::response_headers.eq(None::<String>),
            k::response_body.eq(None::<Vec<u8>>),
            k::created_at.eq(now),
            k::expires_at.eq(now + ttl),
        ))
        .execute(conn)?;
        if taken == 1 {
            return Ok(Claimed::Proceed(token));
        }
        return Err(in_flight());
    }
    match (state.as_str(), status) {
        ("done", Some(status)) if req_hash == hash => {
            Ok(Claimed::Replay { status, headers: headers.unwrap_or_default(), body: body.unwrap_or_default() })
        }
        ("done", _) => Err(ApiError::IdempotencyKeyReused),
        _ => Err(in_flight()),
    }
}

fn in_flight() -> ApiError {
    ApiError::conflict(ErrorCode::IdempotencyKeyInFlight, Msg::IdempotencyInFlight)
}

/// For uploads (see the module documentation): claims the request's key, if it carries one, for a request whose
/// content is summed up by `digest`. `Some(response)` is the stored outcome of the same upload, to be answered as
/// it is; an error refuses the request (422 another request's key, 409 still running); `None`: go on and write.
pub async fn claim_deferred(db: &Db, digest: String, now: NaiveDateTime) -> Result<Option<HttpResponse>, ApiError> {
    let Some(claim) = current_claim() else { return Ok(None) };
    if claim.is_claimed() {
        return Ok(None);
    }
    let (scope, key, ttl) = (claim.scope.clone(), claim.key.clone(), claim.ttl);
    match db.write(move |conn| self::claim(conn, &scope, &key, &digest, now, ttl)).await? {
        Claimed::Proceed(token) => {
            let _ = claim.token.set(token);
            Ok(None)
        }
        Claimed::Replay { status, headers, body } => Ok(Some(replay(status, &headers, body))),
    }
}

/// The digest of an upload for [`claim_deferred`]: the method, the path and query, and what was received (e.g. the
/// file's SHA-256, name and type) — never the multipart framing, which differs between retries.
pub fn upload_digest(req: &actix_web::HttpRequest, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(req.method().as_str());
    h.update(b"\n");
    h.update(req.uri().to_string());
    for p in parts {
        h.update(b"\n");
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The routes that stream their uploads and claim their key themselves with [`claim_deferred`]: evidence
/// (`…/evidence`) and the bulk import. Every other request's body is read here, whatever its content type, so
/// that no handler can run unclaimed.
const STREAMING_UPLOADS: [&str; 2] = ["/evidence", "/api/v1/planned-users/import"];

fn is_upload(req: &ServiceRequest) -> bool {
    STREAMING_UPLOADS.iter().any(|suffix| req.path().ends_with(suffix))
}

/// The digest that tells "the same request" from another one under the same key.
fn request_digest(req: &ServiceRequest, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(req.method().as_str());
    h.update(b"\n");
    h.update(req.uri().to_string());
    h.update(b"\n");
    h.update(req.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes()).unwrap_or_default());
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

fn replay(status: i32, headers: &str, body: Vec<u8>) -> HttpResponse {
    let mut res = HttpResponse::build(StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK));
    if let Ok(map) = serde_json::from_str::<Vec<(String, String)>>(headers) {
        for (name, value) in map {
            res.insert_header((name, value));
        }
    }
    res.insert_header((REPLAYED, HeaderValue::from_static("true")));
    res.body(body)
}

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
            let e = ApiError::invalid("Idempotency-Key", Msg::IdempotencyKey);
            return Ok(req.error_response(e));
        }
    };
    let (Some(db), Some(authn), Some(ttl)) = (
        req.app_data::<web::Data<Db>>().cloned(),
        req.app_data::<web::Data<Authenticator>>().cloned(),
        req.app_data::<web::Data<KeyTtl>>().map(|t| t.0),
    ) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    // Keys belong to an authenticated caller, checked as for any request (revocation included); without one
    // the handler answers 401 and nothing is stored or replayed.
    let token =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(crate::security::bearer_token);
    let Ok(principal) = authn.authenticate(token) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let scope = principal.scope();
    let claim = if is_upload(&req) {
        Arc::new(Claim::deferred(&scope, &key, ttl))
    } else {
        let (http_req, payload) = req.parts_mut();
        let body = match crate::http::json::read_body(http_req, payload, crate::http::json::MAX_BODY).await {
            Ok(b) => b,
            Err(e) => return Ok(req.error_response(e)),
        };
        let hash = request_digest(&req, &body);
        let now = authn.clock.now().at;
        let (s, kk) = (scope.clone(), key.clone());
        let claimed = db.write(move |conn| claim(conn, &s, &kk, &hash, now, ttl)).await;
        let token = match claimed {
            Err(e) => return Ok(req.error_response(e)),
            Ok(Claimed::Replay { status, headers, body }) => {
                return Ok(req.into_response(replay(status, &headers, body)))
            }
            Ok(Claimed::Proceed(token)) => token,
        };
        req.set_payload(actix_web::dev::Payload::from(body));
        Arc::new(Claim::new(&scope, &key, &token))
    };
    let outcome = CLAIM.scope(claim.clone(), next.call(req)).await;
    let res = match outcome {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) => {
            if claim.is_claimed() {
                let _ = db.write(move |conn| release(conn, &claim).map_err(ApiError::from)).await;
            }
            return Err(e);
        }
    };
    if !claim.is_claimed() {
        // An upload that was refused before it claimed the key, or that replayed the stored outcome.
        return Ok(res);
    }
    if claim.is_finished() {
        return Ok(res);
    }
    if !res.status().is_success() {
        // Refusals and errors wrote nothing: free the key so that a retry runs for real.
        if let Err(e) = db.write(move |conn| release(conn, &claim).map_err(ApiError::from)).await {
            tracing::warn!(error = %e, "could not release an Idempotency-Key");
        }
        return Ok(res);
    }
    // A success whose handler did not answer through `transact` (it wrote nothing of its own): keep its
    // response for replay after the fact.
    tracing::debug!("storing an idempotent response outside its write");
    let headers: Vec<(String, String)> = [header::CONTENT_TYPE, header::ETAG, header::LOCATION]
        .iter()
        .filter_map(|n| res.headers().get(n).and_then(|v| v.to_str().ok()).map(|v| (n.to_string(), v.to_string())))
        .collect();
    let status = res.status().as_u16();
    let (http_req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = match body::to_bytes_limited(body, MAX_STORED_BODY).await {
        Ok(Ok(b)) => b,
        _ => {
            let _ = db.write(move |conn| release(conn, &claim).map_err(ApiError::from)).await;
            let e = ApiError::internal("response too large to keep for Idempotency-Key");
            return Ok(ServiceResponse::new(http_req, actix_web::ResponseError::error_response(&e)));
        }
    };
    let stored = bytes.clone();
    if let Err(e) = db.write(move |conn| Ok(store(conn, &claim, status, &headers, &stored)?)).await {
        tracing::warn!(error = %e, "could not store the idempotent response");
    }
    Ok(ServiceResponse::new(http_req, head.set_body(BoxBody::new(bytes))))
}
