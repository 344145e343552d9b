//! Zones with a total-quantity cap (取水总量控制 / 地下水可开采量), docs/api.md. Queries here; HTTP in `routes`.

pub mod routes;

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::EntityType;
use crate::clock::Now;
use crate::db::schema::{permits, water_zones};
use crate::db::DbConn;
use crate::domain::water::{PermitStatus, SourceType};
use crate::error::{ApiError, ErrorCode};
use crate::messages::Msg;
use crate::text_enum;
use crate::write::{Entity, Record};

text_enum! {
    /// `normal`, `restricted` (限采: no new groundwater permits) or `prohibited` (禁采: no permits).
    pub enum ZoneClass {
        Normal = ("normal", "一般区"),
        Restricted = ("restricted", "限采区"),
        Prohibited = ("prohibited", "禁采区"),
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = water_zones, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct ZoneRow {
    pub id: String,
    pub name: String,
    pub source_type: String,
    pub zone_class: String,
    pub allowable_m3_per_year: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

/// A zone as the API shows it, with what is approved in it today.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0193a0c4-0000-7000-8000-000000000001", "name": "赤水河岩溶地下水区", "source_type": "karst",
    "zone_class": "restricted", "allowable_m3_per_year": 15150000, "approved_m3_per_year": 5000000, "utilization_pct": "33.0",
    "created_at": "2026-01-05T02:00:00Z", "updated_at": "2026-01-05T02:00:00Z", "version": 1}))]
pub struct Zone {
    pub id: String,
    pub name: String,
    pub source_type: SourceType,
    pub zone_class: ZoneClass,
    /// 可开采量 / 控制总量 (m³ per year).
    pub allowable_m3_per_year: i64,
    /// Annual volume of the permits in force in this zone today.
    pub approved_m3_per_year: i64,
    /// approved / allowable × 100, one decimal, rounded half-up; null when nothing is allowable.
    pub utilization_pct: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl Zone {
    pub fn new(row: &ZoneRow, approved: i64) -> Self {
        Self {
            id: row.id.clone(),
            name: row.name.clone(),
            source_type: SourceType::parse(&row.source_type).unwrap_or(SourceType::Surface),
            zone_class: ZoneClass::parse(&row.zone_class).unwrap_or(ZoneClass::Normal),
            allowable_m3_per_year: row.allowable_m3_per_year,
            approved_m3_per_year: approved,
            utilization_pct: crate::domain::dates::percent_1dp(approved, row.allowable_m3_per_year),
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        }
    }
}

crate::versioned_row!(ZoneRow, water_zones);

impl Entity for ZoneRow {
    const ENTITY: EntityType = EntityType::Zone;
    fn duplicate() -> ApiError {
        ApiError::conflict(ErrorCode::Conflict, Msg::DuplicateZoneName)
    }
}

impl Record for ZoneRow {
    type View = Zone;

    fn view(&self, conn: &mut DbConn, now: &Now) -> QueryResult<Zone> {
        Ok(Zone::new(self, approved_total(conn, &self.id, now.today)?))
    }
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<ZoneRow>> {
    water_zones::table.find(id).select(ZoneRow::as_select()).first(conn).optional()
}

const SUM_ANNUAL: &str = "CAST(COALESCE(SUM(annual_volume_m3), 0) AS BIGINT)";

/// Annual volume allocated in the zone on `on`: permits approved or suspended and not expired by then
/// (including those whose term starts later: their volume is committed).
pub fn approved_total(conn: &mut DbConn, zone_id: &str, on: NaiveDate) -> QueryResult<i64> {
    permits::table
        .filter(permits::zone_id.eq(zone_id))
        .filter(permits::status.eq_any(PermitStatus::in_force_texts()))
        .filter(permits::valid_to.ge(on))
        .select(sql::<BigInt>(SUM_ANNUAL))
        .first(conn)
}

/// Annual volume of the zone's permits approved or suspended whose terms overlap `from..=to`, other than
/// `except`: what the cap check of an approval or renewal adds the permit's own volume to (docs/api.md).
pub fn committed_overlapping(
    conn: &mut DbConn,
    zone_id: &str,
    from: NaiveDate,
    to: NaiveDate,
    except: &str,
) -> QueryResult<i64> {
    permits::table
        .filter(permits::zone_id.eq(zone_id))
        .filter(permits::id.ne(except))
        .filter(permits::status.eq_any(PermitStatus::in_force_texts()))
        .filter(permits::valid_from.le(to))
        .filter(permits::valid_to.ge(from))
        .select(sql::<BigInt>(SUM_ANNUAL))
        .first(conn)
}

/// Allocated volume per zone (as [`approved_total`]) for a page of zones, in one grouped query.
pub fn approved_totals(conn: &mut DbConn, zone_ids: &[String], on: NaiveDate) -> QueryResult<HashMap<String, i64>> {
    let rows: Vec<(Option<String>, i64)> = permits::table
        .filter(permits::zone_id.eq_any(zone_ids))
        .filter(permits::status.eq_any(PermitStatus::in_force_texts()))
        .filter(permits::valid_to.ge(on))
        .group_by(permits::zone_id)
        .select((permits::zone_id, sql::<BigInt>(SUM_ANNUAL)))
        .load(conn)?;
    Ok(rows.into_iter().filter_map(|(id, total)| id.map(|id| (id, total))).collect())
}
