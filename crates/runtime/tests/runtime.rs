//! Integration tests of kpi-runtime: settings layering, resource names, and
//! a real server (health, reflection v1/v1alpha, graceful drain).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use kpi_runtime::auth::ServerAuth;
use kpi_runtime::names::{
    child_name, decode_page_token, encode_page_token, page_size, parse_child, parse_parent,
};
use kpi_runtime::server::{ServeError, ServeOptions, bind, serve};
use kpi_runtime::settings::{LogFormat, ServiceKind, Settings, SettingsError};
use kpi_runtime::status::field_violations;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::service::Routes;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const CATALOG: &str = "kpi.catalog.v1.CatalogService";

// ---------------------------------------------------------------- settings

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |key| map.get(key).cloned()
}

/// A config file unique to this test, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "kpi-runtime-test-{}-{name}.env",
            std::process::id()
        ));
        std::fs::write(&path, contents).expect("write temp config file");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn settings_defaults() {
    for kind in ServiceKind::ALL {
        let settings = Settings::from_lookup(kind, env(&[])).expect("defaults load");
        assert_eq!(settings.service, kind);
        assert_eq!(
            settings.listen_addr,
            SocketAddr::from(([127, 0, 0, 1], kind.default_port()))
        );
        assert_eq!(settings.database_url, "sqlite://kpi.db?mode=rwc");
        assert_eq!(settings.redis_url, None);
        assert_eq!(settings.redis_prefix, "kpi");
        assert_eq!(settings.catalog_url, "http://127.0.0.1:50051");
        assert_eq!(settings.ingestion_url, "http://127.0.0.1:50052");
        assert_eq!(settings.log_format, LogFormat::Text);
        assert_eq!(settings.log_filter, "info");
        assert_eq!(settings.drain_timeout, Duration::from_secs(20));
        assert!(settings.run_migrations);
    }
    assert_eq!(ServiceKind::Catalog.binary_name(), "indicator-catalog");
    assert_eq!(ServiceKind::Ingestion.binary_name(), "data-ingestion");
    assert_eq!(ServiceKind::Scoring.binary_name(), "scoring");
    assert_eq!(ServiceKind::Scoring.default_port(), 50053);
    assert_eq!(
        ServiceKind::Ingestion.grpc_service_name(),
        "kpi.ingestion.v1.IngestionService"
    );
    assert_eq!(
        ServiceKind::Scoring.grpc_service_name(),
        "kpi.scoring.v1.ScoringService"
    );
}

#[test]
fn settings_env_overrides_file_overrides_defaults() {
    let file = TempFile::new(
        "layers",
        "# a comment\n\
         KPI_LISTEN_ADDR=0.0.0.0:6000\n\
         KPI_DATABASE_URL=\"postgres://kpi:filepass@db:5432/kpi\"\n\
         KPI_REDIS_URL=redis://cache:6379\n\
         KPI_REDIS_PREFIX=kpi-staging\n\
         KPI_LOG_FORMAT=json\n\
         KPI_LOG=debug\n\
         KPI_DRAIN_TIMEOUT_SECS=5\n\
         \n\
         KPI_RUN_MIGRATIONS=false\n",
    );
    let settings = Settings::from_lookup(
        ServiceKind::Scoring,
        env(&[
            ("KPI_CONFIG_FILE", file.path()),
            ("KPI_LISTEN_ADDR", "127.0.0.1:0"),
            ("KPI_DRAIN_TIMEOUT_SECS", "7"),
            ("KPI_CATALOG_URL", "http://catalog:50051"),
            ("RUST_LOG", "warn"),
        ]),
    )
    .expect("layers load");
    // environment wins
    assert_eq!(settings.listen_addr, SocketAddr::from(([127, 0, 0, 1], 0)));
    assert_eq!(settings.drain_timeout, Duration::from_secs(7));
    assert_eq!(settings.catalog_url, "http://catalog:50051");
    assert_eq!(settings.log_filter, "warn");
    // file beats defaults
    assert_eq!(settings.database_url, "postgres://kpi:filepass@db:5432/kpi");
    assert_eq!(settings.redis_url.as_deref(), Some("redis://cache:6379"));
    assert_eq!(settings.redis_prefix, "kpi-staging");
    assert_eq!(settings.log_format, LogFormat::Json);
    assert!(!settings.run_migrations);
    // defaults remain where nobody spoke
    assert_eq!(settings.ingestion_url, "http://127.0.0.1:50052");

    // KPI_LOG wins over RUST_LOG; an empty redis URL means none.
    let settings = Settings::from_lookup(
        ServiceKind::Scoring,
        env(&[
            ("KPI_CONFIG_FILE", file.path()),
            ("RUST_LOG", "warn"),
            ("KPI_LOG", "kpi=trace"),
            ("KPI_REDIS_URL", ""),
        ]),
    )
    .expect("second load");
    assert_eq!(settings.log_filter, "kpi=trace");
    assert_eq!(settings.redis_url, None);
}

#[test]
fn settings_metrics_connection_age_and_otlp() {
    let defaults = Settings::from_lookup(ServiceKind::Scoring, env(&[])).expect("defaults");
    assert_eq!(defaults.metrics_addr, None);
    assert_eq!(defaults.max_connection_age, None);
    assert_eq!(defaults.max_connection_age_grace, Duration::from_secs(30));
    assert_eq!(defaults.otlp_endpoint, None);
    assert_eq!(ServeOptions::from(&defaults), ServeOptions::default());

    let file = TempFile::new(
        "telemetry",
        "KPI_METRICS_ADDR=0.0.0.0:9464\nKPI_MAX_CONNECTION_AGE_SECS=60\n",
    );
    let settings = Settings::from_lookup(
        ServiceKind::Scoring,
        env(&[
            ("KPI_CONFIG_FILE", file.path()),
            ("KPI_MAX_CONNECTION_AGE_GRACE_SECS", "10"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector:4317"),
        ]),
    )
    .expect("load");
    assert_eq!(
        settings.metrics_addr,
        Some(SocketAddr::from(([0, 0, 0, 0], 9464)))
    );
    let options = ServeOptions::from(&settings);
    assert_eq!(options.max_connection_age, Some(Duration::from_secs(60)));
    assert_eq!(options.max_connection_age_grace, Duration::from_secs(10));
    assert_eq!(
        settings.otlp_endpoint.as_deref(),
        Some("http://otel-collector:4317")
    );

    // `off`, empty and 0 switch things off again.
    let off = Settings::from_lookup(
        ServiceKind::Scoring,
        env(&[
            ("KPI_CONFIG_FILE", file.path()),
            ("KPI_METRICS_ADDR", "off"),
            ("KPI_MAX_CONNECTION_AGE_SECS", "0"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
        ]),
    )
    .expect("load");
    assert_eq!(off.metrics_addr, None);
    assert_eq!(off.max_connection_age, None);
    assert_eq!(off.otlp_endpoint, None);
}

#[test]
fn settings_bad_values_name_the_variable() {
    let cases = [
        ("KPI_LISTEN_ADDR", "localhost:x", "a socket address"),
        ("KPI_DRAIN_TIMEOUT_SECS", "soon", "seconds"),
        ("KPI_RUN_MIGRATIONS", "maybe", "boolean"),
        ("KPI_LOG_FORMAT", "xml", "json"),
        ("KPI_CATALOG_URL", "catalog:50051", "URL"),
        ("KPI_DATABASE_URL", "mysql://x", "URL"),
        ("KPI_METRICS_ADDR", "9464", "socket address"),
        ("KPI_MAX_CONNECTION_AGE_SECS", "5m", "seconds"),
        ("KPI_MAX_CONNECTION_AGE_GRACE_SECS", "-1", "seconds"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317", "URL"),
        ("KPI_REDIS_PREFIX", "two words", "without spaces"),
        ("KPI_REDIS_PREFIX", "kpi:{blue}", "braces"),
        ("KPI_REDIS_PREFIX", " ", "non-empty"),
    ];
    for (key, value, expected) in cases {
        let err = Settings::from_lookup(ServiceKind::Catalog, env(&[(key, value)]))
            .err()
            .unwrap_or_else(|| panic!("{key}={value} should be rejected"));
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{key}: {value:?} is not")),
            "{message}"
        );
        assert!(message.contains(expected), "{message}");
    }
    let err = Settings::from_lookup(
        ServiceKind::Catalog,
        env(&[("KPI_LISTEN_ADDR", "localhost:x")]),
    )
    .expect_err("rejected");
    assert_eq!(
        err.to_string(),
        r#"KPI_LISTEN_ADDR: "localhost:x" is not a socket address"#
    );

    // a bad database URL is echoed with its password redacted
    let err = Settings::from_lookup(
        ServiceKind::Catalog,
        env(&[("KPI_DATABASE_URL", "mysql://root:hunter2@db/kpi")]),
    )
    .expect_err("rejected");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(err.to_string().contains("root:***@db"), "{err}");
}

#[test]
fn settings_config_file_errors() {
    let file = TempFile::new("typo", "KPI_LISTEN_ADR=0.0.0.0:1\n");
    let err = Settings::from_lookup(
        ServiceKind::Catalog,
        env(&[("KPI_CONFIG_FILE", file.path())]),
    )
    .expect_err("unknown key rejected");
    assert!(
        matches!(&err, SettingsError::ConfigFileSyntax { line: 1, reason, .. } if reason.contains("KPI_LISTEN_ADR")),
        "{err}"
    );

    // a bad value in the file names the variable too
    let file = TempFile::new("badvalue", "KPI_RUN_MIGRATIONS=perhaps\n");
    let err = Settings::from_lookup(
        ServiceKind::Catalog,
        env(&[("KPI_CONFIG_FILE", file.path())]),
    )
    .expect_err("bad value rejected");
    assert!(
        err.to_string()
            .starts_with("KPI_RUN_MIGRATIONS: \"perhaps\""),
        "{err}"
    );

    let err = Settings::from_lookup(
        ServiceKind::Catalog,
        env(&[("KPI_CONFIG_FILE", "/nonexistent/kpi-runtime.env")]),
    )
    .expect_err("missing file rejected");
    assert!(matches!(err, SettingsError::ReadConfigFile { .. }), "{err}");
    assert!(err.to_string().starts_with("KPI_CONFIG_FILE:"), "{err}");
}

#[test]
fn settings_debug_redacts_secrets() {
    let settings = Settings::from_lookup(
        ServiceKind::Ingestion,
        env(&[
            ("KPI_DATABASE_URL", "postgres://user:s3cr3t@host/db"),
            ("KPI_REDIS_URL", "redis://:r3d1s@cache:6379/0"),
        ]),
    )
    .expect("load");
    let debug = format!("{settings:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(!debug.contains("r3d1s"), "{debug}");
    assert!(debug.contains("postgres://user:***@host/db"), "{debug}");
    assert!(debug.contains("redis://:***@cache:6379/0"), "{debug}");
    // the real values are still there for the code that needs them
    assert_eq!(settings.database_url, "postgres://user:s3cr3t@host/db");
}

#[test]
fn telemetry_init_is_repeatable() {
    let mut settings = Settings::defaults(ServiceKind::Catalog);
    settings.log_format = LogFormat::Json;
    kpi_runtime::telemetry::init(&settings);
    settings.log_format = LogFormat::Text;
    kpi_runtime::telemetry::init(&settings);
    tracing::info!(check = true, "telemetry still works after a second init");
}

// ---------------------------------------------------------------- names

fn pair(field: &str) -> Vec<String> {
    vec![field.to_owned()]
}

fn violated_fields(status: &tonic::Status) -> Vec<String> {
    field_violations(status)
        .into_iter()
        .map(|(field, _)| field)
        .collect()
}

#[test]
fn parse_parent_accepts_and_rejects() {
    assert_eq!(
        parse_parent("parent", "tenants/acme").ok(),
        Some("acme".to_owned())
    );
    assert_eq!(
        parse_parent("parent", "tenants/a-b_9").ok(),
        Some("a-b_9".to_owned())
    );
    let longest = format!("tenants/{}", "a".repeat(63));
    assert!(parse_parent("parent", &longest).is_ok());

    let too_long = format!("tenants/{}", "a".repeat(64));
    for bad in [
        "",
        "acme",
        "tenants/",
        "tenants/Acme",
        "tenants/-acme",
        "tenants/acme/",
        "tenants/acme/indicators/x",
        "tenant/acme",
        "tenants/ac me",
        too_long.as_str(),
    ] {
        let status = parse_parent("request.parent", bad)
            .err()
            .unwrap_or_else(|| panic!("{bad:?} accepted"));
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}");
        assert_eq!(violated_fields(&status), pair("request.parent"), "{bad:?}");
        assert!(
            status.message().contains("request.parent"),
            "{}",
            status.message()
        );
    }
}

#[test]
fn parse_child_accepts_and_rejects() {
    assert_eq!(
        parse_child(
            "name",
            "tenants/acme/indicators/on_time_delivery",
            "indicators"
        )
        .ok(),
        Some(("acme".to_owned(), "on_time_delivery".to_owned()))
    );
    assert_eq!(
        child_name("acme", "indicators", "otd"),
        "tenants/acme/indicators/otd"
    );
    let name = child_name("t-1", "templates", "k_2");
    assert_eq!(
        parse_child("name", &name, "templates").ok(),
        Some(("t-1".to_owned(), "k_2".to_owned()))
    );

    for bad in [
        "tenants/acme/indicators",
        "tenants/acme/templates/otd",
        "tenants/acme/indicators/otd/extra",
        "tenants/ACME/indicators/otd",
        "tenants/acme/indicators/on-time",
        "tenants/acme/indicators/",
        "tenants/acme/indicators/_x",
        "indicators/otd",
    ] {
        let status = parse_child("indicator.name", bad, "indicators")
            .err()
            .unwrap_or_else(|| panic!("{bad:?} accepted"));
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}");
        assert_eq!(violated_fields(&status), pair("indicator.name"), "{bad:?}");
    }
    let status =
        parse_child("name", "tenants/acme/indicators/On", "indicators").expect_err("rejected");
    let violations = field_violations(&status);
    assert_eq!(violations.len(), 1);
    assert!(violations[0].1.contains("\"On\""), "{violations:?}");
}

#[test]
fn page_sizes() {
    assert_eq!(page_size("page_size", 0, 50, 1000).ok(), Some(50));
    assert_eq!(page_size("page_size", 10, 50, 1000).ok(), Some(10));
    assert_eq!(page_size("page_size", 5000, 50, 1000).ok(), Some(1000));
    let status = page_size("page_size", -1, 50, 1000).expect_err("negative rejected");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), pair("page_size"));
}

#[test]
fn page_tokens_round_trip_and_reject_garbage() {
    for key in ["", "otd", "tenants/acme/indicators/otd", "ünïcode"] {
        let token = encode_page_token(key);
        assert!(
            !token.contains(key) || key.is_empty(),
            "token should be opaque"
        );
        assert_eq!(
            decode_page_token("page_token", &token).ok(),
            Some(key.to_owned())
        );
    }
    assert_eq!(
        decode_page_token("page_token", "").ok(),
        Some(String::new())
    );
    for garbage in ["!!!", "b3Rk", "not a token", "%%"] {
        let status = decode_page_token("page_token", garbage)
            .err()
            .unwrap_or_else(|| panic!("{garbage:?} accepted"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(violated_fields(&status), pair("page_token"));
    }
}

// ---------------------------------------------------------------- server

struct Spawned {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<Result<(), ServeError>>,
}

/// Binds 127.0.0.1:0 before spawning, so clients can connect at once.
async fn spawn_server(drain_timeout: Duration) -> Spawned {
    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        Routes::default(),
        &[CATALOG],
        ServeOptions {
            drain_timeout,
            ..ServeOptions::default()
        },
        ServerAuth::Off,
        async move {
            let _ = stop.await;
        },
    ));
    Spawned {
        addr,
        shutdown,
        server,
    }
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

async fn check(
    client: &mut HealthClient<Channel>,
    service: &str,
) -> Result<ServingStatus, tonic::Status> {
    let response = client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?;
    Ok(response.into_inner().status())
}

macro_rules! reflection_round_trip {
    ($version:ident, $channel:expr) => {{
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;

        let mut client = ServerReflectionClient::new($channel);
        let requests = vec![
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            },
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::FileContainingSymbol(CATALOG.to_owned())),
            },
        ];
        let mut responses = client
            .server_reflection_info(tokio_stream::iter(requests))
            .await?
            .into_inner();

        let listed = match responses.message().await?.and_then(|r| r.message_response) {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
            }
            other => panic!("unexpected list response: {other:?}"),
        };
        let files = match responses.message().await?.and_then(|r| r.message_response) {
            Some(MessageResponse::FileDescriptorResponse(files)) => files.file_descriptor_proto,
            other => panic!("unexpected symbol response: {other:?}"),
        };
        (listed, files)
    }};
}

#[tokio::test]
async fn server_serves_health_and_reflection_then_stops() -> TestResult {
    let spawned = spawn_server(Duration::from_secs(30)).await;
    let channel = channel(spawned.addr).await;

    let mut health = HealthClient::new(channel.clone());
    assert_eq!(check(&mut health, CATALOG).await?, ServingStatus::Serving);
    assert_eq!(check(&mut health, "").await?, ServingStatus::Serving);
    let unknown = check(&mut health, "kpi.scoring.v1.ScoringService").await;
    assert_eq!(unknown.err().map(|s| s.code()), Some(Code::NotFound));

    let (listed_v1, files_v1) = reflection_round_trip!(v1, channel.clone());
    let (listed_v1alpha, files_v1alpha) = reflection_round_trip!(v1alpha, channel.clone());
    for listed in [&listed_v1, &listed_v1alpha] {
        for expected in [
            CATALOG,
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ] {
            assert!(
                listed.iter().any(|name| name == expected),
                "{expected} missing from {listed:?}"
            );
        }
        // only what this server serves is advertised
        assert!(
            !listed
                .iter()
                .any(|name| name == "kpi.scoring.v1.ScoringService"),
            "{listed:?}"
        );
    }
    assert!(!files_v1.is_empty());
    assert!(!files_v1alpha.is_empty());

    drop(health);
    drop(channel);
    spawned.shutdown.send(()).map_err(|()| "server gone")?;
    let result = tokio::time::timeout(Duration::from_secs(10), spawned.server).await??;
    assert!(result.is_ok(), "{result:?}");

    // the listener is closed once serve returned
    let reconnect = Channel::from_shared(format!("http://{}", spawned.addr))?
        .connect()
        .await;
    assert!(reconnect.is_err(), "connected after shutdown");
    Ok(())
}

#[tokio::test]
async fn health_flips_to_not_serving_while_draining() -> TestResult {
    let spawned = spawn_server(Duration::from_secs(30)).await;
    let channel = channel(spawned.addr).await;
    let mut health = HealthClient::new(channel.clone());

    let mut overall = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner();
    let mut catalog = health
        .watch(HealthCheckRequest {
            service: CATALOG.to_owned(),
        })
        .await?
        .into_inner();
    assert_eq!(
        overall.message().await?.map(|r| r.status()),
        Some(ServingStatus::Serving)
    );
    assert_eq!(
        catalog.message().await?.map(|r| r.status()),
        Some(ServingStatus::Serving)
    );

    spawned.shutdown.send(()).map_err(|()| "server gone")?;

    // the open watches see the flip while the server is still draining them
    assert_eq!(
        overall.message().await?.map(|r| r.status()),
        Some(ServingStatus::NotServing)
    );
    assert_eq!(
        catalog.message().await?.map(|r| r.status()),
        Some(ServingStatus::NotServing)
    );
    assert!(
        !spawned.server.is_finished(),
        "server exited before its in-flight watches ended"
    );

    // once the in-flight calls end, the drain completes well before its timeout
    drop(overall);
    drop(catalog);
    drop(health);
    drop(channel);
    let result = tokio::time::timeout(Duration::from_secs(10), spawned.server).await??;
    assert!(result.is_ok(), "{result:?}");
    Ok(())
}

#[tokio::test]
async fn drain_timeout_bounds_shutdown() -> TestResult {
    let spawned = spawn_server(Duration::from_millis(200)).await;
    let channel = channel(spawned.addr).await;
    let mut health = HealthClient::new(channel.clone());
    let mut stuck = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(
        stuck.message().await?.map(|r| r.status()),
        Some(ServingStatus::Serving)
    );

    spawned.shutdown.send(()).map_err(|()| "server gone")?;
    // the watch never ends by itself; serve must still return after the drain timeout
    let result = tokio::time::timeout(Duration::from_secs(10), spawned.server).await??;
    assert!(result.is_ok(), "{result:?}");
    drop(stuck);
    Ok(())
}

/// The HTTP/2 frame types in `bytes`, a server's side of a connection.
fn frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let length =
            usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = bytes.get(9 + length..).unwrap_or_default();
    }
    types
}

#[tokio::test]
async fn connections_past_their_max_age_get_goaway_and_close() -> TestResult {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const GOAWAY: u8 = 7;
    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        Routes::default(),
        &[CATALOG],
        ServeOptions {
            max_connection_age: Some(Duration::from_secs(1)),
            max_connection_age_grace: Duration::from_secs(1),
            ..ServeOptions::default()
        },
        ServerAuth::Off,
        async move {
            let _ = stop.await;
        },
    ));

    // A bare HTTP/2 client: the preface, an empty SETTINGS frame and the
    // acknowledgement of the server's, then nothing; the server must end the
    // connection on its own, with GOAWAY (an idle connection that answers
    // pings would otherwise live on).
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await?;
    let mut received = vec![0_u8; 9];
    stream.read_exact(&mut received).await?;
    assert_eq!(
        received[3], 4,
        "the server opens with SETTINGS: {received:?}"
    );
    stream
        .write_all(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")
        .await?;
    // A guard against hanging only; the age is one second.
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut received)).await??;
    assert!(frame_types(&received).contains(&GOAWAY), "{received:?}");

    // New connections are still served.
    let mut health = HealthClient::new(channel(addr).await);
    assert_eq!(check(&mut health, "").await?, ServingStatus::Serving);
    drop(health);
    let _ = shutdown.send(());
    server.await??;
    Ok(())
}

// ---------------------------------------------------------------- metrics

/// One HTTP/1.1 request to `addr`; the whole response.
async fn http_get(addr: SocketAddr, request_line: &str) -> Result<String, std::io::Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("{request_line}\r\nhost: test\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

#[tokio::test]
async fn scrape_endpoint_renders_counters_and_histograms() -> TestResult {
    use kpi_runtime::metrics::{PrometheusReader, spawn_scrape_endpoint};
    use opentelemetry::KeyValue;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};

    // A provider of this test's own, not the global one.
    let reader = PrometheusReader::new(std::sync::Arc::new(ManualReader::builder().build()));
    let provider = SdkMeterProvider::builder()
        .with_reader(reader.clone())
        .build();
    let meter = provider.meter("test");
    let calls = meter.u64_counter("kpi.test.calls").build();
    calls.add(2, &[KeyValue::new("rpc.method", "Get")]);
    calls.add(1, &[KeyValue::new("rpc.method", "Get")]);
    let latency = meter
        .f64_histogram("kpi.test.latency")
        .with_unit("s")
        .with_boundaries(vec![0.1, 1.0])
        .build();
    latency.record(0.05, &[]);
    latency.record(0.5, &[]);
    latency.record(5.0, &[]);

    let readiness = kpi_runtime::readiness::Readiness::new();
    let addr = spawn_scrape_endpoint(SocketAddr::from(([127, 0, 0, 1], 0)), reader, readiness)?;
    let response = http_get(addr, "GET /metrics HTTP/1.1").await?;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.contains("content-type: text/plain; version=0.0.4"),
        "{response}"
    );
    let lines: Vec<&str> = response.lines().collect();
    for expected in [
        "# TYPE kpi_test_calls counter",
        "kpi_test_calls_total{rpc_method=\"Get\"} 3",
        "# TYPE kpi_test_latency_seconds histogram",
        "kpi_test_latency_seconds_bucket{le=\"0.1\"} 1",
        "kpi_test_latency_seconds_bucket{le=\"1\"} 2",
        "kpi_test_latency_seconds_bucket{le=\"+Inf\"} 3",
        "kpi_test_latency_seconds_sum 5.55",
        "kpi_test_latency_seconds_count 3",
    ] {
        assert!(
            lines.contains(&expected),
            "{expected:?} missing from {response}"
        );
    }

    let other = http_get(addr, "GET /other HTTP/1.1").await?;
    assert!(other.starts_with("HTTP/1.1 404 Not Found\r\n"), "{other}");
    let post = http_get(addr, "POST /metrics HTTP/1.1").await?;
    assert!(post.starts_with("HTTP/1.1 404 Not Found\r\n"), "{post}");
    Ok(())
}

#[tokio::test]
async fn probe_paths_answer_readiness_and_liveness_over_plain_http() -> TestResult {
    use kpi_runtime::metrics::{PrometheusReader, spawn_scrape_endpoint};
    use kpi_runtime::readiness::Readiness;
    use opentelemetry_sdk::metrics::ManualReader;

    let reader = PrometheusReader::new(std::sync::Arc::new(ManualReader::builder().build()));
    let readiness = Readiness::new();
    let addr = spawn_scrape_endpoint(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        reader,
        readiness.clone(),
    )?;
    let status_line = |response: String| response.lines().next().unwrap_or_default().to_owned();
    let ready = || async {
        http_get(addr, "GET /readyz HTTP/1.1")
            .await
            .map(status_line)
    };

    assert_eq!(
        ready().await?,
        "HTTP/1.1 503 Service Unavailable",
        "no server yet"
    );
    let live = http_get(addr, "GET /livez HTTP/1.1").await?;
    assert!(
        live.starts_with("HTTP/1.1 200 OK\r\n") && live.ends_with("alive\n"),
        "{live}"
    );
    let mut server = readiness.register();
    assert_eq!(
        ready().await?,
        "HTTP/1.1 503 Service Unavailable",
        "starting"
    );
    server.serving();
    let response = http_get(addr, "GET /readyz?verbose HTTP/1.1").await?;
    assert!(response.ends_with("\r\n\r\nready\n"), "{response}");
    server.draining();
    assert_eq!(
        ready().await?,
        "HTTP/1.1 503 Service Unavailable",
        "draining"
    );
    Ok(())
}
