//! The state machine of an assessment and the rules of its steps (TL §§33, 34, 54), independent of HTTP.
//!
//! ```text
//! assessed ──notify──▶ notified ──payment──▶ partially_paid ──payment──▶ paid
//!                         │  ▲                   │
//!     defer (finance) ────┘  └── approve-deferral (leader) ──▶ deferred ──payment──▶ …
//!     waive (finance) ── approve-waiver (leader) ──▶ waived          tax referrals: referred, no actions
//! ```
//!
//! A deferral or waiver is a request (finance) and a decision (leader: approve or reject, never by the one who
//! asked); one request is pending at a time. A deferral is asked for by the due date, runs at most 90 days from the
//! request and at most once; no payment is recorded while a request is pending (its decision changes what is due).
//! A notice is served only while the assessment matches the current withdrawals and rates (re-run the quarter
//! first), and it fixes the daily late-fee rate of the configuration on the record.

use chrono::{NaiveDate, TimeDelta};

use super::calc::{self, Overpayment, Paid};
use super::{AssessmentRow, FeeConfig, Kind, RequestKind, Status, DUE_DAYS, MAX_DEFERRAL_DAYS};
use crate::audit::EntityType;
use crate::domain::dates::effective_date;
use crate::error::{ApiError, ErrorCode};
use crate::messages::{Label, Msg};
use crate::text_enum;

text_enum! {
    /// The actions of `POST /api/v1/fee-assessments/{id}/{action}`.
    pub enum Action {
        Notify = ("notify", "送达缴款通知"),
        Defer = ("defer", "申请缓缴"),
        ApproveDeferral = ("approve-deferral", "批准缓缴"),
        RejectDeferral = ("reject-deferral", "驳回缓缴申请"),
        Waive = ("waive", "申请减免"),
        ApproveWaiver = ("approve-waiver", "批准减免"),
        RejectWaiver = ("reject-waiver", "驳回减免申请"),
    }
}

impl Action {
    /// The statuses the action may start from.
    fn from(self) -> &'static [Status] {
        use Status::*;
        match self {
            Action::Notify => &[Assessed],
            Action::Defer => &[Notified, PartiallyPaid],
            Action::Waive => &[Assessed, Notified, PartiallyPaid, Deferred],
            Action::ApproveDeferral | Action::RejectDeferral | Action::ApproveWaiver | Action::RejectWaiver => {
                &[Notified, PartiallyPaid, Deferred, Assessed]
            }
        }
    }

    /// The request a decision needs pending.
    fn decides(self) -> Option<RequestKind> {
        match self {
            Action::ApproveDeferral | Action::RejectDeferral => Some(RequestKind::Deferral),
            Action::ApproveWaiver | Action::RejectWaiver => Some(RequestKind::Waiver),
            _ => None,
        }
    }

    pub fn requires_reason(self) -> bool {
        matches!(self, Action::Defer | Action::Waive | Action::RejectDeferral | Action::RejectWaiver)
    }
}

/// What an action's body carries.
#[derive(Debug, Default, Clone)]
pub struct ActionInput {
    pub reason: Option<String>,
    pub effective_date: Option<NaiveDate>,
    /// `defer`: the last day without late fee.
    pub until: Option<NaiveDate>,
    /// Who acts (the caller's signature): recorded on a request, compared on its decision.
    pub by: String,
    /// For `notify`: what the current withdrawals and rates would assess instead, when they differ (fen).
    pub reassessed_fen: Option<i64>,
}

fn refuse(action: Label, status: Status) -> ApiError {
    ApiError::conflict(
        ErrorCode::InvalidTransition,
        Msg::InvalidTransition { entity: EntityType::FeeAssessment.label(), action, status: status.label() },
    )
}

fn out_of_order(msg: Msg) -> ApiError {
    ApiError::conflict(ErrorCode::InvalidTransition, msg)
}

/// Applies `action` to `before` (locked in this transaction); `notice_no` numbers a notice being served.
/// Returns the changed row; the caller stores and audits it.
pub fn apply(
    before: &AssessmentRow,
    action: Action,
    input: &ActionInput,
    config: &FeeConfig,
    today: NaiveDate,
    notice_no: impl FnOnce(NaiveDate) -> Result<String, ApiError>,
) -> Result<AssessmentRow, ApiError> {
    let status = before.status();
    if before.kind() == Kind::TaxReferral || !action.from().contains(&status) {
        return Err(refuse(action.label(), status));
    }
    match (action.decides(), before.pending()) {
        (Some(needed), pending) if pending != Some(needed) => {
            return Err(out_of_order(Msg::NoPendingRequest(needed.label())));
        }
        (None, Some(pending)) => {
            return Err(out_of_order(Msg::RequestPending(pending.label())));
        }
        (Some(needed), _) if before.request_by.as_deref() == Some(input.by.as_str()) => {
            return Err(ApiError::conflict(ErrorCode::OwnRequest, Msg::OwnRequest(needed.label())));
        }
        _ => {}
    }
    if action.requires_reason() && input.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(ApiError::invalid("reason", Msg::ReasonRequired { action: action.label() }));
    }
    let date = effective_date(input.effective_date, before.last_step_on, today)?;
    let mut row = before.clone();
    row.last_step_on = Some(date);
    match action {
        Action::Notify => {
            // A notice is served once the period is over (a quarter's notice, after the quarter).
            if let Some(end) = super::period_last_day(&before.period) {
                if date <= end {
                    return Err(ApiError::conflict(
                        ErrorCode::EffectiveDateOutOfOrder,
                        Msg::NoticeBeforePeriodEnd { date, end },
                    ));
                }
            }
            if let Some(fen) = input.reassessed_fen {
                return Err(ApiError::conflict(
                    ErrorCode::ReassessmentDue,
                    Msg::ReassessmentDue { difference: fen - before.amount_fen },
                ));
            }
            row.notified_on = Some(date);
            row.late_fee_rate = Some(config.daily_late_rate.normalize().to_string());
            row.due_date = Some(date + TimeDelta::days(DUE_DAYS));
            row.notice_no = Some(notice_no(date)?);
            // Nothing to pay (a quarter of zero volumes): settled on service.
            row.status = if row.amount_fen == 0 { Status::Paid } else { Status::Notified }.as_str().into();
        }
        Action::Defer => {
            let due = before.due_date.ok_or_else(|| ApiError::internal("notified assessment without due date"))?;
            if before.deferred_until.is_some() {
                return Err(out_of_order(Msg::AlreadyDeferred));
            }
            if date > due {
                return Err(ApiError::conflict(ErrorCode::DeferralTooLate, Msg::DeferralTooLate(due)));
            }
            let until = input.until.ok_or_else(|| ApiError::invalid("until", Msg::Required))?;
            if until <= due {
                return Err(ApiError::invalid("until", Msg::AfterDueDate(due)));
            }
            let latest = date + TimeDelta::days(MAX_DEFERRAL_DAYS);
            if until > latest {
                return Err(ApiError::conflict(
                    ErrorCode::DeferralTooLong,
                    Msg::DeferralTooLong { days: MAX_DEFERRAL_DAYS, latest },
                ));
            }
            set_request(&mut row, RequestKind::Deferral, Some(until), input, date);
        }
        Action::Waive => set_request(&mut row, RequestKind::Waiver, None, input, date),
        Action::ApproveDeferral => {
            row.deferred_until = before.request_until;
            if before.paid_fen == 0 && before.late_fee_paid_fen == 0 {
                row.status = Status::Deferred.as_str().into();
            }
            clear_request(&mut row);
        }
        Action::ApproveWaiver => {
            row.waived_on = Some(date);
            row.status = Status::Waived.as_str().into();
            clear_request(&mut row);
        }
        Action::RejectDeferral | Action::RejectWaiver => clear_request(&mut row),
    }
    Ok(row)
}

fn set_request(
    row: &mut AssessmentRow,
    kind: RequestKind,
    until: Option<NaiveDate>,
    input: &ActionInput,
    on: NaiveDate,
) {
    row.request_kind = Some(kind.as_str().into());
    row.request_until = until;
    row.request_reason = input.reason.as_deref().map(str::trim).map(str::to_string);
    row.request_on = Some(on);
    row.request_by = Some(input.by.clone());
}

fn clear_request(row: &mut AssessmentRow) {
    row.request_kind = None;
    row.request_until = None;
    row.request_reason = None;
    row.request_on = None;
    row.request_by = None;
}

/// A payment of `amount_fen` on `paid_on` against `before` (locked), given the payments made so far (in order):
/// how it settles, and the assessment after it. Refused when the assessment does not take payments now, for a
/// date before service or before the last payment, and for more than is due that day (409 `overpayment`).
pub fn pay(
    before: &AssessmentRow,
    paid: &[Paid],
    paid_on: NaiveDate,
    amount_fen: i64,
    config: &FeeConfig,
    today: NaiveDate,
) -> Result<(Paid, AssessmentRow), ApiError> {
    let status = before.status();
    let open = [Status::Notified, Status::PartiallyPaid, Status::Deferred];
    if before.kind() == Kind::TaxReferral || !open.contains(&status) {
        let label = Label { code: "record-payment", zh: "登记缴款" };
        return Err(refuse(label, status));
    }
    if let Some(pending) = before.pending() {
        return Err(out_of_order(Msg::PaymentWhileRequestPending(pending.label())));
    }
    if paid_on > today {
        return Err(ApiError::invalid("paid_on", Msg::InFuture));
    }
    // Not before service or the last payment (settling depends on the payments before). A payment received while a
    // request was pending is recorded after the decision with the day it was made, so a decision's date does not bound it.
    let earliest = before.last_paid_on.into_iter().chain(before.notified_on).max();
    if let Some(earliest) = earliest.filter(|e| paid_on < *e) {
        return Err(ApiError::conflict(
            ErrorCode::EffectiveDateOutOfOrder,
            Msg::BeforePreviousStep { date: paid_on, previous: earliest },
        ));
    }
    let p = calc::settle(&before.terms(config), paid, paid_on, amount_fen).map_err(|Overpayment { payable_fen }| {
        ApiError::conflict(
            ErrorCode::Overpayment,
            Msg::Overpayment { amount: amount_fen, payable: payable_fen, on: paid_on },
        )
    })?;
    let mut row = before.clone();
    row.paid_fen += p.principal_fen;
    row.late_fee_paid_fen += p.late_fee_fen;
    row.last_paid_on = Some(paid_on);
    row.last_step_on = before.last_step_on.max(Some(paid_on));
    row.status = if row.paid_fen == row.amount_fen { Status::Paid } else { Status::PartiallyPaid }.as_str().into();
    Ok((p, row))
}
