//! Embeddings behind one trait. Providers: `local` (a BERT-family model folder on candle's CPU
//! backend; the default, offline), an OpenAI-compatible `/v1/embeddings`, and Gemini's
//! `embedContent`. Every provider returns L2-normalised vectors of `dim()` values.

pub mod bert;
pub mod convert;
mod queries;

pub(crate) use queries::Cache as VectorCache;
mod remote;
pub mod tokenize;

pub use remote::{GeminiEmbedder, OpenAiEmbedder};

use futures::future::BoxFuture;
use kernel::Secret;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// E5-style models embed questions and passages with different prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Query,
    Passage,
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("loading the model from {0}: {1}")]
    Load(PathBuf, String),
    #[error("the model failed: {0}")]
    Model(String),
    #[error("the embedding provider failed: {0}")]
    Provider(String),
    #[error("the provider answered {got} values per vector, the index holds {want}")]
    Dimension { got: usize, want: usize },
}

pub trait Embedder: Send + Sync {
    /// Values per vector.
    fn dim(&self) -> usize;
    /// A name for logs and the index (`local:multilingual-e5-small`).
    fn name(&self) -> &str;
    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        purpose: Purpose,
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>>;
}

/// Config key `ai.embedding`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case", deny_unknown_fields)]
pub enum EmbeddingConfig {
    Local {
        /// A model folder (config.json, model.safetensors, a tokenizer); see `scripts/models.sh`.
        model_dir: PathBuf,
        #[serde(default = "default_batch")]
        batch: usize,
    },
    Openai {
        base_url: String,
        model: String,
        #[serde(default)]
        api_key: Option<Secret<String>>,
        #[serde(default = "default_dim")]
        dimensions: usize,
    },
    Gemini {
        #[serde(default = "gemini_base")]
        base_url: String,
        model: String,
        api_key: Secret<String>,
        #[serde(default = "default_dim")]
        dimensions: usize,
    },
}

fn default_batch() -> usize {
    16
}
fn default_dim() -> usize {
    384
}
fn gemini_base() -> String {
    "https://generativelanguage.googleapis.com".into()
}

/// Where the container image keeps the models it ships (see `gitops/Dockerfile`).
pub const IMAGE_MODELS_DIR: &str = "/usr/share/protostar/models";
/// Where `scripts/models.sh` provisions them on a development machine.
pub const SCRIPT_MODELS_DIR: &str = "/var/tmp/protostar-tools/models";

/// The provisioned default model folder: `$PROTOSTAR_MODELS_DIR` (the scripts' variable), the
/// image's folder when it exists, the scripts' default otherwise.
pub fn default_model_dir() -> PathBuf {
    let base = std::env::var_os("PROTOSTAR_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let image = PathBuf::from(IMAGE_MODELS_DIR);
            if image.join("multilingual-e5-small").is_dir() {
                image
            } else {
                PathBuf::from(SCRIPT_MODELS_DIR)
            }
        });
    base.join("multilingual-e5-small")
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        Self::Local {
            model_dir: default_model_dir(),
            batch: default_batch(),
        }
    }
}

pub async fn from_config(c: &EmbeddingConfig) -> Result<Arc<dyn Embedder>, EmbedError> {
    Ok(match c {
        EmbeddingConfig::Local { model_dir, batch } => Arc::new(LazyLocal::new(model_dir, *batch)?),
        EmbeddingConfig::Openai {
            base_url,
            model,
            api_key,
            dimensions,
        } => Arc::new(OpenAiEmbedder::new(
            base_url,
            model,
            api_key.clone(),
            *dimensions,
        )),
        EmbeddingConfig::Gemini {
            base_url,
            model,
            api_key,
            dimensions,
        } => Arc::new(GeminiEmbedder::new(
            base_url,
            model,
            api_key.clone(),
            *dimensions,
        )),
    })
}

/// A local model loaded on first use: a process that runs every target but never ingests or
/// retrieves does not pay for reading 470 MB of weights. The folder is checked at start-up so
/// that a missing model is a configuration error, not a surprise at the first upload.
pub struct LazyLocal {
    dir: PathBuf,
    batch: usize,
    dim: usize,
    name: String,
    model: tokio::sync::OnceCell<Arc<LocalEmbedder>>,
}

impl LazyLocal {
    pub fn new(dir: &Path, batch: usize) -> Result<Self, EmbedError> {
        let err = |e: String| {
            EmbedError::Load(
                dir.to_owned(),
                format!("{e} (provision the models with scripts/models.sh)"),
            )
        };
        let config = std::fs::read(dir.join("config.json")).map_err(|e| err(e.to_string()))?;
        let config: bert::BertConfig =
            serde_json::from_slice(&config).map_err(|e| err(e.to_string()))?;
        if !dir.join("model.safetensors").is_file() {
            return Err(err("model.safetensors is missing".into()));
        }
        Ok(Self {
            dir: dir.to_owned(),
            batch,
            dim: config.hidden_size,
            name: local_name(dir),
            model: tokio::sync::OnceCell::new(),
        })
    }

    async fn model(&self) -> Result<&Arc<LocalEmbedder>, EmbedError> {
        self.model
            .get_or_try_init(|| async {
                let dir = self.dir.clone();
                let batch = self.batch;
                let m = tokio::task::spawn_blocking(move || LocalEmbedder::load(&dir, batch))
                    .await
                    .map_err(|e| EmbedError::Model(e.to_string()))??;
                tracing::info!(model = %self.name, "embedding model loaded");
                Ok(Arc::new(m))
            })
            .await
    }
}

impl Embedder for LazyLocal {
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
        Box::pin(async move { self.model().await?.embed(texts, purpose).await })
    }
}

fn local_name(dir: &Path) -> String {
    format!(
        "local:{}",
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    )
}

#[derive(Debug, Default, Deserialize)]
struct Prefixes {
    #[serde(default)]
    query_prefix: String,
    #[serde(default)]
    passage_prefix: String,
}

/// A model folder run in-process. Inference is CPU-bound and runs on the blocking pool.
pub struct LocalEmbedder {
    inner: Arc<LocalInner>,
    name: String,
    batch: usize,
    /// Single questions, batched together (see `queries`); started on first use, inside the
    /// runtime.
    queries: std::sync::OnceLock<queries::Queries>,
}

struct LocalInner {
    model: bert::Bert,
    tokenizer: tokenize::Tokenizer,
    prefixes: Prefixes,
    max_len: usize,
}

impl LocalEmbedder {
    pub fn load(dir: &Path, batch: usize) -> Result<Self, EmbedError> {
        let err = |e: anyhow::Error| EmbedError::Load(dir.to_owned(), format!("{e:#}"));
        let model = bert::Bert::load(dir).map_err(err)?;
        let tokenizer = tokenize::Tokenizer::load(dir).map_err(err)?;
        let prefixes = match std::fs::read(dir.join("embedding.json")) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| err(e.into()))?,
            Err(_) => Prefixes::default(),
        };
        let max_len = model.config.max_position_embeddings;
        let name = local_name(dir);
        Ok(Self {
            inner: Arc::new(LocalInner {
                model,
                tokenizer,
                prefixes,
                max_len,
            }),
            name,
            batch: batch.max(1),
            queries: std::sync::OnceLock::new(),
        })
    }

    /// Blocking: embeds on the calling thread (benchmarks, tests, the blocking pool).
    pub fn embed_blocking(
        &self,
        texts: &[String],
        purpose: Purpose,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.inner.embed(texts, purpose, self.batch)
    }

    /// Token ids as the model sees them, prefix included.
    pub fn token_ids(&self, text: &str, purpose: Purpose) -> Vec<u32> {
        self.inner.ids(text, purpose)
    }
}

impl LocalInner {
    fn ids(&self, text: &str, purpose: Purpose) -> Vec<u32> {
        let prefix = match purpose {
            Purpose::Query => &self.prefixes.query_prefix,
            Purpose::Passage => &self.prefixes.passage_prefix,
        };
        self.tokenizer
            .encode(&format!("{prefix}{text}"), self.max_len)
    }

    fn embed(
        &self,
        texts: &[String],
        purpose: Purpose,
        batch: usize,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut ids: Vec<(usize, Vec<u32>)> = texts
            .iter()
            .map(|t| self.ids(t, purpose))
            .enumerate()
            .collect();
        // Similar lengths together: less padding per batch.
        ids.sort_by_key(|(_, v)| v.len());
        let mut out = vec![Vec::new(); texts.len()];
        for group in ids.chunks(batch) {
            let seqs: Vec<Vec<u32>> = group.iter().map(|(_, v)| v.clone()).collect();
            let vecs = self
                .model
                .embed(&seqs)
                .map_err(|e| EmbedError::Model(format!("{e:#}")))?;
            for ((i, _), v) in group.iter().zip(vecs) {
                out[*i] = v;
            }
        }
        Ok(out)
    }
}

impl Embedder for LocalEmbedder {
    fn dim(&self) -> usize {
        self.inner.model.config.hidden_size
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        purpose: Purpose,
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>> {
        let inner = self.inner.clone();
        let texts = texts.to_vec();
        let batch = self.batch;
        Box::pin(async move {
            if purpose == Purpose::Query && texts.len() == 1 {
                let q = self
                    .queries
                    .get_or_init(|| queries::Queries::start(inner.clone(), batch));
                return Ok(vec![q.embed(&texts[0]).await?]);
            }
            tokio::task::spawn_blocking(move || inner.embed(&texts, purpose, batch))
                .await
                .map_err(|e| EmbedError::Model(e.to_string()))?
        })
    }
}

/// L2-normalises in place; providers that do not normalise go through this.
pub(crate) fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}
