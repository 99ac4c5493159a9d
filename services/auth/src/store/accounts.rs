//! Accounts: e-mail, password hash and role.

use chrono::{DateTime, Utc};
use kernel::tokens::Role;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

impl Account {
    /// The stored role; the table's CHECK constraint admits only account roles.
    pub fn role(&self) -> Role {
        parse_role(&self.role).unwrap_or(Role::Stargazer)
    }
}

pub fn parse_role(s: &str) -> Option<Role> {
    match s {
        "stargazer" => Some(Role::Stargazer),
        "protostar" => Some(Role::Protostar),
        "admin" => Some(Role::Admin),
        _ => None,
    }
}

const COLUMNS: &str = "id, email, password_hash, role, created_at";

pub async fn by_email(c: &mut PgConnection, email: &str) -> Result<Option<Account>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM accounts WHERE email = $1"
    )))
    .bind(email)
    .fetch_optional(c)
    .await
}

pub async fn by_id(c: &mut PgConnection, id: Uuid) -> Result<Option<Account>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM accounts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(c)
    .await
}

/// Inserts a new account; `None` when the e-mail is taken.
pub async fn insert(
    c: &mut PgConnection,
    email: &str,
    password_hash: &str,
    role: Role,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO accounts (id, email, password_hash, role) VALUES ($1, $2, $3, $4)
         ON CONFLICT (email) DO NOTHING RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(email)
    .bind(password_hash)
    .bind(role.as_str())
    .fetch_optional(c)
    .await
}

pub async fn set_password(
    c: &mut PgConnection,
    id: Uuid,
    password_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .execute(c)
        .await
        .map(|_| ())
}

/// Sets the role; returns the previous one, or `None` when there is no such account.
pub async fn set_role(
    c: &mut PgConnection,
    id: Uuid,
    role: Role,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE accounts a SET role = $2, updated_at = now() FROM (SELECT id, role FROM accounts WHERE id = $1 FOR UPDATE) old
         WHERE a.id = old.id RETURNING old.role",
    )
    .bind(id)
    .bind(role.as_str())
    .fetch_optional(c)
    .await
}

/// A stargazer becomes a protostar (an invite was redeemed); other roles stay. Returns whether
/// the role changed.
pub async fn promote_to_protostar(c: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("UPDATE accounts SET role = 'protostar', updated_at = now() WHERE id = $1 AND role = 'stargazer'")
        .bind(id)
        .execute(c)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Deletes the account; its refresh tokens and reset tokens go with it (ON DELETE CASCADE).
pub async fn delete(c: &mut PgConnection, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("DELETE FROM accounts WHERE id = $1 RETURNING email")
        .bind(id)
        .fetch_optional(c)
        .await
}

/// A page of accounts, oldest first, after the given id (UUIDv7 ids sort by creation).
pub async fn page(
    c: &mut PgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Account>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM accounts WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2"
    )))
    .bind(after)
    .bind(limit)
    .fetch_all(c)
    .await
}
