//! Tenant isolation at the handlers' edge: [`Guarded`] wraps a service's
//! handlers and, before each one runs, checks the tenant its request names
//! against the [`Caller`] the server's guard attached.
//!
//! Every request of the suite names its tenant in a resource name that
//! starts with `tenants/{tenant}` (`parent`, `name`, `indicator.name`,
//! `template.name`); the table below says which field for each RPC, so the
//! check lives in one place instead of forty handlers. A caller bound to
//! another tenant gets `PERMISSION_DENIED` with [`super::TENANT_DENIED`]
//! before anything is read, so the answer is the same whether the tenant
//! exists or not. Callers bound to every tenant (`*`, or `KPI_AUTH=off`)
//! pass unchecked, and the handler validates the name as before.
//!
//! Two RPCs are special: `StreamEvents` names the tenant per chunk, so its
//! handler checks each chunk with [`Caller::authorize`]; `WatchChanges`
//! without a parent watches every tenant and needs an all-tenant caller.
//! `ListFactTypes` is global (the built-in fact schemas) and names none.

use kpi_proto::catalog as cat;
use kpi_proto::catalog::catalog_service_server::CatalogService;
use kpi_proto::ingestion as ing;
use kpi_proto::ingestion::ingestion_service_server::IngestionService;
use kpi_proto::scoring as sc;
use kpi_proto::scoring::scoring_service_server::ScoringService;
use tonic::{Request, Response, Status, Streaming};

use super::{Caller, TenantScope};
use crate::names;

/// A service's handlers behind the tenant check.
#[derive(Debug, Clone)]
pub struct Guarded<T> {
    inner: T,
}

impl<T> Guarded<T> {
    /// Wraps `inner`'s handlers.
    pub fn new(inner: T) -> Self {
        Self { inner }
    }
}

/// Checks the tenant in `resource` (`field` names it for errors) against
/// the request's caller; `None` for an RPC that names no tenant.
fn check<T>(request: &Request<T>, resource: Option<(&str, &str)>) -> Result<(), Status> {
    let caller = Caller::of(request)?;
    let (TenantScope::One(_), Some((field, value))) = (&caller.tenant, resource) else {
        return Ok(());
    };
    let tenant = named_tenant(field, value)?;
    caller.authorize(tenant).inspect_err(|_| {
        // An audit trail of cross-tenant attempts; the caller learns nothing.
        tracing::info!(key_id = %caller.key_id, bound_to = %caller.tenant, requested = tenant, "tenant denied");
    })
}

/// The tenant of `tenants/{tenant}` or `tenants/{tenant}/…`; an
/// INVALID_ARGUMENT naming `field` when `value` names none.
pub fn named_tenant<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    value
        .strip_prefix("tenants/")
        .and_then(|rest| rest.split('/').next())
        .filter(|tenant| names::is_valid_tenant_id(tenant))
        .ok_or_else(|| match names::parse_parent(field, value) {
            Err(status) => status,
            Ok(_) => crate::status::invalid_field(field, "must name a tenant"),
        })
}

/// Implements a service trait for [`Guarded`]: each listed unary RPC checks
/// the tenant its request names, then runs the inner handler; `extra` holds
/// the hand-written streaming RPCs.
macro_rules! guarded_service {
    (
        $trait:ident {
            $($method:ident($req:ty) -> $resp:ty: |$r:ident| $resource:expr;)*
        }
        extra { $($extra:tt)* }
    ) => {
        #[tonic::async_trait]
        impl<T: $trait> $trait for Guarded<T> {
            $(
                async fn $method(&self, request: Request<$req>) -> Result<Response<$resp>, Status> {
                    {
                        let $r = request.get_ref();
                        check(&request, $resource)?;
                    }
                    self.inner.$method(request).await
                }
            )*
            $($extra)*
        }
    };
}

/// The field holding a message's resource name, when the message is set.
fn nested<'a, M>(
    field: &'static str,
    message: Option<&'a M>,
    name: impl Fn(&'a M) -> &'a str,
) -> Option<(&'static str, &'a str)> {
    Some((field, message.map_or("", name)))
}

guarded_service! {
    CatalogService {
        list_fact_types(cat::ListFactTypesRequest) -> cat::ListFactTypesResponse: |_r| None;
        create_indicator(cat::CreateIndicatorRequest) -> cat::CreateIndicatorResponse: |r| Some(("parent", &r.parent));
        get_indicator(cat::GetIndicatorRequest) -> cat::GetIndicatorResponse: |r| Some(("name", &r.name));
        list_indicators(cat::ListIndicatorsRequest) -> cat::ListIndicatorsResponse: |r| Some(("parent", &r.parent));
        list_indicator_versions(cat::ListIndicatorVersionsRequest) -> cat::ListIndicatorVersionsResponse: |r| Some(("name", &r.name));
        update_indicator(cat::UpdateIndicatorRequest) -> cat::UpdateIndicatorResponse: |r| nested("indicator.name", r.indicator.as_ref(), |i| &i.name);
        activate_indicator(cat::ActivateIndicatorRequest) -> cat::ActivateIndicatorResponse: |r| Some(("name", &r.name));
        retire_indicator(cat::RetireIndicatorRequest) -> cat::RetireIndicatorResponse: |r| Some(("name", &r.name));
        create_template(cat::CreateTemplateRequest) -> cat::CreateTemplateResponse: |r| Some(("parent", &r.parent));
        get_template(cat::GetTemplateRequest) -> cat::GetTemplateResponse: |r| Some(("name", &r.name));
        list_templates(cat::ListTemplatesRequest) -> cat::ListTemplatesResponse: |r| Some(("parent", &r.parent));
        list_template_versions(cat::ListTemplateVersionsRequest) -> cat::ListTemplateVersionsResponse: |r| Some(("name", &r.name));
        update_template(cat::UpdateTemplateRequest) -> cat::UpdateTemplateResponse: |r| nested("template.name", r.template.as_ref(), |t| &t.name);
        activate_template(cat::ActivateTemplateRequest) -> cat::ActivateTemplateResponse: |r| Some(("name", &r.name));
        retire_template(cat::RetireTemplateRequest) -> cat::RetireTemplateResponse: |r| Some(("name", &r.name));
        resolve_template(cat::ResolveTemplateRequest) -> cat::ResolveTemplateResponse: |r| Some(("parent", &r.parent));
        get_catalog_revision(cat::GetCatalogRevisionRequest) -> cat::GetCatalogRevisionResponse: |r| Some(("parent", &r.parent));
        upsert_calendar(cat::UpsertCalendarRequest) -> cat::UpsertCalendarResponse: |r| Some(("parent", &r.parent));
        get_calendar(cat::GetCalendarRequest) -> cat::GetCalendarResponse: |r| Some(("name", &r.name));
        list_calendars(cat::ListCalendarsRequest) -> cat::ListCalendarsResponse: |r| Some(("parent", &r.parent));
        install_starter_kit(cat::InstallStarterKitRequest) -> cat::InstallStarterKitResponse: |r| Some(("parent", &r.parent));
        export_catalog(cat::ExportCatalogRequest) -> cat::ExportCatalogResponse: |r| Some(("parent", &r.parent));
        import_catalog(cat::ImportCatalogRequest) -> cat::ImportCatalogResponse: |r| Some(("parent", &r.parent));
    }
    extra {}
}

guarded_service! {
    IngestionService {
        ingest_events(ing::IngestEventsRequest) -> ing::IngestEventsResponse: |r| Some(("parent", &r.parent));
        query_measures(ing::QueryMeasuresRequest) -> ing::QueryMeasuresResponse: |r| Some(("parent", &r.parent));
        list_facts(ing::ListFactsRequest) -> ing::ListFactsResponse: |r| Some(("parent", &r.parent));
        get_data_quality(ing::GetDataQualityRequest) -> ing::GetDataQualityResponse: |r| Some(("parent", &r.parent));
        get_data_version(ing::GetDataVersionRequest) -> ing::GetDataVersionResponse: |r| Some(("parent", &r.parent));
        list_agents(ing::ListAgentsRequest) -> ing::ListAgentsResponse: |r| Some(("parent", &r.parent));
        list_teams(ing::ListTeamsRequest) -> ing::ListTeamsResponse: |r| Some(("parent", &r.parent));
    }
    extra {
        type StreamEventsStream = T::StreamEventsStream;

        /// Each chunk names its tenant: the inner handler checks every one
        /// with the caller from the extensions.
        async fn stream_events(
            &self,
            request: Request<Streaming<ing::StreamEventsRequest>>,
        ) -> Result<Response<Self::StreamEventsStream>, Status> {
            Caller::of(&request)?;
            self.inner.stream_events(request).await
        }

        type WatchChangesStream = T::WatchChangesStream;

        /// An empty parent watches every tenant.
        async fn watch_changes(
            &self,
            request: Request<ing::WatchChangesRequest>,
        ) -> Result<Response<Self::WatchChangesStream>, Status> {
            let parent = &request.get_ref().parent;
            if parent.is_empty() {
                Caller::of(&request)?.authorize_all_tenants()?;
            } else {
                check(&request, Some(("parent", parent)))?;
            }
            self.inner.watch_changes(request).await
        }
    }
}

guarded_service! {
    ScoringService {
        get_scorecard(sc::GetScorecardRequest) -> sc::GetScorecardResponse: |r| Some(("parent", &r.parent));
        list_scorecards(sc::ListScorecardsRequest) -> sc::ListScorecardsResponse: |r| Some(("parent", &r.parent));
        explain_scorecard(sc::ExplainScorecardRequest) -> sc::ExplainScorecardResponse: |r| Some(("parent", &r.parent));
        list_alerts(sc::ListAlertsRequest) -> sc::ListAlertsResponse: |r| Some(("parent", &r.parent));
        simulate_template(sc::SimulateTemplateRequest) -> sc::SimulateTemplateResponse: |r| Some(("parent", &r.parent));
    }
    extra {}
}

#[cfg(test)]
mod tests {
    use super::named_tenant;

    #[test]
    fn tenant_of_resource_names() {
        assert_eq!(named_tenant("parent", "tenants/acme").ok(), Some("acme"));
        assert_eq!(
            named_tenant("name", "tenants/acme/indicators/fcr").ok(),
            Some("acme")
        );
        for bad in ["", "acme", "tenants/", "tenants/Acme!", "tenant/acme"] {
            let status = named_tenant("parent", bad).expect_err(bad);
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bad}");
        }
    }
}
