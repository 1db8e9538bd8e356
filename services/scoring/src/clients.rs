//! The outbound gRPC calls of scoring, all in one place: definitions from
//! indicator-catalog, aggregates, roster and facts from data-ingestion.
//!
//! Every call goes through [`Clients::request`], which sets its deadline;
//! the channels are kpi-runtime's traced channels, which open a client span
//! per call and carry the W3C trace context in the metadata, so the catalog's
//! and ingestion's spans join the scorecard request's trace. Channels
//! connect lazily, so scoring starts whether or not its dependencies are up.
//! A dependency that is down, slow or overloaded is `UNAVAILABLE` to the
//! caller; its NOT_FOUND, FAILED_PRECONDITION and INVALID_ARGUMENT answers
//! (an unknown template, no applicable template…) pass through unchanged.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use kpi_domain::calendar::BusinessCalendar;
use kpi_domain::indicator::IndicatorDef;
use kpi_domain::template::TemplateDef;
use kpi_proto::catalog as cat;
use kpi_proto::catalog::catalog_service_client::CatalogServiceClient;
use kpi_proto::convert::{calendar_from, indicator_from, template_from, timestamp};
use kpi_proto::ingestion as ing;
use kpi_proto::ingestion::ingestion_service_client::IngestionServiceClient;
use kpi_runtime::auth::BearerToken;
use kpi_runtime::client::{ClientOptions, TracedChannel};
use kpi_runtime::tls::ClientTls;
use tonic::{Code, Request, Status};

/// Most agents asked for per ListAgents page.
const ROSTER_PAGE: i32 = 5_000;
/// How long a failed dependency is advised to be left alone.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A template version as resolved by the catalog, in domain form.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The template key.
    pub key: String,
    /// The template version.
    pub version: u32,
    /// Its body.
    pub def: TemplateDef,
    /// Every indicator it needs: key → (version, definition).
    pub indicators: BTreeMap<String, (u32, IndicatorDef)>,
    /// The tenant's default business calendar (UTC weekdays when none).
    pub calendar: BusinessCalendar,
    /// A digest of everything above as the catalog sent it: a draft is
    /// edited in place under the same version, so cache keys carry this.
    pub fingerprint: String,
}

/// The tenant's data version and watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataStamp {
    /// Grows with every committed write of the tenant.
    pub version: i64,
    /// The last ingestion time, if anything was ingested.
    pub watermark: Option<DateTime<Utc>>,
}

/// Clients of indicator-catalog and data-ingestion with one deadline.
#[derive(Clone)]
pub struct Clients {
    catalog: CatalogServiceClient<TracedChannel>,
    ingestion: IngestionServiceClient<TracedChannel>,
    deadline: Duration,
}

fn lazy_channel(
    url: &str,
    deadline: Duration,
    tls: &ClientTls,
    bearer: Option<BearerToken>,
) -> Result<TracedChannel, tonic::transport::Error> {
    kpi_runtime::client::connect_with_tls(
        url,
        ClientOptions {
            bearer,
            ..ClientOptions::with_deadline(deadline)
        },
        tls,
    )
}

/// Maps a dependency's failure to what scoring's caller sees.
fn dependency_status(service: &str, status: Status) -> Status {
    match status.code() {
        Code::NotFound | Code::FailedPrecondition | Code::InvalidArgument => status,
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::ResourceExhausted
        | Code::Unknown
        | Code::Aborted => kpi_runtime::status::unavailable(
            format!("{service} is unavailable: {}", status.message()),
            Some(RETRY_AFTER),
        ),
        _ => {
            tracing::error!(service, code = ?status.code(), error = status.message(), "dependency failed");
            Status::internal(format!("{service} failed"))
        }
    }
}

fn catalog_error(status: Status) -> Status {
    dependency_status("indicator-catalog", status)
}

fn ingestion_error(status: Status) -> Status {
    dependency_status("data-ingestion", status)
}

/// The catalog sent something scoring cannot read: a bug, not bad input.
fn bad_definition(what: &str, detail: impl std::fmt::Debug) -> Status {
    tracing::error!(what, detail = ?detail, "indicator-catalog sent an unreadable definition");
    Status::internal(format!("indicator-catalog sent an unreadable {what}"))
}

impl Clients {
    /// Clients of the catalog and ingestion at these URLs; `deadline` bounds
    /// every call, `bearer` (`KPI_SERVICE_TOKEN`) is sent on every call;
    /// `tls` is used for `https://` URLs.
    pub fn new(
        catalog_url: &str,
        ingestion_url: &str,
        deadline: Duration,
        tls: &ClientTls,
        bearer: Option<BearerToken>,
    ) -> Result<Clients, tonic::transport::Error> {
        Ok(Clients {
            catalog: CatalogServiceClient::new(lazy_channel(
                catalog_url,
                deadline,
                tls,
                bearer.clone(),
            )?),
            ingestion: IngestionServiceClient::new(lazy_channel(
                ingestion_url,
                deadline,
                tls,
                bearer,
            )?)
            .max_decoding_message_size(32 * 1024 * 1024),
            deadline,
        })
    }

    /// Every outbound request is made here: the deadline (and, later, the
    /// trace context) is set on it.
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.deadline);
        request
    }

    /// The tenant's default calendar; a tenant without one gets UTC weekdays.
    pub async fn calendar(&self, tenant: &str) -> Result<BusinessCalendar, Status> {
        let request = self.request(cat::GetCalendarRequest {
            name: format!("tenants/{tenant}/calendars/default"),
        });
        match self.catalog.clone().get_calendar(request).await {
            Ok(response) => {
                let pb = response.into_inner().calendar.unwrap_or_default();
                calendar_from(&pb, "calendar").map_err(|v| bad_definition("calendar", v))
            }
            Err(status) if status.code() == Code::NotFound => Ok(BusinessCalendar::utc_default()),
            Err(status) => Err(catalog_error(status)),
        }
    }

    /// The tenant's catalog revision: part of every answer's cache key.
    pub async fn catalog_revision(&self, tenant: &str) -> Result<i64, Status> {
        let request = self.request(cat::GetCatalogRevisionRequest {
            parent: format!("tenants/{tenant}"),
        });
        Ok(self
            .catalog
            .clone()
            .get_catalog_revision(request)
            .await
            .map_err(catalog_error)?
            .into_inner()
            .revision)
    }

    /// The template version for a subject: `template` (empty: the applicable
    /// one for role, team and cohort), `version` (0: effective on `date`).
    pub async fn resolve(
        &self,
        tenant: &str,
        template: &str,
        version: u32,
        (role, team, cohort): (&str, &str, &str),
        date: NaiveDate,
    ) -> Result<Resolved, Status> {
        let request = self.request(cat::ResolveTemplateRequest {
            parent: format!("tenants/{tenant}"),
            template: template.to_string(),
            version: i32::try_from(version).unwrap_or(i32::MAX),
            role: role.to_string(),
            team: team.to_string(),
            cohort: cohort.to_string(),
            date: date.to_string(),
        });
        let response = self
            .catalog
            .clone()
            .resolve_template(request)
            .await
            .map_err(catalog_error)?
            .into_inner();
        let fingerprint = fingerprint(&response);
        let pb = response
            .template
            .ok_or_else(|| bad_definition("template", "absent"))?;
        let def = template_from(&pb, "template").map_err(|v| bad_definition("template", v))?;
        let mut indicators = BTreeMap::new();
        for i in &response.indicators {
            let d = indicator_from(i, "indicator").map_err(|v| bad_definition("indicator", v))?;
            indicators.insert(i.key.clone(), (u32::try_from(i.version).unwrap_or(0), d));
        }
        let calendar = match &response.calendar {
            Some(c) => calendar_from(c, "calendar").map_err(|v| bad_definition("calendar", v))?,
            None => BusinessCalendar::utc_default(),
        };
        Ok(Resolved {
            key: pb.key,
            version: u32::try_from(pb.version).unwrap_or(0),
            def,
            indicators,
            calendar,
            fingerprint,
        })
    }

    /// The roster as of `at`: every active agent, or those of `team` (and its
    /// sub-teams), or only `agent_ids`.
    pub async fn agents(
        &self,
        tenant: &str,
        at: DateTime<Utc>,
        team: &str,
        agent_ids: &[String],
    ) -> Result<Vec<ing::Agent>, Status> {
        let mut out = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = self.request(ing::ListAgentsRequest {
                parent: format!("tenants/{tenant}"),
                team_id: team.to_string(),
                as_of: Some(timestamp(at)),
                new_hire_days: 0,
                show_inactive: false,
                page_size: ROSTER_PAGE,
                page_token,
                agent_ids: agent_ids.to_vec(),
            });
            let page = self
                .ingestion
                .clone()
                .list_agents(request)
                .await
                .map_err(ingestion_error)?
                .into_inner();
            out.extend(page.agents);
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            page_token = page.next_page_token;
        }
    }

    /// Whether the tenant has a team `team`.
    pub async fn team_exists(&self, tenant: &str, team: &str) -> Result<bool, Status> {
        Ok(self.team(tenant, team).await?.is_some())
    }

    /// The tenant's team `team`, if it has one.
    pub async fn team(&self, tenant: &str, team: &str) -> Result<Option<ing::Team>, Status> {
        let mut page_token = String::new();
        loop {
            let request = self.request(ing::ListTeamsRequest {
                parent: format!("tenants/{tenant}"),
                page_size: 1_000,
                page_token,
            });
            let page = self
                .ingestion
                .clone()
                .list_teams(request)
                .await
                .map_err(ingestion_error)?
                .into_inner();
            if let Some(found) = page.teams.into_iter().find(|t| t.team_id == team) {
                return Ok(Some(found));
            }
            if page.next_page_token.is_empty() {
                return Ok(None);
            }
            page_token = page.next_page_token;
        }
    }

    /// The tenant's data version: part of every cache key.
    pub async fn data_version(&self, tenant: &str) -> Result<DataStamp, Status> {
        let request = self.request(ing::GetDataVersionRequest {
            parent: format!("tenants/{tenant}"),
        });
        let response = self
            .ingestion
            .clone()
            .get_data_version(request)
            .await
            .map_err(ingestion_error)?
            .into_inner();
        Ok(DataStamp {
            version: response.data_version,
            watermark: response.watermark.and_then(instant),
        })
    }

    /// Measure aggregates, computed in data-ingestion's database.
    pub async fn query_measures(
        &self,
        query: ing::QueryMeasuresRequest,
    ) -> Result<ing::QueryMeasuresResponse, Status> {
        let request = self.request(query);
        Ok(self
            .ingestion
            .clone()
            .query_measures(request)
            .await
            .map_err(ingestion_error)?
            .into_inner())
    }

    /// Facts behind a number.
    pub async fn list_facts(
        &self,
        query: ing::ListFactsRequest,
    ) -> Result<ing::ListFactsResponse, Status> {
        let request = self.request(query);
        Ok(self
            .ingestion
            .clone()
            .list_facts(request)
            .await
            .map_err(ingestion_error)?
            .into_inner())
    }
}

/// Identifies a resolution's content: the template and every indicator by
/// key, version and last change (a draft keeps its version when edited),
/// and the calendar itself; the first 16 bytes of their SHA-256, in hex.
/// (Maps do not encode in a fixed order, so the template is not hashed whole.)
fn fingerprint(response: &cat::ResolveTemplateResponse) -> String {
    use prost::Message as _;
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    let mut version = |key: &str, version: i32, changed: Option<&prost_types::Timestamp>| {
        let (seconds, nanos) = changed.map_or((0, 0), |t| (t.seconds, t.nanos));
        hash.update(format!("{key}@{version}@{seconds}.{nanos};"));
    };
    if let Some(t) = &response.template {
        version(&t.key, t.version, t.update_time.as_ref());
    }
    for i in &response.indicators {
        version(&i.key, i.version, i.update_time.as_ref());
    }
    if let Some(calendar) = &response.calendar {
        hash.update(calendar.encode_to_vec());
    }
    let digest = hash.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The instant of a protobuf timestamp.
pub fn instant(t: prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}
