//! `GET /api/talent/search?q=…` for stargazers: a requirement in plain words ("Kafka in
//! production, led a team") → the protostars who opted in, ranked, each with the passages of
//! their documents that match, cited.
//!
//! One hybrid retrieval over every opted-in owner; owners are ranked by their best passage's
//! similarity to the requirement, and only passages similar enough to support an answer
//! (`chat.talent.min_similarity`) count as evidence. Corrections are the owner's answers to
//! others' questions, not documents, so they are left out.

use crate::Chat;
use crate::ask::Origin;
use crate::chatbots::store;
use axum::extract::State;
use kernel::http::{Json, Query};
use kernel::tokens::{Caller, Role};
use kernel::{ConfigError, FieldError, Problem};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

/// Config key `chat.talent`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TalentConfig {
    #[serde(default = "default_min_similarity")]
    pub min_similarity: f64,
    /// People in one answer at most.
    #[serde(default = "default_max_results")]
    pub max_results: usize,
}

fn default_min_similarity() -> f64 {
    0.8
}
fn default_max_results() -> usize {
    20
}

impl Default for TalentConfig {
    fn default() -> Self {
        Self {
            min_similarity: default_min_similarity(),
            max_results: default_max_results(),
        }
    }
}

impl TalentConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        if !(-1.0..=1.0).contains(&self.min_similarity) {
            errors.push(ConfigError::key(
                "chat.talent.min_similarity",
                "must be between -1 and 1",
            ));
        }
        if !(1..=100).contains(&self.max_results) {
            errors.push(ConfigError::key(
                "chat.talent.max_results",
                "must be between 1 and 100",
            ));
        }
        ConfigError::collect(errors)
    }
}

#[derive(Debug, Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    document_title: String,
    location: String,
    quote: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    slug: String,
    name: String,
    candidate: String,
    /// The best passage's similarity to the requirement.
    score: f64,
    evidence: Vec<Evidence>,
}

#[derive(Debug, Serialize)]
pub struct Results {
    results: Vec<Candidate>,
}

pub async fn search(
    State(chat): State<Chat>,
    caller: Caller,
    origin: Origin,
    Query(s): Query<Search>,
) -> Result<Json<Results>, Problem> {
    caller.require(Role::Stargazer)?;
    let q = s.q.trim();
    let n = q.chars().count();
    if n == 0 || n > 1000 {
        return Err(Problem::invalid_fields(vec![FieldError::new(
            "q",
            "Describe who you are looking for in 1 to 1000 characters.",
        )]));
    }
    let pool = store::talent_pool(chat.db.pool()).await?;
    if pool.is_empty() {
        return Ok(Json(Results { results: vec![] }));
    }
    let owners: Vec<Uuid> = pool.iter().map(|b| b.owner_id).collect();
    let passages = chat
        .ai
        .retrieve(
            (&origin.bearer, origin.ctx.as_ref()),
            &kernel::ai_api::RetrieveRequest {
                query: q.to_owned(),
                owner_ids: owners,
                k: 50,
                pinned_first: false,
            },
        )
        .await?;
    let min = chat.config.talent.min_similarity;
    let mut by_owner: HashMap<Uuid, (f64, Vec<Evidence>)> = HashMap::new();
    for p in passages
        .into_iter()
        .filter(|p| !p.pinned && p.similarity.is_some_and(|s| s >= min))
    {
        let entry = by_owner.entry(p.owner_id).or_insert((f64::MIN, Vec::new()));
        entry.0 = entry.0.max(p.similarity.unwrap_or(f64::MIN));
        if entry.1.len() < 3 {
            entry.1.push(Evidence {
                document_title: p.document_title,
                location: p.location,
                quote: p.text,
            });
        }
    }
    let mut results: Vec<Candidate> = pool
        .into_iter()
        .filter_map(|b| {
            let (score, evidence) = by_owner.remove(&b.owner_id)?;
            Some(Candidate {
                slug: b.slug,
                candidate: b.owner_name.clone().unwrap_or_else(|| b.name.clone()),
                name: b.name,
                score,
                evidence,
            })
        })
        .collect();
    results.sort_by(|a, b| b.score.total_cmp(&a.score));
    results.truncate(chat.config.talent.max_results);
    Ok(Json(Results { results }))
}
