//! 10,000 audit events through the real RabbitMQ, restarted while they flow: exactly 10,000
//! lines, no duplicates, and the chain verifies.

use audit::trail::{Rotation, Trail};
use audit::verify::verify;
use audit::{PATTERN, Writer};
use futures::future::BoxFuture;
use kernel::db::Database;
use kernel::events::{Bus, Event, Handler, HandlerError, Subscription, outbox, relay};
use kernel::testing::{PrivateBroker, TestDb};
use sqlx::PgConnection;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

struct Recorder(Writer);

impl Handler for Recorder {
    fn handle<'a>(
        &'a self,
        _tx: &'a mut PgConnection,
        e: &'a Event,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            self.0
                .record(e.clone())
                .await
                .map_err(|e| HandlerError::Transient(anyhow::anyhow!(e)))
        })
    }
}

fn lines(dir: &std::path::Path) -> Vec<String> {
    audit::trail::trail_files(dir)
        .unwrap()
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_with_a_broker_restart_make_ten_thousand_lines() {
    let n: usize = std::env::var("AUDIT_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // Logs show on failure (the test harness captures stdout).
    let _ = kernel::telemetry::init_logging(&kernel::telemetry::LogConfig {
        filter: std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
        format: kernel::telemetry::LogFormat::Text,
    });
    let broker = PrivateBroker::start();
    let test_db = TestDb::new().await;
    let producer = Database::connect_lazy(&test_db.config(), "auth").unwrap();
    let consumer = Database::connect_lazy(&test_db.config(), "audit").unwrap();
    producer.migrate(None).await.unwrap();
    consumer.migrate(None).await.unwrap();
    let dir = std::env::temp_dir().join(format!(
        "protostar-audit-eo-{}",
        uuid::Uuid::new_v4().simple()
    ));

    let bus = Bus::rabbit(&broker.url);
    let stop = CancellationToken::new();
    let writer = Writer::start(Trail::open(&dir, Rotation::Daily, None).unwrap(), 256);
    bus.start_consumer(
        Subscription::new("audit", &[PATTERN], consumer.clone(), Recorder(writer)),
        stop.clone(),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let relay_config = relay::RelayConfig {
        max_backoff: Duration::from_secs(1),
        ..Default::default()
    };
    relay::spawn(producer.clone(), bus.clone(), relay_config, stop.clone());

    // Producers commit in transactions of 100, the way a busy auth service would.
    let mut ids = HashSet::new();
    for batch in 0..n / 100 {
        let mut tx = producer.begin().await.unwrap();
        for i in 0..100 {
            let e = Event::new(
                "audit.sign_in_failed",
                "auth",
                serde_json::json!({"actor": "anonymous", "outcome": "failure", "n": batch * 100 + i}),
            )
            .unwrap();
            ids.insert(e.id);
            outbox::enqueue(&mut tx, &e).await.unwrap();
        }
        tx.commit().await.unwrap();
        if batch == n / 200 {
            // Half-way: the broker goes away and comes back while events keep coming.
            broker.stop();
            broker.restart();
        }
    }

    let deadline = Instant::now() + Duration::from_secs(240);
    while lines(&dir).len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Let any straggling redelivery arrive before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = lines(&dir);
    assert_eq!(all.len(), n, "lines in the trail");
    let written: HashSet<uuid::Uuid> = all
        .iter()
        .map(|l| audit::record::parse_line(l).unwrap().0.event_id)
        .collect();
    assert_eq!(written.len(), n, "distinct events in the trail");
    assert_eq!(written, ids);
    assert_eq!(verify(&dir).unwrap().lines, n as u64);
    stop.cancel();
    std::fs::remove_dir_all(dir).ok();
}
