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

/// The planned quantity of months `first ..= last` (1-based) of a plan.
pub fn planned_for(months: &[i64; 12], first: u32, last: u32) -> i64 {
    months[(first as usize - 1)..(last as usize)].iter().sum()
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
    fn quarters_of_a_plan() {
        let months = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        assert_eq!(planned_for(&months, 1, 3), 6);
        assert_eq!(planned_for(&months, 10, 12), 33);
        assert_eq!(planned_for(&months, 1, 12), 78);
    }

    proptest! {
        #[test]
        fn an_even_split_always_adds_up(annual in 0..=MAX_VOLUME_M3) {
            let months = split_evenly(annual);
            prop_assert_eq!(months.iter().sum::<i64>(), annual);
            prop_assert!(months[..11].iter().all(|m| *m == months[0]));
            prop_assert!(months[11] >= months[0] && months[11] - months[0] < 12);
        }
    }
}
