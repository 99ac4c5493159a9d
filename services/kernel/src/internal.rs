//! Calls from one service to another's internal API (`/internal/...` on the admin listener,
//! which the gateway never exposes): chat asking ai for an answer, for instance.
//!
//! Where the other target runs decides how: in this process (`--target all`) the request goes
//! straight to its router, with no socket and no gateway in between; otherwise over HTTP to
//! `upstreams.<target>.admin`. Either way the caller sees the same `http` request and response,
//! streamed bodies included, so both modes behave alike.

use crate::config::{ConfigError, ConfigSource};
use axum::Router;
use axum::body::Body;
use futures::TryStreamExt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tower::ServiceExt;

/// The admin routers of every target in this process, set once they have all started.
pub type LocalRoutes = Arc<OnceLock<Router>>;

#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error("the {0} target has not started in this process yet")]
    NotStarted(&'static str),
    #[error("the {target} target could not be reached: {message}")]
    Unreachable {
        target: &'static str,
        message: String,
    },
    #[error("the request to {0} is invalid: {1}")]
    Request(&'static str, String),
}

#[derive(Clone)]
enum Way {
    InProcess(LocalRoutes),
    Http {
        client: reqwest::Client,
        base: String,
    },
}

/// A handle on one target's internal API.
#[derive(Clone)]
pub struct InternalClient {
    target: &'static str,
    way: Way,
}

impl InternalClient {
    /// In process when `target` is among `local_targets`, otherwise at `upstreams.<target>.admin`
    /// (a configuration error naming that key when it is missing).
    pub fn new(
        target: &'static str,
        local_targets: &[String],
        local: &LocalRoutes,
        config: &ConfigSource,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        if local_targets.iter().any(|t| t == target) {
            return Ok(Self::in_process(target, local.clone()));
        }
        let key = format!("upstreams.{target}.admin");
        let upstreams = crate::upstreams::read(config).map_err(|mut e| e.remove(0))?;
        let base = upstreams
            .get(target)
            .and_then(|u| u.admin.clone())
            .ok_or_else(|| {
                ConfigError::key(
                    &key,
                    format!("is required: the {target} target does not run in this process"),
                )
            })?;
        Ok(Self::http(target, &base.to_string(), timeout))
    }

    pub fn in_process(target: &'static str, routes: LocalRoutes) -> Self {
        Self {
            target,
            way: Way::InProcess(routes),
        }
    }

    /// `timeout` bounds a whole exchange, streamed body included.
    pub fn http(target: &'static str, base: &str, timeout: Duration) -> Self {
        Self {
            target,
            way: Way::Http {
                client: crate::http::client(timeout),
                base: base.trim_end_matches('/').to_owned(),
            },
        }
    }

    pub fn target(&self) -> &'static str {
        self.target
    }

    /// Sends `req` (its URI is a path: `/internal/ai/answer`); the answer's body streams.
    pub async fn send(
        &self,
        req: http::Request<Body>,
    ) -> Result<http::Response<Body>, InternalError> {
        match &self.way {
            Way::InProcess(routes) => {
                let router = routes
                    .get()
                    .cloned()
                    .ok_or(InternalError::NotStarted(self.target))?;
                match router.oneshot(req).await {
                    Ok(res) => Ok(res),
                    Err(never) => match never {},
                }
            }
            Way::Http { client, base } => {
                let (parts, body) = req.into_parts();
                let path = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
                    .await
                    .map_err(|e| InternalError::Request(self.target, e.to_string()))?;
                let res = client
                    .request(parts.method, format!("{base}{path}"))
                    .headers(parts.headers)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| InternalError::Unreachable {
                        target: self.target,
                        message: e.to_string(),
                    })?;
                let mut out = http::Response::builder().status(res.status());
                if let Some(h) = out.headers_mut() {
                    *h = res.headers().clone();
                }
                let stream = res.bytes_stream().map_err(std::io::Error::other);
                out.body(Body::from_stream(stream))
                    .map_err(|e| InternalError::Request(self.target, e.to_string()))
            }
        }
    }
}
