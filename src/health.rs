//! `/health/live` and `/health/ready` (no authentication).

use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
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
