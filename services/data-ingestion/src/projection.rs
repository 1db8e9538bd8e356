//! Keeps the facts up with the events.
//!
//! An ingest call stores events and a pending batch, and returns; the facts
//! are folded afterwards by [`Projection`]:
//! - a background task projects every tenant's pending batches once intake
//!   pauses, or once it has waited [`MAX_LAG`] while writes kept coming, so
//!   a burst is folded in a few large transactions instead of competing
//!   with its own intake (which has the machine for that long); it is woken
//!   by writes, and looks every few seconds for batches another replica
//!   left behind;
//! - every read of facts calls [`Projection::catch_up`] first, which projects
//!   what was pending when the read began, so a read after an acknowledged
//!   write always sees it (read-your-writes), however far behind the
//!   background task is.
//!
//! Business-hours durations need the tenant's calendar, fetched here from
//! the catalog ([`Calendars`]); an unreachable catalog delays the facts, it
//! never loses events.
//!
//! How far behind the facts are is exported ([`Meters`]): the batches
//! pending in the database and the age of the oldest
//! (`kpi.ingestion.projection.pending_batches`,
//! `kpi.ingestion.projection.lag`, sampled after every pass and every few
//! seconds), the batches this process folded and the projections that
//! failed (`kpi.ingestion.projection.batches`,
//! `kpi.ingestion.projection.failures`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use kpi_store::DatabaseConnection;
use kpi_store::ingestion::projection::{
    Backlog, backlog, newest_pending, pending_tenants, project_pending,
};
use kpi_store::ingestion::{Analyzer, ChangeSet};
use opentelemetry::metrics::Counter;
use tokio::sync::{Mutex, Notify, broadcast};
use tokio::task::JoinHandle;
use tonic::Status;

use crate::calendars::Calendars;

/// Pending batches folded in one transaction: large enough to share the
/// work of tickets touched by several batches, small enough to bound memory
/// (16 against 8: a 1,000,000-event catch-up in half the time, peak RSS
/// 172 MiB against 145 MiB; README, Benchmarks).
const BATCHES_PER_TRANSACTION: u32 = 16;
/// How often the background task looks for batches nobody woke it for.
const POLL_EVERY: Duration = Duration::from_secs(5);
/// The pause after a failed projection before the next attempt.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Intake this quiet lets the background task start.
const QUIET_FOR: Duration = Duration::from_millis(200);
/// How long the background task waits for intake to pause while writes
/// keep coming: past it, the projection runs beside intake. Folding
/// beside intake cost it about a quarter of its rate (200,000 events:
/// 89,544–91,752 events/s against 109,731–128,985 with the projection after
/// the stream) and finished no sooner. Reads do not wait for it: each one
/// folds what was acknowledged before it.
const MAX_LAG: Duration = Duration::from_secs(5);
/// How often the backlog is sampled besides after each pass (a pass can take
/// minutes; another replica may have folded the batches).
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// The backlog as last sampled, read by the gauges' callbacks.
#[derive(Debug)]
struct Sampled {
    batches: AtomicU64,
    /// µs since the epoch; [`NOTHING_PENDING`] when none is timed.
    oldest: AtomicI64,
}

/// [`Sampled::oldest`] when no timed batch is pending.
const NOTHING_PENDING: i64 = i64::MIN;

impl Sampled {
    fn store(&self, backlog: Backlog) {
        self.batches.store(backlog.batches, Ordering::Relaxed);
        let oldest = backlog
            .oldest
            .map_or(NOTHING_PENDING, |t| t.timestamp_micros());
        self.oldest.store(oldest, Ordering::Relaxed);
    }

    /// Seconds since the oldest pending batch was written, 0 with none: it
    /// keeps growing between samples while the projection is stuck.
    fn lag_seconds(&self) -> f64 {
        match self.oldest.load(Ordering::Relaxed) {
            NOTHING_PENDING => 0.0,
            oldest => (Utc::now().timestamp_micros() - oldest).max(0) as f64 / 1e6,
        }
    }
}

/// The projection's instruments.
struct Meters {
    backlog: Arc<Sampled>,
    /// `kpi.ingestion.projection.batches`: pending batches folded into facts.
    batches: Counter<u64>,
    /// `kpi.ingestion.projection.failures`: projections that failed (they
    /// are retried; the batches stay pending).
    failures: Counter<u64>,
}

impl Meters {
    fn new() -> Self {
        let meter = kpi_runtime::metrics::meter();
        let backlog = Arc::new(Sampled {
            batches: AtomicU64::new(0),
            oldest: AtomicI64::new(NOTHING_PENDING),
        });
        let sampled = backlog.clone();
        // Observable instruments stay registered with the meter provider.
        let _pending = meter
            .u64_observable_gauge("kpi.ingestion.projection.pending_batches")
            .with_description("batches written but not yet folded into facts, every tenant")
            .with_callback(move |o| o.observe(sampled.batches.load(Ordering::Relaxed), &[]))
            .build();
        let sampled = backlog.clone();
        let _lag = meter
            .f64_observable_gauge("kpi.ingestion.projection.lag")
            .with_unit("s")
            .with_description("age of the oldest batch not yet folded into facts (0: none)")
            .with_callback(move |o| o.observe(sampled.lag_seconds(), &[]))
            .build();
        Self {
            backlog,
            batches: meter
                .u64_counter("kpi.ingestion.projection.batches")
                .with_description("pending batches folded into facts")
                .build(),
            failures: meter
                .u64_counter("kpi.ingestion.projection.failures")
                .with_description("projections that failed and will be retried")
                .build(),
        }
    }
}

/// The projection of pending batches into facts.
pub struct Projection {
    db: DatabaseConnection,
    /// Planner statistics kept fresh as the facts grow.
    statistics: Arc<Analyzer>,
    calendars: Calendars,
    changes: broadcast::Sender<ChangeSet>,
    wake: Notify,
    /// Writes with new events so far, to tell a burst from a pause.
    writes: AtomicU64,
    /// One projection per tenant at a time in this process (the database
    /// lock serialises replicas; this keeps waiters off the connection pool).
    tenants: SyncMutex<HashMap<String, Arc<Mutex<()>>>>,
    meters: Meters,
}

impl Projection {
    /// The projection over `db`, with calendars from the catalog.
    pub fn new(db: DatabaseConnection, calendars: Calendars) -> Arc<Self> {
        let (changes, _) = broadcast::channel(1024);
        Arc::new(Self {
            db,
            statistics: Analyzer::for_facts(),
            calendars,
            changes,
            wake: Notify::new(),
            writes: AtomicU64::new(0),
            tenants: SyncMutex::default(),
            meters: Meters::new(),
        })
    }

    /// Change notices: one per projected transaction.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeSet> {
        self.changes.subscribe()
    }

    /// Tells the background task there is work: a write with new events.
    pub fn wake(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Projects everything of `tenant` that was written before this call,
    /// then samples the backlog if there was anything to project.
    pub async fn catch_up(&self, tenant: &str) -> Result<(), Status> {
        match newest_pending(&self.db, tenant).await? {
            Some(upto) => {
                let result = self.project_until(tenant, upto).await;
                self.sample_backlog().await;
                result
            }
            None => Ok(()),
        }
    }

    /// Projects the tenant's batches numbered up to `upto`; a failure is
    /// counted.
    async fn project_until(&self, tenant: &str, upto: i64) -> Result<(), Status> {
        let result = self.fold_until(tenant, upto).await;
        if result.is_err() {
            self.meters.failures.add(1, &[]);
        }
        result
    }

    async fn fold_until(&self, tenant: &str, upto: i64) -> Result<(), Status> {
        let lock = self.tenant_lock(tenant);
        let _only_one = lock.lock().await;
        let calendar = self.calendars.get(tenant).await?;
        while let Some(changes) = project_pending(
            &self.db,
            &self.statistics,
            tenant,
            upto,
            BATCHES_PER_TRANSACTION,
            &calendar,
            Utc::now(),
        )
        .await?
        {
            self.meters.batches.add(changes.batches, &[]);
            // Nobody listening is fine: notices are for whoever caches.
            let _ = self.changes.send(changes);
        }
        Ok(())
    }

    fn tenant_lock(&self, tenant: &str) -> Arc<Mutex<()>> {
        let mut tenants = self
            .tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tenants.entry(tenant.to_string()).or_default().clone()
    }

    /// Refreshes the backlog gauges from the database; on failure they keep
    /// the last sample (the failure is logged by whoever hits it next).
    async fn sample_backlog(&self) {
        match backlog(&self.db).await {
            Ok(backlog) => self.meters.backlog.store(backlog),
            Err(e) => tracing::debug!(error = %e, "cannot sample the projection backlog"),
        }
    }

    /// Starts the background task; it runs until the handle is aborted.
    pub fn spawn(self: &Arc<Self>) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::join!(this.project_in_the_background(), this.sample_periodically());
        })
    }

    async fn project_in_the_background(&self) {
        let mut projected_upto = 0;
        loop {
            projected_upto = self.wait_for_a_pause(projected_upto).await;
            if self.project_everything().await {
                tokio::time::sleep(RETRY_AFTER).await;
            } else {
                // A wake-up while projecting is kept by Notify for this wait.
                let _ = tokio::time::timeout(POLL_EVERY, self.wake.notified()).await;
            }
        }
    }

    async fn sample_periodically(&self) {
        loop {
            self.sample_backlog().await;
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
    }

    /// Waits while writes keep coming, until intake is quiet for a moment or
    /// writes since `projected_upto` have kept coming for [`MAX_LAG`];
    /// returns the write count then.
    async fn wait_for_a_pause(&self, projected_upto: u64) -> u64 {
        let first_waiting = Instant::now();
        let mut seen = self.writes.load(Ordering::Relaxed);
        loop {
            if seen > projected_upto && first_waiting.elapsed() >= MAX_LAG {
                return seen;
            }
            tokio::time::sleep(QUIET_FOR).await;
            let now = self.writes.load(Ordering::Relaxed);
            if now == seen {
                return now;
            }
            seen = now;
        }
    }

    /// One pass over every tenant with pending batches; true if one failed.
    async fn project_everything(&self) -> bool {
        let pending = match pending_tenants(&self.db).await {
            Ok(pending) => pending,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list pending projections");
                self.meters.failures.add(1, &[]);
                return true;
            }
        };
        let mut failed = false;
        for (tenant, upto) in pending {
            if let Err(status) = self.project_until(&tenant, upto).await {
                tracing::warn!(tenant, error = %status.message(), "projection failed; will retry");
                failed = true;
            }
        }
        self.sample_backlog().await;
        failed
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn lag_is_the_oldest_batch_age_and_zero_when_none_is_pending() {
        let sampled = Sampled {
            batches: AtomicU64::new(0),
            oldest: AtomicI64::new(NOTHING_PENDING),
        };
        assert_eq!(sampled.lag_seconds(), 0.0);
        sampled.store(Backlog {
            batches: 3,
            oldest: Some(Utc::now() - TimeDelta::seconds(90)),
        });
        assert_eq!(sampled.batches.load(Ordering::Relaxed), 3);
        let lag = sampled.lag_seconds();
        // Measured from now: 90 s, plus the moment this test took.
        assert!((90.0..100.0).contains(&lag), "{lag}");
        sampled.store(Backlog::default());
        assert_eq!(sampled.lag_seconds(), 0.0);
    }
}
