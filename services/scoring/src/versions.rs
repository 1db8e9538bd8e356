//! The tenant's versions (catalog revision and data version), read fresh for
//! every request but shared between concurrent requests of one tenant.
//!
//! A scorecard answer is cached under its request and these two numbers, so
//! a cached read needs nothing else from the other services. Read-your-writes
//! holds because a request is only ever answered with versions read by a
//! fetch that *started after the request arrived*: a write acknowledged
//! before the request arrived is committed before that fetch reads, so its
//! version is in the key.
//!
//! Per tenant at most one fetch runs and one waits. A request arriving while
//! a fetch runs joins the waiting one, which starts when the running one
//! ends; so under load one pair of cheap calls (GetCatalogRevision,
//! GetDataVersion) serves every request that arrived during the previous
//! pair, and a request waits at most two fetches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tonic::Status;

use crate::clients::{Clients, DataStamp};

/// What a cached answer is keyed by, besides the request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// The tenant's catalog revision (indicators, templates, calendars).
    pub catalog: i64,
    /// The tenant's data version and watermark.
    pub data: DataStamp,
}

type Fetch = Shared<BoxFuture<'static, Result<Versions, Status>>>;

/// Reads a tenant's versions from source.
type Reader = Arc<dyn Fn(String) -> BoxFuture<'static, Result<Versions, Status>> + Send + Sync>;

/// One fetch of a tenant's versions, and whether it has begun reading.
struct Slot {
    fetch: Fetch,
    started: Arc<AtomicBool>,
}

/// Fresh versions per tenant, fetched once for every request that arrived
/// before the fetch began.
#[derive(Clone)]
pub struct FreshVersions {
    read: Reader,
    slots: Arc<Mutex<HashMap<String, Slot>>>,
}

impl FreshVersions {
    /// Versions read from the catalog and data-ingestion through `clients`.
    pub fn new(clients: Clients) -> Self {
        Self::reading_with(Arc::new(move |tenant| {
            let clients = clients.clone();
            async move { read(&clients, &tenant).await }.boxed()
        }))
    }

    fn reading_with(read: Reader) -> Self {
        Self {
            read,
            slots: Arc::default(),
        }
    }

    /// The tenant's versions as read by a fetch that began after this call.
    pub async fn get(&self, tenant: &str) -> Result<Versions, Status> {
        self.fetch_not_yet_started(tenant).await
    }

    /// The tenant's waiting fetch, or a new one queued behind the running one.
    fn fetch_not_yet_started(&self, tenant: &str) -> Fetch {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let running = match slots.get(tenant) {
            // Not begun: whatever it reads was committed after we arrived or later.
            Some(slot) if !slot.started.load(Ordering::SeqCst) => return slot.fetch.clone(),
            Some(slot) => Some(slot.fetch.clone()),
            None => None,
        };
        let slot = self.queue_behind(tenant, running);
        let fetch = slot.fetch.clone();
        slots.insert(tenant.to_string(), slot);
        fetch
    }

    /// A fetch that waits for `running` (if any) to end, then reads.
    fn queue_behind(&self, tenant: &str, running: Option<Fetch>) -> Slot {
        let started = Arc::new(AtomicBool::new(false));
        let begun = started.clone();
        let read = self.read.clone();
        let tenant = tenant.to_string();
        let fetch = async move {
            if let Some(running) = running {
                // Its outcome is for its own callers; ours is read afresh.
                let _ = running.await;
            }
            begun.store(true, Ordering::SeqCst);
            read(tenant).await
        }
        .boxed()
        .shared();
        Slot { fetch, started }
    }
}

/// Both versions, read concurrently.
async fn read(clients: &Clients, tenant: &str) -> Result<Versions, Status> {
    let (catalog, data) = tokio::try_join!(
        clients.catalog_revision(tenant),
        clients.data_version(tenant)
    )?;
    Ok(Versions { catalog, data })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicI64;
    use std::time::Duration;

    use super::*;

    /// A source whose data version is a counter bumped by "writes"; each
    /// read takes a moment and counts itself.
    struct Source {
        written: AtomicI64,
        reads: AtomicI64,
    }

    fn versions_over(source: Arc<Source>) -> FreshVersions {
        FreshVersions::reading_with(Arc::new(move |_tenant| {
            let source = source.clone();
            async move {
                source.reads.fetch_add(1, Ordering::SeqCst);
                let version = source.written.load(Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                Ok(Versions {
                    catalog: 1,
                    data: DataStamp {
                        version,
                        watermark: None,
                    },
                })
            }
            .boxed()
        }))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_answer_reflects_the_writes_before_its_request_and_reads_are_shared() {
        let source = Arc::new(Source {
            written: AtomicI64::new(0),
            reads: AtomicI64::new(0),
        });
        let versions = versions_over(source.clone());
        let mut readers = Vec::new();
        for i in 0..64 {
            let (versions, source) = (versions.clone(), source.clone());
            readers.push(tokio::spawn(async move {
                let mut stale = 0;
                for _ in 0..50 {
                    // A write acknowledged, then a read: it must see the write.
                    let acknowledged = source.written.fetch_add(1, Ordering::SeqCst) + 1;
                    let tenant = if i % 8 == 0 { "other" } else { "t" };
                    let Ok(v) = versions.get(tenant).await else {
                        panic!("the reader does not fail");
                    };
                    if v.data.version < acknowledged {
                        stale += 1;
                    }
                }
                stale
            }));
        }
        let mut stale = 0;
        for r in readers {
            stale += r.await.unwrap_or(1);
        }
        assert_eq!(
            stale, 0,
            "no answer may predate a write acknowledged before its request"
        );
        let reads = source.reads.load(Ordering::SeqCst);
        assert!(
            reads < 64 * 50 / 4,
            "{reads} reads for 3,200 requests: not shared"
        );
    }

    #[tokio::test]
    async fn a_failed_read_reaches_its_callers_and_the_next_request_reads_again() {
        let failing = Arc::new(AtomicBool::new(true));
        let flag = failing.clone();
        let versions = FreshVersions::reading_with(Arc::new(move |_tenant| {
            let fail = flag.load(Ordering::SeqCst);
            async move {
                if fail {
                    Err(Status::unavailable("down"))
                } else {
                    Ok(Versions {
                        catalog: 7,
                        data: DataStamp {
                            version: 3,
                            watermark: None,
                        },
                    })
                }
            }
            .boxed()
        }));
        let first = versions.get("t").await;
        assert_eq!(
            first.err().map(|s| s.code()),
            Some(tonic::Code::Unavailable)
        );
        failing.store(false, Ordering::SeqCst);
        let second = versions
            .get("t")
            .await
            .ok()
            .map(|v| (v.catalog, v.data.version));
        assert_eq!(second, Some((7, 3)));
    }
}
