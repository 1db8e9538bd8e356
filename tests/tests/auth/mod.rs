//! Authentication, roles and tenant isolation, end to end: the three
//! services in this process on real sockets (port 0), on PostgreSQL, scoring
//! caching in the shared Redis, called by real gRPC clients with bearer
//! tokens from an API-key file and HS256 JWTs.
//!
//! - [`every_rpc_for_every_role_and_tenant`]: the table of callers (tenant
//!   and role) × target tenant × every RPC, each cell's code checked against
//!   the access table written out here (independently of the server's);
//! - [`access_table_covers_exactly_the_served_rpcs`]: the server's table
//!   names exactly the RPCs of `kpi_proto::FILE_DESCRIPTOR_SET`;
//! - missing, garbled and unknown tokens, JWT cases, identical denials for
//!   existing and unknown tenants, the service token on scoring's calls,
//!   tenant-separated cache keys, and refusing to start without credentials.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kpi_cache::{Cache, CacheConfig};
use kpi_proto::catalog as cat;
use kpi_proto::catalog::catalog_service_client::CatalogServiceClient;
use kpi_proto::ingestion as ing;
use kpi_proto::ingestion::event::Payload;
use kpi_proto::ingestion::ingestion_service_client::IngestionServiceClient;
use kpi_proto::scoring as sc;
use kpi_proto::scoring::scoring_service_client::ScoringServiceClient;
use kpi_runtime::ServiceKind;
use kpi_runtime::auth::keys::key_line;
use kpi_runtime::auth::{AuthMode, AuthSettings, BearerToken, JwtSettings, Role, TENANT_DENIED};
use kpi_testkit::{DbKind, RunningServer, TestDb};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

const ALPHA: &str = "alpha";
const BETA: &str = "beta";
/// A tenant nothing was ever written for.
const GHOST: &str = "ghost";
const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "kpi-suite";
const JWT_SECRET: &[u8] = b"an HS256 secret of at least 32 bytes, for tests";

/// The API keys: id, tenant (`*` = every tenant), role. Each key's token is
/// `token-<id>`.
const KEYS: &[(&str, &str, Role)] = &[
    ("alpha-reader", ALPHA, Role::Reader),
    ("alpha-writer", ALPHA, Role::Writer),
    ("alpha-admin", ALPHA, Role::Admin),
    ("alpha-service", ALPHA, Role::Service),
    ("beta-admin", BETA, Role::Admin),
    ("all-admin", "*", Role::Admin),
    ("all-service", "*", Role::Service),
];

fn token(key_id: &str) -> String {
    format!("token-{key_id}")
}

use Role::{Admin as A, Reader as R, Service as S, Writer as W};
const ANY: &[Role] = &[R, W, A, S];

/// The access table as the README states it: service, method, roles.
const EXPECTED: &[(&str, &str, &[Role])] = &[
    ("kpi.catalog.v1.CatalogService", "ListFactTypes", ANY),
    ("kpi.catalog.v1.CatalogService", "CreateIndicator", &[A]),
    ("kpi.catalog.v1.CatalogService", "GetIndicator", ANY),
    ("kpi.catalog.v1.CatalogService", "ListIndicators", ANY),
    (
        "kpi.catalog.v1.CatalogService",
        "ListIndicatorVersions",
        ANY,
    ),
    ("kpi.catalog.v1.CatalogService", "UpdateIndicator", &[A]),
    ("kpi.catalog.v1.CatalogService", "ActivateIndicator", &[A]),
    ("kpi.catalog.v1.CatalogService", "RetireIndicator", &[A]),
    ("kpi.catalog.v1.CatalogService", "CreateTemplate", &[A]),
    ("kpi.catalog.v1.CatalogService", "GetTemplate", ANY),
    ("kpi.catalog.v1.CatalogService", "ListTemplates", ANY),
    ("kpi.catalog.v1.CatalogService", "ListTemplateVersions", ANY),
    ("kpi.catalog.v1.CatalogService", "UpdateTemplate", &[A]),
    ("kpi.catalog.v1.CatalogService", "ActivateTemplate", &[A]),
    ("kpi.catalog.v1.CatalogService", "RetireTemplate", &[A]),
    ("kpi.catalog.v1.CatalogService", "ResolveTemplate", ANY),
    ("kpi.catalog.v1.CatalogService", "GetCatalogRevision", ANY),
    ("kpi.catalog.v1.CatalogService", "UpsertCalendar", &[A]),
    ("kpi.catalog.v1.CatalogService", "GetCalendar", ANY),
    ("kpi.catalog.v1.CatalogService", "ListCalendars", ANY),
    ("kpi.catalog.v1.CatalogService", "InstallStarterKit", &[A]),
    ("kpi.catalog.v1.CatalogService", "ExportCatalog", ANY),
    ("kpi.catalog.v1.CatalogService", "ImportCatalog", &[A]),
    ("kpi.ingestion.v1.IngestionService", "IngestEvents", &[W, A]),
    ("kpi.ingestion.v1.IngestionService", "StreamEvents", &[W, A]),
    (
        "kpi.ingestion.v1.IngestionService",
        "QueryMeasures",
        &[S, A],
    ),
    ("kpi.ingestion.v1.IngestionService", "ListFacts", &[R, S, A]),
    ("kpi.ingestion.v1.IngestionService", "GetDataQuality", ANY),
    ("kpi.ingestion.v1.IngestionService", "GetDataVersion", ANY),
    ("kpi.ingestion.v1.IngestionService", "WatchChanges", &[S, A]),
    (
        "kpi.ingestion.v1.IngestionService",
        "ListAgents",
        &[R, S, A],
    ),
    ("kpi.ingestion.v1.IngestionService", "ListTeams", &[R, S, A]),
    ("kpi.scoring.v1.ScoringService", "GetScorecard", &[R, A]),
    ("kpi.scoring.v1.ScoringService", "ListScorecards", &[R, A]),
    ("kpi.scoring.v1.ScoringService", "ExplainScorecard", &[R, A]),
    ("kpi.scoring.v1.ScoringService", "ListAlerts", &[R, A]),
    ("kpi.scoring.v1.ScoringService", "SimulateTemplate", &[R, A]),
];

/// The three services with authentication on, and clients of them.
struct Stack {
    catalog: CatalogServiceClient<Channel>,
    ingestion: IngestionServiceClient<Channel>,
    scoring: ScoringServiceClient<Channel>,
    catalog_url: String,
    ingestion_url: String,
    cache_prefix: String,
    servers: Vec<RunningServer>,
    dir: tempfile::TempDir,
    _dbs: (TestDb, TestDb),
}

impl Stack {
    async fn stop(self) {
        for server in self.servers.into_iter().rev() {
            server.stop().await.expect("server stops");
        }
    }
}

/// The key file and JWT secret in `dir`.
fn write_credentials(dir: &Path) {
    let keys: Vec<String> = KEYS
        .iter()
        .map(|(id, tenant, role)| key_line(id, tenant, *role, &token(id)))
        .collect();
    std::fs::write(
        dir.join("api-keys"),
        format!("# test keys\n{}\n", keys.join("\n")),
    )
    .expect("key file");
    std::fs::write(dir.join("jwt-secret"), JWT_SECRET).expect("jwt secret");
}

/// API keys and HS256 JWTs; `service_token` sent on outbound calls.
fn auth(dir: &Path, service_token: Option<&str>) -> AuthSettings {
    AuthSettings {
        mode: AuthMode::Required,
        api_keys_file: Some(dir.join("api-keys")),
        jwt: Some(JwtSettings {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            hs256_secret_file: Some(dir.join("jwt-secret")),
            public_key_file: None,
            tenant_claim: "tenant".to_owned(),
            role_claim: "role".to_owned(),
        }),
        service_token: service_token.map(|t| BearerToken::new(t).expect("token")),
    }
}

async fn start(test: &str) -> Stack {
    let dir = tempfile::tempdir().expect("temp dir");
    write_credentials(dir.path());
    let service = token("all-service");
    let catalog_db = TestDb::new(DbKind::Postgres).await.expect("catalog db");
    let ingestion_db = TestDb::new(DbKind::Postgres).await.expect("ingestion db");

    let mut settings = kpi_testkit::settings(ServiceKind::Catalog, &catalog_db.url);
    settings.auth = auth(dir.path(), None);
    let app = indicator_catalog::App::build(&settings)
        .await
        .expect("catalog");
    let catalog = RunningServer::spawn(app.local_addr().expect("addr"), |s| {
        app.run_until_stopped(s)
    });

    let mut settings = kpi_testkit::settings(ServiceKind::Ingestion, &ingestion_db.url);
    settings.auth = auth(dir.path(), Some(&service));
    settings.catalog_url = catalog.endpoint();
    let app = data_ingestion::App::build(&settings)
        .await
        .expect("ingestion");
    let ingestion = RunningServer::spawn(app.local_addr().expect("addr"), |s| {
        app.run_until_stopped(s)
    });

    let cache_prefix = kpi_testkit::unique_prefix(test);
    let scoring = spawn_scoring(
        dir.path(),
        &catalog.endpoint(),
        &ingestion.endpoint(),
        Some(&service),
        &cache_prefix,
    )
    .await;

    Stack {
        catalog: CatalogServiceClient::connect(catalog.endpoint())
            .await
            .expect("catalog client"),
        ingestion: IngestionServiceClient::connect(ingestion.endpoint())
            .await
            .expect("ingestion client"),
        scoring: ScoringServiceClient::connect(scoring.endpoint())
            .await
            .expect("scoring client"),
        catalog_url: catalog.endpoint(),
        ingestion_url: ingestion.endpoint(),
        cache_prefix,
        servers: vec![catalog, ingestion, scoring],
        dir,
        _dbs: (catalog_db, ingestion_db),
    }
}

/// A scoring server caching in the shared Redis under `prefix`, sending
/// `service_token` (if any) to the catalog and ingestion.
async fn spawn_scoring(
    dir: &Path,
    catalog_url: &str,
    ingestion_url: &str,
    service_token: Option<&str>,
    prefix: &str,
) -> RunningServer {
    let mut settings = kpi_testkit::settings(ServiceKind::Scoring, "sqlite::memory:");
    settings.auth = auth(dir, service_token);
    settings.catalog_url = catalog_url.to_owned();
    settings.ingestion_url = ingestion_url.to_owned();
    settings.call_timeout = Duration::from_secs(10);
    let cache = Cache::new(CacheConfig {
        redis_url: Some(kpi_testkit::shared_redis_url()),
        prefix: prefix.to_owned(),
        ttl: Duration::from_secs(120),
        ..CacheConfig::default()
    })
    .expect("cache");
    let app = scoring::App::build_with_cache(&settings, cache)
        .await
        .expect("scoring");
    assert_eq!(app.cache_backend(), "redis");
    RunningServer::spawn(app.local_addr().expect("addr"), |s| {
        app.run_until_stopped(s)
    })
}

/// `message` with `authorization: Bearer <token>` (none without a token).
fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().expect("ascii token");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

fn parent(tenant: &str) -> String {
    format!("tenants/{tenant}")
}

fn child(tenant: &str, collection: &str) -> String {
    format!("tenants/{tenant}/{collection}/x")
}

/// Calls `method` for `tenant` with a minimal request; `Ok` or the status.
async fn call(s: &Stack, method: &str, tenant: &str, token: Option<&str>) -> Result<(), Status> {
    let mut c = s.catalog.clone();
    let mut i = s.ingestion.clone();
    let mut sc = s.scoring.clone();
    let p = parent(tenant);
    let t = token;
    macro_rules! unary {
        ($client:ident . $rpc:ident($message:expr)) => {
            $client.$rpc(with_token($message, t)).await.map(drop)
        };
    }
    match method {
        "ListFactTypes" => unary!(c.list_fact_types(cat::ListFactTypesRequest {})),
        "CreateIndicator" => unary!(c.create_indicator(cat::CreateIndicatorRequest {
            parent: p,
            ..Default::default()
        })),
        "GetIndicator" => unary!(c.get_indicator(cat::GetIndicatorRequest {
            name: child(tenant, "indicators"),
            ..Default::default()
        })),
        "ListIndicators" => unary!(c.list_indicators(cat::ListIndicatorsRequest {
            parent: p,
            ..Default::default()
        })),
        "ListIndicatorVersions" => unary!(c.list_indicator_versions(
            cat::ListIndicatorVersionsRequest {
                name: child(tenant, "indicators"),
                ..Default::default()
            }
        )),
        "UpdateIndicator" => unary!(c.update_indicator(cat::UpdateIndicatorRequest {
            indicator: Some(cat::Indicator {
                name: child(tenant, "indicators"),
                ..Default::default()
            }),
            ..Default::default()
        })),
        "ActivateIndicator" => unary!(c.activate_indicator(cat::ActivateIndicatorRequest {
            name: child(tenant, "indicators"),
            ..Default::default()
        })),
        "RetireIndicator" => unary!(c.retire_indicator(cat::RetireIndicatorRequest {
            name: child(tenant, "indicators"),
            ..Default::default()
        })),
        "CreateTemplate" => unary!(c.create_template(cat::CreateTemplateRequest {
            parent: p,
            ..Default::default()
        })),
        "GetTemplate" => unary!(c.get_template(cat::GetTemplateRequest {
            name: child(tenant, "templates"),
            ..Default::default()
        })),
        "ListTemplates" => unary!(c.list_templates(cat::ListTemplatesRequest {
            parent: p,
            ..Default::default()
        })),
        "ListTemplateVersions" => {
            unary!(c.list_template_versions(cat::ListTemplateVersionsRequest {
                name: child(tenant, "templates"),
                ..Default::default()
            }))
        }
        "UpdateTemplate" => unary!(c.update_template(cat::UpdateTemplateRequest {
            template: Some(cat::Template {
                name: child(tenant, "templates"),
                ..Default::default()
            }),
            ..Default::default()
        })),
        "ActivateTemplate" => unary!(c.activate_template(cat::ActivateTemplateRequest {
            name: child(tenant, "templates"),
            ..Default::default()
        })),
        "RetireTemplate" => unary!(c.retire_template(cat::RetireTemplateRequest {
            name: child(tenant, "templates"),
            ..Default::default()
        })),
        "ResolveTemplate" => unary!(c.resolve_template(cat::ResolveTemplateRequest {
            parent: p,
            ..Default::default()
        })),
        "GetCatalogRevision" => {
            unary!(c.get_catalog_revision(cat::GetCatalogRevisionRequest { parent: p }))
        }
        "UpsertCalendar" => unary!(c.upsert_calendar(cat::UpsertCalendarRequest {
            parent: p,
            ..Default::default()
        })),
        "GetCalendar" => unary!(c.get_calendar(cat::GetCalendarRequest {
            name: child(tenant, "calendars")
        })),
        "ListCalendars" => unary!(c.list_calendars(cat::ListCalendarsRequest {
            parent: p,
            ..Default::default()
        })),
        "InstallStarterKit" => unary!(c.install_starter_kit(cat::InstallStarterKitRequest {
            parent: p,
            ..Default::default()
        })),
        "ExportCatalog" => unary!(c.export_catalog(cat::ExportCatalogRequest {
            parent: p,
            ..Default::default()
        })),
        "ImportCatalog" => unary!(c.import_catalog(cat::ImportCatalogRequest {
            parent: p,
            ..Default::default()
        })),
        "IngestEvents" => unary!(i.ingest_events(ing::IngestEventsRequest {
            parent: p,
            ..Default::default()
        })),
        "StreamEvents" => {
            let chunk = ing::StreamEventsRequest {
                parent: p,
                sequence: 1,
                ..Default::default()
            };
            let stream = tokio_stream::iter(vec![chunk]);
            let mut answers = i.stream_events(with_token(stream, t)).await?.into_inner();
            answers.message().await.map(drop)
        }
        "QueryMeasures" => unary!(i.query_measures(ing::QueryMeasuresRequest {
            parent: p,
            ..Default::default()
        })),
        "ListFacts" => unary!(i.list_facts(ing::ListFactsRequest {
            parent: p,
            ..Default::default()
        })),
        "GetDataQuality" => unary!(i.get_data_quality(ing::GetDataQualityRequest {
            parent: p,
            ..Default::default()
        })),
        "GetDataVersion" => unary!(i.get_data_version(ing::GetDataVersionRequest { parent: p })),
        "WatchChanges" => unary!(i.watch_changes(ing::WatchChangesRequest { parent: p })),
        "ListAgents" => unary!(i.list_agents(ing::ListAgentsRequest {
            parent: p,
            ..Default::default()
        })),
        "ListTeams" => unary!(i.list_teams(ing::ListTeamsRequest {
            parent: p,
            ..Default::default()
        })),
        "GetScorecard" => unary!(sc.get_scorecard(sc::GetScorecardRequest {
            parent: p,
            ..Default::default()
        })),
        "ListScorecards" => unary!(sc.list_scorecards(sc::ListScorecardsRequest {
            parent: p,
            ..Default::default()
        })),
        "ExplainScorecard" => unary!(sc.explain_scorecard(sc::ExplainScorecardRequest {
            parent: p,
            ..Default::default()
        })),
        "ListAlerts" => unary!(sc.list_alerts(sc::ListAlertsRequest {
            parent: p,
            ..Default::default()
        })),
        "SimulateTemplate" => unary!(sc.simulate_template(sc::SimulateTemplateRequest {
            parent: p,
            ..Default::default()
        })),
        other => panic!("no request written for {other}"),
    }
}

/// What a cell of the table must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Expect {
    /// Past authentication, role and tenant checks: OK, or the handler's
    /// own INVALID_ARGUMENT / NOT_FOUND / FAILED_PRECONDITION /
    /// ALREADY_EXISTS for the minimal request.
    Allowed,
    /// PERMISSION_DENIED for the role.
    WrongRole,
    /// PERMISSION_DENIED for the tenant, with the one tenant message.
    WrongTenant,
}

fn expect(roles: &[Role], method: &str, key_tenant: &str, role: Role, target: &str) -> Expect {
    let names_tenant = method != "ListFactTypes";
    if !roles.contains(&role) {
        Expect::WrongRole
    } else if names_tenant && key_tenant != "*" && key_tenant != target {
        Expect::WrongTenant
    } else {
        Expect::Allowed
    }
}

/// Whether `outcome` is what `expected` asks for; a description if not.
fn check(expected: Expect, outcome: &Result<(), Status>) -> Option<String> {
    let code = outcome.as_ref().err().map_or(Code::Ok, Status::code);
    let message = outcome.as_ref().err().map_or("", |s| s.message());
    let fine = match expected {
        Expect::Allowed => matches!(
            code,
            Code::Ok
                | Code::InvalidArgument
                | Code::NotFound
                | Code::FailedPrecondition
                | Code::AlreadyExists
        ),
        Expect::WrongRole => code == Code::PermissionDenied && message.starts_with("role "),
        Expect::WrongTenant => code == Code::PermissionDenied && message == TENANT_DENIED,
    };
    (!fine).then(|| format!("expected {expected:?}, got {code:?}: {message}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_for_every_role_and_tenant() {
    let s = start("auth_table").await;
    let mut failures = Vec::new();
    let mut cells = 0;
    let mut tally: std::collections::BTreeMap<(Expect, String), usize> = Default::default();
    for (service, method, roles) in EXPECTED {
        for (key_id, key_tenant, role) in KEYS {
            for target in [ALPHA, BETA] {
                let outcome = call(&s, method, target, Some(&token(key_id))).await;
                let expected = expect(roles, method, key_tenant, *role, target);
                cells += 1;
                *tally
                    .entry((
                        expected,
                        format!(
                            "{:?}",
                            outcome.as_ref().err().map_or(Code::Ok, Status::code)
                        ),
                    ))
                    .or_insert(0) += 1;
                if let Some(problem) = check(expected, &outcome) {
                    failures.push(format!(
                        "{service}/{method} by {key_id} on {target}: {problem}"
                    ));
                }
            }
        }
    }
    assert_eq!(cells, EXPECTED.len() * KEYS.len() * 2);
    eprintln!("{cells} cells (expected, answered): {tally:?}");
    assert!(
        failures.is_empty(),
        "{} of {cells} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Watching every tenant at once takes a credential for every tenant.
    for (key_id, code) in [
        ("alpha-service", Code::PermissionDenied),
        ("all-service", Code::Ok),
    ] {
        let mut ingestion = s.ingestion.clone();
        let outcome = ingestion
            .watch_changes(with_token(
                ing::WatchChangesRequest {
                    parent: String::new(),
                },
                Some(&token(key_id)),
            ))
            .await;
        assert_eq!(
            outcome.err().map_or(Code::Ok, |e| e.code()),
            code,
            "{key_id}"
        );
    }
    s.stop().await;
}

#[test]
fn access_table_covers_exactly_the_served_rpcs() {
    use prost::Message;
    let set = prost_types::FileDescriptorSet::decode(kpi_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let served: BTreeSet<(String, String)> = set
        .file
        .iter()
        .flat_map(|file| {
            let package = file.package().to_owned();
            file.service.iter().flat_map(move |service| {
                let full = format!("{package}.{}", service.name());
                service
                    .method
                    .iter()
                    .map(move |m| (full.clone(), m.name().to_owned()))
            })
        })
        .collect();
    let server_table: BTreeSet<(String, String)> = kpi_runtime::auth::policy::ACCESS
        .iter()
        .map(|(s, m, _)| (s.to_string(), m.to_string()))
        .collect();
    let test_table: BTreeSet<(String, String)> = EXPECTED
        .iter()
        .map(|(s, m, _)| (s.to_string(), m.to_string()))
        .collect();
    assert_eq!(server_table, served, "the server's access table");
    assert_eq!(test_table, served, "this test's table");
    assert_eq!(served.len(), 37);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_garbled_and_unknown_tokens_are_unauthenticated() {
    let s = start("auth_tokens").await;
    for token in [
        None,
        Some("not-a-key"),
        Some("token-alpha-readerX"),
        Some("a.b.c"),
    ] {
        let outcome = call(&s, "GetIndicator", ALPHA, token).await;
        assert_eq!(
            outcome.err().map(|e| e.code()),
            Some(Code::Unauthenticated),
            "{token:?}"
        );
    }
    for header in [
        "token-alpha-reader",
        "Basic token-alpha-reader",
        "Bearer",
        "Bearer  ",
    ] {
        let mut request = Request::new(cat::ListIndicatorsRequest {
            parent: parent(ALPHA),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("authorization", header.parse().expect("ascii"));
        let outcome = s.catalog.clone().list_indicators(request).await;
        assert_eq!(
            outcome.err().map(|e| e.code()),
            Some(Code::Unauthenticated),
            "{header:?}"
        );
    }
    // Health stays open, on every service.
    for url in [&s.catalog_url, &s.ingestion_url] {
        let channel = Channel::from_shared(url.clone())
            .expect("url")
            .connect()
            .await
            .expect("channel");
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let answer = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health answers without credentials");
        assert_eq!(answer.into_inner().status, 1, "SERVING");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_is_denied_alike_whether_it_exists_or_not() {
    let s = start("auth_existence").await;
    // beta exists (its starter kit), ghost never did.
    call(&s, "InstallStarterKit", BETA, Some(&token("beta-admin")))
        .await
        .expect("beta's starter kit");
    let mut seen = Vec::new();
    for target in [BETA, GHOST] {
        for method in [
            "ListIndicators",
            "GetIndicator",
            "ListAgents",
            "GetScorecard",
        ] {
            let status = call(&s, method, target, Some(&token("alpha-admin")))
                .await
                .expect_err("another tenant");
            seen.push((method, status.code(), status.message().to_owned()));
        }
    }
    let (existing, unknown) = seen.split_at(4);
    assert_eq!(existing, unknown);
    assert!(
        existing
            .iter()
            .all(|(_, code, message)| *code == Code::PermissionDenied && message == TENANT_DENIED)
    );
    // The owner sees beta's starter kit: it does exist.
    let mut catalog = s.catalog.clone();
    let listed = catalog
        .list_indicators(with_token(
            cat::ListIndicatorsRequest {
                parent: parent(BETA),
                ..Default::default()
            },
            Some(&token("beta-admin")),
        ))
        .await
        .expect("beta's own indicators");
    assert!(!listed.into_inner().indicators.is_empty());
    s.stop().await;
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn jwt(claims: serde_json::Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("signed")
}

fn claims(tenant: Option<&str>, issuer: &str, audience: &str, exp: u64) -> serde_json::Value {
    let mut claims = serde_json::json!({
        "iss": issuer, "aud": audience, "exp": exp, "sub": "jane", "role": "reader",
    });
    if let Some(tenant) = tenant {
        claims["tenant"] = tenant.into();
    }
    claims
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_are_validated() {
    let s = start("auth_jwt").await;
    let later = now() + 600;
    let valid = jwt(claims(Some(ALPHA), ISSUER, AUDIENCE, later), JWT_SECRET);
    for (method, target) in [("ListIndicators", ALPHA), ("GetScorecard", ALPHA)] {
        let outcome = call(&s, method, target, Some(&valid)).await;
        assert_eq!(check(Expect::Allowed, &outcome), None, "{method}");
    }
    let other = call(&s, "ListIndicators", BETA, Some(&valid)).await;
    assert_eq!(check(Expect::WrongTenant, &other), None);
    let reader_writes = call(&s, "CreateIndicator", ALPHA, Some(&valid)).await;
    assert_eq!(check(Expect::WrongRole, &reader_writes), None);

    let other_secret = b"another secret of at least 32 bytes, not ours";
    // (what is wrong, the token, what the message says)
    let cases = [
        (
            "wrong issuer",
            jwt(
                claims(Some(ALPHA), "https://evil.test", AUDIENCE, later),
                JWT_SECRET,
            ),
            "wrong issuer",
        ),
        (
            "wrong audience",
            jwt(
                claims(Some(ALPHA), ISSUER, "another-app", later),
                JWT_SECRET,
            ),
            "wrong audience",
        ),
        (
            "expired",
            jwt(
                claims(Some(ALPHA), ISSUER, AUDIENCE, now() - 3_600),
                JWT_SECRET,
            ),
            "expired",
        ),
        (
            "no tenant claim",
            jwt(claims(None, ISSUER, AUDIENCE, later), JWT_SECRET),
            "no tenant id in its `tenant` claim",
        ),
        (
            "bad signature",
            jwt(claims(Some(ALPHA), ISSUER, AUDIENCE, later), other_secret),
            "bad signature",
        ),
    ];
    for (case, token, says) in cases {
        let status = call(&s, "ListIndicators", ALPHA, Some(&token))
            .await
            .expect_err(case);
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{case}: {}",
            status.message()
        );
        assert!(
            status.message().contains(says),
            "{case}: {}",
            status.message()
        );
    }
    s.stop().await;
}

// ---------------------------------------------------------------------------
// scoring: the service token and the cache

/// 2026-10-05T01:00:00Z (09:00 in Shanghai, the starter kit's time zone).
const OCT_5: i64 = 1_791_162_000;

fn event(id: &str, at: i64, payload: Payload) -> ing::Event {
    ing::Event {
        event_id: id.to_owned(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: at,
            nanos: 0,
        }),
        payload: Some(payload),
    }
}

/// Team `t1` with agent `ann`, and `tickets` chat tickets she resolves.
fn ann_with_tickets(tickets: usize) -> Vec<ing::Event> {
    let roster_at = OCT_5 - 300 * 86_400;
    let mut events = vec![
        event(
            "team",
            roster_at,
            Payload::Team(ing::TeamUpsert {
                team_id: "t1".into(),
                display_name: "T1".into(),
                ..Default::default()
            }),
        ),
        event(
            "ann",
            roster_at,
            Payload::Agent(ing::AgentUpsert {
                agent_id: "ann".into(),
                display_name: "Ann".into(),
                team_id: "t1".into(),
                role: "tier1".into(),
                hired_on: "2025-01-01".into(),
                active: true,
            }),
        ),
    ];
    for n in 0..tickets {
        let at = OCT_5 + n as i64 * 3_600;
        let ticket = |ty: ing::TicketEventType, agent: &str| ing::TicketEvent {
            ticket_id: format!("T{n}"),
            r#type: ty as i32,
            agent_id: agent.into(),
            channel: ing::Channel::Chat as i32,
            category: "billing".into(),
            customer_id: format!("c{n}"),
            ..Default::default()
        };
        events.push(event(
            &format!("T{n}-c"),
            at,
            Payload::Ticket(ticket(ing::TicketEventType::Created, "")),
        ));
        events.push(event(
            &format!("T{n}-f"),
            at + 60,
            Payload::Ticket(ticket(ing::TicketEventType::FirstResponse, "ann")),
        ));
        events.push(event(
            &format!("T{n}-r"),
            at + 600,
            Payload::Ticket(ticket(ing::TicketEventType::Resolved, "ann")),
        ));
    }
    events
}

async fn ingest(s: &Stack, tenant: &str, events: Vec<ing::Event>) {
    let answer = s
        .ingestion
        .clone()
        .ingest_events(with_token(
            ing::IngestEventsRequest {
                parent: parent(tenant),
                events,
            },
            Some(&token("all-admin")),
        ))
        .await
        .expect("ingested")
        .into_inner();
    assert_eq!(answer.rejected, 0, "{:?}", answer.results);
}

async fn scorecard(
    client: &ScoringServiceClient<Channel>,
    tenant: &str,
    key_id: &str,
) -> Result<sc::Scorecard, Status> {
    client
        .clone()
        .get_scorecard(with_token(
            crate::ann_in_october(tenant),
            Some(&token(key_id)),
        ))
        .await
        .map(|r| r.into_inner().scorecard.expect("a scorecard"))
}

/// Each indicator's value and sample, in order (display names are maps, so
/// their order is not stable).
fn values(card: &sc::Scorecard) -> Vec<String> {
    card.indicators
        .iter()
        .map(|i| format!("{} {:?} {}", i.indicator, i.value, i.sample_size))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoring_calls_with_its_service_token_and_caches_per_tenant() {
    let s = start("auth_scoring").await;
    for (tenant, tickets) in [(ALPHA, 1), (BETA, 3)] {
        call(&s, "InstallStarterKit", tenant, Some(&token("all-admin")))
            .await
            .expect("starter kit");
        ingest(&s, tenant, ann_with_tickets(tickets)).await;
    }

    // With the service token, scoring reads definitions and aggregates.
    let alpha = scorecard(&s.scoring, ALPHA, "alpha-reader")
        .await
        .expect("alpha's card");
    let beta = scorecard(&s.scoring, BETA, "all-admin")
        .await
        .expect("beta's card");
    assert_eq!((alpha.tenant.as_str(), beta.tenant.as_str()), (ALPHA, BETA));
    assert_ne!(
        values(&alpha),
        values(&beta),
        "different data, different cards"
    );
    // Served again (from the cache now), each tenant still gets its own.
    let beta_again = scorecard(&s.scoring, BETA, "all-admin")
        .await
        .expect("beta again");
    let alpha_again = scorecard(&s.scoring, ALPHA, "alpha-reader")
        .await
        .expect("alpha again");
    assert_eq!(values(&beta_again), values(&beta));
    assert_eq!(values(&alpha_again), values(&alpha));
    assert_eq!(
        (alpha_again.tenant.as_str(), beta_again.tenant.as_str()),
        (ALPHA, BETA)
    );
    // A tenant's key can still not read the other's cached card.
    let denied = scorecard(&s.scoring, BETA, "alpha-reader")
        .await
        .expect_err("cached or not");
    assert_eq!(
        (denied.code(), denied.message()),
        (Code::PermissionDenied, TENANT_DENIED)
    );

    // Every cache key names exactly one tenant, and both tenants have some.
    let client = redis::Client::open(kpi_testkit::shared_redis_url()).expect("redis url");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", s.cache_prefix))
        .query_async(&mut redis)
        .await
        .expect("keys");
    let tagged = |tenant: &str| {
        keys.iter()
            .filter(|k| k.contains(&format!("{{{tenant}}}")))
            .count()
    };
    assert!(tagged(ALPHA) > 0 && tagged(BETA) > 0, "{keys:?}");
    assert_eq!(tagged(ALPHA) + tagged(BETA), keys.len(), "{keys:?}");

    // Without a service token, the catalog and ingestion refuse scoring.
    let prefix = kpi_testkit::unique_prefix("auth_no_token");
    let tokenless = spawn_scoring(
        s.dir.path(),
        &s.catalog_url,
        &s.ingestion_url,
        None,
        &prefix,
    )
    .await;
    let client = ScoringServiceClient::connect(tokenless.endpoint())
        .await
        .expect("client");
    let refused = scorecard(&client, ALPHA, "alpha-reader")
        .await
        .expect_err("no service token");
    assert_eq!(refused.code(), Code::Internal, "{}", refused.message());
    tokenless.stop().await.expect("stops");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_without_credentials_unless_auth_is_off() {
    let db = TestDb::new(DbKind::Postgres).await.expect("db");
    let mut settings = kpi_testkit::settings(ServiceKind::Catalog, &db.url);
    settings.auth = AuthSettings::default();
    let error = indicator_catalog::App::build(&settings)
        .await
        .err()
        .expect("no credentials, no server");
    assert!(
        format!("{error:#}").contains("no credentials configured"),
        "{error:#}"
    );

    // An unreadable key file is named.
    settings.auth = AuthSettings::with_api_keys("/nonexistent/api-keys");
    let error = indicator_catalog::App::build(&settings)
        .await
        .err()
        .expect("missing file");
    assert!(
        format!("{error:#}").contains("KPI_API_KEYS_FILE"),
        "{error:#}"
    );

    // Explicitly off: served to anyone.
    settings.auth = AuthSettings::off();
    let app = indicator_catalog::App::build(&settings)
        .await
        .expect("explicitly open");
    let server = RunningServer::spawn(app.local_addr().expect("addr"), |s| {
        app.run_until_stopped(s)
    });
    let mut client = CatalogServiceClient::connect(server.endpoint())
        .await
        .expect("client");
    client
        .list_indicators(cat::ListIndicatorsRequest {
            parent: parent(ALPHA),
            ..Default::default()
        })
        .await
        .expect("open");
    server.stop().await.expect("stops");
}
