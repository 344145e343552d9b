//! `/api/v1/fee-assessments`: the quarterly run, the list with totals, one assessment as of a date, its actions,
//! its payment notice and its history. Payments: `payment_routes`.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::rules::{self, Action, ActionInput};
use super::run::{self, RunSummary};
use super::view::{self, AssessmentPage, Context, FeeAssessment, Filtered};
use super::{find, AssessmentRow, FeeConfig, Kind, Status};
use crate::audit::history::{of_record as record_history, HistoryEntry};
use crate::audit::{self, EntityType, Event};
use crate::db::schema::{fee_assessments as fa, permits as p, water_users as w};
use crate::db::DbConn;
use crate::domain::dates::{plain, Date, Quarter};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::http::pagination::PageParams;
use crate::http::{respond, ApiJson, IfMatch, ListQuery, NoFilter, OptionalJson, PageQuery, PathId, Query};
use crate::messages::Msg;
use crate::policy;
use crate::security::{Authorized, Caller, AUDIT_READERS};
use crate::state::AppState;
use crate::write::{self, Change, Reply};

policy!(
    /// 规划财务科, the leaders, and those who read everything (docs/api.md).
    FeesRead = [Admin, Leader, Finance, Auditor, Platform]
);
policy!(
    /// 规划财务科: the run, notices, payments, deferral and waiver requests.
    FeesManage = [Finance]
);
policy!(
    /// 局领导: decisions on deferrals and waivers.
    FeesDecide = [Leader]
);

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(run_period)
        .service(list)
        .service(get_one)
        .service(notice)
        .service(history)
        .service(notify)
        .service(defer)
        .service(approve_deferral)
        .service(reject_deferral)
        .service(waive)
        .service(approve_waiver)
        .service(reject_waiver);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"period": "2022-Q1"}))]
pub struct RunBody {
    /// The quarter, `YYYY-Qn`; it must have ended.
    pub period: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AssessmentFilter {
    /// 计费期间: a quarter, e.g. `2022-Q1`, or a year (`2025`) for yearly over-plan surcharges.
    pub period: Option<String>,
    pub payer_id: Option<String>,
    pub permit_id: Option<String>,
    /// The planned-water user of over-plan surcharges.
    pub planned_user_id: Option<String>,
    pub kind: Option<Kind>,
    pub status: Option<Status>,
    /// Only those overdue (true) or not overdue (false) as of `as_of`.
    pub overdue: Option<bool>,
    /// The day figures, `overdue` and totals are as of (default today).
    #[param(value_type = Option<String>, format = Date)]
    pub as_of: Option<Date>,
    /// Part of the payer's name or of the permit number.
    pub q: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOf {
    /// The day the figures are as of (default today): payments made by then, late fee through then.
    #[param(value_type = Option<String>, format = Date)]
    pub as_of: Option<Date>,
}

/// Body of `notify`, `approve-deferral`, `approve-waiver` (reason optional) and of `waive`, `reject-deferral`,
/// `reject-waiver` (reason required).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "企业受灾停产，申请减免", "effective_date": "2022-04-08"}))]
pub struct ActionBody {
    pub reason: Option<String>,
    /// The step's date (default today, Asia/Shanghai): for `notify` the day the notice was served.
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<Date>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"until": "2022-06-30", "reason": "资金周转困难，申请缓缴", "effective_date": "2022-04-10"}))]
pub struct DeferBody {
    /// The last day without late fee: after the due date, at most 90 days after the request (TL §34).
    #[schema(value_type = String, format = Date)]
    pub until: Date,
    pub reason: String,
    /// The day of the request: on or before the due date.
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<Date>,
}

/// 按季度核定水资源费 — Run the assessment of a quarter: one assessment per permit with withdrawals in it (Σ monthly volume ×
/// the rate in force that month, rounded half-up to the fen once), a tax referral for months from
/// `water_resource_tax_from` on. Running again creates nothing new; assessments not yet served are recalculated
/// after a correction, served ones only show the difference. Permits without a rate for a month are listed.
#[utoipa::path(tag = "fee-assessments", request_body = RunBody, security(("bearer" = ["finance"])),
    responses((status = 200, description = "What the run did", body = RunSummary),
        (status = 409, description = "The quarter has not ended (`period_not_ended`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/fee-assessments/run")]
async fn run_period(
    state: web::Data<AppState>,
    caller: Authorized<FeesManage>,
    body: ApiJson<RunBody>,
) -> ApiResult<HttpResponse> {
    let quarter =
        Quarter::parse(body.0.period.trim()).ok_or_else(|| ApiError::invalid("period", Msg::QuarterFormat))?;
    if quarter.last_day() >= caller.now.today {
        return Err(ApiError::conflict(ErrorCode::PeriodNotEnded, Msg::PeriodNotEnded(quarter.last_day())));
    }
    let config = FeeConfig::of(&state.settings);
    let ctx = caller.ctx();
    let job = ctx.clone();
    let summary =
        state.db.run_wide(format!("fee_run:{quarter}"), move |conns| run::run(conns, &job, quarter, config)).await?;
    state.db.written.notify_one();
    // The run's own record (and an Idempotency-Key's outcome) commit together once every batch has.
    state
        .write(move |conn| {
            audit::record(conn, &ctx, Event::new("fee_assessment_run").after(&summary))?;
            Ok(Reply::json(StatusCode::OK, None, &summary))
        })
        .await
}

/// The list's rows from `after` on, in id order, as the SQL filters select them.
fn filtered_query<'a>(f: &'a AssessmentFilter, as_of: NaiveDate) -> impl Fn() -> Filtered<'a> + 'a {
    move || {
        let mut q = fa::table.into_boxed();
        if let Some(v) = &f.period {
            q = q.filter(fa::period.eq(v.trim().to_ascii_uppercase()));
        }
        if let Some(v) = &f.payer_id {
            q = q.filter(fa::payer_id.eq(v.clone()));
        }
        if let Some(v) = &f.permit_id {
            q = q.filter(fa::permit_id.eq(v.clone()));
        }
        if let Some(v) = &f.planned_user_id {
            q = q.filter(fa::planned_user_id.eq(v.clone()));
        }
        if let Some(v) = f.kind {
            q = q.filter(fa::kind.eq(v.as_str()));
        }
        if let Some(v) = f.status {
            q = q.filter(fa::status.eq(v.as_str()));
        }
        if f.overdue == Some(true) {
            // Those that can be overdue on `as_of`; the exact test (payments made by then) follows in code.
            q = q
                .filter(fa::kind.ne(Kind::TaxReferral.as_str()))
                .filter(fa::due_date.lt(as_of))
                .filter(fa::deferred_until.is_null().or(fa::deferred_until.lt(as_of)))
                .filter(fa::waived_on.is_null().or(fa::waived_on.gt(as_of)))
                .filter(fa::status.ne(Status::Paid.as_str()).or(fa::last_paid_on.gt(as_of)));
        }
        if let Some(text) = f.q.as_deref().filter(|t| !t.trim().is_empty()) {
            let payers = w::table.filter(w::name.like(crate::db::like_pattern(text)).escape('\\')).select(w::id);
            let permits = p::table
                .filter(p::permit_no.like(crate::db::like_pattern(&text.to_ascii_uppercase())).escape('\\'))
                .select(p::id);
            q = q.filter(fa::payer_id.eq_any(payers).or(fa::permit_id.eq_any(permits.nullable())));
        }
        q
    }
}

/// 水资源费核定列表 — List assessments with their standing as of `as_of`, and totals (assessed, paid, outstanding, late
/// fees) over everything the filters match: "Q1 2022 collected …" is `?period=2022-Q1` and `totals.paid_fen`.
#[utoipa::path(tag = "fee-assessments", params(PageQuery, AssessmentFilter),
    security(("bearer" = ["admin", "leader", "finance", "auditor", "platform"])),
    responses((status = 200, description = "Assessments in the order they were made, and the totals", body = AssessmentPage)))]
#[get("/fee-assessments")]
async fn list(
    state: web::Data<AppState>,
    caller: Authorized<FeesRead>,
    query: ListQuery<AssessmentFilter>,
) -> ApiResult<HttpResponse> {
    let pp: PageParams<String> = query.page.params()?;
    let f = query.filter;
    if let Some(v) = &f.period {
        super::period_last_day(&v.trim().to_ascii_uppercase())
            .ok_or_else(|| ApiError::invalid("period", Msg::QuarterFormat))?;
    }
    let as_of = plain(f.as_of).unwrap_or(caller.now.today);
    let config = FeeConfig::of(&state.settings);
    let page = state
        .db
        .run(move |conn| {
            let filtered = filtered_query(&f, as_of);
            let keep = |s: &super::calc::Standing| f.overdue.is_none_or(|o| s.overdue == o);
            let totals = view::totals(conn, &filtered, config, as_of, keep)?;
            // Rows in id order after the cursor, kept by the exact overdue test, until the page is full.
            let mut kept: Vec<AssessmentRow> = Vec::new();
            let mut after = pp.after.clone();
            loop {
                let mut q = filtered().order(fa::id.asc()).limit(pp.fetch()).select(AssessmentRow::as_select());
                if let Some(a) = &after {
                    q = q.filter(fa::id.gt(a.clone()));
                }
                let rows: Vec<AssessmentRow> = q.load(conn)?;
                let exhausted = (rows.len() as i64) < pp.fetch();
                after = rows.last().map(|r| r.id.clone());
                let standing = Context::load(conn, &rows, config, as_of, false)?;
                kept.extend(rows.into_iter().filter(|r| keep(&standing.standing(r))));
                if exhausted || kept.len() as i64 >= pp.fetch() {
                    break;
                }
            }
            let rows = pp.page(kept, |r: &AssessmentRow| r.id.clone());
            let views = Context::load(conn, &rows.items, config, as_of, true)?;
            Ok(AssessmentPage {
                items: rows.items.iter().map(|r| views.view(r)).collect(),
                next_cursor: rows.next_cursor,
                total: pp.include_total.then_some(totals.count),
                totals,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One assessment's view as of `as_of`, with its differences.
pub fn view_of(
    conn: &mut DbConn,
    row: &AssessmentRow,
    config: FeeConfig,
    as_of: NaiveDate,
) -> ApiResult<FeeAssessment> {
    Ok(Context::load(conn, std::slice::from_ref(row), config, as_of, true)?.view(row))
}

/// 查看水资源费核定 — One assessment: month-by-month lines, status, and as of `as_of` (default today) the principal paid and
/// outstanding, the late fee incurred, paid and outstanding; a `reassessment` when the current withdrawals or rates
/// would assess differently.
#[utoipa::path(tag = "fee-assessments", params(("id" = String, Path), AsOf),
    security(("bearer" = ["admin", "leader", "finance", "auditor", "platform"])),
    responses((status = 200, description = "The assessment", body = FeeAssessment, headers(("ETag" = String)))))]
#[get("/fee-assessments/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    caller: Authorized<FeesRead>,
    id: PathId,
    query: Query<AsOf>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let as_of = plain(query.0.as_of).unwrap_or(caller.now.today);
    let config = FeeConfig::of(&state.settings);
    let view = state
        .db
        .run(move |conn| {
            let row = find(conn, &id)?.ok_or(ApiError::NotFound)?;
            view_of(conn, &row, config, as_of)
        })
        .await?;
    Ok(respond(StatusCode::OK, view.version, &view))
}

/// 缴款通知书 — The payment notice (缴款通知书) a payer is handed: an A4 page in Chinese with the bureau, payer and credit
/// code, permit number, period, the month-by-month calculation, the amount in figures and in capitals (大写), the
/// due date and the late-fee rule. Before service the dates are left blank for the clerk to fill in.
#[utoipa::path(tag = "fee-assessments", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "finance", "auditor", "platform"])),
    responses((status = 200, description = "缴款通知书（A4 HTML） — the notice as A4 HTML", content_type = "text/html", body = String),
        (status = 409, description = "Not a bill that can be served (`notice_unavailable`: tax referrals, waived)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/fee-assessments/{id}/notice")]
async fn notice(state: web::Data<AppState>, _caller: Authorized<FeesRead>, id: PathId) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let settings = state.settings.clone();
    let page = state
        .db
        .run(move |conn| {
            let row = find(conn, &id)?.ok_or(ApiError::NotFound)?;
            if row.kind() == Kind::TaxReferral || row.status() == Status::Waived {
                return Err(ApiError::conflict(
                    ErrorCode::NoticeUnavailable,
                    Msg::NoticeUnavailable(row.status().label()),
                ));
            }
            super::notice::render(conn, &row, &settings)
        })
        .await?;
    Ok(crate::documents::html(page))
}

/// 核定办理记录 — Every step of an assessment, oldest first (who: for `admin` and `auditor` only).
#[utoipa::path(tag = "fee-assessments", params(("id" = String, Path), PageQuery),
    security(("bearer" = ["admin", "leader", "finance", "auditor", "platform"])),
    responses((status = 200, description = "History", body = crate::http::Page<HistoryEntry>)))]
#[get("/fee-assessments/{id}/history")]
async fn history(
    state: web::Data<AppState>,
    caller: Authorized<FeesRead>,
    id: PathId,
    query: ListQuery<NoFilter>,
) -> ApiResult<HttpResponse> {
    let pp: PageParams<i64> = query.page.params()?;
    // Who did each step is audit data: for those who may read the audit trail.
    let with_actors = caller.principal.has_any(AUDIT_READERS);
    let exists = |conn: &mut DbConn, id: &str| find(conn, id).map(|r| r.is_some());
    let page = record_history(
        &state.db,
        EntityType::FeeAssessment,
        id.into_inner(),
        "fee_assessment_",
        pp,
        with_actors,
        exists,
    );
    Ok(HttpResponse::Ok().json(page.await?))
}

/// Runs one action in a transaction with its audit event; answers the whole assessment and its new ETag.
async fn act(
    state: web::Data<AppState>,
    caller: &Caller,
    id: String,
    if_match: IfMatch,
    action: Action,
    input: ActionInput,
) -> ApiResult<HttpResponse> {
    write::check_action(&if_match, input.reason.as_deref())?;
    let config = FeeConfig::of(&state.settings);
    let ctx = caller.ctx();
    let name = format!("fee_assessment_{}", action.as_str().replace('-', "_"));
    state
        .write(move |conn| {
            let today = ctx.now.today;
            let show = |conn: &mut DbConn, r: &AssessmentRow| view_of(conn, r, config, today);
            let (row, view) = write::modify_as(conn, &ctx, &id, &if_match, &name, show, |conn, before, shown| {
                let mut input = input;
                // Served only as the current withdrawals and rates assess it.
                input.reassessed_fen = shown.reassessment.as_ref().map(|r| r.amount_fen);
                let after = rules::apply(before, action, &input, &config, today, |date| notice_no(conn, date))?;
                let date = after.last_step_on;
                Ok(Change::new(after).reason(input.reason.as_deref()).effective_date(date))
            })?;
            Ok(Reply::ok(row.version, &view))
        })
        .await
}

/// The next notice number of the year of service: `2022-00001`.
fn notice_no(conn: &mut DbConn, served: NaiveDate) -> ApiResult<String> {
    use chrono::Datelike;
    let serial = crate::db::next_counter(conn, &format!("fee_notice:{}", served.year()))?;
    Ok(format!("{}-{serial:05}", served.year()))
}

fn simple(body: ActionBody, caller: &Caller) -> ActionInput {
    ActionInput {
        reason: body.reason,
        effective_date: plain(body.effective_date),
        until: None,
        by: caller.principal.signature(),
        reassessed_fen: None,
    }
}

macro_rules! simple_action {
    ($fn:ident, $path:literal, $policy:ty, $action:expr, $roles:literal, $conflicts:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(tag = "fee-assessments", params(("id" = String, Path), ("If-Match" = String, Header, description = "The assessment's ETag")),
            request_body(content = Option<ActionBody>, description = "Optional where no reason is required"),
            security(("bearer" = [$roles])),
            responses((status = 200, description = "The assessment after the action", body = FeeAssessment, headers(("ETag" = String))),
                (status = 409, description = $conflicts, body = crate::error::Problem, content_type = "application/problem+json")))]
        #[post($path)]
        async fn $fn(
            state: web::Data<AppState>,
            caller: Authorized<$policy>,
            id: PathId,
            if_match: IfMatch,
            body: OptionalJson<ActionBody>,
        ) -> ApiResult<HttpResponse> {
            let input = simple(body.0, &caller);
            act(state, &caller, id.into_inner(), if_match, $action, input).await
        }
    };
}

simple_action!(
    notify,
    "/fee-assessments/{id}/notify",
    FeesManage,
    Action::Notify,
    "finance",
    "`invalid_transition` (not `assessed`), `effective_date_out_of_order` (before the period ends or the last step), `reassessment_due` (the withdrawals or rates changed since: run the quarter again first)",
    "送达缴款通知 — Record that the payment notice was served (`effective_date`: the day of service, after the period): \
     `assessed` → `notified`, due 7 days later (TL §33); the notice gets its number."
);
simple_action!(
    waive,
    "/fee-assessments/{id}/waive",
    FeesManage,
    Action::Waive,
    "finance",
    "`invalid_transition` (settled, waived, a tax referral, or a request pending) or `effective_date_out_of_order`",
    "申请减免 — Request a waiver of what is outstanding (reason required), for a leader to decide."
);
simple_action!(
    approve_deferral,
    "/fee-assessments/{id}/approve-deferral",
    FeesDecide,
    Action::ApproveDeferral,
    "leader",
    "`invalid_transition` (no such request pending), `own_request` (the leader asked for it) or `effective_date_out_of_order`",
    "批准缓缴 — Approve the pending deferral: no late fee through its `until` (TL §34)."
);
simple_action!(
    reject_deferral,
    "/fee-assessments/{id}/reject-deferral",
    FeesDecide,
    Action::RejectDeferral,
    "leader",
    "`invalid_transition` (no such request pending), `own_request` (the leader asked for it) or `effective_date_out_of_order`",
    "驳回缓缴申请 — Reject the pending deferral (reason required)."
);
simple_action!(
    approve_waiver,
    "/fee-assessments/{id}/approve-waiver",
    FeesDecide,
    Action::ApproveWaiver,
    "leader",
    "`invalid_transition` (no such request pending), `own_request` (the leader asked for it) or `effective_date_out_of_order`",
    "批准减免 — Approve the pending waiver: what is outstanding is forgiven, no late fee accrues after it → `waived`."
);
simple_action!(
    reject_waiver,
    "/fee-assessments/{id}/reject-waiver",
    FeesDecide,
    Action::RejectWaiver,
    "leader",
    "`invalid_transition` (no such request pending), `own_request` (the leader asked for it) or `effective_date_out_of_order`",
    "驳回减免申请 — Reject the pending waiver (reason required)."
);

/// 申请缓缴 — Request a deferral (TL §34): by the due date, `until` at most 90 days after the request; a leader decides.
/// No payment is recorded while it is pending.
#[utoipa::path(tag = "fee-assessments", params(("id" = String, Path), ("If-Match" = String, Header, description = "The assessment's ETag")),
    request_body = DeferBody, security(("bearer" = ["finance"])),
    responses((status = 200, description = "The assessment with its pending request", body = FeeAssessment, headers(("ETag" = String))),
        (status = 409, description = "`invalid_transition`, `deferral_too_late` (after the due date), `deferral_too_long` (more than 90 days) or `effective_date_out_of_order`",
            body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/fee-assessments/{id}/defer")]
async fn defer(
    state: web::Data<AppState>,
    caller: Authorized<FeesManage>,
    id: PathId,
    if_match: IfMatch,
    body: ApiJson<DeferBody>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let input = ActionInput {
        reason: Some(b.reason),
        effective_date: plain(b.effective_date),
        until: Some(b.until.get()),
        by: caller.principal.signature(),
        reassessed_fen: None,
    };
    act(state, &caller, id.into_inner(), if_match, Action::Defer, input).await
}
