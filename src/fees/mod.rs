//! 水资源费 — water-resource fees (docs/api.md, docs/domain.md): the rate table, quarterly assessments per permit,
//! payment notices, payments, late fees, deferrals and waivers, and from `water_resource_tax_from` on, tax
//! referrals instead of bills.
//!
//! - `calc`: the exact arithmetic (amounts, late fees, how payments settle), property-tested;
//! - `rates`: the rate table; `assess`: pricing a permit's months; `run`: the quarterly run, in batches;
//! - `surcharge`: what an over-plan surcharge (made by planned use's settlements) keeps of its calculation;
//! - `rules`: the state machine of an assessment; `view`: what `GET` shows (as of a date), totals;
//! - `notice`: the printable payment notice (缴款通知书);
//! - HTTP: `routes` (`/fee-assessments`), `payment_routes` (`…/payments`, `/payments`), `rate_routes` (`/fee-rates`).

pub mod assess;
pub mod calc;
pub mod notice;
pub mod payment_routes;
pub mod rate_routes;
pub mod rates;
pub mod routes;
pub mod rules;
pub mod run;
pub mod surcharge;
pub mod view;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use rust_decimal::Decimal;

use crate::db::schema::{fee_assessments as fa, payments as pm};
use crate::db::DbConn;
use crate::text_enum;

text_enum! {
    /// 核定类别 — what an assessment is.
    pub enum Kind {
        WaterResourceFee = ("water_resource_fee", "水资源费"),
        OverPlanSurcharge = ("over_plan_surcharge", "超计划（定额）累进加价费"),
        TaxReferral = ("tax_referral", "水资源税水量移交"),
    }
}

text_enum! {
    /// 缴费状态 — where an assessment stands.
    pub enum Status {
        Assessed = ("assessed", "已核定"),
        Notified = ("notified", "已送达缴款通知"),
        PartiallyPaid = ("partially_paid", "部分缴纳"),
        Paid = ("paid", "已缴清"),
        Deferred = ("deferred", "已批准缓缴"),
        Waived = ("waived", "已批准减免"),
        Referred = ("referred", "已移交税务机关"),
    }
}

text_enum! {
    /// 缴款方式 — how a payment was made.
    pub enum PaymentMethod {
        Cash = ("cash", "现金"),
        BankTransfer = ("bank_transfer", "银行转账"),
        Pos = ("pos", "POS 刷卡"),
        Online = ("online", "网上缴费"),
        Other = ("other", "其他"),
    }
}

text_enum! {
    /// 待审批申请 — a request of finance awaiting a leader's decision.
    pub enum RequestKind {
        Deferral = ("deferral", "缓缴申请"),
        Waiver = ("waiver", "减免申请"),
    }
}

/// Days from service of the notice to the due date (TL §33).
pub const DUE_DAYS: i64 = 7;
/// Longest deferral (TL §34).
pub const MAX_DEFERRAL_DAYS: i64 = 90;

/// The fee settings of this bureau (from the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeConfig {
    /// Late fee per day as a fraction of the principal outstanding (2‰ → 0.002).
    pub daily_late_rate: Decimal,
    /// Months from this date on are referred to the tax office instead of billed (the first of a month).
    pub tax_from: NaiveDate,
}

impl FeeConfig {
    /// From the configuration (checked at start-up by `Settings::validate`).
    pub fn of(settings: &crate::config::Settings) -> Self {
        Self {
            daily_late_rate: settings.daily_late_fee_rate().unwrap_or(Decimal::new(2, 3)),
            tax_from: settings.water_resource_tax_from,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = fa, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct AssessmentRow {
    pub id: String,
    pub kind: String,
    pub payer_id: String,
    pub permit_id: Option<String>,
    pub period: String,
    /// The months covered, `YYYY-MM` joined by commas.
    pub months: String,
    pub volume_m3: i64,
    pub amount_fen: i64,
    /// JSON list of [`calc::FeeLine`].
    pub lines: String,
    pub status: String,
    pub notice_no: Option<String>,
    pub notified_on: Option<NaiveDate>,
    pub due_date: Option<NaiveDate>,
    pub request_kind: Option<String>,
    pub request_until: Option<NaiveDate>,
    pub request_reason: Option<String>,
    pub request_on: Option<NaiveDate>,
    pub deferred_until: Option<NaiveDate>,
    pub waived_on: Option<NaiveDate>,
    pub paid_fen: i64,
    pub late_fee_paid_fen: i64,
    pub last_paid_on: Option<NaiveDate>,
    pub last_step_on: Option<NaiveDate>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
    /// The zone class the months were priced at (kept: a zone reclassified later does not reprice the past).
    pub zone_class: Option<String>,
    /// The daily late-fee rate stated on the notice (exact decimal, e.g. `0.002`), fixed when it is served.
    pub late_fee_rate: Option<String>,
    /// Who asked for the pending request (the signature of the caller).
    pub request_by: Option<String>,
    /// The planned-water user an over-plan surcharge charges.
    pub planned_user_id: Option<String>,
    /// JSON [`surcharge::SurchargeBasis`] of an over-plan surcharge.
    pub surcharge: Option<String>,
}

crate::versioned_row!(AssessmentRow, fa);

impl crate::write::Entity for AssessmentRow {
    const ENTITY: crate::audit::EntityType = crate::audit::EntityType::FeeAssessment;
}

impl AssessmentRow {
    /// A new assessment of `kind` for `payer_id` and `period`: assessed, nothing served, requested or paid, no
    /// volume or amount yet (the caller sets what it computed).
    pub fn fresh(kind: Kind, payer_id: &str, period: &str, now: NaiveDateTime) -> Self {
        Self {
            id: crate::domain::new_id(),
            kind: kind.as_str().into(),
            payer_id: payer_id.into(),
            permit_id: None,
            period: period.into(),
            months: String::new(),
            volume_m3: 0,
            amount_fen: 0,
            lines: "[]".into(),
            status: Status::Assessed.as_str().into(),
            notice_no: None,
            notified_on: None,
            due_date: None,
            request_kind: None,
            request_until: None,
            request_reason: None,
            request_on: None,
            deferred_until: None,
            waived_on: None,
            paid_fen: 0,
            late_fee_paid_fen: 0,
            last_paid_on: None,
            last_step_on: None,
            created_at: now,
            updated_at: now,
            version: 1,
            zone_class: None,
            late_fee_rate: None,
            request_by: None,
            planned_user_id: None,
            surcharge: None,
        }
    }

    pub fn kind(&self) -> Kind {
        Kind::parse(&self.kind).unwrap_or(Kind::WaterResourceFee)
    }

    pub fn status(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Assessed)
    }

    pub fn lines(&self) -> Vec<calc::FeeLine> {
        serde_json::from_str(&self.lines).unwrap_or_default()
    }

    /// The calculation of an over-plan surcharge (None on fees and referrals).
    pub fn surcharge(&self) -> Option<surcharge::SurchargeBasis> {
        self.surcharge.as_deref().and_then(|s| serde_json::from_str(s).ok())
    }

    pub fn month_list(&self) -> Vec<String> {
        self.months.split(',').filter(|m| !m.is_empty()).map(str::to_string).collect()
    }

    pub fn pending(&self) -> Option<RequestKind> {
        self.request_kind.as_deref().and_then(RequestKind::parse)
    }

    /// The last day without late fee: the due date, or an approved deferral's end if later.
    pub fn last_free_day(&self) -> Option<NaiveDate> {
        match (self.due_date, self.deferred_until) {
            (Some(due), Some(until)) => Some(due.max(until)),
            (due, _) => due,
        }
    }

    /// The daily late-fee rate: the one stated on its notice; the configured one before service.
    pub fn daily_late_rate(&self, config: &FeeConfig) -> Decimal {
        self.late_fee_rate.as_deref().and_then(|r| r.parse().ok()).unwrap_or(config.daily_late_rate)
    }

    /// What decides its late fee.
    pub fn terms(&self, config: &FeeConfig) -> calc::Terms {
        calc::Terms {
            principal_fen: self.amount_fen,
            due: self.last_free_day(),
            daily_rate: self.daily_late_rate(config),
            waived_on: self.waived_on,
            cap_fen: None,
        }
    }
}

/// The last day of an assessment's period: a quarter (`2022-Q1`) or, for a yearly settlement, a year (`2025`).
pub fn period_last_day(period: &str) -> Option<NaiveDate> {
    use crate::domain::dates::Quarter;
    match Quarter::parse(period) {
        Some(q) => Some(q.last_day()),
        None if period.len() == 4 && period.bytes().all(|b| b.is_ascii_digit()) => {
            NaiveDate::from_ymd_opt(period.parse().ok()?, 12, 31)
        }
        None => None,
    }
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<AssessmentRow>> {
    fa::table.find(id).select(AssessmentRow::as_select()).first(conn).optional()
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = pm, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct PaymentRow {
    pub id: String,
    pub assessment_id: String,
    pub amount_fen: i64,
    pub principal_fen: i64,
    pub late_fee_fen: i64,
    pub outstanding_after_fen: i64,
    pub paid_on: NaiveDate,
    pub method: String,
    pub receipt_no: String,
    pub note: Option<String>,
    pub recorded_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl PaymentRow {
    pub fn paid(&self) -> calc::Paid {
        calc::Paid { on: self.paid_on, principal_fen: self.principal_fen, late_fee_fen: self.late_fee_fen }
    }
}

/// The calendar's changes to assessments (docs/integration.md, "Changes the calendar makes"): one served and not
/// settled whose last day without late fee (`due_date`, or `deferred_until`) was a day from `since` (all days when
/// `None`) up to yesterday now reads `overdue`. Recorded once each by the system (`overdue`), in id order; the late
/// fee that then grows day by day is not a change of its own (every view states its `as_of`).
pub fn calendar_turns(
    conn: &mut DbConn,
    ctx: &crate::audit::AuditCtx,
    since: Option<NaiveDate>,
    config: FeeConfig,
) -> Result<usize, crate::error::ApiError> {
    let today = ctx.now.today;
    let since = since.unwrap_or(NaiveDate::MIN);
    let Some(yesterday) = today.pred_opt() else { return Ok(0) };
    let open = [Status::Notified, Status::PartiallyPaid, Status::Deferred].map(Status::as_str);
    let rows: Vec<AssessmentRow> = fa::table
        .filter(fa::kind.ne(Kind::TaxReferral.as_str()))
        .filter(fa::status.eq_any(open))
        .filter(fa::due_date.between(since, yesterday).or(fa::deferred_until.between(since, yesterday)))
        .order(fa::id.asc())
        .select(AssessmentRow::as_select())
        .load(conn)?;
    let mut recorded = 0;
    for row in rows {
        let Some(turned_on) =
            row.last_free_day().filter(|d| (since..=yesterday).contains(d)).and_then(|d| d.succ_opt())
        else {
            continue;
        };
        let view =
            |conn: &mut DbConn, r: &AssessmentRow, now: &crate::clock::Now| routes::view_of(conn, r, config, now.today);
        let overdue_changed = |b: &serde_json::Value, a: &serde_json::Value| b["overdue"] != a["overdue"];
        recorded +=
            usize::from(crate::write::turn_as(conn, ctx, &row.id, "overdue", turned_on, view, overdue_changed)?);
    }
    Ok(recorded)
}
