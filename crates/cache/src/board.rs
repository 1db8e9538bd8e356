//! The version board: each tenant's current versions (catalog revision,
//! data version) posted in Redis under a short lease, so that scoring can
//! learn them in one Redis round trip instead of asking the catalog and
//! data-ingestion (and their databases) on every request.
//!
//! Read-your-writes rests on three rules:
//!
//! 1. **Writers clear the board before they acknowledge.** After a write
//!    commits, catalog and data-ingestion delete the tenant's posted versions
//!    and replace its *fence* (a random token) in one script. If Redis cannot
//!    be told (down, hung, breaker open), the writer waits [`LEASE`] (plus a
//!    margin) before acknowledging, by which time every value posted before
//!    its commit has expired.
//! 2. **Readers post only what they read from source after their ticket.**
//!    A reader that finds nothing posted takes a [`Ticket`]: the fence and
//!    Redis's clock at that moment. It then reads the versions from source and
//!    posts them; the post is refused if the fence changed since (a writer
//!    cleared the board while the reader was reading), and it expires
//!    [`LEASE`] after the ticket's instant (by Redis's own clock, so no clocks
//!    need to agree). A post that arrives late (a paused Redis) is refused
//!    once that instant has passed.
//! 3. **A request trusts only a board read that began after it arrived**
//!    (scoring shares one read among the requests waiting for it).
//!
//! A read is one plain `GET`: the posted value carries the instant its lease
//! ends, so the reader can tell (by its own clock, which only decides when to
//! refresh, never what is trusted) that it is time to read from source again.
//!
//! So a version on the board was read from source after the last write that
//! cleared it, and a write that could not clear it is acknowledged only after
//! anything posted before it has expired. A flushed or evicted board is just
//! empty (the fence is new too, so older tickets are refused).
//!
//! All three services must use the same Redis and `KPI_REDIS_PREFIX`: a
//! writer that does not clear the board leaves readers up to [`LEASE`] behind.
//! Likewise a failover to a Redis replica that missed a clear, or a step of
//! Redis's clock, can leave a posted value trusted up to a lease too long;
//! the lease is short so that such faults stay that small.

use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::config::{CacheConfig, CacheError};
use crate::key::CacheKey;
use crate::redis_store::{Lookup, RedisStore};

/// How long a posted version is trusted after the ticket it was read under.
/// A constant, not a setting: writers wait it out, so every service must use
/// the same value.
pub const LEASE: Duration = Duration::from_secs(1);

/// How long a writer that could not clear the board waits before it
/// acknowledges: the lease and a tenth for clock rate and scheduling.
pub const WAIT_OUT: Duration = Duration::from_millis(1_100);

/// Bound of one board operation in the services. Longer than the cache's:
/// a writer that gives up waits out the whole lease.
pub const OP_TIMEOUT: Duration = Duration::from_millis(250);

/// Takes a ticket: the fence (created if absent) and Redis's clock.
const TICKET: &str = r"
local fence = redis.call('GET', KEYS[1])
if not fence then
  fence = ARGV[1]
  redis.call('SET', KEYS[1], fence)
end
local t = redis.call('TIME')
return {fence, tonumber(t[1]), tonumber(t[2])}
";

/// Posts a value read under a ticket, if the fence is unchanged and the
/// ticket's lease has not run out.
const POST: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2] .. ':' .. ARGV[3], 'PXAT', ARGV[2])
return 1
";

/// Clears the posted versions and moves the fence on.
const CLEAR: &str = r"
redis.call('SET', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
";

/// What a board read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The posted value, if any.
    pub value: Option<String>,
    /// How long the posted value has left by this process's clock (zero
    /// when none): when to refresh it, not whether to trust it.
    pub remaining: Duration,
}

/// The fence and Redis's clock when it was taken: a value read from source
/// after that may be posted under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    fence: String,
    /// Redis's clock at the read, in ms since the epoch.
    at_ms: u64,
}

/// The version board of one Redis and key prefix. Never fails its callers:
/// a Redis that cannot answer reads as `None` (read from source) and makes
/// writers wait out the lease.
pub struct VersionBoard {
    store: RedisStore,
    prefix: String,
    ticket: redis::Script,
    post: redis::Script,
    clear: redis::Script,
}

impl std::fmt::Debug for VersionBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionBoard")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl VersionBoard {
    /// The board at `redis_url`, keys under `prefix`, each operation bounded
    /// by `op_timeout`. Connects on first use.
    pub fn new(
        redis_url: &str,
        prefix: &str,
        op_timeout: Duration,
    ) -> Result<VersionBoard, CacheError> {
        if op_timeout.is_zero() {
            return Err(CacheError::InvalidConfig("op_timeout must be positive"));
        }
        let config = CacheConfig {
            op_timeout,
            ..CacheConfig::default()
        };
        Ok(VersionBoard {
            store: RedisStore::new(redis_url, &config)?,
            prefix: prefix.to_owned(),
            ticket: redis::Script::new(TICKET),
            post: redis::Script::new(POST),
            clear: redis::Script::new(CLEAR),
        })
    }

    /// The board a service uses: at `redis_url` if one is configured (the
    /// embedded default has none: scoring then asks the other services),
    /// keys under `prefix`, operations bounded by [`OP_TIMEOUT`].
    pub fn configured(
        redis_url: Option<&str>,
        prefix: &str,
    ) -> Result<Option<std::sync::Arc<VersionBoard>>, CacheError> {
        redis_url
            .map(|url| VersionBoard::new(url, prefix, OP_TIMEOUT).map(std::sync::Arc::new))
            .transpose()
    }

    /// The tenant's value key and fence key (one hash slot).
    fn keys(&self, tenant: &str) -> [String; 2] {
        [self.value_key(tenant), self.fence_key(tenant)]
    }

    /// `<prefix>:versions:{tenant}`: the posted value.
    fn value_key(&self, tenant: &str) -> String {
        CacheKey::new(tenant, "versions", Vec::<String>::new()).render(&self.prefix)
    }

    /// `<prefix>:versions:{tenant}:fence`.
    fn fence_key(&self, tenant: &str) -> String {
        CacheKey::new(tenant, "versions", ["fence"]).render(&self.prefix)
    }

    /// What the board holds for `tenant`, or `None` if Redis did not answer.
    pub async fn read(&self, tenant: &str) -> Option<Posted> {
        let posted = match self.store.get(&self.value_key(tenant)).await {
            Lookup::Hit(bytes) => bytes,
            Lookup::Miss => return Some(Posted::nothing()),
            Lookup::Failed | Lookup::Skipped => return None,
        };
        // `<lease end, ms since the epoch>:<value>`; anything else is nothing.
        let parsed = std::str::from_utf8(&posted).ok().and_then(|text| {
            let (until, value) = text.split_once(':')?;
            Some((until.parse::<u64>().ok()?, value))
        });
        let Some((until_ms, value)) = parsed.filter(|(_, value)| !value.is_empty()) else {
            return Some(Posted::nothing());
        };
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Some(Posted {
            value: Some(value.to_owned()),
            remaining: Duration::from_millis(until_ms.saturating_sub(now_ms)),
        })
    }

    /// A ticket for posting what is read from source from now on, or `None`
    /// if Redis did not answer.
    pub async fn ticket(&self, tenant: &str) -> Option<Ticket> {
        let token = fresh_token();
        let fence_key = self.fence_key(tenant);
        let (fence, secs, micros): (String, u64, u64) = self
            .store
            .script("board ticket", &self.ticket, &[&fence_key], &[&token])
            .await?;
        Some(Ticket {
            fence,
            at_ms: secs.saturating_mul(1_000).saturating_add(micros / 1_000),
        })
    }

    /// Posts `value` (non-empty), read from source after `ticket` was taken.
    /// True if posted; false if refused (the board was cleared since, or the
    /// lease ran out) or Redis did not answer.
    pub async fn post(&self, tenant: &str, ticket: &Ticket, value: &str) -> bool {
        if value.is_empty() {
            // An empty value reads as none posted.
            return false;
        }
        let [value_key, fence_key] = self.keys(tenant);
        let lease_ms = u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX);
        let until = ticket.at_ms.saturating_add(lease_ms);
        let posted: Option<i64> = self
            .store
            .script(
                "board post",
                &self.post,
                &[&value_key, &fence_key],
                &[&ticket.fence, &until.to_string(), value],
            )
            .await;
        posted == Some(1)
    }

    /// Clears `tenant`'s posted versions after a committed write; call it
    /// before acknowledging the write. If Redis cannot be told, waits
    /// [`WAIT_OUT`] so that whatever was posted before has expired.
    pub async fn clear(&self, tenant: &str) {
        if !self.try_clear(tenant).await {
            tokio::time::sleep(WAIT_OUT).await;
        }
    }

    /// Clears `tenant`'s posted versions; false if Redis did not answer.
    pub async fn try_clear(&self, tenant: &str) -> bool {
        let [value_key, fence_key] = self.keys(tenant);
        let token = fresh_token();
        let cleared: Option<i64> = self
            .store
            .script(
                "board clear",
                &self.clear,
                &[&value_key, &fence_key],
                &[&token],
            )
            .await;
        cleared.is_some()
    }
}

impl Posted {
    fn nothing() -> Posted {
        Posted {
            value: None,
            remaining: Duration::ZERO,
        }
    }
}

/// A token no other clear or fence creation will use: a per-process random
/// hash of a counter, the time and the process id.
fn fresh_token() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    format!("{:016x}", hasher.finish())
}
