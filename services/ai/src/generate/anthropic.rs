//! Anthropic's Messages API: `POST {base_url}/v1/messages` with `x-api-key`,
//! `anthropic-version: 2023-06-01`, `stream: true` and the rules in `system`.
//!
//! The stream is named events: `message_start`, `content_block_start`, `content_block_delta`
//! (text in `delta.text` when `delta.type` is `text_delta`), `content_block_stop`,
//! `message_delta`, `message_stop` (the end), `ping` (keep-alive) and `error` (for example
//! `overloaded_error` in the middle of an answer). Event types not listed here may be added by
//! Anthropic at any time and are skipped.

use super::remote::{self, End, Step, StreamFailure};
use super::{AnswerRequest, ChatModel, GenerateError, TokenStream, prompt};
use futures::future::BoxFuture;
use kernel::Secret;
use kernel::sse::Event;
use serde_json::{Value, json};

pub const API_VERSION: &str = "2023-06-01";
/// The API requires a limit; an answer for a chat widget needs far less than this.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// Settings of one Anthropic model (`ai.generation.anthropic`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnthropicConfig {
    #[serde(default = "default_base")]
    pub base_url: String,
    /// `claude-sonnet-4-5`, ...
    pub model: String,
    pub api_key: Secret<String>,
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Defaults to 1024 (the API requires a value).
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

fn default_base() -> String {
    "https://api.anthropic.com".into()
}

pub struct AnthropicChat {
    http: reqwest::Client,
    url: String,
    config: AnthropicConfig,
    name: String,
}

impl AnthropicChat {
    pub fn new(config: AnthropicConfig) -> Self {
        Self {
            http: remote::client(),
            url: format!("{}/v1/messages", config.base_url.trim_end_matches('/')),
            name: format!("anthropic:{}", config.model),
            config,
        }
    }

    fn body(&self, req: &AnswerRequest) -> Value {
        let p = prompt::build(req);
        let mut body = json!({
            "model": self.config.model,
            "max_tokens": self.config.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            "system": p.system,
            "messages": [{"role": "user", "content": p.user}],
            "stream": true,
        });
        if let Some(t) = self.config.temperature {
            body["temperature"] = json!(t);
        }
        body
    }
}

impl ChatModel for AnthropicChat {
    fn name(&self) -> &str {
        &self.name
    }

    fn answer(&self, req: AnswerRequest) -> BoxFuture<'_, Result<TokenStream, GenerateError>> {
        Box::pin(async move {
            let request = self
                .http
                .post(&self.url)
                .header("x-api-key", self.config.api_key.expose())
                .header("anthropic-version", API_VERSION)
                .json(&self.body(&req));
            let response = remote::send(request).await?;
            Ok(remote::tokens(response, End::Marker, parse))
        })
    }
}

fn parse(event: &Event) -> Result<Step, StreamFailure> {
    let data = remote::json(event)?;
    // The data repeats the event's name as `type`; either will do, the data is what the SDKs read.
    let kind = data
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or(event.event.as_str());
    match kind {
        "content_block_delta" => {
            let delta = data.get("delta");
            let is_text =
                delta.and_then(|d| d.get("type")).and_then(Value::as_str) == Some("text_delta");
            let text = delta
                .and_then(|d| d.get("text"))
                .and_then(Value::as_str)
                .filter(|_| is_text)
                .unwrap_or_default();
            Ok(Step::Text(text.to_owned()))
        }
        "message_stop" => Ok(Step::Done),
        "error" => {
            let kind = data
                .pointer("/error/type")
                .and_then(Value::as_str)
                .unwrap_or("error");
            let message = data
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Err(StreamFailure {
                transient: matches!(
                    kind,
                    "overloaded_error" | "api_error" | "rate_limit_error" | "timeout_error"
                ),
                message: format!("Anthropic reported {kind}: {message}"),
            })
        }
        // message_start, content_block_start/stop, message_delta, ping, and anything new.
        _ => Ok(Step::Skip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_event(name: &str, data: &str) -> Result<Step, StreamFailure> {
        parse(&Event {
            event: name.into(),
            data: data.into(),
            id: None,
        })
    }

    #[test]
    fn text_deltas_only() {
        let got = parse_event(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
        );
        assert!(matches!(got, Ok(Step::Text(t)) if t == "Hi"));
        let got = parse_event(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
        );
        assert!(matches!(got, Ok(Step::Text(t)) if t.is_empty()));
        assert!(matches!(
            parse_event("ping", r#"{"type": "ping"}"#),
            Ok(Step::Skip)
        ));
        assert!(matches!(
            parse_event("message_stop", r#"{"type":"message_stop"}"#),
            Ok(Step::Done)
        ));
    }

    #[test]
    fn error_events_say_whether_to_try_again() {
        let got = parse_event(
            "error",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert!(got.is_err_and(|f| f.transient && f.message.contains("Overloaded")));
        let got = parse_event(
            "error",
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}"#,
        );
        assert!(got.is_err_and(|f| !f.transient));
    }
}
