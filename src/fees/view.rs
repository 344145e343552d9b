//! What `GET` shows of assessments and payments: the stored record, the names a person reads it by, where it
//! stands on `as_of` (payments made by then, late fee through then), and any difference the current
//! withdrawals and rates would make (a correction after the assessment is visible, never applied silently).

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::assess::{self, Draft};
use super::calc::{self, FeeLine, Paid};
use super::rates::RateTable;
use super::{AssessmentRow, FeeConfig, Kind, PaymentMethod, PaymentRow, RequestKind, Status};
use crate::db::schema::{fee_assessments as fa, payments as pm, permits as p, water_users as w};
use crate::db::DbConn;
use crate::domain::dates::Quarter;

/// A request awaiting a leader's decision.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PendingRequest {
    pub kind: RequestKind,
    /// For a deferral: the requested last day without late fee.
    #[schema(value_type = Option<String>, format = Date)]
    pub until: Option<NaiveDate>,
    pub reason: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub requested_on: Option<NaiveDate>,
}

/// What the current withdrawals and rates would assess instead (after a correction): to be re-assessed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Reassessment {
    pub volume_m3: i64,
    pub amount_fen: i64,
    /// `amount_fen` − the assessed amount.
    pub difference_fen: i64,
    pub lines: Vec<FeeLine>,
}

/// An assessment (水资源费核定 / 税务移交) as the API shows it, as of `as_of`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a0c4-0000-7000-8000-000000000401", "kind": "water_resource_fee",
    "payer_id": "0193a0c4-5f0e-7b61-9a3e-4c1d2e3f4a5b", "payer_name": "赤水市化工有限公司", "payer_credit_code": "91350100M000100Y43",
    "permit_id": "0193a0c4-0000-7000-8000-000000000101", "permit_no": "D520381G2021-0001", "planned_user_id": null,
    "period": "2022-Q1", "months": ["2022-01", "2022-02", "2022-03"], "volume_m3": 24000, "amount_fen": 3600000,
    "lines": [{"month": "2022-01", "volume_m3": 8000, "withdrawal_id": "0193a0c4-0000-7000-8000-000000000201", "method": "online_meter",
        "rate_id": "0193a0c4-0000-7000-8000-000000000301", "rate_yuan_per_m3": "1.5000", "amount_yuan": "12000.0000"}],
    "status": "notified", "notice_no": "2022-00001", "notified_on": "2022-04-06", "due_date": "2022-04-13",
    "deferred_until": null, "waived_on": null, "pending_request": null, "as_of": "2022-04-23", "overdue": true,
    "paid_fen": 0, "outstanding_fen": 3600000, "late_fee_fen": 72000, "late_fee_paid_fen": 0, "late_fee_outstanding_fen": 72000,
    "waived_fen": 0, "last_paid_on": null, "reassessment": null, "surcharge": null,
    "created_at": "2022-04-02T02:00:00Z", "updated_at": "2022-04-06T02:00:00Z", "version": 2
}))]
pub struct FeeAssessment {
    pub id: String,
    pub kind: Kind,
    /// 缴费人 — the water user who pays.
    pub payer_id: String,
    pub payer_name: String,
    pub payer_credit_code: String,
    /// The permit assessed (fees and tax referrals).
    pub permit_id: Option<String>,
    pub permit_no: Option<String>,
    /// The planned-water user (over-plan surcharges).
    pub planned_user_id: Option<String>,
    /// 计费期间, e.g. `2022-Q1`.
    pub period: String,
    /// The months this record covers (a quarter straddling the tax date splits between a bill and a referral).
    pub months: Vec<String>,
    pub volume_m3: i64,
    /// The assessed amount (principal), fen; 0 on a tax referral.
    pub amount_fen: i64,
    /// Month by month: volume × rate (fees and referrals; empty on a surcharge, explained by `surcharge`).
    pub lines: Vec<FeeLine>,
    /// An over-plan surcharge's calculation: plan, usage, base price, band by band (null on fees and referrals).
    pub surcharge: Option<super::surcharge::SurchargeBasis>,
    pub status: Status,
    /// 缴款通知书编号, assigned when the notice is served.
    pub notice_no: Option<String>,
    /// 送达日期.
    #[schema(value_type = Option<String>, format = Date)]
    pub notified_on: Option<NaiveDate>,
    /// 缴款期限: service + 7 days (TL §33).
    #[schema(value_type = Option<String>, format = Date)]
    pub due_date: Option<NaiveDate>,
    /// An approved deferral: no late fee through this day (TL §34).
    #[schema(value_type = Option<String>, format = Date)]
    pub deferred_until: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub waived_on: Option<NaiveDate>,
    pub pending_request: Option<PendingRequest>,
    /// The day the figures below are as of (`?as_of=`, default today).
    #[schema(value_type = String, format = Date)]
    pub as_of: NaiveDate,
    /// Principal outstanding after the due date (or the deferral's end), as of `as_of`.
    pub overdue: bool,
    /// Principal paid by `as_of`.
    pub paid_fen: i64,
    /// Principal outstanding on `as_of`.
    pub outstanding_fen: i64,
    /// 滞纳金: late fee incurred through `as_of` (2‰ a day of the principal outstanding after the due date).
    pub late_fee_fen: i64,
    pub late_fee_paid_fen: i64,
    pub late_fee_outstanding_fen: i64,
    /// Principal and late fee forgiven by an approved waiver.
    pub waived_fen: i64,
    #[schema(value_type = Option<String>, format = Date)]
    pub last_paid_on: Option<NaiveDate>,
    /// Set when the current withdrawals or rates would assess a fee differently (a surcharge's differences are
    /// reported by the settlement run).
    pub reassessment: Option<Reassessment>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

/// Sums over every assessment a list's filters match, as of `as_of`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Totals {
    /// How many assessments match.
    pub count: i64,
    /// Σ assessed amounts.
    pub assessed_fen: i64,
    /// Σ principal paid.
    pub paid_fen: i64,
    /// Σ principal outstanding.
    pub outstanding_fen: i64,
    /// Σ late fees incurred.
    pub late_fee_fen: i64,
    pub late_fee_paid_fen: i64,
    /// Σ forgiven by waivers.
    pub waived_fen: i64,
}

impl Totals {
    /// Adds one assessment. Each amount is at most 10¹² fen, so the sums fit easily; they saturate rather than wrap.
    fn add(&mut self, row: &AssessmentRow, s: &calc::Standing) {
        self.count += 1;
        self.assessed_fen = self.assessed_fen.saturating_add(row.amount_fen);
        self.paid_fen = self.paid_fen.saturating_add(s.paid_fen);
        self.outstanding_fen = self.outstanding_fen.saturating_add(s.outstanding_fen);
        self.late_fee_fen = self.late_fee_fen.saturating_add(s.late_fee_fen);
        self.late_fee_paid_fen = self.late_fee_paid_fen.saturating_add(s.late_fee_paid_fen);
        self.waived_fen = self.waived_fen.saturating_add(s.waived_fen);
    }
}

/// A page of assessments with the totals over all pages.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AssessmentPage {
    pub items: Vec<FeeAssessment>,
    pub next_cursor: Option<String>,
    /// With `include_total=true`: how many match (also `totals.count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    pub totals: Totals,
}

/// What the views of some assessments need, loaded in a few queries whatever their number.
pub struct Context {
    config: FeeConfig,
    as_of: NaiveDate,
    payers: Payers,
    permit_nos: PermitNos,
    payments: HashMap<String, Vec<Paid>>,
    redrafts: HashMap<String, Vec<Draft>>,
}

/// Water users' names and credit codes by id.
pub type Payers = HashMap<String, (String, String)>;
/// Permits' numbers by id (none before approval).
pub type PermitNos = HashMap<String, Option<String>>;

/// The names of water users (name, credit code) by id.
pub fn payer_names(conn: &mut DbConn, ids: Vec<String>) -> QueryResult<Payers> {
    let ids = dedup(ids);
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String, String)> =
        w::table.filter(w::id.eq_any(&ids)).select((w::id, w::name, w::credit_code)).load(conn)?;
    Ok(rows.into_iter().map(|(id, n, c)| (id, (n, c))).collect())
}

/// Permit numbers by permit id.
pub fn permit_numbers(conn: &mut DbConn, ids: Vec<String>) -> QueryResult<PermitNos> {
    let ids = dedup(ids);
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, Option<String>)> =
        p::table.filter(p::id.eq_any(&ids)).select((p::id, p::permit_no)).load(conn)?;
    Ok(rows.into_iter().collect())
}

/// The payer's names and the permit's number of one record, as [`payer_names`] and [`permit_numbers`] give them.
fn names_of_one(conn: &mut DbConn, row: &AssessmentRow) -> QueryResult<(Payers, PermitNos)> {
    let found: Option<(String, String, Option<String>, Option<String>)> = w::table
        .left_join(p::table.on(p::id.nullable().eq(row.permit_id.clone())))
        .filter(w::id.eq(&row.payer_id))
        .select((w::name, w::credit_code, p::id.nullable(), p::permit_no.nullable()))
        .first(conn)
        .optional()?;
    let mut payers = HashMap::new();
    let mut permit_nos = HashMap::new();
    if let Some((name, credit_code, permit_id, permit_no)) = found {
        payers.insert(row.payer_id.clone(), (name, credit_code));
        if let Some(permit_id) = permit_id {
            permit_nos.insert(permit_id, permit_no);
        }
    }
    Ok((payers, permit_nos))
}

fn dedup(mut ids: Vec<String>) -> Vec<String> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The payments of `assessment_ids`, each list in the order made.
fn payments_by_assessment(conn: &mut DbConn, assessment_ids: &[String]) -> QueryResult<HashMap<String, Vec<Paid>>> {
    if assessment_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<PaymentRow> = pm::table
        .filter(pm::assessment_id.eq_any(assessment_ids))
        .order((pm::assessment_id.asc(), pm::paid_on.asc(), pm::created_at.asc(), pm::id.asc()))
        .select(PaymentRow::as_select())
        .load(conn)?;
    let mut out: HashMap<String, Vec<Paid>> = HashMap::new();
    for r in rows {
        out.entry(r.assessment_id.clone()).or_default().push(r.paid());
    }
    Ok(out)
}

impl Context {
    /// Loads what the views of `rows` need. `redraft`: also price their periods afresh, to show differences.
    pub fn load(
        conn: &mut DbConn,
        rows: &[AssessmentRow],
        config: FeeConfig,
        as_of: NaiveDate,
        redraft: bool,
    ) -> QueryResult<Self> {
        let permit_ids: Vec<String> = dedup(rows.iter().filter_map(|r| r.permit_id.clone()).collect());
        let (payers, permit_nos) = match rows {
            // One record (a payment, a `GET` by id): its payer's and its permit's names in one query.
            [row] => names_of_one(conn, row)?,
            _ => (
                payer_names(conn, rows.iter().map(|r| r.payer_id.clone()).collect())?,
                permit_numbers(conn, permit_ids.clone())?,
            ),
        };
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let payments = payments_by_assessment(conn, &ids)?;
        let mut redrafts = HashMap::new();
        if redraft && !permit_ids.is_empty() {
            let bases = assess::bases(conn, &permit_ids)?;
            let rates = RateTable::load(conn)?;
            // One query per distinct period (a page is usually one or a few quarters).
            let mut periods: Vec<&str> = rows.iter().map(|r| r.period.as_str()).collect();
            periods.sort_unstable();
            periods.dedup();
            for period in periods {
                let Some(q) = Quarter::parse(period) else { continue };
                let of_period: Vec<String> =
                    dedup(rows.iter().filter(|r| r.period == period).filter_map(|r| r.permit_id.clone()).collect());
                let uses = assess::uses(conn, &of_period, &q.months())?;
                for row in rows.iter().filter(|r| r.period == period) {
                    let Some(permit_id) = &row.permit_id else { continue };
                    let (Some(basis), Some(ws)) = (bases.get(permit_id), uses.get(permit_id)) else { continue };
                    let refs: Vec<_> = ws.iter().collect();
                    // At the class the record was priced at; a month that cannot be priced now shows no difference.
                    let basis = basis.at_class(row.zone_class.as_deref());
                    let drafts = assess::drafts(&basis, &refs, &rates, &config).drafts;
                    redrafts.insert(row.id.clone(), drafts);
                }
            }
        }
        Ok(Self { config, as_of, payers, permit_nos, payments, redrafts })
    }

    /// The payments of an assessment as loaded, in the order they were made.
    pub fn paid(&self, assessment_id: &str) -> &[Paid] {
        self.payments.get(assessment_id).map(Vec::as_slice).unwrap_or_default()
    }

    /// Counts a payment recorded after loading (it pays after every loaded one), so later views show it.
    pub fn add_payment(&mut self, assessment_id: &str, paid: Paid) {
        self.payments.entry(assessment_id.to_string()).or_default().push(paid);
    }

    /// The view of a payment of `parent`, an assessment this context was loaded with (no query).
    pub fn payment_view(&self, parent: &AssessmentRow, row: PaymentRow) -> Payment {
        let payer_name = self.payers.get(&parent.payer_id).map(|(n, _)| n.clone()).unwrap_or_default();
        let permit_no = parent.permit_id.as_ref().and_then(|p| self.permit_nos.get(p).cloned().flatten());
        Payment::of(row, parent.payer_id.clone(), payer_name, permit_no, parent.period.clone())
    }

    pub fn standing(&self, row: &AssessmentRow) -> calc::Standing {
        calc::standing(&row.terms(&self.config), self.paid(&row.id), self.as_of)
    }

    pub fn view(&self, row: &AssessmentRow) -> FeeAssessment {
        let s = self.standing(row);
        let (payer_name, payer_credit_code) = self.payers.get(&row.payer_id).cloned().unwrap_or_default();
        let lines = row.lines();
        let kind = row.kind();
        let reassessment = self
            .redrafts
            .get(&row.id)
            .and_then(|drafts| drafts.iter().find(|d| d.kind == kind))
            .filter(|d| !assess::same_charge(&lines, &d.lines))
            .map(|d| Reassessment {
                volume_m3: d.volume_m3,
                amount_fen: d.amount_fen,
                difference_fen: d.amount_fen - row.amount_fen,
                lines: d.lines.clone(),
            });
        FeeAssessment {
            id: row.id.clone(),
            kind,
            payer_id: row.payer_id.clone(),
            payer_name,
            payer_credit_code,
            permit_id: row.permit_id.clone(),
            permit_no: row.permit_id.as_ref().and_then(|p| self.permit_nos.get(p).cloned().flatten()),
            planned_user_id: row.planned_user_id.clone(),
            period: row.period.clone(),
            months: row.month_list(),
            volume_m3: row.volume_m3,
            amount_fen: row.amount_fen,
            lines,
            surcharge: row.surcharge(),
            status: row.status(),
            notice_no: row.notice_no.clone(),
            notified_on: row.notified_on,
            due_date: row.due_date,
            deferred_until: row.deferred_until,
            waived_on: row.waived_on,
            pending_request: row.pending().map(|kind| PendingRequest {
                kind,
                until: row.request_until,
                reason: row.request_reason.clone(),
                requested_on: row.request_on,
            }),
            as_of: self.as_of,
            overdue: s.overdue,
            paid_fen: s.paid_fen,
            outstanding_fen: s.outstanding_fen,
            late_fee_fen: s.late_fee_fen,
            late_fee_paid_fen: s.late_fee_paid_fen,
            late_fee_outstanding_fen: s.late_fee_outstanding_fen,
            waived_fen: s.waived_fen,
            last_paid_on: row.last_paid_on.filter(|d| *d <= self.as_of),
            reassessment,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        }
    }
}

type Sql = <DbConn as Connection>::Backend;
/// A filtered query over assessments (the list's filters), boxed.
pub type Filtered<'a> = fa::BoxedQuery<'a, Sql>;

/// Totals over every assessment `filtered` selects, as of `as_of`: read in batches by id (memory stays flat),
/// each standing computed as its view computes it.
pub fn totals<'a>(
    conn: &mut DbConn,
    filtered: impl Fn() -> Filtered<'a>,
    config: FeeConfig,
    as_of: NaiveDate,
    keep: impl Fn(&calc::Standing) -> bool,
) -> QueryResult<Totals> {
    const BATCH: i64 = 1000;
    let mut totals = Totals::default();
    let mut after: Option<String> = None;
    loop {
        let mut q = filtered().order(fa::id.asc()).limit(BATCH).select(AssessmentRow::as_select());
        if let Some(a) = &after {
            q = q.filter(fa::id.gt(a.clone()));
        }
        let rows: Vec<AssessmentRow> = q.load(conn)?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let payments = payments_by_assessment(conn, &ids)?;
        for row in &rows {
            let paid = payments.get(&row.id).map(Vec::as_slice).unwrap_or_default();
            let s = calc::standing(&row.terms(&config), paid, as_of);
            if keep(&s) {
                totals.add(row, &s);
            }
        }
        if (rows.len() as i64) < BATCH {
            return Ok(totals);
        }
        after = rows.last().map(|r| r.id.clone());
    }
}

/// A payment as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a0c4-0000-7000-8000-000000000501", "assessment_id": "0193a0c4-0000-7000-8000-000000000401",
    "payer_id": "0193a0c4-5f0e-7b61-9a3e-4c1d2e3f4a5b", "payer_name": "赤水市化工有限公司", "permit_no": "D520381G2021-0001", "period": "2022-Q1",
    "amount_fen": 3672000, "principal_fen": 3600000, "late_fee_fen": 72000, "outstanding_after_fen": 0,
    "paid_on": "2022-04-23", "method": "bank_transfer", "receipt_no": "SZ2022-000118", "note": null, "recorded_by": "finance01",
    "created_at": "2022-04-23T03:00:00Z", "updated_at": "2022-04-23T03:00:00Z", "version": 1
}))]
pub struct Payment {
    pub id: String,
    pub assessment_id: String,
    pub payer_id: String,
    pub payer_name: String,
    pub permit_no: Option<String>,
    pub period: String,
    pub amount_fen: i64,
    /// The part that paid principal.
    pub principal_fen: i64,
    /// The part that paid the late fee due that day (settled first).
    pub late_fee_fen: i64,
    /// Principal still outstanding after this payment.
    pub outstanding_after_fen: i64,
    #[schema(value_type = String, format = Date)]
    pub paid_on: NaiveDate,
    pub method: PaymentMethod,
    /// 收据号 / 票据号, unique.
    pub receipt_no: String,
    pub note: Option<String>,
    /// Who recorded it (the caller's username).
    pub recorded_by: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

/// The views of payments, with their assessments' payer, permit and period (three queries whatever their number).
pub fn payment_views(conn: &mut DbConn, rows: Vec<PaymentRow>) -> QueryResult<Vec<Payment>> {
    let ids = dedup(rows.iter().map(|r| r.assessment_id.clone()).collect());
    let parents: Vec<(String, String, Option<String>, String)> = if ids.is_empty() {
        Vec::new()
    } else {
        fa::table.filter(fa::id.eq_any(&ids)).select((fa::id, fa::payer_id, fa::permit_id, fa::period)).load(conn)?
    };
    let payers = payer_names(conn, parents.iter().map(|(_, payer, _, _)| payer.clone()).collect())?;
    let numbers = permit_numbers(conn, parents.iter().filter_map(|(_, _, permit, _)| permit.clone()).collect())?;
    let parents: HashMap<String, (String, Option<String>, String)> =
        parents.into_iter().map(|(id, payer, permit, period)| (id, (payer, permit, period))).collect();
    Ok(rows
        .into_iter()
        .map(|r| {
            let (payer_id, permit_id, period) = parents.get(&r.assessment_id).cloned().unwrap_or_default();
            let payer_name = payers.get(&payer_id).map(|(n, _)| n.clone()).unwrap_or_default();
            let permit_no = permit_id.and_then(|p| numbers.get(&p).cloned().flatten());
            Payment::of(r, payer_id, payer_name, permit_no, period)
        })
        .collect())
}

impl Payment {
    fn of(r: PaymentRow, payer_id: String, payer_name: String, permit_no: Option<String>, period: String) -> Self {
        Payment {
            payer_name,
            permit_no,
            payer_id,
            period,
            id: r.id,
            assessment_id: r.assessment_id,
            amount_fen: r.amount_fen,
            principal_fen: r.principal_fen,
            late_fee_fen: r.late_fee_fen,
            outstanding_after_fen: r.outstanding_after_fen,
            paid_on: r.paid_on,
            method: PaymentMethod::parse(&r.method).unwrap_or(PaymentMethod::Other),
            receipt_no: r.receipt_no,
            note: r.note,
            recorded_by: r.recorded_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}
