//! The ai service wired to the real stack: PostgreSQL (+pgvector) for its schema and a
//! producer's outbox, the S3 server for originals, RabbitMQ (a private broker, so other tests'
//! `content.*` events never reach this consumer) or the in-process bus.

#![allow(dead_code)]

use ai::chunk::ChunkConfig;
use ai::embed::{Embedder, LazyLocal};
use ai::ingest::{IngestRetry, Ingestor};
use bytes::Bytes;
use kernel::blob::{BlobConfig, BlobKind, SharedBlobStore};
use kernel::db::Database;
use kernel::events::content::{self, Uploaded};
use kernel::events::{Bus, Event, Subscription, outbox, relay};
use kernel::testing::{TestDb, stack_env};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub fn models_dir() -> PathBuf {
    std::env::var_os("PROTOSTAR_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/protostar-tools/models"))
}

pub fn e5() -> Arc<dyn Embedder> {
    Arc::new(
        LazyLocal::new(&models_dir().join("multilingual-e5-small"), 16)
            .expect("the e5 model folder: run scripts/models.sh (make test does)"),
    )
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

pub struct Harness {
    pub _db: TestDb,
    pub ai: Database,
    /// Stands in for chat: only its outbox is used, relayed to the bus.
    pub producer: Database,
    pub blob: SharedBlobStore,
    pub bus: Bus,
    pub stop: CancellationToken,
}

impl Harness {
    pub async fn start(bus: Bus, embedder: Arc<dyn Embedder>, retry: IngestRetry) -> Self {
        let db = TestDb::new().await;
        let ai = Database::connect_lazy(&db.config(), ai::SCHEMA).unwrap();
        ai.migrate(Some(&ai::MIGRATOR)).await.unwrap();
        let producer = Database::connect_lazy(&db.config(), "chat").unwrap();
        producer.migrate(None).await.unwrap();
        let blob = BlobConfig {
            kind: BlobKind::S3,
            endpoint: Some(stack_env("PROTOSTAR_TEST_S3_ENDPOINT")),
            bucket: Some(format!("ai-{}", Uuid::new_v4().simple())),
            access_key_id: Some(kernel::Secret::new("test-key".into())),
            secret_access_key: Some(kernel::Secret::new("test-secret".into())),
            create_bucket: true,
            ..Default::default()
        }
        .open(None)
        .await
        .expect("the stack's S3 server");
        let stop = CancellationToken::new();
        let ingestor = Ingestor {
            db: ai.clone(),
            blob: blob.clone(),
            embedder,
            chunking: ChunkConfig::default(),
            retry,
            embed_batch: 16,
        };
        bus.start_consumer(
            Subscription::new(
                ai::TARGET,
                &[content::UPLOADED, content::DELETED],
                ai.clone(),
                ingestor,
            )
            .with_concurrency(ai::ingest::CONCURRENCY),
            stop.clone(),
        );
        relay::spawn(
            producer.clone(),
            bus.clone(),
            relay::RelayConfig {
                poll: Duration::from_millis(200),
                max_backoff: Duration::from_secs(1),
                ..Default::default()
            },
            stop.clone(),
        );
        // The consumer's queue must exist before the first event is published.
        tokio::time::sleep(Duration::from_millis(800)).await;
        Self {
            _db: db,
            ai,
            producer,
            blob,
            bus,
            stop,
        }
    }

    /// What chat does on upload: the original into the blob store, the event into its outbox.
    pub async fn upload(&self, owner: Uuid, title: &str, file: &str, media: &str) -> Uploaded {
        let doc = Uuid::now_v7();
        let bytes = fixture(file);
        let key = content::original_key(owner, doc);
        self.blob
            .put(&key, Bytes::from(bytes.clone()), media)
            .await
            .unwrap();
        let up = Uploaded {
            document_id: doc,
            owner_id: owner,
            version: 1,
            blob_key: key,
            media_type: media.into(),
            title: title.into(),
            filename: file.into(),
            size_bytes: bytes.len() as i64,
        };
        self.publish(&up).await;
        up
    }

    pub async fn publish(&self, up: &Uploaded) -> Event {
        let e = Event::new(content::UPLOADED, "chat", up)
            .unwrap()
            .with_subject(up.document_id.to_string());
        self.send(&e).await;
        e
    }

    pub async fn send(&self, e: &Event) {
        let mut tx = self.producer.begin().await.unwrap();
        outbox::enqueue(&mut tx, e).await.unwrap();
        tx.commit().await.unwrap();
    }

    pub async fn status(&self, doc: Uuid) -> Option<(String, i64, Option<String>)> {
        sqlx::query_as("SELECT status, version, reason FROM documents WHERE document_id = $1")
            .bind(doc)
            .fetch_optional(self.ai.pool())
            .await
            .unwrap()
    }

    /// Waits until the document reaches `ready` or `failed` at `version`.
    pub async fn settled(&self, doc: Uuid, version: i64) -> (String, Option<String>) {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Some((s, v, reason)) = self.status(doc).await
                && v == version
                && (s == "ready" || s == "failed")
            {
                return (s, reason);
            }
            assert!(Instant::now() < deadline, "document {doc} never settled");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn chunk_count(&self, doc: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM chunks WHERE document_id = $1")
            .bind(doc)
            .fetch_one(self.ai.pool())
            .await
            .unwrap()
    }

    /// `content.status_changed` events in ai's outbox for a document, in order.
    pub async fn status_events(&self, doc: Uuid) -> Vec<content::StatusChanged> {
        let rows: Vec<(sqlx::types::Json<Event>,)> =
            sqlx::query_as("SELECT envelope FROM outbox WHERE event_type = $1 ORDER BY id")
                .bind(content::STATUS_CHANGED)
                .fetch_all(self.ai.pool())
                .await
                .unwrap();
        rows.into_iter()
            .map(|(e,)| e.0.data_as::<content::StatusChanged>().unwrap())
            .filter(|s| s.document_id == doc)
            .collect()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
