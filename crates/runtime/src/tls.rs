//! Optional TLS and mutual TLS (rustls on ring) between the services.
//!
//! Server side, [`ServerTls`]: `KPI_TLS_CERT_FILE` + `KPI_TLS_KEY_FILE`
//! (PEM) turn TLS on for the gRPC listener (health and reflection included);
//! `KPI_TLS_CLIENT_CA_FILE` additionally requires every client to present a
//! certificate signed by one of those CAs (mTLS).
//!
//! Client side, [`ClientTls`]: what outbound calls to `https://` URLs trust
//! and present. `KPI_TLS_CA_FILE` replaces the public webpki roots with the
//! given CAs (a private PKI); `KPI_TLS_CLIENT_CERT_FILE` +
//! `KPI_TLS_CLIENT_KEY_FILE` are the identity shown to an mTLS server;
//! `KPI_TLS_DOMAIN_NAME` overrides the name the server certificate must carry
//! (and the SNI), for when peers are dialled by IP or through an alias.
//! `http://` URLs stay plain whatever is configured.
//!
//! Every file is read and checked once, at start-up ([`ServerTls::load`],
//! [`ClientTls::load`]), and each error names the setting at fault (a
//! [`PemFile::label`]: the `KPI_*` variable, or a kpictl flag) and its path.

use std::fmt;
use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig};

use crate::client::error_chain;

/// How long a client may take to finish the TLS handshake, so that a peer
/// that connects and says nothing does not hold a handshake task forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A PEM file and the setting that named it, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemFile {
    /// The setting, e.g. `KPI_TLS_CERT_FILE` or `--ca-cert`.
    pub label: &'static str,
    /// Where the file is.
    pub path: PathBuf,
}

impl PemFile {
    /// `path`, as named by `label`.
    pub fn new(label: &'static str, path: impl Into<PathBuf>) -> PemFile {
        PemFile {
            label,
            path: path.into(),
        }
    }
}

/// Why TLS could not be set up. Every message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// One half of a pair is set without the other.
    #[error("{set} is set but {missing} is not: give both or neither")]
    Unpaired {
        /// The setting that is given.
        set: &'static str,
        /// The one that is missing.
        missing: &'static str,
    },
    /// A setting that only makes sense with another one.
    #[error("{set} needs {needs}")]
    Needs {
        /// The setting that is given.
        set: &'static str,
        /// What it needs as well.
        needs: &'static str,
    },
    /// A file could not be read.
    #[error("{label}: cannot read {path:?}: {source}")]
    Read {
        /// The setting.
        label: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no PEM item of the kind expected, or a broken one.
    #[error("{label}: {path:?} is not {expected}: {reason}")]
    Pem {
        /// The setting.
        label: &'static str,
        /// The file.
        path: PathBuf,
        /// What it should hold, e.g. `a PEM certificate`.
        expected: &'static str,
        /// What the PEM reader said.
        reason: String,
    },
    /// The files read fine but do not make a working TLS configuration (a
    /// key that does not go with its certificate, an unusable CA…).
    #[error("{labels}: {reason}")]
    Unusable {
        /// The settings involved, e.g. `KPI_TLS_CERT_FILE/KPI_TLS_KEY_FILE`.
        labels: String,
        /// What rustls said.
        reason: String,
    },
}

/// The gRPC listener's TLS: its certificate chain and key, and the CAs
/// client certificates must chain to when mTLS is on.
#[derive(Clone)]
pub struct ServerTls {
    cert: PemFile,
    client_ca: Option<PemFile>,
    config: ServerTlsConfig,
}

impl ServerTls {
    /// Reads and checks the server's certificate chain and key, and the
    /// client CAs if given (which turns on mTLS: clients without a
    /// certificate signed by one of them are refused during the handshake).
    pub fn load(
        cert: PemFile,
        key: PemFile,
        client_ca: Option<PemFile>,
    ) -> Result<ServerTls, TlsError> {
        install_crypto_provider();
        let cert_pem = read_certificates(&cert)?;
        let key_pem = read_private_key(&key)?;
        let mut config = ServerTlsConfig::new()
            .identity(Identity::from_pem(cert_pem, key_pem))
            .timeout(HANDSHAKE_TIMEOUT);
        if let Some(ca) = &client_ca {
            config = config.client_ca_root(Certificate::from_pem(read_certificates(ca)?));
        }
        // Building the acceptor once here finds a key that does not match
        // its certificate at start-up instead of at the first connection.
        Server::builder()
            .tls_config(config.clone())
            .map_err(|e| TlsError::Unusable {
                labels: labels(&[Some(&cert), Some(&key), client_ca.as_ref()]),
                reason: error_chain(&e),
            })?;
        Ok(ServerTls {
            cert,
            client_ca,
            config,
        })
    }

    /// The tonic configuration, for `Server::tls_config`.
    pub fn config(&self) -> ServerTlsConfig {
        self.config.clone()
    }

    /// Whether clients must present a certificate (mTLS).
    pub fn requires_client_certificate(&self) -> bool {
        self.client_ca.is_some()
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.cert.path)
            .field("client_ca", &self.client_ca.as_ref().map(|ca| &ca.path))
            .finish_non_exhaustive()
    }
}

/// What outbound calls to `https://` URLs trust and present.
///
/// The default trusts the public webpki roots and presents no certificate.
#[derive(Clone)]
pub struct ClientTls {
    ca: Option<PemFile>,
    identity: Option<PemFile>,
    domain_name: Option<String>,
    config: ClientTlsConfig,
}

impl Default for ClientTls {
    fn default() -> Self {
        ClientTls {
            ca: None,
            identity: None,
            domain_name: None,
            config: ClientTlsConfig::new()
                .with_webpki_roots()
                .timeout(HANDSHAKE_TIMEOUT),
        }
    }
}

impl ClientTls {
    /// Reads and checks the trusted CAs (`None`: the public webpki roots),
    /// the client identity for mTLS (certificate chain, key) and the server
    /// name to verify instead of the URL's host.
    pub fn load(
        ca: Option<PemFile>,
        identity: Option<(PemFile, PemFile)>,
        domain_name: Option<String>,
    ) -> Result<ClientTls, TlsError> {
        install_crypto_provider();
        let mut config = ClientTlsConfig::new().timeout(HANDSHAKE_TIMEOUT);
        config = match &ca {
            Some(ca) => config.ca_certificate(Certificate::from_pem(read_certificates(ca)?)),
            None => config.with_webpki_roots(),
        };
        if let Some((cert, key)) = &identity {
            let identity = Identity::from_pem(read_certificates(cert)?, read_private_key(key)?);
            config = config.identity(identity);
        }
        if let Some(name) = &domain_name {
            config = config.domain_name(name.clone());
        }
        // Building a connector once finds unusable material at start-up.
        Endpoint::from_static("https://localhost")
            .tls_config(config.clone())
            .map_err(|e| TlsError::Unusable {
                labels: labels(&[
                    ca.as_ref(),
                    identity.as_ref().map(|(cert, _)| cert),
                    identity.as_ref().map(|(_, key)| key),
                ]),
                reason: error_chain(&e),
            })?;
        Ok(ClientTls {
            ca,
            identity: identity.map(|(cert, _)| cert),
            domain_name,
            config,
        })
    }

    /// The tonic configuration, for `Endpoint::tls_config`.
    pub fn config(&self) -> ClientTlsConfig {
        self.config.clone()
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca", &self.ca.as_ref().map(|ca| &ca.path))
            .field("identity", &self.identity.as_ref().map(|c| &c.path))
            .field("domain_name", &self.domain_name)
            .finish_non_exhaustive()
    }
}

/// Applies `tls` to `endpoint` when its URL is `https://`; `http://` stays
/// plain.
pub fn apply(endpoint: Endpoint, tls: &ClientTls) -> Result<Endpoint, tonic::transport::Error> {
    if is_https(endpoint.uri()) {
        install_crypto_provider();
        endpoint.tls_config(tls.config())
    } else {
        Ok(endpoint)
    }
}

/// Whether `uri` asks for TLS.
pub fn is_https(uri: &http::Uri) -> bool {
    uri.scheme_str()
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https"))
}

/// Makes ring the process's rustls crypto provider. rustls picks one by
/// itself only while exactly one is compiled in; installing ring (the one
/// this workspace builds) keeps TLS working should another dependency ever
/// bring aws-lc-rs along. A provider already installed is kept.
fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The file's bytes, or an error naming its setting.
fn read(file: &PemFile) -> Result<Vec<u8>, TlsError> {
    std::fs::read(&file.path).map_err(|source| TlsError::Read {
        label: file.label,
        path: file.path.clone(),
        source,
    })
}

/// The file's bytes, checked to hold at least one well-formed PEM
/// certificate.
fn read_certificates(file: &PemFile) -> Result<Vec<u8>, TlsError> {
    let pem = read(file)?;
    let expected = "a PEM certificate (-----BEGIN CERTIFICATE-----)";
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| pem_error(file, expected, e.to_string()))?;
        count += 1;
    }
    if count == 0 {
        return Err(pem_error(file, expected, "no certificate found".to_owned()));
    }
    Ok(pem)
}

/// The file's bytes, checked to hold a PEM private key (PKCS#8, PKCS#1 or
/// SEC1).
fn read_private_key(file: &PemFile) -> Result<Vec<u8>, TlsError> {
    let pem = read(file)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        pem_error(
            file,
            "a PEM private key (PKCS#8, PKCS#1 or SEC1)",
            e.to_string(),
        )
    })?;
    Ok(pem)
}

fn pem_error(file: &PemFile, expected: &'static str, reason: String) -> TlsError {
    TlsError::Pem {
        label: file.label,
        path: file.path.clone(),
        expected,
        reason,
    }
}

/// `A/B/C` from the settings given.
fn labels(files: &[Option<&PemFile>]) -> String {
    files
        .iter()
        .flatten()
        .map(|file| file.label)
        .collect::<Vec<_>>()
        .join("/")
}
