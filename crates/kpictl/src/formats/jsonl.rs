//! JSON Lines input: one domain [`Event`] per line, exactly the serde shape
//! of `kpi_domain::events::Event`, e.g.
//! `{"event_id":"e1","occurred_at":"2026-10-05T09:00:00Z","payload":{"ticket":{"ticket_id":"T1","type":"created"}}}`.
//! Blank lines are skipped; a line that is not such an event is reported
//! with the path of the offending field.

use std::io::{self, BufRead};

use kpi_domain::events::Event;

use super::Record;

/// Reads a JSON Lines stream line by line.
#[derive(Debug)]
pub struct JsonLines<R> {
    reader: R,
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> JsonLines<R> {
    /// Reads events from `reader`.
    pub fn new(reader: R) -> JsonLines<R> {
        JsonLines {
            reader,
            line: 0,
            buf: Vec::new(),
        }
    }
}

impl<R: BufRead> Iterator for JsonLines<R> {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(e)),
            }
            self.line += 1;
            let text = self.buf.trim_ascii();
            if text.is_empty() {
                continue;
            }
            let line = self.line;
            return Some(Ok(match parse_line(text) {
                Ok(event) => Record::Event {
                    line,
                    event: Box::new(event),
                },
                Err(reason) => Record::Unreadable { line, reason },
            }));
        }
    }
}

/// Parses one line into an event, or says why not.
pub fn parse_line(text: &[u8]) -> Result<Event, String> {
    if std::str::from_utf8(text).is_err() {
        return Err("the line is not valid UTF-8".to_owned());
    }
    let mut de = serde_json::Deserializer::from_slice(text);
    let event: Event = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = json_message(e.inner());
        if path == "." || path.is_empty() {
            inner
        } else {
            format!("{path}: {inner}")
        }
    })?;
    de.end().map_err(|e| json_message(&e))?;
    Ok(event)
}

/// serde_json's message without "at line 1": the line is the file's, given apart.
fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match full.strip_suffix(&suffix) {
        Some(message) if e.column() > 0 => format!("{message} (column {})", e.column()),
        Some(message) => message.to_owned(),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str) -> Vec<Record> {
        JsonLines::new(text.as_bytes())
            .collect::<io::Result<Vec<_>>>()
            .unwrap()
    }

    #[test]
    fn reads_events_skips_blank_lines_and_reports_bad_ones() {
        let text = "\n{\"event_id\":\"e1\",\"occurred_at\":\"2026-10-05T09:00:00Z\",\"payload\":{\"ticket\":{\"ticket_id\":\"T1\",\"type\":\"created\",\"channel\":\"chat\"}}}\r\n   \noops\n{\"event_id\":\"e2\",\"occurred_at\":\"2026-10-05T09:00:00Z\",\"payload\":{\"survey\":{\"response_id\":\"R1\",\"kind\":\"csat\",\"score\":\"high\"}}}";
        let r = records(text);
        assert_eq!(r.len(), 3);
        let Record::Event { line, event } = &r[0] else {
            panic!("{r:?}")
        };
        assert_eq!(*line, 2);
        assert_eq!(event.event_id, "e1");
        let Record::Unreadable { line, reason } = &r[1] else {
            panic!("{r:?}")
        };
        assert_eq!(*line, 4);
        assert!(reason.starts_with("expected value"), "{reason}");
        let Record::Unreadable { line, reason } = &r[2] else {
            panic!("{r:?}")
        };
        assert_eq!(*line, 5);
        assert!(
            reason.starts_with("payload.survey.score: invalid type"),
            "{reason}"
        );
    }

    #[test]
    fn trailing_garbage_is_unreadable() {
        let err = parse_line(br#"{"event_id":"e1","occurred_at":"2026-10-05T09:00:00Z","payload":{"team":{"team_id":"t"}}} x"#)
            .unwrap_err();
        assert!(err.starts_with("trailing characters"), "{err}");
    }
}
