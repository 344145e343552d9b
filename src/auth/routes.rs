//! `/api/v1/auth/*`: login, refresh, logout, client credentials, who-am-I.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::service::{self, Verified};
use crate::accounts;
use crate::error::{ApiError, ApiResult};
use crate::http::request_id::request_id;
use crate::http::ApiJson;
use crate::identity::Role;
use crate::security::{revocation, Authenticated, Claims};
use crate::state::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(login).service(refresh_tokens).service(logout).service(client_token).service(me);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "admin", "password": "correct horse battery staple"}))]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientCredentialsRequest {
    /// Must be `client_credentials`.
    pub grant_type: String,
    pub client_id: String,
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

fn issue_pair(
    state: &AppState,
    verified: &Verified,
    family: Option<String>,
) -> (String, Claims, Option<(String, String)>) {
    let ttl = state.settings.access_token_ttl;
    match verified {
        Verified::Account(a) => {
            let (token, claims) =
                state.authn.keys.issue(&a.id, Some(&a.username), &a.department, &Role::split(&a.roles), ttl);
            let family = family.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
            (token, claims, Some((a.id.clone(), family)))
        }
        Verified::Service(s) => {
            let (token, claims) =
                state.authn.keys.issue(&s.id, Some(&s.name), &s.department, &Role::split(&s.roles), ttl);
            (token, claims, None)
        }
    }
}

fn token_response(access: String, claims: &Claims, refresh: Option<String>) -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(TokenResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: claims.exp - claims.iat,
        refresh_token: refresh,
    })
}

/// Sign in with username and password.
///
/// Wrong credentials answer 401 without saying which part was wrong. After `SHUIWU_LOGIN_MAX_FAILURES`
/// failures (5) for a username within `SHUIWU_LOGIN_WINDOW` (15 min) further attempts get 429 with
/// `Retry-After`. Failures are audited.
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
    let rid = request_id(&req);
    let st = state.clone();
    let key = service::username_key(&username);
    let (k, u) = (key.clone(), username.clone());
    let row = state
        .db
        .run(move |conn| {
            service::check_throttle(conn, &k, &st.settings)?;
            Ok(accounts::find_account_by_username(conn, &u)?)
        })
        .await?;
    // Argon2 runs on a blocking thread without holding a database connection.
    let account = web::block(move || service::check_password(row, &password))
        .await
        .map_err(|_| ApiError::internal("password check cancelled"))?;
    let Some(account) = account else {
        let now = state.now();
        state.db.write(move |conn| service::record_failure(conn, &key, &username, rid, now, "login_failed")).await?;
        return Err(ApiError::Unauthorized("wrong username or password"));
    };
    let verified = Verified::Account(account);
    let (access, claims, refresh) = issue_pair(&state, &verified, None);
    let (subject, family) = refresh.expect("accounts get refresh tokens");
    let ttl = state.settings.refresh_token_ttl;
    let jti = claims.jti.clone();
    let rid = request_id(&req);
    let now = state.now();
    let refresh_token = state
        .db
        .write(move |conn| {
            let Verified::Account(a) = &verified else { unreachable!() };
            service::clear_failures(conn, &service::username_key(&a.username))?;
            let t = service::store_refresh_token(conn, &subject, &family, &jti, ttl)?;
            service::audit_sign_in(conn, &verified, "login", rid, now)?;
            Ok(t)
        })
        .await?;
    Ok(token_response(access, &claims, Some(refresh_token)))
}

/// Exchange a refresh token for a new access and refresh token. Refresh tokens are single-use;
/// presenting a used one again voids every token issued from the same login.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    security(()),
    responses(
        (status = 200, description = "New token pair", body = TokenResponse),
        (status = 401, description = "Unknown, used or expired refresh token", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/refresh")]
async fn refresh_tokens(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<RefreshRequest>,
) -> ApiResult<HttpResponse> {
    let token = body.0.refresh_token;
    let st = state.clone();
    let rid = request_id(&req);
    let now = state.now();
    let result = state
        .db
        .write(move |conn| {
            let Some((subject, family)) = service::consume_refresh_token(conn, &token)? else {
                return Ok(None);
            };
            let Some(account) = accounts::find_account(conn, &subject)?.filter(|a| a.active) else {
                return Ok(None);
            };
            let verified = Verified::Account(account);
            let (access, claims, _) = issue_pair(&st, &verified, Some(family.clone()));
            let next =
                service::store_refresh_token(conn, &subject, &family, &claims.jti, st.settings.refresh_token_ttl)?;
            service::audit_sign_in(conn, &verified, "token_refreshed", rid, now)?;
            Ok(Some((access, claims, next)))
        })
        .await?;
    let (access, claims, next) =
        result.ok_or(ApiError::Unauthorized("the refresh token is invalid, used or expired"))?;
    Ok(token_response(access, &claims, Some(next)))
}

/// Sign out: revokes the presented access token (its `jti`) and the refresh token issued with it.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 204, description = "Signed out"))
)]
#[post("/auth/logout")]
async fn logout(state: web::Data<AppState>, caller: Authenticated) -> ApiResult<HttpResponse> {
    let p = caller.principal.clone();
    let ctx = caller.ctx();
    let (jti, exp) = (p.jti.clone(), p.exp);
    state
        .db
        .write(move |conn| {
            revocation::revoke_jti(conn, &jti, exp)?;
            service::void_refresh_for(conn, &jti)?;
            crate::audit::record(conn, &ctx, crate::audit::Event::new("logout"))?;
            Ok(())
        })
        .await?;
    state.authn.revocations.note_jti(&p.jti, p.exp);
    Ok(HttpResponse::NoContent().finish())
}

/// Client-credentials grant for service accounts (provincial platforms). No refresh token: ask again.
#[utoipa::path(
    tag = "auth",
    request_body = ClientCredentialsRequest,
    security(()),
    responses(
        (status = 200, description = "Access token", body = TokenResponse),
        (status = 401, description = "Unknown client or wrong secret", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/token")]
async fn client_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<ClientCredentialsRequest>,
) -> ApiResult<HttpResponse> {
    let ClientCredentialsRequest { grant_type, client_id, client_secret } = body.0;
    if grant_type != "client_credentials" {
        return Err(ApiError::invalid("grant_type", "must be client_credentials"));
    }
    let st = state.clone();
    let rid = request_id(&req);
    let now = state.now();
    let verified = state
        .db
        .run(move |conn| {
            let key = service::client_key(&client_id);
            service::check_throttle(conn, &key, &st.settings)?;
            match service::verify_client(conn, &client_id, &client_secret)? {
                Some(sa) => {
                    let verified = Verified::Service(sa);
                    crate::db::write_transaction(conn, |c| -> ApiResult<()> {
                        service::clear_failures(c, &key)?;
                        service::audit_sign_in(c, &verified, "token_granted", rid.clone(), now)?;
                        Ok(())
                    })?;
                    Ok(Some(verified))
                }
                None => crate::db::write_transaction(conn, |c| {
                    service::record_failure(c, &key, &client_id, rid.clone(), now, "client_auth_failed")
                })
                .map(|_| None),
            }
        })
        .await?
        .ok_or(ApiError::Unauthorized("unknown client or wrong secret"))?;
    let (access, claims, _) = issue_pair(&state, &verified, None);
    Ok(token_response(access, &claims, None))
}

/// The caller as the service sees it.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = Me))
)]
#[get("/auth/me")]
async fn me(state: web::Data<AppState>, caller: Authenticated) -> ApiResult<web::Json<Me>> {
    let p = caller.principal.clone();
    let sub = p.sub.clone();
    let display_name = state
        .db
        .run(move |conn| {
            if let Some(a) = accounts::find_account(conn, &sub)? {
                return Ok(Some(a.display_name));
            }
            Ok(accounts::find_service_account(conn, &sub)?.map(|s| s.name))
        })
        .await?;
    Ok(web::Json(Me { sub: p.sub, username: p.username, display_name, department: p.department, roles: p.roles }))
}
