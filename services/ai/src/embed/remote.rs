//! Remote embedding providers over HTTP: an OpenAI-compatible `/v1/embeddings` (OpenAI, vLLM,
//! Ollama, LM Studio, ...) and Google's Gemini `embedContent`.

use super::{EmbedError, Embedder, Purpose, normalise};
use futures::future::BoxFuture;
use kernel::Secret;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

pub struct OpenAiEmbedder {
    http: reqwest::Client,
    url: String,
    model: String,
    key: Option<Secret<String>>,
    dim: usize,
    name: String,
}

impl OpenAiEmbedder {
    pub fn new(base_url: &str, model: &str, key: Option<Secret<String>>, dim: usize) -> Self {
        Self {
            http: kernel::http::client(TIMEOUT),
            url: format!("{}/v1/embeddings", base_url.trim_end_matches('/')),
            model: model.to_owned(),
            key,
            dim,
            name: format!("openai:{model}"),
        }
    }
}

#[derive(Deserialize)]
struct OpenAiResponse {
    data: Vec<OpenAiItem>,
}
#[derive(Deserialize)]
struct OpenAiItem {
    index: usize,
    embedding: Vec<f32>,
}

fn check(v: &mut [f32], want: usize) -> Result<(), EmbedError> {
    if v.len() != want {
        return Err(EmbedError::Dimension { got: v.len(), want });
    }
    normalise(v);
    Ok(())
}

async fn fail(r: reqwest::Response) -> EmbedError {
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    EmbedError::Provider(format!(
        "{status}: {}",
        body.chars().take(300).collect::<String>()
    ))
}

impl Embedder for OpenAiEmbedder {
    fn dim(&self) -> usize {
        self.dim
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        _purpose: Purpose,
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>> {
        Box::pin(async move {
            let mut req = self.http.post(&self.url).json(&json!({
                "model": self.model,
                "input": texts,
                "dimensions": self.dim,
                "encoding_format": "float",
            }));
            if let Some(k) = &self.key {
                req = req.bearer_auth(k.expose());
            }
            let r = req
                .send()
                .await
                .map_err(|e| EmbedError::Provider(e.to_string()))?;
            if !r.status().is_success() {
                return Err(fail(r).await);
            }
            let body: OpenAiResponse = r
                .json()
                .await
                .map_err(|e| EmbedError::Provider(e.to_string()))?;
            let mut out = vec![Vec::new(); texts.len()];
            for mut item in body.data {
                check(&mut item.embedding, self.dim)?;
                if let Some(slot) = out.get_mut(item.index) {
                    *slot = item.embedding;
                }
            }
            if out.iter().any(Vec::is_empty) {
                return Err(EmbedError::Provider(
                    "a vector is missing from the answer".into(),
                ));
            }
            Ok(out)
        })
    }
}

pub struct GeminiEmbedder {
    http: reqwest::Client,
    url: String,
    key: Secret<String>,
    dim: usize,
    name: String,
}

impl GeminiEmbedder {
    pub fn new(base_url: &str, model: &str, key: Secret<String>, dim: usize) -> Self {
        Self {
            http: kernel::http::client(TIMEOUT),
            url: format!(
                "{}/v1beta/models/{model}:embedContent",
                base_url.trim_end_matches('/')
            ),
            key,
            dim,
            name: format!("gemini:{model}"),
        }
    }
}

#[derive(Deserialize)]
struct GeminiResponse {
    embedding: GeminiValues,
}
#[derive(Deserialize)]
struct GeminiValues {
    values: Vec<f32>,
}

impl Embedder for GeminiEmbedder {
    fn dim(&self) -> usize {
        self.dim
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        purpose: Purpose,
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>> {
        Box::pin(async move {
            let task = match purpose {
                Purpose::Query => "RETRIEVAL_QUERY",
                Purpose::Passage => "RETRIEVAL_DOCUMENT",
            };
            let mut out = Vec::with_capacity(texts.len());
            for t in texts {
                let r = self
                    .http
                    .post(&self.url)
                    .header("x-goog-api-key", self.key.expose())
                    .json(&json!({
                        "content": {"parts": [{"text": t}]},
                        "taskType": task,
                        "outputDimensionality": self.dim,
                    }))
                    .send()
                    .await
                    .map_err(|e| EmbedError::Provider(e.to_string()))?;
                if !r.status().is_success() {
                    return Err(fail(r).await);
                }
                let mut body: GeminiResponse = r
                    .json()
                    .await
                    .map_err(|e| EmbedError::Provider(e.to_string()))?;
                check(&mut body.embedding.values, self.dim)?;
                out.push(body.embedding.values);
            }
            Ok(out)
        })
    }
}
