//! `/api/v1/permits`: applications, the registry, actions and history.

use actix_web::http::StatusCode;
use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{NaiveDate, TimeDelta};
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::rules::{self, Action, ActionInput};
use super::{find, IntakeLocation, MeterStatus, Permit, PermitRow, PermitStatus, Purpose, Refs, SourceType};
use crate::audit::history::{of_record as record_history, HistoryEntry};
use crate::audit::EntityType;
use crate::db::schema::{permits as p, water_users as w};
use crate::db::DbConn;
use crate::domain::dates::{plain, Date};
use crate::domain::text::Checks;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::http::pagination::PageParams;
use crate::http::{respond, ApiJson, IfMatch, ListQuery, NoFilter, OptionalJson, Page, PageQuery, PathId};
use crate::messages::Msg;
use crate::policy;
use crate::security::{Authorized, Caller, AUDIT_READERS};
use crate::state::AppState;
use crate::write::{self, Change, Record, Reply};

policy!(
    /// Those who work with permits, field inspectors and the platform (docs/api.md; legal reads cases only).
    PermitsRead = [Admin, Leader, WaterResources, WaterSaving, Finance, Enforcement, Inspector, Platform, Auditor]
);
policy!(
    /// 水资源管理科: applications, edits, submission, renewal, suspension, reinstatement, cancellation.
    PermitsManage = [WaterResources]
);
policy!(
    /// 局领导: approval, rejection, revocation.
    PermitsDecide = [Leader]
);

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(get_one)
        .service(update)
        .service(history)
        .service(certificate)
        .service(submit)
        .service(approve)
        .service(reject)
        .service(renew)
        .service(suspend)
        .service(reinstate)
        .service(revoke)
        .service(cancel);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "holder_id": "0193a0c4-5f0e-7b61-9a3e-4c1d2e3f4a5b", "zone_id": "0193a0c4-0000-7000-8000-000000000001",
    "source_type": "groundwater_deep", "intake_method": "机井", "purpose": "industrial",
    "intake_location": {"lat": 28.59, "lng": 105.69, "address": "赤水市工业园区"},
    "annual_volume_m3": 500000, "daily_max_volume_m3": 1800, "return_location": "赤水河", "return_method": "经处理达标后排放",
    "meter_status": "ok", "valid_from": "2026-01-01", "valid_to": "2030-12-31"
}))]
pub struct NewPermit {
    pub holder_id: String,
    pub zone_id: Option<String>,
    pub source_type: SourceType,
    pub intake_method: Option<String>,
    pub purpose: Purpose,
    pub intake_location: Option<IntakeLocation>,
    pub annual_volume_m3: i64,
    pub daily_max_volume_m3: Option<i64>,
    pub return_location: Option<String>,
    pub return_method: Option<String>,
    pub meter_status: MeterStatus,
    /// Proposed term (the approval fixes it).
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_from: Option<Date>,
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_to: Option<Date>,
}

/// Changes to a draft; `null` clears an optional field.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"annual_volume_m3": 450000, "daily_max_volume_m3": 1500}))]
pub struct PermitPatch {
    pub holder_id: Option<String>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<String>)]
    pub zone_id: Option<Option<String>>,
    pub source_type: Option<SourceType>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<String>)]
    pub intake_method: Option<Option<String>>,
    pub purpose: Option<Purpose>,
    pub intake_location: Option<IntakeLocation>,
    pub annual_volume_m3: Option<i64>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<i64>)]
    pub daily_max_volume_m3: Option<Option<i64>>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<String>)]
    pub return_location: Option<Option<String>>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<String>)]
    pub return_method: Option<Option<String>>,
    pub meter_status: Option<MeterStatus>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_from: Option<Option<Date>>,
    #[serde(default, with = "crate::domain::double_option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_to: Option<Option<Date>>,
}

/// Body of `submit`, `reinstate` (reason optional) and `reject`, `suspend`, `revoke`, `cancel` (reason required).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "取水计量设施未按期整改", "effective_date": "2026-03-02"}))]
pub struct ActionBody {
    pub reason: Option<String>,
    /// The step's date (default today, Asia/Shanghai); not in the future, not before the previous step.
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<Date>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "符合总量控制要求", "effective_date": "2026-01-10", "valid_from": "2026-02-01", "valid_to": "2031-01-31"}))]
pub struct ApproveBody {
    pub reason: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<Date>,
    /// Start of the term (default: the application's proposal).
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_from: Option<Date>,
    /// End of the term, at most 10 years after `valid_from` (default: the application's proposal).
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_to: Option<Date>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "延续取水", "effective_date": "2030-10-15", "valid_to": "2035-12-31", "annual_volume_m3": 480000}))]
pub struct RenewBody {
    pub reason: Option<String>,
    /// The date of the renewal application: at least 45 days before the current `valid_to`.
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<Date>,
    /// New end of the term, at most 10 years after the renewal.
    #[schema(value_type = String, format = Date)]
    pub valid_to: Date,
    /// New annual volume (default: unchanged).
    pub annual_volume_m3: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PermitFilter {
    /// Status as read today (`expired` = approved or suspended past `valid_to`).
    pub status: Option<PermitStatus>,
    pub source_type: Option<SourceType>,
    pub holder_id: Option<String>,
    pub zone_id: Option<String>,
    pub purpose: Option<Purpose>,
    /// In force and `valid_to` within this many days from today (0..=3650): those due for renewal.
    pub expiring_within_days: Option<i64>,
    /// Part of the permit number or of the holder's name.
    pub q: Option<String>,
}

fn check_volumes(c: &mut Checks, annual: Option<i64>, daily: Option<i64>) {
    if let Some(v) = annual {
        c.positive_volume("annual_volume_m3", v);
    }
    if let Some(v) = daily {
        c.positive_volume("daily_max_volume_m3", v);
    }
}

fn check_location(c: &mut Checks, loc: &IntakeLocation) {
    if loc.lat.is_some_and(|v| !(-90.0..=90.0).contains(&v)) {
        c.fail("intake_location.lat", Msg::Between(-90, 90));
    }
    if loc.lng.is_some_and(|v| !(-180.0..=180.0).contains(&v)) {
        c.fail("intake_location.lng", Msg::Between(-180, 180));
    }
}

/// Holder and zone must exist (field errors otherwise).
fn check_refs(conn: &mut DbConn, holder_id: &str, zone_id: Option<&str>) -> ApiResult<()> {
    let mut c = Checks::new();
    if crate::water_users::find(conn, holder_id)?.is_none() {
        c.fail("holder_id", Msg::NoSuchWaterUser);
    }
    if let Some(z) = zone_id {
        if crate::water_zones::find(conn, z)?.is_none() {
            c.fail("zone_id", Msg::NoSuchZone);
        }
    }
    c.finish()
}

/// 取水许可列表与查询 — List and search permits.
#[utoipa::path(tag = "permits", params(PageQuery, PermitFilter),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "inspector", "platform", "auditor"])),
    responses((status = 200, description = "Permits in registration order; with `expiring_within_days`, soonest expiry first", body = Page<Permit>)))]
#[get("/permits")]
async fn list(
    state: web::Data<AppState>,
    caller: Authorized<PermitsRead>,
    query: ListQuery<PermitFilter>,
) -> ApiResult<HttpResponse> {
    // Ordered by id; a renewal list (`expiring_within_days`) by (valid_to, id), soonest first. The cursor holds both.
    let pp: PageParams<(Option<NaiveDate>, String)> = query.page.params()?;
    let f = query.filter;
    if f.expiring_within_days.is_some_and(|d| !(0..=3650).contains(&d)) {
        return Err(ApiError::invalid("expiring_within_days", Msg::Between(0, 3650)));
    }
    let today = caller.now.today;
    let result = state
        .db
        .run(move |conn| {
            let in_force = PermitStatus::in_force_texts();
            let by_expiry = f.expiring_within_days.is_some();
            let filtered = || {
                let mut q = p::table.into_boxed();
                match f.status {
                    None => {}
                    Some(PermitStatus::Expired) => {
                        q = q.filter(p::status.eq_any(in_force)).filter(p::valid_to.lt(today))
                    }
                    Some(s @ (PermitStatus::Approved | PermitStatus::Suspended)) => {
                        q = q.filter(p::status.eq(s.as_str())).filter(p::valid_to.ge(today))
                    }
                    Some(s) => q = q.filter(p::status.eq(s.as_str())),
                }
                if let Some(days) = f.expiring_within_days {
                    q = q
                        .filter(p::status.eq_any(in_force))
                        .filter(p::valid_to.ge(today))
                        .filter(p::valid_to.le(today + TimeDelta::days(days)));
                }
                if let Some(v) = f.source_type {
                    q = q.filter(p::source_type.eq(v.as_str()));
                }
                if let Some(v) = &f.holder_id {
                    q = q.filter(p::holder_id.eq(v.clone()));
                }
                if let Some(v) = &f.zone_id {
                    q = q.filter(p::zone_id.eq(v.clone()));
                }
                if let Some(v) = f.purpose {
                    q = q.filter(p::purpose.eq(v.as_str()));
                }
                if let Some(text) = f.q.as_deref().filter(|t| !t.trim().is_empty()) {
                    let pattern = crate::db::like_pattern(text);
                    let holders = w::table.filter(w::name.like(pattern).escape('\\')).select(w::id);
                    q = q.filter(
                        p::permit_no
                            .like(crate::db::like_pattern(&text.to_ascii_uppercase()))
                            .escape('\\')
                            .or(p::holder_id.eq_any(holders)),
                    );
                }
                q
            };
            let total = pp.total(|| filtered().count().get_result(conn))?;
            let mut q = filtered().limit(pp.fetch()).select(PermitRow::as_select());
            q = if by_expiry { q.order((p::valid_to.asc(), p::id.asc())) } else { q.order(p::id.asc()) };
            match (&pp.after, by_expiry) {
                (None, _) => {}
                (Some((Some(to), id)), true) => {
                    q = q.filter(p::valid_to.gt(*to).or(p::valid_to.eq(*to).and(p::id.gt(id.clone()))));
                }
                (Some((None, id)), false) => q = q.filter(p::id.gt(id.clone())),
                _ => return Err(ApiError::invalid("cursor", Msg::Cursor)),
            }
            let rows = pp.page(q.load(conn)?, |r: &PermitRow| (r.valid_to.filter(|_| by_expiry), r.id.clone()));
            let refs = Refs::load(conn, rows.items.iter())?;
            Ok(rows.map(|r| Permit::from_row(&r, today, &refs)).with_total(total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

/// 登记取水许可申请 — Register a permit application (a draft).
#[utoipa::path(tag = "permits", request_body = NewPermit, security(("bearer" = ["water_resources"])),
    responses((status = 201, description = "Draft created", body = Permit, headers(("ETag" = String), ("Location" = String)))))]
#[post("/permits")]
async fn create(
    state: web::Data<AppState>,
    caller: Authorized<PermitsManage>,
    body: ApiJson<NewPermit>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let mut c = Checks::new();
    check_volumes(&mut c, Some(b.annual_volume_m3), b.daily_max_volume_m3);
    let loc = b.intake_location.unwrap_or(IntakeLocation { lat: None, lng: None, address: None });
    check_location(&mut c, &loc);
    let intake_method = c.optional("intake_method", b.intake_method.as_deref(), 100);
    let address = c.optional("intake_location.address", loc.address.as_deref(), 300);
    let return_location = c.optional("return_location", b.return_location.as_deref(), 300);
    let return_method = c.optional("return_method", b.return_method.as_deref(), 300);
    c.finish()?;
    let (valid_from, valid_to) = (plain(b.valid_from), plain(b.valid_to));
    if let (Some(from), Some(to)) = (valid_from, valid_to) {
        rules::check_term(from, to)?;
    }
    let now = caller.now.at;
    let row = PermitRow {
        id: crate::domain::new_id(),
        permit_no: None,
        holder_id: b.holder_id,
        zone_id: b.zone_id,
        source_type: b.source_type.as_str().into(),
        intake_method,
        purpose: b.purpose.as_str().into(),
        intake_lat: loc.lat,
        intake_lng: loc.lng,
        intake_address: address,
        annual_volume_m3: b.annual_volume_m3,
        daily_max_volume_m3: b.daily_max_volume_m3,
        return_location,
        return_method,
        meter_status: b.meter_status.as_str().into(),
        valid_from,
        valid_to,
        status: PermitStatus::Draft.as_str().into(),
        submitted_on: None,
        approved_on: None,
        rejected_on: None,
        suspended_on: None,
        revoked_on: None,
        cancelled_on: None,
        renewed_on: None,
        last_step_on: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let ctx = caller.ctx();
    state
        .write(move |conn| {
            check_refs(conn, &row.holder_id, row.zone_id.as_deref())?;
            let permit = write::create(conn, &ctx, &row, "permit_created")?;
            Ok(Reply::created(format!("/api/v1/permits/{}", permit.id), permit.version, &permit))
        })
        .await
}

/// 查看取水许可 — One permit.
#[utoipa::path(tag = "permits", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "inspector", "platform", "auditor"])),
    responses((status = 200, description = "The permit", body = Permit, headers(("ETag" = String)))))]
#[get("/permits/{id}")]
async fn get_one(state: web::Data<AppState>, caller: Authorized<PermitsRead>, id: PathId) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let now = caller.now;
    let permit = state
        .db
        .run(move |conn| {
            let row = find(conn, &id)?.ok_or(ApiError::NotFound)?;
            Ok(row.view(conn, &now)?)
        })
        .await?;
    Ok(respond(StatusCode::OK, permit.version, &permit))
}

/// 修改取水许可申请 — Edit an application while it is a draft.
#[utoipa::path(tag = "permits", params(("id" = String, Path), ("If-Match" = String, Header, description = "The permit's ETag")),
    request_body = PermitPatch, security(("bearer" = ["water_resources"])),
    responses((status = 200, description = "Updated", body = Permit, headers(("ETag" = String))),
        (status = 409, description = "Not a draft any more (`not_editable`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[patch("/permits/{id}")]
async fn update(
    state: web::Data<AppState>,
    caller: Authorized<PermitsManage>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<PermitPatch>,
) -> ApiResult<HttpResponse> {
    if_match.require()?;
    let b = body.0;
    let mut c = Checks::new();
    check_volumes(&mut c, b.annual_volume_m3, b.daily_max_volume_m3.flatten());
    if let Some(loc) = &b.intake_location {
        check_location(&mut c, loc);
    }
    let intake_method = b.intake_method.map(|v| c.optional("intake_method", v.as_deref(), 100));
    let return_location = b.return_location.map(|v| c.optional("return_location", v.as_deref(), 300));
    let return_method = b.return_method.map(|v| c.optional("return_method", v.as_deref(), 300));
    let address = b.intake_location.as_ref().map(|l| c.optional("intake_location.address", l.address.as_deref(), 300));
    c.finish()?;
    let ctx = caller.ctx();
    let id = id.into_inner();
    state
        .write(move |conn| {
            let (row, view) =
                write::modify(conn, &ctx, &id, &if_match, "permit_updated", |conn, before: &PermitRow| {
                    if before.stored_status() != PermitStatus::Draft {
                        return Err(ApiError::conflict(ErrorCode::NotEditable, Msg::NotEditable));
                    }
                    let mut after = before.clone();
                    if let Some(v) = b.holder_id {
                        after.holder_id = v;
                    }
                    if let Some(v) = b.zone_id {
                        after.zone_id = v;
                    }
                    if let Some(v) = b.source_type {
                        after.source_type = v.as_str().into();
                    }
                    if let Some(v) = intake_method {
                        after.intake_method = v;
                    }
                    if let Some(v) = b.purpose {
                        after.purpose = v.as_str().into();
                    }
                    if let Some(loc) = &b.intake_location {
                        after.intake_lat = loc.lat;
                        after.intake_lng = loc.lng;
                        after.intake_address = address.flatten();
                    }
                    if let Some(v) = b.annual_volume_m3 {
                        after.annual_volume_m3 = v;
                    }
                    if let Some(v) = b.daily_max_volume_m3 {
                        after.daily_max_volume_m3 = v;
                    }
                    if let Some(v) = return_location {
                        after.return_location = v;
                    }
                    if let Some(v) = return_method {
                        after.return_method = v;
                    }
                    if let Some(v) = b.meter_status {
                        after.meter_status = v.as_str().into();
                    }
                    if let Some(v) = b.valid_from {
                        after.valid_from = plain(v);
                    }
                    if let Some(v) = b.valid_to {
                        after.valid_to = plain(v);
                    }
                    if let (Some(from), Some(to)) = (after.valid_from, after.valid_to) {
                        rules::check_term(from, to)?;
                    }
                    check_refs(conn, &after.holder_id, after.zone_id.as_deref())?;
                    Ok(Change::new(after))
                })?;
            Ok(Reply::ok(row.version, &view))
        })
        .await
}

/// 取水许可证 — The printable permit (取水许可证) of an approved permit in force: an A4 page in Chinese with what
/// TL §24 requires (holder, number, term, volumes, source, purpose, intake and return points), for the browser's
/// print dialog.
#[utoipa::path(tag = "permits", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "inspector", "platform", "auditor"])),
    responses((status = 200, description = "取水许可证（A4 HTML） — the certificate as A4 HTML", content_type = "text/html", body = String),
        (status = 409, description = "The permit is not approved and in force (`certificate_unavailable`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/permits/{id}/certificate")]
async fn certificate(
    state: web::Data<AppState>,
    caller: Authorized<PermitsRead>,
    id: PathId,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let today = caller.now.today;
    let bureau = state.settings.bureau_name.clone();
    let page = state
        .db
        .run(move |conn| {
            let row = find(conn, &id)?.ok_or(ApiError::NotFound)?;
            let status = row.status_on(today);
            if status != PermitStatus::Approved {
                return Err(ApiError::conflict(
                    ErrorCode::CertificateUnavailable,
                    Msg::CertificateUnavailable(status.label()),
                ));
            }
            let holder = crate::water_users::find(conn, &row.holder_id)?
                .ok_or_else(|| ApiError::internal("permit without holder"))?;
            let zone = match &row.zone_id {
                Some(z) => crate::water_zones::find(conn, z)?.map(|z| z.name),
                None => None,
            };
            super::certificate::render(&row, &holder, zone.as_deref(), &bureau)
                .map_err(|e| ApiError::internal(format!("certificate template: {e}")))
        })
        .await?;
    Ok(crate::documents::html(page))
}

/// 取水许可办理记录 — Every transition and change of a permit, oldest first: when (entered and effective), why, which fields, by
/// which department; who (the account) only for `admin` and `auditor`, who may read the audit trail.
#[utoipa::path(tag = "permits", params(("id" = String, Path), PageQuery),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "inspector", "platform", "auditor"])),
    responses((status = 200, description = "History", body = Page<HistoryEntry>)))]
#[get("/permits/{id}/history")]
async fn history(
    state: web::Data<AppState>,
    caller: Authorized<PermitsRead>,
    id: PathId,
    query: ListQuery<NoFilter>,
) -> ApiResult<HttpResponse> {
    let pp: PageParams<i64> = query.page.params()?;
    // Who did each step is audit data: for those who may read the audit trail.
    let with_actors = caller.principal.has_any(AUDIT_READERS);
    let exists = |conn: &mut DbConn, id: &str| find(conn, id).map(|r| r.is_some());
    let page = record_history(&state.db, EntityType::Permit, id.into_inner(), "permit_", pp, with_actors, exists);
    Ok(HttpResponse::Ok().json(page.await?))
}

/// Runs one action in a transaction with its audit event; answers the whole permit and its new ETag.
async fn act(
    state: web::Data<AppState>,
    caller: &Caller,
    id: String,
    if_match: IfMatch,
    action: Action,
    input: ActionInput,
) -> ApiResult<HttpResponse> {
    write::check_action(&if_match, input.reason.as_deref())?;
    let letter = state.settings.permit_letter.clone();
    let ctx = caller.ctx();
    let name = format!("permit_{}", action.as_str());
    state
        .write(move |conn| {
            let today = ctx.now.today;
            let (row, view) = write::modify(conn, &ctx, &id, &if_match, &name, |conn, before: &PermitRow| {
                let after = rules::apply(conn, before, action, &input, &letter, today)?;
                let date = after.last_step_on;
                Ok(Change::new(after).reason(input.reason.as_deref()).effective_date(date))
            })?;
            Ok(Reply::ok(row.version, &view))
        })
        .await
}

fn simple(body: ActionBody) -> ActionInput {
    ActionInput { reason: body.reason, effective_date: plain(body.effective_date), ..Default::default() }
}

macro_rules! simple_action {
    ($fn:ident, $path:literal, $policy:ty, $action:expr, $roles:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(tag = "permits", params(("id" = String, Path), ("If-Match" = String, Header, description = "The permit's ETag")),
            request_body(content = Option<ActionBody>, description = "Optional for `submit` and `reinstate`"),
            security(("bearer" = [$roles])),
            responses((status = 200, description = "The permit after the action", body = Permit, headers(("ETag" = String))),
                (status = 409, description = "Not allowed from the permit's status (`invalid_transition`) or date before the previous step (`effective_date_out_of_order`)",
                    body = crate::error::Problem, content_type = "application/problem+json")))]
        #[post($path)]
        async fn $fn(
            state: web::Data<AppState>,
            caller: Authorized<$policy>,
            id: PathId,
            if_match: IfMatch,
            body: OptionalJson<ActionBody>,
        ) -> ApiResult<HttpResponse> {
            act(state, &caller, id.into_inner(), if_match, $action, simple(body.0)).await
        }
    };
}

simple_action!(
    submit,
    "/permits/{id}/submit",
    PermitsManage,
    Action::Submit,
    "water_resources",
    "提交申请 — Submit a draft application: `draft` → `submitted`."
);
simple_action!(
    reject,
    "/permits/{id}/reject",
    PermitsDecide,
    Action::Reject,
    "leader",
    "不予批准 — Reject an application (reason required): `submitted` → `rejected`."
);
simple_action!(
    suspend,
    "/permits/{id}/suspend",
    PermitsManage,
    Action::Suspend,
    "water_resources",
    "暂停取水许可 — Suspend a permit in force (reason required): `approved` → `suspended`."
);
simple_action!(
    reinstate,
    "/permits/{id}/reinstate",
    PermitsManage,
    Action::Reinstate,
    "water_resources",
    "恢复取水许可 — Reinstate a suspended permit: `suspended` → `approved`."
);
simple_action!(
    revoke,
    "/permits/{id}/revoke",
    PermitsDecide,
    Action::Revoke,
    "leader",
    "吊销取水许可 — Revoke a permit (reason required): `approved`/`suspended` → `revoked`."
);
simple_action!(
    cancel,
    "/permits/{id}/cancel",
    PermitsManage,
    Action::Cancel,
    "water_resources",
    "注销取水许可 — Cancel (注销) a permit (reason required): `approved`/`suspended` → `cancelled`."
);

/// 批准取水许可 — Approve an application: `submitted` → `approved`. Assigns the permit number and fixes the term (≤ 10 years).
/// Refused in a prohibited zone (`zone_prohibited`), for new groundwater in a restricted zone (`zone_restricted`),
/// and when the zone's approved total would exceed its allowable volume (`zone_cap_exceeded`).
#[utoipa::path(tag = "permits", params(("id" = String, Path), ("If-Match" = String, Header, description = "The permit's ETag")),
    request_body(content = Option<ApproveBody>, description = "Optional when the application proposed its term"), security(("bearer" = ["leader"])),
    responses((status = 200, description = "Approved", body = Permit, headers(("ETag" = String))),
        (status = 409, description = "`invalid_transition`, `zone_prohibited`, `zone_restricted`, `zone_cap_exceeded` or `effective_date_out_of_order`",
            body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/permits/{id}/approve")]
async fn approve(
    state: web::Data<AppState>,
    caller: Authorized<PermitsDecide>,
    id: PathId,
    if_match: IfMatch,
    body: OptionalJson<ApproveBody>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let input = ActionInput {
        reason: b.reason,
        effective_date: plain(b.effective_date),
        valid_from: plain(b.valid_from),
        valid_to: plain(b.valid_to),
        annual_volume_m3: None,
    };
    act(state, &caller, id.into_inner(), if_match, Action::Approve, input).await
}

/// 延续取水许可 — Renew a permit in force, applied for at least 45 days before `valid_to` (`renewal_too_late` otherwise);
/// the new term runs at most 10 years from the renewal. A larger annual volume is checked against the zone's cap.
#[utoipa::path(tag = "permits", params(("id" = String, Path), ("If-Match" = String, Header, description = "The permit's ETag")),
    request_body = RenewBody, security(("bearer" = ["water_resources"])),
    responses((status = 200, description = "Renewed", body = Permit, headers(("ETag" = String))),
        (status = 409, description = "`invalid_transition`, `renewal_too_late`, `zone_cap_exceeded`, `zone_prohibited` or `effective_date_out_of_order`",
            body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/permits/{id}/renew")]
async fn renew(
    state: web::Data<AppState>,
    caller: Authorized<PermitsManage>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<RenewBody>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let input = ActionInput {
        reason: b.reason,
        effective_date: plain(b.effective_date),
        valid_from: None,
        valid_to: Some(b.valid_to.get()),
        annual_volume_m3: b.annual_volume_m3,
    };
    act(state, &caller, id.into_inner(), if_match, Action::Renew, input).await
}
