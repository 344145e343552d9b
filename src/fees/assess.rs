//! Pricing a permit's withdrawals for a period: which months are billed (before `water_resource_tax_from`) and
//! which are referred to the tax office (from it on), at which rate each billed month is charged, and the amount.
//! The quarterly run creates assessments from these drafts; an assessment's view compares itself with a fresh
//! draft to show a difference after a correction.

use std::collections::HashMap;

use diesel::prelude::*;

use super::calc::{self, FeeLine};
use super::rates::RateTable;
use super::{FeeConfig, Kind};
use crate::db::schema::{permits as p, water_zones as z, withdrawals as wd};
use crate::db::DbConn;
use crate::domain::dates::Month;
use crate::withdrawals::{Method, WithdrawalRow};

/// What pricing needs to know of a permit.
#[derive(Debug, Clone, Queryable)]
pub struct Basis {
    pub permit_id: String,
    pub holder_id: String,
    pub permit_no: Option<String>,
    pub source_type: String,
    pub purpose: String,
    pub zone_class: Option<String>,
}

/// An assessment as the current withdrawals and rates make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub kind: Kind,
    pub months: Vec<Month>,
    pub lines: Vec<FeeLine>,
    pub volume_m3: i64,
    pub amount_fen: i64,
}

impl Draft {
    pub fn months_text(&self) -> String {
        self.months.iter().map(Month::to_string).collect::<Vec<_>>().join(",")
    }
}

/// Why a permit's period could not be priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpriced {
    /// No rate in force for this month (source type, purpose, zone class).
    NoRate(Month),
    /// The sum is beyond the largest amount.
    TooLarge,
}

/// What the current withdrawals and rates make of a permit's period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drafts {
    /// A fee bill and/or a tax referral.
    pub drafts: Vec<Draft>,
    /// Why the fee bill could not be priced (the referral, which needs no rate, is drafted all the same).
    pub unpriced: Option<Unpriced>,
}

/// The drafts for `basis` from its current withdrawals `uses` (months of one period, any order): a fee bill for
/// the months before the tax date, a tax referral for the months from it on — one of each at most.
pub fn drafts(basis: &Basis, uses: &[&WithdrawalRow], rates: &RateTable, config: &FeeConfig) -> Drafts {
    let mut billed = Vec::new();
    let mut referred = Vec::new();
    let mut unpriced = None;
    let mut sorted: Vec<(Month, &WithdrawalRow)> =
        uses.iter().filter_map(|w| Month::parse(&w.period).map(|m| (m, *w))).collect();
    sorted.sort_by_key(|(m, _)| *m);
    for (month, w) in sorted {
        let method = Method::parse(&w.method).unwrap_or(Method::ManualReading);
        if month.first_day() >= config.tax_from {
            referred.push((month, calc::priced(month.to_string(), w.volume_m3, w.id.clone(), method, None)));
        } else {
            match rates.find(&basis.source_type, &basis.purpose, basis.zone_class.as_deref(), month) {
                Some(rate) => {
                    billed.push((month, calc::priced(month.to_string(), w.volume_m3, w.id.clone(), method, Some(rate))))
                }
                None => {
                    unpriced.get_or_insert(Unpriced::NoRate(month));
                }
            }
        }
    }
    if unpriced.is_some() {
        billed.clear();
    }
    let mut out = Drafts { drafts: Vec::new(), unpriced };
    for (kind, items) in [(Kind::WaterResourceFee, billed), (Kind::TaxReferral, referred)] {
        if items.is_empty() {
            continue;
        }
        let (months, lines): (Vec<Month>, Vec<FeeLine>) = items.into_iter().unzip();
        let amount_fen = match kind {
            Kind::TaxReferral => 0,
            _ => match calc::amount_fen(&lines) {
                Some(fen) => fen,
                None => {
                    out.unpriced = Some(Unpriced::TooLarge);
                    continue;
                }
            },
        };
        out.drafts.push(Draft { kind, months, volume_m3: calc::volume_m3(&lines), amount_fen, lines });
    }
    out
}

impl Basis {
    /// The basis with the zone class an existing assessment was priced at (a zone reclassified since does not
    /// reprice the past); unchanged when there is none or it recorded none.
    pub fn at_class(&self, recorded: Option<&str>) -> Basis {
        let mut b = self.clone();
        if let Some(class) = recorded {
            b.zone_class = Some(class.to_string());
        }
        b
    }
}

/// True when two sets of lines charge the same: same months, volumes and rates (the withdrawal's id may differ
/// after a correction that kept the volume).
pub fn same_charge(a: &[FeeLine], b: &[FeeLine]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.month == y.month && x.volume_m3 == y.volume_m3 && x.rate_yuan_per_m3 == y.rate_yuan_per_m3)
}

/// The pricing basis of each of `permit_ids` (one query).
pub fn bases(conn: &mut DbConn, permit_ids: &[String]) -> QueryResult<HashMap<String, Basis>> {
    if permit_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<Basis> = p::table
        .left_join(z::table)
        .filter(p::id.eq_any(permit_ids))
        .select((p::id, p::holder_id, p::permit_no, p::source_type, p::purpose, z::zone_class.nullable()))
        .load(conn)?;
    Ok(rows.into_iter().map(|b| (b.permit_id.clone(), b)).collect())
}

/// The current withdrawal records of `permit_ids` for `months`, by permit (one query).
pub fn uses(
    conn: &mut DbConn,
    permit_ids: &[String],
    months: &[Month],
) -> QueryResult<HashMap<String, Vec<WithdrawalRow>>> {
    if permit_ids.is_empty() || months.is_empty() {
        return Ok(HashMap::new());
    }
    let periods: Vec<String> = months.iter().map(Month::to_string).collect();
    let rows: Vec<WithdrawalRow> = wd::table
        .filter(wd::permit_id.eq_any(permit_ids))
        .filter(wd::period.eq_any(&periods))
        .filter(wd::superseded.eq(false))
        .select(WithdrawalRow::as_select())
        .load(conn)?;
    let mut by_permit: HashMap<String, Vec<WithdrawalRow>> = HashMap::new();
    for r in rows {
        by_permit.entry(r.permit_id.clone()).or_default().push(r);
    }
    Ok(by_permit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Rate;
    use crate::fees::rates::FeeRateRow;

    fn rate_row(rate: &str, from: &str) -> FeeRateRow {
        let at = chrono::NaiveDate::from_ymd_opt(2021, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        FeeRateRow {
            id: format!("r{rate}"),
            source_type: "groundwater_deep".into(),
            purpose: "industrial".into(),
            zone_class: None,
            rate: rate.into(),
            effective_from: from.parse().unwrap(),
            effective_to: None,
            note: None,
            created_at: at,
            updated_at: at,
            version: 1,
        }
    }

    fn withdrawal(period: &str, volume: i64) -> WithdrawalRow {
        let at = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        WithdrawalRow {
            id: format!("w{period}"),
            permit_id: "p".into(),
            period: period.into(),
            revision: 1,
            superseded: false,
            volume_m3: volume,
            method: "online_meter".into(),
            reported_by: "clerk".into(),
            note: None,
            created_at: at,
            updated_at: at,
            version: 1,
            source: "staff".into(),
            over_capacity: false,
        }
    }

    #[test]
    fn a_straddling_quarter_gives_one_bill_and_one_referral() {
        let basis = Basis {
            permit_id: "p".into(),
            holder_id: "h".into(),
            permit_no: None,
            source_type: "groundwater_deep".into(),
            purpose: "industrial".into(),
            zone_class: Some("normal".into()),
        };
        let rates = RateTable::from_rows(vec![rate_row("1.5", "2020-01-01")]);
        let config =
            FeeConfig { daily_late_rate: rust_decimal::Decimal::new(2, 3), tax_from: "2024-12-01".parse().unwrap() };
        let ws = [withdrawal("2024-12", 300), withdrawal("2024-10", 100), withdrawal("2024-11", 200)];
        let refs: Vec<&WithdrawalRow> = ws.iter().collect();
        let Drafts { drafts: d, unpriced } = drafts(&basis, &refs, &rates, &config);
        assert_eq!(unpriced, None);
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].kind, d[0].months_text(), d[0].volume_m3, d[0].amount_fen),
            (Kind::WaterResourceFee, "2024-10,2024-11".into(), 300, 45_000)
        );
        assert_eq!(
            (d[1].kind, d[1].months_text(), d[1].volume_m3, d[1].amount_fen),
            (Kind::TaxReferral, "2024-12".into(), 300, 0)
        );
        assert_eq!(d[1].lines[0].rate_yuan_per_m3, None);
        assert_eq!(d[0].lines[1].rate_yuan_per_m3, Some(Rate::parse("1.5").unwrap()));
        // Without a rate for October, the bill is not priced; the referral is drafted all the same.
        let late = RateTable::from_rows(vec![rate_row("1.5", "2024-11-01")]);
        let without = drafts(&basis, &refs, &late, &config);
        assert_eq!(without.unpriced, Some(Unpriced::NoRate(Month::parse("2024-10").unwrap())));
        assert_eq!(without.drafts, vec![d[1].clone()]);
    }
}
