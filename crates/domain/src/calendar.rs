//! Business calendars: a tenant's weekly opening hours, holidays and make-up
//! working days in its IANA time zone, and the business-time arithmetic the
//! duration KPIs (first response time, resolution time) need.
//!
//! Business time is computed day by day in the calendar's time zone: each
//! local day's opening intervals are converted to UTC instants (DST-safe, see
//! [`BusinessCalendar::business_seconds`]) and intersected with the measured
//! span, so the cost is proportional to the number of days spanned.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use chrono::offset::LocalResult;
use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{FieldViolation, Violations};

/// Minutes in a day; the largest valid [`HourMinute`] (`24:00`).
const MINUTES_PER_DAY: u16 = 1440;

/// Opening hours used on an extra working day when the calendar has no
/// Monday entries: 09:00–18:00.
const FALLBACK_HOURS: (u16, u16) = (9 * 60, 18 * 60);

/// A tenant's business calendar: weekly opening hours in a time zone, minus
/// holidays, plus make-up working days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessCalendar {
    /// The calendar's key within the tenant, e.g. `default`.
    pub key: String,
    /// IANA time zone name, e.g. `Asia/Shanghai`.
    pub time_zone: String,
    /// Opening hours per weekday; several entries per weekday make split
    /// shifts. A weekday without entries is closed.
    #[serde(default)]
    pub weekly_hours: Vec<WeeklyHours>,
    /// Dates on which the business is closed whatever the weekday.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<Holiday>,
    /// Make-up working days (e.g. a Saturday worked in exchange for a
    /// holiday). They use Monday's hours, or 09:00–18:00 when Monday has
    /// none. A date that is also a holiday stays closed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_working_days: Vec<NaiveDate>,
}

/// One opening interval `[open, close)` on one weekday, in local time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyHours {
    /// ISO weekday: 1 = Monday … 7 = Sunday.
    pub day_of_week: u8,
    /// Local opening time.
    pub open: HourMinute,
    /// Local closing time (`24:00` for midnight at the end of the day).
    pub close: HourMinute,
}

/// A closed date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holiday {
    /// The local date.
    pub date: NaiveDate,
    /// Display name, e.g. `National Day`.
    #[serde(default)]
    pub name: String,
}

/// "HH:MM" local time; serde as the string "09:00". 24:00 allowed as a close time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HourMinute {
    /// Minutes since midnight, `0..=1440`.
    pub minutes: u16,
}

impl HourMinute {
    /// `hour:minute`, or `None` outside `00:00..=24:00`.
    pub fn new(hour: u8, minute: u8) -> Option<Self> {
        let minutes = u16::from(hour) * 60 + u16::from(minute);
        (minute < 60 && minutes <= MINUTES_PER_DAY).then_some(Self { minutes })
    }

    /// The hour part (`0..=24` for valid values).
    pub fn hour(self) -> u16 {
        self.minutes / 60
    }

    /// The minute part (`0..=59`).
    pub fn minute(self) -> u16 {
        self.minutes % 60
    }
}

/// Why a string is not an `HH:MM` time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time {input:?}: expected HH:MM between 00:00 and 24:00")]
pub struct ParseHourMinuteError {
    input: String,
}

impl FromStr for HourMinute {
    type Err = ParseHourMinuteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseHourMinuteError {
            input: s.to_string(),
        };
        let (h, m) = s.split_once(':').ok_or_else(err)?;
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !(1..=2).contains(&h.len()) || m.len() != 2 || !digits(h) || !digits(m) {
            return Err(err());
        }
        let hour: u8 = h.parse().map_err(|_| err())?;
        let minute: u8 = m.parse().map_err(|_| err())?;
        Self::new(hour, minute).ok_or_else(err)
    }
}

impl fmt::Display for HourMinute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour(), self.minute())
    }
}

impl Serialize for HourMinute {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HourMinute {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = HourMinute;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a time as \"HH:MM\"")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HourMinute, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl BusinessCalendar {
    /// The default calendar: key `default`, UTC, Monday–Friday 09:00–18:00,
    /// no holidays.
    pub fn utc_default() -> Self {
        let weekly_hours = (1..=5)
            .map(|day_of_week| WeeklyHours {
                day_of_week,
                open: HourMinute {
                    minutes: FALLBACK_HOURS.0,
                },
                close: HourMinute {
                    minutes: FALLBACK_HOURS.1,
                },
            })
            .collect();
        Self {
            key: "default".to_string(),
            time_zone: "UTC".to_string(),
            weekly_hours,
            holidays: Vec::new(),
            extra_working_days: Vec::new(),
        }
    }

    /// Checks the calendar and reports every problem at once: the key
    /// (`[a-z0-9_-]+`), the time zone (an IANA name), each weekly entry
    /// (weekday `1..=7`, times within `00:00..=24:00`, `open < close`, no
    /// overlap with another entry of the same weekday) and duplicate holiday
    /// dates.
    pub fn validate(&self) -> Result<(), Violations> {
        let mut out = Vec::new();

        if self.key.is_empty() {
            out.push(FieldViolation::new("key", "must not be empty"));
        } else if !self
            .key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            out.push(FieldViolation::new(
                "key",
                "must contain only lowercase letters, digits, '_' and '-'",
            ));
        }

        if let Err(e) = self.tz() {
            out.extend(e.0);
        }

        // Entries that are well-formed, for the overlap check: (index, day, open, close).
        let mut sound: Vec<(usize, u8, u16, u16)> = Vec::new();
        for (i, wh) in self.weekly_hours.iter().enumerate() {
            let mut ok = true;
            if !(1..=7).contains(&wh.day_of_week) {
                out.push(FieldViolation::new(
                    format!("weekly_hours[{i}].day_of_week"),
                    "must be 1 (Monday) to 7 (Sunday)",
                ));
                ok = false;
            }
            let mut times_ok = true;
            for (name, t) in [("open", wh.open), ("close", wh.close)] {
                if t.minutes > MINUTES_PER_DAY {
                    out.push(FieldViolation::new(
                        format!("weekly_hours[{i}].{name}"),
                        "must be between 00:00 and 24:00",
                    ));
                    times_ok = false;
                }
            }
            if times_ok && wh.open >= wh.close {
                out.push(FieldViolation::new(
                    format!("weekly_hours[{i}].close"),
                    format!("must be after the opening time {}", wh.open),
                ));
                times_ok = false;
            }
            if !(ok && times_ok) {
                continue;
            }
            let (open, close) = (wh.open.minutes, wh.close.minutes);
            if let Some(&(j, ..)) = sound
                .iter()
                .find(|&&(_, d, o, c)| d == wh.day_of_week && open < c && o < close)
            {
                out.push(FieldViolation::new(
                    format!("weekly_hours[{i}]"),
                    format!("overlaps weekly_hours[{j}] on the same weekday"),
                ));
            }
            sound.push((i, wh.day_of_week, open, close));
        }

        for (i, h) in self.holidays.iter().enumerate() {
            if self.holidays[..i]
                .iter()
                .any(|earlier| earlier.date == h.date)
            {
                out.push(FieldViolation::new(
                    format!("holidays[{i}].date"),
                    format!("duplicate holiday date {}", h.date),
                ));
            }
        }

        Violations::into_result(out)
    }

    /// The parsed time zone; a violation on `time_zone` when it is not an
    /// IANA name.
    pub fn tz(&self) -> Result<Tz, Violations> {
        self.time_zone.parse::<Tz>().map_err(|_| {
            Violations::one(
                "time_zone",
                format!("unknown IANA time zone {:?}", self.time_zone),
            )
        })
    }

    /// Whether `date` (local) is a working day: holidays are off, extra
    /// working days are on, any other date is on when its weekday has
    /// opening hours.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        !Schedule::new(self).hours(date).is_empty()
    }

    /// The number of working days among the local dates `[start, end)`;
    /// 0 when `end <= start`.
    pub fn working_days(&self, start: NaiveDate, end: NaiveDate) -> u32 {
        let schedule = Schedule::new(self);
        let mut count: u32 = 0;
        let mut day = start;
        while day < end {
            if !schedule.hours(day).is_empty() {
                count = count.saturating_add(1);
            }
            match day.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        count
    }

    /// Seconds of business time within `[start, end)`; 0 when
    /// `end <= start`.
    ///
    /// Each local day's opening and closing times are converted to UTC with
    /// the calendar's time zone, so a 09:00–18:00 day counts 9 hours even
    /// when a DST change happens that day. A local time that does not exist
    /// (DST gap) maps to the first instant after the gap; an ambiguous one
    /// (DST overlap) maps to its earlier instant. The cost is proportional to
    /// the number of days spanned. An unknown time zone (rejected by
    /// [`validate`](Self::validate)) is treated as UTC.
    pub fn business_seconds(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> f64 {
        if end <= start {
            return 0.0;
        }
        let tz = self.tz().unwrap_or(Tz::UTC);
        let schedule = Schedule::new(self);

        // A day's intervals lie within its local midnights, so the local
        // dates of `start` and `end` bound the days to visit; one day of
        // margin on each side costs nothing.
        let first = start.with_timezone(&tz).date_naive();
        let first = first.pred_opt().unwrap_or(first);
        let last = end.with_timezone(&tz).date_naive();
        let last = last.succ_opt().unwrap_or(last);

        let mut total = TimeDelta::zero();
        let mut day = first;
        while day <= last {
            for &(open, close) in schedule.hours(day) {
                let from = local_minute_to_utc(tz, day, open).max(start);
                let to = local_minute_to_utc(tz, day, close).min(end);
                if to > from {
                    total += to - from;
                }
            }
            match day.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        total.num_seconds() as f64 + f64::from(total.subsec_nanos()) / 1e9
    }
}

/// The calendar normalised for lookups: per weekday, sorted disjoint opening
/// intervals in minutes; holiday and extra-day sets.
struct Schedule {
    by_weekday: [Vec<(u16, u16)>; 7],
    extra_day: Vec<(u16, u16)>,
    holidays: HashSet<NaiveDate>,
    extra: HashSet<NaiveDate>,
}

impl Schedule {
    fn new(cal: &BusinessCalendar) -> Self {
        let mut by_weekday: [Vec<(u16, u16)>; 7] = Default::default();
        for wh in &cal.weekly_hours {
            let open = wh.open.minutes.min(MINUTES_PER_DAY);
            let close = wh.close.minutes.min(MINUTES_PER_DAY);
            let slot = usize::from(wh.day_of_week).checked_sub(1);
            if let Some(list) = slot.and_then(|s| by_weekday.get_mut(s))
                && open < close
            {
                list.push((open, close));
            }
        }
        for list in &mut by_weekday {
            *list = merge(std::mem::take(list));
        }
        let extra_day = if by_weekday[0].is_empty() {
            vec![FALLBACK_HOURS]
        } else {
            by_weekday[0].clone()
        };
        Self {
            by_weekday,
            extra_day,
            holidays: cal.holidays.iter().map(|h| h.date).collect(),
            extra: cal.extra_working_days.iter().copied().collect(),
        }
    }

    /// The opening intervals of a local date.
    fn hours(&self, date: NaiveDate) -> &[(u16, u16)] {
        if self.holidays.contains(&date) {
            &[]
        } else if self.extra.contains(&date) {
            &self.extra_day
        } else {
            let slot = date.weekday().num_days_from_monday() as usize;
            self.by_weekday.get(slot).map_or(&[], Vec::as_slice)
        }
    }
}

/// Sorts intervals and merges the overlapping or touching ones.
fn merge(mut list: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    list.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::with_capacity(list.len());
    for (open, close) in list {
        match out.last_mut() {
            Some(last) if open <= last.1 => last.1 = last.1.max(close),
            _ => out.push((open, close)),
        }
    }
    out
}

/// The UTC instant of `minutes` after local midnight of `date` (1440 = the
/// next local midnight).
fn local_minute_to_utc(tz: Tz, date: NaiveDate, minutes: u16) -> DateTime<Utc> {
    let midnight = date.and_time(NaiveTime::MIN);
    let local = midnight
        .checked_add_signed(TimeDelta::minutes(i64::from(minutes)))
        .unwrap_or(midnight);
    local_to_utc(tz, local)
}

/// The UTC instant of a local date-time in `tz`, DST-safe: an ambiguous local
/// time (DST overlap) gives its earlier instant; a non-existent one (DST gap)
/// gives the earliest valid instant after it, i.e. the transition itself.
pub(crate) fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    if let Some(t) = earliest(tz, local) {
        return t;
    }
    // In a gap. Walk forward a minute at a time to the first valid local
    // minute (gaps are at most a day long), then back second by second to
    // the gap's end, which is the transition instant.
    let mut probe = local;
    for _ in 0..2 * usize::from(MINUTES_PER_DAY) {
        let Some(next) = probe.checked_add_signed(TimeDelta::minutes(1)) else {
            break;
        };
        probe = next;
        if let Some(mut best) = earliest(tz, probe) {
            let mut back = probe;
            for _ in 0..59 {
                match back.checked_sub_signed(TimeDelta::seconds(1)) {
                    Some(b) if b > local => back = b,
                    _ => break,
                }
                match earliest(tz, back) {
                    Some(t) => best = t,
                    None => break,
                }
            }
            return best;
        }
    }
    // Not reachable with real zone data: use the offset in force at the
    // same wall-clock reading taken as UTC.
    let offset = tz.offset_from_utc_datetime(&local).fix();
    let shifted = local
        .checked_sub_signed(TimeDelta::seconds(i64::from(offset.local_minus_utc())))
        .unwrap_or(local);
    shifted.and_utc()
}

/// The earlier instant of a local time, or `None` in a DST gap.
fn earliest(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hm(s: &str) -> HourMinute {
        s.parse().unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn entry(day_of_week: u8, open: &str, close: &str) -> WeeklyHours {
        WeeklyHours {
            day_of_week,
            open: hm(open),
            close: hm(close),
        }
    }

    fn calendar(tz: &str, weekly_hours: Vec<WeeklyHours>) -> BusinessCalendar {
        BusinessCalendar {
            key: "test".into(),
            time_zone: tz.into(),
            weekly_hours,
            holidays: vec![],
            extra_working_days: vec![],
        }
    }

    fn every_day(tz: &str, open: &str, close: &str) -> BusinessCalendar {
        calendar(tz, (1..=7).map(|d| entry(d, open, close)).collect())
    }

    const H: f64 = 3600.0;

    #[test]
    fn hour_minute_parse_and_display() {
        assert_eq!(hm("09:00").minutes, 540);
        assert_eq!(hm("9:05").minutes, 545);
        assert_eq!(hm("00:00").minutes, 0);
        assert_eq!(hm("24:00").minutes, 1440);
        assert_eq!(hm("9:05").to_string(), "09:05");
        assert_eq!(hm("24:00").to_string(), "24:00");
        for bad in [
            "", "9", "24:01", "25:00", "12:60", "12:5", "123:00", "ab:cd", "-1:00", "12:00:00",
            " 9:00",
        ] {
            assert!(
                bad.parse::<HourMinute>().is_err(),
                "{bad:?} should not parse"
            );
        }
        assert_eq!(HourMinute::new(24, 0), Some(HourMinute { minutes: 1440 }));
        assert_eq!(HourMinute::new(24, 1), None);
        assert_eq!(HourMinute::new(8, 60), None);
    }

    #[test]
    fn hour_minute_serde_is_a_string() {
        assert_eq!(serde_json::to_string(&hm("09:30")).unwrap(), "\"09:30\"");
        let back: HourMinute = serde_json::from_str("\"18:00\"").unwrap();
        assert_eq!(back, hm("18:00"));
        assert!(serde_json::from_str::<HourMinute>("\"18:75\"").is_err());
        assert!(serde_json::from_str::<HourMinute>("540").is_err());
    }

    #[test]
    fn utc_default_is_valid_weekdays_nine_to_six() {
        let cal = BusinessCalendar::utc_default();
        assert_eq!(cal.validate(), Ok(()));
        assert_eq!(cal.key, "default");
        assert_eq!(cal.tz().unwrap(), Tz::UTC);
        assert_eq!(cal.weekly_hours.len(), 5);
        // 2026-10-12 is a Monday.
        assert!(cal.is_working_day(date("2026-10-12")));
        assert!(cal.is_working_day(date("2026-10-16")));
        assert!(!cal.is_working_day(date("2026-10-17")));
        assert!(!cal.is_working_day(date("2026-10-18")));
        let day = cal.business_seconds(utc("2026-10-12T00:00:00Z"), utc("2026-10-13T00:00:00Z"));
        assert_eq!(day, 9.0 * H);
    }

    #[test]
    fn validate_reports_every_violation() {
        let mut cal = calendar(
            "Mars/Olympus",
            vec![
                entry(1, "09:00", "12:00"),
                entry(0, "09:00", "10:00"),
                entry(2, "18:00", "09:00"),
                entry(1, "11:00", "14:00"),
                entry(1, "12:00", "18:00"), // touches [0], overlaps [3]
                entry(8, "10:00", "10:00"),
                WeeklyHours {
                    day_of_week: 3,
                    open: hm("09:00"),
                    close: HourMinute { minutes: 1500 },
                },
            ],
        );
        cal.key = "Bad Key".into();
        cal.holidays = vec![
            Holiday {
                date: date("2026-10-01"),
                name: "National Day".into(),
            },
            Holiday {
                date: date("2026-10-02"),
                name: String::new(),
            },
            Holiday {
                date: date("2026-10-01"),
                name: "again".into(),
            },
        ];
        let err = cal.validate().unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "key",
                "time_zone",
                "weekly_hours[1].day_of_week",
                "weekly_hours[2].close",
                "weekly_hours[3]",
                "weekly_hours[4]",
                "weekly_hours[5].day_of_week",
                "weekly_hours[5].close",
                "weekly_hours[6].close",
                "holidays[2].date",
            ],
            "{err}"
        );
        let mut empty = BusinessCalendar::utc_default();
        empty.key = String::new();
        assert_eq!(empty.validate().unwrap_err().0[0].field, "key");
    }

    #[test]
    fn split_shifts_and_24_00_are_valid() {
        let cal = calendar(
            "Europe/Berlin",
            vec![
                entry(1, "09:00", "12:00"),
                entry(1, "13:00", "18:00"),
                entry(1, "12:00", "13:00"),
                entry(6, "20:00", "24:00"),
                entry(7, "00:00", "02:00"),
            ],
        );
        assert_eq!(cal.validate(), Ok(()));
    }

    #[test]
    fn tz_errors_on_time_zone_field() {
        let cal = calendar("Nowhere/Town", vec![]);
        assert_eq!(cal.tz().unwrap_err().0[0].field, "time_zone");
        assert_eq!(
            calendar("Asia/Shanghai", vec![]).tz().unwrap(),
            chrono_tz::Asia::Shanghai
        );
    }

    #[test]
    fn friday_evening_to_monday_morning() {
        // 2026-10-16 is a Friday.
        let cal = BusinessCalendar::utc_default();
        let s = cal.business_seconds(utc("2026-10-16T17:00:00Z"), utc("2026-10-19T10:00:00Z"));
        assert_eq!(s, 7200.0);
    }

    #[test]
    fn holiday_removes_a_day() {
        // Thursday 17:00 → Monday 10:00: 1 h + Friday 9 h + 1 h.
        let mut cal = BusinessCalendar::utc_default();
        let (a, b) = (utc("2026-10-15T17:00:00Z"), utc("2026-10-19T10:00:00Z"));
        assert_eq!(cal.business_seconds(a, b), 11.0 * H);
        cal.holidays.push(Holiday {
            date: date("2026-10-16"),
            name: "Day off".into(),
        });
        assert_eq!(cal.business_seconds(a, b), 2.0 * H);
        assert!(!cal.is_working_day(date("2026-10-16")));
    }

    #[test]
    fn span_inside_one_day() {
        let cal = BusinessCalendar::utc_default();
        let s = cal.business_seconds(utc("2026-10-14T10:00:00Z"), utc("2026-10-14T12:30:00Z"));
        assert_eq!(s, 2.5 * H);
        let frac =
            cal.business_seconds(utc("2026-10-14T10:00:00.250Z"), utc("2026-10-14T10:00:01Z"));
        assert!((frac - 0.75).abs() < 1e-9);
    }

    #[test]
    fn start_before_opening_and_end_after_closing() {
        let cal = BusinessCalendar::utc_default();
        assert_eq!(
            cal.business_seconds(utc("2026-10-14T07:00:00Z"), utc("2026-10-14T10:00:00Z")),
            H
        );
        assert_eq!(
            cal.business_seconds(utc("2026-10-14T17:00:00Z"), utc("2026-10-14T21:00:00Z")),
            H
        );
        assert_eq!(
            cal.business_seconds(utc("2026-10-14T06:00:00Z"), utc("2026-10-14T23:00:00Z")),
            9.0 * H
        );
        assert_eq!(
            cal.business_seconds(utc("2026-10-14T19:00:00Z"), utc("2026-10-15T08:00:00Z")),
            0.0
        );
    }

    #[test]
    fn weekend_only_and_reversed_spans_are_zero() {
        let cal = BusinessCalendar::utc_default();
        let (sat, sun) = (utc("2026-10-17T10:00:00Z"), utc("2026-10-18T20:00:00Z"));
        assert_eq!(cal.business_seconds(sat, sun), 0.0);
        let (a, b) = (utc("2026-10-14T10:00:00Z"), utc("2026-10-14T12:00:00Z"));
        assert_eq!(cal.business_seconds(b, a), 0.0);
        assert_eq!(cal.business_seconds(a, a), 0.0);
    }

    #[test]
    fn asia_shanghai_is_utc_plus_8() {
        // Monday 2026-10-12 09:00–18:00 CST = 01:00–10:00 UTC.
        let mut cal = BusinessCalendar::utc_default();
        cal.time_zone = "Asia/Shanghai".into();
        assert_eq!(
            cal.business_seconds(utc("2026-10-12T00:00:00Z"), utc("2026-10-12T05:00:00Z")),
            4.0 * H
        );
        // Friday 17:00 CST (09:00Z) to Monday 10:00 CST (02:00Z).
        assert_eq!(
            cal.business_seconds(utc("2026-10-16T09:00:00Z"), utc("2026-10-19T02:00:00Z")),
            2.0 * H
        );
        // Saturday local starts at Friday 16:00Z: Friday 16:00Z–24:00Z is weekend.
        assert_eq!(
            cal.business_seconds(utc("2026-10-16T16:00:00Z"), utc("2026-10-17T00:00:00Z")),
            0.0
        );
    }

    #[test]
    fn europe_berlin_across_spring_forward() {
        // 2026-03-29 (Sunday): 02:00 CET → 03:00 CEST.
        let cal = every_day("Europe/Berlin", "09:00", "18:00");
        assert_eq!(
            cal.business_seconds(utc("2026-03-28T22:00:00Z"), utc("2026-03-29T23:00:00Z")),
            9.0 * H
        );
        // 09:00 CEST = 07:00Z, 18:00 CEST = 16:00Z.
        assert_eq!(
            cal.business_seconds(utc("2026-03-29T07:00:00Z"), utc("2026-03-29T08:00:00Z")),
            H
        );
        assert_eq!(
            cal.business_seconds(utc("2026-03-29T06:00:00Z"), utc("2026-03-29T07:00:00Z")),
            0.0
        );
        // Saturday 00:00 CET to Monday 24:00 CEST: three full days.
        assert_eq!(
            cal.business_seconds(utc("2026-03-27T23:00:00Z"), utc("2026-03-30T22:00:00Z")),
            27.0 * H
        );
    }

    #[test]
    fn europe_berlin_hours_inside_the_dst_gap_and_overlap() {
        // 01:00 CET = 00:00Z; 04:00 CEST = 02:00Z: two real hours.
        let night = every_day("Europe/Berlin", "01:00", "04:00");
        let whole = |d: &str, e: &str| night.business_seconds(utc(d), utc(e));
        assert_eq!(
            whole("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"),
            2.0 * H
        );
        // Opening inside the gap (02:30 does not exist) starts at 03:00 CEST = 01:00Z.
        let gap = every_day("Europe/Berlin", "02:30", "05:00");
        assert_eq!(
            gap.business_seconds(utc("2026-03-28T23:00:00Z"), utc("2026-03-29T22:00:00Z")),
            2.0 * H
        );
        // 2026-10-25: 03:00 CEST → 02:00 CET. 01:00 CEST = 23:00Z, 04:00 CET = 03:00Z.
        assert_eq!(
            whole("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z"),
            4.0 * H
        );
        // Opening at the ambiguous 02:30 takes the earlier instant (00:30Z).
        let overlap = every_day("Europe/Berlin", "02:30", "04:00");
        assert_eq!(
            overlap.business_seconds(utc("2026-10-24T22:00:00Z"), utc("2026-10-25T23:00:00Z")),
            2.5 * H
        );
    }

    #[test]
    fn local_to_utc_picks_the_earliest_valid_instant() {
        let berlin = chrono_tz::Europe::Berlin;
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(
            local_to_utc(berlin, at("2026-03-29 02:30:00")),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            local_to_utc(berlin, at("2026-03-29 02:00:00")),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            local_to_utc(berlin, at("2026-03-29 03:00:00")),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            local_to_utc(berlin, at("2026-10-25 02:30:00")),
            utc("2026-10-25T00:30:00Z")
        );
        // Samoa skipped 2011-12-30 entirely: its first instant is 2011-12-31 00:00 +14.
        let apia = chrono_tz::Pacific::Apia;
        assert_eq!(
            local_to_utc(apia, at("2011-12-30 12:00:00")),
            utc("2011-12-30T10:00:00Z")
        );
    }

    #[test]
    fn split_shifts() {
        let cal = calendar(
            "UTC",
            vec![entry(1, "09:00", "12:00"), entry(1, "13:00", "18:00")],
        );
        // Monday 11:00 → 14:00: 11–12 and 13–14.
        assert_eq!(
            cal.business_seconds(utc("2026-10-12T11:00:00Z"), utc("2026-10-12T14:00:00Z")),
            2.0 * H
        );
        assert_eq!(
            cal.business_seconds(utc("2026-10-12T00:00:00Z"), utc("2026-10-13T00:00:00Z")),
            8.0 * H
        );
        // A gap-only span counts nothing.
        assert_eq!(
            cal.business_seconds(utc("2026-10-12T12:10:00Z"), utc("2026-10-12T12:50:00Z")),
            0.0
        );
    }

    #[test]
    fn extra_working_day_on_a_saturday() {
        // 2026-10-10 is a Saturday.
        let sat = date("2026-10-10");
        let (a, b) = (utc("2026-10-10T00:00:00Z"), utc("2026-10-11T00:00:00Z"));
        let mut cal = BusinessCalendar::utc_default();
        assert!(!cal.is_working_day(sat));
        cal.extra_working_days.push(sat);
        assert!(cal.is_working_day(sat));
        assert_eq!(cal.business_seconds(a, b), 9.0 * H);

        // It takes Monday's (split) hours.
        let mut split = calendar(
            "UTC",
            vec![
                entry(1, "08:00", "10:00"),
                entry(1, "14:00", "15:00"),
                entry(2, "09:00", "18:00"),
            ],
        );
        split.extra_working_days.push(sat);
        assert_eq!(split.business_seconds(a, b), 3.0 * H);

        // Without Monday entries: 09:00–18:00.
        let mut no_monday = calendar("UTC", vec![entry(2, "10:00", "11:00")]);
        no_monday.extra_working_days.push(sat);
        assert_eq!(no_monday.business_seconds(a, b), 9.0 * H);

        // A holiday wins over an extra working day.
        cal.holidays.push(Holiday {
            date: sat,
            name: String::new(),
        });
        assert!(!cal.is_working_day(sat));
        assert_eq!(cal.business_seconds(a, b), 0.0);
    }

    #[test]
    fn working_days_counts_half_open() {
        let mut cal = BusinessCalendar::utc_default();
        assert_eq!(cal.working_days(date("2026-10-01"), date("2026-11-01")), 22);
        assert_eq!(cal.working_days(date("2026-10-12"), date("2026-10-12")), 0);
        assert_eq!(cal.working_days(date("2026-10-13"), date("2026-10-12")), 0);
        assert_eq!(cal.working_days(date("2026-10-12"), date("2026-10-13")), 1);
        cal.holidays.push(Holiday {
            date: date("2026-10-01"),
            name: String::new(),
        });
        cal.extra_working_days.push(date("2026-10-10"));
        assert_eq!(cal.working_days(date("2026-10-01"), date("2026-11-01")), 22);
    }

    #[test]
    fn multi_year_span_is_fast_and_exact() {
        let cal = BusinessCalendar::utc_default();
        let days = cal.working_days(date("2025-01-01"), date("2027-01-01"));
        assert_eq!(days, 522);
        let started = std::time::Instant::now();
        let s = cal.business_seconds(utc("2025-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"));
        assert_eq!(s, f64::from(days) * 9.0 * H);
        // Berlin over two years: every local day still counts 9 hours.
        let berlin = every_day("Europe/Berlin", "09:00", "18:00");
        let s = berlin.business_seconds(utc("2024-12-31T23:00:00Z"), utc("2026-12-31T23:00:00Z"));
        assert_eq!(s, 730.0 * 9.0 * H);
        assert!(started.elapsed().as_secs() < 2);
    }

    #[test]
    fn unknown_time_zone_falls_back_to_utc() {
        let mut cal = BusinessCalendar::utc_default();
        cal.time_zone = "Not/AZone".into();
        assert_eq!(
            cal.business_seconds(utc("2026-10-14T00:00:00Z"), utc("2026-10-15T00:00:00Z")),
            9.0 * H
        );
    }

    #[test]
    fn yaml_round_trip() {
        let mut cal = calendar(
            "Asia/Shanghai",
            vec![
                entry(1, "09:00", "12:00"),
                entry(1, "13:30", "18:00"),
                entry(6, "10:00", "24:00"),
            ],
        );
        cal.key = "cn_support-2".into();
        cal.holidays = vec![
            Holiday {
                date: date("2026-10-01"),
                name: "National Day".into(),
            },
            Holiday {
                date: date("2026-10-02"),
                name: String::new(),
            },
        ];
        cal.extra_working_days = vec![date("2026-10-10")];
        let yaml = serde_yaml_ng::to_string(&cal).unwrap();
        assert!(yaml.contains("09:00"), "{yaml}");
        let back: BusinessCalendar = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(back, cal);

        let default = BusinessCalendar::utc_default();
        let yaml = serde_yaml_ng::to_string(&default).unwrap();
        assert!(!yaml.contains("holidays"), "{yaml}");
        assert_eq!(
            serde_yaml_ng::from_str::<BusinessCalendar>(&yaml).unwrap(),
            default
        );
    }

    #[test]
    fn yaml_hand_written_and_unknown_fields() {
        let yaml = "key: default\ntime_zone: Europe/Berlin\nweekly_hours:\n  - {day_of_week: 1, open: \"09:00\", close: \"17:30\"}\n  - {day_of_week: 2, open: 09:00, close: 24:00}\nholidays:\n  - date: 2026-12-25\n";
        let cal: BusinessCalendar = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(cal.weekly_hours[0].close, hm("17:30"));
        assert_eq!(cal.weekly_hours[1].close.minutes, 1440);
        assert_eq!(cal.holidays[0].name, "");
        assert_eq!(cal.validate(), Ok(()));
        let bad = "key: default\ntime_zone: UTC\ncolour: red\n";
        assert!(serde_yaml_ng::from_str::<BusinessCalendar>(bad).is_err());
        let bad_time = "key: default\ntime_zone: UTC\nweekly_hours:\n  - {day_of_week: 1, open: \"9h\", close: \"17:30\"}\n";
        assert!(serde_yaml_ng::from_str::<BusinessCalendar>(bad_time).is_err());
    }

    fn calendars() -> Vec<BusinessCalendar> {
        let mut berlin = calendar(
            "Europe/Berlin",
            vec![
                entry(1, "09:00", "12:00"),
                entry(1, "13:00", "18:00"),
                entry(2, "08:00", "20:00"),
                entry(3, "00:00", "24:00"),
                entry(5, "09:00", "17:00"),
                entry(7, "01:00", "04:00"),
                entry(7, "02:30", "03:30"), // overlapping (unvalidated) entries still count once
            ],
        );
        berlin.holidays.push(Holiday {
            date: date("2026-03-30"),
            name: String::new(),
        });
        berlin.extra_working_days.push(date("2026-03-28"));
        let mut shanghai = BusinessCalendar::utc_default();
        shanghai.time_zone = "Asia/Shanghai".into();
        vec![
            BusinessCalendar::utc_default(),
            shanghai,
            berlin,
            every_day("America/New_York", "01:30", "02:30"),
        ]
    }

    proptest! {
        #[test]
        fn additive_and_bounded(
            which in 0usize..4,
            base in 1_767_225_600i64..1_798_761_600, // 2026
            d1 in 0i64..20 * 86_400,
            d2 in 0i64..20 * 86_400,
            n1 in 0u32..1_000_000_000,
            n2 in 0u32..1_000_000_000,
        ) {
            let cal = &calendars()[which];
            let a = DateTime::from_timestamp(base, n1).unwrap();
            let b = DateTime::from_timestamp(base + d1, n2).unwrap().max(a);
            let c = DateTime::from_timestamp(base + d1 + d2, n1).unwrap().max(b);
            let ab = cal.business_seconds(a, b);
            let bc = cal.business_seconds(b, c);
            let ac = cal.business_seconds(a, c);
            prop_assert!((ac - (ab + bc)).abs() < 1e-6, "{ac} != {ab} + {bc}");
            let span = (b - a).num_nanoseconds().unwrap() as f64 / 1e9;
            prop_assert!(ab >= 0.0);
            prop_assert!(ab <= span + 1e-9, "{ab} > {span}");
        }
    }
}
