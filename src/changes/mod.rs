//! `/api/v1/changes` — the change feed for provincial platforms (docs/api.md): the audit trail's entity
//! changes (`in_feed`), written by [`crate::audit::record`] in the same transaction as the change and numbered
//! with the trail. Sequence numbers increase strictly but skip the trail's other events.

pub mod calendar;

use actix_web::{get, web, HttpResponse};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::audit::EntityType;
use crate::db::schema::audit_events as a;
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::{decode_cursor, encode_cursor, DEFAULT_LIMIT, MAX_LIMIT};
use crate::http::Query;
use crate::messages::Msg;
use crate::policy;
use crate::security::Authorized;
use crate::state::AppState;

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
    /// The entity as GET returns it; null for deletes. (Sent as stored: the trail keeps it as GET wrote it.)
    #[schema(value_type = Option<Object>)]
    pub data: Option<Box<serde_json::value::RawValue>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChangePage {
    pub items: Vec<Change>,
    /// Always present: resume from here. An empty page means caught up.
    pub next_cursor: String,
    /// With `include_total=true`: the changes after the cursor that match `entity_types` (still to read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
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
    /// Also answer `total`: how many changes after the cursor match.
    pub include_total: Option<bool>,
}

/// 变更流 — Changes in the order they became visible, each exactly once (`seq` increases strictly; it is not dense).
#[utoipa::path(tag = "changes", params(ChangeQuery), security(("bearer" = ["admin", "leader", "platform", "auditor"])),
    responses((status = 200, description = "A page of changes", body = ChangePage)))]
#[get("/changes")]
async fn list(
    state: web::Data<AppState>,
    turns: web::Data<calendar::Turns>,
    caller: Authorized<ChangesRead>,
    query: Query<ChangeQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.0;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid("limit", Msg::Between(1, 500)));
    }
    let after: i64 = q.cursor.as_deref().map(decode_cursor).transpose()?.unwrap_or(0);
    let types: Option<Vec<String>> = match q.entity_types.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(list) => Some(
            list.split(',')
                .map(|t| {
                    EntityType::parse(t.trim())
                        .filter(|e| e.in_change_feed())
                        .map(|e| e.as_str().to_string())
                        .ok_or_else(|| ApiError::invalid("entity_types", Msg::NotInFeed(t.to_string())))
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    let include_total = q.include_total.unwrap_or(false);
    // What the calendar changed by today is in the feed before it is read.
    turns.catch_up_or_log(&state, caller.now).await;
    let (rows, total) = state
        .db
        .run(move |conn| {
            crate::audit::sequence_pending(conn)?;
            let filtered = || {
                let mut query = a::table.filter(a::in_feed.eq(true)).filter(a::seq.gt(after)).into_boxed();
                if let Some(types) = &types {
                    query = query.filter(a::entity_type.eq_any(types.clone()));
                }
                query
            };
            let total = if include_total { Some(filtered().count().get_result(conn)?) } else { None };
            let query = filtered().order(a::seq.asc()).limit(limit).select((
                a::seq,
                a::entity_type,
                a::entity_id,
                a::at,
                a::after_data,
            ));
            type Row = (Option<i64>, Option<String>, Option<String>, chrono::NaiveDateTime, Option<String>);
            Ok((query.load::<Row>(conn)?, total))
        })
        .await?;
    let last = rows.last().and_then(|r| r.0).unwrap_or(after);
    let items = rows
        .into_iter()
        .map(|(seq, entity_type, entity_id, at, data)| Change {
            seq: seq.unwrap_or_default(),
            entity_type: entity_type.unwrap_or_default(),
            entity_id: entity_id.unwrap_or_default(),
            op: if data.is_some() { "upsert" } else { "delete" }.to_string(),
            occurred_at: crate::domain::instant::format(&at),
            data: data.and_then(|d| serde_json::value::RawValue::from_string(d).ok()),
        })
        .collect();
    Ok(HttpResponse::Ok().json(ChangePage { items, next_cursor: encode_cursor(&last), total }))
}
