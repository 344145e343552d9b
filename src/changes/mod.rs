//! `/api/v1/changes` — the change feed for provincial platforms (API.md §4.11). Entries are written by
//! [`crate::audit::record`] in the same transaction as the change, numbered in commit order.

use actix_web::{get, web, HttpResponse};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::audit::EntityType;
use crate::auth::Authorized;
use crate::db::schema::change_feed as c;
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::{decode_cursor, encode_cursor, DEFAULT_LIMIT, MAX_LIMIT};
use crate::policy;
use crate::startup::AppState;

policy!(
    /// Platforms, and those who read everything.
    ChangesRead = [Admin, Leader, Platform, Auditor]
);

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list);
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Change {
    pub seq: i64,
    pub entity_type: String,
    pub entity_id: String,
    /// `upsert` or `delete`.
    pub op: String,
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: String,
    /// The entity as GET returns it; null for deletes.
    pub data: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChangePage {
    pub items: Vec<Change>,
    /// Always present: resume from here. An empty page means caught up.
    pub next_cursor: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangeQuery {
    /// Resume point from a previous `next_cursor`; absent = from the beginning.
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Comma-separated entity types, e.g. `water_user,permit`.
    pub entity_types: Option<String>,
}

/// Changes in commit order, each exactly once.
#[utoipa::path(tag = "changes", params(ChangeQuery), security(("bearer" = ["admin", "leader", "platform", "auditor"])),
    responses((status = 200, description = "A page of changes", body = ChangePage)))]
#[get("/changes")]
async fn list(
    state: web::Data<AppState>,
    _caller: Authorized<ChangesRead>,
    query: web::Query<ChangeQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 500"));
    }
    let after: i64 = q.cursor.as_deref().map(decode_cursor).transpose()?.unwrap_or(0);
    let types: Option<Vec<String>> = match q.entity_types.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(list) => Some(
            list.split(',')
                .map(|t| {
                    EntityType::parse(t.trim())
                        .map(|e| e.as_str().to_string())
                        .ok_or_else(|| ApiError::invalid("entity_types", format!("unknown entity type {t:?}")))
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    let rows = state
        .db
        .run(move |conn| {
            crate::audit::sequence_pending(conn)?;
            let mut query = c::table
                .filter(c::seq.gt(after))
                .order(c::seq.asc())
                .limit(limit)
                .select((c::seq, c::entity_type, c::entity_id, c::op, c::occurred_at, c::data))
                .into_boxed();
            if let Some(types) = types {
                query = query.filter(c::entity_type.eq_any(types));
            }
            Ok(query.load::<(Option<i64>, String, String, String, chrono::NaiveDateTime, Option<String>)>(conn)?)
        })
        .await?;
    let last = rows.last().and_then(|r| r.0).unwrap_or(after);
    let items = rows
        .into_iter()
        .map(|(seq, entity_type, entity_id, op, at, data)| Change {
            seq: seq.unwrap_or_default(),
            entity_type,
            entity_id,
            op,
            occurred_at: crate::domain::instant::format(&at),
            data: data.and_then(|d| serde_json::from_str(&d).ok()),
        })
        .collect();
    Ok(HttpResponse::Ok().json(ChangePage { items, next_cursor: encode_cursor(&last) }))
}
