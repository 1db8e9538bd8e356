//! The bearer token on outbound calls: a service's own calls to the other
//! services (`KPI_SERVICE_TOKEN`) and `kpictl`'s calls (`--token`).
//!
//! [`BearerToken`] holds the token (never shown by `Debug`) as a ready
//! `authorization` header value; [`WithBearer`] is the tower service that
//! sets it on every request of a channel.

use std::fmt;
use std::task::{Context, Poll};

use http::HeaderValue;
use http::header::AUTHORIZATION;
use tonic::metadata::{Ascii, MetadataValue};
use tower::Service;

/// A bearer token, kept as its `authorization: Bearer …` header value.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken {
    header: HeaderValue,
    metadata: MetadataValue<Ascii>,
}

impl BearerToken {
    /// The token; refused when empty or not a valid header value.
    pub fn new(token: &str) -> Result<BearerToken, &'static str> {
        let token = token.trim();
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err("a non-empty token without spaces");
        }
        let value = format!("Bearer {token}");
        let invalid = "a token of visible ASCII characters";
        let mut header = HeaderValue::from_str(&value).map_err(|_| invalid)?;
        header.set_sensitive(true);
        let metadata = MetadataValue::try_from(value.as_str()).map_err(|_| invalid)?;
        Ok(BearerToken { header, metadata })
    }

    /// The `authorization` header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.header
    }

    /// As gRPC metadata, for a `tonic` interceptor.
    pub fn metadata_value(&self) -> &MetadataValue<Ascii> {
        &self.metadata
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(***)")
    }
}

/// Sets `authorization` on every request when it has a token; passes
/// requests through untouched otherwise.
#[derive(Debug, Clone)]
pub struct WithBearer<S> {
    inner: S,
    token: Option<BearerToken>,
}

impl<S> WithBearer<S> {
    /// Wraps `inner`, sending `token` (if any).
    pub fn new(inner: S, token: Option<BearerToken>) -> Self {
        Self { inner, token }
    }
}

impl<S, B> Service<http::Request<B>> for WithBearer<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if let Some(token) = &self.token {
            request
                .headers_mut()
                .insert(AUTHORIZATION, token.header.clone());
        }
        self.inner.call(request)
    }
}
