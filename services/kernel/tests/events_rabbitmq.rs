//! Events over the real RabbitMQ of the test stack, and a private one for the outage test.

mod common;

use common::*;
use kernel::events::{Bus, Subscription, dead_letter, relay};
use kernel::testing::{PrivateBroker, stack_env};
use lapin::options::BasicPublishOptions;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn events_reach_the_consumers_whose_patterns_match() {
    let (_db, producer, consumer) = two_services().await;
    let bus = Bus::rabbit(&stack_env("PROTOSTAR_TEST_BROKER_URL"));
    let stop = CancellationToken::new();
    let t = unique_type();
    let other = unique_type();
    let prefix = t.split('.').next().unwrap().to_owned();
    let name = format!("rec_{}", uuid::Uuid::new_v4().simple());
    bus.start_consumer(
        Subscription::new(
            &name,
            &[format!("{prefix}.*").as_str()],
            consumer.clone(),
            Record,
        ),
        stop.clone(),
    );
    // The consumer's queue must be bound before anything is published.
    wait_for_consumer(&stack_env("PROTOSTAR_TEST_BROKER_URL"), &name).await;
    relay::spawn(
        producer.clone(),
        bus.clone(),
        Default::default(),
        stop.clone(),
    );
    produce(&producer, &t, 20).await;
    produce(&producer, &other, 5).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            count(&consumer, "SELECT count(*) FROM effects").await == 20
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let foreign: i64 = sqlx::query_scalar("SELECT count(*) FROM effects WHERE event_type <> $1")
        .bind(&t)
        .fetch_one(consumer.pool())
        .await
        .unwrap();
    assert_eq!(foreign, 0, "events of another type reached the consumer");
    assert_eq!(count(&consumer, "SELECT count(*) FROM effects").await, 20);
    assert_eq!(
        count(
            &producer,
            "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        )
        .await,
        0
    );
    stop.cancel();
}

#[tokio::test]
async fn a_malformed_message_on_the_queue_is_parked_with_the_reason() {
    let (_db, _producer, consumer) = two_services().await;
    let url = stack_env("PROTOSTAR_TEST_BROKER_URL");
    let bus = Bus::rabbit(&url);
    let stop = CancellationToken::new();
    let t = unique_type();
    let name = format!("strict_{}", uuid::Uuid::new_v4().simple());
    bus.start_consumer(
        Subscription::new(&name, &[t.as_str()], consumer.clone(), Record),
        stop.clone(),
    );
    wait_for_consumer(&url, &name).await;

    // Someone else's client puts garbage on the exchange with our routing key.
    let conn = lapin::Connection::connect(&url, Default::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.basic_publish(
        kernel::events::EXCHANGE.into(),
        t.clone().into(),
        BasicPublishOptions::default(),
        b"<html>not an event</html>",
        Default::default(),
    )
    .await
    .unwrap();
    assert!(
        eventually(Duration::from_secs(20), || async {
            count(&consumer, "SELECT count(*) FROM dead_letters").await == 1
        })
        .await
    );
    let parked = dead_letter::list(&consumer, false).await.unwrap();
    assert!(
        parked[0].reason.starts_with("malformed message"),
        "{}",
        parked[0].reason
    );
    assert_eq!(parked[0].payload, "<html>not an event</html>");

    // The consumer is still alive: a good event after the bad one is applied.
    let good = kernel::events::Event::new(&t, "test", ()).unwrap();
    bus.publish(&[good]).await.unwrap();
    assert!(
        eventually(Duration::from_secs(20), || async {
            count(&consumer, "SELECT count(*) FROM effects").await == 1
        })
        .await
    );
    conn.close(0, "done".into()).await.ok();
    stop.cancel();
}

/// The broker is stopped while producers commit: every commit succeeds, nothing is published;
/// when the broker returns, every event is delivered and applied exactly once.
#[tokio::test]
async fn a_broker_outage_delays_events_and_loses_none() {
    let broker = PrivateBroker::start();
    let (_db, producer, consumer) = two_services().await;
    let bus = Bus::rabbit(&broker.url);
    let stop = CancellationToken::new();
    let t = unique_type();

    // An event nobody is bound for yet is kept aside by the broker, not dropped.
    bus.publish(&[kernel::events::Event::new(&unique_type(), "producer", ()).unwrap()])
        .await
        .unwrap();
    let conn = lapin::Connection::connect(&broker.url, Default::default())
        .await
        .unwrap();
    let unrouted = conn
        .create_channel()
        .await
        .unwrap()
        .queue_declare(
            "protostar.unrouted".into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(unrouted.message_count(), 1);
    conn.close(0, "done".into()).await.ok();

    bus.start_consumer(
        Subscription::new("outage", &[t.as_str()], consumer.clone(), Record),
        stop.clone(),
    );
    wait_for_consumer(&broker.url, "outage").await;
    let relay_config = relay::RelayConfig {
        max_backoff: Duration::from_secs(1),
        ..Default::default()
    };
    relay::spawn(producer.clone(), bus.clone(), relay_config, stop.clone());
    produce(&producer, &t, 10).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            count(&consumer, "SELECT count(*) FROM effects").await == 10
        })
        .await
    );

    broker.stop();
    produce(&producer, &t, 40).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        count(
            &producer,
            "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        )
        .await,
        40
    );
    assert!(
        count(
            &producer,
            "SELECT count(*) FROM outbox WHERE last_error IS NOT NULL"
        )
        .await
            > 0
    );
    assert!(bus.check().await.is_err());

    broker.restart();
    assert!(
        eventually(Duration::from_secs(60), || async {
            count(&consumer, "SELECT count(*) FROM effects").await >= 50
        })
        .await,
        "after the broker returned only {} of 50 events were applied",
        count(&consumer, "SELECT count(*) FROM effects").await
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(&consumer, "SELECT count(*) FROM effects").await, 50);
    assert_eq!(
        count(&consumer, "SELECT count(DISTINCT event_id) FROM effects").await,
        50
    );
    assert_eq!(
        count(
            &producer,
            "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        )
        .await,
        0
    );
    bus.check().await.unwrap();
    stop.cancel();
}

#[tokio::test]
async fn deliveries_waiting_together_are_applied_in_batches() {
    let (_db, _producer, consumer) = two_services().await;
    let url = stack_env("PROTOSTAR_TEST_BROKER_URL");
    let bus = Bus::rabbit(&url);
    let stop = CancellationToken::new();
    let t = unique_type();
    let name = format!("batch_{}", uuid::Uuid::new_v4().simple());
    let probe = std::sync::Arc::new(BatchProbe::new(3));
    let sub = Subscription::new(
        &name,
        &[t.as_str()],
        consumer.clone(),
        ProbeRef(probe.clone()),
    )
    .with_retry(fast_retry(3))
    .with_batch(8);
    // The queue first, with no one consuming: what is published waits in it, and the consumer
    // started afterwards is handed a prefetch's worth at once.
    let first = CancellationToken::new();
    bus.start_consumer(sub.clone(), first.clone());
    wait_for_consumer(&url, &name).await;
    first.cancel();
    wait_for_no_consumer(&url, &name).await;
    let events = numbered(&t, 40);
    bus.publish(&events).await.unwrap();
    bus.start_consumer(sub, stop.clone());
    assert!(
        eventually(Duration::from_secs(30), || async {
            count(&consumer, "SELECT count(*) FROM processed_events").await == 40
        })
        .await
    );
    assert!(
        probe.failed.load(std::sync::atomic::Ordering::SeqCst),
        "the poison was seen"
    );
    assert_batched_once(&consumer, &events).await;
    stop.cancel();
}
