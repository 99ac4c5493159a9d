//! `POST /internal/ai/answer` on the admin listener: one question about one owner's documents,
//! answered from retrieval through the configured [`ChatModel`], streamed back as Server-Sent
//! Events for chat to relay:
//!
//! - `token` `{"text"}`: the next piece of the answer;
//! - `citation` `{n, documentId, documentTitle, location, quote, pinned}`: each passage the
//!   answer cites with `[n]`, after the text;
//! - `done` `{supported, model, support, questionEmbedding}`;
//! - `error`: a problem object; nothing more follows.
//!
//! Whether anything supports an answer is decided here, before any model runs (see
//! [`crate::support`]). With nothing, the answer says so in the question's language and cites
//! nothing, whatever the model.

use crate::embed::{Embedder, Purpose};
use crate::generate::{AnswerRequest, ChatModel, Language, Passage, Voice};
use crate::retrieval::{RetrievedChunk, Retriever};
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use kernel::Problem;
use kernel::ai_api::QuestionEmbedding;
use kernel::http::Json;
use kernel::tokens::Caller;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::Arc;

pub const PATH: &str = kernel::ai_api::ANSWER_PATH;
pub const MAX_QUESTION_CHARS: usize = 2000;
/// An answer stops growing here: a model that will not stop cannot fill memory or a widget.
pub const MAX_ANSWER_CHARS: usize = 8000;

/// Config key `ai.answer`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerConfig {
    /// How close a passage that shares the question's words must be (see `support`).
    /// Calibrated for multilingual-e5-small; another embedder needs its own values.
    #[serde(default = "default_lexical_similarity")]
    pub lexical_similarity: f64,
    /// How far the best passage must stand out from the other candidates to support by
    /// itself, in the question's language.
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// How close the best passage in another language than the question must be.
    #[serde(default = "default_cross_language_floor")]
    pub cross_language_floor: f64,
    /// No passage below this supports anything.
    #[serde(default = "default_floor")]
    pub floor: f64,
    /// Similarity at which an owner's correction counts as answering this question.
    #[serde(default = "default_pinned_similarity")]
    pub pinned_similarity: f64,
    /// Passages handed to the model at most.
    #[serde(default = "default_passages")]
    pub passages: usize,
}

fn default_lexical_similarity() -> f64 {
    0.78
}
fn default_margin() -> f64 {
    0.03
}
fn default_cross_language_floor() -> f64 {
    0.755
}
fn default_floor() -> f64 {
    0.75
}
fn default_pinned_similarity() -> f64 {
    0.88
}
fn default_passages() -> usize {
    4
}

impl Default for AnswerConfig {
    fn default() -> Self {
        Self {
            lexical_similarity: default_lexical_similarity(),
            margin: default_margin(),
            cross_language_floor: default_cross_language_floor(),
            floor: default_floor(),
            pinned_similarity: default_pinned_similarity(),
            passages: default_passages(),
        }
    }
}

impl AnswerConfig {
    pub fn thresholds(&self) -> crate::support::Thresholds {
        crate::support::Thresholds {
            lexical_similarity: self.lexical_similarity,
            margin: self.margin,
            cross_language_floor: self.cross_language_floor,
            floor: self.floor,
            pinned_similarity: self.pinned_similarity,
        }
    }

    pub fn validate(&self) -> Result<(), kernel::ConfigError> {
        let mut errors = Vec::new();
        for (key, v) in [
            ("ai.answer.lexical_similarity", self.lexical_similarity),
            ("ai.answer.margin", self.margin),
            ("ai.answer.cross_language_floor", self.cross_language_floor),
            ("ai.answer.floor", self.floor),
            ("ai.answer.pinned_similarity", self.pinned_similarity),
        ] {
            if !(-1.0..=1.0).contains(&v) {
                errors.push(kernel::ConfigError::key(key, "must be between -1 and 1"));
            }
        }
        if self.passages == 0 || self.passages > 12 {
            errors.push(kernel::ConfigError::key(
                "ai.answer.passages",
                "must be between 1 and 12",
            ));
        }
        kernel::ConfigError::collect(errors)
    }
}

pub use kernel::ai_api::{AskBody, Citation, Done};

/// One step of an answer, in the order they stream.
#[derive(Debug, Clone)]
pub enum Step {
    Token(String),
    Citation(Citation),
    Done(Done),
    /// Nothing follows: no model could answer, or the stream broke.
    Failed(String),
}

impl Step {
    /// As the route sends it.
    pub fn event(&self) -> SseEvent {
        match self {
            Step::Token(t) => sse("token", &serde_json::json!({ "text": t })),
            Step::Citation(c) => sse("citation", c),
            Step::Done(d) => sse("done", d),
            Step::Failed(detail) => error_event(&Problem::UpstreamUnavailable(detail.clone())),
        }
    }
}

#[derive(Clone)]
pub struct Answerer {
    pub retriever: Retriever,
    pub embedder: Arc<dyn Embedder>,
    pub model: Arc<dyn ChatModel>,
    pub config: AnswerConfig,
    pub metrics: AnswerMetrics,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct Stage {
    /// `embed` (the question), `retrieve` (the hybrid query), `generate` (the model, to its
    /// last token).
    pub stage: &'static str,
}

/// `protostar_answer_stage_seconds{stage}`: where an answer's time goes, so a dashboard (and
/// the ask benchmark) can tell retrieval from the rest.
#[derive(Clone)]
pub struct AnswerMetrics {
    stages: prometheus_client::metrics::family::Family<
        Stage,
        prometheus_client::metrics::histogram::Histogram,
    >,
}

impl Default for AnswerMetrics {
    fn default() -> Self {
        Self {
            stages: prometheus_client::metrics::family::Family::new_with_constructor(|| {
                prometheus_client::metrics::histogram::Histogram::new([
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                ])
            }),
        }
    }
}

impl AnswerMetrics {
    pub fn register(metrics: &kernel::telemetry::Metrics) -> Self {
        let m = Self::default();
        metrics.register(
            "answer_stage_seconds",
            "Time an answer spends in each stage",
            m.stages.clone(),
        );
        m
    }

    fn observe(&self, stage: &'static str, since: std::time::Instant) {
        self.stages
            .get_or_create(&Stage { stage })
            .observe(since.elapsed().as_secs_f64());
    }
}

/// The quoted passage of a citation: the chunk, cut at a sentence near 600 characters.
fn quote(text: &str) -> String {
    let mut out = String::new();
    for s in crate::chunk::sentences(text) {
        if !out.is_empty() && out.chars().count() + s.chars().count() > 600 {
            out.push_str(" …");
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(s);
    }
    out
}

/// The `[n]` markers in an answer, in order of first use, that name a passage it was given.
pub fn cited(text: &str, passages: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'['
            && let Some(len) = bytes[i + 1..].iter().position(|b| *b == b']')
        {
            // `[1]`, and `[1, 2]` or `[1][2]` as some models write them.
            for part in text[i + 1..i + 1 + len].split(',') {
                if let Ok(n) = part.trim().parse::<usize>()
                    && (1..=passages).contains(&n)
                    && !out.contains(&n)
                {
                    out.push(n);
                }
            }
            i += len + 1;
        } else {
            i += 1;
        }
    }
    out
}

fn no_support(language: Language, voice: Voice, candidate: &str) -> String {
    match (language, voice) {
        (Language::Ko, Voice::FirstPerson) => {
            "제 문서에는 이 질문에 답할 내용이 없습니다. 추측으로 답하지 않겠습니다.".into()
        }
        (Language::Ko, Voice::ThirdPerson) => format!(
            "{candidate}님의 문서에는 이 질문에 답할 내용이 없습니다. 추측으로 답하지 않겠습니다."
        ),
        (Language::En, Voice::FirstPerson) => {
            "My documents don't cover that, so I won't guess.".into()
        }
        (Language::En, Voice::ThirdPerson) => {
            format!("{candidate}'s documents don't cover that, so I won't guess.")
        }
    }
}

fn sse(name: &str, data: &impl Serialize) -> SseEvent {
    SseEvent::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|_| SseEvent::default().event(name).data("{}"))
}

fn error_event(p: &Problem) -> SseEvent {
    sse("error", &p.body())
}

impl Answerer {
    pub fn validate(body: &AskBody) -> Result<(), Problem> {
        let q = body.question.trim();
        if q.is_empty() {
            return Err(Problem::invalid_fields(vec![kernel::FieldError::new(
                "question",
                "Ask something.",
            )]));
        }
        if q.chars().count() > MAX_QUESTION_CHARS {
            return Err(Problem::invalid_fields(vec![kernel::FieldError::new(
                "question",
                format!("At most {MAX_QUESTION_CHARS} characters."),
            )]));
        }
        Ok(())
    }

    /// Retrieval happens before the stream starts, so a failure there is a plain problem
    /// answer; what follows is the stream.
    pub async fn answer(
        &self,
        body: AskBody,
    ) -> Result<impl Stream<Item = Step> + Send + use<>, Problem> {
        Self::validate(&body)?;
        let question = body.question.trim().to_owned();
        let started = std::time::Instant::now();
        let vector = self
            .embedder
            .embed(std::slice::from_ref(&question), Purpose::Query)
            .await
            .map_err(|e| Problem::UpstreamUnavailable(e.to_string()))?
            .pop()
            .unwrap_or_default();
        self.metrics.observe("embed", started);
        let depth = (self.config.passages * 2).max(8);
        let started = std::time::Instant::now();
        let found = self
            .retriever
            .hybrid(&question, &vector, &[body.owner_id], depth)
            .await?;
        self.metrics.observe("retrieve", started);
        let best = found
            .iter()
            .filter_map(|c| c.similarity)
            .fold(0.0f64, f64::max);
        let kept = crate::support::supporting(
            &question,
            &body.candidate,
            found,
            self.config.thresholds(),
            self.config.passages,
        );
        let language = Language::of(&question);
        let passages: Vec<Passage> = kept
            .iter()
            .enumerate()
            .map(|(i, c)| Passage {
                n: i + 1,
                document_title: c.document_title.clone(),
                location: c.location.clone(),
                text: c.text.clone(),
                pinned: c.pinned,
            })
            .collect();
        let model = self.model.clone();
        let request = AnswerRequest {
            question,
            passages,
            candidate: body.candidate.clone(),
            persona: body.persona.clone().filter(|p| !p.trim().is_empty()),
            voice: body.voice,
            language,
        };
        Ok(async_stream(
            model,
            request,
            kept,
            best,
            QuestionEmbedding {
                values: vector,
                base64: false,
            },
            body,
            self.metrics.clone(),
        ))
    }
}

/// The stream of one answer: tokens as the model makes them, then citations and `done`.
fn async_stream(
    model: Arc<dyn ChatModel>,
    request: AnswerRequest,
    kept: Vec<RetrievedChunk>,
    best: f64,
    embedding: QuestionEmbedding,
    body: AskBody,
    metrics: AnswerMetrics,
) -> impl Stream<Item = Step> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<Step>(32);
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let done = |supported: bool, model: String| Done {
            supported,
            model,
            support: best,
            question_embedding: embedding.clone(),
        };
        if request.passages.is_empty() {
            let text = no_support(request.language, request.voice, &body.candidate);
            for piece in crate::generate::extractive::stream_words(text)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .flatten()
            {
                if tx.send(Step::Token(piece)).await.is_err() {
                    return;
                }
            }
            let _ = tx.send(Step::Done(done(false, "none".into()))).await;
            return;
        }
        let (name, mut tokens) = match model.answer_named(request.clone()).await {
            Ok(a) => (a.model, a.tokens),
            Err(e) => {
                tracing::warn!(error = %e, "no model could answer");
                let _ = tx.send(Step::Failed(e.to_string())).await;
                return;
            }
        };
        let mut text = String::new();
        let mut chars = 0;
        while let Some(piece) = tokens.next().await {
            match piece {
                Ok(piece) => {
                    chars += piece.chars().count();
                    if chars > MAX_ANSWER_CHARS {
                        tracing::warn!(model = %name, "the answer reached its length limit");
                        break;
                    }
                    text.push_str(&piece);
                    if tx.send(Step::Token(piece)).await.is_err() {
                        // Chat went away (its client did); stop the model too.
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the answer stream broke");
                    let _ = tx.send(Step::Failed(e.to_string())).await;
                    return;
                }
            }
        }
        metrics.observe("generate", started);
        let numbers = cited(&text, kept.len());
        for n in &numbers {
            let c = &kept[n - 1];
            let citation = Citation {
                n: *n,
                document_id: c.document_id,
                document_title: c.document_title.clone(),
                location: c.location.clone(),
                quote: quote(&c.text),
                pinned: c.pinned,
            };
            if tx.send(Step::Citation(citation)).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Step::Done(done(!numbers.is_empty(), name))).await;
    });
    kernel::http::receiver_stream(rx)
}

pub async fn route(
    State(a): State<AnswerState>,
    _caller: Caller,
    headers: axum::http::HeaderMap,
    Json(body): Json<AskBody>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Problem> {
    let base64 = headers
        .get(kernel::ai_api::EMBEDDING_HEADER)
        .is_some_and(|v| v == kernel::ai_api::EMBEDDING_BASE64);
    let steps = a.answerer.answer(body).await?;
    // How the embedding is written is the wire's business, decided here for this caller.
    let events = steps.map(move |mut step| {
        if let Step::Done(done) = &mut step {
            done.question_embedding.base64 = base64;
        }
        Ok(step.event())
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

#[derive(Clone)]
pub struct AnswerState {
    pub answerer: Answerer,
    pub verifier: Arc<kernel::tokens::TokenVerifier>,
}

impl axum::extract::FromRef<AnswerState> for Arc<kernel::tokens::TokenVerifier> {
    fn from_ref(s: &AnswerState) -> Self {
        s.verifier.clone()
    }
}

pub fn router(state: AnswerState) -> axum::Router {
    axum::Router::new()
        .route(PATH, axum::routing::post(route))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_name_given_passages_once_in_order() {
        assert_eq!(cited("A [2]. B [1][2]. C [1, 3] [9] [x]", 3), [2, 1, 3]);
        assert!(cited("nothing cited", 3).is_empty());
        assert!(cited("[", 3).is_empty());
        assert!(cited("[1", 3).is_empty());
    }

    #[test]
    fn quotes_stop_at_a_sentence() {
        let long = "A sentence that is long enough to count. ".repeat(40);
        let q = quote(&long);
        assert!(q.chars().count() < 700 && q.ends_with('…'), "{q}");
    }
}
