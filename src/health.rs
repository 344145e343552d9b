//! The operators' endpoints: `/health/live` and `/health/ready` (no authentication) and `/metrics` (the
//! scrape token, or the metrics listener).

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::messages::Msg;
use crate::metrics::{DatabaseProbe, PENDING_COUNT_CAP};
use crate::security::{bearer_token, token_digest};
use crate::state::AppState;

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`
    pub status: String,
}

/// 存活检查 — The process is up.
#[utoipa::path(tag = "health", security(()), responses((status = 200, description = "Alive", body = Health)))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok".into() })
}

/// 就绪检查 — The database is reachable and every migration is applied.
#[utoipa::path(tag = "health", security(()), responses((status = 200, description = "Ready", body = Health)))]
#[get("/health/ready")]
pub async fn ready(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let ok = state
        .db
        .run(|conn| {
            use diesel::r2d2::R2D2Connection;
            conn.ping()?;
            Ok(crate::db::migrations_applied(conn))
        })
        .await?;
    if !ok {
        return Err(ApiError::Unavailable);
    }
    Ok(HttpResponse::Ok().json(Health { status: "ok".into() }))
}

/// Marks the app behind `SHUIWU_METRICS_BIND`: requests that reach it need no token.
pub struct MetricsListener;

/// The OpenMetrics media type Prometheus asks for (and parses).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// 指标 — The instance's metrics for Prometheus, in the OpenMetrics text format: requests by route template and
/// status, latency histograms, the connection pool, audit events pending numbering, failed and throttled sign-ins.
///
/// Only for the monitoring system: with the scrape token `SHUIWU_METRICS_TOKEN` as a bearer token (an account's
/// token is refused with 403), or without a token on the separate listener `SHUIWU_METRICS_BIND`. Without a scrape
/// token configured, this listener answers 404. The metric names are in docs/operations.md.
#[utoipa::path(
    tag = "health",
    security(("metrics_token" = [])),
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "application/openmetrics-text"),
        (status = 401, description = "No bearer token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the scrape token (an account's token included)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No scrape token is configured: not served on this listener", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    if req.app_data::<web::Data<MetricsListener>>().is_none() {
        let Some(expected) = &state.settings.metrics_token else {
            return Err(ApiError::NotFound);
        };
        let given = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .ok_or(ApiError::Unauthorized(Msg::MetricsTokenRequired))?;
        // Compared as digests, so that the comparison's time says nothing about the token.
        if token_digest(given) != token_digest(expected.expose()) {
            return Err(ApiError::Forbidden);
        }
    }
    // A bounded count over the partial index of pending events (an unbounded COUNT may scan the whole trail), with
    // a short wait for a connection: a saturated pool is reported as such, not as a database that is down.
    let probe = state.db.run(|conn| {
        use crate::db::schema::audit_events::dsl as a;
        use diesel::prelude::*;
        let ids: Vec<i64> = a::audit_events
            .filter(a::seq.is_null())
            .order(a::id.asc())
            .limit(PENDING_COUNT_CAP)
            .select(a::id)
            .load(conn)?;
        Ok(ids.len() as i64)
    });
    let database = match tokio::time::timeout(std::time::Duration::from_secs(1), probe).await {
        Ok(Ok(n)) => DatabaseProbe::Up { audit_pending: n },
        Err(_) if state.db.status().in_use > 0 => DatabaseProbe::Busy,
        _ => DatabaseProbe::Down,
    };
    let body = state.metrics.render(state.db.status(), database);
    Ok(HttpResponse::Ok().content_type(OPENMETRICS).insert_header(("Cache-Control", "no-store")).body(body))
}
