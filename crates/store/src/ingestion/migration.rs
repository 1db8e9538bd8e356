//! The ingestion migrations, with their own history table
//! (`seaql_migrations_ingestion`). The fact tables are generated from the
//! domain's fact schema of this version.
// `async_trait` signatures of sea-orm-migration elide the manager's lifetime.
#![allow(elided_lifetimes_in_paths)]

use kpi_domain::schema::{FactType, FieldType};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::prelude::*;

/// The ingestion migrator.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        "seaql_migrations_ingestion".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateIngestionTables),
            Box::new(CreatePendingBatches),
            Box::new(PendingBatchesWrittenAt),
            Box::new(EventStoreKeysLeadWithTheId),
            Box::new(EventsKeptPerEntity),
            Box::new(PendingEventsCompressed),
        ]
    }
}

/// The table holding facts of one type.
pub fn fact_table(fact_type: FactType) -> String {
    format!("ing_fact_{}", fact_type.as_str())
}

#[derive(DeriveMigrationName)]
struct CreateIngestionTables;

/// The projection's queue: batches written but not yet folded into facts.
struct CreatePendingBatches;

impl MigrationName for CreatePendingBatches {
    fn name(&self) -> &str {
        "m0002_pending_batches"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreatePendingBatches {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ing_pending"))
                    .if_not_exists()
                    .col(
                        col("id")
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(text("tenant"))
                    .col(text("touched"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ing_pending_tenant_id")
                    .table(Alias::new("ing_pending"))
                    .col(Alias::new("tenant"))
                    .col(Alias::new("id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("ing_pending"))
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

/// When each pending batch was written (µs since the epoch), so the
/// projection's lag can be told: the age of the oldest batch still pending.
/// Batches written before this column existed have none and are left out
/// of the age.
struct PendingBatchesWrittenAt;

impl MigrationName for PendingBatchesWrittenAt {
    fn name(&self) -> &str {
        "m0003_pending_batches_written_at"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PendingBatchesWrittenAt {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_pending_column(manager, col("written_at").big_integer().null()).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_pending_column(manager, "written_at").await
    }
}

/// Adds `column` to `ing_pending` unless it is there already (a migration
/// run again changes nothing); says whether it was added.
async fn add_pending_column(
    manager: &SchemaManager<'_>,
    column: &mut ColumnDef,
) -> Result<bool, DbErr> {
    let name = column.get_column_name();
    if manager.has_column("ing_pending", &name).await? {
        return Ok(false);
    }
    manager
        .alter_table(
            Table::alter()
                .table(Alias::new("ing_pending"))
                .add_column(column)
                .to_owned(),
        )
        .await?;
    Ok(true)
}

/// Drops the column `name` of `ing_pending`.
async fn drop_pending_column(manager: &SchemaManager<'_>, name: &str) -> Result<(), DbErr> {
    manager
        .alter_table(
            Table::alter()
                .table(Alias::new("ing_pending"))
                .drop_column(Alias::new(name))
                .to_owned(),
        )
        .await
}

/// PostgreSQL: the event store's two indexes lead with the id and compare
/// their text keys byte by byte, and the columns nobody filters on carry no
/// planner statistics. Intake is mostly the event store's index inserts
/// (profiled while streaming: 21 % of the machine's CPU in btree inserts,
/// most of it comparing keys), so each comparison matters:
/// - keys led by `tenant` (and `kind`) compared two equal columns before
///   reaching the one that differs; led by `event_id` and `entity_id` the
///   first column decides almost every comparison. The lookups are
///   equalities on all the key's columns, served the same in either order;
/// - under the database's default collation (often `C.UTF-8` or
///   `en_US.UTF-8`) every unequal comparison goes through `strcoll`; these
///   are opaque ids whose order nobody reads, so `"C"` (bytes) serves;
/// - `ANALYZE` (run each time the store doubles, see `analyze`) sampled
///   30,000 rows and sorted every column of them, the payload (a few
///   hundred bytes per event) included: 550 ms of a 200,000-event load's
///   database time. The planner only needs the row count and how many
///   events an entity has, which a sample of 3,000 ids tells as well; the
///   payload and times are never filtered on and get no statistics.
///
/// On a store loaded with `COPY` (200,000 events in arrival order, both
/// indexes) the key changes took the load from 1.61–1.92 s to 1.08–1.40 s,
/// and `ANALYZE` of it went from 250 to 15 ms. SQLite compares bytes
/// already, needs no statistics and keeps its layout.
struct EventStoreKeysLeadWithTheId;

impl MigrationName for EventStoreKeysLeadWithTheId {
    fn name(&self) -> &str {
        "m0004_event_store_keys_lead_with_the_id"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for EventStoreKeysLeadWithTheId {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        lay_out_event_store(manager, &EventStoreLayout::LED_BY_THE_ID).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        lay_out_event_store(manager, &EventStoreLayout::LED_BY_THE_TENANT).await
    }
}

/// The event store becomes two tables and a column, so that intake writes
/// one narrow row per event and one row per batch:
/// - `ing_event_keys(tenant, event_id)`: the idempotency key, nothing else;
/// - `ing_pending.events`: the batch's new events as JSON Lines, until the
///   projection takes them (compressed with lz4 where the server has it,
///   as is `touched`);
/// - `ing_entity_events(tenant, kind, entity_id, events)`: every event of
///   an entity that the projection has taken in, as JSON Lines; the
///   projection reads an entity's history from it by its key.
///
/// Why: with a row per event, a key index and an entity index, `COPY` of
/// 200,000 benchmark events took 1.7–2.0 s against 0.66–0.95 s into a plain
/// table; the key table plus the compressed batch took 0.79–1.02 s. The
/// entity index, an insert per event at intake, becomes one row write per
/// entity in the projection, which runs after the acknowledgement.
///
/// The stored events move over: the keys, and each entity's events as one
/// row. Pending batches written before this migration carry no events;
/// theirs are already in the entity rows, and the projection refolds their
/// entities from those. There is no way back (`down` says so): the batches
/// pending at a downgrade would have nowhere to keep their events.
struct EventsKeptPerEntity;

impl MigrationName for EventsKeptPerEntity {
    fn name(&self) -> &str {
        "m0005_events_kept_per_entity"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for EventsKeptPerEntity {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let postgres = manager.get_database_backend() == DbBackend::Postgres;
        for statement in event_tables_sql(postgres) {
            db.execute_unprepared(&statement).await?;
        }
        if !manager.has_column("ing_pending", "events").await? {
            db.execute_unprepared("ALTER TABLE \"ing_pending\" ADD COLUMN \"events\" text NULL")
                .await?;
        }
        if postgres && server_has_lz4(db).await? {
            // `touched` too: a batch's entity ids pass the 2 kB at which
            // PostgreSQL compresses, and pglz showed in intake's profile.
            db.execute_unprepared(
                "ALTER TABLE \"ing_pending\" ALTER COLUMN \"events\" SET COMPRESSION lz4, \
                 ALTER COLUMN \"touched\" SET COMPRESSION lz4",
            )
            .await?;
            db.execute_unprepared(
                "ALTER TABLE \"ing_entity_events\" ALTER COLUMN \"events\" SET COMPRESSION lz4",
            )
            .await?;
        }
        if manager.has_table("ing_events").await? {
            move_stored_events(db, postgres).await?;
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "m0005_events_kept_per_entity cannot be undone: events of pending batches live only \
             in ing_pending.events, which the earlier layout has no place for; restore a backup \
             taken before the upgrade instead"
                .into(),
        ))
    }
}

/// On PostgreSQL a pending batch's events travel compressed:
/// `ing_pending.events_lz4` holds its JSON Lines as an LZ4 block (its
/// length first, as `lz4_flex` writes it), compressed by the service instead
/// of by PostgreSQL, and `events` stays empty for new batches (batches
/// written before keep theirs there; the projection reads either). SQLite
/// gets the column too but keeps writing text (see `writer::pending_batch`).
///
/// Why: a batch's JSON Lines are about 1 MB per 5,000 events. As text they
/// crossed TLS, were checked as UTF-8 (`textrecv`), copied and compressed
/// again in the server; in a profile of intake that was ~13 % of the
/// machine's CPU, more than PostgreSQL's whole `COPY` of the keys' heap
/// rows. Compressed a quarter of the size, the bytes are stored as they
/// come (`STORAGE EXTERNAL`: no second compression).
///
/// `down` refuses while batches in the new form are pending: their events
/// are nowhere else. Let the projection catch up first.
struct PendingEventsCompressed;

impl MigrationName for PendingEventsCompressed {
    fn name(&self) -> &str {
        "m0006_pending_events_compressed"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PendingEventsCompressed {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let added = add_pending_column(manager, col("events_lz4").binary().null()).await?;
        if added && manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "ALTER TABLE \"ing_pending\" ALTER COLUMN \"events_lz4\" SET STORAGE EXTERNAL",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let waiting = db
            .query_one_raw(Statement::from_string(
                manager.get_database_backend(),
                "SELECT count(*) AS \"n\" FROM \"ing_pending\" WHERE \"events_lz4\" IS NOT NULL",
            ))
            .await?
            .map(|row| row.try_get::<i64>("", "n"))
            .transpose()?
            .unwrap_or(0);
        if waiting > 0 {
            return Err(DbErr::Migration(format!(
                "m0006_pending_events_compressed cannot be undone while {waiting} pending batches \
                 hold compressed events: let the projection catch up (any read of the service \
                 does), then downgrade"
            )));
        }
        drop_pending_column(manager, "events_lz4").await
    }
}

/// The key table and the entity table. On PostgreSQL their ids compare
/// byte by byte and their keys lead with the id (as m0004 laid out the
/// event store), and the events text carries no planner statistics.
fn event_tables_sql(postgres: bool) -> Vec<String> {
    if postgres {
        vec![
            "CREATE TABLE IF NOT EXISTS \"ing_event_keys\" (\
             \"tenant\" text COLLATE \"C\" NOT NULL, \"event_id\" text COLLATE \"C\" NOT NULL, \
             PRIMARY KEY (\"event_id\", \"tenant\"))"
                .into(),
            "ALTER TABLE \"ing_event_keys\" ALTER COLUMN \"tenant\" SET STATISTICS 10, \
             ALTER COLUMN \"event_id\" SET STATISTICS 10"
                .into(),
            "CREATE TABLE IF NOT EXISTS \"ing_entity_events\" (\
             \"tenant\" text COLLATE \"C\" NOT NULL, \"kind\" text COLLATE \"C\" NOT NULL, \
             \"entity_id\" text COLLATE \"C\" NOT NULL, \"events\" text NOT NULL, \
             PRIMARY KEY (\"entity_id\", \"tenant\", \"kind\"))"
                .into(),
            "ALTER TABLE \"ing_entity_events\" ALTER COLUMN \"events\" SET STATISTICS 0".into(),
        ]
    } else {
        vec![
            "CREATE TABLE IF NOT EXISTS \"ing_event_keys\" (\
             \"tenant\" text NOT NULL, \"event_id\" text NOT NULL, \
             PRIMARY KEY (\"tenant\", \"event_id\"))"
                .into(),
            "CREATE TABLE IF NOT EXISTS \"ing_entity_events\" (\
             \"tenant\" text NOT NULL, \"kind\" text NOT NULL, \"entity_id\" text NOT NULL, \
             \"events\" text NOT NULL, PRIMARY KEY (\"tenant\", \"kind\", \"entity_id\"))"
                .into(),
        ]
    }
}

/// Whether the server can compress with lz4 (built with it: PostgreSQL 14+).
async fn server_has_lz4(db: &SchemaManagerConnection<'_>) -> Result<bool, DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS \"n\" FROM pg_settings \
             WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)",
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<i64>("", "n")? > 0,
        None => false,
    })
}

/// Moves the events of `ing_events` into the key table and the entity rows
/// (one JSON line per event, each ending with a newline), then drops it.
async fn move_stored_events(db: &SchemaManagerConnection<'_>, postgres: bool) -> Result<(), DbErr> {
    db.execute_unprepared(
        "INSERT INTO \"ing_event_keys\" (\"tenant\", \"event_id\") \
         SELECT \"tenant\", \"event_id\" FROM \"ing_events\"",
    )
    .await?;
    let lines = if postgres {
        "string_agg(\"payload\" || chr(10), '' ORDER BY \"event_id\")"
    } else {
        "group_concat(\"payload\" || char(10), '')"
    };
    db.execute_unprepared(&format!(
        "INSERT INTO \"ing_entity_events\" (\"tenant\", \"kind\", \"entity_id\", \"events\") \
         SELECT \"tenant\", \"kind\", \"entity_id\", {lines} FROM \"ing_events\" \
         GROUP BY \"tenant\", \"kind\", \"entity_id\""
    ))
    .await?;
    db.execute_unprepared("DROP TABLE \"ing_events\"").await?;
    Ok(())
}

/// How the event store's ids are compared, indexed and sampled on PostgreSQL.
struct EventStoreLayout {
    /// The collation of `tenant`, `event_id`, `kind` and `entity_id`.
    collation: &'static str,
    /// The primary key's columns.
    key: &'static str,
    /// The entity index's columns.
    entity_index: &'static str,
    /// The statistics target of the id columns (-1: the server's default).
    id_statistics: i32,
    /// The statistics target of the payload and the two times.
    other_statistics: i32,
}

impl EventStoreLayout {
    /// Since m0004.
    const LED_BY_THE_ID: Self = Self {
        collation: "C",
        key: "\"event_id\", \"tenant\"",
        entity_index: "\"entity_id\", \"tenant\", \"kind\"",
        id_statistics: 10,
        other_statistics: 0,
    };
    /// As the first migration made it.
    const LED_BY_THE_TENANT: Self = Self {
        collation: "default",
        key: "\"tenant\", \"event_id\"",
        entity_index: "\"tenant\", \"kind\", \"entity_id\"",
        id_statistics: -1,
        other_statistics: -1,
    };
}

/// Lays the event store out as `layout` says (PostgreSQL; nothing elsewhere).
/// The entity index is dropped first so that the collation change does not
/// rebuild it only to drop it; changing only the collation rewrites no rows.
async fn lay_out_event_store(
    manager: &SchemaManager<'_>,
    layout: &EventStoreLayout,
) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let EventStoreLayout {
        collation,
        key,
        entity_index,
        id_statistics,
        other_statistics,
    } = layout;
    let mut changes = vec!["DROP CONSTRAINT \"ing_events_pkey\"".to_string()];
    for id in ["tenant", "event_id", "kind", "entity_id"] {
        changes.push(format!(
            "ALTER COLUMN \"{id}\" TYPE text COLLATE \"{collation}\""
        ));
        changes.push(format!(
            "ALTER COLUMN \"{id}\" SET STATISTICS {id_statistics}"
        ));
    }
    for other in ["payload", "occurred_at", "ingested_at"] {
        changes.push(format!(
            "ALTER COLUMN \"{other}\" SET STATISTICS {other_statistics}"
        ));
    }
    changes.push(format!(
        "ADD CONSTRAINT \"ing_events_pkey\" PRIMARY KEY ({key})"
    ));
    let db = manager.get_connection();
    db.execute_unprepared("DROP INDEX IF EXISTS \"ing_events_entity\"")
        .await?;
    db.execute_unprepared(&format!(
        "ALTER TABLE \"ing_events\" {}",
        changes.join(", ")
    ))
    .await?;
    db.execute_unprepared(&format!(
        "CREATE INDEX \"ing_events_entity\" ON \"ing_events\" ({entity_index})"
    ))
    .await?;
    Ok(())
}

fn col(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}

fn text(name: &str) -> ColumnDef {
    let mut c = col(name);
    c.text().not_null();
    c
}

fn events_table() -> TableCreateStatement {
    Table::create()
        .table(Alias::new("ing_events"))
        .if_not_exists()
        .col(text("tenant"))
        .col(text("event_id"))
        .col(text("kind"))
        .col(text("entity_id"))
        .col(col("occurred_at").big_integer().not_null())
        .col(col("ingested_at").big_integer().not_null())
        .col(text("payload"))
        .primary_key(
            Index::create()
                .col(Alias::new("tenant"))
                .col(Alias::new("event_id")),
        )
        .to_owned()
}

fn fact_table_create(fact_type: FactType) -> TableCreateStatement {
    let schema = fact_type.schema();
    let mut table = Table::create();
    table
        .table(Alias::new(fact_table(fact_type)))
        .if_not_exists()
        .col(text("tenant"));
    for field in schema.fields {
        let mut c = col(field.name);
        match field.field_type {
            FieldType::String | FieldType::Enum => c.text(),
            FieldType::Number | FieldType::Duration => c.double(),
            FieldType::Bool => c.boolean(),
            FieldType::Timestamp => c.big_integer(),
        };
        if field.nullable {
            c.null();
        } else {
            c.not_null();
        }
        table.col(c);
        if field.business_hours {
            table.col(col(&format!("{}_bh", field.name)).double().null());
        }
    }
    table
        .col(col("ingested_at").big_integer().not_null())
        .primary_key(
            Index::create()
                .col(Alias::new("tenant"))
                .col(Alias::new(schema.id_field)),
        )
        .to_owned()
}

/// Indexes for the time fields periods are taken on, and for lookups.
fn fact_indexes(fact_type: FactType) -> Vec<IndexCreateStatement> {
    let table = fact_table(fact_type);
    let mut columns: Vec<Vec<&str>> = vec![vec![fact_type.schema().default_time_field]];
    match fact_type {
        FactType::Ticket => {
            columns.push(vec!["first_resolved_at"]);
            columns.push(vec!["customer_id", "category", "created_at"]);
        }
        FactType::Survey => columns.push(vec!["ticket_id"]),
        _ => {}
    }
    columns
        .into_iter()
        .map(|cols| {
            let mut index = Index::create();
            index
                .name(format!("{table}_{}", cols.join("_")))
                .table(Alias::new(&table))
                .col(Alias::new("tenant"))
                .if_not_exists();
            for c in cols {
                index.col(Alias::new(c));
            }
            index.to_owned()
        })
        .collect()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateIngestionTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(events_table()).await?;
        manager
            .create_index(
                Index::create()
                    .name("ing_events_entity")
                    .table(Alias::new("ing_events"))
                    .col(Alias::new("tenant"))
                    .col(Alias::new("kind"))
                    .col(Alias::new("entity_id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        for fact_type in FactType::ALL {
            manager.create_table(fact_table_create(fact_type)).await?;
            for index in fact_indexes(fact_type) {
                manager.create_index(index).await?;
            }
        }
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ing_ticket_contributors"))
                    .if_not_exists()
                    .col(text("tenant"))
                    .col(text("ticket_id"))
                    .col(text("agent_id"))
                    .col(col("share").double().not_null())
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant"))
                            .col(Alias::new("ticket_id"))
                            .col(Alias::new("agent_id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ing_roster"))
                    .if_not_exists()
                    .col(text("tenant"))
                    .col(text("agent_id"))
                    .col(col("interval_no").integer().not_null())
                    .col(col("valid_from").big_integer().null())
                    .col(col("valid_until").big_integer().null())
                    .col(text("team_id"))
                    .col(text("role"))
                    .col(col("hired_on").text().null())
                    .col(col("active").boolean().not_null())
                    .col(text("display_name"))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant"))
                            .col(Alias::new("agent_id"))
                            .col(Alias::new("interval_no")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ing_teams"))
                    .if_not_exists()
                    .col(text("tenant"))
                    .col(text("team_id"))
                    .col(text("display_name"))
                    .col(col("parent_team_id").text().null())
                    .col(col("supervisor_id").text().null())
                    .col(col("occurred_at").big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant"))
                            .col(Alias::new("team_id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ing_audit"))
                    .if_not_exists()
                    .col(text("tenant"))
                    .col(col("hour").big_integer().not_null())
                    .col(text("outcome"))
                    .col(text("reason"))
                    .col(col("count").big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant"))
                            .col(Alias::new("hour"))
                            .col(Alias::new("outcome"))
                            .col(Alias::new("reason")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ing_data_versions"))
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Alias::new("tenant"))
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(col("version").big_integer().not_null())
                    .col(col("watermark").big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut tables: Vec<String> = FactType::ALL.iter().map(|t| fact_table(*t)).collect();
        tables.extend(
            [
                "ing_events",
                "ing_event_keys",
                "ing_entity_events",
                "ing_ticket_contributors",
                "ing_roster",
                "ing_teams",
                "ing_audit",
                "ing_data_versions",
            ]
            .map(String::from),
        );
        for table in tables {
            manager
                .drop_table(
                    Table::drop()
                        .table(Alias::new(table))
                        .if_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
