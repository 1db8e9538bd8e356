//! The hidden `serve-ingestion` sub-command: data-ingestion in a process of
//! its own, configured by `KPI_*` variables, and its handle in the parent.

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kpi_runtime::{ServiceKind, Settings};
use tokio::sync::oneshot;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How often readiness is polled.
const READY_POLL: Duration = Duration::from_millis(50);
/// How long the child gets to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves data-ingestion until SIGINT/SIGTERM or until stdin closes (the
/// parent went away or is done).
pub(crate) async fn serve_ingestion() -> anyhow::Result<()> {
    let settings = Settings::load(ServiceKind::Ingestion)?;
    kpi_runtime::telemetry::init(&settings);
    let app = data_ingestion::App::build(&settings).await?;
    app.run_until_stopped(parent_gone_or_signal()).await
}

/// Serves scoring until SIGINT/SIGTERM or until stdin closes.
pub(crate) async fn serve_scoring() -> anyhow::Result<()> {
    let settings = Settings::load(ServiceKind::Scoring)?;
    kpi_runtime::telemetry::init(&settings);
    let app = scoring::App::build(&settings).await?;
    app.run_until_stopped(parent_gone_or_signal()).await
}

/// Resolves on SIGINT/SIGTERM or when stdin closes (the parent went away or
/// is done with the child).
fn parent_gone_or_signal() -> impl Future<Output = ()> + Send + 'static {
    let (closed_tx, closed_rx) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = [0_u8; 64];
        let mut stdin = std::io::stdin();
        // Reads until end of file or an error: either way the parent is gone.
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        let _ = closed_tx.send(());
    });
    async move {
        tokio::select! {
            () = kpi_runtime::shutdown_signal() => {}
            _ = closed_rx => {}
        }
    }
}

/// A free port on 127.0.0.1 (bound, then released for the child to take).
pub(crate) fn free_local_addr() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?)
}

/// A service child process (this executable with a hidden `serve-…`
/// sub-command); killed when dropped.
pub(crate) struct ServiceProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
    kind: ServiceKind,
}

/// The data-ingestion child process of `kpi-bench ingest`.
pub(crate) type IngestionProcess = ServiceProcess;

impl ServiceProcess {
    /// Starts this executable with `serve-ingestion` on `addr`, on
    /// `database_url`, with calendars from `catalog_url`.
    pub(crate) fn spawn(
        exe: &Path,
        addr: SocketAddr,
        database_url: &str,
        catalog_url: &str,
        redis_url: &str,
    ) -> anyhow::Result<ServiceProcess> {
        Self::spawn_kind(
            exe,
            ServiceKind::Ingestion,
            addr,
            &[
                ("KPI_DATABASE_URL", database_url.to_owned()),
                ("KPI_CATALOG_URL", catalog_url.to_owned()),
                ("KPI_REDIS_URL", redis_url.to_owned()),
                ("KPI_RUN_MIGRATIONS", "true".to_owned()),
            ],
        )
    }

    /// Starts this executable with `serve-<kind>` on `addr` with `env`.
    pub(crate) fn spawn_kind(
        exe: &Path,
        kind: ServiceKind,
        addr: SocketAddr,
        env: &[(&str, String)],
    ) -> anyhow::Result<ServiceProcess> {
        let log = std::env::var("KPI_LOG").unwrap_or_else(|_| "warn".to_owned());
        let sub = match kind {
            ServiceKind::Scoring => "serve-scoring",
            _ => "serve-ingestion",
        };
        let mut command = Command::new(exe);
        command
            .arg(sub)
            .env_remove("KPI_CONFIG_FILE")
            .env("KPI_LISTEN_ADDR", addr.to_string())
            .env("KPI_DRAIN_TIMEOUT_SECS", "1")
            // The benchmark's own loopback servers: no credentials, explicitly.
            .env("KPI_AUTH", "off")
            .env("KPI_LOG", log)
            .stdin(Stdio::piped())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {} {sub}", exe.display()))?;
        let stdin = child.stdin.take();
        Ok(ServiceProcess {
            child,
            stdin,
            addr,
            kind,
        })
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its gRPC endpoint.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until its health check answers SERVING for its service.
    pub(crate) async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut last_problem = String::from("no answer yet");
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited before it was ready: {status}", self.kind);
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "{} was not ready after {READY_TIMEOUT:?} ({last_problem})",
                    self.kind
                );
            }
            match self.check_health().await {
                Ok(true) => return Ok(()),
                Ok(false) => last_problem = "not serving yet".to_owned(),
                Err(err) => last_problem = format!("{err:#}"),
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    async fn check_health(&self) -> anyhow::Result<bool> {
        let channel = tonic::transport::Endpoint::from_shared(self.endpoint())?
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(1))
            .connect()
            .await?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: self.kind.grpc_service_name().to_owned(),
            })
            .await?
            .into_inner();
        Ok(answer.status == ServingStatus::Serving as i32)
    }

    /// Its peak resident set size (`VmHWM`), in MiB.
    pub(crate) fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        peak_rss_mib(self.pid())
    }

    /// Closes its stdin (its signal to stop), then kills it if it is still running.
    pub(crate) fn stop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `VmHWM` of process `pid` from `/proc/<pid>/status`, in MiB.
pub(crate) fn peak_rss_mib(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .with_context(|| format!("no VmHWM in {path}"))?;
    let kib: f64 = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("bad VmHWM in {path}: {line:?}"))?;
    Ok(kib / 1024.0)
}
