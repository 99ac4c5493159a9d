//! Questions asked at the same time are embedded together in one batch (see
//! `ai::embed::queries`); each must get exactly the vector it gets alone, whatever it is batched
//! with, and a question asked again gets the same vector from the cache.

mod common;

use ai::embed::Purpose;
use common::e5;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_questions_get_the_vectors_they_get_alone() {
    let embedder = e5();
    let questions: Vec<String> = [
        "Which database did she migrate the warehouse to?",
        "How many engineers did she manage?",
        "어떤 데이터베이스로 웨어하우스를 이전했나요?",
        "Why?",
        "결제 승인 API 응답 시간을 얼마나 줄였나요? 그리고 어떤 방법으로 줄였는지 자세히 설명해 주세요.",
        "What languages does she speak, and how well does she speak each of them at work?",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Alone, one after another, as passages are never batched with questions.
    let mut alone = Vec::new();
    for q in &questions {
        let v = embedder
            .embed(std::slice::from_ref(q), Purpose::Query)
            .await
            .unwrap();
        alone.push(v[0].clone());
    }
    // The same texts all at once through another embedder (its cache is empty): the batcher
    // groups them.
    let fresh = e5();
    let tasks: Vec<_> = questions
        .iter()
        .map(|q| {
            let e = fresh.clone();
            let q = q.clone();
            tokio::spawn(async move { e.embed(&[q], Purpose::Query).await.unwrap().remove(0) })
        })
        .collect();
    let mut together = Vec::new();
    for t in tasks {
        together.push(t.await.unwrap());
    }
    for (i, (a, b)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(a.len(), 384);
        // Padding beside longer questions must not matter.
        let c = cosine(a, b);
        assert!(
            c > 0.9999,
            "question {i}: cosine {c} between alone and batched"
        );
    }
    // Asked again: the cached vector, identical.
    let again = embedder
        .embed(std::slice::from_ref(&questions[0]), Purpose::Query)
        .await
        .unwrap();
    assert_eq!(again[0], alone[0]);
}
