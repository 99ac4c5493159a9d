//! HTTP routes; module paths mirror the URLs.

mod admin;
mod password_reset;
mod sessions;

use crate::AppState;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::{get, patch, post};
use kernel::Problem;
use kernel::http::{Json, RequestContext};
use kernel::tokens::{Claims, Role};
use serde::Serialize;
use std::convert::Infallible;
use std::net::IpAddr;

pub fn public(state: AppState) -> Router {
    Router::new()
        .route("/api/auth/signup", post(sessions::signup))
        .route("/api/auth/login", post(sessions::login))
        .route("/api/auth/refresh", post(sessions::refresh))
        .route("/api/auth/logout", post(sessions::logout))
        .route("/api/auth/guest", post(sessions::guest))
        .route("/api/auth/password-reset", post(password_reset::request))
        .route(
            "/api/auth/password-reset/confirm",
            post(password_reset::confirm),
        )
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(state)
}

pub fn admin(state: AppState) -> Router {
    Router::new()
        .route("/admin/api/users", get(admin::list_users))
        .route("/admin/api/users/{id}", patch(admin::change_role))
        .route("/admin/api/auth/keys/rotate", post(admin::rotate_keys))
        .with_state(state)
}

async fn jwks(State(s): State<AppState>) -> impl axum::response::IntoResponse {
    // Verifiers cache keys themselves; a short max-age keeps a rotation visible quickly.
    (
        [(axum::http::header::CACHE_CONTROL, "public, max-age=60")],
        Json(s.keys.jwks().await),
    )
}

/// Where the request came from (when it came through the standard layers), with the client's
/// address resolved through our trusted proxies.
pub(crate) struct Context {
    request: Option<RequestContext>,
    pub client: Option<IpAddr>,
}

impl FromRequestParts<AppState> for Context {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let request = parts.extensions.get::<RequestContext>().cloned();
        let client = kernel::client_address::of_request(parts, &state.trusted_proxies);
        Ok(Self { request, client })
    }
}

impl Context {
    pub fn get(&self) -> Option<&RequestContext> {
        self.request.as_ref()
    }

    /// The key for per-address backoff.
    pub fn client_ip(&self) -> String {
        self.client
            .map(|a| a.to_string())
            .unwrap_or_else(|| "unknown".into())
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub subject: String,
    pub role: Role,
}

/// Signs an access token for `sub` in `role`.
pub(crate) async fn access_token(
    s: &AppState,
    sub: &str,
    role: Role,
) -> Result<TokenResponse, Problem> {
    let now = chrono::Utc::now().timestamp();
    let ttl = s.config.access_ttl_secs.min(crate::MAX_ACCESS_TTL_SECS);
    let claims = Claims {
        sub: sub.to_owned(),
        role,
        iss: s.config.issuer.clone(),
        aud: s.config.audience.clone(),
        exp: now + ttl as i64,
        iat: now,
        nbf: None,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    let token = s.keys.sign(&claims).await.map_err(|e| match e {
        crate::keys::KeyError::NoSigner => Problem::UpstreamUnavailable(
            "Tokens cannot be issued yet; try again in a moment.".into(),
        ),
        other => Problem::internal(other),
    })?;
    Ok(TokenResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: None,
        subject: sub.to_owned(),
        role,
    })
}

pub(crate) fn hash_failed(e: crate::hashing::HashError) -> Problem {
    Problem::internal(e)
}
