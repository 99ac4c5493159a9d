//! What the remote models share: sending the request, telling a passing failure from a refusal
//! by the HTTP status, and turning the provider's event stream into a [`TokenStream`].
//!
//! Errors follow one rule, so that [`super::resilient`] can decide what to do with them:
//! no connection, a timeout, `408`, `429` or `5xx` is [`GenerateError::Unavailable`] (worth
//! another try); any other refusal is [`GenerateError::Refused`]; once text has been produced,
//! any failure is [`GenerateError::Interrupted`] (a half-sent answer is not repeated).

use super::{GenerateError, TokenStream};
use futures::stream::{self, StreamExt};
use kernel::sse::{self, Event, SseError};
use std::time::Duration;

/// Longest a whole answer may take, connection to last token. Tighter limits (first token,
/// between tokens) are [`super::resilient`]'s; this one only keeps a forgotten stream from
/// holding a connection for ever.
pub const ANSWER_CAP: Duration = Duration::from_secs(300);

/// The largest single event a provider may send.
const MAX_EVENT_BYTES: usize = 256 * 1024;

/// What one provider event meant.
pub enum Step {
    /// The next piece of the answer (may be empty: nothing to pass on).
    Text(String),
    /// Bookkeeping (a start marker, a keep-alive, usage figures): nothing to pass on.
    Skip,
    /// The provider said the answer is complete.
    Done,
}

/// A failure reported inside the stream, before we know whether any text came.
pub struct StreamFailure {
    /// Overloaded or similar: worth another try if nothing was said yet.
    pub transient: bool,
    pub message: String,
}

/// The HTTP client for one model.
pub fn client() -> reqwest::Client {
    kernel::http::client(ANSWER_CAP)
}

/// Sends the request and returns the response if its status is a success and its body an
/// event stream.
pub async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, GenerateError> {
    let response = request
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(|e| GenerateError::Unavailable(describe(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let body = read_start(response).await;
        let detail = format!("{status}: {}", excerpt(&body));
        return Err(
            if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
                GenerateError::Unavailable(detail)
            } else {
                GenerateError::Refused(detail)
            },
        );
    }
    // A server that ignored `stream: true` answers one JSON document; better to say so than to
    // wait for events that never come.
    if let Some(kind) = response.headers().get(reqwest::header::CONTENT_TYPE) {
        let kind = kind.to_str().unwrap_or_default().to_ascii_lowercase();
        if !kind.starts_with("text/event-stream") {
            return Err(GenerateError::Refused(format!(
                "{status} with {kind}, not an event stream"
            )));
        }
    }
    Ok(response)
}

/// The first few kilobytes of an error body: enough for the provider's explanation, and a
/// peer cannot make us read (or hold) a huge one.
async fn read_start(mut response: reqwest::Response) -> String {
    const LIMIT: usize = 4096;
    let mut bytes = Vec::new();
    while bytes.len() < LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                bytes.extend_from_slice(&chunk[..chunk.len().min(LIMIT - bytes.len())])
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Whether the provider ends its stream with an explicit marker (OpenAI's `[DONE]`,
/// Anthropic's `message_stop`) or simply closes it (Gemini).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Marker,
    Close,
}

/// Turns a response's events into text. `parse` reads one event; a `StreamFailure` it returns
/// ends the stream.
pub fn tokens<F>(response: reqwest::Response, end: End, parse: F) -> TokenStream
where
    F: FnMut(&Event) -> Result<Step, StreamFailure> + Send + 'static,
{
    struct State<S, F> {
        events: S,
        parse: F,
        started: bool,
        finished: bool,
    }
    let state = State {
        events: Box::pin(sse::response_events(response, MAX_EVENT_BYTES)),
        parse,
        started: false,
        finished: false,
    };
    stream::unfold(state, move |mut st| async move {
        if st.finished {
            return None;
        }
        loop {
            let failure = match st.events.next().await {
                None if end == End::Close => return None,
                None => {
                    "the stream ended before the provider said the answer was complete".to_owned()
                }
                Some(Err(e)) => describe_sse(&e),
                Some(Ok(event)) => match (st.parse)(&event) {
                    Ok(Step::Text(t)) if t.is_empty() => continue,
                    Ok(Step::Text(t)) => {
                        st.started = true;
                        return Some((Ok(t), st));
                    }
                    Ok(Step::Skip) => continue,
                    Ok(Step::Done) => return None,
                    Err(f) => {
                        st.finished = true;
                        let e = if st.started {
                            GenerateError::Interrupted(f.message)
                        } else if f.transient {
                            GenerateError::Unavailable(f.message)
                        } else {
                            GenerateError::Refused(f.message)
                        };
                        return Some((Err(e), st));
                    }
                },
            };
            st.finished = true;
            // Before any text the model simply did not answer, and another try may work.
            let e = if st.started {
                GenerateError::Interrupted(failure)
            } else {
                GenerateError::Unavailable(failure)
            };
            return Some((Err(e), st));
        }
    })
    .boxed()
}

/// A JSON event body, or a refusal naming what could not be read.
pub fn json(event: &Event) -> Result<serde_json::Value, StreamFailure> {
    serde_json::from_str(&event.data).map_err(|e| StreamFailure {
        transient: false,
        message: format!("an event is not JSON ({e}): {}", excerpt(&event.data)),
    })
}

fn describe(e: &reqwest::Error) -> String {
    // reqwest's own message hides the cause ("error sending request"); the chain tells it.
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

fn describe_sse(e: &SseError) -> String {
    e.to_string()
}

/// The start of a body, for error messages: providers explain refusals there, but a log line
/// need not carry a whole HTML error page.
pub fn excerpt(body: &str) -> String {
    let mut s: String = body.chars().take(300).collect();
    if s.len() < body.len() {
        s.push('…');
    }
    s.replace(['\n', '\r'], " ")
}
