//! The Redis backend: GET / SET PX over a lazily built `ConnectionManager`,
//! every operation bounded by `op_timeout`, behind a circuit breaker.
//!
//! Nothing here ever blocks on an unreachable Redis: the manager connects on
//! first use (with one retry and short connection / response timeouts, not the
//! default ~9 s of retries), each operation is cut off after `op_timeout`
//! (a paused Redis costs at most that), and after a failure Redis is skipped
//! for `breaker_cooldown` before it is tried again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::{CacheConfig, CacheError, redact_url};

/// What a lookup found.
pub(crate) enum Lookup {
    /// The stored bytes.
    Hit(Vec<u8>),
    /// Nothing stored (or expired, or flushed).
    Miss,
    /// Redis failed or timed out; already logged.
    Failed,
    /// The breaker is open: Redis was not asked.
    Skipped,
}

/// What a store did.
pub(crate) enum Stored {
    /// Written with the TTL.
    Written,
    /// Redis failed or timed out; already logged.
    Failed,
    /// The breaker is open: Redis was not asked.
    Skipped,
}

/// Why one Redis operation failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection manager: {0}")]
    Setup(String),
}

pub(crate) struct RedisStore {
    client: redis::Client,
    manager_config: ConnectionManagerConfig,
    /// Built on first use: building spawns a task, which needs the runtime,
    /// while `Cache::new` may run outside one.
    manager: OnceLock<Result<ConnectionManager, String>>,
    /// For logs: the URL without credentials.
    url: String,
    ttl_ms: u64,
    op_timeout: Duration,
    cooldown: Duration,
    /// Reference point of `open_until_ms`.
    origin: Instant,
    /// Until when (ms since `origin`) Redis is skipped; 0 when the breaker is closed.
    open_until_ms: AtomicU64,
    /// Whether a failure has been logged and no success seen since: an outage
    /// is logged at warn once, not on every operation.
    in_outage: AtomicBool,
}

impl RedisStore {
    pub(crate) fn new(url: &str, config: &CacheConfig) -> Result<Self, CacheError> {
        let client = redis::Client::open(url).map_err(CacheError::InvalidUrl)?;
        let op_timeout = config.op_timeout;
        let manager_config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100))
            .set_connection_timeout(Some(op_timeout.max(Duration::from_millis(100))))
            .set_response_timeout(Some(op_timeout));
        Ok(Self {
            client,
            manager_config,
            manager: OnceLock::new(),
            url: redact_url(url),
            ttl_ms: u64::try_from(config.ttl.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            op_timeout,
            cooldown: config.breaker_cooldown,
            origin: Instant::now(),
            open_until_ms: AtomicU64::new(0),
            in_outage: AtomicBool::new(false),
        })
    }

    /// The connection manager, built lazily (no I/O happens here).
    fn manager(&self) -> Result<ConnectionManager, Failure> {
        self.manager
            .get_or_init(|| {
                ConnectionManager::new_lazy_with_config(
                    self.client.clone(),
                    self.manager_config.clone(),
                )
                .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(Failure::Setup)
    }

    fn now_ms(&self) -> u64 {
        // +1 so that 0 keeps meaning "closed".
        u64::try_from(self.origin.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn breaker_open(&self) -> bool {
        let until = self.open_until_ms.load(Ordering::Relaxed);
        until != 0 && self.now_ms() < until
    }

    fn on_success(&self) {
        self.open_until_ms.store(0, Ordering::Relaxed);
        if self.in_outage.swap(false, Ordering::Relaxed) {
            tracing::info!(redis = %self.url, "redis cache reachable again");
        }
    }

    fn on_failure(&self, op: &'static str, failure: &Failure) {
        let cooldown_ms = u64::try_from(self.cooldown.as_millis()).unwrap_or(u64::MAX);
        self.open_until_ms
            .store(self.now_ms().saturating_add(cooldown_ms), Ordering::Relaxed);
        if self.in_outage.swap(true, Ordering::Relaxed) {
            tracing::debug!(redis = %self.url, op, error = %failure, "redis cache still failing");
        } else {
            tracing::warn!(
                redis = %self.url,
                op,
                error = %failure,
                cooldown_ms,
                "redis cache failed, computing from source and skipping redis for the cool-down"
            );
        }
    }

    async fn bounded<T>(
        &self,
        op: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.op_timeout, op).await {
            Ok(result) => result.map_err(Failure::from),
            Err(_) => Err(Failure::Timeout(self.op_timeout)),
        }
    }

    /// Runs `op` on the connection behind the breaker, bounded by
    /// `op_timeout`, with the breaker told and a failure logged as `name`.
    async fn attempt<T, F, Fut>(&self, name: &'static str, op: F) -> Attempt<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if self.breaker_open() {
            return Attempt::Skipped;
        }
        let result = match self.manager() {
            Ok(conn) => self.bounded(op(conn)).await,
            Err(failure) => Err(failure),
        };
        match result {
            Ok(value) => {
                self.on_success();
                Attempt::Done(value)
            }
            Err(failure) => {
                self.on_failure(name, &failure);
                Attempt::Failed
            }
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Lookup {
        let found = self.attempt("get", |mut conn| async move {
            conn.get::<_, Option<Vec<u8>>>(key).await
        });
        match found.await {
            Attempt::Done(Some(bytes)) => Lookup::Hit(bytes),
            Attempt::Done(None) => Lookup::Miss,
            Attempt::Failed => Lookup::Failed,
            Attempt::Skipped => Lookup::Skipped,
        }
    }

    /// Stores many values with the TTL in one pipelined round trip.
    pub(crate) async fn put_many(&self, entries: &[(String, Arc<Vec<u8>>)]) -> Stored {
        // Built before the clock starts: only Redis's answer is bounded.
        let mut pipe = redis::pipe();
        for (key, value) in entries {
            pipe.pset_ex(key, value.as_slice(), self.ttl_ms).ignore();
        }
        let written = self.attempt("set", |mut conn| async move {
            pipe.query_async::<()>(&mut conn).await
        });
        written.await.into()
    }

    pub(crate) async fn put(&self, key: &str, value: &[u8]) -> Stored {
        let ttl_ms = self.ttl_ms;
        let written = self.attempt("set", |mut conn| async move {
            conn.pset_ex::<_, _, ()>(key, value, ttl_ms).await
        });
        written.await.into()
    }

    /// Runs a Lua script with `keys` and `args`: `None` when Redis failed
    /// (logged, breaker told) or was skipped, never an error to the caller.
    pub(crate) async fn script<T: redis::FromRedisValue>(
        &self,
        name: &'static str,
        script: &redis::Script,
        keys: &[&str],
        args: &[&str],
    ) -> Option<T> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let ran = self.attempt(name, |mut conn| async move {
            invocation.invoke_async::<T>(&mut conn).await
        });
        match ran.await {
            Attempt::Done(value) => Some(value),
            Attempt::Failed | Attempt::Skipped => None,
        }
    }
}

/// What one bounded operation came to.
enum Attempt<T> {
    /// Redis answered.
    Done(T),
    /// Redis failed or timed out; already logged.
    Failed,
    /// The breaker is open: Redis was not asked.
    Skipped,
}

impl From<Attempt<()>> for Stored {
    fn from(attempt: Attempt<()>) -> Stored {
        match attempt {
            Attempt::Done(()) => Stored::Written,
            Attempt::Failed => Stored::Failed,
            Attempt::Skipped => Stored::Skipped,
        }
    }
}
