//! Limits and faults, with the real service binaries as processes, real
//! PostgreSQL and real gRPC clients:
//!
//! 1. PostgreSQL restarted (a fast stop, then a crash-like immediate stop)
//!    under 50,000 events from five clients (three over `StreamEvents`, two
//!    with `IngestEvents` batches) that retry on `UNAVAILABLE`: every event is stored and projected exactly once, every
//!    acknowledged event is there, nothing failed but with `UNAVAILABLE`.
//!    The cluster is a private one ([`PgServer`]), never the shared server.
//! 2. data-ingestion SIGKILLed mid-ingestion and started again on the same
//!    port: nothing acknowledged is lost, retried batches are deduplicated.
//! 3. SIGTERM under load: health turns `NOT_SERVING` before the port
//!    closes, calls in flight finish, the process exits cleanly within its
//!    drain timeout, and clients that retry on `UNAVAILABLE` against a
//!    second instance see zero failures. The metrics port's plain-HTTP
//!    `/readyz` (what probes use when gRPC is behind TLS) turns 503 while
//!    the process drains.
//! 4. Load shedding: with `KPI_MAX_CONCURRENT_REQUESTS=2` and two open
//!    streams, a further call is answered `RESOURCE_EXHAUSTED` with a retry
//!    hint at once (it never reaches a handler), health still answers, the
//!    shed counter moves, and calls pass again once a stream ends.
//! 5. Limits: a request over `KPI_MAX_MESSAGE_BYTES` is `OUT_OF_RANGE` on
//!    each of the three services, a batch over 5,000 events is
//!    `INVALID_ARGUMENT` naming `events`.
//! 6. Deadlines: with indicator-catalog hung (SIGSTOP), data-ingestion keeps
//!    taking events and a read that needs a calendar fails with
//!    `UNAVAILABLE` after `KPI_CALL_TIMEOUT_MS` instead of hanging, and the
//!    metrics endpoint shows the projection's backlog, lag and failures;
//!    once the catalog answers again, reads pass, every event is projected
//!    once and the backlog reads zero.

mod fault_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kpi_proto::catalog::GetIndicatorRequest;
use kpi_proto::catalog::catalog_service_client::CatalogServiceClient;
use kpi_proto::ingestion as pb;
use kpi_proto::ingestion::ingestion_service_client::IngestionServiceClient;
use kpi_proto::scoring::GetScorecardRequest;
use kpi_proto::scoring::scoring_service_client::ScoringServiceClient;
use kpi_testkit::{DbKind, PgServer, StopMode, TestDb};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_types::StatusExt;

use crate::support::{Binary, ServiceProcess, http_get, sample, scrape};
use fault_support::{
    Ledger, Sender, Stored, TENANT, WAIT_GUARD, acknowledged_at_least, projected, spawn_senders,
    spawn_streams, tickets,
};

/// How long PostgreSQL stays down in the restart test.
const PG_DOWN_FOR: Duration = Duration::from_millis(700);

/// indicator-catalog (for the business calendars the projection needs).
async fn catalog() -> anyhow::Result<ServiceProcess> {
    ServiceProcess::spawn(Binary::Catalog, None, &[]).await
}

/// data-ingestion on `db_url`, calling `catalog`, plus `env`.
async fn ingestion(
    db_url: &str,
    catalog: &ServiceProcess,
    env: &[(&str, String)],
) -> anyhow::Result<ServiceProcess> {
    let mut all = vec![
        ("KPI_DATABASE_URL", db_url.to_owned()),
        ("KPI_CATALOG_URL", catalog.url()),
    ];
    all.extend(env.iter().cloned());
    ServiceProcess::spawn(Binary::Ingestion, None, &all).await
}

/// Waits for every sender; they never fail the task itself, failures are
/// in the ledger.
async fn join(senders: Vec<tokio::task::JoinHandle<()>>) -> anyhow::Result<()> {
    for sender in senders {
        tokio::time::timeout(WAIT_GUARD * 2, sender).await??;
    }
    Ok(())
}

/// The checks every fault test ends with: no failure, every event
/// acknowledged, stored once and projected once.
async fn assert_exactly_once(
    ledger: &Ledger,
    events: &[pb::Event],
    db_url: &str,
) -> anyhow::Result<()> {
    assert_eq!(ledger.failures(), Vec::<String>::new(), "calls failed");
    let acknowledged = ledger.acknowledged();
    assert_eq!(acknowledged.len(), events.len(), "every event acknowledged");

    projected(db_url).await?;
    let stored = Stored::read(db_url).await?;
    assert_eq!(stored.duplicates(), Vec::<String>::new(), "stored twice");
    assert_eq!(stored.keys.len(), events.len(), "event keys stored");
    assert_eq!(stored.events.len(), events.len(), "events kept per entity");
    assert_eq!(stored.ticket_facts.len(), events.len(), "ticket facts");
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.events.contains_key(*id))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_under_50000_events_keeps_each_event_exactly_once() -> anyhow::Result<()>
{
    let started = Instant::now();
    let mut pg = PgServer::start().await?;
    let catalog = catalog().await?;
    let ingestion = ingestion(&pg.url(), &catalog, &[]).await?;

    let events = tickets("pg", 50_000);
    let ledger = Arc::new(Ledger::default());
    let sender = Sender::new(&[ingestion.url()], ledger.clone())?;
    // Three clients stream (StreamEvents), two send batches (IngestEvents).
    let (streamed, batched) = events.split_at(30_000);
    let mut senders = spawn_streams(&sender, streamed.to_vec(), 3, 500);
    senders.extend(spawn_senders(&sender, batched.to_vec(), 2, 500));

    let mut stopped_at = Vec::new();
    for (threshold, mode) in [(10_000, StopMode::Fast), (30_000, StopMode::Immediate)] {
        acknowledged_at_least(&ledger, threshold, &senders).await;
        stopped_at.push((mode, ledger.acknowledged_count()));
        pg.stop(mode).await?;
        tokio::time::sleep(PG_DOWN_FOR).await;
        pg.start_again().await?;
    }
    join(senders).await?;

    assert_eq!(ledger.failures(), Vec::<String>::new(), "calls failed");
    for (mode, acknowledged) in &stopped_at {
        assert!(
            *acknowledged < events.len(),
            "the {mode:?} stop came after the last event ({acknowledged} acknowledged)"
        );
    }
    assert!(
        ledger.retries.load(Ordering::SeqCst) > 0,
        "no call saw UNAVAILABLE while PostgreSQL restarted"
    );
    assert_exactly_once(&ledger, &events, &pg.url()).await?;
    println!(
        "postgres restart: {} events, stops at {stopped_at:?}, {} batches retried on UNAVAILABLE, {} cut, {:?}",
        events.len(),
        ledger.retries.load(Ordering::SeqCst),
        ledger.cut.load(Ordering::SeqCst),
        started.elapsed()
    );
    drop(ingestion);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingestion_killed_and_restarted_loses_nothing_acknowledged() -> anyhow::Result<()> {
    let db = TestDb::new(DbKind::Postgres).await?;
    let catalog = catalog().await?;
    let first = ingestion(&db.url, &catalog, &[]).await?;
    let addr = first.addr;

    let events = tickets("kill", 15_000);
    let ledger = Arc::new(Ledger::default());
    let sender = Sender::new(&[first.url()], ledger.clone())?;
    let senders = spawn_senders(&sender, events.clone(), 3, 250);

    acknowledged_at_least(&ledger, 4_000, &senders).await;
    let acknowledged_before_kill = ledger.acknowledged();
    first.signal("-KILL")?;
    let (status, _first) = first.wait_exit().await?;
    assert!(!status.success(), "SIGKILL ends the process: {status}");
    assert!(
        acknowledged_before_kill.len() < events.len(),
        "the kill came after the last event"
    );

    // Same port, same database: the clients' channels reconnect to it.
    let second = ingestion(&db.url, &catalog, &[("KPI_LISTEN_ADDR", addr.to_string())]).await?;
    join(senders).await?;

    assert_eq!(ledger.failures(), Vec::<String>::new(), "calls failed");
    let retried = ledger.retries.load(Ordering::SeqCst) + ledger.cut.load(Ordering::SeqCst);
    assert!(retried > 0, "no call failed while data-ingestion was down");
    assert_exactly_once(&ledger, &events, &db.url).await?;
    let stored = Stored::read(&db.url).await?;
    assert!(
        acknowledged_before_kill
            .iter()
            .all(|id| stored.events.contains_key(id)),
        "an event acknowledged before the kill is gone"
    );
    println!(
        "sigkill: {} acknowledged before the kill, {} batches retried on UNAVAILABLE, {} cut and resent",
        acknowledged_before_kill.len(),
        ledger.retries.load(Ordering::SeqCst),
        ledger.cut.load(Ordering::SeqCst)
    );
    second.stop().await?;
    Ok(())
}

/// Polls `Health/Check` of the whole server until it stops answering;
/// returns the statuses seen in order (one entry per change).
async fn health_until_gone(url: String) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(url) else {
        return vec!["bad url".to_owned()];
    };
    let channel = endpoint
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy();
    let mut client = HealthClient::new(channel);
    loop {
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        });
        request.set_timeout(Duration::from_secs(5));
        let now = match client.check(request).await {
            Ok(response) => format!("{:?}", serving_status(response.get_ref())),
            Err(status) => format!("error {:?}", status.code()),
        };
        if seen.last() != Some(&now) {
            seen.push(now.clone());
        }
        if now.starts_with("error") {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn serving_status(response: &HealthCheckResponse) -> ServingStatus {
    ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_drains_and_retrying_clients_see_no_failure() -> anyhow::Result<()> {
    let db = TestDb::new(DbKind::Postgres).await?;
    let catalog = catalog().await?;
    let leaving = ingestion(
        &db.url,
        &catalog,
        &[
            ("KPI_SHUTDOWN_DELAY_MS", "1000".to_owned()),
            ("KPI_DRAIN_TIMEOUT_SECS", "60".to_owned()),
        ],
    )
    .await?;
    let staying = ingestion(&db.url, &catalog, &[]).await?;

    let events = tickets("term", 16_000);
    let ledger = Arc::new(Ledger::default());
    let sender = Sender::new(&[leaving.url(), staying.url()], ledger.clone())?;
    let senders = spawn_senders(&sender, events.clone(), 4, 200);
    let health = tokio::spawn(health_until_gone(leaving.url()));

    acknowledged_at_least(&ledger, 3_000, &senders).await;
    assert!(
        ledger.acknowledged_count() < events.len(),
        "load still running"
    );
    ledger.signalled.store(true, Ordering::SeqCst);
    leaving.signal("-TERM")?;
    let (status, leaving) = leaving.wait_exit().await?;
    assert!(
        status.success(),
        "SIGTERM ends the process cleanly: {status}"
    );
    join(senders).await?;

    let health = tokio::time::timeout(WAIT_GUARD, health).await??;
    assert_eq!(
        health.first().map(String::as_str),
        Some("Serving"),
        "{health:?}"
    );
    let not_serving = health.iter().position(|s| s == "NotServing");
    let gone = health.iter().position(|s| s.starts_with("error"));
    assert!(
        matches!((not_serving, gone), (Some(n), Some(g)) if n < g),
        "health turns NOT_SERVING before the port closes: {health:?}"
    );
    assert!(
        ledger.finished_across_signal.load(Ordering::SeqCst) > 0,
        "no call in flight at SIGTERM finished"
    );
    let logs = leaving.log_lines();
    assert!(
        !logs.iter().any(|l| l["message"]
            .as_str()
            .unwrap_or("")
            .contains("drain timeout")),
        "the drain timed out"
    );
    assert_eq!(
        ledger.cut.load(Ordering::SeqCst),
        0,
        "every failed call was UNAVAILABLE: retrying on UNAVAILABLE alone loses nothing"
    );
    assert_exactly_once(&ledger, &events, &db.url).await?;
    println!(
        "sigterm: health {health:?}, {} calls finished across the signal, {} batches retried on UNAVAILABLE, {} cut and resent",
        ledger.finished_across_signal.load(Ordering::SeqCst),
        ledger.retries.load(Ordering::SeqCst),
        ledger.cut.load(Ordering::SeqCst)
    );
    staying.stop().await?;
    Ok(())
}

/// Polls `GET /readyz` until the endpoint stops answering; returns the
/// status lines seen in order (one entry per change).
async fn readiness_until_gone(metrics: std::net::SocketAddr) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    loop {
        let now = match http_get(metrics, "/readyz").await {
            Ok((status, _)) => status,
            Err(_) => "gone".to_owned(),
        };
        if seen.last() != Some(&now) {
            seen.push(now.clone());
        }
        if now == "gone" {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_readiness_turns_503_on_sigterm_before_the_process_goes() -> anyhow::Result<()> {
    // With TLS on, the kubelet's plain-text `grpc` probes cannot reach
    // health, and the metrics port's `/readyz` stands in for them. It is
    // plain HTTP either way, so this runs without TLS.
    let server = ServiceProcess::spawn(
        Binary::Catalog,
        None,
        &[("KPI_SHUTDOWN_DELAY_MS", "1000".to_owned())],
    )
    .await?;
    let metrics = server.metrics_addr;
    let (live, body) = http_get(metrics, "/livez").await?;
    assert_eq!(
        (live.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "alive\n")
    );
    let watch = tokio::spawn(readiness_until_gone(metrics));
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.signal("-TERM")?;
    let (status, _) = server.wait_exit().await?;
    assert!(
        status.success(),
        "SIGTERM ends the process cleanly: {status}"
    );
    let seen = tokio::time::timeout(WAIT_GUARD, watch).await??;
    assert_eq!(
        seen,
        [
            "HTTP/1.1 200 OK",
            "HTTP/1.1 503 Service Unavailable",
            "gone"
        ],
        "ready, then not ready while draining, then gone"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturated_server_sheds_calls_with_resource_exhausted_but_health_answers()
-> anyhow::Result<()> {
    let server = ServiceProcess::spawn(
        Binary::Ingestion,
        None,
        &[("KPI_MAX_CONCURRENT_REQUESTS", "2".to_owned())],
    )
    .await?;
    let mut client = IngestionServiceClient::connect(server.url()).await?;
    let watch = || pb::WatchChangesRequest {
        parent: format!("tenants/{TENANT}"),
    };
    // Two open streams hold both slots for as long as they last.
    let first = client.watch_changes(watch()).await?.into_inner();
    let second = client.watch_changes(watch()).await?.into_inner();

    let version = || pb::GetDataVersionRequest {
        parent: format!("tenants/{TENANT}"),
    };
    let asked = Instant::now();
    let shed = client
        .get_data_version(version())
        .await
        .expect_err("a third call is shed");
    let answered_in = asked.elapsed();
    assert_eq!(shed.code(), Code::ResourceExhausted, "{shed:?}");
    assert!(shed.message().contains("limit of 2"), "{}", shed.message());
    let retry = shed.get_details_retry_info().and_then(|r| r.retry_delay);
    assert!(retry.is_some(), "a retry hint: {shed:?}");

    let mut health = HealthClient::new(
        tonic::transport::Channel::from_shared(server.url())?
            .connect()
            .await?,
    );
    let answer = health
        .check(HealthCheckRequest {
            service: "kpi.ingestion.v1.IngestionService".to_owned(),
        })
        .await?;
    assert_eq!(serving_status(answer.get_ref()), ServingStatus::Serving);

    let metrics = scrape(server.metrics_addr).await?;
    assert!(
        sample(&metrics, "kpi_rpc_server_shed_total", &[]) >= 1.0,
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            "kpi_rpc_server_requests_total",
            &[("rpc_grpc_status_code", "RESOURCE_EXHAUSTED")]
        ) >= 1.0,
        "{metrics}"
    );

    // A stream ends: its slot is free again.
    drop(first);
    let recovered = tokio::time::timeout(WAIT_GUARD, async {
        loop {
            match client.get_data_version(version()).await {
                Ok(_) => return Ok(()),
                Err(status) if status.code() == Code::ResourceExhausted => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(status) => return Err(status),
            }
        }
    })
    .await?;
    recovered?;
    drop(second);
    println!("shed: answered RESOURCE_EXHAUSTED in {answered_in:?}");
    server.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_messages_and_batches_get_clear_codes() -> anyhow::Result<()> {
    let server = ServiceProcess::spawn(
        Binary::Ingestion,
        None,
        &[("KPI_MAX_MESSAGE_BYTES", "1048576".to_owned())],
    )
    .await?;
    let mut client = IngestionServiceClient::connect(server.url())
        .await?
        .max_encoding_message_size(16 * 1024 * 1024);

    // 5,001 small events fit in 1 MiB but are one more than a batch may hold.
    let too_many = tickets("batch", 5_001);
    let status = client
        .ingest_events(pb::IngestEventsRequest {
            parent: format!("tenants/{TENANT}"),
            events: too_many,
        })
        .await
        .expect_err("batch too large");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violations = kpi_runtime::status::field_violations(&status);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].0, "events");
    assert!(violations[0].1.contains("at most 5000"), "{violations:?}");

    // Over the message limit: refused by the codec before any handler runs.
    let mut huge = tickets("huge", 1);
    if let Some(pb::event::Payload::Ticket(ticket)) = &mut huge[0].payload {
        ticket.category = "x".repeat(2 * 1024 * 1024);
    }
    let status = client
        .ingest_events(pb::IngestEventsRequest {
            parent: format!("tenants/{TENANT}"),
            events: huge,
        })
        .await
        .expect_err("message too large");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("1048576"), "{}", status.message());

    // The server is fine afterwards.
    client
        .get_data_version(pb::GetDataVersionRequest {
            parent: format!("tenants/{TENANT}"),
        })
        .await?;
    server.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_and_scoring_refuse_messages_over_their_limit() -> anyhow::Result<()> {
    let limit = [("KPI_MAX_MESSAGE_BYTES", "4096".to_owned())];
    let oversize = "x".repeat(8 * 1024);

    let catalog = ServiceProcess::spawn(Binary::Catalog, None, &limit).await?;
    let status = CatalogServiceClient::connect(catalog.url())
        .await?
        .get_indicator(GetIndicatorRequest {
            name: oversize.clone(),
            version: 0,
        })
        .await
        .expect_err("over the catalog's limit");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("4096"), "{}", status.message());

    // Nothing else needs to run: the codec refuses it before any handler.
    let scoring = ServiceProcess::spawn(Binary::Scoring, None, &limit).await?;
    let status = ScoringServiceClient::connect(scoring.url())
        .await?
        .get_scorecard(GetScorecardRequest {
            parent: format!("tenants/{TENANT}"),
            template: oversize,
            ..Default::default()
        })
        .await
        .expect_err("over the scoring limit");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("4096"), "{}", status.message());

    catalog.stop().await?;
    scoring.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_catalog_costs_ingestion_reads_one_deadline_not_a_hang() -> anyhow::Result<()> {
    let db = TestDb::new(DbKind::Postgres).await?;
    let catalog = catalog().await?;
    let ingestion = ingestion(
        &db.url,
        &catalog,
        &[("KPI_CALL_TIMEOUT_MS", "300".to_owned())],
    )
    .await?;
    // SIGSTOP: the catalog's socket still accepts connections, but nothing
    // answers; only the call's deadline ends the wait.
    catalog.signal("-STOP")?;

    // Intake never needs the catalog.
    let ledger = Arc::new(Ledger::default());
    let events = tickets("hung", 10);
    Sender::new(&[ingestion.url()], ledger.clone())?
        .send_all(events.clone(), 10)
        .await;
    assert_eq!(ledger.acknowledged_count(), 10, "{:?}", ledger.failures());

    // A read must project first, which needs the tenant's calendar.
    let mut client = IngestionServiceClient::connect(ingestion.url()).await?;
    let teams = || {
        let mut request = tonic::Request::new(pb::ListTeamsRequest {
            parent: format!("tenants/{TENANT}"),
            ..Default::default()
        });
        request.set_timeout(WAIT_GUARD);
        request
    };
    let status = client
        .list_teams(teams())
        .await
        .expect_err("no calendar while the catalog hangs");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    // The call's deadline (KPI_CALL_TIMEOUT_MS) ended it.
    assert!(
        status.message().contains("business calendar")
            && status.message().contains("Timeout expired"),
        "{}",
        status.message()
    );

    println!("hung catalog: {}", status.message());
    // The backlog shows on the metrics endpoint: the read's projection
    // failed (counted) and sampled the batches still pending.
    let stuck = scrape(ingestion.metrics_addr).await?;
    let projection = |text: &str, name: &str| sample(text, name, &[]);
    assert!(
        projection(&stuck, "kpi_ingestion_projection_failures_total") >= 1.0,
        "{stuck}"
    );
    assert!(
        projection(&stuck, "kpi_ingestion_projection_pending_batches") >= 1.0,
        "{stuck}"
    );
    assert!(
        projection(&stuck, "kpi_ingestion_projection_lag_seconds") > 0.0,
        "{stuck}"
    );
    catalog.signal("-CONT")?;
    let recovered = tokio::time::timeout(WAIT_GUARD, async {
        loop {
            match client.list_teams(teams()).await {
                Ok(_) => return Ok(()),
                Err(status) if status.code() == Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) => return Err(status),
            }
        }
    })
    .await?;
    recovered?;
    assert_exactly_once(&ledger, &events, &db.url).await?;
    // Folded by the read or the background task, whichever came first; the
    // one that folded samples the backlog just after.
    let caught_up = tokio::time::timeout(WAIT_GUARD, async {
        loop {
            let text = scrape(ingestion.metrics_addr).await?;
            if projection(&text, "kpi_ingestion_projection_pending_batches") == 0.0 {
                return anyhow::Ok(text);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await??;
    assert_eq!(
        projection(&caught_up, "kpi_ingestion_projection_lag_seconds"),
        0.0,
        "{caught_up}"
    );
    assert!(
        projection(&caught_up, "kpi_ingestion_projection_batches_total") >= 1.0,
        "{caught_up}"
    );
    ingestion.stop().await?;
    catalog.stop().await?;
    Ok(())
}
