//! The audit service: the permanent trail of security-relevant acts.
//!
//! Every service publishes `audit.*` events (sign-ins, token reuse, role changes, invites,
//! deletions, admin actions). This service consumes them and appends one line per event to JSON
//! Lines files, one per day, each line hash-chained to the one before and synced to disk before
//! the event is acknowledged. Exactly once: the kernel's consumer acknowledges only after the
//! line is on disk, and the trail itself remembers every event id it holds, so a redelivery after
//! any crash adds nothing.

pub mod record;
pub mod trail;
pub mod verify;

use futures::future::BoxFuture;
use kernel::events::{Event, Handler, HandlerError, Subscription};
use kernel::service::{Platform, Routes, ServiceError};
use serde::Deserialize;
use sqlx::PgConnection;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use trail::{Rotation, Trail};

pub const TARGET: &str = "audit";
pub const SCHEMA: &str = "audit";
/// Everything under `audit.` is recorded.
pub const PATTERN: &str = "audit.#";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Where the trail's files live; defaults to `<data_dir>/audit`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    #[serde(default)]
    pub rotation: Rotation,
    /// Files older than this many days are deleted; unset keeps everything.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Events written per disk sync at most.
    #[serde(default = "default_batch")]
    pub batch: usize,
}

fn default_batch() -> usize {
    256
}

type Job = (Event, oneshot::Sender<Result<(), String>>);

/// The one writer of the trail: appends are serialised (a hash chain has one order) and synced
/// in batches, each batch's events acknowledged only after the sync.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub fn start(trail: Trail, batch: usize) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(batch.max(1) * 4);
        let trail = Arc::new(Mutex::new(trail));
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < batch.max(1) {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                let events: Vec<Event> = jobs.iter().map(|(e, _)| e.clone()).collect();
                let trail = trail.clone();
                let outcome = tokio::task::spawn_blocking(move || match trail.lock() {
                    Ok(mut t) => t.append(&events).map_err(|e| e.to_string()),
                    Err(_) => Err("the trail's lock is poisoned".to_owned()),
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
                for (_, reply) in jobs {
                    let _ = reply.send(outcome.as_ref().map(|_| ()).map_err(Clone::clone));
                }
            }
        });
        Self { jobs: tx }
    }

    pub async fn record(&self, event: Event) -> Result<(), String> {
        let (reply, done) = oneshot::channel();
        self.jobs
            .send((event, reply))
            .await
            .map_err(|_| "the audit writer stopped".to_owned())?;
        done.await
            .map_err(|_| "the audit writer stopped".to_owned())?
    }
}

struct Recorder(Writer);

impl Handler for Recorder {
    fn handle<'a>(
        &'a self,
        _tx: &'a mut PgConnection,
        event: &'a Event,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            self.0.record(event.clone()).await.map_err(|e| {
                HandlerError::Transient(anyhow::anyhow!("writing the audit trail: {e}"))
            })
        })
    }
}

pub fn init(p: &Platform) -> BoxFuture<'_, Result<Routes, ServiceError>> {
    Box::pin(async move {
        let config: AuditConfig = p.config.section("audit")?;
        let dir = config
            .dir
            .clone()
            .unwrap_or_else(|| p.data_dir.join("audit"));
        let trail = Trail::open(&dir, config.rotation, config.retention_days).map_err(|e| {
            kernel::ConfigError::key("audit.dir", format!("{}: {e}", dir.display()))
        })?;
        tracing::info!(dir = %dir.display(), lines = trail.lines(), "audit trail opened");
        let writer = Writer::start(trail, config.batch);
        let db = p.open_database(SCHEMA, None).await?;
        let sub = Subscription::new(TARGET, &[PATTERN], db.clone(), Recorder(writer));
        p.bus.start_consumer(sub, p.stop.clone());
        Ok(Routes {
            public: Default::default(),
            admin: kernel::service::dead_letter_routes(p, &db),
        })
    })
}
