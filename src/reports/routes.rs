//! `GET /api/v1/reports/summary` (the figures, JSON) and `GET /api/v1/reports/summary/document` (the same figures as
//! a printable Chinese document with charts).

use actix_web::{get, web, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{Settings, Summary, Window, MAX_WINDOW_DAYS};
use crate::domain::dates::Date;
use crate::error::{ApiError, ApiResult};
use crate::http::Query;
use crate::messages::Msg;
use crate::policy;
use crate::security::Authorized;
use crate::state::AppState;

policy!(
    /// Everyone who writes the bureau's reports or reads everything: the leaders, the sections, the platform and
    /// the auditors (not field inspectors).
    ReportsRead = [Admin, Leader, WaterResources, WaterSaving, Finance, Enforcement, Legal, Platform, Auditor]
);

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(summary).service(document);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WindowQuery {
    /// First day of the window (inclusive, Asia/Shanghai), e.g. `2022-01-01`.
    #[param(value_type = String, format = Date)]
    pub from: Date,
    /// Last day of the window (inclusive), e.g. `2022-06-30`; not before `from`, at most five years after it.
    #[param(value_type = String, format = Date)]
    pub to: Date,
}

impl WindowQuery {
    fn window(&self) -> ApiResult<Window> {
        let (from, to): (NaiveDate, NaiveDate) = (self.from.get(), self.to.get());
        if to < from {
            return Err(ApiError::invalid("to", Msg::NotBeforeFrom));
        }
        if (to - from).num_days() >= MAX_WINDOW_DAYS {
            return Err(ApiError::invalid("to", Msg::WindowTooLong { years: 5 }));
        }
        Ok(Window { from, to })
    }
}

fn settings(state: &AppState) -> Settings {
    Settings { key_monitoring_m3: state.settings.key_monitoring_m3 }
}

/// 工作总结数据 — The figures of a half-year (or yearly) work report for a window of dates: permits, withdrawals,
/// inspections, fees, planned use and enforcement, each computed from the records as its list computes it
/// (docs/domain.md, "The summary report", gives the rule of every figure).
#[utoipa::path(tag = "reports", params(WindowQuery),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "legal", "platform", "auditor"])),
    responses((status = 200, description = "The figures", body = Summary),
        (status = 400, description = "Missing or bad `from`/`to`, `to` before `from`, or a window over five years (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/reports/summary")]
async fn summary(
    state: web::Data<AppState>,
    _caller: Authorized<ReportsRead>,
    query: Query<WindowQuery>,
) -> ApiResult<HttpResponse> {
    let window = query.0.window()?;
    let settings = settings(&state);
    let body = state.db.run(move |conn| Ok(super::summary(conn, window, settings)?)).await?;
    Ok(HttpResponse::Ok().json(body))
}

/// 工作总结（打印稿） — The same figures as a document staff paste into their report: Chinese sentences and tables,
/// with charts of the monthly withdrawals against the zones' caps and of the fees assessed and collected by quarter
/// (A4 HTML, SVG charts, print styles).
#[utoipa::path(tag = "reports", params(WindowQuery),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "legal", "platform", "auditor"])),
    responses((status = 200, description = "工作总结数据（A4 HTML） — the report as A4 HTML", content_type = "text/html", body = String),
        (status = 400, description = "Missing or bad `from`/`to`, `to` before `from`, or a window over five years (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/reports/summary/document")]
async fn document(
    state: web::Data<AppState>,
    caller: Authorized<ReportsRead>,
    query: Query<WindowQuery>,
) -> ApiResult<HttpResponse> {
    let window = query.0.window()?;
    let settings = settings(&state);
    let bureau = state.settings.bureau_name.clone();
    let today = caller.now.today;
    let page = state
        .db
        .run(move |conn| {
            let (figures, series): (Summary, super::document::Series) = crate::db::snapshot(conn, |conn| {
                Ok::<_, ApiError>((super::figures(conn, window, settings)?, super::document::series(conn, window)?))
            })?;
            super::document::render(&figures, &series, &bureau, today)
        })
        .await?;
    Ok(crate::documents::html(page))
}
