//! The event store's rows in PostgreSQL `COPY … FROM STDIN` text format: the
//! write path loads new events with it, and the ingestion benchmark loads
//! its baseline table with the very same encoding.

use std::fmt::Write as _;

use kpi_domain::events::Event;

/// The columns of the event store, in the order [`append_copy_row`] writes them.
pub const EVENT_COLUMNS: &str = "\"tenant\", \"event_id\", \"kind\", \"entity_id\", \"occurred_at\", \"ingested_at\", \"payload\"";

/// Appends the event's row, as the event store holds it, to `out` as one
/// line of `COPY` text format: `tenant, event_id, kind, entity_id,
/// occurred_at (µs), ingested_at (µs), payload (the event's JSON)`.
pub fn append_copy_row(
    out: &mut String,
    tenant: &str,
    event: &Event,
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
pub fn push_copy_text(out: &mut String, value: &str) {
    if !value.contains(['\\', '\t', '\n', '\r']) {
        out.push_str(value);
        return;
    }
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

    #[test]
    fn copy_text_is_escaped() {
        let mut out = String::new();
        push_copy_text(&mut out, "a\\b\tc\nd\re\"f");
        assert_eq!(out, "a\\\\b\\tc\\nd\\re\"f");
        out.clear();
        push_copy_text(&mut out, "plain");
        assert_eq!(out, "plain");
    }
}
