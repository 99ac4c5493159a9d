//! The index in schema `ai`: the document's ingestion state, its chunks, their vectors and
//! keyword tokens. Each state change writes its `content.status_changed` event to the outbox in
//! the same transaction, so chat sees exactly what was committed.

use crate::chunk::Chunk;
use crate::keywords;
use kernel::events::content::{Deleted, IndexStatus, STATUS_CHANGED, StatusChanged, Uploaded};
use kernel::events::outbox;
use sqlx::PgConnection;
use uuid::Uuid;

pub const SERVICE: &str = "ai";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("writing the status event: {0}")]
    Outbox(String),
}

async fn publish(
    tx: &mut PgConnection,
    doc: &Uploaded,
    status: IndexStatus,
    reason: Option<String>,
    chunk_count: Option<i64>,
) -> Result<(), StoreError> {
    let data = StatusChanged {
        document_id: doc.document_id,
        owner_id: doc.owner_id,
        version: doc.version,
        status,
        reason,
        chunk_count,
    };
    let data = serde_json::to_value(data).map_err(|e| StoreError::Outbox(e.to_string()))?;
    let event = outbox::event(
        SERVICE,
        STATUS_CHANGED,
        &doc.document_id.to_string(),
        data,
        None,
    )
    .map_err(|e| StoreError::Outbox(e.to_string()))?;
    outbox::enqueue(tx, &event).await?;
    Ok(())
}

/// Claims a version for ingestion: `true` when it is newer than what the index holds, or the
/// same version whose ingestion did not finish (a crash or a retry). A stale version, a finished
/// one, or a deleted document is left alone.
pub async fn begin(tx: &mut PgConnection, doc: &Uploaded) -> Result<bool, StoreError> {
    let claimed = sqlx::query(
        "INSERT INTO documents (document_id, owner_id, version, title, status) \
         VALUES ($1, $2, $3, $4, 'extracting') \
         ON CONFLICT (document_id) DO UPDATE \
           SET version = EXCLUDED.version, title = EXCLUDED.title, status = 'extracting', \
               reason = NULL, chunk_count = NULL, updated_at = now() \
         WHERE documents.status <> 'deleted' AND (documents.version < EXCLUDED.version \
            OR (documents.version = EXCLUDED.version \
                AND documents.status NOT IN ('ready', 'failed')))",
    )
    .bind(doc.document_id)
    .bind(doc.owner_id)
    .bind(doc.version)
    .bind(&doc.title)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if claimed {
        publish(tx, doc, IndexStatus::Extracting, None, None).await?;
    }
    Ok(claimed)
}

/// Locks the document's row; `true` while this version is still the one being ingested.
async fn still_ours(tx: &mut PgConnection, doc: &Uploaded) -> Result<bool, StoreError> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT version, status FROM documents WHERE document_id = $1 FOR UPDATE")
            .bind(doc.document_id)
            .fetch_optional(&mut *tx)
            .await?;
    Ok(matches!(row, Some((v, s)) if v == doc.version && (s == "extracting" || s == "indexing")))
}

/// Moves the version from `extracting` to `indexing`, once: a retried attempt that is already
/// indexing publishes nothing new.
pub async fn indexing(tx: &mut PgConnection, doc: &Uploaded) -> Result<bool, StoreError> {
    let moved = sqlx::query(
        "UPDATE documents SET status = 'indexing', updated_at = now() \
         WHERE document_id = $1 AND version = $2 AND status = 'extracting'",
    )
    .bind(doc.document_id)
    .bind(doc.version)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if moved {
        publish(tx, doc, IndexStatus::Indexing, None, None).await?;
    }
    Ok(moved)
}

/// Replaces the document's chunks with this version's and marks it `ready`, in the caller's
/// transaction. `false` when a newer version or a deletion got there first.
pub async fn store(
    tx: &mut PgConnection,
    doc: &Uploaded,
    chunks: &[Chunk],
    vectors: &[Vec<f32>],
    embedder: &str,
) -> Result<bool, StoreError> {
    if !still_ours(tx, doc).await? {
        return Ok(false);
    }
    sqlx::query("DELETE FROM chunks WHERE document_id = $1")
        .bind(doc.document_id)
        .execute(&mut *tx)
        .await?;
    for (c, v) in chunks.iter().zip(vectors) {
        let kw = keywords::tokens(&format!("{} {} {}", doc.title, c.location, c.text));
        sqlx::query(
            "INSERT INTO chunks (id, document_id, owner_id, version, ordinal, location, page, \
             text, keywords, embedding) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, array_to_tsvector($9::text[]), $10::vector)",
        )
        .bind(Uuid::now_v7())
        .bind(doc.document_id)
        .bind(doc.owner_id)
        .bind(doc.version)
        .bind(c.ordinal as i32)
        .bind(&c.location)
        .bind(c.page.map(|p| p as i32))
        .bind(&c.text)
        .bind(&kw)
        .bind(kernel::db::Vector(v))
        .execute(&mut *tx)
        .await?;
    }
    let n = chunks.len() as i64;
    sqlx::query(
        "UPDATE documents SET status = 'ready', chunk_count = $2, embedder = $3, updated_at = now() \
         WHERE document_id = $1",
    )
    .bind(doc.document_id)
    .bind(n)
    .bind(embedder)
    .execute(&mut *tx)
    .await?;
    publish(tx, doc, IndexStatus::Ready, None, Some(n)).await?;
    Ok(true)
}

/// Marks this version `failed` with a reason a person can read; older chunks are dropped so
/// retrieval never answers from a version the owner replaced.
pub async fn fail(tx: &mut PgConnection, doc: &Uploaded, reason: &str) -> Result<bool, StoreError> {
    if !still_ours(tx, doc).await? {
        return Ok(false);
    }
    sqlx::query("DELETE FROM chunks WHERE document_id = $1")
        .bind(doc.document_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE documents SET status = 'failed', reason = $2, chunk_count = 0, updated_at = now() \
         WHERE document_id = $1",
    )
    .bind(doc.document_id)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    publish(tx, doc, IndexStatus::Failed, Some(reason.to_owned()), None).await?;
    Ok(true)
}

/// Removes a document's chunks and remembers the deletion, so that a late `content.uploaded`
/// cannot bring them back.
pub async fn delete(tx: &mut PgConnection, d: &Deleted) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO documents (document_id, owner_id, version, title, status) \
         VALUES ($1, $2, 0, '', 'deleted') \
         ON CONFLICT (document_id) DO UPDATE SET status = 'deleted', chunk_count = 0, \
           updated_at = now()",
    )
    .bind(d.document_id)
    .bind(d.owner_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM chunks WHERE document_id = $1")
        .bind(d.document_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
