//! Printable documents (certificates, payment notices, penalty decisions): A4 HTML in Chinese with print styles,
//! rendered from askama templates (every value is HTML-escaped). Shared pieces — the page style, Chinese dates,
//! the HTTP answer — live here; each document's template lives with its feature.

use actix_web::http::header;
use actix_web::HttpResponse;
use chrono::{Datelike, NaiveDate};

/// The page style every document shares: A4, 20 mm margins, a serif Chinese face, tables with ruled cells.
pub const STYLE: &str = r#"
@page { size: A4; margin: 20mm; }
* { box-sizing: border-box; }
html { font-family: "SimSun", "Songti SC", "Noto Serif CJK SC", "Source Han Serif SC", serif; color: #111; }
body { margin: 0 auto; max-width: 170mm; font-size: 12pt; line-height: 1.6; }
h1 { text-align: center; font-size: 26pt; letter-spacing: 0.5em; margin: 8mm 0 2mm; font-weight: bold; }
.number { text-align: right; margin-bottom: 4mm; }
table { width: 100%; border-collapse: collapse; }
th, td { border: 1px solid #333; padding: 2.2mm 3mm; vertical-align: top; }
th { width: 38mm; text-align: center; font-weight: normal; background: #f2f2f2; white-space: nowrap; }
.issuer { margin-top: 10mm; text-align: right; line-height: 2.2; }
.notes { margin-top: 8mm; font-size: 10pt; color: #333; }
.notes ol { margin: 1mm 0 0 5mm; padding: 0; }
@media print { th { background: none; } }
"#;

/// A date as Chinese documents write it: `2026年1月10日`.
pub fn date_zh(d: NaiveDate) -> String {
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

/// A volume as documents write it: `3650000 立方米（365 万立方米）`; the 万 figure exact, without trailing zeros.
pub fn volume_zh(m3: i64) -> String {
    if m3.abs() < 10_000 {
        return format!("{m3} 立方米");
    }
    let wan = format!("{}.{:04}", m3 / 10_000, (m3 % 10_000).abs());
    let wan = wan.trim_end_matches('0').trim_end_matches('.');
    format!("{m3} 立方米（{wan} 万立方米）")
}

/// A document as the answer to a request: HTML in UTF-8, not to be stored by caches.
pub fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CONTENT_LANGUAGE, "zh-CN"))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_the_chinese_way() {
        assert_eq!(date_zh(NaiveDate::from_ymd_opt(2026, 1, 10).unwrap()), "2026年1月10日");
        assert_eq!(volume_zh(3_650_000), "3650000 立方米（365 万立方米）");
        assert_eq!(volume_zh(3_654_321), "3654321 立方米（365.4321 万立方米）");
        assert_eq!(volume_zh(1800), "1800 立方米");
    }
}
