//! `GET /api/openapi.json`: the OpenAPI 3.1 description of every endpoint, kept beside the
//! gateway (`services/gateway/openapi.json`) because the gateway owns the URL space. It is
//! compiled in, so a binary always describes the routes it was built with.

use axum::http::header;
use axum::response::{IntoResponse, Response};

pub const DOCUMENT: &str = include_str!("../openapi.json");

pub fn answer() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            // It changes only with the binary: a few minutes keep a new version visible soon.
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        DOCUMENT,
    )
        .into_response()
}
