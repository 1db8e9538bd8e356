//! Small SQL helpers shared by the ingestion statements: placeholders for
//! both backends, parameter limits, and timestamps as microseconds.

use chrono::{DateTime, Utc};
use sea_orm::DbBackend;

/// Bound parameters per statement stay under SQLite's limit of 32,766.
pub(crate) const MAX_PARAMS: usize = 30_000;

/// Microseconds since the Unix epoch.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The instant of a microsecond timestamp.
pub(crate) fn from_micros(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
}

/// `$1, $2…` on PostgreSQL, `?` on SQLite.
pub(crate) struct Placeholders {
    backend: DbBackend,
    next: usize,
}

impl Placeholders {
    pub(crate) fn new(backend: DbBackend) -> Self {
        Self { backend, next: 0 }
    }

    pub(crate) fn next(&mut self) -> String {
        self.next += 1;
        match self.backend {
            DbBackend::Postgres => format!("${}", self.next),
            _ => "?".to_string(),
        }
    }

    /// `(p, p, …)` for `n` values.
    pub(crate) fn tuple(&mut self, n: usize) -> String {
        let list: Vec<String> = (0..n).map(|_| self.next()).collect();
        format!("({})", list.join(", "))
    }
}

/// `IN (…)` over ONE bound parameter holding a JSON array of strings (see
/// [`json_list`]). The statement text is the same whatever the list's
/// length, so each connection prepares and caches it once: an `IN ($2, $3,
/// …)` list makes a new statement for every length, and the connections'
/// statement caches then grow with thousands of large statements.
///
/// On PostgreSQL the list becomes an array once (an init plan) and the
/// column is matched with `= ANY`, an index condition. `IN (SELECT
/// jsonb_array_elements_text(…))` is a semi-join instead, and with
/// statistics taken while a fact table was still empty the planner ran it
/// as a nested loop that unpacked the whole list again for every row (seen
/// here: 27 s for 3,000 tickets against 30,000 rows; 15 ms this way).
pub(crate) fn in_json_list(backend: DbBackend, p: &mut Placeholders) -> String {
    let elements = json_list_elements(backend, &p.next());
    match backend {
        DbBackend::Postgres => format!("= ANY(ARRAY({elements}))"),
        _ => format!("IN ({elements})"),
    }
}

/// A query of the strings of the JSON array bound to `list` (see [`json_list`]).
pub(crate) fn json_list_elements(backend: DbBackend, list: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("SELECT jsonb_array_elements_text(CAST({list} AS jsonb))"),
        _ => format!("SELECT value FROM json_each({list})"),
    }
}

/// The value bound to an [`in_json_list`] placeholder.
pub(crate) fn json_list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> sea_orm::Value {
    let items: Vec<String> = items.into_iter().map(|s| s.as_ref().to_owned()).collect();
    // A list of strings always serialises.
    sea_orm::Value::String(Some(serde_json::to_string(&items).unwrap_or_default()))
}
