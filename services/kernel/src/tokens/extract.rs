//! The caller of a request, verified by this service itself. The gateway verifies too, but a
//! service never trusts a forwarded identity header: it checks the bearer token again.

use super::claims::{Claims, Role};
use super::verifier::TokenVerifier;
use crate::problem::Problem;
use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use std::sync::Arc;

/// A verified caller. Extracting it answers `401 unauthenticated` when the token is missing or
/// invalid.
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl Caller {
    pub fn subject(&self) -> &str {
        &self.0.sub
    }

    pub fn role(&self) -> Role {
        self.0.role
    }

    /// `403 forbidden` unless the caller's role includes `role`.
    pub fn require(&self, role: Role) -> Result<(), Problem> {
        if self.0.role.includes(role) {
            Ok(())
        } else {
            Err(Problem::Forbidden(format!("This needs the {role} role.")))
        }
    }
}

fn bearer(parts: &Parts) -> Option<Result<&str, Problem>> {
    let value = parts.headers.get(AUTHORIZATION)?;
    let Some(token) = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Some(Err(Problem::Unauthenticated(
            "Send the access token as `Authorization: Bearer <token>`.".into(),
        )));
    };
    Some(Ok(token))
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match <Caller as OptionalFromRequestParts<S>>::from_request_parts(parts, state).await? {
            Some(c) => Ok(c),
            None => Err(Problem::Unauthenticated(
                "This needs an access token.".into(),
            )),
        }
    }
}

/// `Option<Caller>`: no token is fine (a public page), a bad token is still `401`.
impl<S> OptionalFromRequestParts<S> for Caller
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let Some(token) = bearer(parts) else {
            return Ok(None);
        };
        let verifier = Arc::<TokenVerifier>::from_ref(state);
        match verifier.verify(token?).await {
            Ok(claims) => Ok(Some(Caller(claims))),
            Err(super::TokenError::KeysUnavailable(e)) => Err(Problem::UpstreamUnavailable(
                format!("Tokens cannot be checked right now ({e})."),
            )),
            Err(e) => Err(Problem::Unauthenticated(format!(
                "The access token is not valid: {e}."
            ))),
        }
    }
}
