//! `/api/v1/water-users`.

use actix_web::http::StatusCode;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::{find, references, WaterUser};
use crate::db::schema::water_users as w;
use crate::domain::text::Checks;
use crate::domain::CreditCode;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::http::pagination::PageParams;
use crate::http::{respond, ApiJson, IfMatch, ListQuery, Page, PageQuery, PathId};
use crate::messages::Msg;
use crate::policy;
use crate::security::Authorized;
use crate::state::AppState;
use crate::write::{self, Change, Reply};

policy!(
    /// The sections that work with water users, field inspectors and the platform (docs/api.md; legal reads cases).
    WaterUsersRead = [Admin, Leader, WaterResources, WaterSaving, Finance, Enforcement, Inspector, Platform, Auditor]
);
policy!(
    /// The sections that register water users.
    WaterUsersWrite = [WaterResources, WaterSaving, Enforcement]
);

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list).service(create).service(get_one).service(update).service(remove);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "赤水市自来水有限公司", "credit_code": "91350100M000100Y43", "legal_representative": "王建国",
    "region_code": "520381", "address": "赤水市市中街道", "industry": "D4610", "contact_phone": "0851-22881234"
}))]
pub struct NewWaterUser {
    pub name: String,
    pub credit_code: String,
    pub legal_representative: Option<String>,
    pub region_code: String,
    pub address: Option<String>,
    pub industry: Option<String>,
    pub contact_phone: Option<String>,
}

/// Fields to change; `null` clears an optional field.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"address": "赤水市文华街道", "contact_phone": null}))]
pub struct WaterUserPatch {
    pub name: Option<String>,
    pub credit_code: Option<String>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<String>)]
    pub legal_representative: Option<Option<String>>,
    pub region_code: Option<String>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<String>)]
    pub address: Option<Option<String>>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<String>)]
    pub industry: Option<Option<String>>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<String>)]
    pub contact_phone: Option<Option<String>>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaterUserFilter {
    /// Part of the name, or of the credit code.
    pub q: Option<String>,
    pub region_code: Option<String>,
    pub industry: Option<String>,
    /// Exact credit code.
    pub credit_code: Option<String>,
}

fn check_credit_code(c: &mut Checks, value: &str) -> String {
    match CreditCode::parse(value) {
        Ok(code) => code.into_string(),
        Err(e) => {
            c.fail_with(ErrorCode::InvalidCreditCode, "credit_code", e.message());
            value.to_string()
        }
    }
}

/// 取用水户列表与查询 — List and search water users.
#[utoipa::path(tag = "water-users", params(PageQuery, WaterUserFilter),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "inspector", "platform", "auditor"])),
    responses((status = 200, description = "Water users in registration order", body = Page<WaterUser>)))]
#[get("/water-users")]
async fn list(
    state: web::Data<AppState>,
    _caller: Authorized<WaterUsersRead>,
    query: ListQuery<WaterUserFilter>,
) -> ApiResult<HttpResponse> {
    let p: PageParams<String> = query.page.params()?;
    let f = query.filter;
    let result = state
        .db
        .run(move |conn| {
            let filtered = || {
                let mut q = w::table.into_boxed();
                if let Some(text) = f.q.as_deref().filter(|t| !t.trim().is_empty()) {
                    let name = crate::db::like_pattern(text);
                    let code = crate::db::like_pattern(&text.to_ascii_uppercase());
                    q = q.filter(w::name.like(name).escape('\\').or(w::credit_code.like(code).escape('\\')));
                }
                if let Some(v) = &f.region_code {
                    q = q.filter(w::region_code.eq(v.clone()));
                }
                if let Some(v) = &f.industry {
                    q = q.filter(w::industry.eq(v.clone()));
                }
                if let Some(v) = &f.credit_code {
                    q = q.filter(w::credit_code.eq(v.trim().to_ascii_uppercase()));
                }
                q
            };
            let total = p.total(|| filtered().count().get_result(conn))?;
            let mut q = filtered().order(w::id.asc()).limit(p.fetch()).select(WaterUser::as_select());
            if let Some(after) = &p.after {
                q = q.filter(w::id.gt(after.clone()));
            }
            Ok(p.page(q.load(conn)?, |r: &WaterUser| r.id.clone()).with_total(total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

/// 登记取用水户 — Register a water user.
#[utoipa::path(tag = "water-users", request_body = NewWaterUser, security(("bearer" = ["water_resources", "water_saving", "enforcement"])),
    responses(
        (status = 201, description = "Registered", body = WaterUser, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "Invalid fields (`validation_failed`) or credit code (`invalid_credit_code`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Credit code already registered (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/water-users")]
async fn create(
    state: web::Data<AppState>,
    caller: Authorized<WaterUsersWrite>,
    body: ApiJson<NewWaterUser>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let mut c = Checks::new();
    let now = caller.now.at;
    let user = WaterUser {
        id: crate::domain::new_id(),
        name: c.required("name", &b.name, 200),
        credit_code: check_credit_code(&mut c, &b.credit_code),
        legal_representative: c.optional("legal_representative", b.legal_representative.as_deref(), 100),
        region_code: c.region_code("region_code", &b.region_code),
        address: c.optional("address", b.address.as_deref(), 300),
        industry: c.optional("industry", b.industry.as_deref(), 100),
        contact_phone: c.phone("contact_phone", b.contact_phone.as_deref()),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    c.finish()?;
    let ctx = caller.ctx();
    state
        .write(move |conn| {
            let view = write::create(conn, &ctx, &user, "water_user_created")?;
            Ok(Reply::created(format!("/api/v1/water-users/{}", user.id), user.version, &view))
        })
        .await
}

/// 查看取用水户 — One water user.
#[utoipa::path(tag = "water-users", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "inspector", "platform", "auditor"])),
    responses((status = 200, description = "The water user", body = WaterUser, headers(("ETag" = String)))))]
#[get("/water-users/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    _caller: Authorized<WaterUsersRead>,
    id: PathId,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let user = state.db.run(move |conn| find(conn, &id)?.ok_or(ApiError::NotFound)).await?;
    Ok(respond(StatusCode::OK, user.version, &user))
}

/// 修改取用水户 — Change a water user.
#[utoipa::path(tag = "water-users", params(("id" = String, Path), ("If-Match" = String, Header, description = "The water user's ETag")),
    request_body = WaterUserPatch, security(("bearer" = ["water_resources", "water_saving", "enforcement"])),
    responses(
        (status = 200, description = "Updated", body = WaterUser, headers(("ETag" = String))),
        (status = 400, description = "Invalid fields (`validation_failed`) or credit code (`invalid_credit_code`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Credit code already registered (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[patch("/water-users/{id}")]
async fn update(
    state: web::Data<AppState>,
    caller: Authorized<WaterUsersWrite>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<WaterUserPatch>,
) -> ApiResult<HttpResponse> {
    if_match.require()?;
    let b = body.0;
    let mut c = Checks::new();
    let name = b.name.as_deref().map(|v| c.required("name", v, 200));
    let credit_code = b.credit_code.as_deref().map(|v| check_credit_code(&mut c, v));
    let region_code = b.region_code.as_deref().map(|v| c.region_code("region_code", v));
    let legal = b.legal_representative.map(|v| c.optional("legal_representative", v.as_deref(), 100));
    let address = b.address.map(|v| c.optional("address", v.as_deref(), 300));
    let industry = b.industry.map(|v| c.optional("industry", v.as_deref(), 100));
    let phone = b.contact_phone.map(|v| c.phone("contact_phone", v.as_deref()));
    c.finish()?;
    let ctx = caller.ctx();
    let id = id.into_inner();
    state
        .write(move |conn| {
            let (row, view) =
                write::modify(conn, &ctx, &id, &if_match, "water_user_updated", |_, before: &WaterUser| {
                    let mut after = before.clone();
                    if let Some(v) = name {
                        after.name = v;
                    }
                    if let Some(v) = credit_code {
                        after.credit_code = v;
                    }
                    if let Some(v) = region_code {
                        after.region_code = v;
                    }
                    if let Some(v) = legal {
                        after.legal_representative = v;
                    }
                    if let Some(v) = address {
                        after.address = v;
                    }
                    if let Some(v) = industry {
                        after.industry = v;
                    }
                    if let Some(v) = phone {
                        after.contact_phone = v;
                    }
                    Ok(Change::new(after))
                })?;
            Ok(Reply::ok(row.version, &view))
        })
        .await
}

/// 删除取用水户 — Remove a water user that nothing refers to. `If-Match` is checked when sent.
#[utoipa::path(tag = "water-users", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The water user's ETag (optional)")),
    security(("bearer" = ["water_resources", "water_saving", "enforcement"])),
    responses(
        (status = 204, description = "Removed"),
        (status = 409, description = "Still referenced by permits or other records (`referenced`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = crate::error::Problem, content_type = "application/problem+json")))]
#[delete("/water-users/{id}")]
async fn remove(
    state: web::Data<AppState>,
    caller: Authorized<WaterUsersWrite>,
    id: PathId,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let ctx = caller.ctx();
    let id = id.into_inner();
    state
        .write(move |conn| {
            write::remove(conn, &ctx, &id, &if_match, "water_user_deleted", |conn, _: &WaterUser| {
                let refs = references(conn, &id)?;
                if refs.is_empty() {
                    return Ok(());
                }
                let refs = refs.into_iter().map(|(t, n)| (t.to_string(), n)).collect();
                Err(ApiError::conflict(ErrorCode::Referenced, Msg::ReferencedBy(refs)))
            })?;
            Ok(Reply::no_content())
        })
        .await
}
