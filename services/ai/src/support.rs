//! Whether retrieved passages support an answer at all.
//!
//! A small multilingual embedder such as multilingual-e5-small places every question about
//! 0.75–0.85 from every passage of a résumé, relevant or not: measured on this project's
//! fixtures, "What is her favourite pizza topping?" came as close (0.78) to the best passage as
//! a Korean question about the English résumé that it does answer (0.77). So the absolute
//! similarity decides nothing by itself. Two kinds of evidence do:
//!
//! - **shared words**: the passage contains at least half of the question's keywords (Latin
//!   words compared by their first five letters, so `migrate` meets `migration`; Hangul by
//!   character bigrams), and is reasonably close (`lexical_similarity`);
//! - **a standout**: the best passage is clearly closer than the other candidates (`margin`
//!   above their mean; a passage with no other candidate is no standout).
//!
//! Across languages no word can be shared, and the model's similarities are lower and flatter
//! still: a Korean question about the English résumé that it answers scored 0.762 against
//! 0.761 and 0.759 for unrelated passages, while an unrelated Korean question about a pilot's
//! licence scored 0.786 (e5 links 자격증 with "licence costs"). So a question in another
//! language than the passage is supported by its best passage once that reaches
//! `cross_language_floor`: unrelated questions mostly stay below it (a pizza topping: 0.733 and
//! 0.749), but a near miss like the licence passes, and is answered by quoting the closest
//! passage — cited, never invented, but beside the point. A remote model, told to say when the
//! passages do not answer, judges those better than this gate can.
//!
//! A correction (pinned) supports when it shares the question's words or is as close as
//! `pinned_similarity`. The thresholds are `ai.answer.*`; `tests/answers.rs` pins them on the
//! fixtures in both languages.

use crate::generate::Language;
use crate::keywords::{self, stems};
use crate::retrieval::RetrievedChunk;
use std::collections::HashSet;

/// The thresholds, from `ai.answer`.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub lexical_similarity: f64,
    pub margin: f64,
    pub cross_language_floor: f64,
    pub floor: f64,
    pub pinned_similarity: f64,
}

/// The share of the question's keywords found in `text`.
pub fn overlap(question: &HashSet<String>, text: &str) -> f64 {
    if question.is_empty() {
        return 0.0;
    }
    keywords::found(question, text) as f64 / question.len() as f64
}

/// The passages that support an answer to `question`, pinned corrections first; empty when
/// none does. `chunks` are the hybrid candidates, best first.
pub fn supporting(
    question: &str,
    candidate: &str,
    chunks: Vec<RetrievedChunk>,
    t: Thresholds,
    max: usize,
) -> Vec<RetrievedChunk> {
    // The candidate's name is in many questions and on every page of their documents: it is no
    // evidence that a passage answers anything.
    let name = stems(candidate);
    let q: std::collections::HashSet<String> = stems(question)
        .into_iter()
        .filter(|t| !name.contains(t))
        .collect();
    let q_lang = Language::of(question);
    let sim = |c: &RetrievedChunk| c.similarity.unwrap_or(f64::MIN);
    let lexical = |c: &RetrievedChunk| {
        overlap(
            &q,
            &format!("{} {} {}", c.document_title, c.location, c.text),
        ) >= 0.5
    };
    let mut sims: Vec<f64> = chunks
        .iter()
        .filter(|c| !c.pinned)
        .filter_map(|c| c.similarity)
        .collect();
    sims.sort_by(|a, b| b.total_cmp(a));
    sims.truncate(8);
    let best = sims.first().copied().unwrap_or(f64::MIN);
    let rest = &sims[sims.len().min(1)..];
    // A same-language standout needs a field to stand out of: a lone passage (a chatbot with
    // one short document, or the last one left while others are being deleted) is as close to
    // a pizza question as to any other, so in the question's language it supports only
    // through shared words. (Across languages the floor alone decides, as for any field.)
    let mean_rest = (!rest.is_empty()).then(|| rest.iter().sum::<f64>() / rest.len() as f64);
    let standout = |c: &RetrievedChunk| {
        let s = sim(c);
        if s < best - 1e-9 {
            return false;
        }
        if Language::of(&c.text) == q_lang {
            s >= t.floor && mean_rest.is_some_and(|m| s - m >= t.margin)
        } else {
            s >= t.cross_language_floor
        }
    };
    let mut kept: Vec<RetrievedChunk> = Vec::new();
    let mut backed = false;
    for c in &chunks {
        let supports = if c.pinned {
            lexical(c) || sim(c) >= t.pinned_similarity
        } else {
            (lexical(c) && sim(c) >= t.lexical_similarity) || standout(c)
        };
        if supports {
            backed = true;
            kept.push(c.clone());
        }
    }
    if !backed {
        return Vec::new();
    }
    // Beside the passages that support by themselves, their close neighbours give context.
    for c in &chunks {
        if kept.len() >= max {
            break;
        }
        if !c.pinned && sim(c) >= best - 0.03 && !kept.iter().any(|k| k.chunk_id == c.chunk_id) {
            kept.push(c.clone());
        }
    }
    // Stable: corrections first, then the fused order.
    let order = |c: &RetrievedChunk| chunks.iter().position(|x| x.chunk_id == c.chunk_id);
    kept.sort_by_key(|c| (!c.pinned, order(c)));
    kept.truncate(max);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn chunk(text: &str, sim: f64, pinned: bool) -> RetrievedChunk {
        RetrievedChunk {
            chunk_id: Uuid::now_v7(),
            document_id: Uuid::now_v7(),
            owner_id: Uuid::nil(),
            document_title: "Résumé".into(),
            location: "Experience".into(),
            text: text.into(),
            score: 0.0,
            similarity: Some(sim),
            pinned,
        }
    }

    const T: Thresholds = Thresholds {
        lexical_similarity: 0.78,
        margin: 0.03,
        cross_language_floor: 0.755,
        floor: 0.75,
        pinned_similarity: 0.88,
    };

    #[test]
    fn shared_words_support_and_stems_meet() {
        let q = stems("Which database did she migrate the warehouse to?");
        assert!(
            overlap(
                &q,
                "Led the migration of the reporting warehouse to PostgreSQL"
            ) >= 0.5
        );
        let kept = supporting(
            "Which database did she migrate the warehouse to?",
            "Emily Carter",
            vec![
                chunk("Led the migration of the reporting warehouse.", 0.80, false),
                chunk("Speaks French.", 0.79, false),
                chunk("Hiking.", 0.70, false),
            ],
            T,
            4,
        );
        assert_eq!(
            kept[0].text,
            "Led the migration of the reporting warehouse."
        );
    }

    #[test]
    fn a_flat_field_with_no_shared_word_supports_nothing() {
        let kept = supporting(
            "What is her favourite pizza topping?",
            "Emily Carter",
            vec![
                chunk(
                    "Led the migration of the reporting warehouse.",
                    0.782,
                    false,
                ),
                chunk("Managed six engineers.", 0.769, false),
                chunk("Speaks French.", 0.764, false),
                chunk("B.Sc. in Computer Science.", 0.758, false),
            ],
            T,
            4,
        );
        assert!(kept.is_empty(), "{kept:?}");
    }

    #[test]
    fn a_lone_passage_stands_out_of_nothing() {
        let lone = |text: &str| vec![chunk(text, 0.80, false)];
        let pizza = "What is Nova's favourite pizza topping?";
        let kept = supporting(pizza, "Nova", lone("Ten years of embedded Rust."), T, 4);
        assert!(kept.is_empty(), "{kept:?}");
        let rust = "How many years of embedded Rust does Nova have?";
        let kept = supporting(rust, "Nova", lone("Ten years of embedded Rust."), T, 4);
        assert_eq!(kept.len(), 1, "{kept:?}");
        // One other candidate is a field: clearly closer than it stands out.
        let mut two = lone("Ten years of embedded Rust.");
        two.push(chunk("Hiking.", 0.70, false));
        assert_eq!(supporting(pizza, "Nova", two, T, 4).len(), 1);
    }

    #[test]
    fn another_language_needs_a_standout() {
        let q = "어떤 데이터베이스로 웨어하우스를 이전했나요?";
        let field = |best: f64| {
            vec![
                chunk(
                    "Led the migration of the reporting warehouse to PostgreSQL.",
                    best,
                    false,
                ),
                chunk("Managed six engineers.", 0.745, false),
                chunk("Speaks French.", 0.743, false),
            ]
        };
        let kept = supporting(q, "Emily Carter", field(0.769), T, 4);
        assert!(kept[0].text.contains("PostgreSQL"), "{kept:?}");
        assert!(supporting(q, "Emily Carter", field(0.75), T, 4).is_empty());
    }

    #[test]
    fn the_candidates_name_shares_nothing() {
        let kept = supporting(
            "What is Emily Carter's favourite pizza topping?",
            "Emily Carter",
            vec![
                chunk("Résumé of Emily Carter, staff engineer.", 0.78, false),
                chunk("Managed six engineers.", 0.77, false),
                chunk("Speaks French.", 0.77, false),
            ],
            T,
            4,
        );
        assert!(kept.is_empty(), "{kept:?}");
    }

    #[test]
    fn a_close_correction_comes_first() {
        let kept = supporting(
            "Does Emily have a pilot licence?",
            "Emily Carter",
            vec![
                chunk("Licence costs fell by 60%.", 0.79, false),
                chunk("No. Emily has no pilot licence.", 0.86, true),
            ],
            T,
            4,
        );
        assert!(kept[0].pinned, "{kept:?}");
    }
}
