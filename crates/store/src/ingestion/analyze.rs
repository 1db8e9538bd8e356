//! Keeps PostgreSQL's planner statistics fresh as the ingestion tables grow.
//!
//! Without statistics, the planner takes a freshly created event store for
//! empty and scans a tenant's whole history for the handful of tickets a
//! batch touches (seen here: 420 ms instead of 9 ms per batch at 900,000
//! events). Autovacuum would analyse the tables, but it may be off (it is on
//! the development and CI machines). So the writer counts the events it
//! writes, and the projection the entities it folds, each with an
//! [`Analyzer`] of its own tables that runs `ANALYZE` in the background
//! after the first few thousand rows and then each time the rows written
//! have doubled: plans only need the order of magnitude (a fifth's growth
//! cost a bulk load some twenty analyses on the way to 200,000 events). The
//! projection needs its own count because the facts grow after the events:
//! analysed on the writer's count, a fact table was often caught before the
//! projection had committed much, looked nearly empty, and the planner then
//! filtered the tenant's every fact against a lookup's whole id list instead
//! of searching the key (seen here: 3.5 s instead of milliseconds per
//! lookup of 3,000 tickets, most of a bulk load's catch-up).
//! These analyses sample few rows ([`GROWTH_STATISTICS_TARGET`]). With the
//! server's default they sampled 30,000 rows of the ticket facts and sorted
//! each of their 34 columns: 250–700 ms of the database's CPU each, several
//! per bulk load, beside intake. 3,000 rows take a third to a tenth of that
//! and still give the order of magnitude. The full analysis at start-up
//! ([`analyze`]) and autovacuum's keep the server's default.
//! SQLite needs none of this: its planner uses the indexes without
//! statistics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kpi_domain::schema::FactType;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait};

use super::migration::fact_table;

/// Rows written before the first analysis.
const FIRST_ANALYSIS_AFTER: u64 = 5_000;
/// Growth (as a fraction of the rows at the last analysis) that triggers the next.
const GROWTH: f64 = 1.0;
/// The statistics target of the analyses on growth: samples of 3,000 rows
/// (columns with a target of their own, like the event store's, keep it).
const GROWTH_STATISTICS_TARGET: u32 = 10;

/// Which tables an [`Analyzer`] keeps fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tables {
    /// The event store (the writer's count).
    Events,
    /// The facts, contributors and roster (the projection's count).
    Facts,
}

/// Counts rows written and analyses its tables when they have grown enough.
#[derive(Debug)]
pub struct Analyzer {
    tables: Tables,
    written_since: AtomicU64,
    rows_at_last: AtomicU64,
    running: AtomicBool,
}

impl Analyzer {
    fn of(tables: Tables) -> Arc<Self> {
        Arc::new(Self {
            tables,
            written_since: AtomicU64::new(0),
            rows_at_last: AtomicU64::new(0),
            running: AtomicBool::new(false),
        })
    }

    /// For the writer: counts events, analyses the event store.
    pub fn for_events() -> Arc<Self> {
        Self::of(Tables::Events)
    }

    /// For the projection: counts entities folded, analyses the tables the
    /// projection writes.
    pub fn for_facts() -> Arc<Self> {
        Self::of(Tables::Facts)
    }

    /// Notes `rows` written; starts a background analysis when due.
    pub fn note(self: &Arc<Self>, db: &DatabaseConnection, rows: u64) {
        if db.get_database_backend() != DbBackend::Postgres || rows == 0 {
            return;
        }
        let since = self.written_since.fetch_add(rows, Ordering::Relaxed) + rows;
        let base = self.rows_at_last.load(Ordering::Relaxed);
        let due = since >= FIRST_ANALYSIS_AFTER.max((base as f64 * GROWTH) as u64);
        if !due || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let (this, db) = (self.clone(), db.clone());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            match analyze_sampled(&db, &table_names(this.tables)).await {
                Ok(()) => {
                    let done = this.written_since.swap(0, Ordering::Relaxed);
                    this.rows_at_last.fetch_add(done, Ordering::Relaxed);
                    tracing::debug!(
                        tables = ?this.tables,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "ingestion tables analysed"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "analysing the ingestion tables failed"),
            }
            this.running.store(false, Ordering::Release);
        });
    }
}

/// The quoted names of a set of tables.
fn table_names(tables: Tables) -> Vec<String> {
    match tables {
        Tables::Events => vec![
            "\"ing_event_keys\"".to_string(),
            "\"ing_entity_events\"".to_string(),
        ],
        Tables::Facts => {
            let mut names = vec![
                "\"ing_ticket_contributors\"".to_string(),
                "\"ing_roster\"".to_string(),
            ];
            names.extend(
                FactType::ALL
                    .iter()
                    .map(|t| format!("\"{}\"", fact_table(*t))),
            );
            names
        }
    }
}

/// `ANALYZE` of the event store and every fact table (PostgreSQL; a no-op
/// on SQLite).
pub async fn analyze(db: &impl ConnectionTrait) -> Result<(), sea_orm::DbErr> {
    let mut tables = table_names(Tables::Events);
    tables.extend(table_names(Tables::Facts));
    analyze_tables(db, &tables).await
}

/// `ANALYZE` of `tables` with the small sample of [`GROWTH_STATISTICS_TARGET`].
async fn analyze_sampled(db: &DatabaseConnection, tables: &[String]) -> Result<(), sea_orm::DbErr> {
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!(
        "SET LOCAL default_statistics_target = {GROWTH_STATISTICS_TARGET}"
    ))
    .await?;
    analyze_tables(&txn, tables).await?;
    txn.commit().await
}

async fn analyze_tables(
    db: &impl ConnectionTrait,
    tables: &[String],
) -> Result<(), sea_orm::DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    db.execute_unprepared(&format!("ANALYZE {}", tables.join(", ")))
        .await?;
    Ok(())
}
