//! `/api/v1/permits/{id}/withdrawals` and `/api/v1/withdrawals`.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::{
    active_days, exceeds_capacity, permit_numbers, permit_with_current, volume_for, Method, Source, Withdrawal,
    WithdrawalRow,
};
use crate::db::schema::withdrawals as wd;
use crate::domain::dates::Month;
use crate::domain::text::Checks;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::http::pagination::PageParams;
use crate::http::{respond, ApiJson, IfMatch, ListQuery, Page, PageQuery, PathId};
use crate::identity::Role;
use crate::messages::Msg;
use crate::permits;
use crate::policy;
use crate::security::Authorized;
use crate::state::AppState;
use crate::write::{revision, Reply};

policy!(
    /// The sections that work with permits and fees, and the platform (docs/api.md: not legal, not field inspectors).
    WithdrawalsRead = [Admin, Leader, WaterResources, WaterSaving, Finance, Enforcement, Platform, Auditor]
);
policy!(
    /// 水资源管理科, and the provincial platform pushing online-meter readings.
    WithdrawalsWrite = [WaterResources, Platform]
);

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(record).service(list_for_permit).service(list).service(get_one);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"period": "2026-03", "volume_m3": 41250, "method": "online_meter"}))]
pub struct NewWithdrawal {
    /// The month, `YYYY-MM`; inside the permit's validity, not in the future.
    pub period: String,
    /// 0 ..= 10¹² m³. Omit for `max_capacity` (computed as daily maximum × days).
    pub volume_m3: Option<i64>,
    /// The provincial platform reports `online_meter` readings only.
    pub method: Method,
    pub note: Option<String>,
    /// Accept a reading above what the permit can physically draw (daily maximum × days in force): otherwise it
    /// is refused with 409 `exceeds_permit_capacity`. Accepted readings are marked `over_capacity`.
    pub over_capacity_confirmed: Option<bool>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WithdrawalFilter {
    pub permit_id: Option<String>,
    /// From this month (`YYYY-MM`), inclusive.
    pub period_from: Option<String>,
    /// To this month, inclusive.
    pub period_to: Option<String>,
    pub method: Option<Method>,
    /// Also list superseded revisions (default false).
    pub include_superseded: Option<bool>,
}

fn month_param(field: &str, v: Option<&str>) -> ApiResult<Option<String>> {
    v.map(|s| Month::parse(s).map(|m| m.to_string()).ok_or_else(|| ApiError::invalid(field, Msg::MonthFormat)))
        .transpose()
}

/// 报送月取水量 — Record a month's withdrawal. A second report for the same month is a correction: it becomes the current
/// revision and the previous one is kept, superseded.
#[utoipa::path(tag = "withdrawals", params(("id" = String, Path, description = "Permit id"),
        ("If-Match" = Option<String>, Header, description = "Optional: the permit's ETag")),
    request_body = NewWithdrawal, security(("bearer" = ["water_resources", "platform"])),
    responses((status = 201, description = "Recorded", body = Withdrawal, headers(("ETag" = String))),
        (status = 409, description = "The permit was not active that month (`permit_not_active`), has no daily maximum for `max_capacity` (`no_daily_maximum`), the reading exceeds what the permit can draw (`exceeds_permit_capacity`), the platform sent another method than `online_meter` (`online_meter_only`) or would overwrite a staff reading (`staff_reading_protected`), or a concurrent report won (`conflict`)",
            body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/permits/{id}/withdrawals")]
async fn record(
    state: web::Data<AppState>,
    caller: Authorized<WithdrawalsWrite>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<NewWithdrawal>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let mut c = Checks::new();
    let month = Month::parse(b.period.trim());
    if month.is_none() {
        c.fail("period", Msg::MonthFormat);
    }
    let note = c.optional_text("note", b.note.as_deref(), 1000);
    if let Some(v) = b.volume_m3 {
        c.volume("volume_m3", v);
    }
    c.finish()?;
    let month = month.expect("checked");
    if month > Month::of(caller.now.today) {
        return Err(ApiError::invalid("period", Msg::InFuture));
    }
    // Who reported it is the caller, never what the body says; a platform's readings are marked as such.
    let p = &caller.principal;
    let reported_by = p.signature();
    let source = if caller.principal.roles.contains(&Role::Platform) { Source::Platform } else { Source::Staff };
    if source == Source::Platform && b.method != Method::OnlineMeter {
        return Err(ApiError::conflict(ErrorCode::OnlineMeterOnly, Msg::OnlineMeterOnly));
    }
    let ctx = caller.ctx();
    let permit_id = id.into_inner();
    state
        .write(move |conn| {
            let period = month.to_string();
            let (permit, previous) = permit_with_current(conn, &permit_id, &period)?.ok_or(ApiError::NotFound)?;
            if_match.check_if_present(permit.version)?;
            let days = active_days(&permit, month)
                .ok_or_else(|| ApiError::conflict(ErrorCode::PermitNotActive, Msg::NotInForce(month.to_string())))?;
            if source == Source::Platform && previous.as_ref().is_some_and(|p| p.source == Source::Staff.as_str()) {
                return Err(ApiError::conflict(ErrorCode::StaffReadingProtected, Msg::StaffReading(month.to_string())));
            }
            let volume = volume_for(&permit, b.method, b.volume_m3, days)?;
            let over_capacity = exceeds_capacity(&permit, volume, days);
            if over_capacity && b.over_capacity_confirmed != Some(true) {
                return Err(ApiError::conflict(
                    ErrorCode::ExceedsPermitCapacity,
                    Msg::ExceedsCapacity { volume, month: month.to_string() },
                ));
            }
            let now = ctx.now.at;
            let row = WithdrawalRow {
                id: crate::domain::new_id(),
                permit_id: permit_id.clone(),
                period,
                revision: revision::next_revision(previous.as_ref(), |p| p.revision),
                superseded: false,
                volume_m3: volume,
                method: b.method.as_str().into(),
                reported_by,
                note,
                created_at: now,
                updated_at: now,
                version: 1,
                source: source.as_str().into(),
                over_capacity,
            };
            let view = revision::record(conn, &ctx, previous.as_ref(), &row, |r| {
                Withdrawal::new(r, permit.permit_no.clone())
            })?;
            Ok(Reply::created(format!("/api/v1/withdrawals/{}", row.id), row.version, &view))
        })
        .await
}

/// 取水许可的月取水量 — A permit's withdrawals by month (current revisions unless `include_superseded`).
#[utoipa::path(tag = "withdrawals", params(("id" = String, Path, description = "Permit id"), PageQuery, WithdrawalFilter),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "Withdrawals, by month then revision", body = Page<Withdrawal>)))]
#[get("/permits/{id}/withdrawals")]
async fn list_for_permit(
    state: web::Data<AppState>,
    caller: Authorized<WithdrawalsRead>,
    id: PathId,
    query: ListQuery<WithdrawalFilter>,
) -> ApiResult<HttpResponse> {
    let mut f = query.filter;
    f.permit_id = Some(id.into_inner());
    list_rows(state, &caller, query.page, f, true).await
}

/// 月取水量列表 — Withdrawals across permits (current revisions unless `include_superseded`).
#[utoipa::path(tag = "withdrawals", params(PageQuery, WithdrawalFilter),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "Withdrawals, by month then revision", body = Page<Withdrawal>)))]
#[get("/withdrawals")]
async fn list(
    state: web::Data<AppState>,
    caller: Authorized<WithdrawalsRead>,
    query: ListQuery<WithdrawalFilter>,
) -> ApiResult<HttpResponse> {
    list_rows(state, &caller, query.page, query.filter, false).await
}

async fn list_rows(
    state: web::Data<AppState>,
    _caller: &crate::security::Caller,
    page: PageQuery,
    f: WithdrawalFilter,
    permit_must_exist: bool,
) -> ApiResult<HttpResponse> {
    // Ordered by (period, permit, revision, id): the cursor is the last row's id plus its period.
    let pp: PageParams<(String, String)> = page.params()?;
    let from = month_param("period_from", f.period_from.as_deref())?;
    let to = month_param("period_to", f.period_to.as_deref())?;
    let result = state
        .db
        .run(move |conn| {
            if permit_must_exist {
                let id = f.permit_id.as_deref().unwrap_or_default();
                permits::find(conn, id)?.ok_or(ApiError::NotFound)?;
            }
            let filtered = || {
                let mut q = wd::table.into_boxed();
                if let Some(v) = &f.permit_id {
                    q = q.filter(wd::permit_id.eq(v.clone()));
                }
                if let Some(v) = &from {
                    q = q.filter(wd::period.ge(v.clone()));
                }
                if let Some(v) = &to {
                    q = q.filter(wd::period.le(v.clone()));
                }
                if let Some(m) = f.method {
                    q = q.filter(wd::method.eq(m.as_str()));
                }
                if !f.include_superseded.unwrap_or(false) {
                    q = q.filter(wd::superseded.eq(false));
                }
                q
            };
            let total = pp.total(|| filtered().count().get_result(conn))?;
            let mut q =
                filtered().order((wd::period.asc(), wd::id.asc())).limit(pp.fetch()).select(WithdrawalRow::as_select());
            if let Some((period, id)) = &pp.after {
                q = q
                    .filter(wd::period.gt(period.clone()).or(wd::period.eq(period.clone()).and(wd::id.gt(id.clone()))));
            }
            let rows = pp.page(q.load(conn)?, |r: &WithdrawalRow| (r.period.clone(), r.id.clone()));
            let numbers = permit_numbers(conn, rows.items.iter())?;
            Ok(rows.map(|r| Withdrawal::new(&r, numbers.get(&r.permit_id).cloned().flatten())).with_total(total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

/// 查看月取水量记录 — One withdrawal record (any revision).
#[utoipa::path(tag = "withdrawals", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "The record", body = Withdrawal, headers(("ETag" = String)))))]
#[get("/withdrawals/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    _caller: Authorized<WithdrawalsRead>,
    id: PathId,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let view = state
        .db
        .run(move |conn| {
            let row = wd::table
                .find(&id)
                .select(WithdrawalRow::as_select())
                .first(conn)
                .optional()?
                .ok_or(ApiError::NotFound)?;
            let numbers = permit_numbers(conn, std::iter::once(&row))?;
            Ok(Withdrawal::new(&row, numbers.get(&row.permit_id).cloned().flatten()))
        })
        .await?;
    Ok(respond(StatusCode::OK, view.version, &view))
}
