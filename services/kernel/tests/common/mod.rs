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
            && q.consumer_count() > 0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "consumer {consumer} never appeared on the broker"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    conn.close(0, "done".into()).await.ok();
}
