//! What every service binary shares: the command line (`serve`, the
//! default, or `migrate`) and a bound listener that serves a service's
//! routes with the one server recipe.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::server::{ServeError, ServeOptions, bind, serve};
use crate::settings::{ServiceKind, Settings};

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

/// A service's listener, bound, with its serve options.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    options: ServeOptions,
    kind: ServiceKind,
}

impl Listener {
    /// Binds the service's listen address.
    pub async fn bind(settings: &Settings) -> std::io::Result<Listener> {
        Ok(Listener {
            listener: bind(settings.listen_addr).await?,
            options: ServeOptions::from(settings),
            kind: settings.service,
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

    /// Serves `routes` (health names the service) until `shutdown`, then drains.
    pub async fn serve(
        self,
        routes: Routes,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        serve(
            self.listener,
            routes,
            &[self.kind.grpc_service_name()],
            self.options,
            shutdown,
        )
        .await
    }
}
