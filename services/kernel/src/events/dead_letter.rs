//! Deliveries a consumer gave up on. They are kept in the consumer's schema (not only in a
//! broker queue) so that an admin can list them with their reason and retry them, on a single
//! machine as in a cluster. Parking also publishes `system.dead_lettered`, for the alert.

use super::{Bus, BusError, Event, outbox};
use crate::db::Database;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

pub const DEAD_LETTERED: &str = "system.dead_lettered";

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub id: Uuid,
    pub consumer: String,
    pub event_id: Option<Uuid>,
    pub event_type: Option<String>,
    pub payload: String,
    pub reason: String,
    pub attempts: i32,
    pub parked_at: DateTime<Utc>,
    pub retried_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Bus(#[from] BusError),
}

pub(crate) async fn park(
    db: &Database,
    consumer: &str,
    event: Option<&Event>,
    payload: &[u8],
    reason: &str,
    attempts: u32,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO dead_letters (id, consumer, event_id, event_type, payload, reason, attempts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(consumer)
    .bind(event.map(|e| e.id))
    .bind(event.map(|e| e.event_type.clone()))
    // PostgreSQL text holds no NUL; a junk message must still be parkable, or it would come
    // back forever.
    .bind(String::from_utf8_lossy(payload).replace('\0', "\u{FFFD}"))
    .bind(reason)
    .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
    .execute(&mut *tx)
    .await?;
    // An alert about an alert that failed would loop; those are only logged.
    if event.map(|e| e.event_type.as_str()) != Some(DEAD_LETTERED) {
        let alert = Event::new(
            DEAD_LETTERED,
            consumer,
            serde_json::json!({
                "deadLetterId": id,
                "consumer": consumer,
                "schema": db.schema(),
                "eventId": event.map(|e| e.id),
                "eventType": event.map(|e| e.event_type.clone()),
                "reason": reason,
            }),
        )
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        outbox::enqueue(&mut tx, &alert).await?;
    }
    tx.commit().await
}

/// Parked deliveries of this schema's consumers, newest first.
pub async fn list(db: &Database, include_retried: bool) -> Result<Vec<DeadLetter>, sqlx::Error> {
    sqlx::query_as::<_, DeadLetter>(
        "SELECT id, consumer, event_id, event_type, payload, reason, attempts, parked_at, retried_at \
         FROM dead_letters WHERE $1 OR retried_at IS NULL ORDER BY parked_at DESC LIMIT 500",
    )
    .bind(include_retried)
    .fetch_all(db.pool())
    .await
}

/// Hands a parked delivery to its consumer again. Returns false when there is no such parked,
/// not yet retried delivery.
pub async fn retry(db: &Database, bus: &Bus, id: Uuid) -> Result<bool, DeadLetterError> {
    let mut tx = db.begin().await?;
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT consumer, payload FROM dead_letters WHERE id = $1 AND retried_at IS NULL FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((consumer, payload)) = row else {
        return Ok(false);
    };
    bus.redeliver(&consumer, payload.as_bytes()).await?;
    sqlx::query("UPDATE dead_letters SET retried_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}
