//! The consumer of `content.uploaded` and `content.deleted`: fetches the original from the blob
//! store, extracts, chunks, embeds, and stores the version's chunks in the consumer's
//! transaction. Passing failures (blob store or embedding provider down) are retried here with
//! backoff; after the last attempt, or at once for a document that cannot be read, the document
//! becomes `failed` with the reason, and chat hears of it through `content.status_changed`.

use crate::chunk::{self, ChunkConfig};
use crate::embed::{Embedder, Purpose};
use crate::extract::{self, ExtractError};
use crate::store;
use futures::future::BoxFuture;
use kernel::blob::{BlobError, SharedBlobStore};
use kernel::db::Database;
use kernel::events::content::{self, Deleted, Uploaded};
use kernel::events::{Event, Handler, HandlerError};
use sqlx::PgConnection;
use std::sync::Arc;
use std::time::Duration;

/// Uploads ingested at once by one process. Each holds its consumer transaction's connection
/// while it embeds and takes a second one for its progress (`extracting`, `indexing`), so the
/// ai pool (`database.max_connections`, default 10) must have more than twice this many; with
/// the broker's prefetch of 16 as the limit, 10 deliveries held every connection and waited for
/// a second one until their attempts ran out (found by chat's broker outage test). The encoder
/// is CPU-bound, so more at once would not index faster on a few cores anyway.
pub const CONCURRENCY: usize = 2;

#[derive(Debug, Clone)]
pub struct IngestRetry {
    pub attempts: u32,
    pub first_delay: Duration,
}

impl Default for IngestRetry {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_delay: Duration::from_millis(500),
        }
    }
}

pub struct Ingestor {
    pub db: Database,
    pub blob: SharedBlobStore,
    pub embedder: Arc<dyn Embedder>,
    pub chunking: ChunkConfig,
    pub retry: IngestRetry,
    /// Texts per embedding call.
    pub embed_batch: usize,
}

/// Why one attempt failed: worth another try, or never going to work.
enum Failure {
    Passing(String),
    Final(String),
}

fn transient(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Transient(anyhow::anyhow!("{e}"))
}

impl Ingestor {
    async fn uploaded(&self, tx: &mut PgConnection, doc: Uploaded) -> Result<(), HandlerError> {
        let mut claim = self.db.begin().await?;
        if !store::begin(&mut claim, &doc).await.map_err(transient)? {
            tracing::info!(document = %doc.document_id, version = doc.version, "stale or already indexed; skipped");
            return Ok(());
        }
        claim.commit().await?;
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match self.attempt(&doc).await {
                Ok(done) => break Ok(done),
                Err(Failure::Final(reason)) => break Err(reason),
                Err(Failure::Passing(reason)) if attempt >= self.retry.attempts.max(1) => {
                    break Err(format!("gave up after {attempt} attempts: {reason}"));
                }
                Err(Failure::Passing(reason)) => {
                    let delay = self.retry.first_delay * 2u32.saturating_pow(attempt - 1);
                    tracing::warn!(document = %doc.document_id, attempt, %reason, ?delay, "ingestion failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        };
        match outcome {
            Ok((chunks, vectors)) => {
                let stored = store::store(tx, &doc, &chunks, &vectors, self.embedder.name())
                    .await
                    .map_err(transient)?;
                tracing::info!(document = %doc.document_id, version = doc.version, chunks = chunks.len(), stored, "indexed");
            }
            Err(reason) => {
                tracing::warn!(document = %doc.document_id, version = doc.version, %reason, "ingestion failed");
                store::fail(tx, &doc, &reason).await.map_err(transient)?;
            }
        }
        Ok(())
    }

    async fn attempt(&self, doc: &Uploaded) -> Result<(Vec<chunk::Chunk>, Vec<Vec<f32>>), Failure> {
        let blob = self.blob.get(&doc.blob_key).await.map_err(|e| match e {
            BlobError::NotFound(_) | BlobError::InvalidKey(_) => {
                Failure::Final("the original is no longer in storage".into())
            }
            e => Failure::Passing(e.to_string()),
        })?;
        let media = doc.media_type.clone();
        let extracted = tokio::task::spawn_blocking(move || extract::extract(&media, &blob.bytes))
            .await
            .map_err(|e| Failure::Passing(e.to_string()))?
            .map_err(|e: ExtractError| Failure::Final(e.to_string()))?;
        let chunks = chunk::chunk(&extracted, self.chunking);
        if chunks.is_empty() {
            return Err(Failure::Final(ExtractError::Empty.to_string()));
        }
        let mut t = self
            .db
            .begin()
            .await
            .map_err(|e| Failure::Passing(e.to_string()))?;
        store::indexing(&mut t, doc)
            .await
            .map_err(|e| Failure::Passing(e.to_string()))?;
        t.commit()
            .await
            .map_err(|e| Failure::Passing(e.to_string()))?;
        let title = if doc.title.is_empty() {
            extracted.title.clone().unwrap_or_default()
        } else {
            doc.title.clone()
        };
        let texts: Vec<String> = chunks.iter().map(|c| c.embedding_text(&title)).collect();
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.embed_batch.max(1)) {
            let v = self
                .embedder
                .embed(batch, Purpose::Passage)
                .await
                .map_err(|e| Failure::Passing(e.to_string()))?;
            vectors.extend(v);
        }
        Ok((chunks, vectors))
    }
}

impl Handler for Ingestor {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Event,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let bad = |e| HandlerError::Permanent(anyhow::anyhow!("{e}"));
            match event.event_type.as_str() {
                content::UPLOADED => self.uploaded(tx, event.data_as().map_err(bad)?).await,
                content::DELETED => {
                    let d: Deleted = event.data_as().map_err(bad)?;
                    store::delete(tx, &d).await.map_err(transient)
                }
                // Our own status events come back on the same bus pattern; nothing to do.
                _ => Ok(()),
            }
        })
    }
}
