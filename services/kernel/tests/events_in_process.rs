//! The outbox, the relay and consumers with the in-process bus (a single machine, no broker),
//! against real PostgreSQL.

mod common;

use common::*;
use kernel::events::{Bus, Subscription, dead_letter, relay};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn committed_events_are_applied_once_and_rolled_back_ones_never_exist() {
    let (_db, producer, consumer) = two_services().await;
    let bus = Bus::local();
    let stop = CancellationToken::new();
    let t = unique_type();
    bus.start_consumer(
        Subscription::new("recorder", &["*.happened"], consumer.clone(), Record),
        stop.clone(),
    );
    relay::spawn(
        producer.clone(),
        bus.clone(),
        Default::default(),
        stop.clone(),
    );

    let events = produce(&producer, &t, 25).await;
    // A rolled-back transaction leaves no event behind.
    {
        let mut tx = producer.begin().await.unwrap();
        let e = kernel::events::Event::new(&t, "producer", ()).unwrap();
        kernel::events::outbox::enqueue(&mut tx, &e).await.unwrap();
        tx.rollback().await.unwrap();
    }
    assert!(
        eventually(Duration::from_secs(20), || async {
            count(&consumer, "SELECT count(*) FROM effects").await == 25
        })
        .await
    );

    // Deliver every event again, as a crash between commit and "sent" would: nothing changes.
    for e in &events {
        bus.redeliver("recorder", &e.to_bytes()).await.unwrap();
    }
    assert_eq!(count(&consumer, "SELECT count(*) FROM effects").await, 25);
    assert_eq!(
        count(&consumer, "SELECT count(DISTINCT event_id) FROM effects").await,
        25
    );
    assert_eq!(
        count(
            &producer,
            "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        )
        .await,
        0
    );

    // The outcomes are counted for /metrics.
    let metrics = kernel::telemetry::Metrics::new().encode();
    assert!(
        metrics.contains(
            "protostar_events_consumed_total{consumer=\"recorder\",outcome=\"applied\"} 25"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "protostar_events_consumed_total{consumer=\"recorder\",outcome=\"duplicate\"} 25"
        ),
        "{metrics}"
    );
    stop.cancel();
}

#[tokio::test]
async fn waiting_events_are_applied_in_batches_and_a_failed_batch_goes_one_by_one() {
    let (_db, _producer, consumer) = two_services().await;
    let bus = Bus::local();
    let stop = CancellationToken::new();
    let t = unique_type();
    let probe = std::sync::Arc::new(BatchProbe::new(7));
    bus.start_consumer(
        Subscription::new(
            "batcher",
            &[t.as_str()],
            consumer.clone(),
            ProbeRef(probe.clone()),
        )
        .with_retry(fast_retry(3))
        .with_batch(8),
        stop.clone(),
    );
    // Published at once, as a relay's look does: they wait together in the consumer's inbox.
    let events = numbered(&t, 40);
    bus.publish(&events).await.unwrap();
    assert!(
        probe.failed.load(std::sync::atomic::Ordering::SeqCst),
        "the poison was seen"
    );
    let txs = assert_batched_once(&consumer, &events).await;
    // 40 events in batches of 8 at most: at least 5 transactions, and the poisoned batch's
    // events each in one of their own afterwards.
    assert!(txs >= 5, "{txs}");

    // Redelivered, together: duplicates, nothing applied twice.
    bus.publish(&events).await.unwrap();
    assert_batched_once(&consumer, &events).await;
    let metrics = kernel::telemetry::Metrics::new().encode();
    assert!(
        metrics.contains(
            "protostar_events_consumed_total{consumer=\"batcher\",outcome=\"duplicate\"} 40"
        ),
        "{metrics}"
    );
    stop.cancel();
}

#[tokio::test]
async fn transient_failures_are_retried_and_permanent_ones_parked_with_the_reason() {
    let (_db, producer, consumer) = two_services().await;
    let bus = Bus::local();
    let stop = CancellationToken::new();
    let t = unique_type();
    bus.start_consumer(
        Subscription::new(
            "flaky",
            &[t.as_str()],
            consumer.clone(),
            Flaky::new(2, false),
        )
        .with_retry(fast_retry(5)),
        stop.clone(),
    );
    relay::spawn(
        producer.clone(),
        bus.clone(),
        Default::default(),
        stop.clone(),
    );
    produce(&producer, &t, 3).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            count(&consumer, "SELECT count(*) FROM effects").await == 3
        })
        .await
    );
    assert_eq!(
        count(&consumer, "SELECT count(*) FROM dead_letters").await,
        0
    );
    stop.cancel();

    // A consumer that always fails: parked after its attempts, with the reason, and an alert.
    let (_db2, producer, consumer) = two_services().await;
    let stop = CancellationToken::new();
    let bus = Bus::local();
    bus.start_consumer(
        Subscription::new(
            "hopeless",
            &[t.as_str()],
            consumer.clone(),
            Flaky::new(100, false),
        )
        .with_retry(fast_retry(3)),
        stop.clone(),
    );
    relay::spawn(
        producer.clone(),
        bus.clone(),
        Default::default(),
        stop.clone(),
    );
    produce(&producer, &t, 1).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            count(&consumer, "SELECT count(*) FROM dead_letters").await == 1
        })
        .await
    );
    let parked = dead_letter::list(&consumer, false).await.unwrap();
    assert_eq!(parked[0].attempts, 3);
    assert!(
        parked[0].reason.contains("simulated outage #3"),
        "{}",
        parked[0].reason
    );
    assert_eq!(
        count(
            &consumer,
            "SELECT count(*) FROM outbox WHERE event_type = 'system.dead_lettered'"
        )
        .await,
        1
    );
    assert_eq!(count(&consumer, "SELECT count(*) FROM effects").await, 0);
    stop.cancel();
}

#[tokio::test]
async fn malformed_messages_are_parked_and_a_retry_redelivers() {
    let (_db, _producer, consumer) = two_services().await;
    let bus = Bus::local();
    let stop = CancellationToken::new();
    let t = unique_type();
    bus.start_consumer(
        Subscription::new("strict", &[t.as_str()], consumer.clone(), Record),
        stop.clone(),
    );

    bus.redeliver("strict", b"{\"not\": \"an event\"")
        .await
        .unwrap();
    bus.redeliver("strict", &[0xff, 0xfe, 0x00]).await.unwrap();
    let parked = dead_letter::list(&consumer, false).await.unwrap();
    assert_eq!(parked.len(), 2);
    assert!(
        parked
            .iter()
            .all(|d| d.reason.starts_with("malformed message")),
        "{parked:?}"
    );

    // A permanent failure parks at once; after the consumer is fixed an admin retries it.
    let fixed_later = kernel::events::Event::new(&t, "producer", serde_json::json!({})).unwrap();
    let (_db2, _p, consumer2) = two_services().await;
    let stop2 = CancellationToken::new();
    bus.start_consumer(
        Subscription::new(
            "picky",
            &[t.as_str()],
            consumer2.clone(),
            Flaky::new(0, true),
        ),
        stop2.clone(),
    );
    bus.redeliver("picky", &fixed_later.to_bytes())
        .await
        .unwrap();
    let parked = dead_letter::list(&consumer2, false).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].attempts, 1);
    assert!(parked[0].reason.starts_with("permanent failure"));
    stop2.cancel();
    bus.start_consumer(
        Subscription::new("picky", &[t.as_str()], consumer2.clone(), Record),
        CancellationToken::new(),
    );
    assert!(
        dead_letter::retry(&consumer2, &bus, parked[0].id)
            .await
            .unwrap()
    );
    assert_eq!(count(&consumer2, "SELECT count(*) FROM effects").await, 1);
    // Retrying twice does nothing.
    assert!(
        !dead_letter::retry(&consumer2, &bus, parked[0].id)
            .await
            .unwrap()
    );
    assert!(
        dead_letter::list(&consumer2, false)
            .await
            .unwrap()
            .is_empty()
    );
    stop.cancel();
}

/// A commit wakes its outbox's relay through the notification, not the poll (set to an hour
/// here), however many lanes the relay has; and the relay listens on one connection, on its own
/// schema's channel, so commits in other schemas never wake it.
#[tokio::test]
async fn a_commit_wakes_its_own_relay_at_once_through_one_listener() {
    let (_db, producer, consumer) = two_services().await;
    let bus = Bus::local();
    let stop = CancellationToken::new();
    let t = unique_type();
    bus.start_consumer(
        Subscription::new("recorder", &[t.as_str()], consumer.clone(), Record),
        stop.clone(),
    );
    let config = relay::RelayConfig {
        lanes: 4,
        poll: Duration::from_secs(3600),
        ..Default::default()
    };
    relay::spawn(producer.clone(), bus.clone(), config, stop.clone());

    let channel = kernel::events::outbox::notify_channel(producer.schema());
    let listening = format!("LISTEN \"{channel}\"");
    let listeners = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_stat_activity WHERE query = $1")
            .bind(&listening)
            .fetch_one(producer.pool())
            .await
            .unwrap()
    };
    assert!(eventually(Duration::from_secs(10), || async { listeners().await == 1 }).await);

    // Several rounds, each after the lanes have gone back to sleep: every one is woken by
    // its commit (the first look at start-up found nothing, and the poll is an hour away).
    for round in 1..=3_i64 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        produce(&producer, &t, 5).await;
        assert!(
            eventually(Duration::from_secs(10), || async {
                count(&consumer, "SELECT count(*) FROM effects").await == round * 5
            })
            .await,
            "round {round} was not relayed"
        );
    }
    // One listener for four lanes (the earlier design had a listener per lane: four, always).
    // Read until it settles: a listener that reconnected under load leaves its old connection
    // showing `LISTEN` until its `UNLISTEN` has run.
    assert!(
        eventually(Duration::from_secs(10), || async { listeners().await == 1 }).await,
        "one listening connection for four lanes, not {}",
        listeners().await
    );
    stop.cancel();
}
