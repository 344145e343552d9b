//! The fee arithmetic, exact and independent of storage (docs/domain.md, "Water-resource fee"):
//!
//! - **Amount**: Σ over months of volume × the rate in force that month, in exact decimals; rounded half-up to the
//!   fen once, at the end ([`amount_fen`]).
//! - **Late fee** (SF §70, TL §54; the arithmetic in [`crate::domain::late_fee`]): for each calendar day after the due date (or after an approved deferral's end)
//!   up to and including the day asked about, the daily rate (2‰) of the principal outstanding that day; a payment
//!   reduces the principal from the day after it is paid. Summed exactly, rounded half-up once ([`late_fee_through`]).
//! - **Payments** settle the late fee due on their day first, then principal ([`settle`]); more than both is an
//!   overpayment.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::money::{round_fen, Rate};

/// One month of an assessment: what was drawn, at which rate, for how much.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeeLine {
    /// 月份 `YYYY-MM`.
    pub month: String,
    pub volume_m3: i64,
    /// The withdrawal record (revision) the volume comes from.
    pub withdrawal_id: String,
    /// How the volume was obtained (`max_capacity`: no or faulty meter, charged at the daily maximum, TL §53).
    pub method: crate::withdrawals::Method,
    /// The rate applied (null on a tax referral).
    pub rate_id: Option<String>,
    pub rate_yuan_per_m3: Option<Rate>,
    /// volume × rate in yuan, exact (four decimals, not rounded); null on a tax referral.
    #[schema(value_type = Option<String>, example = "12000.0000")]
    pub amount_yuan: Option<String>,
}

impl FeeLine {
    /// The line's exact amount in yuan (zero on a referral).
    pub fn exact(&self) -> Decimal {
        self.amount_yuan.as_deref().and_then(|a| a.parse().ok()).unwrap_or_default()
    }
}

/// A month's volume priced at `rate`.
pub fn priced(
    month: String,
    volume_m3: i64,
    withdrawal_id: String,
    method: crate::withdrawals::Method,
    rate: Option<(String, Rate)>,
) -> FeeLine {
    let amount = rate.as_ref().map(|(_, r)| format!("{:.4}", r.charge(volume_m3)));
    let (rate_id, rate) = rate.unzip();
    FeeLine { month, volume_m3, withdrawal_id, method, rate_id, rate_yuan_per_m3: rate, amount_yuan: amount }
}

/// The amount of `lines` in fen: their exact sum, rounded half-up once. `None` beyond the largest amount.
pub fn amount_fen(lines: &[FeeLine]) -> Option<i64> {
    round_fen(lines.iter().map(FeeLine::exact).sum())
}

/// The total volume of `lines` (each ≤ 10¹², so the sum of a quarter fits).
pub fn volume_m3(lines: &[FeeLine]) -> i64 {
    lines.iter().map(|l| l.volume_m3).sum()
}

pub use crate::domain::late_fee::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::withdrawals::Method;
    use proptest::prelude::*;

    #[test]
    fn amounts_round_once() {
        // Three months at 0.3333 yuan: each line alone would round to …, the sum rounds once.
        let rate = Rate::parse("0.3333").unwrap();
        let lines: Vec<FeeLine> = (1..=3)
            .map(|m| priced(format!("2022-0{m}"), 1, format!("w{m}"), Method::OnlineMeter, Some(("r".into(), rate))))
            .collect();
        assert_eq!(lines[0].amount_yuan.as_deref(), Some("0.3333"));
        // 0.9999 yuan = 99.99 fen → 100 fen; rounding each line first would give 3 × 33 = 99.
        assert_eq!(amount_fen(&lines), Some(100));
    }

    proptest! {
        /// Lines sum to the amount: the exact sum of volume × rate, rounded half-up once.
        #[test]
        fn lines_sum_to_the_amount(months in proptest::collection::vec((0i64..=1_000_000_000_000, 0i64..=10_000_000), 1..=3)) {
            let lines: Vec<FeeLine> = months.iter().enumerate().map(|(i, (v, r))| {
                let rate = Rate::parse(&format!("{}.{:04}", r / 10_000, r % 10_000)).unwrap();
                priced(format!("2022-0{}", i + 1), *v, format!("w{i}"), Method::OnlineMeter, Some(("r".into(), rate)))
            }).collect();
            // The same in integers: volume × rate in ten-thousandths of a yuan, i.e. hundredths of a fen.
            let hundredths: i128 = months.iter().map(|(v, r)| i128::from(*v) * i128::from(*r)).sum();
            let expected = (hundredths + 50) / 100;
            match amount_fen(&lines) {
                Some(fen) => prop_assert_eq!(i128::from(fen), expected),
                None => prop_assert!(expected > i128::from(crate::domain::MAX_AMOUNT_FEN)),
            }
            prop_assert_eq!(volume_m3(&lines), months.iter().map(|(v, _)| v).sum::<i64>());
        }
    }
}
