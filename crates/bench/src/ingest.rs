//! `kpi-bench ingest`: gRPC stream ingestion against a `COPY` baseline.
//!
//! 1. Creates the database `kpi_bench_<pid>` on the server of
//!    `KPI_DATABASE_URL`, and drops it at the end, also on error.
//! 2. Runs indicator-catalog in this process (data-ingestion asks it for
//!    business calendars) and data-ingestion in a child process, and waits
//!    until the child's health check answers SERVING.
//! 3. Measures `--rounds` rounds, each for a tenant of its own (the same
//!    events are then new to the event store each time), steps 3a–3b.
//!    3a. Streams the feed through one `StreamEvents` call: chunks of `--chunk`
//!    events, at most `--in-flight` chunks unanswered; every event must be
//!    ACCEPTED. Timed from the first chunk sent to the last answer.
//!    Then one read (`ListAgents`) catches the projection up and is timed:
//!    how long after the last acknowledgement the facts are complete.
//!    3b. Loads the same events (same column values, the same domain event JSON
//!    as payload) with `COPY … FROM STDIN` into `bench_copy_events`, a plain
//!    table of the event store's columns (the baseline). Timed from the
//!    `COPY` to its end. Then loads their keys likewise into
//!    `bench_copy_keys`, a copy of the event store's key table (`LIKE …
//!    INCLUDING ALL`: its primary key, collations and statistics settings),
//!    to show how much of the gap the idempotency key alone is.
//! 4. Checks both tables hold the same rows, reads the child's peak RSS, and
//!    prints the report and the `RESULT` line: the fastest round's rate of
//!    each side (a shared machine's speed swings for seconds at a time and
//!    only ever slows a run down, so the fastest of a few rounds is each
//!    side's truest figure), with every round's own figures and the median
//!    of their ratios beside it. The report also gives the CPU
//!    time per event of the machine, data-ingestion and the local
//!    PostgreSQL (see [`crate::cpu`]) while streaming, until the facts are
//!    complete, and per row of the baseline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use kpi_domain::events::Event;
use kpi_proto::ingestion as pb;
use kpi_proto::ingestion::ingestion_service_client::IngestionServiceClient;
use kpi_runtime::{ServiceKind, Settings};
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::{self, AssertSqlSafe, Connection as _, Executor as _};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::cpu;
use crate::generator::{Feed, FeedConfig};
use crate::serve::{self, IngestionProcess};
use crate::wire;

/// The server used when `KPI_DATABASE_URL` is not set.
pub(crate) const DEFAULT_DATABASE_URL: &str =
    "postgres://postgres:postgres@127.0.0.1:5432/postgres";
/// The tenant the events of round `round` (from 1) are ingested for.
fn round_tenant(round: u64) -> String {
    format!("bench-{round}")
}
/// The largest gRPC message either side accepts.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Bytes of `COPY` data sent at a time.
const COPY_BLOCK_BYTES: usize = 1024 * 1024;
/// Blocks of `COPY` data prepared ahead of the connection.
const COPY_BLOCKS_AHEAD: usize = 4;

/// Options of `kpi-bench ingest`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct IngestArgs {
    /// Events to ingest.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    /// Events per stream chunk (at most 5,000, the server's limit, which a
    /// sustained feed fills: each chunk is a transaction).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=5_000))]
    chunk: u64,
    /// Rounds of the measurement (stream, catch-up, `COPY`), each for a
    /// tenant of its own; the result takes each side's fastest round.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    rounds: u64,
    /// Chunks sent but not yet answered, at most.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    in_flight: u64,
    /// Tickets over the month (default: events / 6).
    #[arg(long)]
    tickets: Option<u64>,
    /// Seed of the generated feed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The PostgreSQL server; a database of the benchmark's own is created there.
    #[arg(
        long,
        env = "KPI_DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        hide_env_values = true
    )]
    database_url: String,
    /// The Redis whose version board data-ingestion clears after every
    /// write, as in a deployment with scoring's cache; empty for none.
    #[arg(long, env = "KPI_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
}

impl IngestArgs {
    fn feed(&self) -> FeedConfig {
        FeedConfig {
            events: self.events,
            tickets: self.tickets.unwrap_or(self.events / 6).max(1),
            seed: self.seed,
        }
    }
}

/// What the benchmark measured.
struct Measured {
    rounds: Vec<Round>,
    feed_only: Duration,
    peak_rss_mib: f64,
    client_peak_rss_mib: f64,
}

/// What one round measured.
struct Round {
    grpc: Duration,
    projection_lag: Duration,
    copy: Duration,
    copy_keys: Duration,
    cpu: Option<CpuUsed>,
}

/// CPU time used by the machine, data-ingestion and PostgreSQL in each step.
#[derive(Clone, Copy)]
struct CpuUsed {
    /// While streaming (intake, and the projection when it runs beside it).
    stream: cpu::Used,
    /// From the first chunk until the facts are complete: all the work.
    to_facts: cpu::Used,
    /// The `COPY` baseline (the client's encoding included, as the gRPC
    /// figures include the client's).
    copy: cpu::Used,
}

impl CpuUsed {
    /// Every round's CPU added up, if every round could read it.
    fn total(rounds: &[Round]) -> Option<Self> {
        let mut each = rounds.iter().map(|round| round.cpu);
        let first = each.next()??;
        each.try_fold(first, |sum, cpu| {
            let cpu = cpu?;
            Some(Self {
                stream: sum.stream + cpu.stream,
                to_facts: sum.to_facts + cpu.to_facts,
                copy: sum.copy + cpu.copy,
            })
        })
    }

    fn between(
        before_stream: Option<cpu::Sample>,
        after_stream: Option<cpu::Sample>,
        after_facts: Option<cpu::Sample>,
        after_copy: Option<cpu::Sample>,
    ) -> Option<Self> {
        let (before, streamed) = (before_stream?, after_stream?);
        let (facts, copied) = (after_facts?, after_copy?);
        Some(Self {
            stream: streamed.since(&before),
            to_facts: facts.since(&before),
            copy: copied.since(&facts),
        })
    }
}

/// Runs the benchmark and prints its report.
pub(crate) async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let catalog_settings = log_settings();
    kpi_runtime::telemetry::init(&catalog_settings);
    let name = format!("kpi_bench_{}", std::process::id());
    let admin_url = args.database_url.clone();
    let url = with_database(&admin_url, &name)?;
    {
        let mut admin = PgConnection::connect(&admin_url).await.with_context(|| {
            format!(
                "cannot connect to {}",
                kpi_runtime::settings::redact_url(&admin_url)
            )
        })?;
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .with_context(|| format!("cannot create the database {name}"))?;
        admin.close().await?;
    }
    println!(
        "database {name} on {}",
        kpi_runtime::settings::redact_url(&admin_url)
    );
    let result = tokio::select! {
        result = bench(&args, &url) => result,
        interrupted = tokio::signal::ctrl_c() => match interrupted {
            Ok(()) => Err(anyhow!("interrupted")),
            Err(err) => Err(anyhow!("cannot listen for ctrl-c: {err}")),
        },
    };
    if let Err(err) = drop_database(&admin_url, &name).await {
        eprintln!("warning: cannot drop the database {name}: {err:#}");
    }
    let measured = result?;
    report(&args, &measured);
    Ok(())
}

/// Settings for the in-process catalog (and this process's logging).
pub(crate) fn log_settings() -> Settings {
    let mut settings = Settings::defaults(ServiceKind::Catalog);
    // sqlx reports the long COPY and check statements as slow: expected here.
    settings.log_filter =
        std::env::var("KPI_LOG").unwrap_or_else(|_| "warn,sqlx::query=error".to_owned());
    settings.drain_timeout = Duration::from_secs(1);
    // The benchmark's own loopback servers: no credentials, explicitly.
    settings.auth = kpi_runtime::auth::AuthSettings::off();
    settings
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(admin_url).await?;
    admin
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .await?;
    admin.close().await?;
    Ok(())
}

/// `url` with its database (the path) replaced by `name`; the query is kept.
pub(crate) fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base
        .find("://")
        .with_context(|| "KPI_DATABASE_URL is not a postgres:// URL".to_owned())?;
    ensure!(
        base.starts_with("postgres://") || base.starts_with("postgresql://"),
        "KPI_DATABASE_URL must be a postgres:// URL"
    );
    let authority_start = scheme_end + 3;
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    Ok(match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    })
}

/// The in-process indicator-catalog.
pub(crate) struct CatalogServer {
    pub(crate) endpoint: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl CatalogServer {
    /// The catalog on `database_url`, clearing the version board in the
    /// Redis at `redis_url` (if any) after every write.
    pub(crate) async fn start(
        database_url: &str,
        redis_url: Option<&str>,
    ) -> anyhow::Result<CatalogServer> {
        let mut settings = log_settings();
        settings.listen_addr = "127.0.0.1:0".parse()?;
        settings.database_url = database_url.to_owned();
        settings.redis_url = redis_url.map(str::to_owned);
        let app = indicator_catalog::App::build(&settings)
            .await
            .context("cannot start indicator-catalog")?;
        let endpoint = format!("http://{}", app.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Ok(CatalogServer {
            endpoint,
            stop: Some(stop),
            task,
        })
    }

    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

async fn bench(args: &IngestArgs, url: &str) -> anyhow::Result<Measured> {
    let redis_url = Some(args.redis_url.as_str()).filter(|u| !u.trim().is_empty());
    let catalog = CatalogServer::start(url, redis_url).await?;
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let addr = serve::free_local_addr()?;
    let mut ingestion =
        IngestionProcess::spawn(&exe, addr, url, &catalog.endpoint, &args.redis_url)?;
    ingestion.wait_ready().await?;
    println!(
        "data-ingestion ready at {} (pid {}); indicator-catalog at {}",
        ingestion.endpoint(),
        ingestion.pid(),
        catalog.endpoint
    );

    let feed_only = time_feed(args.feed());
    let mut rounds = Vec::new();
    for round in 1..=args.rounds {
        let measured = measure_round(args, url, &ingestion, &round_tenant(round)).await?;
        println!(
            "round {round} of {} done: gRPC {:.0} events/s, COPY {:.0} rows/s",
            args.rounds,
            per_second(args.events, measured.grpc),
            per_second(args.events, measured.copy)
        );
        rounds.push(measured);
    }
    verify(url, args.events * args.rounds).await?;

    let peak_rss_mib = ingestion.peak_rss_mib()?;
    let client_peak_rss_mib = serve::peak_rss_mib(std::process::id())?;
    ingestion.stop();
    catalog.stop().await;
    Ok(Measured {
        rounds,
        feed_only,
        peak_rss_mib,
        client_peak_rss_mib,
    })
}

/// One round for `tenant`: the stream, the catch-up, the `COPY` baseline
/// and the `COPY` of the keys.
async fn measure_round(
    args: &IngestArgs,
    url: &str,
    ingestion: &IngestionProcess,
    tenant: &str,
) -> anyhow::Result<Round> {
    let pid = ingestion.pid();
    let before_stream = cpu::Sample::take(pid);
    let grpc = stream_events(args, &ingestion.endpoint(), tenant).await?;
    let after_stream = cpu::Sample::take(pid);
    let projection_lag = wait_for_facts(&ingestion.endpoint(), tenant).await?;
    let after_facts = cpu::Sample::take(pid);
    let copy = copy_events(args, url, BASELINE_TABLE, tenant).await?;
    let after_copy = cpu::Sample::take(pid);
    let cpu = CpuUsed::between(before_stream, after_stream, after_facts, after_copy);
    let copy_keys = copy_events(args, url, KEYS_TABLE, tenant).await?;
    Ok(Round {
        grpc,
        projection_lag,
        copy,
        copy_keys,
        cpu,
    })
}

/// How long after the last acknowledgement the facts are complete: a read
/// (`ListAgents`) waits for the projection to catch up with every
/// acknowledged event.
async fn wait_for_facts(endpoint: &str, tenant: &str) -> anyhow::Result<Duration> {
    let mut client = IngestionServiceClient::connect(endpoint.to_owned()).await?;
    let started = Instant::now();
    client
        .list_agents(pb::ListAgentsRequest {
            parent: format!("tenants/{tenant}"),
            ..Default::default()
        })
        .await
        .context("ListAgents (the catch-up read) failed")?;
    Ok(started.elapsed())
}

/// How long generating the feed and building its protos takes on its own.
fn time_feed(config: FeedConfig) -> Duration {
    let started = Instant::now();
    let mut bytes = 0_usize;
    for event in Feed::new(config) {
        bytes += wire::to_proto(&event).event_id.len();
    }
    std::hint::black_box(bytes);
    started.elapsed()
}

/// Events expected in the chunk of sequence `sequence`.
fn chunk_len(events: u64, chunk: u64, sequence: u64) -> u64 {
    events.saturating_sub(sequence * chunk).min(chunk)
}

/// Streams the feed through `StreamEvents`; returns the time from the first
/// chunk sent to the last answer received.
async fn stream_events(
    args: &IngestArgs,
    endpoint: &str,
    tenant: &str,
) -> anyhow::Result<Duration> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to data-ingestion at {endpoint}"))?;
    let mut client = IngestionServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);

    let chunks = args.events.div_ceil(args.chunk);
    let window = Arc::new(Semaphore::new(usize::try_from(args.in_flight)?));
    let (requests, outgoing) = mpsc::channel::<pb::StreamEventsRequest>(1);
    let (started_tx, started_rx) = oneshot::channel::<Instant>();
    let producer = tokio::spawn(produce_chunks(
        args.feed(),
        usize::try_from(args.chunk)?,
        Arc::clone(&window),
        requests,
        started_tx,
        format!("tenants/{tenant}"),
    ));
    let answers = async {
        let mut inbound = client
            .stream_events(ReceiverStream::new(outgoing))
            .await
            .context("StreamEvents failed to start")?
            .into_inner();
        let mut answered = 0_u64;
        let mut accepted = 0_u64;
        while answered < chunks {
            let Some(answer) = inbound
                .message()
                .await
                .with_context(|| format!("StreamEvents failed after {answered} answers"))?
            else {
                bail!("StreamEvents ended after {answered} of {chunks} answers");
            };
            check_answer(
                &answer,
                answered,
                chunk_len(args.events, args.chunk, answered),
            )?;
            accepted += u64::try_from(answer.accepted)?;
            answered += 1;
            window.add_permits(1);
        }
        let finished = Instant::now();
        ensure!(
            accepted == args.events,
            "{accepted} of {} events accepted",
            args.events
        );
        Ok(finished)
    };
    let finished = match answers.await {
        Ok(finished) => finished,
        Err(err) => {
            producer.abort();
            return Err(err);
        }
    };
    producer.await.context("the chunk producer panicked")??;
    let started = started_rx
        .await
        .context("the chunk producer sent nothing")?;
    Ok(finished.duration_since(started))
}

/// Sends the feed in chunks, each once a window slot is free; reports when
/// the first one went out.
async fn produce_chunks(
    config: FeedConfig,
    chunk: usize,
    window: Arc<Semaphore>,
    requests: mpsc::Sender<pb::StreamEventsRequest>,
    started: oneshot::Sender<Instant>,
    parent: String,
) -> anyhow::Result<()> {
    let mut feed = Feed::new(config);
    let mut started = Some(started);
    for sequence in 0_i64.. {
        let events: Vec<pb::Event> = feed
            .by_ref()
            .take(chunk)
            .map(|e| wire::to_proto(&e))
            .collect();
        if events.is_empty() {
            break;
        }
        window
            .acquire()
            .await
            .context("the answer window closed")?
            .forget();
        if let Some(started) = started.take() {
            let _ = started.send(Instant::now());
        }
        let request = pb::StreamEventsRequest {
            parent: parent.clone(),
            sequence,
            events,
        };
        requests
            .send(request)
            .await
            .map_err(|_| anyhow!("StreamEvents stopped taking chunks at sequence {sequence}"))?;
    }
    Ok(())
}

/// Fails loudly unless the answer is for chunk `sequence` and accepts all
/// `expected` events.
fn check_answer(
    answer: &pb::StreamEventsResponse,
    sequence: u64,
    expected: u64,
) -> anyhow::Result<()> {
    ensure!(
        u64::try_from(answer.sequence).ok() == Some(sequence),
        "answer for chunk {} arrived where chunk {sequence} was expected",
        answer.sequence
    );
    if let Some(bad) = answer
        .results
        .iter()
        .find(|r| r.outcome != pb::EventOutcome::Accepted as i32)
    {
        let outcome = pb::EventOutcome::try_from(bad.outcome)
            .map_or_else(|_| bad.outcome.to_string(), |o| o.as_str_name().to_owned());
        bail!(
            "chunk {sequence}: event {} ({}) was {outcome}: {} at {}: {} \
             ({} accepted, {} duplicates, {} rejected in the chunk)",
            bad.index,
            bad.event_id,
            bad.reason,
            bad.field,
            bad.description,
            answer.accepted,
            answer.duplicates,
            answer.rejected
        );
    }
    ensure!(
        u64::try_from(answer.results.len())? == expected
            && u64::try_from(answer.accepted)? == expected,
        "chunk {sequence}: {} results, {} accepted, {expected} events sent",
        answer.results.len(),
        answer.accepted
    );
    Ok(())
}

/// A table the feed is loaded into with `COPY`: its name, how it is made
/// (if it is not there yet: every round adds its tenant's rows), the columns
/// loaded and how an event of a tenant becomes a row of them.
struct CopyTable {
    name: &'static str,
    create: &'static str,
    columns: &'static str,
    row: fn(&mut Vec<u8>, &str, &Event, i64) -> serde_json::Result<()>,
}

/// The baseline: a plain table of the event store's columns, a row per event.
const BASELINE_TABLE: CopyTable = CopyTable {
    name: "bench_copy_events",
    create: "CREATE TABLE IF NOT EXISTS bench_copy_events (tenant text, event_id text, kind text, \
             entity_id text, occurred_at bigint, ingested_at bigint, payload text)",
    columns: "tenant, event_id, kind, entity_id, occurred_at, ingested_at, payload",
    row: |out, tenant, event, ingested_at| wire::append_copy_row(out, tenant, event, ingested_at),
};

/// The event store's key table, empty: what the idempotency key alone costs.
const KEYS_TABLE: CopyTable = CopyTable {
    name: "bench_copy_keys",
    create: "CREATE TABLE IF NOT EXISTS bench_copy_keys (LIKE ing_event_keys INCLUDING ALL)",
    columns: "tenant, event_id",
    row: |out, tenant, event, _| {
        wire::append_key_row(out, tenant, &event.event_id);
        Ok(())
    },
};

/// Loads the feed with `COPY` into `table` as `tenant`'s rows; returns the
/// time from the `COPY` statement to its end.
async fn copy_events(
    args: &IngestArgs,
    url: &str,
    table: CopyTable,
    tenant: &str,
) -> anyhow::Result<Duration> {
    let mut conn = PgConnection::connect(url).await?;
    conn.execute(table.create)
        .await
        .with_context(|| format!("cannot create {}", table.name))?;

    let started = Instant::now();
    let (blocks, mut incoming) = mpsc::channel::<Vec<u8>>(COPY_BLOCKS_AHEAD);
    let config = args.feed();
    let row = table.row;
    let tenant = tenant.to_owned();
    let producer = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let mut rows = 0_u64;
        let mut block = Vec::with_capacity(COPY_BLOCK_BYTES + 4096);
        let mut ingested_at = chrono::Utc::now().timestamp_micros();
        for event in Feed::new(config) {
            row(&mut block, &tenant, &event, ingested_at)?;
            rows += 1;
            if block.len() >= COPY_BLOCK_BYTES {
                let full =
                    std::mem::replace(&mut block, Vec::with_capacity(COPY_BLOCK_BYTES + 4096));
                if blocks.blocking_send(full).is_err() {
                    return Ok(rows);
                }
                ingested_at = chrono::Utc::now().timestamp_micros();
            }
        }
        if !block.is_empty() {
            let _ = blocks.blocking_send(block);
        }
        Ok(rows)
    });
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY {} ({}) FROM STDIN (FORMAT text)",
            table.name, table.columns
        ))
        .await
        .context("cannot start COPY")?;
    let mut sent: Result<(), sqlx::Error> = Ok(());
    while let Some(block) = incoming.recv().await {
        if let Err(err) = copy.send(block).await {
            sent = Err(err);
            break;
        }
    }
    drop(incoming);
    let produced = producer.await.context("the COPY producer panicked")?;
    let rows = match (sent, produced) {
        (Ok(()), Ok(rows)) => rows,
        (Err(err), _) => {
            let _ = copy.abort("the benchmark failed").await;
            return Err(err).context("COPY failed");
        }
        (Ok(()), Err(err)) => {
            let _ = copy.abort("the benchmark failed").await;
            return Err(err).context("cannot produce the COPY data");
        }
    };
    let copied = copy.finish().await.context("COPY failed")?;
    let elapsed = started.elapsed();
    ensure!(
        copied == rows && rows == args.events,
        "COPY loaded {copied} rows of {rows} produced, {} expected",
        args.events
    );
    conn.close().await?;
    Ok(elapsed)
}

/// Checks that the event store holds every event of the `COPY` table, once:
/// a key per event, and each event's JSON among its entity's events,
/// identical to the `COPY` row's payload.
async fn verify(url: &str, events: u64) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    let keys: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ing_event_keys k JOIN bench_copy_events c \
         ON c.tenant = k.tenant AND c.event_id = k.event_id",
    )
    .fetch_one(&mut conn)
    .await?;
    let (lines, same): (i64, i64) = sqlx::query_as(
        "WITH kept AS (SELECT e.tenant, e.kind, e.entity_id, line \
           FROM ing_entity_events e, string_to_table(e.events, chr(10)) AS line WHERE line <> '') \
         SELECT (SELECT count(*) FROM kept), \
           (SELECT count(*) FROM kept JOIN bench_copy_events c ON c.tenant = kept.tenant \
            AND c.kind = kept.kind AND c.entity_id = kept.entity_id AND c.payload = kept.line)",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    let events = i64::try_from(events)?;
    ensure!(
        keys == events && lines == events && same == events,
        "the event store holds {keys} keys and {lines} events, {same} of them identical to \
         the COPY rows; {events} expected"
    );
    Ok(())
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    // Counts stay far below 2^53: the conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    let count = count as f64;
    count / elapsed.as_secs_f64().max(1e-9)
}

fn report(args: &IngestArgs, m: &Measured) {
    let rate = |d: Duration| per_second(args.events, d);
    let fastest =
        |step: fn(&Round) -> Duration| m.rounds.iter().map(step).min().unwrap_or(Duration::MAX);
    let value = rate(fastest(|r| r.grpc));
    let baseline = rate(fastest(|r| r.copy));
    let ratio = value / baseline;
    println!(
        "events: {} per round, {} rounds ({} tickets planned), chunk {}, in flight {}",
        args.events,
        args.rounds,
        args.feed().tickets,
        args.chunk,
        args.in_flight
    );
    println!(
        "client feed alone (generate + build protos): {:.2} s, {:.0} events/s",
        m.feed_only.as_secs_f64(),
        rate(m.feed_only)
    );
    let mut ratios = Vec::with_capacity(m.rounds.len());
    for (n, r) in m.rounds.iter().enumerate() {
        let round_ratio = rate(r.grpc) / rate(r.copy);
        ratios.push(round_ratio);
        println!(
            "round {}: gRPC StreamEvents {:.2} s, {:.0} events/s; facts complete {:.2} s after \
             the last acknowledgement; COPY baseline {:.2} s, {:.0} rows/s; ratio {round_ratio:.3}",
            n + 1,
            r.grpc.as_secs_f64(),
            rate(r.grpc),
            r.projection_lag.as_secs_f64(),
            r.copy.as_secs_f64(),
            rate(r.copy)
        );
    }
    println!("median of the rounds' ratios: {:.3}", median(&mut ratios));
    println!("gRPC StreamEvents, fastest round: {value:.0} events/s");
    println!("COPY baseline, fastest round: {baseline:.0} rows/s");
    println!("ratio gRPC / COPY, fastest rounds: {ratio:.3} (target >= 0.5)");
    let keys = rate(fastest(|r| r.copy_keys));
    println!(
        "COPY of the keys alone into the event store's key table, fastest round: \
         {keys:.0} rows/s ({:.3} of the baseline; gRPC / this: {:.3})",
        keys / baseline,
        value / keys
    );
    if let Some(cpu) = CpuUsed::total(&m.rounds) {
        report_cpu(args.events * args.rounds, &cpu);
    }
    println!(
        "peak RSS: data-ingestion {:.1} MiB (target < 256 MiB), bench client {:.1} MiB",
        m.peak_rss_mib, m.client_peak_rss_mib
    );
    println!(
        "RESULT ingest value={value:.0} baseline={baseline:.0} ratio={ratio:.3} peak_rss_mib={:.1}",
        m.peak_rss_mib
    );
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Where the CPU went, per event, and the `COPY` baseline's CPU per row
/// against it.
fn report_cpu(events: u64, cpu: &CpuUsed) {
    let per_event = |used: &cpu::Used| {
        format!(
            "machine {:.1} µs (data-ingestion {:.1}, PostgreSQL {})",
            cpu::micros_per(used.machine, events),
            cpu::micros_per(used.service, events),
            postgres_per(used, events)
        )
    };
    println!("CPU per event while streaming: {}", per_event(&cpu.stream));
    println!(
        "CPU per event until the facts are complete: {}",
        per_event(&cpu.to_facts)
    );
    let copy_row = cpu::micros_per(cpu.copy.machine, events);
    println!(
        "CPU per row of the COPY baseline: machine {copy_row:.1} µs (PostgreSQL {}); \
         COPY / gRPC CPU per event: {:.3} while streaming, {:.3} until the facts are complete",
        postgres_per(&cpu.copy, events),
        copy_row / cpu::micros_per(cpu.stream.machine, events),
        copy_row / cpu::micros_per(cpu.to_facts.machine, events)
    );
}

/// PostgreSQL's µs per event, or why there is no figure.
fn postgres_per(used: &cpu::Used, events: u64) -> String {
    used.postgres.map_or_else(
        || "not local".to_string(),
        |pg| format!("{:.1}", cpu::micros_per(pg, events)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres", "x").unwrap(),
            "postgres://u:p@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://h?sslmode=disable", "x").unwrap(),
            "postgres://h/x?sslmode=disable"
        );
        assert!(with_database("sqlite://kpi.db", "x").is_err());
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [0.7, 0.5, 0.6]), 0.6);
        assert!((median(&mut [0.8, 0.5, 0.6, 0.9]) - 0.7).abs() < 1e-12);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn chunk_lengths() {
        assert_eq!(chunk_len(4_500, 2_000, 0), 2_000);
        assert_eq!(chunk_len(4_500, 2_000, 2), 500);
        assert_eq!(chunk_len(4_000, 2_000, 2), 0);
    }
}
