//! Shared helpers for the kernel's integration tests (real PostgreSQL, RabbitMQ, S3).
#![allow(dead_code)]

use futures::future::BoxFuture;
use kernel::db::Database;
use kernel::events::{Event, Handler, HandlerError};
use kernel::testing::TestDb;
use sqlx::PgConnection;
use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it is true or `limit` passes; returns whether it became true.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A database with a producer schema and a consumer schema, both migrated, and an `effects`
/// table in the consumer's schema with no uniqueness, so that a double application shows.
pub async fn two_services() -> (TestDb, Database, Database) {
    let test_db = TestDb::new().await;
    let producer = Database::connect_lazy(&test_db.config(), "producer").unwrap();
    let consumer = Database::connect_lazy(&test_db.config(), "consumer").unwrap();
    producer.migrate(None).await.unwrap();
    consumer.migrate(None).await.unwrap();
    sqlx::query("CREATE TABLE effects (event_id uuid NOT NULL, event_type text NOT NULL, at timestamptz DEFAULT now())")
        .execute(consumer.pool())
        .await
        .unwrap();
    (test_db, producer, consumer)
}

/// Commits `n` events of `event_type` from the producer, each in its own transaction together
/// with a business row, the way a service does.
pub async fn produce(producer: &Database, event_type: &str, n: usize) -> Vec<Event> {
    sqlx::query("CREATE TABLE IF NOT EXISTS things (id uuid PRIMARY KEY)")
        .execute(producer.pool())
        .await
        .unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let mut tx = producer.begin().await.unwrap();
        let id = uuid::Uuid::now_v7();
        sqlx::query("INSERT INTO things (id) VALUES ($1)")
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
        let e = Event::new(
            event_type,
            "producer",
            serde_json::json!({"thing": id, "i": i}),
        )
        .unwrap();
        kernel::events::outbox::enqueue(&mut tx, &e).await.unwrap();
        tx.commit().await.unwrap();
        out.push(e);
    }
    out
}

pub async fn count(db: &Database, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db.pool()).await.unwrap()
}

/// Records each event it sees in `effects`.
pub struct Record;

impl Handler for Record {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        e: &'a Event,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO effects (event_id, event_type) VALUES ($1, $2)")
                .bind(e.id)
                .bind(&e.event_type)
                .execute(tx)
                .await?;
            Ok(())
        })
    }
}

/// Fails the first `failures` times it sees each event, then records it.
pub struct Flaky {
    pub failures: u32,
    pub seen: std::sync::Mutex<std::collections::HashMap<uuid::Uuid, u32>>,
    pub permanent: bool,
}

impl Flaky {
    pub fn new(failures: u32, permanent: bool) -> Self {
        Self {
            failures,
            seen: Default::default(),
            permanent,
        }
    }
}

impl Handler for Flaky {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        e: &'a Event,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let n = {
                let mut seen = self.seen.lock().unwrap();
                let n = seen.entry(e.id).or_insert(0);
                *n += 1;
                *n
            };
            if self.permanent {
                return Err(HandlerError::Permanent(anyhow::anyhow!(
                    "this consumer cannot use {}",
                    e.event_type
                )));
            }
            if n <= self.failures {
                return Err(HandlerError::Transient(anyhow::anyhow!(
                    "simulated outage #{n}"
                )));
            }
            sqlx::query("INSERT INTO effects (event_id, event_type) VALUES ($1, $2)")
                .bind(e.id)
                .bind(&e.event_type)
                .execute(tx)
                .await?;
            Ok(())
        })
    }
}

/// Records each event with the transaction that applied it (`batch_effects`), and fails the
/// first time it sees the event whose `i` is `poison`: the batch around it must roll back and
/// go one by one.
pub struct BatchProbe {
    pub poison: i64,
    pub failed: std::sync::atomic::AtomicBool,
}

impl BatchProbe {
    pub fn new(poison: i64) -> Self {
        Self {
            poison,
            failed: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Handler for BatchProbe {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        e: &'a Event,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS batch_effects (event_id uuid NOT NULL, tx bigint NOT NULL)",
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO batch_effects (event_id, tx) VALUES ($1, txid_current())")
                .bind(e.id)
                .execute(&mut *tx)
                .await?;
            let i = e.data.get("i").and_then(|v| v.as_i64());
            if i == Some(self.poison)
                && !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                return Err(HandlerError::Transient(anyhow::anyhow!("poisoned once")));
            }
            Ok(())
        })
    }
}

/// A [`BatchProbe`] the test keeps a hold of.
pub struct ProbeRef(pub std::sync::Arc<BatchProbe>);

impl Handler for ProbeRef {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        e: &'a Event,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        self.0.handle(tx, e)
    }
}

/// Events of `event_type` numbered `i` = 0..n, not yet anywhere (for publishing directly).
pub fn numbered(event_type: &str, n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| Event::new(event_type, "producer", serde_json::json!({ "i": i })).unwrap())
        .collect()
}

/// After a [`BatchProbe`] consumer saw `events`: each applied exactly once, in fewer
/// transactions than events (batches happened), none parked. Returns the transactions.
pub async fn assert_batched_once(consumer: &Database, events: &[Event]) -> i64 {
    let applied: Vec<(uuid::Uuid, i64)> =
        sqlx::query_as("SELECT event_id, count(*) FROM batch_effects GROUP BY event_id")
            .fetch_all(consumer.pool())
            .await
            .unwrap();
    assert_eq!(applied.len(), events.len(), "every event applied");
    assert!(applied.iter().all(|(_, n)| *n == 1), "{applied:?}");
    for e in events {
        assert!(
            applied.iter().any(|(id, _)| *id == e.id),
            "{} missing",
            e.id
        );
    }
    assert_eq!(
        count(consumer, "SELECT count(*) FROM processed_events").await,
        events.len() as i64
    );
    assert_eq!(
        count(consumer, "SELECT count(*) FROM dead_letters").await,
        0
    );
    let txs = count(consumer, "SELECT count(DISTINCT tx) FROM batch_effects").await;
    assert!(
        txs < events.len() as i64,
        "{txs} transactions for {} events: no batch",
        events.len()
    );
    txs
}

/// An event type of this test's own, so that tests sharing one broker never see each other's.
pub fn unique_type() -> String {
    format!("t{}.happened", uuid::Uuid::new_v4().simple())
}

pub fn fast_retry(max_attempts: u32) -> kernel::events::RetryPolicy {
    kernel::events::RetryPolicy {
        max_attempts,
        first_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
    }
}

/// Waits until a consumer's queue exists and has a consumer on the broker at `url`: events
/// published before that are kept aside (the unrouted queue), not delivered to it.
pub async fn wait_for_consumer(url: &str, consumer: &str) {
    wait_for_queue(url, consumer, |consumers| consumers > 0).await;
}

/// Waits until a consumer's queue exists with no consumer attached (it keeps what is
/// published for the next one).
pub async fn wait_for_no_consumer(url: &str, consumer: &str) {
    wait_for_queue(url, consumer, |consumers| consumers == 0).await;
}

async fn wait_for_queue(url: &str, consumer: &str, ready: impl Fn(u32) -> bool) {
    let queue = format!("protostar.{consumer}");
    let conn = lapin::Connection::connect(url, Default::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // A passive declare fails (and closes the channel) while the queue does not exist.
        let ch = conn.create_channel().await.unwrap();
        let declared = ch
            .queue_declare(
                queue.clone().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await;
        if let Ok(q) = declared
            && ready(q.consumer_count())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queue {queue} never reached the consumer count awaited"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    conn.close(0, "done".into()).await.ok();
}
