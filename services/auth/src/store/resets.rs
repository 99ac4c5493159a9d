//! Password-reset tokens: single use, expiring, stored hashed.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

pub async fn create(
    c: &mut PgConnection,
    account_id: Uuid,
    ttl: chrono::Duration,
) -> Result<(String, DateTime<Utc>), sqlx::Error> {
    let (token, hash) = super::new_token();
    let expires_at = Utc::now() + ttl;
    sqlx::query(
        "INSERT INTO password_resets (token_hash, account_id, expires_at) VALUES ($1, $2, $3)",
    )
    .bind(hash)
    .bind(account_id)
    .bind(expires_at)
    .execute(c)
    .await?;
    Ok((token, expires_at))
}

/// The account a usable token belongs to, its row locked until the transaction ends.
pub async fn find_usable(c: &mut PgConnection, token: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT account_id FROM password_resets WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() FOR UPDATE",
    )
    .bind(super::token_hash(token))
    .fetch_optional(c)
    .await
}

/// Uses up every open reset of the account (the one presented and any older ones).
pub async fn use_all(c: &mut PgConnection, account_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE password_resets SET used_at = now() WHERE account_id = $1 AND used_at IS NULL",
    )
    .bind(account_id)
    .execute(c)
    .await
    .map(|_| ())
}
