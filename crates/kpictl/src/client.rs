//! The one way `kpictl` talks to the services: a [`ClientConfig`] (URL,
//! deadline, a metadata hook), typed constructors for the three clients
//! ([`catalog`], [`ingestion`], [`scoring`]) and the mapping of a failed
//! call or connection to a one-line message and an [`ExitCode`]
//! ([`CallError`]).
//!
//! Every command connects through here, so what a connection carries
//! (a bearer token, TLS) is decided in one place: a later change adds it to
//! [`ClientConfig`] and [`ClientConfig::endpoint`] without touching callers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kpi_proto::catalog::catalog_service_client::CatalogServiceClient;
use kpi_proto::ingestion::ingestion_service_client::IngestionServiceClient;
use kpi_proto::scoring::scoring_service_client::ScoringServiceClient;
use kpi_runtime::auth::BearerToken;
use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::cli::Cli;
use crate::tls::TlsArgs;
use crate::{ExitCode, error_chain};

/// How long connecting to a service may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest gRPC message read or written (a full team's scorecards, a big
/// catalog, a chunk of events).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// Which service a client talks to, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// indicator-catalog.
    Catalog,
    /// data-ingestion.
    Ingestion,
    /// scoring.
    Scoring,
}

impl Service {
    /// The service's name, as its binary is called.
    pub fn name(self) -> &'static str {
        match self {
            Service::Catalog => "indicator-catalog",
            Service::Ingestion => "data-ingestion",
            Service::Scoring => "scoring",
        }
    }

    /// The command-line option giving its URL.
    pub fn url_option(self) -> &'static str {
        match self {
            Service::Catalog => "--catalog-url",
            Service::Ingestion => "--ingestion-url",
            Service::Scoring => "--scoring-url",
        }
    }
}

/// Adds to the metadata of every request (e.g. `authorization`); an error
/// stops the request before it is sent.
pub type MetadataHook = Arc<dyn Fn(&mut MetadataMap) -> Result<(), Status> + Send + Sync>;

/// Where and how to reach one service.
#[derive(Clone)]
pub struct ClientConfig {
    /// Which service, for messages.
    pub service: Service,
    /// Its URL, e.g. `http://127.0.0.1:50053`.
    pub url: String,
    /// The deadline of each request; `None` for none (long streams).
    pub timeout: Option<Duration>,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// Run on every request's metadata before it is sent.
    pub metadata: Option<MetadataHook>,
    /// TLS for an `https://` URL (`--ca-cert`, `--client-cert`, `--client-key`).
    pub tls: TlsArgs,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hook may hold a secret: only whether there is one is shown.
        f.debug_struct("ClientConfig")
            .field("service", &self.service)
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("metadata", &self.metadata.is_some())
            .field("tls", &self.tls)
            .finish()
    }
}

impl ClientConfig {
    /// A service at a URL: no request deadline, the usual connect timeout,
    /// no metadata.
    pub fn new(service: Service, url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            service,
            url: url.into(),
            timeout: None,
            connect_timeout: CONNECT_TIMEOUT,
            metadata: None,
            tls: TlsArgs::default(),
        }
    }

    /// The service as the command line says: its URL option, and the
    /// request deadline of `--timeout` for unary calls (`streaming` calls,
    /// such as an import, get none).
    pub fn from_cli(cli: &Cli, service: Service, streaming: bool) -> ClientConfig {
        let url = match service {
            Service::Catalog => &cli.catalog_url,
            Service::Ingestion => &cli.ingestion_url,
            Service::Scoring => &cli.scoring_url,
        };
        let config = ClientConfig::new(service, url.clone())
            .with_tls(cli.tls.clone())
            .with_token(cli.token.clone());
        if streaming {
            config
        } else {
            config.with_timeout(Duration::from_secs(cli.timeout))
        }
    }

    /// The same with a request deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.timeout = Some(timeout);
        self
    }

    /// The same with TLS options for an `https://` URL.
    pub fn with_tls(mut self, tls: TlsArgs) -> ClientConfig {
        self.tls = tls;
        self
    }

    /// The same sending `token` (if any) as `authorization: Bearer …`.
    pub fn with_token(self, token: Option<BearerToken>) -> ClientConfig {
        match token {
            None => self,
            Some(token) => self.with_metadata(Arc::new(move |metadata: &mut MetadataMap| {
                metadata.insert("authorization", token.metadata_value().clone());
                Ok(())
            })),
        }
    }

    /// The same with a metadata hook.
    pub fn with_metadata(mut self, hook: MetadataHook) -> ClientConfig {
        self.metadata = Some(hook);
        self
    }

    /// The endpoint to connect to; a malformed URL is a usage error.
    pub fn endpoint(&self) -> Result<Endpoint, CallError> {
        let endpoint = Endpoint::from_shared(self.url.clone()).map_err(|e| {
            CallError::usage(format!(
                "invalid {} `{}`: {}",
                self.service.url_option(),
                self.url,
                error_chain(&e)
            ))
        })?;
        let endpoint = self
            .tls
            .apply(endpoint.connect_timeout(self.connect_timeout))
            .map_err(CallError::usage)?;
        Ok(match self.timeout {
            Some(timeout) => endpoint.timeout(timeout),
            None => endpoint,
        })
    }

    /// A connected channel, or why not (exit code 3, naming the URL).
    pub async fn channel(&self) -> Result<Channel, CallError> {
        self.endpoint()?
            .connect()
            .await
            .map_err(|e| CallError::unreachable(self, &error_chain(&e)))
    }

    /// A connected channel with the metadata hook in front.
    async fn intercepted(&self) -> Result<InterceptedService<Channel, Metadata>, CallError> {
        let channel = self.channel().await?;
        Ok(InterceptedService::new(
            channel,
            Metadata(self.metadata.clone()),
        ))
    }

    /// Maps a failed call of `rpc` to an error naming this service.
    pub fn call_error(&self, rpc: &str, status: &Status) -> CallError {
        CallError::from_status(self, rpc, status)
    }
}

/// The interceptor every client goes through: runs the [`MetadataHook`].
#[derive(Clone)]
pub struct Metadata(Option<MetadataHook>);

impl Interceptor for Metadata {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(hook) = &self.0 {
            hook(request.metadata_mut())?;
        }
        Ok(request)
    }
}

/// The transport every client uses.
pub type Transport = InterceptedService<Channel, Metadata>;
/// An indicator-catalog client.
pub type CatalogClient = CatalogServiceClient<Transport>;
/// A data-ingestion client.
pub type IngestionClient = IngestionServiceClient<Transport>;
/// A scoring client.
pub type ScoringClient = ScoringServiceClient<Transport>;

/// A connected indicator-catalog client.
pub async fn catalog(config: &ClientConfig) -> Result<CatalogClient, CallError> {
    Ok(CatalogServiceClient::new(config.intercepted().await?)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// A connected data-ingestion client.
pub async fn ingestion(config: &ClientConfig) -> Result<IngestionClient, CallError> {
    Ok(IngestionServiceClient::new(config.intercepted().await?)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// A connected scoring client.
pub async fn scoring(config: &ClientConfig) -> Result<ScoringClient, CallError> {
    Ok(ScoringServiceClient::new(config.intercepted().await?)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// Why a command stopped: one line for people, an exit code for scripts,
/// and the request fields a refusal named (from `google.rpc.BadRequest`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    /// The message, one line.
    pub message: String,
    /// The exit code.
    pub exit: ExitCode,
    /// The field paths a refusal named, if any.
    pub fields: Vec<String>,
}

impl CallError {
    /// A usage error (exit code 2).
    pub fn usage(message: impl Into<String>) -> CallError {
        CallError {
            message: message.into(),
            exit: ExitCode::Usage,
            fields: Vec::new(),
        }
    }

    /// A service that cannot be reached (exit code 3), naming the URL.
    pub fn unreachable(config: &ClientConfig, reason: &str) -> CallError {
        CallError {
            message: format!(
                "cannot reach {} at {}: {reason}",
                config.service.name(),
                config.url
            ),
            exit: ExitCode::Unreachable,
            fields: Vec::new(),
        }
    }

    /// A failed call: refusals (bad input, missing things, conflicts,
    /// permissions) are usage errors naming the fields; the rest means the
    /// service is unreachable or unwell.
    pub fn from_status(config: &ClientConfig, rpc: &str, status: &Status) -> CallError {
        let service = config.service.name();
        let reason = reason(status);
        let exit = exit_code_of(status.code());
        let message = match status.code() {
            Code::Unavailable => {
                return CallError::unreachable(config, &reason);
            }
            Code::DeadlineExceeded => format!(
                "{service} at {} did not answer {rpc} in time: {reason}",
                config.url
            ),
            _ if exit == ExitCode::Usage => {
                format!("{service} refused {rpc} ({:?}): {reason}", status.code())
            }
            code => format!(
                "{service} at {} failed {rpc} ({code:?}): {reason}",
                config.url
            ),
        };
        let violations = status
            .get_details_bad_request()
            .map(|b| b.field_violations)
            .unwrap_or_default();
        // The services list the violations in the message too; only those
        // it does not mention are added.
        let missing: Vec<String> = violations
            .iter()
            .filter(|v| !message.contains(&v.field))
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect();
        let message = if missing.is_empty() {
            message
        } else {
            format!("{message} [{}]", missing.join("; "))
        };
        CallError {
            message,
            exit,
            fields: violations.into_iter().map(|v| v.field).collect(),
        }
    }

    /// The same error with a context in front of its message.
    pub fn context(mut self, context: &str) -> CallError {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

/// The exit code of a failed call's status code.
pub fn exit_code_of(code: Code) -> ExitCode {
    match code {
        Code::InvalidArgument
        | Code::NotFound
        | Code::FailedPrecondition
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::Unauthenticated
        | Code::OutOfRange => ExitCode::Usage,
        _ => ExitCode::Unreachable,
    }
}

/// The status message with its transport cause, if any, else the code.
pub fn reason(status: &Status) -> String {
    let mut reason = status.message().to_owned();
    if let Some(source) = std::error::Error::source(status) {
        let chain = error_chain(source);
        if !chain.is_empty() && !reason.contains(&chain) {
            reason = if reason.is_empty() {
                chain
            } else {
                format!("{reason}: {chain}")
            };
        }
    }
    if reason.is_empty() {
        reason = format!("{:?}", status.code());
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, FieldViolation};

    fn scoring() -> ClientConfig {
        ClientConfig::new(Service::Scoring, "http://127.0.0.1:1")
    }

    #[test]
    fn refusals_are_usage_errors_with_their_fields() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "invalid request",
            ErrorDetails::with_bad_request(vec![FieldViolation::new(
                "period.date",
                "\"x\" is not a date",
            )]),
        );
        let error = scoring().call_error("GetScorecard", &status);
        assert_eq!(error.exit, ExitCode::Usage);
        assert_eq!(error.fields, ["period.date"]);
        assert_eq!(
            error.message,
            "scoring refused GetScorecard (InvalidArgument): invalid request [period.date: \"x\" is not a date]"
        );
    }

    #[test]
    fn unavailable_and_deadlines_name_the_url() {
        let error = scoring().call_error("ListAlerts", &Status::unavailable("connection refused"));
        assert_eq!(error.exit, ExitCode::Unreachable);
        assert_eq!(
            error.message,
            "cannot reach scoring at http://127.0.0.1:1: connection refused"
        );
        let late = scoring().call_error("ListAlerts", &Status::deadline_exceeded("timeout"));
        assert_eq!(late.exit, ExitCode::Unreachable);
        assert!(late.message.contains("http://127.0.0.1:1"), "{late}");
        for code in [
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::NotFound,
        ] {
            assert_eq!(exit_code_of(code), ExitCode::Usage, "{code:?}");
        }
        assert_eq!(exit_code_of(Code::Internal), ExitCode::Unreachable);
    }
}
