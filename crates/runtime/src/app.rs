//! What every service binary shares: the command line (`serve`, the
//! default, or `migrate`) and a bound listener that serves a service's
//! routes with the one server recipe.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::auth::{AuthError, AuthMode, ServerAuth};
use crate::server::{ServeError, ServeOptions, bind, serve_with_tls};
use crate::settings::{ServiceKind, Settings};
use crate::tls::ServerTls;

/// A service binary's command line. Configuration comes from KPI_*
/// environment variables (and `KPI_CONFIG_FILE`).
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct ServiceCli {
    /// What to do; serving is the default.
    #[command(subcommand)]
    pub command: Option<ServiceCommand>,
}

/// The sub-commands of a service binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Subcommand)]
pub enum ServiceCommand {
    /// Serve gRPC (the default).
    #[default]
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
}

/// Why a service's listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Authentication is not configured or its files are unusable.
    #[error("authentication: {0}")]
    Auth(#[from] AuthError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A service's listener, bound, with its serve options, authentication and TLS.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    options: ServeOptions,
    tls: Option<ServerTls>,
    kind: ServiceKind,
    auth: ServerAuth,
}

/// data-ingestion and scoring call other services: without a service token
/// those calls are refused wherever credentials are required.
fn warn_without_service_token(settings: &Settings) {
    let calls_others = settings.service != ServiceKind::Catalog;
    if calls_others
        && settings.auth.mode == AuthMode::Required
        && settings.auth.service_token.is_none()
    {
        tracing::warn!(
            service = %settings.service,
            "KPI_SERVICE_TOKEN (or KPI_SERVICE_TOKEN_FILE) is not set: calls to the other services carry no credentials and are refused where authentication is on"
        );
    }
}

impl Listener {
    /// Loads the authentication the settings describe (refusing to go on
    /// without credentials unless `KPI_AUTH=off`), then binds the service's
    /// listen address.
    pub async fn bind(settings: &Settings) -> Result<Listener, ListenError> {
        let auth = ServerAuth::from_settings(&settings.auth)?;
        warn_without_service_token(settings);
        let listener = bind(settings.listen_addr)
            .await
            .map_err(|source| ListenError::Bind {
                addr: settings.listen_addr,
                source,
            })?;
        Ok(Listener {
            listener,
            options: ServeOptions::from(settings),
            tls: settings.server_tls.clone(),
            kind: settings.service,
            auth,
        })
    }

    /// The largest message the service may decode or encode
    /// (`KPI_MAX_MESSAGE_BYTES`), for its generated server.
    pub fn max_message_bytes(&self) -> usize {
        self.options.max_message_bytes
    }

    /// The address it listens on (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `routes` (health names the service) until `shutdown`, then
    /// drains; over TLS when the settings had `KPI_TLS_CERT_FILE`.
    pub async fn serve(
        self,
        routes: Routes,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        serve_with_tls(
            self.listener,
            routes,
            &[self.kind.grpc_service_name()],
            self.options,
            self.auth,
            self.tls.as_ref(),
            shutdown,
        )
        .await
    }
}
