//! The transactional outbox: an event is written in the same transaction as the change it
//! describes, so it exists if and only if the change committed. The relay publishes it later.

use super::Event;
use sqlx::PgConnection;

/// The channel the relay listens on to wake as soon as an event commits.
pub const NOTIFY_CHANNEL: &str = "protostar_outbox";

/// Writes `event` into the outbox of the schema the connection's `search_path` names (the
/// service's own). Call it inside the transaction that makes the change.
pub async fn enqueue(tx: &mut PgConnection, event: &Event) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO outbox (id, event_type, envelope) VALUES ($1, $2, $3)")
        .bind(event.id)
        .bind(&event.event_type)
        .bind(sqlx::types::Json(event))
        .execute(&mut *tx)
        .await?;
    // Delivered at commit, and not at all on rollback: exactly the events that exist.
    sqlx::query("SELECT pg_notify($1, current_schema())")
        .bind(NOTIFY_CHANNEL)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Builds an event of `service` about `subject`, continues the request's trace in it, and writes
/// it to the outbox: what a service does for each domain event it publishes.
pub async fn publish(
    tx: &mut PgConnection,
    service: &str,
    event_type: &str,
    subject: &str,
    data: serde_json::Value,
    trace: Option<&crate::trace_context::TraceParent>,
) -> Result<Event, crate::Problem> {
    let mut event = Event::new(event_type, service, data)
        .map_err(crate::Problem::internal)?
        .with_subject(subject);
    if let Some(t) = trace {
        event = event.with_trace(t);
    }
    enqueue(tx, &event).await?;
    Ok(event)
}
