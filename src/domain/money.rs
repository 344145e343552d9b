//! Money and unit rates (docs/api.md): amounts are integer fen; unit rates are exact decimals in yuan per m³ with
//! at most four decimals (`"0.3000"`), held as [`rust_decimal::Decimal`]. Computed amounts are rounded half-up to
//! the fen once, at the end ([`round_fen`]). No floating point anywhere.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::messages::Msg;

/// Decimals a unit rate may have.
pub const RATE_SCALE: u32 = 4;
/// The largest unit rate accepted: 1 000 yuan per m³ (real rates are a few yuan at most).
pub const MAX_RATE_YUAN: i64 = 1000;

/// A unit rate in yuan per m³: `0 ≤ rate ≤ 1000`, at most four decimals; written with exactly four (`"0.3000"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(Decimal);

impl Rate {
    /// Parses `"0.3"`, `"0.30"` or `"0.3000"`: plain digits with an optional point and up to four decimals; no sign,
    /// exponent, spaces or grouping.
    pub fn parse(s: &str) -> Result<Self, Msg> {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || int.len() > 4 || !digits(int) || !digits(frac) || (s.contains('.') && frac.is_empty()) {
            return Err(Msg::RateFormat);
        }
        if frac.len() > RATE_SCALE as usize {
            return Err(Msg::RateDecimals);
        }
        let mut d: Decimal = s.parse().map_err(|_| Msg::RateFormat)?;
        if d > Decimal::from(MAX_RATE_YUAN) {
            return Err(Msg::RateTooHigh);
        }
        d.rescale(RATE_SCALE);
        Ok(Rate(d))
    }

    pub fn decimal(self) -> Decimal {
        self.0
    }

    /// `volume × rate` in yuan, exactly (four decimals).
    pub fn charge(self, volume_m3: i64) -> Decimal {
        Decimal::from(volume_m3) * self.0
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.4}", self.0)
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Rate::parse(&s).map_err(|m| serde::de::Error::custom(m.render(crate::messages::Lang::En)))
    }
}

impl utoipa::PartialSchema for Rate {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .pattern(Some(r"^\d{1,4}(\.\d{1,4})?$"))
            .description(Some("元/立方米，至多 4 位小数，以字符串精确表示 — yuan per m³, an exact decimal string"))
            .examples([serde_json::json!("0.3000")])
            .into()
    }
}

impl utoipa::ToSchema for Rate {}

/// Yuan (an exact decimal) to fen, rounded half-up once. `None` beyond the largest amount.
pub fn round_fen(yuan: Decimal) -> Option<i64> {
    let fen = (yuan * Decimal::ONE_HUNDRED).round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    i64::try_from(fen).ok().filter(|f| (0..=super::MAX_AMOUNT_FEN).contains(f))
}

/// Fen as yuan with grouping, for documents: `3600000` → `36,000.00`.
pub fn yuan(fen: i64) -> String {
    let (sign, fen) = if fen < 0 { ("-", fen.unsigned_abs()) } else { ("", fen as u64) };
    let whole = (fen / 100).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}{grouped}.{:02}", fen % 100)
}

const DIGITS: [char; 10] = ['零', '壹', '贰', '叁', '肆', '伍', '陆', '柒', '捌', '玖'];

/// Four digits (`0 < n < 10000`) in capitals, without leading 零 (the caller adds the 零 between groups).
fn group(n: u64, out: &mut String) {
    const UNITS: [&str; 4] = ["仟", "佰", "拾", ""];
    let digits = [n / 1000, n / 100 % 10, n / 10 % 10, n % 10];
    let mut zero = false;
    let mut started = false;
    for (d, unit) in digits.iter().zip(UNITS) {
        if *d == 0 {
            zero = started;
            continue;
        }
        if zero {
            out.push('零');
            zero = false;
        }
        out.push(DIGITS[*d as usize]);
        out.push_str(unit);
        started = true;
    }
}

/// An amount in the capitals (大写) used on financial documents, as the 会计基础工作规范 writes them:
/// `100090` → `壹仟元零玖角`, `3600000` → `叁万陆仟元整`, `1005` → `壹拾元零伍分`, `0` → `零元整`. Groups of four
/// digits take 万 and 亿; a run of zeros inside the number is one 零; 拾 always has its digit (`壹拾`).
pub fn capitals(fen: i64) -> String {
    let fen = fen.max(0) as u64;
    let (whole, jiao, fen_digit) = (fen / 100, fen / 10 % 10, fen % 10);
    let mut out = String::new();
    if whole > 0 {
        let groups = [(whole / 100_000_000, "亿"), (whole / 10_000 % 10_000, "万"), (whole % 10_000, "")];
        let mut pending_zero = false;
        let mut started = false;
        for (g, unit) in groups {
            if g == 0 {
                pending_zero = started;
                continue;
            }
            // A zero between groups: a skipped group, or this group's thousands place empty.
            if started && (pending_zero || g < 1000) {
                out.push('零');
            }
            group(g, &mut out);
            out.push_str(unit);
            started = true;
            pending_zero = false;
        }
        out.push('元');
    }
    match (jiao, fen_digit) {
        (0, 0) if whole == 0 => out.push_str("零元整"),
        (0, 0) => out.push('整'),
        (0, f) => {
            if whole > 0 {
                out.push('零');
            }
            out.push(DIGITS[f as usize]);
            out.push('分');
        }
        (j, f) => {
            // 元位是 0 而角位不是 0 时写一个零：壹仟元零玖角.
            if whole > 0 && whole % 10 == 0 {
                out.push('零');
            }
            out.push(DIGITS[j as usize]);
            out.push('角');
            if f > 0 {
                out.push(DIGITS[f as usize]);
                out.push('分');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rates_parse_exactly() {
        assert_eq!(Rate::parse("0.3").unwrap().to_string(), "0.3000");
        assert_eq!(Rate::parse("0.3333").unwrap().to_string(), "0.3333");
        assert_eq!(Rate::parse("2").unwrap().to_string(), "2.0000");
        assert_eq!(Rate::parse("1000").unwrap().to_string(), "1000.0000");
        assert_eq!(Rate::parse("0.33333"), Err(Msg::RateDecimals));
        for bad in ["", ".3", "3.", "-0.3", "+1", "1e3", " 1", "1,000", "0x1", "1000.0001", "12345"] {
            assert!(Rate::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Rate::parse("0.3").unwrap().charge(12_000), Decimal::new(36_000_000, 4));
    }

    #[test]
    fn rounding_is_half_up() {
        assert_eq!(round_fen(Decimal::new(12_345, 3)), Some(1235)); // 12.345 yuan
        assert_eq!(round_fen(Decimal::new(123_449, 4)), Some(1234));
        assert_eq!(round_fen(Decimal::new(5, 3)), Some(1));
        assert_eq!(round_fen(Decimal::new(4, 3)), Some(0));
    }

    #[test]
    fn yuan_groups_thousands() {
        assert_eq!(yuan(3_600_000), "36,000.00");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(100_000_000_000), "1,000,000,000.00");
        assert_eq!(yuan(-1234), "-12.34");
    }

    #[test]
    fn capitals_as_written_on_financial_documents() {
        let cases = [
            (0, "零元整"),
            (5, "伍分"),
            (90, "玖角"),
            (95, "玖角伍分"),
            (100, "壹元整"),
            (1_000, "壹拾元整"),
            (1_005, "壹拾元零伍分"),
            (1_050, "壹拾元零伍角"),
            (1_055, "壹拾元零伍角伍分"),
            (100_090, "壹仟元零玖角"),
            (168_032, "壹仟陆佰捌拾元零叁角贰分"),
            (100_100, "壹仟零壹元整"),
            (3_600_000, "叁万陆仟元整"),
            (72_000, "柒佰贰拾元整"),
            (9_280_000, "玖万贰仟捌佰元整"),
            (1_000_100, "壹万零壹元整"),
            (1_001_000_000, "壹仟零壹万元整"),
            (100_000_000, "壹佰万元整"),
            (10_000_000_100, "壹亿零壹元整"),
            (10_010_000_000, "壹亿零壹拾万元整"),
            (1_002_003_000_400, "壹佰亿贰仟零叁万零肆元整"),
            (10_100_000_000, "壹亿零壹佰万元整"),
            (107_000_000, "壹佰零柒万元整"),
            (123_456_789, "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分"),
        ];
        for (fen, text) in cases {
            assert_eq!(capitals(fen), text, "{fen}");
        }
    }

    /// Reads capitals back (for the property test): the inverse of [`capitals`].
    fn read_capitals(s: &str) -> i64 {
        let digit = |c: char| DIGITS.iter().position(|d| *d == c).map(|d| d as i64);
        let (mut total, mut section, mut number) = (0i64, 0i64, 0i64);
        let (mut yuan, mut fen) = (0i64, 0i64);
        for c in s.chars() {
            if let Some(d) = digit(c) {
                number = d;
                continue;
            }
            match c {
                '拾' => section += number * 10,
                '佰' => section += number * 100,
                '仟' => section += number * 1000,
                '万' => {
                    total += (section + number) * 10_000;
                    section = 0;
                }
                '亿' => {
                    total = (total + section + number) * 100_000_000;
                    section = 0;
                }
                '元' => yuan = total + section + number,
                '角' => fen += number * 10,
                '分' => fen += number,
                '整' => {}
                other => panic!("unexpected {other}"),
            }
            if c != '元' {
                number = 0;
            } else {
                number = 0;
                total = 0;
                section = 0;
            }
        }
        yuan * 100 + fen
    }

    proptest! {
        #[test]
        fn capitals_read_back(fen in 0i64..=1_000_000_000_000) {
            let text = capitals(fen);
            prop_assert_eq!(read_capitals(&text), fen, "{}", text);
            prop_assert!(!text.contains("零零"), "{}", text);
            prop_assert!(!text.contains("零元") || fen == 0, "{}", text);
            prop_assert!(!text.starts_with('零') || fen == 0, "{}", text);
            prop_assert!(!text.starts_with('拾'), "{}", text);
        }
    }
}
