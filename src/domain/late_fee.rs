//! Late fees on an amount owed, day by day (docs/domain.md): the water-resource fee's 2‰ a day on the principal
//! outstanding after its due date (SF §70, TL §54), and a penalty fine's 3 % a day, capped at the fine (XCF §72).
//!
//! For each calendar day after the due date up to and including the day asked about, the daily rate of the
//! principal outstanding that day; a payment reduces the principal from the day after it is paid. Summed exactly,
//! rounded half-up once, then capped ([`late_fee_through`]). Payments settle the late fee due on their day first,
//! then principal ([`settle`]); more than both is an overpayment.

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};

/// What decides the late fee of an amount owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    /// The principal (the assessed amount), fen.
    pub principal_fen: i64,
    /// The last day without late fee: the due date, or an approved deferral's end if later. `None` before service.
    pub due: Option<NaiveDate>,
    /// The late fee per day as a fraction of the principal outstanding (2‰ = 0.002).
    pub daily_rate: Decimal,
    /// A waiver's date: nothing accrues after it, and what is outstanding then is forgiven.
    pub waived_on: Option<NaiveDate>,
    /// The most the late fee may reach, fen (a fine's late fee never exceeds the fine, XCF §72).
    pub cap_fen: Option<i64>,
}

/// A recorded payment, as the arithmetic needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paid {
    pub on: NaiveDate,
    pub principal_fen: i64,
    pub late_fee_fen: i64,
}

/// The late fee accrued through `through` (inclusive), exact, given `paid` (in the order recorded, by date).
pub fn late_fee_exact(t: &Terms, paid: &[Paid], through: NaiveDate) -> Decimal {
    let Some(due) = t.due else { return Decimal::ZERO };
    let end = t.waived_on.map_or(through, |w| w.min(through));
    let Some(mut day) = due.succ_opt() else { return Decimal::ZERO };
    if end < day {
        return Decimal::ZERO;
    }
    // Principal outstanding on `day`: payments made before it count.
    let mut outstanding = t.principal_fen - paid.iter().filter(|p| p.on < day).map(|p| p.principal_fen).sum::<i64>();
    let mut fen_days = Decimal::ZERO;
    let first_day = day;
    for p in paid.iter().filter(|p| p.on >= first_day) {
        if p.on > end {
            break;
        }
        // Days `day ..= p.on` at the principal before the payment; from the next day, less what it paid.
        fen_days += Decimal::from(outstanding) * Decimal::from((p.on - day).num_days() + 1);
        outstanding -= p.principal_fen;
        day = p.on.succ_opt().unwrap_or(p.on);
    }
    if day <= end {
        fen_days += Decimal::from(outstanding) * Decimal::from((end - day).num_days() + 1);
    }
    fen_days * t.daily_rate
}

/// The late fee accrued through `through`, in fen, rounded half-up once and held to the cap.
pub fn late_fee_through(t: &Terms, paid: &[Paid], through: NaiveDate) -> i64 {
    let fen = late_fee_exact(t, paid, through).round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    let fen = i64::try_from(fen).unwrap_or(i64::MAX);
    t.cap_fen.map_or(fen, |cap| fen.min(cap))
}

/// A payment refused: more than the late fee due that day plus the principal outstanding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overpayment {
    /// The most that can be paid that day.
    pub payable_fen: i64,
}

/// How a payment of `amount_fen` on `on` (not before any of `paid`) is applied: the late fee due that day first,
/// then principal.
pub fn settle(t: &Terms, paid: &[Paid], on: NaiveDate, amount_fen: i64) -> Result<Paid, Overpayment> {
    let late_paid: i64 = paid.iter().map(|p| p.late_fee_fen).sum();
    let late_due = (late_fee_through(t, paid, on) - late_paid).max(0);
    let principal_due = t.principal_fen - paid.iter().map(|p| p.principal_fen).sum::<i64>();
    let payable = late_due.saturating_add(principal_due);
    if amount_fen > payable {
        return Err(Overpayment { payable_fen: payable });
    }
    let late = amount_fen.min(late_due);
    Ok(Paid { on, principal_fen: amount_fen - late, late_fee_fen: late })
}

/// Where an assessment stands on a day, from the payments made by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    pub paid_fen: i64,
    pub late_fee_paid_fen: i64,
    pub outstanding_fen: i64,
    /// Late fee incurred through the day (paid or not; up to the waiver for a waived assessment).
    pub late_fee_fen: i64,
    pub late_fee_outstanding_fen: i64,
    /// What a waiver forgave (principal and late fee outstanding on its day).
    pub waived_fen: i64,
    /// Principal outstanding after the due date.
    pub overdue: bool,
}

/// The standing on `as_of` (payments after it are not counted yet).
pub fn standing(t: &Terms, all_paid: &[Paid], as_of: NaiveDate) -> Standing {
    let n = all_paid.iter().take_while(|p| p.on <= as_of).count();
    let paid = &all_paid[..n];
    let paid_fen: i64 = paid.iter().map(|p| p.principal_fen).sum();
    let late_fee_paid_fen: i64 = paid.iter().map(|p| p.late_fee_fen).sum();
    let principal_left = t.principal_fen - paid_fen;
    let late_fee_fen = late_fee_through(t, paid, as_of).max(late_fee_paid_fen);
    let late_left = late_fee_fen - late_fee_paid_fen;
    if t.waived_on.is_some_and(|w| w <= as_of) {
        return Standing {
            paid_fen,
            late_fee_paid_fen,
            outstanding_fen: 0,
            late_fee_fen,
            late_fee_outstanding_fen: 0,
            waived_fen: principal_left + late_left,
            overdue: false,
        };
    }
    Standing {
        paid_fen,
        late_fee_paid_fen,
        outstanding_fen: principal_left,
        late_fee_fen,
        late_fee_outstanding_fen: late_left,
        waived_fen: 0,
        overdue: principal_left > 0 && t.due.is_some_and(|d| as_of > d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn terms(principal_fen: i64, due: &str) -> Terms {
        Terms { principal_fen, due: Some(day(due)), daily_rate: Decimal::new(2, 3), waived_on: None, cap_fen: None }
    }

    #[test]
    fn the_worked_example() {
        // 36 000 yuan due 04-13, paid 04-23: 10 days × 2‰ × 36 000 = 720 yuan.
        let t = terms(3_600_000, "2022-04-13");
        assert_eq!(late_fee_through(&t, &[], day("2022-04-23")), 72_000);
        assert_eq!(late_fee_through(&t, &[], day("2022-04-13")), 0);
        let p = settle(&t, &[], day("2022-04-23"), 3_672_000).unwrap();
        assert_eq!((p.late_fee_fen, p.principal_fen), (72_000, 3_600_000));
        assert_eq!(settle(&t, &[], day("2022-04-23"), 3_672_001), Err(Overpayment { payable_fen: 3_672_000 }));
        let s = standing(&t, &[p], day("2022-12-31"));
        assert_eq!((s.outstanding_fen, s.late_fee_fen, s.late_fee_outstanding_fen, s.overdue), (0, 72_000, 0, false));
    }

    #[test]
    fn partial_payments_reduce_the_principal_from_the_next_day() {
        let t = terms(1_000_000, "2022-04-13"); // 10 000 yuan
                                                // 04-18: 5 days late → 100 yuan due; pay 5 100 yuan: 100 late fee, 5 000 principal.
        let first = settle(&t, &[], day("2022-04-18"), 510_000).unwrap();
        assert_eq!((first.late_fee_fen, first.principal_fen), (10_000, 500_000));
        // 04-19 .. 04-23 at 5 000 yuan: 5 × 10 = 50 yuan more.
        assert_eq!(late_fee_through(&t, &[first], day("2022-04-23")), 15_000);
        let s = standing(&t, &[first], day("2022-04-23"));
        assert_eq!(
            (s.paid_fen, s.outstanding_fen, s.late_fee_outstanding_fen, s.overdue),
            (500_000, 500_000, 5_000, true)
        );
        // As of the day before the payment, it is not counted yet.
        assert_eq!(standing(&t, &[first], day("2022-04-17")).paid_fen, 0);
    }

    #[test]
    fn a_deferral_moves_the_first_late_day_and_a_waiver_stops_accrual() {
        let mut t = terms(1_000_000, "2022-04-13");
        t.due = Some(day("2022-06-30"));
        assert_eq!(late_fee_through(&t, &[], day("2022-06-30")), 0);
        assert_eq!(late_fee_through(&t, &[], day("2022-07-01")), 2_000);
        t.waived_on = Some(day("2022-07-05"));
        let s = standing(&t, &[], day("2022-12-31"));
        assert_eq!((s.late_fee_fen, s.waived_fen, s.outstanding_fen), (10_000, 1_010_000, 0));
    }

    #[test]
    fn a_fines_late_fee_stops_at_the_fine() {
        // 10 000 yuan due 2022-05-01 at 3 % a day: 300 yuan a day, the fine reached after 34 days.
        let t = Terms { cap_fen: Some(1_000_000), daily_rate: Decimal::new(3, 2), ..terms(1_000_000, "2022-05-01") };
        assert_eq!(late_fee_through(&t, &[], day("2022-05-11")), 300_000);
        assert_eq!(late_fee_through(&t, &[], day("2022-06-30")), 1_000_000);
        let p = settle(&t, &[], day("2022-06-30"), 2_000_000).unwrap();
        assert_eq!((p.late_fee_fen, p.principal_fen), (1_000_000, 1_000_000));
        assert_eq!(settle(&t, &[], day("2022-06-30"), 2_000_001), Err(Overpayment { payable_fen: 2_000_000 }));
    }

    /// The definition, day by day, without shortcuts: the reference the piecewise sum is checked against.
    fn late_fee_by_day(t: &Terms, paid: &[Paid], through: NaiveDate) -> Decimal {
        let Some(due) = t.due else { return Decimal::ZERO };
        let end = t.waived_on.map_or(through, |w| w.min(through));
        let mut sum = Decimal::ZERO;
        let mut d = due.succ_opt().unwrap();
        while d <= end {
            let before: i64 = paid.iter().filter(|p| p.on < d).map(|p| p.principal_fen).sum();
            sum += Decimal::from(t.principal_fen - before) * t.daily_rate;
            d = d.succ_opt().unwrap();
        }
        sum
    }

    prop_compose! {
        fn schedule()(principal in 0i64..=1_000_000_000_000, due_offset in 0i64..400, per_mille in 0i64..=50, cap in proptest::option::of(0i64..=1_000_000_000_000),
                      steps in proptest::collection::vec((0i64..40, 0i64..=1200), 0..8))
                      -> (Terms, Vec<(i64, i64)>) {
            let due = day("2022-04-13") + chrono::TimeDelta::days(due_offset);
            (Terms { principal_fen: principal, due: Some(due), daily_rate: Decimal::new(per_mille, 3), waived_on: None, cap_fen: cap }, steps)
        }
    }

    proptest! {
        /// For arbitrary principals, rates and payment sequences: the piecewise late fee equals the day-by-day
        /// definition, rounding happens once, and payments + outstanding = amount + late fees at every step.
        #[test]
        fn payments_and_late_fees_balance((t, steps) in schedule()) {
            let mut paid: Vec<Paid> = Vec::new();
            let mut on = t.due.unwrap() - chrono::TimeDelta::days(7);
            let mut total_paid = 0i64;
            for (gap, per_mille) in steps {
                on += chrono::TimeDelta::days(gap);
                // Mostly partial payments, some paying off (late fee included), some too much.
                let amount = i64::try_from(i128::from(t.principal_fen) * i128::from(per_mille) / 1000).unwrap() + per_mille % 7;
                prop_assert_eq!(late_fee_exact(&t, &paid, on), late_fee_by_day(&t, &paid, on));
                match settle(&t, &paid, on, amount) {
                    Ok(p) => {
                        prop_assert_eq!(p.principal_fen + p.late_fee_fen, amount);
                        prop_assert!(p.principal_fen >= 0 && p.late_fee_fen >= 0);
                        paid.push(p);
                        total_paid += amount;
                    }
                    Err(Overpayment { payable_fen }) => prop_assert!(amount > payable_fen),
                }
                let s = standing(&t, &paid, on);
                prop_assert_eq!(s.paid_fen + s.outstanding_fen, t.principal_fen);
                prop_assert_eq!(total_paid + s.outstanding_fen + s.late_fee_outstanding_fen, t.principal_fen + s.late_fee_fen);
                let once = late_fee_by_day(&t, &paid, on).round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
                let once = t.cap_fen.map_or(once, |cap| once.min(Decimal::from(cap)));
                prop_assert_eq!(Decimal::from(s.late_fee_fen), once);
                prop_assert!(s.outstanding_fen >= 0 && s.late_fee_outstanding_fen >= 0);
            }
        }

    }
}
