//! TLS and mTLS between the services and from kpictl, with certificates made
//! here (rcgen): a CA, a server certificate for `localhost` and 127.0.0.1, a
//! client certificate, and a second CA with a client certificate of its own
//! that nothing should trust.
//!
//! The services run in this process on real sockets (port 0), configured
//! the way a deployment does it: `KPI_*` variables read by
//! `Settings::from_lookup`. Every client is the suite's own
//! (`kpi_runtime::client::connect_with_tls`, kpictl's import).
//!
//! - scoring computes a scorecard calling indicator-catalog and
//!   data-ingestion (which calls the catalog too) over TLS, and over mTLS
//!   with a server name override; health is served over TLS;
//! - connections aged out by `KPI_MAX_CONNECTION_AGE_SECS` end and the
//!   client reconnects, over TLS (the ageing wrapper sits under TLS);
//! - a plain client at a TLS listener gets UNAVAILABLE;
//! - a client trusting another CA (or the public roots) gets UNAVAILABLE;
//! - an mTLS listener refuses a client without a certificate and one with a
//!   certificate from another CA, and serves the right one;
//! - `kpictl import` over https works with `--ca-cert` (and
//!   `--client-cert`/`--client-key` against mTLS), and fails without it;
//! - bad TLS settings are refused at load with the variable named.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use kpi_proto::catalog::catalog_service_client::CatalogServiceClient;
use kpi_proto::catalog::{InstallStarterKitRequest, ListIndicatorsRequest};
use kpi_proto::ingestion as pb;
use kpi_proto::ingestion::ingestion_service_client::IngestionServiceClient;
use kpi_proto::scoring::scoring_service_client::ScoringServiceClient;
use kpi_runtime::client::{ClientOptions, TracedChannel, connect_with_tls};
use kpi_runtime::tls::{ClientTls, PemFile};
use kpi_runtime::{ServiceKind, Settings, SettingsError};
use kpi_testkit::{DbKind, RunningServer, TestDb};
use kpictl::ExitCode;
use kpictl::cli::{Cli, Command};
use kpictl::import::{ImportOptions, import};
use kpictl::progress::Progress;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The certificates of a test, as PEM files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA with a server certificate (`localhost`, 127.0.0.1) and a client
    /// certificate, and another CA with a client certificate.
    fn new() -> anyhow::Result<Pki> {
        let dir = tempfile::tempdir()?;
        let ca = new_ca("KPI test CA")?;
        write(dir.path(), "ca.pem", &ca.cert_pem)?;
        let server = new_leaf(&ca, "kpi-server", ExtendedKeyUsagePurpose::ServerAuth)?;
        write(dir.path(), "server.pem", &server.0)?;
        write(dir.path(), "server.key", &server.1)?;
        let client = new_leaf(&ca, "scoring", ExtendedKeyUsagePurpose::ClientAuth)?;
        write(dir.path(), "client.pem", &client.0)?;
        write(dir.path(), "client.key", &client.1)?;
        let other = new_ca("Somebody else's CA")?;
        write(dir.path(), "other-ca.pem", &other.cert_pem)?;
        let intruder = new_leaf(&other, "intruder", ExtendedKeyUsagePurpose::ClientAuth)?;
        write(dir.path(), "other-client.pem", &intruder.0)?;
        write(dir.path(), "other-client.key", &intruder.1)?;
        Ok(Pki { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn string(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// The listener's TLS variables; with `mtls`, client certificates from
    /// the CA are required too.
    fn server_env(&self, mtls: bool) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("KPI_TLS_CERT_FILE", self.string("server.pem")),
            ("KPI_TLS_KEY_FILE", self.string("server.key")),
        ];
        if mtls {
            env.push(("KPI_TLS_CLIENT_CA_FILE", self.string("ca.pem")));
        }
        env
    }

    /// The outbound TLS variables: trust the CA; with `mtls`, present the
    /// client certificate.
    fn client_env(&self, mtls: bool) -> Vec<(&'static str, String)> {
        let mut env = vec![("KPI_TLS_CA_FILE", self.string("ca.pem"))];
        if mtls {
            env.push(("KPI_TLS_CLIENT_CERT_FILE", self.string("client.pem")));
            env.push(("KPI_TLS_CLIENT_KEY_FILE", self.string("client.key")));
        }
        env
    }

    /// A client trusting `ca` and presenting `identity` (a `name.pem` and
    /// `name.key` pair) if given.
    fn client(&self, ca: &str, identity: Option<&str>) -> anyhow::Result<ClientTls> {
        let identity = identity.map(|name| {
            (
                PemFile::new("client cert", self.path(&format!("{name}.pem"))),
                PemFile::new("client key", self.path(&format!("{name}.key"))),
            )
        });
        Ok(ClientTls::load(
            Some(PemFile::new("ca", self.path(ca))),
            identity,
            None,
        )?)
    }
}

/// A CA certificate and what signs with it.
struct Ca {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn new_ca(name: &str) -> anyhow::Result<Ca> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(Ca {
        cert_pem: cert.pem(),
        issuer: Issuer::new(params, key),
    })
}

/// A certificate for `localhost` and 127.0.0.1 signed by `ca`: (cert, key).
fn new_leaf(
    ca: &Ca,
    name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> anyhow::Result<(String, String)> {
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca.issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn write(dir: &Path, name: &str, contents: &str) -> anyhow::Result<()> {
    std::fs::write(dir.join(name), contents).with_context(|| format!("cannot write {name}"))
}

/// A service's settings from these variables, as `Settings::load` would
/// read them from the environment, listening on 127.0.0.1:0, without
/// authentication.
fn settings(
    kind: ServiceKind,
    database_url: &str,
    env: &[(&'static str, String)],
) -> Result<Settings, SettingsError> {
    let mut vars: HashMap<&str, String> = env.iter().cloned().collect();
    vars.insert("KPI_LISTEN_ADDR", "127.0.0.1:0".to_owned());
    vars.insert("KPI_DATABASE_URL", database_url.to_owned());
    vars.insert("KPI_DRAIN_TIMEOUT_SECS", "5".to_owned());
    // These tests are about the transport; authentication has its own
    // (`auth`), so it is off here, explicitly.
    vars.insert("KPI_AUTH", "off".to_owned());
    Settings::from_lookup(kind, |key| vars.get(key).cloned())
}

/// `https://127.0.0.1:port` of a server.
fn https(server: &RunningServer) -> String {
    format!("https://127.0.0.1:{}", server.addr.port())
}

fn channel(url: &str, tls: &ClientTls) -> anyhow::Result<TracedChannel> {
    Ok(connect_with_tls(url, ClientOptions::default(), tls)?)
}

/// The three services over TLS (mTLS with `mtls`), each calling the others
/// over https with `client_env`.
struct Stack {
    catalog: RunningServer,
    ingestion: RunningServer,
    scoring: RunningServer,
}

impl Stack {
    async fn start(
        db: &TestDb,
        server_env: &[(&'static str, String)],
        client_env: &[(&'static str, String)],
    ) -> anyhow::Result<Stack> {
        let env: Vec<_> = server_env.iter().chain(client_env).cloned().collect();
        let catalog =
            indicator_catalog::App::build(&settings(ServiceKind::Catalog, &db.url, &env)?).await?;
        let catalog = RunningServer::spawn(catalog.local_addr()?, |s| catalog.run_until_stopped(s));

        let mut ingestion_env = env.clone();
        ingestion_env.push(("KPI_CATALOG_URL", https(&catalog)));
        let ingestion =
            data_ingestion::App::build(&settings(ServiceKind::Ingestion, &db.url, &ingestion_env)?)
                .await?;
        let ingestion =
            RunningServer::spawn(ingestion.local_addr()?, |s| ingestion.run_until_stopped(s));

        let mut scoring_env = env;
        scoring_env.push(("KPI_CATALOG_URL", https(&catalog)));
        scoring_env.push(("KPI_INGESTION_URL", https(&ingestion)));
        let scoring =
            scoring::App::build(&settings(ServiceKind::Scoring, &db.url, &scoring_env)?).await?;
        let scoring = RunningServer::spawn(scoring.local_addr()?, |s| scoring.run_until_stopped(s));
        Ok(Stack {
            catalog,
            ingestion,
            scoring,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.scoring.stop().await?;
        self.ingestion.stop().await?;
        self.catalog.stop().await
    }
}

async fn health(url: &str, tls: &ClientTls) -> Result<ServingStatus, tonic::Status> {
    let channel = connect_with_tls(url, ClientOptions::default(), tls)
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    Ok(answer.into_inner().status())
}

/// One catalog call; the status tells whether the connection was accepted.
async fn list_indicators(url: &str, tls: &ClientTls) -> Result<(), tonic::Status> {
    let channel = connect_with_tls(url, ClientOptions::default(), tls)
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    CatalogServiceClient::new(channel)
        .list_indicators(ListIndicatorsRequest {
            parent: "tenants/acme".to_owned(),
            ..Default::default()
        })
        .await?;
    Ok(())
}

/// The status, or a panic saying the call should have failed.
fn refused(result: Result<(), tonic::Status>, what: &str) -> tonic::Status {
    match result {
        Ok(()) => panic!("{what}: the call went through"),
        Err(status) => {
            eprintln!("{what}: {:?} {}", status.code(), status.message());
            status
        }
    }
}

/// Ann of team ecom, and one created ticket.
fn events() -> Vec<pb::Event> {
    let mut events = crate::roster();
    events.push(crate::ticket_created("e-1"));
    events
}

/// Starts the stack with these variables, fills tenant acme through the
/// catalog and ingestion, and asks scoring for Ann's card, all over https
/// with `tls`.
async fn scorecard_across_the_stack(
    db: &TestDb,
    server_env: &[(&'static str, String)],
    client_env: &[(&'static str, String)],
    tls: &ClientTls,
) -> anyhow::Result<()> {
    let stack = Stack::start(db, server_env, client_env).await?;
    for server in [&stack.catalog, &stack.ingestion, &stack.scoring] {
        assert_eq!(health(&https(server), tls).await?, ServingStatus::Serving);
    }
    CatalogServiceClient::new(channel(&https(&stack.catalog), tls)?)
        .install_starter_kit(InstallStarterKitRequest {
            parent: "tenants/acme".to_owned(),
            time_zone: String::new(),
        })
        .await?;
    let answer = IngestionServiceClient::new(channel(&https(&stack.ingestion), tls)?)
        .ingest_events(pb::IngestEventsRequest {
            parent: "tenants/acme".to_owned(),
            events: events(),
        })
        .await?
        .into_inner();
    assert_eq!(answer.accepted, 3, "{answer:?}");
    // Scoring resolves the template at the catalog and queries measures at
    // ingestion, which projects the events with the catalog's calendar:
    // every hop is https.
    let card = ScoringServiceClient::new(channel(&https(&stack.scoring), tls)?)
        .get_scorecard(crate::ann_in_october("acme"))
        .await?
        .into_inner();
    let card = card.scorecard.context("no scorecard in the answer")?;
    assert_eq!(card.subject.as_ref().map(|s| s.id.as_str()), Some("ann"));
    assert_eq!(card.team_id, "ecom");
    assert!(!card.indicators.is_empty(), "{card:?}");
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoring_computes_a_scorecard_calling_catalog_and_ingestion_over_tls() -> anyhow::Result<()>
{
    let pki = Pki::new()?;
    let db = TestDb::new(DbKind::Postgres).await?;
    let tls = pki.client("ca.pem", None)?;
    scorecard_across_the_stack(&db, &pki.server_env(false), &pki.client_env(false), &tls).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoring_computes_a_scorecard_over_mtls_with_a_server_name_override() -> anyhow::Result<()>
{
    let pki = Pki::new()?;
    let db = TestDb::new(DbKind::Sqlite).await?;
    let mut client_env = pki.client_env(true);
    // Peers are dialled at 127.0.0.1; their certificates are checked for
    // `localhost` instead.
    client_env.push(("KPI_TLS_DOMAIN_NAME", "localhost".to_owned()));
    let tls = pki.client("ca.pem", Some("client"))?;
    scorecard_across_the_stack(&db, &pki.server_env(true), &client_env, &tls).await
}

/// indicator-catalog alone, with these variables.
async fn catalog(db: &TestDb, env: &[(&'static str, String)]) -> anyhow::Result<RunningServer> {
    let app = indicator_catalog::App::build(&settings(ServiceKind::Catalog, &db.url, env)?).await?;
    Ok(RunningServer::spawn(app.local_addr()?, |s| {
        app.run_until_stopped(s)
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aged_out_tls_connections_end_and_the_client_reconnects_over_tls() -> anyhow::Result<()> {
    let pki = Pki::new()?;
    let db = TestDb::new(DbKind::Sqlite).await?;
    let mut env = pki.server_env(false);
    env.push(("KPI_MAX_CONNECTION_AGE_SECS", "1".to_owned()));
    env.push(("KPI_MAX_CONNECTION_AGE_GRACE_SECS", "1".to_owned()));
    let server = catalog(&db, &env).await?;

    // A TLS channel whose TCP connections are counted.
    let addr = server.addr;
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let connector = tower::service_fn(move |_: tonic::codegen::http::Uri| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        }
    });
    let channel = tonic::transport::Endpoint::from_shared(https(&server))?
        .tls_config(pki.client("ca.pem", None)?.config())?
        .connect_with_connector_lazy(connector);
    let mut client = HealthClient::new(channel);
    let check = HealthCheckRequest {
        service: String::new(),
    };
    assert_eq!(
        client.check(check.clone()).await?.into_inner().status(),
        ServingStatus::Serving
    );
    // The server ends the first connection after its age (GOAWAY) and
    // grace; calls then go over a new TLS connection. The timeout only
    // guards against hanging.
    tokio::time::timeout(Duration::from_secs(60), async {
        while connections.load(Ordering::SeqCst) < 2 {
            let _ = client.check(check.clone()).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await?;
    assert_eq!(
        client.check(check).await?.into_inner().status(),
        ServingStatus::Serving
    );
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_client_at_a_tls_listener_gets_unavailable() -> anyhow::Result<()> {
    let pki = Pki::new()?;
    let db = TestDb::new(DbKind::Sqlite).await?;
    let server = catalog(&db, &pki.server_env(false)).await?;

    let plain = format!("http://127.0.0.1:{}", server.addr.port());
    let status = refused(
        list_indicators(&plain, &ClientTls::default()).await,
        "plain text to a TLS listener",
    );
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().starts_with("connection failed"),
        "{status:?}"
    );
    // The listener is still fine for TLS clients.
    list_indicators(&https(&server), &pki.client("ca.pem", None)?).await?;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trusting_another_ca_gets_unavailable() -> anyhow::Result<()> {
    let pki = Pki::new()?;
    let db = TestDb::new(DbKind::Sqlite).await?;
    let server = catalog(&db, &pki.server_env(false)).await?;
    let url = https(&server);

    let status = refused(
        list_indicators(&url, &pki.client("other-ca.pem", None)?).await,
        "a client trusting another CA",
    );
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("UnknownIssuer"), "{status:?}");
    // Without KPI_TLS_CA_FILE only the public roots are trusted.
    let status = refused(
        list_indicators(&url, &ClientTls::default()).await,
        "a client trusting the public roots",
    );
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("UnknownIssuer"), "{status:?}");
    list_indicators(&url, &pki.client("ca.pem", None)?).await?;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mtls_listener_serves_only_clients_with_a_certificate_from_its_ca() -> anyhow::Result<()>
{
    let pki = Pki::new()?;
    let db = TestDb::new(DbKind::Sqlite).await?;
    let server = catalog(&db, &pki.server_env(true)).await?;
    let url = https(&server);

    let status = refused(
        list_indicators(&url, &pki.client("ca.pem", None)?).await,
        "a client without a certificate",
    );
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let status = refused(
        list_indicators(&url, &pki.client("ca.pem", Some("other-client"))?).await,
        "a client with a certificate from another CA",
    );
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    let good = pki.client("ca.pem", Some("client"))?;
    list_indicators(&url, &good).await?;
    assert_eq!(health(&url, &good).await?, ServingStatus::Serving);
    server.stop().await
}

/// `kpictl` with these arguments, parsed as the binary does.
fn kpictl(args: &[&str]) -> anyhow::Result<(Cli, ImportOptions)> {
    let cli = Cli::try_parse_from(std::iter::once("kpictl").chain(args.iter().copied()))?;
    let Command::Import(import_args) = &cli.command else {
        anyhow::bail!("not an import: {args:?}");
    };
    let options = ImportOptions::from_cli(&cli, import_args);
    Ok((cli, options))
}

/// The catalog and ingestion for kpictl: TLS, mTLS with `mtls`.
async fn catalog_and_ingestion(
    pki: &Pki,
    db: &TestDb,
    mtls: bool,
) -> anyhow::Result<(RunningServer, RunningServer)> {
    let mut env = pki.server_env(mtls);
    env.extend(pki.client_env(mtls));
    let catalog = catalog(db, &env).await?;
    env.push(("KPI_CATALOG_URL", https(&catalog)));
    let app = data_ingestion::App::build(&settings(ServiceKind::Ingestion, &db.url, &env)?).await?;
    let ingestion = RunningServer::spawn(app.local_addr()?, |s| app.run_until_stopped(s));
    Ok((catalog, ingestion))
}

/// Three events as JSON Lines.
fn jsonl(dir: &Path) -> anyhow::Result<String> {
    let lines = [
        r#"{"event_id":"k1","occurred_at":"2026-10-05T09:00:00Z","payload":{"ticket":{"ticket_id":"T1","type":"created","channel":"chat","category":"billing","customer_id":"c1"}}}"#,
        r#"{"event_id":"k2","occurred_at":"2026-10-05T09:01:00Z","payload":{"ticket":{"ticket_id":"T1","type":"assigned","agent_id":"a1"}}}"#,
        r#"{"event_id":"k3","occurred_at":"2026-10-05T09:05:00Z","payload":{"ticket":{"ticket_id":"T1","type":"first_response","agent_id":"a1"}}}"#,
    ];
    let path = dir.join("events.jsonl");
    std::fs::write(&path, lines.join("\n"))?;
    Ok(path.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpictl_imports_over_https_with_ca_cert() -> anyhow::Result<()> {
    let pki = Pki::new()?;
    let db = TestDb::new(DbKind::Sqlite).await?;
    let (catalog, ingestion) = catalog_and_ingestion(&pki, &db, false).await?;
    let url = https(&ingestion);
    let file = jsonl(pki.dir.path())?;
    let ca = pki.string("ca.pem");
    let base = ["--ingestion-url", &url, "--output", "json"];

    // The public roots do not know the test CA: unreachable, exit code 3.
    let (cli, _) = kpictl(&[&base[..], &["import", "--tenant", "acme", &file]].concat())?;
    assert_eq!(kpictl::run(cli).await, ExitCode::Unreachable);

    let (cli, options) = kpictl(
        &[
            &base[..],
            &["--ca-cert", &ca, "import", "--tenant", "acme", &file],
        ]
        .concat(),
    )?;
    assert_eq!(
        options.client.tls.ca_cert.as_deref(),
        Some(pki.path("ca.pem").as_path())
    );
    let summary = import(&options, &Progress::new(false)).await?;
    assert_eq!((summary.accepted, summary.rejected), (3, 0), "{summary:?}");
    // Through the whole command: the same file again is all duplicates.
    assert_eq!(kpictl::run(cli).await, ExitCode::Ok);

    // Unpaired client options are a usage error naming the option.
    let (cli, options) = kpictl(
        &[
            &base[..],
            &["--client-cert", &pki.string("client.pem"), "import"],
            &["--tenant", "acme", &file],
        ]
        .concat(),
    )?;
    let error = import(&options, &Progress::new(false)).await.unwrap_err();
    assert!(error.to_string().contains("--client-key"), "{error}");
    assert_eq!(kpictl::run(cli).await, ExitCode::Usage);

    ingestion.stop().await?;
    catalog.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpictl_imports_over_mtls_with_client_cert_and_key() -> anyhow::Result<()> {
    let pki = Pki::new()?;
    let db = TestDb::new(DbKind::Sqlite).await?;
    let (catalog, ingestion) = catalog_and_ingestion(&pki, &db, true).await?;
    let url = https(&ingestion);
    let file = jsonl(pki.dir.path())?;
    let ca = pki.string("ca.pem");
    let base = ["--ingestion-url", &url, "--ca-cert", &ca];

    // Without a client certificate the mTLS listener refuses the import.
    let (_, options) = kpictl(&[&base[..], &["import", "--tenant", "acme", &file]].concat())?;
    let error = import(&options, &Progress::new(false)).await.unwrap_err();
    assert_eq!(error.exit_code(), ExitCode::Unreachable, "{error}");

    let (client_cert, client_key) = (pki.string("client.pem"), pki.string("client.key"));
    let (_, options) = kpictl(
        &[
            &base[..],
            &["--client-cert", &client_cert, "--client-key", &client_key],
            &["import", "--tenant", "acme", &file],
        ]
        .concat(),
    )?;
    let summary = import(&options, &Progress::new(false)).await?;
    assert_eq!((summary.accepted, summary.rejected), (3, 0), "{summary:?}");

    ingestion.stop().await?;
    catalog.stop().await
}

/// The error `Settings::from_lookup` gives for these variables.
fn settings_error(env: &[(&'static str, String)]) -> String {
    match settings(ServiceKind::Catalog, "sqlite::memory:", env) {
        Ok(settings) => panic!("accepted: {settings:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn bad_tls_settings_are_refused_naming_the_variable() -> anyhow::Result<()> {
    let pki = Pki::new()?;
    let var = |key: &'static str, file: &str| (key, pki.string(file));

    let error = settings_error(&[var("KPI_TLS_CERT_FILE", "server.pem")]);
    assert!(
        error.contains("KPI_TLS_CERT_FILE is set but KPI_TLS_KEY_FILE is not"),
        "{error}"
    );
    let error = settings_error(&[var("KPI_TLS_KEY_FILE", "server.key")]);
    assert!(
        error.contains("KPI_TLS_KEY_FILE is set but KPI_TLS_CERT_FILE is not"),
        "{error}"
    );
    let error = settings_error(&[var("KPI_TLS_CLIENT_CA_FILE", "ca.pem")]);
    assert!(error.starts_with("KPI_TLS_CLIENT_CA_FILE needs"), "{error}");
    let error = settings_error(&[var("KPI_TLS_CLIENT_CERT_FILE", "client.pem")]);
    assert!(
        error.contains("KPI_TLS_CLIENT_CERT_FILE is set but KPI_TLS_CLIENT_KEY_FILE is not"),
        "{error}"
    );

    // A missing file: the variable and the path.
    let error = settings_error(&[
        var("KPI_TLS_CERT_FILE", "nope.pem"),
        var("KPI_TLS_KEY_FILE", "server.key"),
    ]);
    assert!(
        error.starts_with("KPI_TLS_CERT_FILE: cannot read"),
        "{error}"
    );
    assert!(error.contains("nope.pem"), "{error}");
    // A certificate where the key should be.
    let error = settings_error(&[
        var("KPI_TLS_CERT_FILE", "server.pem"),
        var("KPI_TLS_KEY_FILE", "server.pem"),
    ]);
    assert!(error.starts_with("KPI_TLS_KEY_FILE:"), "{error}");
    assert!(error.contains("not a PEM private key"), "{error}");
    // A key where the CA should be.
    let error = settings_error(&[var("KPI_TLS_CA_FILE", "client.key")]);
    assert!(error.starts_with("KPI_TLS_CA_FILE:"), "{error}");
    assert!(error.contains("not a PEM certificate"), "{error}");
    // A key that does not go with the certificate.
    let error = settings_error(&[
        var("KPI_TLS_CERT_FILE", "server.pem"),
        var("KPI_TLS_KEY_FILE", "client.key"),
    ]);
    assert!(
        error.starts_with("KPI_TLS_CERT_FILE/KPI_TLS_KEY_FILE:"),
        "{error}"
    );

    // Empty values are unset; a complete set loads.
    let empty = settings(
        ServiceKind::Catalog,
        "sqlite::memory:",
        &[("KPI_TLS_CERT_FILE", String::new())],
    )?;
    assert!(empty.server_tls.is_none());
    let full = settings(
        ServiceKind::Catalog,
        "sqlite::memory:",
        &pki.server_env(true),
    )?;
    assert!(
        full.server_tls
            .as_ref()
            .is_some_and(|tls| tls.requires_client_certificate())
    );
    Ok(())
}
