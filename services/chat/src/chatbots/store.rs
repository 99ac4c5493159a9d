//! Chatbot rows: one per protostar, created the first time its owner opens the settings.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct Chatbot {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub slug: String,
    pub name: String,
    pub greeting: String,
    pub persona: String,
    pub voice: String,
    pub allowed_origins: Vec<String>,
    pub accent: String,
    pub talent_search: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The owner's display name as `user.registered` gave it, when chat has seen it.
    pub owner_name: Option<String>,
}

/// The columns of [`Chatbot`], as a literal so queries stay static strings.
macro_rules! columns {
    () => {
        "id, owner_id, slug, name, greeting, persona, voice, allowed_origins, accent, \
         talent_search, created_at, updated_at, \
         (SELECT display_name FROM people WHERE user_id = owner_id) AS owner_name"
    };
}

pub async fn by_slug(db: &PgPool, slug: &str) -> Result<Option<Chatbot>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM chatbots WHERE slug = $1"
    ))
    .bind(slug)
    .fetch_optional(db)
    .await
}

pub async fn by_owner(db: &PgPool, owner: Uuid) -> Result<Option<Chatbot>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM chatbots WHERE owner_id = $1"
    ))
    .bind(owner)
    .fetch_optional(db)
    .await
}

pub async fn by_id(db: &PgPool, id: Uuid) -> Result<Option<Chatbot>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM chatbots WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn display_name(db: &PgPool, user: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT display_name FROM people WHERE user_id = $1")
        .bind(user)
        .fetch_optional(db)
        .await
}

/// Inserts the owner's chatbot unless one exists; `false` when the slug was taken.
pub async fn create(db: &PgPool, c: &Chatbot) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO chatbots (id, owner_id, slug, name, greeting) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT DO NOTHING",
    )
    .bind(c.id)
    .bind(c.owner_id)
    .bind(&c.slug)
    .bind(&c.name)
    .bind(&c.greeting)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Writes every setting; `Err(Conflict)` when the new slug belongs to another chatbot.
pub async fn save(db: &PgPool, c: &Chatbot) -> Result<Chatbot, SaveError> {
    sqlx::query_as(concat!(
        "UPDATE chatbots SET slug = $2, name = $3, greeting = $4, persona = $5, voice = $6, \
         allowed_origins = $7, accent = $8, talent_search = $9, updated_at = now() \
         WHERE id = $1 RETURNING ",
        columns!()
    ))
    .bind(c.id)
    .bind(&c.slug)
    .bind(&c.name)
    .bind(&c.greeting)
    .bind(&c.persona)
    .bind(&c.voice)
    .bind(&c.allowed_origins)
    .bind(&c.accent)
    .bind(c.talent_search)
    .fetch_one(db)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => SaveError::SlugTaken,
        _ => SaveError::Db(e),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("the slug is taken")]
    SlugTaken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Every chatbot's widget origins, for the gateway's CORS.
pub async fn origins(db: &PgPool) -> Result<Vec<(String, Vec<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT slug, allowed_origins FROM chatbots WHERE allowed_origins <> '{}'")
        .fetch_all(db)
        .await
}

/// Owners who opted in to talent search, with their chatbots.
pub async fn talent_pool(db: &PgPool) -> Result<Vec<Chatbot>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM chatbots WHERE talent_search ORDER BY created_at LIMIT 1000"
    ))
    .fetch_all(db)
    .await
}

pub async fn remember_name(
    tx: &mut PgConnection,
    user: Uuid,
    name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO people (user_id, display_name) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET display_name = EXCLUDED.display_name",
    )
    .bind(user)
    .bind(name)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Everything chat holds about an account: its chatbot (with the questions asked of it and the
/// corrections), its own conversations as an asker, its name.
pub async fn forget_account(tx: &mut PgConnection, user: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM chatbots WHERE owner_id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM conversations WHERE asker_id = $1")
        .bind(user.to_string())
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM people WHERE user_id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
