//! What the fault tests share:
//!
//! - [`tickets`]: distinct "ticket created" events, one ticket each, so the
//!   facts hold exactly one row per event;
//! - [`Sender`]: a client that sends batches and retries a batch on
//!   `UNAVAILABLE` and on a call cut by its connection (switching to the
//!   next instance if it has several), keeping a [`Ledger`] of what was
//!   acknowledged and of every failure;
//! - [`Sender::stream_all`]: the same over `StreamEvents`: after a broken
//!   stream, a new one resends every chunk not yet answered;
//! - [`Stored`]: what the database holds afterwards (events and ticket
//!   facts, with duplicates), read with SQL;
//! - signals for [`ServiceProcess`]: SIGKILL, SIGTERM without waiting, and
//!   waiting for the exit.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use kpi_proto::ingestion as pb;
use kpi_proto::ingestion::event::Payload;
use kpi_proto::ingestion::ingestion_service_client::IngestionServiceClient;
use kpi_runtime::client::{ClientOptions, TracedChannel};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use tonic::Code;

use crate::support::ServiceProcess;

/// The tenant every fault test writes to.
pub(crate) const TENANT: &str = "acme";
/// A hang guard for one call (not a performance threshold).
const CALL_GUARD: Duration = Duration::from_secs(120);
/// How long a client waits before retrying an UNAVAILABLE batch.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// A hang guard for waiting on the projection or a process.
pub(crate) const WAIT_GUARD: Duration = Duration::from_secs(180);

/// `count` "ticket created" events with ids `{prefix}-{i}`, each about its
/// own ticket.
pub(crate) fn tickets(prefix: &str, count: usize) -> Vec<pb::Event> {
    (0..count)
        .map(|i| pb::Event {
            event_id: format!("{prefix}-{i}"),
            occurred_at: Some(prost_types::Timestamp {
                // 2026-10-05T09:00:00Z plus a second per event.
                seconds: 1_791_190_800 + i as i64,
                nanos: 0,
            }),
            payload: Some(Payload::Ticket(pb::TicketEvent {
                ticket_id: format!("T-{prefix}-{i}"),
                r#type: pb::TicketEventType::Created as i32,
                channel: pb::Channel::Chat as i32,
                category: "billing".to_owned(),
                customer_id: format!("c{}", i % 97),
                ..Default::default()
            })),
        })
        .collect()
}

/// What the clients of one test saw.
#[derive(Default)]
pub(crate) struct Ledger {
    /// Event ids answered ACCEPTED or DUPLICATE (stored, by the contract).
    acknowledged: Mutex<HashSet<String>>,
    acknowledged_count: AtomicUsize,
    /// Batches answered UNAVAILABLE and sent again.
    pub(crate) retries: AtomicU64,
    /// Batches whose call was cut by its connection (no answer from any
    /// server) and sent again.
    pub(crate) cut: AtomicU64,
    /// Calls that failed with anything but UNAVAILABLE, or answered an
    /// event with anything but ACCEPTED / DUPLICATE.
    failures: Mutex<Vec<String>>,
    /// Set just before the test sends a signal to instance 0.
    pub(crate) signalled: AtomicBool,
    /// Calls to instance 0 in flight when the signal was sent that then
    /// finished successfully.
    pub(crate) finished_across_signal: AtomicU64,
}

impl Ledger {
    /// How many events have been acknowledged so far.
    pub(crate) fn acknowledged_count(&self) -> usize {
        self.acknowledged_count.load(Ordering::SeqCst)
    }

    /// Every acknowledged event id.
    pub(crate) fn acknowledged(&self) -> HashSet<String> {
        self.acknowledged
            .lock()
            .map(|set| set.clone())
            .unwrap_or_default()
    }

    /// Every failure seen (should be none).
    pub(crate) fn failures(&self) -> Vec<String> {
        self.failures.lock().map(|f| f.clone()).unwrap_or_default()
    }

    fn fail(&self, what: String) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.push(what);
        }
    }

    fn acknowledge(&self, results: &[pb::EventResult]) {
        let mut fresh = 0;
        if let Ok(mut set) = self.acknowledged.lock() {
            for result in results {
                let outcome = pb::EventOutcome::try_from(result.outcome);
                match outcome {
                    Ok(pb::EventOutcome::Accepted | pb::EventOutcome::Duplicate) => {
                        if set.insert(result.event_id.clone()) {
                            fresh += 1;
                        }
                    }
                    _ => {
                        drop(set);
                        self.fail(format!(
                            "event {} answered {outcome:?}: {} {}",
                            result.event_id, result.field, result.description
                        ));
                        return;
                    }
                }
            }
        }
        self.acknowledged_count.fetch_add(fresh, Ordering::SeqCst);
    }
}

/// A client of one or more data-ingestion instances that retries a batch
/// on UNAVAILABLE, moving on to the next instance each time.
///
/// It calls through the suite's own channel ([`kpi_runtime::client`]), as
/// the services call each other: a call whose connection fails before an
/// answer (refused, reset, closed by a draining server) comes back as
/// `UNAVAILABLE` there, not as tonic's `UNKNOWN` or `CANCELLED`.
#[derive(Clone)]
pub(crate) struct Sender {
    clients: Vec<IngestionServiceClient<TracedChannel>>,
    ledger: Arc<Ledger>,
}

impl Sender {
    /// Lazily connecting clients of `urls`, recording into `ledger`.
    pub(crate) fn new(urls: &[String], ledger: Arc<Ledger>) -> anyhow::Result<Self> {
        let options = ClientOptions {
            connect_timeout: Duration::from_secs(5),
            // A stream of tens of thousands of events may take minutes here.
            timeout: Duration::from_secs(600),
            ..ClientOptions::default()
        };
        let clients = urls
            .iter()
            .map(|url| {
                let channel = kpi_runtime::client::connect(url, options.clone())?;
                Ok(IngestionServiceClient::new(channel)
                    .max_encoding_message_size(64 * 1024 * 1024)
                    .max_decoding_message_size(64 * 1024 * 1024))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { clients, ledger })
    }

    /// Sends `events` in batches of `batch` until every batch is
    /// acknowledged, retrying UNAVAILABLE; stops at the first other failure.
    pub(crate) async fn send_all(self, events: Vec<pb::Event>, batch: usize) {
        let mut instance = 0;
        for chunk in events.chunks(batch) {
            match self.send_batch(chunk, instance).await {
                Ok(used) => instance = used,
                Err(()) => return,
            }
        }
    }

    /// Sends `events` over `StreamEvents` in chunks of `chunk`; when the
    /// stream breaks with `UNAVAILABLE` or a cut connection, opens a new one
    /// and resends every chunk not answered yet (answers come in chunk
    /// order). Stops at the first other failure.
    pub(crate) async fn stream_all(self, events: Vec<pb::Event>, chunk: usize) {
        let mut pending: VecDeque<pb::StreamEventsRequest> = events
            .chunks(chunk)
            .enumerate()
            .map(|(i, events)| pb::StreamEventsRequest {
                parent: format!("tenants/{TENANT}"),
                sequence: i as i64,
                events: events.to_vec(),
            })
            .collect();
        let mut instance = 0;
        while !pending.is_empty() {
            if let Err(status) = self.stream_once(&mut pending, instance).await {
                match self
                    .retry_after(&status, "stream on instance", instance)
                    .await
                {
                    Some(next) => instance = next,
                    None => return,
                }
            }
        }
    }

    /// One stream: sends the pending chunks and removes each one answered.
    async fn stream_once(
        &self,
        pending: &mut VecDeque<pb::StreamEventsRequest>,
        instance: usize,
    ) -> Result<(), tonic::Status> {
        let (feed, outbound) = tokio::sync::mpsc::channel(4);
        let chunks: Vec<pb::StreamEventsRequest> = pending.iter().cloned().collect();
        // The feeder stops when the stream is gone (the receiver dropped).
        tokio::spawn(async move {
            for chunk in chunks {
                if feed.send(chunk).await.is_err() {
                    break;
                }
            }
        });
        let mut client = self.clients[instance].clone();
        let mut answers = client
            .stream_events(tokio_stream::wrappers::ReceiverStream::new(outbound))
            .await?
            .into_inner();
        while let Some(answer) = tokio::time::timeout(CALL_GUARD, answers.message())
            .await
            .map_err(|_| tonic::Status::deadline_exceeded("no answer within the hang guard"))??
        {
            let expected = pending.front().map(|c| c.sequence);
            if expected != Some(answer.sequence) {
                return Err(tonic::Status::internal(format!(
                    "answer for chunk {} while {expected:?} was next",
                    answer.sequence
                )));
            }
            pending.pop_front();
            self.ledger.acknowledge(&answer.results);
        }
        if pending.is_empty() {
            Ok(())
        } else {
            Err(tonic::Status::internal(format!(
                "the stream ended with {} chunks unanswered",
                pending.len()
            )))
        }
    }

    /// Sends one batch, retrying; returns the instance that acknowledged it.
    async fn send_batch(&self, events: &[pb::Event], mut instance: usize) -> Result<usize, ()> {
        loop {
            let started_before_signal = !self.ledger.signalled.load(Ordering::SeqCst);
            let mut request = tonic::Request::new(pb::IngestEventsRequest {
                parent: format!("tenants/{TENANT}"),
                events: events.to_vec(),
            });
            request.set_timeout(CALL_GUARD);
            let mut client = self.clients[instance].clone();
            match client.ingest_events(request).await {
                Ok(response) => {
                    if instance == 0
                        && started_before_signal
                        && self.ledger.signalled.load(Ordering::SeqCst)
                    {
                        self.ledger
                            .finished_across_signal
                            .fetch_add(1, Ordering::SeqCst);
                    }
                    self.ledger.acknowledge(&response.get_ref().results);
                    return Ok(instance);
                }
                Err(status) => {
                    instance = self
                        .retry_after(&status, "instance", instance)
                        .await
                        .ok_or(())?;
                }
            }
        }
    }

    /// After a call on `instance` failed with `status`: a failure worth
    /// retrying (`UNAVAILABLE`, or a connection cut under the call) is
    /// counted and, after a pause, the next instance to try is returned;
    /// any other failure is recorded in the ledger (`what` says where) and
    /// ends the sender (`None`).
    async fn retry_after(
        &self,
        status: &tonic::Status,
        what: &str,
        instance: usize,
    ) -> Option<usize> {
        let counter = if status.code() == Code::Unavailable {
            &self.ledger.retries
        } else if cut_by_connection(status) {
            &self.ledger.cut
        } else {
            self.ledger.fail(format!(
                "{what} {instance}: {:?}: {}",
                status.code(),
                status.message()
            ));
            return None;
        };
        counter.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(RETRY_PAUSE).await;
        Some((instance + 1) % self.clients.len())
    }
}

/// Whether a call failed because its connection did, not because a server
/// answered: tonic reports a connection closed under a call as `UNKNOWN`
/// (`transport error`) and a call it could not hand to a closing connection
/// as `CANCELLED` (`operation was canceled`), both made on the client from
/// the transport's error (their `source`). A status a server sent has no
/// source. Ingestion is idempotent, so such a call is simply sent again.
fn cut_by_connection(status: &tonic::Status) -> bool {
    matches!(status.code(), Code::Unknown | Code::Cancelled)
        && std::error::Error::source(status).is_some()
}

/// Runs `clients` senders over `events` split evenly, each sending batches
/// of `batch`; returns their join handles.
pub(crate) fn spawn_senders(
    sender: &Sender,
    events: Vec<pb::Event>,
    clients: usize,
    batch: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    let per_client = events.len().div_ceil(clients);
    events
        .chunks(per_client)
        .map(|share| tokio::spawn(sender.clone().send_all(share.to_vec(), batch)))
        .collect()
}

/// Like [`spawn_senders`], over `StreamEvents` with chunks of `chunk`.
pub(crate) fn spawn_streams(
    sender: &Sender,
    events: Vec<pb::Event>,
    clients: usize,
    chunk: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    let per_client = events.len().div_ceil(clients);
    events
        .chunks(per_client)
        .map(|share| tokio::spawn(sender.clone().stream_all(share.to_vec(), chunk)))
        .collect()
}

/// Waits until `ledger` has acknowledged at least `count` events (or all
/// senders are done).
pub(crate) async fn acknowledged_at_least(
    ledger: &Ledger,
    count: usize,
    senders: &[tokio::task::JoinHandle<()>],
) {
    while ledger.acknowledged_count() < count && !senders.iter().all(|s| s.is_finished()) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What the database holds after a test.
#[derive(Debug)]
pub(crate) struct Stored {
    /// Event id → rows in `ing_event_keys`.
    pub(crate) keys: BTreeMap<String, i64>,
    /// Event id → times it is among its entity's events (`ing_entity_events`).
    pub(crate) events: BTreeMap<String, i64>,
    /// Ticket id → rows in `ing_fact_ticket`.
    pub(crate) ticket_facts: BTreeMap<String, i64>,
}

impl Stored {
    /// Reads the tenant's keys, entity events and ticket facts.
    pub(crate) async fn read(db_url: &str) -> anyhow::Result<Stored> {
        let db = Database::connect(db_url).await?;
        let stored = Stored {
            keys: counts(&db, "ing_event_keys", "event_id").await?,
            events: entity_event_counts(&db).await?,
            ticket_facts: counts(&db, "ing_fact_ticket", "ticket_id").await?,
        };
        db.close().await?;
        Ok(stored)
    }

    /// Ids stored more than once in any table.
    pub(crate) fn duplicates(&self) -> Vec<String> {
        self.keys
            .iter()
            .chain(&self.events)
            .chain(&self.ticket_facts)
            .filter(|(_, n)| **n != 1)
            .map(|(id, n)| format!("{id} x{n}"))
            .collect()
    }
}

/// Event id → how many times the tenant's entity rows hold it.
async fn entity_event_counts(db: &DatabaseConnection) -> anyhow::Result<BTreeMap<String, i64>> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT \"events\" FROM \"ing_entity_events\" WHERE \"tenant\" = $1",
            [TENANT.into()],
        ))
        .await?;
    let mut counts = BTreeMap::new();
    for row in rows {
        let lines: String = row.try_get("", "events")?;
        for line in lines.lines().filter(|l| !l.is_empty()) {
            let event: serde_json::Value = serde_json::from_str(line)?;
            let id = event["event_id"]
                .as_str()
                .context("an entity event without an id")?;
            *counts.entry(id.to_owned()).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

async fn counts(
    db: &DatabaseConnection,
    table: &str,
    column: &str,
) -> anyhow::Result<BTreeMap<String, i64>> {
    let sql = format!(
        "SELECT \"{column}\" AS id, COUNT(*) AS n FROM \"{table}\" WHERE \"tenant\" = $1 GROUP BY \"{column}\""
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            [TENANT.into()],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get::<String>("", "id")?,
                row.try_get::<i64>("", "n")?,
            ))
        })
        .collect()
}

/// Waits until the projection has folded every stored batch into facts
/// (`ing_pending` is empty).
pub(crate) async fn projected(db_url: &str) -> anyhow::Result<()> {
    let db = Database::connect(db_url).await?;
    let waiting = async {
        loop {
            let row = db
                .query_one_raw(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT COUNT(*) AS n FROM \"ing_pending\"",
                ))
                .await?
                .context("no count")?;
            if row.try_get::<i64>("", "n")? == 0 {
                return anyhow::Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let result = tokio::time::timeout(WAIT_GUARD, waiting)
        .await
        .context("the projection never caught up")?;
    db.close().await?;
    result
}

impl ServiceProcess {
    /// Sends `signal` (e.g. `-KILL`, `-TERM`) to the process.
    pub(crate) fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill {signal} failed");
        }
        Ok(())
    }

    /// Its JSON log lines so far.
    pub(crate) fn log_lines(&self) -> Vec<serde_json::Value> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits for the process to exit (after a signal), off the runtime's
    /// workers; returns its exit status.
    pub(crate) async fn wait_exit(mut self) -> anyhow::Result<(ExitStatus, ServiceProcess)> {
        tokio::time::timeout(
            WAIT_GUARD,
            tokio::task::spawn_blocking(move || {
                let status = self.child.wait();
                status.map(|s| (s, self))
            }),
        )
        .await
        .context("the process did not exit")??
        .context("cannot wait for the process")
    }
}
