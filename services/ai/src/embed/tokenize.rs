//! The two tokenizers the local models need, written here rather than pulling a general
//! tokenizer library: BERT's WordPiece (all-MiniLM-L6-v2, read from its `tokenizer.json`) and a
//! SentencePiece-style Unigram with Viterbi segmentation (multilingual-e5-small, read from the
//! `unigram.json` the converter writes from the 4-bit model file).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

pub enum Tokenizer {
    WordPiece(WordPiece),
    Unigram(Unigram),
}

impl Tokenizer {
    /// Reads `unigram.json` or else `tokenizer.json` (WordPiece) from a model folder.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let uni = dir.join("unigram.json");
        if uni.exists() {
            let spec: UnigramSpec = serde_json::from_slice(&std::fs::read(uni)?)?;
            return Ok(Self::Unigram(Unigram::new(spec)));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("tokenizer.json"))?)?;
        Ok(Self::WordPiece(WordPiece::from_tokenizer_json(&v)?))
    }

    /// Token ids with the model's start and end tokens, at most `max_len` in all.
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        match self {
            Self::WordPiece(w) => w.encode(text, max_len),
            Self::Unigram(u) => u.encode(text, max_len),
        }
    }
}

// ----------------------------------------------------------------------------------------------

pub struct WordPiece {
    vocab: HashMap<String, u32>,
    lowercase: bool,
    unk: u32,
    cls: u32,
    sep: u32,
}

impl WordPiece {
    pub fn from_tokenizer_json(v: &serde_json::Value) -> anyhow::Result<Self> {
        let vocab: HashMap<String, u32> = serde_json::from_value(v["model"]["vocab"].clone())?;
        let id = |t: &str| {
            vocab
                .get(t)
                .copied()
                .ok_or_else(|| anyhow::anyhow!("tokenizer.json has no {t}"))
        };
        Ok(Self {
            lowercase: v["normalizer"]["lowercase"].as_bool().unwrap_or(true),
            unk: id("[UNK]")?,
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            vocab,
        })
    }

    fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        let mut ids = vec![self.cls];
        'words: for word in self.basic_tokens(text) {
            let chars: Vec<char> = word.chars().collect();
            if chars.len() > 100 {
                ids.push(self.unk);
                continue;
            }
            let mut pieces = Vec::new();
            let mut start = 0;
            while start < chars.len() {
                let mut end = chars.len();
                let mut found = None;
                while start < end {
                    let mut s: String = chars[start..end].iter().collect();
                    if start > 0 {
                        s.insert_str(0, "##");
                    }
                    if let Some(&id) = self.vocab.get(&s) {
                        found = Some(id);
                        break;
                    }
                    end -= 1;
                }
                match found {
                    Some(id) => pieces.push(id),
                    None => {
                        ids.push(self.unk);
                        continue 'words;
                    }
                }
                start = end;
            }
            ids.extend(pieces);
        }
        ids.truncate(max_len.saturating_sub(1));
        ids.push(self.sep);
        ids
    }

    /// BERT's basic tokenisation: clean control characters, space out CJK ideographs,
    /// lowercase and strip accents (NFD, drop combining marks), split on whitespace and
    /// punctuation (each punctuation mark a token of its own).
    fn basic_tokens(&self, text: &str) -> Vec<String> {
        let mut cleaned = String::with_capacity(text.len());
        for c in text.chars() {
            if c == '\0' || c == '\u{fffd}' || (c.is_control() && !c.is_whitespace()) {
                continue;
            }
            if is_cjk(c) {
                cleaned.push(' ');
                cleaned.push(c);
                cleaned.push(' ');
            } else if c.is_whitespace() {
                cleaned.push(' ');
            } else {
                cleaned.push(c);
            }
        }
        let mut out = Vec::new();
        for word in cleaned.split_whitespace() {
            let word: String = if self.lowercase {
                word.to_lowercase()
                    .nfd()
                    .filter(|c| !is_combining_mark(*c))
                    .collect()
            } else {
                word.to_owned()
            };
            let mut cur = String::new();
            for c in word.chars() {
                if is_punctuation(c) {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                    out.push(c.to_string());
                } else {
                    cur.push(c);
                }
            }
            if !cur.is_empty() {
                out.push(cur);
            }
        }
        out
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

/// ASCII symbols count as punctuation for BERT, as do the Unicode punctuation blocks.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c as u32,
            0x00A1..=0x00BF | 0x2010..=0x2027 | 0x2030..=0x205E | 0x3001..=0x3003
            | 0x3008..=0x3011 | 0x3014..=0x301F | 0xFF01..=0xFF0F | 0xFF1A..=0xFF20
            | 0xFF3B..=0xFF40 | 0xFF5B..=0xFF65)
}

// ----------------------------------------------------------------------------------------------

/// The Unigram vocabulary as the converter writes it.
#[derive(Debug, Serialize, Deserialize)]
pub struct UnigramSpec {
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    pub unk: u32,
    /// (piece, log-probability score), by id.
    pub pieces: Vec<(String, f32)>,
    /// Per-character normalisation: code point → replacement code points.
    pub normalization: Vec<(u32, Vec<u32>)>,
}

pub struct Unigram {
    spec_bos: u32,
    spec_eos: u32,
    unk: u32,
    unk_score: f32,
    max_piece_bytes: usize,
    lookup: HashMap<String, (u32, f32)>,
    normalization: HashMap<char, String>,
}

/// SentencePiece's word boundary marker.
const META: char = '\u{2581}';

impl Unigram {
    pub fn new(spec: UnigramSpec) -> Self {
        let min = spec
            .pieces
            .iter()
            .map(|p| p.1)
            .fold(f32::INFINITY, f32::min);
        let max_piece_bytes = spec.pieces.iter().map(|p| p.0.len()).max().unwrap_or(1);
        let mut lookup = HashMap::with_capacity(spec.pieces.len());
        for (id, (piece, score)) in spec.pieces.iter().enumerate() {
            if !piece.is_empty() {
                lookup.entry(piece.clone()).or_insert((id as u32, *score));
            }
        }
        let normalization = spec
            .normalization
            .iter()
            .filter_map(|(cp, out)| {
                let c = char::from_u32(*cp)?;
                Some((c, out.iter().filter_map(|o| char::from_u32(*o)).collect()))
            })
            .collect();
        Self {
            spec_bos: spec.bos,
            spec_eos: spec.eos,
            unk: spec.unk,
            // An unknown character costs more than any known piece.
            unk_score: min - 10.0,
            max_piece_bytes,
            lookup,
            normalization,
        }
    }

    fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        let mut ids = vec![self.spec_bos];
        let mut content = self.segment(text);
        content.truncate(max_len.saturating_sub(2));
        ids.extend(content);
        ids.push(self.spec_eos);
        ids
    }

    /// Normalise, mark word starts, then pick the most probable segmentation (Viterbi over
    /// pieces; an unknown character is a one-character `<unk>`).
    fn segment(&self, text: &str) -> Vec<u32> {
        let mut norm = String::with_capacity(text.len());
        for c in text.chars() {
            match self.normalization.get(&c) {
                Some(r) => norm.push_str(r),
                None => norm.push(c),
            }
        }
        let mut chars: Vec<char> = Vec::with_capacity(norm.len() + 1);
        for c in norm.chars() {
            if c == ' ' && chars.last() == Some(&' ') {
                continue;
            }
            chars.push(c);
        }
        if chars.first() != Some(&' ') {
            chars.insert(0, ' ');
        }
        let s: String = chars
            .iter()
            .map(|&c| if c == ' ' { META } else { c })
            .collect();
        let bounds: Vec<usize> = s
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(s.len()))
            .collect();
        let n = bounds.len() - 1;
        let mut best = vec![f32::NEG_INFINITY; n + 1];
        let mut back: Vec<(usize, Option<u32>)> = vec![(0, None); n + 1];
        best[0] = 0.0;
        for i in 0..n {
            if best[i] == f32::NEG_INFINITY {
                continue;
            }
            for e in i + 1..=n {
                let piece = &s[bounds[i]..bounds[e]];
                if piece.len() > self.max_piece_bytes {
                    break;
                }
                if let Some(&(id, score)) = self.lookup.get(piece)
                    && id != self.unk
                    && best[i] + score > best[e]
                {
                    best[e] = best[i] + score;
                    back[e] = (i, Some(id));
                }
            }
            let u = best[i] + self.unk_score;
            if u > best[i + 1] {
                best[i + 1] = u;
                back[i + 1] = (i, None);
            }
        }
        let mut out = Vec::new();
        let mut i = n;
        while i > 0 {
            let (from, id) = back[i];
            out.push(id.unwrap_or(self.unk));
            i = from;
        }
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_unigram() -> Unigram {
        let pieces = vec![
            ("<s>".into(), 0.0),
            ("<pad>".into(), 0.0),
            ("</s>".into(), 0.0),
            ("<unk>".into(), 0.0),
            ("▁".into(), -2.0),
            ("▁개발".into(), -3.0),
            ("자".into(), -2.5),
            ("▁개".into(), -4.0),
            ("발자".into(), -4.0),
            ("▁rust".into(), -3.0),
        ];
        Unigram::new(UnigramSpec {
            bos: 0,
            eos: 2,
            pad: 1,
            unk: 3,
            pieces,
            normalization: vec![('R' as u32, vec!['r' as u32])],
        })
    }

    #[test]
    fn unigram_picks_the_most_probable_segmentation() {
        let u = tiny_unigram();
        // ▁개발 + 자 (-5.5) beats ▁개 + 발자 (-8); R is normalised to r; `!` is unknown.
        assert_eq!(u.encode("개발자  Rust!", 512), [0, 5, 6, 9, 3, 2]);
        assert_eq!(u.encode("개발자 rust", 3), [0, 5, 2]);
    }

    #[test]
    fn wordpiece_lowercases_strips_accents_and_splits_punctuation() {
        let v = serde_json::json!({
            "normalizer": {"lowercase": true},
            "model": {"vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3,
                "cafe": 4, "run": 5, "##ning": 6, ",": 7, "!": 8}}
        });
        let w = WordPiece::from_tokenizer_json(&v).unwrap();
        let t = Tokenizer::WordPiece(w);
        assert_eq!(t.encode("Café, RUNNING!", 512), [2, 4, 7, 5, 6, 8, 3]);
        assert_eq!(t.encode("xyz running", 512), [2, 1, 5, 6, 3]);
        assert_eq!(t.encode("cafe cafe cafe", 3), [2, 4, 3]);
    }
}
