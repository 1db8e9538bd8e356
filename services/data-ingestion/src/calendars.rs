//! The tenants' business calendars, from indicator-catalog over gRPC, cached.
//! Business-hours durations are computed with them when events are projected
//! into facts. A tenant without a calendar gets Monday–Friday 09:00–18:00
//! UTC. When the catalog cannot be reached, a cached copy (even a stale one)
//! serves; with none, the projection waits (reads answer UNAVAILABLE) rather
//! than storing wrong business-hours durations. Intake never needs it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kpi_domain::calendar::BusinessCalendar;
use kpi_proto::catalog::GetCalendarRequest;
use kpi_proto::catalog::catalog_service_client::CatalogServiceClient;
use kpi_proto::convert::calendar_from;
use kpi_runtime::auth::BearerToken;
use kpi_runtime::client::{ClientOptions, TracedChannel};
use kpi_runtime::tls::ClientTls;
use tokio::sync::Mutex;
use tonic::{Code, Status};

/// How long a calendar is trusted before it is asked for again.
const FRESH_FOR: Duration = Duration::from_secs(60);

/// A calendar and when it was fetched.
type Cached = (Instant, Arc<BusinessCalendar>);

/// Calendars by tenant, fetched from the catalog.
#[derive(Clone)]
pub struct Calendars {
    client: CatalogServiceClient<TracedChannel>,
    deadline: Duration,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl Calendars {
    /// Calendars from the catalog at `url` (connected lazily; calls carry
    /// the trace context, so the catalog's spans join the ingestion trace,
    /// and `bearer`, the service token; `tls` is used when `url` is
    /// `https://`). `deadline` (`KPI_CALL_TIMEOUT_MS`) bounds each call and
    /// connection attempt.
    pub fn new(
        url: &str,
        deadline: Duration,
        tls: &ClientTls,
        bearer: Option<BearerToken>,
    ) -> Result<Self, tonic::transport::Error> {
        let channel = kpi_runtime::client::connect_with_tls(
            url,
            ClientOptions {
                bearer,
                ..ClientOptions::with_deadline(deadline)
            },
            tls,
        )?;
        Ok(Self {
            client: CatalogServiceClient::new(channel),
            deadline,
            cache: Arc::default(),
        })
    }

    /// The tenant's default calendar.
    pub async fn get(&self, tenant: &str) -> Result<Arc<BusinessCalendar>, Status> {
        let cached = self.cache.lock().await.get(tenant).cloned();
        if let Some((at, cal)) = &cached
            && at.elapsed() < FRESH_FOR
        {
            return Ok(cal.clone());
        }
        match self.fetch(tenant).await {
            Ok(cal) => {
                let cal = Arc::new(cal);
                self.cache
                    .lock()
                    .await
                    .insert(tenant.to_string(), (Instant::now(), cal.clone()));
                Ok(cal)
            }
            Err(status) => match cached {
                Some((_, cal)) => {
                    tracing::warn!(tenant, error = %status.message(), "catalog unreachable; using the cached calendar");
                    Ok(cal)
                }
                None => Err(kpi_runtime::status::unavailable(
                    format!(
                        "cannot read the business calendar of tenant {tenant} from indicator-catalog: {}",
                        status.message()
                    ),
                    Some(Duration::from_secs(1)),
                )),
            },
        }
    }

    async fn fetch(&self, tenant: &str) -> Result<BusinessCalendar, Status> {
        tracing::debug!(
            tenant,
            "fetching the business calendar from indicator-catalog"
        );
        let mut request = tonic::Request::new(GetCalendarRequest {
            name: format!("tenants/{tenant}/calendars/default"),
        });
        request.set_timeout(self.deadline);
        match self.client.clone().get_calendar(request).await {
            Ok(response) => {
                let pb = response.into_inner().calendar.unwrap_or_default();
                calendar_from(&pb, "calendar").map_err(|v| {
                    Status::internal(format!("the catalog sent a bad calendar: {v:?}"))
                })
            }
            Err(status) if status.code() == Code::NotFound => Ok(BusinessCalendar::utc_default()),
            Err(status) => Err(status),
        }
    }
}
