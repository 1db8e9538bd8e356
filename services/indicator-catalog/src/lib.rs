//! The indicator-catalog service: the KPI dictionary (indicators as data),
//! versioned scorecard templates, business calendars, the starter kit and
//! export/import of a tenant's catalog.
//!
//! - [`App`]: builds the service from [`Settings`] (database, migrations,
//!   listener, the version board when Redis is configured) and serves it
//!   until told to stop.
//! - [`service`]: the gRPC handlers ([`CatalogApi`]).
//! - `mask`: field masks for partial updates.
#![forbid(unsafe_code)]

mod mask;
pub mod service;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use kpi_cache::VersionBoard;
use kpi_proto::catalog::catalog_service_server::CatalogServiceServer;
use kpi_runtime::auth::tenancy::Guarded;
use kpi_runtime::{Listener, Settings};
use kpi_store::catalog::CatalogRepo;

pub use service::CatalogApi;

/// The gRPC service over a repository, each request's tenant checked
/// against its caller, ready to be added to a server. Every write clears the
/// tenant's versions on `board` before it is acknowledged.
///
/// `max_message_bytes` (`KPI_MAX_MESSAGE_BYTES`) bounds every request and
/// response; a larger one fails with `OUT_OF_RANGE`.
pub fn grpc_service(
    repo: CatalogRepo,
    board: Option<Arc<VersionBoard>>,
    max_message_bytes: usize,
) -> CatalogServiceServer<Guarded<CatalogApi>> {
    CatalogServiceServer::new(Guarded::new(CatalogApi::new(repo, board)))
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes)
}

/// Connects to the database and applies the catalog's migrations.
pub async fn open_repo(settings: &Settings) -> anyhow::Result<CatalogRepo> {
    let db = kpi_store::connect(&settings.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                kpi_runtime::settings::redact_url(&settings.database_url)
            )
        })?;
    let repo = CatalogRepo::new(db);
    if settings.run_migrations {
        repo.migrate()
            .await
            .context("cannot apply the catalog migrations")?;
    }
    Ok(repo)
}

/// The indicator-catalog, built and bound, ready to serve.
pub struct App {
    listener: Listener,
    repo: CatalogRepo,
    board: Option<Arc<VersionBoard>>,
}

impl App {
    /// Opens the database, migrates it (unless disabled) and binds the listener.
    pub async fn build(settings: &Settings) -> anyhow::Result<App> {
        let repo = open_repo(settings).await?;
        let board = VersionBoard::configured(settings.redis_url.as_deref(), &settings.redis_prefix)
            .context("invalid KPI_REDIS_URL")?;
        let listener = Listener::bind(settings)
            .await
            .context("cannot start serving")?;
        Ok(App {
            listener,
            repo,
            board,
        })
    }

    /// The address it listens on (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let max_message_bytes = self.listener.max_message_bytes();
        let routes =
            tonic::service::Routes::new(grpc_service(self.repo, self.board, max_message_bytes));
        self.listener.serve(routes, shutdown).await?;
        Ok(())
    }
}
