//! What a case gives to paper and to the public: the decision (行政处罚决定书 / 不予行政处罚决定书) and the file cover
//! (案卷封面) as A4 pages in Chinese, and the public record of a decision (双公示, `GET /cases/{id}/publication`).

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use askama::Template;
use chrono::NaiveDate;
use diesel::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::rules::{self, PAYMENT_DAYS};
use super::{find, CaseRow, CasesRead, Outcome, PartyKind, ViolationType};
use crate::config::Settings;
use crate::db::schema::{accounts, case_officers as o, evidence as ev};
use crate::db::DbConn;
use crate::documents::{date_zh, STYLE};
use crate::domain::money::{capitals, yuan};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::http::{respond, PathId};
use crate::messages::Msg;
use crate::security::Authorized;
use crate::state::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(publication).service(decision).service(cover);
}

/// 行政处罚信息公示 — the public record of a penalty decision (双公示), in the fields the publication standard asks.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"case_id": "0193a0c4-0000-7000-8000-000000000801", "party_name": "赤水市化工有限公司",
    "party_credit_code": "91350100M000100Y43", "decision_no": "清水罚决〔2026〕3号", "violation_type": "unlicensed_abstraction",
    "violation_type_label": "未经批准擅自取水", "facts": "未办理取水许可擅自从赤水河取水。",
    "legal_basis": "《中华人民共和国水法》第六十九条第一项", "penalty_type": "罚款", "penalty_content": "罚款人民币伍万元整",
    "fine_amount_wan_yuan": "5.000000", "decision_date": "2026-10-20", "authority": "县水务局", "publication_due": "2026-10-29",
    "published_on": null, "url": null}))]
pub struct Publication {
    pub case_id: String,
    /// 行政相对人名称.
    pub party_name: String,
    /// 统一社会信用代码 of an organisation; null for a person (an identity number is never published).
    pub party_credit_code: Option<String>,
    /// 行政处罚决定书文号.
    pub decision_no: Option<String>,
    pub violation_type: ViolationType,
    /// 违法行为类型 in words.
    pub violation_type_label: String,
    /// 违法事实.
    pub facts: String,
    /// 处罚依据.
    pub legal_basis: Option<String>,
    /// 处罚类别, e.g. `罚款`, `警告、罚款`.
    pub penalty_type: String,
    /// 处罚内容.
    pub penalty_content: Option<String>,
    /// 罚款金额（万元）, exact.
    pub fine_amount_wan_yuan: String,
    #[schema(value_type = String, format = Date)]
    pub decision_date: NaiveDate,
    /// 处罚机关.
    pub authority: String,
    /// Publish by this day (decision + 7 working days).
    #[schema(value_type = Option<String>, format = Date)]
    pub publication_due: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub published_on: Option<NaiveDate>,
    pub url: Option<String>,
}

/// The public record of a decided penalty (409 `no_decision` before one).
pub fn publication_of(_conn: &mut DbConn, row: &CaseRow, authority: &str) -> ApiResult<Publication> {
    let (Some(Outcome::Penalty), Some(decision_date)) = (row.outcome(), row.decision_date) else {
        return Err(ApiError::conflict(ErrorCode::NoDecision, Msg::NoDecision));
    };
    let p = row.process();
    let violation = ViolationType::parse(&row.violation_type).unwrap_or(ViolationType::Other);
    let types: Vec<&str> = p.penalty_types.iter().map(|t| t.label_zh()).collect();
    Ok(Publication {
        case_id: row.id.clone(),
        party_name: row.party_name.clone(),
        party_credit_code: row.party_id_number.clone().filter(|_| row.party_kind() == PartyKind::Organisation),
        decision_no: row.decision_no.clone(),
        violation_type: violation,
        violation_type_label: violation.label_zh().into(),
        facts: row.facts.clone(),
        legal_basis: row.legal_basis.clone(),
        penalty_type: types.join("、"),
        penalty_content: p.penalty_content,
        fine_amount_wan_yuan: Decimal::new(row.fine_fen.unwrap_or(0), 6).to_string(),
        decision_date,
        authority: authority.to_string(),
        publication_due: row.publication_due,
        published_on: row.published_on,
        url: p.publication_url,
    })
}

/// 行政处罚公示信息 — The public record of the case's penalty decision (双公示), as published or to be published.
#[utoipa::path(tag = "cases", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "enforcement", "legal", "platform", "auditor"])),
    responses((status = 200, description = "The public record", body = Publication, headers(("ETag" = String))),
        (status = 409, description = "No penalty decided (`no_decision`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/cases/{id}/publication")]
async fn publication(
    state: web::Data<AppState>,
    _caller: Authorized<CasesRead>,
    id: PathId,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let authority = state.settings.bureau_name.clone();
    let (version, record) = state
        .db
        .run(move |conn| {
            let row = find(conn, &id)?.ok_or(ApiError::NotFound)?;
            Ok::<_, ApiError>((row.version, publication_of(conn, &row, &authority)?))
        })
        .await?;
    Ok(respond(StatusCode::OK, version, &record))
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>{{ title }} {{ number }}</title>
<style>{{ style|safe }}
h1 { letter-spacing: 0.15em; font-size: 22pt; }
.authority { text-align: center; font-size: 16pt; margin-top: 6mm; letter-spacing: 0.1em; }
p.para { text-indent: 2em; margin: 2mm 0; text-align: justify; }
.party p { margin: 1mm 0; }
ol.evidence { margin: 1mm 0 2mm 8mm; padding: 0; }
.seal { margin-top: 14mm; text-align: right; line-height: 2.2; }
</style>
</head>
<body>
<div class="authority">{{ bureau }}</div>
<h1>{{ title }}</h1>
<p class="number">{{ number }}</p>
<div class="party">
<p>当事人：{{ party_name }}</p>
{% if let Some(n) = party_id %}<p>{{ id_label }}：{{ n }}</p>{% endif %}
{% if let Some(a) = party_address %}<p>地址：{{ a }}</p>{% endif %}
</div>
<p class="para">{{ case_line }}</p>
<p class="para">经查明，当事人存在以下违法事实：</p>
{% for line in facts %}<p class="para">{{ line }}</p>
{% endfor %}
{% if !evidence.is_empty() %}<p class="para">以上事实有下列证据证明：</p>
<ol class="evidence">{% for e in evidence %}<li>{{ e }}</li>{% endfor %}</ol>
{% endif %}
{% if let Some(n) = notified %}<p class="para">{{ n }}</p>{% endif %}
{% if penalty %}<p class="para">当事人的上述行为构成{{ violated }}的违法行为。依据{{ legal_basis }}的规定，本机关决定对当事人作出如下行政处罚：</p>
<p class="para"><b>{{ content }}</b></p>
{% if let Some(f) = fine %}<p class="para">罚款金额：人民币（大写）{{ f.0 }}（¥{{ f.1 }}）。当事人应当自收到本决定书之日起{{ payment_days }}日内缴纳罚款。到期不缴纳罚款的，本机关可以每日按罚款数额的百分之三加处罚款，加处罚款的数额不超出罚款的数额（《中华人民共和国行政处罚法》第七十二条）。</p>{% endif %}
{% else %}<p class="para">依据{{ legal_basis }}的规定，本机关决定对当事人不予行政处罚。</p>
{% endif %}
<p class="para">当事人如不服本决定，可以在收到本决定书之日起六十日内依法申请行政复议，或者在六个月内依法向人民法院提起行政诉讼。申请行政复议或者提起行政诉讼期间，本决定不停止执行，法律另有规定的除外。</p>
<div class="seal">
<div>{{ bureau }}（印章）</div>
<div>{{ decided_on }}</div>
</div>
</body>
</html>
"#
)]
struct DecisionPage<'a> {
    style: &'a str,
    bureau: &'a str,
    title: &'static str,
    number: String,
    party_name: String,
    id_label: &'static str,
    party_id: Option<String>,
    party_address: Option<String>,
    case_line: String,
    facts: Vec<String>,
    evidence: Vec<String>,
    notified: Option<String>,
    penalty: bool,
    violated: String,
    legal_basis: String,
    content: String,
    fine: Option<(String, String)>,
    payment_days: i64,
    decided_on: String,
}

/// The evidence items of a case, as the decision lists them.
fn evidence_names(conn: &mut DbConn, id: &str) -> QueryResult<Vec<String>> {
    ev::table.filter(ev::case_id.eq(id)).order(ev::id).select(ev::filename).load(conn)
}

fn party_address(conn: &mut DbConn, row: &CaseRow) -> ApiResult<Option<String>> {
    Ok(match &row.water_user_id {
        Some(w) => crate::water_users::find(conn, w)?.and_then(|w| w.address),
        None => None,
    })
}

fn render_decision(conn: &mut DbConn, row: &CaseRow, settings: &Settings) -> ApiResult<String> {
    let bureau = settings.bureau_name.as_str();
    let outcome = row.outcome().filter(|o| *o != Outcome::Transfer);
    let (Some(outcome), Some(decided)) = (outcome, row.decision_date) else {
        return Err(ApiError::conflict(ErrorCode::NoDecision, Msg::NoDecision));
    };
    let p = row.process();
    let violation = ViolationType::parse(&row.violation_type).unwrap_or(ViolationType::Other);
    let filed = row.filed_on.map(date_zh).unwrap_or_default();
    let case_no = row.case_no.clone().unwrap_or_default();
    // A hearing is a right only when the proposed fine reached the threshold (recorded with the notice; for a
    // notice recorded before that, the threshold in force now).
    let offered = p.hearing_offered.unwrap_or_else(|| {
        row.proposed_fine_fen.unwrap_or(0) >= rules::CaseConfig::of(settings).major_fine(row.party_kind())
    });
    let notified = row.notified_on.map(|n| {
        let rights = match p.hearing_requested_on {
            Some(asked) => format!("当事人于{}提出听证申请，本机关依法组织了听证。", date_zh(asked)),
            None if row.statement_waived => "当事人明确放弃陈述、申辩。".to_string(),
            None if offered => "当事人在法定期限内未提出听证申请。".to_string(),
            None => String::new(),
        };
        format!(
            "本机关于{}告知当事人拟作出行政处罚的事实、理由、依据及其依法享有的陈述、申辩{}权利。{rights}",
            date_zh(n),
            if offered { "、要求听证等" } else { "等" }
        )
    });
    let basis = row.legal_basis.clone().unwrap_or_else(|| "有关法律、法规".into());
    let penalty = outcome == Outcome::Penalty;
    let page = DecisionPage {
        style: STYLE,
        bureau,
        title: if penalty { "行政处罚决定书" } else { "不予行政处罚决定书" },
        number: row.decision_no.clone().unwrap_or_default(),
        party_name: row.party_name.clone(),
        id_label: match row.party_kind() {
            PartyKind::Organisation => "统一社会信用代码",
            PartyKind::Person => "公民身份号码",
        },
        party_id: row.party_id_number.clone(),
        party_address: party_address(conn, row)?,
        case_line: format!(
            "本机关于{filed}对当事人{}一案立案调查（案号：{case_no}），现已调查终结。",
            violation.label_zh()
        ),
        facts: row.facts.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect(),
        evidence: evidence_names(conn, &row.id)?,
        notified,
        penalty,
        violated: violation.label_zh().into(),
        legal_basis: basis,
        content: p.penalty_content.unwrap_or_default(),
        fine: row.fine_fen.filter(|f| *f > 0).map(|f| (capitals(f), yuan(f))),
        payment_days: PAYMENT_DAYS,
        decided_on: date_zh(decided),
    };
    page.render().map_err(|e| ApiError::internal(format!("decision template: {e}")))
}

/// 行政处罚决定书 — The printable decision of a decided case (不予行政处罚决定书 for no penalty): an A4 page in Chinese
/// with the party, the facts, the evidence, the notice and the party's rights, the legal basis, the penalty and the
/// fine in capitals, how and by when to pay, and the remedies, for the browser's print dialog.
#[utoipa::path(tag = "cases", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "enforcement", "legal", "platform", "auditor"])),
    responses((status = 200, description = "行政处罚决定书（A4 HTML）", content_type = "text/html", body = String),
        (status = 409, description = "Not decided, or transferred (`no_decision`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/cases/{id}/decision")]
async fn decision(state: web::Data<AppState>, _caller: Authorized<CasesRead>, id: PathId) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let settings = state.settings.clone();
    let page = state
        .db
        .run(move |conn| {
            let row = find(conn, &id)?.ok_or(ApiError::NotFound)?;
            render_decision(conn, &row, &settings)
        })
        .await?;
    Ok(crate::documents::html(page))
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>行政处罚案卷 {{ case_no }}</title>
<style>{{ style|safe }}
h1 { font-size: 30pt; letter-spacing: 0.4em; margin: 30mm 0 4mm; }
.authority { text-align: center; font-size: 18pt; letter-spacing: 0.2em; margin-bottom: 16mm; }
table.cover th { width: 40mm; vertical-align: middle; }
table.cover td { height: 13mm; vertical-align: middle; }
</style>
</head>
<body>
<h1>行政处罚案卷</h1>
<div class="authority">{{ bureau }}</div>
<table class="cover">
<tr><th>案号</th><td>{{ case_no }}</td></tr>
<tr><th>案由</th><td>{{ cause }}</td></tr>
<tr><th>当事人</th><td>{{ party }}</td></tr>
<tr><th>承办人</th><td>{{ officers }}</td></tr>
<tr><th>立案日期</th><td>{{ filed_on }}</td></tr>
<tr><th>处理结果</th><td>{{ result }}</td></tr>
<tr><th>决定书文号</th><td>{{ decision_no }}</td></tr>
<tr><th>结案日期</th><td>{{ closed_on }}</td></tr>
<tr><th>证据材料</th><td>{{ evidence }}</td></tr>
</table>
</body>
</html>
"#
)]
struct Cover<'a> {
    style: &'a str,
    bureau: &'a str,
    case_no: String,
    cause: String,
    party: String,
    officers: String,
    filed_on: String,
    result: String,
    decision_no: String,
    closed_on: String,
    evidence: String,
}

/// 案卷封面 — The cover of the case file (案号, 案由, party, officers, dates, result), A4 HTML, once the case is filed.
#[utoipa::path(tag = "cases", params(("id" = String, Path)),
    security(("bearer" = ["admin", "leader", "enforcement", "legal", "platform", "auditor"])),
    responses((status = 200, description = "案卷封面（A4 HTML）", content_type = "text/html", body = String),
        (status = 409, description = "Not filed yet (`invalid_transition`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/cases/{id}/cover")]
async fn cover(state: web::Data<AppState>, _caller: Authorized<CasesRead>, id: PathId) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let bureau = state.settings.bureau_name.clone();
    let page = state
        .db
        .run(move |conn| {
            let row = find(conn, &id)?.ok_or(ApiError::NotFound)?;
            let Some(case_no) = row.case_no.clone() else {
                return Err(ApiError::conflict(ErrorCode::InvalidTransition, Msg::NotFiledYet));
            };
            let names: Vec<String> = o::table
                .inner_join(accounts::table.on(accounts::id.eq(o::account_id)))
                .filter(o::case_id.eq(&row.id))
                .order(o::position)
                .select(accounts::display_name)
                .load(conn)?;
            let evidence: i64 = ev::table.filter(ev::case_id.eq(&row.id)).count().get_result(conn)?;
            let violation = ViolationType::parse(&row.violation_type).unwrap_or(ViolationType::Other);
            let result = match row.outcome() {
                Some(Outcome::Penalty) => row.process().penalty_content.unwrap_or_else(|| "给予行政处罚".into()),
                Some(o) => o.label_zh().into(),
                None => String::new(),
            };
            let page = Cover {
                style: STYLE,
                bureau: &bureau,
                case_no,
                cause: violation.label_zh().into(),
                party: row.party_name.clone(),
                officers: names.join("、"),
                filed_on: row.filed_on.map(date_zh).unwrap_or_default(),
                result,
                decision_no: row.decision_no.clone().unwrap_or_default(),
                closed_on: row.closed_on.map(date_zh).unwrap_or_default(),
                evidence: if evidence > 0 { format!("{evidence} 件") } else { String::new() },
            };
            page.render().map_err(|e| ApiError::internal(format!("cover template: {e}")))
        })
        .await?;
    Ok(crate::documents::html(page))
}
