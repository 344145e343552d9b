//! 巡查与整改 — field inspections and their findings, each of which is a rectification (docs/api.md §inspections).
//! Rows, views and the own-records rule here; the rectification rules in `rules`; HTTP in `routes`
//! (`/inspections`, escalation into a case) and `rectification_routes` (`/rectifications`).

pub mod evidence_routes;
pub mod rectification_routes;
pub mod routes;
pub mod rules;

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::EntityType;
use crate::clock::Now;
use crate::db::schema::{cases, inspection_inspectors as ii, inspections, permits, rectifications as rc};
use crate::db::DbConn;
use crate::error::ApiError;
use crate::identity::{Principal, Role};
use crate::policy;
use crate::text_enum;
use crate::write::{Entity, Record};
pub use rules::{FindingType, RectificationStatus};

policy!(
    /// The sections that inspect, 政策法规科 and those who read everything; field inspectors see their own.
    InspectionsRead = [Admin, Leader, WaterResources, WaterSaving, Enforcement, Legal, Inspector, Platform, Auditor]
);
policy!(
    /// Those who inspect: field inspectors (their own inspections), and the sections that run inspections.
    InspectionsWrite = [WaterResources, WaterSaving, Enforcement, Inspector]
);
policy!(
    /// 水政监察大队 opens cases.
    EscalateInspection = [Enforcement]
);

/// The roles that see every inspection; a caller with none of them but `inspector` sees only its own.
const SEE_ALL: &[Role] = &[
    Role::Admin,
    Role::Leader,
    Role::WaterResources,
    Role::WaterSaving,
    Role::Enforcement,
    Role::Legal,
    Role::Platform,
    Role::Auditor,
];

/// Which inspections (and their rectifications) a caller may see and touch.
#[derive(Debug, Clone)]
pub enum Visibility {
    All,
    /// Those the caller (this identity) created or is listed on; any other reads as absent (404).
    Own(String),
}

impl Visibility {
    pub fn of(p: &Principal) -> Self {
        if p.has_any(SEE_ALL) {
            Visibility::All
        } else {
            Visibility::Own(p.scope())
        }
    }

    /// Whether the caller may see inspection `id` (an absent one is not seen either).
    pub fn sees(&self, conn: &mut DbConn, id: &str) -> QueryResult<bool> {
        match self {
            Visibility::All => Ok(true),
            Visibility::Own(me) => diesel::select(diesel::dsl::exists(
                ii::table.filter(ii::inspection_id.eq(id)).filter(ii::account_id.eq(me)),
            ))
            .get_result(conn),
        }
    }

    /// 404 unless the caller sees inspection `id`.
    pub fn require(&self, conn: &mut DbConn, id: &str) -> Result<(), ApiError> {
        if self.sees(conn, id)? {
            Ok(())
        } else {
            Err(ApiError::NotFound)
        }
    }
}

text_enum! {
    /// 巡查类别.
    pub enum Kind {
        WaterPermit = ("water_permit", "取水许可检查"),
        WaterSaving = ("water_saving", "节约用水检查"),
        River = ("river", "河道巡查"),
        SoilConservation = ("soil_conservation", "水土保持检查"),
        Other = ("other", "其他"),
    }
}

/// An inspection as stored (its inspectors and findings are rows of their own).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = inspections, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct InspectionRow {
    pub id: String,
    pub kind: String,
    pub target_water_user_id: String,
    pub permit_id: Option<String>,
    pub inspected_at: NaiveDateTime,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub notes: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

crate::versioned_row!(InspectionRow, inspections);

impl Entity for InspectionRow {
    const ENTITY: EntityType = EntityType::Inspection;
}

impl Record for InspectionRow {
    type View = Inspection;

    fn view(&self, conn: &mut DbConn, now: &Now) -> QueryResult<Inspection> {
        Ok(views(conn, vec![self.clone()], now.today)?.pop().expect("one view per row"))
    }
}

impl InspectionRow {
    /// The inspection's date at the bureau (Asia/Shanghai).
    pub fn date(&self) -> NaiveDate {
        rules::bureau_date(self.inspected_at)
    }
}

/// A rectification (one finding of an inspection) as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = rc, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct RectificationRow {
    pub id: String,
    pub inspection_id: String,
    pub position: i32,
    pub kind: String,
    pub description: String,
    pub rectification_due: NaiveDate,
    pub status: String,
    pub completed_on: Option<NaiveDate>,
    pub completion_note: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

crate::versioned_row!(RectificationRow, rc);

impl Entity for RectificationRow {
    const ENTITY: EntityType = EntityType::Rectification;
}

impl Record for RectificationRow {
    type View = Rectification;

    fn view(&self, conn: &mut DbConn, now: &Now) -> QueryResult<Rectification> {
        Ok(rectification_views(conn, vec![self.clone()], now.today)?.pop().expect("one view per row"))
    }
}

impl RectificationRow {
    /// Its status as read on `today`: an open one past its due date reads `overdue`.
    pub fn status_on(&self, today: NaiveDate) -> RectificationStatus {
        rules::status_on(&self.status, self.rectification_due, today)
    }
}

/// WGS-84 coordinates where the inspection took place.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// Latitude, −90..=90.
    pub lat: f64,
    /// Longitude, −180..=180.
    pub lng: f64,
}

/// A finding as its inspection shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    /// The rectification this finding is (`/rectifications/{id}`).
    pub rectification_id: String,
    #[serde(rename = "type")]
    pub kind: FindingType,
    pub description: String,
    #[schema(value_type = String, format = Date)]
    pub rectification_due: NaiveDate,
    pub status: RectificationStatus,
    #[schema(value_type = Option<String>, format = Date)]
    pub completed_on: Option<NaiveDate>,
}

/// 巡查记录.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0193a0c4-0000-7000-8000-000000000701", "kind": "water_permit",
    "target_water_user_id": "0193a0c4-5f0e-7b61-9a3e-4c1d2e3f4a5b", "target_name": "赤水市化工有限公司",
    "target_credit_code": "91350100M000100Y43", "permit_id": null, "permit_no": null,
    "inspected_at": "2026-11-20T02:30:00Z", "location": {"lat": 28.5901, "lng": 105.6932},
    "inspector_ids": ["0193a0c4-0000-7000-8000-000000000010"], "created_by": "0193a0c4-0000-7000-8000-000000000010",
    "notes": "现场检查取水口及计量设施",
    "findings": [{"rectification_id": "0193a0c4-0000-7000-8000-000000000702", "type": "meter_not_working",
        "description": "取水计量设施损坏，读数停止", "rectification_due": "2026-12-20", "status": "open", "completed_on": null}],
    "open_findings": 1, "case_id": null,
    "created_at": "2026-11-20T08:00:00Z", "updated_at": "2026-11-20T08:00:00Z", "version": 1}))]
pub struct Inspection {
    pub id: String,
    pub kind: Kind,
    /// The inspected water user.
    pub target_water_user_id: String,
    pub target_name: String,
    pub target_credit_code: String,
    pub permit_id: Option<String>,
    /// The permit's number, once it has one.
    pub permit_no: Option<String>,
    /// When the inspection took place (RFC 3339 UTC).
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub inspected_at: NaiveDateTime,
    pub location: Option<Location>,
    /// The inspectors (account ids), the creator first.
    pub inspector_ids: Vec<String>,
    /// Who entered it.
    pub created_by: String,
    pub notes: Option<String>,
    /// The findings, in the order they were recorded; each is a rectification.
    pub findings: Vec<Finding>,
    /// How many findings are not rectified yet (open or overdue).
    pub open_findings: i64,
    /// The enforcement case opened from this inspection, if escalated.
    pub case_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

/// 整改事项.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0193a0c4-0000-7000-8000-000000000702", "inspection_id": "0193a0c4-0000-7000-8000-000000000701",
    "position": 1, "type": "meter_not_working", "description": "取水计量设施损坏，读数停止", "rectification_due": "2026-12-20",
    "status": "open", "completed_on": null, "completion_note": null,
    "target_water_user_id": "0193a0c4-5f0e-7b61-9a3e-4c1d2e3f4a5b", "target_name": "赤水市化工有限公司",
    "created_at": "2026-11-20T08:00:00Z", "updated_at": "2026-11-20T08:00:00Z", "version": 1}))]
pub struct Rectification {
    pub id: String,
    pub inspection_id: String,
    /// The finding's place in its inspection (1, 2, …).
    pub position: i32,
    #[serde(rename = "type")]
    pub kind: FindingType,
    pub description: String,
    #[schema(value_type = String, format = Date)]
    pub rectification_due: NaiveDate,
    /// `open`, `rectified`, or `overdue` (open past its due date, as read today).
    pub status: RectificationStatus,
    #[schema(value_type = Option<String>, format = Date)]
    pub completed_on: Option<NaiveDate>,
    pub completion_note: Option<String>,
    /// The inspected water user.
    pub target_water_user_id: String,
    pub target_name: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<InspectionRow>> {
    inspections::table.find(id).select(InspectionRow::as_select()).first(conn).optional()
}

pub fn find_rectification(conn: &mut DbConn, id: &str) -> QueryResult<Option<RectificationRow>> {
    rc::table.find(id).select(RectificationRow::as_select()).first(conn).optional()
}

/// The inspectors of inspection `id`, in their order.
pub fn inspectors_of(conn: &mut DbConn, id: &str) -> QueryResult<Vec<String>> {
    ii::table.filter(ii::inspection_id.eq(id)).order(ii::position.asc()).select(ii::account_id).load(conn)
}

/// Replaces the inspectors of inspection `id` with `ids` (in this order).
pub fn set_inspectors(conn: &mut DbConn, id: &str, ids: &[String]) -> QueryResult<()> {
    diesel::delete(ii::table.filter(ii::inspection_id.eq(id))).execute(conn)?;
    let rows: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, a)| (ii::inspection_id.eq(id), ii::account_id.eq(a), ii::position.eq(i as i32 + 1)))
        .collect();
    crate::insert_all!(conn, ii::table, rows).map(|_| ())
}

/// The findings of inspection `id`, in order.
pub fn findings_of(conn: &mut DbConn, id: &str) -> QueryResult<Vec<RectificationRow>> {
    rc::table
        .filter(rc::inspection_id.eq(id))
        .order(rc::position.asc())
        .select(RectificationRow::as_select())
        .load(conn)
}

/// Names and credit codes of water users by id.
fn names(conn: &mut DbConn, ids: Vec<String>) -> QueryResult<HashMap<String, (String, String)>> {
    crate::planned_use::water_user_names(conn, ids)
}

/// The views of `rows`, with what they refer to read in a few queries for all of them.
pub fn views(conn: &mut DbConn, rows: Vec<InspectionRow>, today: NaiveDate) -> QueryResult<Vec<Inspection>> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let names = names(conn, rows.iter().map(|r| r.target_water_user_id.clone()).collect())?;
    let permit_ids: Vec<&str> = rows.iter().filter_map(|r| r.permit_id.as_deref()).collect();
    let permit_nos: HashMap<String, Option<String>> = if permit_ids.is_empty() {
        HashMap::new()
    } else {
        permits::table
            .filter(permits::id.eq_any(&permit_ids))
            .select((permits::id, permits::permit_no))
            .load::<(String, Option<String>)>(conn)?
            .into_iter()
            .collect()
    };
    let mut inspectors: HashMap<String, Vec<String>> = HashMap::new();
    for (inspection, account) in ii::table
        .filter(ii::inspection_id.eq_any(&ids))
        .order((ii::inspection_id.asc(), ii::position.asc()))
        .select((ii::inspection_id, ii::account_id))
        .load::<(String, String)>(conn)?
    {
        inspectors.entry(inspection).or_default().push(account);
    }
    let mut findings: HashMap<String, Vec<RectificationRow>> = HashMap::new();
    for f in rc::table
        .filter(rc::inspection_id.eq_any(&ids))
        .order((rc::inspection_id.asc(), rc::position.asc()))
        .select(RectificationRow::as_select())
        .load(conn)?
    {
        findings.entry(f.inspection_id.clone()).or_default().push(f);
    }
    let case_of: HashMap<String, String> = cases::table
        .filter(cases::source_inspection_id.eq_any(&ids))
        .select((cases::source_inspection_id.assume_not_null(), cases::id))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .map(|r| {
            let (target_name, target_credit_code) = names.get(&r.target_water_user_id).cloned().unwrap_or_default();
            let findings: Vec<Finding> = findings
                .remove(&r.id)
                .unwrap_or_default()
                .into_iter()
                .map(|f| Finding {
                    status: f.status_on(today),
                    rectification_id: f.id,
                    kind: FindingType::parse(&f.kind).unwrap_or(FindingType::Other),
                    description: f.description,
                    rectification_due: f.rectification_due,
                    completed_on: f.completed_on,
                })
                .collect();
            Inspection {
                kind: Kind::parse(&r.kind).unwrap_or(Kind::Other),
                target_name,
                target_credit_code,
                permit_no: r.permit_id.as_ref().and_then(|p| permit_nos.get(p).cloned().flatten()),
                location: r.lat.zip(r.lng).map(|(lat, lng)| Location { lat, lng }),
                inspector_ids: inspectors.remove(&r.id).unwrap_or_default(),
                open_findings: findings.iter().filter(|f| f.status != RectificationStatus::Rectified).count() as i64,
                findings,
                case_id: case_of.get(&r.id).cloned(),
                id: r.id,
                target_water_user_id: r.target_water_user_id,
                permit_id: r.permit_id,
                inspected_at: r.inspected_at,
                created_by: r.created_by,
                notes: r.notes,
                created_at: r.created_at,
                updated_at: r.updated_at,
                version: r.version,
            }
        })
        .collect())
}

/// The views of rectification rows, with their inspection's target.
pub fn rectification_views(
    conn: &mut DbConn,
    rows: Vec<RectificationRow>,
    today: NaiveDate,
) -> QueryResult<Vec<Rectification>> {
    use crate::db::schema::water_users as wu;
    let ids: Vec<&str> = rows.iter().map(|r| r.inspection_id.as_str()).collect();
    // Each inspection's target and its name, in one query (a list page is read often).
    let targets: HashMap<String, (String, String)> = inspections::table
        .inner_join(wu::table.on(wu::id.eq(inspections::target_water_user_id)))
        .filter(inspections::id.eq_any(&ids))
        .select((inspections::id, inspections::target_water_user_id, wu::name))
        .load::<(String, String, String)>(conn)?
        .into_iter()
        .map(|(inspection, target, name)| (inspection, (target, name)))
        .collect();
    Ok(rows
        .into_iter()
        .map(|r| {
            let (target, target_name) = targets.get(&r.inspection_id).cloned().unwrap_or_default();
            Rectification {
                status: r.status_on(today),
                kind: FindingType::parse(&r.kind).unwrap_or(FindingType::Other),
                id: r.id,
                inspection_id: r.inspection_id,
                position: r.position,
                description: r.description,
                rectification_due: r.rectification_due,
                completed_on: r.completed_on,
                completion_note: r.completion_note,
                target_water_user_id: target,
                target_name,
                created_at: r.created_at,
                updated_at: r.updated_at,
                version: r.version,
            }
        })
        .collect())
}

/// The calendar's changes to rectifications (docs/integration.md, "Changes the calendar makes"): every open one whose
/// `rectification_due` was a day from `since` (all days when `None`) up to yesterday now reads `overdue`, and so does
/// the finding in its inspection's view. Recorded once each by the system (`overdue`, `finding_overdue`), locking
/// the inspection before its rectifications as completing a rectification does.
pub fn calendar_turns(
    conn: &mut DbConn,
    ctx: &crate::audit::AuditCtx,
    since: Option<NaiveDate>,
) -> Result<usize, crate::error::ApiError> {
    use crate::db::schema::rectifications as rc;
    let mut q = rc::table
        .filter(rc::status.eq(rules::RectificationStatus::Open.as_str()))
        .filter(rc::rectification_due.lt(ctx.now.today))
        .into_boxed();
    if let Some(since) = since {
        q = q.filter(rc::rectification_due.ge(since));
    }
    let due: Vec<(String, String, NaiveDate)> = q
        .order((rc::inspection_id.asc(), rc::id.asc()))
        .select((rc::inspection_id, rc::id, rc::rectification_due))
        .load(conn)?;
    let mut recorded = 0;
    for group in due.chunk_by(|a, b| a.0 == b.0) {
        let Some(first) = group.iter().filter_map(|(_, _, d)| d.succ_opt()).min() else { continue };
        let inspection = &group[0].0;
        recorded += usize::from(crate::write::turn::<InspectionRow>(conn, ctx, inspection, "finding_overdue", first)?);
        for (_, id, due) in group {
            let Some(turned_on) = due.succ_opt() else { continue };
            recorded += usize::from(crate::write::turn::<RectificationRow>(conn, ctx, id, "overdue", turned_on)?);
        }
    }
    Ok(recorded)
}
