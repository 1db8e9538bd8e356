//! The one server recipe shared by the suite's three services
//! (indicator-catalog, data-ingestion, scoring).
//!
//! What lives where:
//!
//! - [`settings`]: [`Settings`] in layers (defaults, then an optional
//!   `KEY=value` file named by `KPI_CONFIG_FILE`, then `KPI_*` environment
//!   variables), with secrets redacted from `Debug`.
//! - [`telemetry`]: the one telemetry init: logs (text, or JSON with trace
//!   ids) to stderr, spans and metrics over OTLP when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! - [`metrics`]: the Prometheus scrape endpoint (`KPI_METRICS_ADDR`) and the
//!   per-RPC instruments.
//! - [`readiness`]: `GET /readyz` and `/livez` on that endpoint, plain HTTP
//!   probes that work when gRPC is behind TLS.
//! - [`aging`]: connections closed after their max age and grace, so
//!   clients reconnect and spread over new pods.
//! - [`layers`]: the server recipe's tower pieces: the per-request span
//!   joined to the caller's trace, and the per-RPC metrics layer.
//! - [`client`]: outbound channels to the other services, with W3C trace
//!   context injected into every call.
//! - [`propagation`]: `traceparent` in gRPC metadata, both ways.
//! - [`server`]: [`serve`] — health (`grpc.health.v1`), reflection v1 and
//!   v1alpha, graceful shutdown with NOT_SERVING first (and
//!   `KPI_SHUTDOWN_DELAY_MS` before the listener closes) and a drain
//!   timeout; [`shutdown_signal`] for SIGTERM/SIGINT; [`bind`].
//! - [`shed`]: load shedding: calls beyond `KPI_MAX_CONCURRENT_REQUESTS`
//!   answered `RESOURCE_EXHAUSTED` at once; health never shed.
//! - [`status`]: the one mapping to [`tonic::Status`], with
//!   `google.rpc.BadRequest` field violations for bad input.
//! - [`app`]: what every service binary shares: the `serve` / `migrate`
//!   command line and a bound [`Listener`] serving a service's routes.
//! - [`tls`]: optional TLS and mTLS: the listener's certificate and the
//!   client CAs it requires, what outbound `https://` calls trust and present.
//! - [`auth`]: bearer tokens (API keys, optional JWT), roles per RPC and
//!   tenant isolation; `KPI_AUTH=off` only when set explicitly.
//! - [`names`]: resource names (`tenants/{tenant}/{collection}/{key}`), page
//!   sizes and opaque page tokens, validated the same way everywhere.

pub mod aging;
pub mod app;
pub mod auth;
pub mod client;
pub mod layers;
pub mod metrics;
pub mod names;
pub mod propagation;
pub mod readiness;
pub mod server;
pub mod settings;
pub mod shed;
pub mod status;
pub mod telemetry;
pub mod tls;

pub use app::{ListenError, Listener, ServiceCli, ServiceCommand};
pub use server::{
    ServeError, ServeOptions, bind, routes_builder, serve, serve_with_tls, shutdown_signal,
};
pub use settings::{LogFormat, ServiceKind, Settings, SettingsError};
