//! Life after upload: status from the ai service's events, delete, re-index, and owners only.

mod common;

use common::fixtures;
use common::*;
use kernel::events::Event;
use kernel::events::content::{self as wire, Deleted, IndexStatus, StatusChanged, Uploaded};
use kernel::tokens::Role;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

async fn upload_one(app: &App, who: &Account) -> Value {
    let res = app
        .upload(who, fixtures::MARKDOWN_KO.as_bytes().to_vec(), "이력서.md")
        .await;
    assert_eq!(res.status(), 202);
    res.json().await.unwrap()
}

fn id_of(doc: &Value) -> Uuid {
    doc["id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn another_account_can_neither_see_nor_touch_a_document() {
    let app = spawn().await;
    let owner = app.protostar();
    let doc = upload_one(&app, &owner).await;
    let path = format!("/api/documents/{}", id_of(&doc));

    for other in [
        app.protostar(),
        app.account(Role::Stargazer),
        // Admins read their own documents only; moderation is not on this API.
        app.account(Role::Admin),
    ] {
        let (status, body) = problem(app.get(&other, &path).await).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(problem(app.delete(&other, &path).await).await.0, 404);
        assert_eq!(
            problem(app.post(&other, &format!("{path}/reindex")).await)
                .await
                .0,
            404
        );
        let list: Value = app
            .get(&other, "/api/documents")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list["documents"], serde_json::json!([]));
    }
    // A document that does not exist looks the same.
    let (status, body) = problem(
        app.get(&owner, &format!("/api/documents/{}", Uuid::now_v7()))
            .await,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["detail"], "You have no document with this id.");
    // A guest has no documents at all.
    assert_eq!(
        problem(app.get(&app.account(Role::Guest), &path).await)
            .await
            .0,
        403
    );
    // Nothing changed for the owner.
    let shown: Value = app.get(&owner, &path).await.json().await.unwrap();
    assert_eq!(shown["version"], 1);
    assert_eq!(app.rows().await, 1);
    assert_eq!(app.blob_keys().await.len(), 1);
}

#[tokio::test]
async fn delete_removes_the_row_and_the_original_and_tells_ai() {
    let app = spawn().await;
    let me = app.protostar();
    let keep = upload_one(&app, &me).await;
    let doc = upload_one(&app, &me).await;
    let id = id_of(&doc);
    let path = format!("/api/documents/{id}");
    let res = app.delete(&me, &path).await;
    assert_eq!(res.status(), 202);
    assert_eq!(problem(app.get(&me, &path).await).await.0, 404);
    assert_eq!(problem(app.delete(&me, &path).await).await.0, 404);
    assert_eq!(app.rows().await, 1);
    let keys = app.blob_keys().await;
    assert_eq!(keys, vec![wire::original_key(me.id, id_of(&keep))]);

    let deleted = app.outbox(wire::DELETED).await;
    assert_eq!(deleted.len(), 1);
    let d: Deleted = deleted[0].data_as().unwrap();
    assert_eq!((d.document_id, d.owner_id), (id, me.id));
}

#[tokio::test]
async fn reindex_makes_a_new_version_from_the_stored_original() {
    let app = spawn().await;
    let me = app.protostar();
    let doc = upload_one(&app, &me).await;
    let id = id_of(&doc);
    let res = app.post(&me, &format!("/api/documents/{id}/reindex")).await;
    assert_eq!(res.status(), 202);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        format!("/api/documents/{id}")
    );
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["version"], 2);
    assert_eq!(again["status"], "queued");

    let events = app.outbox(wire::UPLOADED).await;
    let versions: Vec<i64> = events
        .iter()
        .map(|e| e.data_as::<Uploaded>().unwrap().version)
        .collect();
    assert_eq!(versions, [1, 2]);
    let second: Uploaded = events[1].data_as().unwrap();
    assert_eq!(second.blob_key, wire::original_key(me.id, id));
    assert!(app.blobs.get(&second.blob_key).await.is_ok());
}

fn status_event(doc: Uuid, owner: Uuid, version: i64, status: IndexStatus) -> Event {
    let data = StatusChanged {
        document_id: doc,
        owner_id: owner,
        version,
        status,
        reason: (status == IndexStatus::Failed).then(|| "no text could be extracted".into()),
        chunk_count: (status == IndexStatus::Ready).then_some(7),
    };
    Event::new(wire::STATUS_CHANGED, "ai", &data)
        .unwrap()
        .with_subject(doc.to_string())
}

/// Waits until the chat consumer has applied `n` events.
async fn processed(app: &App, n: i64) {
    assert!(
        eventually(Duration::from_secs(10), || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM processed_events")
                .fetch_one(&app.pool)
                .await
                .unwrap()
                >= n
        })
        .await,
        "the consumer never processed {n} events"
    );
}

async fn status_of(app: &App, who: &Account, id: Uuid) -> Value {
    app.get(who, &format!("/api/documents/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

/// The in-process bus delivers to the chat consumer exactly as RabbitMQ would.
#[tokio::test]
async fn status_follows_ingestion_and_ignores_stale_reports() {
    let app = spawn().await;
    let me = app.protostar();
    let id = id_of(&upload_one(&app, &me).await);
    let publish = |e: Event| {
        let bus = app.platform.bus.clone();
        async move { bus.publish(&[e]).await.unwrap() }
    };
    let wait_for = |expected: &'static str| {
        let (app, me) = (&app, &me);
        async move {
            assert!(
                eventually(Duration::from_secs(10), || async {
                    status_of(app, me, id).await["status"] == expected
                })
                .await,
                "never became {expected}"
            );
        }
    };

    publish(status_event(id, me.id, 1, IndexStatus::Extracting)).await;
    wait_for("extracting").await;
    publish(status_event(id, me.id, 1, IndexStatus::Ready)).await;
    wait_for("ready").await;
    assert_eq!(status_of(&app, &me, id).await["chunkCount"], 7);

    // A late `extracting` of the same version does not undo `ready`.
    publish(status_event(id, me.id, 1, IndexStatus::Extracting)).await;
    processed(&app, 3).await;
    assert_eq!(status_of(&app, &me, id).await["status"], "ready");

    // Re-index: version 2 is queued; version 1's reports are stale from now on.
    let res = app.post(&me, &format!("/api/documents/{id}/reindex")).await;
    assert_eq!(res.status(), 202);
    publish(status_event(id, me.id, 1, IndexStatus::Failed)).await;
    processed(&app, 4).await;
    assert_eq!(status_of(&app, &me, id).await["status"], "queued");
    publish(status_event(id, me.id, 2, IndexStatus::Failed)).await;
    wait_for("failed").await;
    let shown = status_of(&app, &me, id).await;
    assert_eq!(shown["version"], 2);
    assert_eq!(shown["reason"], "no text could be extracted");

    // The stale events were consumed, not parked.
    processed(&app, 5).await;
    let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(parked, 0);
    assert_eq!(status_of(&app, &me, id).await["status"], "failed");
}

/// `user.deleted` takes every document of the account with it, originals included.
#[tokio::test]
async fn a_deleted_account_loses_its_documents() {
    let app = spawn().await;
    let me = app.protostar();
    let other = app.protostar();
    upload_one(&app, &me).await;
    upload_one(&app, &me).await;
    upload_one(&app, &other).await;
    let e = Event::new(
        "user.deleted",
        "user",
        serde_json::json!({ "userId": me.id }),
    )
    .unwrap();
    app.platform.bus.publish(&[e]).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            app.blob_keys().await.len() == 1
        })
        .await,
        "originals of the deleted account stayed"
    );
    assert_eq!(app.rows().await, 1);
    assert_eq!(app.outbox(wire::DELETED).await.len(), 2);
    let list: Value = app
        .get(&other, "/api/documents")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["documents"].as_array().unwrap().len(), 1);
}
