//! The projection: stored events folded into facts, after the write.
//!
//! The write path ([`super::writer`]) stores the events' keys and, in the
//! same transaction, a *pending batch*: the new events, each line led by its
//! entity's key, and the span of their times. [`project_pending`] takes
//! pending batches of one tenant, appends their events to their entities' rows (`ing_entity_events`),
//! folds every touched entity again from ALL its events (so the facts are
//! the same whatever order the events arrived in), follows what depends on
//! other entities (a survey's agent from its ticket; FCR's gap to the
//! customer's next ticket on the same category), writes the facts and
//! deletes the batches, in one transaction: a crash leaves the batches
//! pending and the entity rows as they were, and folding again is harmless.
//! Each batch's events are appended exactly once, by the transaction that
//! deletes the batch.
//!
//! One projection per tenant runs at a time (a PostgreSQL advisory lock;
//! SQLite has one writer anyway), so no two transactions fold the same
//! ticket from different views, and nothing else needs to lock entities.
//! Readers that must see every acknowledged event call the service's
//! catch-up first, which projects what was pending when the read began.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kpi_domain::calendar::BusinessCalendar;
use kpi_domain::events::{Event, Payload};
use kpi_domain::facts::{self, FactRow, FactValue};
use kpi_domain::schema::FactType;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value};
use serde::{Deserialize, Serialize};

use super::analyze::Analyzer;
use super::copy::{decompress_pending, event_lines, split_pending_line};
use super::rows::{delete_facts_where, load_facts, load_facts_where, upsert_facts};
use super::sql::{
    MAX_PARAMS, Placeholders, from_micros, in_list, json_list, json_list_elements, list_value,
    micros,
};
use super::writer::ChangeSet;
use crate::StoreError;

/// What the events of pending batches touched: entity ids by kind, and the
/// span of their times (µs).
///
/// `ing_pending.touched` holds a batch's span as this JSON, with no
/// entities: each line of the batch's events names its entity already, and
/// the projection reads them from there (building the set at intake was
/// ~8 % of the service's CPU while streaming). Batches written before
/// their events were kept with them (m0005) name their entities here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Touched {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    entities: BTreeMap<String, BTreeSet<String>>,
    start: Option<i64>,
    end: Option<i64>,
}

impl Touched {
    /// The span of these events' times, as a pending batch records it.
    pub(crate) fn span_of<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut t = Touched::default();
        for e in events {
            t.widen(micros(e.occurred_at));
        }
        t
    }

    fn widen(&mut self, at: i64) {
        self.start = Some(self.start.map_or(at, |s| s.min(at)));
        self.end = Some(self.end.map_or(at, |e| e.max(at)));
    }

    /// Both batches' entities and times.
    fn merge(&mut self, other: Touched) {
        for (kind, ids) in other.entities {
            self.entities.entry(kind).or_default().extend(ids);
        }
        for at in other.start.into_iter().chain(other.end) {
            self.widen(at);
        }
    }

    /// How many entities were touched.
    fn len(&self) -> u64 {
        self.entities.values().map(BTreeSet::len).sum::<usize>() as u64
    }

    /// The touched ids of one kind of entity.
    fn ids(&self, kind: &str) -> BTreeSet<String> {
        self.entities.get(kind).cloned().unwrap_or_default()
    }
}

/// The newest pending batch of `tenant`, if any: a catch-up projects up to it.
pub async fn newest_pending(
    db: &impl ConnectionTrait,
    tenant: &str,
) -> Result<Option<i64>, StoreError> {
    let backend = db.get_database_backend();
    let mut p = Placeholders::new(backend);
    let sql = format!(
        "SELECT max(\"id\") AS \"id\" FROM \"ing_pending\" WHERE \"tenant\" = {}",
        p.next()
    );
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [Value::String(Some(tenant.to_string()))],
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<Option<i64>>("", "id")?,
        None => None,
    })
}

/// The backlog of every tenant: how many batches are pending and when the
/// oldest of them was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Pending batches.
    pub batches: u64,
    /// When the oldest pending batch was written (none if nothing is
    /// pending, or only batches from before writes were timed).
    pub oldest: Option<DateTime<Utc>>,
}

/// The backlog of every tenant, in one statement.
pub async fn backlog(db: &impl ConnectionTrait) -> Result<Backlog, StoreError> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT count(*) AS \"batches\", min(\"written_at\") AS \"oldest\" FROM \"ing_pending\"",
        ))
        .await?;
    Ok(match row {
        Some(row) => Backlog {
            batches: u64::try_from(row.try_get::<i64>("", "batches")?).unwrap_or_default(),
            oldest: row
                .try_get::<Option<i64>>("", "oldest")?
                .and_then(from_micros),
        },
        None => Backlog::default(),
    })
}

/// The tenants with pending batches, each with its newest batch.
pub async fn pending_tenants(db: &impl ConnectionTrait) -> Result<Vec<(String, i64)>, StoreError> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT \"tenant\", max(\"id\") AS \"id\" FROM \"ing_pending\" GROUP BY \"tenant\" ORDER BY \"tenant\"",
        ))
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("", "tenant")?, row.try_get("", "id")?)))
        .collect()
}

/// Projects up to `max_batches` of the tenant's pending batches numbered up
/// to `upto`, in one transaction. Returns what changed, or `None` when
/// nothing was pending.
pub async fn project_pending(
    db: &DatabaseConnection,
    statistics: &Arc<Analyzer>,
    tenant: &str,
    upto: i64,
    max_batches: u32,
    calendar: &BusinessCalendar,
    now: DateTime<Utc>,
) -> Result<Option<ChangeSet>, StoreError> {
    let txn = db.begin().await?;
    lock_tenant(&txn, tenant).await?;
    let Some((touched, batches)) = take_batches(&txn, tenant, upto, max_batches).await? else {
        txn.rollback().await?;
        return Ok(None);
    };
    let mut changes = ChangeSet {
        tenant: tenant.to_string(),
        batches,
        start: touched.start.and_then(from_micros),
        end: touched.end.and_then(from_micros),
        ..ChangeSet::default()
    };
    refold(&txn, tenant, &touched, calendar, now, &mut changes).await?;
    changes.data_version = super::reader::data_version(&txn, tenant).await?.0;
    txn.commit().await?;
    statistics.note(db, touched.len());
    Ok(Some(changes))
}

/// Waits for the tenant's projection lock (PostgreSQL; released at the end
/// of the transaction). SQLite's one writer serialises projections already.
async fn lock_tenant(db: &impl ConnectionTrait, tenant: &str) -> Result<(), StoreError> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [Value::BigInt(Some(lock_key(tenant, "projection")))],
    ))
    .await?;
    Ok(())
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

/// Deletes the oldest pending batches (the first statement writes, so that
/// SQLite takes its write lock at once), appends their events to their
/// entities' rows, and returns what they touched.
async fn take_batches(
    db: &impl ConnectionTrait,
    tenant: &str,
    upto: i64,
    max_batches: u32,
) -> Result<Option<(Touched, u64)>, StoreError> {
    let backend = db.get_database_backend();
    let mut p = Placeholders::new(backend);
    let (t, u, n) = (p.next(), p.next(), p.next());
    let sql = format!(
        "DELETE FROM \"ing_pending\" WHERE \"id\" IN (SELECT \"id\" FROM \"ing_pending\" \
         WHERE \"tenant\" = {t} AND \"id\" <= {u} ORDER BY \"id\" LIMIT {n}) \
         RETURNING \"touched\", \"events\", \"events_lz4\""
    );
    let values = [
        Value::String(Some(tenant.to_string())),
        Value::BigInt(Some(upto)),
        Value::BigInt(Some(i64::from(max_batches))),
    ];
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let taken = rows.len() as u64;
    let corrupt = |reason: String| StoreError::Corrupt {
        what: format!("pending batch of {tenant}"),
        reason,
    };
    let mut merged: Option<Touched> = None;
    let mut arrived = EntityLines::default();
    for row in rows {
        let json: String = row.try_get("", "touched")?;
        let touched: Touched = serde_json::from_str(&json).map_err(|e| corrupt(e.to_string()))?;
        merged.get_or_insert_with(Touched::default).merge(touched);
        // Compressed on PostgreSQL since m0006; as text on SQLite and in
        // batches written before; none in batches written before m0005 (the
        // migration moved their events to the entity rows).
        if let Some(stored) = row.try_get::<Option<Vec<u8>>>("", "events_lz4")? {
            let lines = decompress_pending(&stored).map_err(corrupt)?;
            arrived.add(&lines).map_err(|e| corrupt(e.to_string()))?;
        } else if let Some(lines) = row.try_get::<Option<String>>("", "events")? {
            arrived.add(&lines).map_err(|e| corrupt(e.to_string()))?;
        }
    }
    if let Some(touched) = merged.as_mut() {
        arrived.note_entities(touched);
    }
    arrived.append_to_entities(db, tenant).await?;
    Ok(merged.map(|touched| (touched, taken)))
}

/// Events taken from pending batches, as JSON lines per entity.
#[derive(Default)]
struct EntityLines {
    /// `(kind, entity_id)` → the entity's new lines, each ending with a newline.
    lines: BTreeMap<(String, String), String>,
}

impl EntityLines {
    /// Sorts a batch's lines by entity (each line names its entity: the
    /// events themselves are parsed once, when folded).
    fn add(&mut self, text: &str) -> Result<(), serde_json::Error> {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (key, event) = split_pending_line(line)?;
            let lines = self.lines.entry(key).or_default();
            lines.push_str(event);
            lines.push('\n');
        }
        Ok(())
    }

    /// Adds the entities the lines name to `touched`.
    fn note_entities(&self, touched: &mut Touched) {
        for (kind, id) in self.lines.keys() {
            if let Some(ids) = touched.entities.get_mut(kind) {
                ids.insert(id.clone());
            } else {
                touched
                    .entities
                    .insert(kind.clone(), BTreeSet::from([id.clone()]));
            }
        }
    }

    /// Appends the lines to the entities' rows, creating the rows of new
    /// entities. One statement per [`APPEND_CHUNK`] entities, its text the
    /// same whatever their number (the rows travel as one JSON array).
    async fn append_to_entities(
        self,
        db: &impl ConnectionTrait,
        tenant: &str,
    ) -> Result<(), StoreError> {
        let backend = db.get_database_backend();
        let mut p = Placeholders::new(backend);
        let (t, rows) = (p.next(), p.next());
        let source = match backend {
            DbBackend::Postgres => format!(
                "SELECT {t}, r->>0, r->>1, r->>2 FROM jsonb_array_elements(CAST({rows} AS jsonb)) AS r"
            ),
            // SQLite reads `ON CONFLICT` after a bare `FROM` as a join
            // clause; a `WHERE` ends the `SELECT` (its documented way out).
            _ => format!(
                "SELECT {t}, json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
                 json_extract(value, '$[2]') FROM json_each({rows}) WHERE true"
            ),
        };
        let sql = format!(
            "INSERT INTO \"ing_entity_events\" (\"tenant\", \"kind\", \"entity_id\", \"events\") {source} \
             ON CONFLICT (\"tenant\", \"kind\", \"entity_id\") \
             DO UPDATE SET \"events\" = \"ing_entity_events\".\"events\" || excluded.\"events\""
        );
        let entries: Vec<((String, String), String)> = self.lines.into_iter().collect();
        for chunk in entries.chunks(APPEND_CHUNK) {
            let triples: Vec<[&str; 3]> = chunk
                .iter()
                .map(|((kind, id), lines)| [kind.as_str(), id.as_str(), lines.as_str()])
                .collect();
            let json = serde_json::to_string(&triples).map_err(|e| StoreError::Corrupt {
                what: format!("entity events of {tenant}"),
                reason: e.to_string(),
            })?;
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                sql.clone(),
                [
                    Value::String(Some(tenant.to_string())),
                    Value::String(Some(json)),
                ],
            ))
            .await?;
        }
        Ok(())
    }
}

/// Entities appended to per statement: bounds the statement's JSON.
const APPEND_CHUNK: usize = 2_000;

/// Loads every stored event of these entities, grouped by entity id.
async fn load_events(
    db: &impl ConnectionTrait,
    tenant: &str,
    kind: &str,
    ids: &BTreeSet<String>,
) -> Result<BTreeMap<String, Vec<Event>>, StoreError> {
    let mut out: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let backend = db.get_database_backend();
    let mut p = Placeholders::new(backend);
    let (t, k) = (p.next(), p.next());
    let list = in_list(backend, &mut p);
    let sql = format!(
        "SELECT \"entity_id\", \"events\" FROM \"ing_entity_events\" WHERE \"tenant\" = {t} AND \"kind\" = {k} AND \"entity_id\" {list}"
    );
    let values = vec![
        Value::String(Some(tenant.to_string())),
        Value::String(Some(kind.to_string())),
        list_value(backend, ids),
    ];
    for row in db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
    {
        let entity: String = row.try_get("", "entity_id")?;
        let lines: String = row.try_get("", "events")?;
        let events = event_lines(&lines)
            .collect::<Result<Vec<Event>, _>>()
            .map_err(|e| StoreError::Corrupt {
                what: format!("events of {kind} {entity}"),
                reason: e.to_string(),
            })?;
        out.insert(entity, events);
    }
    Ok(out)
}

fn refs(events: &[Event]) -> Vec<&Event> {
    events.iter().collect()
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
    touched: &Touched,
    calendar: &BusinessCalendar,
    now: DateTime<Utc>,
    changes: &mut ChangeSet,
) -> Result<(), StoreError> {
    let tickets =
        refold_tickets(db, tenant, &touched.ids("ticket"), calendar, now, changes).await?;
    refold_surveys(db, tenant, &touched.ids("survey"), &tickets, now, changes).await?;

    let rows: Vec<FactRow> = load_events(db, tenant, "conversation", &touched.ids("conversation"))
        .await?
        .iter()
        .map(|(id, evs)| facts::fold_conversation(id, &refs(evs), calendar))
        .collect();
    write_rows(db, tenant, FactType::Conversation, &rows, now, changes).await?;

    let rows: Vec<FactRow> = load_events(db, tenant, "bad_review", &touched.ids("bad_review"))
        .await?
        .iter()
        .map(|(id, evs)| facts::fold_bad_review(id, &refs(evs)))
        .collect();
    write_rows(db, tenant, FactType::BadReview, &rows, now, changes).await?;

    refold_qa(db, tenant, &touched.ids("qa_review"), now, changes).await?;

    let rows: Vec<FactRow> = load_events(db, tenant, "field_visit", &touched.ids("field_visit"))
        .await?
        .values()
        .filter_map(|evs| facts::field_visit_fact(&refs(evs), calendar))
        .collect();
    write_rows(db, tenant, FactType::FieldVisit, &rows, now, changes).await?;

    let rows: Vec<FactRow> = load_events(db, tenant, "assessment", &touched.ids("assessment"))
        .await?
        .values()
        .filter_map(|evs| facts::assessment_fact(&refs(evs)))
        .collect();
    write_rows(db, tenant, FactType::Assessment, &rows, now, changes).await?;

    refold_roster(db, tenant, &touched.ids("agent"), changes).await?;
    refold_teams(db, tenant, &touched.ids("team"), changes).await?;
    Ok(())
}

async fn write_rows(
    db: &impl ConnectionTrait,
    tenant: &str,
    fact_type: FactType,
    rows: &[FactRow],
    now: DateTime<Utc>,
    changes: &mut ChangeSet,
) -> Result<(), StoreError> {
    note_rows(changes, rows);
    upsert_facts(db, tenant, fact_type, rows, now).await?;
    Ok(())
}

/// Tickets: folded from their events; contributors; then the FCR gap of
/// every ticket in the touched (customer, category) groups. Returns the
/// fresh rows by ticket id.
///
/// A transaction refolds thousands of tickets, and the rows are the
/// projection's peak memory: each is held once (moved, not cloned), except
/// the stored rows of untouched group members, kept to see whether their gap
/// moved.
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
    // FCR groups: the old (customer, category) of every touched ticket, and
    // below its new one (a ticket may move between groups).
    let mut groups = stored_groups(db, tenant, &list).await?;
    let (fresh, contributors) = fold_tickets(db, tenant, ids, calendar).await?;
    write_contributors(db, tenant, &list, &contributors).await?;
    drop(contributors);
    groups.extend(fresh.values().filter_map(fcr_group));
    let fresh_ids: BTreeSet<String> = fresh.keys().cloned().collect();

    let mut by_group: BTreeMap<(String, String), Vec<FactRow>> = BTreeMap::new();
    let mut stored: BTreeMap<String, FactRow> = BTreeMap::new();
    for row in group_members(db, tenant, &groups, &fresh_ids).await? {
        if let Some(group) = fcr_group(&row) {
            stored.insert(row.id().to_string(), row.clone());
            by_group.entry(group).or_default().push(row);
        }
    }
    let mut rows: Vec<FactRow> = Vec::with_capacity(fresh.len());
    for row in fresh.into_values() {
        match fcr_group(&row) {
            Some(group) => by_group.entry(group).or_default().push(row),
            None => rows.push(row),
        }
    }
    for mut members in by_group.into_values() {
        facts::fill_next_contact_gaps(&mut members, calendar);
        // Other tickets of the group are written only if their gap moved.
        rows.extend(
            members
                .into_iter()
                .filter(|row| stored.get(row.id()).is_none_or(|before| before != row)),
        );
    }
    // Upserts in id order, as before: concurrent writers lock rows alike.
    rows.sort_by(|a, b| a.id().cmp(b.id()));
    write_rows(db, tenant, FactType::Ticket, &rows, now, changes).await?;
    Ok(rows
        .into_iter()
        .filter(|r| fresh_ids.contains(r.id()))
        .map(|r| (r.id().to_string(), r))
        .collect())
}

/// The touched tickets folded from all their events, and their contributors
/// (ticket, agent, share).
async fn fold_tickets(
    db: &impl ConnectionTrait,
    tenant: &str,
    ids: &BTreeSet<String>,
    calendar: &BusinessCalendar,
) -> Result<(BTreeMap<String, FactRow>, Vec<(String, String, f64)>), StoreError> {
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
    Ok((fresh, contributors))
}

/// The FCR groups the stored rows of these tickets are in. Only the two
/// columns are read: the rows themselves are folded again.
async fn stored_groups(
    db: &impl ConnectionTrait,
    tenant: &str,
    ids: &[String],
) -> Result<BTreeSet<(String, String)>, StoreError> {
    let backend = db.get_database_backend();
    let mut p = Placeholders::new(backend);
    let t = p.next();
    let list = in_list(backend, &mut p);
    // The same group as `fcr_group`: no customer, no group; no category, "".
    let sql = format!(
        "SELECT \"customer_id\", COALESCE(\"category\", '') AS \"category\" FROM \"ing_fact_ticket\" \
         WHERE \"tenant\" = {t} AND \"ticket_id\" {list} AND \"customer_id\" <> ''"
    );
    let values = [
        Value::String(Some(tenant.to_string())),
        list_value(backend, ids),
    ];
    let mut groups = BTreeSet::new();
    for row in db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
    {
        groups.insert((
            row.try_get("", "customer_id")?,
            row.try_get("", "category")?,
        ));
    }
    Ok(groups)
}

/// The stored tickets of these FCR groups, but for the `refolded` ones
/// (their fresh rows replace them). Only the groups' members are read, not
/// every ticket of their customers: late in a month those are many times more.
async fn group_members(
    db: &impl ConnectionTrait,
    tenant: &str,
    groups: &BTreeSet<(String, String)>,
    refolded: &BTreeSet<String>,
) -> Result<Vec<FactRow>, StoreError> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let mut p = Placeholders::new(backend);
    let (t, g, r) = (p.next(), p.next(), p.next());
    // The groups drive the plan: unpacked once, then an index probe each on
    // (tenant, customer_id, …), also with the statistics of an empty table
    // (checked with EXPLAIN ANALYZE, 17,000 groups). `NOT IN (SELECT …)`
    // hashes the refolded ids once.
    let pairs = match backend {
        DbBackend::Postgres => {
            format!("SELECT g->>0, g->>1 FROM jsonb_array_elements(CAST({g} AS jsonb)) AS g")
        }
        _ => format!(
            "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each({g})"
        ),
    };
    let condition = format!(
        "\"tenant\" = {t} AND (\"customer_id\", COALESCE(\"category\", '')) IN ({pairs}) \
         AND \"ticket_id\" NOT IN ({})",
        json_list_elements(backend, &r)
    );
    let pairs: Vec<[&str; 2]> = groups
        .iter()
        .map(|(c, k)| [c.as_str(), k.as_str()])
        .collect();
    let values = vec![
        Value::String(Some(tenant.to_string())),
        // Pairs of strings always serialise.
        Value::String(Some(serde_json::to_string(&pairs).unwrap_or_default())),
        json_list(refolded),
    ];
    Ok(load_facts(db, FactType::Ticket, &condition, values).await?)
}

/// A ticket's FCR group: (customer, category), if it names a customer.
fn fcr_group(row: &FactRow) -> Option<(String, String)> {
    text(row, "customer_id").map(|c| (c, text(row, "category").unwrap_or_default()))
}

async fn write_contributors(
    db: &impl ConnectionTrait,
    tenant: &str,
    tickets: &[String],
    rows: &[(String, String, f64)],
) -> Result<(), StoreError> {
    let backend = db.get_database_backend();
    if !tickets.is_empty() {
        let mut p = Placeholders::new(backend);
        let t = p.next();
        let list = in_list(backend, &mut p);
        let sql = format!(
            "DELETE FROM \"ing_ticket_contributors\" WHERE \"tenant\" = {t} AND \"ticket_id\" {list}"
        );
        let values = vec![
            Value::String(Some(tenant.to_string())),
            list_value(backend, tickets),
        ];
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    let insert = "INSERT INTO \"ing_ticket_contributors\" (\"tenant\", \"ticket_id\", \"agent_id\", \"share\")";
    if backend == DbBackend::Postgres && !rows.is_empty() {
        // One JSON parameter: a statement text the connection prepares once
        // (see `rows::json_upsert`); shares go in their shortest exact form.
        let json = serde_json::to_string(rows).map_err(|e| StoreError::Corrupt {
            what: format!("contributors of {tenant}"),
            reason: e.to_string(),
        })?;
        let sql = format!(
            "{insert} SELECT $1, r->>0, r->>1, CAST(r->>2 AS double precision) \
             FROM jsonb_array_elements(CAST($2 AS jsonb)) AS r"
        );
        let values = [
            Value::String(Some(tenant.to_string())),
            Value::String(Some(json)),
        ];
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        return Ok(());
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
        let sql = format!("{insert} VALUES {}", tuples.join(", "));
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
    write_rows(db, tenant, FactType::Survey, &rows, now, changes).await
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
        write_rows(db, tenant, fact_type, &rows, now, changes).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_tenant_scoped() {
        assert_eq!(
            lock_key("acme", "projection"),
            lock_key("acme", "projection")
        );
        assert_ne!(
            lock_key("acme", "projection"),
            lock_key("other", "projection")
        );
    }

    #[test]
    fn merged_batches_cover_both() {
        let mut a = Touched::default();
        a.entities
            .entry("ticket".into())
            .or_default()
            .insert("T1".into());
        a.widen(10);
        let mut b = Touched::default();
        b.entities
            .entry("ticket".into())
            .or_default()
            .insert("T2".into());
        b.entities
            .entry("survey".into())
            .or_default()
            .insert("S1".into());
        b.widen(5);
        b.widen(20);
        a.merge(b);
        assert_eq!(a.ids("ticket").len(), 2);
        assert_eq!(a.ids("survey").len(), 1);
        assert_eq!(a.len(), 3);
        assert_eq!((a.start, a.end), (Some(5), Some(20)));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Touched>(&json).unwrap(), a);
    }

    /// A pending batch records the span of its events' times; the
    /// entities come from its lines, added to those an older batch named.
    #[test]
    fn a_batch_touches_the_entities_its_lines_name() {
        use super::super::copy::append_pending_line;
        use super::super::test_events::ticket_created;
        let events = [
            ticket_created("e1", "T2", 11),
            ticket_created("e2", "T1", 9),
            ticket_created("e3", "T2", 10),
        ];
        let span = Touched::span_of(&events);
        let json = serde_json::to_string(&span).unwrap();
        let mut touched: Touched = serde_json::from_str(&json).unwrap();
        assert_eq!(touched.len(), 0);
        assert_eq!(
            (touched.start, touched.end),
            (
                Some(micros(events[1].occurred_at)),
                Some(micros(events[0].occurred_at))
            )
        );
        // A batch written before m0005 named its entities in `touched`.
        let older: Touched = serde_json::from_str(
            r#"{"entities":{"ticket":["T0"],"agent":["A1"]},"start":5,"end":6}"#,
        )
        .unwrap();
        touched.merge(older);
        let mut lines = Vec::new();
        for event in &events {
            append_pending_line(&mut lines, event).unwrap();
        }
        let mut arrived = EntityLines::default();
        arrived.add(std::str::from_utf8(&lines).unwrap()).unwrap();
        arrived.note_entities(&mut touched);
        assert_eq!(
            touched.ids("ticket"),
            BTreeSet::from(["T0".to_string(), "T1".to_string(), "T2".to_string()])
        );
        assert_eq!(touched.ids("agent"), BTreeSet::from(["A1".to_string()]));
        assert_eq!(touched.len(), 4);
        assert_eq!(
            (touched.start, touched.end),
            (Some(5), Some(micros(events[0].occurred_at)))
        );
    }
}
