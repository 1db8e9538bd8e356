//! The one way every service serves (convention 7).
//!
//! [`serve`] adds `grpc.health.v1.Health` and server reflection (v1 and
//! v1alpha, from [`kpi_proto::FILE_DESCRIPTOR_SET`]) to the service's
//! [`Routes`], serves them on an already-bound listener, and shuts down
//! gracefully: when the shutdown future resolves, every health entry flips
//! to `NOT_SERVING`, [`ServeOptions::shutdown_delay`] passes (load balancers
//! see `NOT_SERVING` and stop sending new calls while calls are still
//! served), the listener is closed, and in-flight calls get up to
//! [`ServeOptions::drain_timeout`] to finish.
//!
//! Limits: no more than [`ServeOptions::max_concurrent_requests`] calls run
//! at once, further ones are shed with `RESOURCE_EXHAUSTED`
//! ([`crate::shed`]); the message-size limit
//! ([`ServeOptions::max_message_bytes`]) is set by each service on its
//! generated server, since tonic enforces it in the codec.
//!
//! Every request runs in a `grpc.server` span joined to the caller's trace
//! ([`crate::layers::server_span`]) and is counted with its final code and
//! latency ([`crate::layers::GrpcMetricsLayer`]), then authenticated and
//! checked against the RPC access table ([`crate::auth::AuthLayer`]; health
//! and reflection stay open). With
//! [`ServeOptions::max_connection_age`] set, connections are closed after
//! that age (with a grace period for calls in flight) so that clients
//! reconnect and new pods get their share of long-lived HTTP/2 connections.
//!
//! [`serve_with_tls`] is the same over TLS (mTLS when the [`ServerTls`]
//! names client CAs): tonic runs the handshake on each accepted connection,
//! also on the custom incoming stream used here (TCP options, then
//! [`AgedConnection`], then TLS), so health, reflection, ageing and draining
//! behave the same.
//!
//! Binding is separate from serving so that callers (and tests) can bind
//! `127.0.0.1:0`, learn the port, and only then spawn the server.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::StreamExt;
use tonic::service::{Routes, RoutesBuilder};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tracing::{error, info, warn};

use crate::aging::AgedConnection;
use crate::auth::{AuthLayer, ServerAuth};
use crate::layers::{GrpcMetricsLayer, server_span};
use crate::metrics::RpcMetrics;
use crate::readiness::Readiness;
use crate::settings::{DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_MAX_MESSAGE_BYTES, Settings};
use crate::shed::LoadShedLayer;
use crate::tls::ServerTls;

/// The health service's own gRPC name, advertised through reflection.
pub const HEALTH_SERVICE_NAME: &str = "grpc.health.v1.Health";
/// The v1 reflection service's gRPC name.
pub const REFLECTION_V1_SERVICE_NAME: &str = "grpc.reflection.v1.ServerReflection";
/// The v1alpha reflection service's gRPC name.
pub const REFLECTION_V1ALPHA_SERVICE_NAME: &str = "grpc.reflection.v1alpha.ServerReflection";

/// HTTP/2 PING interval on idle connections, to find dead peers.
const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a PING may go unanswered before the connection is closed.
const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP keepalive on accepted sockets.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// How [`serve`] behaves beyond its routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    /// How long in-flight calls may run after shutdown begins before
    /// [`serve`] returns anyway.
    pub drain_timeout: Duration,
    /// After how long a connection is asked to go away (GOAWAY), so that
    /// clients reconnect and spread over the current pods; `None` = never.
    pub max_connection_age: Option<Duration>,
    /// How long calls on an aged-out connection may still run before it is
    /// closed.
    pub max_connection_age_grace: Duration,
    /// How long health answers `NOT_SERVING` before the listener closes on
    /// shutdown (calls are still served meanwhile).
    pub shutdown_delay: Duration,
    /// Calls served at once; further ones are shed with `RESOURCE_EXHAUSTED`.
    pub max_concurrent_requests: usize,
    /// The largest message a service decodes or encodes; each service hands
    /// it to its generated server (`max_decoding_message_size`).
    pub max_message_bytes: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(20),
            max_connection_age: None,
            max_connection_age_grace: Duration::from_secs(30),
            shutdown_delay: Duration::ZERO,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

impl From<&Settings> for ServeOptions {
    fn from(settings: &Settings) -> Self {
        Self {
            drain_timeout: settings.drain_timeout,
            max_connection_age: settings.max_connection_age,
            max_connection_age_grace: settings.max_connection_age_grace,
            shutdown_delay: settings.shutdown_delay,
            max_concurrent_requests: settings.max_concurrent_requests,
            max_message_bytes: settings.max_message_bytes,
        }
    }
}

/// Why [`serve`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener's local address could not be read.
    #[error("cannot read the listen address: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// The reflection service could not be built from the descriptor sets.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The TLS configuration was refused by the transport.
    #[error("cannot set up TLS: {0}")]
    Tls(#[source] tonic::transport::Error),
    /// The transport failed while serving.
    #[error("serving failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// An empty [`RoutesBuilder`] for a service to add its tonic servers to
/// before calling [`serve`] with `builder.routes()`.
pub fn routes_builder() -> RoutesBuilder {
    Routes::builder()
}

/// Binds a TCP listener on `addr` (port 0 picks a free port; read it back
/// with `local_addr`).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `routes` on `listener`, every RPC but health and reflection
/// behind `auth`, with gRPC health (`grpc.health.v1`, one
/// entry per name in `service_names` plus the overall `""` entry, all
/// `SERVING`) and server reflection v1 and v1alpha built from
/// [`kpi_proto::FILE_DESCRIPTOR_SET`], until `shutdown` resolves.
///
/// The process's [`Readiness`] (`GET /readyz`) follows the same states.
///
/// Then it flips every health entry to `NOT_SERVING` first, keeps serving
/// for [`ServeOptions::shutdown_delay`], stops accepting connections, lets
/// in-flight calls finish for up to [`ServeOptions::drain_timeout`], and
/// returns `Ok(())` (with a warning if the drain timeout passed with calls
/// still running).
///
/// Reflection lists exactly the services served here: `service_names`,
/// health and both reflection services.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    service_names: &[&'static str],
    options: ServeOptions,
    auth: ServerAuth,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_with_tls(
        listener,
        routes,
        service_names,
        options,
        auth,
        None,
        shutdown,
    )
    .await
}

/// [`serve`], over TLS when `tls` is given: every connection (health and
/// reflection included) must complete a TLS handshake, and with client CAs
/// an mTLS one; connections that fail it are dropped without disturbing the
/// others.
pub async fn serve_with_tls(
    listener: TcpListener,
    routes: Routes,
    service_names: &[&'static str],
    options: ServeOptions,
    auth: ServerAuth,
    tls: Option<&ServerTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr = listener.local_addr().map_err(ServeError::LocalAddr)?;

    let (reporter, health_service) = tonic_health::server::health_reporter();
    set_all(&reporter, service_names, ServingStatus::Serving).await;
    let mut readiness = Readiness::process().register();
    readiness.serving();

    let reflection_v1 = reflection(service_names).build_v1()?;
    let reflection_v1alpha = reflection(service_names).build_v1alpha()?;
    let routes = routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    // `serve_with_incoming_shutdown` ignores the builder's TCP options, so
    // they are set on the incoming stream (a `TcpListenerStream` inside).
    let lifetime = options
        .max_connection_age
        .map(|age| age + options.max_connection_age_grace);
    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(TCP_KEEPALIVE))
        .map(move |accepted| accepted.map(|stream| AgedConnection::new(stream, lifetime)));

    let (draining_tx, draining_rx) = oneshot::channel::<()>();
    let names = service_names.to_vec();
    let shutdown_delay = options.shutdown_delay;
    let signal = async move {
        shutdown.await;
        info!(services = ?names, "draining");
        set_all(&reporter, &names, ServingStatus::NotServing).await;
        readiness.draining();
        if !shutdown_delay.is_zero() {
            // Load balancers poll health: give them time to see NOT_SERVING
            // and route new calls elsewhere while this one still answers.
            tokio::time::sleep(shutdown_delay).await;
        }
        info!(services = ?names, "closing the listener");
        // The receiver only goes away once `serve` has returned.
        let _ = draining_tx.send(());
    };

    let transport = match tls {
        None => "plain",
        Some(tls) if tls.requires_client_certificate() => "mtls",
        Some(_) => "tls",
    };
    info!(%addr, services = ?service_names, transport, "serving");
    let mut builder = Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT));
    if let Some(age) = options.max_connection_age {
        // GOAWAY at the age; the grace is enforced by `AgedConnection`, not
        // by tonic's `max_connection_age_grace` (see `crate::aging`).
        builder = builder.max_connection_age(age);
    }
    if let Some(tls) = tls {
        builder = builder.tls_config(tls.config()).map_err(ServeError::Tls)?;
    }
    let server = builder
        .trace_fn(server_span)
        .layer(GrpcMetricsLayer::new(RpcMetrics::new()))
        // Inside the metrics layer, so shed calls are counted with their code.
        .layer(LoadShedLayer::new(options.max_concurrent_requests))
        .layer(AuthLayer::new(auth))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, signal);

    let drain_timeout = options.drain_timeout;
    let drain_deadline = async move {
        match draining_rx.await {
            Ok(()) => tokio::time::sleep(drain_timeout).await,
            // The signal future was dropped: the server already finished.
            Err(_) => std::future::pending().await,
        }
    };

    tokio::select! {
        biased;
        result = server => match result {
            Ok(()) => {
                info!(%addr, "stopped");
                Ok(())
            }
            Err(err) => {
                error!(%addr, error = %err, "server failed");
                Err(err.into())
            }
        },
        () = drain_deadline => {
            warn!(
                %addr,
                drain_timeout_ms = u64::try_from(drain_timeout.as_millis()).unwrap_or(u64::MAX),
                "drain timeout passed with calls still in flight, stopping anyway"
            );
            Ok(())
        }
    }
}

/// Resolves on SIGTERM or SIGINT (ctrl-c), whichever comes first.
///
/// If a signal handler cannot be installed the failure is logged and that
/// signal is never reported.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            error!(error = %err, "cannot listen for sigint");
            std::future::pending::<()>().await;
        }
    };

    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(err) => {
                error!(error = %err, "cannot listen for sigterm");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => info!(signal = "sigint", "shutdown requested"),
        () = terminate => info!(signal = "sigterm", "shutdown requested"),
    }
}

/// Sets `""` and every name in `service_names` to `status`.
async fn set_all(reporter: &HealthReporter, service_names: &[&str], status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in service_names {
        reporter.set_service_status(name, status).await;
    }
}

/// A reflection builder over the suite's descriptors plus health's and
/// reflection's own, advertising exactly what [`serve`] serves.
fn reflection(service_names: &[&str]) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(kpi_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET);
    let mut advertised: Vec<&str> = Vec::new();
    for name in service_names.iter().copied().chain([
        HEALTH_SERVICE_NAME,
        REFLECTION_V1_SERVICE_NAME,
        REFLECTION_V1ALPHA_SERVICE_NAME,
    ]) {
        if !advertised.contains(&name) {
            advertised.push(name);
            builder = builder.with_service_name(name);
        }
    }
    builder
}
