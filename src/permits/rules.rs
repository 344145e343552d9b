//! The permit state machine and its rules (TL §§7, 20, 25; DXS §35), independent of HTTP.

use chrono::{NaiveDate, TimeDelta};

use super::{PermitRow, PermitStatus};
use crate::audit::EntityType;
use crate::db::DbConn;
use crate::domain::dates::{add_years, effective_date};
use crate::error::{ApiError, ErrorCode};
use crate::messages::Msg;
use crate::text_enum;
use crate::water_zones::{self, ZoneClass, ZoneRow};
use crate::write::Versioned;

/// Longest term of a permit (TL §25).
pub const MAX_TERM_YEARS: u32 = 10;
/// Renewal must be applied for at least this many days before expiry (TL §25).
pub const RENEWAL_LEAD_DAYS: i64 = 45;

text_enum! {
    /// The actions of `POST /api/v1/permits/{id}/{action}`.
    pub enum Action {
        Submit = ("submit", "提交"),
        Approve = ("approve", "批准"),
        Reject = ("reject", "不予批准"),
        Renew = ("renew", "延续"),
        Suspend = ("suspend", "暂停"),
        Reinstate = ("reinstate", "恢复"),
        Revoke = ("revoke", "吊销"),
        Cancel = ("cancel", "注销"),
    }
}

impl Action {
    /// The statuses (as read today, `expired` included) the action may start from, and where it leads.
    pub fn transition(self) -> (&'static [PermitStatus], PermitStatus) {
        use PermitStatus::*;
        match self {
            Action::Submit => (&[Draft], Submitted),
            Action::Approve => (&[Submitted], Approved),
            Action::Reject => (&[Submitted], Rejected),
            Action::Renew => (&[Approved], Approved),
            Action::Suspend => (&[Approved], Suspended),
            Action::Reinstate => (&[Suspended], Approved),
            Action::Revoke => (&[Approved, Suspended], Revoked),
            Action::Cancel => (&[Approved, Suspended], Cancelled),
        }
    }

    pub fn requires_reason(self) -> bool {
        matches!(self, Action::Reject | Action::Suspend | Action::Revoke | Action::Cancel)
    }
}

/// What an action's body carries (fields an action does not use are refused by its own body type).
#[derive(Debug, Default, Clone)]
pub struct ActionInput {
    pub reason: Option<String>,
    pub effective_date: Option<NaiveDate>,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    pub annual_volume_m3: Option<i64>,
}

/// Term checks shared by drafts and approvals: `valid_to` after `valid_from`, at most 10 years.
pub fn check_term(valid_from: NaiveDate, valid_to: NaiveDate) -> Result<(), ApiError> {
    if valid_to <= valid_from {
        return Err(ApiError::invalid("valid_to", Msg::AfterValidFrom));
    }
    if valid_to > add_years(valid_from, MAX_TERM_YEARS) {
        return Err(ApiError::invalid("valid_to", Msg::TermAtMost { years: MAX_TERM_YEARS }));
    }
    Ok(())
}

/// Zone rules for putting `row` (with its term and annual volume) into force in its zone: prohibited zones
/// take nothing, restricted zones no new groundwater, and the annual volumes of the zone's permits whose terms
/// overlap this one's, plus this one's, may not exceed the zone's allowable volume. Takes the zone's row lock
/// first so that cap checks of concurrent approvals run one after the other.
fn check_zone(conn: &mut DbConn, row: &PermitRow, check_cap: bool, new_permit: bool) -> Result<(), ApiError> {
    let Some(zone_id) = &row.zone_id else { return Ok(()) };
    let zone = ZoneRow::lock(conn, zone_id)?.ok_or_else(|| ApiError::internal("permit refers to a missing zone"))?;
    match ZoneClass::parse(&zone.zone_class) {
        Some(ZoneClass::Prohibited) => {
            return Err(ApiError::conflict(ErrorCode::ZoneProhibited, Msg::ZoneProhibited(zone.name)));
        }
        Some(ZoneClass::Restricted) if new_permit && row.source().is_groundwater() => {
            return Err(ApiError::conflict(ErrorCode::ZoneRestricted, Msg::ZoneRestricted(zone.name)));
        }
        _ => {}
    }
    let (Some(from), Some(to)) = (row.valid_from, row.valid_to) else { return Ok(()) };
    if check_cap {
        let others = water_zones::committed_overlapping(conn, zone_id, from, to, &row.id)?;
        if i128::from(others) + i128::from(row.annual_volume_m3) > i128::from(zone.allowable_m3_per_year) {
            return Err(ApiError::conflict(
                ErrorCode::ZoneCapExceeded,
                Msg::ZoneCapExceeded {
                    zone: zone.name,
                    approved: others,
                    allowable: zone.allowable_m3_per_year,
                    extra: row.annual_volume_m3,
                },
            ));
        }
    }
    Ok(())
}

/// Applies `action` to `row` (read in this transaction). Returns the updated row; the caller saves and audits it.
pub fn apply(
    conn: &mut DbConn,
    before: &PermitRow,
    action: Action,
    input: &ActionInput,
    letter: &str,
    today: NaiveDate,
) -> Result<PermitRow, ApiError> {
    let current = before.status_on(today);
    let (from, to) = action.transition();
    if !from.contains(&current) {
        return Err(ApiError::conflict(
            ErrorCode::InvalidTransition,
            Msg::InvalidTransition {
                entity: EntityType::Permit.label(),
                action: action.label(),
                status: current.label(),
            },
        ));
    }
    if action.requires_reason() && input.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(ApiError::invalid("reason", Msg::ReasonRequired { action: action.label() }));
    }
    let date = effective_date(input.effective_date, before.last_step_on, today)?;
    let mut row = before.clone();
    row.status = to.as_str().to_string();
    row.last_step_on = Some(date);
    match action {
        Action::Submit => row.submitted_on = Some(date),
        Action::Reject => row.rejected_on = Some(date),
        Action::Suspend => row.suspended_on = Some(date),
        Action::Reinstate => {}
        Action::Revoke => row.revoked_on = Some(date),
        Action::Cancel => row.cancelled_on = Some(date),
        Action::Approve => {
            let valid_from = input
                .valid_from
                .or(row.valid_from)
                .ok_or_else(|| ApiError::invalid("valid_from", Msg::RequiredToApprove))?;
            let valid_to =
                input.valid_to.or(row.valid_to).ok_or_else(|| ApiError::invalid("valid_to", Msg::RequiredToApprove))?;
            check_term(valid_from, valid_to)?;
            row.valid_from = Some(valid_from);
            row.valid_to = Some(valid_to);
            check_zone(conn, &row, true, true)?;
            row.approved_on = Some(date);
            row.permit_no = Some(next_permit_no(conn, &row, letter, date)?);
        }
        Action::Renew => {
            let old_to = before.valid_to.ok_or_else(|| ApiError::internal("approved permit without valid_to"))?;
            let new_to = input.valid_to.ok_or_else(|| ApiError::invalid("valid_to", Msg::NewEndRequired))?;
            if date > old_to - TimeDelta::days(RENEWAL_LEAD_DAYS) {
                return Err(ApiError::conflict(
                    ErrorCode::RenewalTooLate,
                    Msg::RenewalTooLate { days: RENEWAL_LEAD_DAYS, valid_to: old_to },
                ));
            }
            if new_to <= old_to {
                return Err(ApiError::invalid("valid_to", Msg::AfterCurrentEnd(old_to)));
            }
            if new_to > add_years(date, MAX_TERM_YEARS) {
                return Err(ApiError::invalid("valid_to", Msg::RenewalTermAtMost { years: MAX_TERM_YEARS }));
            }
            if let Some(v) = input.annual_volume_m3 {
                if !(1..=crate::domain::MAX_VOLUME_M3).contains(&v) {
                    return Err(ApiError::invalid("annual_volume_m3", Msg::VolumeRange { min: 1 }));
                }
                row.annual_volume_m3 = v;
            }
            row.valid_to = Some(new_to);
            check_zone(conn, &row, row.annual_volume_m3 > before.annual_volume_m3, false)?;
            row.renewed_on = Some(date);
        }
    }
    Ok(row)
}

/// The next permit number in the national pattern: letter, region code (the holder's), `S` surface or
/// `G` groundwater, year of approval, serial per prefix and year — e.g. `D520181G2022-0001`. The counter row
/// is locked until commit, so concurrent approvals never share a number.
fn next_permit_no(conn: &mut DbConn, row: &PermitRow, letter: &str, date: NaiveDate) -> Result<String, ApiError> {
    use chrono::Datelike;
    let holder =
        crate::water_users::find(conn, &row.holder_id)?.ok_or_else(|| ApiError::internal("permit without holder"))?;
    let kind = if row.source().is_groundwater() { 'G' } else { 'S' };
    let prefix = format!("{letter}{}{kind}{}", holder.region_code, date.year());
    let serial = crate::db::next_counter(conn, &format!("permit_no:{prefix}"))?;
    Ok(format!("{prefix}-{serial:04}"))
}
