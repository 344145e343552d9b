//! `/api/v1/inspections`: record, list, read, change; findings added later; escalation into a case.

use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::{get, patch, post, web, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::rules::{self, FindingType, MAX_FINDINGS, MAX_INSPECTORS};
use super::{
    find, findings_of, inspectors_of, set_inspectors, views, EscalateInspection, Inspection, InspectionRow,
    InspectionsRead, InspectionsWrite, Kind, Location, Rectification, RectificationRow, Visibility,
};
use crate::audit::history::{of_record as record_history, HistoryEntry};
use crate::audit::EntityType;
use crate::cases::{self, CarriedFinding, Case, CaseRow, PartyKind, ViolationType};
use crate::db::schema::{accounts, inspection_inspectors as ii, inspections as i, permits, rectifications as rc};
use crate::db::DbConn;
use crate::domain::dates::{plain, Date};
use crate::domain::text::Checks;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::http::pagination::PageParams;
use crate::http::{respond, ApiJson, IfMatch, ListQuery, NoFilter, OptionalJson, Page, PageQuery, PathId};
use crate::messages::Msg;
use crate::security::{Authorized, AUDIT_READERS};
use crate::state::AppState;
use crate::write::{self, Change, Record, Reply};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(get_one)
        .service(update)
        .service(add_finding)
        .service(history)
        .service(escalate);
}

/// A finding as recorded.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "meter_not_working", "description": "取水计量设施损坏，读数停止", "rectification_due": "2026-12-20"}))]
pub struct NewFinding {
    #[serde(rename = "type")]
    pub kind: FindingType,
    pub description: String,
    /// The rectification deadline: on or after the inspection's date.
    #[schema(value_type = String, format = Date)]
    pub rectification_due: Date,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "water_permit", "target_water_user_id": "0193a0c4-5f0e-7b61-9a3e-4c1d2e3f4a5b",
    "inspected_at": "2026-11-20T02:30:00Z", "location": {"lat": 28.5901, "lng": 105.6932},
    "inspector_ids": ["0193a0c4-0000-7000-8000-000000000011"], "notes": "现场检查取水口及计量设施",
    "findings": [{"type": "meter_not_working", "description": "取水计量设施损坏，读数停止", "rectification_due": "2026-12-20"}]}))]
pub struct NewInspection {
    pub kind: Kind,
    /// The inspected water user (of the registry).
    pub target_water_user_id: String,
    /// A permit of that water user, if the inspection concerns one.
    pub permit_id: Option<String>,
    /// When it took place (RFC 3339); not in the future.
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub inspected_at: NaiveDateTime,
    pub location: Option<Location>,
    /// Co-inspectors (account ids); the creator is always one of the inspectors, whether listed or not.
    #[serde(default)]
    pub inspector_ids: Vec<String>,
    pub notes: Option<String>,
    /// What was found; each finding becomes a rectification.
    #[serde(default)]
    pub findings: Vec<NewFinding>,
}

/// Fields to change; `null` clears an optional field. Findings are rectifications of their own (add one with
/// `POST /inspections/{id}/findings`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"notes": "现场检查取水口及计量设施；企业负责人在场", "inspector_ids": ["0193a0c4-0000-7000-8000-000000000011"]}))]
pub struct InspectionPatch {
    pub kind: Option<Kind>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<String>)]
    pub permit_id: Option<Option<String>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, with = "instant_opt")]
    pub inspected_at: Option<NaiveDateTime>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<Location>)]
    pub location: Option<Option<Location>>,
    /// The whole list of inspectors (the creator stays one of them).
    pub inspector_ids: Option<Vec<String>>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
}

mod instant_opt {
    use chrono::NaiveDateTime;
    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDateTime>, D::Error> {
        crate::domain::instant::deserialize(d).map(Some)
    }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"violation_type": "unlicensed_abstraction", "reason": "擅自取水，移送立案", "effective_date": "2026-11-21"}))]
pub struct EscalateBody {
    /// Default: read from the findings (`unlicensed_abstraction`, `over_permit_abstraction`), else `other`.
    pub violation_type: Option<ViolationType>,
    /// Default: the findings, numbered.
    pub facts: Option<String>,
    pub legal_basis: Option<String>,
    pub reason: Option<String>,
    /// The clue's date (default today): not before the inspection.
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<Date>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InspectionFilter {
    pub kind: Option<Kind>,
    /// The inspected water user: its inspections, latest first, answer "when was it last inspected, and what was
    /// found".
    pub target_water_user_id: Option<String>,
    pub permit_id: Option<String>,
    /// Inspections this account took part in.
    pub inspector_id: Option<String>,
    /// Inspected on or after this day (Asia/Shanghai).
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<Date>,
    /// Inspected on or before this day (Asia/Shanghai).
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<Date>,
    /// With (true) or without (false) findings not yet rectified.
    pub has_open_findings: Option<bool>,
}

/// Checks the inspector list: known accounts, none twice, at most [`MAX_INSPECTORS`]; returns it with `creator`
/// first.
fn inspector_list(conn: &mut DbConn, creator: &str, given: &[String]) -> Result<Vec<String>, ApiError> {
    let mut ids = vec![creator.to_string()];
    let mut seen: HashSet<&str> = HashSet::from([creator]);
    let mut c = Checks::new();
    for (n, id) in given.iter().enumerate() {
        if c.required(&format!("inspector_ids[{n}]"), id, 64).is_empty() {
            continue;
        }
        if !seen.insert(id.as_str()) {
            if id != creator {
                c.fail(&format!("inspector_ids[{n}]"), Msg::RepeatedItem(id.clone()));
            }
            continue;
        }
        ids.push(id.clone());
    }
    if ids.len() > MAX_INSPECTORS {
        c.fail("inspector_ids", Msg::AtMostItems(MAX_INSPECTORS));
    }
    c.finish()?;
    let others: Vec<&str> = ids.iter().skip(1).map(String::as_str).collect();
    if !others.is_empty() {
        let known: HashSet<String> =
            accounts::table.filter(accounts::id.eq_any(&others)).select(accounts::id).load(conn)?.into_iter().collect();
        let mut c = Checks::new();
        for (n, id) in given.iter().enumerate() {
            if id != creator && !known.contains(id) {
                c.fail(&format!("inspector_ids[{n}]"), Msg::NoSuchAccount(crate::domain::text::untrusted(id, 64)));
            }
        }
        c.finish()?;
    }
    Ok(ids)
}

/// Locks inspection `id` for this transaction and checks the caller may see it (404 otherwise, before any other
/// check can tell that it exists).
pub fn lock_visible(conn: &mut DbConn, vis: &Visibility, id: &str) -> Result<InspectionRow, ApiError> {
    let row = <InspectionRow as write::Versioned>::lock(conn, id)?.ok_or(ApiError::NotFound)?;
    vis.require(conn, id)?;
    Ok(row)
}

/// The target must be in the registry, the permit (if any) one of the target's.
fn check_target(conn: &mut DbConn, target: &str, permit: Option<&str>) -> Result<(), ApiError> {
    if crate::water_users::find(conn, target)?.is_none() {
        return Err(ApiError::invalid("target_water_user_id", Msg::NoSuchWaterUser));
    }
    if let Some(p) = permit {
        let holder: Option<String> = permits::table.find(p).select(permits::holder_id).first(conn).optional()?;
        match holder {
            None => return Err(ApiError::invalid("permit_id", Msg::NoSuchPermit)),
            Some(h) if h != target => return Err(ApiError::invalid("permit_id", Msg::NotPermitOfTarget)),
            Some(_) => {}
        }
    }
    Ok(())
}

fn check_location(c: &mut Checks, loc: Option<&Location>) {
    if let Some(l) = loc {
        if !(-90.0..=90.0).contains(&l.lat) {
            c.fail("location.lat", Msg::Between(-90, 90));
        }
        if !(-180.0..=180.0).contains(&l.lng) {
            c.fail("location.lng", Msg::Between(-180, 180));
        }
    }
}

fn finding_row(
    c: &mut Checks,
    field: &str,
    f: &NewFinding,
    inspection: &InspectionRow,
    position: i32,
) -> RectificationRow {
    let name = |s: &str| if field.is_empty() { s.to_string() } else { format!("{field}.{s}") };
    let description = c.optional_text(&name("description"), Some(&f.description), 2000).unwrap_or_default();
    if description.is_empty() {
        c.fail(&name("description"), Msg::NotEmpty);
    }
    if let Err(m) = rules::check_due(f.rectification_due.get(), inspection.date()) {
        c.fail(&name("rectification_due"), m);
    }
    RectificationRow {
        id: crate::domain::new_id(),
        inspection_id: inspection.id.clone(),
        position,
        kind: f.kind.as_str().into(),
        description,
        rectification_due: f.rectification_due.get(),
        status: super::RectificationStatus::Open.as_str().into(),
        completed_on: None,
        completion_note: None,
        created_at: inspection.created_at,
        updated_at: inspection.created_at,
        version: 1,
    }
}

type Sql = <DbConn as diesel::Connection>::Backend;

/// 巡查列表 — Inspections, latest first; by kind, target, permit, inspector, date range and open findings. Field
/// inspectors see only those they created or are listed on.
#[utoipa::path(tag = "inspections", params(PageQuery, InspectionFilter),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "enforcement", "legal", "inspector", "platform", "auditor"])),
    responses((status = 200, description = "Inspections", body = Page<Inspection>),
        (status = 400, description = "Bad filter (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/inspections")]
async fn list(
    state: web::Data<AppState>,
    caller: Authorized<InspectionsRead>,
    query: ListQuery<InspectionFilter>,
) -> ApiResult<HttpResponse> {
    let p: PageParams<(NaiveDateTime, String)> = query.page.params()?;
    let f = query.filter;
    if let (Some(a), Some(b)) = (f.from, f.to) {
        if b < a {
            return Err(ApiError::invalid("to", Msg::NotBeforeFrom));
        }
    }
    let from = plain(f.from).map(crate::clock::bureau_day_start);
    let to = plain(f.to).and_then(|d| d.succ_opt()).map(crate::clock::bureau_day_start);
    let vis = Visibility::of(&caller.principal);
    let today = caller.now.today;
    let page = state
        .db
        .run(move |conn| {
            let filtered = || {
                let mut q = i::table.into_boxed::<Sql>();
                if let Visibility::Own(me) = &vis {
                    q = q.filter(
                        i::id.eq_any(ii::table.filter(ii::account_id.eq(me.clone())).select(ii::inspection_id)),
                    );
                }
                if let Some(v) = f.kind {
                    q = q.filter(i::kind.eq(v.as_str()));
                }
                if let Some(v) = &f.target_water_user_id {
                    q = q.filter(i::target_water_user_id.eq(v.clone()));
                }
                if let Some(v) = &f.permit_id {
                    q = q.filter(i::permit_id.eq(v.clone()));
                }
                if let Some(v) = &f.inspector_id {
                    q = q
                        .filter(i::id.eq_any(ii::table.filter(ii::account_id.eq(v.clone())).select(ii::inspection_id)));
                }
                if let Some(v) = from {
                    q = q.filter(i::inspected_at.ge(v));
                }
                if let Some(v) = to {
                    q = q.filter(i::inspected_at.lt(v));
                }
                if let Some(open) = f.has_open_findings {
                    let with_open = rc::table.filter(rc::status.eq("open")).select(rc::inspection_id);
                    q = if open { q.filter(i::id.eq_any(with_open)) } else { q.filter(i::id.ne_all(with_open)) };
                }
                q
            };
            let total = p.total(|| filtered().count().get_result(conn))?;
            let mut q = filtered()
                .order((i::inspected_at.desc(), i::id.desc()))
                .limit(p.fetch())
                .select(InspectionRow::as_select());
            if let Some((at, id)) = &p.after {
                q = q.filter(i::inspected_at.lt(*at).or(i::inspected_at.eq(*at).and(i::id.lt(id.clone()))));
            }
            let rows = p.page(q.load(conn)?, |r: &InspectionRow| (r.inspected_at, r.id.clone()));
            let items = views(conn, rows.items, today)?;
            Ok::<_, ApiError>(Page { items, next_cursor: rows.next_cursor, total })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// 登记巡查 — Record an inspection with its findings (each becomes a rectification). The creator is always one of
/// the inspectors. With an `Idempotency-Key`, a retry from a poor connection answers the same inspection again.
#[utoipa::path(tag = "inspections", request_body = NewInspection,
    security(("bearer" = ["water_resources", "water_saving", "enforcement", "inspector"])),
    responses(
        (status = 201, description = "Recorded", body = Inspection, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "Invalid fields, unknown water user, permit or account (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/inspections")]
async fn create(
    state: web::Data<AppState>,
    caller: Authorized<InspectionsWrite>,
    body: ApiJson<NewInspection>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let now = caller.now;
    let creator = caller.principal.scope();
    let mut c = Checks::new();
    let target = c.required("target_water_user_id", &b.target_water_user_id, 64);
    let permit_id = c.optional("permit_id", b.permit_id.as_deref(), 64);
    let notes = c.optional_text("notes", b.notes.as_deref(), 4000);
    if let Err(m) = rules::check_inspected_at(b.inspected_at, now.at) {
        c.fail("inspected_at", m);
    }
    check_location(&mut c, b.location.as_ref());
    if b.findings.len() > MAX_FINDINGS {
        c.fail("findings", Msg::AtMostItems(MAX_FINDINGS));
    }
    let row = InspectionRow {
        id: crate::domain::new_id(),
        kind: b.kind.as_str().into(),
        target_water_user_id: target,
        permit_id,
        inspected_at: b.inspected_at,
        lat: b.location.map(|l| l.lat),
        lng: b.location.map(|l| l.lng),
        notes,
        created_by: creator.clone(),
        created_at: now.at,
        updated_at: now.at,
        version: 1,
    };
    let findings: Vec<RectificationRow> = b
        .findings
        .iter()
        .enumerate()
        .map(|(n, f)| finding_row(&mut c, &format!("findings[{n}]"), f, &row, n as i32 + 1))
        .collect();
    c.finish()?;
    let ctx = caller.ctx();
    let given = b.inspector_ids;
    state
        .write(move |conn| {
            check_target(conn, &row.target_water_user_id, row.permit_id.as_deref())?;
            let inspectors = inspector_list(conn, &creator, &given)?;
            let view = write::create_with(conn, &ctx, &row, "inspection_created", |conn| {
                set_inspectors(conn, &row.id, &inspectors)?;
                for f in &findings {
                    write::create(conn, &ctx, f, "rectification_created")?;
                }
                Ok(())
            })?;
            Ok(Reply::created(format!("/api/v1/inspections/{}", row.id), row.version, &view))
        })
        .await
}

/// 查看巡查 — One inspection with its findings and their rectification status.
#[utoipa::path(tag = "inspections", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "enforcement", "legal", "inspector", "platform", "auditor"])),
    responses((status = 200, description = "The inspection", body = Inspection, headers(("ETag" = String)))))]
#[get("/inspections/{id}")]
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
            vis.require(conn, &id)?;
            let row = find(conn, &id)?.ok_or(ApiError::NotFound)?;
            Ok::<_, ApiError>(views(conn, vec![row], today)?.pop().expect("one view"))
        })
        .await?;
    Ok(respond(StatusCode::OK, view.version, &view))
}

/// 修改巡查 — Change kind, permit, time, location, inspectors or notes (field inspectors: their own inspections).
#[utoipa::path(tag = "inspections", params(("id" = String, Path), ("If-Match" = String, Header, description = "The inspection's ETag")),
    request_body = InspectionPatch, security(("bearer" = ["water_resources", "water_saving", "enforcement", "inspector"])),
    responses(
        (status = 200, description = "Updated", body = Inspection, headers(("ETag" = String))),
        (status = 400, description = "Invalid fields (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = crate::error::Problem, content_type = "application/problem+json")))]
#[patch("/inspections/{id}")]
async fn update(
    state: web::Data<AppState>,
    caller: Authorized<InspectionsWrite>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<InspectionPatch>,
) -> ApiResult<HttpResponse> {
    if_match.require()?;
    let b = body.0;
    let now = caller.now;
    let mut c = Checks::new();
    let notes = b.notes.map(|v| c.optional_text("notes", v.as_deref(), 4000));
    let permit_id = b.permit_id.map(|v| c.optional("permit_id", v.as_deref(), 64));
    if let Some(at) = b.inspected_at {
        if let Err(m) = rules::check_inspected_at(at, now.at) {
            c.fail("inspected_at", m);
        }
    }
    check_location(&mut c, b.location.flatten().as_ref());
    c.finish()?;
    let vis = Visibility::of(&caller.principal);
    let ctx = caller.ctx();
    let id = id.into_inner();
    state
        .write(move |conn| {
            lock_visible(conn, &vis, &id)?;
            let (row, view) =
                write::modify(conn, &ctx, &id, &if_match, "inspection_updated", |conn, before: &InspectionRow| {
                    let mut after = before.clone();
                    if let Some(v) = b.kind {
                        after.kind = v.as_str().into();
                    }
                    if let Some(v) = permit_id {
                        after.permit_id = v;
                    }
                    if let Some(v) = b.inspected_at {
                        after.inspected_at = v;
                    }
                    if let Some(v) = b.location {
                        after.lat = v.map(|l| l.lat);
                        after.lng = v.map(|l| l.lng);
                    }
                    if let Some(v) = notes {
                        after.notes = v;
                    }
                    check_target(conn, &after.target_water_user_id, after.permit_id.as_deref())?;
                    if after.date() > before.date() {
                        // What followed the inspection stays on or after its day: deadlines, completions, the case.
                        let on = after.date();
                        let findings = findings_of(conn, &id)?;
                        if findings.iter().any(|f| f.rectification_due < on) {
                            return Err(ApiError::invalid("inspected_at", Msg::DueBeforeInspection(on)));
                        }
                        let clue_on = cases::clue_on_of_inspection(conn, &id)?;
                        if findings.iter().filter_map(|f| f.completed_on).chain(clue_on).any(|d| d < on) {
                            return Err(ApiError::invalid("inspected_at", Msg::StepsBeforeInspection(on)));
                        }
                    }
                    if let Some(given) = &b.inspector_ids {
                        let ids = inspector_list(conn, &before.created_by, given)?;
                        if ids != inspectors_of(conn, &id)? {
                            set_inspectors(conn, &id, &ids)?;
                        }
                    }
                    Ok(Change::new(after))
                })?;
            Ok(Reply::ok(row.version, &view))
        })
        .await
}

/// 补充发现问题 — Add a finding to an inspection (a rectification of its own; the inspection's ETag is not needed).
#[utoipa::path(tag = "inspections", params(("id" = String, Path),
        ("If-Match" = Option<String>, Header, description = "The inspection's ETag (optional: checked when sent)")),
    request_body = NewFinding,
    security(("bearer" = ["water_resources", "water_saving", "enforcement", "inspector"])),
    responses(
        (status = 201, description = "Added", body = Rectification, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "Invalid fields (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The inspection already has the most findings one may have (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/inspections/{id}/findings")]
async fn add_finding(
    state: web::Data<AppState>,
    caller: Authorized<InspectionsWrite>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<NewFinding>,
) -> ApiResult<HttpResponse> {
    let vis = Visibility::of(&caller.principal);
    let ctx = caller.ctx();
    let id = id.into_inner();
    let f = body.0;
    state
        .write(move |conn| {
            // Locked: findings added at once get distinct positions.
            let inspection = lock_visible(conn, &vis, &id)?;
            if_match.check_if_present(inspection.version)?;
            let before = inspection.view(conn, &ctx.now)?;
            let last: Option<i32> =
                rc::table.filter(rc::inspection_id.eq(&id)).select(diesel::dsl::max(rc::position)).first(conn)?;
            let position = last.unwrap_or(0) + 1;
            if position as usize > MAX_FINDINGS {
                return Err(ApiError::conflict(ErrorCode::Conflict, Msg::AtMostItems(MAX_FINDINGS)));
            }
            let mut c = Checks::new();
            let mut row = finding_row(&mut c, "", &f, &inspection, position);
            c.finish()?;
            row.created_at = ctx.now.at;
            row.updated_at = ctx.now.at;
            let view = write::create(conn, &ctx, &row, "rectification_created")?;
            // The inspection shows its findings: its next version, in its history and the change feed.
            write::bump(conn, &ctx, &inspection, &before, "inspection_finding_added")?;
            Ok(Reply::created(format!("/api/v1/rectifications/{}", row.id), row.version, &view))
        })
        .await
}

/// 巡查变更记录 — Every change of an inspection, oldest first (who: admin and auditor only).
#[utoipa::path(tag = "inspections", params(("id" = String, Path), PageQuery),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "enforcement", "legal", "inspector", "platform", "auditor"])),
    responses((status = 200, description = "History", body = Page<HistoryEntry>)))]
#[get("/inspections/{id}/history")]
async fn history(
    state: web::Data<AppState>,
    caller: Authorized<InspectionsRead>,
    id: PathId,
    query: ListQuery<NoFilter>,
) -> ApiResult<HttpResponse> {
    let pp: PageParams<i64> = query.page.params()?;
    let with_actors = caller.principal.has_any(AUDIT_READERS);
    let vis = Visibility::of(&caller.principal);
    let exists = move |conn: &mut DbConn, id: &str| Ok(vis.sees(conn, id)? && find(conn, id)?.is_some());
    let page =
        record_history(&state.db, EntityType::Inspection, id.into_inner(), "inspection_", pp, with_actors, exists);
    Ok(HttpResponse::Ok().json(page.await?))
}

/// 移送立案 — Open an enforcement case from an inspection: stage `clue`, the inspected water user as the party, the
/// findings carried over. Once per inspection (`already_escalated`).
#[utoipa::path(tag = "inspections", params(("id" = String, Path), ("If-Match" = String, Header, description = "The inspection's ETag")),
    request_body = EscalateBody, security(("bearer" = ["enforcement"])),
    responses(
        (status = 201, description = "The case opened", body = Case, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "Invalid fields (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Escalated before (`already_escalated`), or a date before the inspection (`effective_date_out_of_order`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/inspections/{id}/escalate")]
async fn escalate(
    state: web::Data<AppState>,
    caller: Authorized<EscalateInspection>,
    id: PathId,
    if_match: IfMatch,
    body: OptionalJson<EscalateBody>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    write::check_action(&if_match, b.reason.as_deref())?;
    let mut c = Checks::new();
    let facts = c.optional_text("facts", b.facts.as_deref(), rules::MAX_FACTS_CHARS);
    let legal_basis = c.optional_text("legal_basis", b.legal_basis.as_deref(), 2000);
    c.finish()?;
    let ctx = caller.ctx();
    let creator = caller.principal.scope();
    let id = id.into_inner();
    state
        .write(move |conn| {
            let mut opened: Option<(CaseRow, Case)> = None;
            write::modify(conn, &ctx, &id, &if_match, "inspection_escalated", |conn, before: &InspectionRow| {
                if cases::of_inspection(conn, &id)?.is_some() {
                    return Err(ApiError::conflict(ErrorCode::AlreadyEscalated, Msg::AlreadyEscalated));
                }
                let on =
                    crate::domain::dates::effective_date(plain(b.effective_date), Some(before.date()), ctx.now.today)?;
                let party = crate::water_users::find(conn, &before.target_water_user_id)?.ok_or(ApiError::NotFound)?;
                let findings = findings_of(conn, &id)?;
                let kinds: Vec<FindingType> =
                    findings.iter().map(|f| FindingType::parse(&f.kind).unwrap_or(FindingType::Other)).collect();
                let carried: Vec<CarriedFinding> = findings
                    .iter()
                    .map(|f| CarriedFinding {
                        kind: f.kind.clone(),
                        description: f.description.clone(),
                        rectification_due: f.rectification_due,
                    })
                    .collect();
                let descriptions: Vec<String> = findings.iter().map(|f| f.description.clone()).collect();
                let party = cases::Party {
                    water_user_id: Some(party.id.clone()),
                    name: party.name.clone(),
                    id_number: Some(party.credit_code.clone()),
                    kind: PartyKind::Organisation,
                };
                let case = CaseRow::clue(
                    party,
                    b.violation_type.unwrap_or_else(|| rules::violation_of(&kinds)),
                    facts.clone().unwrap_or_else(|| rules::facts_of(&descriptions)),
                    legal_basis.clone(),
                    Some(id.clone()),
                    &carried,
                    on,
                    creator.clone(),
                    ctx.now.at,
                );
                let view = write::create(conn, &ctx, &case, "case_opened")?;
                opened = Some((case, view));
                // The inspection itself changes but for its version (and its view's `case_id`): the escalation is
                // a step of its own in its history.
                Ok(Change::new(before.clone()).reason(b.reason.as_deref()).effective_date(Some(on)))
            })?;
            let (case, view) = opened.expect("opened by the change");
            Ok(Reply::created(format!("/api/v1/cases/{}", case.id), case.version, &view))
        })
        .await
}
