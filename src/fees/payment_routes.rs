//! `/api/v1/fee-assessments/{id}/payments` and `/api/v1/payments`: recording payments (partial allowed, the late
//! fee due that day settled first, overpayment refused, a receipt number once) and reading them.
//!
//! Recording locks the assessment (`SELECT … FOR UPDATE` on PostgreSQL) before reading what was paid, so two
//! payments that together would overpay are taken one after the other: the second sees the first and is refused.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::routes::{FeesManage, FeesRead};
use super::view::Context;
use super::view::{payment_views, Payment};
use super::{rules, AssessmentRow, FeeConfig, PaymentMethod, PaymentRow};
use crate::audit::{self, EntityType, Event};
use crate::db::schema::payments as pm;
use crate::db::{is_unique_violation, DbConn};
use crate::domain::dates::{plain, Date};
use crate::domain::text::Checks;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::http::pagination::PageParams;
use crate::http::{respond, ApiJson, IfMatch, ListQuery, Page, PageQuery, PathId};
use crate::messages::Msg;
use crate::security::Authorized;
use crate::state::AppState;
use crate::write::{Reply, Versioned};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(record).service(list_for_assessment).service(list).service(get_one);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount_fen": 3672000, "paid_on": "2022-04-23", "method": "bank_transfer", "receipt_no": "SZ2022-000118"}))]
pub struct NewPayment {
    /// 1 ..= 10¹² fen; at most the late fee due on `paid_on` plus the principal outstanding.
    pub amount_fen: i64,
    /// The day it was paid: not in the future, not before the notice was served or before the last payment.
    #[schema(value_type = String, format = Date)]
    pub paid_on: Date,
    pub method: PaymentMethod,
    /// 收据号 / 票据号: unique across all payments.
    pub receipt_no: String,
    pub note: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PaymentFilter {
    /// Paid on or after this day.
    #[param(value_type = Option<String>, format = Date)]
    pub paid_from: Option<Date>,
    /// Paid on or before this day.
    #[param(value_type = Option<String>, format = Date)]
    pub paid_to: Option<Date>,
    pub method: Option<PaymentMethod>,
    pub assessment_id: Option<String>,
    pub receipt_no: Option<String>,
}

/// 登记缴款 — Record a payment: the late fee due on `paid_on` is settled first, then principal; partial payments are
/// allowed. More than is due that day is refused (`overpayment`), as is a receipt number already recorded.
#[utoipa::path(tag = "payments", params(("id" = String, Path, description = "Assessment id"),
        ("If-Match" = Option<String>, Header, description = "Optional: the assessment's ETag")),
    request_body = NewPayment, security(("bearer" = ["finance"])),
    responses((status = 201, description = "Recorded", body = Payment, headers(("ETag" = String), ("Location" = String))),
        (status = 409, description = "`overpayment`, `receipt_no_taken`, `invalid_transition` (not served, settled, waived, a tax referral, or a deferral pending) or `effective_date_out_of_order` (before service or the last payment)",
            body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/fee-assessments/{id}/payments")]
async fn record(
    state: web::Data<AppState>,
    caller: Authorized<FeesManage>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<NewPayment>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let mut c = Checks::new();
    if !(1..=crate::domain::MAX_AMOUNT_FEN).contains(&b.amount_fen) {
        c.fail("amount_fen", Msg::AmountRange);
    }
    let receipt_no = c.required("receipt_no", &b.receipt_no, 64);
    let note = c.optional_text("note", b.note.as_deref(), 1000);
    c.finish()?;
    let recorded_by = caller.principal.signature();
    let config = FeeConfig::of(&state.settings);
    let ctx = caller.ctx();
    let assessment_id = id.into_inner();
    state
        .write(move |conn| {
            let today = ctx.now.today;
            let before = AssessmentRow::lock(conn, &assessment_id)?.ok_or(ApiError::NotFound)?;
            if_match.check_if_present(before.version)?;
            // The audit copies of a payment's assessment show its figures; a pending `reassessment` is not a
            // payment's concern (re-pricing the period twice per payment halved the rate payments are taken at).
            // One context serves the payment's rules, both copies and the payment's view.
            let mut context = Context::load(conn, std::slice::from_ref(&before), config, today, false)?;
            let before_view = context.view(&before);
            let (p, mut after) =
                rules::pay(&before, context.paid(&assessment_id), b.paid_on.get(), b.amount_fen, &config, today)?;
            after.touch(ctx.now.at);
            if after.store(conn, before.version)? != 1 {
                return Err(ApiError::PreconditionFailed);
            }
            let row = PaymentRow {
                id: crate::domain::new_id(),
                assessment_id: assessment_id.clone(),
                amount_fen: b.amount_fen,
                principal_fen: p.principal_fen,
                late_fee_fen: p.late_fee_fen,
                outstanding_after_fen: after.amount_fen - after.paid_fen,
                paid_on: p.on,
                method: b.method.as_str().into(),
                receipt_no,
                note,
                recorded_by,
                created_at: ctx.now.at,
                updated_at: ctx.now.at,
                version: 1,
            };
            diesel::insert_into(pm::table).values(&row).execute(conn).map_err(|e| {
                if is_unique_violation(&e) {
                    ApiError::conflict(ErrorCode::ReceiptNoTaken, Msg::ReceiptNoTaken(row.receipt_no.clone()))
                } else {
                    e.into()
                }
            })?;
            context.add_payment(&assessment_id, row.paid());
            let after_view = context.view(&after);
            let payment = context.payment_view(&after, row);
            audit::record_all(
                conn,
                &ctx,
                [
                    Event::new("payment_recorded").entity(EntityType::Payment, &payment.id).after(&payment),
                    Event::new("fee_assessment_paid")
                        .entity(EntityType::FeeAssessment, &assessment_id)
                        .before(&before_view)
                        .after(&after_view)
                        .effective_date(p.on),
                ],
            )?;
            Ok(Reply::created(format!("/api/v1/payments/{}", payment.id), payment.version, &payment))
        })
        .await
}

/// Payments selected by `filter`, keyset-paged by id.
fn page_of(conn: &mut DbConn, pp: &PageParams<String>, f: &PaymentFilter) -> ApiResult<Page<Payment>> {
    let filtered = || {
        let mut q = pm::table.into_boxed();
        if let Some(v) = plain(f.paid_from) {
            q = q.filter(pm::paid_on.ge(v));
        }
        if let Some(v) = plain(f.paid_to) {
            q = q.filter(pm::paid_on.le(v));
        }
        if let Some(v) = f.method {
            q = q.filter(pm::method.eq(v.as_str()));
        }
        if let Some(v) = &f.assessment_id {
            q = q.filter(pm::assessment_id.eq(v.clone()));
        }
        if let Some(v) = &f.receipt_no {
            q = q.filter(pm::receipt_no.eq(v.trim().to_string()));
        }
        q
    };
    let total = pp.total(|| filtered().count().get_result(conn))?;
    let mut q = filtered().order(pm::id.asc()).limit(pp.fetch()).select(PaymentRow::as_select());
    if let Some(after) = &pp.after {
        q = q.filter(pm::id.gt(after.clone()));
    }
    let rows = pp.page(q.load(conn)?, |r: &PaymentRow| r.id.clone());
    let items = payment_views(conn, rows.items)?;
    Ok(Page { items, next_cursor: rows.next_cursor, total })
}

/// 核定的缴款记录 — The payments of one assessment, in the order recorded.
#[utoipa::path(tag = "payments", params(("id" = String, Path, description = "Assessment id"), PageQuery),
    security(("bearer" = ["admin", "leader", "finance", "auditor", "platform"])),
    responses((status = 200, description = "Payments", body = Page<Payment>)))]
#[get("/fee-assessments/{id}/payments")]
async fn list_for_assessment(
    state: web::Data<AppState>,
    _caller: Authorized<FeesRead>,
    id: PathId,
    query: ListQuery<crate::http::NoFilter>,
) -> ApiResult<HttpResponse> {
    let pp: PageParams<String> = query.page.params()?;
    let id = id.into_inner();
    let page = state
        .db
        .run(move |conn| {
            super::find(conn, &id)?.ok_or(ApiError::NotFound)?;
            let f = PaymentFilter {
                paid_from: None,
                paid_to: None,
                method: None,
                assessment_id: Some(id),
                receipt_no: None,
            };
            page_of(conn, &pp, &f)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// 缴款记录列表 — Payments across assessments, by day paid, method or receipt number.
#[utoipa::path(tag = "payments", params(PageQuery, PaymentFilter),
    security(("bearer" = ["admin", "leader", "finance", "auditor", "platform"])),
    responses((status = 200, description = "Payments in the order recorded", body = Page<Payment>)))]
#[get("/payments")]
async fn list(
    state: web::Data<AppState>,
    _caller: Authorized<FeesRead>,
    query: ListQuery<PaymentFilter>,
) -> ApiResult<HttpResponse> {
    let pp: PageParams<String> = query.page.params()?;
    let f = query.filter;
    let page = state.db.run(move |conn| page_of(conn, &pp, &f)).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// 查看缴款记录 — One payment.
#[utoipa::path(tag = "payments", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "finance", "auditor", "platform"])),
    responses((status = 200, description = "The payment", body = Payment, headers(("ETag" = String)))))]
#[get("/payments/{id}")]
async fn get_one(state: web::Data<AppState>, _caller: Authorized<FeesRead>, id: PathId) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let payment = state
        .db
        .run(move |conn| {
            let row: PaymentRow = pm::table
                .find(&id)
                .select(PaymentRow::as_select())
                .first(conn)
                .optional()?
                .ok_or(ApiError::NotFound)?;
            Ok(payment_views(conn, vec![row])?.remove(0))
        })
        .await?;
    Ok(respond(StatusCode::OK, payment.version, &payment))
}
