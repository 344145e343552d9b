//! Business dates: effective dates of steps (docs/api.md), months (`YYYY-MM`). "Today" comes from the request's
//! [`crate::clock::Now`].

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorCode};
use crate::messages::Msg;

/// A calendar date as requests send it: exactly `YYYY-MM-DD`, a real day, between 1900 and 2199 (so that
/// `+10000-01-01`, `0000-01-01` and `2022-02-30` are refused with words a clerk understands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub NaiveDate);

impl Date {
    pub fn parse(s: &str) -> Result<Self, Msg> {
        let b = s.as_bytes();
        let shaped = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shaped {
            return Err(Msg::Date);
        }
        let (y, m, d) = (s[..4].parse::<i32>(), s[5..7].parse::<u32>(), s[8..].parse::<u32>());
        let (Ok(y), Ok(m), Ok(d)) = (y, m, d) else { return Err(Msg::Date) };
        if !(1900..=2199).contains(&y) {
            return Err(Msg::DateRange);
        }
        NaiveDate::from_ymd_opt(y, m, d).map(Date).ok_or(Msg::NotCalendarDate)
    }

    pub fn get(self) -> NaiveDate {
        self.0
    }
}

impl From<Date> for NaiveDate {
    fn from(d: Date) -> NaiveDate {
        d.0
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // The English text travels through serde; `http::json::humanize` maps it back to the message.
        Date::parse(&s).map_err(|m| serde::de::Error::custom(m.render(crate::messages::Lang::En)))
    }
}

impl Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl utoipa::PartialSchema for Date {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .into()
    }
}

impl utoipa::ToSchema for Date {}

/// An optional date of a request as a plain date.
pub fn plain(d: Option<Date>) -> Option<NaiveDate> {
    d.map(Date::get)
}

/// The date of a step: the given `effective_date` or today. It may not lie in the future (400), nor before the
/// date of the step it follows (409 `effective_date_out_of_order`).
pub fn effective_date(
    given: Option<NaiveDate>,
    previous_step: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<NaiveDate, ApiError> {
    let date = given.unwrap_or(today);
    if date > today {
        return Err(ApiError::invalid("effective_date", Msg::InFuture));
    }
    if let Some(prev) = previous_step {
        if date < prev {
            return Err(ApiError::conflict(
                ErrorCode::EffectiveDateOutOfOrder,
                Msg::BeforePreviousStep { date, previous: prev },
            ));
        }
    }
    Ok(date)
}

pub fn add_years(date: NaiveDate, years: u32) -> NaiveDate {
    date.checked_add_months(Months::new(12 * years)).unwrap_or(NaiveDate::MAX)
}

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    pub fn parse(s: &str) -> Option<Self> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (year, month) = (y.parse().ok()?, m.parse().ok()?);
        NaiveDate::from_ymd_opt(year, month, 1).map(|_| Self { year, month })
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("valid month")
    }

    pub fn last_day(self) -> NaiveDate {
        self.first_day().checked_add_months(Months::new(1)).expect("in range").pred_opt().expect("in range")
    }

    pub fn of(date: NaiveDate) -> Self {
        Self { year: date.year(), month: date.month() }
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl TryFrom<String> for Month {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Month::parse(&s).ok_or_else(|| Msg::MonthFormat.render(crate::messages::Lang::En))
    }
}

impl From<Month> for String {
    fn from(m: Month) -> String {
        m.to_string()
    }
}

/// A calendar quarter, `YYYY-Qn` (a billing period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quarter {
    pub year: i32,
    pub quarter: u32,
}

impl Quarter {
    /// `2022-Q1` (also `2022-q1`); years 1900..=2199.
    pub fn parse(s: &str) -> Option<Self> {
        let (y, q) = s.split_once('-')?;
        let q = q.strip_prefix('Q').or_else(|| q.strip_prefix('q'))?;
        if y.len() != 4 || q.len() != 1 || !y.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (year, quarter): (i32, u32) = (y.parse().ok()?, q.parse().ok()?);
        ((1900..=2199).contains(&year) && (1..=4).contains(&quarter)).then_some(Self { year, quarter })
    }

    /// Its three months, in order.
    pub fn months(self) -> [Month; 3] {
        let first = (self.quarter - 1) * 3 + 1;
        [0, 1, 2].map(|i| Month { year: self.year, month: first + i })
    }

    pub fn last_day(self) -> NaiveDate {
        self.months()[2].last_day()
    }

    /// `2022年第一季度`, as documents print it.
    pub fn zh(self) -> String {
        format!("{}年第{}季度", self.year, ["一", "二", "三", "四"][(self.quarter - 1) as usize])
    }
}

impl std::fmt::Display for Quarter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-Q{}", self.year, self.quarter)
    }
}

/// Percentage with one decimal, rounded half-up, from integers (no floating point): `part / whole × 100`.
pub fn percent_1dp(part: i64, whole: i64) -> Option<String> {
    if whole <= 0 || part < 0 {
        return None;
    }
    let tenths = (i128::from(part) * 2000 + i128::from(whole)) / (2 * i128::from(whole));
    Some(format!("{}.{}", tenths / 10, tenths % 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_strict() {
        assert_eq!(Date::parse("2022-02-28").unwrap().get().to_string(), "2022-02-28");
        assert_eq!(Date::parse("2022-02-30"), Err(Msg::NotCalendarDate));
        assert!(Date::parse("+10000-01-01").is_err());
        assert!(Date::parse("0000-01-01").is_err());
        assert!(Date::parse("2022-2-3").is_err());
        assert!(Date::parse("2022-02-28T00:00").is_err());
    }

    #[test]
    fn months() {
        let m = Month::parse("2024-02").unwrap();
        assert_eq!(m.last_day(), NaiveDate::from_ymd_opt(2024, 2, 29).unwrap());
        assert_eq!(Month::parse("2023-02").unwrap().last_day().day(), 28);
        assert_eq!(m.to_string(), "2024-02");
        assert!(
            Month::parse("2024-13").is_none() && Month::parse("2024-1").is_none() && Month::parse("24-01").is_none()
        );
    }

    #[test]
    fn quarters() {
        let q = Quarter::parse("2024-Q4").unwrap();
        assert_eq!(q.months().map(|m| m.to_string()), ["2024-10", "2024-11", "2024-12"]);
        assert_eq!(q.last_day(), NaiveDate::from_ymd_opt(2024, 12, 31).unwrap());
        assert_eq!(q.to_string(), "2024-Q4");
        assert_eq!(Quarter::parse("2022-q1").unwrap().zh(), "2022年第一季度");
        for bad in ["2022-Q0", "2022-Q5", "2022-1", "22-Q1", "2022Q1", "2022-Q12", "1899-Q1"] {
            assert!(Quarter::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn percentages_round_half_up() {
        assert_eq!(percent_1dp(5_000_000, 15_150_000).as_deref(), Some("33.0"));
        assert_eq!(percent_1dp(1, 8).as_deref(), Some("12.5"));
        assert_eq!(percent_1dp(1, 16).as_deref(), Some("6.3"));
        assert_eq!(percent_1dp(0, 10).as_deref(), Some("0.0"));
        assert_eq!(percent_1dp(3, 0), None);
    }
}
