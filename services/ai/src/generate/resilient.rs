//! The configured models in their fallback order, behind one [`ChatModel`].
//!
//! For each model in turn:
//! - its breaker is asked first; while open, the model is skipped at once;
//! - the answer is started and its first piece of text awaited within `first_token`; the
//!   answer is committed to a model only once that text is there, so everything before it
//!   (no connection, an error status, a stream that ends or breaks early, a timeout) can still
//!   fall back;
//! - quick transient failures (no connection, `429`, `5xx`) are retried with doubling delays,
//!   `retries` times; a timeout is not retried, because a model that was too slow once is
//!   likely slow again and the recruiter is waiting: the next model answers instead;
//! - after the first text, each next piece must come within `idle`; a stall or a break ends
//!   the answer with [`GenerateError::Interrupted`] and is never retried or handed to another
//!   model, since part of the answer has already been shown.

use super::breaker::{Breaker, BreakerSettings, BreakerState};
use super::{Answer, AnswerRequest, ChatModel, GenerateError, TokenStream};
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// From the request to the first piece of text, per attempt.
    pub first_token: Duration,
    /// Between two pieces of text once the answer has started.
    pub idle: Duration,
    /// Extra attempts at one model after a transient failure before any text.
    pub retries: u32,
    /// Delay before the first retry; each next one doubles it.
    pub retry_delay: Duration,
    pub breaker: BreakerSettings,
}

struct Member {
    model: Arc<dyn ChatModel>,
    breaker: Arc<Breaker>,
}

pub struct Resilient {
    members: Vec<Member>,
    policy: Policy,
    name: String,
}

impl Resilient {
    pub fn new(models: Vec<Arc<dyn ChatModel>>, policy: Policy) -> Self {
        let name = format!(
            "fallback[{}]",
            models
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Self {
            members: models
                .into_iter()
                .map(|model| Member {
                    model,
                    breaker: Arc::new(Breaker::new(policy.breaker)),
                })
                .collect(),
            policy,
            name,
        }
    }

    /// Each model's name and breaker state, in order (for health pages and tests).
    pub fn breakers(&self) -> Vec<(String, BreakerState)> {
        self.members
            .iter()
            .map(|m| (m.model.name().to_owned(), m.breaker.state()))
            .collect()
    }

    async fn answer_in_order(&self, req: AnswerRequest) -> Result<Answer, GenerateError> {
        let mut failures: Vec<String> = Vec::new();
        let mut any_transient = false;
        for member in &self.members {
            let name = member.model.name();
            let mut attempt = 0u32;
            let mut retried: Option<GenerateError> = None;
            loop {
                if !member.breaker.admit() {
                    tracing::debug!(model = name, "breaker open: model skipped");
                    // Our own failed attempts may just have opened it; the last one says why.
                    failures.push(match retried {
                        Some(e) => format!("{name}: {e} (then its breaker opened)"),
                        None => format!("{name}: skipped while its breaker is open"),
                    });
                    any_transient = true;
                    break;
                }
                match self.start(member, req.clone()).await {
                    Ok((first, rest)) => {
                        if !failures.is_empty() {
                            tracing::info!(model = name, earlier = %failures.join("; "), "answered by a fallback model");
                        }
                        return Ok(Answer {
                            model: name.to_owned(),
                            tokens: self.watch(first, rest, member.breaker.clone()),
                        });
                    }
                    Err(Failure { error, timed_out }) => {
                        let transient = error.is_transient();
                        member.breaker.record(transient);
                        any_transient |= transient;
                        tracing::warn!(model = name, attempt, error = %error, "model attempt failed");
                        if transient && !timed_out && attempt < self.policy.retries {
                            tokio::time::sleep(backoff(self.policy.retry_delay, attempt)).await;
                            attempt += 1;
                            retried = Some(error);
                            continue;
                        }
                        failures.push(format!("{name}: {error}"));
                        break;
                    }
                }
            }
        }
        let summary = if failures.is_empty() {
            "no model is configured".to_owned()
        } else {
            failures.join("; ")
        };
        Err(if any_transient {
            GenerateError::Unavailable(summary)
        } else {
            GenerateError::Refused(summary)
        })
    }

    /// Starts one attempt and waits for its first piece of text.
    async fn start(
        &self,
        member: &Member,
        req: AnswerRequest,
    ) -> Result<(String, TokenStream), Failure> {
        let attempt = async {
            let mut tokens = member.model.answer(req).await?;
            loop {
                match tokens.next().await {
                    Some(Ok(t)) if t.is_empty() => continue,
                    Some(Ok(t)) => return Ok((t, tokens)),
                    // Nothing was shown yet, so a break here is as good as no answer.
                    Some(Err(GenerateError::Interrupted(m))) => {
                        return Err(GenerateError::Unavailable(m));
                    }
                    Some(Err(e)) => return Err(e),
                    None => {
                        return Err(GenerateError::Refused(
                            "the model finished without saying anything".into(),
                        ));
                    }
                }
            }
        };
        match tokio::time::timeout(self.policy.first_token, attempt).await {
            Ok(Ok(started)) => Ok(started),
            Ok(Err(error)) => Err(Failure {
                error,
                timed_out: false,
            }),
            Err(_) => Err(Failure {
                error: GenerateError::Unavailable(format!(
                    "no text within {} ms",
                    self.policy.first_token.as_millis()
                )),
                timed_out: true,
            }),
        }
    }

    /// The committed answer: its first piece, then the rest with the idle limit. The model's
    /// breaker learns how the answer ended (a consumer that stops reading early counts as a
    /// success: the model was answering).
    fn watch(&self, first: String, rest: TokenStream, breaker: Arc<Breaker>) -> TokenStream {
        struct State {
            rest: TokenStream,
            outcome: Outcome,
            idle: Duration,
            done: bool,
        }
        let state = State {
            rest,
            outcome: Outcome {
                breaker,
                recorded: false,
            },
            idle: self.policy.idle,
            done: false,
        };
        let tail = stream::unfold(state, |mut st| async move {
            if st.done {
                return None;
            }
            let error = match tokio::time::timeout(st.idle, st.rest.next()).await {
                Ok(Some(Ok(t))) => return Some((Ok(t), st)),
                Ok(None) => {
                    st.outcome.record(false);
                    return None;
                }
                Ok(Some(Err(GenerateError::Interrupted(m)))) => GenerateError::Interrupted(m),
                Ok(Some(Err(e))) => GenerateError::Interrupted(e.to_string()),
                Err(_) => {
                    GenerateError::Interrupted(format!("no text for {} ms", st.idle.as_millis()))
                }
            };
            st.outcome.record(true);
            st.done = true;
            Some((Err(error), st))
        });
        stream::once(async move { Ok(first) }).chain(tail).boxed()
    }
}

struct Failure {
    error: GenerateError,
    timed_out: bool,
}

/// Records an answer's outcome in its model's breaker exactly once, also when the answer is
/// dropped before its end.
struct Outcome {
    breaker: Arc<Breaker>,
    recorded: bool,
}

impl Outcome {
    fn record(&mut self, failed: bool) {
        if !self.recorded {
            self.recorded = true;
            self.breaker.record(failed);
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        self.record(false);
    }
}

/// `base * 2^attempt`, at most 32 times `base`, with its upper half random so that many
/// answers refused at once by a rate limit do not all come back at the same moment.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let full = base.saturating_mul(1u32 << attempt.min(5));
    let half = full / 2;
    // Randomness without another dependency: a v4 UUID is 122 random bits.
    let r = (uuid::Uuid::new_v4().as_u128() % 1000) as u32;
    half + half.mul_f64(f64::from(r) / 1000.0)
}

impl ChatModel for Resilient {
    fn name(&self) -> &str {
        &self.name
    }

    fn answer(&self, req: AnswerRequest) -> BoxFuture<'_, Result<TokenStream, GenerateError>> {
        Box::pin(async move { Ok(self.answer_in_order(req).await?.tokens) })
    }

    fn answer_named(&self, req: AnswerRequest) -> BoxFuture<'_, Result<Answer, GenerateError>> {
        Box::pin(self.answer_in_order(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_in_the_upper_half() {
        let base = Duration::from_millis(100);
        for attempt in 0..8 {
            let full = Duration::from_millis(100 * (1 << attempt.min(5)));
            let d = backoff(base, attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }
}
