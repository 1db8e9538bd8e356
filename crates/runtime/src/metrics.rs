//! Metrics: the Prometheus scrape endpoint and the suite's RPC instruments.
//!
//! Every instrument is an OpenTelemetry instrument on the global meter
//! provider that [`crate::telemetry::init`] installs; the same numbers go out
//! over OTLP (when configured) and to Prometheus. [`PrometheusReader`] is a
//! pull reader rendering the Prometheus text format on demand, and
//! [`spawn_scrape_endpoint`] serves it on `GET /metrics` (`KPI_METRICS_ADDR`),
//! beside the readiness probes of [`crate::readiness`].
//!
//! Prometheus names are the OpenTelemetry names with `.` turned into `_`,
//! `_seconds` appended for second units and `_total` for counters, e.g.
//! `kpi.rpc.server.requests` → `kpi_rpc_server_requests_total`.
//!
//! Instruments must be created after [`crate::telemetry::init`] (an
//! instrument made earlier stays bound to the no-op provider): services
//! create them while building their `App`.

use std::fmt::{Display, Write as _};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{
    AggregatedMetrics, Histogram as HistogramData, Metric, MetricData, ResourceMetrics,
};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, Temporality};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::readiness::Readiness;
use tokio::net::{TcpListener, TcpStream};

/// Latency buckets (seconds) for RPC durations: 1 ms to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// The largest scrape request head read; Prometheus sends a few hundred bytes.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// How long a scraper may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The suite's meter: all instruments live under it.
pub fn meter() -> Meter {
    opentelemetry::global::meter("kpi")
}

/// A pull reader over the SDK's aggregates, shared between the meter
/// provider (which registers it) and the scrape endpoint (which renders it).
#[derive(Debug, Clone)]
pub struct PrometheusReader {
    reader: Arc<ManualReader>,
}

impl PrometheusReader {
    /// Wraps `reader`; register the result with the meter provider.
    pub fn new(reader: Arc<ManualReader>) -> Self {
        Self { reader }
    }

    /// Collects every instrument now and renders the Prometheus text format.
    pub fn render(&self) -> String {
        let mut collected = ResourceMetrics::default();
        if let Err(err) = self.reader.collect(&mut collected) {
            tracing::debug!(error = %err, "cannot collect metrics");
            return String::new();
        }
        let mut out = String::new();
        for scope in collected.scope_metrics() {
            for metric in scope.metrics() {
                encode_metric(&mut out, metric);
            }
        }
        out
    }
}

impl MetricReader for PrometheusReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.reader.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.reader.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.reader.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.reader.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        // Prometheus wants running totals.
        self.reader.temporality(kind)
    }
}

/// Binds `addr` and serves on a background task `GET /metrics` from
/// `reader`, and the probes `GET /readyz` (200 while `readiness` is ready,
/// else 503) and `GET /livez` (200); returns the bound address (port 0 picks
/// a free one). Anything else is answered 404. Must be called inside the
/// tokio runtime.
pub fn spawn_scrape_endpoint(
    addr: SocketAddr,
    reader: PrometheusReader,
    readiness: Readiness,
) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let bound = listener.local_addr()?;
    tokio::spawn(accept_scrapes(listener, reader, readiness));
    tracing::info!(addr = %bound, "serving metrics");
    Ok(bound)
}

async fn accept_scrapes(listener: TcpListener, reader: PrometheusReader, readiness: Readiness) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(answer_scrape(stream, reader.clone(), readiness.clone()));
            }
            Err(err) => {
                tracing::warn!(error = %err, "metrics endpoint cannot accept");
                // Out of file descriptors and the like: back off, keep serving.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One HTTP/1.1 exchange, then the connection is closed.
async fn answer_scrape(mut stream: TcpStream, reader: PrometheusReader, readiness: Readiness) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        _ => return,
    };
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next(), parts.next());
    let path = path.map(|p| p.split('?').next().unwrap_or(p));
    let (status, body) = match (method, path) {
        (Some("GET"), Some("/metrics")) => ("200 OK", reader.render()),
        (Some("GET"), Some("/readyz")) if readiness.is_ready() => ("200 OK", "ready\n".to_owned()),
        (Some("GET"), Some("/readyz")) => (
            "503 Service Unavailable",
            "not ready: starting or draining\n".to_owned(),
        ),
        (Some("GET"), Some("/livez")) => ("200 OK", "alive\n".to_owned()),
        _ => (
            "404 Not Found",
            "not found: try GET /metrics, /readyz or /livez\n".to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Err(err) = stream.write_all(response.as_bytes()).await {
        tracing::debug!(error = %err, "metrics scrape aborted");
    }
    let _ = stream.shutdown().await;
}

/// Reads until the blank line ending an HTTP request head.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0_u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// Appends one metric in the Prometheus text format.
fn encode_metric(out: &mut String, metric: &Metric) {
    let base = prometheus_name(metric.name(), metric.unit());
    match metric.data() {
        AggregatedMetrics::F64(data) => encode_data(out, &base, metric.description(), data),
        AggregatedMetrics::U64(data) => encode_data(out, &base, metric.description(), data),
        AggregatedMetrics::I64(data) => encode_data(out, &base, metric.description(), data),
    }
}

fn encode_data<T: Display + Copy>(out: &mut String, base: &str, help: &str, data: &MetricData<T>) {
    match data {
        MetricData::Sum(sum) if sum.is_monotonic() => {
            header(out, base, help, "counter");
            for point in sum.data_points() {
                sample(
                    out,
                    &format!("{base}_total"),
                    point.attributes(),
                    &[],
                    point.value(),
                );
            }
        }
        MetricData::Sum(sum) => {
            header(out, base, help, "gauge");
            for point in sum.data_points() {
                sample(out, base, point.attributes(), &[], point.value());
            }
        }
        MetricData::Gauge(gauge) => {
            header(out, base, help, "gauge");
            for point in gauge.data_points() {
                sample(out, base, point.attributes(), &[], point.value());
            }
        }
        MetricData::Histogram(histogram) => encode_histogram(out, base, help, histogram),
        // Not used by the suite; Prometheus has no plain equivalent.
        MetricData::ExponentialHistogram(_) => {}
    }
}

fn encode_histogram<T: Display + Copy>(
    out: &mut String,
    base: &str,
    help: &str,
    histogram: &HistogramData<T>,
) {
    header(out, base, help, "histogram");
    let bucket = format!("{base}_bucket");
    for point in histogram.data_points() {
        let mut cumulative = 0_u64;
        let bounds: Vec<String> = point
            .bounds()
            .map(|b| b.to_string())
            .chain(["+Inf".to_owned()])
            .collect();
        for (bound, count) in bounds.iter().zip(point.bucket_counts()) {
            cumulative += count;
            sample(
                out,
                &bucket,
                point.attributes(),
                &[("le", bound)],
                cumulative,
            );
        }
        sample(
            out,
            &format!("{base}_sum"),
            point.attributes(),
            &[],
            point.sum(),
        );
        sample(
            out,
            &format!("{base}_count"),
            point.attributes(),
            &[],
            point.count(),
        );
    }
}

fn header(out: &mut String, base: &str, help: &str, kind: &str) {
    if !help.is_empty() {
        let _ = writeln!(out, "# HELP {base} {}", help.replace('\n', " "));
    }
    let _ = writeln!(out, "# TYPE {base} {kind}");
}

fn sample<'a>(
    out: &mut String,
    name: &str,
    attributes: impl Iterator<Item = &'a KeyValue>,
    extra: &[(&str, &str)],
    value: impl Display,
) {
    let labels: Vec<String> = attributes
        .map(|kv| (sanitize(kv.key.as_str()), kv.value.as_str().into_owned()))
        .chain(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .map(|(key, value)| format!("{key}=\"{}\"", escape_label(&value)))
        .collect();
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
    }
}

/// `kpi.rpc.server.duration` with unit `s` → `kpi_rpc_server_duration_seconds`.
fn prometheus_name(name: &str, unit: &str) -> String {
    let base = sanitize(name);
    match unit {
        "s" => format!("{base}_seconds"),
        "By" => format!("{base}_bytes"),
        _ => base,
    }
}

/// Replaces every character Prometheus does not allow in names with `_`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Per-RPC server instruments, recorded by [`crate::server`]'s metrics layer.
#[derive(Clone)]
pub struct RpcMetrics {
    /// `kpi.rpc.server.requests`: finished calls by service, method and gRPC code.
    pub requests: Counter<u64>,
    /// `kpi.rpc.server.duration`: seconds from request to final status.
    pub duration: Histogram<f64>,
}

impl RpcMetrics {
    /// The instruments, from the global meter provider.
    pub fn new() -> Self {
        let meter = meter();
        Self {
            requests: meter
                .u64_counter("kpi.rpc.server.requests")
                .with_description("gRPC calls served, by service, method and status code")
                .build(),
            duration: meter
                .f64_histogram("kpi.rpc.server.duration")
                .with_unit("s")
                .with_description("gRPC call latency until the final status")
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build(),
        }
    }

    /// Records one finished call.
    pub fn record(&self, service: &str, method: &str, code: tonic::Code, elapsed: Duration) {
        let rpc = [
            KeyValue::new("rpc.service", service.to_owned()),
            KeyValue::new("rpc.method", method.to_owned()),
        ];
        self.duration.record(elapsed.as_secs_f64(), &rpc);
        let [service, method] = rpc;
        self.requests.add(
            1,
            &[
                service,
                method,
                KeyValue::new("rpc.grpc.status_code", code_name(code)),
            ],
        );
    }
}

impl Default for RpcMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The canonical upper-case name of a gRPC code, e.g. `NOT_FOUND`.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        assert_eq!(
            prometheus_name("kpi.rpc.server.duration", "s"),
            "kpi_rpc_server_duration_seconds"
        );
        assert_eq!(prometheus_name("kpi.cache.hits", ""), "kpi_cache_hits");
        assert_eq!(escape_label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
