//! The users schema: profiles, tombstones, invites and redemptions.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Profile {
    pub id: Uuid,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub invite_redeemed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Creates the profile if it is missing and the account was not deleted; returns it locked
/// for the rest of the transaction, or `None` for a deleted account.
pub async fn profile_for_update(
    c: &mut PgConnection,
    id: Uuid,
) -> Result<Option<Profile>, sqlx::Error> {
    const SELECT: &str = "SELECT id, email, display_name, invite_redeemed_at, created_at
                          FROM profiles WHERE id = $1 FOR UPDATE";
    // The common case only reads; the insert runs once per account.
    if let Some(p) = sqlx::query_as(SELECT)
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
    {
        return Ok(Some(p));
    }
    sqlx::query(
        "INSERT INTO profiles (id) SELECT $1 WHERE NOT EXISTS (SELECT 1 FROM tombstones WHERE id = $1)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .execute(&mut *c)
    .await?;
    sqlx::query_as(SELECT).bind(id).fetch_optional(c).await
}

/// Fills in what `user.registered` announces, unless the account is already gone.
pub async fn registered(
    c: &mut PgConnection,
    id: Uuid,
    email: &str,
    display_name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO profiles (id, email, display_name) SELECT $1, $2, $3
         WHERE NOT EXISTS (SELECT 1 FROM tombstones WHERE id = $1)
         ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email,
           display_name = COALESCE(profiles.display_name, EXCLUDED.display_name), updated_at = now()",
    )
    .bind(id)
    .bind(email)
    .bind(display_name)
    .execute(c)
    .await
    .map(|_| ())
}

pub async fn set_display_name(
    c: &mut PgConnection,
    id: Uuid,
    name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE profiles SET display_name = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(name)
        .execute(c)
        .await
        .map(|_| ())
}

/// Removes everything this service keeps for the account and leaves a tombstone.
pub async fn delete_account(c: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM redemptions WHERE user_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM profiles WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query("INSERT INTO tombstones (id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(id)
        .execute(c)
        .await
        .map(|_| ())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Redemption {
    pub invite_id: Uuid,
    pub redeemed_at: DateTime<Utc>,
}

pub async fn redemptions(
    c: &mut PgConnection,
    user_id: Uuid,
) -> Result<Vec<Redemption>, sqlx::Error> {
    sqlx::query_as(
        "SELECT invite_id, redeemed_at FROM redemptions WHERE user_id = $1 ORDER BY redeemed_at",
    )
    .bind(user_id)
    .fetch_all(c)
    .await
}

pub async fn create_invite(
    c: &mut PgConnection,
    code_hash: &[u8],
    created_by: Uuid,
    expires_at: DateTime<Utc>,
    uses: i32,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO invites (id, code_hash, created_by, expires_at, max_uses, uses_left)
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(code_hash)
    .bind(created_by)
    .bind(expires_at)
    .bind(uses)
    .fetch_one(c)
    .await
}

/// Takes one use of a live code, atomically: the row lock of the UPDATE orders racing
/// redemptions (and revocations, see [`revoke_invite`]), and its conditions are re-checked after
/// each wait, so a code with one use left is taken exactly once and a code revoked while this
/// waited is not taken at all.
pub async fn take_invite_use(
    c: &mut PgConnection,
    code_hash: &[u8],
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE invites SET uses_left = uses_left - 1
         WHERE code_hash = $1 AND uses_left > 0 AND expires_at > now() AND revoked_at IS NULL
         RETURNING id",
    )
    .bind(code_hash)
    .fetch_optional(c)
    .await
}

pub async fn record_redemption(
    c: &mut PgConnection,
    invite_id: Uuid,
    user_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO redemptions (invite_id, user_id) VALUES ($1, $2)")
        .bind(invite_id)
        .bind(user_id)
        .execute(&mut *c)
        .await?;
    sqlx::query("UPDATE profiles SET invite_redeemed_at = now(), updated_at = now() WHERE id = $1")
        .bind(user_id)
        .execute(c)
        .await
        .map(|_| ())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invite {
    pub id: Uuid,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub max_uses: i32,
    pub uses_left: i32,
    /// When an admin revoked it; `None` while it is not revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The columns of [`Invite`].
macro_rules! invite_columns {
    () => {
        "id, created_by, created_at, expires_at, max_uses, uses_left, revoked_at"
    };
}

pub async fn invites(c: &mut PgConnection, limit: i64) -> Result<Vec<Invite>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        invite_columns!(),
        " FROM invites ORDER BY id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(c)
    .await
}

/// Revokes an invite; `None` if there is none with this id. The first revocation sets
/// `revoked_at` (`true`: this call revoked it); a later one leaves it as it was (`false`).
///
/// The UPDATE takes the same row lock as [`take_invite_use`]: a redemption that took a use
/// before this committed keeps it, and one waiting for the lock re-checks `revoked_at` once it
/// is released, so nothing is redeemed after the revocation committed.
pub async fn revoke_invite(
    c: &mut PgConnection,
    id: Uuid,
) -> Result<Option<(Invite, bool)>, sqlx::Error> {
    let revoked: Option<Invite> = sqlx::query_as(concat!(
        "UPDATE invites SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING ",
        invite_columns!()
    ))
    .bind(id)
    .fetch_optional(&mut *c)
    .await?;
    if let Some(invite) = revoked {
        return Ok(Some((invite, true)));
    }
    // Unknown, or revoked already (perhaps by a racing call that committed while this waited).
    let earlier: Option<Invite> = sqlx::query_as(concat!(
        "SELECT ",
        invite_columns!(),
        " FROM invites WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(c)
    .await?;
    Ok(earlier.map(|i| (i, false)))
}
