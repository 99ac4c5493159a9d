//! The offline model: it answers with the retrieved passages' own sentences, each cited, and
//! writes nothing of its own but a short lead-in. It cannot invent, which is why it is the
//! default; what it cannot do is rephrase or combine.
//!
//! Sentences are scored by the question's keywords they share (the same Latin-word and Hangul
//! bigram tokens the keyword index uses), with a bonus for better-ranked passages. A question
//! in one language about a document in the other shares no keywords; then the best passage's
//! sentences closest in meaning stand: the embedder compares the question with the best
//! passages' sentences (one batch, only then). Without an embedder, the best passage's opening
//! sentences stand, since retrieval ranked that passage by meaning.
//! An owner's correction (a pinned passage) is the answer as the owner wrote it.

use super::{AnswerRequest, ChatModel, GenerateError, Language, Passage, TokenStream, Voice};
use crate::chunk::sentences;
use crate::embed::{Embedder, Purpose};
use crate::keywords;
use futures::future::BoxFuture;
use std::collections::HashSet;
use std::sync::Arc;

/// Sentences in an answer at most, and from one passage at most.
const MAX_SENTENCES: usize = 3;
const MAX_PER_PASSAGE: usize = 2;
/// Characters of quoted text at most, so an answer stays readable in a widget.
const MAX_CHARS: usize = 700;

/// Passages whose sentences are compared by meaning when no word is shared, and sentences at
/// most: one embedding batch of this size is the price of an answer across languages.
const MEANING_PASSAGES: usize = 2;
const MEANING_SENTENCES: usize = 8;

#[derive(Default, Clone)]
pub struct Extractive {
    embedder: Option<Arc<dyn Embedder>>,
    /// The passages' sentences come back with every question about them; their vectors are
    /// kept rather than computed again for each answer.
    sentences: Arc<std::sync::Mutex<crate::embed::VectorCache>>,
    /// One sentence pass at a time. Asks that miss the same sentences at once (the first
    /// questions in another language after a start) wait for one pass and find its vectors
    /// kept; each running the same pass itself, fifty at once, kept every answer waiting for
    /// seconds while the passes fought over the cores (docs/benchmarks.md, "Asking a chatbot").
    passes: Arc<tokio::sync::Mutex<()>>,
}

impl Extractive {
    /// Compares sentences by meaning when the question shares no word with them (another
    /// language).
    pub fn with_embedder(embedder: Arc<dyn Embedder>) -> Self {
        Self {
            embedder: Some(embedder),
            sentences: Default::default(),
            passes: Default::default(),
        }
    }

    /// The kept vector of each text, if it is kept.
    fn kept(&self, texts: &[String]) -> Option<Vec<Option<Vec<f32>>>> {
        let cache = self.sentences.lock().ok()?;
        Some(texts.iter().map(|t| cache.get(t)).collect())
    }

    /// Sentence choices by meaning, or `None` when there is no embedder or it failed (the
    /// opening sentences then stand).
    async fn by_meaning(&self, req: &AnswerRequest) -> Option<Vec<(usize, usize)>> {
        let embedder = self.embedder.as_ref()?;
        let mut at = Vec::new();
        let mut texts = Vec::new();
        for (rank, p) in req.passages.iter().take(MEANING_PASSAGES).enumerate() {
            for (i, s) in sentences_of(p)
                .into_iter()
                .enumerate()
                .take(MEANING_SENTENCES / 2)
            {
                at.push((rank, i));
                texts.push(s.to_owned());
            }
        }
        if texts.is_empty() {
            return None;
        }
        let q = match embedder
            .embed(std::slice::from_ref(&req.question), Purpose::Query)
            .await
        {
            Ok(mut v) => v.pop()?,
            Err(e) => {
                tracing::warn!(error = %e, "question embedding failed; answering with the opening sentences");
                return None;
            }
        };
        let mut known = self.kept(&texts)?;
        if known.iter().any(Option::is_none) {
            let _pass = self.passes.lock().await;
            // The pass waited for may have been for these very sentences.
            known = self.kept(&texts)?;
            let missing: Vec<String> = texts
                .iter()
                .zip(&known)
                .filter(|(_, k)| k.is_none())
                .map(|(t, _)| t.clone())
                .collect();
            if !missing.is_empty() {
                tracing::debug!(missing = missing.len(), "embedding passage sentences");
                let fresh = match embedder.embed(&missing, Purpose::Passage).await {
                    Ok(v) if v.len() == missing.len() => v,
                    Ok(_) => return None,
                    Err(e) => {
                        tracing::warn!(error = %e, "sentence embedding failed; answering with the opening sentences");
                        return None;
                    }
                };
                let mut fresh = fresh.into_iter();
                if let Ok(mut cache) = self.sentences.lock() {
                    for (t, k) in texts.iter().zip(known.iter_mut()) {
                        if k.is_none() {
                            let v = fresh.next()?;
                            cache.put(t.clone(), v.clone());
                            *k = Some(v);
                        }
                    }
                }
            }
        }
        let vs: Vec<Vec<f32>> = known.into_iter().collect::<Option<_>>()?;
        let mut scored: Vec<((usize, usize), f32)> = at
            .into_iter()
            .zip(
                vs.iter()
                    .map(|v| v.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>()),
            )
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        Some(scored.into_iter().map(|(k, _)| k).collect())
    }
}

impl ChatModel for Extractive {
    fn name(&self) -> &str {
        "extractive"
    }

    fn answer(&self, req: AnswerRequest) -> BoxFuture<'_, Result<TokenStream, GenerateError>> {
        Box::pin(async move {
            let w = wanted(&req);
            let shares_a_word = req.passages.iter().any(|p| p.pinned)
                || req
                    .passages
                    .iter()
                    .any(|p| sentences_of(p).iter().any(|s| keywords::found(&w, s) > 0));
            let order = if shares_a_word {
                None
            } else {
                self.by_meaning(&req).await
            };
            Ok(stream_words(compose_with(&req, order.as_deref())))
        })
    }
}

/// A passage's quotable sentences, in order.
fn sentences_of(p: &Passage) -> Vec<&str> {
    p.text
        .lines()
        .flat_map(sentences)
        .map(|s| s.trim_start_matches(['-', '*', '•', ' ']))
        .filter(|s| informative(s))
        .collect()
}

/// The question's words that say what is asked: the candidate's own name is in many questions
/// and in every closing line ("Kind regards, Emily Carter"), and points at nothing.
fn wanted(req: &AnswerRequest) -> HashSet<String> {
    let name = keywords::stems(&req.candidate);
    keywords::stems(&req.question)
        .into_iter()
        .filter(|t| !name.contains(t))
        .collect()
}

/// The answer's text streams a word at a time, like a remote model's would.
pub fn stream_words(text: String) -> TokenStream {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if c == ' ' || c == '\n' {
            pieces.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    Box::pin(futures::stream::iter(pieces.into_iter().map(Ok)))
}

/// A sentence worth quoting: not a heading or a salutation ("Cover letter", "Dear hiring team,").
fn informative(s: &str) -> bool {
    let letters = s.chars().filter(|c| c.is_alphanumeric()).count();
    let hangul = s.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c));
    letters >= 12 && (hangul || s.split_whitespace().count() >= 4)
}

struct Candidate<'a> {
    passage: &'a Passage,
    /// Order within the passage.
    index: usize,
    text: &'a str,
    score: f64,
}

/// The whole answer, with `[n]` after each quoted sentence.
pub fn compose(req: &AnswerRequest) -> String {
    compose_with(req, None)
}

/// `by_meaning`: (passage rank, sentence index) best first, for a question that shares no word.
fn compose_with(req: &AnswerRequest, by_meaning: Option<&[(usize, usize)]>) -> String {
    if let Some(p) = req.passages.iter().find(|p| p.pinned) {
        return format!("{} [{}]", p.text.trim(), p.n);
    }
    let picked = pick(req, by_meaning);
    let mut out = lead_in(req);
    for (i, c) in picked.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { " " });
        out.push_str(c.text.trim());
        out.push_str(&format!(" [{}]", c.passage.n));
    }
    out
}

fn lead_in(req: &AnswerRequest) -> String {
    match (req.language, req.voice) {
        (Language::Ko, Voice::FirstPerson) => "제 문서에는 이렇게 적혀 있습니다:".into(),
        (Language::Ko, Voice::ThirdPerson) => {
            format!("{}님의 문서에는 이렇게 적혀 있습니다:", req.candidate)
        }
        (Language::En, Voice::FirstPerson) => "Here is what my documents say:".into(),
        (Language::En, Voice::ThirdPerson) => {
            format!("Here is what {}'s documents say:", req.candidate)
        }
    }
}

fn pick<'a>(req: &'a AnswerRequest, by_meaning: Option<&[(usize, usize)]>) -> Vec<Candidate<'a>> {
    let wanted = wanted(req);
    let mut all: Vec<Candidate<'_>> = Vec::new();
    for (rank, p) in req.passages.iter().enumerate() {
        for (index, text) in sentences_of(p).into_iter().enumerate() {
            let tokens = keywords::stems(text);
            let shared = tokens.iter().filter(|t| wanted.contains(*t)).count() as f64;
            let score = if shared > 0.0 {
                shared / (tokens.len() as f64).sqrt() + 0.3 / (rank as f64 + 1.0)
            } else {
                0.0
            };
            all.push(Candidate {
                passage: p,
                index,
                text,
                score,
            });
        }
    }
    let mut chosen: Vec<Candidate<'_>> = Vec::new();
    if all.iter().any(|c| c.score > 0.0) {
        all.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut chars = 0;
        for c in all.into_iter().filter(|c| c.score > 0.0) {
            if chosen.len() == MAX_SENTENCES {
                break;
            }
            let from_same = chosen.iter().filter(|x| x.passage.n == c.passage.n).count();
            if from_same == MAX_PER_PASSAGE || (chars > 0 && chars + c.text.len() > MAX_CHARS) {
                continue;
            }
            chars += c.text.len();
            chosen.push(c);
        }
    } else if let Some(order) = by_meaning {
        // No shared word (another language): the sentences closest in meaning.
        let mut chars = 0;
        for (rank, index) in order {
            let Some(c) = all.iter().position(|c| {
                req.passages.get(*rank).is_some_and(|p| p.n == c.passage.n) && c.index == *index
            }) else {
                continue;
            };
            let c = all.swap_remove(c);
            if chosen.len() == MAX_PER_PASSAGE || (chars > 0 && chars + c.text.len() > MAX_CHARS) {
                break;
            }
            chars += c.text.len();
            chosen.push(c);
        }
    } else if let Some(best) = req.passages.first() {
        // No shared word (another language): the best passage, from its start.
        let mut chars = 0;
        for c in all.into_iter().filter(|c| c.passage.n == best.n) {
            if chosen.len() == MAX_PER_PASSAGE || (chars > 0 && chars + c.text.len() > MAX_CHARS) {
                break;
            }
            chars += c.text.len();
            chosen.push(c);
        }
    }
    // Read in the order the documents tell it: by passage rank, then position.
    chosen.sort_by_key(|c| {
        (
            req.passages.iter().position(|p| p.n == c.passage.n),
            c.index,
        )
    });
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn passage(n: usize, text: &str) -> Passage {
        Passage {
            n,
            document_title: "Résumé".into(),
            location: "Experience".into(),
            text: text.into(),
            pinned: false,
        }
    }

    fn request(q: &str, passages: Vec<Passage>) -> AnswerRequest {
        AnswerRequest {
            question: q.into(),
            passages,
            candidate: "Emily Carter".into(),
            persona: None,
            voice: Voice::ThirdPerson,
            language: Language::of(q),
        }
    }

    #[test]
    fn quotes_the_sentences_that_share_the_question_words_with_their_numbers() {
        let req = request(
            "Which database did she migrate the warehouse to?",
            vec![
                passage(
                    1,
                    "- Led the migration of the reporting warehouse from Oracle to PostgreSQL, cutting licence costs by 60%.\n- Managed a team of six engineers across two time zones.",
                ),
                passage(2, "She enjoys hiking and photography on weekends."),
            ],
        );
        let text = compose(&req);
        assert!(
            text.starts_with("Here is what Emily Carter's documents say:"),
            "{text}"
        );
        assert!(
            text.contains("Oracle to PostgreSQL, cutting licence costs by 60%. [1]"),
            "{text}"
        );
        assert!(!text.contains("hiking"), "{text}");
        assert!(!text.contains("[2]"), "{text}");
    }

    #[test]
    fn another_language_quotes_the_best_passage_from_its_start() {
        let req = request(
            "결제 API를 얼마나 빠르게 만들었나요?",
            vec![
                passage(
                    1,
                    "Cut the payment approval API from 320 ms to 90 ms. Wrote the runbook.",
                ),
                passage(2, "Other text entirely."),
            ],
        );
        let text = compose(&req);
        assert!(text.starts_with("Emily Carter님의 문서에는"), "{text}");
        assert!(text.contains("320 ms to 90 ms. [1]"), "{text}");
        assert!(!text.contains("[2]"));
    }

    #[test]
    fn the_candidates_name_is_no_evidence() {
        let req = request(
            "What did Emily Carter do at Northwind?",
            vec![passage(
                1,
                "At Northwind I moved the warehouse to PostgreSQL without a missed report.\nKind regards, Emily Carter",
            )],
        );
        let text = compose(&req);
        assert!(text.contains("PostgreSQL"), "{text}");
        assert!(!text.contains("Kind regards"), "{text}");
    }

    #[test]
    fn a_correction_is_the_answer_as_written() {
        let mut p = passage(1, "Yes — I hold a valid work permit for Canada until 2029.");
        p.pinned = true;
        let req = request(
            "Can she work in Canada?",
            vec![p, passage(2, "Canada office.")],
        );
        assert_eq!(
            compose(&req),
            "Yes — I hold a valid work permit for Canada until 2029. [1]"
        );
    }

    #[tokio::test]
    async fn streams_word_by_word_and_loses_nothing() {
        let text = "Here is what: one two [1]".to_owned();
        let parts: Vec<String> = Extractive::default()
            .answer(request(
                "one two",
                vec![passage(1, "one two three four five six.")],
            ))
            .await
            .unwrap()
            .map(|p| p.unwrap())
            .collect()
            .await;
        assert!(parts.len() > 3);
        let joined: String = parts.concat();
        assert!(joined.ends_with("[1]"), "{joined}");
        let direct: Vec<String> = stream_words(text.clone())
            .map(|p| p.unwrap())
            .collect()
            .await;
        assert_eq!(direct.concat(), text);
    }

    /// Counts passage passes; a unit stand-in for the encoder (the sentence choice itself is
    /// tested with the real model in the ai crate's integration tests).
    struct CountingEmbedder {
        passes: std::sync::atomic::AtomicUsize,
    }

    impl Embedder for CountingEmbedder {
        fn dim(&self) -> usize {
            4
        }
        fn name(&self) -> &str {
            "counting"
        }
        fn embed<'a>(
            &'a self,
            texts: &'a [String],
            purpose: Purpose,
        ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, crate::embed::EmbedError>> {
            Box::pin(async move {
                if purpose == Purpose::Passage {
                    self.passes
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    // A pass takes a while: long enough for the others to miss too.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Ok(texts
                    .iter()
                    .map(|t| vec![t.len() as f32, 1.0, 0.0, 0.0])
                    .collect())
            })
        }
    }

    #[tokio::test]
    async fn asks_missing_the_same_sentences_at_once_share_one_pass() {
        let embedder = Arc::new(CountingEmbedder {
            passes: Default::default(),
        });
        let model = Extractive::with_embedder(embedder.clone());
        let req = request(
            "어떤 데이터베이스로 이전했나요?",
            vec![passage(
                1,
                "Led the migration from Oracle to PostgreSQL. Cut licence costs by 60%.",
            )],
        );
        let answers = futures::future::join_all((0..20).map(|_| model.by_meaning(&req))).await;
        assert!(answers.iter().all(Option::is_some));
        assert_eq!(
            embedder.passes.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "twenty asks, one pass for their sentences"
        );
    }
}
