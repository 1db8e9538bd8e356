//! Outbound gRPC: how a service calls another one of the suite.
//!
//! [`connect`] makes a lazily connecting [`TracedChannel`] to a `KPI_*_URL`
//! with the suite's timeouts and keepalive; wrap it in any generated client
//! (`CatalogServiceClient::new(channel)`). Every call through it runs in a
//! `grpc.client` span whose W3C trace context is injected into the request
//! metadata, so the callee's spans join the caller's trace.
//! [`TraceContextLayer`] is the same piece as a tower layer, for channels
//! built some other way.
//!
//! On load balancing: the channel keeps one HTTP/2 connection. The servers
//! end connections after `KPI_MAX_CONNECTION_AGE_SECS` with a GOAWAY, and the
//! channel then reconnects through the Service's virtual IP, reaching
//! whichever pod kube-proxy picks (deploy/README.md explains the choice).

use std::task::{Context, Poll};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::layers::split_path;
use crate::propagation;

/// A channel whose calls carry the caller's trace context.
pub type TracedChannel = TraceContext<Channel>;

/// How outbound channels behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// How long establishing a connection may take.
    pub connect_timeout: Duration,
    /// The deadline of each call unless the request sets a shorter one.
    pub timeout: Duration,
    /// HTTP/2 PING interval, to notice a dead peer (a pod gone without FIN).
    pub keepalive_interval: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(30),
        }
    }
}

impl ClientOptions {
    /// The suite's options for calls to another service: `deadline`
    /// (`KPI_CALL_TIMEOUT_MS`) bounds both each call and each connection
    /// attempt.
    pub fn with_deadline(deadline: Duration) -> Self {
        Self {
            connect_timeout: deadline,
            timeout: deadline,
            ..Self::default()
        }
    }
}

/// A traced channel to `url` (e.g. `KPI_CATALOG_URL`), connecting on first
/// use and reconnecting after the server closes the connection.
pub fn connect(
    url: &str,
    options: ClientOptions,
) -> Result<TracedChannel, tonic::transport::Error> {
    let channel = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(options.connect_timeout)
        .timeout(options.timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(options.keepalive_interval)
        .keep_alive_while_idle(true)
        .connect_lazy();
    Ok(TraceContextLayer.layer(channel))
}

/// Wraps a gRPC client service in [`TraceContext`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextLayer;

impl<S> Layer<S> for TraceContextLayer {
    type Service = TraceContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceContext { inner }
    }
}

/// Runs each call in a `grpc.client` span and sends that span's context as
/// `traceparent` (and `tracestate`) metadata.
#[derive(Debug, Clone)]
pub struct TraceContext<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for TraceContext<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let (service, method) = split_path(path);
        let span = tracing::info_span!(
            "grpc.client",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
        );
        propagation::inject(&span.context(), request.headers_mut());
        self.inner.call(request).instrument(span)
    }
}
