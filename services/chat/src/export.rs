//! `GET /internal/chat/export` (admin listener; `/internal/*` is never routed from outside): all
//! that chat keeps for the account whose access token comes along, for the user service's
//! `GET /api/users/me/export`.
//!
//! Only what belongs to that account: its chatbot and its settings, its documents' metadata
//! (not the originals), the conversations it had as an asker, and the questions asked of its own
//! chatbot with their answers, feedback and its corrections. Of the people who asked, only
//! their role: never their ids.

use crate::Chat;
use crate::ai::Citation;
use crate::chatbots::{self, ChatbotSettings};
use crate::content::DocumentView;
use crate::conversations::{ChatbotRef, FeedbackView, TurnView};
use axum::extract::State;
use chrono::{DateTime, Utc};
use kernel::Problem;
use kernel::http::Json;
use kernel::tokens::{Caller, Role};
use serde::Serialize;
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

/// Where the user service asks.
pub const PATH: &str = "/internal/chat/export";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatExport {
    /// The account's chatbot, when it has one.
    chatbot: Option<ChatbotSettings>,
    documents: Vec<DocumentView>,
    /// The threads the account had as an asker, with any chatbot.
    conversations: Vec<ConversationExport>,
    questions_asked_of_my_chatbot: Vec<AskedOfMine>,
    corrections: Vec<CorrectionExport>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationExport {
    id: Uuid,
    chatbot: ChatbotRef,
    started_at: DateTime<Utc>,
    turns: Vec<TurnView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AskedOfMine {
    answer_id: Uuid,
    question: String,
    answer: String,
    supported: bool,
    citations: Vec<Citation>,
    /// The asker's role (`guest`, `stargazer`, ...); who they are is theirs.
    asker_role: String,
    asked_at: DateTime<Utc>,
    feedback: Option<FeedbackView>,
    /// The owner's latest correction of this answer.
    correction: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CorrectionExport {
    id: Uuid,
    answer_id: Option<Uuid>,
    question: String,
    answer: String,
    created_at: DateTime<Utc>,
}

fn citations(r: &PgRow, i: usize) -> Vec<Citation> {
    r.try_get::<sqlx::types::Json<Vec<Citation>>, _>(i)
        .map(|j| j.0)
        .unwrap_or_default()
}

fn feedback(r: &PgRow, rating: usize, comment: usize) -> Result<Option<FeedbackView>, sqlx::Error> {
    let rating: Option<String> = r.try_get(rating)?;
    Ok(match rating {
        Some(rating) => Some(FeedbackView {
            rating,
            comment: r.try_get(comment)?,
        }),
        None => None,
    })
}

pub async fn export(State(chat): State<Chat>, caller: Caller) -> Result<Json<ChatExport>, Problem> {
    let owner = crate::account(&caller, Role::Stargazer)?;
    let asker = caller.subject();
    let pool = chat.db.pool();
    // One snapshot, so that answers and their conversations agree.
    let mut tx = kernel::db::begin(pool).await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;

    let bot = chatbots::store::by_owner(pool, owner).await?;
    let documents = crate::content::store::list(pool, owner)
        .await?
        .into_iter()
        .map(DocumentView::from)
        .collect();

    let heads = sqlx::query(
        "SELECT c.id, b.slug, b.name, c.started_at \
         FROM conversations c JOIN chatbots b ON b.id = c.chatbot_id \
         WHERE c.asker_id = $1 ORDER BY c.started_at, c.id",
    )
    .bind(asker)
    .fetch_all(&mut *tx)
    .await?;
    let turns = sqlx::query(
        "SELECT a.conversation_id, a.id, a.question, a.answer, a.supported, a.citations, \
                a.asked_at, f.rating, f.comment \
         FROM answers a JOIN conversations c ON c.id = a.conversation_id \
         LEFT JOIN feedback f ON f.answer_id = a.id \
         WHERE c.asker_id = $1 ORDER BY a.asked_at, a.id",
    )
    .bind(asker)
    .fetch_all(&mut *tx)
    .await?;
    let mut conversations = heads
        .iter()
        .map(|r| {
            Ok(ConversationExport {
                id: r.try_get(0)?,
                chatbot: ChatbotRef {
                    slug: r.try_get(1)?,
                    name: r.try_get(2)?,
                },
                started_at: r.try_get(3)?,
                turns: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    for r in &turns {
        let conversation: Uuid = r.try_get(0)?;
        let turn = TurnView {
            answer_id: r.try_get(1)?,
            question: r.try_get(2)?,
            answer: r.try_get(3)?,
            supported: r.try_get(4)?,
            citations: citations(r, 5),
            asked_at: r.try_get(6)?,
            feedback: feedback(r, 7, 8)?,
        };
        if let Some(c) = conversations.iter_mut().find(|c| c.id == conversation) {
            c.turns.push(turn);
        }
    }

    let (questions_asked_of_my_chatbot, corrections) = match &bot {
        None => (Vec::new(), Vec::new()),
        Some(bot) => {
            let asked = sqlx::query(
                "SELECT a.id, a.question, a.answer, a.supported, a.citations, a.asker_role, \
                        a.asked_at, f.rating, f.comment, \
                        (SELECT k.answer FROM corrections k WHERE k.answer_id = a.id \
                         ORDER BY k.created_at DESC, k.id DESC LIMIT 1) \
                 FROM answers a LEFT JOIN feedback f ON f.answer_id = a.id \
                 WHERE a.chatbot_id = $1 ORDER BY a.asked_at, a.id",
            )
            .bind(bot.id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| {
                Ok(AskedOfMine {
                    answer_id: r.try_get(0)?,
                    question: r.try_get(1)?,
                    answer: r.try_get(2)?,
                    supported: r.try_get(3)?,
                    citations: citations(r, 4),
                    asker_role: r.try_get(5)?,
                    asked_at: r.try_get(6)?,
                    feedback: feedback(r, 7, 8)?,
                    correction: r.try_get(9)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let corrections =
                sqlx::query_as::<_, (Uuid, Option<Uuid>, String, String, DateTime<Utc>)>(
                    "SELECT id, answer_id, question, answer, created_at FROM corrections \
                 WHERE chatbot_id = $1 ORDER BY created_at, id",
                )
                .bind(bot.id)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(
                    |(id, answer_id, question, answer, created_at)| CorrectionExport {
                        id,
                        answer_id,
                        question,
                        answer,
                        created_at,
                    },
                )
                .collect();
            (asked, corrections)
        }
    };
    tx.commit().await?;

    Ok(Json(ChatExport {
        chatbot: bot.as_ref().map(ChatbotSettings::from),
        documents,
        conversations,
        questions_asked_of_my_chatbot,
        corrections,
    }))
}
