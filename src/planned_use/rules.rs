//! The rules of a plan: twelve monthly quantities that add up to the annual one; a plan issued without months is
//! split evenly, the remainder in December; usage is recorded only for months of a year the user has a plan for.

use crate::domain::MAX_VOLUME_M3;
use crate::messages::Msg;

/// The earliest and latest plan years accepted.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// `annual` split into 12 equal months, the remainder in December (`1 200 001` → 100 000 × 11 and 100 001).
pub fn split_evenly(annual: i64) -> [i64; 12] {
    let each = annual / 12;
    let mut months = [each; 12];
    months[11] += annual - each * 12;
    months
}

/// The monthly quantities of a plan of `annual` m³: `monthly` when given (12 values, each 0 ..= 10¹², adding up to
/// `annual`), otherwise [`split_evenly`]. The error names what is wrong with `monthly_m3`.
pub fn monthly_quantities(annual: i64, monthly: Option<&[i64]>) -> Result<[i64; 12], Msg> {
    let Some(monthly) = monthly else { return Ok(split_evenly(annual)) };
    let months: [i64; 12] = monthly.try_into().map_err(|_| Msg::TwelveMonths)?;
    if months.iter().any(|m| !(0..=MAX_VOLUME_M3).contains(m)) {
        return Err(Msg::VolumeRange { min: 0 });
    }
    // Twelve values of at most 10¹² cannot overflow.
    let sum: i64 = months.iter().sum();
    if sum != annual {
        return Err(Msg::MonthlySum { sum, annual });
    }
    Ok(months)
}

/// The planned quantity of months `first ..= last` (1-based, clamped to 1 ..= 12) of a plan.
pub fn planned_for(months: &[i64; 12], first: u32, last: u32) -> i64 {
    let (first, last) = (first.clamp(1, 12) as usize, last.clamp(1, 12) as usize);
    months.get(first - 1..last).map_or(0, |m| m.iter().sum())
}

/// A new annual quantity spread from month `from` (1-based) on: the months before keep their planned quantities
/// (they have passed), the rest of `annual` is split evenly over the remaining months, the remainder in December.
/// Refused when the months kept already exceed `annual`, or when none remain (`from` after December).
pub fn respread(months: &[i64; 12], annual: i64, from: u32) -> Result<[i64; 12], Msg> {
    let from = from.max(1) as usize;
    if from > 12 {
        return Err(Msg::MonthsRequired);
    }
    let kept: i64 = months[..from - 1].iter().sum();
    let rest = annual - kept;
    if rest < 0 {
        return Err(Msg::BelowElapsed { elapsed: kept });
    }
    let remaining = (13 - from) as i64;
    let mut out = *months;
    let each = rest / remaining;
    for m in out.iter_mut().skip(from - 1) {
        *m = each;
    }
    out[11] += rest - each * remaining;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn even_split_puts_the_remainder_in_december() {
        assert_eq!(
            split_evenly(1_200_001),
            [
                100_000, 100_000, 100_000, 100_000, 100_000, 100_000, 100_000, 100_000, 100_000, 100_000, 100_000,
                100_001
            ]
        );
        assert_eq!(split_evenly(11), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]);
        assert_eq!(split_evenly(0), [0; 12]);
    }

    #[test]
    fn monthly_quantities_must_be_twelve_and_add_up() {
        assert_eq!(monthly_quantities(12, Some(&[1; 12])), Ok([1; 12]));
        assert_eq!(monthly_quantities(13, Some(&[1; 12])), Err(Msg::MonthlySum { sum: 12, annual: 13 }));
        assert_eq!(monthly_quantities(11, Some(&[1; 11])), Err(Msg::TwelveMonths));
        let mut negative = [1; 12];
        negative[3] = -1;
        assert_eq!(monthly_quantities(10, Some(&negative)), Err(Msg::VolumeRange { min: 0 }));
        assert_eq!(monthly_quantities(24, None), Ok([2; 12]));
    }

    #[test]
    fn a_mid_year_change_keeps_the_months_passed() {
        let months = [100; 12];
        // From July: 600 kept, 900 over six months.
        assert_eq!(respread(&months, 1_500, 7), Ok([100, 100, 100, 100, 100, 100, 150, 150, 150, 150, 150, 150]));
        assert_eq!(respread(&months, 1_201, 1).map(|m| m[11]), Ok(101));
        assert_eq!(respread(&months, 500, 7), Err(Msg::BelowElapsed { elapsed: 600 }));
        assert_eq!(respread(&months, 500, 13), Err(Msg::MonthsRequired));
    }

    #[test]
    fn quarters_of_a_plan() {
        let months = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        assert_eq!(planned_for(&months, 1, 3), 6);
        assert_eq!(planned_for(&months, 10, 12), 33);
        assert_eq!(planned_for(&months, 1, 12), 78);
        assert_eq!(planned_for(&months, 0, 14), 78);
        assert_eq!(planned_for(&months, 5, 3), 0);
    }

    proptest! {
        #[test]
        fn an_even_split_always_adds_up(annual in 0..=MAX_VOLUME_M3) {
            let months = split_evenly(annual);
            prop_assert_eq!(months.iter().sum::<i64>(), annual);
            prop_assert!(months[..11].iter().all(|m| *m == months[0]));
            prop_assert!(months[11] >= months[0] && months[11] - months[0] < 12);
        }

        #[test]
        fn a_respread_adds_up_and_keeps_the_past(annual in 0..=1_000_000_000i64, from in 1u32..=12,
                                                 old in proptest::array::uniform12(0..=1_000_000i64)) {
            match respread(&old, annual, from) {
                Ok(new) => {
                    prop_assert_eq!(new.iter().sum::<i64>(), annual);
                    prop_assert_eq!(&new[..from as usize - 1], &old[..from as usize - 1]);
                    prop_assert!(new.iter().all(|m| *m >= 0));
                }
                Err(_) => prop_assert!(old[..from as usize - 1].iter().sum::<i64>() > annual),
            }
        }
    }
}
