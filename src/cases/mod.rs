//! 行政处罚案件 — enforcement cases (docs/api.md §cases). Here the record a case starts as: a clue (线索), opened
//! from an escalated inspection (`POST /inspections/{id}/escalate`), with its party and the findings carried
//! over; `routes` reads them. The later legal stages build on this record.

pub mod routes;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::EntityType;
use crate::clock::Now;
use crate::db::schema::cases;
use crate::db::DbConn;
use crate::error::{ApiError, ErrorCode};
use crate::messages::Msg;
use crate::policy;
use crate::text_enum;
use crate::write::{Entity, Record};

policy!(
    /// 水政监察大队, 政策法规科 (legal review, publication), and those who read everything.
    CasesRead = [Admin, Leader, Enforcement, Legal, Platform, Auditor]
);

text_enum! {
    /// 案件环节.
    pub enum Stage {
        Clue = ("clue", "线索"),
        Filed = ("filed", "立案"),
        Investigating = ("investigating", "调查取证"),
        Notified = ("notified", "告知"),
        Hearing = ("hearing", "听证"),
        LegalReview = ("legal_review", "法制审核"),
        Decided = ("decided", "作出处罚决定"),
        NoPenalty = ("no_penalty", "不予处罚"),
        Transferred = ("transferred", "移送"),
        Served = ("served", "送达"),
        Executing = ("executing", "执行"),
        Closed = ("closed", "结案"),
    }
}

text_enum! {
    /// 违法行为类型.
    pub enum ViolationType {
        UnlicensedAbstraction = ("unlicensed_abstraction", "未经批准擅自取水"),
        OverPermitAbstraction = ("over_permit_abstraction", "未依照批准的取水许可规定条件取水"),
        NoMeter = ("no_meter", "未安装计量设施"),
        MeterTampering = ("meter_tampering", "计量设施不合格或者运行不正常"),
        FloodObstruction = ("flood_obstruction", "妨碍行洪"),
        IllegalSandMining = ("illegal_sand_mining", "非法采砂"),
        SoilConservation = ("soil_conservation", "违反水土保持规定"),
        Other = ("other", "其他"),
    }
}

text_enum! {
    /// 当事人类型.
    pub enum PartyKind {
        Organisation = ("organisation", "单位"),
        Person = ("person", "个人"),
    }
}

/// A case as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = cases, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct CaseRow {
    pub id: String,
    pub case_no: Option<String>,
    pub stage: String,
    pub water_user_id: Option<String>,
    pub party_name: String,
    pub party_id_number: Option<String>,
    pub party_kind: String,
    pub violation_type: String,
    pub facts: String,
    pub legal_basis: Option<String>,
    pub source_inspection_id: Option<String>,
    /// JSON array of [`CarriedFinding`].
    pub findings: String,
    pub clue_on: NaiveDate,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

crate::versioned_row!(CaseRow, cases);

impl Entity for CaseRow {
    const ENTITY: EntityType = EntityType::Case;
    fn duplicate() -> ApiError {
        ApiError::conflict(ErrorCode::AlreadyEscalated, Msg::AlreadyEscalated)
    }
}

impl Record for CaseRow {
    type View = Case;

    fn view(&self, _: &mut DbConn, _: &Now) -> QueryResult<Case> {
        Ok(Case::new(self))
    }
}

/// A finding of the inspection a case came from, as it stood when the case was opened.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CarriedFinding {
    /// The finding's type (see rectifications).
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    #[schema(value_type = String, format = Date)]
    pub rectification_due: NaiveDate,
}

/// 行政处罚案件.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0193a0c4-0000-7000-8000-000000000801", "case_no": null, "stage": "clue",
    "water_user_id": "0193a0c4-5f0e-7b61-9a3e-4c1d2e3f4a5b", "party_name": "赤水市化工有限公司",
    "party_id_number": "91350100M000100Y43", "party_kind": "organisation", "violation_type": "unlicensed_abstraction",
    "facts": "巡查发现：1. 未办理取水许可擅自从赤水河取水。", "legal_basis": null,
    "source_inspection_id": "0193a0c4-0000-7000-8000-000000000701",
    "findings": [{"type": "unlicensed_abstraction", "description": "未办理取水许可擅自从赤水河取水", "rectification_due": "2026-12-15"}],
    "clue_on": "2026-11-20", "created_at": "2026-11-20T08:00:00Z", "updated_at": "2026-11-20T08:00:00Z", "version": 1}))]
pub struct Case {
    pub id: String,
    /// 案号, assigned when the case is filed.
    pub case_no: Option<String>,
    pub stage: Stage,
    /// The party when it is a water user of the registry (always an organisation).
    pub water_user_id: Option<String>,
    pub party_name: String,
    /// 统一社会信用代码 of an organisation, or a person's identity number.
    pub party_id_number: Option<String>,
    pub party_kind: PartyKind,
    pub violation_type: ViolationType,
    pub facts: String,
    pub legal_basis: Option<String>,
    /// The inspection escalated into this case.
    pub source_inspection_id: Option<String>,
    /// The inspection's findings, as they stood when the case was opened.
    pub findings: Vec<CarriedFinding>,
    /// The date of the clue (线索登记日期).
    #[schema(value_type = String, format = Date)]
    pub clue_on: NaiveDate,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl Case {
    pub fn new(r: &CaseRow) -> Self {
        Self {
            id: r.id.clone(),
            case_no: r.case_no.clone(),
            stage: Stage::parse(&r.stage).unwrap_or(Stage::Clue),
            water_user_id: r.water_user_id.clone(),
            party_name: r.party_name.clone(),
            party_id_number: r.party_id_number.clone(),
            party_kind: PartyKind::parse(&r.party_kind).unwrap_or(PartyKind::Organisation),
            violation_type: ViolationType::parse(&r.violation_type).unwrap_or(ViolationType::Other),
            facts: r.facts.clone(),
            legal_basis: r.legal_basis.clone(),
            source_inspection_id: r.source_inspection_id.clone(),
            findings: serde_json::from_str(&r.findings).unwrap_or_default(),
            clue_on: r.clue_on,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<CaseRow>> {
    cases::table.find(id).select(CaseRow::as_select()).first(conn).optional()
}

/// The case opened from inspection `inspection_id`, if any.
pub fn of_inspection(conn: &mut DbConn, inspection_id: &str) -> QueryResult<Option<String>> {
    cases::table.filter(cases::source_inspection_id.eq(inspection_id)).select(cases::id).first(conn).optional()
}

/// The clue date of the case opened from inspection `inspection_id`, if any.
pub fn clue_on_of_inspection(conn: &mut DbConn, inspection_id: &str) -> QueryResult<Option<NaiveDate>> {
    cases::table.filter(cases::source_inspection_id.eq(inspection_id)).select(cases::clue_on).first(conn).optional()
}
