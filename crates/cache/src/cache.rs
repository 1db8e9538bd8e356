//! [`Cache`]: the shared handle that picks the backend, does cache-aside with
//! single flight, and keeps the counters. Hits, misses and errors also go to
//! the OpenTelemetry meter (`kpi.cache.hits`, `kpi.cache.misses`,
//! `kpi.cache.errors`), which the service exports over OTLP and Prometheus.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::metrics::Counter;

use crate::config::{CacheConfig, CacheError};
use crate::flight::{self, Flights, Role};
use crate::key::CacheKey;
use crate::memory::MemoryStore;
use crate::redis_store::{Lookup, RedisStore, Stored};

/// Values written to Redis per pipelined round trip by [`Cache::put_many`].
const PIPELINE_BATCH: usize = 100;

/// Counters since the cache was built, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found a value.
    pub hits: u64,
    /// Lookups that found nothing (including those where Redis failed or was
    /// skipped by the breaker).
    pub misses: u64,
    /// Redis operations that failed or timed out.
    pub errors: u64,
    /// Times a `compute` passed to [`Cache::get_or_compute`] was run.
    pub computations: u64,
    /// Callers of [`Cache::get_or_compute`] served by another caller's lookup
    /// or computation of the same key (single flight).
    pub coalesced: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    computations: AtomicU64,
    coalesced: AtomicU64,
    exported: Exported,
}

/// The exported twins of `hits`, `misses` and `errors`, from the global
/// meter provider as it is when the cache is built (so after the service's
/// telemetry init).
struct Exported {
    hits: Counter<u64>,
    misses: Counter<u64>,
    errors: Counter<u64>,
}

impl Default for Exported {
    fn default() -> Self {
        let meter = opentelemetry::global::meter("kpi");
        let counter = |name: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_description(description)
                .build()
        };
        Self {
            hits: counter("kpi.cache.hits", "cache lookups that found a value"),
            misses: counter("kpi.cache.misses", "cache lookups that found nothing"),
            errors: counter(
                "kpi.cache.errors",
                "Redis operations that failed or timed out",
            ),
        }
    }
}

impl Counters {
    fn hit(&self) {
        bump(&self.hits);
        self.exported.hits.add(1, &[]);
    }

    fn miss(&self) {
        bump(&self.misses);
        self.exported.misses.add(1, &[]);
    }

    fn error(&self) {
        bump(&self.errors);
        self.exported.errors.add(1, &[]);
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

enum Backend {
    Memory(MemoryStore),
    /// Redis, with an in-process tier in front of it when configured.
    Redis(Box<RedisStore>, Option<MemoryStore>),
}

impl Backend {
    /// The in-process store consulted before any I/O, if any.
    fn in_process(&self) -> Option<&MemoryStore> {
        match self {
            Backend::Memory(memory) => Some(memory),
            Backend::Redis(_, front) => front.as_ref(),
        }
    }
}

struct Inner {
    prefix: String,
    backend: Backend,
    flights: Flights,
    counters: Counters,
}

/// The scorecard cache: Redis when a URL is configured, else in-process.
/// Cheap to clone; clones share everything.
///
/// Once built it never fails its callers: a Redis that is down, slow, flushed
/// or answering garbage is logged at warn and the value is computed from
/// source.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.backend())
            .field("prefix", &self.inner.prefix)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// Builds a cache. Never touches the network: the Redis connection is made
    /// on first use. Fails on an unparsable Redis URL or a zero TTL, operation
    /// timeout or capacity.
    pub fn new(config: CacheConfig) -> Result<Cache, CacheError> {
        if config.ttl.is_zero() {
            return Err(CacheError::InvalidConfig("ttl must be positive"));
        }
        if config.op_timeout.is_zero() {
            return Err(CacheError::InvalidConfig("op_timeout must be positive"));
        }
        if config.memory_capacity == 0 || config.memory_max_bytes == 0 {
            return Err(CacheError::InvalidConfig(
                "memory_capacity and memory_max_bytes must be positive",
            ));
        }
        let memory =
            || MemoryStore::new(config.memory_capacity, config.memory_max_bytes, config.ttl);
        let backend = match config.redis_url.as_deref() {
            Some(url) => Backend::Redis(
                Box::new(RedisStore::new(url, &config)?),
                config.memory_in_front.then(memory),
            ),
            None => Backend::Memory(memory()),
        };
        Ok(Cache {
            inner: Arc::new(Inner {
                prefix: config.prefix,
                backend,
                flights: Flights::default(),
                counters: Counters::default(),
            }),
        })
    }

    /// `"redis"` or `"memory"`.
    pub fn backend(&self) -> &'static str {
        match self.inner.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis(..) => "redis",
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        let c = &self.inner.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            computations: c.computations.load(Ordering::Relaxed),
            coalesced: c.coalesced.load(Ordering::Relaxed),
        }
    }

    /// Cache-aside with single flight: returns the cached bytes, or runs
    /// `compute` once per key among concurrent callers in this process (the
    /// others await its result), stores the result with the TTL, and returns
    /// it.
    ///
    /// Errors of `compute` are returned to every waiter and never cached.
    /// Redis failures (down, timeout, garbage) are logged at warn and fall
    /// through to `compute`; never an error to the caller. If the caller doing
    /// the work is cancelled, a waiting caller takes over with its own
    /// `compute`.
    pub async fn get_or_compute<F, Fut, E>(
        &self,
        key: &CacheKey,
        compute: F,
    ) -> Result<Arc<Vec<u8>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
        E: Clone + Send + Sync + 'static,
    {
        let rendered = key.render(&self.inner.prefix);
        let counters = &self.inner.counters;

        // In-process hits need no coalescing: they cost no I/O.
        if let Some(memory) = self.inner.backend.in_process()
            && let Some(value) = memory.get(&rendered)
        {
            counters.hit();
            return Ok(value);
        }

        let leader = loop {
            match self.inner.flights.join(&rendered) {
                Role::Leader(leader) => break leader,
                Role::Follower(slot) => match flight::wait(slot).await {
                    Some(Ok(value)) => {
                        bump(&counters.coalesced);
                        return Ok(value);
                    }
                    Some(Err(error)) => {
                        if let Some(error) = error.downcast_ref::<E>() {
                            bump(&counters.coalesced);
                            return Err(error.clone());
                        }
                        // A caller with another error type led this flight:
                        // try again, leading if need be.
                    }
                    // The leader was cancelled: try again.
                    None => {}
                },
            }
        };

        // Leading: a previous flight stores its value before it ends, so this
        // lookup sees it.
        if let Some(value) = self.lookup(&rendered).await {
            leader.publish(Ok(value.clone()));
            return Ok(value);
        }

        bump(&counters.computations);
        match compute().await {
            Ok(bytes) => {
                let value = Arc::new(bytes);
                // Followers get the value now; callers arriving while it is
                // being stored join this flight and get it too.
                leader.publish(Ok(value.clone()));
                self.store(&rendered, &value).await;
                Ok(value)
            }
            Err(error) => {
                leader.publish(Err(Arc::new(error.clone())));
                Err(error)
            }
        }
    }

    /// The cached bytes under `key`, if any. A Redis failure is a miss.
    pub async fn get(&self, key: &CacheKey) -> Option<Arc<Vec<u8>>> {
        self.lookup(&key.render(&self.inner.prefix)).await
    }

    /// Stores `value` under `key` with the TTL. A Redis failure is logged and
    /// otherwise ignored.
    pub async fn put(&self, key: &CacheKey, value: Vec<u8>) {
        self.store(&key.render(&self.inner.prefix), &Arc::new(value))
            .await;
    }

    /// Stores many values with the TTL, in pipelined batches to Redis (a
    /// computation that produced many values at once, e.g. every agent's
    /// scorecard of a board). A Redis failure is logged and otherwise ignored.
    pub async fn put_many(&self, entries: Vec<(CacheKey, Vec<u8>)>) {
        let rendered: Vec<(String, Arc<Vec<u8>>)> = entries
            .into_iter()
            .map(|(key, value)| (key.render(&self.inner.prefix), Arc::new(value)))
            .collect();
        if let Some(memory) = self.inner.backend.in_process() {
            for (key, value) in &rendered {
                memory.put(key, value.clone());
            }
        }
        if let Backend::Redis(redis, _) = &self.inner.backend {
            for batch in rendered.chunks(PIPELINE_BATCH) {
                match redis.put_many(batch).await {
                    Stored::Written => {}
                    Stored::Skipped => return,
                    Stored::Failed => {
                        self.inner.counters.error();
                        return;
                    }
                }
            }
        }
    }

    /// How many keys have a computation under way (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.inner.flights.in_flight()
    }

    async fn lookup(&self, rendered: &str) -> Option<Arc<Vec<u8>>> {
        let counters = &self.inner.counters;
        let found = match &self.inner.backend {
            Backend::Memory(memory) => memory.get(rendered),
            Backend::Redis(redis, front) => match front.as_ref().and_then(|f| f.get(rendered)) {
                Some(value) => Some(value),
                None => self.redis_get(redis, front.as_ref(), rendered).await,
            },
        };
        if found.is_some() {
            counters.hit();
        } else {
            counters.miss();
        }
        found
    }

    /// A Redis lookup; a value found is kept in `front` too.
    async fn redis_get(
        &self,
        redis: &RedisStore,
        front: Option<&MemoryStore>,
        rendered: &str,
    ) -> Option<Arc<Vec<u8>>> {
        match redis.get(rendered).await {
            Lookup::Hit(bytes) => {
                let value = Arc::new(bytes);
                if let Some(front) = front {
                    front.put(rendered, value.clone());
                }
                Some(value)
            }
            Lookup::Miss | Lookup::Skipped => None,
            Lookup::Failed => {
                self.inner.counters.error();
                None
            }
        }
    }

    async fn store(&self, rendered: &str, value: &Arc<Vec<u8>>) {
        if let Some(memory) = self.inner.backend.in_process() {
            memory.put(rendered, value.clone());
        }
        if let Backend::Redis(redis, _) = &self.inner.backend {
            match redis.put(rendered, value).await {
                Stored::Written | Stored::Skipped => {}
                Stored::Failed => self.inner.counters.error(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn get_or_compute_future_is_send() {
        let Ok(cache) = Cache::new(CacheConfig::default()) else {
            panic!("default config is valid");
        };
        let key = CacheKey::new("t", "scorecard", ["a"]);
        let fut = cache.get_or_compute(&key, || async { Ok::<_, String>(vec![1]) });
        assert_send(&fut);
    }
}
