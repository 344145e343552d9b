//! 工作总结数据（打印稿） — the summary as a document staff paste into the bureau's half-year report: the figures as
//! Chinese sentences and tables, and two charts drawn as SVG by `plotters` (monthly withdrawals against the zones'
//! monthly share of their caps; fees assessed and collected by quarter). A4, print styles, every value escaped.

use askama::Template;
use chrono::{Datelike, NaiveDate};
use diesel::prelude::*;
use plotters::coord::ranged1d::{SegmentValue, SegmentedCoord};
use plotters::coord::types::{RangedCoordi32, RangedCoordi64};
use plotters::prelude::*;

use super::{sum_of, Summary, Window};
use crate::db::schema::{fee_assessments as fa, payments as pm, permits as p, withdrawals as wd};
use crate::db::DbConn;
use crate::documents::{date_zh, volume_zh, STYLE};
use crate::domain::dates::{Month, Quarter};
use crate::domain::money::yuan;
use crate::domain::water::SourceType;
use crate::error::{ApiError, ApiResult};
use crate::fees::Kind as FeeKind;
use crate::inspections::Kind as InspectionKind;
use crate::planned_use::Category;

/// What the charts plot, beyond the summary's figures.
pub struct Series {
    /// Every month lying wholly inside the window, with the volume withdrawn in it (current revisions).
    pub months: Vec<(Month, i64)>,
    /// Every quarter lying wholly inside the window: water-resource fee assessed for it, and principal collected in it.
    pub quarters: Vec<(Quarter, i64, i64)>,
}

/// Reads the charts' data (in the caller's snapshot).
pub fn series(conn: &mut DbConn, w: Window) -> QueryResult<Series> {
    let mut months: Vec<(Month, i64)> = w.month_list().into_iter().map(|m| (m, 0)).collect();
    if let Some((first, last)) = w.months() {
        let volumes: Vec<(String, i64)> = wd::table
            .inner_join(p::table)
            .filter(wd::superseded.eq(false))
            .filter(wd::period.ge(first.to_string()))
            .filter(wd::period.le(last.to_string()))
            .group_by(wd::period)
            .select((wd::period, sum_of("withdrawals.volume_m3")))
            .load(conn)?;
        for (period, volume) in volumes {
            if let Some(slot) = months.iter_mut().find(|(m, _)| m.to_string() == period) {
                slot.1 = volume;
            }
        }
    }
    let mut quarters = Vec::new();
    for q in w.quarters() {
        let assessed: i64 = fa::table
            .filter(fa::kind.eq(FeeKind::WaterResourceFee.as_str()))
            .filter(fa::period.eq(q.to_string()))
            .select(sum_of("amount_fen"))
            .first(conn)?;
        let collected: i64 = pm::table
            .inner_join(fa::table)
            .filter(fa::kind.eq(FeeKind::WaterResourceFee.as_str()))
            .filter(pm::paid_on.ge(q.months()[0].first_day()))
            .filter(pm::paid_on.le(q.last_day()))
            .select(sum_of("payments.principal_fen"))
            .first(conn)?;
        quarters.push((q, assessed, collected));
    }
    Ok(Series { months, quarters })
}

/// Chinese labels of a figure map (source types, kinds, categories), in the enum's order, without the zeros.
fn labelled(
    map: &std::collections::BTreeMap<String, i64>,
    labels: &[(&str, &str)],
    figure: impl Fn(i64) -> String,
) -> String {
    let parts: Vec<String> = labels
        .iter()
        .filter_map(|(key, zh)| map.get(*key).filter(|n| **n > 0).map(|n| format!("{zh}{}", figure(*n))))
        .collect();
    parts.join("，")
}

struct ZoneRow {
    name: String,
    approved: String,
    allowable: String,
    pct: String,
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>{{ bureau }}{{ period }}工作总结数据</title>
<style>{{ style|safe }}
h1 { letter-spacing: 0.1em; font-size: 20pt; }
h2 { font-size: 14pt; margin: 6mm 0 2mm; }
p.lead { text-indent: 2em; margin: 1mm 0 2mm; }
.sub { text-align: center; margin: 0 0 6mm; }
table.figures th { width: auto; }
td.num { text-align: right; white-space: nowrap; }
figure { margin: 3mm 0 2mm; text-align: center; break-inside: avoid; }
figure svg { width: 100%; height: auto; }
figcaption { font-size: 10.5pt; }
.notes { break-inside: avoid; }
</style>
</head>
<body>
<h1>{{ bureau }}</h1>
<p class="sub">{{ period }}工作总结数据<br><span class="small">统计期间：{{ from }}至{{ to }}（含首尾两日）</span></p>

<h2>一、取水许可管理</h2>
<p class="lead">截至{{ to }}，全县有效取水许可证{{ s.permits.active }}件；统计期间新批准取水许可{{ s.permits.approved_in_period }}件；{{ s.permits.expiring_within_90_days }}件将于{{ to }}后90日内到期，需督促取水单位及时申请延续。</p>
{% if !zones.is_empty() %}<table class="figures">
<tr><th>取水总量控制分区</th><th>有效许可年取水量（立方米）</th><th>可分配年取水量（立方米）</th><th>指标使用率</th></tr>
{% for z in zones %}<tr><td>{{ z.name }}</td><td class="num">{{ z.approved }}</td><td class="num">{{ z.allowable }}</td><td class="num">{{ z.pct }}</td></tr>
{% endfor %}</table>{% endif %}

<h2>二、取水计量与用水总量</h2>
{% if months_counted %}<p class="lead">统计期间（{{ month_span }}）各取水单位取水量合计{{ volume }}{% if !by_source.is_empty() %}，其中{{ by_source }}{% endif %}。</p>
{% if let Some(svg) = withdrawal_chart %}<figure>{{ svg|safe }}<figcaption>图1　月度取水量与分区总量控制指标（月均）对照</figcaption></figure>{% endif %}
{% else %}<p class="lead">统计期间不含完整月份，未统计取水量。</p>{% endif %}

<h2>三、监督检查</h2>
<p class="lead">统计期间开展各类检查{{ s.inspections.count }}次{% if !by_kind.is_empty() %}（{{ by_kind }}）{% endif %}，发现问题{{ s.inspections.findings }}个，截至{{ to }}已整改{{ s.inspections.rectified }}个，正在整改{{ s.inspections.open }}个，其中逾期未整改{{ s.inspections.overdue }}个。</p>

<h2>四、水资源费征收</h2>
<p class="lead">统计期间核定水资源费{{ assessed }}元，征收水资源费{{ collected }}元，另收滞纳金{{ late_fee }}元；截至{{ to }}，尚有{{ outstanding }}元水资源费未缴纳。</p>
{% if let Some(svg) = fee_chart %}<figure>{{ svg|safe }}<figcaption>图{{ fee_figure_no }}　分季度水资源费核定与征收情况（元）</figcaption></figure>
<table class="figures"><tr><th>季度</th><th>核定金额（元）</th><th>征收金额（元）</th></tr>
{% for q in quarter_rows %}<tr><td>{{ q.0 }}</td><td class="num">{{ q.1 }}</td><td class="num">{{ q.2 }}</td></tr>
{% endfor %}</table>{% endif %}

<h2>五、计划用水管理</h2>
<p class="lead">纳入计划用水管理的用水户{{ s.planned_use.registered }}户，已下达{{ year }}年用水计划{{ s.planned_use.with_plan }}户{% if !by_category.is_empty() %}（{{ by_category }}）{% endif %}，计划用水覆盖率{{ s.planned_use.coverage_pct }}%；{{ year }}年重点监控用水单位{{ s.planned_use.key_monitoring_users }}户。统计期间核定超计划（定额）累进加价费{{ surcharge_assessed }}元，征收{{ surcharge_collected }}元。</p>

<h2>六、水行政执法</h2>
<p class="lead">统计期间立案查处水事违法案件{{ s.enforcement.cases_filed }}起，截至{{ to }}已作出行政处罚决定{{ s.enforcement.decided_with_penalty }}起，罚款{{ fines }}元，尚在调查处理{{ s.enforcement.under_investigation }}起。统计期间作出的处罚决定已公示{{ s.enforcement.published }}件，其中按期（决定后7个工作日内）公示{{ s.enforcement.published_on_time }}件。</p>

<div class="notes">统计口径：
<ol>
<li>有效取水许可指{{ to }}当日处于有效期内、未被暂停、吊销或注销的取水许可；取水量为统计期间内完整月份的月取水量（以最新更正为准）。</li>
<li>核定金额按计费期间（季度、年度）完整落在统计期间内的核定单计；征收金额按缴款日期计；欠缴金额为{{ to }}当日已结束计费期间的未缴本金，不含已批准减免部分。</li>
<li>检查次数按检查时间（北京时间）计；立案数按立案日期计。</li>
<li>数据生成于{{ generated }}，来源：{{ bureau }}水务管理系统。</li>
</ol></div>
</body>
</html>
"#
)]
struct SummaryPage<'a> {
    style: &'static str,
    bureau: &'a str,
    s: &'a Summary,
    period: String,
    from: String,
    to: String,
    year: i32,
    zones: Vec<ZoneRow>,
    months_counted: bool,
    month_span: String,
    volume: String,
    by_source: String,
    withdrawal_chart: Option<String>,
    by_kind: String,
    assessed: String,
    collected: String,
    late_fee: String,
    outstanding: String,
    fee_chart: Option<String>,
    fee_figure_no: u8,
    quarter_rows: Vec<(String, String, String)>,
    by_category: String,
    surcharge_assessed: String,
    surcharge_collected: String,
    fines: String,
    generated: String,
}

/// What a window is called in a report's title: `2022年上半年`, `2022年度`, `2022年第一季度`, or its dates.
fn period_name(from: NaiveDate, to: NaiveDate) -> String {
    let y = from.year();
    let day = |m, d| NaiveDate::from_ymd_opt(y, m, d);
    if to.year() == y {
        if Some(from) == day(1, 1) && Some(to) == day(12, 31) {
            return format!("{y}年度");
        }
        if Some(from) == day(1, 1) && Some(to) == day(6, 30) {
            return format!("{y}年上半年");
        }
        if Some(from) == day(7, 1) && Some(to) == day(12, 31) {
            return format!("{y}年下半年");
        }
        let q = Quarter { year: y, quarter: from.month0() / 3 + 1 };
        if q.months()[0].first_day() == from && q.last_day() == to {
            return q.zh();
        }
    }
    format!("{}至{}", date_zh(from), date_zh(to))
}

fn month_zh(m: Month) -> String {
    format!("{}年{}月", m.year, m.month)
}

/// The document of a summary.
pub fn render(s: &Summary, series: &Series, bureau: &str, today: NaiveDate) -> ApiResult<String> {
    let zones = s
        .permits
        .zones
        .iter()
        .map(|z| ZoneRow {
            name: z.name.clone(),
            approved: z.approved_m3_per_year.to_string(),
            allowable: z.allowable_m3_per_year.to_string(),
            pct: z.utilization_pct.as_ref().map(|p| format!("{p}%")).unwrap_or_else(|| "—".into()),
        })
        .collect();
    let source_labels: Vec<(&str, &str)> = SourceType::ALL.iter().map(|t| (t.as_str(), t.label_zh())).collect();
    let kind_labels: Vec<(&str, &str)> = InspectionKind::ALL.iter().map(|k| (k.as_str(), k.label_zh())).collect();
    let category_labels: Vec<(&str, &str)> = Category::ALL.iter().map(|c| (c.as_str(), c.label_zh())).collect();
    let by_source = labelled(&s.withdrawals.by_source_type, &source_labels, volume_zh);
    let month_span = match (series.months.first(), series.months.last()) {
        (Some((a, _)), Some((b, _))) if a == b => month_zh(*a),
        (Some((a, _)), Some((b, _))) => format!("{}至{}", month_zh(*a), month_zh(*b)),
        _ => String::new(),
    };
    let monthly_cap = s.permits.zones.iter().map(|z| z.allowable_m3_per_year).sum::<i64>() / 12;
    let withdrawal_chart =
        (!series.months.is_empty()).then(|| withdrawal_chart(&series.months, monthly_cap)).transpose()?;
    let fee_chart = (!series.quarters.is_empty()).then(|| fee_chart(&series.quarters)).transpose()?;
    let page = SummaryPage {
        style: STYLE,
        bureau,
        s,
        period: period_name(s.from, s.to),
        from: date_zh(s.from),
        to: date_zh(s.to),
        year: s.to.year(),
        zones,
        months_counted: !series.months.is_empty(),
        month_span,
        volume: volume_zh(s.withdrawals.volume_m3),
        by_source,
        fee_figure_no: if withdrawal_chart.is_some() { 2 } else { 1 },
        withdrawal_chart,
        by_kind: labelled(&s.inspections.by_kind, &kind_labels, |n| n.to_string()),
        assessed: yuan(s.fees.assessed_fen),
        collected: yuan(s.fees.collected_fen),
        late_fee: yuan(s.fees.late_fee_collected_fen),
        outstanding: yuan(s.fees.outstanding_fen),
        fee_chart,
        quarter_rows: series.quarters.iter().map(|(q, a, c)| (q.zh(), yuan(*a), yuan(*c))).collect(),
        by_category: labelled(&s.planned_use.by_category, &category_labels, |n| n.to_string()),
        surcharge_assessed: yuan(s.planned_use.surcharge_assessed_fen),
        surcharge_collected: yuan(s.planned_use.surcharge_collected_fen),
        fines: yuan(s.enforcement.fines_fen),
        generated: date_zh(today),
    };
    page.render().map_err(|e| ApiError::internal(format!("summary document: {e}")))
}

const FONT: &str = "Noto Sans CJK SC";
const BLUE: RGBColor = RGBColor(0x2b, 0x5c, 0x8a);
const GREEN: RGBColor = RGBColor(0x4e, 0x9a, 0x5b);
const RED: RGBColor = RGBColor(0xc0, 0x39, 0x2b);

fn chart_error<E: std::fmt::Display>(e: E) -> ApiError {
    ApiError::internal(format!("summary chart: {e}"))
}

/// A round upper bound for an axis (at least 1, a little above `max`).
fn axis_top(max: i64) -> i64 {
    let max = max.max(1);
    let step = 10_i64.pow(max.ilog10()).max(1);
    (max / step + 1) * step
}

/// An axis figure in 万 (ten thousands), exact to the hundredth.
fn wan(v: i64) -> String {
    let s = format!("{}.{:02}", v / 10_000, (v % 10_000).abs() / 100);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Where segment `i` of `n` (the axis' values `0..n - 1`, one segment each) ends.
fn right_edge(i: i32, n: i32) -> SegmentValue<i32> {
    if i + 1 < n {
        SegmentValue::Exact(i + 1)
    } else {
        SegmentValue::Last
    }
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<SegmentedCoord<RangedCoordi32>, RangedCoordi64>>;

/// A bar chart as SVG: one segment per label along x (the axis' values `0..n - 1`), `0..top` up the y axis in 万
/// of `y_desc`; `draw` adds the series (with their legend entries), which are then listed at the upper right.
fn bar_chart(
    height: u32,
    labels: &[String],
    top: i64,
    y_desc: &str,
    draw: impl FnOnce(&mut Chart<'_, '_>, i32) -> ApiResult<()>,
) -> ApiResult<String> {
    let n = labels.len() as i32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (680, height)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(64)
            .build_cartesian_2d((0..n - 1).into_segmented(), 0..top)
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(labels.len())
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_labels(6)
            .y_label_formatter(&|v| wan(*v))
            .y_desc(y_desc)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(chart_error)?;
        draw(&mut chart, n)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font((FONT, 12))
            .draw()
            .map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

fn legend_box(color: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
}

/// Bars of the monthly volumes, and a dashed line at the zones' monthly share of their caps.
fn withdrawal_chart(months: &[(Month, i64)], monthly_cap: i64) -> ApiResult<String> {
    let labels: Vec<String> = months.iter().map(|(m, _)| format!("{}月", m.month)).collect();
    let top = axis_top(months.iter().map(|(_, v)| *v).max().unwrap_or(0).max(monthly_cap));
    bar_chart(300, &labels, top, "万立方米", |chart, n| {
        chart
            .draw_series(months.iter().enumerate().map(|(i, (_, v))| {
                let i = i as i32;
                let mut bar = Rectangle::new([(SegmentValue::Exact(i), 0), (right_edge(i, n), *v)], BLUE.filled());
                bar.set_margin(0, 0, 8, 8);
                bar
            }))
            .map_err(chart_error)?
            .label("月取水量")
            .legend(legend_box(BLUE));
        if monthly_cap > 0 {
            chart
                .draw_series(DashedLineSeries::new(
                    [(SegmentValue::Exact(0), monthly_cap), (SegmentValue::Last, monthly_cap)],
                    8,
                    5,
                    RED.stroke_width(2),
                ))
                .map_err(chart_error)?
                .label("分区可分配水量（月均）")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], RED.stroke_width(2)));
        }
        Ok(())
    })
}

/// Paired bars per quarter: assessed and collected (yuan).
fn fee_chart(quarters: &[(Quarter, i64, i64)]) -> ApiResult<String> {
    let labels: Vec<String> = quarters.iter().map(|(q, _, _)| q.zh()).collect();
    let top = axis_top(quarters.iter().map(|(_, a, c)| *a.max(c) / 100).max().unwrap_or(0));
    bar_chart(280, &labels, top, "万元", |chart, n| {
        // Each quarter's segment holds two bars side by side: margins in pixels, from the segment's width.
        let segment = (chart.plotting_area().dim_in_pixel().0 / n.max(1) as u32).max(8);
        let (outer, inner) = (segment / 8, segment / 2);
        let bar = |i: usize, v: i64, left: bool, color: RGBColor| {
            let i = i as i32;
            let mut r = Rectangle::new([(SegmentValue::Exact(i), 0), (right_edge(i, n), v / 100)], color.filled());
            if left {
                r.set_margin(0, 0, outer, inner);
            } else {
                r.set_margin(0, 0, inner, outer);
            }
            r
        };
        chart
            .draw_series(quarters.iter().enumerate().map(|(i, (_, a, _))| bar(i, *a, true, BLUE)))
            .map_err(chart_error)?
            .label("核定")
            .legend(legend_box(BLUE));
        chart
            .draw_series(quarters.iter().enumerate().map(|(i, (_, _, c))| bar(i, *c, false, GREEN)))
            .map_err(chart_error)?
            .label("征收")
            .legend(legend_box(GREEN));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_named_as_reports_name_them() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(period_name(d("2022-01-01"), d("2022-06-30")), "2022年上半年");
        assert_eq!(period_name(d("2022-07-01"), d("2022-12-31")), "2022年下半年");
        assert_eq!(period_name(d("2022-01-01"), d("2022-12-31")), "2022年度");
        assert_eq!(period_name(d("2022-04-01"), d("2022-06-30")), "2022年第二季度");
        assert_eq!(period_name(d("2022-01-15"), d("2022-03-10")), "2022年1月15日至2022年3月10日");
        assert_eq!(axis_top(0), 2);
        assert_eq!(axis_top(1_620_400), 2_000_000);
        assert_eq!(wan(1_620_400), "162.04");
        assert_eq!(wan(2_000_000), "200");
    }
}
