//! The data-ingestion service: validated, idempotent intake of events into
//! normalised facts, and aggregate queries over them.
//!
//! - [`App`]: builds the service from [`Settings`] (database, migrations,
//!   listener, the version board when Redis is configured) and serves it
//!   until told to stop.
//! - [`service`]: the gRPC handlers ([`IngestionApi`]).
//! - [`convert`]: proto events → domain events, rejecting bad ones with a
//!   reason code and a field path.
//! - [`projection`]: stored events folded into facts after the write, and
//!   the catch-up that gives reads every acknowledged event.
//! - [`calendars`]: the tenants' business calendars, from indicator-catalog.
#![forbid(unsafe_code)]

pub mod calendars;
pub mod convert;
pub mod projection;
pub mod service;

use std::net::SocketAddr;

use anyhow::Context;
use kpi_cache::VersionBoard;
use kpi_proto::ingestion::ingestion_service_server::IngestionServiceServer;
use kpi_runtime::auth::tenancy::Guarded;
use kpi_runtime::{Listener, Settings};
use kpi_store::DatabaseConnection;
use sea_orm_migration::MigratorTrait;

pub use service::IngestionApi;

/// The gRPC service, each request's tenant checked against its caller,
/// ready to be added to a server.
///
/// `max_message_bytes` (`KPI_MAX_MESSAGE_BYTES`) bounds every request and
/// response; a larger one fails with `OUT_OF_RANGE`.
pub fn grpc_service(
    api: IngestionApi,
    max_message_bytes: usize,
) -> IngestionServiceServer<Guarded<IngestionApi>> {
    IngestionServiceServer::new(Guarded::new(api))
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes)
}

/// PostgreSQL connections kept open: a scorecard's first computation asks
/// for two periods at once, each computed by a few concurrent statements.
const WARM_CONNECTIONS: u32 = 8;

/// Connects to the database and applies the ingestion migrations.
pub async fn open_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let db = kpi_store::connect_warm(&settings.database_url, WARM_CONNECTIONS)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                kpi_runtime::settings::redact_url(&settings.database_url)
            )
        })?;
    if settings.run_migrations {
        kpi_store::ingestion::Migrator::up(&db, None)
            .await
            .context("cannot apply the ingestion migrations")?;
    }
    // Fresh planner statistics from the start (autovacuum may be off).
    kpi_store::ingestion::analyze(&db)
        .await
        .context("cannot analyse the ingestion tables")?;
    Ok(db)
}

/// The data-ingestion service, built and bound, ready to serve.
pub struct App {
    listener: Listener,
    api: IngestionApi,
}

impl App {
    /// Opens the database, migrates it (unless disabled) and binds the listener.
    pub async fn build(settings: &Settings) -> anyhow::Result<App> {
        let db = open_database(settings).await?;
        let calendars = calendars::Calendars::new(
            &settings.catalog_url,
            settings.call_timeout,
            &settings.client_tls,
            settings.auth.service_token.clone(),
        )
        .context("KPI_CATALOG_URL is not a valid URL")?;
        let listener = Listener::bind(settings)
            .await
            .context("cannot start serving")?;
        let board = VersionBoard::configured(settings.redis_url.as_deref(), &settings.redis_prefix)
            .context("invalid KPI_REDIS_URL")?;
        Ok(App {
            listener,
            api: IngestionApi::new(db, calendars, board),
        })
    }

    /// The address it listens on (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The service, e.g. to subscribe to change notices in-process.
    pub fn api(&self) -> &IngestionApi {
        &self.api
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let projecting = self.api.projection().spawn();
        let max_message_bytes = self.listener.max_message_bytes();
        let routes = tonic::service::Routes::new(grpc_service(self.api, max_message_bytes));
        let served = self.listener.serve(routes, shutdown).await;
        // Whatever is still pending is projected by the next start or a read.
        projecting.abort();
        served?;
        Ok(())
    }
}
