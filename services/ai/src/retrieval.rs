//! Hybrid retrieval: vector nearest neighbours (HNSW, cosine) and keyword matches (Hangul/CJK
//! bigrams and Latin words, see `keywords`), each ranked separately over the same owner scope,
//! fused with reciprocal rank fusion. Served as `POST /internal/ai/retrieve` on the admin
//! listener and as [`Retriever`] for tests and benchmarks.

use crate::embed::{EmbedError, Embedder, Purpose};
use crate::keywords;
use kernel::Problem;
use kernel::db::{Database, Vector};
use kernel::http::Json;
use kernel::tokens::Caller;

use sqlx::Row;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const MAX_K: usize = 50;
/// HNSW candidate list. Over 100k chunks and all 100 owners the raw query's recall@10 was 0.86
/// at 100, and 0.86–0.97 at 200 depending on the index build; 300 gave 0.97 (docs/benchmarks.md).
pub const EF_SEARCH: u32 = 300;
/// A query word found in more than this share of all chunks (and in more than
/// [`COMMON_FLOOR`] of them) is too common to tell chunks apart: the keyword leg leaves it out,
/// as a stop word, by the table's own statistics (document frequency, as IDF would weigh it
/// near zero). Ranking every match of such a word is what made one keyword leg take 275 ms at
/// 100k chunks, and the arbitrary subset the earlier cap ranked instead made the result depend
/// on the plan.
pub const COMMON_SHARE: f64 = 0.02;
pub const COMMON_FLOOR: f64 = 2000.0;
/// How long the common words read from the statistics are trusted.
const COMMON_TTL: Duration = Duration::from_secs(60);
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
    /// Everything else, the keyword leg and the words it leaves out included, is the same.
    pub exact: bool,
    /// See [`COMMON_SHARE`]; 1.0 keeps every word (the benchmark's comparison).
    pub common_share: f64,
    /// `hnsw.ef_search` for the vector leg.
    pub ef_search: u32,
    common: Arc<Mutex<Option<CommonWords>>>,
}

/// When the common words were read, and the words.
type CommonWords = (Instant, Arc<HashSet<String>>);

impl Retriever {
    pub fn new(db: Database, embedder: Arc<dyn Embedder>) -> Self {
        Self {
            db,
            embedder,
            depth: 40,
            exact: false,
            common_share: COMMON_SHARE,
            ef_search: EF_SEARCH,
            common: Arc::default(),
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

    /// Words too common to rank by, from the keyword column's statistics (ANALYZE, kept
    /// fresh by autovacuum): lexemes in more than `common_share` of the rows and in more than
    /// [`COMMON_FLOOR`] rows. Read at most once a minute; a small or unanalysed table has none.
    pub async fn common_words(&self) -> Result<Arc<HashSet<String>>, RetrieveError> {
        if let Ok(c) = self.common.lock()
            && let Some((at, words)) = c.as_ref()
            && at.elapsed() < COMMON_TTL
        {
            return Ok(words.clone());
        }
        let row: Option<(Vec<String>, Vec<f32>, f64)> = sqlx::query_as(
            "SELECT coalesce(s.most_common_elems::text::text[], '{}'), \
                    coalesce(s.most_common_elem_freqs, '{}'), c.reltuples::float8 \
             FROM pg_class c JOIN pg_stats s ON s.schemaname = c.relnamespace::regnamespace::text \
               AND s.tablename = c.relname AND s.attname = 'keywords' \
             WHERE c.oid = 'chunks'::regclass",
        )
        .fetch_optional(self.db.pool())
        .await?;
        let words: HashSet<String> = match row {
            Some((elems, freqs, rows)) => elems
                .into_iter()
                .zip(freqs)
                .filter(|(_, f)| {
                    let f = f64::from(*f);
                    f > self.common_share && f * rows > COMMON_FLOOR
                })
                .map(|(e, _)| e)
                .collect(),
            None => HashSet::new(),
        };
        let words = Arc::new(words);
        if let Ok(mut c) = self.common.lock() {
            *c = Some((Instant::now(), words.clone()));
        }
        Ok(words)
    }

    /// The fused query with a ready query vector (benchmarks embed once, query many times).
    ///
    /// Vector leg: the `depth` nearest chunks of the owners by cosine distance (for one owner,
    /// that owner's chunks sorted by distance under a plan kept per connection; for several,
    /// whatever the planner picks for the scope, usually HNSW with pgvector 0.8's iterative
    /// scan under the owner filter; a sequential scan when `exact`).
    /// Keyword leg: the `depth` best of *all* the owners' chunks matching any of the query's
    /// words that are not [common](Self::common_words), by `ts_rank` then id — a definition
    /// with one answer, which the exact reference computes the same way. Fused by reciprocal
    /// rank (k = 60), ties by chunk id. One round trip: the SQL function `hybrid_retrieve`
    /// (migration `…_hybrid_retrieve.sql`) makes the scan settings and runs the query, a
    /// prepared statement with the vector bound in binary.
    pub async fn hybrid(
        &self,
        query: &str,
        vector: &[f32],
        owners: &[Uuid],
        k: usize,
    ) -> Result<Vec<RetrievedChunk>, RetrieveError> {
        let common = self.common_words().await?;
        let tokens: Vec<String> = keywords::tokens(query)
            .into_iter()
            .filter(|t| !common.contains(t))
            .collect();
        let words = (!tokens.is_empty()).then(|| keywords::any_query(&tokens));
        // SQL `integer`s: a count past i32::MAX (no real depth, k or ef_search) asks for
        // everything anyway, so it is clamped rather than refused.
        let depth = i32::try_from(self.depth.max(k)).unwrap_or(i32::MAX);
        let k = i32::try_from(k).unwrap_or(i32::MAX);
        let ef_search = i32::try_from(self.ef_search).unwrap_or(i32::MAX);
        let rows = sqlx::query(
            "SELECT id, document_id, owner_id, title, location, text, score, similarity, pinned \
             FROM hybrid_retrieve($1, $2, $3::tsquery, $4, $5, $6, $7)",
        )
        .bind(Vector(vector))
        .bind(owners)
        .bind(words)
        .bind(depth)
        .bind(k)
        .bind(ef_search)
        .bind(self.exact)
        .fetch_all(self.db.pool())
        .await?;
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
