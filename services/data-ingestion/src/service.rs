//! The `kpi.ingestion.v1.IngestionService` handlers.
//!
//! Writes: every event is validated on its own (a bad one is rejected with a
//! reason and field path and never blocks the others), the accepted ones are
//! committed in one transaction, and only then is the call answered and a
//! change notice published. Reads: aggregates computed in SQL, drill-down,
//! data quality, data versions, the roster.

use std::collections::BTreeSet;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use futures::Stream;
use kpi_cache::VersionBoard;
use kpi_domain::filter::Expr;
use kpi_domain::measure::Measure;
use kpi_proto::common as cpb;
use kpi_proto::convert::{self, Problems, timestamp};
use kpi_proto::ingestion as pb;
use kpi_proto::ingestion::ingestion_service_server::IngestionService;
use kpi_runtime::auth::Caller;
use kpi_runtime::{names, status};
use kpi_store::DatabaseConnection;
use kpi_store::ingestion::{self as store, Accepted, ChangeSet, IngestWriter, reader};
use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{BroadcastStream, ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use crate::calendars::Calendars;
use crate::convert::event_from;
use crate::projection::Projection;

/// The most events in one call or one stream chunk.
pub const MAX_BATCH: usize = 5_000;
/// The most measures in one query.
const MAX_MEASURES: usize = 100;
/// Most agent ids a ListAgents call may name.
const MAX_AGENT_IDS: usize = 1_000;
/// Chunks answered ahead of a slow reader before reading stops.
const STREAM_WINDOW: usize = 4;
/// Chunks of one stream written at once, each on its own task (so a stream
/// uses every core for validation while other chunks are in the database);
/// answers still go out in order. Bounds a stream's memory with the window.
const STREAM_WRITES_IN_FLIGHT: usize = 4;

/// The ingestion service.
#[derive(Clone)]
pub struct IngestionApi {
    db: DatabaseConnection,
    writer: IngestWriter,
    projection: Arc<Projection>,
    events: EventCounter,
    /// Where scoring learns the tenants' versions, cleared by every write.
    board: Option<Arc<VersionBoard>>,
}

/// `kpi.ingestion.events`: events answered, by outcome (`accepted`,
/// `duplicate`, `rejected`), counted where the answers are built.
#[derive(Clone)]
struct EventCounter(Counter<u64>);

impl EventCounter {
    fn new() -> Self {
        Self(
            kpi_runtime::metrics::meter()
                .u64_counter("kpi.ingestion.events")
                .with_description("events answered, by outcome: accepted, duplicate, rejected")
                .build(),
        )
    }

    fn count(&self, answer: &BatchAnswer) {
        for (outcome, n) in [
            ("accepted", answer.accepted),
            ("duplicate", answer.duplicates),
            ("rejected", answer.rejected),
        ] {
            if n > 0 {
                self.0.add(
                    n.unsigned_abs().into(),
                    &[KeyValue::new("outcome", outcome)],
                );
            }
        }
    }
}

/// The answers for one batch or chunk.
struct BatchAnswer {
    results: Vec<pb::EventResult>,
    accepted: i32,
    duplicates: i32,
    rejected: i32,
    data_version: i64,
}

impl IngestionApi {
    /// The service over a database, with calendars from the catalog,
    /// clearing the tenant's versions on `board` after every write.
    pub fn new(
        db: DatabaseConnection,
        calendars: Calendars,
        board: Option<Arc<VersionBoard>>,
    ) -> Self {
        Self {
            writer: IngestWriter::new(db.clone()),
            projection: Projection::new(db.clone(), calendars),
            db,
            events: EventCounter::new(),
            board,
        }
    }

    /// Change notices: one per projected transaction, after its facts commit.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeSet> {
        self.projection.subscribe()
    }

    /// The projection of events into facts (its background task is started
    /// by the [`crate::App`]).
    pub fn projection(&self) -> &Arc<Projection> {
        &self.projection
    }

    async fn ingest(
        &self,
        tenant: &str,
        events: &[pb::Event],
        path: &str,
    ) -> Result<BatchAnswer, Status> {
        if events.len() > MAX_BATCH {
            return Err(status::invalid_field(
                path,
                format!(
                    "at most {MAX_BATCH} events per call or chunk, got {}",
                    events.len()
                ),
            ));
        }
        let now = Utc::now();
        let mut results: Vec<pb::EventResult> = Vec::with_capacity(events.len());
        let mut accepted = Vec::with_capacity(events.len());
        let mut reasons = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let mut result = pb::EventResult {
                index: i as i32,
                event_id: e.event_id.clone(),
                ..Default::default()
            };
            match event_from(e, path, i, now) {
                Ok(event) => accepted.push(Accepted { index: i, event }),
                Err(rejection) => {
                    result.outcome = pb::EventOutcome::Rejected as i32;
                    result.reason = rejection.reason.as_str().to_string();
                    result.field = rejection.field;
                    result.description = rejection.description;
                    reasons.push(rejection.reason.as_str());
                }
            }
            results.push(result);
        }
        let written = self.writer.write(tenant, &accepted, &reasons, now).await;
        // Before the answer: scoring must not read the old data version from
        // the board once the caller holds the new one. A failed write may
        // still have committed, so the board is cleared then too.
        let changed = written.as_ref().map_or(true, |w| w.fresh > 0);
        if let (Some(board), true) = (&self.board, changed) {
            board.clear(tenant).await;
        }
        let outcome = written?;
        let duplicates: BTreeSet<usize> = outcome.duplicates.iter().copied().collect();
        for a in &accepted {
            results[a.index].outcome = if duplicates.contains(&a.index) {
                pb::EventOutcome::Duplicate
            } else {
                pb::EventOutcome::Accepted
            } as i32;
        }
        let fresh = outcome.fresh;
        if fresh > 0 {
            self.projection.wake();
        }
        let answer = BatchAnswer {
            results,
            accepted: fresh as i32,
            duplicates: duplicates.len() as i32,
            rejected: reasons.len() as i32,
            data_version: outcome.data_version,
        };
        self.events.count(&answer);
        Ok(answer)
    }
}

fn instant(field: &str, t: &Option<prost_types::Timestamp>) -> Result<DateTime<Utc>, Status> {
    let t = t
        .as_ref()
        .ok_or_else(|| status::invalid_field(field, "required"))?;
    u32::try_from(t.nanos)
        .ok()
        .and_then(|n| DateTime::from_timestamp(t.seconds, n))
        .ok_or_else(|| status::invalid_field(field, "not a valid timestamp"))
}

fn window(
    start: &Option<prost_types::Timestamp>,
    end: &Option<prost_types::Timestamp>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), Status> {
    let (s, e) = (instant("start_time", start)?, instant("end_time", end)?);
    if e <= s {
        return Err(status::invalid_field(
            "end_time",
            "must be after start_time",
        ));
    }
    Ok((s, e))
}

fn grouping_from(v: i32) -> Result<store::Grouping, Status> {
    match pb::GroupBy::try_from(v) {
        Ok(pb::GroupBy::Agent) => Ok(store::Grouping::Agent),
        Ok(pb::GroupBy::Team) => Ok(store::Grouping::Team),
        Ok(pb::GroupBy::Tenant) => Ok(store::Grouping::Tenant),
        _ => Err(status::invalid_field(
            "group_by",
            "use GROUP_BY_AGENT, GROUP_BY_TEAM or GROUP_BY_TENANT",
        )),
    }
}

fn invalid(problems: Vec<kpi_domain::FieldViolation>) -> Status {
    status::invalid_argument(
        "invalid request",
        problems.into_iter().map(|v| (v.field, v.description)),
    )
}

/// A measure of a query, validated like the catalog validates it.
fn measure_of(
    q: &pb::MeasureQuery,
    path: &str,
    p: &mut Problems,
) -> Option<(
    Measure,
    kpi_domain::measure::Attribution,
    kpi_domain::measure::TimeBasis,
)> {
    let Some(m) = &q.measure else {
        p.0.push(kpi_domain::FieldViolation::new(
            format!("{path}.measure"),
            "required",
        ));
        return None;
    };
    let attribution = convert::attribution_from(q.attribution, &format!("{path}.attribution"), p);
    let time_basis = convert::time_basis_from(q.time_basis, &format!("{path}.time_basis"), p);
    let mut measure = convert::measure_from(m, &format!("{path}.measure"), p)?;
    measure.normalize();
    let problems = measure.check(time_basis);
    if !problems.is_empty() {
        p.0.extend(
            problems
                .into_iter()
                .map(|v| v.nested(&format!("{path}.measure"))),
        );
        return None;
    }
    Some((measure, attribution, time_basis))
}

fn to_change_notice(c: &ChangeSet) -> pb::WatchChangesResponse {
    pb::WatchChangesResponse {
        tenant: c.tenant.clone(),
        data_version: c.data_version,
        start_time: c.start.map(timestamp),
        end_time: c.end.map(timestamp),
        agent_ids: c.agent_ids.iter().cloned().collect(),
        team_ids: c.team_ids.iter().cloned().collect(),
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl IngestionService for IngestionApi {
    async fn ingest_events(
        &self,
        request: Request<pb::IngestEventsRequest>,
    ) -> Result<Response<pb::IngestEventsResponse>, Status> {
        let req = request.into_inner();
        let tenant = names::parse_parent("parent", &req.parent)?;
        let a = self.ingest(&tenant, &req.events, "events").await?;
        tracing::debug!(
            tenant,
            accepted = a.accepted,
            duplicates = a.duplicates,
            rejected = a.rejected,
            "batch ingested"
        );
        Ok(Response::new(pb::IngestEventsResponse {
            results: a.results,
            accepted: a.accepted,
            duplicates: a.duplicates,
            rejected: a.rejected,
            data_version: a.data_version,
        }))
    }

    type StreamEventsStream = ResponseStream<pb::StreamEventsResponse>;

    async fn stream_events(
        &self,
        request: Request<Streaming<pb::StreamEventsRequest>>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        // Each chunk names its tenant: every one is checked against the caller.
        let caller = Caller::of(&request)?;
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(STREAM_WINDOW);
        let api = self.clone();
        tokio::spawn(async move {
            let mut tenant: Option<String> = None;
            // Each chunk becomes a write, checked in arrival order; writes
            // overlap, their answers keep the order of the chunks.
            let writes = futures::StreamExt::map(inbound, move |chunk| {
                let api = api.clone();
                let checked = chunk.and_then(|chunk| {
                    let t = stream_tenant(&mut tenant, &chunk.parent)?;
                    caller.authorize(&t)?;
                    Ok((t, chunk))
                });
                let write = tokio::spawn(async move {
                    let (tenant, chunk) = checked?;
                    let a = api.ingest(&tenant, &chunk.events, "events").await?;
                    Ok(pb::StreamEventsResponse {
                        sequence: chunk.sequence,
                        results: a.results,
                        accepted: a.accepted,
                        duplicates: a.duplicates,
                        rejected: a.rejected,
                        data_version: a.data_version,
                    })
                });
                async move {
                    write.await.unwrap_or_else(|e| {
                        Err(Status::internal(format!(
                            "a stream chunk's write failed: {e}"
                        )))
                    })
                }
            });
            let mut answers = futures::StreamExt::buffered(writes, STREAM_WRITES_IN_FLIGHT);
            while let Some(answer) = futures::StreamExt::next(&mut answers).await {
                let failed = answer.is_err();
                // A reader that went away ends the stream; an error ends it too.
                if tx.send(answer).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn query_measures(
        &self,
        request: Request<pb::QueryMeasuresRequest>,
    ) -> Result<Response<pb::QueryMeasuresResponse>, Status> {
        let req = request.into_inner();
        let tenant = names::parse_parent("parent", &req.parent)?;
        let (start, end) = window(&req.start_time, &req.end_time)?;
        let grouping = grouping_from(req.group_by)?;
        if req.measures.is_empty() || req.measures.len() > MAX_MEASURES {
            return Err(status::invalid_field(
                "measures",
                format!("give 1 to {MAX_MEASURES} measures"),
            ));
        }
        let mut p = Problems::default();
        let measures: Vec<_> = req
            .measures
            .iter()
            .enumerate()
            .map(|(i, q)| measure_of(q, &format!("measures[{i}]"), &mut p))
            .collect();
        if !p.0.is_empty() {
            return Err(invalid(p.0));
        }
        // The version is read first, then every write it counts is projected:
        // values may be newer than it, never older, so a cache keyed by it
        // can never hold stale numbers.
        let (data_version, watermark) = reader::data_version(&self.db, &tenant).await?;
        self.projection.catch_up(&tenant).await?;
        let measures: Vec<_> = measures.into_iter().flatten().collect();
        let queries: Vec<store::MeasureQuery<'_>> = measures
            .iter()
            .map(|(measure, attribution, time_basis)| store::MeasureQuery {
                tenant: &tenant,
                measure,
                attribution: *attribution,
                time_basis: *time_basis,
                grouping,
                start,
                end,
                subjects: &req.subject_ids,
            })
            .collect();
        let values = store::query_measures(&self.db, &queries)
            .await
            .map_err(query_status)?;
        let results = req
            .measures
            .iter()
            .zip(values)
            .map(|(q, values)| pb::MeasureResult {
                id: q.id.clone(),
                values: values
                    .into_iter()
                    .map(|v| pb::GroupValue {
                        subject_id: v.subject_id,
                        value: v.value,
                        count: v.count,
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(pb::QueryMeasuresResponse {
            results,
            data_version,
            watermark: watermark.map(timestamp),
        }))
    }

    async fn list_facts(
        &self,
        request: Request<pb::ListFactsRequest>,
    ) -> Result<Response<pb::ListFactsResponse>, Status> {
        let req = request.into_inner();
        let tenant = names::parse_parent("parent", &req.parent)?;
        self.projection.catch_up(&tenant).await?;
        let (start, end) = window(&req.start_time, &req.end_time)?;
        let mut p = Problems::default();
        let fact_type = convert::fact_type_from(req.fact_type, "fact_type", &mut p);
        let attribution = convert::attribution_from(req.attribution, "attribution", &mut p);
        let filter_text = convert::filter_from(req.filter.as_ref(), "filter", &mut p);
        let (Some(fact_type), true) = (fact_type, p.0.is_empty()) else {
            return Err(invalid(p.0));
        };
        let filter: Option<Expr> = if filter_text.is_empty() {
            None
        } else {
            let expr = kpi_domain::filter::parse(&filter_text).map_err(|e| {
                status::invalid_field("filter", format!("cannot parse filter: {e}"))
            })?;
            let schema = fact_type.schema();
            let problems = expr
                .check(&|name: &str| schema.field(name).map(kpi_domain::filter::FieldSpec::from));
            if !problems.is_empty() {
                return Err(invalid(
                    problems.into_iter().map(|v| v.nested("filter")).collect(),
                ));
            }
            Some(expr)
        };
        let subject = match &req.subject {
            None => None,
            Some(s) => match cpb::SubjectKind::try_from(s.kind) {
                Ok(cpb::SubjectKind::Agent) => Some((store::Grouping::Agent, s.id.as_str())),
                Ok(cpb::SubjectKind::Team) => Some((store::Grouping::Team, s.id.as_str())),
                Ok(cpb::SubjectKind::Tenant) | Ok(cpb::SubjectKind::Unspecified) => None,
                Err(_) => {
                    return Err(status::invalid_field(
                        "subject.kind",
                        "unknown subject kind",
                    ));
                }
            },
        };
        let size = names::page_size("page_size", req.page_size, 50, 1_000)?;
        let after = names::decode_page_token("page_token", &req.page_token)?;
        let rows = store::list_facts(
            &self.db,
            &store::FactsQuery {
                tenant: &tenant,
                fact_type,
                time_field: &req.time_field,
                start,
                end,
                filter: filter.as_ref(),
                subject,
                attribution,
                time_basis: kpi_domain::measure::TimeBasis::Calendar,
                after_id: (!after.is_empty()).then_some(after.as_str()),
                limit: u64::from(size) + 1,
            },
        )
        .await
        .map_err(query_status)?;
        let id_field = fact_type.schema().id_field;
        let mut facts: Vec<prost_types::Struct> = rows.into_iter().map(json_struct).collect();
        let next_page_token = if facts.len() > size as usize {
            facts.truncate(size as usize);
            facts
                .last()
                .and_then(|f| f.fields.get(id_field))
                .and_then(|v| match &v.kind {
                    Some(prost_types::value::Kind::StringValue(s)) => {
                        Some(names::encode_page_token(s))
                    }
                    _ => None,
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListFactsResponse {
            facts,
            next_page_token,
        }))
    }

    async fn get_data_quality(
        &self,
        request: Request<pb::GetDataQualityRequest>,
    ) -> Result<Response<pb::GetDataQualityResponse>, Status> {
        let req = request.into_inner();
        let tenant = names::parse_parent("parent", &req.parent)?;
        self.projection.catch_up(&tenant).await?;
        let (start, end) = window(&req.start_time, &req.end_time)?;
        let counts = reader::outcome_counts(&self.db, &tenant, start, end).await?;
        let (findings, examples) = reader::findings(&self.db, &tenant, start, end, 100).await?;
        let total = |outcome: &str| {
            counts
                .iter()
                .filter(|c| c.outcome == outcome)
                .map(|c| c.count)
                .sum::<i64>()
        };
        let by_kind = |prefix: &str| {
            findings
                .iter()
                .filter(|(k, _)| k.starts_with(prefix) == (prefix == "orphan_"))
                .map(|(k, n)| pb::ReasonCount {
                    reason: k.clone(),
                    count: *n,
                })
                .collect::<Vec<_>>()
        };
        Ok(Response::new(pb::GetDataQualityResponse {
            accepted: total("accepted"),
            duplicates: total("duplicate"),
            rejected: total("rejected"),
            rejected_by_reason: counts
                .iter()
                .filter(|c| c.outcome == "rejected")
                .map(|c| pb::ReasonCount {
                    reason: c.reason.clone(),
                    count: c.count,
                })
                .collect(),
            orphans: by_kind("orphan_"),
            suspicious: findings
                .iter()
                .filter(|(k, _)| !k.starts_with("orphan_"))
                .map(|(k, n)| pb::ReasonCount {
                    reason: k.clone(),
                    count: *n,
                })
                .collect(),
            examples: examples
                .into_iter()
                .map(|f| pb::FactIssue {
                    kind: f.kind,
                    fact_type: fact_type_named(&f.fact_type) as i32,
                    fact_id: f.fact_id,
                    description: f.description,
                })
                .collect(),
        }))
    }

    async fn get_data_version(
        &self,
        request: Request<pb::GetDataVersionRequest>,
    ) -> Result<Response<pb::GetDataVersionResponse>, Status> {
        let tenant = names::parse_parent("parent", &request.into_inner().parent)?;
        let (data_version, watermark) = reader::data_version(&self.db, &tenant).await?;
        Ok(Response::new(pb::GetDataVersionResponse {
            data_version,
            watermark: watermark.map(timestamp),
        }))
    }

    type WatchChangesStream = ResponseStream<pb::WatchChangesResponse>;

    async fn watch_changes(
        &self,
        request: Request<pb::WatchChangesRequest>,
    ) -> Result<Response<Self::WatchChangesStream>, Status> {
        let parent = request.into_inner().parent;
        let tenant = if parent.is_empty() {
            None
        } else {
            Some(names::parse_parent("parent", &parent)?)
        };
        let stream =
            BroadcastStream::new(self.projection.subscribe()).filter_map(
                move |notice| match notice {
                    Ok(c) if tenant.as_ref().is_none_or(|t| *t == c.tenant) => {
                        Some(Ok(to_change_notice(&c)))
                    }
                    Ok(_) => None,
                    // A watcher too slow to keep up learns that it missed notices.
                    Err(_) => Some(Err(Status::data_loss(
                        "change notices were missed; treat every cached value as stale",
                    ))),
                },
            );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_agents(
        &self,
        request: Request<pb::ListAgentsRequest>,
    ) -> Result<Response<pb::ListAgentsResponse>, Status> {
        let req = request.into_inner();
        let tenant = names::parse_parent("parent", &req.parent)?;
        self.projection.catch_up(&tenant).await?;
        let at = match &req.as_of {
            Some(_) => instant("as_of", &req.as_of)?,
            None => Utc::now(),
        };
        let new_hire_days = if req.new_hire_days <= 0 {
            90
        } else {
            req.new_hire_days as u32
        };
        let size = names::page_size("page_size", req.page_size, 100, 5_000)?;
        if req.agent_ids.len() > MAX_AGENT_IDS {
            return Err(status::invalid_field(
                "agent_ids",
                format!("at most {MAX_AGENT_IDS} agent ids"),
            ));
        }
        let mut after = names::decode_page_token("page_token", &req.page_token)?;
        let teams = if req.team_id.is_empty() {
            None
        } else {
            Some(reader::team_and_descendants(
                &reader::teams(&self.db, &tenant).await?,
                &req.team_id,
            ))
        };
        let mut agents = Vec::new();
        // Filtering happens after the read, so read on until the page is full.
        loop {
            let batch = reader::roster(
                &self.db,
                &tenant,
                at,
                &after,
                &req.agent_ids,
                u64::from(size) * 2 + 1,
            )
            .await?;
            let exhausted = batch.len() as u64 <= u64::from(size) * 2;
            for entry in batch {
                after = entry.agent_id.clone();
                let team_ok = teams.as_ref().is_none_or(|t| t.contains(&entry.team_id));
                if team_ok && (req.show_inactive || entry.active) {
                    agents.push(pb::Agent {
                        cohort: kpi_domain::facts::cohort(
                            entry.hired_on,
                            at.date_naive(),
                            new_hire_days,
                        )
                        .to_string(),
                        agent_id: entry.agent_id,
                        display_name: entry.display_name,
                        team_id: entry.team_id,
                        role: entry.role,
                        hired_on: entry.hired_on.map(|d| d.to_string()).unwrap_or_default(),
                        active: entry.active,
                    });
                }
                if agents.len() > size as usize {
                    break;
                }
            }
            if exhausted || agents.len() > size as usize {
                break;
            }
        }
        let next_page_token = if agents.len() > size as usize {
            agents.truncate(size as usize);
            agents
                .last()
                .map(|a| names::encode_page_token(&a.agent_id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListAgentsResponse {
            agents,
            next_page_token,
        }))
    }

    async fn list_teams(
        &self,
        request: Request<pb::ListTeamsRequest>,
    ) -> Result<Response<pb::ListTeamsResponse>, Status> {
        let req = request.into_inner();
        let tenant = names::parse_parent("parent", &req.parent)?;
        self.projection.catch_up(&tenant).await?;
        let size = names::page_size("page_size", req.page_size, 100, 1_000)? as usize;
        let after = names::decode_page_token("page_token", &req.page_token)?;
        let mut teams: Vec<pb::Team> = reader::teams(&self.db, &tenant)
            .await?
            .into_iter()
            .filter(|t| after.is_empty() || t.team_id > after)
            .take(size + 1)
            .map(|t| pb::Team {
                team_id: t.team_id,
                display_name: t.display_name,
                parent_team_id: t.parent_team_id.unwrap_or_default(),
                supervisor_id: t.supervisor_id.unwrap_or_default(),
            })
            .collect();
        let next_page_token = if teams.len() > size {
            teams.truncate(size);
            teams
                .last()
                .map(|t| names::encode_page_token(&t.team_id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListTeamsResponse {
            teams,
            next_page_token,
        }))
    }
}

/// The tenant of a stream: named on the first chunk, the same on any later one.
fn stream_tenant(current: &mut Option<String>, parent: &str) -> Result<String, Status> {
    match (current.as_ref(), parent.is_empty()) {
        (Some(t), true) => Ok(t.clone()),
        (None, true) => Err(status::invalid_field(
            "parent",
            "the first chunk of a stream names the tenant",
        )),
        (_, false) => {
            let t = names::parse_parent("parent", parent)?;
            if current.as_ref().is_some_and(|c| *c != t) {
                return Err(status::invalid_field(
                    "parent",
                    "a stream carries events of one tenant",
                ));
            }
            *current = Some(t.clone());
            Ok(t)
        }
    }
}

fn query_status(e: store::QueryError) -> Status {
    match e {
        store::QueryError::Invalid(msg) => status::invalid_field("measures", msg),
        store::QueryError::Database(db) => Status::from(kpi_store::StoreError::Database(db)),
    }
}

fn fact_type_named(name: &str) -> cpb::FactType {
    kpi_domain::schema::FactType::ALL
        .into_iter()
        .find(|t| t.as_str() == name)
        .map_or(cpb::FactType::Unspecified, convert::fact_type_to)
}

fn json_value(v: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.into_iter().map(json_value).collect(),
        }),
        serde_json::Value::Object(o) => Kind::StructValue(json_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

fn json_struct(o: serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: o.into_iter().map(|(k, v)| (k, json_value(v))).collect(),
    }
}
