//! noti's own tables: recipients, owners' settings and questions waiting for a digest.

use crate::events::{QuestionAsked, Registered};
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recipient {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub locale: Option<String>,
}

pub async fn upsert_recipient(tx: &mut PgConnection, r: &Registered) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO recipients (user_id, email, display_name, locale) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, \
           display_name = EXCLUDED.display_name, \
           locale = COALESCE(EXCLUDED.locale, recipients.locale), updated_at = now()",
    )
    .bind(r.user_id)
    .bind(&r.email)
    .bind(&r.display_name)
    .bind(&r.locale)
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn recipient(tx: &mut PgConnection, id: Uuid) -> Result<Option<Recipient>, sqlx::Error> {
    sqlx::query_as("SELECT user_id, email, display_name, locale FROM recipients WHERE user_id = $1")
        .bind(id)
        .fetch_optional(tx)
        .await
}

/// Everything noti holds about an account goes with it.
pub async fn forget(tx: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    for sql in [
        "DELETE FROM recipients WHERE user_id = $1",
        "DELETE FROM owner_settings WHERE owner_id = $1",
        "DELETE FROM pending_questions WHERE owner_id = $1 AND digest_id IS NULL",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Instant,
    Digest,
    Off,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "instant" => Some(Self::Instant),
            "digest" => Some(Self::Digest),
            "off" => Some(Self::Off),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Instant => "instant",
            Self::Digest => "digest",
            Self::Off => "off",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    pub email: bool,
    pub discord_webhook_url: Option<String>,
    pub locale: Option<String>,
}

impl Default for Settings {
    /// An owner who never chose hears about each question by e-mail.
    fn default() -> Self {
        Self {
            mode: Mode::Instant,
            email: true,
            discord_webhook_url: None,
            locale: None,
        }
    }
}

impl Settings {
    /// An owner's settings row as read (mode, e-mail on, webhook, locale); `None` when they
    /// never chose.
    fn from_row(row: Option<(String, bool, Option<String>, Option<String>)>) -> Self {
        match row {
            Some((mode, email, discord_webhook_url, locale)) => Settings {
                mode: Mode::parse(&mode).unwrap_or(Mode::Instant),
                email,
                discord_webhook_url,
                locale,
            },
            None => Settings::default(),
        }
    }
}

pub async fn settings(tx: &mut PgConnection, owner: Uuid) -> Result<Settings, sqlx::Error> {
    Ok(settings_and_recipient(tx, owner).await?.0)
}

/// What telling an owner about a question needs: their settings and, when noti has seen them
/// register, their address.
pub type OwnerView = (Settings, Option<Recipient>);

/// One owner's [`OwnerView`], in one round trip (once per question asked, unless a batch read
/// it with the others).
pub async fn settings_and_recipient(
    tx: &mut PgConnection,
    owner: Uuid,
) -> Result<OwnerView, sqlx::Error> {
    Ok(settings_and_recipients(tx, &[owner])
        .await?
        .remove(&owner)
        .unwrap_or_default())
}

/// Several owners' [`OwnerView`]s in one query; every owner asked for has an entry.
pub async fn settings_and_recipients(
    tx: &mut PgConnection,
    owners: &[Uuid],
) -> Result<HashMap<Uuid, OwnerView>, sqlx::Error> {
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        Uuid,
        Option<String>,
        Option<bool>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    )> = sqlx::query_as(
        "SELECT o.id, s.mode, s.email, s.discord_webhook_url, s.locale, r.email, r.display_name, \
           r.locale \
         FROM unnest($1::uuid[]) AS o(id) \
         LEFT JOIN owner_settings s ON s.owner_id = o.id \
         LEFT JOIN recipients r ON r.user_id = o.id",
    )
    .bind(owners)
    .fetch_all(tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(owner, mode, email, discord, settings_locale, address, name, locale)| {
                let settings = Settings::from_row(
                    mode.zip(email)
                        .map(|(mode, email)| (mode, email, discord, settings_locale)),
                );
                let recipient = address.zip(name).map(|(email, display_name)| Recipient {
                    user_id: owner,
                    email,
                    display_name,
                    locale,
                });
                (owner, (settings, recipient))
            },
        )
        .collect())
}

pub async fn save_settings(
    tx: &mut PgConnection,
    owner: Uuid,
    s: &Settings,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO owner_settings (owner_id, mode, email, discord_webhook_url, locale) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (owner_id) DO UPDATE SET mode = EXCLUDED.mode, email = EXCLUDED.email, \
           discord_webhook_url = EXCLUDED.discord_webhook_url, locale = EXCLUDED.locale, \
           updated_at = now()",
    )
    .bind(owner)
    .bind(s.mode.as_str())
    .bind(s.email)
    .bind(&s.discord_webhook_url)
    .bind(&s.locale)
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn queue_question(
    tx: &mut PgConnection,
    event_id: Uuid,
    q: &QuestionAsked,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO pending_questions (event_id, owner_id, chatbot_slug, question, asker_role, asked_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(q.owner_id)
    .bind(&q.chatbot_slug)
    .bind(&q.question)
    .bind(&q.asker_role)
    .bind(q.asked_at)
    .execute(tx)
    .await?;
    Ok(())
}
