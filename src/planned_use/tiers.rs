//! `/api/v1/surcharge-tiers` (admin keeps them, the planned-use and fee sections read them): the over-plan
//! surcharge tiers and the base water price of each category of planned user. One record, changed whole under
//! If-Match; every change audited (entity type `surcharge_tiers`).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{get, put, web, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::calc::{check_tiers, parse_multiplier, Tier, TierError};
use super::{Category, PlannedUseRead};
use crate::audit::EntityType;
use crate::clock::Now;
use crate::db::schema::surcharge_tiers;
use crate::db::DbConn;
use crate::domain::money::Rate;
use crate::error::{ApiError, ApiResult, ErrorCode, FieldError};
use crate::http::{respond, ApiJson, IfMatch};
use crate::messages::Msg;
use crate::policy;
use crate::security::Authorized;
use crate::state::AppState;
use crate::write::{self, Change, Entity, Record, Reply};

policy!(
    /// Configuration is the administrators' (docs/api.md §3).
    TiersWrite = [Admin]
);

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(get_tiers).service(put_tiers);
}

/// The one stored row.
const ID: &str = "current";

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = surcharge_tiers, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct TiersRow {
    pub id: String,
    pub tiers: String,
    pub category_prices: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

crate::versioned_row!(TiersRow, surcharge_tiers);

impl Entity for TiersRow {
    const ENTITY: EntityType = EntityType::SurchargeTiers;
}

impl Record for TiersRow {
    type View = SurchargeTiers;

    fn view(&self, _: &mut DbConn, _: &Now) -> QueryResult<SurchargeTiers> {
        Ok(self.shown())
    }
}

impl TiersRow {
    /// The stored JSON as the API shows it (it was checked when written).
    fn shown(&self) -> SurchargeTiers {
        SurchargeTiers {
            tiers: serde_json::from_str(&self.tiers).unwrap_or_default(),
            category_base_prices: serde_json::from_str(&self.category_prices).unwrap_or_default(),
            updated_at: self.updated_at,
            version: self.version,
        }
    }
}

/// One tier as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierSpec {
    /// The band starts this many percent over the plan (the first at 0).
    pub over_pct_from: u32,
    /// …and ends here (null: open-ended, the last tier).
    pub over_pct_to: Option<u32>,
    /// Times the base price charged on top for the band's volume: an exact decimal string, e.g. `"2"`, `"1.5"`.
    pub multiplier: String,
}

/// The surcharge tiers and the category base prices.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"tiers": [{"over_pct_from": 0, "over_pct_to": 20, "multiplier": "1"},
    {"over_pct_from": 20, "over_pct_to": 40, "multiplier": "2"}, {"over_pct_from": 40, "over_pct_to": null, "multiplier": "3"}],
    "category_base_prices": {"non_residential": "3.4500", "self_supplied": "2.0000"}, "updated_at": "2026-01-05T02:00:00Z", "version": 2}))]
pub struct SurchargeTiers {
    pub tiers: Vec<TierSpec>,
    /// Base price (yuan per m³) by category, for planned users that state none.
    #[schema(value_type = BTreeMap<String, String>)]
    pub category_base_prices: BTreeMap<Category, Rate>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl SurchargeTiers {
    /// The tiers for arithmetic (as stored, so already checked).
    pub fn tiers(&self) -> Vec<Tier> {
        self.tiers
            .iter()
            .filter_map(|t| {
                Some(Tier {
                    over_pct_from: t.over_pct_from,
                    over_pct_to: t.over_pct_to,
                    multiplier: parse_multiplier(&t.multiplier)?,
                })
            })
            .collect()
    }
}

/// Body of `PUT`: the whole table.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"tiers": [{"over_pct_from": 0, "over_pct_to": 10, "multiplier": "1"},
    {"over_pct_from": 10, "over_pct_to": 30, "multiplier": "2"}, {"over_pct_from": 30, "over_pct_to": null, "multiplier": "3"}],
    "category_base_prices": {"non_residential": "3.45"}}))]
pub struct TiersInput {
    /// Ascending, contiguous from 0 %, the last open-ended; 1 to 10 tiers.
    pub tiers: Vec<TierSpec>,
    /// Base price by category (omitted categories have none: their users must state their own).
    #[schema(value_type = BTreeMap<String, String>)]
    pub category_base_prices: BTreeMap<Category, Rate>,
}

pub fn load(conn: &mut DbConn) -> QueryResult<SurchargeTiers> {
    let row: TiersRow = surcharge_tiers::table.find(ID).select(TiersRow::as_select()).first(conn)?;
    Ok(row.shown())
}

/// Checks the tiers of a request: each bad tier named by its position.
fn checked(input: &[TierSpec]) -> Result<Vec<TierSpec>, ApiError> {
    let mut errors = Vec::new();
    if input.is_empty() || input.len() > 10 {
        errors.push(FieldError::new("tiers", Msg::TierCount));
    }
    let mut tiers = Vec::new();
    for (i, t) in input.iter().enumerate() {
        match parse_multiplier(t.multiplier.trim()) {
            Some(m) => tiers.push(Tier { over_pct_from: t.over_pct_from, over_pct_to: t.over_pct_to, multiplier: m }),
            None => errors.push(FieldError::new(format!("tiers[{i}].multiplier"), Msg::MultiplierFormat)),
        }
    }
    if errors.is_empty() {
        match check_tiers(&tiers) {
            Ok(()) => {}
            Err(TierError::NotContiguous(i)) => {
                errors.push(FieldError::new(format!("tiers[{i}]"), Msg::TiersContiguous))
            }
            Err(TierError::Multiplier(i)) => {
                errors.push(FieldError::new(format!("tiers[{i}].multiplier"), Msg::MultiplierFormat))
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation { code: ErrorCode::ValidationFailed, errors });
    }
    Ok(tiers
        .into_iter()
        .map(|t| TierSpec {
            over_pct_from: t.over_pct_from,
            over_pct_to: t.over_pct_to,
            multiplier: t.multiplier.to_string(),
        })
        .collect())
}

/// 超计划累进加价标准 — The surcharge tiers and the base price of each category.
#[utoipa::path(tag = "planned-use",
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "The tiers", body = SurchargeTiers, headers(("ETag" = String)))))]
#[get("/surcharge-tiers")]
async fn get_tiers(state: web::Data<AppState>, _caller: Authorized<PlannedUseRead>) -> ApiResult<HttpResponse> {
    let view = state.db.run(|conn| Ok(load(conn)?)).await?;
    Ok(respond(StatusCode::OK, view.version, &view))
}

/// 设置超计划累进加价标准 — Replace the surcharge tiers and the category base prices (admin). Settlements made
/// before keep the figures they were made with.
#[utoipa::path(tag = "planned-use", params(("If-Match" = String, Header, description = "The tiers' ETag")),
    request_body = TiersInput, security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Replaced", body = SurchargeTiers, headers(("ETag" = String))),
        (status = 400, description = "Tiers not contiguous from 0 %, the last not open-ended, or a bad multiplier or price (`validation_failed`, naming `tiers[i]`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = crate::error::Problem, content_type = "application/problem+json")))]
#[put("/surcharge-tiers")]
async fn put_tiers(
    state: web::Data<AppState>,
    caller: Authorized<TiersWrite>,
    if_match: IfMatch,
    body: ApiJson<TiersInput>,
) -> ApiResult<HttpResponse> {
    if_match.require()?;
    let b = body.0;
    let tiers = checked(&b.tiers)?;
    let tiers_json = serde_json::to_string(&tiers).map_err(|e| ApiError::internal(e.to_string()))?;
    let prices_json = serde_json::to_string(&b.category_base_prices).map_err(|e| ApiError::internal(e.to_string()))?;
    let ctx = caller.ctx();
    state
        .write(move |conn| {
            let (row, view) =
                write::modify(conn, &ctx, ID, &if_match, "surcharge_tiers_updated", |_, before: &TiersRow| {
                    let mut after = before.clone();
                    after.tiers = tiers_json;
                    after.category_prices = prices_json;
                    Ok(Change::new(after))
                })?;
            Ok(Reply::ok(row.version, &view))
        })
        .await
}
