//! Keeps the facts up with the events.
//!
//! An ingest call stores events and a pending batch, and returns; the facts
//! are folded afterwards by [`Projection`]:
//! - a background task projects every tenant's pending batches once intake
//!   pauses (or too much is waiting), so a burst is folded in a few large
//!   transactions instead of competing with its own intake; it is woken by
//!   writes, and looks every few seconds for batches another replica left
//!   behind;
//! - every read of facts calls [`Projection::catch_up`] first, which projects
//!   what was pending when the read began, so a read after an acknowledged
//!   write always sees it (read-your-writes), however far behind the
//!   background task is.
//!
//! Business-hours durations need the tenant's calendar, fetched here from
//! the catalog ([`Calendars`]); an unreachable catalog delays the facts, it
//! never loses events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use chrono::Utc;
use kpi_store::DatabaseConnection;
use kpi_store::ingestion::projection::{newest_pending, pending_tenants, project_pending};
use kpi_store::ingestion::{Analyzer, ChangeSet};
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
/// Writes waiting that start the background task even while intake goes on.
const MAX_WAITING_WRITES: u64 = 32;

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

    /// Projects everything of `tenant` that was written before this call.
    pub async fn catch_up(&self, tenant: &str) -> Result<(), Status> {
        match newest_pending(&self.db, tenant).await? {
            Some(upto) => self.project_until(tenant, upto).await,
            None => Ok(()),
        }
    }

    /// Projects the tenant's batches numbered up to `upto`.
    async fn project_until(&self, tenant: &str, upto: i64) -> Result<(), Status> {
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

    /// Starts the background task; it runs until the handle is aborted.
    pub fn spawn(self: &Arc<Self>) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut projected_upto = 0;
            loop {
                projected_upto = this.wait_for_a_pause(projected_upto).await;
                if this.project_everything().await {
                    tokio::time::sleep(RETRY_AFTER).await;
                } else {
                    // A wake-up while projecting is kept by Notify for this wait.
                    let _ = tokio::time::timeout(POLL_EVERY, this.wake.notified()).await;
                }
            }
        })
    }

    /// Waits while writes keep coming, until intake is quiet for a moment or
    /// many writes wait since `projected_upto`; returns the write count then.
    async fn wait_for_a_pause(&self, projected_upto: u64) -> u64 {
        let mut seen = self.writes.load(Ordering::Relaxed);
        loop {
            if seen.saturating_sub(projected_upto) >= MAX_WAITING_WRITES {
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
        failed
    }
}
