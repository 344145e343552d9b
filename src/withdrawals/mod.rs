//! Monthly withdrawals per permit (docs/api.md). One current record per permit and month; a correction adds a
//! revision and keeps the superseded one. Queries and rules here; HTTP in `routes`.

pub mod routes;

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::schema::withdrawals;
use crate::db::DbConn;
use crate::domain::dates::Month;
use crate::error::{ApiError, ErrorCode};
use crate::messages::Msg;
use crate::permits::{PermitRow, PermitStatus};
use crate::text_enum;

text_enum! {
    /// How the volume was obtained; `max_capacity` when the meter is missing or faulty (daily maximum × days).
    pub enum Method {
        OnlineMeter = ("online_meter", "在线计量"),
        ManualReading = ("manual_reading", "人工抄表"),
        MaxCapacity = ("max_capacity", "按最大取水能力核定"),
    }
}

text_enum! {
    /// Who entered a reading: staff, or the provincial platform (which may not overwrite staff readings).
    pub enum Source {
        Staff = ("staff", "工作人员录入"),
        Platform = ("platform", "省级平台推送"),
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = withdrawals, treat_none_as_default_value = false)]
pub struct WithdrawalRow {
    pub id: String,
    pub permit_id: String,
    pub period: String,
    pub revision: i32,
    pub superseded: bool,
    pub volume_m3: i64,
    pub method: String,
    pub reported_by: String,
    pub note: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
    pub source: String,
    pub over_capacity: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0193a0c4-0000-7000-8000-000000000201", "permit_id": "0193a0c4-0000-7000-8000-000000000101",
    "permit_no": "D520381G2026-0001",
    "period": "2026-03", "volume_m3": 41250, "method": "online_meter", "reported_by": "省水资源监控平台", "source": "platform",
    "over_capacity": false, "note": null,
    "revision": 1, "superseded": false, "created_at": "2026-04-02T01:00:00Z", "updated_at": "2026-04-02T01:00:00Z", "version": 1}))]
pub struct Withdrawal {
    pub id: String,
    pub permit_id: String,
    /// 取水许可证号 — the permit's number.
    pub permit_no: Option<String>,
    /// The month, `YYYY-MM`.
    pub period: String,
    pub volume_m3: i64,
    pub method: Method,
    /// Who reported it: the caller's username (set by the service).
    pub reported_by: String,
    pub source: Source,
    /// Above what the permit can draw that month (daily maximum × days in force), recorded on confirmation.
    pub over_capacity: bool,
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

impl crate::write::revision::Revision for WithdrawalRow {
    const ENTITY: crate::audit::EntityType = crate::audit::EntityType::Withdrawal;
    const ACTION: &'static str = "withdrawal";

    fn id(&self) -> &str {
        &self.id
    }

    fn superseded(&self, now: NaiveDateTime) -> Self {
        Self { superseded: true, version: self.version + 1, updated_at: now, ..self.clone() }
    }

    fn supersede(&self, conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<usize> {
        diesel::update(
            withdrawals::table
                .find(&self.id)
                .filter(withdrawals::superseded.eq(false))
                .filter(withdrawals::version.eq(self.version)),
        )
        .set((
            withdrawals::superseded.eq(true),
            withdrawals::updated_at.eq(now),
            withdrawals::version.eq(self.version + 1),
        ))
        .execute(conn)
    }

    fn insert(&self, conn: &mut DbConn) -> QueryResult<usize> {
        diesel::insert_into(withdrawals::table).values(self).execute(conn)
    }
}

impl Withdrawal {
    /// The record as the API shows it, with its permit's number beside the permit's id.
    pub fn new(r: &WithdrawalRow, permit_no: Option<String>) -> Self {
        Self {
            id: r.id.clone(),
            permit_id: r.permit_id.clone(),
            permit_no,
            period: r.period.clone(),
            volume_m3: r.volume_m3,
            method: Method::parse(&r.method).unwrap_or(Method::ManualReading),
            reported_by: r.reported_by.clone(),
            source: Source::parse(&r.source).unwrap_or(Source::Staff),
            over_capacity: r.over_capacity,
            note: r.note.clone(),
            revision: r.revision,
            superseded: r.superseded,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

/// The days of `month` on which the permit was in force (approved, within its term, before revocation or
/// cancellation). Empty when it was not active that month: withdrawals for such a month are refused.
pub fn active_days(permit: &PermitRow, month: Month) -> Option<(NaiveDate, NaiveDate)> {
    let issued = matches!(
        permit.stored_status(),
        PermitStatus::Approved | PermitStatus::Suspended | PermitStatus::Revoked | PermitStatus::Cancelled
    ) && permit.approved_on.is_some();
    if !issued {
        return None;
    }
    let (from, mut to) = (permit.valid_from?, permit.valid_to?);
    if let Some(end) = permit.revoked_on.or(permit.cancelled_on) {
        to = to.min(end);
    }
    let start = from.max(month.first_day());
    let end = to.min(month.last_day());
    (start <= end).then_some((start, end))
}

/// The volume to record: as reported, or for `max_capacity` the permit's daily maximum × active days.
pub fn volume_for(
    permit: &PermitRow,
    method: Method,
    reported: Option<i64>,
    days: (NaiveDate, NaiveDate),
) -> Result<i64, ApiError> {
    match method {
        Method::MaxCapacity => {
            let daily = permit
                .daily_max_volume_m3
                .ok_or_else(|| ApiError::conflict(ErrorCode::NoDailyMaximum, Msg::NoDailyMaximum))?;
            let computed =
                capacity(daily, days).ok_or_else(|| ApiError::invalid("volume_m3", Msg::CapacityTooLarge))?;
            match reported {
                Some(v) if v != computed => Err(ApiError::invalid("volume_m3", Msg::MaxCapacityIs(computed))),
                _ => Ok(computed),
            }
        }
        _ => match reported {
            Some(v) if v >= 0 => Ok(v),
            Some(_) => Err(ApiError::invalid("volume_m3", Msg::VolumeRange { min: 0 })),
            None => Err(ApiError::invalid("volume_m3", Msg::VolumeRequiredUnlessMaxCapacity)),
        },
    }
}

/// The numbers of the permits of `rows`, in one query.
pub fn permit_numbers<'a>(
    conn: &mut DbConn,
    rows: impl Iterator<Item = &'a WithdrawalRow>,
) -> QueryResult<HashMap<String, Option<String>>> {
    use crate::db::schema::permits;
    let mut ids: Vec<String> = rows.map(|r| r.permit_id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let found: Vec<(String, Option<String>)> =
        permits::table.filter(permits::id.eq_any(&ids)).select((permits::id, permits::permit_no)).load(conn)?;
    Ok(found.into_iter().collect())
}

/// Daily maximum × days, if within the largest volume.
fn capacity(daily: i64, days: (NaiveDate, NaiveDate)) -> Option<i64> {
    daily.checked_mul((days.1 - days.0).num_days() + 1).filter(|v| *v <= crate::domain::MAX_VOLUME_M3)
}

/// True when `volume` is more than the permit can physically draw on the days it was in force (daily maximum ×
/// days); false when it states no daily maximum.
pub fn exceeds_capacity(permit: &PermitRow, volume: i64, days: (NaiveDate, NaiveDate)) -> bool {
    permit.daily_max_volume_m3.is_some_and(|daily| capacity(daily, days).is_none_or(|cap| volume > cap))
}

/// The permit, read under a lock that lasts until the write commits (`FOR KEY SHARE` on PostgreSQL: reports for
/// one permit do not wait for each other, but a change to the permit — a revocation, a new daily maximum — waits
/// for them, and they for it), and its current record for `period`, if any.
pub fn permit_with_current(
    conn: &mut DbConn,
    permit_id: &str,
    period: &str,
) -> QueryResult<Option<(PermitRow, Option<WithdrawalRow>)>> {
    use crate::db::schema::permits;
    let permit = match conn {
        DbConn::Postgres(c) => {
            permits::table.find(permit_id).select(PermitRow::as_select()).for_key_share().first(c).optional()?
        }
        DbConn::Sqlite(c) => permits::table.find(permit_id).select(PermitRow::as_select()).first(c).optional()?,
    };
    let Some(permit) = permit else { return Ok(None) };
    let current = withdrawals::table
        .filter(withdrawals::permit_id.eq(permit_id))
        .filter(withdrawals::period.eq(period))
        .filter(withdrawals::superseded.eq(false))
        .select(WithdrawalRow::as_select())
        .first(conn)
        .optional()?;
    Ok(Some((permit, current)))
}
