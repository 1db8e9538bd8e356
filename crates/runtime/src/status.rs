//! The one mapping to [`tonic::Status`] (convention 4).
//!
//! Bad input is `INVALID_ARGUMENT` carrying `google.rpc.BadRequest` field
//! violations (via [`tonic_types::StatusExt`]) that name the field path;
//! missing things are `NOT_FOUND`; state conflicts `FAILED_PRECONDITION` /
//! `ALREADY_EXISTS`; overload `RESOURCE_EXHAUSTED`; a dependency down
//! `UNAVAILABLE`; and bugs or storage failures `INTERNAL` with a generic
//! message (the detail goes to the log, never to the caller).
//!
//! Each crate keeps its own error enum and maps it to `Status` with these
//! helpers, so every service answers the same way.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// `INVALID_ARGUMENT` with one `BadRequest` field violation per
/// `(field path, description)` pair.
///
/// The status message also lists the violations, readably:
/// `invalid template: items[2].weight: weights sum to 95, not 100`.
pub fn invalid_argument(
    message: impl Into<String>,
    violations: impl IntoIterator<Item = (String, String)>,
) -> Status {
    let mut message = message.into();
    let violations: Vec<FieldViolation> = violations
        .into_iter()
        .map(|(field, description)| FieldViolation::new(field, description))
        .collect();
    if !violations.is_empty() {
        let listed: Vec<String> = violations
            .iter()
            .map(|violation| format!("{}: {}", violation.field, violation.description))
            .collect();
        message = format!("{message}: {}", listed.join("; "));
    }
    if violations.is_empty() {
        Status::invalid_argument(message)
    } else {
        Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request(violations),
        )
    }
}

/// `INVALID_ARGUMENT` for a single bad field: message `invalid {field}: {description}`.
pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Status {
    let field = field.into();
    invalid_argument(format!("invalid {field}"), [(field, description.into())])
}

/// `NOT_FOUND` with the message `{what} not found`, e.g.
/// `not_found("indicator tenants/acme/indicators/otd")`.
pub fn not_found(what: impl Into<String>) -> Status {
    Status::not_found(format!("{} not found", what.into()))
}

/// `ALREADY_EXISTS` with the message `{what} already exists`.
pub fn already_exists(what: impl Into<String>) -> Status {
    Status::already_exists(format!("{} already exists", what.into()))
}

/// `FAILED_PRECONDITION` with `message` as given, e.g.
/// `indicator tenants/acme/indicators/otd is archived`.
pub fn failed_precondition(message: impl Into<String>) -> Status {
    Status::failed_precondition(message.into())
}

/// `UNAVAILABLE` (a dependency is down; the caller may retry), with a
/// `google.rpc.RetryInfo` when `retry_after` is given.
pub fn unavailable(message: impl Into<String>, retry_after: Option<Duration>) -> Status {
    with_retry(Code::Unavailable, message.into(), retry_after)
}

/// `RESOURCE_EXHAUSTED` (overload or quota), with a `google.rpc.RetryInfo`
/// when `retry_after` is given.
pub fn resource_exhausted(message: impl Into<String>, retry_after: Option<Duration>) -> Status {
    with_retry(Code::ResourceExhausted, message.into(), retry_after)
}

/// `INTERNAL` with the generic message `internal error`.
///
/// The error (with its source chain) and `context` are logged at error level;
/// nothing of them reaches the caller.
pub fn internal(context: &str, err: &dyn std::error::Error) -> Status {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(context, error = %chain, "internal error");
    Status::internal("internal error")
}

/// The `(field path, description)` pairs of the `google.rpc.BadRequest`
/// carried by `status`, empty if it carries none. For clients and tests.
pub fn field_violations(status: &Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .map(|bad_request| {
            bad_request
                .field_violations
                .into_iter()
                .map(|violation| (violation.field, violation.description))
                .collect()
        })
        .unwrap_or_default()
}

fn with_retry(code: Code, message: String, retry_after: Option<Duration>) -> Status {
    match retry_after {
        Some(delay) => {
            Status::with_error_details(code, message, ErrorDetails::with_retry_info(Some(delay)))
        }
        None => Status::new(code, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_lists_violations() {
        let status = invalid_argument(
            "invalid template",
            [(
                "items[2].weight".to_owned(),
                "weights sum to 95, not 100".to_owned(),
            )],
        );
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "invalid template: items[2].weight: weights sum to 95, not 100"
        );
        assert_eq!(
            field_violations(&status),
            vec![(
                "items[2].weight".to_owned(),
                "weights sum to 95, not 100".to_owned()
            )]
        );
    }

    #[test]
    fn internal_hides_details() {
        let err = std::io::Error::other("disk on fire at /var/lib/secret");
        let status = internal("saving indicator", &err);
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn retry_info_is_attached() {
        let status = resource_exhausted("too many requests", Some(Duration::from_secs(2)));
        assert_eq!(status.code(), Code::ResourceExhausted);
        let retry = status
            .get_details_retry_info()
            .and_then(|info| info.retry_delay);
        assert_eq!(retry, Some(Duration::from_secs(2)));
        assert!(field_violations(&status).is_empty());
        assert_eq!(not_found("indicator x").message(), "indicator x not found");
    }
}
