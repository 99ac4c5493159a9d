//! The data of `content.*` events between the chat service (which owns documents and their
//! originals) and the AI service (which owns chunks, embeddings and retrieval). The event's
//! `subject` is the document id; the routing key is the event type. Field names are camelCase on
//! the wire, like every other event's data.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Published by chat in the same transaction as the document row, and again with `version + 1`
/// when the owner asks for a re-index from the stored original.
pub const UPLOADED: &str = "content.uploaded";
/// Published by chat when a document is deleted; ai removes its chunks and vectors.
pub const DELETED: &str = "content.deleted";
/// Published by ai from its own outbox as ingestion moves a document along.
pub const STATUS_CHANGED: &str = "content.status_changed";

/// The media types chat accepts, decided by content sniffing, never by file name.
pub mod media_type {
    pub const PDF: &str = "application/pdf";
    pub const DOCX: &str =
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
    pub const MARKDOWN: &str = "text/markdown";
    pub const HTML: &str = "text/html";
    pub const TEXT: &str = "text/plain";
    pub const ALL: [&str; 5] = [PDF, DOCX, MARKDOWN, HTML, TEXT];
}

/// The blob key of a document's original: `originals/{owner_id}/{document_id}`.
pub fn original_key(owner_id: Uuid, document_id: Uuid) -> String {
    format!("originals/{owner_id}/{document_id}")
}

/// `content.uploaded`: an original is stored and waits to be indexed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Uploaded {
    pub document_id: Uuid,
    pub owner_id: Uuid,
    /// 1 on upload, +1 on each re-index; older versions are stale.
    pub version: i64,
    /// Where the original is in the shared blob store (see [`original_key`]).
    pub blob_key: String,
    /// One of [`media_type::ALL`].
    pub media_type: String,
    pub title: String,
    pub filename: String,
    pub size_bytes: i64,
}

/// `content.deleted`: the document is gone; its chunks and vectors must go too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    pub document_id: Uuid,
    pub owner_id: Uuid,
}

/// Where a document is in ingestion. The API shows `queued` before the first of these arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexStatus {
    Extracting,
    Indexing,
    Ready,
    Failed,
}

impl IndexStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Extracting => "extracting",
            Self::Indexing => "indexing",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    /// `ready` and `failed` end a version's ingestion: a consumer must not move a document
    /// from them back to `extracting` for the same version.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Ready | Self::Failed)
    }
}

/// `content.status_changed`: apply only when `version` is at least the row's version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChanged {
    pub document_id: Uuid,
    pub owner_id: Uuid,
    pub version: i64,
    pub status: IndexStatus,
    /// Why it failed, in words a person understands; only with `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Chunks indexed; only with `ready`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_count: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Event;
    use serde_json::json;

    #[test]
    fn uploaded_round_trips_through_an_envelope_in_camel_case() {
        let owner = Uuid::now_v7();
        let doc = Uuid::now_v7();
        let data = Uploaded {
            document_id: doc,
            owner_id: owner,
            version: 2,
            blob_key: original_key(owner, doc),
            media_type: media_type::PDF.into(),
            title: "Résumé".into(),
            filename: "cv.pdf".into(),
            size_bytes: 1234,
        };
        let e = Event::new(UPLOADED, "chat", &data).unwrap();
        assert_eq!(e.data["documentId"], json!(doc));
        assert_eq!(e.data["blobKey"], json!(format!("originals/{owner}/{doc}")));
        let back: Uploaded = Event::from_bytes(&e.to_bytes()).unwrap().data_as().unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn status_is_lowercase_and_optional_fields_are_omitted() {
        let s = StatusChanged {
            document_id: Uuid::nil(),
            owner_id: Uuid::nil(),
            version: 1,
            status: IndexStatus::Indexing,
            reason: None,
            chunk_count: None,
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["status"], "indexing");
        assert!(v.get("reason").is_none());
        let failed: StatusChanged = serde_json::from_value(json!({
            "documentId": Uuid::nil(), "ownerId": Uuid::nil(), "version": 3,
            "status": "failed", "reason": "no text layer"
        }))
        .unwrap();
        assert_eq!(failed.status, IndexStatus::Failed);
        assert!(failed.status.is_final() && !IndexStatus::Extracting.is_final());
        assert!(
            serde_json::from_value::<StatusChanged>(json!({
                "documentId": Uuid::nil(), "ownerId": Uuid::nil(), "version": 3, "status": "queued"
            }))
            .is_err()
        );
    }
}
