//! TLS for kpictl's calls to `https://` URLs: `--ca-cert`, `--client-cert`
//! and `--client-key` (or `KPI_TLS_CA_FILE`, `KPI_TLS_CLIENT_CERT_FILE`,
//! `KPI_TLS_CLIENT_KEY_FILE`), read with the services' own loader
//! ([`kpi_runtime::tls::ClientTls`]). `http://` URLs stay plain and the
//! files are not even read, so TLS variables meant for the services do not
//! get in the way of a plain import.

use std::path::PathBuf;

use clap::Args;
use kpi_runtime::tls::{self, ClientTls, PemFile, TlsError};
use tonic::transport::Endpoint;

use crate::error_chain;

/// The TLS options, global to every sub-command.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// CA certificates (PEM) that https:// servers must chain to, instead of
    /// the public webpki roots.
    #[arg(long, global = true, env = "KPI_TLS_CA_FILE", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// A client certificate chain (PEM) for servers that require one (mTLS);
    /// needs --client-key.
    #[arg(
        long,
        global = true,
        env = "KPI_TLS_CLIENT_CERT_FILE",
        value_name = "FILE"
    )]
    pub client_cert: Option<PathBuf>,
    /// The private key (PEM) of --client-cert.
    #[arg(
        long,
        global = true,
        env = "KPI_TLS_CLIENT_KEY_FILE",
        value_name = "FILE"
    )]
    pub client_key: Option<PathBuf>,
}

impl TlsArgs {
    /// `endpoint` with these options applied when its URL is `https://`; an
    /// error names the option at fault.
    pub fn apply(&self, endpoint: Endpoint) -> Result<Endpoint, String> {
        if !tls::is_https(endpoint.uri()) {
            return Ok(endpoint);
        }
        let client_tls = self.client_tls().map_err(|e| e.to_string())?;
        tls::apply(endpoint, &client_tls)
            .map_err(|e| format!("cannot set up TLS: {}", error_chain(&e)))
    }

    /// The client TLS these options describe.
    pub fn client_tls(&self) -> Result<ClientTls, TlsError> {
        let ca = self
            .ca_cert
            .as_ref()
            .map(|path| PemFile::new("--ca-cert", path));
        let cert = self
            .client_cert
            .as_ref()
            .map(|path| PemFile::new("--client-cert", path));
        let key = self
            .client_key
            .as_ref()
            .map(|path| PemFile::new("--client-key", path));
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (Some(_), None) => {
                return Err(TlsError::Unpaired {
                    set: "--client-cert",
                    missing: "--client-key",
                });
            }
            (None, Some(_)) => {
                return Err(TlsError::Unpaired {
                    set: "--client-key",
                    missing: "--client-cert",
                });
            }
            (None, None) => None,
        };
        ClientTls::load(ca, identity, None)
    }
}
