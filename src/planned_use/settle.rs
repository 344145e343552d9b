//! `POST /api/v1/plan-settlements` — 超计划用水考核结算: for a year (or a quarter) that has ended, each planned user's
//! usage is set against its plan and the excess charged band by band at the surcharge tiers; every user over plan
//! gets one `over_plan_surcharge` fee assessment, which finance serves, collects and follows like a fee.
//!
//! Plans are taken in batches by planned user, each batch in its own transaction with the audit events of what it
//! created or changed, two at a time on PostgreSQL (see [`crate::db::batches`]), under a lock on the year held by
//! a settlement from start to end, so memory stays flat and two runs never make two records: the database holds one surcharge per planned user and period.
//! Running again creates nothing new. A surcharge not yet served is recalculated when usage, plan, price or tiers
//! changed; a served one is never changed — the run reports its difference. A year is settled either as a year or
//! by quarter, never both (that would charge the same excess twice).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::calc::{self, Tier};
use super::rules::{planned_for, YEARS};
use super::{water_user_names, Category, PlanRow, PlannedUseWrite, PlannedUserRow};
use crate::audit::{self, AuditCtx, EntityType, Event};
use crate::db::schema::{fee_assessments as fa, planned_usage as us, planned_users as pu, plans as pl};
use crate::db::{batches, DbConn};
use crate::domain::dates::{Month, Quarter};
use crate::domain::money::Rate;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::fees::surcharge::{PriceSource, SurchargeBand, SurchargeBasis, SurchargeMonth};
use crate::fees::view::Context;
use crate::fees::{run as fee_run, AssessmentRow, FeeConfig, Kind, Status};
use crate::http::ApiJson;
use crate::messages::Msg;
use crate::security::Authorized;
use crate::state::AppState;
use crate::write::{Reply, Versioned};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(settle);
}

/// Plans per batch (and transaction).
pub const BATCH: i64 = 1000;
/// Users listed in a summary's lists (all are counted).
const LISTED: usize = 100;

/// What to settle: a year, or a quarter.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"year": 2025}))]
pub struct SettlementBody {
    /// Settle a whole year: the annual plan against the year's usage.
    pub year: Option<i32>,
    /// Or settle a quarter, `YYYY-Qn`: the quarter's planned quantity against its usage.
    pub period: Option<String>,
}

/// The period a settlement covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Year(i32),
    Quarter(Quarter),
}

impl Span {
    fn of(body: &SettlementBody) -> ApiResult<Self> {
        match (body.year, body.period.as_deref()) {
            (Some(y), None) if YEARS.contains(&y) => Ok(Span::Year(y)),
            (Some(_), None) => Err(ApiError::invalid("year", Msg::YearRange)),
            (None, Some(p)) => match Quarter::parse(p.trim()) {
                Some(q) if YEARS.contains(&q.year) => Ok(Span::Quarter(q)),
                Some(_) => Err(ApiError::invalid("period", Msg::YearRange)),
                None => Err(ApiError::invalid("period", Msg::QuarterFormat)),
            },
            _ => Err(ApiError::invalid("year", Msg::YearOrPeriod)),
        }
    }

    pub fn year(self) -> i32 {
        match self {
            Span::Year(y) => y,
            Span::Quarter(q) => q.year,
        }
    }

    /// The assessments' `period`: `2025` or `2025-Q3`.
    pub fn label(self) -> String {
        match self {
            Span::Year(y) => format!("{y:04}"),
            Span::Quarter(q) => q.to_string(),
        }
    }

    /// Its months, in order.
    pub fn months(self) -> Vec<Month> {
        match self {
            Span::Year(year) => (1..=12).map(|month| Month { year, month }).collect(),
            Span::Quarter(q) => q.months().to_vec(),
        }
    }

    fn last_day(self) -> NaiveDate {
        self.months().last().map(|m| m.last_day()).unwrap_or_default()
    }

    /// The periods that settle the same months another way (a year and its quarters exclude each other).
    fn others(self) -> Vec<String> {
        match self {
            Span::Year(y) => (1..=4).map(|quarter| Quarter { year: y, quarter }.to_string()).collect(),
            Span::Quarter(q) => vec![format!("{:04}", q.year)],
        }
    }
}

/// A planned user the settlement could not price.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnpricedUser {
    pub planned_user_id: String,
    pub water_user_name: String,
    pub category: Category,
    /// The excess that went uncharged.
    pub excess_m3: i64,
}

/// A served surcharge that the current usage, plan, price or tiers would settle differently: left as served.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SettlementDifference {
    pub assessment_id: String,
    pub planned_user_id: String,
    /// As assessed (and served).
    pub assessed_fen: i64,
    /// As the records stand now.
    pub amount_fen: i64,
    /// `amount_fen − assessed_fen`.
    pub difference_fen: i64,
}

/// What a settlement did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"period": "2025", "planned_users": 270, "over_plan": 31, "created": 31, "recalculated": 0,
    "unchanged": 0, "with_difference": 0, "incomplete": 4, "unpriced_count": 0, "unpriced": [], "differences": []}))]
pub struct SettlementSummary {
    /// The period settled: `2025` (a year) or `2025-Q3`.
    pub period: String,
    /// Planned users with a plan for the year: all were settled.
    pub planned_users: i64,
    /// Those whose usage in the period exceeded their planned quantity.
    pub over_plan: i64,
    /// New over-plan surcharge assessments.
    pub created: i64,
    /// Surcharges not yet served, recalculated because usage, plan, price or tiers changed.
    pub recalculated: i64,
    /// Existing surcharges that already matched.
    pub unchanged: i64,
    /// Served (or settled) surcharges that would now come out differently: left as they are (see `differences`).
    pub with_difference: i64,
    /// Planned users with a month of the period without recorded usage (counted as 0 m³: report it, then run again).
    pub incomplete: i64,
    /// Users over plan without a base price (neither their own nor their category's): nothing was charged.
    pub unpriced_count: i64,
    /// The first 100 of them.
    pub unpriced: Vec<UnpricedUser>,
    /// The first 100 differences.
    pub differences: Vec<SettlementDifference>,
}

/// The tiers and category prices in force when the settlement started.
pub struct Terms {
    pub tiers: Vec<Tier>,
    pub category_prices: std::collections::BTreeMap<Category, Rate>,
}

impl Terms {
    pub fn load(conn: &mut DbConn) -> QueryResult<Self> {
        let t = super::tiers::load(conn)?;
        Ok(Self { tiers: t.tiers(), category_prices: t.category_base_prices })
    }

    /// A user's base price and where it comes from.
    fn price(&self, user: &PlannedUserRow) -> Option<(Rate, PriceSource)> {
        if let Some(own) = user.base_price.as_deref().and_then(|p| Rate::parse(p).ok()) {
            return Some((own, PriceSource::PlannedUser));
        }
        let category = Category::parse(&user.category)?;
        self.category_prices.get(&category).map(|p| (*p, PriceSource::Category))
    }
}

/// The surcharge of one user: its plan, the usage recorded for each month of `span` (missing months count 0),
/// and its price. `None` when the amount is too large to hold.
pub fn basis(
    span: Span,
    plan: &[i64; 12],
    used: &HashMap<String, i64>,
    price: (Rate, PriceSource),
    tiers: &[Tier],
) -> Option<(SurchargeBasis, i64)> {
    let months: Vec<SurchargeMonth> = span
        .months()
        .into_iter()
        .map(|m| SurchargeMonth {
            month: m.to_string(),
            planned_m3: plan[(m.month - 1) as usize],
            used_m3: used.get(&m.to_string()).copied(),
        })
        .collect();
    let (first, last) = (span.months()[0].month, span.months().last().map_or(12, |m| m.month));
    let planned = planned_for(plan, first, last);
    // At most 12 months of at most 10¹² m³ each: no overflow.
    let used_total: i64 = months.iter().filter_map(|m| m.used_m3).sum();
    let s = calc::surcharge(planned, used_total, price.0, tiers)?;
    let basis = SurchargeBasis {
        planned_m3: s.planned_m3,
        used_m3: s.used_m3,
        excess_m3: s.excess_m3,
        base_price_yuan_per_m3: price.0.to_string(),
        price_source: price.1,
        months,
        bands: s
            .bands
            .iter()
            .map(|b| SurchargeBand {
                over_pct_from: b.over_pct_from,
                over_pct_to: b.over_pct_to,
                volume_m3: b.volume_m3,
                multiplier: b.multiplier.normalize().to_string(),
                amount_yuan: exact(b.amount_yuan),
            })
            .collect(),
    };
    Some((basis, s.amount_fen))
}

/// An exact amount with at least four decimals (more only when it has them: a multiplier with decimals times a
/// four-decimal price), never rounded.
fn exact(d: rust_decimal::Decimal) -> String {
    let n = d.normalize();
    if n.scale() <= 4 {
        format!("{n:.4}")
    } else {
        n.to_string()
    }
}

/// 计划用水考核结算 — Settle a year (`{"year": 2025}`) or a quarter (`{"period": "2025-Q3"}`) that has ended: each planned
/// user's usage against its plan; every user over plan gets an over-plan surcharge assessment (band by band at the
/// surcharge tiers, on its base price), which finance serves and collects as a fee. Running again creates nothing
/// new; surcharges not yet served are recalculated after a correction, served ones only show the difference.
#[utoipa::path(tag = "planned-use", request_body = SettlementBody, security(("bearer" = ["water_saving"])),
    responses((status = 200, description = "What the settlement did", body = SettlementSummary),
        (status = 400, description = "Neither or both of `year` and `period`, or a bad one (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The period has not ended (`period_not_ended`), or the year is settled the other way (`settled_by_other_period`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/plan-settlements")]
async fn settle(
    state: web::Data<AppState>,
    caller: Authorized<PlannedUseWrite>,
    body: ApiJson<SettlementBody>,
) -> ApiResult<HttpResponse> {
    let span = Span::of(&body.0)?;
    if span.last_day() >= caller.now.today {
        return Err(ApiError::conflict(ErrorCode::PeriodNotEnded, Msg::SettlementNotEnded(span.last_day())));
    }
    let config = FeeConfig::of(&state.settings);
    let ctx = caller.ctx();
    let job = ctx.clone();
    let summary = state
        .db
        .run_wide(format!("plan_settlement:{}", span.year()), move |conns| run(conns, &job, span, config))
        .await?;
    state.db.written.notify_one();
    // The settlement's own record (and an Idempotency-Key's outcome) commit together once every batch has.
    state
        .write(move |conn| {
            audit::record(conn, &ctx, Event::new("plan_settlement_run").after(&summary))?;
            Ok(Reply::json(StatusCode::OK, None, &summary))
        })
        .await
}

/// Settles `span` in batches, each its own transaction, on the connections given (see
/// [`crate::db::batches::in_batches`]), which hold the year's lock (`plan_settlement:{year}`, see
/// [`crate::db::Db::run_wide`]). Returns what it did.
pub fn run(
    conns: &mut [&mut DbConn],
    ctx: &AuditCtx,
    span: Span,
    config: FeeConfig,
) -> Result<SettlementSummary, ApiError> {
    let mut summary = SettlementSummary { period: span.label(), ..Default::default() };
    {
        let terms = Terms::load(conns[0])?;
        batches::in_batches(
            conns,
            |conn, after: Option<&PlanRow>| {
                let mut q = pl::table.filter(pl::year.eq(span.year())).into_boxed();
                if let Some(a) = after {
                    q = q.filter(pl::planned_user_id.gt(a.planned_user_id.clone()));
                }
                q.order(pl::planned_user_id.asc()).limit(BATCH).select(PlanRow::as_select()).load(conn)
            },
            |conn, plans| batch(conn, ctx, span, plans, &terms, &config),
            |part| summary.add(part),
        )?;
    }
    if summary.created > 0 {
        fee_run::refresh_statistics(conns[0])?;
    }
    Ok(summary)
}

impl SettlementSummary {
    /// Counts a batch's summary in (batches in order, so the listed users stay in id order).
    fn add(&mut self, part: SettlementSummary) {
        self.planned_users += part.planned_users;
        self.over_plan += part.over_plan;
        self.created += part.created;
        self.recalculated += part.recalculated;
        self.unchanged += part.unchanged;
        self.with_difference += part.with_difference;
        self.incomplete += part.incomplete;
        self.unpriced_count += part.unpriced_count;
        let room = LISTED.saturating_sub(self.unpriced.len());
        self.unpriced.extend(part.unpriced.into_iter().take(room));
        let room = LISTED.saturating_sub(self.differences.len());
        self.differences.extend(part.differences.into_iter().take(room));
    }
}

/// One batch of plans, in the caller's transaction: what it did.
fn batch(
    conn: &mut DbConn,
    ctx: &AuditCtx,
    span: Span,
    plans: &[PlanRow],
    terms: &Terms,
    config: &FeeConfig,
) -> Result<SettlementSummary, ApiError> {
    let period = span.label();
    let mut summary = SettlementSummary::default();
    let summary = &mut summary;
    // A year is settled as a year or by quarter, never both. Checked in each batch's transaction: on SQLite the
    // write lock, on PostgreSQL the settlement's lock on the year keeps another settlement of it from writing
    // meanwhile.
    let other: Option<String> = fa::table
        .filter(fa::kind.eq(Kind::OverPlanSurcharge.as_str()))
        .filter(fa::period.eq_any(span.others()))
        .select(fa::id)
        .first(conn)
        .optional()?;
    if other.is_some() {
        let quarterly = matches!(span, Span::Year(_));
        return Err(ApiError::conflict(
            ErrorCode::SettledByOtherPeriod,
            Msg::SettledByOtherPeriod { year: span.year(), quarterly },
        ));
    }
    let ids: Vec<String> = plans.iter().map(|p| p.planned_user_id.clone()).collect();
    let users: HashMap<String, PlannedUserRow> = pu::table
        .filter(pu::id.eq_any(&ids))
        .select(PlannedUserRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|u| (u.id.clone(), u))
        .collect();
    let months = span.months();
    let (from, to) = (months[0].to_string(), months.last().map(Month::to_string).unwrap_or_default());
    let mut usage: HashMap<String, HashMap<String, i64>> = HashMap::new();
    let rows: Vec<(String, String, i64)> = us::table
        .filter(us::planned_user_id.eq_any(&ids))
        .filter(us::superseded.eq(false))
        .filter(us::period.ge(&from))
        .filter(us::period.le(&to))
        .select((us::planned_user_id, us::period, us::volume_m3))
        .load(conn)?;
    for (user, month, volume) in rows {
        usage.entry(user).or_default().insert(month, volume);
    }
    let mut existing: HashMap<String, AssessmentRow> = fa::table
        .filter(fa::planned_user_id.eq_any(&ids))
        .filter(fa::kind.eq(Kind::OverPlanSurcharge.as_str()))
        .filter(fa::period.eq(&period))
        .select(AssessmentRow::as_select())
        .load(conn)?
        .into_iter()
        .filter_map(|r| Some((r.planned_user_id.clone()?, r)))
        .collect();

    let now = ctx.now.at;
    let no_usage = HashMap::new();
    let mut created: Vec<AssessmentRow> = Vec::new();
    let mut changed: Vec<(AssessmentRow, AssessmentRow)> = Vec::new();
    for plan in plans {
        let Some(user) = users.get(&plan.planned_user_id) else { continue };
        summary.planned_users += 1;
        let used = usage.get(&user.id).unwrap_or(&no_usage);
        if months.iter().any(|m| !used.contains_key(&m.to_string())) {
            summary.incomplete += 1;
        }
        let existing = existing.remove(&user.id);
        // An existing record keeps its own price when the user has none now (its excess may have gone).
        let price = terms.price(user).or_else(|| {
            let b = existing.as_ref()?.surcharge()?;
            Some((Rate::parse(&b.base_price_yuan_per_m3).ok()?, b.price_source))
        });
        let plan_months = plan.months();
        let priced = price.and_then(|p| basis(span, &plan_months, used, p, &terms.tiers));
        let Some((basis, amount_fen)) = priced else {
            // No price (or an amount too large to hold): listed when there is an excess to charge.
            let planned = planned_for(&plan_months, months[0].month, months.last().map_or(12, |m| m.month));
            let excess = used.values().sum::<i64>() - planned;
            if excess > 0 {
                summary.over_plan += 1;
                summary.unpriced_count += 1;
                if summary.unpriced.len() < LISTED {
                    summary.unpriced.push(UnpricedUser {
                        planned_user_id: user.id.clone(),
                        // Named below, in one query for the batch.
                        water_user_name: user.water_user_id.clone(),
                        category: Category::parse(&user.category).unwrap_or(Category::NonResidential),
                        excess_m3: excess,
                    });
                }
            }
            continue;
        };
        if basis.excess_m3 > 0 {
            summary.over_plan += 1;
        }
        match existing {
            // Nothing to charge (within plan, or a base price of 0): no record.
            None if basis.excess_m3 == 0 || amount_fen == 0 => {}
            None => {
                summary.created += 1;
                created.push(new_row(user, &period, &months, basis, amount_fen, now));
            }
            Some(row) if row.amount_fen == amount_fen && row.surcharge().as_ref() == Some(&basis) => {
                summary.unchanged += 1;
            }
            Some(row) => {
                let mut after = row.clone();
                after.volume_m3 = basis.excess_m3;
                after.amount_fen = amount_fen;
                after.surcharge = serde_json::to_string(&basis).ok();
                after.touch(now);
                // Only one not yet served, and conditional on the version read: a notice served meanwhile leaves
                // the record as served.
                if row.status() == Status::Assessed && after.store(conn, row.version)? == 1 {
                    summary.recalculated += 1;
                    changed.push((row, after));
                } else {
                    summary.with_difference += 1;
                    if summary.differences.len() < LISTED {
                        summary.differences.push(SettlementDifference {
                            assessment_id: row.id.clone(),
                            planned_user_id: user.id.clone(),
                            assessed_fen: row.amount_fen,
                            amount_fen,
                            difference_fen: amount_fen - row.amount_fen,
                        });
                    }
                }
            }
        }
    }
    if !summary.unpriced.is_empty() {
        let names = water_user_names(conn, summary.unpriced.iter().map(|u| u.water_user_name.clone()).collect())?;
        for u in &mut summary.unpriced {
            u.water_user_name = names.get(&u.water_user_name).map(|(n, _)| n.clone()).unwrap_or_default();
        }
    }
    fee_run::insert_rows(conn, &created)?;
    let all: Vec<AssessmentRow> =
        created.iter().cloned().chain(changed.iter().flat_map(|(b, a)| [b.clone(), a.clone()])).collect();
    let views = Context::load(conn, &all, *config, ctx.now.today, false)?;
    let events = created
        .iter()
        .map(|r| Event::new("fee_assessment_created").entity(EntityType::FeeAssessment, &r.id).after(&views.view(r)))
        .chain(changed.iter().map(|(before, after)| {
            Event::new("fee_assessment_recalculated")
                .entity(EntityType::FeeAssessment, &after.id)
                .before(&views.view(before))
                .after(&views.view(after))
        }));
    audit::record_closing(conn, ctx, events)?;
    Ok(std::mem::take(summary))
}

fn new_row(
    user: &PlannedUserRow,
    period: &str,
    months: &[Month],
    basis: SurchargeBasis,
    amount_fen: i64,
    now: chrono::NaiveDateTime,
) -> AssessmentRow {
    AssessmentRow {
        months: months.iter().map(Month::to_string).collect::<Vec<_>>().join(","),
        volume_m3: basis.excess_m3,
        amount_fen,
        planned_user_id: Some(user.id.clone()),
        surcharge: serde_json::to_string(&basis).ok(),
        ..AssessmentRow::fresh(Kind::OverPlanSurcharge, &user.water_user_id, period, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(pairs: &[(&str, i64)]) -> HashMap<String, i64> {
        pairs.iter().map(|(m, v)| (m.to_string(), *v)).collect()
    }

    #[test]
    fn a_quarter_against_its_three_months_of_plan() {
        let plan = [1_000; 12];
        let q = Span::Quarter(Quarter { year: 2025, quarter: 2 });
        let u = used(&[("2025-04", 1_500), ("2025-05", 1_500), ("2025-06", 1_200)]);
        let price = (Rate::parse("2").unwrap(), PriceSource::Category);
        let (b, fen) = basis(q, &plan, &u, price, &calc::default_tiers()).unwrap();
        // Planned 3 000, used 4 200: 40 % over = 600 at ×1 and 600 at ×2 → 1 800 m³-equivalents at 2 yuan.
        assert_eq!((b.planned_m3, b.used_m3, b.excess_m3), (3_000, 4_200, 1_200));
        assert_eq!(fen, 1_800 * 200);
        assert_eq!(b.months.iter().map(|m| m.month.as_str()).collect::<Vec<_>>(), ["2025-04", "2025-05", "2025-06"]);
        assert_eq!(b.bands[1].multiplier, "2");
        assert_eq!(b.bands[1].amount_yuan, "2400.0000");
    }

    #[test]
    fn a_year_counts_missing_months_as_nothing_and_says_so() {
        let plan = [100; 12];
        let u = used(&[("2025-01", 1_300)]);
        let price = (Rate::parse("1").unwrap(), PriceSource::PlannedUser);
        let (b, fen) = basis(Span::Year(2025), &plan, &u, price, &calc::default_tiers()).unwrap();
        assert_eq!((b.planned_m3, b.used_m3, b.excess_m3, fen), (1_200, 1_300, 100, 100 * 100));
        assert_eq!(b.months.iter().filter(|m| m.used_m3.is_none()).count(), 11);
    }

    #[test]
    fn a_year_and_its_quarters_exclude_each_other() {
        assert_eq!(Span::Year(2025).others(), ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]);
        assert_eq!(Span::Quarter(Quarter { year: 2025, quarter: 3 }).others(), ["2025"]);
        assert_eq!(Span::Year(2025).label(), "2025");
    }

    #[test]
    fn band_amounts_are_never_rounded() {
        assert_eq!(exact(rust_decimal::Decimal::new(24_000_000, 4)), "2400.0000");
        assert_eq!(exact(rust_decimal::Decimal::new(123_456_789, 8)), "1.23456789");
        assert_eq!(exact(rust_decimal::Decimal::ZERO), "0.0000");
    }
}
