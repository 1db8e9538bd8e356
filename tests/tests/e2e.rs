//! End to end across the services, with the real binaries as processes:
//!
//! - one request that crosses services is one trace: a `GetScorecard` that
//!   misses the cache yields spans from scoring, indicator-catalog and
//!   data-ingestion under one trace id, each parent present, and JSON log
//!   lines that carry the trace id;
//! - the metrics endpoints count requests by code, ingested events by
//!   outcome, and kpi-cache hits, misses and errors;
//! - a collector that is down changes nothing for the callers;
//! - [`auth`]: authentication, roles and tenant isolation, a table of
//!   tenant and role against every RPC;
//! - [`faults`]: limits, load shedding, PostgreSQL restarted under 50,000
//!   events, SIGKILL and SIGTERM under load;
//! - [`operator_cli`]: `kpictl` as a user drives it, import → scorecard →
//!   explain → report;
//! - [`tls`]: TLS and mTLS between the services and from kpictl.

mod auth;
mod faults;
mod operator_cli;
mod support;
mod tls;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use kpi_cache::{Cache, CacheConfig, CacheKey};
use kpi_proto::catalog::catalog_service_client::CatalogServiceClient;
use kpi_proto::catalog::{GetIndicatorRequest, InstallStarterKitRequest};
use kpi_proto::common::{Period, PeriodKind, Subject, SubjectKind};
use kpi_proto::ingestion as pb;
use kpi_proto::ingestion::event::Payload;
use kpi_proto::ingestion::ingestion_service_client::IngestionServiceClient;
use kpi_proto::scoring::GetScorecardRequest;
use kpi_proto::scoring::scoring_service_client::ScoringServiceClient;
use kpi_runtime::{ServiceKind, Settings};
use support::{
    Binary, CollectedSpan, OtlpReceiver, SPAN_KIND_CLIENT, SPAN_KIND_SERVER, ServiceProcess,
    sample, scrape,
};

/// A freshly created chat ticket, accepted by ingestion.
fn ticket_created(event_id: &str) -> pb::Event {
    pb::Event {
        event_id: event_id.to_owned(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: 1_791_190_800, // 2026-10-05T09:00:00Z
            nanos: 0,
        }),
        payload: Some(Payload::Ticket(pb::TicketEvent {
            ticket_id: "T-1".to_owned(),
            r#type: pb::TicketEventType::Created as i32,
            channel: pb::Channel::Chat as i32,
            category: "billing".to_owned(),
            customer_id: "c1".to_owned(),
            ..Default::default()
        })),
    }
}

/// A CSAT of 7 (out of 1–5): rejected.
fn bad_survey(event_id: &str) -> pb::Event {
    pb::Event {
        event_id: event_id.to_owned(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: 1_791_190_900,
            nanos: 0,
        }),
        payload: Some(Payload::Survey(pb::SurveyResponse {
            response_id: "R-1".to_owned(),
            kind: pb::SurveyKind::Csat as i32,
            score: 7.0,
            ticket_id: "T-1".to_owned(),
            ..Default::default()
        })),
    }
}

/// indicator-catalog, then data-ingestion calling it; both exporting spans
/// to `otlp` if given.
async fn spawn_catalog_and_ingestion(
    otlp: Option<&OtlpReceiver>,
) -> anyhow::Result<(ServiceProcess, ServiceProcess)> {
    let catalog = ServiceProcess::spawn(Binary::Catalog, otlp, &[]).await?;
    let ingestion = ServiceProcess::spawn(
        Binary::Ingestion,
        otlp,
        &[
            ("KPI_CATALOG_URL", catalog.url()),
            // The calendar fetch logs at debug, inside the request's span.
            ("KPI_LOG", "info,data_ingestion=debug".to_owned()),
        ],
    )
    .await?;
    Ok((catalog, ingestion))
}

async fn ingest(url: String, events: Vec<pb::Event>) -> anyhow::Result<pb::IngestEventsResponse> {
    let mut client = IngestionServiceClient::connect(url).await?;
    let response = client
        .ingest_events(pb::IngestEventsRequest {
            parent: "tenants/acme".to_owned(),
            events,
        })
        .await?;
    Ok(response.into_inner())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The span named `name` exported by `service` with `kind`.
fn find<'a>(spans: &'a [CollectedSpan], service: &str, name: &str, kind: i32) -> &'a CollectedSpan {
    let found = spans
        .iter()
        .find(|s| s.service == service && s.name == name && s.kind == kind);
    match found {
        Some(span) => span,
        None => panic!("no {kind} span {name} from {service} among {spans:#?}"),
    }
}

/// The span named `name` exported by `service` with `kind`, in the trace
/// of `member`.
fn find_in_trace<'a>(
    spans: &'a [CollectedSpan],
    member: &CollectedSpan,
    service: &str,
    name: &str,
    kind: i32,
) -> &'a CollectedSpan {
    let found = spans.iter().find(|s| {
        s.trace_id == member.trace_id && s.service == service && s.name == name && s.kind == kind
    });
    match found {
        Some(span) => span,
        None => panic!("no {kind} span {name} from {service} in the trace of {member:?}"),
    }
}

/// The client span `server` hangs off: the same RPC, exported by `service`.
fn parent_client<'a>(
    spans: &'a [CollectedSpan],
    server: &CollectedSpan,
    service: &str,
) -> &'a CollectedSpan {
    let found = spans.iter().find(|s| {
        s.span_id == server.parent_span_id
            && s.service == service
            && s.name == server.name
            && s.kind == SPAN_KIND_CLIENT
    });
    match found {
        Some(span) => span,
        None => panic!("{server:?} does not hang off a {service} client span of its RPC"),
    }
}

/// A team and an agent of it, as the roster knows them.
fn roster() -> Vec<pb::Event> {
    let at = Some(prost_types::Timestamp {
        seconds: 1_767_225_600, // 2026-01-01T00:00:00Z
        nanos: 0,
    });
    vec![
        pb::Event {
            event_id: "r-team".to_owned(),
            occurred_at: at,
            payload: Some(Payload::Team(pb::TeamUpsert {
                team_id: "ecom".to_owned(),
                display_name: "E-commerce".to_owned(),
                ..Default::default()
            })),
        },
        pb::Event {
            event_id: "r-ann".to_owned(),
            occurred_at: at,
            payload: Some(Payload::Agent(pb::AgentUpsert {
                agent_id: "ann".to_owned(),
                display_name: "Ann".to_owned(),
                team_id: "ecom".to_owned(),
                role: "tier1".to_owned(),
                hired_on: "2024-03-01".to_owned(),
                active: true,
            })),
        },
    ]
}

/// Follows parent links from `span` up to `root`; every parent must have
/// been exported in the same trace.
fn assert_descends(spans: &[CollectedSpan], span: &CollectedSpan, root: &CollectedSpan) {
    assert_eq!(hex(&span.trace_id), hex(&root.trace_id), "{span:?}");
    let mut cursor = span;
    while cursor.span_id != root.span_id {
        cursor = spans
            .iter()
            .find(|s| s.span_id == cursor.parent_span_id && s.trace_id == root.trace_id)
            .unwrap_or_else(|| panic!("the parent of {cursor:?} was not exported"));
    }
}

/// Ann's scorecard of `tenant` for October 2026, under the template that
/// applies to her (shared by the modules below).
fn ann_in_october(tenant: &str) -> GetScorecardRequest {
    GetScorecardRequest {
        parent: format!("tenants/{tenant}"),
        subject: Some(Subject {
            kind: SubjectKind::Agent as i32,
            id: "ann".to_owned(),
        }),
        period: Some(Period {
            kind: PeriodKind::Month as i32,
            date: "2026-10-01".to_owned(),
            end_date: String::new(),
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cache_missing_scorecard_is_one_trace_across_the_three_services() -> anyhow::Result<()>
{
    let otlp = OtlpReceiver::start().await?;
    let (catalog, ingestion) = spawn_catalog_and_ingestion(Some(&otlp)).await?;
    let scoring = ServiceProcess::spawn(
        Binary::Scoring,
        Some(&otlp),
        &[
            ("KPI_CATALOG_URL", catalog.url()),
            ("KPI_INGESTION_URL", ingestion.url()),
            // The cache miss logs at debug, inside the request's span.
            ("KPI_LOG", "info,scoring=debug".to_owned()),
        ],
    )
    .await?;
    CatalogServiceClient::connect(catalog.url())
        .await?
        .install_starter_kit(InstallStarterKitRequest {
            parent: "tenants/acme".to_owned(),
            time_zone: String::new(),
        })
        .await?;
    let mut events = roster();
    events.push(ticket_created("e-1"));
    let answer = ingest(ingestion.url(), events).await?;
    assert_eq!(answer.accepted, 3, "{answer:?}");

    // The first request for this card misses the (in-process) cache.
    let card = ScoringServiceClient::connect(scoring.url())
        .await?
        .get_scorecard(ann_in_october("acme"))
        .await?
        .into_inner();
    assert!(card.scorecard.is_some(), "{card:?}");
    // The same card again is served from the cache; scoring's scrape endpoint
    // counts both the miss and the hit.
    let again = ScoringServiceClient::connect(scoring.url())
        .await?
        .get_scorecard(ann_in_october("acme"))
        .await?
        .into_inner();
    assert_eq!(again.scorecard, card.scorecard);
    let metrics = scrape(scoring.metrics_addr).await?;
    assert!(
        sample(&metrics, "kpi_cache_misses_total", &[]) >= 1.0,
        "{metrics}"
    );
    assert!(
        sample(&metrics, "kpi_cache_hits_total", &[]) >= 1.0,
        "{metrics}"
    );
    assert_eq!(requests(&metrics, "GetScorecard", "OK"), 2.0, "{metrics}");

    // A clean stop flushes each process's queued spans to the receiver.
    let scoring_logs = scoring.stop().await?;
    ingestion.stop().await?;
    catalog.stop().await?;
    let spans = otlp.spans();

    // Both GetScorecard calls resolve their template, in traces of their
    // own, and spans arrive in any order: the miss is the trace in which
    // data-ingestion answered QueryMeasures, and every span is picked from it.
    let queried = find(
        &spans,
        "data-ingestion",
        "kpi.ingestion.v1.IngestionService/QueryMeasures",
        SPAN_KIND_SERVER,
    );
    let root = find_in_trace(
        &spans,
        queried,
        "scoring",
        "kpi.scoring.v1.ScoringService/GetScorecard",
        SPAN_KIND_SERVER,
    );
    // The test sent no trace context: the trace starts at scoring.
    assert!(root.parent_span_id.is_empty(), "{root:?}");
    assert_eq!(root.trace_id.len(), 16);
    let resolved = find_in_trace(
        &spans,
        root,
        "indicator-catalog",
        "kpi.catalog.v1.CatalogService/ResolveTemplate",
        SPAN_KIND_SERVER,
    );
    // Each service's server span hangs off scoring's client span for it.
    let resolve_call = parent_client(&spans, resolved, "scoring");
    let query_call = parent_client(&spans, queried, "scoring");
    for span in [resolve_call, resolved, query_call, queried] {
        assert_descends(&spans, span, root);
    }

    // The JSON log lines written inside the request carry its trace id.
    let trace_id = hex(&root.trace_id);
    let traced: Vec<_> = scoring_logs
        .iter()
        .filter(|l| l["trace_id"] == trace_id.as_str())
        .collect();
    assert!(
        !traced.is_empty(),
        "no log line of the request: {scoring_logs:#?}"
    );
    for line in traced {
        assert_eq!(line["span_id"].as_str().map(str::len), Some(16), "{line}");
    }
    Ok(())
}

/// Calls of `method` answered with `code`, in a scrape.
fn requests(metrics: &str, method: &str, code: &str) -> f64 {
    sample(
        metrics,
        "kpi_rpc_server_requests_total",
        &[("rpc_method", method), ("rpc_grpc_status_code", code)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoints_count_requests_events_and_errors() -> anyhow::Result<()> {
    // No collector at all: the services run without exporting spans.
    let (catalog, ingestion) = spawn_catalog_and_ingestion(None).await?;
    let before = scrape(ingestion.metrics_addr).await?;
    let rpc_ok = [
        ("rpc_service", "kpi.ingestion.v1.IngestionService"),
        ("rpc_method", "IngestEvents"),
        ("rpc_grpc_status_code", "OK"),
    ];
    assert_eq!(
        sample(&before, "kpi_rpc_server_requests_total", &rpc_ok),
        0.0
    );

    let events = vec![ticket_created("e-1"), bad_survey("e-2")];
    ingest(ingestion.url(), events.clone()).await?;
    ingest(ingestion.url(), events).await?;

    let after = scrape(ingestion.metrics_addr).await?;
    assert_eq!(
        sample(&after, "kpi_rpc_server_requests_total", &rpc_ok),
        2.0,
        "{after}"
    );
    let latency = [
        ("rpc_service", "kpi.ingestion.v1.IngestionService"),
        ("rpc_method", "IngestEvents"),
    ];
    assert_eq!(
        sample(&after, "kpi_rpc_server_duration_seconds_count", &latency),
        2.0
    );
    let events = |outcome| {
        sample(
            &after,
            "kpi_ingestion_events_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!(
        (events("accepted"), events("duplicate"), events("rejected")),
        (1.0, 1.0, 2.0),
        "{after}"
    );

    // An error is counted under its code.
    let mut client = CatalogServiceClient::connect(catalog.url()).await?;
    let missing = client
        .get_indicator(GetIndicatorRequest {
            name: "tenants/acme/indicators/nope".to_owned(),
            ..Default::default()
        })
        .await;
    assert_eq!(missing.err().map(|s| s.code()), Some(tonic::Code::NotFound));
    let catalog_metrics = scrape(catalog.metrics_addr).await?;
    assert_eq!(
        requests(&catalog_metrics, "GetIndicator", "NOT_FOUND"),
        1.0,
        "{catalog_metrics}"
    );
    // A read projects the events into facts, which needs the calendar:
    // ingestion fetched it once, then used its cached copy.
    IngestionServiceClient::connect(ingestion.url())
        .await?
        .list_agents(pb::ListAgentsRequest {
            parent: "tenants/acme".to_owned(),
            ..Default::default()
        })
        .await?;
    let catalog_metrics = scrape(catalog.metrics_addr).await?;
    assert_eq!(
        requests(&catalog_metrics, "GetCalendar", "OK")
            + requests(&catalog_metrics, "GetCalendar", "NOT_FOUND"),
        1.0
    );
    drop(client);
    ingestion.stop().await?;
    catalog.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_serve_and_stop_cleanly_with_the_collector_down() -> anyhow::Result<()> {
    // A collector address that refuses connections.
    let endpoint = format!("http://127.0.0.1:{}", closed_port()?);
    let down = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)];
    let catalog = ServiceProcess::spawn(Binary::Catalog, None, &down).await?;
    let mut env = down.to_vec();
    env.push(("KPI_CATALOG_URL", catalog.url()));
    let ingestion = ServiceProcess::spawn(Binary::Ingestion, None, &env).await?;

    for round in 0..3 {
        let answer = ingest(ingestion.url(), vec![ticket_created("e-1")]).await?;
        let (accepted, duplicates) = if round == 0 { (1, 0) } else { (0, 1) };
        assert_eq!((answer.accepted, answer.duplicates), (accepted, duplicates));
    }
    // Both exit 0 although their final flush cannot reach the collector.
    ingestion.stop().await?;
    catalog.stop().await?;
    Ok(())
}

/// A local port with nothing listening.
fn closed_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_hits_misses_and_errors_reach_the_scrape_endpoint() -> anyhow::Result<()> {
    // The cache counts into the global meter provider of its process, as in
    // scoring; here that process is this test's.
    let mut settings = Settings::defaults(ServiceKind::Scoring);
    settings.metrics_addr = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    settings.log_filter = "warn".to_owned();
    let telemetry = kpi_runtime::telemetry::init(&settings);
    let Some(metrics_addr) = telemetry.metrics_addr() else {
        panic!("no metrics endpoint: {telemetry:?}");
    };

    let memory = Cache::new(CacheConfig::default())?;
    let key = CacheKey::new("acme", "scorecard", ["agent-7", "2026-10"]);
    let compute = || async { Ok::<_, String>(b"card".to_vec()) };
    memory
        .get_or_compute(&key, compute)
        .await
        .map_err(anyhow::Error::msg)?; // miss
    memory
        .get_or_compute(&key, compute)
        .await
        .map_err(anyhow::Error::msg)?; // hit

    // Redis that is not there: a failed lookup is an error and a miss.
    let broken = Cache::new(CacheConfig {
        redis_url: Some(format!("redis://127.0.0.1:{}", closed_port()?)),
        op_timeout: Duration::from_millis(500),
        ..CacheConfig::default()
    })?;
    assert_eq!(broken.get(&key).await, None);

    let text = scrape(metrics_addr).await?;
    assert_eq!(sample(&text, "kpi_cache_hits_total", &[]), 1.0, "{text}");
    assert_eq!(sample(&text, "kpi_cache_misses_total", &[]), 2.0, "{text}");
    assert!(
        sample(&text, "kpi_cache_errors_total", &[]) >= 1.0,
        "{text}"
    );
    telemetry.shutdown();
    Ok(())
}
