//! Keeping an answer: its conversation, the answer row with its citations and the question's
//! embedding, and `chat.question_asked` for noti, all in one statement.

use crate::ai::Citation;
use crate::chatbots::store::Chatbot;
use chrono::{DateTime, Utc};
use kernel::events::chat::{QUESTION_ASKED, QuestionAsked};
use kernel::events::outbox;
use kernel::http::RequestContext;
use sqlx::{AssertSqlSafe, PgPool};
use std::sync::LazyLock;
use uuid::Uuid;

pub struct Answered<'a> {
    pub bot: &'a Chatbot,
    pub conversation_id: Uuid,
    /// The conversation is new and has no row yet.
    pub new_conversation: bool,
    pub asker_id: &'a str,
    pub asker_role: &'a str,
    pub question: &'a str,
    pub answer: &'a str,
    pub supported: bool,
    pub support: f64,
    pub model: &'a str,
    pub citations: &'a [Citation],
    pub embedding: &'a [f32],
    pub asked_at: DateTime<Utc>,
}

/// The conversation `id` when it is the asker's with this chatbot.
pub async fn owns_conversation(
    db: &PgPool,
    id: Uuid,
    chatbot: Uuid,
    asker: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM conversations WHERE id = $1 AND chatbot_id = $2 \
         AND asker_id = $3)",
    )
    .bind(id)
    .bind(chatbot)
    .bind(asker)
    .fetch_one(db)
    .await
}

/// The statement that keeps an answer: the conversation's row (`$conversation`, over the same
/// parameters), the answer's, and `chat.question_asked` in the outbox, one statement and so one
/// atomic change without a transaction block, in one round trip. The answer's foreign key is
/// checked at the statement's end, when the conversation's row is there.
fn statement(conversation: &str) -> String {
    format!(
        "WITH conversation AS ({conversation}), \
         answer AS (INSERT INTO answers (id, conversation_id, chatbot_id, asker_id, asker_role, \
           question, answer, supported, support, model, citations, question_embedding, \
           asked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::vector, $13)), \
         {}",
        outbox::queued_tail(13)
    )
}

/// The statement for a new conversation and for one that goes on (made once: sqlx prepares a
/// statement per text).
static NEW_CONVERSATION: LazyLock<String> = LazyLock::new(|| {
    statement(
        "INSERT INTO conversations (id, chatbot_id, asker_id, started_at, last_asked_at) \
         VALUES ($2, $3, $4, $13, $13) ON CONFLICT (id) DO NOTHING",
    )
});
static GOES_ON: LazyLock<String> =
    LazyLock::new(|| statement("UPDATE conversations SET last_asked_at = $13 WHERE id = $2"));

pub async fn record(
    db: &PgPool,
    a: &Answered<'_>,
    ctx: Option<&RequestContext>,
) -> Result<Uuid, kernel::Problem> {
    let id = Uuid::now_v7();
    let data = QuestionAsked {
        chatbot_slug: a.bot.slug.clone(),
        owner_id: a.bot.owner_id,
        question: a.question.to_owned(),
        asker_role: a.asker_role.to_owned(),
        answer_id: id,
        supported: a.supported,
        asked_at: a.asked_at,
    };
    let data = serde_json::to_value(data).map_err(kernel::Problem::internal)?;
    let event = outbox::event(
        crate::SERVICE,
        QUESTION_ASKED,
        &id.to_string(),
        data,
        ctx.map(|c| &c.trace),
    )?;
    let sql = if a.new_conversation {
        &NEW_CONVERSATION
    } else {
        &GOES_ON
    };
    let q = sqlx::query(AssertSqlSafe(sql.as_str()))
        .bind(id)
        .bind(a.conversation_id)
        .bind(a.bot.id)
        .bind(a.asker_id)
        .bind(a.asker_role)
        .bind(a.question)
        .bind(a.answer)
        .bind(a.supported)
        .bind(a.support)
        .bind(a.model)
        .bind(sqlx::types::Json(a.citations))
        // The column holds the local model's 384 dimensions; an embedding of another model
        // (or none) is kept as NULL, which insights' clusters leave out.
        .bind((a.embedding.len() == 384).then_some(kernel::db::Vector(a.embedding)))
        .bind(a.asked_at);
    outbox::bind_event(q, &event).execute(db).await?;
    Ok(id)
}
