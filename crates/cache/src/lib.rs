//! The scorecard cache of the KPI suite: cache-aside over Redis, or an
//! in-process cache when no Redis is configured (the embedded default).
//!
//! What lives where:
//!
//! - [`key`]: [`CacheKey`], every part that decides a value (tenant, kind,
//!   subject, period, template version, data version…) rendered into one
//!   escaped Redis key, so a catalog change or new data is a different key and
//!   can never serve a stale scorecard.
//! - [`config`]: [`CacheConfig`] (URL, prefix, TTL, timeouts, capacity,
//!   breaker cool-down) and [`CacheError`], what building a cache can fail with.
//! - `cache`: [`Cache`], the shared handle: [`Cache::get_or_compute`]
//!   (cache-aside with single flight), [`Cache::get`], [`Cache::put`],
//!   [`Cache::stats`] ([`CacheStats`]) and [`Cache::backend`].
//! - `memory`: the in-process store, bounded in entries and bytes (LRU
//!   eviction, TTL honoured): the whole cache without Redis, or, with
//!   `memory_in_front`, a tier in front of Redis so a hit costs no I/O.
//! - `redis_store`: the Redis backend: a lazily connected
//!   `redis::aio::ConnectionManager` with few retries and short timeouts, every
//!   operation bounded by `op_timeout`, and a circuit breaker that skips Redis
//!   for `breaker_cooldown` after a failure. Redis failures are logged at warn
//!   and never reach the caller: the value is computed from source instead.
//! - [`board`]: [`VersionBoard`], each tenant's current versions posted in
//!   Redis under a short lease: writers clear it before acknowledging, so
//!   scoring learns fresh versions in one round trip (read-your-writes is
//!   argued in the module).
//! - `flight`: per-key single flight, so concurrent misses on one key run the
//!   computation once.
#![forbid(unsafe_code)]

pub mod board;
mod cache;
pub mod config;
mod flight;
pub mod key;
mod memory;
mod redis_store;

pub use board::VersionBoard;
pub use cache::{Cache, CacheStats};
pub use config::{CacheConfig, CacheError};
pub use key::CacheKey;
