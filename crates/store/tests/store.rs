//! Storage against real databases: migrations apply on PostgreSQL and
//! SQLite, twice without harm, and every fact table has a column per field
//! of the domain's fact schema; written events wait as pending batches
//! until the projection folds them.

use chrono::{TimeDelta, TimeZone, Utc};
use kpi_domain::calendar::BusinessCalendar;
use kpi_domain::events::{Event, Payload, TicketEvent, TicketEventType};
use kpi_domain::schema::FactType;
use kpi_store::ingestion::{Accepted, Analyzer, IngestWriter, fact_table, projection};
use kpi_testkit::{DbKind, TestDb};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use sea_orm_migration::MigratorTrait;

async fn migrations_apply_twice_and_match_the_schema(kind: DbKind) {
    let db = TestDb::new(kind).await.unwrap();
    let conn = kpi_store::connect(&db.url).await.unwrap();
    for _ in 0..2 {
        kpi_store::catalog::Migrator::up(&conn, None).await.unwrap();
        kpi_store::ingestion::Migrator::up(&conn, None)
            .await
            .unwrap();
    }
    for fact_type in FactType::ALL {
        let schema = fact_type.schema();
        let mut columns: Vec<String> = schema
            .fields
            .iter()
            .map(|f| format!("\"{}\"", f.name))
            .collect();
        columns.extend(
            schema
                .fields
                .iter()
                .filter(|f| f.business_hours)
                .map(|f| format!("\"{}_bh\"", f.name)),
        );
        let sql = format!(
            "SELECT \"tenant\", {}, \"ingested_at\" FROM \"{}\" WHERE 1 = 0",
            columns.join(", "),
            fact_table(fact_type)
        );
        conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
            .await
            .unwrap_or_else(|e| panic!("{fact_type:?}: {e}"));
    }
}

#[tokio::test]
async fn migrations_on_sqlite() {
    migrations_apply_twice_and_match_the_schema(DbKind::Sqlite).await;
}

#[tokio::test]
async fn migrations_on_postgres() {
    migrations_apply_twice_and_match_the_schema(DbKind::Postgres).await;
}

/// Every pooled PostgreSQL connection plans each execution for its own
/// parameters, prepared statement or not (set once per connection).
#[tokio::test]
async fn postgres_connections_force_custom_plans() {
    let db = TestDb::new(DbKind::Postgres).await.unwrap();
    let conn = kpi_store::connect_warm(&db.url, 3).await.unwrap();
    let show = || async {
        let row = conn
            .query_one_raw(Statement::from_string(
                conn.get_database_backend(),
                "SHOW plan_cache_mode",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<String>("", "plan_cache_mode").unwrap()
    };
    let modes = futures::future::join_all((0..6).map(|_| show())).await;
    assert!(modes.iter().all(|m| m == "force_custom_plan"), "{modes:?}");
}

/// An event store written before m0005 (a row per event in `ing_events`,
/// and a pending batch that carries no events) keeps its events through the
/// upgrade: its keys still make a replay all duplicates, the old pending
/// batch's tickets fold from their moved events, and a later event of a
/// ticket folds together with the moved ones. The upgrade cannot be undone,
/// and says so.
async fn the_upgrade_keeps_events_and_duplicates(kind: DbKind) {
    let db = TestDb::new(kind).await.unwrap();
    let conn = kpi_store::connect(&db.url).await.unwrap();
    kpi_store::ingestion::Migrator::up(&conn, Some(4))
        .await
        .unwrap();
    let backend = conn.get_database_backend();
    let before = [
        ticket_event("e1", "T1", TicketEventType::Created, 0),
        ticket_event("e2", "T2", TicketEventType::Created, 5),
    ];
    let values = match kind {
        DbKind::Postgres => "($1, $2, $3, $4, $5, $6, $7)",
        _ => "(?, ?, ?, ?, ?, ?, ?)",
    };
    for a in &before {
        let e = &a.event;
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO \"ing_events\" (\"tenant\", \"event_id\", \"kind\", \"entity_id\", \
                 \"occurred_at\", \"ingested_at\", \"payload\") VALUES {values}"
            ),
            [
                "acme".into(),
                e.event_id.clone().into(),
                e.payload.kind().into(),
                e.payload.entity_id().into(),
                e.occurred_at.timestamp_micros().into(),
                0_i64.into(),
                serde_json::to_string(e).unwrap().into(),
            ],
        ))
        .await
        .unwrap();
    }
    conn.execute_raw(Statement::from_string(
        backend,
        "INSERT INTO \"ing_pending\" (\"tenant\", \"touched\") \
         VALUES ('acme', '{\"entities\":{\"ticket\":[\"T1\",\"T2\"]},\"start\":null,\"end\":null}')",
    ))
    .await
    .unwrap();

    kpi_store::ingestion::Migrator::up(&conn, None)
        .await
        .unwrap();
    let manager = sea_orm_migration::SchemaManager::new(&conn);
    assert!(!manager.has_table("ing_events").await.unwrap());
    let now = Utc::now();
    let upto = projection::newest_pending(&conn, "acme")
        .await
        .unwrap()
        .unwrap();
    project_acme(&conn, upto, now).await;
    assert_eq!(ticket_facts(&conn).await, 2, "the old batch's tickets");

    let writer = IngestWriter::new(conn.clone());
    let mut after = before.to_vec();
    after.push(ticket_event("e3", "T1", TicketEventType::Resolved, 30));
    for (i, a) in after.iter_mut().enumerate() {
        a.index = i;
    }
    let outcome = writer.write("acme", &after, &[], now).await.unwrap();
    assert_eq!((outcome.fresh, outcome.duplicates), (1, vec![0, 1]));
    let upto = projection::newest_pending(&conn, "acme")
        .await
        .unwrap()
        .unwrap();
    project_acme(&conn, upto, now).await;
    assert_eq!(
        ticket_facts_where(
            &conn,
            "\"ticket_id\" = 'T1' AND \"first_resolved_at\" IS NOT NULL"
        )
        .await,
        1,
        "T1 folded from events on both sides of the upgrade"
    );
    assert_eq!(ticket_facts(&conn).await, 2);

    // m0006 steps back (nothing compressed is pending), then m0005 refuses.
    let undo = kpi_store::ingestion::Migrator::down(&conn, Some(2)).await;
    assert!(
        undo.as_ref().is_err_and(|e| e
            .to_string()
            .contains("m0005_events_kept_per_entity cannot be undone")),
        "{undo:?}"
    );
    kpi_store::ingestion::Migrator::up(&conn, None)
        .await
        .unwrap();
    let replay = writer.write("acme", &after, &[], now).await.unwrap();
    assert_eq!((replay.fresh, replay.duplicates.len()), (0, 3));
}

#[tokio::test]
async fn the_upgrade_keeps_events_and_duplicates_on_sqlite() {
    the_upgrade_keeps_events_and_duplicates(DbKind::Sqlite).await;
}

#[tokio::test]
async fn the_upgrade_keeps_events_and_duplicates_on_postgres() {
    the_upgrade_keeps_events_and_duplicates(DbKind::Postgres).await;
}

/// Pending batches written before m0006 (events as JSON Lines text) fold
/// after the upgrade together with batches written after it (compressed on
/// PostgreSQL). Stepping back is refused while a compressed batch is
/// pending, and allowed once the projection has taken it.
async fn pending_text_batches_fold_after_compression(kind: DbKind) {
    let db = TestDb::new(kind).await.unwrap();
    let conn = kpi_store::connect(&db.url).await.unwrap();
    kpi_store::ingestion::Migrator::up(&conn, Some(5))
        .await
        .unwrap();
    let backend = conn.get_database_backend();
    let created = ticket_event("e1", "T1", TicketEventType::Created, 0);
    let mut lines = Vec::new();
    kpi_store::ingestion::copy::append_pending_line(&mut lines, &created.event).unwrap();
    let values = match kind {
        DbKind::Postgres => "($1, $2, $3)",
        _ => "(?, ?, ?)",
    };
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO \"ing_pending\" (\"tenant\", \"touched\", \"events\") VALUES {values}"
        ),
        [
            "acme".into(),
            "{}".into(),
            String::from_utf8(lines).unwrap().into(),
        ],
    ))
    .await
    .unwrap();

    kpi_store::ingestion::Migrator::up(&conn, None)
        .await
        .unwrap();
    let writer = IngestWriter::new(conn.clone());
    let now = Utc::now();
    let resolved = ticket_event("e2", "T1", TicketEventType::Resolved, 30);
    writer.write("acme", &[resolved], &[], now).await.unwrap();
    if kind == DbKind::Postgres {
        // SQLite keeps writing text: nothing of its would be lost.
        let undo = kpi_store::ingestion::Migrator::down(&conn, Some(1)).await;
        assert!(
            undo.as_ref().is_err_and(|e| e
                .to_string()
                .contains("1 pending batches hold compressed events")),
            "{undo:?}"
        );
    }

    let upto = projection::newest_pending(&conn, "acme")
        .await
        .unwrap()
        .unwrap();
    let changes = project_acme(&conn, upto, now).await.unwrap();
    assert_eq!(changes.batches, 2);
    assert_eq!(
        ticket_facts_where(
            &conn,
            "\"ticket_id\" = 'T1' AND \"created_at\" IS NOT NULL AND \"first_resolved_at\" IS NOT NULL"
        )
        .await,
        1,
        "T1 folded from the text batch's creation and the compressed batch's resolution"
    );

    kpi_store::ingestion::Migrator::down(&conn, Some(1))
        .await
        .unwrap();
    let manager = sea_orm_migration::SchemaManager::new(&conn);
    assert!(
        !manager
            .has_column("ing_pending", "events_lz4")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn pending_text_batches_fold_after_compression_on_sqlite() {
    pending_text_batches_fold_after_compression(DbKind::Sqlite).await;
}

#[tokio::test]
async fn pending_text_batches_fold_after_compression_on_postgres() {
    pending_text_batches_fold_after_compression(DbKind::Postgres).await;
}

/// A fresh database with the ingestion tables (kept alive by the `TestDb`).
async fn ingestion_db(kind: DbKind) -> (TestDb, DatabaseConnection) {
    let db = TestDb::new(kind).await.unwrap();
    let conn = kpi_store::connect(&db.url).await.unwrap();
    kpi_store::ingestion::Migrator::up(&conn, None)
        .await
        .unwrap();
    (db, conn)
}

fn ticket_event(id: &str, ticket: &str, kind: TicketEventType, minute: i64) -> Accepted {
    let mut t = TicketEvent::new(ticket, kind);
    t.agent_id = Some("a1".into());
    t.customer_id = Some("c1".into());
    t.category = Some("billing".into());
    Accepted {
        index: 0,
        event: Event {
            event_id: id.into(),
            occurred_at: Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
                + TimeDelta::minutes(minute),
            payload: Payload::Ticket(t),
        },
    }
}

async fn ticket_facts(conn: &DatabaseConnection) -> i64 {
    ticket_facts_where(conn, "TRUE").await
}

/// How many ticket facts meet `condition` (SQL).
async fn ticket_facts_where(conn: &DatabaseConnection, condition: &str) -> i64 {
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            format!(
                "SELECT count(*) AS n FROM \"{}\" WHERE {condition}",
                fact_table(FactType::Ticket)
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

/// Folds tenant acme's pending batches up to `upto` (8 per transaction, UTC calendar).
async fn project_acme(
    conn: &DatabaseConnection,
    upto: i64,
    now: chrono::DateTime<Utc>,
) -> Option<kpi_store::ingestion::ChangeSet> {
    projection::project_pending(
        conn,
        &Analyzer::for_facts(),
        "acme",
        upto,
        8,
        &BusinessCalendar::utc_default(),
        now,
    )
    .await
    .unwrap()
}

/// Acknowledged events wait as pending batches (a crash before projection
/// loses nothing); projecting folds them once, and a replay adds nothing.
async fn writes_stay_pending_until_projected(kind: DbKind) {
    let (_db, conn) = ingestion_db(kind).await;
    let writer = IngestWriter::new(conn.clone());
    let now = Utc::now();
    let batch = [
        ticket_event("e1", "T1", TicketEventType::Created, 0),
        ticket_event("e2", "T1", TicketEventType::Resolved, 30),
        ticket_event("e3", "T2", TicketEventType::Created, 5),
    ];
    let first = writer.write("acme", &batch, &[], now).await.unwrap();
    assert_eq!((first.fresh, first.data_version), (3, 1));
    assert_eq!(ticket_facts(&conn).await, 0, "nothing projected yet");
    let upto = projection::newest_pending(&conn, "acme").await.unwrap();
    assert!(upto.is_some());
    assert_eq!(
        projection::newest_pending(&conn, "other").await.unwrap(),
        None
    );
    // The backlog: one batch, written at the write's instant (µs).
    let written = Utc.timestamp_micros(now.timestamp_micros()).unwrap();
    assert_eq!(
        projection::backlog(&conn).await.unwrap(),
        projection::Backlog {
            batches: 1,
            oldest: Some(written)
        }
    );

    // A replay after a timeout: all duplicates, no new batch, same version.
    let replay = writer.write("acme", &batch, &[], now).await.unwrap();
    assert_eq!((replay.fresh, replay.duplicates.len()), (0, 3));
    assert_eq!(replay.data_version, 1);
    assert_eq!(
        projection::newest_pending(&conn, "acme").await.unwrap(),
        upto
    );

    let changes = project_acme(&conn, upto.unwrap(), now)
        .await
        .expect("one batch was pending");
    assert_eq!((changes.data_version, changes.batches), (1, 1));
    assert_eq!(
        projection::backlog(&conn).await.unwrap(),
        projection::Backlog::default()
    );
    assert!(changes.agent_ids.contains("a1"));
    assert_eq!(ticket_facts(&conn).await, 2);
    assert_eq!(
        projection::newest_pending(&conn, "acme").await.unwrap(),
        None
    );
    assert!(project_acme(&conn, i64::MAX, now).await.is_none());
}

/// The backlog spans tenants, and its age is the oldest timed batch's: a
/// batch written by a release before batches were timed (no `written_at`)
/// is counted but has no age.
async fn backlog_counts_every_tenant_and_ages_by_the_oldest(kind: DbKind) {
    let (_db, conn) = ingestion_db(kind).await;
    let backend = conn.get_database_backend();
    conn.execute_raw(Statement::from_string(
        backend,
        "INSERT INTO \"ing_pending\" (\"tenant\", \"touched\") VALUES ('old', '{}')",
    ))
    .await
    .unwrap();
    assert_eq!(
        projection::backlog(&conn).await.unwrap(),
        projection::Backlog {
            batches: 1,
            oldest: None
        }
    );
    let writer = IngestWriter::new(conn.clone());
    let first = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap();
    let later = first + TimeDelta::minutes(5);
    let batch = |id: &str| [ticket_event(id, id, TicketEventType::Created, 0)];
    writer
        .write("acme", &batch("e1"), &[], later)
        .await
        .unwrap();
    writer
        .write("other", &batch("e2"), &[], first)
        .await
        .unwrap();
    writer
        .write("acme", &batch("e3"), &[], later)
        .await
        .unwrap();
    assert_eq!(
        projection::backlog(&conn).await.unwrap(),
        projection::Backlog {
            batches: 4,
            oldest: Some(first)
        }
    );
}

#[tokio::test]
async fn backlog_on_sqlite() {
    backlog_counts_every_tenant_and_ages_by_the_oldest(DbKind::Sqlite).await;
}

#[tokio::test]
async fn backlog_on_postgres() {
    backlog_counts_every_tenant_and_ages_by_the_oldest(DbKind::Postgres).await;
}

#[tokio::test]
async fn pending_projection_on_sqlite() {
    writes_stay_pending_until_projected(DbKind::Sqlite).await;
}

#[tokio::test]
async fn pending_projection_on_postgres() {
    writes_stay_pending_until_projected(DbKind::Postgres).await;
}

/// A ticket's contributors as stored: (agent, share), by agent.
async fn stored_contributors(conn: &DatabaseConnection, ticket: &str) -> Vec<(String, f64)> {
    let sql = format!(
        "SELECT \"agent_id\", \"share\" FROM \"ing_ticket_contributors\" \
         WHERE \"tenant\" = 'acme' AND \"ticket_id\" = '{ticket}' ORDER BY \"agent_id\""
    );
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get("", "agent_id").unwrap(),
                row.try_get("", "share").unwrap(),
            )
        })
        .collect()
}

/// The projection stores each ticket's contributors with the shares the
/// domain computes, bit for bit, and a later batch replaces them.
async fn contributors_are_stored_exactly(kind: DbKind) {
    let (_db, conn) = ingestion_db(kind).await;
    let writer = IngestWriter::new(conn.clone());
    let calendar = BusinessCalendar::utc_default();
    let statistics = Analyzer::for_facts();
    let by = |id: &str, agent: &str, kind: TicketEventType, minute: i64| {
        let mut e = ticket_event(id, "T1", kind, minute);
        if let Payload::Ticket(t) = &mut e.event.payload {
            t.agent_id = Some(agent.into());
        }
        e
    };
    let batches = [
        vec![
            by("e1", "a1", TicketEventType::Created, 0),
            by("e2", "a2", TicketEventType::AgentReply, 10),
            by("e3", "a3", TicketEventType::AgentReply, 20),
        ],
        vec![by("e4", "a3", TicketEventType::Resolved, 30)],
    ];
    let mut all: Vec<Event> = Vec::new();
    for batch in batches {
        let now = Utc::now();
        writer.write("acme", &batch, &[], now).await.unwrap();
        projection::project_pending(&conn, &statistics, "acme", i64::MAX, 8, &calendar, now)
            .await
            .unwrap()
            .expect("a batch was pending");
        all.extend(batch.into_iter().map(|a| a.event));
        let events: Vec<&Event> = all.iter().collect();
        let want = kpi_domain::facts::ticket_contributors(&events);
        let got = stored_contributors(&conn, "T1").await;
        assert_eq!(got.len(), want.len());
        for ((agent, share), (want_agent, want_share)) in got.iter().zip(&want) {
            assert_eq!(agent, want_agent);
            assert_eq!(
                share.to_bits(),
                want_share.to_bits(),
                "{agent}: {share} vs {want_share}"
            );
        }
    }
    let shares: Vec<f64> = stored_contributors(&conn, "T1")
        .await
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(shares.len(), 3);
    assert!(
        shares.iter().any(|s| (s - 0.5).abs() < 1e-12),
        "a3 did two of four: {shares:?}"
    );
}

#[tokio::test]
async fn contributors_on_sqlite() {
    contributors_are_stored_exactly(DbKind::Sqlite).await;
}

#[tokio::test]
async fn contributors_on_postgres() {
    contributors_are_stored_exactly(DbKind::Postgres).await;
}

/// How many histogram bounds PostgreSQL keeps for the ticket facts'
/// `created_at`, once an analysis has made them (`None` until then).
async fn created_at_bounds(conn: &DatabaseConnection) -> Option<i32> {
    let sql = format!(
        "SELECT array_length(histogram_bounds::text::text[], 1) AS n FROM pg_stats \
         WHERE tablename = '{}' AND attname = 'created_at'",
        fact_table(FactType::Ticket)
    );
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap()?;
    row.try_get::<Option<i32>>("", "n").unwrap()
}

/// The analyses the projection starts as the facts grow sample few rows
/// (histograms of at most 11 bounds), while the full analysis at start-up
/// keeps the server's default (101 bounds for 300 distinct times).
#[tokio::test]
async fn analyses_on_growth_sample_few_rows_on_postgres() {
    let (_db, conn) = ingestion_db(DbKind::Postgres).await;
    let writer = IngestWriter::new(conn.clone());
    let tickets: Vec<Accepted> = (0..300)
        .map(|i| {
            let (id, ticket) = (format!("e{i}"), format!("T{i}"));
            ticket_event(&id, &ticket, TicketEventType::Created, i)
        })
        .collect();
    let now = Utc::now();
    writer.write("acme", &tickets, &[], now).await.unwrap();
    project_acme(&conn, i64::MAX, now).await.expect("pending");
    assert_eq!(ticket_facts(&conn).await, 300);
    assert_eq!(created_at_bounds(&conn).await, None, "not analysed yet");

    // As many entities as start the first analysis on growth.
    Analyzer::for_facts().note(&conn, 5_000);
    let mut bounds = None;
    for _ in 0..200 {
        bounds = created_at_bounds(&conn).await;
        if bounds.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let bounds = bounds.expect("the analysis on growth ran within 10 s");
    assert!((2..=11).contains(&bounds), "{bounds} bounds");

    kpi_store::ingestion::analyze(&conn).await.unwrap();
    assert_eq!(created_at_bounds(&conn).await, Some(101));
}
