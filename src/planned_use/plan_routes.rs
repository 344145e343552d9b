//! `/api/v1/planned-users/{id}/plans` and `/api/v1/plans`: annual plans, issued and adjusted.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::Datelike;
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::rules::{monthly_quantities, respread, YEARS};
use super::{find_plan, find_user, plan_of, require_active, user_for_child, Plan, PlanRow, PlanStatus};
use super::{Category, PlannedUseRead, PlannedUseWrite};
use crate::audit::history::{of_record as record_history, HistoryEntry};
use crate::audit::EntityType;
use crate::db::schema::{planned_usage as us, planned_users as pu, plans as pl};
use crate::db::DbConn;
use crate::domain::dates::{effective_date, plain, Date};
use crate::domain::text::Checks;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::http::pagination::PageParams;
use crate::http::{respond, ApiJson, IfMatch, ListQuery, NoFilter, Page, PageQuery, PathId};
use crate::messages::Msg;
use crate::security::{Authorized, AUDIT_READERS};
use crate::state::AppState;
use crate::write::{self, Change, Reply};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(issue).service(list_for_user).service(list).service(get_one).service(adjust).service(history);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"year": 2026, "annual_m3": 120000}))]
pub struct NewPlan {
    /// 2000 ..= 2100; one plan per planned user and year.
    pub year: i32,
    /// 0 ..= 10¹² m³.
    pub annual_m3: i64,
    /// January to December, adding up to `annual_m3`; omitted: split evenly, the remainder in December.
    pub monthly_m3: Option<Vec<i64>>,
    /// The day it was issued (default today; not in the future).
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<Date>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"annual_m3": 150000, "monthly_m3": [10000, 10000, 10000, 10000, 10000, 10000, 15000, 15000, 15000, 15000, 15000, 10000], "reason": "新增生产线，经审核调增"}))]
pub struct PlanAdjustment {
    /// The new annual quantity (default: unchanged).
    pub annual_m3: Option<i64>,
    /// The new months, adding up to the annual quantity. Omitted with a new `annual_m3`: the months before the
    /// adjustment's month keep their quantities and the rest is spread evenly over the months to come (remainder in
    /// December); required once the plan year is over.
    pub monthly_m3: Option<Vec<i64>>,
    /// Why (required).
    pub reason: String,
    /// The day of the adjustment (default today; not in the future, not before the last step).
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<Date>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanFilter {
    pub year: Option<i32>,
    pub planned_user_id: Option<String>,
    pub status: Option<PlanStatus>,
    /// Plans of planned users of this category.
    pub category: Option<Category>,
    /// Plans whose year is running (or ran) over plan (`true`) or not (`false`): the usage recorded for the
    /// year exceeds the planned quantity of January through the latest month with usage recorded.
    pub over_plan: Option<bool>,
}

/// Checks the quantities of a plan: `annual_m3` in range and the months adding up to it.
fn quantities(c: &mut Checks, annual: i64, monthly: Option<&[i64]>) -> [i64; 12] {
    c.volume("annual_m3", annual);
    match monthly_quantities(annual.clamp(0, crate::domain::MAX_VOLUME_M3), monthly) {
        Ok(months) => months,
        Err(m) => {
            c.fail("monthly_m3", m);
            [0; 12]
        }
    }
}

fn months_json(months: &[i64; 12]) -> String {
    serde_json::to_string(months).expect("integers serialise")
}

/// 下达年度用水计划 — Issue a planned user's plan for a year (one per year; change it with `adjust`).
#[utoipa::path(tag = "planned-use", params(("id" = String, Path, description = "Planned user id")),
    request_body = NewPlan, security(("bearer" = ["water_saving"])),
    responses(
        (status = 201, description = "Issued", body = Plan, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "Bad year or quantities, e.g. months that do not add up (`validation_failed`, naming `monthly_m3`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A plan for the year exists (`conflict`) or the planned user is inactive (`planned_user_inactive`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/planned-users/{id}/plans")]
async fn issue(
    state: web::Data<AppState>,
    caller: Authorized<PlannedUseWrite>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<NewPlan>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let mut c = Checks::new();
    if !YEARS.contains(&b.year) {
        c.fail("year", Msg::YearRange);
    }
    let months = quantities(&mut c, b.annual_m3, b.monthly_m3.as_deref());
    c.finish()?;
    let issued_on = effective_date(plain(b.effective_date), None, caller.now.today)?;
    let ctx = caller.ctx();
    let user_id = id.into_inner();
    state
        .write(move |conn| {
            let user = user_for_child(conn, &user_id)?.ok_or(ApiError::NotFound)?;
            if_match.check_if_present(user.version)?;
            require_active(&user)?;
            if plan_of(conn, &user_id, b.year)?.is_some() {
                return Err(ApiError::conflict(ErrorCode::Conflict, Msg::PlanExists(b.year)));
            }
            let now = ctx.now.at;
            let row = PlanRow {
                id: crate::domain::new_id(),
                planned_user_id: user_id.clone(),
                year: b.year,
                annual_m3: b.annual_m3,
                monthly_m3: months_json(&months),
                status: PlanStatus::Issued.as_str().into(),
                issued_on,
                adjusted_on: None,
                reason: None,
                created_at: now,
                updated_at: now,
                version: 1,
            };
            // A concurrent issue for the same year loses on the unique (user, year).
            let view = write::create(conn, &ctx, &row, "plan_issued").map_err(|e| match e {
                ApiError::Conflict { detail: Msg::Duplicate, .. } => {
                    ApiError::conflict(ErrorCode::Conflict, Msg::PlanExists(b.year))
                }
                e => e,
            })?;
            Ok(Reply::created(format!("/api/v1/plans/{}", row.id), row.version, &view))
        })
        .await
}

/// 调整年度用水计划 — Adjust a plan mid-year, with a reason; the plan reads `adjusted` and its history keeps every
/// earlier state.
#[utoipa::path(tag = "planned-use", params(("id" = String, Path, description = "Plan id"), ("If-Match" = String, Header, description = "The plan's ETag")),
    request_body = PlanAdjustment, security(("bearer" = ["water_saving"])),
    responses(
        (status = 200, description = "Adjusted", body = Plan, headers(("ETag" = String))),
        (status = 400, description = "Bad quantities or no reason (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The planned user is inactive (`planned_user_inactive`) or the date is before the last step (`effective_date_out_of_order`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/plans/{id}/adjust")]
async fn adjust(
    state: web::Data<AppState>,
    caller: Authorized<PlannedUseWrite>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<PlanAdjustment>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    write::check_action(&if_match, Some(&b.reason))?;
    let mut c = Checks::new();
    let reason = c.required("reason", &b.reason, write::MAX_REASON_CHARS);
    if let Some(a) = b.annual_m3 {
        c.volume("annual_m3", a);
    }
    c.finish()?;
    let today = caller.now.today;
    let ctx = caller.ctx();
    let id = id.into_inner();
    state
        .write(move |conn| {
            let (row, view) = write::modify(conn, &ctx, &id, &if_match, "plan_adjusted", |conn, before: &PlanRow| {
                let user = user_for_child(conn, &before.planned_user_id)?.ok_or(ApiError::NotFound)?;
                require_active(&user)?;
                let last_step = before.adjusted_on.unwrap_or(before.issued_on);
                let on = effective_date(plain(b.effective_date), Some(last_step), today)?;
                let annual = b.annual_m3.unwrap_or(before.annual_m3);
                let mut c = Checks::new();
                let months = match (&b.monthly_m3, b.annual_m3) {
                    (Some(m), _) => quantities(&mut c, annual, Some(m)),
                    // A new annual figure alone: the months passed by the adjustment's date keep their quantities,
                    // the rest is spread over the months to come.
                    (None, Some(a)) => {
                        let from = match on.year().cmp(&before.year) {
                            std::cmp::Ordering::Less => 1,
                            std::cmp::Ordering::Equal => on.month(),
                            std::cmp::Ordering::Greater => 13,
                        };
                        respread(&before.months(), a, from).unwrap_or_else(|m| {
                            c.fail(if matches!(m, Msg::MonthsRequired) { "monthly_m3" } else { "annual_m3" }, m);
                            [0; 12]
                        })
                    }
                    (None, None) => before.months(),
                };
                c.finish()?;
                if annual == before.annual_m3 && months == before.months() {
                    return Err(ApiError::invalid("annual_m3", Msg::NoChange));
                }
                let mut after = before.clone();
                after.annual_m3 = annual;
                after.monthly_m3 = months_json(&months);
                after.status = PlanStatus::Adjusted.as_str().into();
                after.adjusted_on = Some(on);
                after.reason = Some(reason.clone());
                Ok(Change::new(after).effective_date(Some(on)).reason(Some(&reason)))
            })?;
            Ok(Reply::ok(row.version, &view))
        })
        .await
}

/// Plans selected by `f`, ordered by (year, id).
fn page_of(conn: &mut DbConn, pp: &PageParams<(i32, String)>, f: &PlanFilter) -> ApiResult<Page<Plan>> {
    let filtered = || {
        let mut q = pl::table.into_boxed();
        if let Some(v) = f.year {
            q = q.filter(pl::year.eq(v));
        }
        if let Some(v) = &f.planned_user_id {
            q = q.filter(pl::planned_user_id.eq(v.clone()));
        }
        if let Some(v) = f.status {
            q = q.filter(pl::status.eq(v.as_str()));
        }
        if let Some(v) = f.category {
            q = q.filter(pl::planned_user_id.eq_any(pu::table.filter(pu::category.eq(v.as_str())).select(pu::id)));
        }
        q
    };
    fn after_key<'a>(q: pl::BoxedQuery<'a, Sql>, after: &Option<(i32, String)>) -> pl::BoxedQuery<'a, Sql> {
        match after {
            Some((year, id)) => q.filter(pl::year.gt(*year).or(pl::year.eq(*year).and(pl::id.gt(id.clone())))),
            None => q,
        }
    }
    let Some(over) = f.over_plan else {
        let total = pp.total(|| filtered().count().get_result(conn))?;
        let q = after_key(filtered(), &pp.after).order((pl::year.asc(), pl::id.asc())).limit(pp.fetch());
        let rows = pp.page(q.select(PlanRow::as_select()).load(conn)?, |r: &PlanRow| (r.year, r.id.clone()));
        return Ok(rows.map(|r| Plan::new(&r)).with_total(total));
    };
    // Over plan or not is computed from usage: plans are read a slice at a time with their usage until the page
    // is full (or, for the total, to the end).
    const SLICE: i64 = 500;
    let scan = |conn: &mut DbConn, mut after: Option<(i32, String)>, want: Option<i64>| -> ApiResult<Vec<PlanRow>> {
        let mut kept = Vec::new();
        loop {
            let q = after_key(filtered(), &after).order((pl::year.asc(), pl::id.asc())).limit(SLICE);
            let slice: Vec<PlanRow> = q.select(PlanRow::as_select()).load(conn)?;
            let Some(last) = slice.last() else { return Ok(kept) };
            after = Some((last.year, last.id.clone()));
            let used = usage_by_month(conn, &slice)?;
            for plan in slice {
                if is_over(&plan, used.get(&(plan.planned_user_id.clone(), plan.year))) == over {
                    kept.push(plan);
                    if want.is_some_and(|w| kept.len() as i64 >= w) {
                        return Ok(kept);
                    }
                }
            }
        }
    };
    let total = if pp.include_total { Some(scan(conn, None, None)?.len() as i64) } else { None };
    let rows = scan(conn, pp.after.clone(), Some(pp.fetch()))?;
    Ok(pp.page(rows, |r: &PlanRow| (r.year, r.id.clone())).map(|r| Plan::new(&r)).with_total(total))
}

type Sql = <DbConn as diesel::Connection>::Backend;

/// Month by month (index 0 = January): the usage recorded, if any.
type Months = [Option<i64>; 12];

/// Usage recorded (current revisions) by planned user and year, month by month (index 0 = January), for the
/// plans of a slice.
fn usage_by_month(conn: &mut DbConn, plans: &[PlanRow]) -> QueryResult<HashMap<(String, i32), Months>> {
    let mut out: HashMap<(String, i32), Months> = HashMap::new();
    let (Some(first), Some(last)) = (plans.iter().map(|p| p.year).min(), plans.iter().map(|p| p.year).max()) else {
        return Ok(out);
    };
    let ids: Vec<&str> = plans.iter().map(|p| p.planned_user_id.as_str()).collect();
    let rows: Vec<(String, String, i64)> = us::table
        .filter(us::planned_user_id.eq_any(&ids))
        .filter(us::superseded.eq(false))
        .filter(us::period.ge(format!("{first:04}-01")))
        .filter(us::period.le(format!("{last:04}-12")))
        .select((us::planned_user_id, us::period, us::volume_m3))
        .load(conn)?;
    for (user, period, volume) in rows {
        let Some(m) = crate::domain::dates::Month::parse(&period) else { continue };
        out.entry((user, m.year)).or_insert([None; 12])[(m.month - 1) as usize] = Some(volume);
    }
    Ok(out)
}

/// Whether a plan's year is over plan: usage recorded exceeds the planned quantity of January through the latest
/// month with usage recorded (a year with no usage is not over).
fn is_over(plan: &PlanRow, used: Option<&Months>) -> bool {
    let Some(used) = used else { return false };
    let Some(latest) = used.iter().rposition(Option::is_some) else { return false };
    let total: i64 = used.iter().flatten().sum();
    total > super::rules::planned_for(&plan.months(), 1, latest as u32 + 1)
}

/// 计划用水户的年度计划 — A planned user's plans, by year.
#[utoipa::path(tag = "planned-use", params(("id" = String, Path, description = "Planned user id"), PageQuery),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "Plans by year", body = Page<Plan>)))]
#[get("/planned-users/{id}/plans")]
async fn list_for_user(
    state: web::Data<AppState>,
    _caller: Authorized<PlannedUseRead>,
    id: PathId,
    query: ListQuery<NoFilter>,
) -> ApiResult<HttpResponse> {
    let pp: PageParams<(i32, String)> = query.page.params()?;
    let id = id.into_inner();
    let page = state
        .db
        .run(move |conn| {
            find_user(conn, &id)?.ok_or(ApiError::NotFound)?;
            let f = PlanFilter { year: None, planned_user_id: Some(id), status: None, category: None, over_plan: None };
            page_of(conn, &pp, &f)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// 年度用水计划列表 — Plans across planned users, by year, user or status.
#[utoipa::path(tag = "planned-use", params(PageQuery, PlanFilter),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "Plans by year", body = Page<Plan>)))]
#[get("/plans")]
async fn list(
    state: web::Data<AppState>,
    _caller: Authorized<PlannedUseRead>,
    query: ListQuery<PlanFilter>,
) -> ApiResult<HttpResponse> {
    let pp: PageParams<(i32, String)> = query.page.params()?;
    let f = query.filter;
    let page = state.db.run(move |conn| page_of(conn, &pp, &f)).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// 查看年度用水计划 — One plan.
#[utoipa::path(tag = "planned-use", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "The plan", body = Plan, headers(("ETag" = String)))))]
#[get("/plans/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    _caller: Authorized<PlannedUseRead>,
    id: PathId,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let plan = state.db.run(move |conn| Ok(Plan::new(&find_plan(conn, &id)?.ok_or(ApiError::NotFound)?))).await?;
    Ok(respond(StatusCode::OK, plan.version, &plan))
}

/// 年度用水计划调整记录 — The plan as issued and every adjustment, oldest first (who: admin and auditor only).
#[utoipa::path(tag = "planned-use", params(("id" = String, Path), PageQuery),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "History", body = Page<HistoryEntry>)))]
#[get("/plans/{id}/history")]
async fn history(
    state: web::Data<AppState>,
    caller: Authorized<PlannedUseRead>,
    id: PathId,
    query: ListQuery<NoFilter>,
) -> ApiResult<HttpResponse> {
    let pp: PageParams<i64> = query.page.params()?;
    let with_actors = caller.principal.has_any(AUDIT_READERS);
    let exists = |conn: &mut DbConn, id: &str| find_plan(conn, id).map(|r| r.is_some());
    let page = record_history(&state.db, EntityType::Plan, id.into_inner(), "plan_", pp, with_actors, exists);
    Ok(HttpResponse::Ok().json(page.await?))
}
