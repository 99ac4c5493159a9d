//! What goes wrong, on the real stack (PostgreSQL, S3; the in-process bus): an original that
//! is gone, a file that cannot be read, an embedding provider that is down — each ends `failed`
//! with a reason chat can show. And the internal retrieval route: token, validation, answer.

mod common;

use ai::embed::{Embedder, OpenAiEmbedder};
use ai::ingest::IngestRetry;
use ai::retrieval::{RetrieveResponse, Retriever, RouteState, router};
use bytes::Bytes;
use common::{Harness, e5};
use kernel::events::Bus;
use kernel::events::content::{IndexStatus, media_type};
use kernel::testing::{TestKey, claims};
use kernel::tokens::{AuthConfig, Role, StaticKeySource, TokenVerifier};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

fn quick_retry(attempts: u32) -> IngestRetry {
    IngestRetry {
        attempts,
        first_delay: Duration::from_millis(20),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_or_missing_originals_fail_with_a_reason() {
    let h = Harness::start(Bus::local(), e5(), quick_retry(3)).await;
    let me = Uuid::now_v7();
    // A PDF that is not one (chat sniffed the magic bytes; the rest is garbage).
    let mut broken = h
        .upload(me, "cv", "ko_resume.md", media_type::MARKDOWN)
        .await;
    h.settled(broken.document_id, 1).await;
    broken.version = 2;
    broken.media_type = media_type::PDF.into();
    h.blob
        .put(
            &broken.blob_key,
            Bytes::from_static(b"%PDF-1.7\n garbage"),
            "application/pdf",
        )
        .await
        .unwrap();
    h.publish(&broken).await;
    let (status, reason) = h.settled(broken.document_id, 2).await;
    assert_eq!(status, "failed");
    assert!(reason.unwrap().contains("PDF cannot be read"));
    // The failed version leaves no chunks of the older one behind.
    assert_eq!(h.chunk_count(broken.document_id).await, 0);

    let mut missing = broken.clone();
    missing.document_id = Uuid::now_v7();
    missing.version = 1;
    missing.blob_key = format!("originals/{me}/{}", missing.document_id);
    h.publish(&missing).await;
    let (status, reason) = h.settled(missing.document_id, 1).await;
    assert_eq!(status, "failed");
    assert_eq!(
        reason.as_deref(),
        Some("the original is no longer in storage")
    );
    let events = h.status_events(missing.document_id).await;
    assert_eq!(
        events.iter().map(|e| e.status).collect::<Vec<_>>(),
        [IndexStatus::Extracting, IndexStatus::Failed]
    );
    assert_eq!(
        events[1].reason.as_deref(),
        Some("the original is no longer in storage")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_stays_down_is_retried_then_failed() {
    // A real connection refused: nothing listens on the port of a listener we closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let down: Arc<dyn Embedder> = Arc::new(OpenAiEmbedder::new(
        &format!("http://127.0.0.1:{port}"),
        "text-embedding-3-small",
        None,
        384,
    ));
    let h = Harness::start(Bus::local(), down, quick_retry(3)).await;
    let d = h
        .upload(
            Uuid::now_v7(),
            "Résumé",
            "en_resume.md",
            media_type::MARKDOWN,
        )
        .await;
    let (status, reason) = h.settled(d.document_id, 1).await;
    assert_eq!(status, "failed");
    let reason = reason.unwrap();
    assert!(reason.starts_with("gave up after 3 attempts"), "{reason}");
    let steps: Vec<IndexStatus> = h
        .status_events(d.document_id)
        .await
        .iter()
        .map(|e| e.status)
        .collect();
    // One `indexing`, however many attempts.
    assert_eq!(
        steps,
        [
            IndexStatus::Extracting,
            IndexStatus::Indexing,
            IndexStatus::Failed
        ]
    );
}

/// What the route tests share: one owner's résumé indexed, and a verifier that knows the key
/// their tokens are signed with.
struct Indexed {
    h: Harness,
    embedder: Arc<dyn Embedder>,
    me: Uuid,
    document_id: Uuid,
    key: TestKey,
    verifier: Arc<TokenVerifier>,
}

async fn indexed_resume() -> Indexed {
    let embedder = e5();
    let h = Harness::start(Bus::local(), embedder.clone(), quick_retry(1)).await;
    let me = Uuid::now_v7();
    let d = h
        .upload(
            me,
            "Résumé — Emily Carter",
            "en_resume.md",
            media_type::MARKDOWN,
        )
        .await;
    assert_eq!(h.settled(d.document_id, 1).await.0, "ready");
    let key = TestKey::new("k1");
    let keys = Arc::new(tokio::sync::RwLock::new(jsonwebtoken::jwk::JwkSet {
        keys: vec![key.jwk()],
    }));
    let verifier = Arc::new(TokenVerifier::new(
        StaticKeySource(keys),
        &AuthConfig::default(),
    ));
    Indexed {
        h,
        embedder,
        me,
        document_id: d.document_id,
        key,
        verifier,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_route_needs_a_token_and_valid_input() {
    let Indexed {
        h,
        embedder,
        me,
        document_id,
        key,
        verifier,
    } = indexed_resume().await;
    let app = router(RouteState {
        retriever: Retriever::new(h.ai.clone(), embedder),
        verifier,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url = format!("http://{addr}/internal/ai/retrieve");
    // The kernel's client: it installs the TLS crypto provider reqwest needs here.
    let http = kernel::http::client(std::time::Duration::from_secs(20));
    let body = serde_json::json!({"query": "Which database did she migrate to?", "ownerIds": [me], "k": 3});

    let r = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    let token = key.sign(&claims("chat-user", Role::Guest, 300));
    for bad in [
        serde_json::json!({"query": "x", "ownerIds": [me], "k": 0}),
        serde_json::json!({"query": "x", "ownerIds": [me], "k": 51}),
        serde_json::json!({"query": "  ", "ownerIds": [me], "k": 3}),
        serde_json::json!({"query": "x", "ownerIds": ["not-a-uuid"], "k": 3}),
        serde_json::json!({"query": "x", "ownerIds": [me], "k": 3, "extra": 1}),
    ] {
        let r = http
            .post(&url)
            .bearer_auth(&token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{bad}: {}", r.status());
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }

    let r = http
        .post(&url)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got: RetrieveResponse = r.json().await.unwrap();
    assert!(!got.chunks.is_empty() && got.chunks.len() <= 3);
    assert!(
        got.chunks
            .iter()
            .any(|c| c.text.contains("Oracle to PostgreSQL"))
    );
    let c = &got.chunks[0];
    assert_eq!(c.document_id, document_id);
    assert_eq!(c.owner_id, me);
    assert_eq!(c.document_title, "Résumé — Emily Carter");
}

/// The `done` event of an answer streamed over HTTP, as JSON.
fn done_event(sse: &str) -> serde_json::Value {
    let data = sse
        .split("\n\n")
        .find_map(|event| {
            let mut lines = event.lines();
            (lines.next() == Some("event: done"))
                .then(|| lines.find_map(|l| l.strip_prefix("data: ")))
                .flatten()
        })
        .unwrap_or_else(|| panic!("no done event in {sse}"));
    serde_json::from_str(data).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_route_sends_the_embedding_in_the_form_the_caller_asks_for() {
    use ai::answer::{AnswerConfig, AnswerState, Answerer};
    use ai::generate::extractive::Extractive;
    use kernel::ai_api::{EMBEDDING_BASE64, EMBEDDING_HEADER, QuestionEmbedding};

    let Indexed {
        h,
        embedder,
        me,
        key,
        verifier,
        ..
    } = indexed_resume().await;
    let app = ai::answer::router(AnswerState {
        answerer: Answerer {
            retriever: Retriever::new(h.ai.clone(), embedder.clone()),
            embedder: embedder.clone(),
            model: Arc::new(Extractive::with_embedder(embedder.clone())),
            config: AnswerConfig::default(),
            metrics: Default::default(),
        },
        verifier,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url = format!("http://{addr}{}", kernel::ai_api::ANSWER_PATH);
    let http = kernel::http::client(Duration::from_secs(20));
    let token = key.sign(&claims("chat-user", Role::Guest, 300));
    let body = serde_json::json!({
        "question": "Which database did she migrate the warehouse to?",
        "ownerId": me,
        "candidate": "Emily Carter",
    });

    let ask = |base64: bool| {
        let mut req = http.post(&url).bearer_auth(&token).json(&body);
        if base64 {
            req = req.header(EMBEDDING_HEADER, EMBEDDING_BASE64);
        }
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 200);
            done_event(&res.text().await.unwrap())
        }
    };
    // A chat that asks gets base64; one that predates the header gets the list of numbers.
    let asked = ask(true).await;
    let plain = ask(false).await;
    assert!(asked["supported"].as_bool().unwrap(), "{asked}");
    assert!(asked["questionEmbedding"].is_string(), "{asked}");
    assert!(plain["questionEmbedding"].is_array(), "{plain}");
    let asked: QuestionEmbedding =
        serde_json::from_value(asked["questionEmbedding"].clone()).unwrap();
    let plain: QuestionEmbedding =
        serde_json::from_value(plain["questionEmbedding"].clone()).unwrap();
    assert_eq!(asked.values.len(), 384);
    // The same question embeds the same; base64 carries the f32s exactly (the numbers are
    // written so that they read back to the same f32s too).
    assert_eq!(asked.values, plain.values);
}
