//! Redis for tests: the shared server (`KPI_TEST_REDIS_URL`, default
//! 127.0.0.1:6379) with a unique key prefix per test, or a private
//! `redis-server` on a free port for fault tests (stopped, paused, flushed).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a private server may take to answer its first PING.
const START_BOUND: Duration = Duration::from_secs(15);
const POLL_EVERY: Duration = Duration::from_millis(20);

/// The shared Redis normal tests use: `KPI_TEST_REDIS_URL`, else the local one.
pub fn shared_redis_url() -> String {
    std::env::var("KPI_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_string())
}

/// A key prefix no other test (or test process) uses.
pub fn unique_prefix(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "kpitest:{test}:{}:{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A `redis-server` of one test alone, on a free port; killed on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
    stopped: bool,
}

impl RedisServer {
    /// Starts `redis-server` (which must be installed) and waits for its PING.
    pub async fn start() -> anyhow::Result<RedisServer> {
        let port = free_port()?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start redis-server (is it installed?): {e}"))?;
        let mut server = RedisServer {
            child,
            port,
            stopped: false,
        };
        let deadline = Instant::now() + START_BOUND;
        loop {
            if server.ping().await {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                anyhow::bail!("redis-server on port {port} exited: {status}");
            }
            if Instant::now() >= deadline {
                anyhow::bail!("redis-server on port {port} never answered PING");
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Its `redis://` URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A plain connection of its own, or none within a second.
    pub async fn connection(&self) -> Option<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url()).ok()?;
        tokio::time::timeout(
            Duration::from_secs(1),
            client.get_multiplexed_async_connection(),
        )
        .await
        .ok()?
        .ok()
    }

    /// Whether it answers PING within a second.
    pub async fn ping(&self) -> bool {
        let Some(mut conn) = self.connection().await else {
            return false;
        };
        let pong = tokio::time::timeout(
            Duration::from_secs(1),
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        matches!(pong, Ok(Ok(ref s)) if s == "PONG")
    }

    /// Runs one command through a plain connection of its own.
    pub async fn command<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> anyhow::Result<T> {
        let mut conn = self
            .connection()
            .await
            .ok_or_else(|| anyhow::anyhow!("no connection to redis-server on {}", self.port))?;
        Ok(tokio::time::timeout(Duration::from_secs(2), cmd.query_async::<T>(&mut conn)).await??)
    }

    /// The number of keys it holds.
    pub async fn key_count(&self) -> anyhow::Result<i64> {
        self.command(&redis::cmd("DBSIZE")).await
    }

    /// FLUSHALL: every key is gone.
    pub async fn flush(&self) -> anyhow::Result<()> {
        self.command::<()>(&redis::cmd("FLUSHALL")).await
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        // Never signal a reaped process: its pid may belong to another one.
        anyhow::ensure!(!self.stopped, "redis-server on {} is stopped", self.port);
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill {signal} failed");
        Ok(())
    }

    /// SIGSTOP: the server still accepts connections but answers nothing.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("-STOP")
    }

    /// SIGCONT.
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("-CONT")
    }

    /// Kills the server and reaps it.
    pub fn stop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
