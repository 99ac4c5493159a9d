//! `/api/documents`: upload, list, status, delete, re-index.

use super::sniff::{self, MediaType, Rejection};
use super::store::{self, Document, NewDocument};
use super::{Content, upload};
use axum::extract::multipart::MultipartRejection;
use axum::extract::{FromRequestParts, Multipart, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use kernel::Problem;
use kernel::events::content as wire;
use kernel::events::outbox;
use kernel::http::{Json, Path, RequestContext};
use kernel::tokens::{Caller, Role};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use std::convert::Infallible;
use uuid::Uuid;

/// A document as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentView {
    id: Uuid,
    title: String,
    filename: String,
    media_type: String,
    size_bytes: i64,
    sha256: String,
    /// `queued` → `extracting` → `indexing` → `ready` | `failed`.
    status: String,
    /// Why it failed, when it did.
    reason: Option<String>,
    chunk_count: Option<i64>,
    /// 1, plus one per re-index.
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Where to poll for the status.
    status_url: String,
}

fn status_url(id: Uuid) -> String {
    format!("/api/documents/{id}")
}

impl From<Document> for DocumentView {
    fn from(d: Document) -> Self {
        Self {
            status_url: status_url(d.id),
            id: d.id,
            title: d.title,
            filename: d.filename,
            media_type: d.media_type,
            size_bytes: d.size_bytes,
            sha256: d.sha256,
            status: d.status,
            reason: d.reason,
            chunk_count: d.chunk_count,
            version: d.version,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Serialize)]
pub struct DocumentList {
    documents: Vec<DocumentView>,
}

/// The request's trace, to continue it in the events we publish.
pub(super) struct Context(Option<RequestContext>);

impl<S: Send + Sync> FromRequestParts<S> for Context {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<RequestContext>().cloned()))
    }
}

/// The account behind the caller, once it has at least `role`.
fn account(caller: &Caller, role: Role) -> Result<Uuid, Problem> {
    caller.require(role)?;
    Uuid::parse_str(caller.subject())
        .map_err(|_| Problem::Forbidden("This needs an account.".into()))
}

fn not_found() -> Problem {
    Problem::NotFound("You have no document with this id.".into())
}

fn accepted(d: Document) -> Response {
    let location = status_url(d.id);
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(DocumentView::from(d)),
    )
        .into_response()
}

fn rejection_problem(r: Rejection) -> Problem {
    match r {
        Rejection::Unsupported(m) => Problem::UnsupportedMediaType(m),
        Rejection::TooLarge(m) => Problem::PayloadTooLarge(m),
        Rejection::Malformed(m) | Rejection::Encrypted(m) | Rejection::NoText(m) => {
            Problem::invalid(m)
        }
    }
}

async fn publish_uploaded(
    tx: &mut PgConnection,
    d: &Document,
    ctx: &Context,
) -> Result<(), Problem> {
    let data = wire::Uploaded {
        document_id: d.id,
        owner_id: d.owner_id,
        version: d.version,
        blob_key: d.blob_key.clone(),
        media_type: d.media_type.clone(),
        title: d.title.clone(),
        filename: d.filename.clone(),
        size_bytes: d.size_bytes,
    };
    publish(tx, wire::UPLOADED, d.id, &data, ctx).await
}

async fn publish(
    tx: &mut PgConnection,
    event_type: &str,
    subject: Uuid,
    data: &impl Serialize,
    ctx: &Context,
) -> Result<(), Problem> {
    let data = serde_json::to_value(data).map_err(Problem::internal)?;
    let trace = ctx.0.as_ref().map(|c| &c.trace);
    let event = outbox::event(
        crate::SERVICE,
        event_type,
        &subject.to_string(),
        data,
        trace,
    )?;
    outbox::enqueue(tx, &event).await?;
    Ok(())
}

pub(super) async fn upload(
    caller: Caller,
    State(c): State<Content>,
    ctx: Context,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, Problem> {
    let owner = account(&caller, Role::Protostar)?;
    let form = form
        .map_err(upload::rejection_problem)
        .inspect_err(|p| c.metrics.count_problem(p))?;
    // Held until the answer: the body, the checks and the store all count against it.
    let _permit = c.uploads.acquire().await.map_err(Problem::internal)?;
    let up = upload::read(form, c.config.max_upload_bytes)
        .await
        .inspect_err(|p| c.metrics.count_problem(p))?;

    // Judging a DOCX or PDF inflates up to tens of MiB, and hashing 20 MiB takes a while:
    // off the async workers.
    let limits = c.config.limits();
    let bytes = up.bytes.clone();
    let (media, sha256) = tokio::task::spawn_blocking(move || {
        sniff::sniff(&bytes, &limits).map(|m| (m, hex(&Sha256::digest(&bytes))))
    })
    .await
    .map_err(Problem::internal)?
    .map_err(|r| {
        c.metrics.count(r.label());
        rejection_problem(r)
    })?;

    let filename = up
        .filename
        .clone()
        .unwrap_or_else(|| default_filename(media));
    let title = up
        .title
        .clone()
        .unwrap_or_else(|| upload::default_title(up.filename.as_deref()));
    let upload = Accepted {
        id: Uuid::now_v7(),
        owner,
        bytes: up.bytes,
        media,
        title,
        filename,
        sha256,
    };
    // Once the original is being stored, the outcome must not depend on the client staying
    // connected: a dropped request would otherwise stop between the object and the row and
    // leave the object behind. The task runs to the end either way.
    let doc = tokio::spawn(store_upload(c.clone(), upload, ctx))
        .await
        .map_err(Problem::internal)?
        .inspect_err(|p| c.metrics.count_problem(p))?;
    c.metrics.count("accepted");
    Ok(accepted(doc))
}

/// An upload that passed the checks.
struct Accepted {
    id: Uuid,
    owner: Uuid,
    bytes: bytes::Bytes,
    media: MediaType,
    title: String,
    filename: String,
    sha256: String,
}

/// The original first, then the row with its event; the original goes again if the row fails.
async fn store_upload(c: Content, a: Accepted, ctx: Context) -> Result<Document, Problem> {
    let key = wire::original_key(a.owner, a.id);
    let size = i64::try_from(a.bytes.len()).map_err(Problem::internal)?;
    c.blobs
        .put(&key, a.bytes, a.media.content_type())
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "storing an original failed");
            Problem::UpstreamUnavailable(
                "Object storage is unavailable; nothing was stored. Try again shortly.".into(),
            )
        })?;
    let new = NewDocument {
        id: a.id,
        owner_id: a.owner,
        title: &a.title,
        filename: &a.filename,
        media_type: a.media.as_str(),
        size_bytes: size,
        sha256: &a.sha256,
        blob_key: &key,
    };
    match record_upload(&c, &new, &ctx).await {
        Ok(doc) => {
            tracing::info!(document = %a.id, media_type = a.media.as_str(), size, "document accepted");
            Ok(doc)
        }
        Err(e) => {
            // The row never committed: the original must not outlive it.
            if let Err(del) = c.blobs.delete(&key).await {
                tracing::error!(key, error = %del, "an orphaned original could not be removed");
            }
            Err(e)
        }
    }
}

/// The row and its `content.uploaded` event, in one transaction.
async fn record_upload(
    c: &Content,
    new: &NewDocument<'_>,
    ctx: &Context,
) -> Result<Document, Problem> {
    let mut tx = c.db.begin().await?;
    let doc = store::insert(&mut tx, new).await?;
    publish_uploaded(&mut tx, &doc, ctx).await?;
    tx.commit().await?;
    Ok(doc)
}

fn default_filename(media: MediaType) -> String {
    let ext = match media {
        MediaType::Pdf => "pdf",
        MediaType::Docx => "docx",
        MediaType::Markdown => "md",
        MediaType::Html => "html",
        MediaType::Text => "txt",
    };
    format!("document.{ext}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) async fn list(
    caller: Caller,
    State(c): State<Content>,
) -> Result<Json<DocumentList>, Problem> {
    let owner = account(&caller, Role::Stargazer)?;
    let documents = store::list(c.db.pool(), owner)
        .await?
        .into_iter()
        .map(DocumentView::from)
        .collect();
    Ok(Json(DocumentList { documents }))
}

pub(super) async fn show(
    caller: Caller,
    State(c): State<Content>,
    Path(id): Path<Uuid>,
) -> Result<Json<DocumentView>, Problem> {
    let owner = account(&caller, Role::Stargazer)?;
    let doc = store::get(c.db.pool(), owner, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(doc.into()))
}

/// The row and a `content.deleted` event in one transaction; the original is removed right
/// after, and again by this service's own consumer of that event should this attempt fail.
pub(super) async fn delete(
    caller: Caller,
    State(c): State<Content>,
    ctx: Context,
    Path(id): Path<Uuid>,
) -> Result<Response, Problem> {
    let owner = account(&caller, Role::Stargazer)?;
    let mut tx = c.db.begin().await?;
    let doc = store::delete(&mut tx, owner, id)
        .await?
        .ok_or_else(not_found)?;
    let data = wire::Deleted {
        document_id: doc.id,
        owner_id: doc.owner_id,
    };
    publish(&mut tx, wire::DELETED, doc.id, &data, &ctx).await?;
    tx.commit().await?;
    if let Err(e) = c.blobs.delete(&doc.blob_key).await {
        tracing::warn!(key = doc.blob_key, error = %e, "original not removed yet; the consumer retries");
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// A new version from the stored original: `queued` again, `content.uploaded` again.
pub(super) async fn reindex(
    caller: Caller,
    State(c): State<Content>,
    ctx: Context,
    Path(id): Path<Uuid>,
) -> Result<Response, Problem> {
    let owner = account(&caller, Role::Stargazer)?;
    let mut tx = c.db.begin().await?;
    let doc = store::next_version(&mut tx, owner, id)
        .await?
        .ok_or_else(not_found)?;
    publish_uploaded(&mut tx, &doc, &ctx).await?;
    tx.commit().await?;
    Ok(accepted(doc))
}
