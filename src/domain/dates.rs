//! Business dates: effective dates of steps (API.md §1), months (`YYYY-MM`). "Today" comes from the request's
//! [`crate::clock::Now`].

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorCode};

/// The date of a step: the given `effective_date` or today. It may not lie in the future (400), nor before the
/// date of the step it follows (409 `effective_date_out_of_order`).
pub fn effective_date(
    given: Option<NaiveDate>,
    previous_step: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<NaiveDate, ApiError> {
    let date = given.unwrap_or(today);
    if date > today {
        return Err(ApiError::invalid("effective_date", "must not lie in the future"));
    }
    if let Some(prev) = previous_step {
        if date < prev {
            return Err(ApiError::conflict(
                ErrorCode::EffectiveDateOutOfOrder,
                format!("the effective date {date} is before {prev}, the date of the previous step"),
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
        Month::parse(&s).ok_or_else(|| format!("{s:?} is not a month (YYYY-MM)"))
    }
}

impl From<Month> for String {
    fn from(m: Month) -> String {
        m.to_string()
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
    fn percentages_round_half_up() {
        assert_eq!(percent_1dp(5_000_000, 15_150_000).as_deref(), Some("33.0"));
        assert_eq!(percent_1dp(1, 8).as_deref(), Some("12.5"));
        assert_eq!(percent_1dp(1, 16).as_deref(), Some("6.3"));
        assert_eq!(percent_1dp(0, 10).as_deref(), Some("0.0"));
        assert_eq!(percent_1dp(3, 0), None);
    }
}
