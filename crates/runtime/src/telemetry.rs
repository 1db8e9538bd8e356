//! The one telemetry init for all services (convention 6).
//!
//! [`init`] installs:
//!
//! - a `tracing` subscriber filtered by [`Settings::log_filter`], writing
//!   compact text or JSON to stderr; JSON lines carry `trace_id` and
//!   `span_id` when the event happens inside a traced span;
//! - when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, a `tracing-opentelemetry`
//!   layer exporting spans over OTLP/gRPC with a batch processor (spans are
//!   queued and dropped when the collector is slow or down: a request never
//!   waits on the collector);
//! - a global OpenTelemetry meter provider that always feeds the Prometheus
//!   scrape endpoint (see [`crate::metrics`]) and, with the OTLP endpoint
//!   set, also pushes to the collector every [`METRICS_EXPORT_INTERVAL`].
//!
//! W3C trace context crosses services in gRPC metadata: [`crate::server`]
//! extracts it into each request's span, [`crate::client`] injects it into
//! each outbound call.
//!
//! Log messages are lowercase with structured fields, e.g.
//! `info!(addr = %addr, "serving")`.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::metrics::{PrometheusReader, spawn_scrape_endpoint};
use crate::readiness::Readiness;
use crate::settings::{LogFormat, Settings};

/// How often metrics are pushed to the OTLP collector.
pub const METRICS_EXPORT_INTERVAL: Duration = Duration::from_secs(15);
/// How long one OTLP export may take before it is abandoned.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// What the span exporter sees, whatever the log filter: the suite's own
/// spans, not the transport's (h2, hyper and tower spans are per frame and
/// would drown the traces; convention 6's known trap).
const OTEL_FILTER: &str = "info,h2=off,tower=off,hyper=off,hyper_util=off,tonic=off,sqlx=off";

/// The providers [`init`] built. Keep it for [`Telemetry::shutdown`], which
/// flushes queued spans and metrics at exit; dropping it changes nothing
/// (the providers stay installed).
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: SdkMeterProvider,
    metrics_addr: Option<SocketAddr>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("exports_spans", &self.tracer_provider.is_some())
            .field("metrics_addr", &self.metrics_addr)
            .finish()
    }
}

impl Telemetry {
    /// Where the Prometheus scrape endpoint listens, if it does (useful
    /// with `KPI_METRICS_ADDR` on port 0).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Flushes queued spans and metrics to the collector and stops the
    /// exporters. Call once, after the server has stopped.
    pub fn shutdown(self) {
        if let Some(provider) = self.tracer_provider
            && let Err(err) = provider.shutdown()
        {
            tracing::warn!(error = %err, "cannot flush spans");
        }
        if let Err(err) = self.meter_provider.shutdown() {
            tracing::debug!(error = %err, "cannot flush metrics");
        }
    }
}

/// Installs logging, tracing and metrics as described by `settings`. Must
/// run inside the tokio runtime (the OTLP exporters and the scrape endpoint
/// live on it).
///
/// Safe to call more than once (tests do): the first global `tracing`
/// subscriber stays in place; the meter provider and the scrape endpoint are
/// installed again. Telemetry never stops a service: an exporter or
/// endpoint that cannot be set up is logged and left out.
pub fn init(settings: &Settings) -> Telemetry {
    let resource = resource(settings);
    let tracer_provider = install_subscriber(settings, resource.clone());
    let (meter_provider, prometheus) = meter_provider(settings, resource);
    opentelemetry::global::set_meter_provider(meter_provider.clone());
    let metrics_addr = settings
        .metrics_addr
        .and_then(|addr| serve_metrics(addr, prometheus));
    tracing::debug!(
        service = settings.service.binary_name(),
        format = ?settings.log_format,
        filter = %settings.log_filter,
        otlp = settings.otlp_endpoint.is_some(),
        metrics_addr = ?metrics_addr,
        "telemetry initialised"
    );
    Telemetry {
        tracer_provider,
        meter_provider,
        metrics_addr,
    }
}

/// Installs the global subscriber: the log layer and, with an OTLP
/// endpoint, the span exporter's layer. Returns the tracer provider if
/// spans are exported.
fn install_subscriber(settings: &Settings, resource: Resource) -> Option<SdkTracerProvider> {
    let traces = settings
        .otlp_endpoint
        .as_deref()
        .map(|endpoint| tracer_provider(endpoint, resource));
    let otel_layer = match &traces {
        Some(Ok(provider)) => Some(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("kpi"))
                .with_filter(EnvFilter::new(OTEL_FILTER)),
        ),
        _ => None,
    };
    // Fails only when a subscriber is already installed (a second init).
    let _ = tracing_subscriber::registry()
        .with(fmt_layer(settings))
        .with(otel_layer)
        .try_init();
    match traces? {
        Ok(provider) => Some(provider),
        Err(err) => {
            tracing::error!(error = %err, "cannot build the OTLP span exporter; spans are not exported");
            None
        }
    }
}

/// Starts the scrape endpoint, or logs why not (telemetry never stops a
/// service).
fn serve_metrics(addr: SocketAddr, reader: PrometheusReader) -> Option<SocketAddr> {
    if tokio::runtime::Handle::try_current().is_err() {
        tracing::error!(%addr, "telemetry initialised outside the tokio runtime; no metrics endpoint");
        return None;
    }
    match spawn_scrape_endpoint(addr, reader, Readiness::process().clone()) {
        Ok(bound) => Some(bound),
        Err(err) => {
            tracing::error!(%addr, error = %err, "cannot serve metrics; continuing without the scrape endpoint");
            None
        }
    }
}

/// The stderr log layer: text or JSON, filtered by the log filter.
fn fmt_layer<S>(settings: &Settings) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let filter =
        EnvFilter::try_new(&settings.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .map_event_format(|format| WithTraceIds { inner: format })
            .with_filter(filter)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .compact()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    }
}

/// The service's identity on every span and metric.
fn resource(settings: &Settings) -> Resource {
    Resource::builder()
        .with_service_name(settings.service.binary_name())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A tracer provider exporting to `endpoint` in batches. The channel
/// connects lazily, so a collector that is down costs nothing but dropped
/// spans.
fn tracer_provider(
    endpoint: &str,
    resource: Resource,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT)
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The meter provider: always a reader for the scrape endpoint, plus a
/// periodic OTLP push when the endpoint is set.
fn meter_provider(settings: &Settings, resource: Resource) -> (SdkMeterProvider, PrometheusReader) {
    let reader = Arc::new(ManualReader::builder().build());
    let prometheus = PrometheusReader::new(reader.clone());
    let mut builder = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(prometheus.clone());
    if let Some(endpoint) = settings.otlp_endpoint.as_deref() {
        match opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
        {
            Ok(exporter) => {
                let periodic = opentelemetry_sdk::metrics::PeriodicReader::builder(exporter)
                    .with_interval(METRICS_EXPORT_INTERVAL)
                    .build();
                builder = builder.with_reader(periodic);
            }
            Err(err) => {
                tracing::error!(endpoint, error = %err, "cannot build the OTLP metric exporter; metrics are only scraped");
            }
        }
    }
    (builder.build(), prometheus)
}

/// The trace and span ids of the innermost span of `ctx` that has a valid
/// OpenTelemetry context, as lowercase hex.
fn current_ids<S, N>(ctx: &FmtContext<'_, S, N>) -> Option<(String, String)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let span = ctx.lookup_current()?;
    let id = span.id();
    // No extension lock is held here, as `get_otel_context` requires.
    let cx = tracing::dispatcher::get_default(|dispatch| {
        tracing_opentelemetry::get_otel_context(&id, dispatch)
    })?;
    let otel_span = cx.span();
    let span_context = otel_span.span_context();
    span_context.is_valid().then(|| {
        (
            span_context.trace_id().to_string(),
            span_context.span_id().to_string(),
        )
    })
}

/// The JSON event format with `trace_id` and `span_id` first in each line
/// when the event is inside a traced span, so logs join their traces.
struct WithTraceIds {
    inner: Format<Json>,
}

impl<S> FormatEvent<S, JsonFields> for WithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let Some((trace_id, span_id)) = current_ids(ctx) else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        // The inner format writes one JSON object: splice the ids in after
        // its opening brace (both are plain hex, nothing to escape).
        match line.strip_prefix('{') {
            Some(rest) => write!(
                writer,
                "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"
            ),
            None => writer.write_str(&line),
        }
    }
}
