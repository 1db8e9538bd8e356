//! The one telemetry init for all services: a `tracing` subscriber filtered
//! by [`Settings::log_filter`], writing compact text or JSON (flattened
//! fields, current span) to stderr.
//!
//! Log messages are lowercase with structured fields, e.g.
//! `info!(addr = %addr, "serving")`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::settings::{LogFormat, Settings};

/// Installs the global subscriber described by `settings`.
///
/// Safe to call more than once (tests do): if a global subscriber is already
/// set, this leaves it in place and returns. An unparsable filter (which
/// [`Settings::from_lookup`] already rejects) falls back to `info`.
pub fn init(settings: &Settings) {
    let filter =
        EnvFilter::try_new(&settings.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let (json, text) = match settings.log_format {
        LogFormat::Json => (
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            ),
            None,
        ),
        LogFormat::Text => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_writer(std::io::stderr),
            ),
        ),
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(text)
        .try_init()
        .is_ok();
    if installed {
        tracing::debug!(
            service = settings.service.binary_name(),
            format = ?settings.log_format,
            filter = %settings.log_filter,
            "telemetry initialised"
        );
    }
}
