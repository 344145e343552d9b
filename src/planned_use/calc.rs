//! Over-plan surcharges (超计划累进加价): the volume used beyond the plan is cut into bands by how far over the plan
//! it lies, and each band pays the base price times its tier's multiplier — band by band, like income tax. With the
//! default tiers (≤ 20 % over ×1, 20–40 % ×2, over 40 % ×3) a 50 % overrun pays 20 % of the plan at ×1, 20 % at ×2
//! and 10 % at ×3. Amounts are exact decimals, rounded half-up to the fen once, at the end.
//!
//! A band's edge is a whole number of m³: `plan × pct / 100` rounded **up**, so a fraction of a cubic metre is
//! charged in the lower (cheaper) band — in the payer's favour. A plan of 0 m³ puts all use in the top band.

use crate::domain::money::{round_fen, Rate};
use rust_decimal::Decimal;

/// One tier: the excess between `over_pct_from` % and `over_pct_to` % over the plan (open-ended when `None`) pays
/// `multiplier` × the base price on top of the price itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub over_pct_from: u32,
    pub over_pct_to: Option<u32>,
    /// An exact decimal, e.g. 1 or 1.5.
    pub multiplier: Decimal,
}

/// A multiplier as written (`"1"`, `"1.5"`, `"2.25"`): more than 0, at most 100, at most 4 decimals; plain digits.
pub fn parse_multiplier(s: &str) -> Option<Decimal> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || int.len() > 3 || !digits(int) || !digits(frac) || frac.len() > 4 || s.ends_with('.') {
        return None;
    }
    let d: Decimal = s.parse().ok()?;
    (d > Decimal::ZERO && d <= Decimal::ONE_HUNDRED).then(|| d.normalize())
}

/// The default tiers: ≤ 20 % over ×1, 20–40 % ×2, over 40 % ×3.
pub fn default_tiers() -> Vec<Tier> {
    vec![
        Tier { over_pct_from: 0, over_pct_to: Some(20), multiplier: Decimal::ONE },
        Tier { over_pct_from: 20, over_pct_to: Some(40), multiplier: Decimal::TWO },
        Tier { over_pct_from: 40, over_pct_to: None, multiplier: Decimal::from(3) },
    ]
}

/// What one tier charged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Band {
    pub over_pct_from: u32,
    pub over_pct_to: Option<u32>,
    /// The excess volume in this band.
    pub volume_m3: i64,
    pub multiplier: Decimal,
    /// `volume × multiplier × price`, exact, in yuan.
    pub amount_yuan: Decimal,
}

/// The surcharge of one user for one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Surcharge {
    pub planned_m3: i64,
    pub used_m3: i64,
    /// `used − planned`, 0 when within the plan.
    pub excess_m3: i64,
    pub bands: Vec<Band>,
    /// Σ band amounts, rounded half-up to the fen once.
    pub amount_fen: i64,
}

/// Why a tier table is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierError {
    /// Tiers must start at 0 %, follow on without gaps or overlaps, each wider than nothing, the last open-ended.
    NotContiguous(usize),
    /// A multiplier must be more than 0 and at most 100, with at most 4 decimals.
    Multiplier(usize),
}

/// Checks a tier table (see [`TierError`]).
pub fn check_tiers(tiers: &[Tier]) -> Result<(), TierError> {
    if tiers.is_empty() {
        return Err(TierError::NotContiguous(0));
    }
    let mut from = 0;
    for (i, t) in tiers.iter().enumerate() {
        let last = i == tiers.len() - 1;
        let contiguous = t.over_pct_from == from
            && match t.over_pct_to {
                Some(to) => !last && to > t.over_pct_from && to <= 10_000,
                None => last,
            };
        if !contiguous {
            return Err(TierError::NotContiguous(i));
        }
        if t.multiplier <= Decimal::ZERO || t.multiplier > Decimal::ONE_HUNDRED || t.multiplier.scale() > 4 {
            return Err(TierError::Multiplier(i));
        }
        from = t.over_pct_to.unwrap_or(from);
    }
    Ok(())
}

/// The excess volume at which `pct` % over `planned` begins: `planned × pct / 100` rounded up.
fn edge(planned: i64, pct: u32) -> i64 {
    let num = i128::from(planned) * i128::from(pct);
    // planned ≤ 10¹² and pct ≤ 10 000: the edge fits an i64.
    ((num + 99) / 100) as i64
}

/// The surcharge for `used` m³ against a plan of `planned` m³ at `price`, with `tiers` (checked by
/// [`check_tiers`]). `None` when the amount exceeds the largest amount.
pub fn surcharge(planned: i64, used: i64, price: Rate, tiers: &[Tier]) -> Option<Surcharge> {
    let excess = (used - planned).max(0);
    let bands: Vec<Band> = tiers
        .iter()
        .map(|t| {
            let low = edge(planned, t.over_pct_from);
            let high = t.over_pct_to.map_or(excess, |to| edge(planned, to).min(excess));
            let volume = (high - low).max(0);
            let amount_yuan = price.charge(volume) * t.multiplier;
            Band {
                over_pct_from: t.over_pct_from,
                over_pct_to: t.over_pct_to,
                volume_m3: volume,
                multiplier: t.multiplier,
                amount_yuan,
            }
        })
        .collect();
    let total: Decimal = bands.iter().map(|b| b.amount_yuan).sum();
    Some(Surcharge { planned_m3: planned, used_m3: used, excess_m3: excess, bands, amount_fen: round_fen(total)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn price(s: &str) -> Rate {
        Rate::parse(s).unwrap()
    }

    fn volumes(s: &Surcharge) -> Vec<i64> {
        s.bands.iter().map(|b| b.volume_m3).collect()
    }

    #[test]
    fn the_worked_example_a_fifty_percent_overrun() {
        // Plan 10 000 m³, used 15 000 m³ at 4.00 yuan: 2 000 × 1 + 2 000 × 2 + 1 000 × 3 = 9 000 m³-equivalents.
        let s = surcharge(10_000, 15_000, price("4.00"), &default_tiers()).unwrap();
        assert_eq!(s.excess_m3, 5_000);
        assert_eq!(volumes(&s), [2_000, 2_000, 1_000]);
        assert_eq!(s.amount_fen, 9_000 * 400);
    }

    #[test]
    fn every_band_boundary() {
        let t = default_tiers();
        let p = price("1");
        let at = |used| surcharge(1_000, used, p, &t).unwrap();
        // No overrun, exactly on plan, and under it.
        assert_eq!((volumes(&at(900)), at(900).amount_fen), (vec![0, 0, 0], 0));
        assert_eq!((volumes(&at(1_000)), at(1_000).amount_fen), (vec![0, 0, 0], 0));
        // Exactly 20 % over: all at ×1; one m³ more goes to ×2.
        assert_eq!((volumes(&at(1_200)), at(1_200).amount_fen), (vec![200, 0, 0], 200 * 100));
        assert_eq!((volumes(&at(1_201)), at(1_201).amount_fen), (vec![200, 1, 0], 202 * 100));
        // Exactly 40 % over, and one m³ more.
        assert_eq!((volumes(&at(1_400)), at(1_400).amount_fen), (vec![200, 200, 0], 600 * 100));
        assert_eq!((volumes(&at(1_401)), at(1_401).amount_fen), (vec![200, 200, 1], 603 * 100));
    }

    #[test]
    fn a_plan_of_nothing_puts_all_use_in_the_top_band() {
        let s = surcharge(0, 50, price("2.5"), &default_tiers()).unwrap();
        assert_eq!(volumes(&s), [0, 0, 50]);
        assert_eq!(s.amount_fen, 375 * 100);
        assert_eq!(surcharge(0, 0, price("2.5"), &default_tiers()).unwrap().amount_fen, 0);
    }

    #[test]
    fn edges_round_up_in_the_payers_favour() {
        // 20 % of 1 001 m³ is 200.2 m³: the first band holds 201 m³.
        let s = surcharge(1_001, 1_300, price("1"), &default_tiers()).unwrap();
        assert_eq!(volumes(&s), [201, 98, 0]);
    }

    #[test]
    fn rounding_happens_once() {
        // 3 × 0.3333 × 1 + … : the bands' exact yuan add up before rounding.
        let s = surcharge(10, 13, price("0.3333"), &default_tiers()).unwrap();
        assert_eq!(volumes(&s), [2, 1, 0]);
        // 2 × 0.3333 + 1 × 0.3333 × 2 = 1.3332 yuan → 133 fen.
        assert_eq!(s.amount_fen, 133);
    }

    #[test]
    fn multipliers_are_plain_decimals() {
        assert_eq!(parse_multiplier("1.50"), Some(Decimal::new(15, 1)));
        assert_eq!(parse_multiplier("2"), Some(Decimal::TWO));
        for bad in ["0", "-1", "1e2", "1.", ".5", "101", "1.23456", " 1", ""] {
            assert_eq!(parse_multiplier(bad), None, "{bad}");
        }
    }

    #[test]
    fn tier_tables_are_checked() {
        assert_eq!(check_tiers(&default_tiers()), Ok(()));
        let mut gap = default_tiers();
        gap[1].over_pct_from = 25;
        assert_eq!(check_tiers(&gap), Err(TierError::NotContiguous(1)));
        let mut closed = default_tiers();
        closed[2].over_pct_to = Some(100);
        assert_eq!(check_tiers(&closed), Err(TierError::NotContiguous(2)));
        let mut zero = default_tiers();
        zero[0].multiplier = Decimal::ZERO;
        assert_eq!(check_tiers(&zero), Err(TierError::Multiplier(0)));
        assert_eq!(check_tiers(&[]), Err(TierError::NotContiguous(0)));
    }

    fn tiers() -> impl Strategy<Value = Vec<Tier>> {
        (proptest::collection::vec((1u32..200, 1i64..=100_000), 0..4), 1i64..=100_000).prop_map(|(steps, top)| {
            let mut from = 0;
            let mut out: Vec<Tier> = steps
                .into_iter()
                .map(|(width, m)| {
                    let t =
                        Tier { over_pct_from: from, over_pct_to: Some(from + width), multiplier: Decimal::new(m, 4) };
                    from += width;
                    t
                })
                .collect();
            out.push(Tier { over_pct_from: from, over_pct_to: None, multiplier: Decimal::new(top, 4) });
            out
        })
    }

    proptest! {
        #[test]
        fn bands_cover_the_excess_and_add_up(planned in 0i64..=10_000_000, used in 0i64..=30_000_000,
                                             rate in 0i64..=100_000, t in tiers()) {
            prop_assert_eq!(check_tiers(&t), Ok(()));
            let p = Rate::parse(&Decimal::new(rate, 4).to_string()).unwrap();
            let s = surcharge(planned, used, p, &t).unwrap();
            prop_assert_eq!(s.bands.iter().map(|b| b.volume_m3).sum::<i64>(), s.excess_m3);
        }

        /// Against a reference that prices the excess one cubic metre at a time: the k-th m³ over the plan lies
        /// `k / plan` over it and pays the multiplier of the tier that holds that share (a tier's upper edge counts
        /// in it); the yuan are summed exactly and rounded once.
        #[test]
        fn each_cubic_metre_pays_its_own_tier(planned in 0i64..=3_000, used in 0i64..=9_000, rate in 0i64..=100_000,
                                              t in tiers()) {
            let p = Rate::parse(&Decimal::new(rate, 4).to_string()).unwrap();
            let s = surcharge(planned, used, p, &t).unwrap();
            let mut yuan = Decimal::ZERO;
            for k in 1..=(used - planned).max(0) {
                // k m³ over is k × 100 / planned percent over: within a tier when k × 100 ≤ planned × to (rounded
                // up to whole m³, as the edges are).
                let tier = t
                    .iter()
                    .find(|tier| tier.over_pct_to.is_none_or(|to| k * 100 <= (planned * i64::from(to) + 99) / 100 * 100))
                    .unwrap();
                yuan += p.decimal() * tier.multiplier;
            }
            prop_assert_eq!(Some(s.amount_fen), round_fen(yuan));
        }

        #[test]
        fn more_use_never_costs_less(planned in 0i64..=10_000_000, used in 0i64..=30_000_000, more in 0i64..=1_000_000,
                                     rate in 0i64..=100_000, t in tiers()) {
            let p = Rate::parse(&Decimal::new(rate, 4).to_string()).unwrap();
            let a = surcharge(planned, used, p, &t).unwrap();
            let b = surcharge(planned, used + more, p, &t).unwrap();
            prop_assert!(b.amount_fen >= a.amount_fen);
            for (x, y) in a.bands.iter().zip(&b.bands) {
                prop_assert!(y.volume_m3 >= x.volume_m3);
            }
        }
    }
}
