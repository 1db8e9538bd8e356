//! The server recipe's authentication layer.
//!
//! For every request: health and reflection pass untouched; otherwise the
//! bearer token in `authorization` is authenticated (`UNAUTHENTICATED` when
//! missing or not valid), the caller's role is checked against
//! [`super::policy`] (`PERMISSION_DENIED`), and the [`Caller`] is put into
//! the request extensions for the handlers' tenant checks
//! ([`super::tenancy`]). With `KPI_AUTH=off` every request carries
//! [`Caller::unauthenticated_open`].
//!
//! Rejections are answered here, before the request body is read, as
//! trailers-only gRPC responses.

use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use http::header::AUTHORIZATION;
use tonic::Status;
use tower::{Layer, Service};

use super::policy::{Access, access};
use super::{Caller, ServerAuth};

/// Adds [`AuthGuard`] to a server.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    auth: ServerAuth,
}

impl AuthLayer {
    /// A layer enforcing `auth`.
    pub fn new(auth: ServerAuth) -> Self {
        Self { auth }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthGuard {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct AuthGuard<S> {
    inner: S,
    auth: ServerAuth,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for AuthGuard<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Self::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        match admit(&self.auth, &request) {
            Ok(Some(caller)) => {
                request.extensions_mut().insert(caller);
                Either::Right(self.inner.call(request))
            }
            Ok(None) => Either::Right(self.inner.call(request)),
            Err(status) => Either::Left(ready(Ok(status.into_http()))),
        }
    }
}

/// The caller to attach (`None` for open services), or the rejection.
fn admit<B>(auth: &ServerAuth, request: &http::Request<B>) -> Result<Option<Caller>, Status> {
    let path = request.uri().path();
    let roles = match access(path) {
        Access::Open => return Ok(None),
        Access::Roles(roles) => roles,
        Access::Unlisted => &[],
    };
    let authenticator = match auth {
        ServerAuth::Off => return Ok(Some(Caller::unauthenticated_open())),
        ServerAuth::Required(authenticator) => authenticator,
    };
    let caller = bearer_token(request.headers())
        .and_then(|token| authenticator.authenticate(token))
        .inspect_err(|status| {
            tracing::debug!(path, reason = status.message(), "unauthenticated")
        })?;
    if !roles.contains(&caller.role) {
        tracing::info!(key_id = %caller.key_id, role = %caller.role, path, "role not allowed");
        return Err(Status::permission_denied(format!(
            "role {} may not call {}",
            caller.role,
            path.trim_start_matches('/')
        )));
    }
    Ok(Some(caller))
}

/// The token of `authorization: Bearer <token>`.
fn bearer_token(headers: &http::HeaderMap) -> Result<&str, Status> {
    let value = headers.get(AUTHORIZATION).ok_or_else(|| {
        Status::unauthenticated("missing `authorization: Bearer <token>` metadata")
    })?;
    let value = value
        .to_str()
        .map_err(|_| Status::unauthenticated("the authorization metadata is not readable text"))?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| Status::unauthenticated("expected `authorization: Bearer <token>`"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(Status::unauthenticated(
            "expected `authorization: Bearer <token>`",
        ));
    }
    Ok(token)
}
