//! What an over-plan surcharge (超计划累进加价费) keeps of its calculation: the plan and the usage of its period, the
//! base price, and the tiers applied band by band to the excess. Planned use computes it (`planned_use::settle`);
//! it is stored on the assessment as it was computed, so a notice already served always shows the figures it was
//! made on, whatever the tiers, prices or plans say later.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

crate::text_enum! {
    /// 基本水价来源 — the planned user's own `base_price_yuan_per_m3`, or the price configured for its category
    /// (`/surcharge-tiers`).
    pub enum PriceSource {
        PlannedUser = ("planned_user", "计划用水户核定水价"),
        Category = ("category", "类别基本水价"),
    }
}

/// One month of the period: planned and used (null: no usage recorded for the month).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SurchargeMonth {
    /// `YYYY-MM`.
    pub month: String,
    pub planned_m3: i64,
    pub used_m3: Option<i64>,
}

/// What one tier charged: the excess between `over_pct_from` % and `over_pct_to` % over the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SurchargeBand {
    pub over_pct_from: u32,
    /// Null: open-ended (the top tier).
    pub over_pct_to: Option<u32>,
    /// The excess volume in this band.
    pub volume_m3: i64,
    /// Times the base price (exact decimal).
    #[schema(example = "2")]
    pub multiplier: String,
    /// volume × multiplier × base price in yuan, exact (not rounded).
    #[schema(example = "13800.0000")]
    pub amount_yuan: String,
}

/// The calculation of an over-plan surcharge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"planned_m3": 10000, "used_m3": 15000, "excess_m3": 5000, "base_price_yuan_per_m3": "3.4500",
    "price_source": "category", "months": [{"month": "2026-01", "planned_m3": 3334, "used_m3": 5000}],
    "bands": [{"over_pct_from": 0, "over_pct_to": 20, "volume_m3": 2000, "multiplier": "1", "amount_yuan": "6900.0000"}]}))]
pub struct SurchargeBasis {
    /// The plan's quantity for the period.
    pub planned_m3: i64,
    /// Usage recorded for the period (current revisions).
    pub used_m3: i64,
    /// `used − planned` when positive: the volume charged (also the assessment's `volume_m3`).
    pub excess_m3: i64,
    /// 基本水价 the multipliers apply to (exact decimal, yuan per m³).
    #[schema(example = "3.4500")]
    pub base_price_yuan_per_m3: String,
    pub price_source: PriceSource,
    pub months: Vec<SurchargeMonth>,
    /// Band by band; Σ `amount_yuan` rounded half-up to the fen once is the amount.
    pub bands: Vec<SurchargeBand>,
}
