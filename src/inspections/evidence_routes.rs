//! `/api/v1/inspections/{id}/evidence`: photos, video and PDFs of an inspection — uploaded (streamed, typed from
//! their bytes, kept once per digest), listed, and served back with `Range`. Field inspectors: their own
//! inspections only, as everywhere in inspections.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use super::routes::lock_visible;
use super::{find, InspectionsRead, InspectionsWrite, Visibility};
use crate::error::{ApiError, ApiResult};
use crate::evidence::accept::Owner;
use crate::evidence::{self, download, Evidence};
use crate::http::pagination::PageParams;
use crate::http::{ListQuery, NoFilter, Page, PageQuery, PathId};
use crate::security::Authorized;
use crate::state::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(upload).service(list).service(get_one);
}

/// 上传证据 — Upload a photo, video or PDF to an inspection (`multipart/form-data`, one part named `file`, ≤ 50 MiB).
/// The type is decided from the file's leading bytes. With an `Idempotency-Key`, a retry of the same file (after a
/// dropped connection) answers the same evidence item; identical bytes are stored once.
#[utoipa::path(tag = "inspections", params(("id" = String, Path)),
    request_body(content = crate::evidence::EvidenceForm, content_type = "multipart/form-data"),
    security(("bearer" = ["water_resources", "water_saving", "enforcement", "inspector"])),
    responses(
        (status = 201, description = "Stored", body = Evidence, headers(("Location" = String))),
        (status = 400, description = "No `file` part, an empty file, or another part (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than 50 MiB (`payload_too_large`): the rest is not read", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not multipart, or not a JPEG, PNG, HEIC, MP4 or PDF (`unsupported_media_type`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/inspections/{id}/evidence")]
async fn upload(
    state: web::Data<AppState>,
    caller: Authorized<InspectionsWrite>,
    id: PathId,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let inspection = id.clone();
    let vis = Visibility::of(&caller.principal);
    // Someone else's (or no) inspection is 404 before a byte is read.
    {
        let (vis, id) = (vis.clone(), id.clone());
        state
            .db
            .run(move |conn| find(conn, &id)?.ok_or(ApiError::NotFound).and_then(|_| vis.require(conn, &id)))
            .await?;
    }
    let lock = move |conn: &mut crate::db::DbConn| lock_visible(conn, &vis, &id).map(|_| ());
    evidence::accept::accept(&state, &caller, &req, payload, Owner::Inspection(inspection), lock, |_, _, _| Ok(()))
        .await
}

/// 证据列表 — The evidence of an inspection, in upload order (metadata; the bytes: `GET …/evidence/{eid}`).
#[utoipa::path(tag = "inspections", params(("id" = String, Path), PageQuery),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "enforcement", "legal", "inspector", "platform", "auditor"])),
    responses((status = 200, description = "Evidence", body = Page<Evidence>)))]
#[get("/inspections/{id}/evidence")]
async fn list(
    state: web::Data<AppState>,
    caller: Authorized<InspectionsRead>,
    id: PathId,
    query: ListQuery<NoFilter>,
) -> ApiResult<HttpResponse> {
    let p: PageParams<String> = query.page.params()?;
    let id = id.into_inner();
    let vis = Visibility::of(&caller.principal);
    let page = state
        .db
        .run(move |conn| {
            find(conn, &id)?.ok_or(ApiError::NotFound)?;
            vis.require(conn, &id)?;
            evidence::page_of(conn, &Owner::Inspection(id), &p)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// 下载证据 — The bytes of an evidence item, with its stored type; `Range: bytes=…` gives 206 with that range (video
/// on a phone), a range past the end 416. The ETag is the file's SHA-256.
#[utoipa::path(tag = "inspections", params(("id" = String, Path), ("eid" = String, Path),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1048575`")),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "enforcement", "legal", "inspector", "platform", "auditor"])),
    responses(
        (status = 200, description = "The file", content(("image/jpeg"), ("image/png"), ("image/heif"), ("video/mp4"), ("application/pdf")),
            headers(("ETag" = String), ("Accept-Ranges" = String))),
        (status = 206, description = "The range asked for", headers(("Content-Range" = String))),
        (status = 416, description = "The range lies past the end of the file", headers(("Content-Range" = String)))))]
#[get("/inspections/{id}/evidence/{eid}")]
async fn get_one(
    state: web::Data<AppState>,
    caller: Authorized<InspectionsRead>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (id, eid) = path.into_inner();
    let vis = Visibility::of(&caller.principal);
    let row = state
        .db
        .run(move |conn| {
            find(conn, &id)?.ok_or(ApiError::NotFound)?;
            vis.require(conn, &id)?;
            evidence::item_of(conn, &Owner::Inspection(id), &eid)
        })
        .await?;
    download::serve(&req, &state.evidence, &row).await
}
