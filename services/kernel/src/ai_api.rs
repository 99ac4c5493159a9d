//! The ai service's internal API, as both sides speak it: chat asks, ai answers. One definition,
//! like the `content.*` event data, so the two cannot drift apart. JSON camelCase; the routes
//! are on ai's admin listener, which the gateway never exposes (see `crate::internal`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST`: a streamed answer (Server-Sent Events `token`, `citation`, `done`, `error`).
pub const ANSWER_PATH: &str = "/internal/ai/answer";
/// `POST`: hybrid retrieval over some owners' documents.
pub const RETRIEVE_PATH: &str = "/internal/ai/retrieve";

/// How the chatbot speaks about its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Voice {
    /// "I led the migration…"
    FirstPerson,
    /// "Jane led the migration…"
    #[default]
    ThirdPerson,
}

/// The body of [`ANSWER_PATH`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AskBody {
    pub question: String,
    /// The chatbot's owner: only their documents and corrections are searched.
    pub owner_id: Uuid,
    /// How the chatbot names its owner.
    pub candidate: String,
    #[serde(default)]
    pub persona: Option<String>,
    #[serde(default)]
    pub voice: Voice,
}

/// A passage an answer cites as `[n]` (the `citation` event).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Citation {
    pub n: usize,
    pub document_id: Uuid,
    pub document_title: String,
    pub location: String,
    pub quote: String,
    /// An owner's correction rather than a document.
    #[serde(default)]
    pub pinned: bool,
}

/// The `done` event: nothing follows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Done {
    pub supported: bool,
    /// The model that answered (`extractive`, `openai:gpt-oss-120b`, `none` with no support).
    pub model: String,
    /// The best passage's similarity to the question (0 when nothing was found).
    pub support: f64,
    #[serde(default)]
    pub question_embedding: QuestionEmbedding,
}

/// The request header by which chat asks ai for the question's embedding as base64
/// ([`QuestionEmbedding::base64`]); an ai that predates it sends numbers, which chat reads too,
/// and an ai that knows it sends numbers to a chat that does not ask. Either service may so be
/// upgraded first.
pub const EMBEDDING_HEADER: &str = "protostar-embedding";
/// The value of [`EMBEDDING_HEADER`].
pub const EMBEDDING_BASE64: &str = "base64";

/// The question's embedding in the `done` event: a JSON list of numbers, or base64 of the
/// components as little-endian `f32` when chat asked for it. 384 decimal numbers cost a float
/// formatting each in ai and a float parse each in chat on every question.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuestionEmbedding {
    pub values: Vec<f32>,
    /// Written as base64; set when read from base64.
    pub base64: bool,
}

impl Serialize for QuestionEmbedding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.base64 {
            embedding_wire::serialize(&self.values, s)
        } else {
            self.values.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for QuestionEmbedding {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (values, base64) = embedding_wire::deserialize(d)?;
        Ok(Self { values, base64 })
    }
}

mod embedding_wire {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(4 * v.len());
        for x in v {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        s.serialize_str(&STANDARD.encode(bytes))
    }

    /// The values, and whether they came as base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(Vec<f32>, bool), D::Error> {
        d.deserialize_any(Wire)
    }

    struct Wire;

    impl<'de> Visitor<'de> for Wire {
        type Value = (Vec<f32>, bool);

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("base64 of little-endian f32s, or a list of numbers")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            let bytes = STANDARD
                .decode(text)
                .map_err(|e| E::custom(format!("the embedding is not base64: {e}")))?;
            if bytes.len() % 4 != 0 {
                return Err(E::custom(format!(
                    "the embedding has {} bytes, not a whole number of f32s",
                    bytes.len()
                )));
            }
            let values = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            Ok((values, true))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16_000));
            while let Some(x) = seq.next_element::<f32>()? {
                v.push(x);
            }
            Ok((v, false))
        }
    }
}

/// The body of [`RETRIEVE_PATH`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrieveRequest {
    pub query: String,
    pub owner_ids: Vec<Uuid>,
    pub k: usize,
    /// Chunks of the first owner (the chatbot's own) before any other owner's.
    #[serde(default)]
    pub pinned_first: bool,
}

/// One chunk found by [`RETRIEVE_PATH`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetrievedChunk {
    pub chunk_id: Uuid,
    pub document_id: Uuid,
    pub owner_id: Uuid,
    pub document_title: String,
    pub location: String,
    pub text: String,
    /// Reciprocal rank fusion score: higher is better; only the order means anything.
    pub score: f64,
    /// Cosine similarity of the chunk to the question, when the vector leg found it: the
    /// evidence that a passage supports an answer at all.
    #[serde(default)]
    pub similarity: Option<f64>,
    /// A correction the owner wrote.
    #[serde(default)]
    pub pinned: bool,
}

/// The answer of [`RETRIEVE_PATH`].
#[derive(Debug, Serialize, Deserialize)]
pub struct RetrieveResponse {
    pub chunks: Vec<RetrievedChunk>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(values: Vec<f32>, base64: bool) -> Done {
        Done {
            supported: true,
            model: "extractive".into(),
            support: 0.5,
            question_embedding: QuestionEmbedding { values, base64 },
        }
    }

    #[test]
    fn an_embedding_asked_for_in_base64_goes_so_and_comes_back_bit_for_bit() {
        let v = vec![0.1, -0.25, 1e-40, f32::MAX, -0.0, 0.333_333_34];
        let json = serde_json::to_value(done(v.clone(), true)).unwrap();
        let text = json["questionEmbedding"].as_str().expect("a base64 string");
        assert_eq!(text.len(), (4 * v.len()).div_ceil(3) * 4);
        let back: Done = serde_json::from_value(json).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.question_embedding.values), bits(&v));
        assert!(back.question_embedding.base64);
    }

    #[test]
    fn numbers_go_to_a_chat_that_did_not_ask_and_are_read_from_an_older_ai() {
        let json = serde_json::to_value(done(vec![0.5, -1.0], false)).unwrap();
        assert_eq!(json["questionEmbedding"], serde_json::json!([0.5, -1.0]));
        let back: Done = serde_json::from_str(
            r#"{"supported":false,"model":"none","support":0,"questionEmbedding":[0.5,-1,2e-3]}"#,
        )
        .unwrap();
        assert_eq!(back.question_embedding.values, vec![0.5, -1.0, 0.002]);
        assert!(!back.question_embedding.base64);
        let none: Done =
            serde_json::from_str(r#"{"supported":false,"model":"none","support":0}"#).unwrap();
        assert!(none.question_embedding.values.is_empty());
    }

    #[test]
    fn a_broken_embedding_is_an_error_not_a_panic() {
        for (bad, says) in [
            (r#""not base64!""#, "not base64"),
            (r#""AAAAAAA=""#, "5 bytes"),
            (r#"{"a":1}"#, "expected base64"),
            (r#"["x"]"#, "expected f32"),
        ] {
            let json = format!(
                r#"{{"supported":true,"model":"m","support":1,"questionEmbedding":{bad}}}"#
            );
            let err = serde_json::from_str::<Done>(&json).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
