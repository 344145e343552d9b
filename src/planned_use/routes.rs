//! `/api/v1/planned-users` (the register of planned-water users) and `/api/v1/planned-use/coverage`.

use actix_web::http::StatusCode;
use actix_web::{get, patch, post, web, HttpResponse};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::rules::YEARS;
use super::{
    find_user, water_user_names, Category, PlannedUseRead, PlannedUseWrite, PlannedUser, PlannedUserRow, Supply,
};
use crate::audit::history::{of_record as record_history, HistoryEntry};
use crate::audit::EntityType;
use crate::db::schema::{planned_users as pu, plans, water_users as w};
use crate::db::DbConn;
use crate::domain::dates::percent_1dp;
use crate::domain::money::Rate;
use crate::domain::text::Checks;
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::PageParams;
use crate::http::{respond, ApiJson, IfMatch, ListQuery, NoFilter, Page, PageQuery, PathId, Query};
use crate::messages::Msg;
use crate::security::{Authorized, AUDIT_READERS};
use crate::state::AppState;
use crate::write::{self, Change, Reply};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list).service(create).service(get_one).service(update).service(history).service(coverage);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"water_user_id": "0193a0c4-5f0e-7b61-9a3e-4c1d2e3f4a5b", "category": "non_residential",
    "supply": "public_network", "base_price_yuan_per_m3": "3.45"}))]
pub struct NewPlannedUser {
    /// A water user of the registry (one planned user each).
    pub water_user_id: String,
    pub category: Category,
    pub supply: Supply,
    /// The water price over-plan surcharges multiply; omit to use the price configured for the category.
    pub base_price_yuan_per_m3: Option<Rate>,
    /// Default true.
    pub active: Option<bool>,
    pub note: Option<String>,
}

/// Fields to change; `null` clears an optional field.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"active": false, "note": "2026 年 6 月停业"}))]
pub struct PlannedUserPatch {
    pub category: Option<Category>,
    pub supply: Option<Supply>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<String>)]
    pub base_price_yuan_per_m3: Option<Option<Rate>>,
    pub active: Option<bool>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<String>)]
    pub note: Option<Option<String>>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlannedUserFilter {
    /// Part of the water user's name, or of its credit code.
    pub q: Option<String>,
    pub category: Option<Category>,
    pub supply: Option<Supply>,
    pub active: Option<bool>,
    pub water_user_id: Option<String>,
    /// With (`has_plan=true`) or without a plan for `year`.
    pub year: Option<i32>,
    pub has_plan: Option<bool>,
}

fn check_year(field: &str, year: i32) -> ApiResult<i32> {
    if YEARS.contains(&year) {
        Ok(year)
    } else {
        Err(ApiError::invalid(field, Msg::YearRange))
    }
}

/// 计划用水户列表 — Planned-water users, in registration order; by category, supply, status, water user, name or
/// credit code, and whether they have a plan for a year.
#[utoipa::path(tag = "planned-use", params(PageQuery, PlannedUserFilter),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "Planned users", body = Page<PlannedUser>),
        (status = 400, description = "Bad filter (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/planned-users")]
async fn list(
    state: web::Data<AppState>,
    _caller: Authorized<PlannedUseRead>,
    query: ListQuery<PlannedUserFilter>,
) -> ApiResult<HttpResponse> {
    let p: PageParams<String> = query.page.params()?;
    let f = query.filter;
    let year = f.year.map(|y| check_year("year", y)).transpose()?;
    if f.has_plan.is_some() && year.is_none() {
        return Err(ApiError::invalid("year", Msg::Required));
    }
    let result = state
        .db
        .run(move |conn| {
            let filtered = || {
                let mut q = pu::table.into_boxed();
                if let Some(text) = f.q.as_deref().filter(|t| !t.trim().is_empty()) {
                    let name = crate::db::like_pattern(text);
                    let code = crate::db::like_pattern(&text.to_ascii_uppercase());
                    let matching =
                        w::table.filter(w::name.like(name).escape('\\').or(w::credit_code.like(code).escape('\\')));
                    q = q.filter(pu::water_user_id.eq_any(matching.select(w::id)));
                }
                if let Some(v) = f.category {
                    q = q.filter(pu::category.eq(v.as_str()));
                }
                if let Some(v) = f.supply {
                    q = q.filter(pu::supply.eq(v.as_str()));
                }
                if let Some(v) = f.active {
                    q = q.filter(pu::active.eq(v));
                }
                if let Some(v) = &f.water_user_id {
                    q = q.filter(pu::water_user_id.eq(v.clone()));
                }
                if let (Some(y), Some(has)) = (year, f.has_plan) {
                    let with_plan = plans::table.filter(plans::year.eq(y)).select(plans::planned_user_id);
                    q = if has { q.filter(pu::id.eq_any(with_plan)) } else { q.filter(pu::id.ne_all(with_plan)) };
                }
                q
            };
            let total = p.total(|| filtered().count().get_result(conn))?;
            let mut q = filtered().order(pu::id.asc()).limit(p.fetch()).select(PlannedUserRow::as_select());
            if let Some(after) = &p.after {
                q = q.filter(pu::id.gt(after.clone()));
            }
            let rows = p.page(q.load(conn)?, |r: &PlannedUserRow| r.id.clone());
            let names = water_user_names(conn, rows.items.iter().map(|r| r.water_user_id.clone()).collect())?;
            Ok(rows.map(|r| PlannedUser::new(&r, &names)).with_total(total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

/// 登记计划用水户 — Register a water user of the registry as a planned-water user.
#[utoipa::path(tag = "planned-use", request_body = NewPlannedUser, security(("bearer" = ["water_saving"])),
    responses(
        (status = 201, description = "Registered", body = PlannedUser, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "Invalid fields, or no such water user (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The water user is already a planned user (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/planned-users")]
async fn create(
    state: web::Data<AppState>,
    caller: Authorized<PlannedUseWrite>,
    body: ApiJson<NewPlannedUser>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let mut c = Checks::new();
    let water_user_id = c.required("water_user_id", &b.water_user_id, 64);
    let note = c.optional_text("note", b.note.as_deref(), 1000);
    c.finish()?;
    let now = caller.now.at;
    let row = PlannedUserRow {
        id: crate::domain::new_id(),
        water_user_id,
        category: b.category.as_str().into(),
        supply: b.supply.as_str().into(),
        base_price: b.base_price_yuan_per_m3.map(|p| p.to_string()),
        active: b.active.unwrap_or(true),
        note,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let ctx = caller.ctx();
    state
        .write(move |conn| {
            // The water user must be registered (a deleted one is gone from the registry).
            if crate::water_users::find(conn, &row.water_user_id)?.is_none() {
                return Err(ApiError::invalid("water_user_id", Msg::NoSuchWaterUser));
            }
            let view = write::create(conn, &ctx, &row, "planned_user_created")?;
            Ok(Reply::created(format!("/api/v1/planned-users/{}", row.id), row.version, &view))
        })
        .await
}

/// 查看计划用水户 — One planned-water user.
#[utoipa::path(tag = "planned-use", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "The planned user", body = PlannedUser, headers(("ETag" = String)))))]
#[get("/planned-users/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    _caller: Authorized<PlannedUseRead>,
    id: PathId,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let view = state
        .db
        .run(move |conn| {
            let row = find_user(conn, &id)?.ok_or(ApiError::NotFound)?;
            let names = water_user_names(conn, vec![row.water_user_id.clone()])?;
            Ok(PlannedUser::new(&row, &names))
        })
        .await?;
    Ok(respond(StatusCode::OK, view.version, &view))
}

/// 修改计划用水户 — Change category, supply, base price, note, or deactivate (an inactive user gets no new plans or
/// usage).
#[utoipa::path(tag = "planned-use", params(("id" = String, Path), ("If-Match" = String, Header, description = "The planned user's ETag")),
    request_body = PlannedUserPatch, security(("bearer" = ["water_saving"])),
    responses(
        (status = 200, description = "Updated", body = PlannedUser, headers(("ETag" = String))),
        (status = 400, description = "Invalid fields (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = crate::error::Problem, content_type = "application/problem+json")))]
#[patch("/planned-users/{id}")]
async fn update(
    state: web::Data<AppState>,
    caller: Authorized<PlannedUseWrite>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<PlannedUserPatch>,
) -> ApiResult<HttpResponse> {
    if_match.require()?;
    let b = body.0;
    let mut c = Checks::new();
    let note = b.note.map(|v| c.optional_text("note", v.as_deref(), 1000));
    c.finish()?;
    let ctx = caller.ctx();
    let id = id.into_inner();
    state
        .write(move |conn| {
            let (row, view) =
                write::modify(conn, &ctx, &id, &if_match, "planned_user_updated", |_, before: &PlannedUserRow| {
                    let mut after = before.clone();
                    if let Some(v) = b.category {
                        after.category = v.as_str().into();
                    }
                    if let Some(v) = b.supply {
                        after.supply = v.as_str().into();
                    }
                    if let Some(v) = b.base_price_yuan_per_m3 {
                        after.base_price = v.map(|p| p.to_string());
                    }
                    if let Some(v) = b.active {
                        after.active = v;
                    }
                    if let Some(v) = note {
                        after.note = v;
                    }
                    Ok(Change::new(after))
                })?;
            Ok(Reply::ok(row.version, &view))
        })
        .await
}

/// 计划用水户变更记录 — Every change of a planned user, oldest first (who: admin and auditor only).
#[utoipa::path(tag = "planned-use", params(("id" = String, Path), PageQuery),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "History", body = Page<HistoryEntry>)))]
#[get("/planned-users/{id}/history")]
async fn history(
    state: web::Data<AppState>,
    caller: Authorized<PlannedUseRead>,
    id: PathId,
    query: ListQuery<NoFilter>,
) -> ApiResult<HttpResponse> {
    let pp: PageParams<i64> = query.page.params()?;
    let with_actors = caller.principal.has_any(AUDIT_READERS);
    let exists = |conn: &mut DbConn, id: &str| find_user(conn, id).map(|r| r.is_some());
    let page =
        record_history(&state.db, EntityType::PlannedUser, id.into_inner(), "planned_user_", pp, with_actors, exists);
    Ok(HttpResponse::Ok().json(page.await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct YearParam {
    /// The plan year, e.g. 2026.
    pub year: i32,
}

/// Plan coverage for a year.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"year": 2026, "registered": 270, "with_plan": 249, "coverage_pct": "92.2"}))]
pub struct Coverage {
    pub year: i32,
    /// Active planned users.
    pub registered: i64,
    /// Of them, those with a plan for the year.
    pub with_plan: i64,
    /// `with_plan / registered` in percent with one decimal (half-up); `"0.0"` when none are registered.
    pub coverage_pct: String,
}

/// 计划覆盖率 — How many active planned users have a plan for a year.
#[utoipa::path(tag = "planned-use", params(YearParam),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "Coverage", body = Coverage),
        (status = 400, description = "Missing or bad `year` (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/planned-use/coverage")]
async fn coverage(
    state: web::Data<AppState>,
    _caller: Authorized<PlannedUseRead>,
    query: Query<YearParam>,
) -> ApiResult<HttpResponse> {
    let year = check_year("year", query.0.year)?;
    let body = state
        .db
        .run(move |conn| {
            let counts = coverage_by_category(conn, year)?;
            let registered = counts.iter().map(|(_, users, _)| users).sum();
            let with_plan = counts.iter().map(|(_, _, planned)| planned).sum();
            let coverage_pct = percent_1dp(with_plan, registered).unwrap_or_else(|| "0.0".into());
            Ok(Coverage { year, registered, with_plan, coverage_pct })
        })
        .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Active planned users by category, and how many of them have a plan for `year`: `(category, users, with_plan)`.
/// One statement, so both counts see the same snapshot (with_plan never exceeds users).
pub fn coverage_by_category(conn: &mut DbConn, year: i32) -> QueryResult<Vec<(String, i64, i64)>> {
    #[derive(QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::Text)]
        category: String,
        #[diesel(sql_type = BigInt)]
        registered: i64,
        #[diesel(sql_type = BigInt)]
        with_plan: i64,
    }
    let rows: Vec<Counts> = diesel::sql_query(
        "SELECT u.category AS category, COUNT(*) AS registered, COUNT(p.id) AS with_plan FROM planned_users u \
         LEFT JOIN plans p ON p.planned_user_id = u.id AND p.year = $1 WHERE u.active = TRUE GROUP BY u.category",
    )
    .bind::<Integer, _>(year)
    .load(conn)?;
    Ok(rows.into_iter().map(|c| (c.category, c.registered, c.with_plan)).collect())
}
