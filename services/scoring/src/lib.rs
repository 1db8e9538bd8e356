//! The scoring service: scorecards for agents and teams with the reasons
//! behind every number (DOMAIN.md §5), ranked, trended, alerted and
//! simulated, cached in Redis.
//!
//! What lives where:
//!
//! - [`App`]: builds the service from [`Settings`] (clients, cache,
//!   listener) and serves it until told to stop.
//! - [`service`]: the gRPC handlers ([`ScoringApi`]): validate, delegate, answer.
//! - [`request`]: request validation with field paths, and paging.
//! - [`engine`]: scopes (period, time zone, data version), boards (every
//!   agent under one template version, ranked), agent and team scorecards,
//!   the cache keys, the facts behind vetoes.
//! - [`versions`]: the tenant's catalog revision and data version, read
//!   fresh per request and shared between concurrent requests (the key of
//!   a cached answer).
//! - [`values`]: indicator values for many subjects from one QueryMeasures
//!   round (the SQL runs in data-ingestion), derived indicators last.
//! - [`alerts`]: alert rules on indicator series.
//! - [`simulate`]: what-if of a template version against the active one.
//! - [`convert`]: domain results → scoring protos.
//! - [`clients`]: every outbound call (catalog, ingestion), with deadlines;
//!   the one place for trace-context propagation.
//!
//! The math itself (values, Wilson intervals, scores, re-normalised weights,
//! vetoes, grades, cohort roll-up, alert conditions, ranks) lives in
//! `kpi_domain::scorecard` and `kpi_domain::alerting`.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod clients;
pub mod convert;
pub mod engine;
pub mod request;
pub mod service;
pub mod simulate;
pub mod values;
pub mod versions;

use std::net::SocketAddr;

use anyhow::Context;
use kpi_cache::{Cache, CacheConfig, VersionBoard};
use kpi_proto::scoring::scoring_service_server::ScoringServiceServer;
use kpi_runtime::auth::tenancy::Guarded;
use kpi_runtime::{Listener, Settings};

pub use service::ScoringApi;

/// The gRPC service, each request's tenant checked against its caller,
/// ready to be added to a server.
///
/// `max_message_bytes` (`KPI_MAX_MESSAGE_BYTES`) bounds every request and
/// response; a larger one fails with `OUT_OF_RANGE`.
pub fn grpc_service(
    api: ScoringApi,
    max_message_bytes: usize,
) -> ScoringServiceServer<Guarded<ScoringApi>> {
    ScoringServiceServer::new(Guarded::new(api))
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes)
}

/// The cache configuration of these settings (key prefix
/// `<KPI_REDIS_PREFIX>:v2`). With
/// Redis, values are kept in process in front of it too: every key names
/// the versions its value was computed from, so a local copy is never stale.
pub fn cache_config(settings: &Settings) -> CacheConfig {
    CacheConfig {
        redis_url: settings.redis_url.clone(),
        prefix: format!("{}:v2", settings.redis_prefix),
        ttl: settings.cache_ttl,
        memory_max_bytes: settings.cache_memory_bytes,
        memory_in_front: true,
        ..CacheConfig::default()
    }
}

/// The scoring service, built and bound, ready to serve.
pub struct App {
    listener: Listener,
    api: ScoringApi,
    cache: Cache,
}

impl App {
    /// Builds the clients (connected lazily) and the cache, and binds the
    /// listener. `cache` overrides the cache built from the settings (tests
    /// give each a key prefix of its own).
    pub async fn build_with_cache(settings: &Settings, cache: Cache) -> anyhow::Result<App> {
        let clients = clients::Clients::new(
            &settings.catalog_url,
            &settings.ingestion_url,
            settings.call_timeout,
            &settings.client_tls,
            settings.auth.service_token.clone(),
        )
        .context("KPI_CATALOG_URL or KPI_INGESTION_URL is not a valid URL")?;
        let listener = Listener::bind(settings)
            .await
            .context("cannot start serving")?;
        let board = VersionBoard::configured(settings.redis_url.as_deref(), &settings.redis_prefix)
            .context("invalid KPI_REDIS_URL")?;
        let engine = engine::Engine::new(clients, cache.clone(), board);
        Ok(App {
            listener,
            api: ScoringApi::new(engine),
            cache,
        })
    }

    /// [`App::build_with_cache`] with the cache the settings describe.
    pub async fn build(settings: &Settings) -> anyhow::Result<App> {
        let cache = Cache::new(cache_config(settings)).context("invalid cache settings")?;
        Self::build_with_cache(settings, cache).await
    }

    /// The address it listens on (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// `"redis"` or `"memory"`.
    pub fn cache_backend(&self) -> &'static str {
        self.cache.backend()
    }

    /// The cache, e.g. to read its counters.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let max_message_bytes = self.listener.max_message_bytes();
        let routes = tonic::service::Routes::new(grpc_service(self.api, max_message_bytes));
        self.listener.serve(routes, shutdown).await?;
        Ok(())
    }
}
