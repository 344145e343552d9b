//! A record's history (who did what, when, why, which fields changed), read from the audit trail: the trail
//! already holds every change with its before/after image, so there is no second copy to drift.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{Actor, AuditRow, EntityType};
use crate::db::schema::audit_events as a;
use crate::db::{Db, DbConn};
use crate::error::ApiError;
use crate::http::pagination::PageParams;
use crate::http::Page;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FieldChange {
    pub field: String,
    pub from: Value,
    pub to: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    pub seq: i64,
    /// When it was entered (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
    /// Who did it: given to those who may read the audit trail (admin, auditor), null for others.
    pub actor: Option<Actor>,
    /// The department that did it.
    pub department: Option<String>,
    /// e.g. `created`, `updated`, `submit`, `approve`.
    pub action: String,
    /// The step's business date.
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<chrono::NaiveDate>,
    pub reason: Option<String>,
    /// Fields whose value changed (`updated_at` and `version` left out).
    pub changes: Vec<FieldChange>,
}

fn diff(before: &Value, after: &Value) -> Vec<FieldChange> {
    let empty = serde_json::Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))).collect();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !matches!(k.as_str(), "updated_at" | "version" | "created_at" | "id"))
        .filter_map(|k| {
            let (from, to) = (b.get(k).cloned().unwrap_or(Value::Null), a.get(k).cloned().unwrap_or(Value::Null));
            (from != to).then(|| FieldChange { field: k.clone(), from, to })
        })
        .collect()
}

/// The history of one record, oldest first. `prefix` is stripped from action names (`permit_approve` → `approve`).
pub fn history(
    conn: &mut DbConn,
    entity: EntityType,
    id: &str,
    prefix: &str,
    p: &PageParams<i64>,
    with_actors: bool,
) -> QueryResult<Page<HistoryEntry>> {
    super::sequence_pending(conn)?;
    let of_record = || super::numbered().filter(a::entity_type.eq(entity.as_str()).and(a::entity_id.eq(id)));
    let total = p.total(|| of_record().count().get_result(conn))?;
    let q = super::page_of(of_record(), p);
    let rows = p.page(q.load(conn)?, |r: &AuditRow| r.seq.unwrap_or_default());
    let items = rows
        .items
        .into_iter()
        .map(|r| {
            let parse =
                |s: &Option<String>| s.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or(Value::Null);
            HistoryEntry {
                seq: r.seq.unwrap_or_default(),
                at: crate::domain::instant::format(&r.at),
                actor: with_actors.then(|| r.actor()),
                department: r.actor_department.clone(),
                action: r.action.strip_prefix(prefix).unwrap_or(&r.action).to_string(),
                effective_date: r.effective_date,
                reason: r.reason.clone(),
                changes: diff(&parse(&r.before_data), &parse(&r.after_data)),
            }
        })
        .collect();
    Ok(Page { items, next_cursor: rows.next_cursor, total })
}

/// What a `GET …/{id}/history` handler answers: the history of record `id` once `exists` finds it (404 otherwise).
pub async fn of_record(
    db: &Db,
    entity: EntityType,
    id: String,
    prefix: &'static str,
    page: PageParams<i64>,
    with_actors: bool,
    exists: impl FnOnce(&mut DbConn, &str) -> QueryResult<bool> + Send + 'static,
) -> Result<Page<HistoryEntry>, ApiError> {
    db.run(move |conn| {
        if !exists(conn, &id)? {
            return Err(ApiError::NotFound);
        }
        Ok(history(conn, entity, &id, prefix, &page, with_actors)?)
    })
    .await
}
