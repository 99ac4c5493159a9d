//! The delivery ledger: one row per (event, channel, recipient), written in transactions of its
//! own, apart from the consumer's, so what it says survives whatever happens to the delivery.
//!
//! States: `sending` (claimed; the send may be under way or may have happened), `sent`
//! (delivered), `failed` (known not delivered: the peer refused or never answered before we gave
//! up), `unknown` (a later delivery found `sending`: the process died or lost its database
//! between sending and recording, so the message may or may not be out).
//!
//! A claim succeeds from nothing, `failed` or `unknown`; it does not from `sending` or `sent`.
//! `unknown` is reached only by parking the event (the consumer's dead letters), so the only way
//! to send it again is an admin's retry of that dead letter, a person's decision after looking.

use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key<'a> {
    /// The event (or digest) this message is for.
    pub id: Uuid,
    /// `email` or `discord`.
    pub channel: &'a str,
    /// The address, or the webhook without its token.
    pub recipient: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours to send.
    Send,
    /// Delivered before: do nothing.
    AlreadySent,
    /// An earlier attempt may have delivered it; it is now marked `unknown`.
    Uncertain,
}

pub async fn claim(pool: &PgPool, key: &Key<'_>) -> Result<Claim, sqlx::Error> {
    let claimed: Option<String> = sqlx::query_scalar(
        "INSERT INTO deliveries (id, channel, recipient, state, attempts) \
         VALUES ($1, $2, $3, 'sending', 1) \
         ON CONFLICT (id, channel, recipient) DO UPDATE \
           SET state = 'sending', attempts = deliveries.attempts + 1, updated_at = now() \
           WHERE deliveries.state IN ('failed', 'unknown') \
         RETURNING state",
    )
    .bind(key.id)
    .bind(key.channel)
    .bind(key.recipient)
    .fetch_optional(pool)
    .await?;
    if claimed.is_some() {
        return Ok(Claim::Send);
    }
    let state: Option<String> = sqlx::query_scalar(
        "UPDATE deliveries SET state = CASE WHEN state = 'sending' THEN 'unknown' ELSE state END, \
           updated_at = now() \
         WHERE id = $1 AND channel = $2 AND recipient = $3 \
         RETURNING CASE WHEN state = 'sent' THEN 'sent' ELSE 'unknown' END",
    )
    .bind(key.id)
    .bind(key.channel)
    .bind(key.recipient)
    .fetch_optional(pool)
    .await?;
    Ok(match state.as_deref() {
        Some("sent") => Claim::AlreadySent,
        _ => Claim::Uncertain,
    })
}

/// Records a delivery. Tried a few times: a failure here after a successful send is the one
/// thing that turns into an `unknown`.
pub async fn sent(pool: &PgPool, key: &Key<'_>) -> Result<(), sqlx::Error> {
    let mut delay = Duration::from_millis(100);
    let mut tries = 0;
    loop {
        let r = sqlx::query(
            "UPDATE deliveries SET state = 'sent', sent_at = now(), updated_at = now(), last_error = NULL \
             WHERE id = $1 AND channel = $2 AND recipient = $3",
        )
        .bind(key.id)
        .bind(key.channel)
        .bind(key.recipient)
        .execute(pool)
        .await;
        tries += 1;
        match r {
            Ok(_) => return Ok(()),
            Err(e) if tries >= 5 => return Err(e),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
}

/// Records a failure known not to have delivered anything, so the next attempt may send.
pub async fn failed(pool: &PgPool, key: &Key<'_>, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE deliveries SET state = 'failed', last_error = $4, updated_at = now() \
         WHERE id = $1 AND channel = $2 AND recipient = $3 AND state = 'sending'",
    )
    .bind(key.id)
    .bind(key.channel)
    .bind(key.recipient)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// Counts by state, for tests and the digest job's report.
pub async fn count(pool: &PgPool, state: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = $1")
        .bind(state)
        .fetch_one(pool)
        .await
}
