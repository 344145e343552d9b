//! 计划用水 — planned water use (docs/api.md §planned use, docs/domain.md): planned-water users, their annual plans
//! split by month, and their monthly usage. Rows, views and queries here; the plan rules in `rules`, surcharge
//! arithmetic in `calc`; HTTP in `routes` (planned users, coverage), `plan_routes`, `usage_routes`, `monitoring`
//! (warnings, the key-monitoring list), `tiers` (`/surcharge-tiers`), `import` (`/planned-users/import`, the CSV/Excel bulk import) and `settle` (`/plan-settlements`: over-plan
//! surcharges, billed as fee assessments).

pub mod calc;
pub mod import;
pub mod monitoring;
pub mod plan_routes;
pub mod routes;
pub mod rules;
pub mod settle;
pub mod tiers;
pub mod usage_routes;

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::EntityType;
use crate::clock::Now;
use crate::db::schema::{planned_usage, planned_users, plans, water_users};
use crate::db::DbConn;
use crate::domain::money::Rate;
use crate::error::{ApiError, ErrorCode};
use crate::messages::Msg;
use crate::policy;
use crate::text_enum;
use crate::write::{Entity, Record};

policy!(
    /// The sections that work with water users and fees, and the platform (as for withdrawals: not legal, not field
    /// inspectors).
    PlannedUseRead = [Admin, Leader, WaterResources, WaterSaving, Finance, Enforcement, Platform, Auditor]
);
policy!(
    /// 节约用水办公室.
    PlannedUseWrite = [WaterSaving]
);
policy!(
    /// 节约用水办公室, and the provincial platform pushing usage.
    UsageWrite = [WaterSaving, Platform]
);

text_enum! {
    /// 计划用水户类别.
    pub enum Category {
        NonResidential = ("non_residential", "非居民用水户"),
        SelfSupplied = ("self_supplied", "自备水源用水户"),
        TemporaryConstruction = ("temporary_construction", "临时施工用水"),
    }
}

text_enum! {
    /// Where the water comes from.
    pub enum Supply {
        PublicNetwork = ("public_network", "公共供水管网"),
        OwnSource = ("own_source", "自备水源"),
    }
}

text_enum! {
    /// A plan as issued, or changed since.
    pub enum PlanStatus {
        Issued = ("issued", "已下达"),
        Adjusted = ("adjusted", "已调整"),
    }
}

pub use crate::withdrawals::Source;

/// A planned-water user as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = planned_users, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct PlannedUserRow {
    pub id: String,
    pub water_user_id: String,
    pub category: String,
    pub supply: String,
    pub base_price: Option<String>,
    pub active: bool,
    pub note: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

crate::versioned_row!(PlannedUserRow, planned_users);

impl Entity for PlannedUserRow {
    const ENTITY: EntityType = EntityType::PlannedUser;
    fn duplicate() -> ApiError {
        ApiError::conflict(ErrorCode::Conflict, Msg::DuplicatePlannedUser)
    }
}

impl Record for PlannedUserRow {
    type View = PlannedUser;

    fn view(&self, conn: &mut DbConn, _: &Now) -> QueryResult<PlannedUser> {
        let names = water_user_names(conn, vec![self.water_user_id.clone()])?;
        Ok(PlannedUser::new(self, &names))
    }
}

/// 计划用水户 as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0193a0c4-0000-7000-8000-000000000301", "water_user_id": "0193a0c4-5f0e-7b61-9a3e-4c1d2e3f4a5b",
    "water_user_name": "赤水市天岛湖酒店有限公司", "credit_code": "91520381MA6DKQ1X2R", "category": "non_residential",
    "supply": "public_network", "base_price_yuan_per_m3": "3.4500", "active": true, "note": null,
    "created_at": "2026-01-05T02:00:00Z", "updated_at": "2026-01-05T02:00:00Z", "version": 1}))]
pub struct PlannedUser {
    pub id: String,
    pub water_user_id: String,
    /// The water user's name.
    pub water_user_name: String,
    /// The water user's 统一社会信用代码.
    pub credit_code: String,
    pub category: Category,
    pub supply: Supply,
    /// The water price over-plan surcharges multiply; null: the price configured for the category.
    pub base_price_yuan_per_m3: Option<Rate>,
    pub active: bool,
    pub note: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl PlannedUser {
    pub fn new(r: &PlannedUserRow, names: &HashMap<String, (String, String)>) -> Self {
        let (name, code) = names.get(&r.water_user_id).cloned().unwrap_or_default();
        Self {
            id: r.id.clone(),
            water_user_id: r.water_user_id.clone(),
            water_user_name: name,
            credit_code: code,
            category: Category::parse(&r.category).unwrap_or(Category::NonResidential),
            supply: Supply::parse(&r.supply).unwrap_or(Supply::PublicNetwork),
            base_price_yuan_per_m3: r.base_price.as_deref().and_then(|p| Rate::parse(p).ok()),
            active: r.active,
            note: r.note.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

/// Names and credit codes of water users by id, in one query.
pub fn water_user_names(conn: &mut DbConn, mut ids: Vec<String>) -> QueryResult<HashMap<String, (String, String)>> {
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String, String)> = water_users::table
        .filter(water_users::id.eq_any(&ids))
        .select((water_users::id, water_users::name, water_users::credit_code))
        .load(conn)?;
    Ok(rows.into_iter().map(|(id, name, code)| (id, (name, code))).collect())
}

pub fn find_user(conn: &mut DbConn, id: &str) -> QueryResult<Option<PlannedUserRow>> {
    planned_users::table.find(id).select(PlannedUserRow::as_select()).first(conn).optional()
}

/// The planned user, read under a lock that lasts until the write commits (`FOR KEY SHARE` on PostgreSQL: plans
/// and usage of one user do not wait for each other, a change to the user — deactivation — waits for them).
pub fn user_for_child(conn: &mut DbConn, id: &str) -> QueryResult<Option<PlannedUserRow>> {
    match conn {
        DbConn::Postgres(c) => {
            planned_users::table.find(id).select(PlannedUserRow::as_select()).for_key_share().first(c).optional()
        }
        DbConn::Sqlite(c) => planned_users::table.find(id).select(PlannedUserRow::as_select()).first(c).optional(),
    }
}

/// A user's plans and usage are written only while it is active.
pub fn require_active(user: &PlannedUserRow) -> Result<(), ApiError> {
    if user.active {
        Ok(())
    } else {
        Err(ApiError::conflict(ErrorCode::PlannedUserInactive, Msg::PlannedUserInactive))
    }
}

/// An annual plan as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = plans, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct PlanRow {
    pub id: String,
    pub planned_user_id: String,
    pub year: i32,
    pub annual_m3: i64,
    pub monthly_m3: String,
    pub status: String,
    pub issued_on: NaiveDate,
    pub adjusted_on: Option<NaiveDate>,
    pub reason: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

crate::versioned_row!(PlanRow, plans);

impl Entity for PlanRow {
    const ENTITY: EntityType = EntityType::Plan;
}

impl Record for PlanRow {
    type View = Plan;

    fn view(&self, _: &mut DbConn, _: &Now) -> QueryResult<Plan> {
        Ok(Plan::new(self))
    }
}

impl PlanRow {
    pub fn months(&self) -> [i64; 12] {
        serde_json::from_str::<Vec<i64>>(&self.monthly_m3)
            .ok()
            .and_then(|v| <[i64; 12]>::try_from(v).ok())
            .unwrap_or_else(|| rules::split_evenly(self.annual_m3))
    }
}

/// 年度用水计划.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0193a0c4-0000-7000-8000-000000000401", "planned_user_id": "0193a0c4-0000-7000-8000-000000000301",
    "year": 2026, "annual_m3": 120000, "monthly_m3": [10000, 10000, 10000, 10000, 10000, 10000, 10000, 10000, 10000, 10000, 10000, 10000],
    "status": "issued", "issued_on": "2026-01-05", "adjusted_on": null, "reason": null,
    "created_at": "2026-01-05T02:00:00Z", "updated_at": "2026-01-05T02:00:00Z", "version": 1}))]
pub struct Plan {
    pub id: String,
    pub planned_user_id: String,
    pub year: i32,
    pub annual_m3: i64,
    /// January to December; they add up to `annual_m3`.
    pub monthly_m3: Vec<i64>,
    pub status: PlanStatus,
    #[schema(value_type = String, format = Date)]
    pub issued_on: NaiveDate,
    /// The date of the latest adjustment.
    #[schema(value_type = Option<String>, format = Date)]
    pub adjusted_on: Option<NaiveDate>,
    /// Why it was last adjusted.
    pub reason: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl Plan {
    pub fn new(r: &PlanRow) -> Self {
        Self {
            id: r.id.clone(),
            planned_user_id: r.planned_user_id.clone(),
            year: r.year,
            annual_m3: r.annual_m3,
            monthly_m3: r.months().to_vec(),
            status: PlanStatus::parse(&r.status).unwrap_or(PlanStatus::Issued),
            issued_on: r.issued_on,
            adjusted_on: r.adjusted_on,
            reason: r.reason.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

pub fn find_plan(conn: &mut DbConn, id: &str) -> QueryResult<Option<PlanRow>> {
    plans::table.find(id).select(PlanRow::as_select()).first(conn).optional()
}

/// The plan of `user` for `year`, if issued.
pub fn plan_of(conn: &mut DbConn, user: &str, year: i32) -> QueryResult<Option<PlanRow>> {
    plans::table
        .filter(plans::planned_user_id.eq(user))
        .filter(plans::year.eq(year))
        .select(PlanRow::as_select())
        .first(conn)
        .optional()
}

/// A month's usage as stored (one current revision per user and month).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = planned_usage, treat_none_as_default_value = false)]
pub struct UsageRow {
    pub id: String,
    pub planned_user_id: String,
    pub period: String,
    pub revision: i32,
    pub superseded: bool,
    pub volume_m3: i64,
    pub source: String,
    pub reported_by: String,
    pub note: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl crate::write::revision::Revision for UsageRow {
    const ENTITY: EntityType = EntityType::Usage;
    const ACTION: &'static str = "usage";

    fn id(&self) -> &str {
        &self.id
    }

    fn superseded(&self, now: NaiveDateTime) -> Self {
        Self { superseded: true, version: self.version + 1, updated_at: now, ..self.clone() }
    }

    fn supersede(&self, conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<usize> {
        use planned_usage as us;
        diesel::update(us::table.find(&self.id).filter(us::superseded.eq(false)).filter(us::version.eq(self.version)))
            .set((us::superseded.eq(true), us::updated_at.eq(now), us::version.eq(self.version + 1)))
            .execute(conn)
    }

    fn insert(&self, conn: &mut DbConn) -> QueryResult<usize> {
        diesel::insert_into(planned_usage::table).values(self).execute(conn)
    }
}

/// 月实际用水量.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0193a0c4-0000-7000-8000-000000000501", "planned_user_id": "0193a0c4-0000-7000-8000-000000000301",
    "period": "2026-03", "volume_m3": 10450, "source": "staff", "reported_by": "jieshui01", "note": null,
    "revision": 1, "superseded": false, "created_at": "2026-04-02T01:00:00Z", "updated_at": "2026-04-02T01:00:00Z", "version": 1}))]
pub struct Usage {
    pub id: String,
    pub planned_user_id: String,
    /// The month, `YYYY-MM`.
    pub period: String,
    pub volume_m3: i64,
    pub source: Source,
    /// Who reported it: the caller's username (set by the service).
    pub reported_by: String,
    pub note: Option<String>,
    /// 1 for the first report of the month, +1 for each correction.
    pub revision: i32,
    /// True once a later revision replaced this one.
    pub superseded: bool,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl Usage {
    pub fn new(r: &UsageRow) -> Self {
        Self {
            id: r.id.clone(),
            planned_user_id: r.planned_user_id.clone(),
            period: r.period.clone(),
            volume_m3: r.volume_m3,
            source: Source::parse(&r.source).unwrap_or(Source::Staff),
            reported_by: r.reported_by.clone(),
            note: r.note.clone(),
            revision: r.revision,
            superseded: r.superseded,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}
