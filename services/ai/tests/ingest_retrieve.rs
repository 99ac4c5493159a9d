//! Korean and English career documents through the whole path on the real stack: originals in
//! S3, `content.uploaded` through a producer's outbox and RabbitMQ, ingestion with the local
//! multilingual-e5-small model, chunks and vectors in PostgreSQL+pgvector, hybrid retrieval.

mod common;

use ai::retrieval::{RetrieveRequest, Retriever};
use common::{Harness, e5};
use kernel::events::content::{self, Deleted, IndexStatus, media_type};
use kernel::events::{Bus, Event};
use kernel::testing::PrivateBroker;
use std::time::Duration;
use uuid::Uuid;

async fn top3(r: &Retriever, owners: &[Uuid], q: &str) -> Vec<ai::retrieval::RetrievedChunk> {
    r.retrieve(&RetrieveRequest {
        query: q.into(),
        owner_ids: owners.to_vec(),
        k: 3,
        pinned_first: false,
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_in_korean_and_english_find_their_passage_and_only_the_owners() {
    let broker = PrivateBroker::start();
    let embedder = e5();
    let h = Harness::start(
        Bus::rabbit(&broker.url),
        embedder.clone(),
        Default::default(),
    )
    .await;
    let me = Uuid::now_v7();
    let other = Uuid::now_v7();
    let docs = [
        h.upload(me, "이력서 — 한지우", "ko_resume.md", media_type::MARKDOWN)
            .await,
        h.upload(
            me,
            "자기소개서 — 한지우",
            "ko_cover_letter.txt",
            media_type::TEXT,
        )
        .await,
        h.upload(
            me,
            "경력기술서 — 한지우",
            "ko_career.html",
            media_type::HTML,
        )
        .await,
        h.upload(
            me,
            "Résumé — Emily Carter",
            "en_resume.md",
            media_type::MARKDOWN,
        )
        .await,
        h.upload(
            me,
            "Cover letter — Emily Carter",
            "en_cover_letter.txt",
            media_type::TEXT,
        )
        .await,
        h.upload(
            me,
            "Career description — Emily Carter",
            "en_career.html",
            media_type::HTML,
        )
        .await,
    ];
    let theirs = h
        .upload(
            other,
            "Résumé — Daniel Park",
            "other_owner_resume.md",
            media_type::MARKDOWN,
        )
        .await;
    for d in docs.iter().chain([&theirs]) {
        let (status, reason) = h.settled(d.document_id, 1).await;
        assert_eq!(status, "ready", "{}: {reason:?}", d.filename);
        assert!(h.chunk_count(d.document_id).await > 0);
    }
    // chat hears extracting → indexing → ready, with the chunk count.
    let events = h.status_events(docs[0].document_id).await;
    let steps: Vec<IndexStatus> = events.iter().map(|e| e.status).collect();
    assert_eq!(
        steps,
        [
            IndexStatus::Extracting,
            IndexStatus::Indexing,
            IndexStatus::Ready
        ]
    );
    assert_eq!(
        events[2].chunk_count,
        Some(h.chunk_count(docs[0].document_id).await)
    );

    let r = Retriever::new(h.ai.clone(), embedder);
    let cases = [
        (
            "결제 승인 API 응답 시간을 얼마나 줄였나요?",
            "320ms에서 90ms",
        ),
        ("어떤 자격증을 가지고 있나요?", "정보처리기사"),
        ("왜 우리 회사에 지원했나요?", "소상공인을 위한 간편 결제"),
        ("대학교에서 무엇을 전공했나요?", "컴퓨터공학과"),
        ("정산 지연 사고는 얼마나 줄었나요?", "14건에서 0건"),
        (
            "Which database did she migrate the warehouse to?",
            "Oracle to PostgreSQL",
        ),
        (
            "How many engineers did she manage?",
            "team of six engineers",
        ),
        ("What languages does she speak?", "French (fluent)"),
        (
            "Why is she applying for the role?",
            "climate data open to every city",
        ),
        ("How did on-call pages change?", "twenty-five to six"),
        // Across languages: an English question about the Korean résumé.
        (
            "How much faster did the payment approval API get?",
            "320ms에서 90ms",
        ),
    ];
    let mut misses = Vec::new();
    for (q, want) in cases {
        let got = top3(&r, &[me], q).await;
        assert!(
            got.iter().all(|c| c.owner_id == me),
            "{q}: another owner's chunk"
        );
        if !got.iter().any(|c| c.text.contains(want)) {
            misses.push(format!(
                "{q} → wanted {want:?}, got {:#?}",
                got.iter()
                    .map(|c| format!("{} | {} | {}", c.document_title, c.location, c.text))
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        misses.is_empty(),
        "not in the top 3:\n{}",
        misses.join("\n")
    );
    // The one-owner plan (made once per connection, `hybrid_retrieve`) and the several-owner
    // one (planned per call) both rank as the exact reference does, order included.
    let mut exact = r.clone();
    exact.exact = true;
    let ids = |v: Vec<ai::retrieval::RetrievedChunk>| {
        v.into_iter().map(|c| c.chunk_id).collect::<Vec<_>>()
    };
    for (q, _) in cases {
        for owners in [vec![me], vec![me, other]] {
            let req = RetrieveRequest {
                query: q.into(),
                owner_ids: owners.clone(),
                k: 8,
                pinned_first: false,
            };
            let got = ids(r.retrieve(&req).await.unwrap());
            assert_eq!(got.len(), 8, "{q}");
            assert_eq!(
                got,
                ids(exact.retrieve(&req).await.unwrap()),
                "{q} over {} owners",
                owners.len()
            );
        }
    }
    // What the function leaves set: plan_cache_mode is the caller's again once it returns (the
    // function has a SET clause for it), its scan settings last until the caller's transaction
    // ends, as the SET LOCAL it replaced did.
    let mut tx = h.ai.begin().await.unwrap();
    for owners in [vec![me], vec![me, other]] {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM hybrid_retrieve($1, $2, NULL, 10, 5, 123, false)",
        )
        .bind(kernel::db::Vector(&[0.05; 384]))
        .bind(&owners)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(n, 5);
        let (mode, ef): (String, String) = sqlx::query_as(
            "SELECT current_setting('plan_cache_mode'), current_setting('hnsw.ef_search')",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!((mode.as_str(), ef.as_str()), ("auto", "123"));
    }
    tx.rollback().await.unwrap();
    // Citations carry the title and the heading path.
    let got = top3(&r, &[me], "정산 지연 사고는 얼마나 줄었나요?").await;
    let hit = got
        .iter()
        .find(|c| c.text.contains("14건에서 0건"))
        .unwrap();
    assert_eq!(hit.document_title, "경력기술서 — 한지우");
    assert_eq!(hit.location, "프로젝트: 정산 시스템 스트리밍 전환");

    // Another owner's documents never come back, even for a question only they answer...
    let q = "Who reduced payment approval latency with a rewrite in Kotlin at Orbit Payments?";
    assert!(top3(&r, &[me], q).await.iter().all(|c| c.owner_id == me));
    // ...and they do for their owner, who sees nothing of mine.
    let theirs_hits = top3(&r, &[other], q).await;
    assert!(theirs_hits.iter().any(|c| c.text.contains("Kotlin")));
    assert!(theirs_hits.iter().all(|c| c.owner_id == other));
    assert!(top3(&r, &[], q).await.is_empty());
    // Talent search over both, the chatbot's owner pinned first.
    let both = r
        .retrieve(&RetrieveRequest {
            query: q.into(),
            owner_ids: vec![me, other],
            k: 5,
            pinned_first: true,
        })
        .await
        .unwrap();
    let first_other = both.iter().position(|c| c.owner_id == other).unwrap();
    assert!(both[..first_other].iter().all(|c| c.owner_id == me));
    assert!(both[first_other..].iter().all(|c| c.owner_id == other));

    // Idempotent: the same event again (a redelivery) and the same version under a new event
    // id change nothing; a new version replaces the chunks, counted once.
    let d = &docs[3];
    let n = h.chunk_count(d.document_id).await;
    let again = Event::new(content::UPLOADED, "chat", d).unwrap();
    h.send(&again).await;
    let same = h.publish(d).await;
    wait_processed(&h, same.id).await;
    wait_processed(&h, again.id).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.chunk_count(d.document_id).await, n);
    let mut v2 = d.clone();
    v2.version = 2;
    h.publish(&v2).await;
    assert_eq!(h.settled(d.document_id, 2).await.0, "ready");
    assert_eq!(h.chunk_count(d.document_id).await, n);
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT DISTINCT version FROM chunks WHERE document_id = $1")
            .bind(d.document_id)
            .fetch_all(h.ai.pool())
            .await
            .unwrap();
    assert_eq!(versions, [2]);
    // A stale version arriving late is ignored.
    let stale = h.publish(d).await;
    wait_processed(&h, stale.id).await;
    assert_eq!(h.status(d.document_id).await.unwrap().1, 2);
    assert_eq!(h.chunk_count(d.document_id).await, n);

    // Deleted: chunks and vectors go, retrieval stops finding it.
    let gone = &docs[4];
    let del = Event::new(
        content::DELETED,
        "chat",
        Deleted {
            document_id: gone.document_id,
            owner_id: me,
        },
    )
    .unwrap();
    h.send(&del).await;
    wait_processed(&h, del.id).await;
    assert_eq!(h.chunk_count(gone.document_id).await, 0);
    let got = top3(&r, &[me], "Why is she applying for the role?").await;
    assert!(got.iter().all(|c| c.document_id != gone.document_id));
    // The upload event redelivered after the deletion does not bring it back.
    let late = h.publish(gone).await;
    wait_processed(&h, late.id).await;
    assert_eq!(h.chunk_count(gone.document_id).await, 0);
    drop(h);
    broker.stop();
}

async fn wait_processed(h: &Harness, id: Uuid) {
    for _ in 0..600 {
        let done: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM processed_events WHERE event_id = $1)",
        )
        .bind(id)
        .fetch_one(h.ai.pool())
        .await
        .unwrap();
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("event {id} was never processed");
}
