//! `kpi-bench score` and `kpi-bench cache`: the scoring service on a seeded
//! PostgreSQL database.
//!
//! Both use the database `kpi_bench_score` (`--database`) on the server of
//! `KPI_DATABASE_URL`. It is seeded once through the public ingestion API
//! (`StreamEvents`): the roster (`--agents` agents in teams of 50), a month
//! (October 2026, UTC) of `--tickets` tickets (created, first answered by
//! their agent within 1 to 30 minutes, resolved by the agent; every tenth
//! reopened two days later), a CSAT response for every fifth ticket, ten QA
//! reviews and one proactive-service assessment per agent, under the
//! starter kit. The table `bench_score_seed_v2` marks a finished seed; a
//! later run with the same sizes reuses it.
//!
//! indicator-catalog and data-ingestion run in this process; scoring runs in
//! a child process (this binary with the hidden `serve-scoring`
//! sub-command), so its peak RSS is its own.
//!
//! - `score`: the first ListScorecards of the month (a cold scoring process
//!   with an in-process cache) computes every agent's scorecard, with the
//!   previous month for the trend; the baseline is one hand-written SQL
//!   statement per month computing the same indicator values (tickets
//!   handled, FCR, first response time, CSAT, QA, proactive service) per agent
//!   on the same tables.
//!   The pages are taken as bytes while timing (decoding 2,000 scorecards is
//!   the client's work) and decoded afterwards; the two are checked to
//!   agree. Prints
//!   `RESULT score value=<s> baseline=<s> ratio=<value/baseline> peak_rss_mib=<MiB>`.
//! - `cache`: every agent's scorecard is read once (cached in Redis,
//!   `KPI_REDIS_URL`), then `--requests` GetScorecard calls at `--concurrency`
//!   are timed against the same number of gRPC health checks on the same
//!   server, in `--rounds` alternating rounds of each. Every answer is
//!   compared byte for byte with the one decoded and checked at warm-up (see
//!   `raw.rs`). Prints
//!   `RESULT cache value=<rps> baseline=<rps> ratio=<..> p50_ms=<..> p99_ms=<..> peak_rss_mib=<MiB>`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use kpi_proto::catalog as cat;
use kpi_proto::catalog::catalog_service_client::CatalogServiceClient;
use kpi_proto::common as cpb;
use kpi_proto::ingestion as ing;
use kpi_proto::ingestion::ingestion_service_client::IngestionServiceClient;
use kpi_proto::ingestion::{TicketEventType as T, event::Payload};
use kpi_proto::scoring as pb;
use kpi_runtime::{ServiceKind, Settings};
use prost::Message as _;
use prost::bytes::Bytes;
use sea_orm::sqlx::postgres::{PgConnection, PgRow};
use sea_orm::sqlx::{self, AssertSqlSafe, Connection as _, Executor as _, Row as _};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::ingest::{
    CatalogServer, DEFAULT_DATABASE_URL, MAX_MESSAGE_BYTES, log_settings, with_database,
};
use crate::raw;
use crate::serve::{self, ServiceProcess};

/// The tenant scored.
const TENANT: &str = "bench";
/// Agents per team.
const TEAM_SIZE: u32 = 50;
/// Events per StreamEvents chunk (at most 5,000; a ticket or an agent adds
/// up to 12 at once, so a chunk is sent once it reaches this).
const CHUNK: usize = 4_980;
/// The timed call of `cache`.
const GET_SCORECARD: &str = "/kpi.scoring.v1.ScoringService/GetScorecard";
/// The timed call of `score`.
const LIST_SCORECARDS: &str = "/kpi.scoring.v1.ScoringService/ListScorecards";
/// The no-op baseline of `cache`, on the same server.
const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
/// The month scored: October 2026 (UTC).
const MONTH_START: i64 = 1_790_812_800; // 2026-10-01T00:00:00Z
const MONTH_SECONDS: i64 = 31 * 86_400;
const PREVIOUS_MONTH_START: i64 = MONTH_START - 30 * 86_400; // 2026-09-01
/// The deadline the scoring child gives its calls (a cold month is long).
const CALL_TIMEOUT_MS: &str = "600000";

/// The seeded database, shared by `score` and `cache`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DatasetArgs {
    /// Agents on the roster.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=5_000))]
    agents: u32,
    /// Tickets in the month.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    tickets: u64,
    /// The database (kept between runs; seeded once).
    #[arg(long, default_value = "kpi_bench_score")]
    database: String,
    /// The PostgreSQL server.
    #[arg(long, env = "KPI_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    database_url: String,
}

/// Options of `kpi-bench cache`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CacheArgs {
    #[command(flatten)]
    dataset: DatasetArgs,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4_096))]
    concurrency: u32,
    /// Requests timed (each of GetScorecard and the health check). Enough
    /// that each round lasts a few hundred milliseconds even for the health
    /// check, so the start and end of a round (fewer calls in flight) weigh
    /// little on its rate.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    requests: u64,
    /// Rounds the requests are split into, each timing its share of
    /// GetScorecard calls and then as many health checks, so that a machine
    /// speeding up or slowing down during the run weighs on both alike.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    rounds: u64,
    /// The Redis of the cache.
    #[arg(long, env = "KPI_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
}

/// The services of a run: catalog and ingestion here, scoring in a child.
struct Stack {
    catalog: CatalogServer,
    ingestion_stop: Option<oneshot::Sender<()>>,
    scoring: ServiceProcess,
    url: String,
}

impl Stack {
    async fn start(d: &DatasetArgs, redis_url: Option<&str>) -> anyhow::Result<Stack> {
        kpi_runtime::telemetry::init(&log_settings());
        let url = ensure_database(&d.database_url, &d.database).await?;
        // With Redis, all three share it: the writers clear the version
        // board scoring reads.
        let catalog = CatalogServer::start(&url, redis_url).await?;
        let mut settings = Settings::defaults(ServiceKind::Ingestion);
        settings.listen_addr = "127.0.0.1:0".parse()?;
        settings.database_url = url.clone();
        settings.redis_url = redis_url.map(str::to_owned);
        settings.catalog_url = catalog.endpoint.clone();
        // The benchmark's own loopback servers: no credentials, explicitly.
        settings.auth = kpi_runtime::auth::AuthSettings::off();
        let app = data_ingestion::App::build(&settings)
            .await
            .context("cannot start data-ingestion")?;
        let ingestion_endpoint = format!("http://{}", app.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        seed_if_needed(d, &url, &catalog.endpoint, &ingestion_endpoint).await?;
        let exe = std::env::current_exe().context("cannot find this executable")?;
        let mut scoring = ServiceProcess::spawn_kind(
            &exe,
            ServiceKind::Scoring,
            serve::free_local_addr()?,
            &[
                ("KPI_CATALOG_URL", catalog.endpoint.clone()),
                ("KPI_INGESTION_URL", ingestion_endpoint.clone()),
                ("KPI_CALL_TIMEOUT_MS", CALL_TIMEOUT_MS.to_owned()),
                ("KPI_REDIS_URL", redis_url.unwrap_or_default().to_owned()),
            ],
        )?;
        scoring.wait_ready().await?;
        Ok(Stack {
            catalog,
            ingestion_stop: Some(stop),
            scoring,
            url,
        })
    }

    /// A new HTTP/2 connection to scoring.
    async fn channel(&self) -> anyhow::Result<Channel> {
        Ok(
            tonic::transport::Endpoint::from_shared(self.scoring.endpoint())?
                .connect()
                .await?,
        )
    }

    async fn stop(mut self) {
        self.scoring.stop();
        if let Some(stop) = self.ingestion_stop.take() {
            let _ = stop.send(());
        }
        self.catalog.stop().await;
    }
}

/// Creates the database if it does not exist; returns its URL.
async fn ensure_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let mut admin = PgConnection::connect(admin_url).await.with_context(|| {
        format!(
            "cannot connect to {}",
            kpi_runtime::settings::redact_url(admin_url)
        )
    })?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut admin)
        .await?;
    if exists.is_none() {
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .with_context(|| format!("cannot create the database {name}"))?;
    }
    admin.close().await?;
    with_database(admin_url, name)
}

/// The table marking a finished seed. `_v2`: the seed gained first
/// responses; a database seeded before (marked by `bench_score_seed`) is
/// streamed again, its earlier events answered as duplicates.
const SEED_MARK: &str = "bench_score_seed_v2";

/// Seeds the database unless [`SEED_MARK`] says it is seeded with these sizes.
async fn seed_if_needed(
    d: &DatasetArgs,
    url: &str,
    catalog: &str,
    ingestion: &str,
) -> anyhow::Result<()> {
    let mut db = PgConnection::connect(url).await?;
    db.execute(AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {SEED_MARK} (agents BIGINT NOT NULL, tickets BIGINT NOT NULL)"
    )))
    .await?;
    let seeded: Option<(i64, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT agents, tickets FROM {SEED_MARK}"
    )))
    .fetch_optional(&mut db)
    .await?;
    match seeded {
        Some((agents, tickets)) if agents == i64::from(d.agents) && tickets == d.tickets as i64 => {
            println!("reusing the seeded database ({agents} agents, {tickets} tickets)");
            return Ok(());
        }
        Some((agents, tickets)) => bail!(
            "the database {} was seeded with {agents} agents and {tickets} tickets; drop it or pass --database",
            d.database
        ),
        None => {}
    }
    CatalogServiceClient::connect(catalog.to_owned())
        .await?
        .install_starter_kit(cat::InstallStarterKitRequest {
            parent: format!("tenants/{TENANT}"),
            time_zone: "UTC".into(),
        })
        .await?;
    let started = Instant::now();
    let events = stream(d, ingestion).await?;
    println!(
        "seeded {events} events in {:.1} s ({:.0} events/s)",
        started.elapsed().as_secs_f64(),
        events as f64 / started.elapsed().as_secs_f64()
    );
    kpi_store::ingestion::analyze(&kpi_store::connect(url).await?).await?;
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {SEED_MARK} (agents, tickets) VALUES ($1, $2)"
    )))
    .bind(i64::from(d.agents))
    .bind(d.tickets as i64)
    .execute(&mut db)
    .await?;
    db.close().await?;
    Ok(())
}

fn at(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn event(id: String, seconds: i64, payload: Payload) -> ing::Event {
    ing::Event {
        event_id: id,
        occurred_at: at(seconds),
        payload: Some(payload),
    }
}

/// Seconds from ticket `i`'s creation to its first response: 1 to 30 minutes.
fn first_response_after(i: u64) -> i64 {
    60 + (i * 37 % 1_741) as i64
}

fn agent_id(i: u64) -> String {
    format!("a{i:05}")
}

/// The roster, then each ticket's events together (so each is folded once).
fn generate(d: &DatasetArgs, tx: &mpsc::Sender<Vec<ing::Event>>) -> anyhow::Result<u64> {
    let agents = u64::from(d.agents);
    let roster_at = MONTH_START - 400 * 86_400;
    let mut chunk = Vec::with_capacity(CHUNK + 8);
    let mut sent = 0_u64;
    let mut flush = |chunk: &mut Vec<ing::Event>, force: bool| -> anyhow::Result<()> {
        if chunk.len() >= CHUNK || (force && !chunk.is_empty()) {
            sent += chunk.len() as u64;
            tx.blocking_send(std::mem::take(chunk))
                .map_err(|_| anyhow::anyhow!("the stream closed"))?;
        }
        Ok(())
    };
    for t in 0..agents.div_ceil(u64::from(TEAM_SIZE)) {
        chunk.push(event(
            format!("team-{t}"),
            roster_at,
            Payload::Team(ing::TeamUpsert {
                team_id: format!("t{t:03}"),
                display_name: format!("Team {t}"),
                ..Default::default()
            }),
        ));
    }
    for a in 0..agents {
        chunk.push(event(
            format!("agent-{a}"),
            roster_at,
            Payload::Agent(ing::AgentUpsert {
                agent_id: agent_id(a),
                display_name: format!("Agent {a}"),
                team_id: format!("t{:03}", a / u64::from(TEAM_SIZE)),
                role: "tier1".into(),
                hired_on: "2024-01-01".into(),
                active: true,
            }),
        ));
        for r in 0..10_i64 {
            chunk.push(event(
                format!("qa-{a}-{r}"),
                MONTH_START + 86_400 * (1 + 2 * r) + a as i64,
                Payload::QaReview(ing::QaReview {
                    review_id: format!("qa-{a}-{r}"),
                    agent_id: agent_id(a),
                    reviewer_id: "reviewer".into(),
                    score: 70.0 + ((a as i64 * 13 + r * 7) % 30) as f64,
                    ..Default::default()
                }),
            ));
        }
        chunk.push(event(
            format!("pro-{a}"),
            MONTH_START + 20 * 86_400,
            Payload::Assessment(ing::Assessment {
                assessment_id: format!("pro-{a}"),
                agent_id: agent_id(a),
                kind: "proactive_service".into(),
                score: 10.0 + (a % 11) as f64,
                max_score: 20.0,
            }),
        ));
        flush(&mut chunk, false)?;
    }
    let spacing = MONTH_SECONDS as f64 / d.tickets as f64;
    for i in 0..d.tickets {
        let created = MONTH_START + (i as f64 * spacing) as i64;
        let agent = agent_id(i % agents);
        let id = format!("k{i}");
        let ticket = |ty: T, agent: &str| ing::TicketEvent {
            ticket_id: id.clone(),
            r#type: ty as i32,
            agent_id: agent.to_owned(),
            ..Default::default()
        };
        chunk.push(event(
            format!("{id}c"),
            created,
            Payload::Ticket(ing::TicketEvent {
                channel: ing::Channel::Chat as i32,
                category: "billing".into(),
                customer_id: format!("c{i}"),
                ..ticket(T::Created, "")
            }),
        ));
        chunk.push(event(
            format!("{id}f"),
            created + first_response_after(i),
            Payload::Ticket(ticket(T::FirstResponse, &agent)),
        ));
        chunk.push(event(
            format!("{id}r"),
            created + 3_600,
            Payload::Ticket(ing::TicketEvent {
                handle_seconds: 300,
                ..ticket(T::Resolved, &agent)
            }),
        ));
        if i % 10 == 0 {
            chunk.push(event(
                format!("{id}o"),
                created + 3_600 + 2 * 86_400,
                Payload::Ticket(ticket(T::Reopened, &agent)),
            ));
        }
        if i % 5 == 0 {
            chunk.push(event(
                format!("{id}s"),
                created + 7_200,
                Payload::Survey(ing::SurveyResponse {
                    response_id: format!("{id}s"),
                    kind: ing::SurveyKind::Csat as i32,
                    score: 1.0 + ((i * 7) % 5) as f64,
                    ticket_id: id.clone(),
                    agent_id: agent.clone(),
                    ..Default::default()
                }),
            ));
        }
        flush(&mut chunk, false)?;
    }
    flush(&mut chunk, true)?;
    Ok(sent)
}

/// Streams the generated events; every one must be accepted (or a
/// duplicate, when an interrupted seed is resumed).
async fn stream(d: &DatasetArgs, endpoint: &str) -> anyhow::Result<u64> {
    let (tx, mut rx) = mpsc::channel::<Vec<ing::Event>>(4);
    let (req_tx, req_rx) = mpsc::channel::<ing::StreamEventsRequest>(8);
    let args = d.clone();
    let producer = tokio::task::spawn_blocking(move || generate(&args, &tx));
    let forward = tokio::spawn(async move {
        let mut sequence = 0;
        while let Some(events) = rx.recv().await {
            sequence += 1;
            let request = ing::StreamEventsRequest {
                parent: format!("tenants/{TENANT}"),
                sequence,
                events,
            };
            if req_tx.send(request).await.is_err() {
                break;
            }
        }
    });
    let mut client = IngestionServiceClient::connect(endpoint.to_owned())
        .await?
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let mut answers = client
        .stream_events(ReceiverStream::new(req_rx))
        .await?
        .into_inner();
    let mut stored = 0_u64;
    let mut last_report = Instant::now();
    while let Some(answer) = answers.message().await? {
        ensure!(
            answer.rejected == 0,
            "events were rejected: {:?}",
            answer
                .results
                .iter()
                .find(|r| r.outcome == ing::EventOutcome::Rejected as i32)
        );
        stored += u64::try_from(answer.accepted + answer.duplicates).unwrap_or(0);
        if last_report.elapsed() > Duration::from_secs(30) {
            println!("… {stored} events stored");
            last_report = Instant::now();
        }
    }
    let sent = producer.await??;
    forward.await?;
    ensure!(stored == sent, "{sent} events sent, {stored} stored");
    Ok(sent)
}

/// The hand-written SQL: per agent, the indicator values of the
/// ticket_handling template for `[start, end)` (seconds since the epoch).
const BASELINE_SQL: &str = r#"
WITH w AS (SELECT $2::bigint * 1000000 AS s, $3::bigint * 1000000 AS e),
t AS (
  SELECT agent_id,
         count(*) AS handled,
         count(*) FILTER (WHERE NOT coalesce(first_reopen_seconds <= 604800, false)
                            AND NOT coalesce(next_contact_gap_seconds <= 604800, false)) AS fcr_num
  FROM ing_fact_ticket, w
  WHERE tenant = $1 AND resolved AND first_resolved_at >= w.s AND first_resolved_at < w.e
  GROUP BY agent_id),
f AS (
  SELECT first_responder_id AS agent_id, avg(first_response_seconds) / 60 AS frt
  FROM ing_fact_ticket, w
  WHERE tenant = $1 AND first_response_seconds IS NOT NULL AND created_at >= w.s AND created_at < w.e
  GROUP BY first_responder_id),
s AS (
  SELECT agent_id, avg(score) AS csat, count(*) AS responses
  FROM ing_fact_survey, w
  WHERE tenant = $1 AND kind = 'csat' AND responded_at >= w.s AND responded_at < w.e
  GROUP BY agent_id),
q AS (
  SELECT agent_id, avg(score) AS qa
  FROM ing_fact_qa_review, w
  WHERE tenant = $1 AND reviewed_at >= w.s AND reviewed_at < w.e
  GROUP BY agent_id),
p AS (
  SELECT agent_id, avg(pct) AS proactive
  FROM ing_fact_assessment, w
  WHERE tenant = $1 AND kind = 'proactive_service' AND assessed_at >= w.s AND assessed_at < w.e
  GROUP BY agent_id)
SELECT r.agent_id, t.handled, t.fcr_num, f.frt, s.csat, s.responses, q.qa, p.proactive
FROM (SELECT DISTINCT agent_id FROM ing_roster WHERE tenant = $1) r
LEFT JOIN t ON t.agent_id = r.agent_id
LEFT JOIN f ON f.agent_id = r.agent_id
LEFT JOIN s ON s.agent_id = r.agent_id
LEFT JOIN q ON q.agent_id = r.agent_id
LEFT JOIN p ON p.agent_id = r.agent_id
"#;

/// An agent's indicator values as the SQL computed them.
struct Expected {
    /// Tickets resolved (a count; the indicator is per working day).
    handled: i64,
    /// First contact resolution, %.
    fcr: Option<f64>,
    /// Mean first response time, minutes.
    frt: Option<f64>,
    /// Mean CSAT score.
    csat: Option<f64>,
    /// Mean QA score.
    qa: Option<f64>,
    /// Mean proactive-service assessment, %.
    proactive: Option<f64>,
}

/// Per agent id.
type Baseline = BTreeMap<String, Expected>;

async fn baseline(url: &str) -> anyhow::Result<(Duration, Baseline)> {
    let mut db = PgConnection::connect(url).await?;
    let started = Instant::now();
    let mut current = Vec::new();
    for start in [MONTH_START, PREVIOUS_MONTH_START] {
        let end = if start == MONTH_START {
            MONTH_START + MONTH_SECONDS
        } else {
            MONTH_START
        };
        let rows: Vec<PgRow> = sqlx::query(BASELINE_SQL)
            .bind(TENANT)
            .bind(start)
            .bind(end)
            .fetch_all(&mut db)
            .await?;
        if start == MONTH_START {
            current = rows;
        }
    }
    let elapsed = started.elapsed();
    let mut out = Baseline::new();
    for row in current {
        let handled: Option<i64> = row.try_get("handled")?;
        let fcr_num: Option<i64> = row.try_get("fcr_num")?;
        let fcr = match (fcr_num, handled) {
            (Some(n), Some(d)) if d > 0 => Some(n as f64 / d as f64 * 100.0),
            _ => None,
        };
        out.insert(
            row.try_get("agent_id")?,
            Expected {
                handled: handled.unwrap_or(0),
                fcr,
                frt: row.try_get("frt")?,
                csat: row.try_get("csat")?,
                qa: row.try_get("qa")?,
                proactive: row.try_get("proactive")?,
            },
        );
    }
    db.close().await?;
    Ok((elapsed, out))
}

fn month_period() -> cpb::Period {
    cpb::Period {
        kind: cpb::PeriodKind::Month as i32,
        date: "2026-10-01".into(),
        end_date: String::new(),
    }
}

/// Every page of the month's leaderboard as it came (encoded), and how long
/// each page took (the first computes the board; the others are cut from
/// the cached one). Only the page token is read while timing: decoding 500
/// scorecards per page is the client's work, done once all have arrived.
async fn leaderboard(channel: &Channel) -> anyhow::Result<(Vec<Bytes>, Vec<Duration>)> {
    let mut pages = Vec::new();
    let mut took = Vec::new();
    let mut page_token = String::new();
    loop {
        let started = Instant::now();
        let request = pb::ListScorecardsRequest {
            parent: format!("tenants/{TENANT}"),
            period: Some(month_period()),
            page_size: 500,
            page_token,
            ..Default::default()
        };
        let page = raw::call_raw(channel.clone(), LIST_SCORECARDS, request).await?;
        took.push(started.elapsed());
        page_token = PageToken::decode(page.clone())?.next_page_token;
        pages.push(page);
        if page_token.is_empty() {
            return Ok((pages, took));
        }
    }
}

/// The page token of a `ListScorecardsResponse`; its scorecards (field 1)
/// are skipped unread.
#[derive(Clone, PartialEq, prost::Message)]
struct PageToken {
    #[prost(string, tag = "2")]
    next_page_token: String,
}

/// The scorecards of the leaderboard's pages.
fn decode_pages(pages: Vec<Bytes>) -> anyhow::Result<Vec<pb::Scorecard>> {
    let mut cards = Vec::new();
    for page in pages {
        cards.extend(pb::ListScorecardsResponse::decode(page)?.scorecards);
    }
    Ok(cards)
}

fn value_of(card: &pb::Scorecard, indicator: &str) -> Option<f64> {
    card.indicators
        .iter()
        .find(|l| l.indicator == indicator)?
        .value
}

/// The service's values must be the baseline's.
fn check_agreement(
    cards: &[pb::Scorecard],
    base: &Baseline,
    working_days: f64,
) -> anyhow::Result<()> {
    let same = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * b.abs().max(1.0),
        (None, None) => true,
        _ => false,
    };
    for card in cards {
        let id = card
            .subject
            .as_ref()
            .map(|s| s.id.as_str())
            .unwrap_or_default();
        let expected = base
            .get(id)
            .with_context(|| format!("{id} missing from the baseline"))?;
        let indicators = [
            (
                "tickets_handled",
                Some(expected.handled as f64 / working_days),
            ),
            ("fcr", expected.fcr),
            ("first_response_time", expected.frt),
            ("csat_avg", expected.csat),
            ("qa_score", expected.qa),
            ("proactive_service", expected.proactive),
        ];
        for (indicator, sql) in indicators {
            let scored = value_of(card, indicator);
            ensure!(
                same(scored, sql),
                "{indicator} of {id}: scoring {scored:?}, SQL {sql:?}"
            );
        }
    }
    Ok(())
}

/// `kpi-bench score`.
pub(crate) async fn run_score(d: DatasetArgs) -> anyhow::Result<()> {
    let stack = Stack::start(&d, None).await?;
    let channel = stack.channel().await?;
    let started = Instant::now();
    let (encoded, pages) = leaderboard(&channel).await?;
    let value = started.elapsed();
    let cards = decode_pages(encoded)?;
    ensure!(
        cards.len() == d.agents as usize,
        "{} scorecards for {} agents",
        cards.len(),
        d.agents
    );
    let (baseline, base) = baseline(&stack.url).await?;
    // October 2026 has 22 working days (Monday–Friday, no holidays).
    check_agreement(&cards, &base, 22.0)?;
    let peak = stack.scoring.peak_rss_mib()?;
    println!(
        "{} scorecards computed cold in {:.3} s; the SQL baseline took {:.3} s; values agree",
        cards.len(),
        value.as_secs_f64(),
        baseline.as_secs_f64()
    );
    let pages: Vec<String> = pages
        .iter()
        .map(|t| format!("{:.1}", t.as_secs_f64() * 1_000.0))
        .collect();
    println!(
        "pages of the leaderboard (ms; the first computes it, the others are cut from the cached board): {}",
        pages.join(", ")
    );
    println!(
        "RESULT score value={:.3} baseline={:.3} ratio={:.2} peak_rss_mib={peak:.1}",
        value.as_secs_f64(),
        baseline.as_secs_f64(),
        value.as_secs_f64() / baseline.as_secs_f64()
    );
    stack.stop().await;
    Ok(())
}

/// Runs calls `first..end` of `call` with `concurrency` in flight; returns
/// how long they took and their latencies.
async fn load<F, Fut>(
    (first, end): (u64, u64),
    concurrency: u32,
    call: F,
) -> anyhow::Result<(Duration, Vec<Duration>)>
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(first));
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let next = next.clone();
        let call = call.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= end {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let t = Instant::now();
                call(i).await?;
                latencies.push(t.elapsed());
            }
        })
    });
    let mut all = Vec::with_capacity((end - first) as usize);
    for worker in join_handles(workers).await {
        all.extend(worker??);
    }
    Ok((started.elapsed(), all))
}

/// Calls `first..end` of round `round` when `requests` are split into
/// `rounds`.
fn round_range(requests: u64, rounds: u64, round: u64) -> (u64, u64) {
    (requests * round / rounds, requests * (round + 1) / rounds)
}

async fn join_handles<T>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await);
    }
    out
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1_000.0
}

/// `kpi-bench cache`.
pub(crate) async fn run_cache(args: CacheArgs) -> anyhow::Result<()> {
    let d = &args.dataset;
    let stack = Stack::start(d, Some(&args.redis_url)).await?;
    let agents = u64::from(d.agents);
    let request = move |i: u64| pb::GetScorecardRequest {
        parent: format!("tenants/{TENANT}"),
        subject: Some(cpb::Subject {
            kind: cpb::SubjectKind::Agent as i32,
            id: agent_id(i % agents),
        }),
        period: Some(month_period()),
        ..Default::default()
    };
    // Warm: every agent's scorecard once (the first computes the month),
    // checked and kept as the bytes every later answer must equal.
    let warm = Instant::now();
    let channel = stack.channel().await?;
    let mut expected = Vec::with_capacity(d.agents as usize);
    for i in 0..agents {
        let bytes = raw::call_raw(channel.clone(), GET_SCORECARD, request(i)).await?;
        let answer = pb::GetScorecardResponse::decode(bytes.clone())?;
        let subject = answer.scorecard.and_then(|card| card.subject);
        ensure!(
            subject.as_ref().map(|s| s.id.as_str()) == Some(agent_id(i).as_str()),
            "the scorecard of {} names {subject:?}",
            agent_id(i)
        );
        expected.push(bytes);
    }
    println!(
        "warmed {} scorecards in {:.1} s",
        d.agents,
        warm.elapsed().as_secs_f64()
    );
    let expected = std::sync::Arc::new(expected);
    let c = channel.clone();
    let scorecard = move |i: u64| {
        let (c, expected) = (c.clone(), expected.clone());
        let r = request(i);
        async move {
            let bytes = raw::call_raw(c, GET_SCORECARD, r).await?;
            let agent = (i % agents) as usize;
            ensure!(
                bytes == expected[agent],
                "the answer for {} differs from its warm-up answer",
                agent_id(i % agents)
            );
            Ok(())
        }
    };
    let health_request = HealthCheckRequest {
        service: ServiceKind::Scoring.grpc_service_name().to_owned(),
    };
    let serving = Bytes::from(
        HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }
        .encode_to_vec(),
    );
    let h = stack.channel().await?;
    let health = move |_| {
        let (h, r, serving) = (h.clone(), health_request.clone(), serving.clone());
        async move {
            let bytes = raw::call_raw(h, HEALTH_CHECK, r).await?;
            ensure!(bytes == serving, "the health check did not answer SERVING");
            Ok(())
        }
    };
    // Alternating rounds: a machine that speeds up or slows down during the
    // run weighs on both rates alike.
    let (mut scorecard_time, mut health_time) = (Duration::ZERO, Duration::ZERO);
    let mut latencies = Vec::with_capacity(args.requests as usize);
    for round in 0..args.rounds {
        let range = round_range(args.requests, args.rounds, round);
        let (took, round_latencies) = load(range, args.concurrency, scorecard.clone()).await?;
        scorecard_time += took;
        latencies.extend(round_latencies);
        health_time += load(range, args.concurrency, health.clone()).await?.0;
    }
    latencies.sort();
    let rps = args.requests as f64 / scorecard_time.as_secs_f64();
    let base_rps = args.requests as f64 / health_time.as_secs_f64();
    let peak = stack.scoring.peak_rss_mib()?;
    println!(
        "RESULT cache value={rps:.0} baseline={base_rps:.0} ratio={:.3} p50_ms={:.2} p99_ms={:.2} peak_rss_mib={peak:.1}",
        rps / base_rps,
        percentile_ms(&latencies, 0.50),
        percentile_ms(&latencies, 0.99)
    );
    stack.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::round_range;

    #[test]
    fn rounds_split_the_requests_without_gap_or_overlap() {
        let ranges: Vec<(u64, u64)> = (0..3).map(|r| round_range(20_000, 3, r)).collect();
        assert_eq!(ranges, [(0, 6_666), (6_666, 13_333), (13_333, 20_000)]);
        assert_eq!(round_range(7, 1, 0), (0, 7));
    }
}
