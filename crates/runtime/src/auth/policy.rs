//! The RPC access table: which roles may call each RPC of the suite.
//!
//! Health and reflection are open (probes and tooling need no credentials).
//! Every other RPC is listed in [`ACCESS`]; an RPC missing from the table is
//! refused to every caller (fail closed), and a test checks that the table
//! names exactly the RPCs in `kpi_proto::FILE_DESCRIPTOR_SET`.
//!
//! The rules: `admin` may call every RPC of its tenant; catalog reads are
//! for every role; catalog changes for `admin` only; ingestion writes for
//! `writer`; the aggregate queries and change feed for `service` (scoring's
//! own calls); drill-down facts, roster and data quality also for
//! `reader`; scorecards for `reader`.

use super::Role;
use crate::server::{
    HEALTH_SERVICE_NAME, REFLECTION_V1_SERVICE_NAME, REFLECTION_V1ALPHA_SERVICE_NAME,
};

const ADMIN: &[Role] = &[Role::Admin];
const ANY: &[Role] = &[Role::Reader, Role::Writer, Role::Admin, Role::Service];
const WRITE: &[Role] = &[Role::Writer, Role::Admin];
const SERVICE: &[Role] = &[Role::Service, Role::Admin];
const DRILL_DOWN: &[Role] = &[Role::Reader, Role::Service, Role::Admin];
const SCORECARDS: &[Role] = &[Role::Reader, Role::Admin];

const CATALOG: &str = "kpi.catalog.v1.CatalogService";
const INGESTION: &str = "kpi.ingestion.v1.IngestionService";
const SCORING: &str = "kpi.scoring.v1.ScoringService";

/// Services served without credentials.
pub const OPEN_SERVICES: &[&str] = &[
    HEALTH_SERVICE_NAME,
    REFLECTION_V1_SERVICE_NAME,
    REFLECTION_V1ALPHA_SERVICE_NAME,
];

/// `(service, method, roles allowed)` for every RPC of the suite.
pub const ACCESS: &[(&str, &str, &[Role])] = &[
    (CATALOG, "ListFactTypes", ANY),
    (CATALOG, "CreateIndicator", ADMIN),
    (CATALOG, "GetIndicator", ANY),
    (CATALOG, "ListIndicators", ANY),
    (CATALOG, "ListIndicatorVersions", ANY),
    (CATALOG, "UpdateIndicator", ADMIN),
    (CATALOG, "ActivateIndicator", ADMIN),
    (CATALOG, "RetireIndicator", ADMIN),
    (CATALOG, "CreateTemplate", ADMIN),
    (CATALOG, "GetTemplate", ANY),
    (CATALOG, "ListTemplates", ANY),
    (CATALOG, "ListTemplateVersions", ANY),
    (CATALOG, "UpdateTemplate", ADMIN),
    (CATALOG, "ActivateTemplate", ADMIN),
    (CATALOG, "RetireTemplate", ADMIN),
    (CATALOG, "ResolveTemplate", ANY),
    (CATALOG, "GetCatalogRevision", ANY),
    (CATALOG, "UpsertCalendar", ADMIN),
    (CATALOG, "GetCalendar", ANY),
    (CATALOG, "ListCalendars", ANY),
    (CATALOG, "InstallStarterKit", ADMIN),
    (CATALOG, "ExportCatalog", ANY),
    (CATALOG, "ImportCatalog", ADMIN),
    (INGESTION, "IngestEvents", WRITE),
    (INGESTION, "StreamEvents", WRITE),
    (INGESTION, "QueryMeasures", SERVICE),
    (INGESTION, "ListFacts", DRILL_DOWN),
    (INGESTION, "GetDataQuality", ANY),
    (INGESTION, "GetDataVersion", ANY),
    (INGESTION, "WatchChanges", SERVICE),
    (INGESTION, "ListAgents", DRILL_DOWN),
    (INGESTION, "ListTeams", DRILL_DOWN),
    (SCORING, "GetScorecard", SCORECARDS),
    (SCORING, "ListScorecards", SCORECARDS),
    (SCORING, "ExplainScorecard", SCORECARDS),
    (SCORING, "ListAlerts", SCORECARDS),
    (SCORING, "SimulateTemplate", SCORECARDS),
];

/// What the access table says about one request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Health or reflection: no credentials needed.
    Open,
    /// Credentials with one of these roles.
    Roles(&'static [Role]),
    /// Not in the table: refused to everyone.
    Unlisted,
}

/// The access rule for `/package.Service/Method`.
pub fn access(path: &str) -> Access {
    let (service, method) = crate::layers::split_path(path);
    if OPEN_SERVICES.contains(&service) {
        return Access::Open;
    }
    ACCESS
        .iter()
        .find(|(s, m, _)| *s == service && *m == method)
        .map_or(Access::Unlisted, |(_, _, roles)| Access::Roles(roles))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_rules() {
        assert_eq!(access("/grpc.health.v1.Health/Check"), Access::Open);
        assert_eq!(
            access("/kpi.catalog.v1.CatalogService/CreateIndicator"),
            Access::Roles(ADMIN)
        );
        assert_eq!(
            access("/kpi.catalog.v1.CatalogService/DropEverything"),
            Access::Unlisted
        );
        assert!(
            ACCESS
                .iter()
                .all(|(_, _, roles)| roles.contains(&Role::Admin))
        );
    }
}
