//! Answer generation behind one trait, [`ChatModel`]: the offline extractive model (the
//! default: the best sentences of the retrieved passages, never a word of its own), and remote
//! models (an OpenAI-compatible `/v1/chat/completions`, Gemini, Anthropic) that stream tokens.
//!
//! A model only ever sees the passages retrieval found for the question, numbered `[1]`, `[2]`,
//! …; it is told to answer from them alone and to cite them by number. What a passage says is
//! data: instructions inside an uploaded document are quoted to the model, never obeyed
//! (see [`prompt`]).

pub mod anthropic;
pub mod breaker;
pub mod config;
pub mod extractive;
pub mod gemini;
pub mod openai;
pub mod prompt;
mod remote;
pub mod resilient;

pub use config::{GenerationConfig, build};

use futures::future::BoxFuture;
use futures::stream::BoxStream;

pub use kernel::ai_api::Voice;

/// One retrieved passage, numbered as the prompt and the answer's `[n]` markers cite it.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// 1-based.
    pub n: usize,
    pub document_title: String,
    /// `p. 3`, `Experience › Acme`, or both.
    pub location: String,
    pub text: String,
    /// A correction the owner wrote: it outranks every document.
    pub pinned: bool,
}

/// Everything a model needs to answer one question.
#[derive(Debug, Clone)]
pub struct AnswerRequest {
    pub question: String,
    /// Best first; never empty (with no supporting passage the service answers by itself).
    pub passages: Vec<Passage>,
    /// The chatbot owner's display name ("Jane Kim").
    pub candidate: String,
    /// The owner's own instructions (tone, what to stress); they cannot lift the grounding rule.
    pub persona: Option<String>,
    pub voice: Voice,
    /// `ko` or `en`: the language of the question, which the answer should use.
    pub language: Language,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Ko,
    En,
}

impl Language {
    /// Korean when the text has more Hangul letters than Latin ones.
    pub fn of(text: &str) -> Self {
        let (mut hangul, mut latin) = (0usize, 0usize);
        for c in text.chars() {
            if ('\u{AC00}'..='\u{D7A3}').contains(&c) || ('\u{3131}'..='\u{318E}').contains(&c) {
                hangul += 1;
            } else if c.is_ascii_alphabetic() {
                latin += 1;
            }
        }
        if hangul > latin / 3 && hangul > 0 {
            Self::Ko
        } else {
            Self::En
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// Worth another try or the next model: no connection, timeout, 429, 5xx.
    #[error("the model is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request as such (4xx other than 429), or answered nonsense.
    #[error("the model refused: {0}")]
    Refused(String),
    /// The stream broke after it had started.
    #[error("the answer stream broke: {0}")]
    Interrupted(String),
}

impl GenerateError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Text as it arrives: each item is the next piece of the answer (a token or a few).
pub type TokenStream = BoxStream<'static, Result<String, GenerateError>>;

pub trait ChatModel: Send + Sync {
    /// For logs and the stored answer (`extractive`, `openai:gpt-oss-120b`).
    fn name(&self) -> &str;
    /// Starts an answer. The future resolves once the model has accepted the request (the
    /// HTTP status is known), so a failure before any text can fall back to the next model.
    fn answer(&self, req: AnswerRequest) -> BoxFuture<'_, Result<TokenStream, GenerateError>>;
    /// [`answer`](Self::answer), also naming the model that actually answers: a chain of
    /// models ([`resilient::Resilient`]) names the one that took the request, which its own
    /// `name()` cannot. One model alone names itself.
    fn answer_named(&self, req: AnswerRequest) -> BoxFuture<'_, Result<Answer, GenerateError>> {
        Box::pin(async move {
            let tokens = self.answer(req).await?;
            Ok(Answer {
                model: self.name().to_owned(),
                tokens,
            })
        })
    }
}

/// An answer under way, and which model gives it (`openai:gpt-oss-120b`, `extractive`).
pub struct Answer {
    pub model: String,
    pub tokens: TokenStream,
}

#[cfg(test)]
mod tests {
    use super::Language;

    #[test]
    fn language_follows_the_script() {
        assert_eq!(Language::of("어떤 프로젝트를 이끌었나요?"), Language::Ko);
        assert_eq!(Language::of("Which projects did she lead?"), Language::En);
        assert_eq!(Language::of("Kafka 경험이 있나요?"), Language::Ko);
        assert_eq!(Language::of(""), Language::En);
    }
}
