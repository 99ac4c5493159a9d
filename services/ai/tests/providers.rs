//! The remote embedding providers against local fake servers that speak their real wire
//! formats (OpenAI's `POST /v1/embeddings`, Gemini's `POST /v1beta/models/{model}:embedContent`).
//! Fakes, because neither service can be reached from here; the fakes check what a real server
//! would: path, authentication header, request fields.

use ai::embed::{EmbedError, Embedder, GeminiEmbedder, OpenAiEmbedder, Purpose};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use kernel::Secret;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

type Seen = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A deterministic, unnormalised vector per text (its length and first byte), so the client's
/// normalisation and ordering are visible.
fn vector_for(text: &str, dim: usize) -> Vec<f32> {
    let mut v = vec![0.0; dim];
    v[0] = text.len() as f32;
    v[1] = f32::from(text.as_bytes().first().copied().unwrap_or(0));
    v
}

#[tokio::test]
async fn openai_compatible_embeddings() {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1/embeddings",
            post(|State(seen): State<Seen>, headers: HeaderMap, axum::Json(body): axum::Json<Value>| async move {
                seen.lock().unwrap().push((headers, body.clone()));
                let dim = body["dimensions"].as_u64().unwrap_or(1536) as usize;
                let inputs: Vec<String> = serde_json::from_value(body["input"].clone()).unwrap();
                // Real servers may answer out of order; `index` says which input is which.
                let data: Vec<Value> = inputs
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": vector_for(t, dim)}))
                    .collect();
                axum::Json(json!({"object": "list", "data": data, "model": body["model"],
                    "usage": {"prompt_tokens": 5, "total_tokens": 5}}))
            }),
        )
        .with_state(seen.clone());
    let base = serve(app).await;
    let e = OpenAiEmbedder::new(
        &base,
        "text-embedding-3-small",
        Some(Secret::new("sk-test".into())),
        384,
    );
    let texts = vec!["hello".to_owned(), "경력".to_owned()];
    let got = e.embed(&texts, Purpose::Passage).await.unwrap();
    assert_eq!(got.len(), 2);
    for (v, t) in got.iter().zip(&texts) {
        assert_eq!(v.len(), 384);
        let n: f32 = v.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-5);
        let raw = vector_for(t, 384);
        assert!(
            (v[0] / v[1] - raw[0] / raw[1]).abs() < 1e-5,
            "answers matched to inputs by index"
        );
    }
    let (headers, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(headers["authorization"], "Bearer sk-test");
    assert_eq!(body["model"], "text-embedding-3-small");
    assert_eq!(body["input"], json!(["hello", "경력"]));

    // A server that answers another dimension is refused rather than stored.
    let app = axum::Router::new().route(
        "/v1/embeddings",
        post(|| async { axum::Json(json!({"data": [{"index": 0, "embedding": [0.1, 0.2]}]})) }),
    );
    let short = OpenAiEmbedder::new(&serve(app).await, "m", None, 384);
    assert!(matches!(
        short.embed(&texts[..1], Purpose::Query).await,
        Err(EmbedError::Dimension { got: 2, want: 384 })
    ));
    let app = axum::Router::new().route(
        "/v1/embeddings",
        post(|| async {
            (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"error": {"message": "Rate limit reached"}})),
            )
        }),
    );
    let limited = OpenAiEmbedder::new(&serve(app).await, "m", None, 384);
    match limited.embed(&texts, Purpose::Query).await {
        Err(EmbedError::Provider(m)) => {
            assert!(m.contains("429") && m.contains("Rate limit"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn gemini_embed_content() {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1beta/models/{call}",
            post(
                |State(seen): State<Seen>,
                 Path(call): Path<String>,
                 headers: HeaderMap,
                 axum::Json(body): axum::Json<Value>| async move {
                    assert_eq!(call, "gemini-embedding-001:embedContent");
                    seen.lock().unwrap().push((headers, body.clone()));
                    let dim = body["outputDimensionality"].as_u64().unwrap() as usize;
                    let text = body["content"]["parts"][0]["text"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    axum::Json(json!({"embedding": {"values": vector_for(&text, dim)}}))
                },
            ),
        )
        .with_state(seen.clone());
    let e = GeminiEmbedder::new(
        &serve(app).await,
        "gemini-embedding-001",
        Secret::new("g-key".into()),
        384,
    );
    let q = e
        .embed(&["어떤 자격증?".to_owned()], Purpose::Query)
        .await
        .unwrap();
    let p = e
        .embed(&["a".to_owned(), "bb".to_owned()], Purpose::Passage)
        .await
        .unwrap();
    assert_eq!((q.len(), p.len()), (1, 2));
    assert!(p.iter().chain(&q).all(|v| v.len() == 384));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].0["x-goog-api-key"], "g-key");
    assert_eq!(seen[0].1["taskType"], "RETRIEVAL_QUERY");
    assert_eq!(seen[1].1["taskType"], "RETRIEVAL_DOCUMENT");
    assert_eq!(seen[2].1["content"]["parts"][0]["text"], "bb");
}
