//! What chat asks of the ai service, over its internal API: an answer, streamed
//! (`POST /internal/ai/answer`), and passages for talent search (`POST /internal/ai/retrieve`).
//! The asker's own access token goes along; ai verifies it like any other request. So do the
//! request id and the trace, one hop further, so ai's log lines join the asker's request.

use axum::body::Body;
use futures::{Stream, StreamExt};
use kernel::Problem;
use kernel::ai_api::{self, AskBody, RetrieveRequest, RetrieveResponse};
use kernel::http::RequestContext;
use kernel::internal::InternalClient;
use kernel::sse::{DEFAULT_MAX_EVENT_BYTES, events};
use serde::{Deserialize, Serialize};

pub use kernel::ai_api::{Citation, Done, RetrievedChunk as Passage};

/// One step of an answer as it streams from ai.
#[derive(Debug, Clone)]
pub enum Step {
    Token(String),
    Citation(Citation),
    Done(Done),
    /// The answer failed after it started; `detail` says why.
    Failed(String),
}

#[derive(Clone)]
pub struct Ai {
    client: InternalClient,
}

fn unavailable(e: impl std::fmt::Display) -> Problem {
    Problem::UpstreamUnavailable(format!("The answering service is unavailable ({e})."))
}

/// ai's own problem answer, passed on when it is the asker's fault (a 4xx), otherwise 503.
async fn refused(res: http::Response<Body>) -> Problem {
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let detail = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or_else(|| status.to_string());
    if status == http::StatusCode::BAD_REQUEST {
        Problem::invalid(detail)
    } else {
        unavailable(detail)
    }
}

impl Ai {
    pub fn new(client: InternalClient) -> Self {
        Self { client }
    }

    /// `caller`: the asker's access token and, when there is one, the request being served.
    async fn post(
        &self,
        path: &str,
        (bearer, ctx): (&str, Option<&RequestContext>),
        body: &impl Serialize,
        accept: &str,
    ) -> Result<http::Response<Body>, Problem> {
        let body = serde_json::to_vec(body).map_err(Problem::internal)?;
        let mut req = http::Request::post(path)
            .header(http::header::AUTHORIZATION, format!("Bearer {bearer}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, accept)
            .body(Body::from(body))
            .map_err(Problem::internal)?;
        // The question's embedding in base64 (ignored by the retrieval route).
        req.headers_mut().insert(
            ai_api::EMBEDDING_HEADER,
            http::HeaderValue::from_static(ai_api::EMBEDDING_BASE64),
        );
        if let Some(ctx) = ctx {
            req.headers_mut().extend(ctx.outgoing_headers());
        }
        let res = self.client.send(req).await.map_err(unavailable)?;
        if res.status().is_success() {
            Ok(res)
        } else {
            Err(refused(res).await)
        }
    }

    /// Starts an answer: a failure before the stream (ai down, a bad question) is a problem;
    /// afterwards every failure is a [`Step::Failed`], and the stream always ends with `Done`
    /// or `Failed`.
    pub async fn answer(
        &self,
        caller: (&str, Option<&RequestContext>),
        ask: &AskBody,
    ) -> Result<impl Stream<Item = Step> + Send + use<>, Problem> {
        let res = self
            .post(ai_api::ANSWER_PATH, caller, ask, "text/event-stream")
            .await?;
        let stream = events(res.into_body().into_data_stream(), DEFAULT_MAX_EVENT_BYTES);
        let steps = stream
            .map(|e| match e {
                Ok(e) => step(&e.event, &e.data),
                Err(e) => Some(Step::Failed(e.to_string())),
            })
            .filter_map(futures::future::ready);
        // Whatever ai does, the caller sees exactly one end.
        let mut ended = false;
        let steps = steps
            .chain(futures::stream::once(async {
                Step::Failed("the answer ended without finishing".into())
            }))
            .take_while(move |s| {
                let go = !ended;
                if matches!(s, Step::Done(_) | Step::Failed(_)) {
                    ended = true;
                }
                futures::future::ready(go)
            });
        Ok(steps)
    }

    pub async fn retrieve(
        &self,
        caller: (&str, Option<&RequestContext>),
        query: &RetrieveRequest,
    ) -> Result<Vec<Passage>, Problem> {
        let res = self
            .post(ai_api::RETRIEVE_PATH, caller, query, "application/json")
            .await?;
        let body = axum::body::to_bytes(res.into_body(), 16 * 1024 * 1024)
            .await
            .map_err(unavailable)?;
        let r: RetrieveResponse = serde_json::from_slice(&body).map_err(unavailable)?;
        Ok(r.chunks)
    }
}

fn step(event: &str, data: &str) -> Option<Step> {
    #[derive(Deserialize)]
    struct Text {
        text: String,
    }
    let bad = |e: serde_json::Error| Step::Failed(format!("ai sent an unreadable {event}: {e}"));
    Some(match event {
        "token" => serde_json::from_str::<Text>(data).map_or_else(bad, |t| Step::Token(t.text)),
        "citation" => serde_json::from_str(data).map_or_else(bad, Step::Citation),
        "done" => serde_json::from_str(data).map_or_else(bad, Step::Done),
        "error" => Step::Failed(
            serde_json::from_str::<serde_json::Value>(data)
                .ok()
                .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "the answer failed".into()),
        ),
        // Keep-alive comments never reach here; unknown events are skipped for compatibility.
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::internal::LocalRoutes;
    use kernel::trace_context::TraceParent;
    use std::sync::{Arc, Mutex, OnceLock};

    /// ai's side is a router in this process that records what it was sent.
    #[tokio::test]
    async fn the_request_id_and_trace_go_along() {
        let seen: Arc<Mutex<Option<http::HeaderMap>>> = Arc::default();
        let record = Arc::clone(&seen);
        let router = axum::Router::new().route(
            ai_api::RETRIEVE_PATH,
            axum::routing::post(move |headers: http::HeaderMap| async move {
                *record.lock().unwrap_or_else(|e| e.into_inner()) = Some(headers);
                axum::Json(serde_json::json!({ "chunks": [] }))
            }),
        );
        let routes: LocalRoutes = Arc::new(OnceLock::new());
        let _ = routes.set(router);
        let ai = Ai::new(InternalClient::in_process("ai", routes));
        let ctx = RequestContext {
            request_id: "req-42".into(),
            trace: TraceParent::new_root(),
            client: None,
        };
        let query = RetrieveRequest {
            query: "rust".into(),
            owner_ids: vec![],
            k: 5,
            pinned_first: false,
        };
        let got = ai.retrieve(("token-1", Some(&ctx)), &query).await;
        assert!(got.is_ok_and(|c| c.is_empty()));
        let headers = seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("ai was called");
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(header("x-request-id"), Some("req-42"));
        assert_eq!(header("authorization"), Some("Bearer token-1"));
        let sent = header("traceparent")
            .and_then(TraceParent::parse)
            .expect("a traceparent");
        assert_eq!(sent.trace_id_hex(), ctx.trace.trace_id_hex(), "same trace");
        assert_ne!(
            sent.span_id_hex(),
            ctx.trace.span_id_hex(),
            "one hop further"
        );
    }
}
