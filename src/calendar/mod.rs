//! 工作日历 — the bureau's working-day calendar (docs/domain.md, "Working days"): per year, the public holidays and
//! the weekend days that are working days (调休); any other Saturday or Sunday is a rest day. The State Council's
//! schedules for 2022–2026 ship with the database (migration `000013`); admin keeps later years
//! (`PUT /api/v1/calendar/{year}`). Working-day arithmetic on a year without a calendar is an explicit error
//! (409 `calendar_missing`), never a guess.

pub mod routes;

use std::collections::{BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate, NaiveDateTime, Weekday};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::EntityType;
use crate::clock::Now;
use crate::db::schema::calendar_years;
use crate::db::schema::calendar_years as cy;
use crate::db::DbConn;
use crate::error::{ApiError, ErrorCode};
use crate::messages::Msg;
use crate::write::{Entity, Record};

/// A year's calendar as stored: the days as JSON arrays of `YYYY-MM-DD`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = cy, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct CalendarRow {
    pub id: String,
    pub year: i32,
    pub source: Option<String>,
    pub holidays: String,
    pub workdays: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

crate::versioned_row!(CalendarRow, calendar_years);

impl Entity for CalendarRow {
    const ENTITY: EntityType = EntityType::Calendar;
}

impl Record for CalendarRow {
    type View = YearCalendar;

    fn view(&self, _: &mut DbConn, _: &Now) -> QueryResult<YearCalendar> {
        Ok(YearCalendar {
            year: self.year,
            holidays: days(&self.holidays),
            workdays: days(&self.workdays),
            source: self.source.clone(),
            updated_at: self.updated_at,
            version: self.version,
        })
    }
}

fn days(json: &str) -> Vec<NaiveDate> {
    serde_json::from_str(json).unwrap_or_default()
}

/// 年度工作日历.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"year": 2022, "holidays": ["2022-01-31", "2022-02-01"], "workdays": ["2022-01-29", "2022-01-30"],
    "source": "国务院办公厅关于2022年部分节假日安排的通知（国办发明电〔2021〕11号）", "updated_at": "2026-11-30T00:00:00Z", "version": 1}))]
pub struct YearCalendar {
    pub year: i32,
    /// 法定节假日（含放假调休）: days off, whatever their weekday.
    #[schema(value_type = Vec<String>, format = Date)]
    pub holidays: Vec<NaiveDate>,
    /// 调休上班日: Saturdays and Sundays that are working days.
    #[schema(value_type = Vec<String>, format = Date)]
    pub workdays: Vec<NaiveDate>,
    /// The notice the schedule comes from.
    pub source: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

pub fn find(conn: &mut DbConn, year: i32) -> QueryResult<Option<CalendarRow>> {
    cy::table.filter(cy::year.eq(year)).select(CalendarRow::as_select()).first(conn).optional()
}

/// The days of one year that differ from "Monday to Friday work".
#[derive(Debug, Clone, Default)]
struct Year {
    holidays: BTreeSet<NaiveDate>,
    workdays: BTreeSet<NaiveDate>,
}

/// The calendars of some years, for working-day arithmetic.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    years: HashMap<i32, Year>,
}

/// Working-day arithmetic reached a year without a calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingYear(pub i32);

impl From<MissingYear> for ApiError {
    fn from(m: MissingYear) -> Self {
        ApiError::conflict(ErrorCode::CalendarMissing, Msg::CalendarMissing(m.0))
    }
}

impl Calendar {
    /// The stored calendars of `years`.
    pub fn load(conn: &mut DbConn, years: std::ops::RangeInclusive<i32>) -> QueryResult<Calendar> {
        let rows: Vec<CalendarRow> = cy::table
            .filter(cy::year.between(*years.start(), *years.end()))
            .select(CalendarRow::as_select())
            .load(conn)?;
        Ok(Calendar::of(rows.iter().map(|r| (r.year, days(&r.holidays), days(&r.workdays)))))
    }

    /// A calendar of the given years' holidays and working weekend days.
    pub fn of(years: impl IntoIterator<Item = (i32, Vec<NaiveDate>, Vec<NaiveDate>)>) -> Calendar {
        let years = years
            .into_iter()
            .map(|(y, h, w)| (y, Year { holidays: h.into_iter().collect(), workdays: w.into_iter().collect() }))
            .collect();
        Calendar { years }
    }

    /// Whether `day` is a working day.
    pub fn is_working_day(&self, day: NaiveDate) -> Result<bool, MissingYear> {
        let year = self.years.get(&day.year()).ok_or(MissingYear(day.year()))?;
        if year.workdays.contains(&day) {
            return Ok(true);
        }
        if year.holidays.contains(&day) {
            return Ok(false);
        }
        Ok(!matches!(day.weekday(), Weekday::Sat | Weekday::Sun))
    }

    /// The `n`-th working day after `day`, counting from the day after it (docs/domain.md): 7 working days after
    /// Friday 2022-01-28 is 2022-02-11 (29 and 30 January were working weekend days, Spring Festival followed).
    pub fn after_working_days(&self, day: NaiveDate, n: u32) -> Result<NaiveDate, MissingYear> {
        let mut d = day;
        let mut left = n;
        while left > 0 {
            d = d.succ_opt().ok_or(MissingYear(d.year() + 1))?;
            if self.is_working_day(d)? {
                left -= 1;
            }
        }
        Ok(d)
    }
}

/// The `n`-th working day after `day` on the stored calendars (409 `calendar_missing` naming the first year the
/// count reaches without a calendar).
pub fn working_days_after(conn: &mut DbConn, day: NaiveDate, n: u32) -> Result<NaiveDate, ApiError> {
    // Fewer than 200 working days fit into any year: load enough years for `n`.
    let span = i32::try_from(n / 200 + 1).unwrap_or(i32::MAX);
    let calendar = Calendar::load(conn, day.year()..=day.year().saturating_add(span))?;
    Ok(calendar.after_working_days(day, n)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn span(a: &str, b: &str) -> Vec<NaiveDate> {
        d(a).iter_days().take_while(|x| *x <= d(b)).collect()
    }

    /// 2022 as the State Council published it (国办发明电〔2021〕11号).
    fn cal_2022() -> Calendar {
        let holidays = [
            span("2022-01-01", "2022-01-03"),
            span("2022-01-31", "2022-02-06"),
            span("2022-04-03", "2022-04-05"),
            span("2022-04-30", "2022-05-04"),
            span("2022-06-03", "2022-06-05"),
            span("2022-09-10", "2022-09-12"),
            span("2022-10-01", "2022-10-07"),
        ]
        .concat();
        let workdays =
            ["2022-01-29", "2022-01-30", "2022-04-02", "2022-04-24", "2022-05-07", "2022-10-08", "2022-10-09"];
        Calendar::of([(2022, holidays, workdays.iter().map(|s| d(s)).collect())])
    }

    #[test]
    fn spring_festival_and_national_day() {
        let c = cal_2022();
        assert_eq!(c.after_working_days(d("2022-01-28"), 7), Ok(d("2022-02-11")));
        // 09-30 (Fri) + 7: 10-08 and 10-09 are worked, 10-10 … 10-14 → the 7th is 10-14.
        assert_eq!(c.after_working_days(d("2022-09-30"), 7), Ok(d("2022-10-14")));
        // Counting starts the day after: 0 working days after a day is the day itself.
        assert_eq!(c.after_working_days(d("2022-03-01"), 0), Ok(d("2022-03-01")));
        assert_eq!(c.after_working_days(d("2022-03-04"), 1), Ok(d("2022-03-07")));
        assert_eq!(c.is_working_day(d("2022-01-30")), Ok(true));
        assert_eq!(c.is_working_day(d("2022-02-01")), Ok(false));
        assert_eq!(c.is_working_day(d("2022-02-12")), Ok(false));
    }

    #[test]
    fn a_year_without_a_calendar_is_an_error() {
        let c = cal_2022();
        assert_eq!(c.after_working_days(d("2022-12-28"), 7), Err(MissingYear(2023)));
        assert_eq!(c.is_working_day(d("2021-12-31")), Err(MissingYear(2021)));
    }
}
