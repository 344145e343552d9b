//! `/api/v1/departments`, `/api/v1/accounts`, `/api/v1/service-accounts`.

use actix_web::http::StatusCode;
use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::*;
use crate::audit::{self, EntityType, Event};
use crate::db::schema::{accounts as a, departments as d, service_accounts as s};
use crate::db::DbConn;
use crate::domain::text::Checks;
use crate::error::{ApiResult, ErrorCode};
use crate::http::pagination::PageParams;
use crate::http::{respond, ApiJson, IfMatch, ListQuery, NoFilter, Page, PageQuery, PathId};
use crate::identity::{Holder, Role};
use crate::messages::Msg;
use crate::metrics::Credential;
use crate::policy;
use crate::security::password;
use crate::security::revocation::Standing;
use crate::security::throttle::{self, Keys};
use crate::security::{audit_denial, client_address, random_token, sessions, token_digest, Authenticated, Authorized};
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
        .service(update_service_account)
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
        c.fail(field, Msg::Code);
    }
    v
}

/// 部门列表 — List departments.
#[utoipa::path(tag = "departments", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, description = "Departments by code", body = Page<Department>)))]
#[get("/departments")]
async fn list_departments(
    state: web::Data<AppState>,
    _caller: Authenticated,
    query: ListQuery<NoFilter>,
) -> ApiResult<HttpResponse> {
    let p: PageParams<String> = query.page.params()?;
    let result = state
        .db
        .run(move |conn| {
            let total = p.total(|| d::table.count().get_result(conn))?;
            let mut q = d::table.order(d::code.asc()).limit(p.fetch()).select(Department::as_select()).into_boxed();
            if let Some(after) = &p.after {
                q = q.filter(d::code.gt(after.clone()));
            }
            Ok(p.page(q.load(conn)?, |r: &Department| r.code.clone()).with_total(total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

/// 新建部门 — Create a department.
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

fn check_roles(c: &mut Checks, roles: &[Role], holder: Holder) {
    if let Err(m) = crate::identity::check_roles(roles, holder) {
        c.fail("roles", Msg::Roles(m));
    }
}

fn check_username(c: &mut Checks, username: &str) -> String {
    let v = c.required("username", username, 64);
    if v.len() < 3 || !v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)) {
        c.fail("username", Msg::Username);
    }
    v
}

/// 账号列表 — List accounts.
#[utoipa::path(tag = "accounts", params(PageQuery, AccountFilter), security(("bearer" = ["admin", "leader", "auditor"])),
    responses((status = 200, description = "Accounts in creation order", body = Page<Account>)))]
#[get("/accounts")]
async fn list_accounts(
    state: web::Data<AppState>,
    _caller: Authorized<AccountsRead>,
    query: ListQuery<AccountFilter>,
) -> ApiResult<HttpResponse> {
    let p: PageParams<String> = query.page.params()?;
    let f = query.filter;
    let result = state
        .db
        .run(move |conn| {
            let filtered = || {
                let mut q = a::table.into_boxed();
                if let Some(dep) = &f.department {
                    q = q.filter(a::department.eq(dep.clone()));
                }
                if let Some(active) = f.active {
                    q = q.filter(a::active.eq(active));
                }
                if let Some(text) = f.q.as_deref().filter(|t| !t.trim().is_empty()) {
                    let pattern = crate::db::like_pattern(text);
                    q = q.filter(
                        a::username.like(pattern.clone()).escape('\\').or(a::display_name.like(pattern).escape('\\')),
                    );
                }
                q
            };
            let total = p.total(|| filtered().count().get_result(conn))?;
            let mut q = filtered().order(a::id.asc()).limit(p.fetch()).select(AccountRow::as_select());
            if let Some(after) = &p.after {
                q = q.filter(a::id.gt(after.clone()));
            }
            let page = p.page(q.load(conn)?, |r: &AccountRow| r.id.clone());
            Ok(page.map(|r| Account::from(&r)).with_total(total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

/// 新建工作人员账号 — Create a staff account.
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
    check_roles(&mut c, &b.roles, Holder::Staff);
    if let Err(m) = password::check_policy(&b.password) {
        c.fail("password", m);
    }
    c.finish()?;
    let hash = state.hashing.hash(b.password).await?;
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

/// 查看账号 — One account.
#[utoipa::path(tag = "accounts", params(("id" = String, Path)), security(("bearer" = ["admin", "leader", "auditor"])),
    responses((status = 200, description = "The account", body = Account, headers(("ETag" = String)))))]
#[get("/accounts/{id}")]
async fn get_account(
    state: web::Data<AppState>,
    _caller: Authorized<AccountsRead>,
    id: PathId,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let row = state.db.run(move |conn| find_account(conn, &id)?.ok_or(ApiError::NotFound)).await?;
    Ok(respond(StatusCode::OK, row.version, &Account::from(&row)))
}

/// 修改账号 — Change an account's display name, department, roles or active flag. Changing roles or deactivating
/// voids the account's current tokens.
#[utoipa::path(tag = "accounts", params(("id" = String, Path), ("If-Match" = String, Header, description = "The account's ETag")),
    request_body = AccountPatch, security(("bearer" = ["admin"])),
    responses((status = 200, description = "Updated", body = Account, headers(("ETag" = String)))))]
#[patch("/accounts/{id}")]
async fn update_account(
    state: web::Data<AppState>,
    caller: Authorized<AdminOnly>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<AccountPatch>,
) -> ApiResult<HttpResponse> {
    if_match.require()?;
    let patch = body.0;
    let mut c = Checks::new();
    let display_name = patch.display_name.as_deref().map(|v| c.required("display_name", v, 100));
    let department = patch.department.as_deref().map(|v| c.required("department", v, 64));
    if let Some(roles) = &patch.roles {
        check_roles(&mut c, roles, Holder::Staff);
    }
    c.finish()?;
    let ctx = caller.ctx();
    let id = id.into_inner();
    let touches_admins = patch.roles.is_some() || patch.active.is_some();
    let (res, row) = state
        .write_then(move |conn| {
            if touches_admins {
                // Taken before the account's own lock, always in id order: two admins demoting each other wait
                // for one another instead of deadlocking, and the second sees the first's change.
                lock_admins(conn)?;
            }
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
                    if is_active_admin(before) && !is_active_admin(&after) {
                        keep_an_admin(conn, &before.id)?;
                    }
                    // A role or department change and deactivation end the account's sessions.
                    if after.roles != before.roles
                        || after.department != before.department
                        || (before.active && !after.active)
                    {
                        after.token_epoch += 1;
                        sessions::end_all(conn, &before.id)?;
                    }
                    Ok(Change::new(after))
                })?;
            Ok((Reply::ok(row.version, &view), row))
        })
        .await?;
    state.authn.revocations.note_standing(&row.id, Standing { epoch: row.token_epoch, active: row.active });
    Ok(res)
}

fn is_active_admin(a: &AccountRow) -> bool {
    a.active && Role::split(&a.roles).contains(&Role::Admin)
}

/// Locks every active admin's row, in id order (PostgreSQL; SQLite has one writer).
fn lock_admins(conn: &mut DbConn) -> ApiResult<()> {
    if let DbConn::Postgres(c) = conn {
        a::table
            .filter(a::active.eq(true))
            .filter(a::roles.like("%admin%"))
            .order(a::id.asc())
            .select(a::id)
            .for_update()
            .load::<String>(c)?;
    }
    Ok(())
}

/// Refuses (409 `last_admin`) to take the admin role or the account away from the last active admin (the admins'
/// rows are locked by [`lock_admins`] first).
fn keep_an_admin(conn: &mut DbConn, leaving: &str) -> ApiResult<()> {
    let others: Vec<String> = a::table
        .filter(a::active.eq(true))
        .filter(a::id.ne(leaving))
        .filter(a::roles.like("%admin%"))
        .select(a::roles)
        .load(conn)?;
    if others.iter().any(|roles| Role::split(roles).contains(&Role::Admin)) {
        return Ok(());
    }
    Err(ApiError::conflict(ErrorCode::LastAdmin, Msg::LastAdmin))
}

/// 设置密码 — Set a password: one's own with `current_password` (checked like a sign-in: throttled and audited), or, as
/// `admin`, another account's (a reset). Ends every session of the account, refresh tokens included.
#[utoipa::path(tag = "accounts", params(("id" = String, Path), ("If-Match" = String, Header, description = "The account's ETag")),
    request_body = PasswordChange, security(("bearer" = [])),
    description = "Any account may change its own password, giving `current_password` (admins too); only `admin` may reset another account's.",
    responses((status = 200, description = "Password changed; the account's sessions have ended", body = Account, headers(("ETag" = String))),
        (status = 429, description = "Too many wrong `current_password`s", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/accounts/{id}/password")]
async fn set_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Authenticated,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<PasswordChange>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let is_self = caller.principal.local && caller.principal.sub == id;
    if !is_self && !caller.principal.roles.contains(&Role::Admin) {
        audit_denial(&req, &caller);
        return Err(ApiError::Forbidden);
    }
    if_match.require()?;
    let b = body.0;
    let mut c = Checks::new();
    if let Err(m) = password::check_policy(&b.password) {
        c.fail("password", m);
    }
    match &b.current_password {
        Some(cur) if cur.len() > 1024 => c.fail("current_password", Msg::AtMostBytes(1024)),
        None if is_self => c.fail("current_password", Msg::CurrentPasswordRequired),
        _ => {}
    }
    c.finish()?;
    let lookup = id.clone();
    let current = state.db.run(move |conn| find_account(conn, &lookup)?.ok_or(ApiError::NotFound)).await?;
    if_match.check(current.version)?;
    let ctx = caller.ctx();
    let attempt = match (is_self, b.current_password) {
        (true, Some(cur)) => {
            let keys = Keys::new("user", &current.username, &client_address(&req, state.settings.trust_forwarded_for));
            let (settings, claimed, rid, now) =
                (state.settings.clone(), current.username.clone(), ctx.request_id.clone(), ctx.now);
            let attempt = state
                .db
                .write(move |conn| throttle::guard(conn, &keys, &settings, &claimed, rid, now))
                .await?
                .inspect_err(|_| state.metrics.sign_in_throttled(Credential::CurrentPassword))?;
            if !state.hashing.verify(cur, current.password_hash.clone()).await? {
                state.metrics.sign_in_failed(Credential::CurrentPassword);
                let (ctx, id) = (ctx.clone(), id.clone());
                state
                    .db
                    .write(move |conn| {
                        let ev = Event::new("password_check_failed").entity(EntityType::Account, &id);
                        Ok(audit::record(conn, &ctx, ev)?)
                    })
                    .await?;
                return Err(ApiError::invalid("current_password", Msg::CurrentPasswordWrong));
            }
            Some(attempt)
        }
        _ => None,
    };
    let hash = state.hashing.hash(b.password).await?;
    let (res, row) = state
        .write_then(move |conn| {
            if let Some(attempt) = &attempt {
                throttle::succeeded(conn, attempt, ctx.now.at)?;
            }
            let (row, view) =
                write::modify(conn, &ctx, &id, &if_match, "password_changed", |conn, before: &AccountRow| {
                    let mut after = before.clone();
                    after.password_hash = hash;
                    after.token_epoch += 1;
                    sessions::end_all(conn, &before.id)?;
                    Ok(Change::new(after))
                })?;
            Ok((Reply::ok(row.version, &view), row))
        })
        .await?;
    state.authn.revocations.note_standing(&row.id, Standing { epoch: row.token_epoch, active: row.active });
    if row.username == BOOTSTRAP_USERNAME {
        // The generated first password is no longer the password: do not leave it lying around.
        let _ = std::fs::remove_file(initial_password_file(&state.settings));
    }
    Ok(res)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "省水资源监控平台", "department": "office", "roles": ["platform"], "rate_limit_per_minute": 1200}))]
pub struct NewServiceAccount {
    pub name: String,
    /// Department code.
    pub department: String,
    pub roles: Vec<Role>,
    /// Requests a minute (1..=1000000); absent or null: the service's default.
    pub rate_limit_per_minute: Option<i32>,
}

/// Changes to a service account; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"rate_limit_per_minute": 1200}))]
pub struct ServiceAccountPatch {
    pub name: Option<String>,
    /// `false` disables the account and voids its tokens; `true` enables it again.
    pub active: Option<bool>,
    /// Requests a minute (1..=1000000); null: back to the service's default.
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<i32>)]
    pub rate_limit_per_minute: Option<Option<i32>>,
}

fn check_rate_limit(c: &mut Checks, limit: Option<i32>) {
    if limit.is_some_and(|n| !(1..=1_000_000).contains(&n)) {
        c.fail("rate_limit_per_minute", Msg::Between(1, 1_000_000));
    }
}

/// A service account with its secret: shown once, on creation and rotation.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ServiceAccountWithSecret {
    #[serde(flatten)]
    pub account: ServiceAccount,
    pub client_secret: String,
}

/// 服务账号列表 — List service accounts (without secrets).
#[utoipa::path(tag = "service-accounts", params(PageQuery), security(("bearer" = ["admin", "leader", "auditor"])),
    responses((status = 200, description = "Service accounts", body = Page<ServiceAccount>)))]
#[get("/service-accounts")]
async fn list_service_accounts(
    state: web::Data<AppState>,
    _caller: Authorized<AccountsRead>,
    query: ListQuery<NoFilter>,
) -> ApiResult<HttpResponse> {
    let p: PageParams<String> = query.page.params()?;
    let result = state
        .db
        .run(move |conn| {
            let total = p.total(|| s::table.count().get_result(conn))?;
            let mut q =
                s::table.order(s::id.asc()).limit(p.fetch()).select(ServiceAccountRow::as_select()).into_boxed();
            if let Some(after) = &p.after {
                q = q.filter(s::id.gt(after.clone()));
            }
            let page = p.page(q.load(conn)?, |r: &ServiceAccountRow| r.id.clone());
            Ok(page.map(|r| ServiceAccount::from(&r)).with_total(total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

/// 新建服务账号 — Create a service account; the answer holds `client_secret`, shown this once.
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
    check_roles(&mut c, &b.roles, Holder::Service);
    check_rate_limit(&mut c, b.rate_limit_per_minute);
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
        token_epoch: 0,
        rate_limit_per_minute: b.rate_limit_per_minute,
    };
    let (id, version, limit) = (row.id.clone(), row.version, row.rate_limit_per_minute);
    let ctx = caller.ctx();
    let res = state
        .write(move |conn| {
            require_department(conn, &row.department)?;
            let account = write::create(conn, &ctx, &row, "service_account_created")?;
            let body = ServiceAccountWithSecret { account, client_secret: secret };
            Ok(Reply::created(format!("/api/v1/service-accounts/{}", row.id), row.version, &body))
        })
        .await?;
    // Counted from its first request here; other instances learn of it at their next reload.
    state.authn.revocations.note_service_limit(&id, version, limit);
    Ok(res.customize_no_store())
}

/// 修改服务账号 — Rename, disable or enable a service account, or set its request-rate limit.
///
/// Disabling voids its tokens at once. A new limit holds on every instance within a second (each reloads accounts
/// every `SHUIWU_REVOCATION_REFRESH`).
#[utoipa::path(tag = "service-accounts", params(("id" = String, Path), ("If-Match" = String, Header, description = "The service account's ETag")),
    request_body = ServiceAccountPatch, security(("bearer" = ["admin"])),
    responses((status = 200, description = "Updated", body = ServiceAccount, headers(("ETag" = String)))))]
#[patch("/service-accounts/{id}")]
async fn update_service_account(
    state: web::Data<AppState>,
    caller: Authorized<AdminOnly>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<ServiceAccountPatch>,
) -> ApiResult<HttpResponse> {
    if_match.require()?;
    let patch = body.0;
    let mut c = Checks::new();
    let name = patch.name.as_deref().map(|v| c.required("name", v, 100));
    check_rate_limit(&mut c, patch.rate_limit_per_minute.flatten());
    c.finish()?;
    let ctx = caller.ctx();
    let id = id.into_inner();
    let (res, row) = state
        .write_then(move |conn| {
            let (row, view) = write::modify(
                conn,
                &ctx,
                &id,
                &if_match,
                "service_account_updated",
                |conn, before: &ServiceAccountRow| {
                    let mut after = before.clone();
                    if let Some(v) = name {
                        after.name = v;
                    }
                    if let Some(v) = patch.rate_limit_per_minute {
                        after.rate_limit_per_minute = v;
                    }
                    if after.rate_limit_per_minute != before.rate_limit_per_minute {
                        crate::security::rate::reset(conn, &before.id)?;
                    }
                    if let Some(v) = patch.active {
                        after.active = v;
                    }
                    if before.active && !after.active {
                        after.token_epoch += 1;
                    }
                    Ok(Change::new(after))
                },
            )?;
            Ok((Reply::ok(row.version, &view), row))
        })
        .await?;
    let revocations = &state.authn.revocations;
    revocations.note_standing(&row.id, Standing { epoch: row.token_epoch, active: row.active });
    revocations.note_service_limit(&row.id, row.version, row.rate_limit_per_minute);
    Ok(res)
}

/// 更换服务账号密钥 — Issue a new client secret; the old one stops working at once.
#[utoipa::path(tag = "service-accounts", params(("id" = String, Path), ("If-Match" = String, Header, description = "The service account's ETag")),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "New secret", body = ServiceAccountWithSecret)))]
#[post("/service-accounts/{id}/rotate-secret")]
async fn rotate_secret(
    state: web::Data<AppState>,
    caller: Authorized<AdminOnly>,
    id: PathId,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    if_match.require()?;
    let id = id.into_inner();
    let secret = random_token(32);
    let digest = token_digest(&secret);
    let ctx = caller.ctx();
    let (res, row) = state
        .write_then(move |conn| {
            let (row, account) = write::modify(
                conn,
                &ctx,
                &id,
                &if_match,
                "service_account_secret_rotated",
                |_, before: &ServiceAccountRow| {
                    let mut after = before.clone();
                    after.secret_hash = digest;
                    after.token_epoch += 1;
                    Ok(Change::new(after))
                },
            )?;
            Ok((Reply::ok(row.version, &ServiceAccountWithSecret { account, client_secret: secret }), row))
        })
        .await?;
    state.authn.revocations.note_standing(&row.id, Standing { epoch: row.token_epoch, active: row.active });
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
