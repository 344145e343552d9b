//! The rate table (水资源费征收标准): a unit rate per source type × purpose × optional zone class, in force over a
//! date range. Rows of one key never overlap; a month is charged at the rate in force on its first day, a row for
//! the permit's zone class before a row for every class.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::EntityType;
use crate::clock::Now;
use crate::db::schema::fee_rates as fr;
use crate::db::DbConn;
use crate::domain::dates::Month;
use crate::domain::money::Rate;
use crate::domain::water::SourceType;
use crate::error::{ApiError, ErrorCode};
use crate::messages::Msg;
use crate::permits::Purpose;
use crate::water_zones::ZoneClass;
use crate::write::{Entity, Record};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = fr, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct FeeRateRow {
    pub id: String,
    pub source_type: String,
    pub purpose: String,
    pub zone_class: Option<String>,
    pub rate: String,
    pub effective_from: NaiveDate,
    pub effective_to: Option<NaiveDate>,
    pub note: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

crate::versioned_row!(FeeRateRow, fr);

impl FeeRateRow {
    pub fn rate(&self) -> Option<Rate> {
        Rate::parse(&self.rate).ok()
    }

    /// In force on `day`.
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.effective_from <= day && self.effective_to.is_none_or(|to| day <= to)
    }

    fn overlaps(&self, other: &FeeRateRow) -> bool {
        let ends_before = |a: &FeeRateRow, b: &FeeRateRow| a.effective_to.is_some_and(|to| to < b.effective_from);
        !ends_before(self, other) && !ends_before(other, self)
    }
}

/// A rate as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0193a0c4-0000-7000-8000-000000000301", "source_type": "groundwater_deep", "purpose": "industrial",
    "zone_class": null, "rate_yuan_per_m3": "1.5000", "effective_from": "2022-01-01", "effective_to": null,
    "note": "黔发改价格〔2021〕号", "created_at": "2021-12-20T02:00:00Z", "updated_at": "2021-12-20T02:00:00Z", "version": 1}))]
pub struct FeeRate {
    pub id: String,
    pub source_type: SourceType,
    pub purpose: Purpose,
    /// Only for permits in zones of this class; null: every class (a row for the class wins).
    pub zone_class: Option<ZoneClass>,
    pub rate_yuan_per_m3: Rate,
    #[schema(value_type = String, format = Date)]
    pub effective_from: NaiveDate,
    /// Last day in force; null: until further notice.
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_to: Option<NaiveDate>,
    /// The document that set the rate, or any remark.
    pub note: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl From<&FeeRateRow> for FeeRate {
    fn from(r: &FeeRateRow) -> Self {
        Self {
            id: r.id.clone(),
            source_type: SourceType::parse(&r.source_type).unwrap_or(SourceType::Surface),
            purpose: Purpose::parse(&r.purpose).unwrap_or(Purpose::Other),
            zone_class: r.zone_class.as_deref().and_then(ZoneClass::parse),
            rate_yuan_per_m3: r.rate().unwrap_or(Rate::parse("0").expect("zero")),
            effective_from: r.effective_from,
            effective_to: r.effective_to,
            note: r.note.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

impl Entity for FeeRateRow {
    const ENTITY: EntityType = EntityType::FeeRate;
}

impl Record for FeeRateRow {
    type View = FeeRate;

    fn view(&self, _: &mut DbConn, _: &Now) -> QueryResult<FeeRate> {
        Ok(FeeRate::from(self))
    }
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<FeeRateRow>> {
    fr::table.find(id).select(FeeRateRow::as_select()).first(conn).optional()
}

/// The lock name of a rate's key (source type × purpose × zone class).
fn key_lock(row: &FeeRateRow) -> String {
    format!("fee_rate:{}:{}:{}", row.source_type, row.purpose, row.zone_class.as_deref().unwrap_or("*"))
}

/// Refuses `row` (new or changed) when another row of its key is in force on any of its days (409 `rate_overlap`).
/// Takes the key's lock first, so two admins entering overlapping rows at once cannot both pass.
pub fn check_overlap(conn: &mut DbConn, row: &FeeRateRow) -> Result<(), ApiError> {
    crate::db::lock_names(conn, &[&key_lock(row)])?;
    let mut q = fr::table
        .filter(fr::source_type.eq(&row.source_type))
        .filter(fr::purpose.eq(&row.purpose))
        .filter(fr::id.ne(&row.id))
        .into_boxed();
    q = match &row.zone_class {
        Some(c) => q.filter(fr::zone_class.eq(c.clone())),
        None => q.filter(fr::zone_class.is_null()),
    };
    let same_key: Vec<FeeRateRow> = q.select(FeeRateRow::as_select()).load(conn)?;
    if let Some(other) = same_key.iter().find(|o| o.overlaps(row)) {
        return Err(ApiError::conflict(
            ErrorCode::RateOverlap,
            Msg::RateOverlap { from: other.effective_from, to: other.effective_to },
        ));
    }
    Ok(())
}

/// The whole rate table (a few dozen rows), for pricing many permits at once.
pub struct RateTable(Vec<(FeeRateRow, Rate)>);

impl RateTable {
    pub fn load(conn: &mut DbConn) -> QueryResult<Self> {
        let rows: Vec<FeeRateRow> =
            fr::table.order(fr::effective_from.asc()).select(FeeRateRow::as_select()).load(conn)?;
        Ok(Self::from_rows(rows))
    }

    pub fn from_rows(rows: Vec<FeeRateRow>) -> Self {
        Self(rows.into_iter().filter_map(|r| r.rate().map(|rate| (r, rate))).collect())
    }

    /// The rate for a month: in force on its first day, for the source type and purpose; a row for the zone class
    /// before a row for every class.
    pub fn find(&self, source: &str, purpose: &str, zone_class: Option<&str>, month: Month) -> Option<(String, Rate)> {
        let day = month.first_day();
        let matching = |class: Option<&str>| {
            self.0.iter().find(|(r, _)| {
                r.source_type == source && r.purpose == purpose && r.zone_class.as_deref() == class && r.covers(day)
            })
        };
        zone_class.and_then(|c| matching(Some(c))).or_else(|| matching(None)).map(|(r, rate)| (r.id.clone(), *rate))
    }
}
