//! An OpenAI-compatible chat model: `POST {base_url}/v1/chat/completions` with `stream: true`.
//! This is how gpt-oss-120b is served by vLLM, Ollama and hosted providers, and OpenAI itself.
//!
//! The answer arrives as data-only server-sent events, each a `chat.completion.chunk` whose
//! `choices[0].delta.content` is the next piece of text, ended by `data: [DONE]`. Reasoning
//! models (gpt-oss) also stream their reasoning in other delta fields (`reasoning_content`,
//! `reasoning`); those are never passed on: a recruiter sees the answer only.

use super::remote::{self, End, Step, StreamFailure};
use super::{AnswerRequest, ChatModel, GenerateError, TokenStream, prompt};
use futures::future::BoxFuture;
use kernel::Secret;
use kernel::sse::Event;
use serde_json::{Value, json};

/// Settings of one OpenAI-compatible model (`ai.generation.openai`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// The server's address without `/v1` (`http://vllm:8000`, `https://api.openai.com`).
    pub base_url: String,
    /// `gpt-oss-120b`, `openai/gpt-oss-120b`, ...
    pub model: String,
    /// Sent as `Authorization: Bearer`; local servers usually need none.
    #[serde(default)]
    pub api_key: Option<Secret<String>>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

pub struct OpenAiChat {
    http: reqwest::Client,
    url: String,
    config: OpenAiConfig,
    name: String,
}

impl OpenAiChat {
    pub fn new(config: OpenAiConfig) -> Self {
        Self {
            http: remote::client(),
            url: format!(
                "{}/v1/chat/completions",
                config.base_url.trim_end_matches('/')
            ),
            name: format!("openai:{}", config.model),
            config,
        }
    }

    fn body(&self, req: &AnswerRequest) -> Value {
        let p = prompt::build(req);
        let mut body = json!({
            "model": self.config.model,
            "messages": [
                {"role": "system", "content": p.system},
                {"role": "user", "content": p.user},
            ],
            "stream": true,
        });
        if let Some(t) = self.config.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(m) = self.config.max_tokens {
            body["max_tokens"] = json!(m);
        }
        body
    }
}

impl ChatModel for OpenAiChat {
    fn name(&self) -> &str {
        &self.name
    }

    fn answer(&self, req: AnswerRequest) -> BoxFuture<'_, Result<TokenStream, GenerateError>> {
        Box::pin(async move {
            let mut request = self.http.post(&self.url).json(&self.body(&req));
            if let Some(key) = &self.config.api_key {
                request = request.bearer_auth(key.expose());
            }
            let response = remote::send(request).await?;
            Ok(remote::tokens(response, End::Marker, parse))
        })
    }
}

/// One event of the stream.
fn parse(event: &Event) -> Result<Step, StreamFailure> {
    if event.data.trim() == "[DONE]" {
        return Ok(Step::Done);
    }
    let chunk = remote::json(event)?;
    // vLLM and others report a failure inside the stream as `{"error": {...}}`.
    if let Some(error) = chunk.get("error") {
        let code = error
            .get("code")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        return Err(StreamFailure {
            transient: code == 429 || code >= 500,
            message: format!("the server reported an error: {message}"),
        });
    }
    // A chunk without choices carries usage figures only.
    let text = chunk
        .pointer("/choices/0/delta/content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok(Step::Text(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &str) -> Event {
        Event {
            event: "message".into(),
            data: data.into(),
            id: None,
        }
    }

    #[test]
    fn reads_content_and_skips_reasoning_and_usage() {
        let text = |d: &str| match parse(&event(d)) {
            Ok(Step::Text(t)) => Some(t),
            _ => None,
        };
        assert_eq!(
            text(r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#).as_deref(),
            Some("Hel")
        );
        assert_eq!(
            text(r#"{"choices":[{"index":0,"delta":{"reasoning_content":"think"}}]}"#).as_deref(),
            Some("")
        );
        assert_eq!(
            text(r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}"#)
                .as_deref(),
            Some("")
        );
        assert_eq!(
            text(r#"{"choices":[],"usage":{"total_tokens":9}}"#).as_deref(),
            Some("")
        );
        assert!(matches!(parse(&event("[DONE]")), Ok(Step::Done)));
    }

    #[test]
    fn errors_in_the_stream_are_failures() {
        let f = parse(&event(r#"{"error":{"message":"overloaded","code":503}}"#)).err();
        assert!(f.is_some_and(|f| f.transient));
        let f = parse(&event(r#"{"error":{"message":"bad","code":400}}"#)).err();
        assert!(f.is_some_and(|f| !f.transient));
        assert!(parse(&event("{not json")).is_err());
    }
}
