//! A period on the command line: `2026-10` (a month), `2026-W41` (an ISO
//! week), `2026-Q4` (a quarter) or `2026-10-14` (a day), parsed into a
//! [`PeriodArg`] that can step back period by period and becomes the
//! scoring API's [`Period`](kpi_proto::common::Period).
//!
//! Self-contained on purpose (chrono and the generated protos only), so it
//! can be shared by every command that takes a period.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};
use kpi_proto::common as cpb;

/// The length of a period given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodKind {
    /// One day, `2026-10-14`.
    Day,
    /// One ISO week (Monday to Sunday), `2026-W41`.
    Week,
    /// One calendar month, `2026-10`.
    Month,
    /// One calendar quarter, `2026-Q4`.
    Quarter,
}

/// A period: its length and its first day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodArg {
    /// The length.
    pub kind: PeriodKind,
    /// The first local day of the period.
    pub start: NaiveDate,
}

/// What is wrong with a period argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid period `{input}`: {why} (use 2026-10, 2026-W41, 2026-Q4 or 2026-10-14)")]
pub struct PeriodError {
    input: String,
    why: String,
}

impl PeriodError {
    /// What is wrong, without the input.
    pub fn why(&self) -> &str {
        &self.why
    }
}

impl PeriodArg {
    /// The period just before this one, of the same length.
    pub fn previous(self) -> Option<PeriodArg> {
        let start = match self.kind {
            PeriodKind::Day => self.start.checked_sub_days(Days::new(1)),
            PeriodKind::Week => self.start.checked_sub_days(Days::new(7)),
            PeriodKind::Month => self.start.checked_sub_months(Months::new(1)),
            PeriodKind::Quarter => self.start.checked_sub_months(Months::new(3)),
        }?;
        Some(PeriodArg { start, ..self })
    }

    /// The last `count` periods ending with this one, oldest first.
    pub fn trailing(self, count: usize) -> Vec<PeriodArg> {
        let mut periods: Vec<PeriodArg> = std::iter::successors(Some(self), |p| p.previous())
            .take(count)
            .collect();
        periods.reverse();
        periods
    }

    /// The scoring API's period (its kind and first day).
    pub fn to_proto(self) -> cpb::Period {
        let kind = match self.kind {
            PeriodKind::Day => cpb::PeriodKind::Day,
            PeriodKind::Week => cpb::PeriodKind::Week,
            PeriodKind::Month => cpb::PeriodKind::Month,
            PeriodKind::Quarter => cpb::PeriodKind::Quarter,
        };
        cpb::Period {
            kind: kind as i32,
            date: self.start.format("%Y-%m-%d").to_string(),
            end_date: String::new(),
        }
    }
}

/// The same syntax as parsed: `2026-10`, `2026-W41`, `2026-Q4`, `2026-10-14`.
impl fmt::Display for PeriodArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.start;
        match self.kind {
            PeriodKind::Day => write!(f, "{}", s.format("%Y-%m-%d")),
            PeriodKind::Week => {
                let week = s.iso_week();
                write!(f, "{}-W{:02}", week.year(), week.week())
            }
            PeriodKind::Month => write!(f, "{}", s.format("%Y-%m")),
            PeriodKind::Quarter => write!(f, "{}-Q{}", s.year(), s.month0() / 3 + 1),
        }
    }
}

impl FromStr for PeriodArg {
    type Err = PeriodError;

    fn from_str(input: &str) -> Result<PeriodArg, PeriodError> {
        let fail = |why: &str| PeriodError {
            input: input.into(),
            why: why.into(),
        };
        let text = input.trim();
        let (year, rest) = text
            .split_once('-')
            .ok_or_else(|| fail("expected YEAR-…"))?;
        if year.len() != 4 {
            return Err(fail("the year must have four digits"));
        }
        let year: i32 = number(year).ok_or_else(|| fail("the year is not a number"))?;
        let (kind, start) = if let Some(week) = rest.strip_prefix(['W', 'w']) {
            let week = number(week).ok_or_else(|| fail("the week is not a number"))?;
            let start = NaiveDate::from_isoywd_opt(year, week, Weekday::Mon)
                .ok_or_else(|| fail(&format!("{year} has no ISO week {week}")))?;
            (PeriodKind::Week, start)
        } else if let Some(quarter) = rest.strip_prefix(['Q', 'q']) {
            let quarter: u32 = number(quarter)
                .filter(|q| (1..=4).contains(q))
                .ok_or_else(|| fail("the quarter must be Q1 to Q4"))?;
            let start = NaiveDate::from_ymd_opt(year, quarter * 3 - 2, 1)
                .ok_or_else(|| fail("the year is out of range"))?;
            (PeriodKind::Quarter, start)
        } else if rest.len() == 2 {
            let month = number(rest).ok_or_else(|| fail("the month is not a number"))?;
            let start = NaiveDate::from_ymd_opt(year, month, 1)
                .ok_or_else(|| fail("the month must be 01 to 12"))?;
            (PeriodKind::Month, start)
        } else {
            let day = NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| fail("not a date YYYY-MM-DD"))?;
            (PeriodKind::Day, day)
        };
        Ok(PeriodArg { kind, start })
    }
}

/// Digits only (no sign, no spaces), as a number.
fn number<T: FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> PeriodArg {
        text.parse().expect(text)
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect(text)
    }

    #[test]
    fn parses_the_four_forms_and_prints_them_back() {
        let cases = [
            ("2026-10", PeriodKind::Month, "2026-10-01"),
            ("2026-W41", PeriodKind::Week, "2026-10-05"),
            ("2026-Q4", PeriodKind::Quarter, "2026-10-01"),
            ("2026-10-14", PeriodKind::Day, "2026-10-14"),
            // ISO week 1 of 2027 starts in 2026.
            ("2027-W01", PeriodKind::Week, "2027-01-04"),
            ("2026-W53", PeriodKind::Week, "2026-12-28"),
        ];
        for (text, kind, start) in cases {
            let period = parse(text);
            assert_eq!(period.kind, kind, "{text}");
            assert_eq!(period.start, date(start), "{text}");
            assert_eq!(period.to_string(), text);
            assert_eq!(period.to_proto().date, start);
        }
    }

    #[test]
    fn rejects_malformed_periods_saying_why() {
        for (text, why) in [
            ("2026", "expected YEAR-"),
            ("26-10", "four digits"),
            ("2026-13", "01 to 12"),
            ("2026-Q5", "Q1 to Q4"),
            ("2026-W54", "no ISO week 54"),
            ("2026-02-30", "not a date"),
            ("2026-W-1", "not a number"),
            ("october", "expected YEAR-"),
        ] {
            let error = text.parse::<PeriodArg>().expect_err(text).to_string();
            assert!(error.contains(why), "{text}: {error}");
            assert!(error.contains(text), "{text}: {error}");
        }
    }

    #[test]
    fn steps_back_across_year_boundaries() {
        let labels = |text: &str, n: usize| -> Vec<String> {
            parse(text)
                .trailing(n)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(labels("2026-02", 3), ["2025-12", "2026-01", "2026-02"]);
        assert_eq!(labels("2026-W02", 3), ["2025-W52", "2026-W01", "2026-W02"]);
        assert_eq!(labels("2026-Q1", 2), ["2025-Q4", "2026-Q1"]);
        assert_eq!(labels("2026-03-01", 2), ["2026-02-28", "2026-03-01"]);
        assert_eq!(
            parse("2026-10").to_proto().kind,
            cpb::PeriodKind::Month as i32
        );
    }
}
