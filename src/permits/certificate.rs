//! 取水许可证 — the printable permit (TL §24: holder, intake point and method, source, volume, purpose, return point
//! and method, term), as an A4 page in Chinese.

use askama::Template;

use super::{MeterStatus, PermitRow, Purpose};
use crate::documents::{date_zh, volume_zh, STYLE};
use crate::water_users::WaterUser;

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>取水许可证 {{ permit_no }}</title>
<style>{{ style|safe }}</style>
</head>
<body>
<h1>取水许可证</h1>
<p class="number">编号：{{ permit_no }}</p>
<table>
<tr><th>取水权人</th><td colspan="3">{{ holder_name }}</td></tr>
<tr><th>统一社会信用代码</th><td>{{ holder_credit_code }}</td><th>法定代表人</th><td>{{ legal_representative }}</td></tr>
<tr><th>取水地点</th><td colspan="3">{{ intake_address }}{% if let Some(c) = coordinates %}<br>（{{ c }}）{% endif %}</td></tr>
<tr><th>取水方式</th><td>{{ intake_method }}</td><th>水源类型</th><td>{{ source }}</td></tr>
<tr><th>取水用途</th><td>{{ purpose }}</td><th>所在分区</th><td>{{ zone }}</td></tr>
<tr><th>年取水量</th><td colspan="3">{{ annual }}</td></tr>
<tr><th>日最大取水量</th><td colspan="3">{{ daily }}</td></tr>
<tr><th>退水地点</th><td colspan="3">{{ return_location }}</td></tr>
<tr><th>退水方式</th><td colspan="3">{{ return_method }}</td></tr>
<tr><th>计量设施</th><td colspan="3">{{ meter }}</td></tr>
<tr><th>有效期限</th><td colspan="3">自 {{ valid_from }} 起至 {{ valid_to }} 止</td></tr>
</table>
<div class="issuer">
<div>发证机关：{{ bureau }}（盖章）</div>
<div>发证日期：{{ issued_on }}</div>
</div>
<div class="notes">注意事项：
<ol>
<li>取水权人应当按照本证载明的取水地点、取水方式、水源类型、取水量和取水用途取水，安装并正常使用取水计量设施。</li>
<li>有效期届满需要延续的，取水权人应当在有效期届满45日前向发证机关提出申请。</li>
<li>本证不得涂改、伪造、出租、出借或者以其他形式非法转让。</li>
</ol>
</div>
</body>
</html>
"#
)]
pub struct Certificate<'a> {
    style: &'a str,
    bureau: &'a str,
    permit_no: &'a str,
    holder_name: &'a str,
    holder_credit_code: &'a str,
    legal_representative: &'a str,
    intake_address: &'a str,
    coordinates: Option<String>,
    intake_method: &'a str,
    source: &'a str,
    purpose: &'a str,
    zone: &'a str,
    annual: String,
    daily: String,
    return_location: &'a str,
    return_method: &'a str,
    meter: &'a str,
    valid_from: String,
    valid_to: String,
    issued_on: String,
}

const NONE: &str = "—";

/// The certificate of an issued permit (the caller checks that it is in force), as HTML.
pub fn render(row: &PermitRow, holder: &WaterUser, zone: Option<&str>, bureau: &str) -> Result<String, askama::Error> {
    let coordinates = match (row.intake_lat, row.intake_lng) {
        (Some(lat), Some(lng)) => Some(format!(
            "{}{}°，{}{}°",
            if lng >= 0.0 { "东经 " } else { "西经 " },
            lng.abs(),
            if lat >= 0.0 { "北纬 " } else { "南纬 " },
            lat.abs()
        )),
        _ => None,
    };
    Certificate {
        style: STYLE,
        bureau,
        permit_no: row.permit_no.as_deref().unwrap_or(NONE),
        holder_name: &holder.name,
        holder_credit_code: &holder.credit_code,
        legal_representative: holder.legal_representative.as_deref().unwrap_or(NONE),
        intake_address: row.intake_address.as_deref().unwrap_or(NONE),
        coordinates,
        intake_method: row.intake_method.as_deref().unwrap_or(NONE),
        source: row.source().label_zh(),
        purpose: Purpose::parse(&row.purpose).map_or(NONE, Purpose::label_zh),
        zone: zone.unwrap_or(NONE),
        annual: volume_zh(row.annual_volume_m3),
        daily: row.daily_max_volume_m3.map_or(NONE.to_string(), volume_zh),
        return_location: row.return_location.as_deref().unwrap_or(NONE),
        return_method: row.return_method.as_deref().unwrap_or(NONE),
        meter: MeterStatus::parse(&row.meter_status).map_or(NONE, MeterStatus::label_zh),
        valid_from: row.valid_from.map_or(NONE.to_string(), date_zh),
        valid_to: row.valid_to.map_or(NONE.to_string(), date_zh),
        issued_on: row.approved_on.map_or(NONE.to_string(), date_zh),
    }
    .render()
}
