//! What user asks of the chat service, over its internal API: the account's chat data for the
//! export (`GET /internal/chat/export`). The caller's own access token goes along; chat verifies
//! it like any other request and answers for the token's subject only.

use axum::body::Body;
use axum::http::{self, HeaderMap, header};
use kernel::Problem;
use kernel::internal::InternalClient;
use serde_json::Value;

pub const EXPORT_PATH: &str = "/internal/chat/export";

/// The longest an export may take in chat.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Clone)]
pub struct Chat {
    client: InternalClient,
}

fn unavailable(e: impl std::fmt::Display) -> Problem {
    Problem::UpstreamUnavailable(format!("The chat service is unavailable ({e})."))
}

/// The bearer token of a request, as it came (the gateway has checked it; chat checks it again).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl Chat {
    pub fn new(client: InternalClient) -> Self {
        Self { client }
    }

    /// Everything chat keeps for the token's account; any failure is `503`, never a part.
    pub async fn export(&self, bearer: &str) -> Result<Value, Problem> {
        let req = http::Request::get(EXPORT_PATH)
            .header(header::AUTHORIZATION, format!("Bearer {bearer}"))
            .header(header::ACCEPT, "application/json")
            .body(Body::empty())
            .map_err(Problem::internal)?;
        let res = self.client.send(req).await.map_err(unavailable)?;
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 64 * 1024 * 1024)
            .await
            .map_err(unavailable)?;
        if !status.is_success() {
            let detail = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
                .unwrap_or_else(|| status.to_string());
            return Err(unavailable(detail));
        }
        serde_json::from_slice(&body).map_err(unavailable)
    }
}
