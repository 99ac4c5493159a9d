//! After an answer: the asker's thumbs up or down (`POST /api/answers/{id}/feedback`), and the
//! chatbot owner's correction (`POST /api/answers/{id}/correction`), which ai indexes as a
//! pinned passage for similar questions from then on (`chat.correction_saved`).
//!
//! Each is open to one person only: feedback to whoever asked, a correction to the chatbot's
//! owner. Anyone else gets `404`, so answer ids reveal nothing.

use crate::Chat;
use crate::ask::Origin;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use kernel::events::chat::{CORRECTION_SAVED, CorrectionSaved};
use kernel::events::outbox;
use kernel::http::{Json, Path};
use kernel::tokens::{Caller, Role};
use kernel::{FieldError, Problem};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const MAX_COMMENT: usize = 2000;
const MAX_CORRECTION: usize = 4000;

fn not_found() -> Problem {
    Problem::NotFound("There is no answer with this id for you.".into())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeedbackBody {
    pub rating: String,
    #[serde(default)]
    pub comment: Option<String>,
}

pub async fn feedback(
    State(chat): State<Chat>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<FeedbackBody>,
) -> Result<StatusCode, Problem> {
    let mut errors = Vec::new();
    if body.rating != "up" && body.rating != "down" {
        errors.push(FieldError::new("rating", "`up` or `down`."));
    }
    let comment = body
        .comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT)
    {
        errors.push(FieldError::new(
            "comment",
            format!("At most {MAX_COMMENT} characters."),
        ));
    }
    if !errors.is_empty() {
        return Err(Problem::invalid_fields(errors));
    }
    let saved = sqlx::query(
        "INSERT INTO feedback (answer_id, rating, comment) \
         SELECT id, $3, $4 FROM answers WHERE id = $1 AND asker_id = $2 \
         ON CONFLICT (answer_id) DO UPDATE SET rating = EXCLUDED.rating, \
           comment = EXCLUDED.comment, updated_at = now()",
    )
    .bind(id)
    .bind(caller.subject())
    .bind(&body.rating)
    .bind(comment)
    .execute(chat.db.pool())
    .await?
    .rows_affected();
    if saved == 0 {
        return Err(not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorrectionBody {
    pub answer: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CorrectionView {
    id: Uuid,
    answer_id: Uuid,
    question: String,
    answer: String,
    created_at: DateTime<Utc>,
}

pub async fn correction(
    State(chat): State<Chat>,
    caller: Caller,
    origin: Origin,
    Path(id): Path<Uuid>,
    Json(body): Json<CorrectionBody>,
) -> Result<Response, Problem> {
    let owner = crate::account(&caller, Role::Protostar)?;
    let text = body.answer.trim().to_owned();
    let n = text.chars().count();
    if n == 0 || n > MAX_CORRECTION {
        return Err(Problem::invalid_fields(vec![FieldError::new(
            "answer",
            format!("Write the answer in 1 to {MAX_CORRECTION} characters."),
        )]));
    }
    let mut tx = chat.db.begin().await?;
    let found: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT a.chatbot_id, a.question FROM answers a JOIN chatbots b ON b.id = a.chatbot_id \
         WHERE a.id = $1 AND b.owner_id = $2",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut *tx)
    .await?;
    let (chatbot_id, question) = found.ok_or_else(not_found)?;
    let correction_id = Uuid::now_v7();
    let created_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO corrections (id, chatbot_id, answer_id, question, answer) \
         VALUES ($1, $2, $3, $4, $5) RETURNING created_at",
    )
    .bind(correction_id)
    .bind(chatbot_id)
    .bind(id)
    .bind(&question)
    .bind(&text)
    .fetch_one(&mut *tx)
    .await?;
    let data = CorrectionSaved {
        correction_id,
        owner_id: owner,
        question: question.clone(),
        answer: text.clone(),
    };
    outbox::enqueue(
        &mut tx,
        &outbox::event(
            crate::SERVICE,
            CORRECTION_SAVED,
            &correction_id.to_string(),
            serde_json::to_value(data).map_err(Problem::internal)?,
            origin.ctx.as_ref().map(|c| &c.trace),
        )?,
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(CorrectionView {
            id: correction_id,
            answer_id: id,
            question,
            answer: text,
            created_at,
        }),
    )
        .into_response())
}
