//! Career documents: a protostar uploads PDF, DOCX, Markdown, HTML or text; we check what it
//! is by its bytes, keep the untouched original in object storage, and announce it to the ai
//! service (`content.uploaded`), which reports its progress back (`content.status_changed`).
//!
//! Order of an upload, so that nothing is half-stored:
//! 1. the body is read with a hard cap and judged (`sniff`); a refusal stores nothing;
//! 2. the original is written to the blob store (`originals/{owner}/{document}`);
//! 3. one transaction inserts the row (`queued`, version 1) and the outbox event;
//! 4. if that transaction fails, the original is deleted again.
//!
//! Access: owners only. Another account, admins included, gets `404` for a document that is
//! not its own, so ids reveal nothing; moderation belongs on the admin listener.

mod config;
pub(crate) mod metrics;
mod routes;
pub mod sniff;
pub(crate) mod store;
mod upload;

pub use config::ContentConfig;
pub use routes::DocumentView;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{get, post};
use kernel::blob::SharedBlobStore;
use kernel::db::Database;
use kernel::events::content::{self as wire, StatusChanged};
use kernel::events::{Event, HandlerError, outbox};
use kernel::tokens::TokenVerifier;
use sqlx::PgConnection;
use std::sync::Arc;
use uuid::Uuid;

/// Room for the multipart framing and the small fields around the file.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

#[derive(Clone)]
pub struct Content {
    db: Database,
    blobs: SharedBlobStore,
    verifier: Arc<TokenVerifier>,
    config: ContentConfig,
    /// Permits to hold an upload in memory; see `max_concurrent_uploads`.
    uploads: Arc<tokio::sync::Semaphore>,
    metrics: metrics::UploadMetrics,
}

impl FromRef<Content> for Arc<TokenVerifier> {
    fn from_ref(c: &Content) -> Self {
        c.verifier.clone()
    }
}

impl Content {
    pub fn new(
        db: Database,
        blobs: SharedBlobStore,
        verifier: Arc<TokenVerifier>,
        config: ContentConfig,
        registry: &kernel::telemetry::Metrics,
    ) -> Self {
        Self {
            metrics: metrics::UploadMetrics::register(registry),
            uploads: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_uploads)),
            db,
            blobs,
            verifier,
            config,
        }
    }

    /// `/api/documents…` on the public listener.
    pub fn routes(&self) -> Router {
        // Uploads have their own body limit; the listener's (1 MiB by default) is for JSON.
        let upload_limit = usize::try_from(self.config.max_upload_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(MULTIPART_OVERHEAD);
        Router::new()
            .route(
                "/api/documents",
                post(routes::upload)
                    .layer(DefaultBodyLimit::max(upload_limit))
                    .get(routes::list),
            )
            .route(
                "/api/documents/{id}",
                get(routes::show).delete(routes::delete),
            )
            .route("/api/documents/{id}/reindex", post(routes::reindex))
            .with_state(self.clone())
    }

    /// `content.status_changed` from the ai service.
    pub(crate) async fn status_changed(
        &self,
        tx: &mut PgConnection,
        event: &Event,
    ) -> Result<(), HandlerError> {
        let s: StatusChanged = event.data_as().map_err(|e| {
            HandlerError::Permanent(anyhow::anyhow!("{}: {e}", wire::STATUS_CHANGED))
        })?;
        if !store::apply_status(tx, &s).await? {
            tracing::debug!(document = %s.document_id, version = s.version, status = s.status.as_str(),
                "stale or unknown document status ignored");
        }
        Ok(())
    }

    /// Our own `content.deleted`: the original goes once the row is gone. Deleting it here
    /// rather than only in the request means a blob store outage delays it, never loses it.
    pub(crate) async fn deleted(&self, event: &Event) -> Result<(), HandlerError> {
        let d: wire::Deleted = event
            .data_as()
            .map_err(|e| HandlerError::Permanent(anyhow::anyhow!("{}: {e}", wire::DELETED)))?;
        self.blobs
            .delete(&wire::original_key(d.owner_id, d.document_id))
            .await
            .map_err(|e| HandlerError::Transient(e.into()))
    }

    /// `user.deleted`: every document of the account goes, each announced as deleted so that
    /// ai drops its chunks and the step above drops its original.
    pub(crate) async fn account_deleted(
        &self,
        tx: &mut PgConnection,
        event: &Event,
    ) -> Result<(), HandlerError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct AccountDeleted {
            user_id: Uuid,
        }
        let a: AccountDeleted = event
            .data_as()
            .map_err(|e| HandlerError::Permanent(anyhow::anyhow!("user.deleted: {e}")))?;
        for doc in store::delete_owner(tx, a.user_id).await? {
            let data = wire::Deleted {
                document_id: doc.id,
                owner_id: doc.owner_id,
            };
            let e = Event::new(wire::DELETED, crate::SERVICE, &data)
                .map_err(|e| HandlerError::Permanent(e.into()))?
                .with_subject(doc.id.to_string());
            outbox::enqueue(tx, &e).await?;
        }
        Ok(())
    }
}
