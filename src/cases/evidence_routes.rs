//! `/api/v1/cases/{id}/evidence`: the evidence of a case (photos, video, PDFs of documents), uploaded as for
//! inspections; each upload is also a step of the case (its history shows it, the change feed sees the case move).

use std::sync::{Arc, Mutex};

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use super::routes::CasesWrite;
use super::{find, Case, CaseRow, CasesRead, Stage};
use crate::audit::EntityType;
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::evidence::accept::{accept, Owner};
use crate::evidence::{download, Evidence};
use crate::http::pagination::PageParams;
use crate::http::{ListQuery, NoFilter, Page, PageQuery, PathId};
use crate::messages::Msg;
use crate::security::Authorized;
use crate::state::AppState;
use crate::write::{self, Record, Versioned};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(upload).service(list).service(get_one);
}

/// 上传案件证据 — Upload a photo, video or PDF to a case (`multipart/form-data`, one part named `file`, ≤ 50 MiB),
/// until the case is closed. Typed from the file's leading bytes; a retry with the same `Idempotency-Key` answers the
/// same item; identical bytes are stored once. The upload is a step in the case's history (`evidence_added`).
#[utoipa::path(tag = "cases", params(("id" = String, Path)),
    request_body(content = crate::evidence::EvidenceForm, content_type = "multipart/form-data"),
    security(("bearer" = ["enforcement"])),
    responses(
        (status = 201, description = "Stored", body = Evidence, headers(("Location" = String))),
        (status = 400, description = "No `file` part, an empty file, or another part (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The case is closed (`invalid_transition`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than 50 MiB (`payload_too_large`): the rest is not read", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not multipart, or not a JPEG, PNG, HEIC, MP4 or PDF (`unsupported_media_type`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/cases/{id}/evidence")]
async fn upload(
    state: web::Data<AppState>,
    caller: Authorized<CasesWrite>,
    id: PathId,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    // No case (or a closed one) is refused before a byte is read.
    {
        let id = id.clone();
        state.db.run(move |conn| open_case(conn, &id).map(|_| ())).await?;
    }
    let before: Arc<Mutex<Option<(CaseRow, Case)>>> = Arc::default();
    let (held, case_id) = (before.clone(), id.clone());
    let now = caller.now;
    let lock = move |conn: &mut DbConn| {
        let row = CaseRow::lock(conn, &case_id)?.ok_or(ApiError::NotFound)?;
        if row.stage() == Stage::Closed {
            return Err(closed(&row));
        }
        let view = row.view(conn, &now)?;
        *held.lock().unwrap_or_else(|e| e.into_inner()) = Some((row, view));
        Ok(())
    };
    let then = move |conn: &mut DbConn, ctx: &crate::audit::AuditCtx, _: &Evidence| {
        let (row, view) = before.lock().unwrap_or_else(|e| e.into_inner()).take().ok_or(ApiError::NotFound)?;
        write::bump(conn, ctx, &row, &view, "case_evidence_added")?;
        Ok(())
    };
    accept(&state, &caller, &req, payload, Owner::Case(id), lock, then).await
}

fn closed(row: &CaseRow) -> ApiError {
    ApiError::conflict(
        ErrorCode::InvalidTransition,
        Msg::InvalidTransition {
            entity: EntityType::Case.label(),
            action: crate::messages::Label { code: "evidence", zh: "上传证据" },
            status: row.stage().label(),
        },
    )
}

fn open_case(conn: &mut DbConn, id: &str) -> ApiResult<CaseRow> {
    let row = find(conn, id)?.ok_or(ApiError::NotFound)?;
    if row.stage() == Stage::Closed {
        return Err(closed(&row));
    }
    Ok(row)
}

/// 案件证据列表 — The evidence of a case, in upload order (metadata; the bytes: `GET …/evidence/{eid}`).
#[utoipa::path(tag = "cases", params(("id" = String, Path), PageQuery),
    security(("bearer" = ["admin", "leader", "enforcement", "legal", "platform", "auditor"])),
    responses((status = 200, description = "Evidence", body = Page<Evidence>)))]
#[get("/cases/{id}/evidence")]
async fn list(
    state: web::Data<AppState>,
    _caller: Authorized<CasesRead>,
    id: PathId,
    query: ListQuery<NoFilter>,
) -> ApiResult<HttpResponse> {
    let p: PageParams<String> = query.page.params()?;
    let id = id.into_inner();
    let page = state
        .db
        .run(move |conn| {
            find(conn, &id)?.ok_or(ApiError::NotFound)?;
            crate::evidence::page_of(conn, &Owner::Case(id), &p)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// 下载案件证据 — The bytes of a case's evidence item, with its stored type; `Range` gives 206 (416 past the end).
#[utoipa::path(tag = "cases", params(("id" = String, Path), ("eid" = String, Path),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1048575`")),
    security(("bearer" = ["admin", "leader", "enforcement", "legal", "platform", "auditor"])),
    responses(
        (status = 200, description = "The file", content(("image/jpeg"), ("image/png"), ("image/heif"), ("video/mp4"), ("application/pdf")),
            headers(("ETag" = String), ("Accept-Ranges" = String))),
        (status = 206, description = "The range asked for", headers(("Content-Range" = String))),
        (status = 416, description = "The range lies past the end of the file", headers(("Content-Range" = String)))))]
#[get("/cases/{id}/evidence/{eid}")]
async fn get_one(
    state: web::Data<AppState>,
    _caller: Authorized<CasesRead>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (id, eid) = path.into_inner();
    let row = state.db.run(move |conn| crate::evidence::item_of(conn, &Owner::Case(id), &eid)).await?;
    download::serve(&req, &state.evidence, &row).await
}
