//! Service settings in layers: defaults, then an optional config file, then
//! `KPI_*` environment variables (zero-to-production `configuration.rs`).
//!
//! The config file is named by `KPI_CONFIG_FILE` and holds simple
//! `KEY=value` lines using the same `KPI_*` keys; blank lines and lines
//! starting with `#` are ignored, and values may be wrapped in matching
//! single or double quotes. Unknown keys in the file are an error (a typo
//! should not silently fall back to a default); unknown environment variables
//! are ignored.
//!
//! Authentication settings (`KPI_AUTH`, `KPI_API_KEYS_FILE`, `KPI_JWT_*`,
//! `KPI_SERVICE_TOKEN[_FILE]`) are read by [`crate::auth::AuthSettings`]
//! through the same layers; the service token never appears in `Debug`.
//!
//! Secrets (passwords in the database and Redis URLs) never appear in the
//! `Debug` output of [`Settings`] nor in a [`SettingsError`]; use
//! [`redact_url`] before logging any URL yourself.
//!
//! The `KPI_TLS_*` files are read and checked here, at load, so that a
//! missing or broken certificate stops the service at start-up with the
//! variable named ([`crate::tls`]); `Debug` shows their paths, never their
//! contents. Empty values count as unset.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::AuthSettings;
use crate::tls::{ClientTls, PemFile, ServerTls, TlsError};

/// Names the file of `KEY=value` lines layered between defaults and environment.
pub const CONFIG_FILE_VAR: &str = "KPI_CONFIG_FILE";
/// The listen address, e.g. `0.0.0.0:50051`; port 0 picks a free port.
pub const LISTEN_ADDR_VAR: &str = "KPI_LISTEN_ADDR";
/// The database URL (`sqlite://…` or `postgres://…`).
pub const DATABASE_URL_VAR: &str = "KPI_DATABASE_URL";
/// The Redis URL; unset or empty means the in-process cache.
pub const REDIS_URL_VAR: &str = "KPI_REDIS_URL";
/// Environment variable: the prefix of every key the suite keeps in Redis.
pub const REDIS_PREFIX_VAR: &str = "KPI_REDIS_PREFIX";
/// Where indicator-catalog listens, for its clients.
pub const CATALOG_URL_VAR: &str = "KPI_CATALOG_URL";
/// Where data-ingestion listens, for its clients.
pub const INGESTION_URL_VAR: &str = "KPI_INGESTION_URL";
/// `text` or `json`.
pub const LOG_FORMAT_VAR: &str = "KPI_LOG_FORMAT";
/// The log filter (`tracing_subscriber::EnvFilter` syntax); wins over `RUST_LOG`.
pub const LOG_VAR: &str = "KPI_LOG";
/// The conventional log filter variable, used when `KPI_LOG` is not set in the environment.
pub const RUST_LOG_VAR: &str = "RUST_LOG";
/// Seconds in-flight calls get to finish after a shutdown signal.
pub const DRAIN_TIMEOUT_SECS_VAR: &str = "KPI_DRAIN_TIMEOUT_SECS";
/// Whether the service runs its database migrations at start-up.
pub const RUN_MIGRATIONS_VAR: &str = "KPI_RUN_MIGRATIONS";
/// Where the Prometheus scrape endpoint (`GET /metrics`) listens; unset,
/// empty or `off` disables it.
pub const METRICS_ADDR_VAR: &str = "KPI_METRICS_ADDR";
/// Seconds after which the server asks a client connection to go away
/// (HTTP/2 GOAWAY), so clients reconnect and spread over new pods; 0 = never.
pub const MAX_CONNECTION_AGE_SECS_VAR: &str = "KPI_MAX_CONNECTION_AGE_SECS";
/// Seconds in-flight calls on an aged-out connection get before it is closed.
pub const MAX_CONNECTION_AGE_GRACE_SECS_VAR: &str = "KPI_MAX_CONNECTION_AGE_GRACE_SECS";
/// The standard OpenTelemetry variable: the OTLP/gRPC collector, e.g.
/// `http://otel-collector:4317`; unset means no spans or metrics are exported.
pub const OTLP_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Seconds a computed scorecard stays in the cache (scoring).
pub const CACHE_TTL_SECS_VAR: &str = "KPI_CACHE_TTL_SECS";
/// MiB of computed scorecards kept in process (scoring): the whole cache
/// without Redis, the tier in front of Redis with it.
pub const CACHE_MEMORY_MIB_VAR: &str = "KPI_CACHE_MEMORY_MIB";
/// Milliseconds one call to another service may take (its deadline).
pub const CALL_TIMEOUT_MS_VAR: &str = "KPI_CALL_TIMEOUT_MS";
/// The gRPC listener's certificate chain (PEM); with the key, turns TLS on.
pub const TLS_CERT_FILE_VAR: &str = "KPI_TLS_CERT_FILE";
/// The gRPC listener's private key (PEM).
pub const TLS_KEY_FILE_VAR: &str = "KPI_TLS_KEY_FILE";
/// CAs (PEM) client certificates must chain to; set, clients must present one (mTLS).
pub const TLS_CLIENT_CA_FILE_VAR: &str = "KPI_TLS_CLIENT_CA_FILE";
/// CAs (PEM) trusted for `https://` peers instead of the public webpki roots.
pub const TLS_CA_FILE_VAR: &str = "KPI_TLS_CA_FILE";
/// The certificate chain (PEM) presented to mTLS peers.
pub const TLS_CLIENT_CERT_FILE_VAR: &str = "KPI_TLS_CLIENT_CERT_FILE";
/// The private key (PEM) of `KPI_TLS_CLIENT_CERT_FILE`.
pub const TLS_CLIENT_KEY_FILE_VAR: &str = "KPI_TLS_CLIENT_KEY_FILE";
/// The name peer certificates must carry (and the SNI), instead of the URL's host.
pub const TLS_DOMAIN_NAME_VAR: &str = "KPI_TLS_DOMAIN_NAME";
/// The largest gRPC message (request or response) a service decodes or
/// encodes, in bytes; larger ones fail with `OUT_OF_RANGE`.
pub const MAX_MESSAGE_BYTES_VAR: &str = "KPI_MAX_MESSAGE_BYTES";
/// Calls served at once; beyond that, calls are shed with `RESOURCE_EXHAUSTED`.
pub const MAX_CONCURRENT_REQUESTS_VAR: &str = "KPI_MAX_CONCURRENT_REQUESTS";
/// Milliseconds between health turning `NOT_SERVING` and the listener closing
/// on shutdown, so load balancers stop sending new calls first.
pub const SHUTDOWN_DELAY_MS_VAR: &str = "KPI_SHUTDOWN_DELAY_MS";

/// Every key accepted in the config file.
const FILE_KEYS: &[&str] = &[
    LISTEN_ADDR_VAR,
    DATABASE_URL_VAR,
    REDIS_URL_VAR,
    REDIS_PREFIX_VAR,
    CATALOG_URL_VAR,
    INGESTION_URL_VAR,
    LOG_FORMAT_VAR,
    LOG_VAR,
    DRAIN_TIMEOUT_SECS_VAR,
    RUN_MIGRATIONS_VAR,
    METRICS_ADDR_VAR,
    MAX_CONNECTION_AGE_SECS_VAR,
    MAX_CONNECTION_AGE_GRACE_SECS_VAR,
    CACHE_TTL_SECS_VAR,
    CACHE_MEMORY_MIB_VAR,
    CALL_TIMEOUT_MS_VAR,
    TLS_CERT_FILE_VAR,
    TLS_KEY_FILE_VAR,
    TLS_CLIENT_CA_FILE_VAR,
    TLS_CA_FILE_VAR,
    TLS_CLIENT_CERT_FILE_VAR,
    TLS_CLIENT_KEY_FILE_VAR,
    TLS_DOMAIN_NAME_VAR,
    MAX_MESSAGE_BYTES_VAR,
    MAX_CONCURRENT_REQUESTS_VAR,
    SHUTDOWN_DELAY_MS_VAR,
];

/// Default of `KPI_MAX_MESSAGE_BYTES`: a full ingestion batch with room to spare.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;
/// Default of `KPI_MAX_CONCURRENT_REQUESTS`.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 256;

/// Which of the three services a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    /// indicator-catalog: indicator definitions and templates.
    Catalog,
    /// data-ingestion: facts from backend systems and measure aggregates.
    Ingestion,
    /// scoring: scorecards computed from definitions and aggregates.
    Scoring,
}

impl ServiceKind {
    /// All three services.
    pub const ALL: [ServiceKind; 3] = [Self::Catalog, Self::Ingestion, Self::Scoring];

    /// The binary (and deployment) name: `indicator-catalog`, `data-ingestion`, `scoring`.
    pub fn binary_name(self) -> &'static str {
        match self {
            Self::Catalog => "indicator-catalog",
            Self::Ingestion => "data-ingestion",
            Self::Scoring => "scoring",
        }
    }

    /// The port the service listens on unless configured: 50051, 50052, 50053.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Catalog => 50051,
            Self::Ingestion => 50052,
            Self::Scoring => 50053,
        }
    }

    /// The fully qualified gRPC service name, as used by health and reflection.
    pub fn grpc_service_name(self) -> &'static str {
        match self {
            Self::Catalog => "kpi.catalog.v1.CatalogService",
            Self::Ingestion => "kpi.ingestion.v1.IngestionService",
            Self::Scoring => "kpi.scoring.v1.ScoringService",
        }
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.binary_name())
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Compact human-readable lines (development).
    #[default]
    Text,
    /// One JSON object per line with flattened fields (production).
    Json,
}

/// Everything a service reads from its environment.
///
/// `Debug` is implemented by hand: passwords in `database_url` and
/// `redis_url` are shown as `***`.
#[derive(Clone)]
pub struct Settings {
    /// Which service this is.
    pub service: ServiceKind,
    /// `KPI_LISTEN_ADDR`, default `127.0.0.1:<default port>`; port 0 is allowed.
    pub listen_addr: SocketAddr,
    /// `KPI_DATABASE_URL`, default `sqlite://kpi.db?mode=rwc`. May hold a password.
    pub database_url: String,
    /// `KPI_REDIS_URL`, default none (the in-process cache). May hold a password.
    pub redis_url: Option<String>,
    /// `KPI_REDIS_PREFIX`, default `kpi`: the prefix of every Redis key (the
    /// scorecard cache's and the version board's), so deployments can share
    /// one Redis. All three services must agree on it.
    pub redis_prefix: String,
    /// `KPI_CATALOG_URL`, default `http://127.0.0.1:50051`.
    pub catalog_url: String,
    /// `KPI_INGESTION_URL`, default `http://127.0.0.1:50052`.
    pub ingestion_url: String,
    /// `KPI_LOG_FORMAT` (`text` or `json`), default text.
    pub log_format: LogFormat,
    /// `KPI_LOG`, else `RUST_LOG`, default `info`.
    pub log_filter: String,
    /// `KPI_DRAIN_TIMEOUT_SECS`, default 20 seconds.
    pub drain_timeout: Duration,
    /// `KPI_RUN_MIGRATIONS`, default true.
    pub run_migrations: bool,
    /// `KPI_METRICS_ADDR`, default none (no scrape endpoint); port 0 is allowed.
    pub metrics_addr: Option<SocketAddr>,
    /// `KPI_MAX_CONNECTION_AGE_SECS`, default none (connections live on).
    pub max_connection_age: Option<Duration>,
    /// `KPI_MAX_CONNECTION_AGE_GRACE_SECS`, default 30 seconds.
    pub max_connection_age_grace: Duration,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, default none (nothing exported over OTLP).
    pub otlp_endpoint: Option<String>,
    /// `KPI_CACHE_TTL_SECS`, default 300 seconds (at least 1).
    pub cache_ttl: Duration,
    /// `KPI_CACHE_MEMORY_MIB`, default 256 (at least 1): the bound of the
    /// in-process cache, in bytes.
    pub cache_memory_bytes: usize,
    /// `KPI_CALL_TIMEOUT_MS`, default 5,000 ms (at least 1): the deadline of
    /// every call to another service.
    pub call_timeout: Duration,
    /// `KPI_TLS_CERT_FILE` + `KPI_TLS_KEY_FILE` (+ `KPI_TLS_CLIENT_CA_FILE`
    /// for mTLS), read at load; default none (plain gRPC).
    pub server_tls: Option<ServerTls>,
    /// `KPI_TLS_CA_FILE`, `KPI_TLS_CLIENT_CERT_FILE` +
    /// `KPI_TLS_CLIENT_KEY_FILE`, `KPI_TLS_DOMAIN_NAME`, read at load: what
    /// calls to `https://` peers trust and present; default the public
    /// webpki roots and no client certificate.
    pub client_tls: ClientTls,
    /// Authentication: credentials required by default (see [`crate::auth`]).
    pub auth: AuthSettings,
    /// `KPI_MAX_MESSAGE_BYTES`, default 32 MiB (at least 1): the decoding
    /// and encoding limit of every service.
    pub max_message_bytes: usize,
    /// `KPI_MAX_CONCURRENT_REQUESTS`, default 256 (at least 1): calls in
    /// flight before further ones are shed with `RESOURCE_EXHAUSTED`.
    pub max_concurrent_requests: usize,
    /// `KPI_SHUTDOWN_DELAY_MS`, default 0: how long health answers
    /// `NOT_SERVING` before the listener closes on shutdown.
    pub shutdown_delay: Duration,
}

/// Why settings could not be loaded. Messages name the variable and the bad
/// value (with any password redacted).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value does not parse.
    #[error("{key}: {value:?} is not {expected}")]
    Invalid {
        /// The variable, e.g. `KPI_LISTEN_ADDR`.
        key: &'static str,
        /// The offending value (URLs redacted).
        value: String,
        /// What was expected, e.g. `a socket address`.
        expected: &'static str,
    },
    /// The file named by `KPI_CONFIG_FILE` could not be read.
    #[error("{CONFIG_FILE_VAR}: cannot read {path:?}: {source}")]
    ReadConfigFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS files are missing, unreadable, not PEM, or not paired.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A line of the config file is not `KEY=value` with a known key.
    #[error("{CONFIG_FILE_VAR}: {path:?} line {line}: {reason}")]
    ConfigFileSyntax {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl Settings {
    /// The built-in defaults for `service`, before any file or environment.
    pub fn defaults(service: ServiceKind) -> Settings {
        Settings {
            service,
            listen_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), service.default_port()),
            database_url: "sqlite://kpi.db?mode=rwc".to_owned(),
            redis_url: None,
            redis_prefix: "kpi".to_owned(),
            catalog_url: format!("http://127.0.0.1:{}", ServiceKind::Catalog.default_port()),
            ingestion_url: format!("http://127.0.0.1:{}", ServiceKind::Ingestion.default_port()),
            log_format: LogFormat::Text,
            log_filter: "info".to_owned(),
            drain_timeout: Duration::from_secs(20),
            run_migrations: true,
            metrics_addr: None,
            max_connection_age: None,
            max_connection_age_grace: Duration::from_secs(30),
            otlp_endpoint: None,
            cache_ttl: Duration::from_secs(300),
            cache_memory_bytes: 256 << 20,
            call_timeout: Duration::from_millis(5_000),
            server_tls: None,
            client_tls: ClientTls::default(),
            auth: AuthSettings::default(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            shutdown_delay: Duration::ZERO,
        }
    }

    /// Loads settings from the process: defaults, then the file named by
    /// `KPI_CONFIG_FILE` (if set), then `KPI_*` environment variables.
    pub fn load(service: ServiceKind) -> Result<Settings, SettingsError> {
        Self::from_lookup(service, |key| {
            std::env::var_os(key).map(|value| value.to_string_lossy().into_owned())
        })
    }

    /// The testable core of [`Settings::load`]: `lookup` plays the
    /// environment. Layers defaults, then the file named by
    /// `lookup("KPI_CONFIG_FILE")`, then whatever `lookup` returns for each
    /// key (so the environment wins over the file).
    pub fn from_lookup(
        service: ServiceKind,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, SettingsError> {
        let file = match lookup(CONFIG_FILE_VAR).filter(|path| !path.trim().is_empty()) {
            Some(path) => read_config_file(PathBuf::from(path))?,
            None => HashMap::new(),
        };
        let get = |key: &'static str| lookup(key).or_else(|| file.get(key).cloned());

        let mut settings = Settings::defaults(service);
        if let Some(value) = get(LISTEN_ADDR_VAR) {
            settings.listen_addr = value.trim().parse().map_err(|_| SettingsError::Invalid {
                key: LISTEN_ADDR_VAR,
                value,
                expected: "a socket address",
            })?;
        }
        if let Some(value) = get(DATABASE_URL_VAR) {
            settings.database_url = parse_url(
                DATABASE_URL_VAR,
                value,
                &["sqlite:", "postgres://", "postgresql://"],
                "a sqlite: or postgres:// URL",
            )?;
        }
        if let Some(value) = get(REDIS_URL_VAR) {
            settings.redis_url = if value.trim().is_empty() {
                None
            } else {
                Some(parse_url(
                    REDIS_URL_VAR,
                    value,
                    &["redis://", "rediss://", "redis+unix://", "unix://"],
                    "a redis:// or rediss:// URL",
                )?)
            };
        }
        if let Some(value) = get(REDIS_PREFIX_VAR) {
            settings.redis_prefix = parse_redis_prefix(value)?;
        }
        if let Some(value) = get(CATALOG_URL_VAR) {
            settings.catalog_url = parse_url(
                CATALOG_URL_VAR,
                value,
                &["http://", "https://"],
                "an http(s) URL",
            )?;
        }
        if let Some(value) = get(INGESTION_URL_VAR) {
            settings.ingestion_url = parse_url(
                INGESTION_URL_VAR,
                value,
                &["http://", "https://"],
                "an http(s) URL",
            )?;
        }
        if let Some(value) = get(LOG_FORMAT_VAR) {
            settings.log_format = match value.trim().to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(SettingsError::Invalid {
                        key: LOG_FORMAT_VAR,
                        value,
                        expected: "`text` or `json`",
                    });
                }
            };
        }
        // KPI_LOG in the environment, then RUST_LOG in the environment, then
        // KPI_LOG from the file.
        let log = lookup(LOG_VAR)
            .map(|value| (LOG_VAR, value))
            .or_else(|| lookup(RUST_LOG_VAR).map(|value| (RUST_LOG_VAR, value)))
            .or_else(|| file.get(LOG_VAR).map(|value| (LOG_VAR, value.clone())));
        if let Some((key, value)) = log {
            let trimmed = value.trim();
            if !trimmed.is_empty() {
                if tracing_subscriber::EnvFilter::try_new(trimmed).is_err() {
                    return Err(SettingsError::Invalid {
                        key,
                        value,
                        expected: "a log filter such as `info,kpi=debug`",
                    });
                }
                settings.log_filter = trimmed.to_owned();
            }
        }
        if let Some(value) = get(DRAIN_TIMEOUT_SECS_VAR) {
            let secs: u64 = value.trim().parse().map_err(|_| SettingsError::Invalid {
                key: DRAIN_TIMEOUT_SECS_VAR,
                value,
                expected: "a whole number of seconds",
            })?;
            settings.drain_timeout = Duration::from_secs(secs);
        }
        if let Some(value) = get(RUN_MIGRATIONS_VAR) {
            settings.run_migrations = parse_bool(RUN_MIGRATIONS_VAR, value)?;
        }
        if let Some(value) = get(METRICS_ADDR_VAR) {
            settings.metrics_addr = parse_optional_addr(METRICS_ADDR_VAR, value)?;
        }
        if let Some(value) = get(MAX_CONNECTION_AGE_SECS_VAR) {
            let secs = parse_secs(MAX_CONNECTION_AGE_SECS_VAR, value)?;
            settings.max_connection_age = (secs > 0).then(|| Duration::from_secs(secs));
        }
        if let Some(value) = get(MAX_CONNECTION_AGE_GRACE_SECS_VAR) {
            let secs = parse_secs(MAX_CONNECTION_AGE_GRACE_SECS_VAR, value)?;
            settings.max_connection_age_grace = Duration::from_secs(secs);
        }
        // Only the environment: it is the OpenTelemetry convention.
        if let Some(value) = lookup(OTLP_ENDPOINT_VAR).filter(|v| !v.trim().is_empty()) {
            settings.otlp_endpoint = Some(parse_url(
                OTLP_ENDPOINT_VAR,
                value,
                &["http://", "https://"],
                "an http(s) URL of an OTLP/gRPC collector",
            )?);
        }
        if let Some(value) = get(CACHE_TTL_SECS_VAR) {
            settings.cache_ttl = Duration::from_secs(parse_positive(CACHE_TTL_SECS_VAR, value)?);
        }
        if let Some(value) = get(CACHE_MEMORY_MIB_VAR) {
            let mib = parse_positive(CACHE_MEMORY_MIB_VAR, value)?;
            settings.cache_memory_bytes =
                usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        }
        if let Some(value) = get(CALL_TIMEOUT_MS_VAR) {
            settings.call_timeout =
                Duration::from_millis(parse_positive(CALL_TIMEOUT_MS_VAR, value)?);
        }
        settings.server_tls = load_server_tls(&get)?;
        settings.client_tls = load_client_tls(&get)?;
        settings.auth = AuthSettings::from_lookup(get)?;
        if let Some(value) = get(MAX_MESSAGE_BYTES_VAR) {
            settings.max_message_bytes = parse_count(MAX_MESSAGE_BYTES_VAR, value)?;
        }
        if let Some(value) = get(MAX_CONCURRENT_REQUESTS_VAR) {
            settings.max_concurrent_requests = parse_count(MAX_CONCURRENT_REQUESTS_VAR, value)?;
        }
        if let Some(value) = get(SHUTDOWN_DELAY_MS_VAR) {
            let ms: u64 = value.trim().parse().map_err(|_| SettingsError::Invalid {
                key: SHUTDOWN_DELAY_MS_VAR,
                value,
                expected: "a whole number of milliseconds",
            })?;
            settings.shutdown_delay = Duration::from_millis(ms);
        }
        Ok(settings)
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("service", &self.service)
            .field("listen_addr", &self.listen_addr)
            .field("database_url", &redact_url(&self.database_url))
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("redis_prefix", &self.redis_prefix)
            .field("catalog_url", &redact_url(&self.catalog_url))
            .field("ingestion_url", &redact_url(&self.ingestion_url))
            .field("log_format", &self.log_format)
            .field("log_filter", &self.log_filter)
            .field("drain_timeout", &self.drain_timeout)
            .field("run_migrations", &self.run_migrations)
            .field("metrics_addr", &self.metrics_addr)
            .field("max_connection_age", &self.max_connection_age)
            .field("max_connection_age_grace", &self.max_connection_age_grace)
            .field(
                "otlp_endpoint",
                &self.otlp_endpoint.as_deref().map(redact_url),
            )
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_memory_bytes", &self.cache_memory_bytes)
            .field("call_timeout", &self.call_timeout)
            .field("server_tls", &self.server_tls)
            .field("client_tls", &self.client_tls)
            .field("auth", &self.auth)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("shutdown_delay", &self.shutdown_delay)
            .finish()
    }
}

/// The listener's TLS from `KPI_TLS_CERT_FILE`, `KPI_TLS_KEY_FILE` and
/// `KPI_TLS_CLIENT_CA_FILE`; `None` when neither cert nor key is set.
fn load_server_tls(
    get: &impl Fn(&'static str) -> Option<String>,
) -> Result<Option<ServerTls>, TlsError> {
    let cert = pem_file(get, TLS_CERT_FILE_VAR);
    let key = pem_file(get, TLS_KEY_FILE_VAR);
    let client_ca = pem_file(get, TLS_CLIENT_CA_FILE_VAR);
    match (cert, key) {
        (Some(cert), Some(key)) => ServerTls::load(cert, key, client_ca).map(Some),
        (Some(_), None) => Err(TlsError::Unpaired {
            set: TLS_CERT_FILE_VAR,
            missing: TLS_KEY_FILE_VAR,
        }),
        (None, Some(_)) => Err(TlsError::Unpaired {
            set: TLS_KEY_FILE_VAR,
            missing: TLS_CERT_FILE_VAR,
        }),
        (None, None) => match client_ca {
            Some(_) => Err(TlsError::Needs {
                set: TLS_CLIENT_CA_FILE_VAR,
                needs: "KPI_TLS_CERT_FILE and KPI_TLS_KEY_FILE (mTLS is TLS plus client certificates)",
            }),
            None => Ok(None),
        },
    }
}

/// Outbound TLS from `KPI_TLS_CA_FILE`, `KPI_TLS_CLIENT_CERT_FILE`,
/// `KPI_TLS_CLIENT_KEY_FILE` and `KPI_TLS_DOMAIN_NAME`.
fn load_client_tls(get: &impl Fn(&'static str) -> Option<String>) -> Result<ClientTls, TlsError> {
    let ca = pem_file(get, TLS_CA_FILE_VAR);
    let identity = match (
        pem_file(get, TLS_CLIENT_CERT_FILE_VAR),
        pem_file(get, TLS_CLIENT_KEY_FILE_VAR),
    ) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (Some(_), None) => {
            return Err(TlsError::Unpaired {
                set: TLS_CLIENT_CERT_FILE_VAR,
                missing: TLS_CLIENT_KEY_FILE_VAR,
            });
        }
        (None, Some(_)) => {
            return Err(TlsError::Unpaired {
                set: TLS_CLIENT_KEY_FILE_VAR,
                missing: TLS_CLIENT_CERT_FILE_VAR,
            });
        }
        (None, None) => None,
    };
    let domain_name = get(TLS_DOMAIN_NAME_VAR)
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty());
    if ca.is_none() && identity.is_none() && domain_name.is_none() {
        return Ok(ClientTls::default());
    }
    ClientTls::load(ca, identity, domain_name)
}

/// A file setting; an empty value counts as unset.
fn pem_file(get: &impl Fn(&'static str) -> Option<String>, key: &'static str) -> Option<PemFile> {
    get(key)
        .map(|path| path.trim().to_owned())
        .filter(|path| !path.is_empty())
        .map(|path| PemFile::new(key, path))
}

/// A whole number of at least 1.
fn parse_positive(key: &'static str, value: String) -> Result<u64, SettingsError> {
    match value.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(SettingsError::Invalid {
            key,
            value,
            expected: "a whole number of at least 1",
        }),
    }
}

/// A Redis key prefix: printable, without spaces or the characters the
/// keys use as separators and hash tags.
fn parse_redis_prefix(value: String) -> Result<String, SettingsError> {
    let prefix = value.trim();
    let fits = !prefix.is_empty()
        && prefix
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '{' | '}' | '%'));
    if fits {
        Ok(prefix.to_owned())
    } else {
        Err(SettingsError::Invalid {
            key: REDIS_PREFIX_VAR,
            value,
            expected: "a non-empty prefix of printable ASCII without spaces, braces or %",
        })
    }
}

/// A count (bytes, requests) of at least 1 that fits in `usize`.
fn parse_count(key: &'static str, value: String) -> Result<usize, SettingsError> {
    let n = parse_positive(key, value.clone())?;
    usize::try_from(n).map_err(|_| SettingsError::Invalid {
        key,
        value,
        expected: "a whole number of at least 1",
    })
}

/// Returns `url` with any password replaced by `***`, safe to log.
///
/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; a
/// user-info without a colon (`redis://token@host`) is replaced whole, and
/// query parameters named like `password`, `secret` or `token` have their
/// values replaced too.
pub fn redact_url(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut out = match before_query.find("://") {
        Some(scheme_end) => {
            let (scheme, rest) = before_query.split_at(scheme_end + 3);
            let authority_end = rest.find(['/', '#']).unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let userinfo = match userinfo.split_once(':') {
                        Some((user, _password)) => format!("{user}:***"),
                        None => "***".to_owned(),
                    };
                    format!("{scheme}{userinfo}@{host}{path}")
                }
                None => before_query.to_owned(),
            }
        }
        None => before_query.to_owned(),
    };
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _value)) if is_secret_key(key) => format!("{key}=***"),
                _ => param.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "secret", "token", "key"]
        .iter()
        .any(|needle| key.contains(needle))
}

fn parse_url(
    key: &'static str,
    value: String,
    schemes: &[&str],
    expected: &'static str,
) -> Result<String, SettingsError> {
    let trimmed = value.trim();
    let lower = trimmed.to_ascii_lowercase();
    if schemes.iter().any(|scheme| lower.starts_with(scheme))
        && !trimmed.contains(char::is_whitespace)
    {
        Ok(trimmed.to_owned())
    } else {
        Err(SettingsError::Invalid {
            key,
            value: redact_url(&value),
            expected,
        })
    }
}

fn parse_secs(key: &'static str, value: String) -> Result<u64, SettingsError> {
    value.trim().parse().map_err(|_| SettingsError::Invalid {
        key,
        value,
        expected: "a whole number of seconds",
    })
}

/// A socket address, or `None` for an empty value or `off`.
fn parse_optional_addr(
    key: &'static str,
    value: String,
) -> Result<Option<SocketAddr>, SettingsError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    trimmed
        .parse()
        .map(Some)
        .map_err(|_| SettingsError::Invalid {
            key,
            value,
            expected: "a socket address (or `off`)",
        })
}

fn parse_bool(key: &'static str, value: String) -> Result<bool, SettingsError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(SettingsError::Invalid {
            key,
            value,
            expected: "a boolean (true/false)",
        }),
    }
}

fn read_config_file(path: PathBuf) -> Result<HashMap<&'static str, String>, SettingsError> {
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(source) => return Err(SettingsError::ReadConfigFile { path, source }),
    };
    parse_config_file(&text).map_err(|(line, reason)| SettingsError::ConfigFileSyntax {
        path,
        line,
        reason,
    })
}

/// Parses `KEY=value` lines; on error returns the 1-based line and the reason.
fn parse_config_file(text: &str) -> Result<HashMap<&'static str, String>, (usize, String)> {
    let mut values = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err((index + 1, "expected `KEY=value`".to_owned()));
        };
        let key = key.trim();
        let Some(known) = FILE_KEYS
            .iter()
            .chain(crate::auth::FILE_KEYS)
            .copied()
            .find(|known| *known == key)
        else {
            return Err((index + 1, format!("unknown key `{key}`")));
        };
        values.insert(known, unquote(value.trim()).to_owned());
    }
    Ok(values)
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://user:hunter2@host:5432/db"),
            "postgres://user:***@host:5432/db"
        );
        assert_eq!(redact_url("redis://:hunter2@host/0"), "redis://:***@host/0");
        assert_eq!(redact_url("redis://hunter2@host"), "redis://***@host");
        assert_eq!(
            redact_url("postgres://host/db?user=a&password=hunter2"),
            "postgres://host/db?user=a&password=***"
        );
        assert_eq!(
            redact_url("sqlite://kpi.db?mode=rwc"),
            "sqlite://kpi.db?mode=rwc"
        );
    }

    #[test]
    fn config_file_syntax() {
        let parsed = parse_config_file("# c\n\nKPI_LOG = \"debug\"\nKPI_RUN_MIGRATIONS=false\n");
        assert_eq!(
            parsed.map(|m| (m.get(LOG_VAR).cloned(), m.get(RUN_MIGRATIONS_VAR).cloned())),
            Ok((Some("debug".to_owned()), Some("false".to_owned())))
        );
        assert_eq!(
            parse_config_file("KPI_NOPE=1").map(|_| ()),
            Err((1, "unknown key `KPI_NOPE`".to_owned()))
        );
        assert_eq!(
            parse_config_file("# ok\njunk").map(|_| ()),
            Err((2, "expected `KEY=value`".to_owned()))
        );
    }

    #[test]
    fn limits_and_shutdown_delay() {
        let env = |key: &str| match key {
            MAX_MESSAGE_BYTES_VAR => Some("1024".to_owned()),
            MAX_CONCURRENT_REQUESTS_VAR => Some("3".to_owned()),
            SHUTDOWN_DELAY_MS_VAR => Some("250".to_owned()),
            _ => None,
        };
        let settings = Settings::from_lookup(ServiceKind::Ingestion, env).unwrap();
        assert_eq!(settings.max_message_bytes, 1024);
        assert_eq!(settings.max_concurrent_requests, 3);
        assert_eq!(settings.shutdown_delay, Duration::from_millis(250));

        let defaults = Settings::defaults(ServiceKind::Catalog);
        assert_eq!(
            defaults.max_concurrent_requests,
            DEFAULT_MAX_CONCURRENT_REQUESTS
        );
        assert_eq!(defaults.shutdown_delay, Duration::ZERO);

        let zero = |key: &str| (key == MAX_CONCURRENT_REQUESTS_VAR).then(|| "0".to_owned());
        let err = Settings::from_lookup(ServiceKind::Scoring, zero).unwrap_err();
        assert!(
            err.to_string().contains(MAX_CONCURRENT_REQUESTS_VAR),
            "{err}"
        );
    }
}
