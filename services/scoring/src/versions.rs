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
//! ends; so under load one fetch serves every request that arrived during
//! the previous one, and a request waits at most two fetches.
//!
//! A fetch reads the version board in Redis when there is one
//! ([`kpi_cache::board`]: one round trip, and why it is fresh); when the board
//! holds nothing, or Redis does not answer, it asks the catalog and
//! data-ingestion (GetCatalogRevision, GetDataVersion) and posts what they
//! said. A posted value about to lapse is refreshed in the background, so
//! requests under steady load rarely wait for the other services.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::DateTime;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use kpi_cache::VersionBoard;
use kpi_cache::board::LEASE;
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
    /// Versions read from the board, if any, else from the catalog and
    /// data-ingestion through `clients`.
    pub fn new(clients: Clients, board: Option<Arc<VersionBoard>>) -> Self {
        let source: Reader = Arc::new(move |tenant| {
            let clients = clients.clone();
            async move { read(&clients, &tenant).await }.boxed()
        });
        match board {
            Some(board) => Self::through_board(board, source),
            None => Self::reading_with(source),
        }
    }

    /// Versions read from `board`, and from `source` when it has none.
    fn through_board(board: Arc<VersionBoard>, source: Reader) -> Self {
        let reader = BoardReader {
            board,
            source,
            refreshing: Arc::default(),
        };
        Self::reading_with(Arc::new(move |tenant| {
            let reader = reader.clone();
            async move { reader.read(tenant).await }.boxed()
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

/// Reads versions through the board, posting what it reads from source.
#[derive(Clone)]
struct BoardReader {
    board: Arc<VersionBoard>,
    source: Reader,
    /// Tenants whose posted versions are being refreshed in the background.
    refreshing: Arc<Mutex<HashSet<String>>>,
}

impl BoardReader {
    async fn read(self, tenant: String) -> Result<Versions, Status> {
        let Some(posted) = self.board.read(&tenant).await else {
            // Redis did not answer (already logged): the source it is.
            return (self.source)(tenant).await;
        };
        if let Some(versions) = posted.value.as_deref().and_then(Versions::decode) {
            if posted.remaining < LEASE / 2 {
                self.refresh_in_background(tenant);
            }
            return Ok(versions);
        }
        self.read_source_and_post(&tenant).await
    }

    /// Reads the versions from source under a ticket taken first (so what
    /// it reads may be posted) and posts them in the background.
    async fn read_source_and_post(&self, tenant: &str) -> Result<Versions, Status> {
        let ticket = self.board.ticket(tenant).await;
        let versions = (self.source)(tenant.to_owned()).await?;
        if let Some(ticket) = ticket {
            let (board, tenant) = (self.board.clone(), tenant.to_owned());
            tokio::spawn(async move {
                board.post(&tenant, &ticket, &versions.encode()).await;
            });
        }
        Ok(versions)
    }

    /// Reads the versions from source and posts them, in the background,
    /// unless a refresh of the tenant is already running.
    fn refresh_in_background(&self, tenant: String) {
        let mut refreshing = self
            .refreshing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !refreshing.insert(tenant.clone()) {
            return;
        }
        drop(refreshing);
        let reader = self.clone();
        tokio::spawn(async move {
            // A failed read is the next request's to retry.
            let _ = reader.read_source_and_post(&tenant).await;
            reader
                .refreshing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&tenant);
        });
    }
}

impl Versions {
    /// `catalog:data version:watermark µs` (the watermark empty when none),
    /// as posted on the board.
    fn encode(&self) -> String {
        let watermark = self
            .data
            .watermark
            .map(|w| w.timestamp_micros().to_string())
            .unwrap_or_default();
        format!("{}:{}:{watermark}", self.catalog, self.data.version)
    }

    /// The inverse of [`Versions::encode`]; `None` for anything else.
    fn decode(posted: &str) -> Option<Versions> {
        let mut parts = posted.split(':');
        let catalog = parts.next()?.parse().ok()?;
        let version = parts.next()?.parse().ok()?;
        let watermark = match parts.next()? {
            "" => None,
            micros => Some(DateTime::from_timestamp_micros(micros.parse().ok()?)?),
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Versions {
            catalog,
            data: DataStamp { version, watermark },
        })
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

    /// Reads `source`: its current version, after a moment.
    fn reading(source: Arc<Source>) -> Reader {
        Arc::new(move |_tenant| {
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
        })
    }

    fn versions_over(source: Arc<Source>) -> FreshVersions {
        FreshVersions::reading_with(reading(source))
    }

    /// Two scoring replicas and two writers on the shared test Redis: every
    /// answer is at least the version of every write acknowledged before its
    /// request, and once writes stop the board answers without the source.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn through_the_board_every_answer_reflects_the_writes_acknowledged_before_it() {
        let source = Arc::new(Source {
            written: AtomicI64::new(0),
            reads: AtomicI64::new(0),
        });
        let prefix = kpi_testkit::unique_prefix("board_ryw");
        let board = || {
            let url = kpi_testkit::shared_redis_url();
            let board = VersionBoard::new(&url, &prefix, Duration::from_secs(1));
            Arc::new(board.expect("board"))
        };
        let replicas = [
            FreshVersions::through_board(board(), reading(source.clone())),
            FreshVersions::through_board(board(), reading(source.clone())),
        ];
        let acknowledged = Arc::new(AtomicI64::new(0));
        let mut writers = Vec::new();
        for _ in 0..2 {
            let (board, source, acknowledged) = (board(), source.clone(), acknowledged.clone());
            writers.push(tokio::spawn(async move {
                for _ in 0..40 {
                    // Commit, clear the board, then acknowledge.
                    let version = source.written.fetch_add(1, Ordering::SeqCst) + 1;
                    board.clear("t").await;
                    acknowledged.fetch_max(version, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }));
        }
        let mut readers = Vec::new();
        for i in 0..16 {
            let (versions, acknowledged) = (replicas[i % 2].clone(), acknowledged.clone());
            readers.push(tokio::spawn(async move {
                let mut stale = 0;
                for _ in 0..60 {
                    let before = acknowledged.load(Ordering::SeqCst);
                    let Ok(v) = versions.get("t").await else {
                        panic!("the source does not fail");
                    };
                    if v.data.version < before {
                        stale += 1;
                    }
                }
                stale
            }));
        }
        for w in writers {
            w.await.expect("writer");
        }
        let mut stale = 0;
        for r in readers {
            stale += r.await.unwrap_or(1);
        }
        assert_eq!(stale, 0, "an answer predates an acknowledged write");

        // Quiet: once posted, a hundred reads one after another take the
        // board's word (a refresh may read the source now and then).
        let latest = source.written.load(Ordering::SeqCst);
        let first = replicas[0].get("t").await.map(|v| v.data.version);
        assert_eq!(first.ok(), Some(latest));
        let posted = board();
        let mut waited = 0;
        while posted.read("t").await.and_then(|p| p.value).is_none() {
            waited += 1;
            assert!(waited < 500, "scoring never posted the versions it read");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let reads_before = source.reads.load(Ordering::SeqCst);
        for i in 0..100 {
            let v = replicas[i % 2].get("t").await.map(|v| v.data.version);
            assert_eq!(v.ok(), Some(latest));
        }
        let source_reads = source.reads.load(Ordering::SeqCst) - reads_before;
        assert!(
            source_reads <= 10,
            "{source_reads} source reads for 100 requests on a posted board"
        );
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

    #[test]
    fn versions_posted_on_the_board_read_back_the_same() {
        let watermark = DateTime::from_timestamp_micros(1_780_000_000_123_456);
        for versions in [
            Versions {
                catalog: 7,
                data: DataStamp {
                    version: 42,
                    watermark,
                },
            },
            Versions {
                catalog: 0,
                data: DataStamp {
                    version: 0,
                    watermark: None,
                },
            },
        ] {
            let posted = versions.encode();
            assert_eq!(Versions::decode(&posted), Some(versions), "{posted}");
        }
        for garbage in ["", "7", "7:42", "x:42:", "7:42:1:2", "7:42:soon"] {
            assert_eq!(Versions::decode(garbage), None, "{garbage:?}");
        }
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
