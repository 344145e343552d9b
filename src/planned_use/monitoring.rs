//! `/api/v1/planned-use/warnings` (quarters run more than 10 % over plan) and `/api/v1/planned-use/key-monitoring`
//! (users whose usage of the year before reached the threshold). Both are computed from the records when asked,
//! a page at a time: plans or usage totals are read in slices of the users' ids, never the whole table at once.

use std::collections::HashMap;

use actix_web::{get, web, HttpResponse};
use chrono::Datelike;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::rules::{planned_for, YEARS};
use super::{water_user_names, Category, PlanRow, PlannedUseRead, PlannedUserRow};
use crate::db::schema::{planned_usage as us, planned_users as pu, plans as pl};
use crate::db::DbConn;
use crate::domain::dates::{percent_1dp, Quarter};
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::PageParams;
use crate::http::{ListQuery, Page, PageQuery};
use crate::messages::Msg;
use crate::security::Authorized;
use crate::state::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(warnings).service(key_monitoring);
}

/// Plans read per query while looking for a page of warnings.
const SLICE: i64 = 500;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WarningFilter {
    /// The quarter, `YYYY-Qn`.
    pub period: String,
}

/// A quarter run over plan (超计划预警).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"planned_user_id": "0193a0c4-0000-7000-8000-000000000301", "water_user_name": "赤水市天岛湖酒店有限公司",
    "credit_code": "91520381MA6DKQ1X2R", "category": "non_residential", "period": "2026-Q1", "planned_m3": 30000,
    "used_m3": 34500, "over_m3": 4500, "over_pct": "15.0"}))]
pub struct Warning {
    pub planned_user_id: String,
    pub water_user_name: String,
    pub credit_code: String,
    pub category: Category,
    pub period: String,
    /// The plan's quantity for the quarter's three months.
    pub planned_m3: i64,
    /// Usage recorded for them (current revisions).
    pub used_m3: i64,
    pub over_m3: i64,
    /// How far over, in percent with one decimal; null when nothing was planned.
    pub over_pct: Option<String>,
}

/// Current usage per user over `months` (inclusive `YYYY-MM` bounds) for the users `ids`.
fn usage_totals(conn: &mut DbConn, ids: &[String], from: &str, to: &str) -> QueryResult<HashMap<String, i64>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64)> = us::table
        .filter(us::planned_user_id.eq_any(ids))
        .filter(us::superseded.eq(false))
        .filter(us::period.ge(from))
        .filter(us::period.le(to))
        .select((us::planned_user_id, us::volume_m3))
        .load(conn)?;
    let mut totals = HashMap::new();
    for (id, v) in rows {
        // At most 12 months of at most 10¹² each per user: no overflow.
        *totals.entry(id).or_insert(0) += v;
    }
    Ok(totals)
}

/// 超计划用水预警 — Planned users whose use in a quarter ran more than 10 % (`SHUIWU_PLAN_WARNING_PCT`) over the
/// quarter's planned quantity, by planned user.
#[utoipa::path(tag = "planned-use", params(PageQuery, WarningFilter),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "Warnings", body = Page<Warning>),
        (status = 400, description = "Missing or bad `period` (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/planned-use/warnings")]
async fn warnings(
    state: web::Data<AppState>,
    _caller: Authorized<PlannedUseRead>,
    query: ListQuery<WarningFilter>,
) -> ApiResult<HttpResponse> {
    let pp: PageParams<String> = query.page.params()?;
    let quarter =
        Quarter::parse(query.filter.period.trim()).ok_or_else(|| ApiError::invalid("period", Msg::QuarterFormat))?;
    let [first, _, last] = quarter.months();
    let year = first.first_day().year();
    let (m1, m3) = (first.to_string(), last.to_string());
    let first_month = first.first_day().month();
    let threshold_pct = i128::from(state.settings.plan_warning_pct);
    let page = state
        .db
        .run(move |conn| {
            // Plans of the year by user, a slice at a time, keeping those over the threshold; `visit` says whether
            // to go on.
            let scan = |conn: &mut DbConn,
                        after: Option<String>,
                        visit: &mut dyn FnMut(PlanRow, i64, i64) -> bool|
             -> QueryResult<()> {
                let mut after = after;
                loop {
                    let mut q = pl::table.filter(pl::year.eq(year)).into_boxed();
                    if let Some(a) = &after {
                        q = q.filter(pl::planned_user_id.gt(a.clone()));
                    }
                    let slice: Vec<PlanRow> =
                        q.order(pl::planned_user_id.asc()).limit(SLICE).select(PlanRow::as_select()).load(conn)?;
                    let Some(last_row) = slice.last() else { return Ok(()) };
                    after = Some(last_row.planned_user_id.clone());
                    let ids: Vec<String> = slice.iter().map(|p| p.planned_user_id.clone()).collect();
                    let used = usage_totals(conn, &ids, &m1, &m3)?;
                    for plan in slice {
                        let planned = planned_for(&plan.months(), first_month, first_month + 2);
                        let used = used.get(&plan.planned_user_id).copied().unwrap_or(0);
                        // More than `threshold` % over: used × 100 > planned × (100 + threshold), exactly.
                        if i128::from(used) * 100 > i128::from(planned) * (100 + threshold_pct)
                            && !visit(plan, planned, used)
                        {
                            return Ok(());
                        }
                    }
                }
            };
            let total = pp.total(|| {
                let mut n = 0;
                scan(conn, None, &mut |_, _, _| {
                    n += 1;
                    true
                })?;
                Ok(n)
            })?;
            let wanted = pp.fetch() as usize;
            let mut found: Vec<(PlanRow, i64, i64)> = Vec::new();
            scan(conn, pp.after.clone(), &mut |plan, planned, used| {
                found.push((plan, planned, used));
                found.len() < wanted
            })?;
            let rows = pp.page(found, |(p, _, _)| p.planned_user_id.clone());
            let users: Vec<PlannedUserRow> = pu::table
                .filter(pu::id.eq_any(rows.items.iter().map(|(p, _, _)| p.planned_user_id.clone()).collect::<Vec<_>>()))
                .select(PlannedUserRow::as_select())
                .load(conn)?;
            let names = water_user_names(conn, users.iter().map(|u| u.water_user_id.clone()).collect())?;
            let users: HashMap<String, PlannedUserRow> = users.into_iter().map(|u| (u.id.clone(), u)).collect();
            Ok(rows
                .map(|(plan, planned, used)| {
                    let user = users.get(&plan.planned_user_id);
                    let (name, code) = user.and_then(|u| names.get(&u.water_user_id)).cloned().unwrap_or_default();
                    Warning {
                        planned_user_id: plan.planned_user_id.clone(),
                        water_user_name: name,
                        credit_code: code,
                        category: user.and_then(|u| Category::parse(&u.category)).unwrap_or(Category::NonResidential),
                        period: quarter.to_string(),
                        planned_m3: planned,
                        used_m3: used,
                        over_m3: used - planned,
                        over_pct: percent_1dp(used - planned, planned),
                    }
                })
                .with_total(total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyMonitoringFilter {
    /// The year the list is in force, e.g. 2026 (built from the usage of the year before).
    pub year: i32,
}

/// A user on the key-monitoring list (重点监控用水单位).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"planned_user_id": "0193a0c4-0000-7000-8000-000000000301", "water_user_name": "赤水市天岛湖酒店有限公司",
    "credit_code": "91520381MA6DKQ1X2R", "category": "non_residential", "year": 2026, "basis_year": 2025, "usage_m3": 182400}))]
pub struct KeyUser {
    pub planned_user_id: String,
    pub water_user_name: String,
    pub credit_code: String,
    pub category: Category,
    /// The year the list is in force.
    pub year: i32,
    /// The year whose usage put the user on it.
    pub basis_year: i32,
    /// Usage recorded in `basis_year` (current revisions).
    pub usage_m3: i64,
}

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = Text)]
    planned_user_id: String,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// 重点监控用水单位名录 — Active planned users whose recorded usage in the year before `year` reached the
/// threshold (100 000 m³ by default, `SHUIWU_KEY_MONITORING_M3`), by planned user.
#[utoipa::path(tag = "planned-use", params(PageQuery, KeyMonitoringFilter),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "The list", body = Page<KeyUser>),
        (status = 400, description = "Missing or bad `year` (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/planned-use/key-monitoring")]
async fn key_monitoring(
    state: web::Data<AppState>,
    _caller: Authorized<PlannedUseRead>,
    query: ListQuery<KeyMonitoringFilter>,
) -> ApiResult<HttpResponse> {
    let pp: PageParams<String> = query.page.params()?;
    let year = query.filter.year;
    if !YEARS.contains(&year) {
        return Err(ApiError::invalid("year", Msg::YearRange));
    }
    let basis = year - 1;
    let threshold = state.settings.key_monitoring_m3;
    let page = state
        .db
        .run(move |conn| {
            // Totals per active user over the basis year, summed by the database, a page (+1) at a time by id.
            let totals: Vec<Total> = diesel::sql_query(
                "SELECT u.planned_user_id AS planned_user_id, CAST(SUM(u.volume_m3) AS BIGINT) AS total \
                 FROM planned_usage u JOIN planned_users p ON p.id = u.planned_user_id \
                 WHERE u.superseded = FALSE AND p.active = TRUE AND u.period >= $1 AND u.period <= $2 \
                   AND u.planned_user_id > $3 \
                 GROUP BY u.planned_user_id HAVING SUM(u.volume_m3) >= $4 \
                 ORDER BY u.planned_user_id LIMIT $5",
            )
            .bind::<Text, _>(format!("{basis}-01"))
            .bind::<Text, _>(format!("{basis}-12"))
            .bind::<Text, _>(pp.after.clone().unwrap_or_default())
            .bind::<BigInt, _>(threshold)
            .bind::<BigInt, _>(pp.fetch())
            .load(conn)?;
            let total = pp.total(|| key_monitoring_count(conn, year, threshold))?;
            let rows = pp.page(totals, |t: &Total| t.planned_user_id.clone());
            let users: Vec<PlannedUserRow> = pu::table
                .filter(pu::id.eq_any(rows.items.iter().map(|t| t.planned_user_id.clone()).collect::<Vec<_>>()))
                .select(PlannedUserRow::as_select())
                .load(conn)?;
            let names = water_user_names(conn, users.iter().map(|u| u.water_user_id.clone()).collect())?;
            let users: HashMap<String, PlannedUserRow> = users.into_iter().map(|u| (u.id.clone(), u)).collect();
            Ok(rows
                .map(|t| {
                    let user = users.get(&t.planned_user_id);
                    let (name, code) = user.and_then(|u| names.get(&u.water_user_id)).cloned().unwrap_or_default();
                    KeyUser {
                        planned_user_id: t.planned_user_id,
                        water_user_name: name,
                        credit_code: code,
                        category: user.and_then(|u| Category::parse(&u.category)).unwrap_or(Category::NonResidential),
                        year,
                        basis_year: basis,
                        usage_m3: t.total,
                    }
                })
                .with_total(total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// How many active planned users are on the key-monitoring list in force in `year`: their recorded usage in the
/// year before reached `threshold` m³.
pub fn key_monitoring_count(conn: &mut DbConn, year: i32, threshold: i64) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let basis = year - 1;
    let c: Count = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM (SELECT u.planned_user_id \
         FROM planned_usage u JOIN planned_users p ON p.id = u.planned_user_id \
         WHERE u.superseded = FALSE AND p.active = TRUE AND u.period >= $1 AND u.period <= $2 \
         GROUP BY u.planned_user_id HAVING SUM(u.volume_m3) >= $3) AS listed",
    )
    .bind::<Text, _>(format!("{basis}-01"))
    .bind::<Text, _>(format!("{basis}-12"))
    .bind::<BigInt, _>(threshold)
    .get_result(conn)?;
    Ok(c.n)
}
