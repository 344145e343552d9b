//! `GET/PUT /api/v1/calendar/{year}`: the bureau's working-day calendar of a year (admin keeps it, everyone reads).

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::{get, put, web, HttpResponse};
use chrono::{Datelike, NaiveDate, Weekday};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{find, CalendarRow, YearCalendar};
use crate::domain::dates::Date;
use crate::domain::text::Checks;
use crate::error::{ApiError, ApiResult};
use crate::http::{respond, ApiJson, IfMatch};
use crate::messages::Msg;
use crate::policy;
use crate::security::Authorized;
use crate::state::AppState;
use crate::write::{self, Change, Record, Reply};

policy!(
    /// Everyone who works with deadlines reads the calendar.
    CalendarRead = [Admin, Leader, WaterResources, WaterSaving, Finance, Enforcement, Legal, Inspector, Platform, Auditor]
);
policy!(
    /// Configuration is the administrators' (docs/api.md §3).
    CalendarWrite = [Admin]
);

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(get_year).service(put_year);
}

/// A year's calendar as sent.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"holidays": ["2027-01-01", "2027-02-06", "2027-02-07"], "workdays": ["2027-02-14"],
    "source": "国务院办公厅关于2027年部分节假日安排的通知"}))]
pub struct CalendarInput {
    /// 法定节假日（含放假调休）: every day off of the year's holidays, any weekday.
    #[schema(value_type = Vec<String>, format = Date)]
    pub holidays: Vec<Date>,
    /// 调休上班日: Saturdays and Sundays that are working days.
    #[schema(value_type = Vec<String>, format = Date)]
    pub workdays: Vec<Date>,
    /// The notice the schedule comes from (≤ 300 characters).
    pub source: Option<String>,
}

fn year_of(path: &str) -> ApiResult<i32> {
    match path.parse::<i32>() {
        // The years a date in a request may have (domain::dates::Date): a calendar no date can reach is no use.
        Ok(y) if (1900..=2199).contains(&y) && path.len() == 4 => Ok(y),
        _ => Err(ApiError::invalid("year", Msg::Between(1900, 2199))),
    }
}

/// Checks a year's days: within the year, each once, no day both off and worked, worked days on weekends.
fn checked(year: i32, b: &CalendarInput) -> ApiResult<(Vec<NaiveDate>, Vec<NaiveDate>, Option<String>)> {
    let mut c = Checks::new();
    let source = c.optional("source", b.source.as_deref(), 300);
    let sorted = |field: &str, days: &[Date], c: &mut Checks| {
        let mut seen = BTreeSet::new();
        if days.len() > 366 {
            c.fail(field, Msg::AtMostItems(366));
        }
        for (i, d) in days.iter().enumerate() {
            let d = d.get();
            if d.year() != year {
                c.fail(&format!("{field}[{i}]"), Msg::NotInYear(year));
            } else if !seen.insert(d) {
                c.fail(&format!("{field}[{i}]"), Msg::RepeatedItem(d.to_string()));
            }
        }
        seen
    };
    let holidays = sorted("holidays", &b.holidays, &mut c);
    let workdays = sorted("workdays", &b.workdays, &mut c);
    for (i, d) in b.workdays.iter().enumerate() {
        let d = d.get();
        if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
            c.fail(&format!("workdays[{i}]"), Msg::NotAWeekendDay(d));
        } else if holidays.contains(&d) {
            c.fail(&format!("workdays[{i}]"), Msg::BothHolidayAndWorkday(d));
        }
    }
    c.finish()?;
    Ok((holidays.into_iter().collect(), workdays.into_iter().collect(), source))
}

/// 查看工作日历 — A year's calendar: its holidays and its working weekend days (调休). 404 for a year without one:
/// deadlines counted in working days cannot be computed into that year until admin enters it.
#[utoipa::path(tag = "calendar", params(("year" = String, Path, description = "`YYYY`")),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "legal", "inspector", "platform", "auditor"])),
    responses((status = 200, description = "The year's calendar", body = YearCalendar, headers(("ETag" = String))),
        (status = 400, description = "Not a year (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No calendar for that year", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/calendar/{year}")]
async fn get_year(
    state: web::Data<AppState>,
    caller: Authorized<CalendarRead>,
    year: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let year = year_of(&year)?;
    let now = caller.now;
    let view = state.db.run(move |conn| Ok(find(conn, year)?.ok_or(ApiError::NotFound)?.view(conn, &now)?)).await?;
    Ok(respond(StatusCode::OK, view.version, &view))
}

/// 设置工作日历 — Enter or replace a year's calendar (admin). A new year answers 201; replacing one needs its ETag
/// in `If-Match` (428 without, 412 when stale). Deadlines already computed keep their dates.
#[utoipa::path(tag = "calendar", params(("year" = String, Path, description = "`YYYY`"),
        ("If-Match" = Option<String>, Header, description = "The calendar's ETag: required when the year has one")),
    request_body = CalendarInput, security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Replaced", body = YearCalendar, headers(("ETag" = String))),
        (status = 201, description = "Entered", body = YearCalendar, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "A day outside the year, repeated, both a holiday and a working day, or a working day that is not a Saturday or Sunday (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing for a year that has a calendar", body = crate::error::Problem, content_type = "application/problem+json")))]
#[put("/calendar/{year}")]
async fn put_year(
    state: web::Data<AppState>,
    caller: Authorized<CalendarWrite>,
    year: web::Path<String>,
    if_match: IfMatch,
    body: ApiJson<CalendarInput>,
) -> ApiResult<HttpResponse> {
    let year = year_of(&year)?;
    let (holidays, workdays, source) = checked(year, &body.0)?;
    let json = |d: &Vec<NaiveDate>| serde_json::to_string(d).map_err(|e| ApiError::internal(e.to_string()));
    let (holidays, workdays) = (json(&holidays)?, json(&workdays)?);
    let ctx = caller.ctx();
    state
        .write(move |conn| {
            crate::db::lock_names(conn, &[&format!("calendar:{year}")])?;
            if find(conn, year)?.is_none() {
                if if_match.0.is_some() {
                    return Err(ApiError::PreconditionFailed);
                }
                let row = CalendarRow {
                    id: year.to_string(),
                    year,
                    source,
                    holidays,
                    workdays,
                    created_at: ctx.now.at,
                    updated_at: ctx.now.at,
                    version: 1,
                };
                let view = write::create(conn, &ctx, &row, "calendar_created")?;
                return Ok(Reply::created(format!("/api/v1/calendar/{year}"), row.version, &view));
            }
            let (row, view) = write::modify(
                conn,
                &ctx,
                &year.to_string(),
                &if_match,
                "calendar_updated",
                |_, before: &CalendarRow| {
                    let mut after = before.clone();
                    after.holidays = holidays;
                    after.workdays = workdays;
                    after.source = source;
                    Ok(Change::new(after))
                },
            )?;
            Ok(Reply::ok(row.version, &view))
        })
        .await
}
