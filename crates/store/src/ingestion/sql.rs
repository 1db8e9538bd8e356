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

/// `IN (…)` over ONE bound parameter holding a list of strings (see
/// [`list_value`]). The statement text is the same whatever the list's
/// length, so each connection prepares and caches it once: an `IN ($2, $3,
/// …)` list makes a new statement for every length, and the connections'
/// statement caches then grow with thousands of large statements.
///
/// On PostgreSQL the list is a `text[]` parameter matched with `= ANY`, an
/// index condition. Each execution is planned for its values (custom
/// plans), so the planner sees the array as a constant: it knows its length
/// and, where it filters rows with it instead of probing an index, hashes
/// it. Two earlier forms went wrong with statistics that misjudged a
/// tenant: `IN (SELECT jsonb_array_elements_text(…))`, a semi-join, ran as a
/// nested loop that unpacked the whole list again for every row (27 s for
/// 3,000 tickets against 30,000 rows, with statistics taken while the table
/// was empty); `= ANY(ARRAY(SELECT …))`, an init plan, was compared element
/// by element on every row of a second tenant the statistics had never
/// seen (4 s per statement for 17,000 tickets against 33,000 rows).
pub(crate) fn in_list(backend: DbBackend, p: &mut Placeholders) -> String {
    let list = p.next();
    match backend {
        DbBackend::Postgres => format!("= ANY({list})"),
        _ => format!("IN ({})", json_list_elements(backend, &list)),
    }
}

/// The value bound to an [`in_list`] placeholder: a `text[]` on
/// PostgreSQL, a JSON array (see [`json_list`]) elsewhere.
pub(crate) fn list_value<S: AsRef<str>>(
    backend: DbBackend,
    items: impl IntoIterator<Item = S>,
) -> sea_orm::Value {
    match backend {
        DbBackend::Postgres => sea_orm::Value::from(
            items
                .into_iter()
                .map(|s| s.as_ref().to_owned())
                .collect::<Vec<String>>(),
        ),
        _ => json_list(items),
    }
}

/// A query of the strings of the JSON array bound to `list` (see [`json_list`]).
pub(crate) fn json_list_elements(backend: DbBackend, list: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("SELECT jsonb_array_elements_text(CAST({list} AS jsonb))"),
        _ => format!("SELECT value FROM json_each({list})"),
    }
}

/// A JSON array of strings, bound where a statement unpacks it with
/// [`json_list_elements`].
pub(crate) fn json_list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> sea_orm::Value {
    let items: Vec<String> = items.into_iter().map(|s| s.as_ref().to_owned()).collect();
    // A list of strings always serialises.
    sea_orm::Value::String(Some(serde_json::to_string(&items).unwrap_or_default()))
}
