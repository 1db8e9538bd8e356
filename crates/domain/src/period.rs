//! Reporting periods: a day, an ISO week, a month, a quarter or a custom
//! range of local dates in the tenant's time zone, half-open `[start, end)`.
//! A period turns into UTC bounds with [`Period::bounds`].

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::calendar::local_to_utc;
use crate::error::{FieldViolation, Violations};

/// The longest custom period, in days.
const MAX_CUSTOM_DAYS: i64 = 366;

/// The granularity of a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// One local day.
    Day,
    /// One ISO week, Monday to the next Monday.
    Week,
    /// One calendar month.
    Month,
    /// One calendar quarter (January, April, July, October).
    Quarter,
    /// An explicit range of at most 366 days.
    Custom,
}

/// A range of local dates `[start, end)` of some kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Period {
    /// The granularity.
    pub kind: PeriodKind,
    /// The first local date, included.
    pub start: NaiveDate,
    /// The local date after the last one, excluded.
    pub end: NaiveDate,
}

impl Period {
    /// The period of `kind` containing `date` (Day: that day; Week: ISO week Monday..next Monday; Month; Quarter). For Custom, `end` is required and must be after `date`.
    ///
    /// Violations: `period.end_date` for a custom period without an end,
    /// with `end <= date`, or longer than 366 days; `period.kind` when an end
    /// date is given for a kind other than custom.
    pub fn containing(
        kind: PeriodKind,
        date: NaiveDate,
        end: Option<NaiveDate>,
    ) -> Result<Period, Violations> {
        match (kind, end) {
            (PeriodKind::Custom, None) => Err(Violations::one(
                "period.end_date",
                "a custom period needs an end date",
            )),
            (PeriodKind::Custom, Some(end)) => {
                let days = (end - date).num_days();
                if end <= date {
                    Err(Violations::one(
                        "period.end_date",
                        format!("must be after the start date {date}"),
                    ))
                } else if days > MAX_CUSTOM_DAYS {
                    Err(Violations::one(
                        "period.end_date",
                        format!(
                            "a custom period is at most {MAX_CUSTOM_DAYS} days long, this one is {days}"
                        ),
                    ))
                } else {
                    Ok(Period {
                        kind,
                        start: date,
                        end,
                    })
                }
            }
            (_, Some(_)) => Err(Violations::one(
                "period.kind",
                "an end date is only allowed for a custom period",
            )),
            (_, None) => Ok(Self::fixed(kind, date)),
        }
    }

    /// [`containing`](Self::containing) from `YYYY-MM-DD` strings; an empty
    /// `end_date` means none. A malformed date is a violation on
    /// `period.date` / `period.end_date` (both reported together).
    pub fn parse(kind: PeriodKind, date: &str, end_date: &str) -> Result<Period, Violations> {
        let mut out = Vec::new();
        let start = parse_date(date);
        if start.is_none() {
            out.push(FieldViolation::new(
                "period.date",
                format!("{date:?} is not a date as YYYY-MM-DD"),
            ));
        }
        let end = if end_date.is_empty() {
            Some(None)
        } else {
            let end = parse_date(end_date);
            if end.is_none() {
                out.push(FieldViolation::new(
                    "period.end_date",
                    format!("{end_date:?} is not a date as YYYY-MM-DD"),
                ));
            }
            end.map(Some)
        };
        match (start, end) {
            (Some(start), Some(end)) => Self::containing(kind, start, end),
            _ => Err(Violations(out)),
        }
    }

    /// The previous period of the same kind (Custom: same number of days
    /// immediately before). Saturates at the first representable date.
    pub fn previous(&self) -> Period {
        match self.kind {
            PeriodKind::Custom => {
                let days = self.days();
                Period {
                    kind: self.kind,
                    start: add_days(self.start, -days),
                    end: self.start,
                }
            }
            kind => Self::fixed(kind, add_days(self.start, -1)),
        }
    }

    /// The next period of the same kind (Custom: same number of days
    /// immediately after). Saturates at the last representable date.
    pub fn next(&self) -> Period {
        match self.kind {
            PeriodKind::Custom => {
                let days = self.days();
                Period {
                    kind: self.kind,
                    start: self.end,
                    end: add_days(self.end, days),
                }
            }
            kind => Self::fixed(kind, self.end),
        }
    }

    /// A display label: `2026-10-14`, `2026-W42` (ISO week-year and week),
    /// `2026-10`, `2026-Q4`, or `2026-10-01..2026-10-15` for a custom period
    /// (exclusive end).
    pub fn label(&self) -> String {
        let start = self.start;
        match self.kind {
            PeriodKind::Day => ymd(start),
            PeriodKind::Week => {
                let week = start.iso_week();
                format!("{}-W{:02}", year(week.year()), week.week())
            }
            PeriodKind::Month => format!("{}-{:02}", year(start.year()), start.month()),
            PeriodKind::Quarter => {
                format!("{}-Q{}", year(start.year()), start.month0() / 3 + 1)
            }
            PeriodKind::Custom => format!("{}..{}", ymd(start), ymd(self.end)),
        }
    }

    /// The UTC instants of the local midnights starting `start` and `end`
    /// in `tz`. A midnight inside a DST gap maps to the first valid instant
    /// after it; an ambiguous one to its earlier instant.
    pub fn bounds(&self, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            local_to_utc(tz, self.start.and_time(NaiveTime::MIN)),
            local_to_utc(tz, self.end.and_time(NaiveTime::MIN)),
        )
    }

    /// The number of local dates in the period.
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }

    /// The non-custom period of `kind` containing `date`.
    fn fixed(kind: PeriodKind, date: NaiveDate) -> Period {
        let (start, end) = match kind {
            PeriodKind::Day | PeriodKind::Custom => (date, add_days(date, 1)),
            PeriodKind::Week => {
                let monday = add_days(date, -i64::from(date.weekday().num_days_from_monday()));
                (monday, add_days(monday, 7))
            }
            PeriodKind::Month => {
                let first = date.with_day(1).unwrap_or(date);
                (first, add_months(first, 1))
            }
            PeriodKind::Quarter => {
                let first_month = date.month0() / 3 * 3 + 1;
                let first = NaiveDate::from_ymd_opt(date.year(), first_month, 1).unwrap_or(date);
                (first, add_months(first, 3))
            }
        };
        Period { kind, start, end }
    }
}

/// `date + days`, saturating at the representable range.
fn add_days(date: NaiveDate, days: i64) -> NaiveDate {
    let fallback = if days < 0 {
        NaiveDate::MIN
    } else {
        NaiveDate::MAX
    };
    TimeDelta::try_days(days)
        .and_then(|delta| date.checked_add_signed(delta))
        .unwrap_or(fallback)
}

/// `date + months`, saturating at the last representable date.
fn add_months(date: NaiveDate, months: u32) -> NaiveDate {
    date.checked_add_months(Months::new(months))
        .unwrap_or(NaiveDate::MAX)
}

/// A strict `YYYY-MM-DD` date.
fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// `YYYY-MM-DD`, the year zero-padded to four digits.
fn ymd(date: NaiveDate) -> String {
    format!(
        "{}-{:02}-{:02}",
        year(date.year()),
        date.month(),
        date.day()
    )
}

/// A year zero-padded to four digits (sign kept for negative years).
fn year(y: i32) -> String {
    if y < 0 {
        format!("-{:04}", y.unsigned_abs())
    } else {
        format!("{y:04}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{Asia, Europe};

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn period(kind: PeriodKind, d: &str) -> Period {
        Period::containing(kind, date(d), None).unwrap()
    }

    fn span(p: &Period) -> (String, String) {
        (p.start.to_string(), p.end.to_string())
    }

    fn fields(e: &Violations) -> Vec<&str> {
        e.0.iter().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn day() {
        let p = period(PeriodKind::Day, "2026-10-14");
        assert_eq!(span(&p), ("2026-10-14".into(), "2026-10-15".into()));
        assert_eq!(p.label(), "2026-10-14");
        assert_eq!(p.days(), 1);
        assert_eq!(p.previous().label(), "2026-10-13");
        assert_eq!(p.next().label(), "2026-10-15");
        let eve = period(PeriodKind::Day, "2026-12-31");
        assert_eq!(eve.next().label(), "2027-01-01");
        assert_eq!(eve.next().previous(), eve);
    }

    #[test]
    fn week() {
        // 2026-10-14 is a Wednesday in ISO week 42.
        let p = period(PeriodKind::Week, "2026-10-14");
        assert_eq!(span(&p), ("2026-10-12".into(), "2026-10-19".into()));
        assert_eq!(p.label(), "2026-W42");
        assert_eq!(p.days(), 7);
        assert_eq!(p.previous().label(), "2026-W41");
        assert_eq!(p.next().label(), "2026-W43");
        assert_eq!(period(PeriodKind::Week, "2026-10-12"), p);
        assert_eq!(period(PeriodKind::Week, "2026-10-18"), p);
    }

    #[test]
    fn week_across_a_year_boundary() {
        // 2026 starts on a Thursday, so it has 53 ISO weeks; 2026-12-31 (Thu)
        // and 2027-01-01 (Fri) are both in 2026-W53.
        let p = period(PeriodKind::Week, "2026-12-31");
        assert_eq!(span(&p), ("2026-12-28".into(), "2027-01-04".into()));
        assert_eq!(p.label(), "2026-W53");
        assert_eq!(period(PeriodKind::Week, "2027-01-01"), p);
        assert_eq!(p.next().label(), "2027-W01");
        assert_eq!(p.next().start, date("2027-01-04"));
        // 2024-12-30 (Mon) belongs to 2025-W01.
        let q = period(PeriodKind::Week, "2024-12-31");
        assert_eq!(q.label(), "2025-W01");
        assert_eq!(q.start, date("2024-12-30"));
        assert_eq!(q.previous().label(), "2024-W52");
        // 2021-01-03 (Sun) is still 2020-W53.
        assert_eq!(period(PeriodKind::Week, "2021-01-03").label(), "2020-W53");
    }

    #[test]
    fn month() {
        let p = period(PeriodKind::Month, "2026-10-14");
        assert_eq!(span(&p), ("2026-10-01".into(), "2026-11-01".into()));
        assert_eq!(p.label(), "2026-10");
        assert_eq!(p.days(), 31);
        assert_eq!(p.previous().label(), "2026-09");
        assert_eq!(p.previous().days(), 30);
        assert_eq!(p.next().label(), "2026-11");
    }

    #[test]
    fn month_rollover_and_leap_february() {
        let dec = period(PeriodKind::Month, "2026-12-31");
        assert_eq!(span(&dec), ("2026-12-01".into(), "2027-01-01".into()));
        assert_eq!(dec.next().label(), "2027-01");
        assert_eq!(dec.next().previous(), dec);
        let jan = period(PeriodKind::Month, "2027-01-15");
        assert_eq!(jan.previous(), dec);

        let feb = period(PeriodKind::Month, "2028-02-29");
        assert_eq!(span(&feb), ("2028-02-01".into(), "2028-03-01".into()));
        assert_eq!(feb.days(), 29);
        assert_eq!(period(PeriodKind::Month, "2026-02-10").days(), 28);
        assert_eq!(period(PeriodKind::Month, "2100-02-10").days(), 28);
        assert_eq!(period(PeriodKind::Month, "2000-02-10").days(), 29);
        assert_eq!(period(PeriodKind::Month, "2028-01-31").next(), feb);
        assert_eq!(period(PeriodKind::Month, "2028-03-31").previous(), feb);
        assert_eq!(
            period(PeriodKind::Day, "2028-02-28").next().label(),
            "2028-02-29"
        );
    }

    #[test]
    fn quarter() {
        let p = period(PeriodKind::Quarter, "2026-11-30");
        assert_eq!(span(&p), ("2026-10-01".into(), "2027-01-01".into()));
        assert_eq!(p.label(), "2026-Q4");
        assert_eq!(p.days(), 92);
        assert_eq!(p.previous().label(), "2026-Q3");
        assert_eq!(p.next().label(), "2027-Q1");
        let q1 = period(PeriodKind::Quarter, "2026-03-31");
        assert_eq!(span(&q1), ("2026-01-01".into(), "2026-04-01".into()));
        assert_eq!(q1.label(), "2026-Q1");
        assert_eq!(q1.previous().label(), "2025-Q4");
        assert_eq!(
            span(&q1.previous()),
            ("2025-10-01".into(), "2026-01-01".into())
        );
        assert_eq!(period(PeriodKind::Quarter, "2028-02-29").days(), 91);
        assert_eq!(period(PeriodKind::Quarter, "2026-05-01").label(), "2026-Q2");
        assert_eq!(period(PeriodKind::Quarter, "2026-07-01").label(), "2026-Q3");
    }

    #[test]
    fn custom() {
        let p = Period::containing(
            PeriodKind::Custom,
            date("2026-10-01"),
            Some(date("2026-10-15")),
        )
        .unwrap();
        assert_eq!(p.label(), "2026-10-01..2026-10-15");
        assert_eq!(p.days(), 14);
        let prev = p.previous();
        assert_eq!(prev.kind, PeriodKind::Custom);
        assert_eq!(span(&prev), ("2026-09-17".into(), "2026-10-01".into()));
        let next = p.next();
        assert_eq!(span(&next), ("2026-10-15".into(), "2026-10-29".into()));
        assert_eq!(next.previous(), p);
        // A leap-year custom period of exactly 366 days is allowed.
        let year = Period::containing(
            PeriodKind::Custom,
            date("2028-01-01"),
            Some(date("2029-01-01")),
        )
        .unwrap();
        assert_eq!(year.days(), 366);
        assert_eq!(year.previous().start, date("2026-12-31")); // 366 days before
    }

    #[test]
    fn custom_violations() {
        let d = date("2026-10-01");
        let missing = Period::containing(PeriodKind::Custom, d, None).unwrap_err();
        assert_eq!(fields(&missing), ["period.end_date"]);
        let same = Period::containing(PeriodKind::Custom, d, Some(d)).unwrap_err();
        assert_eq!(fields(&same), ["period.end_date"]);
        let before =
            Period::containing(PeriodKind::Custom, d, Some(date("2026-09-30"))).unwrap_err();
        assert_eq!(fields(&before), ["period.end_date"]);
        let long = Period::containing(PeriodKind::Custom, d, Some(date("2027-10-03"))).unwrap_err();
        assert_eq!(fields(&long), ["period.end_date"]);
        let not_custom =
            Period::containing(PeriodKind::Month, d, Some(date("2026-11-01"))).unwrap_err();
        assert_eq!(fields(&not_custom), ["period.kind"]);
    }

    #[test]
    fn parse() {
        let p = Period::parse(PeriodKind::Week, "2026-10-14", "").unwrap();
        assert_eq!(p.label(), "2026-W42");
        let c = Period::parse(PeriodKind::Custom, "2026-10-01", "2026-10-15").unwrap();
        assert_eq!(c.label(), "2026-10-01..2026-10-15");

        let bad = Period::parse(PeriodKind::Day, "2026-13-01", "").unwrap_err();
        assert_eq!(fields(&bad), ["period.date"]);
        let both = Period::parse(PeriodKind::Custom, "2026-02-30", "tomorrow").unwrap_err();
        assert_eq!(fields(&both), ["period.date", "period.end_date"]);
        for loose in [
            "2026-1-01",
            "2026-10-1",
            "+2026-10-01",
            " 2026-10-01",
            "2026/10/01",
            "26-10-01",
        ] {
            let e = Period::parse(PeriodKind::Day, loose, "").unwrap_err();
            assert_eq!(fields(&e), ["period.date"], "{loose:?}");
        }
        let no_end = Period::parse(PeriodKind::Custom, "2026-10-01", "").unwrap_err();
        assert_eq!(fields(&no_end), ["period.end_date"]);
        let reversed = Period::parse(PeriodKind::Custom, "2026-10-15", "2026-10-01").unwrap_err();
        assert_eq!(fields(&reversed), ["period.end_date"]);
    }

    #[test]
    fn bounds_in_asia_shanghai() {
        let p = period(PeriodKind::Month, "2026-10-14");
        let (start, end) = p.bounds(Asia::Shanghai);
        assert_eq!(start, utc("2026-09-30T16:00:00Z"));
        assert_eq!(end, utc("2026-10-31T16:00:00Z"));
        let (s, e) = period(PeriodKind::Day, "2026-10-01").bounds(Asia::Shanghai);
        assert_eq!((e - s).num_hours(), 24);
        assert_eq!(
            period(PeriodKind::Day, "2026-10-01").bounds(Tz::UTC).0,
            utc("2026-10-01T00:00:00Z")
        );
    }

    #[test]
    fn bounds_across_dst_in_europe_berlin() {
        let spring = period(PeriodKind::Day, "2026-03-29");
        let (s, e) = spring.bounds(Europe::Berlin);
        assert_eq!(s, utc("2026-03-28T23:00:00Z"));
        assert_eq!(e, utc("2026-03-29T22:00:00Z"));
        assert_eq!((e - s).num_hours(), 23);

        let autumn = period(PeriodKind::Day, "2026-10-25");
        let (s, e) = autumn.bounds(Europe::Berlin);
        assert_eq!(s, utc("2026-10-24T22:00:00Z"));
        assert_eq!(e, utc("2026-10-25T23:00:00Z"));
        assert_eq!((e - s).num_hours(), 25);

        let (s, e) = period(PeriodKind::Month, "2026-03-10").bounds(Europe::Berlin);
        assert_eq!((e - s).num_hours(), 31 * 24 - 1);
    }

    #[test]
    fn bounds_with_midnight_in_a_dst_gap() {
        // America/Santiago springs forward at local midnight: 2026-09-06
        // 00:00 does not exist, the day starts at 01:00 -03 = 04:00Z.
        let p = period(PeriodKind::Day, "2026-09-06");
        let (s, e) = p.bounds(chrono_tz::America::Santiago);
        assert_eq!(s, utc("2026-09-06T04:00:00Z"));
        assert_eq!((e - s).num_hours(), 23);
    }

    #[test]
    fn consecutive_periods_tile() {
        for kind in [
            PeriodKind::Day,
            PeriodKind::Week,
            PeriodKind::Month,
            PeriodKind::Quarter,
        ] {
            let mut p = period(kind, "2025-11-17");
            for _ in 0..60 {
                let n = p.next();
                assert_eq!(n.start, p.end, "{kind:?}");
                assert_eq!(n.previous(), p, "{kind:?}");
                assert!(n.days() >= 1);
                p = n;
            }
        }
    }

    #[test]
    fn kind_serde_is_snake_case() {
        assert_eq!(
            serde_json::to_string(&PeriodKind::Quarter).unwrap(),
            "\"quarter\""
        );
        assert_eq!(
            serde_json::from_str::<PeriodKind>("\"custom\"").unwrap(),
            PeriodKind::Custom
        );
    }

    #[test]
    fn extremes_do_not_panic() {
        let last = Period::containing(PeriodKind::Day, NaiveDate::MAX, None).unwrap();
        let _ = last.next();
        let first = Period::containing(PeriodKind::Month, NaiveDate::MIN, None).unwrap();
        let _ = first.previous();
        let _ = first.label();
    }
}
