//! 取用水户名录 — the registry of water users (docs/api.md). Queries here; HTTP in `routes`.

pub mod routes;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::EntityType;
use crate::clock::Now;
use crate::db::schema::{permits, planned_users, water_users};
use crate::db::DbConn;
use crate::error::{ApiError, ErrorCode};
use crate::messages::Msg;
use crate::write::{Entity, Record};

/// A water user (取用水户): an organisation identified by its 统一社会信用代码.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize, Deserialize, ToSchema)]
#[diesel(table_name = water_users, treat_none_as_default_value = false, treat_none_as_null = true)]
#[schema(example = json!({
    "id": "0193a0c4-5f0e-7b61-9a3e-4c1d2e3f4a5b", "name": "赤水市自来水有限公司", "credit_code": "91350100M000100Y43",
    "legal_representative": "王建国", "region_code": "520381", "address": "赤水市市中街道", "industry": "D4610",
    "contact_phone": "0851-22881234", "created_at": "2026-01-05T02:00:00Z", "updated_at": "2026-01-05T02:00:00Z", "version": 1
}))]
pub struct WaterUser {
    pub id: String,
    pub name: String,
    /// 统一社会信用代码 (GB 32100-2015), unique.
    pub credit_code: String,
    pub legal_representative: Option<String>,
    /// 6-digit administrative division code.
    pub region_code: String,
    pub address: Option<String>,
    /// Industry (e.g. GB/T 4754 code or name).
    pub industry: Option<String>,
    pub contact_phone: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

crate::versioned_row!(WaterUser, water_users);

impl Entity for WaterUser {
    const ENTITY: EntityType = EntityType::WaterUser;
    fn duplicate() -> ApiError {
        ApiError::conflict(ErrorCode::Conflict, Msg::DuplicateCreditCode)
    }
}

impl Record for WaterUser {
    type View = WaterUser;

    fn view(&self, _: &mut DbConn, _: &Now) -> QueryResult<WaterUser> {
        Ok(self.clone())
    }
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<WaterUser>> {
    water_users::table.find(id).select(WaterUser::as_select()).first(conn).optional()
}

pub fn find_by_credit_code(conn: &mut DbConn, code: &str) -> QueryResult<Option<WaterUser>> {
    water_users::table.filter(water_users::credit_code.eq(code)).select(WaterUser::as_select()).first(conn).optional()
}

/// What still refers to a water user, as `(what, count)` pairs with a non-zero count.
/// New areas that reference water users add their tables here.
pub fn references(conn: &mut DbConn, id: &str) -> QueryResult<Vec<(&'static str, i64)>> {
    let permits: i64 = permits::table.filter(permits::holder_id.eq(id)).count().get_result(conn)?;
    let planned: i64 = planned_users::table.filter(planned_users::water_user_id.eq(id)).count().get_result(conn)?;
    Ok([("permits", permits), ("planned users", planned)].into_iter().filter(|(_, n)| *n > 0).collect())
}
