//! `/api/v1/departments`, `/api/v1/accounts`, `/api/v1/service-accounts`.

use actix_web::http::StatusCode;
use actix_web::{get, patch, post, web, HttpResponse};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::*;
use crate::db::schema::{accounts as a, departments as d, service_accounts as s};
use crate::domain::text::Checks;
use crate::error::ApiResult;
use crate::http::pagination::PageParams;
use crate::http::{respond, ApiJson, IfMatch, Page, PageQuery};
use crate::identity::Role;
use crate::policy;
use crate::security::{password, random_token, revocation, token_digest, Authenticated, Authorized};
use crate::state::AppState;
use crate::write::{self, Change, Reply};

policy!(
    /// Configuration writes: accounts, departments, service accounts.
    AdminOnly = [Admin]
);
policy!(
    /// Reading accounts: admin and those who read everything except platforms.
    AccountsRead = [Admin, Leader, Auditor]
);

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_departments)
        .service(create_department)
        .service(list_accounts)
        .service(create_account)
        .service(get_account)
        .service(update_account)
        .service(set_password)
        .service(list_service_accounts)
        .service(create_service_account)
        .service(rotate_secret);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "water_resources_section", "name": "水资源管理科"}))]
pub struct NewDepartment {
    pub code: String,
    pub name: String,
}

fn check_code(c: &mut Checks, field: &str, code: &str) -> String {
    let v = c.required(field, code, 64);
    if !v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        c.fail(field, "may contain only a-z, 0-9 and _");
    }
    v
}

/// List departments.
#[utoipa::path(tag = "departments", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, description = "Departments by code", body = Page<Department>)))]
#[get("/departments")]
async fn list_departments(
    state: web::Data<AppState>,
    _caller: Authenticated,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let p: PageParams<String> = page.params()?;
    let result = state
        .db
        .run(move |conn| {
            let mut q = d::table.order(d::code.asc()).limit(p.fetch()).select(Department::as_select()).into_boxed();
            if let Some(after) = &p.after {
                q = q.filter(d::code.gt(after.clone()));
            }
            Ok(p.page(q.load(conn)?, |r: &Department| r.code.clone()))
        })
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

/// Create a department.
#[utoipa::path(tag = "departments", request_body = NewDepartment, security(("bearer" = ["admin"])),
    responses((status = 201, description = "Created", body = Department),
        (status = 409, description = "Code taken (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/departments")]
async fn create_department(
    state: web::Data<AppState>,
    caller: Authorized<AdminOnly>,
    body: ApiJson<NewDepartment>,
) -> ApiResult<HttpResponse> {
    let mut c = Checks::new();
    let code = check_code(&mut c, "code", &body.0.code);
    let name = c.required("name", &body.0.name, 100);
    c.finish()?;
    let ctx = caller.ctx();
    state
        .write(move |conn| {
            let dept = insert_department(conn, &ctx, &code, &name)?;
            Ok(Reply::json(StatusCode::CREATED, Some(dept.version), &dept))
        })
        .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "zhang.wei", "display_name": "张伟", "department": "water_resources_section",
    "roles": ["water_resources"], "password": "a long passphrase"}))]
pub struct NewAccount {
    pub username: String,
    pub display_name: String,
    /// Department code.
    pub department: String,
    pub roles: Vec<Role>,
    /// At least 12 characters.
    pub password: String,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"roles": ["water_resources", "inspector"], "active": true}))]
pub struct AccountPatch {
    pub display_name: Option<String>,
    pub department: Option<String>,
    pub roles: Option<Vec<Role>>,
    /// `false` disables the account and voids its tokens.
    pub active: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub password: String,
    /// Required when changing one's own password (not when an admin resets another's).
    pub current_password: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountFilter {
    /// Department code.
    pub department: Option<String>,
    pub active: Option<bool>,
    /// Matches username or display name.
    pub q: Option<String>,
}

fn check_account_roles(c: &mut Checks, roles: &[Role]) {
    if roles.is_empty() {
        c.fail("roles", "at least one role is required");
    }
    if roles.contains(&Role::Platform) {
        c.fail("roles", "platform is for service accounts only");
    }
}

fn check_username(c: &mut Checks, username: &str) -> String {
    let v = c.required("username", username, 64);
    if v.len() < 3 || !v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)) {
        c.fail("username", "3-64 characters of a-z, 0-9, '.', '_' and '-'");
    }
    v
}

/// List accounts.
#[utoipa::path(tag = "accounts", params(PageQuery, AccountFilter), security(("bearer" = ["admin", "leader", "auditor"])),
    responses((status = 200, description = "Accounts in creation order", body = Page<Account>)))]
#[get("/accounts")]
async fn list_accounts(
    state: web::Data<AppState>,
    _caller: Authorized<AccountsRead>,
    page: web::Query<PageQuery>,
    filter: web::Query<AccountFilter>,
) -> ApiResult<HttpResponse> {
    let p: PageParams<String> = page.params()?;
    let f = filter.into_inner();
    let result = state
        .db
        .run(move |conn| {
            let mut q = a::table.order(a::id.asc()).limit(p.fetch()).select(AccountRow::as_select()).into_boxed();
            if let Some(after) = &p.after {
                q = q.filter(a::id.gt(after.clone()));
            }
            if let Some(dep) = f.department {
                q = q.filter(a::department.eq(dep));
            }
            if let Some(active) = f.active {
                q = q.filter(a::active.eq(active));
            }
            if let Some(text) = f.q.filter(|t| !t.trim().is_empty()) {
                let pattern = crate::db::like_pattern(&text);
                q = q.filter(
                    a::username.like(pattern.clone()).escape('\\').or(a::display_name.like(pattern).escape('\\')),
                );
            }
            let rows = q.load(conn)?;
            let page = p.page(rows, |r: &AccountRow| r.id.clone());
            Ok(Page { items: page.items.iter().map(Account::from).collect::<Vec<_>>(), next_cursor: page.next_cursor })
        })
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

/// Create a staff account.
#[utoipa::path(tag = "accounts", request_body = NewAccount, security(("bearer" = ["admin"])),
    responses((status = 201, description = "Created", body = Account),
        (status = 409, description = "Username taken (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/accounts")]
async fn create_account(
    state: web::Data<AppState>,
    caller: Authorized<AdminOnly>,
    body: ApiJson<NewAccount>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let mut c = Checks::new();
    let username = check_username(&mut c, &b.username);
    let display_name = c.required("display_name", &b.display_name, 100);
    let department = c.required("department", &b.department, 64);
    check_account_roles(&mut c, &b.roles);
    if let Err(m) = password::check_policy(&b.password) {
        c.fail("password", m);
    }
    c.finish()?;
    let hash =
        web::block(move || password::hash(&b.password)).await.map_err(|_| ApiError::internal("hashing cancelled"))?;
    let ctx = caller.ctx();
    let roles = b.roles;
    state
        .write(move |conn| {
            require_department(conn, &department)?;
            let row = insert_account(conn, &ctx, &username, &display_name, &department, &roles, &hash)?;
            Ok(Reply::created(format!("/api/v1/accounts/{}", row.id), row.version, &Account::from(&row)))
        })
        .await
}

/// One account.
#[utoipa::path(tag = "accounts", params(("id" = String, Path)), security(("bearer" = ["admin", "leader", "auditor"])),
    responses((status = 200, description = "The account", body = Account, headers(("ETag" = String)))))]
#[get("/accounts/{id}")]
async fn get_account(
    state: web::Data<AppState>,
    _caller: Authorized<AccountsRead>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let row = state.db.run(move |conn| find_account(conn, &id)?.ok_or(ApiError::NotFound)).await?;
    Ok(respond(StatusCode::OK, row.version, &Account::from(&row)))
}

/// Change an account's display name, department, roles or active flag. Changing roles or deactivating
/// voids the account's current tokens.
#[utoipa::path(tag = "accounts", params(("id" = String, Path), ("If-Match" = String, Header, description = "The account's ETag")),
    request_body = AccountPatch, security(("bearer" = ["admin"])),
    responses((status = 200, description = "Updated", body = Account, headers(("ETag" = String)))))]
#[patch("/accounts/{id}")]
async fn update_account(
    state: web::Data<AppState>,
    caller: Authorized<AdminOnly>,
    id: web::Path<String>,
    if_match: IfMatch,
    body: ApiJson<AccountPatch>,
) -> ApiResult<HttpResponse> {
    if_match.require()?;
    let patch = body.0;
    let mut c = Checks::new();
    let display_name = patch.display_name.as_deref().map(|v| c.required("display_name", v, 100));
    let department = patch.department.as_deref().map(|v| c.required("department", v, 64));
    if let Some(roles) = &patch.roles {
        check_account_roles(&mut c, roles);
    }
    c.finish()?;
    let ctx = caller.ctx();
    let id = id.into_inner();
    let ttl = state.settings.access_token_ttl;
    let revocations = state.authn.revocations.clone();
    state
        .write(move |conn| {
            let mut void_tokens = false;
            let (row, view) =
                write::modify(conn, &ctx, &id, &if_match, "account_updated", |conn, before: &AccountRow| {
                    if let Some(dep) = &department {
                        require_department(conn, dep)?;
                    }
                    let mut after = before.clone();
                    if let Some(v) = display_name {
                        after.display_name = v;
                    }
                    if let Some(v) = department {
                        after.department = v;
                    }
                    if let Some(v) = &patch.roles {
                        after.roles = Role::join(v);
                    }
                    if let Some(v) = patch.active {
                        after.active = v;
                    }
                    void_tokens = after.roles != before.roles
                        || (before.active && !after.active)
                        || after.department != before.department;
                    Ok(Change::new(after))
                })?;
            if void_tokens {
                let (nbf, exp) = revocation::revoke_subject(conn, &id, ttl)?;
                revocations.note_subject(&id, nbf, exp);
            }
            Ok(Reply::ok(row.version, &view))
        })
        .await
}

/// Set a password: an admin for any account, or an account for itself with `current_password`.
/// Voids the account's current tokens.
#[utoipa::path(tag = "accounts", params(("id" = String, Path), ("If-Match" = String, Header, description = "The account's ETag")),
    request_body = PasswordChange, security(("bearer" = [])),
    description = "Any authenticated account may change its own password (with `current_password`); only `admin` may set another account's.",
    responses((status = 200, description = "Password changed", body = Account, headers(("ETag" = String)))))]
#[post("/accounts/{id}/password")]
async fn set_password(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<String>,
    if_match: IfMatch,
    body: ApiJson<PasswordChange>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let is_admin = caller.principal.roles.contains(&Role::Admin);
    let is_self = caller.principal.sub == id;
    if !is_admin && !is_self {
        return Err(ApiError::Forbidden);
    }
    if_match.require()?;
    let b = body.0;
    if let Err(m) = password::check_policy(&b.password) {
        return Err(ApiError::invalid("password", m));
    }
    if !is_admin && b.current_password.is_none() {
        return Err(ApiError::invalid("current_password", "required to change your own password"));
    }
    let ctx = caller.ctx();
    let ttl = state.settings.access_token_ttl;
    let lookup = id.clone();
    let current = state.db.run(move |conn| find_account(conn, &lookup)?.ok_or(ApiError::NotFound)).await?;
    if_match.check(current.version)?;
    // Argon2 (check and new hash) runs on a blocking thread without holding a database connection.
    let expected = current.password_hash.clone();
    let hash = web::block(move || {
        if let Some(cur) = &b.current_password {
            if !is_admin && !password::verify(cur, &expected) {
                return Err(ApiError::invalid("current_password", "is wrong"));
            }
        }
        Ok(password::hash(&b.password))
    })
    .await
    .map_err(|_| ApiError::internal("password hashing cancelled"))??;
    let revocations = state.authn.revocations.clone();
    state
        .write(move |conn| {
            let (row, view) =
                write::modify(conn, &ctx, &id, &if_match, "password_changed", |_, before: &AccountRow| {
                    let mut after = before.clone();
                    after.password_hash = hash;
                    Ok(Change::new(after))
                })?;
            let (nbf, exp) = revocation::revoke_subject(conn, &id, ttl)?;
            revocations.note_subject(&id, nbf, exp);
            Ok(Reply::ok(row.version, &view))
        })
        .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "省水资源监控平台", "department": "office", "roles": ["platform"]}))]
pub struct NewServiceAccount {
    pub name: String,
    /// Department code.
    pub department: String,
    pub roles: Vec<Role>,
}

/// A service account with its secret: shown once, on creation and rotation.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ServiceAccountWithSecret {
    #[serde(flatten)]
    pub account: ServiceAccount,
    pub client_secret: String,
}

/// List service accounts (without secrets).
#[utoipa::path(tag = "service-accounts", params(PageQuery), security(("bearer" = ["admin", "leader", "auditor"])),
    responses((status = 200, description = "Service accounts", body = Page<ServiceAccount>)))]
#[get("/service-accounts")]
async fn list_service_accounts(
    state: web::Data<AppState>,
    _caller: Authorized<AccountsRead>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let p: PageParams<String> = page.params()?;
    let result = state
        .db
        .run(move |conn| {
            let mut q =
                s::table.order(s::id.asc()).limit(p.fetch()).select(ServiceAccountRow::as_select()).into_boxed();
            if let Some(after) = &p.after {
                q = q.filter(s::id.gt(after.clone()));
            }
            let page = p.page(q.load(conn)?, |r: &ServiceAccountRow| r.id.clone());
            Ok(Page {
                items: page.items.iter().map(ServiceAccount::from).collect::<Vec<_>>(),
                next_cursor: page.next_cursor,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

/// Create a service account; the answer holds `client_secret`, shown this once.
#[utoipa::path(tag = "service-accounts", request_body = NewServiceAccount, security(("bearer" = ["admin"])),
    responses((status = 201, description = "Created", body = ServiceAccountWithSecret)))]
#[post("/service-accounts")]
async fn create_service_account(
    state: web::Data<AppState>,
    caller: Authorized<AdminOnly>,
    body: ApiJson<NewServiceAccount>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let mut c = Checks::new();
    let name = c.required("name", &b.name, 100);
    let department = c.required("department", &b.department, 64);
    if b.roles.is_empty() {
        c.fail("roles", "at least one role is required");
    }
    if b.roles.contains(&Role::Admin) {
        c.fail("roles", "a service account cannot be admin");
    }
    c.finish()?;
    let secret = random_token(32);
    let now = caller.now.at;
    let row = ServiceAccountRow {
        id: crate::domain::new_id(),
        name,
        client_id: format!("sa_{}", random_token(12)),
        secret_hash: token_digest(&secret),
        department,
        roles: Role::join(&b.roles),
        active: true,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let ctx = caller.ctx();
    let res = state
        .write(move |conn| {
            require_department(conn, &row.department)?;
            let account = write::create(conn, &ctx, &row, "service_account_created")?;
            let body = ServiceAccountWithSecret { account, client_secret: secret };
            Ok(Reply::created(format!("/api/v1/service-accounts/{}", row.id), row.version, &body))
        })
        .await?;
    Ok(res.customize_no_store())
}

/// Issue a new client secret; the old one stops working at once.
#[utoipa::path(tag = "service-accounts", params(("id" = String, Path), ("If-Match" = String, Header, description = "The service account's ETag")),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "New secret", body = ServiceAccountWithSecret)))]
#[post("/service-accounts/{id}/rotate-secret")]
async fn rotate_secret(
    state: web::Data<AppState>,
    caller: Authorized<AdminOnly>,
    id: web::Path<String>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    if_match.require()?;
    let id = id.into_inner();
    let secret = random_token(32);
    let digest = token_digest(&secret);
    let ctx = caller.ctx();
    let ttl = state.settings.access_token_ttl;
    let revocations = state.authn.revocations.clone();
    let res = state
        .write(move |conn| {
            let (row, account) = write::modify(
                conn,
                &ctx,
                &id,
                &if_match,
                "service_account_secret_rotated",
                |_, before: &ServiceAccountRow| {
                    let mut after = before.clone();
                    after.secret_hash = digest;
                    Ok(Change::new(after))
                },
            )?;
            let (nbf, exp) = revocation::revoke_subject(conn, &id, ttl)?;
            revocations.note_subject(&id, nbf, exp);
            Ok(Reply::ok(row.version, &ServiceAccountWithSecret { account, client_secret: secret }))
        })
        .await?;
    Ok(res.customize_no_store())
}

trait NoStore {
    fn customize_no_store(self) -> HttpResponse;
}

impl NoStore for HttpResponse {
    fn customize_no_store(mut self) -> HttpResponse {
        self.headers_mut().insert(
            actix_web::http::header::CACHE_CONTROL,
            actix_web::http::header::HeaderValue::from_static("no-store"),
        );
        self
    }
}
