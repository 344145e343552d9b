//! Every message the service says to a person, in Chinese and in English: one catalogue. Errors carry a [`Msg`];
//! it is rendered in the request's language when the answer is written — Chinese unless the client prefers English
//! (`Accept-Language`). The stable `code` of a problem never changes with the language.

use chrono::NaiveDate;

/// The language of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    /// From an `Accept-Language` header: English when an `en` range is preferred over every `zh` range (by q-value,
    /// then order); Chinese otherwise, and when the header is absent or unreadable.
    pub fn negotiate(header: Option<&str>) -> Lang {
        let Some(header) = header else { return Lang::Zh };
        let mut best: Option<(f32, Lang)> = None;
        for item in header.split(',') {
            let mut parts = item.trim().split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = match tag.split('-').next() {
                Some("zh") => Lang::Zh,
                Some("en") => Lang::En,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::Zh, |(_, l)| l)
    }
}

/// A bilingual label of a closed value (a status, an action, a source): its code and its Chinese name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    pub code: &'static str,
    pub zh: &'static str,
}

/// A message. Field messages read after the field's name ("name: must not be empty" / "name：不能为空").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    // Fields: presence, text, numbers.
    Required,
    NotEmpty,
    AtMostChars(usize),
    AtMostBytes(usize),
    BytesBetween(usize, usize),
    AtLeastChars(usize),
    OneLine,
    NoControlChars,
    FieldNameControlChars,
    Between(i64, i64),
    VolumeRange { min: i64 },
    WholeNumber,
    Number,
    Text,
    Boolean,
    Object,
    List,
    NotNull,
    OutOfRange,
    WrongType(String),
    OneOf { allowed: Vec<String>, given: String },
    UnknownField,
    UnknownParameter,
    NotUtf8,
    Unreadable(String),
    // Formats.
    Date,
    DateRange,
    NotCalendarDate,
    MonthFormat,
    Instant,
    RegionCode,
    Phone,
    Code,
    Username,
    CreditCodeLength,
    CreditCodeCharacter { ch: char, position: usize },
    CreditCodeCheck { expected: char },
    IdempotencyKey,
    // Bodies.
    JsonObject,
    JsonTooShort,
    JsonMalformed(String),
    BodyUnreadable,
    Cursor,
    NotInFeed(String),
    // References.
    NoSuchWaterUser,
    NoSuchZone,
    NoSuchDepartment(String),
    // Accounts and sign-in.
    Roles(RolesRule),
    WrongCredentials,
    MetricsTokenRequired,
    WrongClient,
    RefreshInvalid,
    RefreshReused,
    TokenMissing,
    TokenInvalid,
    TokenRevoked,
    SessionEnded,
    AccountInactive,
    TokenBeforeChange,
    AuthenticationRequired,
    CurrentPasswordRequired,
    CurrentPasswordWrong,
    ClientCredentialsOnly,
    LastAdmin,
    // Dates of steps.
    InFuture,
    BeforePreviousStep { date: NaiveDate, previous: NaiveDate },
    // Permits.
    InvalidTransition { entity: Label, action: Label, status: Label },
    ReasonRequired { action: Label },
    AfterValidFrom,
    TermAtMost { years: u32 },
    RequiredToApprove,
    NewEndRequired,
    AfterCurrentEnd(NaiveDate),
    RenewalTermAtMost { years: u32 },
    RenewalTooLate { days: i64, valid_to: NaiveDate },
    NotEditable,
    CertificateUnavailable(Label),
    ZoneProhibited(String),
    ZoneRestricted(String),
    ZoneCapExceeded { zone: String, approved: i64, allowable: i64, extra: i64 },
    // Withdrawals.
    NotInForce(String),
    NoDailyMaximum,
    CapacityTooLarge,
    MaxCapacityIs(i64),
    VolumeRequiredUnlessMaxCapacity,
    ExceedsCapacity { volume: i64, month: String },
    OnlineMeterOnly,
    StaffReading(String),
    ConcurrentReport,
    // Fees.
    RateFormat,
    RateDecimals,
    RateTooHigh,
    RateOverlap { from: NaiveDate, to: Option<NaiveDate> },
    NotBeforeEffectiveFrom,
    FirstOfMonth,
    LastOfMonth,
    QuarterFormat,
    PeriodNotEnded(NaiveDate),
    NoticeUnavailable(Label),
    NoPendingRequest(Label),
    RequestPending(Label),
    NoticeBeforePeriodEnd { date: NaiveDate, end: NaiveDate },
    AlreadyDeferred,
    DeferralTooLate(NaiveDate),
    AfterDueDate(NaiveDate),
    DeferralTooLong { days: i64, latest: NaiveDate },
    PaymentWhileRequestPending(Label),
    OwnRequest(Label),
    ReassessmentDue { difference: i64 },
    Overpayment { amount: i64, payable: i64, on: NaiveDate },
    AmountRange,
    ReceiptNoTaken(String),
    // Planned water use.
    YearRange,
    TwelveMonths,
    MonthlySum { sum: i64, annual: i64 },
    PlanExists(i32),
    NoPlanForYear(i32),
    PlannedUserInactive,
    DuplicatePlannedUser,
    TierCount,
    NoChange,
    MonthsRequired,
    BelowElapsed { elapsed: i64 },
    MultiplierFormat,
    TiersContiguous,
    YearOrPeriod,
    FileUnreadable(String),
    TextEncoding,
    TooManyColumns(usize),
    TooManyRows(i64),
    ColumnMissing(String),
    ColumnUnknown(String),
    ColumnTwice(String),
    NoRows,
    RowRepeated(u64),
    RowDisagrees(u64),
    MoreErrors(usize),
    ChangedDuringImport,
    SettlementNotEnded(NaiveDate),
    SettledByOtherPeriod { year: i32, quarterly: bool },
    // Inspections and cases.
    NoSuchPermit,
    NotPermitOfTarget,
    NoSuchAccount(String),
    NotAnOfficer(String),
    AtMostItems(usize),
    RepeatedItem(String),
    InspectedInFuture,
    DueBeforeInspection(NaiveDate),
    AlreadyEscalated,
    CalendarMissing(i32),
    NotInYear(i32),
    NotAWeekendDay(NaiveDate),
    BothHolidayAndWorkday(NaiveDate),
    OfficersRequired(usize),
    HearingNotAvailable { proposed_fen: i64, threshold_fen: i64 },
    HearingRequestLate(NaiveDate),
    StatementWindowOpen(NaiveDate),
    FineExceedsProposed { fine_fen: i64, proposed_fen: i64 },
    LegalReviewRequired,
    LegalReviewPending,
    CaseNumberTaken,
    DecisionOverdue(NaiveDate),
    AlreadyPublished,
    FineOutstanding { fine_fen: i64, late_fee_fen: i64 },
    NoDecision,
    NotFiledYet,
    PartyEitherOr,
    IdNumber,
    FineAndTypeAgree,
    NoPenaltyFields,
    HttpUrl,
    StepsBeforeInspection(NaiveDate),
    NotBeforeFrom,
    WindowTooLong { years: u32 },
    OneFileOnly,
    // Records.
    Duplicate,
    DuplicateCreditCode,
    DuplicateZoneName,
    DuplicateDepartment,
    DuplicateUsername,
    Referenced,
    ReferencedBy(Vec<(String, i64)>),
    ReferenceGone,
    // The machinery.
    Forbidden,
    NotFound,
    MethodNotAllowed(Vec<String>),
    PreconditionFailed,
    PreconditionRequired,
    PayloadTooLarge(usize),
    UnsupportedMediaType(&'static str),
    IdempotencyKeyReused,
    IdempotencyInFlight,
    IdempotencyTakenOver,
    RateLimited(u64),
    Unavailable,
    Internal,
    Malformed,
    Unparsable,
    HeadersTooLarge,
    HeadTimeout,
    FieldsInvalid(usize),
}

/// Which role rule a set of roles breaks (docs/api.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolesRule {
    AtLeastOne,
    AdminAlone(&'static str),
    PlatformForServices,
    ServiceNotAdminOrLeader,
}

fn list(items: &[String]) -> String {
    items.join(", ")
}

impl Msg {
    pub fn render(&self, lang: Lang) -> String {
        match lang {
            Lang::Zh => self.zh(),
            Lang::En => self.en(),
        }
    }

    fn zh(&self) -> String {
        use Msg::*;
        match self {
            Required => "必须填写".into(),
            NotEmpty => "不能为空".into(),
            AtMostChars(n) => format!("不能超过 {n} 个字符"),
            AtMostBytes(n) => format!("不能超过 {n} 字节"),
            BytesBetween(a, b) => format!("须为 {a} 至 {b} 字节"),
            AtLeastChars(n) => format!("至少 {n} 个字符"),
            OneLine => "只能填写一行，不能含控制字符".into(),
            NoControlChars => "不能含控制字符".into(),
            FieldNameControlChars => "字段名不能含控制字符".into(),
            Between(a, b) => format!("须在 {a} 至 {b} 之间"),
            VolumeRange { min } => format!("须在 {min} 至 1000000000000（10¹²）立方米之间"),
            WholeNumber => "须为整数".into(),
            Number => "须为数字".into(),
            Text => "须为文本".into(),
            Boolean => "须为 true 或 false".into(),
            Object => "须为对象".into(),
            List => "须为列表".into(),
            NotNull => "不能为 null".into(),
            OutOfRange => "超出允许范围".into(),
            WrongType(e) => format!("类型不正确（应为 {e}）"),
            OneOf { allowed, given } => format!("须为以下之一：{}（收到 {given:?}）", list(allowed)),
            UnknownField => "不是本请求的字段".into(),
            UnknownParameter => "不是本接口的参数".into(),
            NotUtf8 => "百分号解码后不是有效的 UTF-8".into(),
            Unreadable(raw) => format!("格式不正确（{raw}）"),
            Date => "须为日期，格式 YYYY-MM-DD".into(),
            DateRange => "日期须在 1900-01-01 至 2199-12-31 之间".into(),
            NotCalendarDate => "不是有效的日历日期".into(),
            MonthFormat => "须为月份，格式 YYYY-MM".into(),
            Instant => "须为 RFC 3339 时间，如 2026-03-31T08:00:00Z".into(),
            RegionCode => "须为 6 位行政区划代码".into(),
            Phone => "须为电话号码".into(),
            Code => "只能包含 a-z、0-9 和 _".into(),
            Username => "须为 3 至 64 个字符，只能包含 a-z、0-9、“.”、“_”和“-”".into(),
            CreditCodeLength => "须为 18 位".into(),
            CreditCodeCharacter { ch, position } => {
                format!("第 {position} 位字符 {ch:?} 不允许（只能是 0-9 和除 I、O、S、V、Z 外的大写字母）")
            }
            CreditCodeCheck { expected } => format!("校验码不正确（应为 {expected}）"),
            IdempotencyKey => "须为 1 至 255 个可见 ASCII 字符".into(),
            JsonObject => "请求体须为 JSON 对象".into(),
            JsonTooShort => "JSON 不完整".into(),
            JsonMalformed(e) => format!("不是格式正确的 JSON（{e}）"),
            BodyUnreadable => "无法读取请求体".into(),
            Cursor => "不是本列表返回的游标".into(),
            NotInFeed(t) => format!("{t:?} 不是变更流中的实体类型"),
            NoSuchWaterUser => "取用水户不存在".into(),
            NoSuchZone => "分区不存在".into(),
            NoSuchDepartment(code) => format!("部门代码 {code:?} 不存在"),
            Roles(RolesRule::AtLeastOne) => "至少须有一个角色".into(),
            Roles(RolesRule::AdminAlone(r)) => format!("系统管理员不得兼任业务角色：不能同时授予 {r}"),
            Roles(RolesRule::PlatformForServices) => "platform 角色只能授予服务账号".into(),
            Roles(RolesRule::ServiceNotAdminOrLeader) => "服务账号不能是 admin 或 leader".into(),
            WrongCredentials => "用户名或密码不正确".into(),
            MetricsTokenRequired => "请以抓取令牌（SHUIWU_METRICS_TOKEN）作为 bearer 令牌访问指标".into(),
            WrongClient => "客户端不存在或密钥不正确".into(),
            RefreshInvalid => "刷新令牌无效、已使用或已过期".into(),
            RefreshReused => "刷新令牌已被使用过，本次登录会话已结束".into(),
            TokenMissing => "需要 Bearer 访问令牌".into(),
            TokenInvalid => "访问令牌无效或已过期".into(),
            TokenRevoked => "访问令牌已被吊销".into(),
            SessionEnded => "登录会话已结束".into(),
            AccountInactive => "账号已停用".into(),
            TokenBeforeChange => "令牌签发于账号密码或角色变更之前，请重新登录".into(),
            AuthenticationRequired => "需要登录".into(),
            CurrentPasswordRequired => "修改本人密码须提供当前密码".into(),
            CurrentPasswordWrong => "当前密码不正确".into(),
            ClientCredentialsOnly => "只能是 client_credentials".into(),
            LastAdmin => "这是最后一名在用的系统管理员：请先将其他账号设为管理员".into(),
            InFuture => "不能晚于今天".into(),
            BeforePreviousStep { date, previous } => format!("日期 {date} 早于上一环节的日期 {previous}"),
            InvalidTransition { entity, action, status } => {
                format!("{}当前为“{}”，不能“{}”", entity.zh, status.zh, action.zh)
            }
            ReasonRequired { action } => format!("“{}”须说明理由", action.zh),
            AfterValidFrom => "须晚于有效期起始日（valid_from）".into(),
            TermAtMost { years } => format!("取水许可有效期最长 {years} 年"),
            RequiredToApprove => "批准时必须填写".into(),
            NewEndRequired => "须填写新的有效期截止日".into(),
            AfterCurrentEnd(d) => format!("须晚于当前有效期截止日 {d}"),
            RenewalTermAtMost { years } => format!("延续后的有效期自延续之日起最长 {years} 年"),
            RenewalTooLate { days, valid_to } => format!("延续申请须在有效期届满（{valid_to}）{days} 日前提出"),
            NotEditable => "只有草稿状态的申请可以修改".into(),
            CertificateUnavailable(status) => format!("取水许可当前为“{}”，只有已批准且在有效期内的取水许可可以打印许可证", status.zh),
            ZoneProhibited(z) => format!("“{z}”为禁采区，不得批准取水"),
            ZoneRestricted(z) => format!("“{z}”为限采区，不得新增地下水取水"),
            ZoneCapExceeded { zone, approved, allowable, extra } => format!(
                "“{zone}”在该期限内已批准 {approved} 立方米/年，控制总量 {allowable} 立方米/年，再批准 {extra} 立方米/年将超出"
            ),
            NotInForce(m) => format!("取水许可在 {m} 未生效"),
            NoDailyMaximum => "取水许可未载明日最大取水量，不能按最大取水能力核定（max_capacity）".into(),
            CapacityTooLarge => "日最大取水量 × 天数超过最大允许水量（10¹² 立方米）".into(),
            MaxCapacityIs(v) => format!("按最大取水能力核定的水量为日最大取水量 × 天数 = {v}，请不填或填写该值"),
            VolumeRequiredUnlessMaxCapacity => "除按最大取水能力核定（max_capacity）外必须填写".into(),
            ExceedsCapacity { volume, month } => format!(
                "{volume} 立方米超过该取水许可在 {month} 的最大取水能力（日最大取水量 × 有效天数）；请核实读数，\
                 确认无误请同时提交 over_capacity_confirmed: true"
            ),
            OnlineMeterOnly => "省级平台只能报送在线计量（online_meter）数据".into(),
            StaffReading(m) => format!("{m} 的数据由工作人员录入，只能由工作人员更正"),
            ConcurrentReport => "同一月份的另一份报送刚刚完成，请重试".into(),
            RateFormat => "须为非负的十进制数，如 \"0.3000\"（以字符串表示）".into(),
            RateDecimals => "最多 4 位小数".into(),
            RateTooHigh => "不能超过 1000 元/立方米".into(),
            RateOverlap { from, to } => format!(
                "与同一水源类型、用途和分区类别的另一征收标准（{from} 至 {}）时间重叠：请先为其填写截止日期",
                to.map_or("长期".to_string(), |d| d.to_string())
            ),
            NotBeforeEffectiveFrom => "不能早于起始日期（effective_from）".into(),
            FirstOfMonth => "征收标准按月适用，须为某月 1 日".into(),
            LastOfMonth => "征收标准按月适用，须为某月最后一日".into(),
            QuarterFormat => "须为季度，格式 YYYY-Qn，如 2022-Q1".into(),
            PeriodNotEnded(end) => format!("该季度尚未结束（{end} 结束后才能核定）"),
            NoticeUnavailable(status) => format!("该记录为“{}”，没有缴款通知书", status.zh),
            NoPendingRequest(kind) => format!("没有待审批的{}", kind.zh),
            RequestPending(kind) => format!("{}尚待领导审批，请先作出决定", kind.zh),
            NoticeBeforePeriodEnd { date, end } => format!("送达日期 {date} 不能早于计费期间结束（{end}）之后"),
            AlreadyDeferred => "已批准过缓缴，不能再次申请".into(),
            DeferralTooLate(due) => format!("缓缴须在缴款期限（{due}）届满前申请"),
            AfterDueDate(due) => format!("须晚于缴款期限 {due}"),
            DeferralTooLong { days, latest } => format!("缓缴期限最长 {days} 日，最晚至 {latest}"),
            PaymentWhileRequestPending(kind) => format!("{}待审批，审批后再登记缴款", kind.zh),
            OwnRequest(kind) => format!("不能审批本人提出的{}，须由其他领导决定", kind.zh),
            ReassessmentDue { difference } => format!(
                "取水量或征收标准已变更（按现行数据相差 {} 元），请先重新运行本季度核定再送达",
                crate::domain::money::yuan(*difference)
            ),
            Overpayment { amount, payable, on } => format!(
                "缴款 {} 元超过 {on} 应缴的 {} 元（含当日滞纳金）",
                crate::domain::money::yuan(*amount),
                crate::domain::money::yuan(*payable)
            ),
            AmountRange => "须在 1 至 1000000000000 分之间".into(),
            ReceiptNoTaken(no) => format!("收据号 {no} 已登记过"),
            YearRange => "年度须在 2000 至 2100 之间".into(),
            TwelveMonths => "须为 12 个月的计划水量（1 月至 12 月）".into(),
            MonthlySum { sum, annual } => format!("12 个月的计划水量合计 {sum} 立方米，与年计划 {annual} 立方米不符"),
            PlanExists(y) => format!("{y} 年度的用水计划已下达，如需变更请调整计划"),
            NoPlanForYear(y) => format!("该计划用水户没有 {y} 年度的用水计划，不能登记该年度的用水量"),
            PlannedUserInactive => "该计划用水户已停用".into(),
            DuplicatePlannedUser => "该取用水户已登记为计划用水户".into(),
            TierCount => "须有 1 至 10 档".into(),
            NoChange => "计划没有任何变化".into(),
            MonthsRequired => "计划年度已过，调整年计划须同时给出 12 个月的计划水量".into(),
            BelowElapsed { elapsed } => format!("不能低于已过月份的计划水量合计 {elapsed} 立方米"),
            MultiplierFormat => "加价倍数须为大于 0、不超过 100 的数，至多 4 位小数，以字符串表示（如 \"1.5\"）".into(),
            TiersContiguous => "各档须从超计划 0% 起依次衔接（上一档的止点为下一档的起点），末档不设上限".into(),
            YearOrPeriod => "须给出 year（按年度结算）或 period（按季度结算，如 2026-Q1）之一".into(),
            FileUnreadable(why) => format!("无法读取文件（{why}）：请上传 CSV（UTF-8）或 Excel .xlsx 文件"),
            TextEncoding => "文字编码无法识别：请以 UTF-8（“CSV UTF-8”）或 GBK 保存".into(),
            TooManyColumns(n) => format!("一行至多 {n} 列"),
            TooManyRows(n) => format!("一个文件至多 {n} 行数据，请分批导入"),
            ColumnMissing(c) => format!("缺少列 {c}（可下载导入模板对照）"),
            ColumnUnknown(c) => format!("无法识别的列 {c:?}（可下载导入模板对照）"),
            ColumnTwice(c) => format!("列 {c} 出现了两次"),
            NoRows => "文件中没有数据行".into(),
            RowRepeated(line) => format!("与第 {line} 行重复（同一统一社会信用代码、同一年度只能有一行）"),
            RowDisagrees(line) => format!("与第 {line} 行同一单位的名称、类别、水源或基本水价不一致"),
            MoreErrors(n) => format!("另有 {n} 处错误未列出，请先更正以上各行"),
            ChangedDuringImport => "导入期间该记录被他人修改，请重新导入".into(),
            SettlementNotEnded(end) => format!("结算期间尚未结束（{end} 之后才能结算）"),
            SettledByOtherPeriod { year, quarterly: true } => {
                format!("{year} 年度已按季度结算超计划加价费，不能再按年度结算（否则重复计收）")
            }
            SettledByOtherPeriod { year, quarterly: false } => {
                format!("{year} 年度已按年度结算超计划加价费，不能再按季度结算（否则重复计收）")
            }
            NoSuchPermit => "取水许可不存在".into(),
            NotPermitOfTarget => "该取水许可不属于被检查的取用水户".into(),
            NoSuchAccount(id) => format!("账号 {id} 不存在"),
            NotAnOfficer(id) => format!("账号 {id} 不是在职的执法人员（须为启用状态并具有执法或巡查角色）"),
            AtMostItems(n) => format!("最多 {n} 项"),
            RepeatedItem(v) => format!("{v} 重复"),
            InspectedInFuture => "巡查时间不能晚于现在".into(),
            DueBeforeInspection(d) => format!("整改期限不能早于巡查日期（{d}）"),
            AlreadyEscalated => "该巡查已移送立案，不能重复移送".into(),
            CalendarMissing(y) => format!("缺少{y}年的工作日历，无法按工作日计算期限，请管理员先录入该年度节假日安排"),
            NotInYear(y) => format!("须为{y}年内的日期"),
            NotAWeekendDay(d) => format!("{d}不是周六或周日，不是调休上班日"),
            BothHolidayAndWorkday(d) => format!("{d}不能既是节假日又是调休上班日"),
            OfficersRequired(n) => format!("调查取证须有{n}名以上执法人员（officer_ids）"),
            HearingNotAvailable { proposed_fen, threshold_fen } => format!(
                "拟处罚款{}元未达到听证标准（{}元）",
                crate::domain::money::yuan(*proposed_fen),
                crate::domain::money::yuan(*threshold_fen)
            ),
            HearingRequestLate(d) => format!("听证申请期限已于{d}届满"),
            StatementWindowOpen(d) => format!("陈述申辩期限至{d}届满，届满后方可作出处罚决定（当事人放弃陈述申辩的除外）"),
            FineExceedsProposed { fine_fen, proposed_fen } => format!(
                "罚款{}元超过告知的拟处罚款{}元，不得因当事人陈述申辩而加重处罚",
                crate::domain::money::yuan(*fine_fen),
                crate::domain::money::yuan(*proposed_fen)
            ),
            LegalReviewRequired => "重大行政处罚决定须经法制审核通过后方可作出".into(),
            LegalReviewPending => "法制审核尚未完成，须待审核通过或退回后再作决定".into(),
            CaseNumberTaken => "案件的来源巡查、案号或决定书文号已被另一案件占用（编号规则是否曾改回旧格式？）".into(),
            DecisionOverdue(d) => format!("作出决定的期限已于{d}届满，须填写延期理由（extension_reason）"),
            AlreadyPublished => "该处罚决定已公示".into(),
            FineOutstanding { fine_fen, late_fee_fen } => format!(
                "尚有罚款{}元、加处罚款{}元未缴清；未缴清结案须说明理由（如已申请人民法院强制执行）",
                crate::domain::money::yuan(*fine_fen),
                crate::domain::money::yuan(*late_fee_fen)
            ),
            NoDecision => "尚未作出行政处罚决定".into(),
            NotFiledYet => "案件尚未立案".into(),
            PartyEitherOr => "当事人为取用水户时只填 water_user_id，否则填写 party_name、party_id_number、party_kind".into(),
            IdNumber => "不是有效的公民身份号码（18位，校验码不符）".into(),
            FineAndTypeAgree => "有罚款时处罚种类须含罚款（fine），无罚款时不得含罚款".into(),
            NoPenaltyFields => "不予处罚或移送时不填罚款、处罚种类和处罚内容".into(),
            HttpUrl => "须为 http 或 https 网址".into(),
            StepsBeforeInspection(d) => format!("已有整改完成或移送立案的日期早于新的巡查日期（{d}）"),
            NotBeforeFrom => "不能早于起始日期（from）".into(),
            WindowTooLong { years } => format!("统计期间最长 {years} 年"),
            OneFileOnly => "每次只能上传一个文件".into(),
            Duplicate => "已存在相同的记录".into(),
            DuplicateCreditCode => "该统一社会信用代码已登记".into(),
            DuplicateZoneName => "已有同名分区".into(),
            DuplicateDepartment => "已有该代码的部门".into(),
            DuplicateUsername => "用户名已被使用".into(),
            Referenced => "记录仍被引用".into(),
            ReferenceGone => "所引用的记录刚被删除，请刷新后重试".into(),
            ReferencedBy(refs) => format!(
                "仍被以下记录引用：{}",
                refs.iter().map(|(what, n)| format!("{n} 条{}", zh_table(what))).collect::<Vec<_>>().join("、")
            ),
            Forbidden => "当前角色无权执行此操作".into(),
            NotFound => "资源不存在".into(),
            MethodNotAllowed(allow) => format!("该资源支持：{}", list(allow)),
            PreconditionFailed => "记录已被他人修改（If-Match 与当前版本不符），请刷新后重试".into(),
            PreconditionRequired => "须在 If-Match 请求头中提供记录的 ETag".into(),
            PayloadTooLarge(n) => format!("请求体超过 {n} 字节"),
            UnsupportedMediaType(t) => format!("请求体须为 {t}"),
            IdempotencyKeyReused => "该幂等键（Idempotency-Key）已用于另一个请求".into(),
            IdempotencyInFlight => "相同幂等键的请求仍在处理中，请稍后重试".into(),
            IdempotencyTakenOver => "相同幂等键已由另一个请求接管，请重试以取得其结果".into(),
            RateLimited(s) => format!("尝试次数过多，请 {s} 秒后再试"),
            Unavailable => "数据库暂不可用，请稍后重试".into(),
            Internal => "发生意外错误".into(),
            Malformed => "请求格式不正确".into(),
            Unparsable => "无法解析请求：路径和查询参数须按 UTF-8 百分号编码，请求头须符合 HTTP 规范".into(),
            HeadersTooLarge => "请求头过大".into(),
            HeadTimeout => "请求头未能及时到达".into(),
            FieldsInvalid(n) => format!("有 {n} 项填写有误"),
        }
    }

    fn en(&self) -> String {
        use Msg::*;
        match self {
            Required => "is required".into(),
            NotEmpty => "must not be empty".into(),
            AtMostChars(n) => format!("must be at most {n} characters"),
            AtMostBytes(n) => format!("must be at most {n} bytes"),
            BytesBetween(a, b) => format!("must be {a} to {b} bytes"),
            AtLeastChars(n) => format!("must be at least {n} characters"),
            OneLine => "must be one line without control characters".into(),
            NoControlChars => "must not contain control characters".into(),
            FieldNameControlChars => "field names must not contain control characters".into(),
            Between(a, b) => format!("must be between {a} and {b}"),
            VolumeRange { min } => format!("must be between {min} and 1000000000000 (10¹²) m³"),
            WholeNumber => "must be a whole number".into(),
            Number => "must be a number".into(),
            Text => "must be text".into(),
            Boolean => "must be true or false".into(),
            Object => "must be an object".into(),
            List => "must be a list".into(),
            NotNull => "must not be null".into(),
            OutOfRange => "is out of range".into(),
            WrongType(e) => format!("has the wrong type (expected {e})"),
            OneOf { allowed, given } => format!("must be one of: {} (got {given:?})", list(allowed)),
            UnknownField => "is not a field of this request".into(),
            UnknownParameter => "is not a parameter of this operation".into(),
            NotUtf8 => "is not valid UTF-8 once percent-decoded".into(),
            Unreadable(raw) => raw.clone(),
            Date => "must be a date, YYYY-MM-DD".into(),
            DateRange => "must be a date between 1900-01-01 and 2199-12-31".into(),
            NotCalendarDate => "is not a calendar date".into(),
            MonthFormat => "must be a month, YYYY-MM".into(),
            Instant => "must be an instant, RFC 3339 (e.g. 2026-03-31T08:00:00Z)".into(),
            RegionCode => "must be a 6-digit administrative division code".into(),
            Phone => "must be a phone number".into(),
            Code => "may contain only a-z, 0-9 and _".into(),
            Username => "3-64 characters of a-z, 0-9, '.', '_' and '-'".into(),
            CreditCodeLength => "must be 18 characters".into(),
            CreditCodeCharacter { ch, position } => {
                format!("character {ch:?} at position {position} is not allowed (0-9 and A-Z without I, O, S, V, Z)")
            }
            CreditCodeCheck { expected } => format!("check character is wrong (expected {expected})"),
            IdempotencyKey => "must be 1 to 255 visible ASCII characters".into(),
            JsonObject => "must be a JSON object".into(),
            JsonTooShort => "the JSON ends too early".into(),
            JsonMalformed(e) => format!("is not well-formed JSON ({e})"),
            BodyUnreadable => "the request body could not be read".into(),
            Cursor => "not a cursor returned by this list".into(),
            NotInFeed(t) => format!("{t:?} is not an entity type of the feed"),
            NoSuchWaterUser => "no such water user".into(),
            NoSuchZone => "no such zone".into(),
            NoSuchDepartment(code) => format!("no department with code {code:?}"),
            Roles(RolesRule::AtLeastOne) => "at least one role is required".into(),
            Roles(RolesRule::AdminAlone(r)) => format!("admin holds no business role: {r} cannot be given beside it"),
            Roles(RolesRule::PlatformForServices) => "platform is for service accounts only".into(),
            Roles(RolesRule::ServiceNotAdminOrLeader) => "a service account can be neither admin nor leader".into(),
            WrongCredentials => "wrong username or password".into(),
            MetricsTokenRequired => "present the scrape token (SHUIWU_METRICS_TOKEN) as a bearer token".into(),
            WrongClient => "unknown client or wrong secret".into(),
            RefreshInvalid => "the refresh token is invalid, used or expired".into(),
            RefreshReused => "the refresh token was used before; the session has ended".into(),
            TokenMissing => "a bearer token is required".into(),
            TokenInvalid => "the token is invalid or expired".into(),
            TokenRevoked => "the token has been revoked".into(),
            SessionEnded => "the session has ended".into(),
            AccountInactive => "the account is deactivated".into(),
            TokenBeforeChange => "the token was issued before the account's password or roles changed".into(),
            AuthenticationRequired => "authentication required".into(),
            CurrentPasswordRequired => "is required to change your own password".into(),
            CurrentPasswordWrong => "is wrong".into(),
            ClientCredentialsOnly => "must be client_credentials".into(),
            LastAdmin => "this is the last active admin: make another account admin first".into(),
            InFuture => "must not lie in the future".into(),
            BeforePreviousStep { date, previous } => {
                format!("the effective date {date} is before {previous}, the date of the previous step")
            }
            InvalidTransition { entity, action, status } => {
                format!("cannot {} a {} that is {}", action.code, entity.code, status.code)
            }
            ReasonRequired { action } => format!("a reason is required to {}", action.code),
            AfterValidFrom => "must be after valid_from".into(),
            TermAtMost { years } => format!("a permit's term is at most {years} years"),
            RequiredToApprove => "is required to approve".into(),
            NewEndRequired => "the new end of the term is required".into(),
            AfterCurrentEnd(d) => format!("must be after the current end of term {d}"),
            RenewalTermAtMost { years } => format!("the new term may run at most {years} years from the renewal"),
            RenewalTooLate { days, valid_to } => {
                format!("renewal must be applied for at least {days} days before {valid_to}")
            }
            NotEditable => "only a draft application can be edited".into(),
            CertificateUnavailable(status) => {
                format!("the permit is {}: only an approved permit in force has a certificate", status.code)
            }
            ZoneProhibited(z) => format!("zone {z} is a prohibited zone (禁采区)"),
            ZoneRestricted(z) => format!("zone {z} is restricted (限采区): no new groundwater permits"),
            ZoneCapExceeded { zone, approved, allowable, extra } => format!(
                "zone {zone} has {approved} of {allowable} m³/year approved over this term; {extra} more would exceed it"
            ),
            NotInForce(m) => format!("the permit was not in force in {m}"),
            NoDailyMaximum => "the permit states no daily maximum to charge by (max_capacity)".into(),
            CapacityTooLarge => "daily maximum × days exceeds the largest volume (10¹² m³)".into(),
            MaxCapacityIs(v) => format!("max_capacity is the daily maximum × days = {v}; omit volume_m3 or send that"),
            VolumeRequiredUnlessMaxCapacity => "is required unless method is max_capacity".into(),
            ExceedsCapacity { volume, month } => format!(
                "{volume} m³ is more than the permit can draw in {month} (daily maximum × days in force); check the \
                 reading, or send over_capacity_confirmed: true to record it anyway"
            ),
            OnlineMeterOnly => "the provincial platform reports online_meter readings only".into(),
            StaffReading(m) => format!("the reading for {m} was entered by staff; only staff may correct it"),
            ConcurrentReport => "another report for this month was recorded at the same time; retry".into(),
            RateFormat => "must be a non-negative decimal string, e.g. \"0.3000\"".into(),
            RateDecimals => "at most 4 decimals".into(),
            RateTooHigh => "must be at most 1000 yuan per m³".into(),
            RateOverlap { from, to } => format!(
                "overlaps the rate of the same source type, purpose and zone class in force {from} to {}: close that one first",
                to.map_or("open-ended".to_string(), |d| d.to_string())
            ),
            NotBeforeEffectiveFrom => "must not be before effective_from".into(),
            FirstOfMonth => "rates apply by month: must be the first day of a month".into(),
            LastOfMonth => "rates apply by month: must be the last day of a month".into(),
            QuarterFormat => "must be a quarter, YYYY-Qn (e.g. 2022-Q1)".into(),
            PeriodNotEnded(end) => format!("the quarter has not ended (it can be assessed after {end})"),
            NoticeUnavailable(status) => format!("a record that is {} has no payment notice", status.code),
            NoPendingRequest(kind) => format!("there is no pending {} request", kind.code),
            RequestPending(kind) => format!("a {} request awaits a leader's decision; decide it first", kind.code),
            NoticeBeforePeriodEnd { date, end } => format!("the notice cannot be served on {date}, before the period ends ({end})"),
            AlreadyDeferred => "a deferral was granted already; it cannot be requested again".into(),
            DeferralTooLate(due) => format!("a deferral must be requested by the due date ({due})"),
            AfterDueDate(due) => format!("must be after the due date {due}"),
            DeferralTooLong { days, latest } => format!("a deferral runs at most {days} days, until {latest} at the latest"),
            PaymentWhileRequestPending(kind) => {
                format!("a {} request is pending; record payments after the decision", kind.code)
            }
            OwnRequest(kind) => format!("you asked for this {}; another leader must decide it", kind.code),
            ReassessmentDue { difference } => format!(
                "the withdrawals or rates changed since the assessment (difference {} yuan); run the quarter again before serving it",
                crate::domain::money::yuan(*difference)
            ),
            Overpayment { amount, payable, on } => format!(
                "a payment of {} yuan exceeds the {} yuan due on {on} (late fee included)",
                crate::domain::money::yuan(*amount),
                crate::domain::money::yuan(*payable)
            ),
            AmountRange => "must be between 1 and 1000000000000 fen".into(),
            ReceiptNoTaken(no) => format!("receipt number {no} is already recorded"),
            YearRange => "the year must be between 2000 and 2100".into(),
            TwelveMonths => "must hold the 12 monthly quantities (January to December)".into(),
            MonthlySum { sum, annual } => {
                format!("the 12 monthly quantities add up to {sum} m³, not the annual {annual} m³")
            }
            PlanExists(y) => format!("the plan for {y} has been issued; adjust it instead"),
            NoPlanForYear(y) => format!("this planned user has no plan for {y}: usage in {y} cannot be recorded"),
            PlannedUserInactive => "this planned user is inactive".into(),
            DuplicatePlannedUser => "this water user is already a planned user".into(),
            TierCount => "1 to 10 tiers".into(),
            NoChange => "the plan would not change".into(),
            MonthsRequired => "the plan year is over: give the 12 monthly quantities with a new annual figure".into(),
            BelowElapsed { elapsed } => format!("may not be below the {elapsed} m³ planned for the months already passed"),
            MultiplierFormat => "a multiplier is a decimal string above 0 and at most 100, with at most 4 decimals (e.g. \"1.5\")".into(),
            TiersContiguous => {
                "tiers must run from 0 % over, each starting where the one before ends, the last open-ended".into()
            }
            YearOrPeriod => "give either year (settle a year) or period (settle a quarter, e.g. 2026-Q1)".into(),
            FileUnreadable(why) => format!("the file cannot be read ({why}): upload CSV (UTF-8) or an Excel .xlsx file"),
            TextEncoding => "unrecognised text encoding: save as UTF-8 (\"CSV UTF-8\") or GBK".into(),
            TooManyColumns(n) => format!("at most {n} columns a row"),
            TooManyRows(n) => format!("at most {n} data rows a file: import in parts"),
            ColumnMissing(c) => format!("column {c} is missing (compare with the import template)"),
            ColumnUnknown(c) => format!("unknown column {c:?} (compare with the import template)"),
            ColumnTwice(c) => format!("column {c} appears twice"),
            NoRows => "the file has no data rows".into(),
            RowRepeated(line) => format!("repeats line {line} (one line per credit code and year)"),
            RowDisagrees(line) => {
                format!("the name, category, supply or base price differs from line {line} for the same organisation")
            }
            MoreErrors(n) => format!("{n} more errors not listed: correct the lines above first"),
            ChangedDuringImport => "a record was changed by someone else during the import: import again".into(),
            SettlementNotEnded(end) => format!("the period has not ended (it can be settled after {end})"),
            SettledByOtherPeriod { year, quarterly: true } => {
                format!("{year} has been settled by quarter: settling the year as well would charge twice")
            }
            SettledByOtherPeriod { year, quarterly: false } => {
                format!("{year} has been settled as a year: settling a quarter as well would charge twice")
            }
            NoSuchPermit => "no such permit".into(),
            NotPermitOfTarget => "the permit is not one of the inspected water user's".into(),
            NoSuchAccount(id) => format!("no account {id}"),
            NotAnOfficer(id) => format!("account {id} is not an active officer (an enabled account with the enforcement or inspector role)"),
            AtMostItems(n) => format!("at most {n} items"),
            RepeatedItem(v) => format!("{v} appears twice"),
            InspectedInFuture => "the inspection cannot lie in the future".into(),
            DueBeforeInspection(d) => format!("the deadline cannot be before the inspection ({d})"),
            AlreadyEscalated => "the inspection has already been escalated into a case".into(),
            CalendarMissing(y) => format!("there is no working-day calendar for {y}: deadlines in working days cannot be computed until an administrator enters that year's holidays"),
            NotInYear(y) => format!("must be a day of {y}"),
            NotAWeekendDay(d) => format!("{d} is not a Saturday or Sunday, so it cannot be a working weekend day"),
            BothHolidayAndWorkday(d) => format!("{d} cannot be both a holiday and a working day"),
            OfficersRequired(n) => format!("an investigation needs at least {n} officers (officer_ids)"),
            HearingNotAvailable { proposed_fen, threshold_fen } => format!(
                "the proposed fine of {} yuan is below the hearing threshold of {} yuan",
                crate::domain::money::yuan(*proposed_fen),
                crate::domain::money::yuan(*threshold_fen)
            ),
            HearingRequestLate(d) => format!("the period to request a hearing ended on {d}"),
            StatementWindowOpen(d) => format!("the statement period ends on {d}: the decision comes after it unless the party waived it"),
            FineExceedsProposed { fine_fen, proposed_fen } => format!(
                "the fine of {} yuan exceeds the proposed fine of {} yuan",
                crate::domain::money::yuan(*fine_fen),
                crate::domain::money::yuan(*proposed_fen)
            ),
            LegalReviewRequired => "a major penalty decision needs an approved legal review first".into(),
            LegalReviewPending => "the legal review is still pending: it is approved or returned before a decision".into(),
            CaseNumberTaken => "another case already has this source inspection, case number or decision number (was a numbering pattern changed back?)".into(),
            DecisionOverdue(d) => format!("the decision was due by {d}: give an extension_reason"),
            AlreadyPublished => "the decision has already been published".into(),
            FineOutstanding { fine_fen, late_fee_fen } => format!(
                "{} yuan of fine and {} yuan of late fee are unpaid; closing anyway needs a reason (e.g. court enforcement applied for)",
                crate::domain::money::yuan(*fine_fen),
                crate::domain::money::yuan(*late_fee_fen)
            ),
            NoDecision => "no penalty decision has been made".into(),
            NotFiledYet => "the case has not been filed yet".into(),
            PartyEitherOr => "give either water_user_id (a water user of the registry) or party_name, party_id_number and party_kind".into(),
            IdNumber => "not a valid resident identity number (18 characters, check character)".into(),
            FineAndTypeAgree => "penalty_types includes fine exactly when there is a fine".into(),
            NoPenaltyFields => "no fine, penalty types or penalty content without a penalty".into(),
            HttpUrl => "must be an http or https address".into(),
            StepsBeforeInspection(d) => format!("a finding was rectified, or the case opened, before the new inspection day ({d})"),
            NotBeforeFrom => "must not be before from".into(),
            WindowTooLong { years } => format!("the window may span at most {years} years"),
            OneFileOnly => "one file per upload".into(),
            Duplicate => "a record with these values already exists".into(),
            DuplicateCreditCode => "a water user with this credit code is already registered".into(),
            DuplicateZoneName => "a zone with this name exists".into(),
            DuplicateDepartment => "a department with this code exists".into(),
            DuplicateUsername => "the username is taken".into(),
            Referenced => "the record is still referenced".into(),
            ReferenceGone => "a record it refers to was removed meanwhile; reload and retry".into(),
            ReferencedBy(refs) => format!(
                "still referenced by {}",
                refs.iter().map(|(what, n)| format!("{n} {what}")).collect::<Vec<_>>().join(", ")
            ),
            Forbidden => "your roles do not allow this operation".into(),
            NotFound => "no such resource".into(),
            MethodNotAllowed(allow) => format!("this resource supports: {}", list(allow)),
            PreconditionFailed => "If-Match does not match the current version; reload and retry".into(),
            PreconditionRequired => "this request needs an If-Match header with the resource's ETag".into(),
            PayloadTooLarge(n) => format!("request body exceeds {n} bytes"),
            UnsupportedMediaType(t) => format!("the request body must be {t}"),
            IdempotencyKeyReused => "this Idempotency-Key was already used with a different request".into(),
            IdempotencyInFlight => "a request with this Idempotency-Key is still being processed; retry later".into(),
            IdempotencyTakenOver => {
                "another request with this Idempotency-Key took it over; retry to get its outcome".into()
            }
            RateLimited(s) => format!("too many attempts; retry after {s} s"),
            Unavailable => "the database is not reachable; retry later".into(),
            Internal => "an unexpected error occurred".into(),
            Malformed => "the request is malformed".into(),
            Unparsable => {
                "the request could not be parsed: percent-encode the path and query (UTF-8), and send valid HTTP headers"
                    .into()
            }
            HeadersTooLarge => "the request's headers are too large".into(),
            HeadTimeout => "the request's headers did not arrive in time".into(),
            FieldsInvalid(n) => format!("{n} fields are invalid"),
        }
    }
}

/// Chinese names of the tables that may refer to a record (for "still referenced by …").
fn zh_table(what: &str) -> &str {
    match what {
        "permits" => "取水许可",
        "withdrawals" => "取水量记录",
        "planned users" => "计划用水户",
        "fee assessments" => "水资源费核定",
        "inspections" => "巡查记录",
        "cases" => "行政处罚案件",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_negotiation() {
        assert_eq!(Lang::negotiate(None), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("en")), Lang::En);
        assert_eq!(Lang::negotiate(Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(Lang::negotiate(Some("zh-CN,zh;q=0.9,en;q=0.8")), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("en;q=0.5,zh;q=0.8")), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("fr")), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("de, en;q=0.3")), Lang::En);
        assert_eq!(Lang::negotiate(Some("en;q=0")), Lang::Zh);
    }

    #[test]
    fn both_languages_say_something() {
        let samples = [
            Msg::Required,
            Msg::ZoneCapExceeded { zone: "甲".into(), approved: 1, allowable: 2, extra: 3 },
            Msg::InvalidTransition {
                entity: Label { code: "permit", zh: "取水许可" },
                action: Label { code: "approve", zh: "批准" },
                status: Label { code: "draft", zh: "草稿" },
            },
            Msg::ReferencedBy(vec![("permits".into(), 2)]),
        ];
        for m in samples {
            assert!(!m.render(Lang::Zh).is_ascii(), "{m:?}");
            assert!(m.render(Lang::En).is_ascii() || matches!(m, Msg::ZoneCapExceeded { .. }), "{m:?}");
        }
    }
}
