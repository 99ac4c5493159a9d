//! A RabbitMQ outage delays `content.uploaded`, never loses or repeats it: the broker (a private
//! one, so no other test's consumers take our events) is stopped during 100 uploads; every
//! upload is still accepted, and once the broker is back a queue of this test's own receives
//! each of the 100 events exactly once.

mod common;

use common::fixtures;
use common::*;
use kernel::events::content::{self as wire, Uploaded};
use kernel::testing::PrivateBroker;
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use uuid::Uuid;

const UPLOADS: usize = 100;

async fn channel(url: &str) -> (lapin::Connection, lapin::Channel) {
    let conn = lapin::Connection::connect(url, Default::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    (conn, ch)
}

#[tokio::test]
async fn uploads_during_a_broker_outage_are_published_once_it_returns() {
    let broker = PrivateBroker::start();
    let app = spawn_with(Options {
        broker_url: Some(broker.url.clone()),
        ..Default::default()
    })
    .await;

    // The service declared the exchange when its consumer started; bind a durable queue of our
    // own to `content.uploaded` so that it survives the broker's restart.
    let queue = format!("test.uploaded.{}", Uuid::new_v4().simple());
    {
        let (conn, ch) = channel(&broker.url).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let probe = conn.create_channel().await.unwrap();
            let passive = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            if probe
                .queue_declare("protostar.chat".into(), passive, Default::default())
                .await
                .is_ok()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chat never bound its queue");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        ch.queue_declare(
            queue.clone().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .unwrap();
        ch.queue_bind(
            queue.clone().into(),
            kernel::events::EXCHANGE.into(),
            wire::UPLOADED.into(),
            QueueBindOptions::default(),
            Default::default(),
        )
        .await
        .unwrap();
        conn.close(0, "bound".into()).await.ok();
    }

    broker.stop();
    let me = app.protostar();
    let mut accepted = HashSet::new();
    for i in 0..UPLOADS {
        let text = format!("{}\nUpload {i} during the outage.\n", fixtures::TEXT_EN);
        let res = app.upload(&me, text.into_bytes(), "letter.txt").await;
        assert_eq!(
            res.status(),
            202,
            "upload {i} was refused during the outage"
        );
        let doc: serde_json::Value = res.json().await.unwrap();
        accepted.insert(doc["id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    assert_eq!(accepted.len(), UPLOADS);
    assert_eq!(app.rows().await, UPLOADS as i64);
    assert_eq!(app.blob_keys().await.len(), UPLOADS);
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE event_type = $1 AND published_at IS NULL",
    )
    .bind(wire::UPLOADED)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        waiting, UPLOADS as i64,
        "events were published with the broker down"
    );

    broker.restart();
    let (_conn, ch) = channel(&broker.url).await;
    let mut seen: HashMap<Uuid, u32> = HashMap::new();
    let mut documents = HashSet::new();
    // The relay backs off up to 30 s while the broker is away.
    let deadline = Instant::now() + Duration::from_secs(90);
    while seen.len() < UPLOADS && Instant::now() < deadline {
        match ch
            .basic_get(queue.clone().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            Some(msg) => {
                let e = kernel::events::Event::from_bytes(&msg.delivery.data).unwrap();
                let u: Uploaded = e.data_as().unwrap();
                documents.insert(u.document_id);
                *seen.entry(e.id).or_default() += 1;
            }
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    // Anything published twice would arrive right behind the first copies.
    tokio::time::sleep(Duration::from_secs(2)).await;
    while let Some(msg) = ch
        .basic_get(queue.clone().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let e = kernel::events::Event::from_bytes(&msg.delivery.data).unwrap();
        *seen.entry(e.id).or_default() += 1;
    }
    assert_eq!(seen.len(), UPLOADS, "distinct events received");
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "published more than once: {repeated:?}"
    );
    assert_eq!(documents, accepted, "every accepted upload was announced");
}
