//! The relay moves committed events from a service's outbox to the bus. It takes a batch under
//! `FOR UPDATE SKIP LOCKED` (so several replicas share the work without sending a row twice at
//! once), publishes it with confirms, and marks it sent in the same transaction. If the broker is
//! down the rows stay unsent and the relay backs off: an outage delays events and loses none.

use super::{Bus, Event, outbox::notify_channel};
use crate::db::Database;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub batch: i64,
    /// How often to look even without a notification (a missed NOTIFY, a rolled-back peer).
    pub poll: Duration,
    pub max_backoff: Duration,
    /// Sent rows are kept this long for inspection, then deleted.
    pub keep_sent: Duration,
    /// Processed-event records older than this are deleted: redeliveries come within minutes.
    pub keep_processed: Duration,
    /// Relay loops working side by side on one outbox. The in-process bus returns from a
    /// publish only when every consumer has committed, so one consumer retrying an event with
    /// backoff holds its batch; with more than one lane the events committed after it go out
    /// meanwhile (`SKIP LOCKED` keeps the lanes' batches apart).
    pub lanes: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch: 200,
            poll: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            keep_sent: Duration::from_secs(7 * 24 * 3600),
            keep_processed: Duration::from_secs(30 * 24 * 3600),
            lanes: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error("publishing: {0}")]
    Publish(#[from] super::BusError),
}

pub fn spawn(
    db: Database,
    bus: Bus,
    config: RelayConfig,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // One listener per outbox, whatever the number of lanes: each notification is one
        // signal and one wake-up in PostgreSQL per listening connection.
        let wake = Arc::new(Wake::default());
        let listener = tokio::spawn(listen_loop(
            db.clone(),
            wake.clone(),
            config.poll,
            stop.clone(),
        ));
        let lanes: Vec<_> = (0..config.lanes.max(1))
            .map(|_| {
                tokio::spawn(run(
                    db.clone(),
                    bus.clone(),
                    config.clone(),
                    wake.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        for lane in lanes {
            let _ = lane.await;
        }
        let _ = listener.await;
    })
}

/// How the listener wakes the lanes. Notifications are counted, and so is the latest count a
/// look began after: a lane woken for notifications that a look begun since has covered (that
/// look sees every event committed before them) goes back to sleep without a look of its own,
/// which would be a transaction of three statements finding nothing. Under a stream of events
/// that was most lanes' wake-ups.
#[derive(Default)]
struct Wake {
    notify: Notify,
    /// Batches of notifications received.
    notified: AtomicU64,
    /// The highest `notified` read just before a look began.
    covered: AtomicU64,
}

impl Wake {
    /// A batch of notifications arrived: wakes one idle lane (or the next to go idle: `Notify`
    /// keeps one permit).
    fn received(&self) {
        self.notified.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// Called right before a look: it will see the events of every notification counted so far.
    fn looking(&self) {
        let seen = self.notified.load(Ordering::SeqCst);
        self.covered.fetch_max(seen, Ordering::SeqCst);
    }

    /// Every notification counted so far is covered by a look begun after it.
    fn covered(&self) -> bool {
        self.covered.load(Ordering::SeqCst) >= self.notified.load(Ordering::SeqCst)
    }
}

/// Turns this outbox's notifications into wake-ups of the lanes. Notifications that arrived
/// together wake once: one look takes every event committed before it.
async fn listen_loop(db: Database, wake: Arc<Wake>, poll: Duration, stop: CancellationToken) {
    let channel = notify_channel(db.schema());
    while !stop.is_cancelled() {
        let Some(mut listener) = listen(&db, &channel).await else {
            // The lanes look every `poll` anyway; try again after one.
            tokio::select! { _ = stop.cancelled() => break, _ = tokio::time::sleep(poll) => {} }
            continue;
        };
        // Events may have committed while no one listened.
        wake.received();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                received = listener.recv() => match received {
                    Ok(_) => {
                        while listener.next_buffered().is_some() {}
                        wake.received();
                    }
                    Err(e) => {
                        tracing::warn!(schema = db.schema(), error = %e, "outbox listener lost; reconnecting");
                        break;
                    }
                },
            }
        }
    }
}

async fn run(
    db: Database,
    bus: Bus,
    config: RelayConfig,
    wake: Arc<Wake>,
    stop: CancellationToken,
) {
    let mut failures: u32 = 0;
    let mut last_housekeeping = Instant::now();
    while !stop.is_cancelled() {
        wake.looking();
        match relay_batch(&db, &bus, config.batch).await {
            Ok(n) => {
                if failures > 0 {
                    tracing::info!(schema = db.schema(), "relay publishing again");
                }
                failures = 0;
                if n as i64 >= config.batch {
                    continue;
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = backoff(failures, config.max_backoff);
                tracing::warn!(schema = db.schema(), error = %e, retry_in_ms = delay.as_millis() as u64, "relay cannot publish");
                tokio::select! { _ = stop.cancelled() => break, _ = tokio::time::sleep(delay) => {} }
                continue;
            }
        }
        if last_housekeeping.elapsed() > Duration::from_secs(600) {
            last_housekeeping = Instant::now();
            if let Err(e) = housekeeping(&db, &config).await {
                tracing::warn!(schema = db.schema(), error = %e, "outbox housekeeping failed");
            }
        }
        // Nothing waiting: sleep until a commit is notified that no look has covered yet, the
        // poll interval passes (a missed notification, a listener reconnecting), or we stop.
        let poll = tokio::time::sleep(config.poll);
        tokio::pin!(poll);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                () = wake.notify.notified() => if !wake.covered() { break },
                () = &mut poll => break,
            }
        }
    }
}

fn backoff(failures: u32, cap: Duration) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << failures.min(10))).min(cap)
}

async fn listen(db: &Database, channel: &str) -> Option<PgListener> {
    let mut l = PgListener::connect_with(db.pool()).await.ok()?;
    l.listen(channel).await.ok()?;
    Some(l)
}

/// Publishes up to `batch` unsent events; returns how many.
pub async fn relay_batch(db: &Database, bus: &Bus, batch: i64) -> Result<usize, RelayError> {
    let mut tx = db.begin().await?;
    let rows: Vec<(Uuid, sqlx::types::Json<serde_json::Value>)> = sqlx::query_as(
        "SELECT id, envelope FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let mut events = Vec::with_capacity(rows.len());
    let mut ids = Vec::with_capacity(rows.len());
    for (id, envelope) in rows {
        match serde_json::from_value::<Event>(envelope.0) {
            Ok(e) => events.push(e),
            // Only our own code writes the outbox; a row we cannot read is a bug to see, not
            // a reason to stop every other event.
            Err(e) => {
                tracing::error!(schema = db.schema(), event_id = %id, error = %e, "unreadable outbox row skipped")
            }
        }
        ids.push(id);
    }
    match bus.publish(&events).await {
        Ok(()) => {
            sqlx::query("UPDATE outbox SET published_at = now(), attempts = attempts + 1 WHERE id = ANY($1)")
                .bind(&ids)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            super::metrics::get()
                .published
                .get_or_create(&super::metrics::SchemaLabel {
                    schema: db.schema().to_owned(),
                })
                .inc_by(ids.len() as u64);
            Ok(ids.len())
        }
        Err(e) => {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1)",
            )
            .bind(&ids)
            .bind(e.to_string())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            super::metrics::get()
                .publish_failures
                .get_or_create(&super::metrics::SchemaLabel {
                    schema: db.schema().to_owned(),
                })
                .inc();
            Err(e.into())
        }
    }
}

async fn housekeeping(db: &Database, config: &RelayConfig) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)")
        .bind(config.keep_sent.as_secs_f64())
        .execute(db.pool())
        .await?;
    sqlx::query(
        "DELETE FROM processed_events WHERE processed_at < now() - make_interval(secs => $1)",
    )
    .bind(config.keep_processed.as_secs_f64())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Unsent events in this schema's outbox (a readiness and metrics figure).
pub async fn pending(db: &Database) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(db.pool())
        .await
}

#[cfg(test)]
mod tests {
    use super::Wake;

    #[test]
    fn a_wake_up_is_skipped_only_when_a_later_look_covers_it() {
        let wake = Wake::default();
        assert!(wake.covered(), "nothing received yet");
        wake.received();
        assert!(!wake.covered(), "no look since the notification");
        wake.looking();
        assert!(wake.covered(), "the look began after it");
        wake.received();
        wake.received();
        assert!(!wake.covered());
        wake.looking();
        assert!(wake.covered());
    }
}
