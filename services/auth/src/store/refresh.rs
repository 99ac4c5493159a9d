//! Refresh-token families. A login starts a family; each refresh marks the presented token used
//! and adds its successor. Presenting a used token means two parties hold the family (one of
//! them a thief): the whole family is revoked.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

pub struct Issued {
    pub token: String,
    pub family_id: Uuid,
}

pub async fn issue(
    c: &mut PgConnection,
    account_id: Uuid,
    family_id: Option<Uuid>,
    ttl: chrono::Duration,
) -> Result<Issued, sqlx::Error> {
    let (token, hash) = super::new_token();
    let family_id = family_id.unwrap_or_else(Uuid::now_v7);
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family_id, account_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(family_id)
    .bind(account_id)
    .bind(hash)
    .bind(Utc::now() + ttl)
    .execute(c)
    .await?;
    Ok(Issued { token, family_id })
}

#[derive(sqlx::FromRow)]
struct Row {
    account_id: Uuid,
    family_id: Uuid,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

pub enum Presented {
    Unknown,
    /// Revoked (logout, reuse, password reset) or expired.
    Dead,
    /// Already exchanged once: the family has just been revoked.
    Reused {
        account_id: Uuid,
        family_id: Uuid,
    },
    Live {
        account_id: Uuid,
        family_id: Uuid,
    },
}

/// Looks the token up, locking its row so that two racing refreshes with the same token are
/// ordered (and the second one is a reuse). A live token is marked used here.
pub async fn take(c: &mut PgConnection, token: &str) -> Result<Presented, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT account_id, family_id, expires_at, used_at, revoked_at FROM refresh_tokens
         WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(super::token_hash(token))
    .fetch_optional(&mut *c)
    .await?;
    let Some(Row {
        account_id,
        family_id,
        expires_at,
        used_at,
        revoked_at,
    }) = row
    else {
        return Ok(Presented::Unknown);
    };
    if used_at.is_some() {
        revoke_family(c, family_id).await?;
        return Ok(Presented::Reused {
            account_id,
            family_id,
        });
    }
    if revoked_at.is_some() || expires_at <= Utc::now() {
        return Ok(Presented::Dead);
    }
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1")
        .bind(super::token_hash(token))
        .execute(&mut *c)
        .await?;
    Ok(Presented::Live {
        account_id,
        family_id,
    })
}

pub async fn revoke_family(c: &mut PgConnection, family_id: Uuid) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
}

/// Revokes the family of `token`, if there is one.
pub async fn revoke_family_of(c: &mut PgConnection, token: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND family_id =
         (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
    )
    .bind(super::token_hash(token))
    .execute(c)
    .await
    .map(|r| r.rows_affected())
}

pub async fn revoke_account(c: &mut PgConnection, account_id: Uuid) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL",
    )
    .bind(account_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
}
