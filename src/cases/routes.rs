//! `GET /api/v1/cases` and `GET /api/v1/cases/{id}`.

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{find, Case, CaseRow, CasesRead, Stage, ViolationType};
use crate::db::schema::cases as c;
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::PageParams;
use crate::http::{respond, ListQuery, Page, PageQuery, PathId};
use crate::security::Authorized;
use crate::state::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list).service(get_one);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseFilter {
    pub stage: Option<Stage>,
    pub violation_type: Option<ViolationType>,
    /// The party, when it is a water user of the registry.
    pub water_user_id: Option<String>,
    /// The case opened from this inspection.
    pub source_inspection_id: Option<String>,
}

/// 案件列表 — Enforcement cases, oldest first; by stage, violation type, party or source inspection.
#[utoipa::path(tag = "cases", params(PageQuery, CaseFilter),
    security(("bearer" = ["admin", "leader", "enforcement", "legal", "platform", "auditor"])),
    responses((status = 200, description = "Cases", body = Page<Case>),
        (status = 400, description = "Bad filter (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/cases")]
async fn list(
    state: web::Data<AppState>,
    _caller: Authorized<CasesRead>,
    query: ListQuery<CaseFilter>,
) -> ApiResult<HttpResponse> {
    let p: PageParams<String> = query.page.params()?;
    let f = query.filter;
    let page = state
        .db
        .run(move |conn| {
            let filtered = || {
                let mut q = c::table.into_boxed();
                if let Some(v) = f.stage {
                    q = q.filter(c::stage.eq(v.as_str()));
                }
                if let Some(v) = f.violation_type {
                    q = q.filter(c::violation_type.eq(v.as_str()));
                }
                if let Some(v) = &f.water_user_id {
                    q = q.filter(c::water_user_id.eq(v.clone()));
                }
                if let Some(v) = &f.source_inspection_id {
                    q = q.filter(c::source_inspection_id.eq(v.clone()));
                }
                q
            };
            let total = p.total(|| filtered().count().get_result(conn))?;
            let mut q = filtered().order(c::id.asc()).limit(p.fetch()).select(CaseRow::as_select());
            if let Some(after) = &p.after {
                q = q.filter(c::id.gt(after.clone()));
            }
            let rows = p.page(q.load(conn)?, |r: &CaseRow| r.id.clone());
            Ok::<_, ApiError>(rows.map(|r| Case::new(&r)).with_total(total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// 查看案件 — One enforcement case.
#[utoipa::path(tag = "cases", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "enforcement", "legal", "platform", "auditor"])),
    responses((status = 200, description = "The case", body = Case, headers(("ETag" = String)))))]
#[get("/cases/{id}")]
async fn get_one(state: web::Data<AppState>, _caller: Authorized<CasesRead>, id: PathId) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let view = state.db.run(move |conn| Ok(Case::new(&find(conn, &id)?.ok_or(ApiError::NotFound)?))).await?;
    Ok(respond(StatusCode::OK, view.version, &view))
}
