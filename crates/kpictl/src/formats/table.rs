//! CSV input: a header row, then one event per row.
//!
//! Columns: `event_id`, `occurred_at` (RFC 3339), `kind` (the payload name:
//! `ticket`, `conversation`, `survey`, `qa_review`, `bad_review`,
//! `field_visit`, `assessment`, `agent`, `team`), plus any payload field
//! columns (`ticket_id`, `type`, `score`, …). A row's non-empty cells become
//! the payload object of its kind, which is then deserialised into the domain
//! payload type, so the field's type decides how a cell is read: a cell that
//! looks like a number or a boolean is first tried as one and falls back to
//! text when the field is text (an id `007` stays `"007"`), and a cell that
//! holds a JSON array or object (QA `items`, `violations`) is read as JSON.
//!
//! A column may also be qualified as `kind.field` (e.g. `survey.kind`,
//! `assessment.kind`, `qa_review.score`): it then applies to rows of that
//! kind only. That is how the survey's and the assessment's own `kind` field
//! is given, since the bare `kind` column names the payload.
//!
//! A column that is no field of any kind makes the whole file unreadable
//! (probably a typo); a non-empty cell in an unqualified column that is not a
//! field of the row's kind makes that row unreadable.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read};

use chrono::{DateTime, Utc};
use kpi_domain::events::{self as dm, Event, Payload};
use serde::de::{self, DeserializeOwned, Visitor};
use serde_json::{Map, Number, Value};

use super::Record;

/// The payload names accepted in the `kind` column.
pub const KINDS: [&str; 9] = [
    "ticket",
    "conversation",
    "survey",
    "qa_review",
    "bad_review",
    "field_visit",
    "assessment",
    "agent",
    "team",
];

/// The columns every file must have.
pub const REQUIRED_COLUMNS: [&str; 3] = ["event_id", "occurred_at", "kind"];

/// The field names of a kind's payload, as they appear in JSON and CSV
/// (taken from the domain type itself, so they never drift).
pub fn fields_of(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "ticket" => field_names::<dm::TicketEvent>(),
        "conversation" => field_names::<dm::ConversationEvent>(),
        "survey" => field_names::<dm::SurveyResponse>(),
        "qa_review" => field_names::<dm::QaReview>(),
        "bad_review" => field_names::<dm::BadReviewEvent>(),
        "field_visit" => field_names::<dm::FieldVisit>(),
        "assessment" => field_names::<dm::Assessment>(),
        "agent" => field_names::<dm::AgentUpsert>(),
        "team" => field_names::<dm::TeamUpsert>(),
        _ => return None,
    })
}

/// The header of a file: column names, checked.
#[derive(Debug, Clone)]
pub struct Header {
    columns: Vec<Column>,
    event_id: usize,
    occurred_at: usize,
    kind: usize,
}

/// What one column holds.
#[derive(Debug, Clone, PartialEq)]
enum Column {
    /// `event_id`, `occurred_at` or `kind`.
    Envelope,
    /// A payload field: `field` for rows of any kind that has it, or
    /// `kind.field` for rows of that kind only.
    Field {
        /// The kind it is restricted to, if qualified.
        only: Option<String>,
        /// The field name.
        field: String,
        /// The column as written, for messages.
        name: String,
    },
}

impl Header {
    /// Checks a header row: the required columns are there, none is
    /// repeated, and every other column is a field of some kind (`field`) or
    /// of the kind it names (`kind.field`).
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Header, String> {
        let names: Vec<String> = names
            .into_iter()
            .map(|n| n.trim_start_matches('\u{feff}').trim().to_owned())
            .collect();
        let mut seen = HashSet::new();
        for n in &names {
            if !seen.insert(n.as_str()) {
                return Err(format!("column `{n}` appears twice in the header"));
            }
        }
        let any_kind: HashSet<&str> = KINDS
            .iter()
            .filter_map(|k| fields_of(k))
            .flatten()
            .copied()
            .collect();
        let mut columns = Vec::with_capacity(names.len());
        for name in &names {
            let column = if REQUIRED_COLUMNS.contains(&name.as_str()) {
                Column::Envelope
            } else if let Some((kind, field)) = name.split_once('.') {
                let Some(fields) = fields_of(kind) else {
                    return Err(format!(
                        "unknown column `{name}` in the header: `{kind}` is not one of {}",
                        KINDS.join(", ")
                    ));
                };
                if !fields.contains(&field) {
                    return Err(format!(
                        "unknown column `{name}` in the header: a {kind} has no field `{field}` (its fields: {})",
                        fields.join(", ")
                    ));
                }
                Column::Field {
                    only: Some(kind.to_owned()),
                    field: field.to_owned(),
                    name: name.clone(),
                }
            } else if any_kind.contains(name.as_str()) {
                Column::Field {
                    only: None,
                    field: name.clone(),
                    name: name.clone(),
                }
            } else {
                return Err(format!(
                    "unknown column `{name}` in the header: it is no field of any event kind"
                ));
            };
            columns.push(column);
        }
        let position = |wanted: &str| {
            names.iter().position(|n| n == wanted).ok_or_else(|| {
                format!("the header has no `{wanted}` column (needed: event_id, occurred_at, kind)")
            })
        };
        Ok(Header {
            event_id: position("event_id")?,
            occurred_at: position("occurred_at")?,
            kind: position("kind")?,
            columns,
        })
    }

    /// Turns one row (its cells in header order) into an event, or says why not.
    pub fn event<'a>(&self, cells: impl IntoIterator<Item = &'a str>) -> Result<Event, String> {
        let cells: Vec<&str> = cells.into_iter().map(str::trim).collect();
        if cells.len() != self.columns.len() {
            return Err(format!(
                "the row has {} cells, the header {}",
                cells.len(),
                self.columns.len()
            ));
        }
        let cell = |i: usize| cells.get(i).copied().unwrap_or("");
        let event_id = cell(self.event_id);
        if event_id.is_empty() {
            return Err("event_id: empty".to_owned());
        }
        let occurred_at =
            parse_instant(cell(self.occurred_at)).map_err(|e| format!("occurred_at: {e}"))?;
        let kind = cell(self.kind);
        let Some(fields) = fields_of(kind) else {
            return Err(format!("kind: `{kind}` is not one of {}", KINDS.join(", ")));
        };
        let mut object = Cells::default();
        for (column, value) in self.columns.iter().zip(&cells) {
            let Column::Field { only, field, name } = column else {
                continue;
            };
            if value.is_empty() || only.as_deref().is_some_and(|k| k != kind) {
                continue;
            }
            if !fields.contains(&field.as_str()) {
                return Err(format!(
                    "{name}: not a field of a {kind} event (its fields: {})",
                    fields.join(", ")
                ));
            }
            if object.object.contains_key(field) {
                return Err(format!(
                    "{name}: the {kind} field `{field}` is given twice (as `{field}` and `{kind}.{field}`)"
                ));
            }
            object.insert(field, value);
        }
        let payload = match kind {
            "ticket" => Payload::Ticket(object.into_payload()?),
            "conversation" => Payload::Conversation(object.into_payload()?),
            "survey" => Payload::Survey(object.into_payload()?),
            "qa_review" => Payload::QaReview(object.into_payload()?),
            "bad_review" => Payload::BadReview(object.into_payload()?),
            "field_visit" => Payload::FieldVisit(object.into_payload()?),
            "assessment" => Payload::Assessment(object.into_payload()?),
            "agent" => Payload::Agent(object.into_payload()?),
            _ => Payload::Team(object.into_payload()?),
        };
        Ok(Event {
            event_id: event_id.to_owned(),
            occurred_at,
            payload,
        })
    }
}

/// A payload object built from cells, remembering the raw text of every cell
/// read as a number, boolean or JSON, to fall back to when the field is text.
#[derive(Debug, Default)]
struct Cells {
    object: Map<String, Value>,
    guessed: BTreeMap<String, String>,
}

impl Cells {
    fn insert(&mut self, column: &str, cell: &str) {
        match guess(cell) {
            Some(value) => {
                self.object.insert(column.to_owned(), value);
                self.guessed.insert(column.to_owned(), cell.to_owned());
            }
            None => {
                self.object
                    .insert(column.to_owned(), Value::String(cell.to_owned()));
            }
        }
    }

    /// Deserialises the object into `T`. When a field refuses a guessed
    /// value, that cell is retried as text (at most once per cell).
    fn into_payload<T: DeserializeOwned>(mut self) -> Result<T, String> {
        loop {
            let value = Value::Object(self.object.clone());
            let error = match serde_path_to_error::deserialize::<_, T>(value) {
                Ok(payload) => return Ok(payload),
                Err(error) => error,
            };
            let path = error.path().to_string();
            if let Some(raw) = self.guessed.remove(&path) {
                self.object.insert(path, Value::String(raw));
                continue;
            }
            return Err(if path == "." || path.is_empty() {
                error.inner().to_string()
            } else {
                format!("{path}: {}", error.inner())
            });
        }
    }
}

/// How a cell that looks like a number, a boolean or JSON reads; `None` for text.
pub fn guess(cell: &str) -> Option<Value> {
    if cell.eq_ignore_ascii_case("true") {
        return Some(Value::Bool(true));
    }
    if cell.eq_ignore_ascii_case("false") {
        return Some(Value::Bool(false));
    }
    if cell.starts_with('[') || cell.starts_with('{') {
        return serde_json::from_str(cell).ok();
    }
    let numeric = cell
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'))
        && cell.chars().any(|c| c.is_ascii_digit());
    if !numeric {
        return None;
    }
    if let Ok(i) = cell.parse::<i64>() {
        return Some(Value::Number(i.into()));
    }
    if let Ok(u) = cell.parse::<u64>() {
        return Some(Value::Number(u.into()));
    }
    cell.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
}

/// Reads a CSV stream row by row, after checking its header.
pub struct CsvRows<R> {
    reader: csv::Reader<R>,
    header: Header,
    record: csv::StringRecord,
}

impl<R> std::fmt::Debug for CsvRows<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvRows")
            .field("header", &self.header)
            .finish()
    }
}

impl<R: Read> CsvRows<R> {
    /// Reads the header row of `reader` and checks it.
    pub fn new(reader: R) -> Result<CsvRows<R>, String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(reader);
        let names = reader
            .headers()
            .map_err(|e| format!("cannot read the header row: {e}"))?;
        if names.is_empty() {
            return Err("the file is empty: a CSV file needs a header row".to_owned());
        }
        let header = Header::new(names.iter())?;
        Ok(CsvRows {
            reader,
            header,
            record: csv::StringRecord::new(),
        })
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                let line = self.record.position().map_or(0, csv::Position::line);
                Some(Ok(match self.header.event(self.record.iter()) {
                    Ok(event) => Record::Event {
                        line,
                        event: Box::new(event),
                    },
                    Err(reason) => Record::Unreadable { line, reason },
                }))
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::Utf8 { pos, .. } => Some(Ok(Record::Unreadable {
                    line: pos.as_ref().map_or(0, csv::Position::line),
                    reason: "the row is not valid UTF-8".to_owned(),
                })),
                _ => Some(Err(io::Error::other(e.to_string()))),
            },
        }
    }
}

/// Parses `occurred_at` as JSON Lines does: an RFC 3339 instant, e.g.
/// `2026-10-05T09:00:00Z` or `2026-10-05T17:00:00+08:00`.
fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    if s.is_empty() {
        return Err("empty".to_owned());
    }
    s.parse::<DateTime<Utc>>()
        .map_err(|_| format!("`{s}` is not an RFC 3339 instant such as 2026-10-05T09:00:00Z"))
}

// --- field names, read off the domain types ----------------------------------

/// The serialised field names of struct `T`, captured from the list serde's
/// derive hands to `deserialize_struct`.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut names = FieldNames(&[]);
    let _ = T::deserialize(&mut names);
    names.0
}

struct FieldNames(&'static [&'static str]);

impl<'de> de::Deserializer<'de> for &mut FieldNames {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only struct field names are read"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = fields;
        Err(de::Error::custom("only struct field names are read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    /// One row under `header` (comma-separated, no quoting needed).
    fn row(header: &str, cells: &str) -> Result<Event, String> {
        Header::new(header.split(','))
            .unwrap()
            .event(cells.split(','))
    }

    fn payload(header: &str, cells: &str) -> Payload {
        row(header, cells).unwrap().payload
    }

    const T: &str = "event_id,occurred_at,kind,ticket_id,type,agent_id,is_complaint,handle_seconds";

    #[test]
    fn text_cells_stay_text() {
        let Payload::Ticket(t) = payload(T, "e1,2026-10-05T09:00:00Z,ticket,T1,created,a1,,")
        else {
            panic!()
        };
        assert_eq!(t.ticket_id, "T1");
        assert_eq!(t.event_type, dm::TicketEventType::Created);
        assert_eq!(t.agent_id.as_deref(), Some("a1"));
        assert!(!t.is_complaint);
        assert_eq!(t.handle_seconds, 0);
    }

    #[test]
    fn a_number_looking_id_stays_text() {
        let Payload::Ticket(t) = payload(T, "e1,2026-10-05T09:00:00Z,ticket,007,created,42,,")
        else {
            panic!()
        };
        assert_eq!(t.ticket_id, "007");
        assert_eq!(t.agent_id.as_deref(), Some("42"));
    }

    #[test]
    fn a_boolean_looking_text_stays_text() {
        let Payload::Ticket(t) = payload(T, "e1,2026-10-05T09:00:00Z,ticket,true,created,,,")
        else {
            panic!()
        };
        assert_eq!(t.ticket_id, "true");
    }

    #[test]
    fn integers_fill_integer_fields() {
        let Payload::Ticket(t) =
            payload(T, "e1,2026-10-05T09:00:00Z,ticket,T1,agent_reply,a1,,300")
        else {
            panic!()
        };
        assert_eq!(t.handle_seconds, 300);
    }

    #[test]
    fn booleans_fill_boolean_fields_in_any_case() {
        let Payload::Ticket(t) = payload(T, "e1,2026-10-05T09:00:00Z,ticket,T1,created,,TRUE,")
        else {
            panic!()
        };
        assert!(t.is_complaint);
    }

    #[test]
    fn a_fraction_in_an_integer_field_is_refused_with_the_column() {
        let err = row(T, "e1,2026-10-05T09:00:00Z,ticket,T1,created,,,1.5").unwrap_err();
        assert!(err.starts_with("handle_seconds: invalid type"), "{err}");
        let err = row(T, "e1,2026-10-05T09:00:00Z,ticket,T1,created,,yes,").unwrap_err();
        assert!(err.starts_with("is_complaint: invalid type"), "{err}");
    }

    #[test]
    fn numbers_fill_float_and_optional_float_fields() {
        let h = "event_id,occurred_at,kind,session_id,type,first_reply_seconds,valid,order_value";
        let Payload::Conversation(c) = payload(
            h,
            "e1,2026-10-05T09:00:00Z,conversation,S1,ended,12.5,false,99",
        ) else {
            panic!()
        };
        assert_eq!(c.first_reply_seconds, Some(12.5));
        assert_eq!(c.valid, Some(false));
        assert_eq!(c.order_value, Some(99.0));
        let h = "event_id,occurred_at,kind,response_id,survey.kind,score";
        let Payload::Survey(s) = payload(h, "e1,2026-10-05T09:00:00Z,survey,R1,nps,-1e1") else {
            panic!()
        };
        assert_eq!(s.kind, dm::SurveyKind::Nps);
        assert_eq!(s.score, -10.0);
    }

    #[test]
    fn instants_and_dates_are_read_as_text() {
        let h = "event_id,occurred_at,kind,visit_id,ticket_id,agent_id,visit_no,arrived_at,resolved_on_visit";
        let Payload::FieldVisit(v) = payload(
            h,
            "e1,2026-10-05T17:00:00+08:00,field_visit,V1,T1,tech1,2,2026-10-05T10:00:00Z,true",
        ) else {
            panic!()
        };
        assert_eq!(v.visit_no, 2);
        assert_eq!(
            v.arrived_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-10-05T10:00:00+00:00")
        );
        assert!(v.resolved_on_visit);
        let h = "event_id,occurred_at,kind,agent_id,team_id,role,hired_on,active";
        let Payload::Agent(a) = payload(
            h,
            "e1,2026-10-05T09:00:00Z,agent,a1,east,tier1,2023-02-08,true",
        ) else {
            panic!()
        };
        assert_eq!(a.hired_on, NaiveDate::from_ymd_opt(2023, 2, 8));
    }

    #[test]
    fn json_cells_fill_lists() {
        let mut rows = CsvRows::new(
            "event_id,occurred_at,kind,review_id,agent_id,reviewer_id,score,items,violations\n\
             e1,2026-10-05T09:00:00Z,qa_review,Q1,a1,r1,92,\"[{\"\"key\"\":\"\"greeting\"\",\"\"group\"\":\"\"service\"\",\"\"passed\"\":true,\"\"score\"\":100}]\",\"[{\"\"code\"\":\"\"data_leak\"\",\"\"severity\"\":\"\"major\"\"}]\"\n"
                .as_bytes(),
        )
        .unwrap();
        let Some(Ok(Record::Event { line, event })) = rows.next() else {
            panic!()
        };
        assert_eq!(line, 2);
        let Payload::QaReview(q) = event.payload else {
            panic!()
        };
        assert_eq!(q.score, 92.0);
        assert_eq!(q.items.len(), 1);
        assert!(q.items[0].passed);
        assert_eq!(q.violations[0].severity, dm::Severity::Major);
    }

    #[test]
    fn a_bad_item_names_its_path() {
        let h = "event_id,occurred_at,kind,review_id,agent_id,reviewer_id,score,items";
        let err = Header::new(h.split(','))
            .unwrap()
            .event([
                "e1",
                "2026-10-05T09:00:00Z",
                "qa_review",
                "Q1",
                "a1",
                "r1",
                "92",
                r#"[{"key":"greeting","group":"service","passed":"yes","score":100}]"#,
            ])
            .unwrap_err();
        assert!(err.starts_with("items[0].passed: invalid type"), "{err}");
    }

    #[test]
    fn qualified_columns_apply_to_their_kind_only() {
        let h = "event_id,occurred_at,kind,assessment_id,agent_id,assessment.kind,score,max_score,response_id,survey.kind";
        let Payload::Assessment(a) = payload(
            h,
            "e1,2026-10-05T09:00:00Z,assessment,A1,a1,knowledge,42,50,,csat",
        ) else {
            panic!()
        };
        assert_eq!(a.kind, "knowledge");
        assert_eq!(a.max_score, 50.0);
    }

    #[test]
    fn rows_with_foreign_fields_or_bad_envelopes_are_refused() {
        let h = "event_id,occurred_at,kind,ticket_id,type,channel,response_id";
        let err = row(h, "e1,2026-10-05T09:00:00Z,ticket,T1,created,chat,R1").unwrap_err();
        assert!(
            err.starts_with("response_id: not a field of a ticket event"),
            "{err}"
        );
        let err = row(h, "e1,2026-10-05T09:00:00Z,tickets,T1,created,chat,").unwrap_err();
        assert!(err.starts_with("kind: `tickets` is not one of"), "{err}");
        let err = row(h, "e1,yesterday,ticket,T1,created,chat,").unwrap_err();
        assert!(err.starts_with("occurred_at: `yesterday`"), "{err}");
        let err = row(h, ",2026-10-05T09:00:00Z,ticket,T1,created,chat,").unwrap_err();
        assert_eq!(err, "event_id: empty");
        let err = row(h, "e1,2026-10-05T09:00:00Z,ticket,T1,created,fax,").unwrap_err();
        assert!(err.starts_with("channel: unknown variant `fax`"), "{err}");
        let err = row(h, "e1,2026-10-05T09:00:00Z,ticket,,created,chat,").unwrap_err();
        assert_eq!(err, "missing field `ticket_id`");
    }

    #[test]
    fn headers_are_checked() {
        assert!(
            Header::new("event_id,occurred_at,kind,agentid".split(','))
                .unwrap_err()
                .contains("`agentid`")
        );
        assert!(Header::new("event_id,occurred_at,kind,survey.nope".split(',')).is_err());
        assert!(Header::new("event_id,occurred_at,kinds.score".split(',')).is_err());
        assert!(
            Header::new("event_id,kind".split(','))
                .unwrap_err()
                .contains("occurred_at")
        );
        assert!(Header::new("event_id,occurred_at,kind,score,score".split(',')).is_err());
        assert!(Header::new("\u{feff}event_id,occurred_at,kind".split(',')).is_ok());
    }

    #[test]
    fn field_names_come_from_the_domain_types() {
        assert!(fields_of("ticket").unwrap().contains(&"type"));
        assert!(fields_of("survey").unwrap().contains(&"kind"));
        assert_eq!(fields_of("team").unwrap().len(), 4);
        assert!(fields_of("nope").is_none());
    }

    #[test]
    fn guesses() {
        assert_eq!(guess("12"), Some(Value::from(12)));
        assert_eq!(guess("1.5"), Some(Value::from(1.5)));
        assert_eq!(guess("False"), Some(Value::Bool(false)));
        assert_eq!(guess("inf"), None);
        assert_eq!(guess("-"), None);
        assert_eq!(guess("T-1"), None);
        assert_eq!(guess("[1,2]"), Some(serde_json::json!([1, 2])));
        assert_eq!(guess("[not json"), None);
    }
}
