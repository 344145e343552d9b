//! 证据 — evidence files (photos, video, PDFs) of inspections, and later of cases: received as `multipart/form-data`
//! and streamed to a temporary file (never held in memory whole), typed from their leading bytes, stored
//! content-addressed by SHA-256 through `object_store` (a local directory by default), described by a row in the
//! database, and served back streamed with `Range` support. `store` is the blob store, `upload` the receiving,
//! `download` the serving; the routes live with the records the evidence belongs to.
//!
//! **A row never points at a missing blob; a failed upload leaves neither.** The blob is written before the row's
//! transaction (identical bytes land on the same key, so they are kept once); in the transaction, under a lock on
//! the digest, the blob's presence is checked again (a concurrent failed upload of the same bytes may have removed
//! it) and restored from the upload if needed; when the transaction fails, the blob is removed under the same lock
//! unless a row refers to it.

pub mod accept;
pub mod download;
pub mod store;
pub mod sweep;
pub mod upload;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::EntityType;
use crate::clock::Now;
use crate::db::schema::evidence;
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::PageParams;
use crate::http::Page;
use crate::write::{Entity, Record};

pub use store::BlobStore;
pub use upload::{receive, Upload, MAX_BYTES};

/// An evidence item as stored (never changed once written).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = evidence, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct EvidenceRow {
    pub id: String,
    pub inspection_id: Option<String>,
    pub case_id: Option<String>,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub uploaded_at: NaiveDateTime,
    pub uploaded_by: String,
    pub uploader_id: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

crate::versioned_row!(EvidenceRow, evidence);

impl Entity for EvidenceRow {
    const ENTITY: EntityType = EntityType::Evidence;
}

impl Record for EvidenceRow {
    type View = Evidence;

    fn view(&self, _: &mut DbConn, _: &Now) -> QueryResult<Evidence> {
        Ok(Evidence::new(self))
    }
}

/// 证据 — what is known of an evidence file (its bytes: `GET …/evidence/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0193a0c4-0000-7000-8000-000000000901", "inspection_id": "0193a0c4-0000-7000-8000-000000000701",
    "case_id": null, "filename": "取水口计量设施.jpg", "content_type": "image/jpeg", "size_bytes": 2483112,
    "sha256": "9f2b5c0e4d1a3b6c7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f", "uploaded_at": "2026-11-20T02:41:09Z",
    "uploaded_by": "xuncha01"}))]
pub struct Evidence {
    pub id: String,
    pub inspection_id: Option<String>,
    pub case_id: Option<String>,
    /// The name the file was uploaded under.
    pub filename: String,
    /// Decided from the file's leading bytes: `image/jpeg`, `image/png`, `image/heif` (HEIC photos), `video/mp4`
    /// or `application/pdf`.
    pub content_type: String,
    pub size_bytes: i64,
    /// SHA-256 of the bytes (hex): what a download can be checked against.
    pub sha256: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub uploaded_at: NaiveDateTime,
    /// Who uploaded it (username).
    pub uploaded_by: String,
}

impl Evidence {
    pub fn new(r: &EvidenceRow) -> Self {
        Self {
            id: r.id.clone(),
            inspection_id: r.inspection_id.clone(),
            case_id: r.case_id.clone(),
            filename: r.filename.clone(),
            content_type: r.content_type.clone(),
            size_bytes: r.size_bytes,
            sha256: r.sha256.clone(),
            uploaded_at: r.uploaded_at,
            uploaded_by: r.uploaded_by.clone(),
        }
    }
}

/// The multipart form of an upload (for the documentation: the body is read as a stream).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct EvidenceForm {
    /// The file: JPEG, PNG, HEIC, MP4 or PDF, at most 50 MiB (its type is read from its bytes).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// The lock name under which a digest's blob is checked, restored or removed.
pub fn blob_lock(sha256: &str) -> String {
    format!("evidence_blob:{sha256}")
}

/// Whether any evidence row refers to the blob `sha256`.
pub fn referenced(conn: &mut DbConn, sha256: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(evidence::table.filter(evidence::sha256.eq(sha256)))).get_result(conn)
}

/// A page of `owner`'s evidence, in upload order (the owner is checked by the caller).
pub fn page_of(conn: &mut DbConn, owner: &accept::Owner, p: &PageParams<String>) -> ApiResult<Page<Evidence>> {
    let filtered = || {
        let q = evidence::table.into_boxed();
        match owner {
            accept::Owner::Inspection(id) => q.filter(evidence::inspection_id.eq(id.clone())),
            accept::Owner::Case(id) => q.filter(evidence::case_id.eq(id.clone())),
        }
    };
    let total = p.total(|| filtered().count().get_result(conn))?;
    let mut q = filtered().order(evidence::id.asc()).limit(p.fetch()).select(EvidenceRow::as_select());
    if let Some(after) = &p.after {
        q = q.filter(evidence::id.gt(after.clone()));
    }
    let rows = p.page(q.load(conn)?, |r: &EvidenceRow| r.id.clone());
    Ok(rows.map(|r| Evidence::new(&r)).with_total(total))
}

/// Item `eid` of `owner`'s evidence; 404 when it is another record's.
pub fn item_of(conn: &mut DbConn, owner: &accept::Owner, eid: &str) -> ApiResult<EvidenceRow> {
    let q = evidence::table.find(eid).into_boxed();
    let q = match owner {
        accept::Owner::Inspection(id) => q.filter(evidence::inspection_id.eq(id.clone())),
        accept::Owner::Case(id) => q.filter(evidence::case_id.eq(id.clone())),
    };
    q.select(EvidenceRow::as_select()).first(conn).optional()?.ok_or(ApiError::NotFound)
}
