//! A record's history (who did what, when, why, which fields changed), read from the audit trail: the trail
//! already holds every change with its before/after image, so there is no second copy to drift.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
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

/// The top-level fields of a JSON object in their order, each value left as its JSON text.
struct Fields<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<Fields<'de>, M::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = m.next_entry::<&'de str, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The fields whose value differs between two images (JSON objects), in the order of `after`, then the fields
/// only `before` had. Values are compared as text first (both images come from one serializer) and parsed only
/// when they differ: a history of hundreds of steps parses only what changed.
fn fields(image: Option<&str>) -> Option<Vec<(&str, &RawValue)>> {
    image.and_then(|s| serde_json::from_str::<Fields<'_>>(s).ok()).map(|f| f.0)
}

fn field<'a>(list: &[(&str, &'a RawValue)], name: &str) -> Option<&'a RawValue> {
    list.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

fn diff(before: Option<&str>, after: Option<&str>) -> Vec<FieldChange> {
    let (b, a) = match (fields(before), fields(after)) {
        (Some(b), Some(a)) => (b, a),
        // An image that is not a plain object (or has escaped names): compare it whole, parsed.
        _ => return diff_values(&parse(before), &parse(after)),
    };
    let value = |raw: Option<&RawValue>| raw.and_then(|r| serde_json::from_str(r.get()).ok()).unwrap_or(Value::Null);
    let keys = a.iter().map(|(k, _)| *k).chain(b.iter().map(|(k, _)| *k).filter(|k| field(&a, k).is_none()));
    keys.filter(|k| !IGNORED.contains(k))
        .filter_map(|k| {
            let (from, to) = (field(&b, k), field(&a, k));
            if from.map(RawValue::get) == to.map(RawValue::get) {
                return None;
            }
            let (from, to) = (value(from), value(to));
            (from != to).then(|| FieldChange { field: k.to_string(), from, to })
        })
        .collect()
}

/// Fields every change touches, left out of the changes.
const IGNORED: &[&str] = &["updated_at", "version", "created_at", "id"];

fn parse(s: Option<&str>) -> Value {
    s.and_then(|s| serde_json::from_str(s).ok()).unwrap_or(Value::Null)
}

fn diff_values(before: &Value, after: &Value) -> Vec<FieldChange> {
    let empty = serde_json::Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let keys = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
    keys.filter(|k| !IGNORED.contains(&k.as_str()))
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
        .map(|r| HistoryEntry {
            seq: r.seq.unwrap_or_default(),
            at: crate::domain::instant::format(&r.at),
            actor: with_actors.then(|| r.actor()),
            department: r.actor_department.clone(),
            action: r.action.strip_prefix(prefix).unwrap_or(&r.action).to_string(),
            effective_date: r.effective_date,
            reason: r.reason.clone(),
            changes: diff(r.before_data.as_deref(), r.after_data.as_deref()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_the_fields_that_differ_in_the_order_of_after() {
        let before = r#"{"id":"x","name":"甲","stage":"clue","officers":["a"],"gone":1,"version":1}"#;
        let after = r#"{"id":"x","name":"甲","stage":"filed","officers":["a","b"],"new":{"k":null},"version":2}"#;
        let changes = diff(Some(before), Some(after));
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["stage", "officers", "new", "gone"]);
        assert_eq!((&changes[0].from, &changes[0].to), (&Value::from("clue"), &Value::from("filed")));
        assert_eq!(changes[3].to, Value::Null);
        // Created and deleted records: everything on one side; and the same value written differently is no change.
        assert_eq!(diff(None, Some(after)).len(), 4);
        assert!(diff(Some(r#"{"a": [1, 2]}"#), Some(r#"{"a":[1,2]}"#)).is_empty());
        // Names written with escapes still compare.
        assert_eq!(diff(Some(r#"{"\u0061":1}"#), Some(r#"{"a":2}"#)).len(), 1);
    }
}
