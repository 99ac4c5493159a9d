//! A RabbitMQ outage delays `content.uploaded`, never loses or repeats it: the broker (a private
//! one, so no other test's consumers take our events) is stopped during 100 uploads; every
//! upload is still accepted, and once the broker is back a queue of this test's own receives
//! each of the 100 events exactly once. The real ai service (`ai::init`: its consumer, the
//! local e5 model, its outbox relay) consumes from the same broker and the same database and
//! bucket: all 100 documents become `ready` in chat's table through `content.status_changed`,
//! each indexed exactly once — its chunks in ai's schema are what one ingestion of its content
//! gives, no (document, version, ordinal) twice, one `content.uploaded` processed per document
//! and one run of ingestion per document (extracting, indexing, ready, each announced once).

mod common;

use ai::chunk::{self as chunking, ChunkConfig};
use common::fixtures;
use common::*;
use kernel::events::content::{self as wire, Uploaded};
use kernel::service::Platform;
use kernel::testing::PrivateBroker;
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
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
async fn uploads_during_a_broker_outage_are_published_once_it_returns_and_indexed_once() {
    let broker = PrivateBroker::start();
    // Chat calls ai's internal API on ai's admin listener; the ai started below serves it.
    let ai_admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = spawn_with(Options {
        broker_url: Some(broker.url.clone()),
        extra: vec![(
            "PROTOSTAR_UPSTREAMS__AI__ADMIN",
            format!("http://{}", ai_admin.local_addr().unwrap()),
        )],
    })
    .await;
    // The ai target as `protostar serve --target ai` runs it, beside chat: the same settings
    // (database, bucket, broker), its own platform, consumer and relay. Its embedder is the
    // default local multilingual-e5-small (scripts/models.sh).
    let ai_stop = CancellationToken::new();
    let _ai_running = ai_stop.clone().drop_guard();
    let ai_platform =
        Platform::from_config(app.platform.config.clone(), ai_stop.clone()).expect("platform");
    let ai_routes = ai::init(&ai_platform)
        .await
        .expect("ai starts (the e5 model folder: run scripts/models.sh)");
    tokio::spawn(kernel::http::serve(
        ai_admin,
        ai_routes.admin,
        ai_stop.clone(),
    ));
    let ai_migrated = eventually(Duration::from_secs(60), || async {
        sqlx::query_scalar::<_, bool>("SELECT to_regclass('ai.chunks') IS NOT NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap_or(false)
    })
    .await;
    assert!(ai_migrated, "ai never migrated its schema");

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
            let chat_bound = probe
                .queue_declare("protostar.chat".into(), passive, Default::default())
                .await
                .is_ok();
            // A failed passive declare closes the channel: probe ai's queue on a fresh one.
            let probe = conn.create_channel().await.unwrap();
            let ai_bound = probe
                .queue_declare("protostar.ai".into(), passive, Default::default())
                .await
                .is_ok();
            if chat_bound && ai_bound {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chat or ai never bound its queue"
            );
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
    let mut media_types = HashSet::new();
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
                media_types.insert(u.media_type);
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

    // What one ingestion of such an upload gives: every upload is the same letter plus one
    // line, small enough for a single chunk, so embedding 100 of them stays well under a minute.
    assert_eq!(media_types.len(), 1, "{media_types:?}");
    let media = media_types.into_iter().next().unwrap();
    let expected_chunks = |i: usize| {
        let text = format!("{}\nUpload {i} during the outage.\n", fixtures::TEXT_EN);
        let doc = ai::extract::extract(&media, text.as_bytes()).unwrap();
        chunking::chunk(&doc, ChunkConfig::default()).len() as i64
    };
    let expected = expected_chunks(0);
    assert_eq!(expected, 1, "the uploads are meant to be one chunk each");
    assert!((0..UPLOADS).all(|i| expected_chunks(i) == expected));

    // ai reports each document's progress back; chat's table is where the owner sees it.
    let ready_in_chat = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM documents WHERE status = 'ready'")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let started = Instant::now();
    let all_ready = eventually(Duration::from_secs(200), || async {
        ready_in_chat().await == UPLOADS as i64
    })
    .await;
    let stuck: Vec<(Uuid, String, Option<String>)> =
        sqlx::query_as("SELECT id, status, reason FROM documents WHERE status <> 'ready' LIMIT 5")
            .fetch_all(&app.pool)
            .await
            .unwrap_or_default();
    assert!(
        all_ready,
        "{} of {UPLOADS} ready in chat after {:?}; e.g. {stuck:?}",
        ready_in_chat().await,
        started.elapsed()
    );
    println!(
        "all {UPLOADS} documents ready in chat {:.1} s after the events arrived",
        started.elapsed().as_secs_f64()
    );

    // Chat's view: every accepted document ready at version 1 with one ingestion's chunks.
    let chat_rows: Vec<(Uuid, i64, Option<i64>)> = sqlx::query_as(
        "SELECT id, version, chunk_count FROM documents WHERE status = 'ready' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        chat_rows.iter().map(|r| r.0).collect::<HashSet<_>>(),
        accepted
    );
    for (id, version, chunks) in &chat_rows {
        assert_eq!(
            (*version, *chunks),
            (1, Some(expected)),
            "chat's row of {id}"
        );
    }

    // ai's schema: the chunks of each document written once.
    let ai_chunks: Vec<(Uuid, i64, i64, i64)> = sqlx::query_as(
        "SELECT document_id, count(*), count(DISTINCT (version, ordinal)), max(version) \
         FROM ai.chunks GROUP BY document_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        ai_chunks.iter().map(|r| r.0).collect::<HashSet<_>>(),
        accepted,
        "documents with chunks in ai"
    );
    for (doc, rows, distinct, version) in &ai_chunks {
        assert_eq!(
            (*rows, *distinct, *version),
            (expected, expected, 1),
            "chunks of {doc}: rows, distinct (version, ordinal), version"
        );
    }
    let ai_docs: Vec<(Uuid, String, i64, Option<i64>)> =
        sqlx::query_as("SELECT document_id, status, version, chunk_count FROM ai.documents")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(ai_docs.len(), UPLOADS);
    for (doc, status, version, chunks) in &ai_docs {
        assert_eq!(
            (status.as_str(), *version, *chunks),
            ("ready", 1, Some(expected)),
            "ai's row of {doc}"
        );
    }

    // ai's consumer took each upload event once, and ingestion ran once per document: one
    // extracting, one indexing and one ready announced for each, in that order.
    let processed: Vec<Uuid> =
        sqlx::query_scalar("SELECT event_id FROM ai.processed_events WHERE consumer = 'ai'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(processed.len(), UPLOADS, "upload events processed by ai");
    assert_eq!(
        processed.into_iter().collect::<HashSet<_>>(),
        seen.keys().copied().collect::<HashSet<_>>()
    );
    let announced: Vec<sqlx::types::Json<kernel::events::Event>> =
        sqlx::query_scalar("SELECT envelope FROM ai.outbox WHERE event_type = $1 ORDER BY id")
            .bind(wire::STATUS_CHANGED)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let mut steps: HashMap<Uuid, Vec<String>> = HashMap::new();
    for e in announced {
        let s: wire::StatusChanged = e.0.data_as().unwrap();
        steps
            .entry(s.document_id)
            .or_default()
            .push(s.status.as_str().to_owned());
    }
    assert_eq!(steps.len(), UPLOADS);
    for (doc, s) in &steps {
        assert_eq!(s, &["extracting", "indexing", "ready"], "steps of {doc}");
    }
}
