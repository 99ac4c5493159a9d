//! Keyword tokens that work for Korean as well as English without a language dictionary:
//! Latin-script words lowercased (minus a few stop words), and overlapping character bigrams
//! for Hangul and CJK runs, so `결제시스템을` still matches a question about `결제 시스템`
//! whatever particle is attached.

use std::collections::HashSet;

const STOP: [&str; 40] = [
    "a", "an", "the", "and", "or", "of", "to", "in", "on", "at", "for", "with", "by", "from", "is",
    "are", "was", "were", "be", "been", "do", "does", "did", "what", "which", "who", "how", "when",
    "where", "why", "her", "his", "she", "he", "they", "it", "this", "that", "i", "you",
];

fn is_cjk_or_hangul(c: char) -> bool {
    matches!(c as u32,
        0xAC00..=0xD7A3 | 0x1100..=0x11FF | 0x3130..=0x318F | 0x4E00..=0x9FFF | 0x3040..=0x30FF)
}

/// Every token of a text in order, repeats included, each handed to `f` as a slice of a
/// buffer reused from word to word. Every question's support check and extractive answer
/// tokenizes each passage it considers, so this allocates nothing per token.
fn each_token(text: &str, mut f: impl FnMut(&str)) {
    let mut ascii = String::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        // `str::to_lowercase` for the rest (it knows, say, a word-final capital sigma).
        let owned;
        let lower: &str = if word.is_ascii() {
            ascii.clear();
            ascii.push_str(word);
            ascii.make_ascii_lowercase();
            &ascii
        } else {
            owned = word.to_lowercase();
            &owned
        };
        // Split mixed runs (`rust로`) into script runs.
        let mut start = 0;
        let mut kind = None;
        for (i, c) in lower.char_indices() {
            let k = is_cjk_or_hangul(c);
            if kind.is_some_and(|prev| prev != k) {
                run(&lower[start..i], kind == Some(true), &mut f);
                start = i;
            }
            kind = Some(k);
        }
        run(&lower[start..], kind == Some(true), &mut f);
    }
}

/// The tokens of one run of a single script: Hangul/CJK bigrams (a lone character as it is),
/// or the run itself as a word unless it is a stop word or a single non-digit character.
fn run(text: &str, cjk: bool, f: &mut impl FnMut(&str)) {
    if text.is_empty() {
        return;
    }
    if cjk {
        let mut starts = text.char_indices().map(|(i, _)| i).chain([text.len()]);
        let mut a = starts.next().unwrap_or(0);
        let Some(mut b) = starts.next() else { return };
        if b == text.len() {
            f(text);
            return;
        }
        for c in starts {
            f(&text[a..c]);
            a = b;
            b = c;
        }
    } else if !STOP.contains(&text)
        && (text.chars().nth(1).is_some() || text.chars().all(|c| c.is_ascii_digit()))
    {
        f(text);
    }
}

/// Distinct tokens of a text, in first-seen order.
pub fn tokens(text: &str) -> Vec<String> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    each_token(text, |t| {
        if !seen.contains(t) {
            seen.insert(t.to_owned());
            out.push(t.to_owned());
        }
    });
    out
}

/// A token as a comparison of words sees it: a Latin word cut to its first five letters (so
/// `migrate` meets `migration`), Hangul and CJK bigrams as they are.
fn stem(t: &str) -> &str {
    if t.bytes().all(|b| b.is_ascii_alphanumeric()) {
        &t[..t.len().min(5)]
    } else {
        t
    }
}

/// The distinct [stems](stem) of a text.
pub fn stems(text: &str) -> HashSet<String> {
    let mut out: HashSet<String> = HashSet::new();
    each_token(text, |t| {
        let s = stem(t);
        if !out.contains(s) {
            out.insert(s.to_owned());
        }
    });
    out
}

/// How many of the `wanted` stems occur in `text`: `stems(text)` intersected with `wanted`,
/// counted without collecting the text's own stems.
pub fn found(wanted: &HashSet<String>, text: &str) -> usize {
    if wanted.is_empty() {
        return 0;
    }
    let mut hit: HashSet<&str> = HashSet::new();
    each_token(text, |t| {
        if let Some(w) = wanted.get(stem(t)) {
            hit.insert(w.as_str());
        }
    });
    hit.len()
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

    /// The definition, written plainly (a token list searched for each new token, a string
    /// per run): what the allocation-free tokenizer above must give, token for token.
    fn plain_tokens(text: &str) -> Vec<String> {
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

    #[test]
    fn the_tokenizer_gives_what_the_plain_definition_gives() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut texts: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        assert!(texts.len() >= 7, "the fixtures were not read");
        texts.extend(
            [
                "",
                "a",
                "가",
                "7",
                "Σ ΟΔΟΣ İstanbul",
                "漢字かな交じり文",
                "x가y나z",
                "AWS에서 2년, K8s로",
                "ŁÓDŹ Straße ǅ",
                "r2d2 C3PO 한 글 자",
            ]
            .map(String::from),
        );
        for text in &texts {
            let want = plain_tokens(text);
            assert_eq!(tokens(text), want, "{text:?}");
            let want_stems: HashSet<String> = want
                .iter()
                .map(|t| {
                    if t.chars().all(|c| c.is_ascii_alphanumeric()) {
                        t.chars().take(5).collect()
                    } else {
                        t.clone()
                    }
                })
                .collect();
            assert_eq!(stems(text), want_stems, "{text:?}");
            let wanted: HashSet<String> = ["exper", "postg", "결제", "nothing-here"]
                .map(String::from)
                .into();
            assert_eq!(
                found(&wanted, text),
                want_stems.intersection(&wanted).count(),
                "{text:?}"
            );
        }
    }
}
