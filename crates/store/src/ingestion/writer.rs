//! The write path: a batch of validated events in one transaction.
//!
//! 1. Events go into the event store, sorted by id, with `ON CONFLICT DO
//!    NOTHING RETURNING`: what comes back is new, the rest are duplicates
//!    (a replay, a retry after a timeout, or a concurrent identical batch,
//!    which waits on the unique key and then finds the event there).
//! 2. The entities the new events touch are locked (PostgreSQL advisory
//!    transaction locks, taken in sorted order; SQLite has one writer anyway),
//!    so that no two transactions fold the same ticket from different views.
//! 3. Every touched entity is folded again from ALL its stored events, so the
//!    facts are the same whatever order the events arrived in; what depends
//!    on other entities follows (a survey's agent from its ticket, FCR's gap
//!    to the customer's next ticket on the same category, under group locks).
//! 4. The tenant's data version moves on and the audit counters count.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use kpi_domain::calendar::BusinessCalendar;
use kpi_domain::events::{Event, Payload};
use kpi_domain::facts::{self, FactRow, FactValue};
use kpi_domain::schema::FactType;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait, Value,
};

use super::rows::{delete_facts_where, load_facts_where, upsert_facts};
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

/// What a committed batch changed, for whoever caches derived data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeSet {
    /// The tenant.
    pub tenant: String,
    /// The tenant's data version after the batch.
    pub data_version: i64,
    /// The earliest fact time touched.
    pub start: Option<DateTime<Utc>>,
    /// The latest fact time touched.
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
    /// What changed; `data_version` is the version after the batch.
    pub changes: ChangeSet,
}

/// A rejected event, for the audit counters.
#[derive(Debug, Clone)]
pub struct RejectedCount<'a> {
    /// The reason code.
    pub reason: &'a str,
}

/// Writes batches of events.
#[derive(Clone, Debug)]
pub struct IngestWriter {
    db: DatabaseConnection,
    analyzer: std::sync::Arc<super::analyze::Analyzer>,
}

const DEADLOCK_RETRIES: usize = 5;

impl IngestWriter {
    /// A writer over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            analyzer: std::sync::Arc::default(),
        }
    }

    /// Stores a batch: the accepted events, and audit counts for the
    /// rejected ones. Retried as a whole if PostgreSQL picks it as a deadlock
    /// victim; either everything is committed or nothing is.
    pub async fn write(
        &self,
        tenant: &str,
        accepted: &[Accepted],
        rejected_reasons: &[&str],
        calendar: &BusinessCalendar,
        now: DateTime<Utc>,
    ) -> Result<WriteOutcome, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .write_once(tenant, accepted, rejected_reasons, calendar, now)
                .await
            {
                Ok(outcome) => {
                    let fresh = accepted.len().saturating_sub(outcome.duplicates.len());
                    self.analyzer.note(&self.db, fresh as u64);
                    return Ok(outcome);
                }
                Err(StoreError::Database(e)) if attempt < DEADLOCK_RETRIES && is_retryable(&e) => {
                    tracing::debug!(tenant, attempt, error = %e, "ingest transaction retried");
                }
                other => return other,
            }
        }
    }

    async fn write_once(
        &self,
        tenant: &str,
        accepted: &[Accepted],
        rejected_reasons: &[&str],
        calendar: &BusinessCalendar,
        now: DateTime<Utc>,
    ) -> Result<WriteOutcome, StoreError> {
        let txn = self.db.begin().await?;
        let (fresh, mut duplicates) = insert_events(&txn, tenant, accepted, now).await?;
        let mut changes = ChangeSet {
            tenant: tenant.to_string(),
            ..ChangeSet::default()
        };
        if !fresh.is_empty() {
            lock(&txn, tenant, entity_lock_keys(&fresh)).await?;
            refold(&txn, tenant, &fresh, calendar, now, &mut changes).await?;
        }
        // Only new events move the version on: a replay changes nothing.
        changes.data_version = if fresh.is_empty() {
            super::reader::data_version(&txn, tenant).await?.0
        } else {
            bump_version(&txn, tenant, now).await?
        };
        count_outcomes(
            &txn,
            tenant,
            now,
            fresh.len(),
            duplicates.len(),
            rejected_reasons,
        )
        .await?;
        txn.commit().await?;
        duplicates.sort_unstable();
        Ok(WriteOutcome {
            duplicates,
            changes,
        })
    }
}

fn is_retryable(e: &DbErr) -> bool {
    let text = e.to_string();
    text.contains("deadlock detected") || text.contains("could not serialize")
}

/// Inserts the events; returns the new ones and the indexes of duplicates.
async fn insert_events<'a>(
    db: &impl ConnectionTrait,
    tenant: &str,
    accepted: &'a [Accepted],
    now: DateTime<Utc>,
) -> Result<(Vec<&'a Event>, Vec<usize>), StoreError> {
    // Repeats inside the batch are duplicates of their first occurrence.
    let mut first: BTreeMap<&str, &Accepted> = BTreeMap::new();
    let mut duplicates = Vec::new();
    for a in accepted {
        if first.contains_key(a.event.event_id.as_str()) {
            duplicates.push(a.index);
        } else {
            first.insert(&a.event.event_id, a);
        }
    }
    // Sorted by id (the map's order), so concurrent batches lock keys in one order.
    let candidates: Vec<&Accepted> = first.into_values().collect();
    let backend = db.get_database_backend();
    let mut inserted: BTreeSet<String> = BTreeSet::new();
    for chunk in candidates.chunks(MAX_PARAMS / 7) {
        let mut p = Placeholders::new(backend);
        let mut values = Vec::with_capacity(chunk.len() * 7);
        let mut tuples = Vec::with_capacity(chunk.len());
        for a in chunk {
            let payload = serde_json::to_string(&a.event).map_err(|e| StoreError::Corrupt {
                what: a.event.event_id.clone(),
                reason: e.to_string(),
            })?;
            values.extend([
                Value::String(Some(tenant.to_string())),
                Value::String(Some(a.event.event_id.clone())),
                Value::String(Some(a.event.payload.kind().to_string())),
                Value::String(Some(a.event.payload.entity_id().to_string())),
                Value::BigInt(Some(micros(a.event.occurred_at))),
                Value::BigInt(Some(micros(now))),
                Value::String(Some(payload)),
            ]);
            tuples.push(p.tuple(7));
        }
        let sql = format!(
            "INSERT INTO \"ing_events\" (\"tenant\", \"event_id\", \"kind\", \"entity_id\", \"occurred_at\", \"ingested_at\", \"payload\") \
             VALUES {} ON CONFLICT (\"tenant\", \"event_id\") DO NOTHING RETURNING \"event_id\"",
            tuples.join(", ")
        );
        for row in db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
        {
            inserted.insert(row.try_get::<String>("", "event_id")?);
        }
    }
    let mut fresh = Vec::with_capacity(inserted.len());
    for a in candidates {
        if inserted.contains(&a.event.event_id) {
            fresh.push(&a.event);
        } else {
            duplicates.push(a.index);
        }
    }
    Ok((fresh, duplicates))
}

/// The lock keys of the entities new events touch (a survey also locks its
/// ticket, whose agent it takes).
fn entity_lock_keys(fresh: &[&Event]) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for e in fresh {
        keys.insert(format!("{}:{}", e.payload.kind(), e.payload.entity_id()));
        if let Payload::Survey(s) = &e.payload
            && let Some(ticket) = &s.ticket_id
        {
            keys.insert(format!("ticket:{ticket}"));
        }
    }
    keys
}

/// A stable 64-bit key for a lock name (FNV-1a), the same in every process.
fn lock_key(tenant: &str, name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in tenant.bytes().chain([0u8]).chain(name.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash as i64
}

/// Takes PostgreSQL advisory transaction locks on `names`, in key order.
async fn lock(
    db: &impl ConnectionTrait,
    tenant: &str,
    names: BTreeSet<String>,
) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres || names.is_empty() {
        return Ok(());
    }
    let mut keys: Vec<i64> = names.iter().map(|n| lock_key(tenant, n)).collect();
    keys.sort_unstable();
    keys.dedup();
    for chunk in keys.chunks(MAX_PARAMS) {
        let mut p = Placeholders::new(DbBackend::Postgres);
        let rows: Vec<String> = chunk
            .iter()
            .map(|_| format!("({}::bigint)", p.next()))
            .collect();
        let sql = format!(
            "SELECT pg_advisory_xact_lock(k) FROM (VALUES {}) AS l(k) ORDER BY k",
            rows.join(", ")
        );
        let values: Vec<Value> = chunk.iter().map(|k| Value::BigInt(Some(*k))).collect();
        db.query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    }
    Ok(())
}

/// Loads every stored event of these entities, grouped by entity id.
async fn load_events(
    db: &impl ConnectionTrait,
    tenant: &str,
    kind: &str,
    ids: &BTreeSet<String>,
) -> Result<BTreeMap<String, Vec<Event>>, StoreError> {
    let backend = db.get_database_backend();
    let ids: Vec<&String> = ids.iter().collect();
    let mut out: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for chunk in ids.chunks(MAX_PARAMS - 2) {
        let mut p = Placeholders::new(backend);
        let (t, k) = (p.next(), p.next());
        let list = p.tuple(chunk.len());
        let sql = format!(
            "SELECT \"entity_id\", \"payload\" FROM \"ing_events\" WHERE \"tenant\" = {t} AND \"kind\" = {k} AND \"entity_id\" IN {list}"
        );
        let mut values = vec![
            Value::String(Some(tenant.to_string())),
            Value::String(Some(kind.to_string())),
        ];
        values.extend(chunk.iter().map(|id| Value::String(Some((*id).clone()))));
        for row in db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
        {
            let entity: String = row.try_get("", "entity_id")?;
            let payload: String = row.try_get("", "payload")?;
            let event: Event = serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt {
                what: format!("event of {kind} {entity}"),
                reason: e.to_string(),
            })?;
            out.entry(entity).or_default().push(event);
        }
    }
    Ok(out)
}

fn refs(events: &[Event]) -> Vec<&Event> {
    events.iter().collect()
}

fn touched(fresh: &[&Event], kind: &str) -> BTreeSet<String> {
    fresh
        .iter()
        .filter(|e| e.payload.kind() == kind)
        .map(|e| e.payload.entity_id().to_string())
        .collect()
}

fn text(row: &FactRow, field: &str) -> Option<String> {
    match row.get(field) {
        FactValue::Text(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Notes the agents, teams and times of rows written.
fn note_rows(changes: &mut ChangeSet, rows: &[FactRow]) {
    for row in rows {
        for field in ["agent_id", "first_responder_id"] {
            if let Some(a) = text(row, field) {
                changes.agent_ids.insert(a);
            }
        }
        for field in ["team_id", "first_responder_team_id"] {
            if let Some(t) = text(row, field) {
                changes.team_ids.insert(t);
            }
        }
        if let FactValue::Time(t) = row.get(row.fact_type.schema().default_time_field) {
            changes.start = Some(changes.start.map_or(*t, |s| s.min(*t)));
            changes.end = Some(changes.end.map_or(*t, |e| e.max(*t)));
        }
    }
}

/// Folds every touched entity again from all its events and writes the facts.
async fn refold(
    db: &impl ConnectionTrait,
    tenant: &str,
    fresh: &[&Event],
    calendar: &BusinessCalendar,
    now: DateTime<Utc>,
    changes: &mut ChangeSet,
) -> Result<(), StoreError> {
    for e in fresh {
        changes.start = Some(
            changes
                .start
                .map_or(e.occurred_at, |s| s.min(e.occurred_at)),
        );
        changes.end = Some(changes.end.map_or(e.occurred_at, |x| x.max(e.occurred_at)));
    }
    let tickets = refold_tickets(
        db,
        tenant,
        &touched(fresh, "ticket"),
        calendar,
        now,
        changes,
    )
    .await?;
    refold_surveys(
        db,
        tenant,
        &touched(fresh, "survey"),
        &tickets,
        now,
        changes,
    )
    .await?;

    let conversations = touched(fresh, "conversation");
    let rows: Vec<FactRow> = load_events(db, tenant, "conversation", &conversations)
        .await?
        .iter()
        .map(|(id, evs)| facts::fold_conversation(id, &refs(evs), calendar))
        .collect();
    write_rows(db, tenant, FactType::Conversation, rows, now, changes).await?;

    let bad_reviews = touched(fresh, "bad_review");
    let rows: Vec<FactRow> = load_events(db, tenant, "bad_review", &bad_reviews)
        .await?
        .iter()
        .map(|(id, evs)| facts::fold_bad_review(id, &refs(evs)))
        .collect();
    write_rows(db, tenant, FactType::BadReview, rows, now, changes).await?;

    refold_qa(db, tenant, &touched(fresh, "qa_review"), now, changes).await?;

    let visits = touched(fresh, "field_visit");
    let rows: Vec<FactRow> = load_events(db, tenant, "field_visit", &visits)
        .await?
        .values()
        .filter_map(|evs| facts::field_visit_fact(&refs(evs), calendar))
        .collect();
    write_rows(db, tenant, FactType::FieldVisit, rows, now, changes).await?;

    let assessments = touched(fresh, "assessment");
    let rows: Vec<FactRow> = load_events(db, tenant, "assessment", &assessments)
        .await?
        .values()
        .filter_map(|evs| facts::assessment_fact(&refs(evs)))
        .collect();
    write_rows(db, tenant, FactType::Assessment, rows, now, changes).await?;

    refold_roster(db, tenant, &touched(fresh, "agent"), changes).await?;
    refold_teams(db, tenant, &touched(fresh, "team"), changes).await?;
    Ok(())
}

async fn write_rows(
    db: &impl ConnectionTrait,
    tenant: &str,
    fact_type: FactType,
    rows: Vec<FactRow>,
    now: DateTime<Utc>,
    changes: &mut ChangeSet,
) -> Result<(), StoreError> {
    note_rows(changes, &rows);
    upsert_facts(db, tenant, fact_type, &rows, now).await?;
    Ok(())
}

/// Tickets: folded from their events; contributors; then the FCR gap of
/// every ticket in the touched (customer, category) groups. Returns the
/// fresh rows by ticket id.
async fn refold_tickets(
    db: &impl ConnectionTrait,
    tenant: &str,
    ids: &BTreeSet<String>,
    calendar: &BusinessCalendar,
    now: DateTime<Utc>,
    changes: &mut ChangeSet,
) -> Result<BTreeMap<String, FactRow>, StoreError> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let list: Vec<String> = ids.iter().cloned().collect();
    let before = load_facts_where(db, tenant, FactType::Ticket, "ticket_id", &list).await?;
    let events = load_events(db, tenant, "ticket", ids).await?;
    let mut fresh: BTreeMap<String, FactRow> = BTreeMap::new();
    let mut contributors: Vec<(String, String, f64)> = Vec::new();
    for (id, evs) in &events {
        let evs = refs(evs);
        fresh.insert(id.clone(), facts::fold_ticket(id, &evs, calendar));
        contributors.extend(
            facts::ticket_contributors(&evs)
                .into_iter()
                .map(|(agent, share)| (id.clone(), agent, share)),
        );
    }
    write_contributors(db, tenant, &list, &contributors).await?;

    // FCR groups: old and new (customer, category) of every touched ticket.
    let group_of = |row: &FactRow| {
        text(row, "customer_id").map(|c| (c, text(row, "category").unwrap_or_default()))
    };
    let groups: BTreeSet<(String, String)> = before
        .iter()
        .chain(fresh.values())
        .filter_map(group_of)
        .collect();
    lock(
        db,
        tenant,
        groups.iter().map(|(c, k)| format!("fcr:{c}:{k}")).collect(),
    )
    .await?;
    let customers: Vec<String> = groups
        .iter()
        .map(|(c, _)| c.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut by_group: BTreeMap<(String, String), BTreeMap<String, FactRow>> = BTreeMap::new();
    let mut stored: BTreeMap<String, FactRow> = BTreeMap::new();
    for row in load_facts_where(db, tenant, FactType::Ticket, "customer_id", &customers).await? {
        stored.insert(row.id().to_string(), row.clone());
        if let Some(g) = group_of(&row).filter(|g| groups.contains(g)) {
            by_group
                .entry(g)
                .or_default()
                .insert(row.id().to_string(), row);
        }
    }
    // Fresh rows replace stored ones; a ticket that left a group leaves it.
    for members in by_group.values_mut() {
        members.retain(|id, _| !fresh.contains_key(id));
    }
    for (id, row) in &fresh {
        if let Some(g) = group_of(row) {
            by_group
                .entry(g)
                .or_default()
                .insert(id.clone(), row.clone());
        }
    }
    let mut rows: BTreeMap<String, FactRow> = fresh.clone();
    for members in by_group.into_values() {
        let mut members: Vec<FactRow> = members.into_values().collect();
        facts::fill_next_contact_gaps(&mut members, calendar);
        for row in members {
            // Other tickets of the group are written only if their gap moved.
            if fresh.contains_key(row.id()) || stored.get(row.id()) != Some(&row) {
                rows.insert(row.id().to_string(), row);
            }
        }
    }
    let rows: Vec<FactRow> = rows.into_values().collect();
    write_rows(db, tenant, FactType::Ticket, rows.clone(), now, changes).await?;
    Ok(rows
        .into_iter()
        .filter(|r| fresh.contains_key(r.id()))
        .map(|r| (r.id().to_string(), r))
        .collect())
}

async fn write_contributors(
    db: &impl ConnectionTrait,
    tenant: &str,
    tickets: &[String],
    rows: &[(String, String, f64)],
) -> Result<(), StoreError> {
    let backend = db.get_database_backend();
    for chunk in tickets.chunks(MAX_PARAMS - 1) {
        let mut p = Placeholders::new(backend);
        let t = p.next();
        let list = p.tuple(chunk.len());
        let sql = format!(
            "DELETE FROM \"ing_ticket_contributors\" WHERE \"tenant\" = {t} AND \"ticket_id\" IN {list}"
        );
        let mut values = vec![Value::String(Some(tenant.to_string()))];
        values.extend(chunk.iter().map(|id| Value::String(Some(id.clone()))));
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    for chunk in rows.chunks(MAX_PARAMS / 4) {
        let mut p = Placeholders::new(backend);
        let mut values = Vec::with_capacity(chunk.len() * 4);
        let tuples: Vec<String> = chunk
            .iter()
            .map(|(ticket, agent, share)| {
                values.extend([
                    Value::String(Some(tenant.to_string())),
                    Value::String(Some(ticket.clone())),
                    Value::String(Some(agent.clone())),
                    Value::Double(Some(*share)),
                ]);
                p.tuple(4)
            })
            .collect();
        let sql = format!(
            "INSERT INTO \"ing_ticket_contributors\" (\"tenant\", \"ticket_id\", \"agent_id\", \"share\") VALUES {}",
            tuples.join(", ")
        );
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

/// Surveys: new ones, and those whose ticket just changed (they take the
/// ticket's agent and segment when they do not name their own).
async fn refold_surveys(
    db: &impl ConnectionTrait,
    tenant: &str,
    new_ids: &BTreeSet<String>,
    tickets: &BTreeMap<String, FactRow>,
    now: DateTime<Utc>,
    changes: &mut ChangeSet,
) -> Result<(), StoreError> {
    let mut ids = new_ids.clone();
    let changed_tickets: Vec<String> = tickets.keys().cloned().collect();
    if !changed_tickets.is_empty() {
        for row in
            load_facts_where(db, tenant, FactType::Survey, "ticket_id", &changed_tickets).await?
        {
            ids.insert(row.id().to_string());
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    let events = load_events(db, tenant, "survey", &ids).await?;
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for evs in events.values() {
        for e in evs {
            if let Payload::Survey(s) = &e.payload {
                wanted.extend(s.ticket_id.clone().filter(|t| !tickets.contains_key(t)));
            }
        }
    }
    let mut ticket_rows = tickets.clone();
    if !wanted.is_empty() {
        let list: Vec<String> = wanted.into_iter().collect();
        for row in load_facts_where(db, tenant, FactType::Ticket, "ticket_id", &list).await? {
            ticket_rows.insert(row.id().to_string(), row);
        }
    }
    let rows: Vec<FactRow> = events
        .values()
        .filter_map(|evs| {
            let ticket = evs.iter().find_map(|e| match &e.payload {
                Payload::Survey(s) => s.ticket_id.as_ref().and_then(|t| ticket_rows.get(t)),
                _ => None,
            });
            facts::survey_fact(&refs(evs), ticket)
        })
        .collect();
    write_rows(db, tenant, FactType::Survey, rows, now, changes).await
}

/// QA reviews with their items and violations; a corrected review replaces
/// its items and violations.
async fn refold_qa(
    db: &impl ConnectionTrait,
    tenant: &str,
    ids: &BTreeSet<String>,
    now: DateTime<Utc>,
    changes: &mut ChangeSet,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = ids.iter().cloned().collect();
    delete_facts_where(db, tenant, FactType::QaItem, "review_id", &list).await?;
    delete_facts_where(db, tenant, FactType::QaViolation, "review_id", &list).await?;
    let mut by_type: BTreeMap<FactType, Vec<FactRow>> = BTreeMap::new();
    for evs in load_events(db, tenant, "qa_review", ids).await?.values() {
        for row in facts::qa_facts(&refs(evs)) {
            by_type.entry(row.fact_type).or_default().push(row);
        }
    }
    for (fact_type, rows) in by_type {
        write_rows(db, tenant, fact_type, rows, now, changes).await?;
    }
    Ok(())
}

/// The roster: an agent's upserts become validity intervals.
async fn refold_roster(
    db: &impl ConnectionTrait,
    tenant: &str,
    ids: &BTreeSet<String>,
    changes: &mut ChangeSet,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let events = load_events(db, tenant, "agent", ids).await?;
    for (agent, evs) in &events {
        let mut p = Placeholders::new(backend);
        let (t, a) = (p.next(), p.next());
        let sql =
            format!("DELETE FROM \"ing_roster\" WHERE \"tenant\" = {t} AND \"agent_id\" = {a}");
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                Value::String(Some(tenant.to_string())),
                Value::String(Some(agent.clone())),
            ],
        ))
        .await?;
        changes.agent_ids.insert(agent.clone());
        for (n, interval) in facts::roster_intervals(&refs(evs)).into_iter().enumerate() {
            changes.team_ids.insert(interval.team_id.clone());
            let mut p = Placeholders::new(backend);
            let tuple = p.tuple(10);
            let sql = format!(
                "INSERT INTO \"ing_roster\" (\"tenant\", \"agent_id\", \"interval_no\", \"valid_from\", \"valid_until\", \"team_id\", \"role\", \"hired_on\", \"active\", \"display_name\") VALUES {tuple}"
            );
            let values = vec![
                Value::String(Some(tenant.to_string())),
                Value::String(Some(agent.clone())),
                Value::Int(Some(i32::try_from(n).unwrap_or(i32::MAX))),
                Value::BigInt(interval.valid_from.map(micros)),
                Value::BigInt(interval.valid_until.map(micros)),
                Value::String(Some(interval.team_id)),
                Value::String(Some(interval.role)),
                Value::String(interval.hired_on.map(|d| d.to_string())),
                Value::Bool(Some(interval.active)),
                Value::String(Some(interval.display_name)),
            ];
            db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
                .await?;
        }
    }
    Ok(())
}

/// Teams: the latest upsert wins.
async fn refold_teams(
    db: &impl ConnectionTrait,
    tenant: &str,
    ids: &BTreeSet<String>,
    changes: &mut ChangeSet,
) -> Result<(), StoreError> {
    let backend = db.get_database_backend();
    for (team, evs) in load_events(db, tenant, "team", ids).await? {
        let Some((at, upsert)) = evs
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Team(t) => Some(((e.occurred_at, e.event_id.clone()), t)),
                _ => None,
            })
            .max_by(|a, b| a.0.cmp(&b.0))
        else {
            continue;
        };
        changes.team_ids.insert(team.clone());
        let mut p = Placeholders::new(backend);
        let tuple = p.tuple(6);
        let sql = format!(
            "INSERT INTO \"ing_teams\" (\"tenant\", \"team_id\", \"display_name\", \"parent_team_id\", \"supervisor_id\", \"occurred_at\") VALUES {tuple} \
             ON CONFLICT (\"tenant\", \"team_id\") DO UPDATE SET \"display_name\" = excluded.\"display_name\", \"parent_team_id\" = excluded.\"parent_team_id\", \
             \"supervisor_id\" = excluded.\"supervisor_id\", \"occurred_at\" = excluded.\"occurred_at\""
        );
        let values = vec![
            Value::String(Some(tenant.to_string())),
            Value::String(Some(team.clone())),
            Value::String(Some(upsert.display_name.clone())),
            Value::String(upsert.parent_team_id.clone()),
            Value::String(upsert.supervisor_id.clone()),
            Value::BigInt(Some(micros(at.0))),
        ];
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

/// Moves the tenant's data version on by one; returns the new version.
async fn bump_version(
    db: &impl ConnectionTrait,
    tenant: &str,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let backend = db.get_database_backend();
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
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            what: format!("data version of {tenant}"),
            reason: "no row returned".into(),
        })?;
    Ok(row.try_get("", "version")?)
}

/// Adds the batch's outcomes to the hourly audit counters.
async fn count_outcomes(
    db: &impl ConnectionTrait,
    tenant: &str,
    now: DateTime<Utc>,
    accepted: usize,
    duplicates: usize,
    rejected: &[&str],
) -> Result<(), StoreError> {
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
    let backend = db.get_database_backend();
    for ((outcome, reason), n) in counts {
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
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_tenant_scoped() {
        assert_eq!(lock_key("acme", "ticket:T1"), lock_key("acme", "ticket:T1"));
        assert_ne!(
            lock_key("acme", "ticket:T1"),
            lock_key("other", "ticket:T1")
        );
        assert_ne!(lock_key("acme", "ticket:T1"), lock_key("acme", "ticket:T2"));
    }
}
