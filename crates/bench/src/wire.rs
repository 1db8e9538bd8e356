//! The two encodings of a generated event: the gRPC message, and the row of
//! the event store as a line of PostgreSQL `COPY` text format.

use std::fmt::Write as _;

use kpi_domain::events as dm;

/// The proto of a domain event: the suite's one conversion.
pub(crate) use kpi_proto::events::event_to_proto as to_proto;

/// Appends the event's row, as the event store holds it, to `out` as one
/// line of `COPY … FROM STDIN` text format: `tenant, event_id, kind,
/// entity_id, occurred_at (µs), ingested_at (µs), payload (the event's JSON)`.
pub(crate) fn append_copy_row(
    out: &mut String,
    tenant: &str,
    event: &dm::Event,
    ingested_at_micros: i64,
) -> serde_json::Result<()> {
    let payload = serde_json::to_string(event)?;
    push_copy_text(out, tenant);
    out.push('\t');
    push_copy_text(out, &event.event_id);
    out.push('\t');
    push_copy_text(out, event.payload.kind());
    out.push('\t');
    push_copy_text(out, event.payload.entity_id());
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "\t{}\t{}\t",
        event.occurred_at.timestamp_micros(),
        ingested_at_micros
    );
    push_copy_text(out, &payload);
    out.push('\n');
    Ok(())
}

/// Appends `value` escaped for the `COPY` text format: backslash, tab,
/// newline and carriage return are written as backslash sequences.
pub(crate) fn push_copy_text(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{Feed, FeedConfig};

    #[test]
    fn copy_text_is_escaped() {
        let mut out = String::new();
        push_copy_text(&mut out, "a\\b\tc\nd\re\"f");
        assert_eq!(out, "a\\\\b\\tc\\nd\\re\"f");
    }

    #[test]
    fn protos_convert_back_to_the_same_domain_events() {
        let now = chrono::Utc::now();
        let feed = Feed::new(FeedConfig {
            events: 2_000,
            tickets: 300,
            seed: 1,
        });
        for (i, event) in feed.enumerate() {
            let proto = to_proto(&event);
            let back =
                data_ingestion::convert::event_from(&proto, &format!("events[{i}]"), now).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn copy_row_has_seven_columns() {
        let event = Feed::new(FeedConfig {
            events: 1,
            tickets: 10,
            seed: 1,
        })
        .next()
        .unwrap();
        let mut out = String::new();
        append_copy_row(&mut out, "bench", &event, 5).unwrap();
        assert!(out.ends_with('\n'));
        assert_eq!(out.trim_end().split('\t').count(), 7);
        assert!(out.contains("\"ticket\""));
    }
}
