//! `/api/v1/reports/summary` — the figures of the bureau's half-year (or yearly) work report, computed from the
//! records of a window of dates (docs/api.md, "Reports"; the rule for each figure is in docs/domain.md), as JSON and
//! as a printable Chinese document with charts ([`document`]).
//!
//! Every figure is read in one database snapshot, so the figures agree with each other, and each is the figure the
//! matching list gives read on `to`: `fees.outstanding_fen` the `totals.outstanding_fen` of
//! `GET /fee-assessments?kind=water_resource_fee&as_of=to` over the quarters ended by then, `planned_use.coverage_pct`
//! the coverage of the year of `to`, and so on. Permits count when in force on `to` (so a zone's figure leaves out
//! approved permits whose term starts later, which `GET /water-zones` counts as committed). Windows are inclusive
//! dates at the bureau (Asia/Shanghai).

pub mod document;
pub mod routes;

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, TimeDelta};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::bureau_day_start;
use crate::db::schema::{
    cases as c, fee_assessments as fa, inspections as i, payments as pm, permits as p, rectifications as r,
    water_zones as z, withdrawals as wd,
};
use crate::db::DbConn;
use crate::domain::dates::{percent_1dp, Month, Quarter};
use crate::domain::water::{PermitStatus, SourceType};
use crate::fees::Kind as FeeKind;
use crate::inspections::rules::RectificationStatus;
use crate::inspections::Kind as InspectionKind;
use crate::planned_use::Category;

/// Days after `to` within which an in-force permit's term ending counts as "expiring" (renewal is due 45 days
/// before the end: the list of the next 90 days is what the office works through).
pub const EXPIRING_DAYS: i64 = 90;

/// The longest window a summary covers (a report is half-yearly or yearly; five years bounds the work).
pub const MAX_WINDOW_DAYS: i64 = 5 * 366;

/// An inclusive window of dates at the bureau.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Window {
    /// The months lying wholly inside the window, as `(first, last)` (`None` when there is none).
    pub fn months(self) -> Option<(Month, Month)> {
        let first = Month::of(self.from);
        let first = if first.first_day() == self.from { first } else { next_month(first) };
        let last = Month::of(self.to);
        let last = if last.last_day() == self.to { last } else { previous_month(last) };
        (first.first_day() <= last.first_day()).then_some((first, last))
    }

    /// Every month lying wholly inside the window, in order.
    pub fn month_list(self) -> Vec<Month> {
        let Some((first, last)) = self.months() else { return Vec::new() };
        let mut months = vec![first];
        while let Some(&m) = months.last().filter(|m| **m != last) {
            months.push(next_month(m));
        }
        months
    }

    /// The quarters lying wholly inside the window, in order.
    pub fn quarters(self) -> Vec<Quarter> {
        (self.from.year()..=self.to.year())
            .flat_map(|year| (1..=4).map(move |quarter| Quarter { year, quarter }))
            .filter(|q| q.months()[0].first_day() >= self.from && q.last_day() <= self.to)
            .collect()
    }

    /// The billing periods lying wholly inside the window: its quarters (`2022-Q1`) and its whole years (`2022`).
    pub fn periods(self) -> Vec<String> {
        let years = (self.from.year()..=self.to.year()).filter(|&y| {
            NaiveDate::from_ymd_opt(y, 1, 1).is_some_and(|d| d >= self.from)
                && NaiveDate::from_ymd_opt(y, 12, 31).is_some_and(|d| d <= self.to)
        });
        self.quarters().iter().map(Quarter::to_string).chain(years.map(|y| format!("{y:04}"))).collect()
    }

    /// Instants at the bureau from the start of `from` up to (not including) the start of the day after `to`.
    fn instants(self) -> (chrono::NaiveDateTime, chrono::NaiveDateTime) {
        (bureau_day_start(self.from), bureau_day_start(self.to + TimeDelta::days(1)))
    }
}

fn next_month(m: Month) -> Month {
    if m.month == 12 {
        Month { year: m.year + 1, month: 1 }
    } else {
        Month { year: m.year, month: m.month + 1 }
    }
}

fn previous_month(m: Month) -> Month {
    if m.month == 1 {
        Month { year: m.year - 1, month: 12 }
    } else {
        Month { year: m.year, month: m.month - 1 }
    }
}

/// The figures of a work report for a window (API §4.12).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "from": "2022-01-01", "to": "2022-06-30",
    "permits": {"active": 41, "approved_in_period": 6, "expiring_within_90_days": 3, "zones": [
        {"zone_id": "0193a0c4-0000-7000-8000-000000000101", "name": "赤水河干流", "approved_m3_per_year": 3300000,
         "allowable_m3_per_year": 10000000, "utilization_pct": "33.0"}]},
    "withdrawals": {"volume_m3": 1620400, "by_source_type": {"groundwater_deep": 0, "groundwater_shallow": 120400,
        "karst": 0, "mine_drainage": 0, "reclaimed": 0, "surface": 1500000}},
    "inspections": {"count": 38, "by_kind": {"other": 2, "river": 12, "soil_conservation": 4, "water_permit": 15,
        "water_saving": 5}, "findings": 9, "rectified": 6, "open": 3, "overdue": 1},
    "fees": {"assessed_fen": 9280000, "collected_fen": 8400000, "late_fee_collected_fen": 72000, "outstanding_fen": 880000},
    "planned_use": {"registered": 270, "with_plan": 249, "by_category": {"non_residential": 231, "self_supplied": 12,
        "temporary_construction": 6}, "coverage_pct": "92.2", "key_monitoring_users": 14,
        "surcharge_assessed_fen": 1236000, "surcharge_collected_fen": 1236000},
    "enforcement": {"cases_filed": 7, "under_investigation": 2, "decided_with_penalty": 5, "fines_fen": 4200000,
        "published": 5, "published_on_time": 4}
}))]
pub struct Summary {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    pub permits: PermitFigures,
    pub withdrawals: WithdrawalFigures,
    pub inspections: InspectionFigures,
    pub fees: FeeFigures,
    pub planned_use: PlannedUseFigures,
    pub enforcement: EnforcementFigures,
}

/// 取水许可: permits in force on `to`, approved in the window, expiring soon; allocation per zone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PermitFigures {
    /// In force on `to`: approved by then, `to` within the term, and not suspended, revoked or cancelled by then.
    pub active: i64,
    /// Approved (`approved_on`) within the window.
    pub approved_in_period: i64,
    /// In force on `to` with `valid_to` within 90 days after it.
    pub expiring_within_90_days: i64,
    /// Every zone: the annual volume of its permits in force on `to` against its allowable volume.
    pub zones: Vec<ZoneFigures>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ZoneFigures {
    pub zone_id: String,
    pub name: String,
    pub approved_m3_per_year: i64,
    pub allowable_m3_per_year: i64,
    /// approved ÷ allowable, percent with one decimal (half-up); null for a zone allowed nothing.
    pub utilization_pct: Option<String>,
}

/// 取水量: the months lying wholly inside the window (current revisions), by the permit's source type.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WithdrawalFigures {
    pub volume_m3: i64,
    /// Every source type, with 0 where nothing was taken.
    pub by_source_type: BTreeMap<String, i64>,
}

/// 监督检查: inspections made in the window and what became of their findings by `to`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InspectionFigures {
    /// Inspections with `inspected_at` in the window (its dates in Asia/Shanghai).
    pub count: i64,
    /// Every kind, with 0 where none was made.
    pub by_kind: BTreeMap<String, i64>,
    /// Findings (rectifications) those inspections raised.
    pub findings: i64,
    /// Of those, completed on or before `to`.
    pub rectified: i64,
    /// Of those, not completed by `to`.
    pub open: i64,
    /// Of the open ones, those whose `rectification_due` is before `to`.
    pub overdue: i64,
}

/// 水资源费 (the water-resource fee only; surcharges are under `planned_use`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeeFigures {
    /// Assessed for billing periods lying wholly inside the window.
    pub assessed_fen: i64,
    /// Principal paid with `paid_on` in the window.
    pub collected_fen: i64,
    /// Late fees paid with `paid_on` in the window.
    pub late_fee_collected_fen: i64,
    /// Principal still unpaid on `to`, over every period that had ended by then (waived amounts excluded).
    pub outstanding_fen: i64,
}

/// 计划用水.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlannedUseFigures {
    /// Active planned users (the register as it stands: planned users carry no registration date).
    pub registered: i64,
    /// Of those, with a plan for the year of `to`.
    pub with_plan: i64,
    /// `with_plan` by category (every category, 0 where none).
    pub by_category: BTreeMap<String, i64>,
    /// with_plan ÷ registered, percent with one decimal (half-up); "0.0" with none registered.
    pub coverage_pct: String,
    /// On the key-monitoring list in force in the year of `to` (usage of the year before ≥ the threshold).
    pub key_monitoring_users: i64,
    /// Over-plan surcharges assessed for periods (quarters, years) lying wholly inside the window.
    pub surcharge_assessed_fen: i64,
    /// Surcharge principal paid with `paid_on` in the window.
    pub surcharge_collected_fen: i64,
}

/// 行政执法.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnforcementFigures {
    /// Cases filed (`filed_on`) in the window.
    pub cases_filed: i64,
    /// Of those, without a decision by `to`.
    pub under_investigation: i64,
    /// Of those, decided with a penalty by `to`.
    pub decided_with_penalty: i64,
    /// The fines of those decided with a penalty.
    pub fines_fen: i64,
    /// Penalty decisions made in the window and published by `to` (双公示).
    pub published: i64,
    /// Of those, published by their `publication_due`.
    pub published_on_time: i64,
}

/// What the summary needs beyond the window (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// A year's usage that puts a planned user on the next year's key-monitoring list.
    pub key_monitoring_m3: i64,
}

const SUM: &str = "CAST(COALESCE(SUM(annual_volume_m3), 0) AS BIGINT)";

pub(crate) fn sum_of(column: &str) -> diesel::expression::SqlLiteral<BigInt> {
    sql::<BigInt>(&format!("CAST(COALESCE(SUM({column}), 0) AS BIGINT)"))
}

type Sql = <DbConn as Connection>::Backend;

/// Permits in force on `on`: approved by then with `on` inside the term, and (as they stand today) still approved,
/// or suspended, revoked or cancelled only after `on`.
fn in_force_on(on: NaiveDate) -> Box<dyn BoxableExpression<p::table, Sql, SqlType = Bool>> {
    use PermitStatus::*;
    Box::new(
        p::approved_on
            .le(on)
            .and(p::valid_from.le(on))
            .and(p::valid_to.ge(on))
            .and(
                p::status
                    .eq(Approved.as_str())
                    .or(p::status.eq(Suspended.as_str()).and(p::suspended_on.gt(on)))
                    .or(p::status.eq(Revoked.as_str()).and(p::revoked_on.gt(on)))
                    .or(p::status.eq(Cancelled.as_str()).and(p::cancelled_on.gt(on))),
            )
            .assume_not_null(),
    )
}

/// Every figure of the summary, read in one snapshot.
pub fn summary(conn: &mut DbConn, w: Window, settings: Settings) -> QueryResult<Summary> {
    crate::db::snapshot(conn, |conn| figures(conn, w, settings))
}

/// Every figure of the summary, read in the caller's transaction.
pub fn figures(conn: &mut DbConn, w: Window, settings: Settings) -> QueryResult<Summary> {
    Ok(Summary {
        from: w.from,
        to: w.to,
        permits: permits(conn, w)?,
        withdrawals: withdrawals(conn, w)?,
        inspections: inspections(conn, w)?,
        fees: fees(conn, w)?,
        planned_use: planned_use(conn, w, settings)?,
        enforcement: enforcement(conn, w)?,
    })
}

fn permits(conn: &mut DbConn, w: Window) -> QueryResult<PermitFigures> {
    let active: i64 = p::table.filter(in_force_on(w.to)).count().get_result(conn)?;
    let approved_in_period: i64 =
        p::table.filter(p::approved_on.ge(w.from)).filter(p::approved_on.le(w.to)).count().get_result(conn)?;
    let expiring_within_90_days: i64 = p::table
        .filter(in_force_on(w.to))
        .filter(p::valid_to.le(w.to + TimeDelta::days(EXPIRING_DAYS)))
        .count()
        .get_result(conn)?;
    let mut zones: Vec<(String, String, i64)> =
        z::table.select((z::id, z::name, z::allowable_m3_per_year)).load(conn)?;
    // By name, the same on both databases (whose collations of Chinese differ).
    zones.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    let approved: Vec<(Option<String>, i64)> =
        p::table.filter(in_force_on(w.to)).group_by(p::zone_id).select((p::zone_id, sql::<BigInt>(SUM))).load(conn)?;
    let approved: BTreeMap<String, i64> = approved.into_iter().filter_map(|(z, v)| z.map(|z| (z, v))).collect();
    let zones = zones
        .into_iter()
        .map(|(zone_id, name, allowable)| {
            let approved = approved.get(&zone_id).copied().unwrap_or(0);
            ZoneFigures {
                utilization_pct: percent_1dp(approved, allowable),
                zone_id,
                name,
                approved_m3_per_year: approved,
                allowable_m3_per_year: allowable,
            }
        })
        .collect();
    Ok(PermitFigures { active, approved_in_period, expiring_within_90_days, zones })
}

/// Withdrawals (current revisions) of the months `first..=last`, by source type, summed by the database.
pub fn withdrawals_by_source(conn: &mut DbConn, first: Month, last: Month) -> QueryResult<Vec<(String, i64)>> {
    wd::table
        .inner_join(p::table)
        .filter(wd::superseded.eq(false))
        .filter(wd::period.ge(first.to_string()))
        .filter(wd::period.le(last.to_string()))
        .group_by(p::source_type)
        .select((p::source_type, sum_of("withdrawals.volume_m3")))
        .load(conn)
}

fn withdrawals(conn: &mut DbConn, w: Window) -> QueryResult<WithdrawalFigures> {
    let mut by_source_type: BTreeMap<String, i64> = SourceType::ALL.iter().map(|s| (s.as_str().into(), 0)).collect();
    if let Some((first, last)) = w.months() {
        for (source, volume) in withdrawals_by_source(conn, first, last)? {
            *by_source_type.entry(source).or_insert(0) += volume;
        }
    }
    Ok(WithdrawalFigures { volume_m3: by_source_type.values().sum(), by_source_type })
}

fn inspections(conn: &mut DbConn, w: Window) -> QueryResult<InspectionFigures> {
    let (start, end) = w.instants();
    let in_window = || i::table.filter(i::inspected_at.ge(start)).filter(i::inspected_at.lt(end));
    let kinds: Vec<(String, i64)> =
        in_window().group_by(i::kind).select((i::kind, sql::<BigInt>("CAST(COUNT(*) AS BIGINT)"))).load(conn)?;
    let mut by_kind: BTreeMap<String, i64> = InspectionKind::ALL.iter().map(|k| (k.as_str().into(), 0)).collect();
    for (kind, n) in kinds {
        *by_kind.entry(kind).or_insert(0) += n;
    }
    let findings = || r::table.filter(r::inspection_id.eq_any(in_window().select(i::id)));
    let count: i64 = by_kind.values().sum();
    let all: i64 = findings().count().get_result(conn)?;
    let rectified: i64 = findings()
        .filter(r::status.eq(RectificationStatus::Rectified.as_str()))
        .filter(r::completed_on.le(w.to))
        .count()
        .get_result(conn)?;
    let open = all - rectified;
    // Open on `to` (not rectified, or rectified only after it) and due before it.
    let overdue: i64 = findings()
        .filter(r::rectification_due.lt(w.to))
        .filter(
            r::status
                .ne(RectificationStatus::Rectified.as_str())
                .or(r::completed_on.is_null())
                .or(r::completed_on.gt(w.to)),
        )
        .count()
        .get_result(conn)?;
    Ok(InspectionFigures { count, by_kind, findings: all, rectified, open, overdue })
}

/// Principal and late fee paid in the window on assessments of `kind`.
fn collected(conn: &mut DbConn, w: Window, kind: FeeKind) -> QueryResult<(i64, i64)> {
    pm::table
        .inner_join(fa::table)
        .filter(fa::kind.eq(kind.as_str()))
        .filter(pm::paid_on.ge(w.from))
        .filter(pm::paid_on.le(w.to))
        .select((sum_of("payments.principal_fen"), sum_of("payments.late_fee_fen")))
        .first(conn)
}

/// Assessed for the periods lying wholly inside the window, for assessments of `kind`.
fn assessed(conn: &mut DbConn, w: Window, kind: FeeKind) -> QueryResult<i64> {
    fa::table
        .filter(fa::kind.eq(kind.as_str()))
        .filter(fa::period.eq_any(w.periods()))
        .select(sum_of("amount_fen"))
        .first(conn)
}

fn fees(conn: &mut DbConn, w: Window) -> QueryResult<FeeFigures> {
    let assessed_fen = assessed(conn, w, FeeKind::WaterResourceFee)?;
    let (collected_fen, late_fee_collected_fen) = collected(conn, w, FeeKind::WaterResourceFee)?;
    // Outstanding on `to`, as an assessment's standing computes it: the amount less the principal paid by then,
    // nothing for one waived by then; over the quarters that had ended by then.
    let last_quarter = Quarter { year: w.to.year(), quarter: w.to.month0() / 3 + 1 };
    let last_quarter = if last_quarter.last_day() == w.to {
        last_quarter
    } else if last_quarter.quarter == 1 {
        Quarter { year: last_quarter.year - 1, quarter: 4 }
    } else {
        Quarter { year: last_quarter.year, quarter: last_quarter.quarter - 1 }
    };
    let owing = || {
        fa::table
            .filter(fa::kind.eq(FeeKind::WaterResourceFee.as_str()))
            .filter(fa::period.le(last_quarter.to_string()))
            .filter(fa::waived_on.is_null().or(fa::waived_on.gt(w.to)))
    };
    let amount: i64 = owing().select(sum_of("amount_fen")).first(conn)?;
    let paid: i64 = pm::table
        .filter(pm::assessment_id.eq_any(owing().select(fa::id)))
        .filter(pm::paid_on.le(w.to))
        .select(sum_of("principal_fen"))
        .first(conn)?;
    Ok(FeeFigures { assessed_fen, collected_fen, late_fee_collected_fen, outstanding_fen: amount - paid })
}

fn planned_use(conn: &mut DbConn, w: Window, settings: Settings) -> QueryResult<PlannedUseFigures> {
    let year = w.to.year();
    let coverage = crate::planned_use::routes::coverage_by_category(conn, year)?;
    let mut by_category: BTreeMap<String, i64> = Category::ALL.iter().map(|c| (c.as_str().into(), 0)).collect();
    let (mut registered, mut with_plan) = (0, 0);
    for (category, users, planned) in coverage {
        registered += users;
        with_plan += planned;
        *by_category.entry(category).or_insert(0) += planned;
    }
    let key_monitoring_users =
        crate::planned_use::monitoring::key_monitoring_count(conn, year, settings.key_monitoring_m3)?;
    let surcharge_assessed_fen = assessed(conn, w, FeeKind::OverPlanSurcharge)?;
    let (surcharge_collected_fen, _) = collected(conn, w, FeeKind::OverPlanSurcharge)?;
    Ok(PlannedUseFigures {
        registered,
        with_plan,
        by_category,
        coverage_pct: percent_1dp(with_plan, registered).unwrap_or_else(|| "0.0".into()),
        key_monitoring_users,
        surcharge_assessed_fen,
        surcharge_collected_fen,
    })
}

fn enforcement(conn: &mut DbConn, w: Window) -> QueryResult<EnforcementFigures> {
    let penalty = crate::cases::Outcome::Penalty.as_str();
    let filed = || c::table.filter(c::filed_on.ge(w.from)).filter(c::filed_on.le(w.to));
    let cases_filed: i64 = filed().count().get_result(conn)?;
    let under_investigation: i64 =
        filed().filter(c::decision_date.is_null().or(c::decision_date.gt(w.to))).count().get_result(conn)?;
    let (decided_with_penalty, fines_fen): (i64, i64) = filed()
        .filter(c::outcome.eq(penalty))
        .filter(c::decision_date.le(w.to))
        .select((sql::<BigInt>("CAST(COUNT(*) AS BIGINT)"), sum_of("fine_fen")))
        .first(conn)?;
    let published = || {
        c::table
            .filter(c::outcome.eq(penalty))
            .filter(c::decision_date.ge(w.from))
            .filter(c::decision_date.le(w.to))
            .filter(c::published_on.le(w.to))
    };
    let published_count: i64 = published().count().get_result(conn)?;
    let published_on_time: i64 = published().filter(c::published_on.le(c::publication_due)).count().get_result(conn)?;
    Ok(EnforcementFigures {
        cases_filed,
        under_investigation,
        decided_with_penalty,
        fines_fen,
        published: published_count,
        published_on_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(from: &str, to: &str) -> Window {
        Window { from: from.parse().unwrap(), to: to.parse().unwrap() }
    }

    #[test]
    fn periods_inside_a_window() {
        let h1 = window("2022-01-01", "2022-06-30");
        assert_eq!(h1.periods(), ["2022-Q1", "2022-Q2"]);
        assert_eq!(h1.month_list().len(), 6);
        let year = window("2022-01-01", "2022-12-31");
        assert_eq!(year.periods(), ["2022-Q1", "2022-Q2", "2022-Q3", "2022-Q4", "2022"]);
        // A window cut mid-month counts only the months wholly inside it.
        let cut = window("2022-01-15", "2022-04-10");
        assert_eq!(cut.month_list().iter().map(ToString::to_string).collect::<Vec<_>>(), ["2022-02", "2022-03"]);
        assert!(cut.periods().is_empty());
        assert_eq!(window("2022-01-15", "2022-02-10").months(), None);
        let across = window("2021-12-01", "2022-01-31");
        assert_eq!(across.month_list().iter().map(ToString::to_string).collect::<Vec<_>>(), ["2021-12", "2022-01"]);
    }
}
