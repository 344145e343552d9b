//! The stage machine of a penalty case and its rules (XCF §§42–72; docs/domain.md, "Administrative penalties"),
//! independent of HTTP: [`Action::transition`] is the stage × action table, [`apply`] the rules of each step.

use chrono::{Datelike, NaiveDate, TimeDelta};
use rust_decimal::Decimal;

use super::{CaseRow, LegalReview, Outcome, PartyKind, PenaltyType, ReviewStatus, Stage};
use crate::audit::EntityType;
use crate::config::Settings;
use crate::db::DbConn;
use crate::domain::dates::effective_date;
use crate::domain::late_fee;
use crate::error::{ApiError, ErrorCode};
use crate::messages::Msg;
use crate::text_enum;

/// A decision is due within 90 days of filing (XCF §60).
pub const DECISION_DAYS: i64 = 90;
/// The statement and hearing-request period after the notice (calendar days).
pub const STATEMENT_DAYS: i64 = 5;
/// A decision is published within 7 working days (双公示).
pub const PUBLICATION_WORKING_DAYS: u32 = 7;
/// A fine is paid within 15 days of service (XCF §67).
pub const PAYMENT_DAYS: i64 = 15;
/// 加处罚款: 3 % of the unpaid fine a day, at most the fine (XCF §72).
pub const FINE_LATE_RATE: Decimal = Decimal::from_parts(3, 0, 0, false, 2);
/// Investigations are carried out by at least two officers (XCF §42).
pub const MIN_OFFICERS: usize = 2;

/// Stages before a decision: a case in one of them past its `decision_due` is overdue.
pub const UNDECIDED: &[Stage] =
    &[Stage::Filed, Stage::Investigating, Stage::Notified, Stage::Hearing, Stage::LegalReview];

/// The last day of the statement and hearing-request period.
pub fn statement_deadline(notified_on: NaiveDate) -> NaiveDate {
    notified_on + TimeDelta::days(STATEMENT_DAYS)
}

text_enum! {
    /// The actions of `POST /api/v1/cases/{id}/{action}`.
    pub enum Action {
        File = ("file", "立案"),
        StartInvestigation = ("start-investigation", "调查取证"),
        Notify = ("notify", "告知"),
        RequestHearing = ("request-hearing", "申请听证"),
        SubmitLegalReview = ("submit-legal-review", "提交法制审核"),
        ApproveLegalReview = ("approve-legal-review", "法制审核通过"),
        ReturnLegalReview = ("return-legal-review", "法制审核退回"),
        Decide = ("decide", "作出决定"),
        Serve = ("serve", "送达"),
        Publish = ("publish", "公示"),
        RecordPayment = ("record-payment", "缴纳罚款"),
        Close = ("close", "结案"),
    }
}

impl Action {
    /// The stages the action may start from, and where it leads (`None`: the stage stays; a decision's stage
    /// follows its outcome).
    pub fn transition(self) -> (&'static [Stage], Option<Stage>) {
        use Stage::*;
        match self {
            Action::File => (&[Clue], Some(Filed)),
            Action::StartInvestigation => (&[Filed], Some(Investigating)),
            Action::Notify => (&[Investigating], Some(Notified)),
            Action::RequestHearing => (&[Notified], Some(Hearing)),
            Action::SubmitLegalReview => (&[Notified, Hearing], Some(LegalReview)),
            Action::ApproveLegalReview => (&[LegalReview], None),
            Action::ReturnLegalReview => (&[LegalReview], Some(Investigating)),
            Action::Decide => (&[Notified, Hearing, LegalReview], None),
            Action::Serve => (&[Decided], Some(Served)),
            Action::Publish => (&[Decided, Served, Executing, Closed], None),
            Action::RecordPayment => (&[Served, Executing], Some(Executing)),
            Action::Close => (&[Served, Executing, NoPenalty, Transferred], Some(Closed)),
        }
    }

    /// The audit trail's name of the step (`case_start_investigation`).
    pub fn event(self) -> String {
        format!("case_{}", self.as_str().replace('-', "_"))
    }

    /// Publishing and payments are not stage changes: their dates are their own, not the case's last step.
    fn is_step(self) -> bool {
        !matches!(self, Action::Publish)
    }
}

/// What the penalty-case rules take from configuration.
#[derive(Debug, Clone)]
pub struct CaseConfig {
    /// e.g. `清水罚〔{year}〕{n}号`.
    pub case_no_pattern: String,
    /// e.g. `清水罚决〔{year}〕{n}号`.
    pub decision_no_pattern: String,
    /// A fine from which a decision on an organisation is major (and a hearing may be requested), fen.
    pub major_fine_organisation_fen: i64,
    /// The same for a person.
    pub major_fine_person_fen: i64,
}

impl CaseConfig {
    pub fn of(s: &Settings) -> Self {
        Self {
            case_no_pattern: s.case_no_pattern.clone(),
            decision_no_pattern: s.decision_no_pattern.clone(),
            major_fine_organisation_fen: s.major_fine_organisation_yuan.saturating_mul(100),
            major_fine_person_fen: s.major_fine_person_yuan.saturating_mul(100),
        }
    }

    /// The fine from which a case of `kind` is major.
    pub fn major_fine(&self, kind: PartyKind) -> i64 {
        match kind {
            PartyKind::Organisation => self.major_fine_organisation_fen,
            PartyKind::Person => self.major_fine_person_fen,
        }
    }
}

/// A number from a pattern: `{year}` and `{n}` replaced.
pub fn number(pattern: &str, year: i32, n: i64) -> String {
    pattern.replace("{year}", &year.to_string()).replace("{n}", &n.to_string())
}

/// What an action's body carries.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub reason: Option<String>,
    pub effective_date: Option<NaiveDate>,
    /// `file`, `start-investigation`: the officers (replacing those named before).
    pub officer_ids: Option<Vec<String>>,
    /// `notify`.
    pub proposed_fine_fen: Option<i64>,
    pub statement_waived: Option<bool>,
    /// `approve-legal-review`, `return-legal-review`.
    pub opinion: Option<String>,
    /// `decide`.
    pub decision: Option<Decision>,
    /// `record-payment`.
    pub payment: Option<PaymentInput>,
    /// `publish`.
    pub url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Decision {
    pub outcome: Outcome,
    pub fine_fen: i64,
    pub penalty_types: Vec<PenaltyType>,
    pub penalty_content: Option<String>,
    pub legal_basis: Option<String>,
    pub extension_reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PaymentInput {
    pub amount_fen: i64,
    pub receipt_no: String,
}

/// What an action did besides changing the row.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    /// The step's date.
    pub date: Option<NaiveDate>,
    /// The officers to keep, in order.
    pub officers: Option<Vec<String>>,
    /// A payment to record: its split between late fee and fine.
    pub payment: Option<late_fee::Paid>,
}

fn refuse(action: Action, stage: Stage) -> ApiError {
    ApiError::conflict(
        ErrorCode::InvalidTransition,
        Msg::InvalidTransition { entity: EntityType::Case.label(), action: action.label(), status: stage.label() },
    )
}

/// Applies `action` to `before` (locked in this transaction): checks the stage table and the step's rules, and
/// returns the changed row and what else the step does. `officers` are the case's officers now; `paid` its
/// payments.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    conn: &mut DbConn,
    before: &CaseRow,
    officers: &[String],
    paid: &[late_fee::Paid],
    action: Action,
    input: &Input,
    config: &CaseConfig,
    caller: &str,
    today: NaiveDate,
) -> Result<(CaseRow, Effects), ApiError> {
    let stage = before.stage();
    let (from, to) = action.transition();
    if !from.contains(&stage) {
        return Err(refuse(action, stage));
    }
    let mut row = before.clone();
    let mut p = row.process();
    let mut fx = Effects::default();
    // A payment's date is `paid_on`; publication follows the decision, not the last step.
    let previous = match action {
        Action::Publish => before.decision_date,
        _ => before.last_step_on,
    };
    let date = effective_date(input.effective_date, previous, today)?;
    if let Some(to) = to {
        row.stage = to.as_str().into();
    }
    match action {
        Action::File => {
            row.filed_on = Some(date);
            row.decision_due = Some(date + TimeDelta::days(DECISION_DAYS));
            let n = crate::db::next_counter(conn, &format!("case_no:{}", date.year()))?;
            row.case_no = Some(number(&config.case_no_pattern, date.year(), n));
            fx.officers = input.officer_ids.clone();
        }
        Action::StartInvestigation => {
            let chosen = input.officer_ids.as_deref().unwrap_or(officers);
            if chosen.len() < MIN_OFFICERS {
                return Err(ApiError::conflict(ErrorCode::OfficersRequired, Msg::OfficersRequired(MIN_OFFICERS)));
            }
            fx.officers = input.officer_ids.clone();
            p.investigation_started_on = Some(date);
        }
        Action::Notify => {
            row.notified_on = Some(date);
            row.proposed_fine_fen = input.proposed_fine_fen;
            row.statement_waived = input.statement_waived.unwrap_or(false);
            p.hearing_offered = Some(input.proposed_fine_fen.unwrap_or(0) >= config.major_fine(before.party_kind()));
            p.hearing_requested_on = None;
            p.legal_review = None;
        }
        Action::RequestHearing => {
            let proposed = before.proposed_fine_fen.unwrap_or(0);
            let threshold = config.major_fine(before.party_kind());
            // The right follows the notice as it was given (the threshold then in force).
            if !p.hearing_offered.unwrap_or(proposed >= threshold) {
                return Err(ApiError::conflict(
                    ErrorCode::HearingNotAvailable,
                    Msg::HearingNotAvailable { proposed_fen: proposed, threshold_fen: threshold },
                ));
            }
            let deadline = statement_deadline(before.notified_on.unwrap_or(date));
            if date > deadline {
                return Err(ApiError::conflict(ErrorCode::HearingRequestLate, Msg::HearingRequestLate(deadline)));
            }
            p.hearing_requested_on = Some(date);
        }
        Action::SubmitLegalReview => {
            // The review weighs what the party said: it starts once the statement and hearing period is over
            // (or waived), so that submitting early never takes the party's right to a hearing away.
            if stage == Stage::Notified && !before.statement_waived {
                let deadline = statement_deadline(before.notified_on.unwrap_or(date));
                if date <= deadline {
                    return Err(ApiError::conflict(ErrorCode::StatementWindowOpen, Msg::StatementWindowOpen(deadline)));
                }
            }
            p.legal_review = Some(LegalReview {
                status: ReviewStatus::Pending,
                submitted_on: date,
                reviewed_on: None,
                opinion: None,
                reviewed_by: None,
            });
        }
        Action::ApproveLegalReview | Action::ReturnLegalReview => {
            let review = p.legal_review.as_mut().filter(|r| r.status == ReviewStatus::Pending);
            let Some(review) = review else { return Err(refuse(action, stage)) };
            review.status =
                if action == Action::ApproveLegalReview { ReviewStatus::Approved } else { ReviewStatus::Returned };
            review.reviewed_on = Some(date);
            review.opinion = input.opinion.clone();
            review.reviewed_by = Some(caller.to_string());
        }
        Action::Decide => decide(conn, before, &mut row, &mut p, input, config, caller, date)?,
        Action::Serve => row.served_on = Some(date),
        Action::RecordPayment => {
            let pay = input.payment.as_ref().ok_or_else(|| ApiError::internal("record-payment without payment"))?;
            let settled = late_fee::settle(&before.fine_terms(), paid, date, pay.amount_fen).map_err(|o| {
                ApiError::conflict(
                    ErrorCode::Overpayment,
                    Msg::Overpayment { amount: pay.amount_fen, payable: o.payable_fen, on: date },
                )
            })?;
            p.fine_paid_fen += settled.principal_fen;
            p.late_fee_paid_fen += settled.late_fee_fen;
            fx.payment = Some(settled);
        }
        Action::Publish => {
            if before.outcome() != Some(Outcome::Penalty) {
                return Err(refuse(action, stage));
            }
            if before.published_on.is_some() {
                return Err(ApiError::conflict(ErrorCode::AlreadyPublished, Msg::AlreadyPublished));
            }
            row.published_on = Some(date);
            p.publication_url = input.url.clone();
        }
        Action::Close => {
            if matches!(stage, Stage::Served | Stage::Executing) {
                let fine_left = before.fine_fen.unwrap_or(0) - p.fine_paid_fen;
                let late = late_fee::standing(&before.fine_terms(), paid, date).late_fee_outstanding_fen;
                let reasoned = input.reason.as_deref().is_some_and(|r| !r.trim().is_empty());
                if (fine_left > 0 || late > 0) && !reasoned {
                    return Err(ApiError::conflict(
                        ErrorCode::FineOutstanding,
                        Msg::FineOutstanding { fine_fen: fine_left, late_fee_fen: late },
                    ));
                }
            }
            row.closed_on = Some(date);
        }
    }
    if action.is_step() {
        row.last_step_on = Some(date);
    }
    row.set_process(&p);
    fx.date = Some(date);
    Ok((row, fx))
}

/// `decide`: the outcome's stage, and for a penalty the rules of XCF §§44–63 as docs/domain.md states them.
#[allow(clippy::too_many_arguments)]
fn decide(
    conn: &mut DbConn,
    before: &CaseRow,
    row: &mut CaseRow,
    p: &mut super::Process,
    input: &Input,
    config: &CaseConfig,
    caller: &str,
    date: NaiveDate,
) -> Result<(), ApiError> {
    let d = input.decision.as_ref().ok_or_else(|| ApiError::internal("decide without decision"))?;
    let outcome = d.outcome;
    // A review once asked for is concluded before anyone decides, whatever the outcome.
    if p.legal_review.as_ref().is_some_and(|r| r.status == ReviewStatus::Pending) {
        return Err(ApiError::conflict(ErrorCode::LegalReviewRequired, Msg::LegalReviewPending));
    }
    row.stage = match outcome {
        Outcome::Penalty => Stage::Decided,
        Outcome::NoPenalty => Stage::NoPenalty,
        Outcome::Transfer => Stage::Transferred,
    }
    .as_str()
    .into();
    if outcome == Outcome::Penalty {
        let notified = before.notified_on.ok_or_else(|| ApiError::internal("notified case without notice"))?;
        let deadline = statement_deadline(notified);
        if !before.statement_waived && date <= deadline {
            return Err(ApiError::conflict(ErrorCode::StatementWindowOpen, Msg::StatementWindowOpen(deadline)));
        }
        let proposed = before.proposed_fine_fen.unwrap_or(0);
        if d.fine_fen > proposed {
            return Err(ApiError::conflict(
                ErrorCode::FineExceedsProposed,
                Msg::FineExceedsProposed { fine_fen: d.fine_fen, proposed_fen: proposed },
            ));
        }
        let major =
            d.fine_fen >= config.major_fine(before.party_kind()) || d.penalty_types.contains(&PenaltyType::Revocation);
        let approved = p.legal_review.as_ref().is_some_and(|r| r.status == ReviewStatus::Approved);
        if major && !approved {
            return Err(ApiError::conflict(ErrorCode::LegalReviewRequired, Msg::LegalReviewRequired));
        }
    }
    if let Some(due) = before.decision_due {
        if date > due && d.extension_reason.is_none() {
            return Err(ApiError::conflict(ErrorCode::DecisionOverdue, Msg::DecisionOverdue(due)));
        }
    }
    row.outcome = Some(outcome.as_str().into());
    row.decision_date = Some(date);
    p.decided_by = Some(caller.to_string());
    p.extension_reason = d.extension_reason.clone();
    if let Some(basis) = &d.legal_basis {
        row.legal_basis = Some(basis.clone());
    }
    if outcome != Outcome::Transfer {
        let n = crate::db::next_counter(conn, &format!("decision_no:{}", date.year()))?;
        row.decision_no = Some(number(&config.decision_no_pattern, date.year(), n));
    }
    if outcome == Outcome::Penalty {
        row.fine_fen = Some(d.fine_fen);
        p.penalty_types = d.penalty_types.clone();
        p.penalty_content = d.penalty_content.clone();
        row.publication_due = Some(crate::calendar::working_days_after(conn, date, PUBLICATION_WORKING_DAYS)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_their_pattern() {
        assert_eq!(number("清水罚〔{year}〕{n}号", 2022, 9), "清水罚〔2022〕9号");
    }

    #[test]
    fn every_stage_has_a_way_on_or_is_the_end() {
        for stage in Stage::ALL {
            let onward = Action::ALL.iter().any(|a| a.transition().0.contains(&stage));
            assert!(onward || stage == Stage::Closed, "{stage:?} is a dead end");
        }
    }
}
