//! Authentication, roles and tenant isolation for every RPC but health and
//! reflection.
//!
//! A caller presents a bearer token in the `authorization` metadata. The
//! server turns it into a [`Caller`] — one tenant (or every tenant, `*`), one
//! [`Role`] and the id of the key or token subject — or answers
//! `UNAUTHENTICATED`; the role is checked against the RPC access table
//! (`PERMISSION_DENIED`); each request's tenant is checked against the
//! caller's (`PERMISSION_DENIED`, with the same message whether that tenant
//! exists or not).
//!
//! What lives where:
//!
//! - this module: [`Role`], [`Caller`], [`AuthSettings`] (the `KPI_AUTH*`,
//!   `KPI_API_KEYS_FILE`, `KPI_JWT_*` and `KPI_SERVICE_TOKEN*` variables),
//!   [`ServerAuth`] (what the server enforces) and [`Authenticator`].
//! - [`keys`]: the API-key table (`<key-id> <tenant|*> <role> <sha256-hex>`
//!   lines), tokens compared by hash in constant time, and local token
//!   generation for `kpictl up` / `demo`.
//! - [`jwt`]: optional JWT validation (issuer, audience, expiry, tenant and
//!   role claims) with an HS256 secret and/or an RS256/ES256 public key.
//! - [`policy`]: the RPC access table: which roles may call which RPC.
//! - [`guard`]: the tower layer in the server recipe that authenticates and
//!   checks the role, and puts the [`Caller`] into the request extensions.
//! - [`tenancy`]: [`tenancy::Guarded`], the wrapper around each service's
//!   handlers that checks the tenant each request names.
//! - [`outbound`]: the bearer token on the suite's own calls between
//!   services (`KPI_SERVICE_TOKEN`).

pub mod guard;
pub mod jwt;
pub mod keys;
pub mod outbound;
pub mod policy;
pub mod tenancy;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tonic::Status;

use crate::settings::SettingsError;

pub use guard::AuthLayer;
pub use outbound::BearerToken;

/// `on` (the default) or `off`: `off` serves every RPC without credentials
/// and must be set explicitly.
pub const AUTH_VAR: &str = "KPI_AUTH";
/// The API-key file: `<key-id> <tenant|*> <role> <sha256-hex-of-token>` lines.
pub const API_KEYS_FILE_VAR: &str = "KPI_API_KEYS_FILE";
/// The issuer (`iss`) JWTs must carry; setting it turns JWT validation on.
pub const JWT_ISSUER_VAR: &str = "KPI_JWT_ISSUER";
/// The audience (`aud`) JWTs must carry.
pub const JWT_AUDIENCE_VAR: &str = "KPI_JWT_AUDIENCE";
/// A file holding the HS256 shared secret.
pub const JWT_HS256_SECRET_FILE_VAR: &str = "KPI_JWT_HS256_SECRET_FILE";
/// A PEM file holding the RS256 or ES256 public key.
pub const JWT_PUBLIC_KEY_FILE_VAR: &str = "KPI_JWT_PUBLIC_KEY_FILE";
/// The claim naming the tenant, default `tenant`.
pub const JWT_TENANT_CLAIM_VAR: &str = "KPI_JWT_TENANT_CLAIM";
/// The claim naming the role, default `role`.
pub const JWT_ROLE_CLAIM_VAR: &str = "KPI_JWT_ROLE_CLAIM";
/// The bearer token this service sends on its calls to the other services.
pub const SERVICE_TOKEN_VAR: &str = "KPI_SERVICE_TOKEN";
/// A file holding that token (for a mounted Kubernetes Secret).
pub const SERVICE_TOKEN_FILE_VAR: &str = "KPI_SERVICE_TOKEN_FILE";

/// Every authentication key accepted in the `KPI_CONFIG_FILE`.
pub const FILE_KEYS: &[&str] = &[
    AUTH_VAR,
    API_KEYS_FILE_VAR,
    JWT_ISSUER_VAR,
    JWT_AUDIENCE_VAR,
    JWT_HS256_SECRET_FILE_VAR,
    JWT_PUBLIC_KEY_FILE_VAR,
    JWT_TENANT_CLAIM_VAR,
    JWT_ROLE_CLAIM_VAR,
    SERVICE_TOKEN_VAR,
    SERVICE_TOKEN_FILE_VAR,
];

/// Clock skew tolerated on `exp` and `nbf`.
pub const JWT_LEEWAY: Duration = Duration::from_secs(30);

/// The one message for a tenant the caller may not touch: the same whether
/// that tenant exists or not, so that nobody learns which tenants exist.
pub const TENANT_DENIED: &str = "the credential does not grant access to this tenant";

/// What a caller may do, from least to most platform-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Reads scorecards, catalog definitions, drill-down facts.
    Reader,
    /// Sends events (ingestion).
    Writer,
    /// Changes the catalog; may also call every other RPC of its tenant.
    Admin,
    /// The suite's own calls between services (definitions, aggregates).
    Service,
}

impl Role {
    /// All four roles.
    pub const ALL: [Role; 4] = [Role::Reader, Role::Writer, Role::Admin, Role::Service];

    /// `reader`, `writer`, `admin` or `service`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }

    /// Whether a credential of this role may be bound to every tenant (`*`).
    pub fn may_span_tenants(self) -> bool {
        matches!(self, Role::Admin | Role::Service)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role {s:?} (expected reader, writer, admin or service)")
            })
    }
}

/// Which tenants a credential is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantScope {
    /// Exactly this tenant id.
    One(String),
    /// Every tenant (`*`; admin and service credentials only).
    All,
}

impl fmt::Display for TenantScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TenantScope::One(tenant) => f.write_str(tenant),
            TenantScope::All => f.write_str("*"),
        }
    }
}

/// Who is calling, as established by [`guard`]; in the request extensions
/// of every RPC that reaches a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The tenants it may touch.
    pub tenant: TenantScope,
    /// What it may do.
    pub role: Role,
    /// The API key id or the JWT subject, for logs.
    pub key_id: String,
}

impl Caller {
    /// The caller of a server running with `KPI_AUTH=off`: every tenant,
    /// every RPC.
    pub fn unauthenticated_open() -> Caller {
        Caller {
            tenant: TenantScope::All,
            role: Role::Admin,
            key_id: "anonymous (KPI_AUTH=off)".to_owned(),
        }
    }

    /// `Ok` when the caller may touch `tenant`; otherwise `PERMISSION_DENIED`
    /// with [`TENANT_DENIED`], whether `tenant` exists or not.
    pub fn authorize(&self, tenant: &str) -> Result<(), Status> {
        match &self.tenant {
            TenantScope::All => Ok(()),
            TenantScope::One(own) if own == tenant => Ok(()),
            TenantScope::One(_) => Err(Status::permission_denied(TENANT_DENIED)),
        }
    }

    /// `Ok` when the caller may touch every tenant at once (e.g. a
    /// WatchChanges without a parent).
    pub fn authorize_all_tenants(&self) -> Result<(), Status> {
        match self.tenant {
            TenantScope::All => Ok(()),
            TenantScope::One(_) => Err(Status::permission_denied(TENANT_DENIED)),
        }
    }

    /// The caller the server's [`guard`] put into `request`. A request
    /// without one never went through the guard: refused, never served open.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Caller, Status> {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| {
                tracing::error!("a request reached a handler without an authenticated caller");
                Status::permission_denied("no authenticated caller")
            })
    }
}

/// `KPI_AUTH`: whether the server requires credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Credentials required (the default): the server refuses to start
    /// without an API-key file or JWT validation.
    #[default]
    Required,
    /// `KPI_AUTH=off`: no credentials checked. Explicit only; logged loudly.
    Off,
}

/// JWT validation settings (`KPI_JWT_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// `KPI_JWT_ISSUER`.
    pub issuer: String,
    /// `KPI_JWT_AUDIENCE`.
    pub audience: String,
    /// `KPI_JWT_HS256_SECRET_FILE`.
    pub hs256_secret_file: Option<PathBuf>,
    /// `KPI_JWT_PUBLIC_KEY_FILE` (RS256 or ES256 PEM).
    pub public_key_file: Option<PathBuf>,
    /// `KPI_JWT_TENANT_CLAIM`, default `tenant`.
    pub tenant_claim: String,
    /// `KPI_JWT_ROLE_CLAIM`, default `role`.
    pub role_claim: String,
}

/// Everything about authentication a service reads from its environment.
///
/// `Debug` never shows the service token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSettings {
    /// `KPI_AUTH`.
    pub mode: AuthMode,
    /// `KPI_API_KEYS_FILE`.
    pub api_keys_file: Option<PathBuf>,
    /// Set when `KPI_JWT_ISSUER` is.
    pub jwt: Option<JwtSettings>,
    /// `KPI_SERVICE_TOKEN`, or the contents of `KPI_SERVICE_TOKEN_FILE`.
    pub service_token: Option<BearerToken>,
}

impl AuthSettings {
    /// Explicitly no authentication (`KPI_AUTH=off`), e.g. for tests of
    /// other concerns.
    pub fn off() -> AuthSettings {
        AuthSettings {
            mode: AuthMode::Off,
            ..AuthSettings::default()
        }
    }

    /// Credentials required, checked against the API keys in `file`.
    pub fn with_api_keys(file: impl Into<PathBuf>) -> AuthSettings {
        AuthSettings {
            mode: AuthMode::Required,
            api_keys_file: Some(file.into()),
            ..AuthSettings::default()
        }
    }

    /// Reads the authentication variables through `get` (the settings'
    /// layered lookup: environment over config file).
    pub fn from_lookup(
        get: impl Fn(&'static str) -> Option<String>,
    ) -> Result<AuthSettings, SettingsError> {
        let non_empty = |key: &'static str| get(key).filter(|v| !v.trim().is_empty());
        let mut auth = AuthSettings::default();
        if let Some(value) = non_empty(AUTH_VAR) {
            auth.mode = match value.trim().to_ascii_lowercase().as_str() {
                "on" | "true" | "required" => AuthMode::Required,
                "off" | "false" => AuthMode::Off,
                _ => {
                    return Err(SettingsError::Invalid {
                        key: AUTH_VAR,
                        value,
                        expected: "`on` or `off`",
                    });
                }
            };
        }
        auth.api_keys_file = non_empty(API_KEYS_FILE_VAR).map(|v| PathBuf::from(v.trim()));
        auth.jwt = jwt_settings(&non_empty)?;
        auth.service_token = service_token(&non_empty)?;
        Ok(auth)
    }
}

fn jwt_settings(
    get: &impl Fn(&'static str) -> Option<String>,
) -> Result<Option<JwtSettings>, SettingsError> {
    let Some(issuer) = get(JWT_ISSUER_VAR) else {
        return Ok(None);
    };
    let audience = get(JWT_AUDIENCE_VAR).ok_or_else(|| SettingsError::Invalid {
        key: JWT_AUDIENCE_VAR,
        value: String::new(),
        expected: "the audience JWTs must carry (required with KPI_JWT_ISSUER)",
    })?;
    let hs256_secret_file = get(JWT_HS256_SECRET_FILE_VAR).map(|v| PathBuf::from(v.trim()));
    let public_key_file = get(JWT_PUBLIC_KEY_FILE_VAR).map(|v| PathBuf::from(v.trim()));
    if hs256_secret_file.is_none() && public_key_file.is_none() {
        return Err(SettingsError::Invalid {
            key: JWT_PUBLIC_KEY_FILE_VAR,
            value: String::new(),
            expected: "a key file (KPI_JWT_PUBLIC_KEY_FILE or KPI_JWT_HS256_SECRET_FILE) with KPI_JWT_ISSUER",
        });
    }
    Ok(Some(JwtSettings {
        issuer: issuer.trim().to_owned(),
        audience: audience.trim().to_owned(),
        hs256_secret_file,
        public_key_file,
        tenant_claim: get(JWT_TENANT_CLAIM_VAR)
            .map_or_else(|| "tenant".to_owned(), |v| v.trim().to_owned()),
        role_claim: get(JWT_ROLE_CLAIM_VAR)
            .map_or_else(|| "role".to_owned(), |v| v.trim().to_owned()),
    }))
}

fn service_token(
    get: &impl Fn(&'static str) -> Option<String>,
) -> Result<Option<BearerToken>, SettingsError> {
    if let Some(token) = get(SERVICE_TOKEN_VAR) {
        return BearerToken::new(token.trim())
            .map(Some)
            .map_err(|expected| SettingsError::Invalid {
                key: SERVICE_TOKEN_VAR,
                value: "***".to_owned(),
                expected,
            });
    }
    let Some(path) = get(SERVICE_TOKEN_FILE_VAR) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path.trim()).map_err(|_| SettingsError::Invalid {
        key: SERVICE_TOKEN_FILE_VAR,
        value: path.clone(),
        expected: "a readable file holding the service token",
    })?;
    BearerToken::new(text.trim())
        .map(Some)
        .map_err(|expected| SettingsError::Invalid {
            key: SERVICE_TOKEN_FILE_VAR,
            value: path,
            expected,
        })
}

/// Why the server's authentication could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Neither API keys nor JWT are configured and `KPI_AUTH=off` is not set.
    #[error(
        "no credentials configured: set {API_KEYS_FILE_VAR} and/or {JWT_ISSUER_VAR} \
         (with its key), or {AUTH_VAR}=off to serve without authentication"
    )]
    NotConfigured,
    /// A file could not be read.
    #[error("{key}: cannot read {path:?}: {source}")]
    Read {
        /// The variable naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of the API-key file is wrong.
    #[error("{API_KEYS_FILE_VAR}: {path:?} line {line}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A JWT key is not usable.
    #[error("{key}: {reason}")]
    JwtKey {
        /// The variable naming the key file.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Turns bearer tokens into callers: the API-key table, then JWT when the
/// token looks like one and JWT validation is configured.
#[derive(Debug)]
pub struct Authenticator {
    keys: keys::KeyTable,
    jwt: Option<jwt::JwtValidator>,
}

impl Authenticator {
    /// Loads the key file and JWT keys named by `settings`; `None` for
    /// `KPI_AUTH=off`.
    pub fn from_settings(settings: &AuthSettings) -> Result<Option<Authenticator>, AuthError> {
        if settings.mode == AuthMode::Off {
            return Ok(None);
        }
        let keys = match &settings.api_keys_file {
            Some(path) => keys::KeyTable::load(path)?,
            None => keys::KeyTable::default(),
        };
        let jwt = settings
            .jwt
            .as_ref()
            .map(jwt::JwtValidator::from_settings)
            .transpose()?;
        if keys.is_empty() && jwt.is_none() {
            return Err(AuthError::NotConfigured);
        }
        Ok(Some(Authenticator { keys, jwt }))
    }

    /// The caller a bearer token stands for, or `UNAUTHENTICATED`.
    pub fn authenticate(&self, token: &str) -> Result<Caller, Status> {
        if let Some(jwt) = &self.jwt
            && jwt::looks_like_jwt(token)
        {
            return jwt.validate(token);
        }
        self.keys
            .find(token)
            .ok_or_else(|| Status::unauthenticated("unknown or invalid bearer token"))
    }
}

/// What the server enforces.
#[derive(Debug, Clone)]
pub enum ServerAuth {
    /// `KPI_AUTH=off`: everything served; every request gets
    /// [`Caller::unauthenticated_open`].
    Off,
    /// Credentials required on every RPC but health and reflection.
    Required(Arc<Authenticator>),
}

impl ServerAuth {
    /// Builds what `settings` describe, refusing when nothing is configured
    /// and `KPI_AUTH=off` is not set. Logs a loud warning for `off`.
    pub fn from_settings(settings: &AuthSettings) -> Result<ServerAuth, AuthError> {
        match Authenticator::from_settings(settings)? {
            Some(authenticator) => Ok(ServerAuth::Required(Arc::new(authenticator))),
            None => {
                tracing::warn!(
                    "AUTHENTICATION IS OFF ({AUTH_VAR}=off): every RPC is served to anyone who can reach this port, for every tenant"
                );
                Ok(ServerAuth::Off)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<AuthSettings, SettingsError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AuthSettings::from_lookup(|key| vars.get(key).cloned())
    }

    #[test]
    fn settings_from_variables() {
        let default = load(&[]).expect("defaults");
        assert_eq!(default.mode, AuthMode::Required);
        assert!(default.api_keys_file.is_none() && default.jwt.is_none());
        assert_eq!(load(&[(AUTH_VAR, "off")]).expect("off").mode, AuthMode::Off);
        let err = load(&[(AUTH_VAR, "maybe")]).expect_err("bad mode");
        assert!(err.to_string().contains(AUTH_VAR), "{err}");

        let jwt = load(&[
            (JWT_ISSUER_VAR, "https://idp"),
            (JWT_AUDIENCE_VAR, "kpi"),
            (JWT_PUBLIC_KEY_FILE_VAR, "/keys/pub.pem"),
        ])
        .expect("jwt")
        .jwt
        .expect("configured");
        assert_eq!(
            (jwt.tenant_claim.as_str(), jwt.role_claim.as_str()),
            ("tenant", "role")
        );
        let err = load(&[(JWT_ISSUER_VAR, "https://idp"), (JWT_AUDIENCE_VAR, "kpi")])
            .expect_err("no key");
        assert!(err.to_string().contains(JWT_PUBLIC_KEY_FILE_VAR), "{err}");
        let err = load(&[(JWT_ISSUER_VAR, "https://idp")]).expect_err("no audience");
        assert!(err.to_string().contains(JWT_AUDIENCE_VAR), "{err}");
    }

    #[test]
    fn service_token_from_a_file_never_shown() {
        let dir = tempfile_dir();
        let path = dir.join("token");
        std::fs::write(&path, "s3cret-token\n").expect("write");
        let path = path.to_string_lossy().into_owned();
        let auth = load(&[(SERVICE_TOKEN_FILE_VAR, &path)]).expect("token file");
        let token = auth.service_token.as_ref().expect("token");
        assert_eq!(token.header_value(), "Bearer s3cret-token");
        assert!(!format!("{auth:?}").contains("s3cret"));
        let err = load(&[(SERVICE_TOKEN_FILE_VAR, "/nonexistent/token")]).expect_err("missing");
        assert!(err.to_string().contains(SERVICE_TOKEN_FILE_VAR), "{err}");
        std::fs::remove_dir_all(dir).expect("clean up");
    }

    #[test]
    fn tenant_checks_say_the_same_for_every_other_tenant() {
        let caller = Caller {
            tenant: TenantScope::One("acme".to_owned()),
            role: Role::Reader,
            key_id: "k".to_owned(),
        };
        assert!(caller.authorize("acme").is_ok());
        let a = caller.authorize("globex").expect_err("other");
        let b = caller.authorize("no-such-tenant").expect_err("other");
        assert_eq!((a.code(), a.message()), (b.code(), b.message()));
        assert_eq!(a.code(), tonic::Code::PermissionDenied);
        assert!(caller.authorize_all_tenants().is_err());
        assert!(
            Caller::unauthenticated_open()
                .authorize_all_tenants()
                .is_ok()
        );
    }

    /// A fresh directory under the system temp dir.
    pub(super) fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "kpi-auth-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
