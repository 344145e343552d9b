//! 行政处罚案件 — administrative penalty cases (docs/api.md, "Enforcement cases"; docs/domain.md, "Administrative
//! penalties"). A case starts as a clue (线索), entered directly or opened from an escalated inspection
//! (`POST /inspections/{id}/escalate`) with its party and the findings carried over, and goes through the legal
//! stages of `rules` (the stage × action table): filing (case number), investigation, notice of the proposed
//! penalty, hearing, legal review, decision (decision number, publication deadline on the bureau's calendar),
//! service, execution (fine payments and their late fee), closing. `routes` lists, reads and acts; `documents`
//! prints the decision and the file cover and gives the public record (双公示); `evidence_routes` keeps the
//! evidence. Every step is audited and in the change feed, and `GET /cases/{id}/history` is the whole process.

pub mod documents;
pub mod evidence_routes;
pub mod routes;
pub mod rules;

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::EntityType;
use crate::clock::Now;
use crate::db::schema::cases;
use crate::db::DbConn;
use crate::domain::late_fee;
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

/// A case as stored. The dates and figures lists filter and sort on are columns; the rest of each step is
/// [`Process`] (JSON in `process`).
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
    pub filed_on: Option<NaiveDate>,
    pub decision_due: Option<NaiveDate>,
    pub notified_on: Option<NaiveDate>,
    pub proposed_fine_fen: Option<i64>,
    pub statement_waived: bool,
    pub outcome: Option<String>,
    pub fine_fen: Option<i64>,
    pub decision_no: Option<String>,
    pub decision_date: Option<NaiveDate>,
    pub publication_due: Option<NaiveDate>,
    pub published_on: Option<NaiveDate>,
    pub served_on: Option<NaiveDate>,
    pub closed_on: Option<NaiveDate>,
    pub last_step_on: Option<NaiveDate>,
    /// JSON of [`Process`].
    pub process: String,
}

crate::versioned_row!(CaseRow, cases);

impl Entity for CaseRow {
    const ENTITY: EntityType = EntityType::Case;
    fn duplicate() -> ApiError {
        ApiError::conflict(ErrorCode::Conflict, Msg::CaseNumberTaken)
    }
}

impl Record for CaseRow {
    type View = Case;

    fn view(&self, conn: &mut DbConn, now: &Now) -> QueryResult<Case> {
        Ok(views(conn, vec![self.clone()], now.today)?.remove(0))
    }
}

/// The party of a case.
#[derive(Debug, Clone)]
pub struct Party {
    pub water_user_id: Option<String>,
    pub name: String,
    pub id_number: Option<String>,
    pub kind: PartyKind,
}

impl CaseRow {
    /// A new case in stage `clue`.
    #[allow(clippy::too_many_arguments)]
    pub fn clue(
        party: Party,
        violation_type: ViolationType,
        facts: String,
        legal_basis: Option<String>,
        source_inspection_id: Option<String>,
        findings: &[CarriedFinding],
        clue_on: NaiveDate,
        created_by: String,
        at: NaiveDateTime,
    ) -> CaseRow {
        CaseRow {
            id: crate::domain::new_id(),
            case_no: None,
            stage: Stage::Clue.as_str().into(),
            water_user_id: party.water_user_id,
            party_name: party.name,
            party_id_number: party.id_number,
            party_kind: party.kind.as_str().into(),
            violation_type: violation_type.as_str().into(),
            facts,
            legal_basis,
            source_inspection_id,
            findings: serde_json::to_string(findings).unwrap_or_else(|_| "[]".into()),
            clue_on,
            created_by,
            created_at: at,
            updated_at: at,
            version: 1,
            filed_on: None,
            decision_due: None,
            notified_on: None,
            proposed_fine_fen: None,
            statement_waived: false,
            outcome: None,
            fine_fen: None,
            decision_no: None,
            decision_date: None,
            publication_due: None,
            published_on: None,
            served_on: None,
            closed_on: None,
            last_step_on: Some(clue_on),
            process: "{}".into(),
        }
    }

    pub fn stage(&self) -> Stage {
        Stage::parse(&self.stage).unwrap_or(Stage::Clue)
    }

    pub fn party_kind(&self) -> PartyKind {
        PartyKind::parse(&self.party_kind).unwrap_or(PartyKind::Organisation)
    }

    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome.as_deref().and_then(Outcome::parse)
    }

    pub fn process(&self) -> Process {
        serde_json::from_str(&self.process).unwrap_or_default()
    }

    pub fn set_process(&mut self, p: &Process) {
        self.process = serde_json::to_string(p).unwrap_or_else(|_| "{}".into());
    }

    /// The last day to pay the fine without late fee: 15 days after service (XCF §67).
    pub fn payment_due(&self) -> Option<NaiveDate> {
        self.served_on.filter(|_| self.fine_fen.unwrap_or(0) > 0).map(|s| s + TimeDelta::days(rules::PAYMENT_DAYS))
    }

    /// What decides the late fee of the fine: 3 % of the unpaid fine a day after the payment due date, at most the
    /// fine (XCF §72).
    pub fn fine_terms(&self) -> late_fee::Terms {
        let fine = self.fine_fen.unwrap_or(0);
        late_fee::Terms {
            principal_fen: fine,
            due: self.payment_due(),
            daily_rate: rules::FINE_LATE_RATE,
            waived_on: None,
            cap_fen: Some(fine),
        }
    }
}

text_enum! {
    /// 处理结果.
    pub enum Outcome {
        Penalty = ("penalty", "给予行政处罚"),
        NoPenalty = ("no_penalty", "不予行政处罚"),
        Transfer = ("transfer", "移送"),
    }
}

text_enum! {
    /// 处罚种类 (行政处罚法 §9, as they apply to water matters).
    pub enum PenaltyType {
        Warning = ("warning", "警告"),
        Fine = ("fine", "罚款"),
        Confiscation = ("confiscation", "没收违法所得、没收非法财物"),
        Suspension = ("suspension", "责令停产停业"),
        Revocation = ("revocation", "吊销许可证件"),
    }
}

text_enum! {
    /// 法制审核结论.
    pub enum ReviewStatus {
        Pending = ("pending", "审核中"),
        Approved = ("approved", "审核通过"),
        Returned = ("returned", "退回补充调查"),
    }
}

/// 法制审核.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LegalReview {
    pub status: ReviewStatus,
    #[schema(value_type = String, format = Date)]
    pub submitted_on: NaiveDate,
    #[schema(value_type = Option<String>, format = Date)]
    pub reviewed_on: Option<NaiveDate>,
    /// 审核意见.
    pub opinion: Option<String>,
    /// Who reviewed it (政策法规科).
    pub reviewed_by: Option<String>,
}

/// The parts of the steps that are not list columns.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Process {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub investigation_started_on: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hearing_requested_on: Option<NaiveDate>,
    /// Whether the notice offered a hearing (the proposed fine reached the threshold then in force).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hearing_offered: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_review: Option<LegalReview>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub penalty_types: Vec<PenaltyType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub penalty_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication_url: Option<String>,
    #[serde(default)]
    pub fine_paid_fen: i64,
    #[serde(default)]
    pub late_fee_paid_fen: i64,
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

/// 行政处罚案件: the party, the facts, and every stage's date and figures; deadlines and what is overdue are read
/// as of today.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0193a0c4-0000-7000-8000-000000000801", "case_no": "清水罚〔2026〕9号", "stage": "decided",
    "water_user_id": "0193a0c4-5f0e-7b61-9a3e-4c1d2e3f4a5b", "party_name": "赤水市化工有限公司",
    "party_id_number": "91350100M000100Y43", "party_kind": "organisation", "violation_type": "unlicensed_abstraction",
    "facts": "巡查发现：1. 未办理取水许可擅自从赤水河取水。", "legal_basis": "《中华人民共和国水法》第六十九条",
    "source_inspection_id": "0193a0c4-0000-7000-8000-000000000701",
    "findings": [{"type": "unlicensed_abstraction", "description": "未办理取水许可擅自从赤水河取水", "rectification_due": "2026-12-15"}],
    "clue_on": "2026-09-01", "officer_ids": ["zhifa01", "zhifa02"], "filed_on": "2026-09-02", "decision_due": "2026-12-01",
    "decision_overdue": false, "investigation_started_on": "2026-09-03", "notified_on": "2026-10-08",
    "proposed_fine_fen": 5000000, "statement_waived": false, "statement_deadline": "2026-10-13",
    "hearing_requested_on": null, "legal_review": null, "outcome": "penalty", "penalty_types": ["fine"],
    "penalty_content": "罚款人民币伍万元整", "fine_fen": 5000000, "decision_no": "清水罚决〔2026〕3号",
    "decision_date": "2026-10-20", "decided_by": "juzhang", "extension_reason": null, "publication_due": "2026-10-29",
    "published_on": null, "publication_url": null, "publication_overdue": false, "served_on": null, "payment_due": null,
    "fine_paid_fen": 0, "late_fee_paid_fen": 0, "fine_outstanding_fen": 5000000, "late_fee_due_fen": 0,
    "closed_on": null, "evidence_count": 3, "created_at": "2026-09-01T08:00:00Z", "updated_at": "2026-10-20T08:00:00Z", "version": 9}))]
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
    /// 承办人: account ids of the officers (at least two from the investigation on).
    pub officer_ids: Vec<String>,
    /// 立案日期.
    #[schema(value_type = Option<String>, format = Date)]
    pub filed_on: Option<NaiveDate>,
    /// 作出决定期限: filed + 90 days (XCF §60).
    #[schema(value_type = Option<String>, format = Date)]
    pub decision_due: Option<NaiveDate>,
    /// Not decided and past `decision_due` (as of today).
    pub decision_overdue: bool,
    #[schema(value_type = Option<String>, format = Date)]
    pub investigation_started_on: Option<NaiveDate>,
    /// 告知日期 (the notice of the proposed penalty).
    #[schema(value_type = Option<String>, format = Date)]
    pub notified_on: Option<NaiveDate>,
    /// 拟处罚款.
    pub proposed_fine_fen: Option<i64>,
    /// The party waived the statement period.
    pub statement_waived: bool,
    /// Last day of the statement and hearing-request period: notice + 5 days; a decision comes after it unless
    /// waived.
    #[schema(value_type = Option<String>, format = Date)]
    pub statement_deadline: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub hearing_requested_on: Option<NaiveDate>,
    pub legal_review: Option<LegalReview>,
    pub outcome: Option<Outcome>,
    pub penalty_types: Vec<PenaltyType>,
    /// 处罚内容, as the decision states it.
    pub penalty_content: Option<String>,
    /// 罚款.
    pub fine_fen: Option<i64>,
    /// 决定书文号.
    pub decision_no: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub decision_date: Option<NaiveDate>,
    /// The leader who signed the decision.
    pub decided_by: Option<String>,
    /// Why the decision came after `decision_due`.
    pub extension_reason: Option<String>,
    /// 公示期限: decision + 7 working days on the bureau's calendar.
    #[schema(value_type = Option<String>, format = Date)]
    pub publication_due: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub published_on: Option<NaiveDate>,
    /// Where the public record was published.
    pub publication_url: Option<String>,
    /// A penalty decided, not published, past `publication_due` (as of today).
    pub publication_overdue: bool,
    #[schema(value_type = Option<String>, format = Date)]
    pub served_on: Option<NaiveDate>,
    /// Last day to pay the fine: service + 15 days (XCF §67).
    #[schema(value_type = Option<String>, format = Date)]
    pub payment_due: Option<NaiveDate>,
    pub fine_paid_fen: i64,
    pub late_fee_paid_fen: i64,
    /// Fine not yet paid.
    pub fine_outstanding_fen: i64,
    /// 加处罚款 due today and not yet paid: 3 % of the unpaid fine a day after `payment_due`, at most the fine.
    pub late_fee_due_fen: i64,
    #[schema(value_type = Option<String>, format = Date)]
    pub closed_on: Option<NaiveDate>,
    /// Evidence items kept with the case (`GET …/evidence`).
    pub evidence_count: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl Case {
    pub fn new(
        r: &CaseRow,
        officer_ids: Vec<String>,
        paid: &[late_fee::Paid],
        evidence_count: i64,
        today: NaiveDate,
    ) -> Self {
        let p = r.process();
        let stage = r.stage();
        let standing = late_fee::standing(&r.fine_terms(), paid, today);
        let fine_outstanding = (r.fine_fen.unwrap_or(0) - p.fine_paid_fen).max(0);
        let late_due = standing.late_fee_outstanding_fen;
        Self {
            id: r.id.clone(),
            case_no: r.case_no.clone(),
            stage,
            water_user_id: r.water_user_id.clone(),
            party_name: r.party_name.clone(),
            party_id_number: r.party_id_number.clone(),
            party_kind: r.party_kind(),
            violation_type: ViolationType::parse(&r.violation_type).unwrap_or(ViolationType::Other),
            facts: r.facts.clone(),
            legal_basis: r.legal_basis.clone(),
            source_inspection_id: r.source_inspection_id.clone(),
            findings: serde_json::from_str(&r.findings).unwrap_or_default(),
            clue_on: r.clue_on,
            officer_ids,
            filed_on: r.filed_on,
            decision_due: r.decision_due,
            decision_overdue: r.decision_date.is_none()
                && rules::UNDECIDED.contains(&stage)
                && r.decision_due.is_some_and(|d| today > d),
            investigation_started_on: p.investigation_started_on,
            notified_on: r.notified_on,
            proposed_fine_fen: r.proposed_fine_fen,
            statement_waived: r.statement_waived,
            statement_deadline: r.notified_on.map(rules::statement_deadline),
            hearing_requested_on: p.hearing_requested_on,
            legal_review: p.legal_review,
            outcome: r.outcome(),
            penalty_types: p.penalty_types,
            penalty_content: p.penalty_content,
            fine_fen: r.fine_fen,
            decision_no: r.decision_no.clone(),
            decision_date: r.decision_date,
            decided_by: p.decided_by,
            extension_reason: p.extension_reason,
            publication_due: r.publication_due,
            published_on: r.published_on,
            publication_url: p.publication_url,
            publication_overdue: r.published_on.is_none() && r.publication_due.is_some_and(|d| today > d),
            served_on: r.served_on,
            payment_due: r.payment_due(),
            fine_paid_fen: p.fine_paid_fen,
            late_fee_paid_fen: p.late_fee_paid_fen,
            fine_outstanding_fen: fine_outstanding,
            late_fee_due_fen: late_due,
            closed_on: r.closed_on,
            evidence_count,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

/// The payments of a case, in the order made.
pub fn payments_of(conn: &mut DbConn, id: &str) -> QueryResult<Vec<late_fee::Paid>> {
    use crate::db::schema::case_payments as pm;
    let rows: Vec<(NaiveDate, i64, i64)> = pm::table
        .filter(pm::case_id.eq(id))
        .order((pm::paid_on, pm::created_at, pm::id))
        .select((pm::paid_on, pm::fine_part_fen, pm::late_fee_fen))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(on, principal_fen, late_fee_fen)| late_fee::Paid { on, principal_fen, late_fee_fen })
        .collect())
}

/// The views of `rows`, their officers, payments and evidence counts read in one query each.
pub fn views(conn: &mut DbConn, rows: Vec<CaseRow>, today: NaiveDate) -> QueryResult<Vec<Case>> {
    use crate::db::schema::{case_officers as o, case_payments as pm, evidence as ev};
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let served: Vec<&str> = rows.iter().filter(|r| r.served_on.is_some()).map(|r| r.id.as_str()).collect();
    let mut paid: HashMap<String, Vec<late_fee::Paid>> = HashMap::new();
    if !served.is_empty() {
        let rows: Vec<(String, NaiveDate, i64, i64)> = pm::table
            .filter(pm::case_id.eq_any(&served))
            .order((pm::case_id, pm::paid_on, pm::created_at, pm::id))
            .select((pm::case_id, pm::paid_on, pm::fine_part_fen, pm::late_fee_fen))
            .load(conn)?;
        for (case, on, principal_fen, late_fee_fen) in rows {
            paid.entry(case).or_default().push(late_fee::Paid { on, principal_fen, late_fee_fen });
        }
    }
    let officers: Vec<(String, String)> = o::table
        .filter(o::case_id.eq_any(&ids))
        .order((o::case_id, o::position))
        .select((o::case_id, o::account_id))
        .load(conn)?;
    let counts: Vec<(Option<String>, i64)> = ev::table
        .filter(ev::case_id.eq_any(&ids))
        .group_by(ev::case_id)
        .select((ev::case_id, diesel::dsl::count_star()))
        .load(conn)?;
    let mut by_case: HashMap<&str, Vec<String>> = HashMap::new();
    for (case, account) in &officers {
        by_case.entry(case.as_str()).or_default().push(account.clone());
    }
    let counts: HashMap<String, i64> = counts.into_iter().filter_map(|(c, n)| c.map(|c| (c, n))).collect();
    Ok(rows
        .iter()
        .map(|r| {
            let officers = by_case.remove(r.id.as_str()).unwrap_or_default();
            let paid = paid.get(&r.id).map(Vec::as_slice).unwrap_or_default();
            Case::new(r, officers, paid, counts.get(&r.id).copied().unwrap_or(0), today)
        })
        .collect())
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

/// The calendar's changes to cases (docs/integration.md, "Changes the calendar makes"): an undecided case whose
/// `decision_due`, or an unpublished penalty decision whose `publication_due`, was a day from `since` (all days when
/// `None`) up to yesterday now reads overdue. Recorded once each by the system (`decision_overdue`,
/// `publication_overdue`), in id order.
pub fn calendar_turns(
    conn: &mut DbConn,
    ctx: &crate::audit::AuditCtx,
    since: Option<NaiveDate>,
) -> Result<usize, crate::error::ApiError> {
    let today = ctx.now.today;
    let since = since.unwrap_or(NaiveDate::MIN);
    let undecided: Vec<&str> = rules::UNDECIDED.iter().map(|s| s.as_str()).collect();
    let mut due: Vec<(String, NaiveDate, &str)> = Vec::new();
    let decisions: Vec<(String, Option<NaiveDate>)> = cases::table
        .filter(cases::stage.eq_any(&undecided))
        .filter(cases::decision_due.lt(today))
        .filter(cases::decision_due.ge(since))
        .select((cases::id, cases::decision_due))
        .load(conn)?;
    due.extend(decisions.into_iter().filter_map(|(id, d)| Some((id, d?, "decision_overdue"))));
    let publications: Vec<(String, Option<NaiveDate>)> = cases::table
        .filter(cases::published_on.is_null())
        .filter(cases::publication_due.lt(today))
        .filter(cases::publication_due.ge(since))
        .select((cases::id, cases::publication_due))
        .load(conn)?;
    due.extend(publications.into_iter().filter_map(|(id, d)| Some((id, d?, "publication_overdue"))));
    due.sort();
    let mut recorded = 0;
    for (id, due, action) in due {
        let Some(turned_on) = due.succ_opt() else { continue };
        // The flag named like the action: a case's view also holds a late fee that grows by the day.
        recorded += usize::from(crate::write::turn_flag::<CaseRow>(conn, ctx, &id, action, turned_on, action)?);
    }
    Ok(recorded)
}
