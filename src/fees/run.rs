//! The quarterly run (`POST /api/v1/fee-assessments/run`): one assessment per permit with withdrawals in the
//! quarter — a fee bill for the months before `water_resource_tax_from`, a tax referral for the months from it on.
//!
//! Permits are taken in batches by id, each batch in its own transaction with the audit events of what it created
//! or changed, so memory stays flat in the number of permits; two batches at a time on PostgreSQL (see
//! [`crate::db::batches`]). Running a period again creates nothing new: the unique (kind, permit, period) and a
//! lock on the period, held by a run from start to end, keep one record per permit. An assessment not yet served is recalculated when its withdrawals or rates changed; a served one is
//! never changed — its difference shows on the record (`reassessment`) and is counted here.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::assess::{self, Draft, Unpriced};
use super::rates::RateTable;
use super::view::Context;
use super::{AssessmentRow, FeeConfig, Kind, Status};
use crate::audit::{self, AuditCtx, EntityType, Event};
use crate::db::schema::{fee_assessments as fa, permits as p};
use crate::db::{batches, DbConn};
use crate::domain::dates::Quarter;
use crate::error::ApiError;
use crate::write::Versioned;

/// Permits per batch (and transaction).
pub const BATCH: i64 = 1000;
/// Unpriced permits listed in a summary (all are counted).
const LISTED: usize = 100;

/// A permit the run could not price.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnpricedPermit {
    pub permit_id: String,
    pub permit_no: Option<String>,
    /// The first month without a rate (null when the amount was too large).
    pub month: Option<String>,
    pub source_type: String,
    pub purpose: String,
    pub zone_class: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RunSummary {
    pub period: String,
    /// Permits with withdrawals in the period.
    pub permits: i64,
    /// New fee bills.
    pub fee_assessments_created: i64,
    /// New tax referrals.
    pub tax_referrals_created: i64,
    /// Assessments not yet served, recalculated because their withdrawals or rates changed.
    pub recalculated: i64,
    /// Existing records that already matched.
    pub unchanged: i64,
    /// Served (or settled) records that the current withdrawals or rates would assess differently: left as they
    /// are, each showing its `reassessment`.
    pub with_difference: i64,
    /// Permits that could not be priced (no rate in force for a month): nothing was created for them.
    pub unpriced_count: i64,
    /// The first 100 of them.
    pub unpriced: Vec<UnpricedPermit>,
}

/// Runs `quarter` in batches, each its own transaction, on the connections given (see
/// [`crate::db::batches::in_batches`]), which hold the period's lock (`fee_run:{period}`, see
/// [`crate::db::Db::run_wide`]). Returns what it did.
pub fn run(
    conns: &mut [&mut DbConn],
    ctx: &AuditCtx,
    quarter: Quarter,
    config: FeeConfig,
) -> Result<RunSummary, ApiError> {
    let mut summary = RunSummary { period: quarter.to_string(), ..Default::default() };
    {
        batches::in_batches(
            conns,
            |conn, after: Option<&String>| {
                // Permits ever issued (only they have withdrawals), by id.
                let mut q = p::table
                    .filter(p::approved_on.is_not_null())
                    .order(p::id.asc())
                    .limit(BATCH)
                    .select(p::id)
                    .into_boxed();
                if let Some(a) = after {
                    q = q.filter(p::id.gt(a.clone()));
                }
                q.load(conn)
            },
            |conn, ids| batch(conn, ctx, quarter, ids, &config),
            |part| summary.add(part),
        )?;
    }
    if summary.fee_assessments_created + summary.tax_referrals_created > 0 {
        refresh_statistics(conns[0])?;
    }
    Ok(summary)
}

impl RunSummary {
    /// Counts a batch's summary in (batches in order, so the listed permits stay in id order).
    fn add(&mut self, part: RunSummary) {
        self.permits += part.permits;
        self.fee_assessments_created += part.fee_assessments_created;
        self.tax_referrals_created += part.tax_referrals_created;
        self.recalculated += part.recalculated;
        self.unchanged += part.unchanged;
        self.with_difference += part.with_difference;
        self.unpriced_count += part.unpriced_count;
        let room = LISTED.saturating_sub(self.unpriced.len());
        self.unpriced.extend(part.unpriced.into_iter().take(room));
    }
}

/// One batch of permits, in the caller's transaction: what it did.
fn batch(
    conn: &mut DbConn,
    ctx: &AuditCtx,
    quarter: Quarter,
    ids: &[String],
    config: &FeeConfig,
) -> Result<RunSummary, ApiError> {
    let period = quarter.to_string();
    let mut summary = RunSummary::default();
    let summary = &mut summary;
    let is_pg = matches!(conn, DbConn::Postgres(_));
    if is_pg {
        // The table grows by a batch at a time during a run: plan the reads below for the rows there are now, not
        // with a generic plan cached while the table was small (the first run of a fresh database scanned the whole
        // table per batch that way).
        diesel::sql_query("SET LOCAL plan_cache_mode = force_custom_plan").execute(conn)?;
    }
    let uses = assess::uses(conn, ids, &quarter.months())?;
    if uses.is_empty() {
        return Ok(std::mem::take(summary));
    }
    let mut with_uses: Vec<String> = uses.keys().cloned().collect();
    with_uses.sort_unstable();
    let bases = assess::bases(conn, &with_uses)?;
    let rates = RateTable::load(conn)?;
    let existing: Vec<AssessmentRow> = fa::table
        .filter(fa::permit_id.eq_any(&with_uses))
        .filter(fa::period.eq(&period))
        .filter(fa::kind.eq_any([Kind::WaterResourceFee.as_str(), Kind::TaxReferral.as_str()]))
        .select(AssessmentRow::as_select())
        .load(conn)?;
    let mut existing: HashMap<(String, String), AssessmentRow> =
        existing.into_iter().map(|r| ((r.permit_id.clone().unwrap_or_default(), r.kind.clone()), r)).collect();
    if is_pg {
        // Not for the writes: the setting reaches the foreign-key checks' cached plans too, which were then planned
        // again for every row inserted (a third of a batch's time).
        diesel::sql_query("SET LOCAL plan_cache_mode TO DEFAULT").execute(conn)?;
    }

    let now = ctx.now.at;
    let mut created: Vec<AssessmentRow> = Vec::new();
    let mut changed: Vec<(AssessmentRow, AssessmentRow)> = Vec::new();
    for permit_id in &with_uses {
        let Some(basis) = bases.get(permit_id) else { continue };
        summary.permits += 1;
        let refs: Vec<_> = uses[permit_id].iter().collect();
        // Priced at the zone class of an existing record of the period, if any (see `Basis::at_class`).
        let recorded = [Kind::WaterResourceFee, Kind::TaxReferral]
            .iter()
            .find_map(|k| existing.get(&(permit_id.clone(), k.as_str().to_string())))
            .and_then(|r| r.zone_class.as_deref());
        let basis = &basis.at_class(recorded);
        let assess::Drafts { drafts, unpriced } = assess::drafts(basis, &refs, &rates, config);
        if let Some(why) = unpriced {
            {
                summary.unpriced_count += 1;
                if summary.unpriced.len() < LISTED {
                    summary.unpriced.push(UnpricedPermit {
                        permit_id: permit_id.clone(),
                        permit_no: basis.permit_no.clone(),
                        month: match why {
                            Unpriced::NoRate(m) => Some(m.to_string()),
                            Unpriced::TooLarge => None,
                        },
                        source_type: basis.source_type.clone(),
                        purpose: basis.purpose.clone(),
                        zone_class: basis.zone_class.clone(),
                    });
                }
            }
        }
        for draft in drafts {
            match existing.remove(&(permit_id.clone(), draft.kind.as_str().to_string())) {
                None => {
                    match draft.kind {
                        Kind::TaxReferral => summary.tax_referrals_created += 1,
                        _ => summary.fee_assessments_created += 1,
                    }
                    created.push(new_row(basis, &period, &draft, now));
                }
                Some(row) if assess::same_charge(&row.lines(), &draft.lines) => summary.unchanged += 1,
                Some(row) if row.status() == Status::Assessed => {
                    let mut after = row.clone();
                    after.months = draft.months_text();
                    after.volume_m3 = draft.volume_m3;
                    after.amount_fen = draft.amount_fen;
                    after.lines = serde_json::to_string(&draft.lines).unwrap_or_default();
                    after.touch(now);
                    // Conditional on the version read: a notice served meanwhile leaves the record as served.
                    if after.store(conn, row.version)? == 1 {
                        summary.recalculated += 1;
                        changed.push((row, after));
                    } else {
                        summary.with_difference += 1;
                    }
                }
                Some(_) => summary.with_difference += 1,
            }
        }
    }
    insert_rows(conn, &created)?;
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

fn new_row(basis: &assess::Basis, period: &str, draft: &Draft, now: chrono::NaiveDateTime) -> AssessmentRow {
    let fresh = AssessmentRow::fresh(draft.kind, &basis.holder_id, period, now);
    AssessmentRow {
        permit_id: Some(basis.permit_id.clone()),
        months: draft.months_text(),
        volume_m3: draft.volume_m3,
        amount_fen: draft.amount_fen,
        lines: serde_json::to_string(&draft.lines).unwrap_or_default(),
        status: if draft.kind == Kind::TaxReferral { Status::Referred } else { Status::Assessed }.as_str().into(),
        zone_class: basis.zone_class.clone(),
        ..fresh
    }
}

/// After a run that created records, PostgreSQL's statistics of the table are brought up to date at once (rather
/// than at autovacuum's next pass), so lists and the next run are planned for its real size.
pub fn refresh_statistics(conn: &mut DbConn) -> QueryResult<()> {
    if let DbConn::Postgres(_) = conn {
        diesel::sql_query("ANALYZE fee_assessments").execute(conn)?;
    }
    Ok(())
}

/// Inserts new assessments (multi-row statements on PostgreSQL).
pub fn insert_rows(conn: &mut DbConn, rows: &[AssessmentRow]) -> QueryResult<()> {
    crate::insert_all!(conn, fa::table, rows).map(|_| ())
}
