//! `/api/v1/cases`: penalty cases — entered as clues, listed (overdue decisions and publications included), read,
//! taken through their stages (`POST /cases/{id}/{action}`), and their history (执法全过程记录).

use std::collections::{HashMap, HashSet};

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::rules::{self, Action, CaseConfig, Decision, Input, PaymentInput};
use super::{
    find, payments_of, views, Case, CaseRow, CasesRead, Outcome, Party, PartyKind, PenaltyType, Stage, ViolationType,
};
use crate::audit::history::{of_record as record_history, HistoryEntry};
use crate::audit::EntityType;
use crate::db::schema::{accounts, case_officers as o, case_payments as pm, cases as c};
use crate::db::{is_unique_violation, DbConn};
use crate::domain::dates::{plain, Date};
use crate::domain::text::Checks;
use crate::domain::CreditCode;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::http::pagination::PageParams;
use crate::http::{respond, ApiJson, IfMatch, ListQuery, NoFilter, OptionalJson, Page, PageQuery, PathId};
use crate::identity::Role;
use crate::messages::Msg;
use crate::policy;
use crate::security::{Authorized, Caller, AUDIT_READERS};
use crate::state::AppState;
use crate::write::{self, Change, Record, Reply};

policy!(
    /// 水政监察大队: clues and every stage but legal review, decision and publication.
    CasesWrite = [Enforcement]
);
policy!(
    /// 政策法规科: legal review of major decisions, publication (双公示).
    CasesLegal = [Legal]
);
policy!(
    /// 局领导 sign decisions.
    CasesDecide = [Leader]
);

/// Most officers on a case.
const MAX_OFFICERS: usize = 10;
/// Longest facts of a case (characters).
pub const MAX_FACTS_CHARS: usize = 20_000;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(get_one)
        .service(history)
        .service(file)
        .service(start_investigation)
        .service(notify)
        .service(request_hearing)
        .service(submit_legal_review)
        .service(approve_legal_review)
        .service(return_legal_review)
        .service(decide)
        .service(serve)
        .service(publish)
        .service(record_payment)
        .service(close);
}

crate::text_enum! {
    /// Which deadline has passed.
    pub enum Overdue {
        Decision = ("decision", "超期未作出决定"),
        Publication = ("publication", "超期未公示"),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseFilter {
    pub stage: Option<Stage>,
    pub violation_type: Option<ViolationType>,
    /// The party, when it is a water user of the registry.
    pub water_user_id: Option<String>,
    /// The party's credit code or identity number, exactly.
    pub party_id_number: Option<String>,
    /// Cases this account is an officer (承办人) of.
    pub officer_id: Option<String>,
    /// The case opened from this inspection.
    pub source_inspection_id: Option<String>,
    /// Part of the case number, the decision number or the party's name.
    pub q: Option<String>,
    /// Filed on or after this day.
    #[param(value_type = Option<String>, format = Date)]
    pub filed_from: Option<Date>,
    /// Filed on or before this day.
    #[param(value_type = Option<String>, format = Date)]
    pub filed_to: Option<Date>,
    /// Decided on or after this day.
    #[param(value_type = Option<String>, format = Date)]
    pub decided_from: Option<Date>,
    /// Decided on or before this day.
    #[param(value_type = Option<String>, format = Date)]
    pub decided_to: Option<Date>,
    /// `decision`: not decided past `decision_due`; `publication`: a penalty not published past `publication_due`
    /// (as of today). Listed by that deadline, the longest overdue first.
    #[param(inline)]
    pub overdue: Option<Overdue>,
}

/// 案件列表 — Penalty cases, oldest first (with `overdue`, by the deadline passed, longest overdue first); by stage,
/// violation type, party, officer, dates, or a number or name.
#[utoipa::path(tag = "cases", params(PageQuery, CaseFilter),
    security(("bearer" = ["admin", "leader", "enforcement", "legal", "platform", "auditor"])),
    responses((status = 200, description = "Cases", body = Page<Case>),
        (status = 400, description = "Bad filter (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/cases")]
async fn list(
    state: web::Data<AppState>,
    caller: Authorized<CasesRead>,
    query: ListQuery<CaseFilter>,
) -> ApiResult<HttpResponse> {
    let p: PageParams<(Option<NaiveDate>, String)> = query.page.params()?;
    let f = query.filter;
    for (from, to, field) in [(f.filed_from, f.filed_to, "filed_to"), (f.decided_from, f.decided_to, "decided_to")] {
        if let (Some(a), Some(b)) = (plain(from), plain(to)) {
            if b < a {
                return Err(ApiError::invalid(field, Msg::NotBeforeFrom));
            }
        }
    }
    let today = caller.now.today;
    let page = state
        .db
        .run(move |conn| {
            let filtered = || {
                let mut q = c::table.into_boxed();
                if let Some(v) = f.stage {
                    q = q.filter(c::stage.eq(v.as_str()));
                }
                if let Some(v) = f.violation_type {
                    q = q.filter(c::violation_type.eq(v.as_str()));
                }
                if let Some(v) = &f.water_user_id {
                    q = q.filter(c::water_user_id.eq(v.clone()));
                }
                if let Some(v) = &f.party_id_number {
                    q = q.filter(c::party_id_number.eq(v.trim().to_ascii_uppercase()));
                }
                if let Some(v) = &f.officer_id {
                    let of_officer = o::table.filter(o::account_id.eq(v.clone())).select(o::case_id);
                    q = q.filter(c::id.eq_any(of_officer));
                }
                if let Some(v) = &f.source_inspection_id {
                    q = q.filter(c::source_inspection_id.eq(v.clone()));
                }
                if let Some(text) = f.q.as_deref().filter(|t| !t.trim().is_empty()) {
                    let pattern = crate::db::like_pattern(text.trim());
                    q = q.filter(
                        c::case_no
                            .like(pattern.clone())
                            .escape('\\')
                            .or(c::decision_no.like(pattern.clone()).escape('\\'))
                            .or(c::party_name.like(pattern).escape('\\')),
                    );
                }
                if let Some(v) = plain(f.filed_from) {
                    q = q.filter(c::filed_on.ge(v));
                }
                if let Some(v) = plain(f.filed_to) {
                    q = q.filter(c::filed_on.le(v));
                }
                if let Some(v) = plain(f.decided_from) {
                    q = q.filter(c::decision_date.ge(v));
                }
                if let Some(v) = plain(f.decided_to) {
                    q = q.filter(c::decision_date.le(v));
                }
                match f.overdue {
                    None => {}
                    Some(Overdue::Decision) => {
                        q = q.filter(c::decision_date.is_null()).filter(c::decision_due.lt(today))
                    }
                    Some(Overdue::Publication) => {
                        q = q.filter(c::published_on.is_null()).filter(c::publication_due.lt(today))
                    }
                }
                q
            };
            let total = p.total(|| filtered().count().get_result(conn))?;
            let mut q = filtered().limit(p.fetch()).select(CaseRow::as_select());
            let key = |r: &CaseRow| match f.overdue {
                None => (None, r.id.clone()),
                Some(Overdue::Decision) => (r.decision_due, r.id.clone()),
                Some(Overdue::Publication) => (r.publication_due, r.id.clone()),
            };
            q = match f.overdue {
                None => q.order(c::id.asc()),
                Some(Overdue::Decision) => q.order((c::decision_due.asc(), c::id.asc())),
                Some(Overdue::Publication) => q.order((c::publication_due.asc(), c::id.asc())),
            };
            match (&p.after, f.overdue) {
                (None, _) => {}
                (Some((None, id)), None) => q = q.filter(c::id.gt(id.clone())),
                (Some((Some(d), id)), Some(Overdue::Decision)) => {
                    q = q.filter(c::decision_due.gt(*d).or(c::decision_due.eq(*d).and(c::id.gt(id.clone()))))
                }
                (Some((Some(d), id)), Some(Overdue::Publication)) => {
                    q = q.filter(c::publication_due.gt(*d).or(c::publication_due.eq(*d).and(c::id.gt(id.clone()))))
                }
                _ => return Err(ApiError::invalid("cursor", Msg::Cursor)),
            }
            let rows = p.page(q.load(conn)?, key);
            let items = views(conn, rows.items, today)?;
            Ok::<_, ApiError>(Page { items, next_cursor: rows.next_cursor, total })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// A clue entered directly (not from an inspection).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"party_name": "李某", "party_id_number": "11010519491231002X", "party_kind": "person",
    "violation_type": "illegal_sand_mining", "facts": "群众举报：当事人在赤水河河道内擅自采砂。", "effective_date": "2026-11-20"}))]
pub struct NewCase {
    /// The party when it is a water user of the registry (an organisation); otherwise give `party_name`,
    /// `party_id_number` and `party_kind`.
    pub water_user_id: Option<String>,
    pub party_name: Option<String>,
    /// An organisation's 统一社会信用代码 or a person's 公民身份号码 (checked).
    pub party_id_number: Option<String>,
    pub party_kind: Option<PartyKind>,
    pub violation_type: ViolationType,
    pub facts: String,
    pub legal_basis: Option<String>,
    /// The clue's date (default today); not in the future.
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<Date>,
}

/// 登记案件线索 — Enter a clue (a report, a referral, a patrol) as a case in stage `clue`. Clues from inspections
/// come through `POST /inspections/{id}/escalate`.
#[utoipa::path(tag = "cases", request_body = NewCase, security(("bearer" = ["enforcement"])),
    responses((status = 201, description = "The case", body = Case, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "Invalid fields (`validation_failed`, `invalid_credit_code`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/cases")]
async fn create(
    state: web::Data<AppState>,
    caller: Authorized<CasesWrite>,
    body: ApiJson<NewCase>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let mut ch = Checks::new();
    let facts = ch.optional_text("facts", Some(&b.facts), MAX_FACTS_CHARS);
    if facts.is_none() {
        ch.fail("facts", Msg::NotEmpty);
    }
    let legal_basis = ch.optional_text("legal_basis", b.legal_basis.as_deref(), 2000);
    let named = b.party_name.is_some() || b.party_id_number.is_some() || b.party_kind.is_some();
    let given_party = if b.water_user_id.is_some() {
        if named {
            ch.fail("water_user_id", Msg::PartyEitherOr);
        }
        None
    } else {
        let name = ch.required("party_name", b.party_name.as_deref().unwrap_or(""), 200);
        let kind = b.party_kind.unwrap_or(PartyKind::Organisation);
        let given = b.party_id_number.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let id_number = given.map(|v| match kind {
            PartyKind::Organisation => match CreditCode::parse(v) {
                Ok(code) => code.into_string(),
                Err(e) => {
                    ch.fail_with(ErrorCode::InvalidCreditCode, "party_id_number", e.message());
                    v.to_string()
                }
            },
            PartyKind::Person => crate::domain::id_number::parse(v).unwrap_or_else(|| {
                ch.fail("party_id_number", Msg::IdNumber);
                v.to_string()
            }),
        });
        Some(Party { water_user_id: None, name, id_number, kind })
    };
    ch.finish()?;
    let ctx = caller.ctx();
    let creator = caller.principal.scope();
    let today = ctx.now.today;
    let clue_on = crate::domain::dates::effective_date(plain(b.effective_date), None, today)?;
    state
        .write(move |conn| {
            let party = match (given_party, &b.water_user_id) {
                (Some(p), _) => p,
                (None, Some(id)) => {
                    let w = crate::water_users::find(conn, id)?
                        .ok_or_else(|| ApiError::invalid("water_user_id", Msg::NoSuchWaterUser))?;
                    Party {
                        water_user_id: Some(w.id),
                        name: w.name,
                        id_number: Some(w.credit_code),
                        kind: PartyKind::Organisation,
                    }
                }
                (None, None) => return Err(ApiError::invalid("party_name", Msg::NotEmpty)),
            };
            let row = CaseRow::clue(
                party,
                b.violation_type,
                facts.unwrap_or_default(),
                legal_basis,
                None,
                &[],
                clue_on,
                creator,
                ctx.now.at,
            );
            let view = write::create(conn, &ctx, &row, "case_opened")?;
            Ok(Reply::created(format!("/api/v1/cases/{}", row.id), row.version, &view))
        })
        .await
}

/// 查看案件 — One penalty case, with its deadlines and what is overdue as of today.
#[utoipa::path(tag = "cases", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "enforcement", "legal", "platform", "auditor"])),
    responses((status = 200, description = "The case", body = Case, headers(("ETag" = String)))))]
#[get("/cases/{id}")]
async fn get_one(state: web::Data<AppState>, caller: Authorized<CasesRead>, id: PathId) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let now = caller.now;
    let view = state.db.run(move |conn| Ok(find(conn, &id)?.ok_or(ApiError::NotFound)?.view(conn, &now)?)).await?;
    Ok(respond(StatusCode::OK, view.version, &view))
}

/// 执法全过程记录 — The whole process of a case, oldest first: every stage change, evidence item, payment and
/// publication, with its effective date, time of entry and department; the account for `admin` and `auditor`.
#[utoipa::path(tag = "cases", params(("id" = String, Path), PageQuery),
    security(("bearer" = ["admin", "leader", "enforcement", "legal", "platform", "auditor"])),
    responses((status = 200, description = "History", body = Page<HistoryEntry>)))]
#[get("/cases/{id}/history")]
async fn history(
    state: web::Data<AppState>,
    caller: Authorized<CasesRead>,
    id: PathId,
    query: ListQuery<NoFilter>,
) -> ApiResult<HttpResponse> {
    let pp: PageParams<i64> = query.page.params()?;
    let with_actors = caller.principal.has_any(AUDIT_READERS);
    let exists = |conn: &mut DbConn, id: &str| find(conn, id).map(|r| r.is_some());
    let page = record_history(&state.db, EntityType::Case, id.into_inner(), "case_", pp, with_actors, exists);
    Ok(HttpResponse::Ok().json(page.await?))
}

/// The roles of law-enforcement officers (执法人员): 水政监察大队 and field inspectors.
const OFFICER_ROLES: &[Role] = &[Role::Enforcement, Role::Inspector];

/// Officer ids: active accounts of officers, none twice, at most [`MAX_OFFICERS`].
fn officer_list(conn: &mut DbConn, given: &[String]) -> ApiResult<Vec<String>> {
    if given.len() > MAX_OFFICERS {
        return Err(ApiError::invalid("officer_ids", Msg::AtMostItems(MAX_OFFICERS)));
    }
    let mut ch = Checks::new();
    let found: HashMap<String, (bool, String)> = accounts::table
        .filter(accounts::id.eq_any(given))
        .select((accounts::id, (accounts::active, accounts::roles)))
        .load(conn)?
        .into_iter()
        .collect();
    let mut seen = HashSet::new();
    for (n, id) in given.iter().enumerate() {
        let field = format!("officer_ids[{n}]");
        let shown = || crate::domain::text::untrusted(id, 64);
        match found.get(id) {
            _ if !seen.insert(id.as_str()) => ch.fail(&field, Msg::RepeatedItem(shown())),
            None => ch.fail(&field, Msg::NoSuchAccount(shown())),
            Some((active, roles)) => {
                let officer = Role::split(roles).iter().any(|r| OFFICER_ROLES.contains(r));
                if !active || !officer {
                    ch.fail(&field, Msg::NotAnOfficer(shown()));
                }
            }
        }
    }
    ch.finish()?;
    Ok(given.to_vec())
}

fn officers_of(conn: &mut DbConn, id: &str) -> QueryResult<Vec<String>> {
    o::table.filter(o::case_id.eq(id)).order(o::position).select(o::account_id).load(conn)
}

/// Runs one action in a transaction with its audit event; answers the whole case and its new ETag.
async fn act(
    state: web::Data<AppState>,
    caller: &Caller,
    id: String,
    if_match: IfMatch,
    action: Action,
    input: Input,
) -> ApiResult<HttpResponse> {
    write::check_action(&if_match, input.reason.as_deref())?;
    let config = CaseConfig::of(&state.settings);
    let signer = caller.principal.signature();
    let recorder = signer.clone();
    let ctx = caller.ctx();
    let bureau = state.settings.bureau_name.clone();
    state
        .write(move |conn| {
            let today = ctx.now.today;
            let mut publication = None;
            let (row, view) = write::modify(conn, &ctx, &id, &if_match, &action.event(), |conn, before: &CaseRow| {
                let officers = officers_of(conn, &id)?;
                let paid = payments_of(conn, &id)?;
                let (after, fx) =
                    rules::apply(conn, before, &officers, &paid, action, &input, &config, &signer, today)?;
                if action == Action::StartInvestigation && fx.officers.is_none() {
                    // The officers named at filing investigate: they must still be officers.
                    officer_list(conn, &officers)?;
                }
                if let Some(chosen) = &fx.officers {
                    let chosen = officer_list(conn, chosen)?;
                    diesel::delete(o::table.filter(o::case_id.eq(&id))).execute(conn)?;
                    for (n, a) in chosen.iter().enumerate() {
                        let position = i32::try_from(n).unwrap_or(i32::MAX);
                        diesel::insert_into(o::table)
                            .values((o::case_id.eq(&id), o::account_id.eq(a), o::position.eq(position)))
                            .execute(conn)?;
                    }
                }
                if let (Some(paid), Some(pay)) = (fx.payment, &input.payment) {
                    diesel::insert_into(pm::table)
                        .values((
                            pm::id.eq(crate::domain::new_id()),
                            pm::case_id.eq(&id),
                            pm::amount_fen.eq(pay.amount_fen),
                            pm::fine_part_fen.eq(paid.principal_fen),
                            pm::late_fee_fen.eq(paid.late_fee_fen),
                            pm::paid_on.eq(paid.on),
                            pm::receipt_no.eq(&pay.receipt_no),
                            pm::recorded_by.eq(&recorder),
                            pm::created_at.eq(ctx.now.at),
                        ))
                        .execute(conn)
                        .map_err(|e| {
                            if is_unique_violation(&e) {
                                ApiError::conflict(
                                    ErrorCode::ReceiptNoTaken,
                                    Msg::ReceiptNoTaken(pay.receipt_no.clone()),
                                )
                            } else {
                                e.into()
                            }
                        })?;
                }
                if action == Action::Publish {
                    publication = Some(after.clone());
                }
                Ok(Change::new(after).reason(input.reason.as_deref()).effective_date(fx.date))
            })?;
            if let Some(published) = publication {
                // The public record is an entity of its own in the audit trail and the change feed.
                let record = super::documents::publication_of(conn, &published, &bureau)?;
                crate::audit::record(
                    conn,
                    &ctx,
                    crate::audit::Event::new("publication_published")
                        .entity(EntityType::Publication, &published.id)
                        .after(&record)
                        .effective_date(published.published_on.unwrap_or(today)),
                )?;
            }
            Ok(Reply::ok(row.version, &view))
        })
        .await
}

/// Body of `request-hearing`, `submit-legal-review`, `serve` and `close`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "当事人签收", "effective_date": "2026-10-22"}))]
pub struct ActionBody {
    pub reason: Option<String>,
    /// The step's date (default today, Asia/Shanghai); not in the future, not before the previous step.
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<Date>,
}

/// Body of `file` and `start-investigation`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"officer_ids": ["0193a0c4-0000-7000-8000-0000000000a1", "0193a0c4-0000-7000-8000-0000000000a2"], "effective_date": "2026-09-02"}))]
pub struct OfficersBody {
    pub reason: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<Date>,
    /// 承办人: account ids (replacing those named before); at least two to investigate.
    pub officer_ids: Option<Vec<String>>,
}

/// Body of `notify` (告知).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"proposed_fine_fen": 5000000, "statement_waived": false, "effective_date": "2026-10-08"}))]
pub struct NotifyBody {
    pub reason: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<Date>,
    /// 拟处罚款 (0 for a penalty without a fine).
    pub proposed_fine_fen: i64,
    /// The party waived the statement period (陈述、申辩): the decision need not wait the 5 days.
    #[serde(default)]
    pub statement_waived: bool,
}

/// Body of `approve-legal-review` and `return-legal-review`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"opinion": "事实清楚，证据确凿，适用依据正确，程序合法，处罚适当。", "effective_date": "2026-10-15"}))]
pub struct ReviewBody {
    pub reason: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<Date>,
    /// 审核意见 (required to return a case).
    pub opinion: Option<String>,
}

/// Body of `decide`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"outcome": "penalty", "fine_fen": 5000000, "penalty_types": ["fine"],
    "penalty_content": "罚款人民币伍万元整", "legal_basis": "《中华人民共和国水法》第六十九条第一项", "effective_date": "2026-10-20"}))]
pub struct DecideBody {
    pub reason: Option<String>,
    /// The decision date.
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<Date>,
    pub outcome: Outcome,
    /// 罚款 (penalty): at most the proposed fine.
    pub fine_fen: Option<i64>,
    /// 处罚种类 (penalty; default `fine` when there is a fine, else `warning`).
    pub penalty_types: Option<Vec<PenaltyType>>,
    /// 处罚内容 as the decision states it (required for a penalty).
    pub penalty_content: Option<String>,
    /// 处罚依据 (default: the case's).
    pub legal_basis: Option<String>,
    /// Why the decision comes after `decision_due` (required then).
    pub extension_reason: Option<String>,
}

/// Body of `record-payment`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount_fen": 5000000, "paid_on": "2026-11-02", "receipt_no": "FS2026-000231"}))]
pub struct PaymentBody {
    /// 1 ..= 10¹² fen; the late fee due that day is settled first; more than is due is refused (`overpayment`).
    pub amount_fen: i64,
    /// The day it was paid (the step's date).
    #[schema(value_type = String, format = Date)]
    pub paid_on: Date,
    /// 票据号: unique across case payments.
    pub receipt_no: String,
    pub reason: Option<String>,
}

/// Body of `publish`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://www.example.gov.cn/xzcf/2026/123.html", "effective_date": "2026-10-26"}))]
pub struct PublishBody {
    /// Where the public record was published (http or https).
    pub url: String,
    pub reason: Option<String>,
    /// The publication date: not before the decision.
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_date: Option<Date>,
}

fn plain_input(b: ActionBody) -> Input {
    Input { reason: b.reason, effective_date: plain(b.effective_date), ..Default::default() }
}

macro_rules! case_action {
    ($fn:ident, $path:literal, $policy:ty, $extract:ident<$body:ty>, $optional:literal, $action:expr, $roles:literal, $errors:literal, $doc:literal, $input:expr) => {
        #[doc = $doc]
        #[utoipa::path(tag = "cases", params(("id" = String, Path), ("If-Match" = String, Header, description = "The case's ETag")),
            request_body(content = $body, description = $optional),
            security(("bearer" = [$roles])),
            responses((status = 200, description = "The case after the action", body = Case, headers(("ETag" = String))),
                (status = 400, description = "Invalid fields (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
                (status = 409, description = $errors, body = crate::error::Problem, content_type = "application/problem+json"),
                (status = 412, description = "Stale If-Match", body = crate::error::Problem, content_type = "application/problem+json"),
                (status = 428, description = "If-Match missing", body = crate::error::Problem, content_type = "application/problem+json")))]
        #[post($path)]
        async fn $fn(
            state: web::Data<AppState>,
            caller: Authorized<$policy>,
            id: PathId,
            if_match: IfMatch,
            body: $extract<$body>,
        ) -> ApiResult<HttpResponse> {
            let input = ($input)(body.0)?;
            act(state, &caller, id.into_inner(), if_match, $action, input).await
        }
    };
}

fn officers_input(b: OfficersBody) -> ApiResult<Input> {
    Ok(Input {
        reason: b.reason,
        effective_date: plain(b.effective_date),
        officer_ids: b.officer_ids.map(|ids| ids.into_iter().map(|i| i.trim().to_string()).collect()),
        ..Default::default()
    })
}

fn simple(b: ActionBody) -> ApiResult<Input> {
    Ok(plain_input(b))
}

case_action!(file, "/cases/{id}/file", CasesWrite, OptionalJson<OfficersBody>, "Optional", Action::File, "enforcement",
    "`invalid_transition` or `effective_date_out_of_order`",
    "立案 — File a clue as a case: `clue` → `filed`. Assigns the case number (案号, per year, in the configured pattern) and `decision_due` (filed + 90 days); names the officers if given.",
    officers_input);
case_action!(
    start_investigation,
    "/cases/{id}/start-investigation",
    CasesWrite,
    OptionalJson<OfficersBody>,
    "Optional",
    Action::StartInvestigation,
    "enforcement",
    "`invalid_transition`, `officers_required` (fewer than two officers) or `effective_date_out_of_order`",
    "调查取证 — Start the investigation: `filed` → `investigating`, by at least two officers (XCF §42).",
    officers_input
);
case_action!(request_hearing, "/cases/{id}/request-hearing", CasesWrite, OptionalJson<ActionBody>, "Optional", Action::RequestHearing, "enforcement",
    "`invalid_transition`, `hearing_not_available` (the proposed fine is below the hearing threshold), `hearing_request_late` (after the 5 days) or `effective_date_out_of_order`",
    "申请听证 — Record the party's request for a hearing: `notified` → `hearing`; within 5 days of the notice, when the proposed fine reaches the threshold (organisation 80 000 yuan, person 10 000 yuan by default).",
    simple);
case_action!(submit_legal_review, "/cases/{id}/submit-legal-review", CasesWrite, OptionalJson<ActionBody>, "Optional", Action::SubmitLegalReview, "enforcement",
    "`invalid_transition` or `effective_date_out_of_order`",
    "提交法制审核 — Submit the proposed decision for legal review by 政策法规科: `notified`/`hearing` → `legal_review`.",
    simple);
case_action!(
    serve,
    "/cases/{id}/serve",
    CasesWrite,
    OptionalJson<ActionBody>,
    "Optional",
    Action::Serve,
    "enforcement",
    "`invalid_transition` or `effective_date_out_of_order`",
    "送达 — Serve the decision: `decided` → `served`; a fine is due 15 days after (XCF §67).",
    simple
);
case_action!(close, "/cases/{id}/close", CasesWrite, OptionalJson<ActionBody>, "Optional", Action::Close, "enforcement",
    "`invalid_transition`, `fine_outstanding` (fine or late fee unpaid and no `reason`, e.g. 申请人民法院强制执行) or `effective_date_out_of_order`",
    "结案 — Close the case: from `served`/`executing` once the fine and its late fee are paid (or with a `reason`), or from `no_penalty`/`transferred`.",
    simple);

fn review_input(b: ReviewBody, required: bool) -> ApiResult<Input> {
    let mut ch = Checks::new();
    let opinion = ch.optional_text("opinion", b.opinion.as_deref(), 2000);
    if required && opinion.is_none() {
        ch.fail("opinion", Msg::NotEmpty);
    }
    ch.finish()?;
    Ok(Input { reason: b.reason, effective_date: plain(b.effective_date), opinion, ..Default::default() })
}

case_action!(
    approve_legal_review,
    "/cases/{id}/approve-legal-review",
    CasesLegal,
    OptionalJson<ReviewBody>,
    "Optional",
    Action::ApproveLegalReview,
    "legal",
    "`invalid_transition` (no review pending) or `effective_date_out_of_order`",
    "法制审核通过 — Approve the legal review (政策法规科): the case stays in `legal_review`, ready for the decision.",
    |b| review_input(b, false)
);
case_action!(
    return_legal_review,
    "/cases/{id}/return-legal-review",
    CasesLegal,
    OptionalJson<ReviewBody>,
    "`opinion` required",
    Action::ReturnLegalReview,
    "legal",
    "`invalid_transition` (no review pending) or `effective_date_out_of_order`",
    "法制审核退回 — Return the case for further investigation with an opinion: `legal_review` → `investigating`.",
    |b| review_input(b, true)
);

fn notify_input(b: NotifyBody) -> ApiResult<Input> {
    if !(0..=crate::domain::MAX_AMOUNT_FEN).contains(&b.proposed_fine_fen) {
        return Err(ApiError::invalid("proposed_fine_fen", Msg::AmountRange));
    }
    Ok(Input {
        reason: b.reason,
        effective_date: plain(b.effective_date),
        proposed_fine_fen: Some(b.proposed_fine_fen),
        statement_waived: Some(b.statement_waived),
        ..Default::default()
    })
}

case_action!(notify, "/cases/{id}/notify", CasesWrite, ApiJson<NotifyBody>, "Required", Action::Notify, "enforcement",
    "`invalid_transition` or `effective_date_out_of_order`",
    "告知 — Notify the party of the proposed penalty and of the rights to a statement and a hearing: `investigating` → `notified`. The decision waits 5 days unless the statement is waived.",
    notify_input);

fn decide_input(b: DecideBody) -> ApiResult<Input> {
    let mut ch = Checks::new();
    let penalty_content = ch.optional_text("penalty_content", b.penalty_content.as_deref(), 2000);
    let legal_basis = ch.optional_text("legal_basis", b.legal_basis.as_deref(), 2000);
    let extension_reason = ch.optional_text("extension_reason", b.extension_reason.as_deref(), 1000);
    let fine_fen = b.fine_fen.unwrap_or(0);
    let mut types = b.penalty_types.unwrap_or_default();
    match b.outcome {
        Outcome::Penalty => {
            if !(0..=crate::domain::MAX_AMOUNT_FEN).contains(&fine_fen) {
                ch.fail("fine_fen", Msg::AmountRange);
            }
            if penalty_content.is_none() {
                ch.fail("penalty_content", Msg::NotEmpty);
            }
            if types.is_empty() {
                types.push(if fine_fen > 0 { PenaltyType::Fine } else { PenaltyType::Warning });
            }
            let mut seen = HashSet::new();
            for (n, t) in types.iter().enumerate() {
                if !seen.insert(*t) {
                    ch.fail(&format!("penalty_types[{n}]"), Msg::RepeatedItem(t.as_str().into()));
                }
            }
            if (fine_fen > 0) != types.contains(&PenaltyType::Fine) {
                ch.fail("penalty_types", Msg::FineAndTypeAgree);
            }
        }
        Outcome::NoPenalty | Outcome::Transfer => {
            if b.fine_fen.is_some() || !types.is_empty() || penalty_content.is_some() {
                ch.fail("outcome", Msg::NoPenaltyFields);
            }
        }
    }
    ch.finish()?;
    Ok(Input {
        reason: b.reason,
        effective_date: plain(b.effective_date),
        decision: Some(Decision {
            outcome: b.outcome,
            fine_fen,
            penalty_types: types,
            penalty_content,
            legal_basis,
            extension_reason,
        }),
        ..Default::default()
    })
}

case_action!(decide, "/cases/{id}/decide", CasesDecide, ApiJson<DecideBody>, "Required", Action::Decide, "leader",
    "`invalid_transition`, `statement_window_open` (not after notice + 5 days, statement not waived), `fine_exceeds_proposed`, `legal_review_required` (a major decision without an approved legal review), `decision_overdue` (after `decision_due` without `extension_reason`), `calendar_missing` (no calendar for the publication deadline's year) or `effective_date_out_of_order`",
    "作出处罚决定 — Decide (signed by a leader): `penalty` → `decided` (decision number and publication deadline assigned), `no_penalty` → `no_penalty` (numbered), `transfer` → `transferred`.",
    decide_input);

fn payment_input(b: PaymentBody) -> ApiResult<Input> {
    let mut ch = Checks::new();
    if !(1..=crate::domain::MAX_AMOUNT_FEN).contains(&b.amount_fen) {
        ch.fail("amount_fen", Msg::AmountRange);
    }
    let receipt_no = ch.required("receipt_no", &b.receipt_no, 64);
    ch.finish()?;
    Ok(Input {
        reason: b.reason,
        effective_date: Some(b.paid_on.get()),
        payment: Some(PaymentInput { amount_fen: b.amount_fen, receipt_no }),
        ..Default::default()
    })
}

case_action!(record_payment, "/cases/{id}/record-payment", CasesWrite, ApiJson<PaymentBody>, "Required", Action::RecordPayment, "enforcement",
    "`invalid_transition`, `overpayment` (more than the late fee due that day and the unpaid fine), `receipt_no_taken` or `effective_date_out_of_order`",
    "缴纳罚款 — Record a payment of the fine: `served`/`executing` → `executing`. The late fee (加处罚款, 3 % a day after the due date, at most the fine) due on `paid_on` is settled first.",
    payment_input);

fn publish_input(b: PublishBody) -> ApiResult<Input> {
    let mut ch = Checks::new();
    let url = ch.required("url", &b.url, 500);
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains(char::is_whitespace) {
        ch.fail("url", Msg::HttpUrl);
    }
    ch.finish()?;
    Ok(Input { reason: b.reason, effective_date: plain(b.effective_date), url: Some(url), ..Default::default() })
}

case_action!(publish, "/cases/{id}/publish", CasesLegal, ApiJson<PublishBody>, "Required", Action::Publish, "legal",
    "`invalid_transition` (no penalty decided), `already_published` or `effective_date_out_of_order` (before the decision)",
    "公示 — Publish the decision (双公示, 政策法规科): once per case, in any stage after a penalty is decided; not a stage change. Due within 7 working days of the decision.",
    publish_input);
