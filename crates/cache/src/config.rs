//! Configuration of the cache and what building one can fail with.

use std::time::Duration;

/// How the cache is set up. Its `Debug` hides the credentials of the Redis URL.
#[derive(Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// `redis://…` URL of the Redis to use; `None` (the embedded default) uses
    /// the in-process cache.
    pub redis_url: Option<String>,
    /// Prefix of every key, e.g. `"kpi:v2"`; tests use a unique one. The
    /// default's number goes up whenever what a cached value holds changes
    /// (v2: vetoed scorecards rank last), so a rolling deploy never serves
    /// an old pod's value from a new pod.
    pub prefix: String,
    /// How long a value lives.
    pub ttl: Duration,
    /// Upper bound of one Redis operation (connecting included); past it the
    /// operation counts as a failure and the value is computed from source.
    pub op_timeout: Duration,
    /// Most entries the in-process cache keeps; the least recently used go first.
    pub memory_capacity: usize,
    /// Most bytes of values the in-process cache keeps; a value above an
    /// eighth of this is not kept in process.
    pub memory_max_bytes: usize,
    /// With Redis: also keep values in process, in front of Redis, so a hit
    /// costs no round trip. Safe when every key names the versions its value
    /// was computed from (as scoring's do); off by default.
    pub memory_in_front: bool,
    /// After a Redis failure, how long Redis is skipped before it is tried again.
    pub breaker_cooldown: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            prefix: "kpi:v2".to_owned(),
            ttl: Duration::from_secs(300),
            op_timeout: Duration::from_millis(50),
            memory_capacity: 10_000,
            memory_max_bytes: 256 << 20,
            memory_in_front: false,
            breaker_cooldown: Duration::from_secs(2),
        }
    }
}

impl std::fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheConfig")
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .field("op_timeout", &self.op_timeout)
            .field("memory_capacity", &self.memory_capacity)
            .field("memory_max_bytes", &self.memory_max_bytes)
            .field("memory_in_front", &self.memory_in_front)
            .field("breaker_cooldown", &self.breaker_cooldown)
            .finish()
    }
}

/// `url` with any `user:password@` replaced by `***@`, for logs.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end], &rest[at..]),
        None => url.to_owned(),
    }
}

/// Why a cache could not be built. Once built, a cache never fails its callers.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The Redis URL could not be parsed.
    #[error("invalid redis url: {0}")]
    InvalidUrl(#[source] redis::RedisError),
    /// A setting is out of range.
    #[error("invalid cache setting: {0}")]
    InvalidConfig(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials() {
        assert_eq!(
            redact_url("redis://u:secret@h:6379/0"),
            "redis://***@h:6379/0"
        );
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        let config = CacheConfig {
            redis_url: Some("redis://:pw@localhost".into()),
            ..CacheConfig::default()
        };
        assert!(!format!("{config:?}").contains("pw"));
    }
}
