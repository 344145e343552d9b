//! The rules of inspections and rectifications, independent of HTTP: a rectification goes `open` → `rectified`
//! (completed with a note and its date) and reads `overdue` while open past its due date; findings are due no
//! earlier than the inspection; an inspection lies in the past; escalation names the violation its findings show.

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};

use crate::audit::EntityType;
use crate::cases::ViolationType;
use crate::error::{ApiError, ErrorCode};
use crate::messages::Msg;
use crate::text_enum;

/// How far ahead of the server's clock a device's `inspected_at` may be (phones' clocks drift).
pub const CLOCK_SKEW: TimeDelta = TimeDelta::minutes(10);
/// Findings one inspection may record.
pub const MAX_FINDINGS: usize = 50;
/// Inspectors one inspection may list.
pub const MAX_INSPECTORS: usize = 20;

text_enum! {
    /// 发现问题类型.
    pub enum FindingType {
        MeterNotWorking = ("meter_not_working", "计量设施不能正常运行"),
        MeterNonstandard = ("meter_nonstandard", "计量设施不符合标准"),
        RecordsIncomplete = ("records_incomplete", "取用水台账不完整"),
        UnlicensedAbstraction = ("unlicensed_abstraction", "未经许可取水"),
        OverPermitAbstraction = ("over_permit_abstraction", "超许可取水"),
        Other = ("other", "其他"),
    }
}

text_enum! {
    /// 整改状态 (`overdue` is read, not stored: open past its due date).
    pub enum RectificationStatus {
        Open = ("open", "整改中"),
        Rectified = ("rectified", "已整改"),
        Overdue = ("overdue", "逾期未整改"),
    }
}

text_enum! {
    /// The actions of `POST /api/v1/rectifications/{id}/{action}`.
    pub enum Action {
        Complete = ("complete", "整改完成"),
    }
}

/// The bureau's date (Asia/Shanghai, UTC+8 all year) of a UTC instant.
pub fn bureau_date(at: NaiveDateTime) -> NaiveDate {
    (at + TimeDelta::hours(8)).date()
}

/// The earliest `inspected_at` taken (as for dates: from 1900).
fn earliest() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(1900, 1, 1).expect("a real day").and_hms_opt(0, 0, 0).expect("midnight")
}

/// A stored status as read on `today`.
pub fn status_on(stored: &str, due: NaiveDate, today: NaiveDate) -> RectificationStatus {
    match RectificationStatus::parse(stored) {
        Some(RectificationStatus::Open) if due < today => RectificationStatus::Overdue,
        Some(s) => s,
        None => RectificationStatus::Open,
    }
}

/// `inspected_at` may not lie in the future (beyond [`CLOCK_SKEW`]).
pub fn check_inspected_at(at: NaiveDateTime, now: NaiveDateTime) -> Result<(), Msg> {
    if at > now + CLOCK_SKEW {
        Err(Msg::InspectedInFuture)
    } else if at < earliest() {
        Err(Msg::DateRange)
    } else {
        Ok(())
    }
}

/// A finding is due on or after the inspection's date.
pub fn check_due(due: NaiveDate, inspected_on: NaiveDate) -> Result<(), Msg> {
    if due < inspected_on {
        Err(Msg::DueBeforeInspection(inspected_on))
    } else {
        Ok(())
    }
}

/// Completing: only an open rectification (overdue or not); the date no earlier than the inspection and not in
/// the future.
pub fn complete(
    stored: &str,
    inspected_on: NaiveDate,
    given: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<NaiveDate, ApiError> {
    if stored != RectificationStatus::Open.as_str() {
        let status = RectificationStatus::parse(stored).unwrap_or(RectificationStatus::Rectified);
        return Err(ApiError::conflict(
            ErrorCode::InvalidTransition,
            Msg::InvalidTransition {
                entity: EntityType::Rectification.label(),
                action: Action::Complete.label(),
                status: status.label(),
            },
        ));
    }
    crate::domain::dates::effective_date(given, Some(inspected_on), today)
}

/// The violation an inspection's findings point to, when the caller names none: the first finding that is a
/// violation in itself; `other` when none is.
pub fn violation_of(findings: &[FindingType]) -> ViolationType {
    findings
        .iter()
        .find_map(|f| match f {
            FindingType::UnlicensedAbstraction => Some(ViolationType::UnlicensedAbstraction),
            FindingType::OverPermitAbstraction => Some(ViolationType::OverPermitAbstraction),
            _ => None,
        })
        .unwrap_or(ViolationType::Other)
}

/// Longest facts of a case (characters).
pub const MAX_FACTS_CHARS: usize = 10_000;

/// The facts of a case opened from findings, when the caller writes none: "巡查发现：1. …；2. …。", cut to
/// [`MAX_FACTS_CHARS`].
pub fn facts_of(descriptions: &[String]) -> String {
    if descriptions.is_empty() {
        return "巡查发现问题，移送立案调查。".into();
    }
    let items: Vec<String> = descriptions
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{}. {}", i + 1, d.trim_end_matches(['。', '；', ';', '.'])))
        .collect();
    let facts = format!("巡查发现：{}。", items.join("；"));
    if facts.chars().count() <= MAX_FACTS_CHARS {
        facts
    } else {
        facts.chars().take(MAX_FACTS_CHARS - 1).chain(std::iter::once('…')).collect()
    }
}

/// A finding's status as it stood at the end of `day`: open unless rectified on or before it (a later completion
/// had not happened yet), overdue when open past its due date.
pub fn status_as_of(completed_on: Option<NaiveDate>, due: NaiveDate, day: NaiveDate) -> RectificationStatus {
    let open = completed_on.is_none_or(|c| c > day);
    status_on(if open { "open" } else { "rectified" }, due, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn overdue_is_read_after_the_due_date_while_open() {
        assert_eq!(status_on("open", d("2026-03-31"), d("2026-03-31")), RectificationStatus::Open);
        assert_eq!(status_on("open", d("2026-03-31"), d("2026-04-01")), RectificationStatus::Overdue);
        assert_eq!(status_on("rectified", d("2026-03-31"), d("2026-04-01")), RectificationStatus::Rectified);
    }

    #[test]
    fn the_bureau_date_is_shanghai() {
        let at = NaiveDateTime::parse_from_str("2026-03-31 16:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(bureau_date(at), d("2026-04-01"));
        assert_eq!(bureau_date(at - TimeDelta::seconds(1)), d("2026-03-31"));
    }

    #[test]
    fn completing_twice_is_refused_and_dates_are_bounded() {
        assert_eq!(complete("open", d("2026-03-01"), None, d("2026-03-10")).unwrap(), d("2026-03-10"));
        assert!(complete("open", d("2026-03-01"), Some(d("2026-02-28")), d("2026-03-10")).is_err());
        assert!(complete("open", d("2026-03-01"), Some(d("2026-03-11")), d("2026-03-10")).is_err());
        assert!(complete("rectified", d("2026-03-01"), None, d("2026-03-10")).is_err());
    }

    #[test]
    fn ancient_and_future_inspections_are_refused() {
        let now = NaiveDateTime::parse_from_str("2026-03-31 08:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        assert!(check_inspected_at(now + CLOCK_SKEW, now).is_ok());
        assert!(check_inspected_at(now + CLOCK_SKEW + TimeDelta::seconds(1), now).is_err());
        assert!(check_inspected_at(earliest(), now).is_ok());
        assert!(check_inspected_at(earliest() - TimeDelta::seconds(1), now).is_err());
        // No panic for any instant a client can send.
        let year_one = NaiveDate::from_ymd_opt(1, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        assert_eq!(bureau_date(year_one), NaiveDate::from_ymd_opt(1, 1, 1).unwrap());
    }

    #[test]
    fn long_findings_make_bounded_facts() {
        let long = vec!["很长的问题描述".repeat(300); 50];
        assert_eq!(facts_of(&long).chars().count(), MAX_FACTS_CHARS);
        let due = d("2026-01-01");
        assert_eq!(status_as_of(None, due, d("2026-01-01")), RectificationStatus::Open);
        assert_eq!(status_as_of(None, due, d("2026-01-02")), RectificationStatus::Overdue);
        assert_eq!(status_as_of(Some(d("2026-01-05")), due, d("2026-01-03")), RectificationStatus::Overdue);
        assert_eq!(status_as_of(Some(d("2026-01-05")), due, d("2026-01-05")), RectificationStatus::Rectified);
    }

    #[test]
    fn escalation_reads_the_violation_and_facts_from_findings() {
        use FindingType::*;
        assert_eq!(violation_of(&[MeterNotWorking, OverPermitAbstraction]), ViolationType::OverPermitAbstraction);
        assert_eq!(violation_of(&[RecordsIncomplete]), ViolationType::Other);
        assert_eq!(facts_of(&["计量设施损坏。".into(), "台账缺失".into()]), "巡查发现：1. 计量设施损坏；2. 台账缺失。");
    }
}
