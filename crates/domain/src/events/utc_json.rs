//! An event's time as JSON text, written without `core::fmt`.
//!
//! Every stored event carries its `occurred_at`, and the write path turns
//! thousands of events a second into JSON. chrono writes a time through the
//! formatting machinery, a character at a time; this writes the very same
//! text (RFC 3339, UTC as `Z`, the fraction in 0, 3, 6 or 9 digits, as
//! chrono's own `Serialize` does) into a small buffer. Times chrono writes
//! differently (years outside 0–9999, leap seconds) are left to chrono.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

/// Bytes of the longest time written here: `2025-03-01T06:00:00.123456789Z`.
const LONGEST: usize = 30;

/// Serialises `at` exactly as chrono's `Serialize` for `DateTime<Utc>` does.
pub(crate) fn serialize<S: Serializer>(
    at: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; LONGEST];
    match rfc3339(at, &mut buf).and_then(|text| std::str::from_utf8(text).ok()) {
        Some(text) => serializer.serialize_str(text),
        None => at.serialize(serializer),
    }
}

/// `at` as RFC 3339 text in `buf`, or `None` for the times chrono writes
/// in its own way.
fn rfc3339<'b>(at: &DateTime<Utc>, buf: &'b mut [u8; LONGEST]) -> Option<&'b [u8]> {
    let year = u32::try_from(at.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = at.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut w = Digits { buf, len: 0 };
    w.number(year, 4);
    w.byte(b'-');
    w.number(at.month(), 2);
    w.byte(b'-');
    w.number(at.day(), 2);
    w.byte(b'T');
    w.number(at.hour(), 2);
    w.byte(b':');
    w.number(at.minute(), 2);
    w.byte(b':');
    w.number(at.second(), 2);
    if nanos != 0 {
        w.byte(b'.');
        if nanos.is_multiple_of(1_000_000) {
            w.number(nanos / 1_000_000, 3);
        } else if nanos.is_multiple_of(1_000) {
            w.number(nanos / 1_000, 6);
        } else {
            w.number(nanos, 9);
        }
    }
    w.byte(b'Z');
    let Digits { buf, len } = w;
    Some(&buf[..len])
}

/// A cursor writing ASCII into the buffer.
struct Digits<'b> {
    buf: &'b mut [u8; LONGEST],
    len: usize,
}

impl Digits<'_> {
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// `value` in exactly `width` decimal digits, zero-padded.
    fn number(&mut self, mut value: u32, width: usize) {
        for slot in self.buf[self.len..self.len + width].iter_mut().rev() {
            // A remainder of 10 is below 10: the cast keeps it whole.
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len += width;
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    #[derive(Serialize)]
    struct Ours(#[serde(serialize_with = "serialize")] DateTime<Utc>);

    fn ours(at: DateTime<Utc>) -> String {
        serde_json::to_string(&Ours(at)).unwrap()
    }

    fn chronos(at: DateTime<Utc>) -> String {
        serde_json::to_string(&at).unwrap()
    }

    /// Hand-checked texts, one per fraction width, and the times left to chrono.
    #[test]
    fn writes_what_chrono_writes() {
        let at = |s: i64, n: u32| Utc.timestamp_opt(s, n).unwrap();
        assert_eq!(ours(at(1_740_808_800, 0)), "\"2025-03-01T06:00:00Z\"");
        assert_eq!(
            ours(at(1_740_808_800, 120_000_000)),
            "\"2025-03-01T06:00:00.120Z\""
        );
        assert_eq!(
            ours(at(1_740_808_800, 123_456_000)),
            "\"2025-03-01T06:00:00.123456Z\""
        );
        assert_eq!(
            ours(at(1_740_808_800, 7)),
            "\"2025-03-01T06:00:00.000000007Z\""
        );
        assert_eq!(ours(at(0, 0)), "\"1970-01-01T00:00:00Z\"");
        // A leap second, and years outside 0–9999, are chrono's to write.
        let leap = Utc
            .with_ymd_and_hms(2016, 12, 31, 23, 59, 59)
            .unwrap()
            .with_nanosecond(1_500_000_000)
            .unwrap();
        for t in [
            leap,
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 6, 30, 12, 0, 0).unwrap(),
        ] {
            assert_eq!(ours(t), chronos(t));
        }
    }

    proptest! {
        /// Any time from year 0 to 9999, with any fraction, reads the same.
        #[test]
        fn any_time_reads_as_chrono_writes_it(
            seconds in -62_167_219_200_i64..253_402_300_800,
            millis in 0_u32..1_000,
            micros in 0_u32..1_000,
            nanos in 0_u32..1_000,
            width in 0_u8..4,
        ) {
            let fraction = match width {
                0 => 0,
                1 => millis * 1_000_000,
                2 => millis * 1_000_000 + micros * 1_000,
                _ => millis * 1_000_000 + micros * 1_000 + nanos,
            };
            let at = Utc.timestamp_opt(seconds, fraction).unwrap();
            prop_assert_eq!(ours(at), chronos(at));
        }
    }
}
