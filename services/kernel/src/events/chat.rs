//! The data of `chat.*` events. `chat.question_asked` is read by noti (its shape is documented
//! in `services/noti/README.md`); `chat.correction_saved` by ai, which indexes the owner's
//! answer as a pinned passage for similar questions to come.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Published by chat with every stored answer.
pub const QUESTION_ASKED: &str = "chat.question_asked";
/// Published by chat when a chatbot's owner writes the right answer to a question.
pub const CORRECTION_SAVED: &str = "chat.correction_saved";

/// `chat.question_asked`; the subject is the answer id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionAsked {
    pub chatbot_slug: String,
    pub owner_id: Uuid,
    pub question: String,
    pub asker_role: String,
    pub answer_id: Uuid,
    pub supported: bool,
    pub asked_at: DateTime<Utc>,
}

/// `chat.correction_saved`; the subject is the correction id. A later correction of the same
/// id replaces the earlier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CorrectionSaved {
    pub correction_id: Uuid,
    pub owner_id: Uuid,
    pub question: String,
    pub answer: String,
}
