//! `/api/v1/water-zones` (admin writes, everyone reads).

use actix_web::http::StatusCode;
use actix_web::{get, patch, post, web, HttpResponse};
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::{find, Zone, ZoneClass, ZoneRow};
use crate::db::schema::water_zones as z;
use crate::domain::text::Checks;
use crate::domain::water::SourceType;
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::PageParams;
use crate::http::{respond, ApiJson, IfMatch, ListQuery, Page, PageQuery, PathId};
use crate::policy;
use crate::security::Authorized;
use crate::state::AppState;
use crate::write::{self, Change, Record, Reply};

policy!(
    /// The sections that work with permits and fees, and the platform (docs/api.md: not legal, not field inspectors).
    ZonesRead = [Admin, Leader, WaterResources, WaterSaving, Finance, Enforcement, Platform, Auditor]
);
policy!(
    /// Zones are configuration.
    ZonesWrite = [Admin]
);

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list).service(create).service(get_one).service(update);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "赤水河岩溶地下水区", "source_type": "karst", "zone_class": "restricted", "allowable_m3_per_year": 15150000}))]
pub struct NewZone {
    pub name: String,
    pub source_type: SourceType,
    pub zone_class: ZoneClass,
    pub allowable_m3_per_year: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"allowable_m3_per_year": 16000000}))]
pub struct ZonePatch {
    pub name: Option<String>,
    pub source_type: Option<SourceType>,
    pub zone_class: Option<ZoneClass>,
    pub allowable_m3_per_year: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ZoneFilter {
    pub zone_class: Option<ZoneClass>,
    pub source_type: Option<SourceType>,
}

/// 分区列表 — List zones with their approved totals and utilisation.
#[utoipa::path(tag = "water-zones", params(PageQuery, ZoneFilter),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "Zones", body = Page<Zone>)))]
#[get("/water-zones")]
async fn list(
    state: web::Data<AppState>,
    caller: Authorized<ZonesRead>,
    query: ListQuery<ZoneFilter>,
) -> ApiResult<HttpResponse> {
    let p: PageParams<String> = query.page.params()?;
    let f = query.filter;
    let today = caller.now.today;
    let result = state
        .db
        .run(move |conn| {
            let filtered = || {
                let mut q = z::table.into_boxed();
                if let Some(c) = f.zone_class {
                    q = q.filter(z::zone_class.eq(c.as_str()));
                }
                if let Some(s) = f.source_type {
                    q = q.filter(z::source_type.eq(s.as_str()));
                }
                q
            };
            let total = p.total(|| filtered().count().get_result(conn))?;
            let mut q = filtered().order(z::id.asc()).limit(p.fetch()).select(ZoneRow::as_select());
            if let Some(after) = &p.after {
                q = q.filter(z::id.gt(after.clone()));
            }
            let page = p.page(q.load(conn)?, |r: &ZoneRow| r.id.clone());
            let ids: Vec<String> = page.items.iter().map(|r| r.id.clone()).collect();
            let totals = super::approved_totals(conn, &ids, today)?;
            Ok(page.map(|r| Zone::new(&r, totals.get(&r.id).copied().unwrap_or(0))).with_total(total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

/// 新建分区 — Define a zone.
#[utoipa::path(tag = "water-zones", request_body = NewZone, security(("bearer" = ["admin"])),
    responses((status = 201, description = "Created", body = Zone),
        (status = 409, description = "Name taken (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/water-zones")]
async fn create(
    state: web::Data<AppState>,
    caller: Authorized<ZonesWrite>,
    body: ApiJson<NewZone>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let mut c = Checks::new();
    let name = c.required("name", &b.name, 200);
    c.volume("allowable_m3_per_year", b.allowable_m3_per_year);
    c.finish()?;
    let now = caller.now.at;
    let row = ZoneRow {
        id: crate::domain::new_id(),
        name,
        source_type: b.source_type.as_str().into(),
        zone_class: b.zone_class.as_str().into(),
        allowable_m3_per_year: b.allowable_m3_per_year,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let ctx = caller.ctx();
    state
        .write(move |conn| {
            let zone = write::create(conn, &ctx, &row, "zone_created")?;
            Ok(Reply::created(format!("/api/v1/water-zones/{}", zone.id), zone.version, &zone))
        })
        .await
}

/// 查看分区 — One zone.
#[utoipa::path(tag = "water-zones", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "The zone", body = Zone, headers(("ETag" = String)))))]
#[get("/water-zones/{id}")]
async fn get_one(state: web::Data<AppState>, caller: Authorized<ZonesRead>, id: PathId) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let now = caller.now;
    let zone = state
        .db
        .run(move |conn| {
            let row = find(conn, &id)?.ok_or(ApiError::NotFound)?;
            Ok(row.view(conn, &now)?)
        })
        .await?;
    Ok(respond(StatusCode::OK, zone.version, &zone))
}

/// 修改分区 — Change a zone (its cap applies to later approvals).
#[utoipa::path(tag = "water-zones", params(("id" = String, Path), ("If-Match" = String, Header, description = "The zone's ETag")),
    request_body = ZonePatch, security(("bearer" = ["admin"])),
    responses((status = 200, description = "Updated", body = Zone, headers(("ETag" = String))),
        (status = 409, description = "Name taken (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[patch("/water-zones/{id}")]
async fn update(
    state: web::Data<AppState>,
    caller: Authorized<ZonesWrite>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<ZonePatch>,
) -> ApiResult<HttpResponse> {
    if_match.require()?;
    let b = body.0;
    let mut c = Checks::new();
    let name = b.name.as_deref().map(|v| c.required("name", v, 200));
    if let Some(v) = b.allowable_m3_per_year {
        c.volume("allowable_m3_per_year", v);
    }
    c.finish()?;
    let ctx = caller.ctx();
    let id = id.into_inner();
    state
        .write(move |conn| {
            let (row, zone) = write::modify(conn, &ctx, &id, &if_match, "zone_updated", |_, before: &ZoneRow| {
                let mut after = before.clone();
                if let Some(v) = name {
                    after.name = v;
                }
                if let Some(v) = b.source_type {
                    after.source_type = v.as_str().into();
                }
                if let Some(v) = b.zone_class {
                    after.zone_class = v.as_str().into();
                }
                if let Some(v) = b.allowable_m3_per_year {
                    after.allowable_m3_per_year = v;
                }
                Ok(Change::new(after))
            })?;
            Ok(Reply::ok(row.version, &zone))
        })
        .await
}
