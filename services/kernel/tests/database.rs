//! Pools, schemas and migrations against the real PostgreSQL of the test stack.

mod common;

use kernel::db::{Database, DatabaseConfig};
use kernel::testing::TestDb;

#[tokio::test]
async fn each_service_has_its_own_schema_and_migrations() {
    let test_db = TestDb::new().await;
    let chat = Database::connect_lazy(&test_db.config(), "chat").unwrap();
    let ai = Database::connect_lazy(&test_db.config(), "ai").unwrap();
    assert!(chat.check().await.unwrap_err().contains("migrations"));

    chat.migrate(None).await.unwrap();
    // Twice is a no-op, as it must be when every replica migrates at start.
    chat.migrate(None).await.unwrap();
    ai.migrate(None).await.unwrap();
    chat.check().await.unwrap();

    sqlx::query("CREATE TABLE only_in_chat (x int)")
        .execute(chat.pool())
        .await
        .unwrap();
    let err = sqlx::query("SELECT * FROM only_in_chat")
        .execute(ai.pool())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");

    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(ai.pool())
        .await
        .unwrap();
    assert_eq!(schema, "ai");
    // The kernel's tables exist in both schemas, with their own history table.
    for s in ["chat", "ai"] {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 \
             AND table_name IN ('outbox', 'processed_events', 'dead_letters', '_kernel_migrations')",
        )
        .bind(s)
        .fetch_one(chat.pool())
        .await
        .unwrap();
        assert_eq!(n, 4, "schema {s}");
    }
    // The extensions the services need are there.
    let ext: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_extension WHERE extname IN ('vector', 'pg_trgm')",
    )
    .fetch_one(chat.pool())
    .await
    .unwrap();
    assert_eq!(ext, 2);
}

#[tokio::test]
async fn a_replica_sees_migrations_done_by_the_job() {
    let test_db = TestDb::new().await;
    let job = Database::connect_lazy(&test_db.config(), "user_svc").unwrap();
    let replica = Database::connect_lazy(&test_db.config(), "user_svc").unwrap();
    assert!(!replica.verify_migrated(None).await.unwrap());
    job.migrate(None).await.unwrap();
    assert!(replica.verify_migrated(None).await.unwrap());
    replica.check().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_database_is_reported_not_fatal() {
    // Port 1 on loopback: nothing listens there.
    let mut config = DatabaseConfig::new("postgres://postgres@127.0.0.1:1/postgres");
    config.acquire_timeout_secs = 1;
    let db = Database::connect_lazy(&config, "chat").unwrap();
    let err = db.check().await.unwrap_err();
    assert!(err.contains("database unreachable"), "{err}");
}

#[tokio::test]
async fn bad_names_and_urls_are_refused() {
    let config = DatabaseConfig::new("postgres://postgres@127.0.0.1:1/postgres");
    assert!(Database::connect_lazy(&config, "Chat; DROP").is_err());
    let bad = DatabaseConfig::new("mysql://nope");
    let err = Database::connect_lazy(&bad, "chat")
        .unwrap_err()
        .to_string();
    assert!(err.contains("database.url"), "{err}");
}

/// Whether the session of the pool's one connection sits inside a transaction left open by
/// someone else: inside one, `now()` is when it began, earlier than this statement. (A simple
/// query, one message: with the extended protocol a statement's time is its last message's.)
async fn left_in_a_transaction(pool: &sqlx::PgPool) -> bool {
    use sqlx::Row;
    sqlx::raw_sql("SELECT now() <> statement_timestamp()")
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0)
}

/// Waits until the pool's one session is idle again: its release after use (a ping) is done.
async fn back_in_the_pool(pool: &sqlx::PgPool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pool.num_idle() < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the session never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// A request dropped while its transaction is starting (a client hanging up) must not leave the
/// pooled session inside that transaction, where the next borrower's statements would run.
/// sqlx's own `Pool::begin` does (transact-rs/sqlx#4393); the first half shows it still does,
/// so that an upgrade that fixes it is noticed and `kernel::db::begin` can go.
#[tokio::test]
async fn a_transaction_dropped_while_starting_leaves_nothing_open() {
    use std::pin::pin;
    use std::task::Poll;
    let test_db = TestDb::new().await;
    // One session, handed out without a test first: the first poll of a `begin` sends BEGIN.
    let pool = || {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_lazy(&test_db.url)
            .unwrap()
    };
    let spoilt = pool();
    assert!(!left_in_a_transaction(&spoilt).await);
    // Dropped after one poll, which sent BEGIN; once in a while its answer is already there
    // and the transaction begins (and rolls back) normally: then again.
    for _ in 0..20 {
        back_in_the_pool(&spoilt).await;
        #[allow(clippy::disallowed_methods)]
        let mut begin = pin!(spoilt.begin());
        if matches!(futures::poll!(&mut begin), Poll::Pending) {
            break;
        }
    }
    assert!(
        left_in_a_transaction(&spoilt).await,
        "sqlx's begin is cancel-safe now: kernel::db::begin's task is no longer needed"
    );

    let pool = pool();
    assert!(!left_in_a_transaction(&pool).await);
    for turns in 0..20 {
        back_in_the_pool(&pool).await;
        let mut begin = pin!(kernel::db::begin(&pool));
        let _ = futures::poll!(&mut begin);
        // Its task gets as far as it gets before the caller goes away.
        for _ in 0..turns {
            tokio::task::yield_now().await;
        }
    }
    assert!(!left_in_a_transaction(&pool).await);
    // And an ordinary transaction still works.
    let mut tx = kernel::db::begin(&pool).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    assert!(!left_in_a_transaction(&pool).await);
}

#[tokio::test]
async fn a_vector_bound_in_binary_is_the_vector_its_text_form_names() {
    let test_db = TestDb::new().await;
    let db = Database::connect_lazy(&test_db.config(), "vectors").unwrap();
    db.migrate(None).await.unwrap();
    let small = [0.5f32, -1.25, 3.0];
    let text: String = sqlx::query_scalar("SELECT $1::vector::text")
        .bind(kernel::db::Vector(&small))
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(text, "[0.5,-1.25,3]");
    // Components that need every bit of a float4, as an embedding's do: the binary form and
    // the text form are the same vector, and as a parameter of an expression too.
    let v: Vec<f32> = (0..384)
        .map(|i| ((i as f32) * 0.7311).sin() / 3.0 + f32::EPSILON * i as f32)
        .collect();
    let (same, distance): (bool, f64) =
        sqlx::query_as("SELECT $1::vector = $2::vector, $1 <=> $2::vector")
            .bind(kernel::db::Vector(&v))
            .bind(kernel::db::vector_literal(&v))
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert!(same);
    assert!(distance.abs() < 1e-6, "{distance}");
    // What pgvector refuses is an error, not a panic: not a number.
    let err = sqlx::query("SELECT $1::vector")
        .bind(kernel::db::Vector(&[f32::NAN]))
        .execute(db.pool())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
}
