//! The owner's corrections as pinned passages, and forgetting a deleted account.
//!
//! `chat.correction_saved` becomes a one-chunk "document" of kind `correction` whose location is
//! the question and whose text is the owner's answer; its chunk is `pinned`, and the answer
//! route puts it before every document passage when a new question is close enough to it.
//! `user.deleted` removes everything indexed for the account: documents, corrections, vectors.

use crate::embed::{Embedder, Purpose};
use crate::keywords;
use futures::future::BoxFuture;
use kernel::events::chat::{CORRECTION_SAVED, CorrectionSaved};
use kernel::events::{Event, Handler, HandlerError};
use serde::Deserialize;
use sqlx::PgConnection;
use std::sync::Arc;
use uuid::Uuid;

pub const PATTERNS: &[&str] = &[CORRECTION_SAVED, "user.deleted"];
/// How a correction is titled in citations.
pub const TITLE: &str = "Answer written by the owner";

pub struct Corrections {
    pub embedder: Arc<dyn Embedder>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserDeleted {
    user_id: Uuid,
}

fn permanent(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Permanent(anyhow::anyhow!("{e}"))
}

impl Corrections {
    async fn saved(&self, tx: &mut PgConnection, c: CorrectionSaved) -> Result<(), HandlerError> {
        // The question and the answer together: a new question is compared with both.
        let passage = format!("{}\n{}", c.question.trim(), c.answer.trim());
        let vector = self
            .embedder
            .embed(std::slice::from_ref(&passage), Purpose::Passage)
            .await
            .map_err(|e| HandlerError::Transient(anyhow::anyhow!("{e}")))?
            .pop()
            .ok_or_else(|| permanent("the embedder returned no vector"))?;
        let location: String = c.question.trim().chars().take(200).collect();
        sqlx::query(
            "INSERT INTO documents (document_id, owner_id, version, title, status, chunk_count, \
             embedder, kind) VALUES ($1, $2, 1, $3, 'ready', 1, $4, 'correction') \
             ON CONFLICT (document_id) DO UPDATE SET version = documents.version + 1, \
             updated_at = now() WHERE documents.kind = 'correction'",
        )
        .bind(c.correction_id)
        .bind(c.owner_id)
        .bind(TITLE)
        .bind(self.embedder.name())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM chunks WHERE document_id = $1")
            .bind(c.correction_id)
            .execute(&mut *tx)
            .await?;
        let kw = keywords::tokens(&passage);
        sqlx::query(
            "INSERT INTO chunks (id, document_id, owner_id, version, ordinal, location, text, \
             keywords, embedding, pinned) \
             SELECT $1, $2, $3, version, 0, $4, $5, array_to_tsvector($6::text[]), $7::vector, true \
             FROM documents WHERE document_id = $2 AND kind = 'correction'",
        )
        .bind(Uuid::now_v7())
        .bind(c.correction_id)
        .bind(c.owner_id)
        .bind(&location)
        .bind(c.answer.trim())
        .bind(&kw)
        .bind(kernel::db::Vector(&vector))
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

impl Handler for Corrections {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Event,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            match event.event_type.as_str() {
                CORRECTION_SAVED => self.saved(tx, event.data_as().map_err(permanent)?).await,
                "user.deleted" => {
                    let u: UserDeleted = event.data_as().map_err(permanent)?;
                    // Chunks go with their documents (ON DELETE CASCADE). Chat also announces
                    // each document's deletion; whichever comes first leaves nothing.
                    sqlx::query("DELETE FROM documents WHERE owner_id = $1")
                        .bind(u.user_id)
                        .execute(&mut *tx)
                        .await?;
                    Ok(())
                }
                _ => Ok(()),
            }
        })
    }
}
