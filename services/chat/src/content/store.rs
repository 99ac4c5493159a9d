//! The `documents` table. Every query that serves a request names the owner, so a document of
//! another account is indistinguishable from one that does not exist.

use chrono::{DateTime, Utc};
use kernel::events::content::StatusChanged;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Document {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub title: String,
    pub filename: String,
    pub media_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub blob_key: String,
    pub version: i64,
    pub status: String,
    pub reason: Option<String>,
    pub chunk_count: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, owner_id, title, filename, media_type, size_bytes, sha256, blob_key, \
                       version, status, reason, chunk_count, created_at, updated_at";

/// What an accepted upload becomes.
pub struct NewDocument<'a> {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub title: &'a str,
    pub filename: &'a str,
    pub media_type: &'a str,
    pub size_bytes: i64,
    pub sha256: &'a str,
    pub blob_key: &'a str,
}

pub async fn insert(c: &mut PgConnection, d: &NewDocument<'_>) -> Result<Document, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO documents (id, owner_id, title, filename, media_type, size_bytes, sha256, blob_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    )))
    .bind(d.id)
    .bind(d.owner_id)
    .bind(d.title)
    .bind(d.filename)
    .bind(d.media_type)
    .bind(d.size_bytes)
    .bind(d.sha256)
    .bind(d.blob_key)
    .fetch_one(c)
    .await
}

pub async fn list(pool: &PgPool, owner: Uuid) -> Result<Vec<Document>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM documents WHERE owner_id = $1 ORDER BY created_at DESC, id DESC"
    )))
    .bind(owner)
    .fetch_all(pool)
    .await
}

pub async fn get(pool: &PgPool, owner: Uuid, id: Uuid) -> Result<Option<Document>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM documents WHERE owner_id = $1 AND id = $2"
    )))
    .bind(owner)
    .bind(id)
    .fetch_optional(pool)
    .await
}

pub async fn delete(
    c: &mut PgConnection,
    owner: Uuid,
    id: Uuid,
) -> Result<Option<Document>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "DELETE FROM documents WHERE owner_id = $1 AND id = $2 RETURNING {COLUMNS}"
    )))
    .bind(owner)
    .bind(id)
    .fetch_optional(c)
    .await
}

/// Every document of a deleted account.
pub async fn delete_owner(c: &mut PgConnection, owner: Uuid) -> Result<Vec<Document>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "DELETE FROM documents WHERE owner_id = $1 RETURNING {COLUMNS}"
    )))
    .bind(owner)
    .fetch_all(c)
    .await
}

/// A new version to ingest from the stored original: back to `queued`, the old outcome cleared.
pub async fn next_version(
    c: &mut PgConnection,
    owner: Uuid,
    id: Uuid,
) -> Result<Option<Document>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE documents SET version = version + 1, status = 'queued', reason = NULL,
                chunk_count = NULL, updated_at = now()
         WHERE owner_id = $1 AND id = $2 RETURNING {COLUMNS}"
    )))
    .bind(owner)
    .bind(id)
    .fetch_optional(c)
    .await
}

/// Applies what ingestion reports, unless it is stale: an older version, or an earlier step of
/// the same version arriving after a later one (events of one document may be redelivered out
/// of order). Returns whether the row changed.
pub async fn apply_status(c: &mut PgConnection, s: &StatusChanged) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE documents SET status = $3, reason = $4,
                chunk_count = COALESCE($5, chunk_count),
                updated_at = now()
         WHERE id = $1 AND (
             version < $2
             OR (version = $2 AND document_step(status) <= document_step($3))
         )",
    )
    .bind(s.document_id)
    .bind(s.version)
    .bind(s.status.as_str())
    .bind(&s.reason)
    .bind(s.chunk_count)
    .execute(c)
    .await?;
    Ok(done.rows_affected() > 0)
}
