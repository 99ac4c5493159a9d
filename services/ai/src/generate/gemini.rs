//! Google's Gemini: `POST {base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse` with
//! the key in `x-goog-api-key`, the rules in `systemInstruction` and the passages and question
//! as the one `user` turn of `contents`.
//!
//! With `alt=sse` each event's data is a whole `GenerateContentResponse`; the text is in
//! `candidates[0].content.parts[*].text`. There is no end marker: the stream closing after a
//! complete event is the end. Parts marked `thought` (a thinking model's reasoning) are not
//! passed on.

use super::remote::{self, End, Step, StreamFailure};
use super::{AnswerRequest, ChatModel, GenerateError, TokenStream, prompt};
use futures::future::BoxFuture;
use kernel::Secret;
use kernel::sse::Event;
use serde_json::{Value, json};

/// Settings of one Gemini model (`ai.generation.gemini`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeminiConfig {
    #[serde(default = "default_base")]
    pub base_url: String,
    /// `gemini-2.5-flash`, ...
    pub model: String,
    pub api_key: Secret<String>,
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Sent as `generationConfig.maxOutputTokens`.
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

fn default_base() -> String {
    "https://generativelanguage.googleapis.com".into()
}

pub struct GeminiChat {
    http: reqwest::Client,
    url: String,
    config: GeminiConfig,
    name: String,
}

impl GeminiChat {
    pub fn new(config: GeminiConfig) -> Self {
        Self {
            http: remote::client(),
            url: format!(
                "{}/v1beta/models/{}:streamGenerateContent?alt=sse",
                config.base_url.trim_end_matches('/'),
                config.model
            ),
            name: format!("gemini:{}", config.model),
            config,
        }
    }

    fn body(&self, req: &AnswerRequest) -> Value {
        let p = prompt::build(req);
        let mut generation = serde_json::Map::new();
        if let Some(t) = self.config.temperature {
            generation.insert("temperature".into(), json!(t));
        }
        if let Some(m) = self.config.max_tokens {
            generation.insert("maxOutputTokens".into(), json!(m));
        }
        let mut body = json!({
            "systemInstruction": {"parts": [{"text": p.system}]},
            "contents": [{"role": "user", "parts": [{"text": p.user}]}],
        });
        if !generation.is_empty() {
            body["generationConfig"] = Value::Object(generation);
        }
        body
    }
}

impl ChatModel for GeminiChat {
    fn name(&self) -> &str {
        &self.name
    }

    fn answer(&self, req: AnswerRequest) -> BoxFuture<'_, Result<TokenStream, GenerateError>> {
        Box::pin(async move {
            let request = self
                .http
                .post(&self.url)
                .header("x-goog-api-key", self.config.api_key.expose())
                .json(&self.body(&req));
            let response = remote::send(request).await?;
            Ok(remote::tokens(response, End::Close, parse))
        })
    }
}

fn parse(event: &Event) -> Result<Step, StreamFailure> {
    let chunk = remote::json(event)?;
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
            message: format!("Gemini reported an error: {message}"),
        });
    }
    // A blocked prompt comes back with a reason and no candidates.
    if let Some(reason) = chunk
        .pointer("/promptFeedback/blockReason")
        .and_then(Value::as_str)
    {
        return Err(StreamFailure {
            transient: false,
            message: format!("Gemini blocked the prompt: {reason}"),
        });
    }
    let mut text = String::new();
    if let Some(parts) = chunk
        .pointer("/candidates/0/content/parts")
        .and_then(Value::as_array)
    {
        for part in parts {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(t) = part.get("text").and_then(Value::as_str) {
                text.push_str(t);
            }
        }
    }
    Ok(Step::Text(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_data(data: &str) -> Result<Step, StreamFailure> {
        parse(&Event {
            event: "message".into(),
            data: data.into(),
            id: None,
        })
    }

    #[test]
    fn joins_the_parts_and_skips_thoughts() {
        let got = parse_data(
            r#"{"candidates":[{"content":{"role":"model","parts":[
                {"text":"plan","thought":true},{"text":"Jane "},{"text":"led"}]}}]}"#,
        );
        assert!(matches!(got, Ok(Step::Text(t)) if t == "Jane led"));
        let got = parse_data(r#"{"usageMetadata":{"totalTokenCount":3}}"#);
        assert!(matches!(got, Ok(Step::Text(t)) if t.is_empty()));
    }

    #[test]
    fn blocks_and_errors_are_failures() {
        let got = parse_data(r#"{"promptFeedback":{"blockReason":"SAFETY"}}"#);
        assert!(got.is_err_and(|f| !f.transient));
        let got =
            parse_data(r#"{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}"#);
        assert!(got.is_err_and(|f| f.transient));
    }
}
