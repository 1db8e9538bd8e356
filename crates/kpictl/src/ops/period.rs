//! Periods as people type them, turned into the proto's
//! `kpi.common.v1.Period` (a kind and a date inside it; a custom range also
//! has an exclusive end date):
//!
//! | typed | kind | sent |
//! |---|---|---|
//! | `2026-10-14` | day | date 2026-10-14 |
//! | `2026-W41` | ISO week | date 2026-10-05 (its Monday) |
//! | `2026-10` | month | date 2026-10-01 |
//! | `2026-Q4` | quarter | date 2026-10-01 |
//! | `2026-10-01..2026-10-15` | custom, both days included | date 2026-10-01, end 2026-10-16 |

use chrono::NaiveDate;
use kpi_proto::common as cpb;

use crate::client::CallError;
use crate::period_arg::PeriodArg;

/// What `--period` accepts, for messages.
const FORMS: &str = "a day (2026-10-14), an ISO week (2026-W41), a month (2026-10), a quarter (2026-Q4) \
     or a range of days, both included (2026-10-01..2026-10-15)";

/// Parses `--period`: a range of days here, the single periods by
/// [`PeriodArg`] (the parser `kpictl report` uses too); anything else is a
/// usage error saying what is accepted.
pub fn parse(text: &str) -> Result<cpb::Period, CallError> {
    let text = text.trim();
    let bad =
        |why: &str| CallError::usage(format!("invalid --period `{text}`: {why}; give {FORMS}"));
    if let Some((first, last)) = text.split_once("..") {
        let first = day(first).ok_or_else(|| bad("the range's first day is not a date"))?;
        let last = day(last).ok_or_else(|| bad("the range's last day is not a date"))?;
        if last < first {
            return Err(bad("the range ends before it starts"));
        }
        let end = last
            .succ_opt()
            .ok_or_else(|| bad("the range ends too late"))?;
        return Ok(period(cpb::PeriodKind::Custom, first, Some(end)));
    }
    text.parse::<PeriodArg>()
        .map(PeriodArg::to_proto)
        .map_err(|e| bad(e.why()))
}

/// `YYYY-MM-DD`, strictly.
fn day(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    (text.len() == 10)
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
}

fn period(kind: cpb::PeriodKind, date: NaiveDate, end: Option<NaiveDate>) -> cpb::Period {
    cpb::Period {
        kind: kind as i32,
        date: date.format("%Y-%m-%d").to_string(),
        end_date: end
            .map(|e| e.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(text: &str) -> (cpb::PeriodKind, String, String) {
        let p = parse(text).unwrap();
        (p.kind(), p.date, p.end_date)
    }

    #[test]
    fn every_form_people_type() {
        use cpb::PeriodKind::*;
        assert_eq!(sent("2026-10-14"), (Day, "2026-10-14".into(), "".into()));
        assert_eq!(sent("2026-W41"), (Week, "2026-10-05".into(), "".into()));
        assert_eq!(sent("2026-W01"), (Week, "2025-12-29".into(), "".into()));
        assert_eq!(sent("2026-10"), (Month, "2026-10-01".into(), "".into()));
        assert_eq!(sent("2026-Q4"), (Quarter, "2026-10-01".into(), "".into()));
        assert_eq!(
            sent("2026-10-01..2026-10-15"),
            (Custom, "2026-10-01".into(), "2026-10-16".into())
        );
        assert_eq!(
            sent("2026-10-31..2026-10-31"),
            (Custom, "2026-10-31".into(), "2026-11-01".into())
        );
    }

    #[test]
    fn anything_else_is_a_usage_error_saying_what_is_accepted() {
        for bad in [
            "",
            "october",
            "2026",
            "2026-13",
            "2026-1",
            "2026-W54",
            "2026-Q5",
            "2026-10-32",
            "2026-02-30",
            "2026-10-15..2026-10-01",
            "2026-10-01..",
            "x-10",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit, crate::ExitCode::Usage, "{bad}");
            assert!(e.message.starts_with("invalid --period"), "{bad}: {e}");
            assert!(e.message.contains("2026-W41"), "{bad}: {e}");
        }
    }
}
