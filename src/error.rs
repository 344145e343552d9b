//! The one error type of the service and its RFC 9457 rendering. Every failure, including actix's own
//! extractor and routing errors, ends up as `application/problem+json` with a stable `code` from [`ErrorCode`].
//! `request_id` is filled in by the request-id middleware, which sees every response.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::messages::{Lang, Msg};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Declares the error codes: the variant, its stable snake_case code, and its title in English and Chinese.
macro_rules! error_codes {
    ($($variant:ident = ($code:literal, $en:literal, $zh:literal)),+ $(,)?) => {
        /// Every `code` a problem may carry (stable across releases and languages).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum ErrorCode {
            $(#[doc = $zh] #[doc = $en] #[serde(rename = $code)] $variant),+
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code),+ }
            }

            /// The problem's `title` in English.
            pub fn title_en(self) -> &'static str {
                match self { $(ErrorCode::$variant => $en),+ }
            }

            /// The problem's `title` in Chinese.
            pub fn title_zh(self) -> &'static str {
                match self { $(ErrorCode::$variant => $zh),+ }
            }

            pub fn title(self, lang: Lang) -> &'static str {
                match lang {
                    Lang::Zh => self.title_zh(),
                    Lang::En => self.title_en(),
                }
            }
        }
    };
}

error_codes! {
    ValidationFailed = ("validation_failed", "Validation failed", "请求参数有误"),
    InvalidCreditCode = ("invalid_credit_code", "Invalid unified social credit code", "统一社会信用代码无效"),
    BadRequest = ("bad_request", "Bad request", "请求无法处理"),
    HeadersTooLarge = ("request_header_fields_too_large", "Request headers too large", "请求头过大"),
    RequestTimeout = ("request_timeout", "Request timeout", "请求超时"),
    Unauthorized = ("unauthorized", "Unauthorized", "未登录或凭证无效"),
    Forbidden = ("forbidden", "Forbidden", "无权执行此操作"),
    NotFound = ("not_found", "Not found", "资源不存在"),
    MethodNotAllowed = ("method_not_allowed", "Method not allowed", "不支持该请求方法"),
    Conflict = ("conflict", "Conflict", "与现有记录冲突"),
    Referenced = ("referenced", "Still referenced", "记录仍被引用"),
    InvalidTransition = ("invalid_transition", "Not allowed in the current status", "当前状态下不允许此操作"),
    EffectiveDateOutOfOrder = ("effective_date_out_of_order", "Date before the previous step", "日期早于上一环节"),
    NotEditable = ("not_editable", "No longer editable", "记录已不可修改"),
    CertificateUnavailable = ("certificate_unavailable", "No certificate for this permit", "该取水许可不能打印许可证"),
    ZoneProhibited = ("zone_prohibited", "Prohibited zone", "禁采区不得审批取水"),
    ZoneRestricted = ("zone_restricted", "Restricted zone", "限采区不得新增地下水取水"),
    ZoneCapExceeded = ("zone_cap_exceeded", "Zone cap exceeded", "超出区域取水总量控制指标"),
    RenewalTooLate = ("renewal_too_late", "Renewal applied for too late", "延续申请晚于期满前45日"),
    PermitNotActive = ("permit_not_active", "Permit not in force", "取水许可证当期未生效"),
    NoDailyMaximum = ("no_daily_maximum", "No daily maximum", "取水许可未载明日最大取水量"),
    ExceedsPermitCapacity = ("exceeds_permit_capacity", "Above what the permit can draw", "超出取水许可的最大取水能力"),
    OnlineMeterOnly = ("online_meter_only", "Online meter readings only", "省级平台只能报送在线计量数据"),
    StaffReadingProtected = ("staff_reading_protected", "Entered by staff", "工作人员录入的数据只能由工作人员更正"),
    RateOverlap = ("rate_overlap", "Rates overlap", "征收标准时间重叠"),
    PeriodNotEnded = ("period_not_ended", "Period not ended", "计费期间尚未结束"),
    NoticeUnavailable = ("notice_unavailable", "No payment notice", "该记录没有缴款通知书"),
    DeferralTooLate = ("deferral_too_late", "Deferral requested too late", "缓缴申请晚于缴款期限"),
    DeferralTooLong = ("deferral_too_long", "Deferral too long", "缓缴期限超过90日"),
    OwnRequest = ("own_request", "Own request", "不能审批本人提出的申请"),
    ReassessmentDue = ("reassessment_due", "Reassessment due", "须先重新核定"),
    Overpayment = ("overpayment", "Overpayment", "缴款金额超过应缴金额"),
    ReceiptNoTaken = ("receipt_no_taken", "Receipt number already recorded", "收据号已登记"),
    NoPlan = ("no_plan", "No plan for that year", "该年度没有用水计划"),
    PlannedUserInactive = ("planned_user_inactive", "Planned user inactive", "计划用水户已停用"),
    SettledByOtherPeriod = ("settled_by_other_period", "Settled by another period", "该年度已按其他期间结算"),
    AlreadyEscalated = ("already_escalated", "Already escalated", "已移送立案"),
    CalendarMissing = ("calendar_missing", "Calendar missing", "缺少该年度工作日历"),
    OfficersRequired = ("officers_required", "Officers required", "调查取证须有两名以上执法人员"),
    HearingNotAvailable = ("hearing_not_available", "Hearing not available", "拟处罚款未达听证标准"),
    HearingRequestLate = ("hearing_request_late", "Hearing request late", "听证申请已超过期限"),
    StatementWindowOpen = ("statement_window_open", "Statement period not over", "陈述申辩期限未满"),
    FineExceedsProposed = ("fine_exceeds_proposed", "Fine exceeds the proposed fine", "处罚不得重于告知的拟处罚"),
    LegalReviewRequired = ("legal_review_required", "Legal review required", "重大处罚决定须经法制审核"),
    DecisionOverdue = ("decision_overdue", "Decision overdue", "已超过作出决定期限，须说明延期理由"),
    AlreadyPublished = ("already_published", "Already published", "已公示"),
    FineOutstanding = ("fine_outstanding", "Fine outstanding", "罚款尚未缴清"),
    NoDecision = ("no_decision", "No decision", "尚未作出处罚决定"),
    LastAdmin = ("last_admin", "Last administrator", "不能停用或降级最后一名系统管理员"),
    PreconditionFailed = ("precondition_failed", "Precondition failed", "记录已被他人修改，请刷新后重试"),
    PreconditionRequired = ("precondition_required", "Precondition required", "缺少 If-Match 版本标识"),
    PayloadTooLarge = ("payload_too_large", "Payload too large", "请求内容过大"),
    UnsupportedMediaType = ("unsupported_media_type", "Unsupported media type", "不支持的内容类型"),
    IdempotencyKeyReused = ("idempotency_key_reused", "Idempotency key reused", "幂等键已用于其他请求"),
    IdempotencyKeyInFlight = ("idempotency_key_in_flight", "Request still running", "相同幂等键的请求仍在处理中"),
    RateLimited = ("rate_limited", "Too many requests", "尝试次数过多，请稍后再试"),
    ServiceUnavailable = ("service_unavailable", "Service unavailable", "服务暂不可用"),
    InternalError = ("internal_error", "Internal server error", "服务器内部错误"),
}

/// One invalid field (or CSV line) of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `credit_code` or `location.lat`; a query parameter's name; a file's column.
    pub field: String,
    pub message: Msg,
    /// The line of an uploaded file (the header is line 1).
    pub line: Option<u64>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: Msg) -> Self {
        Self { field: field.into(), message, line: None }
    }

    /// The same problem, found on `line` of an uploaded file.
    pub fn at(self, line: u64) -> Self {
        Self { line: Some(line), ..self }
    }
}

/// One invalid field as a problem lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct FieldProblem {
    /// 行号 — for an uploaded file, the line (the header is line 1); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// 字段 — JSON path of the field (`credit_code`, `location.lat`), a query parameter's name, or a file's column.
    pub field: String,
    /// 说明 — what is wrong, in the request's language.
    pub message: String,
}

/// RFC 9457 problem details, as every error response carries them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "https://shuiwu.example/problems/validation_failed", "title": "请求参数有误", "status": 400,
    "detail": "region_code：须为 6 位行政区划代码", "code": "validation_failed", "request_id": "01938c1e-7a52-7c4e-9d43-1e8a0c1f2b3d",
    "errors": [{"field": "region_code", "message": "须为 6 位行政区划代码"}]
}))]
pub struct Problem {
    /// 问题类型 — a URI naming the kind of problem (one per `code`).
    #[serde(rename = "type")]
    pub type_: String,
    /// 标题 — short summary, in the request's language (Chinese unless `Accept-Language` prefers English).
    pub title: String,
    /// HTTP 状态码 — the HTTP status.
    pub status: u16,
    /// 详情 — what happened in this request, in the request's language.
    pub detail: String,
    /// 错误代码 — stable code, the same in every language.
    pub code: ErrorCode,
    /// 请求编号 — the request's `X-Request-Id`.
    pub request_id: Option<String>,
    /// 字段错误 — for validation: every invalid field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldProblem>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with per-field errors; `code` is `validation_failed` or a more specific one (`invalid_credit_code`).
    #[error("validation failed")]
    Validation { code: ErrorCode, errors: Vec<FieldError> },
    /// 400 for a malformed request that is not about one field (bad JSON syntax).
    #[error("bad request: {detail:?}")]
    BadRequest { code: ErrorCode, detail: Msg },
    #[error("unauthorized: {0:?}")]
    Unauthorized(Msg),
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: Vec<String> },
    /// 409: a business rule refused the request; `code` says which.
    #[error("conflict {code:?}: {detail:?}")]
    Conflict { code: ErrorCode, detail: Msg },
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("precondition required")]
    PreconditionRequired,
    #[error("payload too large")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type")]
    UnsupportedMediaType { expected: &'static str },
    #[error("idempotency key reused")]
    IdempotencyKeyReused,
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::Internal(msg.into())
    }

    pub fn conflict(code: ErrorCode, detail: Msg) -> Self {
        Self::Conflict { code, detail }
    }

    pub fn invalid(field: impl Into<String>, message: Msg) -> Self {
        Self::Validation { code: ErrorCode::ValidationFailed, errors: vec![FieldError::new(field, message)] }
    }

    pub fn bad_request(detail: Msg) -> Self {
        Self::BadRequest { code: ErrorCode::BadRequest, detail }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation { code, .. } | Self::BadRequest { code, .. } | Self::Conflict { code, .. } => *code,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden => ErrorCode::Forbidden,
            Self::NotFound => ErrorCode::NotFound,
            Self::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Self::PreconditionFailed => ErrorCode::PreconditionFailed,
            Self::PreconditionRequired => ErrorCode::PreconditionRequired,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType { .. } => ErrorCode::UnsupportedMediaType,
            Self::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Unavailable => ErrorCode::ServiceUnavailable,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }

    fn detail(&self, lang: Lang) -> String {
        match self {
            Self::Validation { errors, .. } => match errors.as_slice() {
                [one] => {
                    let at = match (one.line, lang) {
                        (Some(n), Lang::Zh) => format!("第 {n} 行 "),
                        (Some(n), _) => format!("line {n}, "),
                        (None, _) => String::new(),
                    };
                    let sep = if lang == Lang::Zh { "：" } else { ": " };
                    format!("{at}{}{sep}{}", one.field, one.message.render(lang))
                }
                many => Msg::FieldsInvalid(many.len()).render(lang),
            },
            Self::BadRequest { detail, .. } | Self::Conflict { detail, .. } | Self::Unauthorized(detail) => {
                detail.render(lang)
            }
            Self::Forbidden => Msg::Forbidden.render(lang),
            Self::NotFound => Msg::NotFound.render(lang),
            Self::MethodNotAllowed { allow } => Msg::MethodNotAllowed(allow.clone()).render(lang),
            Self::PreconditionFailed => Msg::PreconditionFailed.render(lang),
            Self::PreconditionRequired => Msg::PreconditionRequired.render(lang),
            Self::PayloadTooLarge { limit } => Msg::PayloadTooLarge(*limit).render(lang),
            Self::UnsupportedMediaType { expected } => Msg::UnsupportedMediaType(expected).render(lang),
            Self::IdempotencyKeyReused => Msg::IdempotencyKeyReused.render(lang),
            Self::RateLimited { retry_after_secs } => Msg::RateLimited(*retry_after_secs).render(lang),
            Self::Unavailable => Msg::Unavailable.render(lang),
            Self::Internal(_) => Msg::Internal.render(lang),
        }
    }

    /// The problem in `lang` (request id filled in by the request-id middleware).
    pub fn to_problem(&self, lang: Lang) -> Problem {
        let code = self.code();
        Problem {
            type_: format!("https://shuiwu.example/problems/{}", code.as_str()),
            title: code.title(lang).into(),
            status: self.status_code().as_u16(),
            detail: self.detail(lang),
            code,
            request_id: None,
            errors: match self {
                Self::Validation { errors, .. } => Some(
                    errors
                        .iter()
                        .map(|e| FieldProblem { line: e.line, field: e.field.clone(), message: e.message.render(lang) })
                        .collect(),
                ),
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation { .. } | Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(msg) = self {
            tracing::error!(error = %msg, "internal error");
        }
        let mut res = HttpResponse::build(self.status_code());
        res.content_type(PROBLEM_JSON);
        match self {
            Self::Unauthorized(_) => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"shuiwu\""));
            }
            Self::MethodNotAllowed { allow } => {
                res.insert_header((header::ALLOW, allow.join(", ")));
            }
            Self::RateLimited { retry_after_secs } => {
                res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            Self::Unavailable => {
                res.insert_header((header::RETRY_AFTER, "5"));
            }
            _ => {}
        }
        // Chinese by default; the request-id middleware renders it again when the request prefers English.
        res.body(serde_json::to_vec(&self.to_problem(Lang::Zh)).unwrap_or_default())
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as K, Error as E};
        match e {
            E::NotFound => Self::NotFound,
            E::DatabaseError(K::ClosedConnection | K::UnableToSendCommand, _) | E::BrokenTransactionManager => {
                tracing::warn!(error = %e, "database connection lost");
                Self::Unavailable
            }
            E::DatabaseError(K::SerializationFailure, _) => {
                tracing::warn!(error = %e, "serialization failure or deadlock");
                Self::Unavailable
            }
            E::DatabaseError(_, ref info) if info.message().contains("deadlock detected") => {
                tracing::warn!(error = %e, "deadlock: the transaction was rolled back; the client may retry");
                Self::Unavailable
            }
            E::DatabaseError(_, ref info) if is_busy(info.message()) => {
                tracing::warn!(error = %e, "database busy");
                Self::Unavailable
            }
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

fn is_busy(message: &str) -> bool {
    message.contains("database is locked") || message.contains("database is busy")
}

impl From<diesel::ConnectionError> for ApiError {
    fn from(e: diesel::ConnectionError) -> Self {
        tracing::warn!(error = %e, "database connection failed");
        Self::Unavailable
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_with_both_titles() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{s}");
            assert_eq!(serde_json::to_value(code).unwrap(), s);
            assert!(!code.title_en().is_empty() && !code.title_zh().is_ascii(), "{s}");
        }
    }
}
