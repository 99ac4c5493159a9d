//! Hybrid retrieval: vector nearest neighbours (HNSW, cosine) and keyword matches (Hangul/CJK
//! bigrams and Latin words, see `keywords`), each ranked separately over the same owner scope,
//! fused with reciprocal rank fusion. Served as `POST /internal/ai/retrieve` on the admin
//! listener and as [`Retriever`] for tests and benchmarks.

use crate::embed::{EmbedError, Embedder, Purpose};
use crate::keywords;
use crate::store::vector_literal;
use kernel::Problem;
use kernel::db::Database;
use kernel::http::Json;
use kernel::tokens::Caller;

use sqlx::{Executor, Row};
use std::sync::Arc;
use uuid::Uuid;

/// RRF's constant: ranks deeper than this contribute little.
const RRF_K: f64 = 60.0;
pub const MAX_K: usize = 50;
/// Keyword matches ranked at most. A query word that matches tens of thousands of chunks says
/// little about any of them, and ranking them all would cost more than the vector search; past
/// this many matches the keyword leg ranks an arbitrary subset and the vector leg carries the
/// result.
const KEYWORD_CANDIDATES: i64 = 300;
pub const MAX_OWNERS: usize = 1000;

pub use kernel::ai_api::{RetrieveRequest, RetrieveResponse, RetrievedChunk};

#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<RetrieveError> for Problem {
    fn from(e: RetrieveError) -> Self {
        match e {
            RetrieveError::Invalid(d) => Problem::invalid(d),
            RetrieveError::Embed(e) => Problem::UpstreamUnavailable(e.to_string()),
            RetrieveError::Db(e) => Problem::Internal(e.into()),
        }
    }
}

#[derive(Clone)]
pub struct Retriever {
    db: Database,
    embedder: Arc<dyn Embedder>,
    /// Candidates taken from each ranking before fusion.
    pub depth: usize,
    /// Exact nearest neighbours (no HNSW): the reference the benchmark measures recall against.
    pub exact: bool,
}

impl Retriever {
    pub fn new(db: Database, embedder: Arc<dyn Embedder>) -> Self {
        Self {
            db,
            embedder,
            depth: 40,
            exact: false,
        }
    }

    pub fn validate(req: &RetrieveRequest) -> Result<(), RetrieveError> {
        if req.query.trim().is_empty() {
            return Err(RetrieveError::Invalid("`query` is empty.".into()));
        }
        if req.query.chars().count() > 4000 {
            return Err(RetrieveError::Invalid(
                "`query` is longer than 4000 characters.".into(),
            ));
        }
        if req.k == 0 || req.k > MAX_K {
            return Err(RetrieveError::Invalid(format!(
                "`k` must be between 1 and {MAX_K}."
            )));
        }
        if req.owner_ids.len() > MAX_OWNERS {
            return Err(RetrieveError::Invalid(format!(
                "At most {MAX_OWNERS} `ownerIds`."
            )));
        }
        Ok(())
    }

    pub async fn retrieve(
        &self,
        req: &RetrieveRequest,
    ) -> Result<Vec<RetrievedChunk>, RetrieveError> {
        Self::validate(req)?;
        if req.owner_ids.is_empty() {
            return Ok(Vec::new());
        }
        let q = self
            .embedder
            .embed(std::slice::from_ref(&req.query), Purpose::Query)
            .await?
            .pop()
            .unwrap_or_default();
        let mut out = self.hybrid(&req.query, &q, &req.owner_ids, req.k).await?;
        if req.pinned_first
            && let Some(first) = req.owner_ids.first()
        {
            // Stable: each group keeps its fused order.
            out.sort_by_key(|c| c.owner_id != *first);
        }
        Ok(out)
    }

    /// The fused query with a ready query vector (benchmarks embed once, query many times).
    pub async fn hybrid(
        &self,
        query: &str,
        vector: &[f32],
        owners: &[Uuid],
        k: usize,
    ) -> Result<Vec<RetrievedChunk>, RetrieveError> {
        let tokens = keywords::tokens(query);
        let tsquery = (!tokens.is_empty()).then(|| keywords::any_query(&tokens));
        let depth = self.depth.max(k) as i64;
        let mut tx = self.db.pool().begin().await?;
        // With an owner filter the HNSW scan keeps going until it has enough matching rows
        // (pgvector 0.8 iterative scans) instead of returning fewer than asked. One round trip.
        tx.execute(if self.exact {
            // A sequential scan and sort; the keyword leg keeps its GIN bitmap scan.
            "SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = 200; \
             SET LOCAL enable_indexscan = off"
        } else {
            "SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = 200"
        })
        .await?;
        let rows = sqlx::query(
            "WITH vec AS ( \
               SELECT id, d, row_number() OVER (ORDER BY d) AS r FROM ( \
                 SELECT id, embedding <=> $1::vector AS d FROM chunks \
                 WHERE owner_id = ANY($2) ORDER BY embedding <=> $1::vector LIMIT $3) v), \
             kw AS ( \
               SELECT id, row_number() OVER (ORDER BY rank DESC, id) AS r FROM ( \
                 SELECT id, ts_rank(keywords, $4::tsquery) AS rank FROM ( \
                   SELECT id, keywords FROM chunks \
                   WHERE owner_id = ANY($2) AND keywords @@ $4::tsquery LIMIT $7) m \
                 ORDER BY rank DESC, id LIMIT $3) k), \
             fused AS ( \
               SELECT coalesce(vec.id, kw.id) AS id, vec.d, \
                      coalesce(1.0 / ($5 + vec.r), 0) + coalesce(1.0 / ($5 + kw.r), 0) AS score \
               FROM vec FULL OUTER JOIN kw ON vec.id = kw.id) \
             SELECT c.id, c.document_id, c.owner_id, d.title, c.location, c.text, \
                    f.score::float8 AS score, (1 - f.d)::float8 AS similarity, c.pinned \
             FROM fused f JOIN chunks c ON c.id = f.id JOIN documents d USING (document_id) \
             ORDER BY f.score DESC, c.id LIMIT $6",
        )
        .bind(vector_literal(vector))
        .bind(owners)
        .bind(depth)
        .bind(tsquery)
        .bind(RRF_K)
        .bind(k as i64)
        .bind(KEYWORD_CANDIDATES)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|r| {
                Ok(RetrievedChunk {
                    chunk_id: r.try_get(0)?,
                    document_id: r.try_get(1)?,
                    owner_id: r.try_get(2)?,
                    document_title: r.try_get(3)?,
                    location: r.try_get(4)?,
                    text: r.try_get(5)?,
                    score: r.try_get(6)?,
                    similarity: r.try_get(7)?,
                    pinned: r.try_get(8)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}

/// `POST /internal/ai/retrieve`. Who may call: any holder of a valid access token on the admin
/// listener, which only the cluster's own services reach (the gateway never forwards
/// `/internal/*`). Chat forwards the token of the person it answers; the owner scope is chat's
/// decision, as the one that knows which chatbot is being asked. There is no service identity
/// in the token model yet; when one exists this is where to require it.
pub async fn route(
    axum::extract::State(r): axum::extract::State<RouteState>,
    _caller: Caller,
    Json(req): Json<RetrieveRequest>,
) -> Result<axum::Json<RetrieveResponse>, Problem> {
    let chunks = r.retriever.retrieve(&req).await?;
    Ok(axum::Json(RetrieveResponse { chunks }))
}

#[derive(Clone)]
pub struct RouteState {
    pub retriever: Retriever,
    pub verifier: Arc<kernel::tokens::TokenVerifier>,
}

impl axum::extract::FromRef<RouteState> for Arc<kernel::tokens::TokenVerifier> {
    fn from_ref(s: &RouteState) -> Self {
        s.verifier.clone()
    }
}

pub fn router(state: RouteState) -> axum::Router {
    axum::Router::new()
        .route(kernel::ai_api::RETRIEVE_PATH, axum::routing::post(route))
        .with_state(state)
}
