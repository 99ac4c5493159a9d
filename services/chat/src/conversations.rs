//! `GET /api/conversations` and `GET /api/conversations/{id}`: an asker's own threads, with
//! every answer's citations and the feedback they gave. The chatbot's owner reads the questions
//! of others through insights, never their threads.

use crate::Chat;
use crate::ai::Citation;
use axum::extract::State;
use chrono::{DateTime, Utc};
use kernel::Problem;
use kernel::http::{Json, Path};
use kernel::tokens::Caller;
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatbotRef {
    pub(crate) slug: String,
    pub(crate) name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    id: Uuid,
    chatbot: ChatbotRef,
    started_at: DateTime<Utc>,
    last_asked_at: DateTime<Utc>,
    question_count: i64,
    first_question: Option<String>,
}

#[derive(Serialize)]
pub struct ConversationList {
    conversations: Vec<ConversationSummary>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackView {
    pub(crate) rating: String,
    pub(crate) comment: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnView {
    pub(crate) answer_id: Uuid,
    pub(crate) question: String,
    pub(crate) answer: String,
    pub(crate) supported: bool,
    pub(crate) citations: Vec<Citation>,
    pub(crate) asked_at: DateTime<Utc>,
    pub(crate) feedback: Option<FeedbackView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationView {
    id: Uuid,
    chatbot: ChatbotRef,
    turns: Vec<TurnView>,
}

pub async fn list(
    State(chat): State<Chat>,
    caller: Caller,
) -> Result<Json<ConversationList>, Problem> {
    let rows = sqlx::query(
        "SELECT c.id, b.slug, b.name, c.started_at, c.last_asked_at, \
                (SELECT count(*) FROM answers a WHERE a.conversation_id = c.id), \
                (SELECT a.question FROM answers a WHERE a.conversation_id = c.id \
                 ORDER BY a.asked_at LIMIT 1) \
         FROM conversations c JOIN chatbots b ON b.id = c.chatbot_id \
         WHERE c.asker_id = $1 ORDER BY c.last_asked_at DESC LIMIT 200",
    )
    .bind(caller.subject())
    .fetch_all(chat.db.pool())
    .await?;
    let conversations = rows
        .into_iter()
        .map(|r| {
            Ok(ConversationSummary {
                id: r.try_get(0)?,
                chatbot: ChatbotRef {
                    slug: r.try_get(1)?,
                    name: r.try_get(2)?,
                },
                started_at: r.try_get(3)?,
                last_asked_at: r.try_get(4)?,
                question_count: r.try_get(5)?,
                first_question: r.try_get(6)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(ConversationList { conversations }))
}

pub async fn one(
    State(chat): State<Chat>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<ConversationView>, Problem> {
    let head = sqlx::query(
        "SELECT b.slug, b.name FROM conversations c JOIN chatbots b ON b.id = c.chatbot_id \
         WHERE c.id = $1 AND c.asker_id = $2",
    )
    .bind(id)
    .bind(caller.subject())
    .fetch_optional(chat.db.pool())
    .await?
    .ok_or_else(|| Problem::NotFound("You have no conversation with this id.".into()))?;
    let rows = sqlx::query(
        "SELECT a.id, a.question, a.answer, a.supported, a.citations, a.asked_at, f.rating, \
                f.comment \
         FROM answers a LEFT JOIN feedback f ON f.answer_id = a.id \
         WHERE a.conversation_id = $1 ORDER BY a.asked_at",
    )
    .bind(id)
    .fetch_all(chat.db.pool())
    .await?;
    let turns = rows
        .into_iter()
        .map(|r| {
            let rating: Option<String> = r.try_get(6)?;
            Ok(TurnView {
                answer_id: r.try_get(0)?,
                question: r.try_get(1)?,
                answer: r.try_get(2)?,
                supported: r.try_get(3)?,
                citations: r
                    .try_get::<sqlx::types::Json<Vec<Citation>>, _>(4)
                    .map(|j| j.0)
                    .unwrap_or_default(),
                asked_at: r.try_get(5)?,
                feedback: match rating {
                    Some(rating) => Some(FeedbackView {
                        rating,
                        comment: r.try_get(7)?,
                    }),
                    None => None,
                },
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(ConversationView {
        id,
        chatbot: ChatbotRef {
            slug: head.try_get(0)?,
            name: head.try_get(1)?,
        },
        turns,
    }))
}
