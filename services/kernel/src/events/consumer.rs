//! What happens to one delivered message, whichever bus brought it.
//!
//! At least once in, exactly once in effect: the handler runs in a transaction that also records
//! the event id as processed, and the message is acknowledged only after that commit. A
//! redelivery finds the id and changes nothing. A failing handler is retried with exponential
//! backoff; after the last attempt (or at once, for a permanent error or a message that is not
//! an event) the delivery is parked in `dead_letters` with the reason, and acknowledged.
//!
//! A subscription may take deliveries in batches ([`Subscription::with_batch`]): the deliveries
//! that are waiting together are applied in one transaction (one BEGIN, one insert of their
//! processed-event records, one COMMIT instead of those per event). Should any of them fail, the
//! whole transaction is rolled back and each is processed on its own as above, all at once, so
//! a batch changes how many round trips the database sees, not which events are applied or
//! parked. (The failed batch is one handler run more than the attempts a dead letter counts.)

use super::{Event, dead_letter};
use crate::db::Database;
use futures::future::BoxFuture;
use sqlx::PgConnection;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth trying again (a peer was down, a lock timed out).
    #[error("{0:#}")]
    Transient(anyhow::Error),
    /// Will fail the same way every time (the event makes no sense to this consumer).
    #[error("{0:#}")]
    Permanent(anyhow::Error),
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        Self::Transient(e.into())
    }
}

/// A consumer's logic. `tx` is the open transaction in the consumer's schema; whatever the
/// handler writes commits together with the record that the event was processed.
pub trait Handler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Event,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;

    /// The fresh events of a batch ([`Subscription::with_batch`]), in delivery order, in one
    /// transaction. One [`Self::handle`] after another unless a handler knows better (reading
    /// what they all need in one query first, say); any error fails the whole batch.
    fn handle_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [&'a Event],
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            for event in events {
                self.handle(&mut *tx, event).await?;
            }
            Ok(())
        })
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// One consumer: its name (and queue `protostar.<name>`), the routing patterns it binds, its
/// schema and its logic.
#[derive(Clone)]
pub struct Subscription {
    pub name: String,
    pub patterns: Vec<String>,
    pub db: Database,
    pub handler: Arc<dyn Handler>,
    pub retry: RetryPolicy,
    /// Deliveries handled at once at most, when fewer than the bus allows (`broker.prefetch`,
    /// or the in-process bus's own limit). Each delivery holds a pooled connection for its
    /// transaction while the handler runs, so a slow handler that needs more connections of the
    /// same pool (ai's ingestion) sets this below the pool's size.
    pub concurrency: Option<usize>,
    /// Deliveries applied in one transaction at most (1: each in its own). Only what is already
    /// waiting is taken together; nothing is held back to fill a batch.
    pub batch: usize,
}

impl Subscription {
    pub fn new(name: &str, patterns: &[&str], db: Database, handler: impl Handler) -> Self {
        Self {
            name: name.to_owned(),
            patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
            db,
            handler: Arc::new(handler),
            retry: RetryPolicy::default(),
            concurrency: None,
            batch: 1,
        }
    }

    /// Applies up to `n` (at least 1) waiting deliveries in one transaction. For handlers that
    /// are quick and touch only their own schema: a batch holds its transaction (and so the row
    /// locks its handlers take) until the last of them is done, and one failure makes every
    /// event of the batch go through again one by one. A handler's effects outside the
    /// transaction must already be safe to repeat (as they must be for a redelivery).
    pub fn with_batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// The deliveries taken together under a bus limit of `bus_limit` in flight: at most half
    /// of what may be in flight, so that while one batch is slow (a send waiting on a peer, a
    /// failed batch going again one by one) the other half keeps the consumer moving.
    pub fn batch_size(&self, bus_limit: usize) -> usize {
        self.batch.min(self.limit(bus_limit) / 2).max(1)
    }

    /// At most `n` (at least 1) deliveries in flight, whatever the bus would allow.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = Some(n.max(1));
        self
    }

    /// The deliveries in flight at once under a bus limit of `bus_limit`.
    pub fn limit(&self, bus_limit: usize) -> usize {
        self.concurrency
            .map_or(bus_limit, |n| n.min(bus_limit))
            .max(1)
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// What the bus does with the message afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done: applied, a duplicate, or parked.
    Ack,
    /// Could not even record the outcome (our database is down): deliver again later.
    Requeue,
}

enum Attempt {
    Done,
    Duplicate,
    Failed(HandlerError),
}

pub async fn process(sub: &Subscription, payload: &[u8]) -> Disposition {
    let event = match Event::from_bytes(payload) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(consumer = %sub.name, error = %e, "parking a message that is not an event");
            return park(sub, None, payload, &format!("malformed message: {e}"), 1).await;
        }
    };
    let span = tracing::info_span!(
        "event",
        consumer = %sub.name,
        event_id = %event.id,
        event_type = %event.event_type,
        traceparent = event.traceparent.as_deref().unwrap_or(""),
    );

    let mut last_error = String::new();
    for attempt in 1..=sub.retry.max_attempts.max(1) {
        match try_once(sub, &event).await {
            Attempt::Done => {
                super::metrics::consumed(&sub.name, "applied");
                tracing::debug!(parent: &span, attempt, "event applied");
                return Disposition::Ack;
            }
            Attempt::Duplicate => {
                super::metrics::consumed(&sub.name, "duplicate");
                tracing::debug!(parent: &span, "duplicate delivery ignored");
                return Disposition::Ack;
            }
            Attempt::Failed(HandlerError::Permanent(e)) => {
                tracing::warn!(parent: &span, error = format!("{e:#}"), "permanent failure; parking");
                return park(
                    sub,
                    Some(&event),
                    payload,
                    &format!("permanent failure: {e:#}"),
                    attempt,
                )
                .await;
            }
            Attempt::Failed(HandlerError::Transient(e)) => {
                last_error = format!("{e:#}");
                super::metrics::consumed(&sub.name, "retried");
                tracing::warn!(parent: &span, attempt, error = %last_error, "handler failed");
                if attempt < sub.retry.max_attempts {
                    tokio::time::sleep(sub.retry.delay(attempt)).await;
                }
            }
        }
    }
    park(
        sub,
        Some(&event),
        payload,
        &format!(
            "failed {} times; last error: {last_error}",
            sub.retry.max_attempts
        ),
        sub.retry.max_attempts,
    )
    .await
}

/// The semaphore permits a batch of `n` deliveries holds (one each). A batch is never larger
/// than the semaphore ([`Subscription::batch_size`]), so this never waits forever.
pub(super) fn permits(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Deliveries that were waiting together: applied in one transaction when there are several,
/// all of them events, and every handler succeeds; otherwise each through [`process`]. Returns
/// one disposition per payload, in order.
pub async fn process_batch(sub: &Subscription, payloads: &[&[u8]]) -> Vec<Disposition> {
    if payloads.len() > 1 {
        let events: Option<Vec<Event>> =
            payloads.iter().map(|p| Event::from_bytes(p).ok()).collect();
        if let Some(events) = events {
            match try_batch(sub, &events).await {
                Ok(applied) => {
                    for (event, first) in events.iter().zip(applied) {
                        let outcome = if first { "applied" } else { "duplicate" };
                        super::metrics::consumed(&sub.name, outcome);
                        tracing::debug!(
                            consumer = %sub.name,
                            event_id = %event.id,
                            event_type = %event.event_type,
                            batch = events.len(),
                            "event {outcome}"
                        );
                    }
                    return vec![Disposition::Ack; payloads.len()];
                }
                Err(e) => tracing::warn!(
                    consumer = %sub.name,
                    batch = events.len(),
                    error = %e,
                    "a batch failed; its events go one by one"
                ),
            }
        }
    }
    // At once, as they would have been without batching: one event's retries do not hold up
    // the others.
    futures::future::join_all(payloads.iter().map(|p| process(sub, p))).await
}

/// One transaction for the whole batch. Returns, per event, whether this was its first
/// application (false: processed before, or earlier in the same batch).
async fn try_batch(sub: &Subscription, events: &[Event]) -> Result<Vec<bool>, HandlerError> {
    let mut tx = sub.db.begin().await?;
    let mut ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    // In one order, so that two batches sharing events (redeliveries) queue on the primary key
    // instead of deadlocking.
    ids.sort_unstable();
    let mut fresh: HashSet<Uuid> = sqlx::query_scalar(
        "INSERT INTO processed_events (consumer, event_id) \
         SELECT $1, id FROM unnest($2::uuid[]) AS batch(id) ORDER BY id \
         ON CONFLICT DO NOTHING RETURNING event_id",
    )
    .bind(&sub.name)
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let applied: Vec<bool> = events.iter().map(|e| fresh.remove(&e.id)).collect();
    let first: Vec<&Event> = events
        .iter()
        .zip(&applied)
        .filter_map(|(e, first)| first.then_some(e))
        .collect();
    if !first.is_empty() {
        sub.handler.handle_batch(&mut tx, &first).await?;
    }
    tx.commit().await?;
    Ok(applied)
}

async fn try_once(sub: &Subscription, event: &Event) -> Attempt {
    let mut tx = match sub.db.begin().await {
        Ok(tx) => tx,
        Err(e) => return Attempt::Failed(HandlerError::Transient(e.into())),
    };
    // Concurrent duplicates wait here on the primary key until the first one commits or not.
    let fresh = sqlx::query(
        "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(&sub.name)
    .bind(event.id)
    .execute(&mut *tx)
    .await;
    match fresh {
        Ok(r) if r.rows_affected() == 0 => return Attempt::Duplicate,
        Ok(_) => {}
        Err(e) => return Attempt::Failed(HandlerError::Transient(e.into())),
    }
    if let Err(e) = sub.handler.handle(&mut tx, event).await {
        return Attempt::Failed(e);
    }
    match tx.commit().await {
        Ok(()) => Attempt::Done,
        Err(e) => Attempt::Failed(HandlerError::Transient(e.into())),
    }
}

async fn park(
    sub: &Subscription,
    event: Option<&Event>,
    payload: &[u8],
    reason: &str,
    attempts: u32,
) -> Disposition {
    match dead_letter::park(&sub.db, &sub.name, event, payload, reason, attempts).await {
        Ok(()) => {
            super::metrics::consumed(&sub.name, "parked");
            Disposition::Ack
        }
        Err(e) => {
            super::metrics::consumed(&sub.name, "requeued");
            tracing::error!(consumer = %sub.name, error = %e, "cannot park a failed delivery; it will come again");
            Disposition::Requeue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RetryPolicy;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(200));
        assert_eq!(p.delay(4), Duration::from_millis(800));
        assert_eq!(p.delay(5), Duration::from_secs(1));
        assert_eq!(p.delay(60), Duration::from_secs(1));
    }
}
