//! Fiscal years and their monthly periods.
//!
//! A fiscal year runs from its start to the day before the same date a year later, unless it is
//! flagged short. Its periods are months counted from its start (with the default 1 July start,
//! calendar months); a period is named by its first day.

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::values::FiscalYearStart;

/// One fiscal year of an organization's calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiscalYear {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub short: bool,
}

impl FiscalYear {
    /// The first day a fiscal year may start on.
    pub const EARLIEST: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
        Some(day) => day,
        None => panic!("1900-01-01 exists"),
    };
    /// The last day a fiscal year may end on.
    pub const LATEST: NaiveDate = match NaiveDate::from_ymd_opt(2999, 12, 31) {
        Some(day) => day,
        None => panic!("2999-12-31 exists"),
    };

    /// The last day of a full year that begins on `start`.
    pub fn full_year_end(start: NaiveDate) -> Option<NaiveDate> {
        start.checked_add_months(Months::new(12))?.pred_opt()
    }

    /// Whether `start` is the organization's fiscal-year start day.
    pub fn starts_on(start: NaiveDate, fiscal_year_start: FiscalYearStart) -> bool {
        start.month() == u32::from(fiscal_year_start.month())
            && start.day() == u32::from(fiscal_year_start.day())
    }

    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date <= self.end
    }

    pub fn overlaps(&self, other: &FiscalYear) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    /// The first day of the period that holds `date` (which must lie in the year).
    pub fn period_of(&self, date: NaiveDate) -> Option<NaiveDate> {
        self.periods().take_while(|start| *start <= date).last()
    }

    /// The first days of the year's periods, in order.
    pub fn periods(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        (0u32..)
            .map_while(move |month| self.start.checked_add_months(Months::new(month)))
            .take_while(move |start| *start <= self.end)
    }

    /// The last day of the period that begins on `period`.
    pub fn period_end(&self, period: NaiveDate) -> NaiveDate {
        period
            .checked_add_months(Months::new(1))
            .and_then(|next| next.pred_opt())
            .map_or(self.end, |end| end.min(self.end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn a_july_year_has_twelve_calendar_months() {
        let start = date("2025-07-01");
        let year = FiscalYear {
            start,
            end: FiscalYear::full_year_end(start).unwrap(),
            short: false,
        };
        assert_eq!(year.end, date("2026-06-30"));
        let periods: Vec<_> = year.periods().collect();
        assert_eq!(periods.len(), 12);
        assert_eq!(periods[1], date("2025-08-01"));
        assert_eq!(year.period_of(date("2025-08-31")), Some(date("2025-08-01")));
        assert_eq!(year.period_end(date("2026-02-01")), date("2026-02-28"));
    }

    #[test]
    fn a_short_year_ends_its_last_period_early() {
        let year = FiscalYear {
            start: date("2025-01-15"),
            end: date("2025-06-30"),
            short: true,
        };
        let periods: Vec<_> = year.periods().collect();
        assert_eq!(periods.len(), 6);
        assert_eq!(year.period_end(date("2025-06-15")), date("2025-06-30"));
        assert_eq!(year.period_of(date("2025-02-14")), Some(date("2025-01-15")));
    }
}
