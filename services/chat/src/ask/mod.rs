//! `POST /api/chatbots/{slug}/ask` and `GET /api/chatbots/{slug}/quota`.
//!
//! An ask reserves the asker's quota first ([`quota`]), then asks ai for a streamed answer.
//! With `Accept: text/event-stream` the answer is relayed as it comes (`token`, `citation`,
//! `done`, `error`); otherwise it is collected and sent as one JSON body. Either way the relay
//! runs in a task of its own: a client that goes away ends its stream cleanly, and the answer
//! is still kept, since its question was asked and counted. An answer that fails (ai or every
//! model down) gives the quota back and keeps nothing.

pub mod quota;
pub mod record;

use crate::Chat;
use crate::ai::{Citation, Step};
use crate::chatbots::{self, store::Chatbot};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures::{Stream, StreamExt};
use kernel::http::{Json, Path, RequestContext};
use kernel::tokens::Caller;
use kernel::{FieldError, Problem};
use quota::{Asker, QuotaView, Reservation};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::net::IpAddr;
use uuid::Uuid;

pub const MAX_QUESTION_CHARS: usize = 2000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AskBody {
    pub question: String,
    #[serde(default)]
    pub conversation_id: Option<Uuid>,
}

/// A finished answer, as the JSON reply and the history show it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerView {
    pub answer_id: Uuid,
    pub conversation_id: Uuid,
    pub answer: String,
    pub supported: bool,
    pub model: String,
    pub citations: Vec<Citation>,
    pub quota: QuotaView,
}

/// The SSE `done` event.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DoneView<'a> {
    answer_id: Uuid,
    conversation_id: Uuid,
    supported: bool,
    model: &'a str,
    quota: &'a QuotaView,
}

/// Where the request came from: its trace, the client's address, the token to pass on.
pub struct Origin {
    pub ctx: Option<RequestContext>,
    pub address: Option<IpAddr>,
    pub bearer: String,
}

impl FromRequestParts<Chat> for Origin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, chat: &Chat) -> Result<Self, Infallible> {
        Ok(Self {
            ctx: parts.extensions.get::<RequestContext>().cloned(),
            address: kernel::client_address::of_request(parts, &chat.trusted_proxies),
            bearer: bearer(&parts.headers),
        })
    }
}

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned())
        .unwrap_or_default()
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

fn question_of(body: &AskBody) -> Result<String, Problem> {
    let q: String = body
        .question
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect::<String>()
        .trim()
        .to_owned();
    let n = q.chars().count();
    if n == 0 || n > MAX_QUESTION_CHARS {
        return Err(Problem::invalid_fields(vec![FieldError::new(
            "question",
            format!("Ask a question of 1 to {MAX_QUESTION_CHARS} characters."),
        )]));
    }
    Ok(q)
}

pub async fn ask(
    State(chat): State<Chat>,
    caller: Caller,
    origin: Origin,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Json(body): Json<AskBody>,
) -> Result<Response, Problem> {
    let bot = chatbots::find(&chat, &slug).await?;
    let question = question_of(&body)?;
    let (conversation_id, new_conversation) = match body.conversation_id {
        Some(id) => {
            if !record::owns_conversation(chat.db.pool(), id, bot.id, caller.subject()).await? {
                return Err(Problem::NotFound(
                    "You have no conversation with this id with this chatbot.".into(),
                ));
            }
            (id, false)
        }
        None => (Uuid::now_v7(), true),
    };
    let asker = Asker {
        subject: caller.subject(),
        role: caller.role(),
        address: origin.address,
    };
    let reservation = match chat.quotas.reserve(&asker, bot.id, Utc::now()).await? {
        Ok(r) => r,
        Err(exceeded) => {
            chat.metrics.refused(exceeded.kind);
            return Err(exceeded.problem());
        }
    };
    let ask = kernel::ai_api::AskBody {
        question: question.clone(),
        owner_id: bot.owner_id,
        // The person the chatbot speaks about: their own name, not the chatbot's title.
        candidate: bot.owner_name.clone().unwrap_or_else(|| bot.name.clone()),
        persona: Some(bot.persona.clone()).filter(|p| !p.is_empty()),
        voice: if bot.voice == "first_person" {
            kernel::ai_api::Voice::FirstPerson
        } else {
            kernel::ai_api::Voice::ThirdPerson
        },
    };
    let turn = Turn {
        deadline: tokio::time::Instant::now()
            + std::time::Duration::from_secs(chat.config.answer_timeout_secs),
        chat: chat.clone(),
        bot,
        conversation_id,
        new_conversation,
        asker_id: caller.subject().to_owned(),
        asker_role: caller.role().as_str(),
        question,
        reservation,
        ctx: origin.ctx,
    };
    // From here on the work runs in a task of its own: a client that goes away (or a proxy that
    // gives up) drops this handler, never the unit of quota taken above — the task either keeps
    // the answer or gives the unit back.
    let (started_tx, started) = tokio::sync::oneshot::channel();
    if wants_stream(&headers) {
        let (tx, rx) = tokio::sync::mpsc::channel::<SseEvent>(64);
        tokio::spawn(turn.answer(ask, origin.bearer, Some(tx), Some(started_tx)));
        match started.await {
            Ok(Ok(())) => Ok(
                Sse::new(kernel::http::receiver_stream(rx).map(Ok::<_, Infallible>))
                    .keep_alive(KeepAlive::default())
                    .into_response(),
            ),
            Ok(Err(p)) => Err(p),
            Err(_) => Err(Problem::internal(anyhow::anyhow!(
                "the answer task ended before it started"
            ))),
        }
    } else {
        let view = tokio::spawn(turn.answer(ask, origin.bearer, None, None))
            .await
            .map_err(Problem::internal)??;
        Ok(Json(view).into_response())
    }
}

async fn refund(chat: &Chat, r: &Reservation) {
    if let Err(e) = chat.quotas.refund(r).await {
        tracing::error!(error = %e, "a failed answer's quota could not be given back");
    }
}

fn event(name: &str, data: &impl Serialize) -> SseEvent {
    SseEvent::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|_| SseEvent::default().event(name).data("{}"))
}

/// One question being answered.
struct Turn {
    /// When the answer must be finished (`chat.answer_timeout_secs`), in process or not.
    deadline: tokio::time::Instant,
    chat: Chat,
    bot: Chatbot,
    conversation_id: Uuid,
    new_conversation: bool,
    asker_id: String,
    asker_role: &'static str,
    question: String,
    reservation: Reservation,
    ctx: Option<RequestContext>,
}

impl Turn {
    /// Asks ai, then relays the answer to `sink` (when streaming) and keeps it once done. A
    /// client that goes away only stops the relaying. `started` learns whether ai took the
    /// question (before any event, so that a refusal can still be a plain problem answer).
    async fn answer(
        self,
        ask: kernel::ai_api::AskBody,
        bearer: String,
        sink: Option<tokio::sync::mpsc::Sender<SseEvent>>,
        started: Option<tokio::sync::oneshot::Sender<Result<(), Problem>>>,
    ) -> Result<AnswerView, Problem> {
        let begun = tokio::time::timeout_at(
            self.deadline,
            self.chat.ai.answer((&bearer, self.ctx.as_ref()), &ask),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Problem::UpstreamUnavailable(
                "The answering service took too long.".into(),
            ))
        });
        match begun {
            Ok(steps) => {
                if let Some(s) = started {
                    let _ = s.send(Ok(()));
                }
                self.run(steps, sink).await
            }
            Err(p) => {
                refund(&self.chat, &self.reservation).await;
                self.chat.metrics.asked("failed");
                match started {
                    Some(s) => {
                        let _ = s.send(Err(p));
                        Err(Problem::UpstreamUnavailable("The answer failed.".into()))
                    }
                    None => Err(p),
                }
            }
        }
    }

    async fn run(
        self,
        steps: impl Stream<Item = Step> + Send,
        sink: Option<tokio::sync::mpsc::Sender<SseEvent>>,
    ) -> Result<AnswerView, Problem> {
        let mut sink = Sink(sink);
        let mut text = String::new();
        let mut citations: Vec<Citation> = Vec::new();
        let mut steps = std::pin::pin!(steps);
        loop {
            let step = match tokio::time::timeout_at(self.deadline, steps.next()).await {
                Ok(Some(step)) => step,
                Ok(None) => Step::Failed("the answer stopped".into()),
                Err(_) => {
                    Step::Failed("the answer took longer than chat.answer_timeout_secs".into())
                }
            };
            match step {
                Step::Token(t) => {
                    sink.send(event("token", &serde_json::json!({ "text": t })))
                        .await;
                    text.push_str(&t);
                }
                Step::Citation(c) => {
                    sink.send(event("citation", &c)).await;
                    citations.push(c);
                }
                Step::Failed(detail) => {
                    // The detail may quote a model provider's error; it stays in the log.
                    tracing::warn!(chatbot = %self.bot.slug, %detail, "an answer failed");
                    refund(&self.chat, &self.reservation).await;
                    self.chat.metrics.asked("failed");
                    let p = Problem::UpstreamUnavailable(
                        "The answer could not be finished. This question was not counted.".into(),
                    );
                    sink.send(event("error", &problem_body(&p, self.ctx.as_ref())))
                        .await;
                    return Err(p);
                }
                Step::Done(done) => {
                    let answered = record::Answered {
                        bot: &self.bot,
                        conversation_id: self.conversation_id,
                        new_conversation: self.new_conversation,
                        asker_id: &self.asker_id,
                        asker_role: self.asker_role,
                        question: &self.question,
                        answer: text.trim(),
                        supported: done.supported,
                        support: done.support,
                        model: &done.model,
                        citations: &citations,
                        embedding: &done.question_embedding.values,
                        asked_at: Utc::now(),
                    };
                    let id = match record::record(self.chat.db.pool(), &answered, self.ctx.as_ref())
                        .await
                    {
                        Ok(id) => id,
                        Err(p) => {
                            refund(&self.chat, &self.reservation).await;
                            self.chat.metrics.asked("failed");
                            sink.send(event("error", &problem_body(&p, self.ctx.as_ref())))
                                .await;
                            return Err(p);
                        }
                    };
                    self.chat.metrics.asked(if done.supported {
                        "answered"
                    } else {
                        "unsupported"
                    });
                    sink.send(event(
                        "done",
                        &DoneView {
                            answer_id: id,
                            conversation_id: self.conversation_id,
                            supported: done.supported,
                            model: &done.model,
                            quota: &self.reservation.view,
                        },
                    ))
                    .await;
                    return Ok(AnswerView {
                        answer_id: id,
                        conversation_id: self.conversation_id,
                        answer: text.trim().to_owned(),
                        supported: done.supported,
                        model: done.model,
                        citations,
                        quota: self.reservation.view.clone(),
                    });
                }
            }
        }
    }
}

/// The streaming client, while it listens.
struct Sink(Option<tokio::sync::mpsc::Sender<SseEvent>>);

impl Sink {
    async fn send(&mut self, e: SseEvent) {
        if let Some(tx) = &self.0
            && tx.send(e).await.is_err()
        {
            // The client went away: the answer is still finished and kept.
            self.0 = None;
        }
    }
}

/// The `error` event's data: the problem as an HTTP answer would carry it.
fn problem_body(p: &Problem, ctx: Option<&RequestContext>) -> kernel::problem::ProblemBody {
    let mut body = p.body();
    body.instance = ctx.map(|c| c.request_id.clone());
    body
}

pub async fn quota(
    State(chat): State<Chat>,
    caller: Caller,
    origin: Origin,
    Path(slug): Path<String>,
) -> Result<Json<QuotaView>, Problem> {
    let bot = chatbots::find(&chat, &slug).await?;
    let asker = Asker {
        subject: caller.subject(),
        role: caller.role(),
        address: origin.address,
    };
    Ok(Json(chat.quotas.view(&asker, bot.id, Utc::now()).await?))
}
