//! data-ingestion against real servers on ephemeral ports (with a real
//! indicator-catalog for calendars), on SQLite and on PostgreSQL: every
//! scenario runs on both. Aggregates are checked against hand-computed values.

use std::collections::BTreeMap;

use kpi_proto::catalog as cat;
use kpi_proto::catalog::catalog_service_client::CatalogServiceClient;
use kpi_proto::common as cpb;
use kpi_proto::ingestion as pb;
use kpi_proto::ingestion::ingestion_service_client::IngestionServiceClient;
use kpi_proto::ingestion::{TicketEventType as T, event::Payload};
use kpi_runtime::ServiceKind;
use kpi_testkit::{DbKind, RunningServer, TestDb};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

type Client = IngestionServiceClient<Channel>;

struct Harness {
    client: Client,
    catalog: CatalogServiceClient<Channel>,
    servers: Vec<RunningServer>,
    _db: TestDb,
}

impl Harness {
    async fn stop(self) {
        for s in self.servers {
            s.stop().await.unwrap();
        }
    }
}

async fn start(kind: DbKind) -> Harness {
    let db = TestDb::new(kind).await.unwrap();
    let catalog_app =
        indicator_catalog::App::build(&kpi_testkit::settings(ServiceKind::Catalog, &db.url))
            .await
            .unwrap();
    let catalog_addr = catalog_app.local_addr().unwrap();
    let catalog_server = RunningServer::spawn(catalog_addr, |s| catalog_app.run_until_stopped(s));
    let mut settings = kpi_testkit::settings(ServiceKind::Ingestion, &db.url);
    settings.catalog_url = catalog_server.endpoint();
    let app = data_ingestion::App::build(&settings).await.unwrap();
    let addr = app.local_addr().unwrap();
    let server = RunningServer::spawn(addr, |s| app.run_until_stopped(s));
    let client = IngestionServiceClient::connect(server.endpoint())
        .await
        .unwrap();
    let catalog = CatalogServiceClient::connect(catalog_server.endpoint())
        .await
        .unwrap();
    Harness {
        client,
        catalog,
        servers: vec![server, catalog_server],
        _db: db,
    }
}

macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(kpi_testkit::DbKind::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(kpi_testkit::DbKind::Postgres).await
            }
        }
    )*};
}

on_both_databases!(
    fcr_with_3_and_7_day_windows_matches_hand_computed_values,
    fcr_gaps_follow_tickets_folded_later,
    business_hours_across_a_weekend,
    every_fact_type_is_ingested_and_aggregated,
    a_mixed_batch_keeps_the_good_events_and_names_the_bad_fields,
    replays_and_concurrent_identical_batches_count_once,
    out_of_order_arrival_gives_the_same_facts,
    roster_changes_move_facts_between_teams,
    streams_answer_each_chunk_and_notices_follow_writes,
    data_quality_counts_outcomes_orphans_and_suspicious_facts,
    intake_goes_on_while_the_catalog_is_away,
);

fn ts(s: &str) -> prost_types::Timestamp {
    let t = chrono::DateTime::parse_from_rfc3339(s).unwrap();
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

fn event(id: &str, at: &str, payload: Payload) -> pb::Event {
    pb::Event {
        event_id: id.into(),
        occurred_at: Some(ts(at)),
        payload: Some(payload),
    }
}

fn ticket(id: &str, at: &str, ticket_id: &str, ty: T, agent: &str) -> pb::Event {
    let mut t = pb::TicketEvent {
        ticket_id: ticket_id.into(),
        r#type: ty as i32,
        agent_id: agent.into(),
        ..Default::default()
    };
    if ty == T::Created {
        t.channel = pb::Channel::Chat as i32;
        t.category = "billing".into();
        t.customer_id = "c1".into();
    }
    event(id, at, Payload::Ticket(t))
}

fn created(id: &str, at: &str, ticket_id: &str, customer: &str) -> pb::Event {
    let t = pb::TicketEvent {
        ticket_id: ticket_id.into(),
        r#type: T::Created as i32,
        channel: pb::Channel::Chat as i32,
        category: "billing".into(),
        customer_id: customer.into(),
        ..Default::default()
    };
    event(id, at, Payload::Ticket(t))
}

async fn ingest(c: &mut Client, tenant: &str, events: Vec<pb::Event>) -> pb::IngestEventsResponse {
    c.ingest_events(pb::IngestEventsRequest {
        parent: format!("tenants/{tenant}"),
        events,
    })
    .await
    .unwrap()
    .into_inner()
}

fn count(filter: &str, time_field: &str) -> cpb::Measure {
    cpb::Measure {
        fact_type: cpb::FactType::Ticket as i32,
        aggregation: cpb::Aggregation::Count as i32,
        filter: (!filter.is_empty()).then(|| cpb::Filter {
            expression: filter.into(),
            condition: None,
        }),
        time_field: time_field.into(),
        ..Default::default()
    }
}

fn query(id: &str, measure: cpb::Measure) -> pb::MeasureQuery {
    pb::MeasureQuery {
        id: id.into(),
        measure: Some(measure),
        ..Default::default()
    }
}

/// measure id → subject → (value, count)
type Values = BTreeMap<String, BTreeMap<String, (Option<f64>, i64)>>;

async fn measures(
    c: &mut Client,
    tenant: &str,
    group_by: pb::GroupBy,
    start: &str,
    end: &str,
    measures: Vec<pb::MeasureQuery>,
) -> Values {
    let response = c
        .query_measures(pb::QueryMeasuresRequest {
            parent: format!("tenants/{tenant}"),
            start_time: Some(ts(start)),
            end_time: Some(ts(end)),
            group_by: group_by as i32,
            subject_ids: vec![],
            measures,
        })
        .await
        .unwrap()
        .into_inner();
    response
        .results
        .into_iter()
        .map(|r| {
            (
                r.id,
                r.values
                    .into_iter()
                    .map(|v| (v.subject_id, (v.value, v.count)))
                    .collect(),
            )
        })
        .collect()
}

const OCT: (&str, &str) = ("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z");

/// Customer c1 opens T1 (resolved Mon 10:00) and T2 four days later (a gap
/// of 4 d 2 h = 352,800 s); T2 is reopened 20 h after its resolution. c2's
/// T3 is resolved once and never comes back. T4 stays open.
fn fcr_events() -> Vec<pb::Event> {
    vec![
        created("e1", "2026-10-05T09:00:00Z", "T1", "c1"),
        ticket("e2", "2026-10-05T09:10:00Z", "T1", T::FirstResponse, "a1"),
        ticket("e3", "2026-10-05T10:00:00Z", "T1", T::Resolved, "a1"),
        created("e4", "2026-10-09T12:00:00Z", "T2", "c1"),
        ticket("e5", "2026-10-09T12:30:00Z", "T2", T::Assigned, "a1"),
        ticket("e6", "2026-10-09T13:00:00Z", "T2", T::Resolved, "a1"),
        ticket("e7", "2026-10-10T09:00:00Z", "T2", T::Reopened, "a1"),
        ticket("e8", "2026-10-10T10:00:00Z", "T2", T::Resolved, "a1"),
        created("e9", "2026-10-06T09:00:00Z", "T3", "c2"),
        ticket("e10", "2026-10-06T09:05:00Z", "T3", T::Assigned, "a2"),
        ticket("e11", "2026-10-06T11:00:00Z", "T3", T::Resolved, "a2"),
        created("e12", "2026-10-07T09:00:00Z", "T4", "c3"),
    ]
}

async fn fcr_with_3_and_7_day_windows_matches_hand_computed_values(kind: DbKind) {
    let mut h = start(kind).await;
    let r = ingest(&mut h.client, "acme", fcr_events()).await;
    assert_eq!((r.accepted, r.duplicates, r.rejected), (12, 0, 0), "{r:?}");
    let fcr = |w: u32| {
        format!("resolved && !(first_reopen_seconds <= {w}) && !(next_contact_gap_seconds <= {w})")
    };
    let v = measures(
        &mut h.client,
        "acme",
        pb::GroupBy::Agent,
        OCT.0,
        OCT.1,
        vec![
            query("fcr3", count(&fcr(259_200), "first_resolved_at")),
            query("fcr7", count(&fcr(604_800), "first_resolved_at")),
            query("resolved", count("resolved", "first_resolved_at")),
        ],
    )
    .await;
    // a1: T1 passes at 3 days (next contact after 4 d 2 h) but not at 7; T2 was reopened.
    assert_eq!(v["fcr3"]["a1"], (Some(1.0), 1));
    assert!(!v["fcr7"].contains_key("a1"), "{v:?}");
    assert_eq!(v["resolved"]["a1"], (Some(2.0), 2));
    // a2: T3 passes both.
    assert_eq!(v["fcr3"]["a2"], (Some(1.0), 1));
    assert_eq!(v["fcr7"]["a2"], (Some(1.0), 1));
    assert_eq!(v["resolved"]["a2"], (Some(1.0), 1));

    // The facts behind the number: which of a1's tickets failed FCR (7 days).
    let failed = h
        .client
        .list_facts(pb::ListFactsRequest {
            parent: "tenants/acme".into(),
            fact_type: cpb::FactType::Ticket as i32,
            start_time: Some(ts(OCT.0)),
            end_time: Some(ts(OCT.1)),
            time_field: "first_resolved_at".into(),
            subject: Some(cpb::Subject {
                kind: cpb::SubjectKind::Agent as i32,
                id: "a1".into(),
            }),
            filter: Some(cpb::Filter {
                expression: format!("resolved && !({})", fcr(604_800)),
                condition: None,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .facts;
    let ids: Vec<String> = failed
        .iter()
        .map(|f| string_field(f, "ticket_id"))
        .collect();
    assert_eq!(ids, vec!["T1", "T2"]);
    let t1 = &failed[0];
    assert_eq!(
        number_field(t1, "next_contact_gap_seconds"),
        Some(352_800.0)
    );
    assert_eq!(
        number_field(&failed[1], "first_reopen_seconds"),
        Some(72_000.0)
    );
    assert_eq!(number_field(&failed[1], "reopen_count"), Some(1.0));
    h.stop().await;
}

/// The gap of every ticket of the tenant, by ticket id.
async fn next_contact_gaps(c: &mut Client, tenant: &str) -> BTreeMap<String, Option<f64>> {
    all_ticket_facts(c, tenant)
        .await
        .iter()
        .map(|f| {
            let gap = number_field(f, "next_contact_gap_seconds");
            (string_field(f, "ticket_id"), gap)
        })
        .collect()
}

/// Each call is folded in its own projection (every read catches up), so a
/// group's tickets folded earlier are read back from the fact table: the
/// gap of an untouched ticket moves when another joins its (customer,
/// category) group, and moves back when that ticket leaves for another.
async fn fcr_gaps_follow_tickets_folded_later(kind: DbKind) {
    let mut h = start(kind).await;
    let c = &mut h.client;
    let mut t5 = created("e5", "2026-10-06T09:00:00Z", "T5", "c1");
    if let Some(Payload::Ticket(t)) = &mut t5.payload {
        t.category = "tech".into();
    }
    ingest(
        c,
        "acme",
        vec![
            created("e1", "2026-10-05T09:00:00Z", "T1", "c1"),
            ticket("e2", "2026-10-05T10:00:00Z", "T1", T::Resolved, "a1"),
            t5,
            ticket("e6", "2026-10-06T10:00:00Z", "T5", T::Resolved, "a1"),
        ],
    )
    .await;
    let gaps = next_contact_gaps(c, "acme").await;
    assert_eq!(gaps["T1"], None);
    assert_eq!(gaps["T5"], None);

    // T2 is first seen by a reply naming c1 and "tech": T5's group.
    let mut reply = ticket("e7", "2026-10-07T09:00:00Z", "T2", T::AgentReply, "a2");
    if let Some(Payload::Ticket(t)) = &mut reply.payload {
        t.customer_id = "c1".into();
        t.category = "tech".into();
    }
    ingest(c, "acme", vec![reply]).await;
    let gaps = next_contact_gaps(c, "acme").await;
    assert_eq!(gaps["T5"], Some(82_800.0), "{gaps:?}"); // 10-06 10:00 → 10-07 09:00
    assert_eq!(gaps["T1"], None);

    // Its creation says "billing": T2 moves to T1's group and leaves T5's.
    ingest(
        c,
        "acme",
        vec![created("e8", "2026-10-07T08:00:00Z", "T2", "c1")],
    )
    .await;
    let gaps = next_contact_gaps(c, "acme").await;
    assert_eq!(gaps["T5"], None, "{gaps:?}");
    assert_eq!(gaps["T1"], Some(165_600.0), "{gaps:?}"); // 10-05 10:00 → 10-07 08:00
    h.stop().await;
}

fn string_field(s: &prost_types::Struct, name: &str) -> String {
    match s.fields.get(name).and_then(|v| v.kind.clone()) {
        Some(prost_types::value::Kind::StringValue(v)) => v,
        other => panic!("{name}: {other:?}"),
    }
}

fn number_field(s: &prost_types::Struct, name: &str) -> Option<f64> {
    match s.fields.get(name).and_then(|v| v.kind.clone()) {
        Some(prost_types::value::Kind::NumberValue(v)) => Some(v),
        _ => None,
    }
}

async fn business_hours_across_a_weekend(kind: DbKind) {
    let mut h = start(kind).await;
    // Monday–Friday 09:00–18:00 in Shanghai (UTC+8).
    let hours = (1..=5)
        .map(|d| cat::WeeklyHours {
            day_of_week: d,
            open: "09:00".into(),
            close: "18:00".into(),
        })
        .collect();
    h.catalog
        .upsert_calendar(cat::UpsertCalendarRequest {
            parent: "tenants/acme".into(),
            calendar: Some(cat::BusinessCalendar {
                key: "default".into(),
                time_zone: "Asia/Shanghai".into(),
                weekly_hours: hours,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    // Created Friday 17:00 Shanghai (09:00Z), answered Monday 09:30 Shanghai (01:30Z):
    // 2 d 16 h 30 min on the clock, 1 h + 30 min of business hours.
    ingest(
        &mut h.client,
        "acme",
        vec![
            created("w1", "2026-10-09T09:00:00Z", "T5", "c9"),
            ticket("w2", "2026-10-12T01:30:00Z", "T5", T::FirstResponse, "a2"),
        ],
    )
    .await;
    let mean = |basis: cpb::TimeBasis| pb::MeasureQuery {
        id: format!("{basis:?}"),
        measure: Some(cpb::Measure {
            fact_type: cpb::FactType::Ticket as i32,
            aggregation: cpb::Aggregation::Mean as i32,
            field: "first_response_seconds".into(),
            ..Default::default()
        }),
        time_basis: basis as i32,
        attribution: cpb::Attribution::FirstResponder as i32,
    };
    let v = measures(
        &mut h.client,
        "acme",
        pb::GroupBy::Agent,
        OCT.0,
        OCT.1,
        vec![
            mean(cpb::TimeBasis::Calendar),
            mean(cpb::TimeBasis::BusinessHours),
        ],
    )
    .await;
    assert_eq!(v["Calendar"]["a2"], (Some(232_200.0), 1));
    assert_eq!(v["BusinessHours"]["a2"], (Some(5_400.0), 1));
    h.stop().await;
}

async fn every_fact_type_is_ingested_and_aggregated(kind: DbKind) {
    let mut h = start(kind).await;
    let at = "2026-10-14T10:00:00Z";
    let events = vec![
        created("t1", "2026-10-14T09:00:00Z", "T1", "c1"),
        ticket("t2", "2026-10-14T09:30:00Z", "T1", T::Resolved, "a1"),
        event(
            "c1",
            "2026-10-14T09:00:00Z",
            Payload::Conversation(pb::ConversationEvent {
                session_id: "S1".into(),
                r#type: pb::ConversationEventType::Started as i32,
                agent_id: "a1".into(),
                channel: pb::Channel::Chat as i32,
                customer_id: "c1".into(),
                ..Default::default()
            }),
        ),
        event(
            "c2",
            "2026-10-14T09:20:00Z",
            Payload::Conversation(pb::ConversationEvent {
                session_id: "S1".into(),
                r#type: pb::ConversationEventType::Ended as i32,
                valid: Some(true),
                first_reply_seconds: Some(12.0),
                handle_seconds: 600,
                ..Default::default()
            }),
        ),
        event(
            "c3",
            "2026-10-14T11:00:00Z",
            Payload::Conversation(pb::ConversationEvent {
                session_id: "S1".into(),
                r#type: pb::ConversationEventType::Converted as i32,
                order_id: "O1".into(),
                order_value: 99.5,
                ..Default::default()
            }),
        ),
        event(
            "s1",
            at,
            Payload::Survey(pb::SurveyResponse {
                response_id: "R1".into(),
                kind: pb::SurveyKind::Csat as i32,
                score: 4.0,
                ticket_id: "T1".into(),
                ..Default::default()
            }),
        ),
        event(
            "s2",
            at,
            Payload::Survey(pb::SurveyResponse {
                response_id: "R2".into(),
                kind: pb::SurveyKind::Nps as i32,
                score: 9.0,
                session_id: "S1".into(),
                agent_id: "a1".into(),
                ..Default::default()
            }),
        ),
        event(
            "q1",
            at,
            Payload::QaReview(pb::QaReview {
                review_id: "Q1".into(),
                agent_id: "a1".into(),
                reviewer_id: "r1".into(),
                ticket_id: "T1".into(),
                score: 85.0,
                items: vec![
                    pb::QaItem {
                        key: "greeting".into(),
                        group: "compliance".into(),
                        passed: true,
                        score: 100.0,
                    },
                    pb::QaItem {
                        key: "disclosure".into(),
                        group: "compliance".into(),
                        passed: false,
                        score: 40.0,
                    },
                ],
                violations: vec![pb::Violation {
                    code: "false_promise".into(),
                    severity: pb::Severity::Major as i32,
                    note: String::new(),
                }],
                ..Default::default()
            }),
        ),
        event(
            "b1",
            at,
            Payload::BadReview(pb::BadReviewEvent {
                review_id: "B1".into(),
                r#type: pb::BadReviewEventType::Received as i32,
                agent_id: "a1".into(),
                order_id: "O1".into(),
            }),
        ),
        event(
            "b2",
            "2026-10-14T12:00:00Z",
            Payload::BadReview(pb::BadReviewEvent {
                review_id: "B1".into(),
                r#type: pb::BadReviewEventType::Intercepted as i32,
                ..Default::default()
            }),
        ),
        event(
            "v1",
            at,
            Payload::FieldVisit(pb::FieldVisit {
                visit_id: "V1".into(),
                ticket_id: "T1".into(),
                agent_id: "a1".into(),
                visit_no: 1,
                reported_at: Some(ts("2026-10-14T06:00:00Z")),
                arrived_at: Some(ts(at)),
                resolved_on_visit: true,
                ..Default::default()
            }),
        ),
        event(
            "a1",
            at,
            Payload::Assessment(pb::Assessment {
                assessment_id: "A1".into(),
                agent_id: "a1".into(),
                kind: "knowledge".into(),
                score: 45.0,
                max_score: 50.0,
            }),
        ),
        event(
            "r1",
            "2026-09-01T00:00:00Z",
            Payload::Agent(pb::AgentUpsert {
                agent_id: "a1".into(),
                display_name: "Ann".into(),
                team_id: "t1".into(),
                role: "tier1".into(),
                hired_on: "2026-08-01".into(),
                active: true,
            }),
        ),
        event(
            "m1",
            "2026-09-01T00:00:00Z",
            Payload::Team(pb::TeamUpsert {
                team_id: "t1".into(),
                display_name: "Team one".into(),
                ..Default::default()
            }),
        ),
    ];
    let r = ingest(&mut h.client, "acme", events).await;
    assert_eq!((r.accepted, r.rejected), (14, 0), "{:?}", r.results);
    let m = |fact: cpb::FactType, agg: cpb::Aggregation, field: &str, filter: &str| cpb::Measure {
        fact_type: fact as i32,
        aggregation: agg as i32,
        field: field.into(),
        filter: (!filter.is_empty()).then(|| cpb::Filter {
            expression: filter.into(),
            condition: None,
        }),
        ..Default::default()
    };
    use cpb::Aggregation as A;
    use cpb::FactType as F;
    let v = measures(
        &mut h.client,
        "acme",
        pb::GroupBy::Agent,
        OCT.0,
        OCT.1,
        vec![
            query("csat", m(F::Survey, A::Mean, "score", r#"kind == "csat""#)),
            query(
                "nps",
                m(F::Survey, A::Count, "", r#"kind == "nps" && score >= 9"#),
            ),
            query(
                "converted",
                m(F::Conversation, A::Count, "", "valid && converted"),
            ),
            query("order_value", m(F::Conversation, A::Sum, "order_value", "")),
            query("qa", m(F::QaReview, A::Mean, "score", "")),
            query(
                "compliance",
                m(F::QaItem, A::Mean, "score", r#"group == "compliance""#),
            ),
            query(
                "major",
                m(F::QaViolation, A::Count, "", r#"severity == "major""#),
            ),
            query("intercepted", m(F::BadReview, A::Count, "", "intercepted")),
            query(
                "visit_hours",
                m(F::FieldVisit, A::Mean, "response_seconds", "visit_no == 1"),
            ),
            query(
                "knowledge",
                m(F::Assessment, A::Mean, "pct", r#"kind == "knowledge""#),
            ),
        ],
    )
    .await;
    // The CSAT names no agent: it is credited to the ticket's resolver.
    assert_eq!(v["csat"]["a1"], (Some(4.0), 1));
    assert_eq!(v["nps"]["a1"].0, Some(1.0));
    assert_eq!(v["converted"]["a1"].0, Some(1.0));
    assert_eq!(v["order_value"]["a1"], (Some(99.5), 1));
    assert_eq!(v["qa"]["a1"], (Some(85.0), 1));
    assert_eq!(v["compliance"]["a1"], (Some(70.0), 2));
    assert_eq!(v["major"]["a1"].0, Some(1.0));
    assert_eq!(v["intercepted"]["a1"].0, Some(1.0));
    assert_eq!(v["visit_hours"]["a1"], (Some(14_400.0), 1));
    assert_eq!(v["knowledge"]["a1"], (Some(90.0), 1));
    // The roster: a1 is a new hire in t1 on 2026-10-14.
    let agents = h
        .client
        .list_agents(pb::ListAgentsRequest {
            parent: "tenants/acme".into(),
            as_of: Some(ts(at)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .agents;
    assert_eq!(agents.len(), 1);
    assert_eq!(
        (
            agents[0].team_id.as_str(),
            agents[0].role.as_str(),
            agents[0].cohort.as_str()
        ),
        ("t1", "tier1", "new_hire")
    );
    let teams = h
        .client
        .list_teams(pb::ListTeamsRequest {
            parent: "tenants/acme".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .teams;
    assert_eq!(teams[0].display_name, "Team one");
    h.stop().await;
}

async fn a_mixed_batch_keeps_the_good_events_and_names_the_bad_fields(kind: DbKind) {
    let mut h = start(kind).await;
    let bad_score = event(
        "x2",
        "2026-10-14T10:00:00Z",
        Payload::Survey(pb::SurveyResponse {
            response_id: "R1".into(),
            kind: pb::SurveyKind::Csat as i32,
            score: 6.0,
            ticket_id: "T1".into(),
            ..Default::default()
        }),
    );
    let mut no_id = created("", "2026-10-14T09:00:00Z", "T9", "c1");
    no_id.event_id.clear();
    let bad_enum = event(
        "x4",
        "2026-10-14T10:00:00Z",
        Payload::Survey(pb::SurveyResponse {
            response_id: "R2".into(),
            kind: 42,
            score: 3.0,
            ticket_id: "T1".into(),
            ..Default::default()
        }),
    );
    let events = vec![
        created("x1", "2026-10-14T09:00:00Z", "T1", "c1"),
        bad_score,
        ticket("x3", "2026-10-14T09:30:00Z", "T1", T::Resolved, "a1"),
        no_id,
        bad_enum,
    ];
    let r = ingest(&mut h.client, "acme", events).await;
    assert_eq!((r.accepted, r.duplicates, r.rejected), (2, 0, 3));
    let outcome = |i: usize| {
        (
            r.results[i].outcome,
            r.results[i].reason.as_str(),
            r.results[i].field.as_str(),
        )
    };
    assert_eq!(outcome(0).0, pb::EventOutcome::Accepted as i32);
    assert_eq!(
        outcome(1),
        (
            pb::EventOutcome::Rejected as i32,
            "out_of_range",
            "events[1].survey.score"
        )
    );
    assert_eq!(outcome(2).0, pb::EventOutcome::Accepted as i32);
    assert_eq!(
        outcome(3),
        (
            pb::EventOutcome::Rejected as i32,
            "missing_field",
            "events[3].event_id"
        )
    );
    assert_eq!(
        outcome(4),
        (
            pb::EventOutcome::Rejected as i32,
            "invalid_enum",
            "events[4].survey.kind"
        )
    );
    let v = measures(
        &mut h.client,
        "acme",
        pb::GroupBy::Agent,
        OCT.0,
        OCT.1,
        vec![query("resolved", count("resolved", "first_resolved_at"))],
    )
    .await;
    assert_eq!(v["resolved"]["a1"], (Some(1.0), 1));
    // An empty or oversized batch is the caller's mistake, not an event's.
    let err = h
        .client
        .ingest_events(pb::IngestEventsRequest {
            parent: "acme".into(),
            events: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    h.stop().await;
}

async fn replays_and_concurrent_identical_batches_count_once(kind: DbKind) {
    let mut h = start(kind).await;
    let mut batch = vec![created("k0", "2026-10-14T09:00:00Z", "T1", "c1")];
    for i in 1..=40 {
        batch.push(ticket(
            &format!("k{i}"),
            &format!("2026-10-14T10:{:02}:00Z", i),
            "T1",
            T::AgentReply,
            "a1",
        ));
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut c = h.client.clone();
        let batch = batch.clone();
        tasks.push(tokio::spawn(
            async move { ingest(&mut c, "acme", batch).await },
        ));
    }
    let mut accepted = 0;
    let mut duplicates = 0;
    for t in tasks {
        let r = t.await.unwrap();
        accepted += r.accepted;
        duplicates += r.duplicates;
    }
    assert_eq!((accepted, duplicates), (41, 3 * 41));
    let version = h
        .client
        .get_data_version(pb::GetDataVersionRequest {
            parent: "tenants/acme".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .data_version;
    // A replay afterwards is all duplicates and changes nothing, not even the version.
    let r = ingest(&mut h.client, "acme", batch).await;
    assert_eq!((r.accepted, r.duplicates), (0, 41));
    assert_eq!(r.data_version, version);
    let replies = pb::MeasureQuery {
        id: "replies".into(),
        measure: Some(cpb::Measure {
            fact_type: cpb::FactType::Ticket as i32,
            aggregation: cpb::Aggregation::Sum as i32,
            field: "agent_reply_count".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let v = measures(
        &mut h.client,
        "acme",
        pb::GroupBy::Tenant,
        OCT.0,
        OCT.1,
        vec![replies],
    )
    .await;
    assert_eq!(v["replies"][""], (Some(40.0), 1));
    h.stop().await;
}

/// A realistic lifecycle for `n` tickets, in time order.
fn lifecycles(n: usize) -> Vec<pb::Event> {
    let mut out = Vec::new();
    for i in 0..n {
        let tid = format!("T{i}");
        let day = 5 + (i % 20);
        let at = |h: u32, m: u32| format!("2026-10-{day:02}T{h:02}:{m:02}:00Z");
        let agent = format!("a{}", i % 3);
        out.push(created(
            &format!("{tid}-c"),
            &at(9, (i % 50) as u32),
            &tid,
            &format!("c{}", i % 4),
        ));
        out.push(ticket(
            &format!("{tid}-a"),
            &at(9, 55),
            &tid,
            T::Assigned,
            &agent,
        ));
        out.push(ticket(
            &format!("{tid}-f"),
            &at(10, (i % 30) as u32),
            &tid,
            T::FirstResponse,
            &agent,
        ));
        out.push(ticket(
            &format!("{tid}-r"),
            &at(12, 0),
            &tid,
            T::Resolved,
            &agent,
        ));
        if i % 3 == 0 {
            out.push(ticket(
                &format!("{tid}-o"),
                &at(15, 0),
                &tid,
                T::Reopened,
                &agent,
            ));
            out.push(ticket(
                &format!("{tid}-t"),
                &at(15, 30),
                &tid,
                T::Transferred,
                "a9",
            ));
            out.push(ticket(
                &format!("{tid}-r2"),
                &at(17, 0),
                &tid,
                T::Resolved,
                "a9",
            ));
        }
    }
    out
}

async fn all_ticket_facts(c: &mut Client, tenant: &str) -> Vec<prost_types::Struct> {
    c.list_facts(pb::ListFactsRequest {
        parent: format!("tenants/{tenant}"),
        fact_type: cpb::FactType::Ticket as i32,
        start_time: Some(ts(OCT.0)),
        end_time: Some(ts(OCT.1)),
        page_size: 1000,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .facts
}

async fn out_of_order_arrival_gives_the_same_facts(kind: DbKind) {
    let mut h = start(kind).await;
    let events = lifecycles(30);
    ingest(&mut h.client, "inorder", events.clone()).await;
    let mut reversed = events;
    reversed.reverse();
    for chunk in reversed.chunks(7) {
        ingest(&mut h.client, "shuffled", chunk.to_vec()).await;
    }
    let a = all_ticket_facts(&mut h.client, "inorder").await;
    let b = all_ticket_facts(&mut h.client, "shuffled").await;
    assert_eq!(a.len(), 30);
    assert_eq!(a, b);
    // The handling agent at the last resolution of a reopened ticket is the one it was transferred to.
    let t0 = a
        .iter()
        .find(|f| string_field(f, "ticket_id") == "T0")
        .unwrap();
    assert_eq!(string_field(t0, "agent_id"), "a9");
    h.stop().await;
}

async fn roster_changes_move_facts_between_teams(kind: DbKind) {
    let mut h = start(kind).await;
    let roster = |id: &str, at: &str, team: &str| {
        event(
            id,
            at,
            Payload::Agent(pb::AgentUpsert {
                agent_id: "a1".into(),
                team_id: team.into(),
                role: "tier1".into(),
                active: true,
                ..Default::default()
            }),
        )
    };
    let mut events = fcr_events();
    // a1 moves from east to west on 7 October: T1 (resolved 5 Oct) stays east, T2 (9 Oct) goes west.
    events.push(roster("ro2", "2026-10-07T00:00:00Z", "west"));
    ingest(&mut h.client, "acme", events).await;
    // The earlier roster entry arrives late, after the facts.
    ingest(
        &mut h.client,
        "acme",
        vec![roster("ro1", "2026-09-01T00:00:00Z", "east")],
    )
    .await;
    let v = measures(
        &mut h.client,
        "acme",
        pb::GroupBy::Team,
        OCT.0,
        OCT.1,
        vec![query("resolved", count("resolved", "first_resolved_at"))],
    )
    .await;
    assert_eq!(v["resolved"]["east"], (Some(1.0), 1));
    assert_eq!(v["resolved"]["west"], (Some(1.0), 1));
    h.stop().await;
}

async fn streams_answer_each_chunk_and_notices_follow_writes(kind: DbKind) {
    let mut h = start(kind).await;
    let mut notices = h
        .client
        .watch_changes(pb::WatchChangesRequest {
            parent: "tenants/acme".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let events = lifecycles(6);
    let chunks: Vec<pb::StreamEventsRequest> = events
        .chunks(10)
        .enumerate()
        .map(|(i, c)| pb::StreamEventsRequest {
            parent: if i == 0 {
                "tenants/acme".into()
            } else {
                String::new()
            },
            sequence: i as i64 + 1,
            events: c.to_vec(),
        })
        .collect();
    let n = chunks.len();
    let mut answers = h
        .client
        .stream_events(tokio_stream::iter(chunks))
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    let mut accepted = 0;
    while let Some(answer) = answers.next().await {
        let answer = answer.unwrap();
        seen.push(answer.sequence);
        accepted += answer.accepted;
    }
    assert_eq!(seen, (1..=n as i64).collect::<Vec<_>>());
    assert_eq!(accepted as usize, events.len());
    let notice = notices.next().await.unwrap().unwrap();
    assert_eq!(notice.tenant, "acme");
    assert!(notice.data_version >= 1);
    assert!(
        notice.agent_ids.iter().any(|a| a.starts_with('a')),
        "{notice:?}"
    );
    h.stop().await;
}

async fn data_quality_counts_outcomes_orphans_and_suspicious_facts(kind: DbKind) {
    let mut h = start(kind).await;
    let orphan = event(
        "d3",
        "2026-10-14T10:00:00Z",
        Payload::Survey(pb::SurveyResponse {
            response_id: "R9".into(),
            kind: pb::SurveyKind::Csat as i32,
            score: 5.0,
            ticket_id: "NOPE".into(),
            agent_id: "a1".into(),
            ..Default::default()
        }),
    );
    let bad = event(
        "d4",
        "2026-10-14T10:00:00Z",
        Payload::Survey(pb::SurveyResponse {
            response_id: "R8".into(),
            kind: pb::SurveyKind::Nps as i32,
            score: 11.0,
            ticket_id: "T1".into(),
            ..Default::default()
        }),
    );
    // The first response is stamped before the creation.
    let events = vec![
        created("d1", "2026-10-14T09:00:00Z", "T1", "c1"),
        ticket("d2", "2026-10-14T08:00:00Z", "T1", T::FirstResponse, "a1"),
        orphan,
        bad,
    ];
    ingest(&mut h.client, "acme", events.clone()).await;
    ingest(&mut h.client, "acme", events).await;
    let now = chrono::Utc::now();
    let q = h
        .client
        .get_data_quality(pb::GetDataQualityRequest {
            parent: "tenants/acme".into(),
            start_time: Some(prost_types::Timestamp {
                seconds: (now - chrono::Duration::hours(2)).timestamp(),
                nanos: 0,
            }),
            end_time: Some(prost_types::Timestamp {
                seconds: (now + chrono::Duration::hours(2)).timestamp(),
                nanos: 0,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((q.accepted, q.duplicates, q.rejected), (3, 3, 2));
    assert_eq!(
        q.rejected_by_reason,
        vec![pb::ReasonCount {
            reason: "out_of_range".into(),
            count: 2
        }]
    );
    assert_eq!(
        q.orphans,
        vec![pb::ReasonCount {
            reason: "orphan_survey".into(),
            count: 1
        }]
    );
    assert_eq!(
        q.suspicious,
        vec![pb::ReasonCount {
            reason: "first_response_before_creation".into(),
            count: 1
        }]
    );
    assert!(q.examples.iter().any(|e| e.fact_id == "R9"));
    h.stop().await;
}

/// Intake needs only the database: with the catalog (and so the calendar)
/// away, events are still acknowledged; reads answer UNAVAILABLE rather than
/// facts without business hours; once the catalog is back, the facts hold
/// every acknowledged event.
async fn intake_goes_on_while_the_catalog_is_away(kind: DbKind) {
    let db = TestDb::new(kind).await.unwrap();
    let catalog_settings = kpi_testkit::settings(ServiceKind::Catalog, &db.url);
    let catalog_app = indicator_catalog::App::build(&catalog_settings)
        .await
        .unwrap();
    let catalog_addr = catalog_app.local_addr().unwrap();
    let catalog_server = RunningServer::spawn(catalog_addr, |s| catalog_app.run_until_stopped(s));
    let mut settings = kpi_testkit::settings(ServiceKind::Ingestion, &db.url);
    settings.catalog_url = catalog_server.endpoint();
    catalog_server.stop().await.unwrap();

    let app = data_ingestion::App::build(&settings).await.unwrap();
    let addr = app.local_addr().unwrap();
    let server = RunningServer::spawn(addr, |s| app.run_until_stopped(s));
    let mut client = IngestionServiceClient::connect(server.endpoint())
        .await
        .unwrap();
    let events = lifecycles(4);
    let answer = ingest(&mut client, "acme", events.clone()).await;
    assert_eq!(answer.accepted as usize, events.len());
    let away = client
        .list_facts(pb::ListFactsRequest {
            parent: "tenants/acme".into(),
            fact_type: cpb::FactType::Ticket as i32,
            start_time: Some(ts(OCT.0)),
            end_time: Some(ts(OCT.1)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(away.code(), tonic::Code::Unavailable, "{away:?}");

    // The catalog comes back at the same address.
    let mut back_settings = catalog_settings.clone();
    back_settings.listen_addr = catalog_addr;
    let catalog_app = indicator_catalog::App::build(&back_settings).await.unwrap();
    let catalog_server = RunningServer::spawn(catalog_addr, |s| catalog_app.run_until_stopped(s));
    let facts = all_ticket_facts(&mut client, "acme").await;
    assert_eq!(facts.len(), 4);
    let v = measures(
        &mut client,
        "acme",
        pb::GroupBy::Tenant,
        OCT.0,
        OCT.1,
        vec![query("resolved", count("", "first_resolved_at"))],
    )
    .await;
    assert_eq!(v["resolved"].values().next().unwrap().1, 4);
    server.stop().await.unwrap();
    catalog_server.stop().await.unwrap();
}
