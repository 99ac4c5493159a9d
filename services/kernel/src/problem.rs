//! Errors over HTTP: RFC 9457 `application/problem+json`, one stable `type` per kind.
//!
//! Handlers return `Result<_, Problem>`. The body is rendered without `instance`; the request-id
//! layer fills it in (see [`crate::http`]), because `IntoResponse` cannot see the request.
//! Internal errors are logged with their cause and answered with a generic text: nothing about
//! our internals crosses the wire.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
const TYPE_BASE: &str = "https://protostar.dev/problems/";

/// One field that failed validation, in the `errors` list of `invalid-request`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("invalid request: {detail}")]
    InvalidRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("quota exceeded")]
    QuotaExceeded {
        detail: String,
        limit: u32,
        resets_at: Option<DateTime<Utc>>,
    },
    #[error("rate limited")]
    RateLimited { retry_after: Duration },
    #[error("upstream unavailable: {0}")]
    UpstreamUnavailable(String),
    /// The cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(#[source] anyhow::Error),
}

impl Problem {
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::InvalidRequest {
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        Self::InvalidRequest {
            detail: "Some fields are invalid.".into(),
            errors,
        }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    /// The short stable name in `type`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "invalid-request",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge(_) => "payload-too-large",
            Self::UnsupportedMediaType(_) => "unsupported-media-type",
            Self::QuotaExceeded { .. } => "quota-exceeded",
            Self::RateLimited { .. } => "rate-limited",
            Self::UpstreamUnavailable(_) => "upstream-unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::QuotaExceeded { .. } | Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::UpstreamUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "The request is invalid",
            Self::Unauthenticated(_) => "Authentication is required",
            Self::Forbidden(_) => "This is not allowed for you",
            Self::NotFound(_) => "Not found",
            Self::Conflict(_) => "Conflict with the current state",
            Self::PayloadTooLarge(_) => "The request body is too large",
            Self::UnsupportedMediaType(_) => "Unsupported media type",
            Self::QuotaExceeded { .. } => "Question quota exceeded",
            Self::RateLimited { .. } => "Too many requests",
            Self::UpstreamUnavailable(_) => "A service is unavailable",
            Self::Internal(_) => "Internal error",
        }
    }

    /// The body as sent, with `instance` left for the request-id layer.
    pub fn body(&self) -> ProblemBody {
        let detail = match self {
            Self::InvalidRequest { detail, .. } | Self::QuotaExceeded { detail, .. } => {
                detail.clone()
            }
            Self::Unauthenticated(d)
            | Self::Forbidden(d)
            | Self::NotFound(d)
            | Self::Conflict(d)
            | Self::PayloadTooLarge(d)
            | Self::UnsupportedMediaType(d)
            | Self::UpstreamUnavailable(d) => d.clone(),
            Self::RateLimited { retry_after } => {
                format!(
                    "Slow down; try again in {} s.",
                    retry_after.as_secs().max(1)
                )
            }
            Self::Internal(_) => "Something went wrong on our side; it has been logged.".into(),
        };
        let mut body = ProblemBody {
            r#type: format!("{TYPE_BASE}{}", self.name()),
            title: self.title().into(),
            status: self.status().as_u16(),
            detail,
            instance: None,
            errors: None,
            limit: None,
            remaining: None,
            resets_at: None,
        };
        match self {
            Self::InvalidRequest { errors, .. } => body.errors = Some(errors.clone()),
            Self::QuotaExceeded {
                limit, resets_at, ..
            } => {
                body.limit = Some(*limit);
                body.remaining = Some(0);
                body.resets_at = *resets_at;
            }
            _ => {}
        }
        body
    }
}

/// The wire form of a problem. Services that proxy or test problems read it back with serde.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProblemBody {
    pub r#type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<DateTime<Utc>>,
}

impl ProblemBody {
    pub fn into_response_with_instance(mut self, instance: Option<String>) -> Response {
        self.instance = instance;
        let json = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, json).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        res
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let body = self.body();
        let mut res = body.clone().into_response_with_instance(None);
        if let Self::RateLimited { retry_after } = &self {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res.extensions_mut().insert(body);
        res
    }
}

impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn render(p: Problem) -> (StatusCode, http::HeaderMap, serde_json::Value) {
        let res = p.into_response();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn internal_errors_leak_nothing() {
        let (status, headers, body) = render(Problem::internal(anyhow::anyhow!(
            "password authentication failed for user postgres"
        )))
        .await;
        assert_eq!(status, 500);
        assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_CONTENT_TYPE);
        assert_eq!(body["type"], "https://protostar.dev/problems/internal");
        assert!(!body.to_string().contains("postgres"));
    }

    #[tokio::test]
    async fn quota_and_rate_limits_carry_their_fields() {
        let at = "2026-11-26T15:00:00Z".parse().unwrap();
        let (status, _, body) = render(Problem::QuotaExceeded {
            detail: "3 questions for guests".into(),
            limit: 3,
            resets_at: Some(at),
        })
        .await;
        assert_eq!(status, 429);
        assert_eq!(body["limit"], 3);
        assert_eq!(body["remaining"], 0);
        assert_eq!(body["resetsAt"], "2026-11-26T15:00:00Z");

        let (status, headers, body) = render(Problem::RateLimited {
            retry_after: Duration::from_millis(1500),
        })
        .await;
        assert_eq!(status, 429);
        assert_eq!(headers[header::RETRY_AFTER], "2");
        assert_eq!(body["type"], "https://protostar.dev/problems/rate-limited");
    }

    #[tokio::test]
    async fn field_errors_are_listed() {
        let (status, _, body) = render(Problem::invalid_fields(vec![FieldError::new(
            "password",
            "must have at least 10 characters",
        )]))
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["errors"][0]["field"], "password");
    }
}
