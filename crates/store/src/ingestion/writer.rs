//! The write path: a batch of validated events in one transaction.
//!
//! 1. Repeats inside the batch are duplicates of their first occurrence.
//! 2. The keys of new events go into the key table (`ing_event_keys`). On
//!    PostgreSQL they are loaded with `COPY`, the fastest way in,
//!    optimistically: a fresh batch (the common case) goes straight in; if
//!    any event is already stored (a replay, or a concurrent identical batch
//!    that committed first) the unique key fails the `COPY`, and the batch is
//!    retried looking the stored ids up first. On SQLite (one writer at a
//!    time) an `INSERT … ON CONFLICT DO NOTHING RETURNING` tells new from
//!    stored.
//! 3. A pending batch holds the new events (JSON lines, each led by its
//!    entity's key) and the span of their times; the projection
//!    ([`super::projection`]) moves the events to their entities' rows and
//!    folds them into facts after the commit, so intake writes one narrow
//!    row per event and one row per batch.
//! 4. The tenant's data version moves on (only for new events: a replay
//!    changes nothing) and the audit counters count.
//!
//! Either all of it is committed or none of it, so an acknowledged event is
//! stored and will be projected, and a retry of an unacknowledged batch is
//! safe.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use kpi_domain::events::Event;
use sea_orm::sqlx::{self, PgPool, Postgres};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, RuntimeErr, Statement, TransactionTrait,
    Value,
};

use super::copy::{KEY_COLUMNS, append_key_row, append_pending_line, compress_pending};
use super::projection::Touched;
use super::sql::{MAX_PARAMS, Placeholders, micros};
use crate::StoreError;

/// An event that passed validation, with its position in the request.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Its index in the batch.
    pub index: usize,
    /// The event.
    pub event: Event,
}

/// What a projection changed, for whoever caches derived data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeSet {
    /// The tenant.
    pub tenant: String,
    /// The tenant's data version when the facts were written.
    pub data_version: i64,
    /// How many pending batches were folded.
    pub batches: u64,
    /// The earliest event time touched.
    pub start: Option<DateTime<Utc>>,
    /// The latest event time touched.
    pub end: Option<DateTime<Utc>>,
    /// Agents whose facts or roster changed.
    pub agent_ids: BTreeSet<String>,
    /// Teams named by changed facts or roster entries.
    pub team_ids: BTreeSet<String>,
}

/// The outcome of a batch.
#[derive(Debug, Clone, Default)]
pub struct WriteOutcome {
    /// Indexes of the events that were already stored (or repeated in the batch).
    pub duplicates: Vec<usize>,
    /// How many events were new.
    pub fresh: usize,
    /// The tenant's data version after the batch.
    pub data_version: i64,
}

/// Writes batches of events.
#[derive(Clone, Debug)]
pub struct IngestWriter {
    db: DatabaseConnection,
    analyzer: std::sync::Arc<super::analyze::Analyzer>,
}

/// Attempts at a batch that lost a race (a deadlock, or a concurrent
/// identical batch committing first).
const WRITE_ATTEMPTS: usize = 5;

/// A batch ready to store: repeats inside it set apart, candidates sorted by id.
struct Batch<'a> {
    tenant: &'a str,
    candidates: Vec<&'a Accepted>,
    repeats: Vec<usize>,
    now: DateTime<Utc>,
}

impl<'a> Batch<'a> {
    fn new(tenant: &'a str, accepted: &'a [Accepted], now: DateTime<Utc>) -> Self {
        // Ids with their positions side by side, so that sorting compares
        // without following a pointer to each event; ties in position
        // order, so the first occurrence of an id comes first.
        let mut ids: Vec<(&str, usize)> = accepted
            .iter()
            .enumerate()
            .map(|(at, a)| (a.event.event_id.as_str(), at))
            .collect();
        ids.sort_unstable();
        let mut candidates = Vec::with_capacity(ids.len());
        let mut repeats = Vec::new();
        for (i, &(id, at)) in ids.iter().enumerate() {
            if i > 0 && ids[i - 1].0 == id {
                repeats.push(accepted[at].index);
            } else {
                candidates.push(&accepted[at]);
            }
        }
        Batch {
            tenant,
            // Sorted by id: concurrent batches meet keys in one order.
            candidates,
            repeats,
            now,
        }
    }
}

/// What the event store said of a batch's candidates.
struct Stored<'a> {
    fresh: Vec<&'a Event>,
    duplicates: Vec<usize>,
}

impl<'a> Stored<'a> {
    /// Splits the candidates into new (`is_new`) and already stored.
    fn split(batch: &Batch<'a>, is_new: impl Fn(&str) -> bool) -> Self {
        let mut stored = Stored {
            fresh: Vec::with_capacity(batch.candidates.len()),
            duplicates: batch.repeats.clone(),
        };
        for a in &batch.candidates {
            if is_new(&a.event.event_id) {
                stored.fresh.push(&a.event);
            } else {
                stored.duplicates.push(a.index);
            }
        }
        stored
    }
}

impl IngestWriter {
    /// A writer over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            analyzer: super::analyze::Analyzer::for_events(),
        }
    }

    /// Stores a batch: the accepted events, a pending batch for the
    /// projection, and audit counts for the rejected ones. Retried as a
    /// whole when it loses a race; either everything is committed or nothing.
    pub async fn write(
        &self,
        tenant: &str,
        accepted: &[Accepted],
        rejected_reasons: &[&str],
        now: DateTime<Utc>,
    ) -> Result<WriteOutcome, StoreError> {
        let batch = Batch::new(tenant, accepted, now);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match self.db.get_database_backend() {
                DbBackend::Postgres => {
                    // The first attempt assumes every event is new.
                    let look_up_stored = attempt > 1;
                    let pool = self.db.get_postgres_connection_pool();
                    write_postgres(pool, &batch, rejected_reasons, look_up_stored).await
                }
                _ => write_portable(&self.db, &batch, rejected_reasons).await,
            };
            match result {
                Ok(mut outcome) => {
                    self.analyzer.note(&self.db, outcome.fresh as u64);
                    outcome.duplicates.sort_unstable();
                    return Ok(outcome);
                }
                Err(StoreError::Database(e)) if attempt < WRITE_ATTEMPTS && lost_race(&e) => {
                    tracing::debug!(tenant, attempt, error = %e, "ingest transaction retried");
                }
                other => return other,
            }
        }
    }
}

/// Whether a failed transaction lost a race and may simply be run again.
fn lost_race(e: &DbErr) -> bool {
    let text = e.to_string();
    text.contains("deadlock detected")
        || text.contains("could not serialize")
        || text.contains("duplicate key value violates unique constraint")
}

/// PostgreSQL: `COPY` for the new events, on one sqlx transaction; the
/// ids already stored are looked up first only when `look_up_stored`.
async fn write_postgres(
    pool: &PgPool,
    batch: &Batch<'_>,
    rejected: &[&str],
    look_up_stored: bool,
) -> Result<WriteOutcome, StoreError> {
    let mut tx = pool.begin().await.map_err(sqlx_err)?;
    let existing: BTreeSet<String> = if look_up_stored {
        let ids: Vec<&str> = batch
            .candidates
            .iter()
            .map(|a| a.event.event_id.as_str())
            .collect();
        sqlx::query_scalar(
            "SELECT \"event_id\" FROM \"ing_event_keys\" WHERE \"tenant\" = $1 AND \"event_id\" = ANY($2)",
        )
        .bind(batch.tenant)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(sqlx_err)?
        .into_iter()
        .collect()
    } else {
        BTreeSet::new()
    };
    let stored = Stored::split(batch, |id| !existing.contains(id));
    if !stored.fresh.is_empty() {
        let rows = key_rows(batch.tenant, &stored.fresh);
        let mut copy = tx
            .copy_in_raw(&format!(
                "COPY \"ing_event_keys\" ({KEY_COLUMNS}) FROM STDIN (FORMAT text)"
            ))
            .await
            .map_err(sqlx_err)?;
        if let Err(e) = copy.send(rows).await {
            let _ = copy.abort("the batch failed").await;
            return Err(sqlx_err(e));
        }
        copy.finish().await.map_err(sqlx_err)?;
    }
    let statements = after_events(DbBackend::Postgres, batch, &stored, rejected)?;
    let mut data_version = None;
    for statement in &statements {
        let rows = bind(statement)
            .fetch_all(&mut *tx)
            .await
            .map_err(sqlx_err)?;
        if let Some(row) = rows.first() {
            use sqlx::Row as _;
            data_version = row.try_get::<i64, _>("version").ok().or(data_version);
        }
    }
    let data_version = match data_version {
        Some(v) => v,
        None => sqlx::query_scalar(
            "SELECT \"version\" FROM \"ing_data_versions\" WHERE \"tenant\" = $1",
        )
        .bind(batch.tenant)
        .fetch_optional(&mut *tx)
        .await
        .map_err(sqlx_err)?
        .unwrap_or(0),
    };
    tx.commit().await.map_err(sqlx_err)?;
    Ok(WriteOutcome {
        fresh: stored.fresh.len(),
        duplicates: stored.duplicates,
        data_version,
    })
}

/// The new events' keys as `COPY` text.
fn key_rows(tenant: &str, fresh: &[&Event]) -> Vec<u8> {
    let mut rows = Vec::with_capacity(fresh.len() * (tenant.len() + 40));
    for event in fresh {
        append_key_row(&mut rows, tenant, &event.event_id);
    }
    rows
}

/// Any backend through sea-orm (SQLite, the embedded default).
async fn write_portable(
    db: &DatabaseConnection,
    batch: &Batch<'_>,
    rejected: &[&str],
) -> Result<WriteOutcome, StoreError> {
    let txn = db.begin().await?;
    let inserted = insert_events(&txn, batch).await?;
    let stored = Stored::split(batch, |id| inserted.contains(id));
    let mut data_version = None;
    for statement in after_events(txn.get_database_backend(), batch, &stored, rejected)? {
        if let Some(row) = txn.query_one_raw(statement).await? {
            data_version = row.try_get::<i64>("", "version").ok().or(data_version);
        }
    }
    let data_version = match data_version {
        Some(v) => v,
        None => super::reader::data_version(&txn, batch.tenant).await?.0,
    };
    txn.commit().await?;
    Ok(WriteOutcome {
        fresh: stored.fresh.len(),
        duplicates: stored.duplicates,
        data_version,
    })
}

/// Inserts the candidates' keys; returns the ids that were new.
async fn insert_events(
    db: &impl ConnectionTrait,
    batch: &Batch<'_>,
) -> Result<BTreeSet<String>, StoreError> {
    let backend = db.get_database_backend();
    let mut inserted: BTreeSet<String> = BTreeSet::new();
    for chunk in batch.candidates.chunks(MAX_PARAMS / 2) {
        let mut p = Placeholders::new(backend);
        let mut values = Vec::with_capacity(chunk.len() * 2);
        let mut tuples = Vec::with_capacity(chunk.len());
        for a in chunk {
            values.extend([
                Value::String(Some(batch.tenant.to_string())),
                Value::String(Some(a.event.event_id.clone())),
            ]);
            tuples.push(p.tuple(2));
        }
        let sql = format!(
            "INSERT INTO \"ing_event_keys\" ({KEY_COLUMNS}) VALUES {} \
             ON CONFLICT (\"tenant\", \"event_id\") DO NOTHING RETURNING \"event_id\"",
            tuples.join(", ")
        );
        for row in db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
        {
            inserted.insert(row.try_get::<String>("", "event_id")?);
        }
    }
    Ok(inserted)
}

/// The statements that follow the events, the same on every backend: the
/// pending batch and the version bump (when something was new) and the
/// audit counters. The version bump answers with the new version.
fn after_events(
    backend: DbBackend,
    batch: &Batch<'_>,
    stored: &Stored<'_>,
    rejected: &[&str],
) -> Result<Vec<Statement>, StoreError> {
    let mut statements = Vec::new();
    if !stored.fresh.is_empty() {
        statements.push(pending_batch(
            backend,
            batch.tenant,
            &stored.fresh,
            batch.now,
        )?);
        statements.push(bump_version(backend, batch.tenant, batch.now));
    }
    statements.extend(count_outcomes(
        backend,
        batch.tenant,
        batch.now,
        stored.fresh.len(),
        stored.duplicates.len(),
        rejected,
    ));
    Ok(statements)
}

/// Records the new events and the span of their times, for the projection.
fn pending_batch(
    backend: DbBackend,
    tenant: &str,
    fresh: &[&Event],
    now: DateTime<Utc>,
) -> Result<Statement, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        what: format!("pending batch of {tenant}"),
        reason,
    };
    let touched = serde_json::to_string(&Touched::span_of(fresh.iter().copied()))
        .map_err(|e| corrupt(e.to_string()))?;
    let mut lines = Vec::with_capacity(fresh.len() * 256);
    for event in fresh {
        append_pending_line(&mut lines, event).map_err(|e| corrupt(e.to_string()))?;
    }
    // PostgreSQL takes the lines compressed (see migration m0006). SQLite,
    // in the process, has no wire to spare them and keeps them as text: its
    // sqlx driver also decoded the BLOB that `DELETE … RETURNING` gave back
    // as NULL now and then (seen in tests, with `typeof()` saying blob).
    let (column, events) = match backend {
        DbBackend::Postgres => ("events_lz4", Value::Bytes(Some(compress_pending(&lines)))),
        _ => {
            // serde_json writes UTF-8; a failure here would be a bug, reported as such.
            let text = String::from_utf8(lines).map_err(|e| corrupt(e.to_string()))?;
            ("events", Value::String(Some(text)))
        }
    };
    let mut p = Placeholders::new(backend);
    let tuple = p.tuple(4);
    Ok(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO \"ing_pending\" (\"tenant\", \"touched\", \"written_at\", \"{column}\") VALUES {tuple}"
        ),
        [
            Value::String(Some(tenant.to_string())),
            Value::String(Some(touched)),
            Value::BigInt(Some(micros(now))),
            events,
        ],
    ))
}

/// A sea-orm statement on a sqlx PostgreSQL transaction: the after-event
/// statements are written once for both paths.
fn bind(statement: &Statement) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
    // The SQL is ours (built by the statement builders above), values are bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(statement.sql.clone()));
    for value in statement.values.iter().flat_map(|v| v.0.iter()) {
        query = match value {
            Value::String(s) => query.bind(s.as_deref()),
            Value::BigInt(n) => query.bind(*n),
            Value::Int(n) => query.bind(*n),
            Value::Double(x) => query.bind(*x),
            Value::Bool(b) => query.bind(*b),
            Value::Bytes(b) => query.bind(b.as_deref()),
            other => query.bind(other.to_string()),
        };
    }
    query
}

/// A sqlx error as sea-orm reports it, so that [`StoreError::is_unavailable`]
/// and the retry test see the same errors on both paths.
fn sqlx_err(e: sqlx::Error) -> StoreError {
    let unavailable = matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    );
    let runtime = RuntimeErr::SqlxError(std::sync::Arc::new(e));
    StoreError::Database(if unavailable {
        DbErr::Conn(runtime)
    } else {
        DbErr::Query(runtime)
    })
}

/// Moves the tenant's data version on by one, answering with the new version.
fn bump_version(backend: DbBackend, tenant: &str, now: DateTime<Utc>) -> Statement {
    let mut p = Placeholders::new(backend);
    let tuple = p.tuple(3);
    let sql = format!(
        "INSERT INTO \"ing_data_versions\" (\"tenant\", \"version\", \"watermark\") VALUES {tuple} \
         ON CONFLICT (\"tenant\") DO UPDATE SET \"version\" = \"ing_data_versions\".\"version\" + 1, \"watermark\" = excluded.\"watermark\" \
         RETURNING \"version\""
    );
    let values = vec![
        Value::String(Some(tenant.to_string())),
        Value::BigInt(Some(1)),
        Value::BigInt(Some(micros(now))),
    ];
    Statement::from_sql_and_values(backend, sql, values)
}

/// Adds the batch's outcomes to the hourly audit counters.
fn count_outcomes(
    backend: DbBackend,
    tenant: &str,
    now: DateTime<Utc>,
    accepted: usize,
    duplicates: usize,
    rejected: &[&str],
) -> Vec<Statement> {
    let hour = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
    let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    if accepted > 0 {
        counts.insert(("accepted", ""), accepted as i64);
    }
    if duplicates > 0 {
        counts.insert(("duplicate", ""), duplicates as i64);
    }
    for reason in rejected {
        *counts.entry(("rejected", reason)).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|((outcome, reason), n)| {
            let mut p = Placeholders::new(backend);
            let tuple = p.tuple(5);
            let sql = format!(
                "INSERT INTO \"ing_audit\" (\"tenant\", \"hour\", \"outcome\", \"reason\", \"count\") VALUES {tuple} \
                 ON CONFLICT (\"tenant\", \"hour\", \"outcome\", \"reason\") DO UPDATE SET \"count\" = \"ing_audit\".\"count\" + excluded.\"count\""
            );
            let values = vec![
                Value::String(Some(tenant.to_string())),
                Value::BigInt(Some(micros(hour))),
                Value::String(Some(outcome.to_string())),
                Value::String(Some(reason.to_string())),
                Value::BigInt(Some(n)),
            ];
            Statement::from_sql_and_values(backend, sql, values)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_events::ticket_created;
    use super::*;

    fn accepted(index: usize, id: &str) -> Accepted {
        Accepted {
            index,
            event: ticket_created(id, &format!("T-{index}"), 10),
        }
    }

    /// Candidates come sorted by id, each id once at its first occurrence;
    /// later occurrences are repeats, by their request index.
    #[test]
    fn a_batch_sorts_its_ids_and_sets_repeats_apart() {
        // Request indexes need not be positions: rejected events leave gaps.
        let events = [
            accepted(0, "e2"),
            accepted(2, "e1"),
            accepted(3, "e2"),
            accepted(5, "e3"),
            accepted(6, "e1"),
            accepted(7, "e2"),
        ];
        let batch = Batch::new("acme", &events, Utc::now());
        let candidates: Vec<(&str, usize)> = batch
            .candidates
            .iter()
            .map(|a| (a.event.event_id.as_str(), a.index))
            .collect();
        assert_eq!(candidates, [("e1", 2), ("e2", 0), ("e3", 5)]);
        let mut repeats = batch.repeats.clone();
        repeats.sort_unstable();
        assert_eq!(repeats, [3, 6, 7]);
    }
}
