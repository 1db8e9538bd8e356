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
//! TLS follows the URL: `https://` peers are dialled over TLS with the
//! [`ClientTls`] given to [`connect_with_tls`] (the settings' `KPI_TLS_*`
//! client files), `http://` peers in plain text. [`connect`] trusts the
//! public webpki roots for `https://`.
//!
//! A call whose connection fails (refused, reset, a TLS handshake or
//! certificate refused by the peer, a peer that does not speak plain HTTP/2
//! such as a TLS listener dialled with `http://`) ends in `UNAVAILABLE`
//! naming the cause ([`ConnectionStatus`]), as gRPC specifies for transport
//! failures; tonic alone reports some of them as `UNKNOWN` or `INTERNAL`.
//!
//! On load balancing: the channel keeps one HTTP/2 connection. The servers
//! end connections after `KPI_MAX_CONNECTION_AGE_SECS` with a GOAWAY, and the
//! channel then reconnects through the Service's virtual IP, reaching
//! whichever pod kube-proxy picks (deploy/README.md explains the choice).

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::auth::BearerToken;
use crate::auth::outbound::WithBearer;
use crate::layers::split_path;
use crate::propagation;
use crate::tls::{self, ClientTls};

/// A channel whose calls carry the caller's trace context and, when
/// configured, the service's bearer token, and whose connection failures
/// are `UNAVAILABLE`.
pub type TracedChannel = TraceContext<WithBearer<ConnectionStatus<Channel>>>;

/// What tower services fail with.
type BoxError = Box<dyn StdError + Send + Sync>;

/// How outbound channels behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// How long establishing a connection may take.
    pub connect_timeout: Duration,
    /// The deadline of each call unless the request sets a shorter one.
    pub timeout: Duration,
    /// HTTP/2 PING interval, to notice a dead peer (a pod gone without FIN).
    pub keepalive_interval: Duration,
    /// The token sent as `authorization: Bearer …` on every call
    /// (`KPI_SERVICE_TOKEN`); none sends no credentials.
    pub bearer: Option<BearerToken>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(30),
            bearer: None,
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
/// use and reconnecting after the server closes the connection. An
/// `https://` URL is verified against the public webpki roots.
pub fn connect(
    url: &str,
    options: ClientOptions,
) -> Result<TracedChannel, tonic::transport::Error> {
    connect_with_tls(url, options, &ClientTls::default())
}

/// [`connect`], with `tls` (trusted CAs, client certificate, server name)
/// for an `https://` URL; an `http://` URL stays plain.
pub fn connect_with_tls(
    url: &str,
    options: ClientOptions,
    tls: &ClientTls,
) -> Result<TracedChannel, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(options.connect_timeout)
        .timeout(options.timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(options.keepalive_interval)
        .keep_alive_while_idle(true);
    let channel = tls::apply(endpoint, tls)?.connect_lazy();
    let channel = ConnectionStatus { inner: channel };
    Ok(TraceContextLayer.layer(WithBearer::new(channel, options.bearer)))
}

/// Turns a failure of the connection under a call into `UNAVAILABLE` with
/// the cause in the message, whether it ends the call before its response
/// headers or while its response body (a stream's messages) is read; any
/// other error passes through for tonic to map.
#[derive(Debug, Clone)]
pub struct ConnectionStatus<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for ConnectionStatus<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<ConnectionStatusBody<R>>;
    type Error = BoxError;
    type Future = ConnectionStatusFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(|error| connection_status(error.into()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        ConnectionStatusFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`ConnectionStatus`].
    pub struct ConnectionStatusFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, R, E> Future for ConnectionStatusFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<http::Response<ConnectionStatusBody<R>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = ready!(self.project().inner.poll(cx));
        Poll::Ready(
            result
                .map(|response| response.map(|inner| ConnectionStatusBody { inner }))
                .map_err(|error| connection_status(error.into())),
        )
    }
}

pin_project_lite::pin_project! {
    /// The response body of [`ConnectionStatus`]: the same frames, with a
    /// connection failure while reading them as `UNAVAILABLE`.
    pub struct ConnectionStatusBody<B> {
        #[pin]
        inner: B,
    }
}

impl<B> http_body::Body for ConnectionStatusBody<B>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project()
            .inner
            .poll_frame(cx)
            .map_err(|error| connection_status(error.into()))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// `UNAVAILABLE` for a connection failure, else `error` unchanged.
fn connection_status(error: BoxError) -> BoxError {
    if is_connection_failure(&*error) {
        let message = format!("connection failed: {}", error_chain(&*error));
        Box::new(tonic::Status::unavailable(message))
    } else {
        error
    }
}

/// An I/O error anywhere in the chain (refused, reset, a TLS alert from the
/// peer), a call dropped because its connection closed before it was sent
/// (hyper's "canceled"), a connection going away (GOAWAY, from the peer or
/// raised here because the peer sent something that is not HTTP/2: a TLS
/// record, an HTTP/1 answer), or a stream the peer dropped unanswered.
fn is_connection_failure(error: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<std::io::Error>() {
            return true;
        }
        if let Some(hyper) = error.downcast_ref::<hyper::Error>()
            && (hyper.is_canceled() || hyper.is_closed() || hyper.is_incomplete_message())
        {
            return true;
        }
        if let Some(h2) = error.downcast_ref::<h2::Error>()
            && (h2.is_io() || h2.is_go_away() || is_dropped_by_peer(h2))
        {
            return true;
        }
        next = error.source();
    }
    false
}

/// A stream the peer ended without an answer: refused (it will not be
/// processed) or reset without an error code, as a server that is going
/// away does with the calls it drops. A server's own answer, even an error,
/// comes as gRPC trailers, never as a reset.
fn is_dropped_by_peer(h2: &h2::Error) -> bool {
    h2.is_remote()
        && matches!(
            h2.reason(),
            Some(h2::Reason::NO_ERROR | h2::Reason::REFUSED_STREAM)
        )
}

/// An error and its sources joined with `: `, without repeats (tonic's
/// transport errors keep the useful part in their sources).
pub(crate) fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        let text = error.to_string();
        if !text.is_empty() && !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
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
