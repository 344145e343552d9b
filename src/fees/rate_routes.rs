//! `/api/v1/fee-rates`: the rate table (admin writes; configuration, like zones).

use actix_web::http::StatusCode;
use actix_web::{get, patch, post, web, HttpResponse};
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::rates::{check_overlap, find, FeeRate, FeeRateRow};
use crate::db::schema::fee_rates as fr;
use crate::domain::dates::{plain, Date};
use crate::domain::money::Rate;
use crate::domain::text::Checks;
use crate::domain::water::SourceType;
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::PageParams;
use crate::http::{respond, ApiJson, IfMatch, ListQuery, Page, PageQuery, PathId};
use crate::messages::Msg;
use crate::permits::Purpose;
use crate::policy;
use crate::security::Authorized;
use crate::state::AppState;
use crate::water_zones::ZoneClass;
use crate::write::{self, Change, Record, Reply};

policy!(
    /// Configuration is read by those who work with permits and fees, the leaders and those who read everything.
    RatesRead = [Admin, Leader, WaterResources, Finance, Auditor, Platform]
);
policy!(
    /// Rates are configuration.
    RatesWrite = [Admin]
);

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list).service(create).service(get_one).service(update);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"source_type": "groundwater_deep", "purpose": "industrial", "zone_class": null,
    "rate_yuan_per_m3": "1.5000", "effective_from": "2022-01-01", "effective_to": null, "note": "省发展改革委 省财政厅 省水利厅文件"}))]
pub struct NewRate {
    pub source_type: SourceType,
    pub purpose: Purpose,
    /// Only for zones of this class; omit or null for every class.
    pub zone_class: Option<ZoneClass>,
    pub rate_yuan_per_m3: Rate,
    #[schema(value_type = String, format = Date)]
    pub effective_from: Date,
    /// Last day in force; omit or null for open-ended.
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_to: Option<Date>,
    pub note: Option<String>,
}

/// Changes to a rate row (its key — source type, purpose, zone class — stays; `null` clears `effective_to` and `note`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"effective_to": "2024-11-30"}))]
pub struct RatePatch {
    pub rate_yuan_per_m3: Option<Rate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_from: Option<Date>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_to: Option<Option<Date>>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<String>)]
    pub note: Option<Option<String>>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RateFilter {
    pub source_type: Option<SourceType>,
    pub purpose: Option<Purpose>,
    pub zone_class: Option<ZoneClass>,
    /// Only rows in force on this day.
    #[param(value_type = Option<String>, format = Date)]
    pub in_force_on: Option<Date>,
}

/// A rate is applied to whole months (the one in force on a month's first day prices the month), so it starts on a
/// first and ends on a last day of a month.
fn check_range(from: chrono::NaiveDate, to: Option<chrono::NaiveDate>) -> ApiResult<()> {
    use chrono::Datelike;
    let mut c = Checks::new();
    if from.day() != 1 {
        c.fail("effective_from", Msg::FirstOfMonth);
    }
    if let Some(to) = to {
        if to.succ_opt().is_some_and(|next| next.day() != 1) {
            c.fail("effective_to", Msg::LastOfMonth);
        } else if to < from {
            c.fail("effective_to", Msg::NotBeforeEffectiveFrom);
        }
    }
    c.finish()
}

/// 水资源费征收标准 — The rate table, by key and start.
#[utoipa::path(tag = "fee-rates", params(PageQuery, RateFilter),
    security(("bearer" = ["admin", "leader", "water_resources", "finance", "auditor", "platform"])),
    responses((status = 200, description = "Rates", body = Page<FeeRate>)))]
#[get("/fee-rates")]
async fn list(
    state: web::Data<AppState>,
    _caller: Authorized<RatesRead>,
    query: ListQuery<RateFilter>,
) -> ApiResult<HttpResponse> {
    let pp: PageParams<String> = query.page.params()?;
    let f = query.filter;
    let page = state
        .db
        .run(move |conn| {
            let filtered = || {
                let mut q = fr::table.into_boxed();
                if let Some(v) = f.source_type {
                    q = q.filter(fr::source_type.eq(v.as_str()));
                }
                if let Some(v) = f.purpose {
                    q = q.filter(fr::purpose.eq(v.as_str()));
                }
                if let Some(v) = f.zone_class {
                    q = q.filter(fr::zone_class.eq(v.as_str()));
                }
                if let Some(day) = plain(f.in_force_on) {
                    q = q
                        .filter(fr::effective_from.le(day))
                        .filter(fr::effective_to.is_null().or(fr::effective_to.ge(day)));
                }
                q
            };
            let total = pp.total(|| filtered().count().get_result(conn))?;
            let mut q = filtered().order(fr::id.asc()).limit(pp.fetch()).select(FeeRateRow::as_select());
            if let Some(after) = &pp.after {
                q = q.filter(fr::id.gt(after.clone()));
            }
            let rows = pp.page(q.load(conn)?, |r: &FeeRateRow| r.id.clone());
            Ok(rows.map(|r| FeeRate::from(&r)).with_total(total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// 新增征收标准 — Add a rate. Refused when a row of the same key (source type, purpose, zone class) is in force on any
/// of its days (`rate_overlap`): close the old row first (`effective_to`).
#[utoipa::path(tag = "fee-rates", request_body = NewRate, security(("bearer" = ["admin"])),
    responses((status = 201, description = "Created", body = FeeRate, headers(("ETag" = String), ("Location" = String))),
        (status = 409, description = "Overlaps a row of the same key (`rate_overlap`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/fee-rates")]
async fn create(
    state: web::Data<AppState>,
    caller: Authorized<RatesWrite>,
    body: ApiJson<NewRate>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let mut c = Checks::new();
    let note = c.optional("note", b.note.as_deref(), 300);
    c.finish()?;
    let (from, to) = (b.effective_from.get(), plain(b.effective_to));
    check_range(from, to)?;
    let now = caller.now.at;
    let row = FeeRateRow {
        id: crate::domain::new_id(),
        source_type: b.source_type.as_str().into(),
        purpose: b.purpose.as_str().into(),
        zone_class: b.zone_class.map(|z| z.as_str().into()),
        rate: b.rate_yuan_per_m3.to_string(),
        effective_from: from,
        effective_to: to,
        note,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let ctx = caller.ctx();
    state
        .write(move |conn| {
            check_overlap(conn, &row)?;
            let rate = write::create(conn, &ctx, &row, "fee_rate_created")?;
            Ok(Reply::created(format!("/api/v1/fee-rates/{}", rate.id), rate.version, &rate))
        })
        .await
}

/// 查看征收标准 — One rate row.
#[utoipa::path(tag = "fee-rates", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "water_resources", "finance", "auditor", "platform"])),
    responses((status = 200, description = "The rate", body = FeeRate, headers(("ETag" = String)))))]
#[get("/fee-rates/{id}")]
async fn get_one(state: web::Data<AppState>, caller: Authorized<RatesRead>, id: PathId) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let now = caller.now;
    let rate = state
        .db
        .run(move |conn| {
            let row = find(conn, &id)?.ok_or(ApiError::NotFound)?;
            Ok(row.view(conn, &now)?)
        })
        .await?;
    Ok(respond(StatusCode::OK, rate.version, &rate))
}

/// 修改征收标准 — Change a rate row: close it (`effective_to`), correct its rate or dates. Assessments already made keep
/// the rate they were made with; those the change affects show a `reassessment`.
#[utoipa::path(tag = "fee-rates", params(("id" = String, Path), ("If-Match" = String, Header, description = "The rate's ETag")),
    request_body = RatePatch, security(("bearer" = ["admin"])),
    responses((status = 200, description = "Updated", body = FeeRate, headers(("ETag" = String))),
        (status = 409, description = "Overlaps a row of the same key (`rate_overlap`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[patch("/fee-rates/{id}")]
async fn update(
    state: web::Data<AppState>,
    caller: Authorized<RatesWrite>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<RatePatch>,
) -> ApiResult<HttpResponse> {
    if_match.require()?;
    let b = body.0;
    let mut c = Checks::new();
    let note = b.note.map(|n| c.optional("note", n.as_deref(), 300));
    c.finish()?;
    let ctx = caller.ctx();
    let id = id.into_inner();
    state
        .write(move |conn| {
            let (row, rate) =
                write::modify(conn, &ctx, &id, &if_match, "fee_rate_updated", |conn, before: &FeeRateRow| {
                    let mut after = before.clone();
                    if let Some(v) = b.rate_yuan_per_m3 {
                        after.rate = v.to_string();
                    }
                    if let Some(v) = b.effective_from {
                        after.effective_from = v.get();
                    }
                    if let Some(v) = b.effective_to {
                        after.effective_to = plain(v);
                    }
                    if let Some(v) = note {
                        after.note = v;
                    }
                    check_range(after.effective_from, after.effective_to)?;
                    check_overlap(conn, &after)?;
                    Ok(Change::new(after))
                })?;
            Ok(Reply::ok(row.version, &rate))
        })
        .await
}
