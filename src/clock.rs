//! The service's notion of "now": one clock, read once per request, so that every rule of a request sees the same
//! instant and the same business date ("today" at the bureau, Asia/Shanghai). Tests move it (e.g. across midnight in
//! Shanghai, 16:00 UTC) without waiting; it keeps running from wherever it was set.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, DurationRound, NaiveDate, NaiveDateTime, TimeDelta, Utc};

/// An instant and the bureau's date at that instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// UTC, truncated to microseconds so that it round-trips identically through both databases.
    pub at: NaiveDateTime,
    /// The date in Asia/Shanghai.
    pub today: NaiveDate,
}

impl Now {
    pub fn from_utc(at: DateTime<Utc>) -> Self {
        let at = at.duration_trunc(TimeDelta::microseconds(1)).expect("truncating to microseconds cannot overflow");
        Self { at: at.naive_utc(), today: at.with_timezone(&chrono_tz::Asia::Shanghai).date_naive() }
    }
}

/// The instant (UTC) at which `day` begins at the bureau (Asia/Shanghai, UTC+8 all year): for date windows over
/// instants.
pub fn bureau_day_start(day: NaiveDate) -> NaiveDateTime {
    day.and_hms_opt(0, 0, 0).expect("midnight exists") - TimeDelta::hours(8)
}

/// The system clock, shifted by an offset that only tests set.
#[derive(Debug, Default)]
pub struct Clock {
    offset_us: AtomicI64,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now(&self) -> Now {
        let offset = TimeDelta::microseconds(self.offset_us.load(Ordering::Relaxed));
        Now::from_utc(Utc::now() + offset)
    }

    /// Makes it `at` now; the clock runs on from there.
    pub fn set(&self, at: DateTime<Utc>) {
        let offset = (at - Utc::now()).num_microseconds().unwrap_or(0);
        self.offset_us.store(offset, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bureau_date_changes_at_16_utc() {
        let before = Now::from_utc("2026-03-31T15:59:59Z".parse().unwrap());
        let after = Now::from_utc("2026-03-31T16:00:00Z".parse().unwrap());
        assert_eq!(before.today.to_string(), "2026-03-31");
        assert_eq!(after.today.to_string(), "2026-04-01");
        let clock = Clock::system();
        clock.set("2026-03-31T15:59:59Z".parse().unwrap());
        let now = clock.now();
        assert_eq!(now.today.to_string(), "2026-03-31");
        assert!(now.at >= before.at && now.at < before.at + TimeDelta::seconds(5));
    }
}
