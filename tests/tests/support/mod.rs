//! What the end-to-end tests share:
//!
//! - [`OtlpReceiver`]: an OTLP/gRPC trace collector on `127.0.0.1:0` (the
//!   real `opentelemetry.proto.collector.trace.v1.TraceService`), keeping
//!   every span it is sent;
//! - [`ServiceProcess`]: a service binary run as a process on port 0 with
//!   JSON logs, its own SQLite file, a metrics endpoint on port 0 and OTLP
//!   pointed at the receiver; the addresses are read from its logs;
//! - [`scrape`] and [`sample`]: read a Prometheus endpoint.
//!
//! To bring scoring in: add an `e2e-scoring` binary to `tests/Cargo.toml`
//! and [`Binary::Scoring`] here, then spawn it with `KPI_CATALOG_URL` and
//! `KPI_INGESTION_URL` pointing at the other two.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// How long a process may take to start serving before the test gives up
/// (a guard against hanging, not a performance threshold).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// One span as the receiver got it.
#[derive(Debug, Clone)]
pub(crate) struct CollectedSpan {
    /// `service.name` of the exporting process.
    pub(crate) service: String,
    /// The span name (`pkg.Service/Method` for RPC spans).
    pub(crate) name: String,
    /// OTLP span kind (2 = server, 3 = client).
    pub(crate) kind: i32,
    /// 16 bytes.
    pub(crate) trace_id: Vec<u8>,
    /// 8 bytes.
    pub(crate) span_id: Vec<u8>,
    /// Empty for a root span.
    pub(crate) parent_span_id: Vec<u8>,
}

/// OTLP span kinds used by the assertions.
pub(crate) const SPAN_KIND_SERVER: i32 = 2;
/// See [`SPAN_KIND_SERVER`].
pub(crate) const SPAN_KIND_CLIENT: i32 = 3;

/// An in-process OTLP trace collector.
pub(crate) struct OtlpReceiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<CollectedSpan>>>,
    _stop: oneshot::Sender<()>,
}

struct Collector {
    spans: Arc<Mutex<Vec<CollectedSpan>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut collected = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(name) => Some(name.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                collected.push(CollectedSpan {
                    service: service.clone(),
                    name: span.name,
                    kind: span.kind,
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    parent_span_id: span.parent_span_id,
                });
            }
        }
        self.spans
            .lock()
            .map_err(|_| tonic::Status::internal("span store poisoned"))?
            .extend(collected);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl OtlpReceiver {
    /// Serves the collector on a free port until dropped.
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = oneshot::channel::<()>();
        let service = TraceServiceServer::new(Collector {
            spans: spans.clone(),
        });
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    async move {
                        let _ = stopped.await;
                    },
                ),
        );
        Ok(Self {
            addr,
            spans,
            _stop: stop,
        })
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub(crate) fn spans(&self) -> Vec<CollectedSpan> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The service binaries, built by this package from the services' `main.rs`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Binary {
    /// indicator-catalog.
    Catalog,
    /// data-ingestion.
    Ingestion,
    /// scoring.
    Scoring,
}

impl Binary {
    fn path(self) -> &'static str {
        match self {
            Binary::Catalog => env!("CARGO_BIN_EXE_e2e-indicator-catalog"),
            Binary::Ingestion => env!("CARGO_BIN_EXE_e2e-data-ingestion"),
            Binary::Scoring => env!("CARGO_BIN_EXE_e2e-scoring"),
        }
    }
}

/// A service running as its own process, killed when dropped.
pub(crate) struct ServiceProcess {
    pub(crate) child: Child,
    /// Where it serves gRPC.
    pub(crate) addr: SocketAddr,
    /// Where it serves `GET /metrics`.
    pub(crate) metrics_addr: SocketAddr,
    pub(crate) logs: Arc<Mutex<Vec<Json>>>,
    _dir: tempfile::TempDir,
}

impl ServiceProcess {
    /// Starts `binary` on 127.0.0.1:0 with its own SQLite file, JSON logs,
    /// metrics on 127.0.0.1:0, spans to `otlp` (if any), plus `env`; returns
    /// once it serves.
    pub(crate) async fn spawn(
        binary: Binary,
        otlp: Option<&OtlpReceiver>,
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let db = format!("sqlite://{}?mode=rwc", dir.path().join("kpi.db").display());
        let mut command = Command::new(binary.path());
        command
            .env_remove("KPI_CONFIG_FILE")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env("KPI_LISTEN_ADDR", "127.0.0.1:0")
            // Explicitly open unless the test passes credentials settings.
            .env("KPI_AUTH", "off")
            .env("KPI_METRICS_ADDR", "127.0.0.1:0")
            .env("KPI_DATABASE_URL", db)
            .env("KPI_LOG_FORMAT", "json")
            .env("KPI_LOG", "info")
            .env("KPI_DRAIN_TIMEOUT_SECS", "5")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(otlp) = otlp {
            command.env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint());
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.path()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (addrs_tx, mut addrs_rx) = mpsc::unbounded_channel();
        spawn_log_reader(stderr, logs.clone(), addrs_tx);

        let mut addr = None;
        let mut metrics_addr = None;
        while addr.is_none() || metrics_addr.is_none() {
            let next = tokio::time::timeout(START_TIMEOUT, addrs_rx.recv()).await;
            match next {
                Ok(Some(("serving", a))) => addr = Some(a),
                Ok(Some((_, a))) => metrics_addr = Some(a),
                Ok(None) | Err(_) => {
                    let _ = child.kill();
                    let lines = logs.lock().map(|l| l.clone()).unwrap_or_default();
                    bail!("{binary:?} did not start serving; its logs: {lines:#?}");
                }
            }
        }
        Ok(Self {
            child,
            addr: addr.context("no address")?,
            metrics_addr: metrics_addr.context("no metrics address")?,
            logs,
            _dir: dir,
        })
    }

    /// `http://` URL of its gRPC address.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it like Kubernetes does (SIGTERM) and waits for it to exit, so
    /// its queued spans have been flushed; fails unless it exits cleanly.
    /// Returns its log lines.
    pub(crate) async fn stop(self) -> anyhow::Result<Vec<Json>> {
        // Waiting blocks, and this runtime may be serving the OTLP receiver
        // the process is flushing to: wait off the runtime's workers.
        tokio::task::spawn_blocking(move || self.stop_blocking()).await?
    }

    fn stop_blocking(mut self) -> anyhow::Result<Vec<Json>> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        let exit = self.child.wait()?;
        if !exit.success() {
            bail!("exited with {exit}");
        }
        Ok(self.logs.lock().map(|l| l.clone()).unwrap_or_default())
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        // After `stop` this finds the process gone, which is fine.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the child's JSON log lines on a thread: keeps them all and reports
/// the addresses of the `serving` and `serving metrics` lines.
fn spawn_log_reader(
    stderr: std::process::ChildStderr,
    logs: Arc<Mutex<Vec<Json>>>,
    addrs: mpsc::UnboundedSender<(&'static str, SocketAddr)>,
) {
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let Ok(json) = serde_json::from_str::<Json>(&line) else {
                continue;
            };
            let message = json["message"].as_str().unwrap_or_default();
            let addr = json["addr"].as_str().and_then(|a| a.parse().ok());
            match (message, addr) {
                ("serving", Some(addr)) => {
                    let _ = addrs.send(("serving", addr));
                }
                ("serving metrics", Some(addr)) => {
                    let _ = addrs.send(("metrics", addr));
                }
                _ => {}
            }
            if let Ok(mut logs) = logs.lock() {
                logs.push(json);
            }
        }
    });
}

/// `GET /metrics` from `addr`: the Prometheus text.
pub(crate) async fn scrape(addr: SocketAddr) -> anyhow::Result<String> {
    let (status, body) = http_get(addr, "/metrics").await?;
    if !status.starts_with("HTTP/1.1 200") {
        bail!("scrape failed: {status}");
    }
    Ok(body)
}

/// `GET path` from the plain-HTTP endpoint at `addr`: the status line and
/// the body.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(String, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nhost: test\r\naccept: text/plain\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("not an HTTP response: {response:?}"))?;
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, body.to_owned()))
}

/// The value of the sample `name` whose labels include every pair in
/// `labels`, summed over the samples that match (0 when none does).
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let wanted = series_name == name
                && labels.iter().all(|(k, v)| {
                    series_labels
                        .split(',')
                        .any(|l| l == format!("{k}=\"{v}\""))
                });
            wanted.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}
