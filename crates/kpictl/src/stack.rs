//! The three services (indicator-catalog, data-ingestion, scoring) in this
//! process, each on its own listener, as `kpictl up` and `kpictl demo` run
//! them.
//!
//! The embedded default keeps everything in one data directory: SQLite files
//! `catalog.db` and `ingestion.db` (one file per service, so their writers
//! never wait on each other's lock) and scoring's in-process cache. With
//! `KPI_DATABASE_URL` (PostgreSQL) both services share that database (each
//! has its own tables and migration table); with `KPI_REDIS_URL` scoring
//! caches in Redis, and all three share its version board.
//!
//! The stack never runs open: it generates local credentials in the data
//! directory ([`LocalCredentials`]) and its services require them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use kpi_runtime::{ServiceKind, Settings};

use crate::auth::LocalCredentials;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where and on what the stack runs.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// indicator-catalog's listen address (port 0: any free port).
    pub catalog_addr: SocketAddr,
    /// data-ingestion's listen address.
    pub ingestion_addr: SocketAddr,
    /// scoring's listen address.
    pub scoring_addr: SocketAddr,
    /// The directory of the SQLite files (used without a database URL).
    pub data_dir: PathBuf,
    /// A PostgreSQL URL; `None` means SQLite files in `data_dir`.
    pub database_url: Option<String>,
    /// A Redis URL; `None` means scoring's in-process cache.
    pub redis_url: Option<String>,
    /// The log filter of the services, e.g. `info` or `warn`.
    pub log_filter: String,
}

/// A running stack: the addresses it listens on, and how to stop it.
pub struct Stack {
    /// Where indicator-catalog listens.
    pub catalog: SocketAddr,
    /// Where data-ingestion listens.
    pub ingestion: SocketAddr,
    /// Where scoring listens.
    pub scoring: SocketAddr,
    /// `"sqlite"` or `"postgres"`, for the banner.
    pub database: &'static str,
    /// `"memory"` or `"redis"`, for the banner.
    pub cache: &'static str,
    /// The generated credentials: the admin token for clients.
    pub credentials: LocalCredentials,
    stop: watch::Sender<bool>,
    telemetry: kpi_runtime::telemetry::Telemetry,
    tasks: Vec<(ServiceKind, JoinHandle<anyhow::Result<()>>)>,
}

/// The URL a client uses to reach a listener.
pub fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

impl Stack {
    /// Builds and binds the three services (catalog first: the others are
    /// given its address), then serves them until [`Stack::stop`].
    pub async fn start(options: &StackOptions) -> anyhow::Result<Stack> {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let credentials = LocalCredentials::in_dir(&options.data_dir).with_context(|| {
            format!(
                "cannot write the local credentials in {}",
                options.data_dir.display()
            )
        })?;
        let settings = |kind, addr| {
            settings(options, kind, addr).map(|mut s| {
                s.auth = credentials.auth_settings();
                s
            })
        };

        let catalog_settings = settings(ServiceKind::Catalog, options.catalog_addr)?;
        let telemetry = kpi_runtime::telemetry::init(&catalog_settings);
        let catalog_app = indicator_catalog::App::build(&catalog_settings)
            .await
            .context("cannot start indicator-catalog")?;
        let catalog = catalog_app.local_addr()?;
        tasks.push((
            ServiceKind::Catalog,
            tokio::spawn(catalog_app.run_until_stopped(signal(stopped.clone()))),
        ));

        let mut ingestion_settings = settings(ServiceKind::Ingestion, options.ingestion_addr)?;
        ingestion_settings.catalog_url = url(catalog);
        let ingestion_app = data_ingestion::App::build(&ingestion_settings)
            .await
            .context("cannot start data-ingestion")?;
        let ingestion = ingestion_app.local_addr()?;
        tasks.push((
            ServiceKind::Ingestion,
            tokio::spawn(ingestion_app.run_until_stopped(signal(stopped.clone()))),
        ));

        let mut scoring_settings = settings(ServiceKind::Scoring, options.scoring_addr)?;
        scoring_settings.catalog_url = url(catalog);
        scoring_settings.ingestion_url = url(ingestion);
        let scoring_app = scoring::App::build(&scoring_settings)
            .await
            .context("cannot start scoring")?;
        let scoring = scoring_app.local_addr()?;
        let cache = scoring_app.cache_backend();
        tasks.push((
            ServiceKind::Scoring,
            tokio::spawn(scoring_app.run_until_stopped(signal(stopped))),
        ));

        Ok(Stack {
            catalog,
            ingestion,
            scoring,
            database: if options.database_url.is_some() {
                "postgres"
            } else {
                "sqlite"
            },
            cache,
            credentials,
            stop,
            telemetry,
            tasks,
        })
    }

    /// Tells all three to drain and waits until they have; the first error
    /// of any of them is returned.
    pub async fn stop(self) -> anyhow::Result<()> {
        // Receivers may already be gone if a service stopped on its own.
        let _ = self.stop.send(true);
        let mut first_error = None;
        for (kind, task) in self.tasks {
            let outcome = match task.await {
                Ok(result) => result,
                Err(e) => Err(anyhow::Error::new(e)),
            };
            if let Err(e) = outcome {
                first_error.get_or_insert(e.context(format!("{kind} failed")));
            }
        }
        // Flushes spans and metrics still buffered for an OTLP collector.
        self.telemetry.shutdown();
        first_error.map_or(Ok(()), Err)
    }
}

/// Resolves once the stop flag is raised (or its sender is dropped).
async fn signal(mut stopped: watch::Receiver<bool>) {
    // An error means the sender is gone: stopping is right then too.
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// One service's settings: defaults, then the stack's choices.
fn settings(
    options: &StackOptions,
    kind: ServiceKind,
    addr: SocketAddr,
) -> anyhow::Result<Settings> {
    let mut settings = Settings::defaults(kind);
    settings.listen_addr = addr;
    settings.log_filter = options.log_filter.clone();
    settings.redis_url = options.redis_url.clone();
    settings.database_url = match &options.database_url {
        Some(url) => url.clone(),
        None => sqlite_url(&options.data_dir, kind)?,
    };
    Ok(settings)
}

/// `sqlite://<data dir>/<service>.db?mode=rwc`, creating the directory.
fn sqlite_url(dir: &Path, kind: ServiceKind) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let file = match kind {
        ServiceKind::Catalog => "catalog.db",
        ServiceKind::Ingestion | ServiceKind::Scoring => "ingestion.db",
    };
    Ok(format!("sqlite://{}?mode=rwc", dir.join(file).display()))
}
