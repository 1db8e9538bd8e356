//! Keeps PostgreSQL's planner statistics fresh as the ingestion tables grow.
//!
//! Without statistics, the planner takes a freshly created event store for
//! empty and scans a tenant's whole history for the handful of tickets a
//! batch touches (seen here: 420 ms instead of 9 ms per batch at 900,000
//! events). Autovacuum would analyse the tables, but it may be off (it is on
//! the development and CI machines), so the writer counts what it writes and
//! runs `ANALYZE` in the background after the first few thousand rows and
//! then each time the rows written have doubled: plans only need the order
//! of magnitude, and every `ANALYZE` samples every table (a fifth's growth
//! cost a bulk load some twenty analyses on the way to 200,000 events).
//! SQLite needs none of this: its planner uses the indexes without
//! statistics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kpi_domain::schema::FactType;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};

use super::migration::fact_table;

/// Rows written before the first analysis.
const FIRST_ANALYSIS_AFTER: u64 = 5_000;
/// Growth (as a fraction of the rows at the last analysis) that triggers the next.
const GROWTH: f64 = 1.0;

/// Counts rows written and analyses the tables when they have grown enough.
#[derive(Debug, Default)]
pub(crate) struct Analyzer {
    written_since: AtomicU64,
    rows_at_last: AtomicU64,
    running: AtomicBool,
}

impl Analyzer {
    /// Notes `rows` written; starts a background analysis when due.
    pub(crate) fn note(self: &Arc<Self>, db: &DatabaseConnection, rows: u64) {
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
            match analyze(&db).await {
                Ok(()) => {
                    let done = this.written_since.swap(0, Ordering::Relaxed);
                    this.rows_at_last.fetch_add(done, Ordering::Relaxed);
                    tracing::debug!(
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

/// `ANALYZE` of the event store and every fact table (PostgreSQL; a no-op
/// on SQLite).
pub async fn analyze(db: &impl ConnectionTrait) -> Result<(), sea_orm::DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let mut tables = vec![
        "\"ing_events\"".to_string(),
        "\"ing_ticket_contributors\"".to_string(),
        "\"ing_roster\"".to_string(),
    ];
    tables.extend(
        FactType::ALL
            .iter()
            .map(|t| format!("\"{}\"", fact_table(*t))),
    );
    db.execute_unprepared(&format!("ANALYZE {}", tables.join(", ")))
        .await?;
    Ok(())
}
