//! Keyword tokens that work for Korean as well as English without a language dictionary:
//! Latin-script words lowercased (minus a few stop words), and overlapping character bigrams
//! for Hangul and CJK runs, so `결제시스템을` still matches a question about `결제 시스템`
//! whatever particle is attached.

const STOP: [&str; 40] = [
    "a", "an", "the", "and", "or", "of", "to", "in", "on", "at", "for", "with", "by", "from", "is",
    "are", "was", "were", "be", "been", "do", "does", "did", "what", "which", "who", "how", "when",
    "where", "why", "her", "his", "she", "he", "they", "it", "this", "that", "i", "you",
];

fn is_cjk_or_hangul(c: char) -> bool {
    matches!(c as u32,
        0xAC00..=0xD7A3 | 0x1100..=0x11FF | 0x3130..=0x318F | 0x4E00..=0x9FFF | 0x3040..=0x30FF)
}

/// Distinct tokens of a text, in first-seen order.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |t: String| {
        if !out.contains(&t) {
            out.push(t);
        }
    };
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let lower = word.to_lowercase();
        // Split mixed runs (`Rust로`) into script runs.
        let mut runs: Vec<(bool, String)> = Vec::new();
        for c in lower.chars() {
            let k = is_cjk_or_hangul(c);
            match runs.last_mut() {
                Some((kind, s)) if *kind == k => s.push(c),
                _ => runs.push((k, c.to_string())),
            }
        }
        for (cjk, run) in runs {
            if cjk {
                let chars: Vec<char> = run.chars().collect();
                if chars.len() == 1 {
                    push(run);
                } else {
                    for w in chars.windows(2) {
                        push(w.iter().collect());
                    }
                }
            } else if !STOP.contains(&run.as_str())
                && (run.chars().count() > 1 || run.chars().all(|c| c.is_ascii_digit()))
            {
                push(run);
            }
        }
    }
    out
}

/// Tokens as a comparison of words sees them: Latin words cut to their first five letters (so
/// `migrate` meets `migration`), Hangul and CJK bigrams as they are.
pub fn stems(text: &str) -> std::collections::HashSet<String> {
    tokens(text)
        .into_iter()
        .map(|t| {
            if t.chars().all(|c| c.is_ascii_alphanumeric()) {
                t.chars().take(5).collect()
            } else {
                t
            }
        })
        .collect()
}

/// A tsquery matching any of the tokens, each quoted as a literal lexeme.
pub fn any_query(tokens: &[String]) -> String {
    tokens
        .iter()
        .map(|t| format!("'{}'", t.replace('\\', "\\\\").replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_bigrams_and_english_words() {
        assert_eq!(
            tokens("결제시스템을 Rust로 만든 the Engineer, 7년"),
            [
                "결제", "제시", "시스", "스템", "템을", "rust", "로", "만든", "engineer", "7", "년"
            ]
        );
        assert_eq!(
            any_query(&["it's".into(), "a\\b".into()]),
            r"'it''s' | 'a\\b'"
        );
        assert!(tokens("the of ... !!").is_empty());
    }
}
