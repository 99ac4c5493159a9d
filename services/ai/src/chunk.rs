//! Chunks by structure: a section (same heading path and page) is filled with whole blocks up to
//! a token budget; a block too long for one chunk is cut between sentences, never inside one
//! (Korean or English), and the next chunk of the same section starts with the last sentence(s)
//! of the previous one as overlap. Every chunk keeps where it came from, for citations.

use crate::extract::{Block, Extracted, Kind};

#[derive(Debug, Clone, Copy)]
pub struct ChunkConfig {
    /// Estimated tokens per chunk at most (a single longer sentence is kept whole).
    pub max_tokens: usize,
    /// Tokens repeated from the end of the previous chunk in the same section.
    pub overlap_tokens: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        // Well under the 512-token window of the BERT-family models, with room for the title
        // and location prefix that goes into the embedded text.
        Self {
            max_tokens: 240,
            overlap_tokens: 40,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub ordinal: usize,
    pub text: String,
    /// `p. 3`, `Experience › Acme`, or both.
    pub location: String,
    pub page: Option<u32>,
    pub tokens: usize,
}

impl Chunk {
    /// What is embedded: the text with the document title and location, so that a passage that
    /// says "led the migration" is still found by a question naming the company in its heading.
    pub fn embedding_text(&self, title: &str) -> String {
        match (title.is_empty(), self.location.is_empty()) {
            (true, true) => self.text.clone(),
            (false, true) => format!("{title}\n{}", self.text),
            (true, false) => format!("{}\n{}", self.location, self.text),
            (false, false) => format!("{title} — {}\n{}", self.location, self.text),
        }
    }
}

/// Rough token count for BERT-family subword vocabularies: about four characters per token for
/// Latin script words, and about one token per one or two Hangul/CJK syllables.
pub fn estimate_tokens(s: &str) -> usize {
    s.split_whitespace()
        .map(|w| {
            let ascii = w.chars().filter(char::is_ascii).count();
            let other = w.chars().count() - ascii;
            (ascii.div_ceil(4)).max(usize::from(ascii > 0)) + (other * 3).div_ceil(4)
        })
        .sum()
}

/// Sentences of a text, each with its closing punctuation; whitespace between them is dropped.
/// A sentence ends at `.`, `!`, `?`, `。`, `！`, `？` or `…` (and closing quotes or brackets
/// right after) followed by whitespace or the end: `3.5`, `e.g.x` and `Node.js` stay whole.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (_, c) = chars[i];
        if matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '…') {
            let mut j = i + 1;
            while j < chars.len()
                && matches!(
                    chars[j].1,
                    '"' | '\'' | ')' | '」' | '』' | '”' | '’' | '.' | '!' | '?'
                )
            {
                j += 1;
            }
            if j == chars.len() || chars[j].1.is_whitespace() {
                let end = chars.get(j).map_or(text.len(), |(b, _)| *b);
                let s = text[start..end].trim();
                if !s.is_empty() {
                    out.push(s);
                }
                start = end;
                i = j;
                continue;
            }
        }
        i += 1;
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

fn location(b: &Block) -> String {
    // The first heading is usually the document's own title, which the chunk carries anyway.
    let path = if b.headings.len() > 1 {
        b.headings[1..].join(" › ")
    } else {
        b.headings.join(" › ")
    };
    match (b.page, path.is_empty()) {
        (Some(p), true) => format!("p. {p}"),
        (Some(p), false) => format!("p. {p} · {path}"),
        (None, _) => path,
    }
}

/// Chunks of an extracted document, in reading order.
pub fn chunk(doc: &Extracted, cfg: ChunkConfig) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    let mut i = 0;
    while i < doc.blocks.len() {
        let loc = location(&doc.blocks[i]);
        let page = doc.blocks[i].page;
        let mut j = i;
        while j < doc.blocks.len() && location(&doc.blocks[j]) == loc {
            j += 1;
        }
        section(&doc.blocks[i..j], &loc, page, cfg, &mut out);
        i = j;
    }
    for (n, c) in out.iter_mut().enumerate() {
        c.ordinal = n;
    }
    out
}

/// Units of a section: whole blocks when they fit, else their sentences. List items and table
/// rows are lines of their own in the chunk text.
fn section(blocks: &[Block], loc: &str, page: Option<u32>, cfg: ChunkConfig, out: &mut Vec<Chunk>) {
    let mut units: Vec<(String, bool)> = Vec::new(); // (text, starts a new line)
    for b in blocks {
        let own_line = true;
        if estimate_tokens(&b.text) <= cfg.max_tokens {
            let text = match b.kind {
                Kind::ListItem => format!("- {}", b.text),
                _ => b.text.clone(),
            };
            units.push((text, own_line));
        } else {
            for (k, s) in sentences(&b.text).into_iter().enumerate() {
                units.push((s.to_owned(), own_line && k == 0));
            }
        }
    }
    let mut cur: Vec<(String, bool)> = Vec::new();
    let mut cur_tokens = 0;
    let emit = |cur: &[(String, bool)], out: &mut Vec<Chunk>| {
        let mut text = String::new();
        for (k, (u, newline)) in cur.iter().enumerate() {
            if k > 0 {
                text.push(if *newline { '\n' } else { ' ' });
            }
            text.push_str(u);
        }
        out.push(Chunk {
            ordinal: 0,
            tokens: estimate_tokens(&text),
            text,
            location: loc.to_owned(),
            page,
        });
    };
    for u in units {
        let t = estimate_tokens(&u.0);
        if !cur.is_empty() && cur_tokens + t > cfg.max_tokens {
            emit(&cur, out);
            // Overlap: whole trailing units of the chunk just emitted, within the budget.
            let mut keep = Vec::new();
            let mut kept = 0;
            for prev in cur.iter().rev() {
                let pt = estimate_tokens(&prev.0);
                if kept + pt > cfg.overlap_tokens || kept + pt + t > cfg.max_tokens {
                    break;
                }
                kept += pt;
                keep.push(prev.clone());
            }
            keep.reverse();
            cur = keep;
            cur_tokens = kept;
        }
        cur_tokens += t;
        cur.push(u);
    }
    if !cur.is_empty() {
        emit(&cur, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Builder;

    #[test]
    fn sentences_split_korean_and_english_but_not_numbers() {
        let s = sentences(
            "저는 5년차 백엔드 개발자입니다. 결제 시스템을 3.5배 빠르게 만들었어요! \
             I use Node.js daily. Why? \"Because it works.\" 끝",
        );
        assert_eq!(
            s,
            [
                "저는 5년차 백엔드 개발자입니다.",
                "결제 시스템을 3.5배 빠르게 만들었어요!",
                "I use Node.js daily.",
                "Why?",
                "\"Because it works.\"",
                "끝"
            ]
        );
    }

    #[test]
    fn long_sections_are_cut_between_sentences_with_overlap() {
        let mut b = Builder::default();
        b.heading(1, "이력서");
        b.heading(2, "경력");
        let ko = "저는 대규모 트래픽을 처리하는 결제 시스템을 설계하고 운영했습니다. ";
        let en = "I designed and ran a payment system that handled heavy traffic every day. ";
        let long: String = (0..30).map(|k| if k % 2 == 0 { ko } else { en }).collect();
        b.block(Kind::Paragraph, &long);
        b.block(Kind::ListItem, "팀 리드");
        let doc = b.finish();
        let cfg = ChunkConfig {
            max_tokens: 80,
            overlap_tokens: 25,
        };
        let chunks = chunk(&doc, cfg);
        assert!(chunks.len() > 3, "{chunks:#?}");
        for (k, c) in chunks.iter().enumerate() {
            assert_eq!(c.ordinal, k);
            assert_eq!(c.location, "경력");
            assert!(c.tokens <= cfg.max_tokens, "{c:?}");
            // Every chunk is made of whole sentences.
            for s in sentences(&c.text) {
                assert!(
                    s == "- 팀 리드" || s == ko.trim() || s == en.trim(),
                    "cut sentence: {s:?}"
                );
            }
        }
        // Consecutive chunks share a sentence (the overlap).
        let first_last = sentences(&chunks[0].text).last().copied().unwrap();
        assert!(chunks[1].text.starts_with(first_last));
        assert!(chunks.last().unwrap().text.ends_with("- 팀 리드"));
    }

    #[test]
    fn pages_and_headings_become_locations() {
        let mut b = Builder::default();
        b.page(3);
        b.block(Kind::Paragraph, "on page three");
        b.heading(1, "Title");
        b.heading(2, "Experience");
        b.heading(3, "Acme");
        b.block(Kind::TableRow, "Year: 2021; Role: Lead");
        let c = chunk(&b.finish(), ChunkConfig::default());
        assert_eq!(c[0].location, "p. 3");
        assert_eq!(c[1].location, "p. 3 · Experience › Acme");
        assert_eq!(
            c[1].embedding_text("CV"),
            "CV — p. 3 · Experience › Acme\nYear: 2021; Role: Lead"
        );
    }

    #[test]
    fn token_estimate_counts_hangul_and_words() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("Rust"), 1);
        assert_eq!(estimate_tokens("engineering"), 3);
        assert_eq!(estimate_tokens("개발자입니다"), 5);
    }
}
