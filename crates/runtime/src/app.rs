//! What every service binary shares: the command line (`serve`, the
//! default, or `migrate`) and a bound listener that serves a service's
//! routes with the one server recipe.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tonic::service::Routes;

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

/// A service's listener, bound, with its serve options and TLS.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    options: ServeOptions,
    tls: Option<ServerTls>,
    kind: ServiceKind,
}

impl Listener {
    /// Binds the service's listen address.
    pub async fn bind(settings: &Settings) -> std::io::Result<Listener> {
        Ok(Listener {
            listener: bind(settings.listen_addr).await?,
            options: ServeOptions::from(settings),
            tls: settings.server_tls.clone(),
            kind: settings.service,
        })
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
            self.tls.as_ref(),
            shutdown,
        )
        .await
    }
}
