//! `GET /api/chatbots/mine/insights?days=30`: what recruiters ask the owner's chatbot.
//!
//! - `overTime`: questions per day (in the quota time zone) by asker role;
//! - `clusters`: groups of similar questions over their embeddings ([`cluster`]), labelled by a
//!   real question, largest first, so the owner sees what is asked most, however it is worded;
//! - `unanswered`: questions nothing supported, or only weakly (`chat.insights.weak_support`),
//!   that the owner has not corrected yet: each one is a gap in their documents;
//! - `feedback`: thumbs with comments, and the ratio of thumbs up.

pub mod cluster;

use crate::Chat;
use crate::chatbots;
use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use kernel::http::{Json, Query};
use kernel::tokens::{Caller, Role};
use kernel::{ConfigError, Problem};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

/// Config key `chat.insights`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsightsConfig {
    /// Cosine similarity of two questions' embeddings for them to be one cluster.
    #[serde(default = "default_cluster_similarity")]
    pub cluster_similarity: f32,
    /// Answers whose best passage was less similar than this count as weakly supported.
    #[serde(default = "default_weak_support")]
    pub weak_support: f64,
    /// Most recent questions clustered at most.
    #[serde(default = "default_cluster_window")]
    pub cluster_window: i64,
}

fn default_cluster_similarity() -> f32 {
    0.9
}
fn default_weak_support() -> f64 {
    0.82
}
fn default_cluster_window() -> i64 {
    2000
}

impl Default for InsightsConfig {
    fn default() -> Self {
        Self {
            cluster_similarity: default_cluster_similarity(),
            weak_support: default_weak_support(),
            cluster_window: default_cluster_window(),
        }
    }
}

impl InsightsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        if !(0.0..=1.0).contains(&self.cluster_similarity) {
            errors.push(ConfigError::key(
                "chat.insights.cluster_similarity",
                "must be between 0 and 1",
            ));
        }
        if !(-1.0..=1.0).contains(&self.weak_support) {
            errors.push(ConfigError::key(
                "chat.insights.weak_support",
                "must be between -1 and 1",
            ));
        }
        if !(10..=50_000).contains(&self.cluster_window) {
            errors.push(ConfigError::key(
                "chat.insights.cluster_window",
                "must be between 10 and 50000",
            ));
        }
        ConfigError::collect(errors)
    }
}

#[derive(Debug, Deserialize)]
pub struct Window {
    #[serde(default)]
    days: Option<i64>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    questions: i64,
    unanswered: i64,
    feedback_up: i64,
    feedback_down: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Day {
    day: NaiveDate,
    guest: i64,
    stargazer: i64,
    protostar: i64,
    admin: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    label: String,
    size: usize,
    questions: Vec<String>,
    last_asked_at: DateTime<Utc>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unanswered {
    answer_id: Uuid,
    question: String,
    asked_at: DateTime<Utc>,
    supported: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Feedback {
    answer_id: Uuid,
    question: String,
    rating: String,
    comment: Option<String>,
    at: DateTime<Utc>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Insights {
    days: i64,
    totals: Totals,
    /// Thumbs up over all thumbs; `null` before the first.
    feedback_ratio: Option<f64>,
    over_time: Vec<Day>,
    clusters: Vec<Cluster>,
    unanswered: Vec<Unanswered>,
    feedback: Vec<Feedback>,
}

pub async fn insights(
    State(chat): State<Chat>,
    caller: Caller,
    Query(w): Query<Window>,
) -> Result<Json<Insights>, Problem> {
    let owner = crate::account(&caller, Role::Protostar)?;
    let days = w.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(Problem::invalid_fields(vec![kernel::FieldError::new(
            "days",
            "Between 1 and 366.",
        )]));
    }
    let bot = chatbots::mine_or_new(&chat, owner).await?;
    let db = chat.db.pool();
    let since = Utc::now() - chrono::Duration::days(days);
    let tz = &chat.config.quotas.timezone;

    let over_time = sqlx::query(
        "SELECT (asked_at AT TIME ZONE $3)::date AS day, \
                count(*) FILTER (WHERE asker_role = 'guest'), \
                count(*) FILTER (WHERE asker_role = 'stargazer'), \
                count(*) FILTER (WHERE asker_role = 'protostar'), \
                count(*) FILTER (WHERE asker_role = 'admin') \
         FROM answers WHERE chatbot_id = $1 AND asked_at >= $2 GROUP BY day ORDER BY day",
    )
    .bind(bot.id)
    .bind(since)
    .bind(tz)
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|r| {
        Ok(Day {
            day: r.try_get(0)?,
            guest: r.try_get(1)?,
            stargazer: r.try_get(2)?,
            protostar: r.try_get(3)?,
            admin: r.try_get(4)?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;

    let weak = chat.config.insights.weak_support;
    let t = sqlx::query(
        "SELECT count(*), \
                count(*) FILTER (WHERE (NOT a.supported OR a.support < $3) \
                  AND NOT EXISTS (SELECT 1 FROM corrections c WHERE c.answer_id = a.id)), \
                count(f.rating) FILTER (WHERE f.rating = 'up'), \
                count(f.rating) FILTER (WHERE f.rating = 'down') \
         FROM answers a LEFT JOIN feedback f ON f.answer_id = a.id \
         WHERE a.chatbot_id = $1 AND a.asked_at >= $2",
    )
    .bind(bot.id)
    .bind(since)
    .bind(weak)
    .fetch_one(db)
    .await?;
    let totals = Totals {
        questions: t.try_get(0)?,
        unanswered: t.try_get(1)?,
        feedback_up: t.try_get(2)?,
        feedback_down: t.try_get(3)?,
    };
    let thumbs = totals.feedback_up + totals.feedback_down;
    let feedback_ratio = (thumbs > 0).then(|| totals.feedback_up as f64 / thumbs as f64);

    let unanswered = sqlx::query(
        "SELECT a.id, a.question, a.asked_at, a.supported FROM answers a \
         WHERE a.chatbot_id = $1 AND a.asked_at >= $2 AND (NOT a.supported OR a.support < $3) \
           AND NOT EXISTS (SELECT 1 FROM corrections c WHERE c.answer_id = a.id) \
         ORDER BY a.asked_at DESC LIMIT 100",
    )
    .bind(bot.id)
    .bind(since)
    .bind(weak)
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|r| {
        Ok(Unanswered {
            answer_id: r.try_get(0)?,
            question: r.try_get(1)?,
            asked_at: r.try_get(2)?,
            supported: r.try_get(3)?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;

    let feedback = sqlx::query(
        "SELECT a.id, a.question, f.rating, f.comment, f.updated_at \
         FROM feedback f JOIN answers a ON a.id = f.answer_id \
         WHERE a.chatbot_id = $1 AND f.updated_at >= $2 ORDER BY f.updated_at DESC LIMIT 100",
    )
    .bind(bot.id)
    .bind(since)
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|r| {
        Ok(Feedback {
            answer_id: r.try_get(0)?,
            question: r.try_get(1)?,
            rating: r.try_get(2)?,
            comment: r.try_get(3)?,
            at: r.try_get(4)?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;

    let clusters = clusters(&chat, bot.id, since).await?;
    Ok(Json(Insights {
        days,
        totals,
        feedback_ratio,
        over_time,
        clusters,
        unanswered,
        feedback,
    }))
}

async fn clusters(
    chat: &Chat,
    chatbot: Uuid,
    since: DateTime<Utc>,
) -> Result<Vec<Cluster>, Problem> {
    // The vectors come back in pgvector's text form; parsing them here keeps chat free of a
    // vector type it has no other use for.
    let rows = sqlx::query(
        "SELECT question, asked_at, question_embedding::text FROM answers \
         WHERE chatbot_id = $1 AND asked_at >= $2 AND question_embedding IS NOT NULL \
         ORDER BY asked_at DESC LIMIT $3",
    )
    .bind(chatbot)
    .bind(since)
    .bind(chat.config.insights.cluster_window)
    .fetch_all(chat.db.pool())
    .await?;
    let mut questions = Vec::with_capacity(rows.len());
    let mut vectors = Vec::with_capacity(rows.len());
    for r in rows {
        let text: String = r.try_get(2)?;
        let v: Vec<f32> = text
            .trim_matches(['[', ']'])
            .split(',')
            .filter_map(|x| x.trim().parse().ok())
            .collect();
        let q: String = r.try_get(0)?;
        let at: DateTime<Utc> = r.try_get(1)?;
        questions.push((q, at));
        vectors.push(v);
    }
    // Oldest first, so groups start from the questions that came first.
    questions.reverse();
    vectors.reverse();
    let threshold = chat.config.insights.cluster_similarity;
    let groups = tokio::task::spawn_blocking(move || cluster::cluster(&vectors, threshold))
        .await
        .map_err(Problem::internal)?;
    Ok(groups
        .into_iter()
        .take(30)
        .map(|g| {
            let mut distinct: Vec<String> = Vec::new();
            for &m in &g.members {
                let q = &questions[m].0;
                if !distinct.iter().any(|d| d.eq_ignore_ascii_case(q)) && distinct.len() < 10 {
                    distinct.push(q.clone());
                }
            }
            Cluster {
                label: questions[g.label].0.clone(),
                size: g.members.len(),
                questions: distinct,
                last_asked_at: g
                    .members
                    .iter()
                    .map(|m| questions[*m].1)
                    .max()
                    .unwrap_or_else(Utc::now),
            }
        })
        .collect())
}
