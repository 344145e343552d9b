//! `/api/v1/rectifications`: the findings of inspections as things to put right — listed (open, overdue, due
//! before a day), read, completed.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::routes::lock_visible;
use super::rules::{self, FindingType, RectificationStatus};
use super::{
    find_rectification, rectification_views, InspectionsRead, InspectionsWrite, Rectification, RectificationRow,
    Visibility,
};
use crate::audit::history::{of_record as record_history, HistoryEntry};
use crate::audit::EntityType;
use crate::db::schema::{inspection_inspectors as ii, inspections as i, rectifications as rc};
use crate::db::DbConn;
use crate::domain::dates::{plain, Date};
use crate::domain::text::Checks;
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::PageParams;
use crate::http::{respond, ApiJson, IfMatch, ListQuery, NoFilter, Page, PageQuery, PathId};
use crate::messages::Msg;
use crate::security::{Authorized, AUDIT_READERS};
use crate::state::AppState;
use crate::write::{self, Change, Record, Reply};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list).service(get_one).service(complete).service(history);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RectificationFilter {
    pub inspection_id: Option<String>,
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<FindingType>,
    /// `open` (not yet rectified, overdue or not), `rectified`, or `overdue` (open past its due date) — as of
    /// `as_of` when given.
    pub status: Option<RectificationStatus>,
    /// Read the list as it stood at the end of this day (default today): only findings of inspections by then,
    /// each open unless rectified on or before it, overdue when open past its due date.
    #[param(value_type = Option<String>, format = Date)]
    pub as_of: Option<Date>,
    /// Due on or before this day.
    #[param(value_type = Option<String>, format = Date)]
    pub due_before: Option<Date>,
    /// The inspected water user.
    pub target_water_user_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"note": "已更换合格的电磁流量计并完成校验", "effective_date": "2026-12-10"}))]
pub struct CompleteBody {
    /// What was done.
    pub note: String,
    /// The day it was rectified (default today): not before the inspection, not in the future.
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<Date>,
}

type Sql = <DbConn as diesel::Connection>::Backend;

/// 整改列表 — Rectifications, the soonest due first; by inspection, type, status (`overdue` as of a day), due date
/// and water user. Field inspectors see those of their own inspections.
#[utoipa::path(tag = "inspections", params(PageQuery, RectificationFilter),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "enforcement", "legal", "inspector", "platform", "auditor"])),
    responses((status = 200, description = "Rectifications", body = Page<Rectification>),
        (status = 400, description = "Bad filter (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/rectifications")]
async fn list(
    state: web::Data<AppState>,
    caller: Authorized<InspectionsRead>,
    query: ListQuery<RectificationFilter>,
) -> ApiResult<HttpResponse> {
    let p: PageParams<(NaiveDate, String)> = query.page.params()?;
    let f = query.filter;
    let today = caller.now.today;
    let as_of = plain(f.as_of).unwrap_or(today);
    let vis = Visibility::of(&caller.principal);
    let page = state
        .db
        .run(move |conn| {
            let filtered = || {
                let mut q = rc::table.into_boxed::<Sql>();
                if let Visibility::Own(me) = &vis {
                    q = q.filter(
                        rc::inspection_id
                            .eq_any(ii::table.filter(ii::account_id.eq(me.clone())).select(ii::inspection_id)),
                    );
                }
                if let Some(v) = &f.inspection_id {
                    q = q.filter(rc::inspection_id.eq(v.clone()));
                }
                if let Some(v) = f.kind {
                    q = q.filter(rc::kind.eq(v.as_str()));
                }
                // As of a day: found by its end (on an inspection by then, however late it was entered), and open
                // then unless rectified on or before it.
                if f.as_of.is_some() {
                    let end = crate::clock::bureau_day_start(as_of + chrono::Days::new(1));
                    q = q.filter(rc::inspection_id.eq_any(i::table.filter(i::inspected_at.lt(end)).select(i::id)));
                }
                // Open then: not rectified, or (for a past day) rectified only later; today no completion lies
                // ahead, so the plain status serves (and its index).
                let past = f.as_of.is_some();
                let due = rc::rectification_due.lt(as_of);
                match f.status {
                    Some(RectificationStatus::Open) if past => {
                        q = q.filter(rc::status.eq("open").or(rc::completed_on.gt(as_of)))
                    }
                    Some(RectificationStatus::Open) => q = q.filter(rc::status.eq("open")),
                    Some(RectificationStatus::Rectified) => q = q.filter(rc::completed_on.le(as_of)),
                    Some(RectificationStatus::Overdue) if past => {
                        q = q.filter(rc::status.eq("open").or(rc::completed_on.gt(as_of))).filter(due)
                    }
                    Some(RectificationStatus::Overdue) => q = q.filter(rc::status.eq("open")).filter(due),
                    None => {}
                }
                if let Some(v) = f.due_before {
                    q = q.filter(rc::rectification_due.le(v.get()));
                }
                if let Some(v) = &f.target_water_user_id {
                    q = q.filter(
                        rc::inspection_id.eq_any(i::table.filter(i::target_water_user_id.eq(v.clone())).select(i::id)),
                    );
                }
                q
            };
            let total = p.total(|| filtered().count().get_result(conn))?;
            let mut q = filtered()
                .order((rc::rectification_due.asc(), rc::id.asc()))
                .limit(p.fetch())
                .select(RectificationRow::as_select());
            if let Some((due, id)) = &p.after {
                q = q.filter(
                    rc::rectification_due.gt(*due).or(rc::rectification_due.eq(*due).and(rc::id.gt(id.clone()))),
                );
            }
            let rows = p.page(q.load(conn)?, |r: &RectificationRow| (r.rectification_due, r.id.clone()));
            let mut items = rectification_views(conn, rows.items, today)?;
            if f.as_of.is_some() {
                // Statuses as of the day asked about.
                for item in &mut items {
                    item.status = rules::status_as_of(item.completed_on, item.rectification_due, as_of);
                }
            }
            Ok::<_, ApiError>(Page { items, next_cursor: rows.next_cursor, total })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// 查看整改 — One rectification.
#[utoipa::path(tag = "inspections", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "enforcement", "legal", "inspector", "platform", "auditor"])),
    responses((status = 200, description = "The rectification", body = Rectification, headers(("ETag" = String)))))]
#[get("/rectifications/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    caller: Authorized<InspectionsRead>,
    id: PathId,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let vis = Visibility::of(&caller.principal);
    let today = caller.now.today;
    let view = state
        .db
        .run(move |conn| {
            let row = find_rectification(conn, &id)?.ok_or(ApiError::NotFound)?;
            vis.require(conn, &row.inspection_id)?;
            Ok::<_, ApiError>(rectification_views(conn, vec![row], today)?.pop().expect("one view"))
        })
        .await?;
    Ok(respond(StatusCode::OK, view.version, &view))
}

/// 整改完成 — Record that a finding was put right, with a note and the day (field inspectors: their own
/// inspections' findings).
#[utoipa::path(tag = "inspections", params(("id" = String, Path), ("If-Match" = String, Header, description = "The rectification's ETag")),
    request_body = CompleteBody, security(("bearer" = ["water_resources", "water_saving", "enforcement", "inspector"])),
    responses(
        (status = 200, description = "Rectified", body = Rectification, headers(("ETag" = String))),
        (status = 400, description = "Invalid fields (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already rectified (`invalid_transition`), or a day before the inspection (`effective_date_out_of_order`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/rectifications/{id}/complete")]
async fn complete(
    state: web::Data<AppState>,
    caller: Authorized<InspectionsWrite>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<CompleteBody>,
) -> ApiResult<HttpResponse> {
    write::check_action(&if_match, None)?;
    let b = body.0;
    let mut c = Checks::new();
    let note = c.optional_text("note", Some(&b.note), 2000).unwrap_or_default();
    if note.is_empty() {
        c.fail("note", Msg::NotEmpty);
    }
    c.finish()?;
    let vis = Visibility::of(&caller.principal);
    let ctx = caller.ctx();
    let id = id.into_inner();
    state
        .write(move |conn| {
            let inspection_id = find_rectification(conn, &id)?.ok_or(ApiError::NotFound)?.inspection_id;
            // The inspection first (its day bounds the completion; its view shows the finding's status).
            let inspection = lock_visible(conn, &vis, &inspection_id)?;
            let before = inspection.view(conn, &ctx.now)?;
            let (row, view) = write::modify(
                conn,
                &ctx,
                &id,
                &if_match,
                "rectification_completed",
                |_, before: &RectificationRow| {
                    let on =
                        rules::complete(&before.status, inspection.date(), plain(b.effective_date), ctx.now.today)?;
                    let mut after = before.clone();
                    after.status = RectificationStatus::Rectified.as_str().into();
                    after.completed_on = Some(on);
                    after.completion_note = Some(note.clone());
                    Ok(Change::new(after).effective_date(Some(on)))
                },
            )?;
            write::bump(conn, &ctx, &inspection, &before, "inspection_finding_rectified")?;
            Ok(Reply::ok(row.version, &view))
        })
        .await
}

/// 整改变更记录 — Every change of a rectification, oldest first (who: admin and auditor only).
#[utoipa::path(tag = "inspections", params(("id" = String, Path), PageQuery),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "enforcement", "legal", "inspector", "platform", "auditor"])),
    responses((status = 200, description = "History", body = Page<HistoryEntry>)))]
#[get("/rectifications/{id}/history")]
async fn history(
    state: web::Data<AppState>,
    caller: Authorized<InspectionsRead>,
    id: PathId,
    query: ListQuery<NoFilter>,
) -> ApiResult<HttpResponse> {
    let pp: PageParams<i64> = query.page.params()?;
    let with_actors = caller.principal.has_any(AUDIT_READERS);
    let vis = Visibility::of(&caller.principal);
    let exists = move |conn: &mut DbConn, id: &str| match find_rectification(conn, id)? {
        Some(r) => vis.sees(conn, &r.inspection_id),
        None => Ok(false),
    };
    let page = record_history(
        &state.db,
        EntityType::Rectification,
        id.into_inner(),
        "rectification_",
        pp,
        with_actors,
        exists,
    );
    Ok(HttpResponse::Ok().json(page.await?))
}
