//! `/api/v1/auth/*`: login, refresh, logout, client credentials, who-am-I.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::service::{self, canonical_username, Verified};
use crate::accounts;
use crate::audit::{self, Event};
use crate::domain::text::{is_forbidden_in_line, Checks};
use crate::error::{ApiError, ApiResult};
use crate::http::request_id::request_id;
use crate::http::ApiJson;
use crate::identity::Role;
use crate::messages::Msg;
use crate::metrics::Credential;
use crate::security::revocation::{self, cover_until, jti_key};
use crate::security::sessions::{self, Refresh};
use crate::security::throttle::{self, Keys};
use crate::security::{client_address, Authenticated, Claims};
use crate::state::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(login).service(refresh_tokens).service(logout).service(client_token).service(me);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "admin", "password": "correct horse battery staple"}))]
pub struct LoginRequest {
    /// At most 64 characters; compared in lower case without surrounding spaces.
    pub username: String,
    /// At most 1024 bytes.
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// At most 128 characters.
    pub refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientCredentialsRequest {
    /// Must be `client_credentials`.
    pub grant_type: String,
    /// At most 64 characters.
    pub client_id: String,
    /// At most 128 characters.
    pub client_secret: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Single-use; absent for client-credentials grants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub sub: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub department: String,
    pub roles: Vec<Role>,
}

fn token_response(access: String, claims: &Claims, refresh: Option<String>) -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(TokenResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: claims.exp - claims.iat,
        refresh_token: refresh,
    })
}

/// Until when ending a session must last: past every refresh token of it, and every access token those could mint.
fn session_end(state: &AppState, now: crate::clock::Now) -> i64 {
    let ttl = state.settings.refresh_token_ttl + state.settings.access_token_ttl;
    cover_until(now.at.and_utc().timestamp() + ttl.as_secs() as i64)
}

/// Length limits on what anyone may send unauthenticated, checked before anything is looked up or stored.
fn bounded(c: &mut Checks, field: &str, value: &str, max_chars: usize) {
    if value.is_empty() {
        c.fail(field, Msg::NotEmpty);
    } else if value.chars().count() > max_chars {
        c.fail(field, Msg::AtMostChars(max_chars));
    } else if value.chars().any(is_forbidden_in_line) {
        c.fail(field, Msg::NoControlChars);
    }
}

/// 登录 — Sign in with username and password.
///
/// Wrong credentials answer 401 without saying which part was wrong. Attempts are throttled (429 with
/// `Retry-After`): `SHUIWU_LOGIN_MAX_FAILURES` (5) per account from one client address within
/// `SHUIWU_LOGIN_WINDOW` (15 min), a higher ceiling per account from all addresses (30) and per address for all
/// accounts (100); parallel attempts are counted before they are evaluated. Failures are audited.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    security(()),
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Wrong username or password", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts", body = crate::error::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[post("/auth/login")]
async fn login(state: web::Data<AppState>, req: HttpRequest, body: ApiJson<LoginRequest>) -> ApiResult<HttpResponse> {
    let LoginRequest { username, password } = body.0;
    let name = canonical_username(&username);
    let mut c = Checks::new();
    bounded(&mut c, "username", &name, 64);
    if password.is_empty() || password.len() > 1024 {
        c.fail("password", Msg::BytesBetween(1, 1024));
    }
    c.finish()?;
    let address = client_address(&req, state.settings.trust_forwarded_for);
    let keys = Keys::new("user", &name, &address);
    let (rid, now, settings) = (request_id(&req), state.now(), state.settings.clone());
    let (claimed, r) = (name.clone(), rid.clone());
    let (attempt, row) = state
        .db
        .write(move |conn| {
            let attempt = throttle::guard(conn, &keys, &settings, &claimed, r, now)?;
            let row = match attempt {
                Ok(_) => accounts::find_account_by_username(conn, &claimed)?,
                Err(_) => None,
            };
            Ok((attempt, row))
        })
        .await?;
    let attempt = attempt.inspect_err(|_| state.metrics.sign_in_throttled(Credential::Password))?;
    let exists = row.is_some();
    let account = state.hashing.run(move || service::check_password(row, &password)).await?;
    let Some(account) = account else {
        state.metrics.sign_in_failed(Credential::Password);
        // Every failure against an account is audited (its own ceilings bound them); names that are no account
        // are audited once a minute per address, so that guessing names cannot grow the trail without limit.
        let unknown_key = format!("unknown-user:{}", address);
        state
            .db
            .write(move |conn| {
                if exists || throttle::audit_due(conn, &unknown_key, now.at)? {
                    service::record_failure(conn, &name, rid, now, "login_failed")?;
                }
                Ok(())
            })
            .await?;
        return Err(ApiError::Unauthorized(Msg::WrongCredentials));
    };
    let verified = Verified::Account(account);
    let family = uuid::Uuid::now_v7().to_string();
    let (access, claims) = verified.issue(&state.authn.keys, Some(&family), state.settings.access_token_ttl);
    let ttl = state.settings.refresh_token_ttl;
    let jti = claims.jti.clone();
    let refresh_token = state
        .db
        .write(move |conn| {
            let Verified::Account(a) = &verified else { unreachable!() };
            throttle::succeeded(conn, &attempt, now.at)?;
            let t = sessions::store_refresh_token(conn, &a.id, &family, &jti, a.token_epoch, ttl, now.at)?;
            service::audit_sign_in(conn, &verified, "login", rid, now)?;
            Ok(t)
        })
        .await?;
    Ok(token_response(access, &claims, Some(refresh_token)))
}

/// 刷新令牌 — Exchange a refresh token for a new access and refresh token of the same session. Refresh tokens are
/// single-use; presenting a used one again ends the whole session (its access tokens included). A password
/// change, role change or deactivation ends every session of the account.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    security(()),
    responses(
        (status = 200, description = "New token pair", body = TokenResponse),
        (status = 401, description = "Unknown, used or expired refresh token, or an ended session", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/refresh")]
async fn refresh_tokens(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<RefreshRequest>,
) -> ApiResult<HttpResponse> {
    let token = body.0.refresh_token;
    let mut c = Checks::new();
    bounded(&mut c, "refresh_token", &token, 128);
    c.finish()?;
    let st = state.clone();
    let (rid, now) = (request_id(&req), state.now());
    let session_end = session_end(&state, now);
    let outcome = state
        .db
        .write(move |conn| match sessions::consume(conn, &token, now.at)? {
            Refresh::Invalid => Ok(None),
            Refresh::Reused { family } => {
                revocation::revoke_session(conn, &family, session_end)?;
                Ok(Some(Err(family)))
            }
            Refresh::Fresh { subject, family, epoch } => {
                // A session ended by logout (or a replay) stays ended, even for a refresh token issued by a refresh
                // that committed just after the end was decided.
                if revocation::session_ended(conn, &family)? {
                    sessions::end_family(conn, &family, now.at)?;
                    return Ok(None);
                }
                let current = accounts::find_account(conn, &subject)?.filter(|a| a.active && a.token_epoch == epoch);
                let Some(account) = current else { return Ok(None) };
                let verified = Verified::Account(account);
                let (access, claims) = verified.issue(&st.authn.keys, Some(&family), st.settings.access_token_ttl);
                let ttl = st.settings.refresh_token_ttl;
                let next = sessions::store_refresh_token(conn, &subject, &family, &claims.jti, epoch, ttl, now.at)?;
                service::audit_sign_in(conn, &verified, "token_refreshed", rid, now)?;
                Ok(Some(Ok((access, claims, next))))
            }
        })
        .await?;
    match outcome {
        Some(Ok((access, claims, next))) => Ok(token_response(access, &claims, Some(next))),
        Some(Err(family)) => {
            state.authn.revocations.note_session(&family, session_end);
            state.metrics.sign_in_failed(Credential::RefreshToken);
            Err(ApiError::Unauthorized(Msg::RefreshReused))
        }
        None => {
            state.metrics.sign_in_failed(Credential::RefreshToken);
            Err(ApiError::Unauthorized(Msg::RefreshInvalid))
        }
    }
}

/// 退出登录 — Sign out: ends the whole sign-in session of the presented token (every access and refresh token issued from
/// the same login, a thief's newer ones included); a token outside a session is revoked alone.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 204, description = "Signed out"))
)]
#[post("/auth/logout")]
async fn logout(state: web::Data<AppState>, caller: Authenticated) -> ApiResult<HttpResponse> {
    let p = caller.principal.clone();
    let ctx = caller.ctx();
    let session_end = session_end(&state, ctx.now);
    let (key, token_end) = (jti_key(&p), cover_until(p.exp));
    let session = p.session.clone();
    state
        .db
        .write(move |conn| {
            match &session {
                Some(sid) => {
                    revocation::revoke_session(conn, sid, session_end)?;
                    sessions::end_family(conn, sid, ctx.now.at)?;
                }
                None => revocation::revoke_jti(conn, &key, token_end)?,
            }
            audit::record(conn, &ctx, Event::new("logout"))?;
            Ok(())
        })
        .await?;
    match &p.session {
        Some(sid) => state.authn.revocations.note_session(sid, session_end),
        None => state.authn.revocations.note_jti(&jti_key(&p), token_end),
    }
    Ok(HttpResponse::NoContent().finish())
}

/// 服务账号取得令牌 — Client-credentials grant for service accounts (provincial platforms). No refresh token: ask again.
/// Failures are throttled and audited like sign-ins.
#[utoipa::path(
    tag = "auth",
    request_body = ClientCredentialsRequest,
    security(()),
    responses(
        (status = 200, description = "Access token", body = TokenResponse),
        (status = 401, description = "Unknown client or wrong secret", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts", body = crate::error::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[post("/auth/token")]
async fn client_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<ClientCredentialsRequest>,
) -> ApiResult<HttpResponse> {
    let ClientCredentialsRequest { grant_type, client_id, client_secret } = body.0;
    let mut c = Checks::new();
    if grant_type != "client_credentials" {
        c.fail("grant_type", Msg::ClientCredentialsOnly);
    }
    bounded(&mut c, "client_id", &client_id, 64);
    bounded(&mut c, "client_secret", &client_secret, 128);
    c.finish()?;
    let address = client_address(&req, state.settings.trust_forwarded_for);
    let keys = Keys::new("client", &client_id, &address);
    let (rid, now, settings) = (request_id(&req), state.now(), state.settings.clone());
    let verified = state
        .db
        .write(move |conn| {
            let attempt = match throttle::guard(conn, &keys, &settings, &client_id, rid.clone(), now)? {
                Ok(a) => a,
                Err(throttled) => return Ok(Err(throttled)),
            };
            match service::verify_client(conn, &client_id, &client_secret)? {
                (_, Some(sa)) => {
                    let verified = Verified::Service(sa);
                    throttle::succeeded(conn, &attempt, now.at)?;
                    service::audit_sign_in(conn, &verified, "token_granted", rid, now)?;
                    Ok(Ok(Some(verified)))
                }
                (exists, None) => {
                    if exists || throttle::audit_due(conn, &format!("unknown-client:{address}"), now.at)? {
                        service::record_failure(conn, &client_id, rid, now, "client_auth_failed")?;
                    }
                    Ok(Ok(None))
                }
            }
        })
        .await?
        .inspect_err(|_| state.metrics.sign_in_throttled(Credential::ClientSecret))?
        .ok_or(ApiError::Unauthorized(Msg::WrongClient))
        .inspect_err(|_| state.metrics.sign_in_failed(Credential::ClientSecret))?;
    let (access, claims) = verified.issue(&state.authn.keys, None, state.settings.access_token_ttl);
    Ok(token_response(access, &claims, None))
}

/// 当前用户 — The caller as the service sees it.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = Me))
)]
#[get("/auth/me")]
async fn me(state: web::Data<AppState>, caller: Authenticated) -> ApiResult<web::Json<Me>> {
    let p = caller.principal.clone();
    let (sub, local) = (p.sub.clone(), p.local);
    let display_name = state
        .db
        .run(move |conn| {
            // Only this service's own subjects are its accounts; an external issuer's are its own business.
            if !local {
                return Ok(None);
            }
            if let Some(a) = accounts::find_account(conn, &sub)? {
                return Ok(Some(a.display_name));
            }
            Ok(accounts::find_service_account(conn, &sub)?.map(|s| s.name))
        })
        .await?;
    let sub = p.scope();
    Ok(web::Json(Me { sub, username: p.username, display_name, department: p.department, roles: p.roles }))
}
