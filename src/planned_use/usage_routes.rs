//! `/api/v1/planned-users/{id}/usage` and `/api/v1/usage`: monthly usage of planned users, reported by 节约用水办公室
//! or pushed by the provincial platform; a second report for a month is a correction (a new revision, the earlier
//! one kept, superseded), as for withdrawals.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::Datelike;
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::{find_user, plan_of, require_active, user_for_child, PlannedUseRead, Source, Usage, UsageRow, UsageWrite};
use crate::db::schema::planned_usage as us;
use crate::domain::dates::Month;
use crate::domain::text::Checks;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::http::pagination::PageParams;
use crate::http::{respond, ApiJson, IfMatch, ListQuery, Page, PageQuery, PathId};
use crate::identity::Role;
use crate::messages::Msg;
use crate::security::Authorized;
use crate::state::AppState;
use crate::write::{revision, Reply};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(record).service(list_for_user).service(list).service(get_one);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"period": "2026-03", "volume_m3": 10450}))]
pub struct NewUsage {
    /// The month, `YYYY-MM`: not in the future, in a year the user has a plan for.
    pub period: String,
    /// 0 ..= 10¹² m³.
    pub volume_m3: i64,
    pub note: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageFilter {
    pub planned_user_id: Option<String>,
    /// From this month (`YYYY-MM`), inclusive.
    pub period_from: Option<String>,
    /// To this month, inclusive.
    pub period_to: Option<String>,
    pub source: Option<Source>,
    /// Also list superseded revisions (default false).
    pub include_superseded: Option<bool>,
}

fn month_param(field: &str, v: Option<&str>) -> ApiResult<Option<String>> {
    v.map(|s| Month::parse(s).map(|m| m.to_string()).ok_or_else(|| ApiError::invalid(field, Msg::MonthFormat)))
        .transpose()
}

/// 登记月用水量 — Record a planned user's usage for a month. A second report for the same month is a correction: it
/// becomes the current revision and the earlier one is kept, superseded.
#[utoipa::path(tag = "planned-use", params(("id" = String, Path, description = "Planned user id"),
        ("If-Match" = Option<String>, Header, description = "Optional: the planned user's ETag")),
    request_body = NewUsage, security(("bearer" = ["water_saving", "platform"])),
    responses((status = 201, description = "Recorded", body = Usage, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "Bad month or volume, or a month in the future (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "No plan for the month's year (`no_plan`), the planned user is inactive (`planned_user_inactive`), the platform would overwrite a staff entry (`staff_reading_protected`), or a concurrent report won (`conflict`)",
            body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/planned-users/{id}/usage")]
async fn record(
    state: web::Data<AppState>,
    caller: Authorized<UsageWrite>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<NewUsage>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let mut c = Checks::new();
    let month = Month::parse(b.period.trim());
    if month.is_none() {
        c.fail("period", Msg::MonthFormat);
    }
    c.volume("volume_m3", b.volume_m3);
    let note = c.optional_text("note", b.note.as_deref(), 1000);
    c.finish()?;
    let month = month.expect("checked");
    if month > Month::of(caller.now.today) {
        return Err(ApiError::invalid("period", Msg::InFuture));
    }
    let reported_by = caller.principal.signature();
    let source = if caller.principal.roles.contains(&Role::Platform) { Source::Platform } else { Source::Staff };
    let ctx = caller.ctx();
    let user_id = id.into_inner();
    state
        .write(move |conn| {
            let period = month.to_string();
            let user = user_for_child(conn, &user_id)?.ok_or(ApiError::NotFound)?;
            if_match.check_if_present(user.version)?;
            require_active(&user)?;
            let year = month.first_day().year();
            if plan_of(conn, &user_id, year)?.is_none() {
                return Err(ApiError::conflict(ErrorCode::NoPlan, Msg::NoPlanForYear(year)));
            }
            let previous = us::table
                .filter(us::planned_user_id.eq(&user_id))
                .filter(us::period.eq(&period))
                .filter(us::superseded.eq(false))
                .select(UsageRow::as_select())
                .first(conn)
                .optional()?;
            if source == Source::Platform && previous.as_ref().is_some_and(|p| p.source == Source::Staff.as_str()) {
                return Err(ApiError::conflict(ErrorCode::StaffReadingProtected, Msg::StaffReading(period)));
            }
            let now = ctx.now.at;
            let row = UsageRow {
                id: crate::domain::new_id(),
                planned_user_id: user_id.clone(),
                period,
                revision: revision::next_revision(previous.as_ref(), |p| p.revision),
                superseded: false,
                volume_m3: b.volume_m3,
                source: source.as_str().into(),
                reported_by,
                note,
                created_at: now,
                updated_at: now,
                version: 1,
            };
            let view = revision::record(conn, &ctx, previous.as_ref(), &row, Usage::new)?;
            Ok(Reply::created(format!("/api/v1/usage/{}", row.id), row.version, &view))
        })
        .await
}

/// 计划用水户的月用水量 — A planned user's usage by month (current revisions unless `include_superseded`).
#[utoipa::path(tag = "planned-use", params(("id" = String, Path, description = "Planned user id"), PageQuery, UsageFilter),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "Usage by month", body = Page<Usage>)))]
#[get("/planned-users/{id}/usage")]
async fn list_for_user(
    state: web::Data<AppState>,
    _caller: Authorized<PlannedUseRead>,
    id: PathId,
    query: ListQuery<UsageFilter>,
) -> ApiResult<HttpResponse> {
    let mut f = query.filter;
    f.planned_user_id = Some(id.into_inner());
    list_rows(state, query.page, f, true).await
}

/// 月用水量列表 — Usage across planned users (current revisions unless `include_superseded`).
#[utoipa::path(tag = "planned-use", params(PageQuery, UsageFilter),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "Usage by month", body = Page<Usage>)))]
#[get("/usage")]
async fn list(
    state: web::Data<AppState>,
    _caller: Authorized<PlannedUseRead>,
    query: ListQuery<UsageFilter>,
) -> ApiResult<HttpResponse> {
    list_rows(state, query.page, query.filter, false).await
}

async fn list_rows(
    state: web::Data<AppState>,
    page: PageQuery,
    f: UsageFilter,
    user_must_exist: bool,
) -> ApiResult<HttpResponse> {
    // Ordered by (period, id): the cursor is the last row's period and id.
    let pp: PageParams<(String, String)> = page.params()?;
    let from = month_param("period_from", f.period_from.as_deref())?;
    let to = month_param("period_to", f.period_to.as_deref())?;
    let result = state
        .db
        .run(move |conn| {
            if user_must_exist {
                find_user(conn, f.planned_user_id.as_deref().unwrap_or_default())?.ok_or(ApiError::NotFound)?;
            }
            let filtered = || {
                let mut q = us::table.into_boxed();
                if let Some(v) = &f.planned_user_id {
                    q = q.filter(us::planned_user_id.eq(v.clone()));
                }
                if let Some(v) = &from {
                    q = q.filter(us::period.ge(v.clone()));
                }
                if let Some(v) = &to {
                    q = q.filter(us::period.le(v.clone()));
                }
                if let Some(s) = f.source {
                    q = q.filter(us::source.eq(s.as_str()));
                }
                if !f.include_superseded.unwrap_or(false) {
                    q = q.filter(us::superseded.eq(false));
                }
                q
            };
            let total = pp.total(|| filtered().count().get_result(conn))?;
            let mut q =
                filtered().order((us::period.asc(), us::id.asc())).limit(pp.fetch()).select(UsageRow::as_select());
            if let Some((period, id)) = &pp.after {
                q = q
                    .filter(us::period.gt(period.clone()).or(us::period.eq(period.clone()).and(us::id.gt(id.clone()))));
            }
            let rows = pp.page(q.load(conn)?, |r: &UsageRow| (r.period.clone(), r.id.clone()));
            Ok(rows.map(|r| Usage::new(&r)).with_total(total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

/// 查看月用水量记录 — One usage record (any revision).
#[utoipa::path(tag = "planned-use", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "The record", body = Usage, headers(("ETag" = String)))))]
#[get("/usage/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    _caller: Authorized<PlannedUseRead>,
    id: PathId,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let view = state
        .db
        .run(move |conn| {
            let row =
                us::table.find(&id).select(UsageRow::as_select()).first(conn).optional()?.ok_or(ApiError::NotFound)?;
            Ok(Usage::new(&row))
        })
        .await?;
    Ok(respond(StatusCode::OK, view.version, &view))
}
