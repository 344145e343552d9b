//! The OpenAPI 3.1 document: operations come from the handlers' `#[utoipa::path]` as registered with
//! utoipa-actix-web (so the document lists exactly the routes that exist); then one pass adds what every
//! operation shares — the standard error responses, `Idempotency-Key`, and each operation's roles.

use serde_json::{json, Map, Value};
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt;

use crate::error::{ErrorCode, FieldProblem, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "shuiwu 水务 — 县级水务局业务系统",
        description = "县级水务局后端服务：取用水户名录、取水许可、水资源费、计划用水、行政执法。\n\n\
**如何登录与授权**\n\n\
1. 调用 `POST /api/v1/auth/login`，请求体为 `{\"username\": \"…\", \"password\": \"…\"}`（服务账号用 `POST /api/v1/auth/token`）。\n\
2. 复制返回的 `access_token`，点击页面右上方的 **Authorize**，粘贴到 bearer 输入框并确认。之后的请求都会带上该令牌。\n\
3. 访问令牌 15 分钟后过期，用 `refresh_token` 调用 `POST /api/v1/auth/refresh` 换取新令牌；退出登录调用 `POST /api/v1/auth/logout`。\n\n\
每个接口都注明了可调用的角色。修改记录须在 `If-Match` 请求头中提供记录的 ETag；重试请求可带 `Idempotency-Key`。\
错误以 RFC 9457 `application/problem+json` 返回，`code` 稳定不变，`title`、`detail` 默认为中文（`Accept-Language: en` 时为英文）。\n\n\
---\n\n\
Back-end service of a county water affairs bureau. Sign in with `POST /api/v1/auth/login` and paste the `access_token` \
into **Authorize** (bearer). Every operation lists the roles that may call it; errors are RFC 9457 problems with a stable \
`code`, in Chinese unless `Accept-Language` prefers English.",
        license(name = "Apache-2.0")
    ),
    components(schemas(Problem, FieldProblem, ErrorCode)),
    tags(
        (name = "auth", description = "登录与令牌 — sign-in, tokens"),
        (name = "accounts", description = "工作人员账号（系统管理员） — staff accounts (admin)"),
        (name = "departments", description = "部门（系统管理员） — departments (admin)"),
        (name = "service-accounts", description = "服务账号（省级平台等） — accounts of provincial platforms (admin)"),
        (name = "water-users", description = "取用水户名录 — the registry of water users"),
        (name = "water-zones", description = "取水总量控制分区 — zones with total-quantity caps"),
        (name = "permits", description = "取水许可 — water-abstraction permits from application to revocation"),
        (name = "withdrawals", description = "月取水量 — monthly withdrawals per permit"),
        (name = "fee-rates", description = "水资源费征收标准（系统管理员） — the fee rate table (admin)"),
        (name = "fee-assessments", description = "水资源费核定、缴款通知、缓缴与减免 — quarterly fee assessments, notices, deferrals and waivers"),
        (name = "payments", description = "水资源费缴款 — payments of assessed fees"),
        (name = "planned-use", description = "计划用水：计划用水户、年度计划、月用水量、计划覆盖率 — planned water use: users, annual plans, monthly usage, coverage"),
        (name = "inspections", description = "巡查与整改：巡查记录、发现问题、整改、移送立案 — field inspections, findings, rectifications, escalation into a case"),
        (name = "cases", description = "行政处罚案件 — administrative penalty cases"),
        (name = "calendar", description = "工作日历 — the bureau's working-day calendar"),
        (name = "audit", description = "审计日志（哈希链） — append-only audit trail with a hash chain"),
        (name = "changes", description = "变更流（省级平台同步） — change feed for provincial platforms"),
        (name = "exports", description = "全量导出（NDJSON、CSV） — whole collections for platforms and spreadsheets"),
        (name = "reports", description = "工作总结数据 — the figures of the bureau's half-year and yearly work reports"),
        (name = "health", description = "健康检查 — liveness and readiness"),
    )
)]
struct ApiDoc;

/// The document as utoipa builds it from the routes `routes` registers.
fn generated(routes: fn(&mut ServiceConfig)) -> utoipa::openapi::OpenApi {
    let (_, api) =
        actix_web::App::new().into_utoipa_app().openapi(ApiDoc::openapi()).configure(routes).split_for_parts();
    api
}

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

const STANDARD: [(&str, &str, &str); 13] = [
    ("400", "BadRequest", "请求有误 — malformed request or invalid fields (`validation_failed`)"),
    ("401", "Unauthorized", "未登录或令牌无效 — missing, invalid, expired or revoked token (`unauthorized`)"),
    ("403", "Forbidden", "无权操作 — the caller's roles do not allow this operation (`forbidden`)"),
    ("404", "NotFound", "不存在 — no such resource (`not_found`)"),
    (
        "409",
        "Conflict",
        "业务规则不允许 — refused by a business rule, or a request with the same Idempotency-Key is still running",
    ),
    ("412", "PreconditionFailed", "记录已被修改 — If-Match does not match the current version (`precondition_failed`)"),
    ("413", "PayloadTooLarge", "请求体过大 — request body over 1 MiB (`payload_too_large`)"),
    ("415", "UnsupportedMediaType", "内容类型不支持 — request body is not application/json (`unsupported_media_type`)"),
    (
        "422",
        "IdempotencyKeyReused",
        "幂等键已用于其他请求 — Idempotency-Key reused with a different request (`idempotency_key_reused`)",
    ),
    ("428", "PreconditionRequired", "缺少 If-Match — If-Match header missing (`precondition_required`)"),
    ("429", "TooManyRequests", "尝试次数过多 — too many attempts (`rate_limited`)"),
    (
        "500",
        "InternalError",
        "服务器内部错误 — unexpected error (`internal_error`); details are in the server log under the request id",
    ),
    ("503", "ServiceUnavailable", "服务暂不可用 — database unreachable or overloaded (`service_unavailable`)"),
];

fn add_response(op: &mut Map<String, Value>, status: &str) {
    let responses = op.entry("responses").or_insert_with(|| json!({})).as_object_mut().expect("responses object");
    if !responses.contains_key(status) {
        let name = STANDARD.iter().find(|(s, _, _)| *s == status).map(|(_, n, _)| *n).expect("standard status");
        responses.insert(status.into(), json!({ "$ref": format!("#/components/responses/{name}") }));
    }
}

fn has_param(op: &Map<String, Value>, location: &str, name: Option<&str>) -> bool {
    op.get("parameters").and_then(Value::as_array).is_some_and(|ps| {
        ps.iter().any(|p| {
            p["in"] == location && name.is_none_or(|n| p["name"].as_str().is_some_and(|v| v.eq_ignore_ascii_case(n)))
        })
    })
}

/// The Chinese name of every field and parameter the API uses: one glossary, so that a name means the same thing
/// everywhere. `complete` writes it before each property's and parameter's description (a test checks none is
/// missing).
const GLOSSARY: &[(&str, &str)] = &[
    ("approved_in_period", "期间新批准数"),
    ("by_category", "按类别"),
    ("by_kind", "按检查类别"),
    ("by_source_type", "按水源类型"),
    ("cases_filed", "立案数"),
    ("collected_fen", "征收本金（分）"),
    ("decided_with_penalty", "作出处罚决定数"),
    ("enforcement", "行政执法"),
    ("expiring_within_90_days", "90日内到期数"),
    ("fees", "水资源费"),
    ("fines_fen", "罚款金额（分）"),
    ("inspections", "监督检查"),
    ("key_monitoring_users", "重点监控用水单位数"),
    ("late_fee_collected_fen", "征收滞纳金（分）"),
    ("open", "正在整改数"),
    ("planned_use", "计划用水"),
    ("planned_users", "计划用水户数"),
    ("case_id", "案件标识"),
    ("content_type", "文件类型"),
    ("eid", "证据标识"),
    ("file", "文件"),
    ("filename", "文件名"),
    ("Range", "字节范围"),
    ("published_on_time", "按期公示数"),
    ("rectified", "已整改数"),
    ("sha256", "SHA-256 摘要"),
    ("size_bytes", "文件大小（字节）"),
    ("surcharge_assessed_fen", "核定超计划加价费（分）"),
    ("surcharge_collected_fen", "征收超计划加价费（分）"),
    ("under_investigation", "尚在调查处理数"),
    ("uploaded_at", "上传时间"),
    ("uploaded_by", "上传人"),
    ("completed_on", "整改完成日期"),
    ("completion_note", "整改情况"),
    ("created_by", "登记人"),
    ("description", "问题描述"),
    ("due_before", "整改期限不晚于"),
    ("facts", "违法事实"),
    ("findings", "发现问题"),
    ("has_open_findings", "有未整改问题"),
    ("inspected_at", "巡查时间"),
    ("inspection_id", "巡查记录标识"),
    ("inspector_id", "巡查人员"),
    ("inspector_ids", "巡查人员"),
    ("legal_basis", "法律依据"),
    ("location", "巡查地点"),
    ("notes", "巡查情况"),
    ("open_findings", "未整改问题数"),
    ("party_kind", "当事人类型"),
    ("party_name", "当事人名称"),
    ("position", "序号"),
    ("rectification_due", "整改期限"),
    ("rectification_id", "整改事项标识"),
    ("source_inspection_id", "来源巡查记录"),
    ("stage", "案件环节"),
    ("target_credit_code", "被检查单位统一社会信用代码"),
    ("target_name", "被检查单位"),
    ("target_water_user_id", "被检查取用水户"),
    ("violation_type", "违法行为类型"),
    ("over_plan", "超计划户数"),
    ("created", "新建条数"),
    ("incomplete", "用水量未报全的户数"),
    ("differences", "差异明细"),
    ("format", "格式"),
    ("rows", "数据行数"),
    ("water_users_created", "新登记取用水户数"),
    ("planned_users_created", "新建计划用水户数"),
    ("planned_users_updated", "更新计划用水户数"),
    ("plans_created", "新下达计划数"),
    ("plans_existing", "已有计划数"),
    ("surcharge", "超计划累进加价计算明细"),
    ("excess_m3", "超计划水量（立方米）"),
    ("price_source", "基本水价来源"),
    ("bands", "分段计算"),
    ("access_token", "访问令牌"),
    ("action", "操作"),
    ("active", "是否在用"),
    ("actor", "操作人"),
    ("address", "地址"),
    ("adjusted_on", "调整日期"),
    ("after", "变更后"),
    ("allowable_m3_per_year", "可开采量/控制总量（立方米/年）"),
    ("amount_fen", "金额（分）"),
    ("amount_yuan", "金额（元，精确值）"),
    ("annual_m3", "年计划水量（立方米）"),
    ("annual_volume_m3", "年取水量（立方米）"),
    ("approved_m3_per_year", "已批准水量（立方米/年）"),
    ("approved_on", "批准日期"),
    ("as_of", "截至日期"),
    ("assessed_fen", "核定金额合计（分）"),
    ("assessment_id", "核定记录标识"),
    ("at", "时间"),
    ("base_price_yuan_per_m3", "基础水价（元/立方米）"),
    ("basis_year", "依据年度"),
    ("before", "变更前"),
    ("cancelled_on", "注销日期"),
    ("category", "类别"),
    ("category_base_prices", "各类别基础水价（元/立方米）"),
    ("changes", "变更字段"),
    ("checked", "已校验条数"),
    ("client_id", "客户端标识"),
    ("client_secret", "客户端密钥"),
    ("code", "代码"),
    ("contact_phone", "联系电话"),
    ("count", "条数"),
    ("coverage_pct", "计划覆盖率（%）"),
    ("created_at", "创建时间"),
    ("credit_code", "统一社会信用代码"),
    ("current_password", "当前密码"),
    ("cursor", "游标"),
    ("daily_max_volume_m3", "日最大取水量（立方米）"),
    ("data", "数据"),
    ("deferred_until", "缓缴至"),
    ("department", "部门"),
    ("detail", "详情"),
    ("difference_fen", "差额（分）"),
    ("display_name", "姓名"),
    ("effective_date", "生效日期"),
    ("effective_from", "起始日期"),
    ("effective_to", "截止日期"),
    ("entity_id", "实体标识"),
    ("entity_type", "实体类型"),
    ("entity_types", "实体类型"),
    ("errors", "字段错误"),
    ("expires_in", "有效秒数"),
    ("expiring_within_days", "即将到期天数"),
    ("fee_assessments_created", "新核定水资源费条数"),
    ("field", "字段"),
    ("first_break_seq", "首个断裂序号"),
    ("from", "起"),
    ("grant_type", "授权类型"),
    ("has_plan", "是否已下达计划"),
    ("hash", "哈希"),
    ("holder_credit_code", "持证人统一社会信用代码"),
    ("holder_id", "持证人（取用水户）标识"),
    ("holder_name", "持证人名称"),
    ("id", "标识"),
    ("in_force_on", "在用日期"),
    ("include_superseded", "含已更正的版本"),
    ("include_total", "返回总数"),
    ("industry", "行业"),
    ("intake_location", "取水地点"),
    ("intake_method", "取水方式"),
    ("issued_on", "下达日期"),
    ("items", "条目"),
    ("kind", "类别"),
    ("last_paid_on", "最近缴款日期"),
    ("lat", "纬度"),
    ("late_fee_fen", "滞纳金（分）"),
    ("late_fee_outstanding_fen", "未缴滞纳金（分）"),
    ("late_fee_paid_fen", "已缴滞纳金（分）"),
    ("legal_representative", "法定代表人"),
    ("limit", "每页条数"),
    ("lines", "分月明细"),
    ("lng", "经度"),
    ("message", "说明"),
    ("meter_status", "计量设施状况"),
    ("method", "计量方式"),
    ("month", "月份"),
    ("monthly_m3", "月计划水量（立方米，1—12 月）"),
    ("months", "所含月份"),
    ("multiplier", "加价倍数"),
    ("name", "名称"),
    ("next_cursor", "下一页游标"),
    ("note", "备注"),
    ("occurred_at", "发生时间"),
    ("ok", "是否完整"),
    ("op", "变更类型"),
    ("outstanding_after_fen", "缴款后欠缴本金（分）"),
    ("outstanding_fen", "欠缴本金（分）"),
    ("over_capacity", "超出最大取水能力"),
    ("over_capacity_confirmed", "确认超出最大取水能力"),
    ("over_m3", "超计划水量（立方米）"),
    ("over_pct", "超计划比例（%）"),
    ("over_pct_from", "超计划比例起点（%）"),
    ("over_pct_to", "超计划比例止点（%）"),
    ("overdue", "是否逾期"),
    ("paid_fen", "已缴本金（分）"),
    ("paid_from", "缴款日期起"),
    ("paid_on", "缴款日期"),
    ("paid_to", "缴款日期止"),
    ("password", "密码"),
    ("payer_credit_code", "缴费人统一社会信用代码"),
    ("payer_id", "缴费人（取用水户）标识"),
    ("payer_name", "缴费人名称"),
    ("pending_request", "待审批申请"),
    ("period", "期间"),
    ("period_from", "起始月份"),
    ("period_to", "截止月份"),
    ("permit_id", "取水许可标识"),
    ("permit_no", "取水许可证号"),
    ("permits", "取水许可数"),
    ("planned_m3", "计划水量（立方米）"),
    ("planned_user_id", "计划用水户标识"),
    ("prev_hash", "前一哈希"),
    ("principal_fen", "本金（分）"),
    ("purpose", "取水用途"),
    ("q", "关键字"),
    ("rate_id", "征收标准标识"),
    ("rate_limit_per_minute", "请求频率上限（次/分钟）"),
    ("rate_yuan_per_m3", "征收标准（元/立方米）"),
    ("reason", "理由"),
    ("reassessment", "重新核定结果"),
    ("recalculated", "重新计算条数"),
    ("receipt_no", "收据号"),
    ("recorded_by", "登记人"),
    ("refresh_token", "刷新令牌"),
    ("region_code", "行政区划代码"),
    ("registered", "在册户数"),
    ("rejected_on", "不予批准日期"),
    ("renewed_on", "延续日期"),
    ("reported_by", "报送人"),
    ("request_id", "请求编号"),
    ("requested_on", "申请日期"),
    ("return_location", "退水地点"),
    ("return_method", "退水方式"),
    ("revision", "修订版次"),
    ("revoked_on", "吊销日期"),
    ("roles", "角色"),
    ("seq", "序号"),
    ("source", "数据来源"),
    ("source_type", "水源类型"),
    ("status", "状态"),
    ("sub", "主体标识"),
    ("submitted_on", "提交日期"),
    ("superseded", "已被更正"),
    ("supply", "供水方式"),
    ("suspended_on", "暂停日期"),
    ("tax_referrals_created", "新移交税务条数"),
    ("tiers", "累进加价档次"),
    ("title", "标题"),
    ("to", "止"),
    ("token_type", "令牌类型"),
    ("total", "总数"),
    ("totals", "合计"),
    ("type", "问题类型"),
    ("unchanged", "未变条数"),
    ("unpriced", "未能计价的对象（取水许可或计划用水户）"),
    ("unpriced_count", "未能计价数"),
    ("until", "截至日期"),
    ("updated_at", "更新时间"),
    ("updated_since", "更新起始时间"),
    ("usage_m3", "用水量（立方米）"),
    ("used_m3", "实际用水量（立方米）"),
    ("username", "用户名"),
    ("utilization_pct", "利用率（%）"),
    ("valid_from", "有效期起始日"),
    ("valid_to", "有效期截止日"),
    ("version", "版本号（即 ETag）"),
    ("volume_m3", "水量（立方米）"),
    ("waived_fen", "减免金额（分）"),
    ("waived_on", "减免日期"),
    ("water_user_id", "取用水户标识"),
    ("water_user_name", "取用水户名称"),
    ("with_difference", "有差异条数"),
    ("with_plan", "已下达计划户数"),
    ("withdrawal_id", "月取水量记录标识"),
    ("withdrawals", "取水量"),
    ("year", "年度"),
    ("zone_class", "分区类别"),
    ("zone_id", "分区标识"),
    ("zone_name", "分区名称"),
    ("If-Match", "版本标识（记录的 ETag）"),
    ("closed_on", "结案日期"),
    ("decided_by", "签发领导"),
    ("decided_from", "决定日期起"),
    ("decided_to", "决定日期止"),
    ("decision_date", "决定日期"),
    ("decision_overdue", "超期未作出决定"),
    ("evidence_count", "证据数量"),
    ("extension_reason", "延期理由"),
    ("filed_from", "立案日期起"),
    ("filed_to", "立案日期止"),
    ("fine_outstanding_fen", "未缴罚款（分）"),
    ("fine_paid_fen", "已缴罚款（分）"),
    ("hearing_requested_on", "申请听证日期"),
    ("investigation_started_on", "调查开始日期"),
    ("legal_review", "法制审核"),
    ("outcome", "处理结果"),
    ("party_id_number", "当事人证件号码"),
    ("payment_due", "缴纳罚款期限"),
    ("penalty_types", "处罚种类"),
    ("publication_due", "公示期限"),
    ("publication_overdue", "超期未公示"),
    ("publication_url", "公示网址"),
    ("published_on", "公示日期"),
    ("reviewed_on", "审核日期"),
    ("served_on", "送达日期"),
    ("statement_deadline", "陈述申辩期限"),
    ("statement_waived", "放弃陈述申辩"),
    ("url", "网址"),
    ("zones", "各分区"),
];

fn has_chinese(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// Writes the glossary's Chinese name before a description that has no Chinese yet: `名称 — description`.
fn label(target: &mut Map<String, Value>, name: &str) {
    let Some((_, zh)) = GLOSSARY.iter().find(|(n, _)| *n == name) else { return };
    let current = target.get("description").and_then(Value::as_str).unwrap_or("").to_string();
    if has_chinese(&current) {
        return;
    }
    let text = if current.is_empty() { (*zh).to_string() } else { format!("{zh} — {current}") };
    target.insert("description".into(), Value::String(text));
}

/// Labels every property of every schema (objects nested in properties included).
fn label_properties(schema: &mut Value) {
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, prop) in props.iter_mut() {
            if let Some(obj) = prop.as_object_mut() {
                label(obj, name);
            }
            label_properties(prop);
        }
    }
    for key in ["items", "allOf", "oneOf", "anyOf"] {
        match schema.get_mut(key) {
            Some(Value::Array(list)) => list.iter_mut().for_each(label_properties),
            Some(v @ Value::Object(_)) => label_properties(v),
            _ => {}
        }
    }
}

/// Adds shared responses, parameters and role documentation to every operation.
fn complete(doc: &mut Value) {
    let components = doc["components"].as_object_mut().expect("components");
    let codes: Vec<(&str, &str)> = ErrorCode::ALL.iter().map(|c| (c.as_str(), c.title_zh())).collect();
    let code_schema =
        crate::domain::enum_schema("Every `code` a problem may carry (stable across releases and languages).", &codes);
    components["schemas"]["ErrorCode"] = serde_json::to_value(code_schema).expect("schema serialises");
    let mut responses = Map::new();
    for (_, name, description) in STANDARD {
        responses.insert(name.into(), problem_response(description));
    }
    components.insert("responses".into(), Value::Object(responses));
    components.insert(
        "securitySchemes".into(),
        json!({ "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "访问令牌（登录后取得） — access token from `POST /api/v1/auth/login` or `/api/v1/auth/token`. Scopes on operations are the roles that may call them." },
            "metrics_token": { "type": "http", "scheme": "bearer",
            "description": "指标抓取令牌（运维配置的 SHUIWU_METRICS_TOKEN，不是账号令牌） — the scrape token of `SHUIWU_METRICS_TOKEN`, for Prometheus only." } }),
    );
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        schemas.values_mut().for_each(label_properties);
    }
    let paths = doc["paths"].as_object_mut().expect("paths");
    for (path, item) in paths.iter_mut() {
        for (method, op) in item.as_object_mut().expect("path item").iter_mut() {
            let Some(op) = op.as_object_mut() else { continue };
            let roles: Option<Vec<String>> = op.get("security").and_then(Value::as_array).and_then(|reqs| {
                reqs.iter()
                    .find_map(|r| r.get("bearer").and_then(Value::as_array))
                    .map(|scopes| scopes.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            });
            let scrape = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|reqs| reqs.iter().any(|r| r.get("metrics_token").is_some()));
            let who = match &roles {
                None if scrape => "仅限监控系统：抓取令牌或指标专用监听地址 — Monitoring only: the scrape token, or the metrics listener.".to_string(),
                None => "无需登录 — No authentication.".to_string(),
                Some(r) if r.is_empty() => "任何已登录用户 — Any authenticated caller.".to_string(),
                Some(r) => {
                    let zh = r
                        .iter()
                        .map(|x| crate::identity::Role::parse(x).map_or(x.clone(), |role| role.label_zh().to_string()))
                        .collect::<Vec<_>>()
                        .join("、");
                    let en = r.iter().map(|x| format!("`{x}`")).collect::<Vec<_>>().join(", ");
                    format!("可调用角色：{zh} — Roles: {en}.")
                }
            };
            let description = match op.get("description").and_then(Value::as_str) {
                Some(d) if !d.is_empty() => format!("{d}\n\n**{who}**"),
                _ => format!("**{who}**"),
            };
            op.insert("description".into(), Value::String(description));
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                for p in params.iter_mut().filter_map(Value::as_object_mut) {
                    let name = p.get("name").and_then(Value::as_str).unwrap_or("").to_string();
                    label(p, &name);
                }
            }
            if let Some(r) = &roles {
                op.insert("x-roles".into(), json!(r));
                add_response(op, "401");
                if !r.is_empty() {
                    add_response(op, "403");
                }
            }
            if op.contains_key("requestBody") {
                for s in ["400", "413", "415"] {
                    add_response(op, s);
                }
            }
            if has_param(op, "query", None) {
                add_response(op, "400");
            }
            if path.contains('{') {
                add_response(op, "404");
            }
            if has_param(op, "header", Some("If-Match")) && method != "delete" {
                add_response(op, "412");
                add_response(op, "428");
            }
            if method == "post" {
                let params = op.entry("parameters").or_insert_with(|| json!([])).as_array_mut().expect("parameters");
                params.push(json!({
                    "name": "Idempotency-Key", "in": "header", "required": false,
                    "description": "幂等键 — retry safely: the same key and body get the stored response (kept 24 h, per caller).",
                    "schema": { "type": "string", "maxLength": 255 }
                }));
                add_response(op, "409");
                add_response(op, "422");
            }
            add_response(op, "500");
            add_response(op, "503");
        }
    }
}

/// The finished document for the routes `routes` registers (`crate::startup::routes`).
pub fn document(routes: fn(&mut ServiceConfig)) -> Value {
    let mut doc = serde_json::to_value(generated(routes)).expect("OpenAPI serialises");
    complete(&mut doc);
    doc
}

/// The document as served and committed (`openapi/openapi.json`): pretty JSON with a final newline.
pub fn to_string(doc: &Value) -> String {
    let mut s = serde_json::to_string_pretty(doc).expect("JSON serialises");
    s.push('\n');
    s
}
