//! The ai service's internal API, as both sides speak it: chat asks, ai answers. One definition,
//! like the `content.*` event data, so the two cannot drift apart. JSON camelCase; the routes
//! are on ai's admin listener, which the gateway never exposes (see `crate::internal`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST`: a streamed answer (Server-Sent Events `token`, `citation`, `done`, `error`).
pub const ANSWER_PATH: &str = "/internal/ai/answer";
/// `POST`: hybrid retrieval over some owners' documents.
pub const RETRIEVE_PATH: &str = "/internal/ai/retrieve";

/// How the chatbot speaks about its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Voice {
    /// "I led the migration…"
    FirstPerson,
    /// "Jane led the migration…"
    #[default]
    ThirdPerson,
}

/// The body of [`ANSWER_PATH`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AskBody {
    pub question: String,
    /// The chatbot's owner: only their documents and corrections are searched.
    pub owner_id: Uuid,
    /// How the chatbot names its owner.
    pub candidate: String,
    #[serde(default)]
    pub persona: Option<String>,
    #[serde(default)]
    pub voice: Voice,
}

/// A passage an answer cites as `[n]` (the `citation` event).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Citation {
    pub n: usize,
    pub document_id: Uuid,
    pub document_title: String,
    pub location: String,
    pub quote: String,
    /// An owner's correction rather than a document.
    #[serde(default)]
    pub pinned: bool,
}

/// The `done` event: nothing follows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Done {
    pub supported: bool,
    /// The model that answered (`extractive`, `openai:gpt-oss-120b`, `none` with no support).
    pub model: String,
    /// The best passage's similarity to the question (0 when nothing was found).
    pub support: f64,
    #[serde(default)]
    pub question_embedding: Vec<f32>,
}

/// The body of [`RETRIEVE_PATH`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrieveRequest {
    pub query: String,
    pub owner_ids: Vec<Uuid>,
    pub k: usize,
    /// Chunks of the first owner (the chatbot's own) before any other owner's.
    #[serde(default)]
    pub pinned_first: bool,
}

/// One chunk found by [`RETRIEVE_PATH`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetrievedChunk {
    pub chunk_id: Uuid,
    pub document_id: Uuid,
    pub owner_id: Uuid,
    pub document_title: String,
    pub location: String,
    pub text: String,
    /// Reciprocal rank fusion score: higher is better; only the order means anything.
    pub score: f64,
    /// Cosine similarity of the chunk to the question, when the vector leg found it: the
    /// evidence that a passage supports an answer at all.
    #[serde(default)]
    pub similarity: Option<f64>,
    /// A correction the owner wrote.
    #[serde(default)]
    pub pinned: bool,
}

/// The answer of [`RETRIEVE_PATH`].
#[derive(Debug, Serialize, Deserialize)]
pub struct RetrieveResponse {
    pub chunks: Vec<RetrievedChunk>,
}
