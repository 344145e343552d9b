//! Receiving an upload for a record (an inspection, a case): the steps every evidence route shares, in order —
//! stream the body to a temporary file, claim a deferred `Idempotency-Key` with the file's digest, write the blob,
//! then in one transaction lock the owner, re-check the blob under its digest's lock, insert the row and audit it;
//! on failure remove the blob unless another row uses it.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{blob_lock, receive, referenced, Evidence, EvidenceRow};
use crate::audit::AuditCtx;
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::security::Caller;
use crate::state::AppState;
use crate::write::{self, idempotency, Reply};

/// Whose evidence an upload is.
pub enum Owner {
    Inspection(String),
    Case(String),
}

impl Owner {
    fn location(&self, evidence_id: &str) -> String {
        match self {
            Owner::Inspection(id) => format!("/api/v1/inspections/{id}/evidence/{evidence_id}"),
            Owner::Case(id) => format!("/api/v1/cases/{id}/evidence/{evidence_id}"),
        }
    }
}

/// Stores the upload `payload` as evidence of `owner`. In the transaction, `lock` runs first (it locks the owner
/// and checks the caller may add to it) and `then` after the row is written (a case records the step).
pub async fn accept(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    payload: web::Payload,
    owner: Owner,
    lock: impl FnOnce(&mut DbConn) -> ApiResult<()> + Send + 'static,
    then: impl FnOnce(&mut DbConn, &AuditCtx, &Evidence) -> ApiResult<()> + Send + 'static,
) -> ApiResult<HttpResponse> {
    let mut up = receive(req, payload).await?;
    let digest = idempotency::upload_digest(req, &[&up.sha256, &up.filename, up.content_type]);
    if let Some(stored) = idempotency::claim_deferred(&state.db, digest, caller.now.at).await? {
        return Ok(stored);
    }
    let store = state.evidence.clone();
    // Identical bytes are stored once: an upload of a blob already there sends nothing (the transaction below
    // checks again under the digest's lock, and restores it should a sweep have removed it meanwhile).
    if !store.exists(&up.sha256).await? {
        store.put_file(&up.sha256, &mut up.file).await?;
    }
    let now = caller.now.at;
    let (inspection_id, case_id) = match &owner {
        Owner::Inspection(id) => (Some(id.clone()), None),
        Owner::Case(id) => (None, Some(id.clone())),
    };
    let row = EvidenceRow {
        id: crate::domain::new_id(),
        inspection_id,
        case_id,
        filename: up.filename.clone(),
        content_type: up.content_type.into(),
        size_bytes: i64::try_from(up.size).unwrap_or(i64::MAX),
        sha256: up.sha256.clone(),
        uploaded_at: now,
        uploaded_by: caller.principal.signature(),
        uploader_id: caller.principal.scope(),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let ctx = caller.ctx();
    let handle = tokio::runtime::Handle::current();
    let (inner, mut file) = (store.clone(), up.file);
    let written = state
        .write(move |conn| {
            lock(conn)?;
            crate::db::lock_names(conn, &[&blob_lock(&row.sha256)])?;
            // A failed upload of the same bytes may have removed the blob since it was written: restore it.
            if !handle.block_on(inner.exists(&row.sha256))? {
                handle.block_on(inner.put_file(&row.sha256, &mut file))?;
            }
            let view = write::create(conn, &ctx, &row, "evidence_uploaded")?;
            then(conn, &ctx, &view)?;
            Ok(Reply::created(owner.location(&row.id), row.version, &view))
        })
        .await;
    if written.is_err() {
        // Nothing refers to the blob unless another upload of the same bytes does: then it stays.
        let (sha, handle) = (up.sha256, tokio::runtime::Handle::current());
        let cleaned = state
            .db
            .write(move |conn| {
                crate::db::lock_names(conn, &[&blob_lock(&sha)])?;
                if !referenced(conn, &sha)? {
                    handle.block_on(store.delete(&sha))?;
                }
                Ok::<_, ApiError>(())
            })
            .await;
        if let Err(e) = cleaned {
            tracing::warn!(error = %e, "could not remove the blob of a failed upload");
        }
    }
    written
}
