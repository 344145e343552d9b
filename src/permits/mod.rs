//! 取水许可 — water-abstraction permits (docs/api.md): the record, its states and rules. HTTP in `routes`.

pub mod certificate;
pub mod routes;
pub mod rules;

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::EntityType;
use crate::clock::Now;
use crate::db::schema::permits;
use crate::db::DbConn;
pub use crate::domain::water::{PermitStatus, SourceType};
use crate::text_enum;
use crate::write::{Entity, Record};

text_enum! {
    /// 取水用途 — what the water is taken for.
    pub enum Purpose {
        Agricultural = ("agricultural", "农业"),
        Industrial = ("industrial", "工业"),
        PublicSupply = ("public_supply", "公共供水"),
        Domestic = ("domestic", "生活"),
        Service = ("service", "服务业"),
        Ecological = ("ecological", "生态"),
        Other = ("other", "其他"),
    }
}

text_enum! {
    /// 计量设施状况 — the state of the intake's meter.
    pub enum MeterStatus {
        None = ("none", "未安装计量设施"),
        Ok = ("ok", "计量设施正常"),
        Faulty = ("faulty", "计量设施故障"),
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = permits, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct PermitRow {
    pub id: String,
    pub permit_no: Option<String>,
    pub holder_id: String,
    pub zone_id: Option<String>,
    pub source_type: String,
    pub intake_method: Option<String>,
    pub purpose: String,
    pub intake_lat: Option<f64>,
    pub intake_lng: Option<f64>,
    pub intake_address: Option<String>,
    pub annual_volume_m3: i64,
    pub daily_max_volume_m3: Option<i64>,
    pub return_location: Option<String>,
    pub return_method: Option<String>,
    pub meter_status: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    pub status: String,
    pub submitted_on: Option<NaiveDate>,
    pub approved_on: Option<NaiveDate>,
    pub rejected_on: Option<NaiveDate>,
    pub suspended_on: Option<NaiveDate>,
    pub revoked_on: Option<NaiveDate>,
    pub cancelled_on: Option<NaiveDate>,
    pub renewed_on: Option<NaiveDate>,
    pub last_step_on: Option<NaiveDate>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl PermitRow {
    pub fn stored_status(&self) -> PermitStatus {
        PermitStatus::parse(&self.status).unwrap_or(PermitStatus::Draft)
    }

    /// The status as read on `today`: approved or suspended past `valid_to` is `expired`.
    pub fn status_on(&self, today: NaiveDate) -> PermitStatus {
        match self.stored_status() {
            PermitStatus::Approved | PermitStatus::Suspended if self.valid_to.is_some_and(|to| to < today) => {
                PermitStatus::Expired
            }
            s => s,
        }
    }

    pub fn source(&self) -> SourceType {
        SourceType::parse(&self.source_type).unwrap_or(SourceType::Surface)
    }
}

/// Where the water is taken.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IntakeLocation {
    /// WGS-84 latitude.
    pub lat: Option<f64>,
    /// WGS-84 longitude.
    pub lng: Option<f64>,
    pub address: Option<String>,
}

/// A permit as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a0c4-0000-7000-8000-000000000101", "permit_no": "D520381G2026-0001", "holder_id": "0193a0c4-5f0e-7b61-9a3e-4c1d2e3f4a5b",
    "holder_name": "赤水市化工有限公司", "holder_credit_code": "91350100M000100Y43",
    "zone_id": "0193a0c4-0000-7000-8000-000000000001", "zone_name": "赤水河岩溶地下水区", "source_type": "groundwater_deep", "intake_method": "机井",
    "purpose": "industrial", "intake_location": {"lat": 28.59, "lng": 105.69, "address": "赤水市工业园区"},
    "annual_volume_m3": 500000, "daily_max_volume_m3": 1800, "return_location": "赤水河", "return_method": "经处理达标后排放",
    "meter_status": "ok", "valid_from": "2026-01-01", "valid_to": "2030-12-31", "status": "approved",
    "submitted_on": "2025-12-01", "approved_on": "2025-12-20", "rejected_on": null, "suspended_on": null, "revoked_on": null,
    "cancelled_on": null, "renewed_on": null, "created_at": "2025-11-20T02:00:00Z", "updated_at": "2025-12-20T06:00:00Z", "version": 3
}))]
pub struct Permit {
    pub id: String,
    /// Assigned on approval, e.g. `D520381G2026-0001`.
    pub permit_no: Option<String>,
    /// The water user holding the permit.
    pub holder_id: String,
    /// 持证人名称 — the holder's name, as the registry has it now.
    pub holder_name: String,
    /// 持证人统一社会信用代码 — the holder's unified social credit code.
    pub holder_credit_code: String,
    pub zone_id: Option<String>,
    /// 分区名称 — the zone's name.
    pub zone_name: Option<String>,
    pub source_type: SourceType,
    pub intake_method: Option<String>,
    pub purpose: Purpose,
    pub intake_location: IntakeLocation,
    pub annual_volume_m3: i64,
    pub daily_max_volume_m3: Option<i64>,
    pub return_location: Option<String>,
    pub return_method: Option<String>,
    pub meter_status: MeterStatus,
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_from: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_to: Option<NaiveDate>,
    pub status: PermitStatus,
    #[schema(value_type = Option<String>, format = Date)]
    pub submitted_on: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub approved_on: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub rejected_on: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub suspended_on: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub revoked_on: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub cancelled_on: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub renewed_on: Option<NaiveDate>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

/// What a person reads permits by beside their ids: holders' names and credit codes, zones' names.
#[derive(Debug, Default)]
pub struct Refs {
    holders: HashMap<String, (String, String)>,
    zones: HashMap<String, String>,
}

impl Refs {
    /// The names for `rows`, in two queries whatever their number.
    pub fn load<'a>(conn: &mut DbConn, rows: impl Iterator<Item = &'a PermitRow>) -> QueryResult<Refs> {
        use crate::db::schema::{water_users as w, water_zones as z};
        let (mut holder_ids, mut zone_ids) = (Vec::new(), Vec::new());
        for r in rows {
            holder_ids.push(r.holder_id.clone());
            zone_ids.extend(r.zone_id.clone());
        }
        holder_ids.sort_unstable();
        holder_ids.dedup();
        zone_ids.sort_unstable();
        zone_ids.dedup();
        let holders: Vec<(String, String, String)> = if holder_ids.is_empty() {
            Vec::new()
        } else {
            w::table.filter(w::id.eq_any(&holder_ids)).select((w::id, w::name, w::credit_code)).load(conn)?
        };
        let zones: Vec<(String, String)> = if zone_ids.is_empty() {
            Vec::new()
        } else {
            z::table.filter(z::id.eq_any(&zone_ids)).select((z::id, z::name)).load(conn)?
        };
        Ok(Refs {
            holders: holders.into_iter().map(|(id, name, code)| (id, (name, code))).collect(),
            zones: zones.into_iter().collect(),
        })
    }
}

impl Permit {
    pub fn from_row(r: &PermitRow, today: NaiveDate, refs: &Refs) -> Self {
        let (holder_name, holder_credit_code) = refs.holders.get(&r.holder_id).cloned().unwrap_or_default();
        Self {
            id: r.id.clone(),
            permit_no: r.permit_no.clone(),
            holder_id: r.holder_id.clone(),
            holder_name,
            holder_credit_code,
            zone_id: r.zone_id.clone(),
            zone_name: r.zone_id.as_ref().and_then(|z| refs.zones.get(z).cloned()),
            source_type: r.source(),
            intake_method: r.intake_method.clone(),
            purpose: Purpose::parse(&r.purpose).unwrap_or(Purpose::Other),
            intake_location: IntakeLocation { lat: r.intake_lat, lng: r.intake_lng, address: r.intake_address.clone() },
            annual_volume_m3: r.annual_volume_m3,
            daily_max_volume_m3: r.daily_max_volume_m3,
            return_location: r.return_location.clone(),
            return_method: r.return_method.clone(),
            meter_status: MeterStatus::parse(&r.meter_status).unwrap_or(MeterStatus::None),
            valid_from: r.valid_from,
            valid_to: r.valid_to,
            status: r.status_on(today),
            submitted_on: r.submitted_on,
            approved_on: r.approved_on,
            rejected_on: r.rejected_on,
            suspended_on: r.suspended_on,
            revoked_on: r.revoked_on,
            cancelled_on: r.cancelled_on,
            renewed_on: r.renewed_on,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<PermitRow>> {
    permits::table.find(id).select(PermitRow::as_select()).first(conn).optional()
}

crate::versioned_row!(PermitRow, permits);

impl Entity for PermitRow {
    const ENTITY: EntityType = EntityType::Permit;
}

impl Record for PermitRow {
    type View = Permit;

    fn view(&self, conn: &mut DbConn, now: &Now) -> QueryResult<Permit> {
        let refs = Refs::load(conn, std::iter::once(self))?;
        Ok(Permit::from_row(self, now.today, &refs))
    }
}

/// The calendar's changes to permits (docs/integration.md, "Changes the calendar makes"): every permit approved or
/// suspended whose term ended on a day from `since` (all days when `None`) up to yesterday now reads `expired`, and
/// its zone's allocation no longer counts it. Each is recorded once, as `expired` (the permit) and `permit_expired`
/// (the zone), by the system. Permits first, then zones, each in id order.
pub fn calendar_turns(
    conn: &mut DbConn,
    ctx: &crate::audit::AuditCtx,
    since: Option<NaiveDate>,
) -> Result<usize, crate::error::ApiError> {
    let mut q = permits::table
        .filter(permits::status.eq_any(PermitStatus::in_force_texts()))
        .filter(permits::valid_to.lt(ctx.now.today))
        .into_boxed();
    if let Some(since) = since {
        q = q.filter(permits::valid_to.ge(since));
    }
    let ended: Vec<(String, Option<NaiveDate>, Option<String>)> =
        q.order(permits::id.asc()).select((permits::id, permits::valid_to, permits::zone_id)).load(conn)?;
    let mut recorded = 0;
    let mut zones: std::collections::BTreeMap<String, NaiveDate> = std::collections::BTreeMap::new();
    for (id, valid_to, zone) in ended {
        let Some(turned_on) = valid_to.and_then(|d| d.succ_opt()) else { continue };
        recorded += usize::from(crate::write::turn::<PermitRow>(conn, ctx, &id, "expired", turned_on)?);
        if let Some(zone) = zone {
            let first = zones.entry(zone).or_insert(turned_on);
            *first = (*first).min(turned_on);
        }
    }
    for (zone, turned_on) in zones {
        recorded += usize::from(crate::write::turn::<crate::water_zones::ZoneRow>(
            conn,
            ctx,
            &zone,
            "permit_expired",
            turned_on,
        )?);
    }
    Ok(recorded)
}
