//! `/api/v1/audit-events`: read-only. There is deliberately no route that changes or deletes an event.

use actix_web::{get, web, HttpResponse};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::audit::{verify, Actor, AuditRow, VerifyReport};
use crate::db::schema::audit_events as a;
use crate::error::ApiResult;
use crate::http::pagination::PageParams;
use crate::http::query::instant;
use crate::http::{ListQuery, Page, PageQuery};
use crate::policy;
use crate::security::Authorized;
use crate::state::AppState;

policy!(
    /// The audit log is for auditors and administrators (docs/api.md).
    AuditRead = [Admin, Auditor]
);

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list).service(verify_chain);
}

/// One audit event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub seq: i64,
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
    pub actor: Actor,
    /// What happened, e.g. `water_user_created`, `login_failed`, `permission_denied`.
    pub action: String,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// The record before the change (as GET showed it).
    pub before: Option<serde_json::Value>,
    /// The record after the change.
    pub after: Option<serde_json::Value>,
    pub request_id: Option<String>,
    /// Why, for actions that take a reason.
    pub reason: Option<String>,
    /// The step's business date, for dated actions.
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<chrono::NaiveDate>,
    pub prev_hash: String,
    /// SHA-256 over `prev_hash` and this event.
    pub hash: String,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> Self {
        Self {
            seq: r.seq.unwrap_or_default(),
            at: crate::audit::format_instant(&r.at),
            actor: r.actor(),
            action: r.action,
            entity_type: r.entity_type,
            entity_id: r.entity_id,
            before: r.before_data.and_then(|s| serde_json::from_str(&s).ok()),
            after: r.after_data.and_then(|s| serde_json::from_str(&s).ok()),
            request_id: r.request_id,
            reason: r.reason,
            effective_date: r.effective_date,
            prev_hash: r.prev_hash.unwrap_or_default(),
            hash: r.hash.unwrap_or_default(),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// Actor's subject (account id; `issuer#subject` for external issuers).
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Events entered at or after this instant (RFC 3339, e.g. `2026-03-01T00:00:00+08:00`).
    pub from: Option<String>,
    /// Events entered at or before this instant (RFC 3339).
    pub to: Option<String>,
}

/// 审计日志 — Audit events in sequence order.
#[utoipa::path(tag = "audit", params(PageQuery, AuditFilter), security(("bearer" = ["admin", "auditor"])),
    responses((status = 200, description = "Events, oldest first", body = Page<AuditEvent>)))]
#[get("/audit-events")]
async fn list(
    state: web::Data<AppState>,
    _caller: Authorized<AuditRead>,
    query: ListQuery<AuditFilter>,
) -> ApiResult<HttpResponse> {
    let p: PageParams<i64> = query.page.params()?;
    let f = query.filter;
    let (from, to) = (instant("from", f.from.as_deref())?, instant("to", f.to.as_deref())?);
    let result = state
        .db
        .run(move |conn| {
            crate::audit::sequence_pending(conn)?;
            let filtered = || {
                let mut q = crate::audit::numbered();
                if let Some(v) = &f.entity_type {
                    q = q.filter(a::entity_type.eq(v.clone()));
                }
                if let Some(v) = &f.entity_id {
                    q = q.filter(a::entity_id.eq(v.clone()));
                }
                if let Some(v) = &f.actor {
                    q = q.filter(a::actor_sub.eq(v.clone()));
                }
                if let Some(v) = &f.action {
                    q = q.filter(a::action.eq(v.clone()));
                }
                if let Some(v) = from {
                    q = q.filter(a::at.ge(v));
                }
                if let Some(v) = to {
                    q = q.filter(a::at.le(v));
                }
                q
            };
            let total = p.total(|| filtered().count().get_result(conn))?;
            let page =
                p.page(crate::audit::page_of(filtered(), &p).load(conn)?, |r: &AuditRow| r.seq.unwrap_or_default());
            Ok(page.map(AuditEvent::from).with_total(total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

/// 校验审计链 — Re-walk the hash chain and report the first broken event, if any.
#[utoipa::path(tag = "audit", security(("bearer" = ["admin", "auditor"])),
    responses((status = 200, description = "Verification result", body = VerifyReport)))]
#[get("/audit-events/verify")]
async fn verify_chain(
    state: web::Data<AppState>,
    _caller: Authorized<AuditRead>,
) -> ApiResult<web::Json<VerifyReport>> {
    let report = state
        .db
        .run(|conn| {
            crate::audit::sequence_pending(conn)?;
            Ok(verify(conn)?)
        })
        .await?;
    Ok(web::Json(report))
}
