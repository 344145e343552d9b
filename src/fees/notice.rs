//! 水资源费缴款通知书 — the payment notice a payer is handed (TL §§32–34, 54; SF §70), as an A4 page in Chinese:
//! bureau, payer and credit code, permit number, period, the month-by-month calculation, the amount in figures and
//! in capitals (大写), service and due dates, and the late-fee rule.

use askama::Template;
use rust_decimal::Decimal;

use super::{AssessmentRow, FeeConfig, Kind};
use crate::config::Settings;
use crate::db::DbConn;
use crate::documents::{date_zh, STYLE};
use crate::domain::dates::{Month, Quarter};
use crate::domain::money::{capitals, yuan};
use crate::error::{ApiError, ApiResult};

/// One row of the calculation table.
struct Row {
    month: String,
    volume: String,
    method: &'static str,
    rate: String,
    amount: String,
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>{{ title }} {{ notice_no }}</title>
<style>{{ style|safe }}
.lead { text-indent: 2em; margin: 2mm 0 4mm; }
.addressee { margin: 4mm 0 0; }
table + table { margin-top: 4mm; }
table.calc { table-layout: fixed; }
table.calc th { width: auto; white-space: normal; }
table.calc th, table.calc td { padding: 2mm 2.5mm; }
table.calc td:first-child, .nowrap { white-space: nowrap; }
td.num { text-align: right; font-family: "Noto Sans Mono CJK SC", "DejaVu Sans Mono", monospace; white-space: nowrap; }
tr.total td { font-weight: bold; }
.amount { font-size: 13pt; }
.amount b { letter-spacing: 0.08em; }
.small { font-size: 10pt; color: #333; }
</style>
</head>
<body>
<h1 style="letter-spacing: 0.2em">{{ title }}</h1>
<p class="number">编号：{{ notice_no }}</p>
<p class="addressee">{{ payer_name }}：</p>
<p class="lead">{{ lead }}</p>
<table>
<tr><th>缴费单位</th><td colspan="3">{{ payer_name }}</td></tr>
{% if let Some(no) = permit_no %}<tr><th>统一社会信用代码</th><td>{{ payer_credit_code }}</td><th>取水许可证号</th><td class="nowrap">{{ no }}</td></tr>
{% else %}<tr><th>统一社会信用代码</th><td colspan="3">{{ payer_credit_code }}</td></tr>
{% endif %}<tr><th>地址</th><td colspan="3">{{ payer_address }}</td></tr>
</table>
{% if let Some(s) = surcharge %}<table class="calc">
<tr><th>计划用水量<br>（立方米）</th><th>实际用水量<br>（立方米）</th><th>超计划水量<br>（立方米）</th><th>基本水价<br>（元/立方米）</th></tr>
<tr><td class="num">{{ s.planned }}</td><td class="num">{{ s.used }}</td><td class="num">{{ s.excess }}</td><td class="num">{{ s.price }}</td></tr>
</table>
<table class="calc">
<tr><th>超计划幅度</th><th>水量（立方米）</th><th>加价倍数</th><th>金额（元）</th></tr>
{% for b in s.bands %}<tr><td>{{ b.range }}</td><td class="num">{{ b.volume }}</td><td class="num">{{ b.multiplier }}</td><td class="num">{{ b.amount }}</td></tr>
{% endfor %}<tr class="total"><td>合计</td><td class="num">{{ s.excess }}</td><td></td><td class="num">{{ amount_figures }}</td></tr>
</table>
<p class="small">超计划水量按超出计划的幅度分段累进计算：各段水量 × 基本水价 × 加价倍数，合计金额四舍五入至分。{% if !s.missing.is_empty() %}{{ s.missing }}未报用水量，按零计。{% endif %}</p>
{% else %}<table class="calc">
<tr><th>月份</th><th>取水量（立方米）</th><th>水量核定方式</th><th>征收标准（元/立方米）</th><th>金额（元）</th></tr>
{% for r in rows %}<tr><td>{{ r.month }}</td><td class="num">{{ r.volume }}</td><td>{{ r.method }}</td><td class="num">{{ r.rate }}</td><td class="num">{{ r.amount }}</td></tr>
{% endfor %}<tr class="total"><td>合计</td><td class="num">{{ volume_total }}</td><td></td><td></td><td class="num">{{ amount_figures }}</td></tr>
</table>
{% if exact_lines %}<p class="small">各月金额按取水量 × 征收标准精确计算，合计金额四舍五入至分。</p>{% endif %}
{% endif %}
<table>
<tr><th>应缴金额</th><td class="amount">人民币（大写）<b>{{ amount_capitals }}</b>　（¥{{ amount_figures }}）</td></tr>
<tr><th>送达日期</th><td>{{ served_on }}</td></tr>
<tr><th>缴款期限</th><td>{{ due }}</td></tr>
{% if let Some(d) = deferred %}<tr><th>缓缴</th><td>经批准缓缴至 {{ d }}，缓缴期间不加收滞纳金。</td></tr>{% endif %}
</table>
<div class="notes">说明：
<ol>
<li>请于缴款期限内缴纳。逾期不缴纳的，自滞纳之日起，按日加收滞纳部分{{ late_rate }}的滞纳金{{ late_basis }}。</li>
<li>确有困难的，可在缴款期限届满前向本机关申请缓缴，缓缴期限最长不超过 90 日{{ deferral_basis }}。</li>
<li>对本通知不服的，可以依法申请行政复议或者提起行政诉讼。</li>
</ol>
</div>
<div class="issuer">
<div>{{ bureau }}（盖章）</div>
<div>{{ issued_on }}</div>
</div>
</body>
</html>
"#
)]
struct Notice<'a> {
    style: &'a str,
    title: &'static str,
    lead: String,
    bureau: &'a str,
    notice_no: String,
    payer_name: String,
    payer_credit_code: String,
    payer_address: String,
    permit_no: Option<String>,
    surcharge: Option<SurchargeTable>,
    rows: Vec<Row>,
    volume_total: i64,
    exact_lines: bool,
    amount_figures: String,
    amount_capitals: String,
    served_on: String,
    due: String,
    deferred: Option<String>,
    late_rate: String,
    late_basis: &'static str,
    deferral_basis: &'static str,
    issued_on: String,
}

/// An over-plan surcharge's calculation as the notice prints it.
struct SurchargeTable {
    planned: i64,
    used: i64,
    excess: i64,
    price: String,
    bands: Vec<BandRow>,
    /// The months without recorded usage, e.g. `2026年3月、2026年4月`, or empty.
    missing: String,
}

struct BandRow {
    range: String,
    volume: i64,
    multiplier: String,
    amount: String,
}

/// A band's range as people say it: `20% 以内（含）`, `20%–40%（含）`, `40% 以上`.
fn band_range(from: u32, to: Option<u32>) -> String {
    match (from, to) {
        (0, Some(to)) => format!("{to}% 以内（含）"),
        (from, Some(to)) => format!("{from}%–{to}%（含）"),
        (from, None) => format!("{from}% 以上"),
    }
}

/// `2026` → `2026年度`, `2026-Q1` → `2026年第一季度`.
fn period_zh(period: &str) -> String {
    match Quarter::parse(period) {
        Some(q) => q.zh(),
        None => format!("{period}年度"),
    }
}

fn surcharge_table(basis: &super::surcharge::SurchargeBasis) -> SurchargeTable {
    SurchargeTable {
        planned: basis.planned_m3,
        used: basis.used_m3,
        excess: basis.excess_m3,
        price: basis.base_price_yuan_per_m3.clone(),
        bands: basis
            .bands
            .iter()
            .map(|b| BandRow {
                range: band_range(b.over_pct_from, b.over_pct_to),
                volume: b.volume_m3,
                multiplier: b.multiplier.clone(),
                amount: exact_yuan(b.amount_yuan.parse().unwrap_or_default()),
            })
            .collect(),
        missing: basis
            .months
            .iter()
            .filter(|m| m.used_m3.is_none())
            .map(|m| month_zh(&m.month))
            .collect::<Vec<_>>()
            .join("、"),
    }
}

const NONE: &str = "—";
const BLANK_DATE: &str = "＿＿＿＿年＿＿月＿＿日";

/// An exact yuan amount with grouping and at least two decimals (more only when the value has them).
fn exact_yuan(d: Decimal) -> String {
    let fen_part = (d * Decimal::ONE_HUNDRED).trunc();
    let cents = i64::try_from(fen_part).unwrap_or(0);
    let rest = (d * Decimal::ONE_HUNDRED - fen_part).normalize();
    let base = yuan(cents);
    if rest.is_zero() {
        base
    } else {
        // The digits beyond the fen, e.g. 0.33 fen → "33".
        let extra = rest.to_string();
        format!("{base}{}", extra.trim_start_matches("0."))
    }
}

/// A daily late-fee rate as the notice says it: 0.002 → 千分之二, else e.g. 1.5‰.
fn late_rate_zh(daily: Decimal) -> String {
    let per_mille = (daily * Decimal::ONE_THOUSAND).normalize();
    const ZH: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    match i64::try_from(per_mille) {
        Ok(n) if per_mille.fract().is_zero() && (1..=9).contains(&n) => format!("千分之{}", ZH[n as usize]),
        _ => format!("{per_mille}‰"),
    }
}

/// `2022-01` → `2022年1月`.
fn month_zh(m: &str) -> String {
    Month::parse(m).map_or_else(|| m.to_string(), |m| format!("{}年{}月", m.year, m.month))
}

/// The notice of `row` (a bill: the caller refuses referrals and waived ones), as HTML.
pub fn render(conn: &mut DbConn, row: &AssessmentRow, settings: &Settings) -> ApiResult<String> {
    let config = FeeConfig::of(settings);
    let payer =
        crate::water_users::find(conn, &row.payer_id)?.ok_or_else(|| ApiError::internal("assessment without payer"))?;
    let permit_no = match &row.permit_id {
        Some(id) => crate::permits::find(conn, id)?.and_then(|p| p.permit_no),
        None => None,
    };
    let lines = row.lines();
    let rows: Vec<Row> = lines
        .iter()
        .map(|l| Row {
            month: month_zh(&l.month),
            volume: l.volume_m3.to_string(),
            method: l.method.label_zh(),
            rate: l.rate_yuan_per_m3.map_or(NONE.to_string(), |r| r.to_string()),
            amount: exact_yuan(l.exact()),
        })
        .collect();
    let exact_lines = lines.iter().any(|l| (l.exact() * Decimal::ONE_HUNDRED).fract() != Decimal::ZERO);
    let period = period_zh(&row.period);
    let surcharge = row.surcharge().filter(|_| row.kind() == Kind::OverPlanSurcharge);
    let (title, lead, late_basis, deferral_basis) = match &surcharge {
        Some(s) => (
            "超计划用水累进加价费缴款通知书",
            format!(
                "根据《节约用水条例》第十五条和计划用水管理的规定，经核定，你单位{period}计划用水量为 {} 立方米，\
                 实际用水量为 {} 立方米，超计划用水 {} 立方米，应缴纳超计划用水累进加价费如下：",
                s.planned_m3, s.used_m3, s.excess_m3
            ),
            "",
            "",
        ),
        None => (
            "水资源费缴款通知书",
            format!(
                "根据《取水许可和水资源费征收管理条例》第三十二条、第三十三条的规定，经核定，你单位{period}实际取水量为 \
                 {} 立方米，应缴纳水资源费如下：",
                row.volume_m3
            ),
            "（《中华人民共和国水法》第七十条、《取水许可和水资源费征收管理条例》第五十四条）",
            "（《取水许可和水资源费征收管理条例》第三十四条）",
        ),
    };
    Notice {
        style: STYLE,
        title,
        lead,
        bureau: &settings.bureau_name,
        notice_no: row.notice_no.clone().unwrap_or_else(|| "（送达时编号）".into()),
        payer_name: payer.name,
        payer_credit_code: payer.credit_code,
        payer_address: payer.address.unwrap_or_else(|| NONE.into()),
        permit_no: match surcharge {
            Some(_) => None,
            None => Some(permit_no.unwrap_or_else(|| NONE.into())),
        },
        surcharge: surcharge.as_ref().map(surcharge_table),
        rows,
        volume_total: row.volume_m3,
        exact_lines,
        amount_figures: yuan(row.amount_fen),
        amount_capitals: capitals(row.amount_fen),
        served_on: row.notified_on.map_or(BLANK_DATE.to_string(), date_zh),
        due: match row.due_date {
            Some(d) => format!("{}（含当日；自送达之日起 {} 日内）", date_zh(d), super::DUE_DAYS),
            None => format!("自送达之日起 {} 日内", super::DUE_DAYS),
        },
        deferred: row.deferred_until.map(date_zh),
        late_rate: late_rate_zh(row.daily_late_rate(&config)),
        late_basis,
        deferral_basis,
        issued_on: row.notified_on.map_or(BLANK_DATE.to_string(), date_zh),
    }
    .render()
    .map_err(|e| ApiError::internal(format!("notice template: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_as_the_notice_prints_them() {
        assert_eq!(exact_yuan(Decimal::new(120_000_000, 4)), "12,000.00");
        assert_eq!(exact_yuan(Decimal::new(33_333_333, 4)), "3,333.3333");
        assert_eq!(exact_yuan(Decimal::new(33_333_330, 4)), "3,333.333");
        assert_eq!(late_rate_zh(Decimal::new(2, 3)), "千分之二");
        assert_eq!(late_rate_zh(Decimal::new(15, 4)), "1.5‰");
        assert_eq!(month_zh("2022-01"), "2022年1月");
        assert_eq!(period_zh("2026"), "2026年度");
        assert_eq!(band_range(0, Some(20)), "20% 以内（含）");
        assert_eq!(band_range(20, Some(40)), "20%–40%（含）");
        assert_eq!(band_range(40, None), "40% 以上");
    }
}
