//! Test helpers shared by the services' integration tests:
//!
//! - [`TestDb`]: a fresh database per test — a new PostgreSQL database on the
//!   server named by `KPI_TEST_POSTGRES_URL` (default: the local one), dropped
//!   afterwards, or a new SQLite file in a temporary directory.
//! - [`settings`]: a service's settings for a test: port 0, that database,
//!   and `KPI_AUTH=off` (explicit; the auth tests configure keys instead).
//! - [`RunningServer`]: a service spawned on a real socket, stopped on demand.
//! - [`redis_server`]: the shared test Redis with unique key prefixes, and
//!   [`RedisServer`], a private `redis-server` for fault tests.
//! - [`pg_server`]: [`PgServer`], a private PostgreSQL cluster on a free
//!   port for fault tests (stopped and started again under a service).
#![forbid(unsafe_code)]

pub mod pg_server;
pub mod redis_server;

pub use crate::pg_server::{PgServer, StopMode};
pub use crate::redis_server::{RedisServer, shared_redis_url, unique_prefix};

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use kpi_runtime::{ServiceKind, Settings};
use sea_orm::{ConnectionTrait, Database};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("KPI_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_string())
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// A database that exists for one test.
pub struct TestDb {
    /// Its URL.
    pub url: String,
    kind: DbKind,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "kpi_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

impl TestDb {
    /// A fresh, empty database.
    pub async fn new(kind: DbKind) -> anyhow::Result<TestDb> {
        let name = unique_name();
        match kind {
            DbKind::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("kpi.db").display());
                Ok(TestDb {
                    url,
                    kind,
                    name,
                    _dir: Some(dir),
                })
            }
            DbKind::Postgres => {
                let admin_url = postgres_admin_url();
                let admin = Database::connect(&admin_url).await?;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await?;
                admin.close().await?;
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(base, _)| base);
                Ok(TestDb {
                    url: format!("{base}/{name}"),
                    kind,
                    name,
                    _dir: None,
                })
            }
        }
    }

    /// Which kind of database it is.
    pub fn kind(&self) -> DbKind {
        self.kind
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.kind != DbKind::Postgres {
            return;
        }
        // Drop runs outside any runtime guarantee, so the database is dropped
        // from a thread of its own with a small runtime; failures only leave
        // an unused database behind.
        let name = self.name.clone();
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(admin) = Database::connect(&postgres_admin_url()).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// A service's settings for a test: loopback port 0 and `database_url`.
pub fn settings(service: ServiceKind, database_url: &str) -> Settings {
    let mut settings = Settings::defaults(service);
    settings.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    settings.database_url = database_url.to_string();
    settings.drain_timeout = std::time::Duration::from_secs(5);
    // Tests of other concerns run without credentials, explicitly; the
    // authentication tests set `settings.auth` themselves.
    settings.auth = kpi_runtime::auth::AuthSettings::off();
    settings
}

/// The shutdown signal handed to a spawned server.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A server running on a real socket until [`RunningServer::stop`].
pub struct RunningServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Spawns `run` (a service's `run_until_stopped`) with a shutdown signal
    /// that [`RunningServer::stop`] fires. `addr` is where it already listens.
    pub fn spawn<F, Fut>(addr: SocketAddr, run: F) -> RunningServer
    where
        F: FnOnce(Shutdown) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown: Shutdown = Box::pin(async move {
            let _ = rx.await;
        });
        let task = tokio::spawn(run(shutdown));
        RunningServer {
            addr,
            stop: Some(tx),
            task,
        }
    }

    /// The `http://` endpoint for a client.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await?
    }
}
