//! How events are written out for the database:
//! - a row per event in PostgreSQL `COPY … FROM STDIN` text format: the
//!   write path loads the event keys with it ([`append_key_row`]), and the
//!   ingestion benchmark loads its baseline table, a plain row of every
//!   column per event ([`append_copy_row`]), with the very same encoding;
//! - JSON Lines ([`append_event_line`], [`event_lines`]): an entity's
//!   events in `ing_entity_events.events`, one event's JSON per line, each
//!   line ending with a newline so that appending is concatenating;
//! - a batch's new events in `ing_pending` ([`append_pending_line`],
//!   [`split_pending_line`]): the same lines, each led by its entity's key,
//!   so that the projection sorts them by entity without parsing events;
//!   on PostgreSQL stored as one LZ4 block ([`compress_pending`],
//!   [`decompress_pending`]) in `events_lz4`.

use std::io::Write as _;

use kpi_domain::events::Event;

/// The columns of the event store, in the order [`append_copy_row`] writes them.
pub const EVENT_COLUMNS: &str = "\"tenant\", \"event_id\", \"kind\", \"entity_id\", \"occurred_at\", \"ingested_at\", \"payload\"";

/// Appends the event's row, as the event store holds it, to `out` as one
/// line of `COPY` text format: `tenant, event_id, kind, entity_id,
/// occurred_at (µs), ingested_at (µs), payload (the event's JSON)`.
pub fn append_copy_row(
    out: &mut Vec<u8>,
    tenant: &str,
    event: &Event,
    ingested_at_micros: i64,
) -> serde_json::Result<()> {
    push_copy_text(out, tenant.as_bytes());
    out.push(b'\t');
    push_copy_text(out, event.event_id.as_bytes());
    out.push(b'\t');
    push_copy_text(out, event.payload.kind().as_bytes());
    out.push(b'\t');
    push_copy_text(out, event.payload.entity_id().as_bytes());
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "\t{}\t{}\t",
        event.occurred_at.timestamp_micros(),
        ingested_at_micros
    );
    push_json_copy_text(out, event)?;
    out.push(b'\n');
    Ok(())
}

/// The columns of the key table, in the order [`append_key_row`] writes them.
pub const KEY_COLUMNS: &str = "\"tenant\", \"event_id\"";

/// Appends the event's key row (`tenant, event_id`) as one line of `COPY`
/// text format.
pub fn append_key_row(out: &mut Vec<u8>, tenant: &str, event_id: &str) {
    push_copy_text(out, tenant.as_bytes());
    out.push(b'\t');
    push_copy_text(out, event_id.as_bytes());
    out.push(b'\n');
}

/// Appends the event's JSON and a newline. serde_json escapes every control
/// character inside strings, so the JSON itself never holds a newline.
pub fn append_event_line(out: &mut Vec<u8>, event: &Event) -> serde_json::Result<()> {
    serde_json::to_writer(&mut *out, event)?;
    out.push(b'\n');
    Ok(())
}

/// Appends the event as a line of a pending batch: its entity's key as the
/// JSON array `[kind, entity_id]`, a tab (JSON text holds none raw), then
/// the event's JSON and a newline.
pub fn append_pending_line(out: &mut Vec<u8>, event: &Event) -> serde_json::Result<()> {
    serde_json::to_writer(
        &mut *out,
        &(event.payload.kind(), event.payload.entity_id()),
    )?;
    out.push(b'\t');
    append_event_line(out, event)
}

/// A line of a pending batch (without its newline) as its entity's key
/// `(kind, entity_id)` and the event's JSON.
pub fn split_pending_line(line: &str) -> serde_json::Result<((String, String), &str)> {
    let (key, event) = line.split_once('\t').ok_or_else(|| {
        <serde_json::Error as serde::de::Error>::custom("a pending line without its entity key")
    })?;
    Ok((serde_json::from_str(key)?, event))
}

/// A pending batch's lines as `ing_pending.events_lz4` holds them: one LZ4
/// block, led by the uncompressed length (4 bytes, little-endian).
pub fn compress_pending(lines: &[u8]) -> Vec<u8> {
    lz4_flex::compress_prepend_size(lines)
}

/// The lines of a pending batch stored by [`compress_pending`], or why they
/// cannot be read.
pub fn decompress_pending(stored: &[u8]) -> Result<String, String> {
    let lines = lz4_flex::decompress_size_prepended(stored).map_err(|e| e.to_string())?;
    String::from_utf8(lines).map_err(|e| e.to_string())
}

/// The events of a JSON Lines text, in order (blank lines are skipped).
pub fn event_lines(text: &str) -> impl Iterator<Item = serde_json::Result<Event>> + '_ {
    text.split('\n')
        .filter(|line| !line.trim().is_empty())
        .map(serde_json::from_str)
}

/// Appends `value`'s JSON, escaped for the `COPY` text format. It is written
/// straight into the row and escaped afterwards only if it needs to be: JSON
/// text never holds a raw tab, newline or carriage return (serde_json writes
/// every control character as an escape), so only a backslash (a string
/// holding a quote, say) calls for it. Most payloads need nothing, and then
/// there is no string of their own to allocate, scan and copy again.
fn push_json_copy_text(out: &mut Vec<u8>, value: &impl serde::Serialize) -> serde_json::Result<()> {
    let start = out.len();
    serde_json::to_writer(&mut *out, value)?;
    if out[start..].contains(&b'\\') {
        let json = out.split_off(start);
        push_copy_text(out, &json);
    }
    Ok(())
}

/// Whether `COPY` text writes this byte as a backslash sequence.
fn needs_escape(b: u8) -> bool {
    matches!(b, b'\\' | b'\t' | b'\n' | b'\r')
}

/// Appends `value` escaped for the `COPY` text format: backslash, tab,
/// newline and carriage return are written as backslash sequences.
pub fn push_copy_text(out: &mut Vec<u8>, value: &[u8]) {
    let mut rest = value;
    while let Some(at) = rest.iter().position(|b| needs_escape(*b)) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(match rest[at] {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            _ => b"\\r",
        });
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use kpi_domain::events::Payload;

    use super::super::test_events::ticket_created;
    use super::*;

    /// A ticket's creation as event `id`, with `category`.
    fn created(id: &str, ticket: &str, category: &str) -> Event {
        let mut created = ticket_created(id, ticket, 10);
        if let Payload::Ticket(t) = &mut created.payload {
            t.category = Some(category.into());
        }
        created
    }

    /// A key row escapes like every other `COPY` column.
    #[test]
    fn key_rows_are_escaped() {
        let mut out = Vec::new();
        append_key_row(&mut out, "acme", "e\\1\tx");
        assert_eq!(out, b"acme\te\\\\1\\tx\n");
    }

    /// Events written as JSON Lines read back the same, strings holding
    /// newlines and backslashes included, and lines join by concatenation.
    #[test]
    fn event_lines_round_trip() {
        let first = created("e1", "T1", "a\nb\\c\r\"d\"");
        let second = Event {
            event_id: "e2\n".into(),
            ..first.clone()
        };
        let mut text = Vec::new();
        append_event_line(&mut text, &first).unwrap();
        let mut more = Vec::new();
        append_event_line(&mut more, &second).unwrap();
        text.extend_from_slice(&more);
        let text = String::from_utf8(text).unwrap();
        assert_eq!(text.matches('\n').count(), 2);
        let read: Vec<Event> = event_lines(&text).map(Result::unwrap).collect();
        assert_eq!(read, vec![first, second]);
    }

    /// A pending line leads with its entity's key, which reads back without
    /// parsing the event, and the rest is the event's own JSON line.
    #[test]
    fn pending_lines_carry_their_entity() {
        let event = created("e1", "T\t1", "a\tb");
        let mut line = Vec::new();
        append_pending_line(&mut line, &event).unwrap();
        let line = String::from_utf8(line).unwrap();
        let (key, json) = split_pending_line(line.trim_end_matches('\n')).unwrap();
        assert_eq!(key, ("ticket".to_string(), "T\t1".to_string()));
        assert_eq!(json, serde_json::to_string(&event).unwrap());
        assert!(split_pending_line("{\"event_id\":\"e1\"}").is_err());
    }

    #[test]
    fn copy_text_is_escaped() {
        let mut out = Vec::new();
        push_copy_text(&mut out, "a\\b\tc\nd\re\"f".as_bytes());
        assert_eq!(out, b"a\\\\b\\tc\\nd\\re\"f");
        out.clear();
        push_copy_text(&mut out, b"plain");
        assert_eq!(out, b"plain");
    }

    /// The row holds the event's JSON exactly as `serde_json::to_string`
    /// writes it, escaped for `COPY` like every other column, whatever the
    /// strings hold (backslashes, JSON escapes, tabs, non-ASCII).
    #[test]
    fn the_payload_is_the_events_json_escaped() {
        let mut event = created("e\\1", "T\\1\tx", "bill\"ing\n\r\\é 😀");
        if let Payload::Ticket(ticket) = &mut event.payload {
            ticket.customer_id = Some("c\u{1}".into());
        }
        let mut row = Vec::new();
        append_copy_row(&mut row, "acme", &event, 7).unwrap();

        let json = serde_json::to_string(&event).unwrap();
        let mut want = b"acme\te\\\\1\tticket\tT\\\\1\\tx\t".to_vec();
        want.extend_from_slice(format!("{}\t7\t", event.occurred_at.timestamp_micros()).as_bytes());
        want.extend_from_slice(
            json.replace('\\', "\\\\")
                .replace('\t', "\\t")
                .replace('\n', "\\n")
                .replace('\r', "\\r")
                .as_bytes(),
        );
        want.push(b'\n');
        assert_eq!(
            String::from_utf8(row).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }
}
