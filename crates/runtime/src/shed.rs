//! Load shedding: at most `KPI_MAX_CONCURRENT_REQUESTS` calls are served at
//! once; a call beyond that is answered at once with `RESOURCE_EXHAUSTED`
//! (and a `google.rpc.RetryInfo` hint) instead of waiting in an unbounded
//! queue, so an overloaded service stays responsive and clients back off.
//!
//! A call holds its slot until its response body has ended (a stream holds
//! one for its whole life). Health checks (`grpc.health.v1.Health`) are
//! never shed: an overloaded instance is still alive, and a probe that
//! failed under load would get it restarted and make the overload worse.
//! Every shed call is counted in `kpi.rpc.server.shed`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

use crate::layers::split_path;
use crate::server::HEALTH_SERVICE_NAME;

/// The retry hint sent with a shed call: long enough for a burst to pass,
/// short enough that a client does not idle.
pub const SHED_RETRY_AFTER: Duration = Duration::from_millis(100);

/// Sheds calls beyond a concurrency limit (see the module docs).
#[derive(Clone)]
pub struct LoadShedLayer {
    permits: Arc<Semaphore>,
    limit: usize,
    shed: Counter<u64>,
}

impl LoadShedLayer {
    /// A layer letting `limit` calls run at once (at least one).
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            shed: crate::metrics::meter()
                .u64_counter("kpi.rpc.server.shed")
                .with_description(
                    "gRPC calls answered RESOURCE_EXHAUSTED because the concurrency limit was reached",
                )
                .build(),
        }
    }
}

impl<S> Layer<S> for LoadShedLayer {
    type Service = LoadShed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShed {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`LoadShedLayer`] makes.
#[derive(Clone)]
pub struct LoadShed<S> {
    inner: S,
    layer: LoadShedLayer,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for LoadShed<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<PermitBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let (service, method) = split_path(request.uri().path());
        let permit = if service == HEALTH_SERVICE_NAME {
            None
        } else {
            match self.layer.permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    self.layer.shed.add(
                        1,
                        &[
                            KeyValue::new("rpc.service", service.to_owned()),
                            KeyValue::new("rpc.method", method.to_owned()),
                        ],
                    );
                    let response = shed_response(self.layer.limit);
                    return Box::pin(std::future::ready(Ok(response)));
                }
            }
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|inner| PermitBody {
                inner,
                _permit: permit,
            }))
        })
    }
}

/// The trailers-only `RESOURCE_EXHAUSTED` answer of a shed call.
fn shed_response<B: Default>(limit: usize) -> http::Response<PermitBody<B>> {
    crate::status::resource_exhausted(
        format!("the server is at its limit of {limit} concurrent calls; retry shortly"),
        Some(SHED_RETRY_AFTER),
    )
    .into_http::<B>()
    .map(|inner| PermitBody {
        inner,
        _permit: None,
    })
}

pin_project_lite::pin_project! {
    /// A response body that keeps its call's slot until it is dropped.
    pub struct PermitBody<B> {
        #[pin]
        inner: B,
        _permit: Option<OwnedSemaphorePermit>,
    }
}

impl<B: Body> Body for PermitBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
