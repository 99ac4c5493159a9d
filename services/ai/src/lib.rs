//! The AI service: turns career documents into searchable knowledge and answers retrieval
//! queries.
//!
//! Chat stores an original and publishes `content.uploaded`; this service's consumer fetches
//! the original from the blob store, extracts its text with structure ([`extract`]), chunks it
//! by section ([`chunk`]), embeds the chunks ([`embed`]) and stores chunks, vectors, keyword
//! tokens and the document's state in one transaction ([`store`]), publishing
//! `content.status_changed` from its outbox. [`retrieval`] answers hybrid queries scoped to
//! owners on the admin listener.

pub mod answer;
pub mod chunk;
pub mod corrections;
pub mod embed;
pub mod extract;
pub mod generate;
pub mod ingest;
pub mod keywords;
pub mod retrieval;
pub mod store;
pub mod support;

use futures::future::BoxFuture;
use kernel::events::Subscription;
use kernel::events::content;
use kernel::service::{Platform, Routes, ServiceError};
use serde::Deserialize;
use std::time::Duration;

pub const TARGET: &str = "ai";
pub const SCHEMA: &str = "ai";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Config key `ai`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiConfig {
    /// Defaults to the local multilingual-e5-small folder provisioned by `scripts/models.sh`.
    #[serde(default)]
    pub embedding: embed::EmbeddingConfig,
    /// Attempts at one document before it is `failed` (blob store or provider failures).
    #[serde(default = "default_attempts")]
    pub ingest_attempts: u32,
    #[serde(default = "default_first_delay")]
    pub ingest_first_delay_ms: u64,
    #[serde(default = "default_chunk_tokens")]
    pub chunk_max_tokens: usize,
    #[serde(default = "default_overlap")]
    pub chunk_overlap_tokens: usize,
    /// Texts per embedding call.
    #[serde(default = "default_embed_batch")]
    pub embed_batch: usize,
    /// When retrieved passages support an answer, and how many a model gets.
    #[serde(default)]
    pub answer: answer::AnswerConfig,
    /// Which models answer, in fallback order, and how they are called.
    #[serde(default)]
    pub generation: generate::GenerationConfig,
}

impl AiConfig {
    /// The `ai` section with every bound checked, for start-up and `protostar check-config`.
    pub fn load(config: &kernel::config::ConfigSource) -> Result<Self, kernel::ConfigError> {
        let c: Self = config.section("ai")?;
        let mut errors = Vec::new();
        for check in [c.answer.validate(), c.generation.validate()] {
            if let Err(e) = check {
                errors.push(e);
            }
        }
        kernel::ConfigError::collect(errors)?;
        Ok(c)
    }
}

fn default_attempts() -> u32 {
    4
}
fn default_first_delay() -> u64 {
    500
}
fn default_chunk_tokens() -> usize {
    chunk::ChunkConfig::default().max_tokens
}
fn default_overlap() -> usize {
    chunk::ChunkConfig::default().overlap_tokens
}
fn default_embed_batch() -> usize {
    16
}

pub fn init(p: &Platform) -> BoxFuture<'_, Result<Routes, ServiceError>> {
    Box::pin(async move {
        let config = AiConfig::load(&p.config)?;
        let embedder = embed::from_config(&config.embedding)
            .await
            .map_err(|e| kernel::ConfigError::key("ai.embedding", e.to_string()))?;
        tracing::info!(
            embedder = embedder.name(),
            dim = embedder.dim(),
            "embedding model ready"
        );
        if embedder.dim() != 384 {
            return Err(kernel::ConfigError::key(
                "ai.embedding",
                format!(
                    "gives {} values per vector; the index holds 384",
                    embedder.dim()
                ),
            )
            .into());
        }
        let db = p.open_database(SCHEMA, Some(&MIGRATOR)).await?;
        let blob = p.open_blob_store().await?;
        let ingestor = ingest::Ingestor {
            db: db.clone(),
            blob,
            embedder: embedder.clone(),
            chunking: chunk::ChunkConfig {
                max_tokens: config.chunk_max_tokens,
                overlap_tokens: config.chunk_overlap_tokens,
            },
            retry: ingest::IngestRetry {
                attempts: config.ingest_attempts,
                first_delay: Duration::from_millis(config.ingest_first_delay_ms),
            },
            embed_batch: config.embed_batch,
        };
        let sub = Subscription::new(
            TARGET,
            &[content::UPLOADED, content::DELETED],
            db.clone(),
            ingestor,
        )
        .with_concurrency(ingest::CONCURRENCY);
        p.bus.start_consumer(sub, p.stop.clone());
        p.bus.start_consumer(
            Subscription::new(
                "ai-corrections",
                corrections::PATTERNS,
                db.clone(),
                corrections::Corrections {
                    embedder: embedder.clone(),
                },
            ),
            p.stop.clone(),
        );
        let retriever = retrieval::Retriever::new(db.clone(), embedder.clone());
        let model = generate::build(
            &config.generation,
            std::sync::Arc::new(generate::extractive::Extractive::with_embedder(
                embedder.clone(),
            )),
        )
        .map_err(|e| kernel::ConfigError::key("ai.generation", e))?;
        tracing::info!(model = model.name(), "answering model ready");
        let admin = retrieval::router(retrieval::RouteState {
            retriever: retriever.clone(),
            verifier: p.verifier.clone(),
        })
        .merge(answer::router(answer::AnswerState {
            answerer: answer::Answerer {
                retriever,
                embedder,
                model,
                config: config.answer.clone(),
                metrics: answer::AnswerMetrics::register(&p.metrics),
            },
            verifier: p.verifier.clone(),
        }))
        .merge(kernel::service::dead_letter_routes(p, &db));
        Ok(Routes {
            public: Default::default(),
            admin,
        })
    })
}
