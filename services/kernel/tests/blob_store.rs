//! The blob store against the real S3 server of the test stack and a local folder: one
//! behaviour for both.

use bytes::Bytes;
use kernel::blob::{BlobConfig, BlobError, BlobKind, SharedBlobStore};
use kernel::testing::stack_env;

async fn s3_store() -> SharedBlobStore {
    let config = BlobConfig {
        kind: BlobKind::S3,
        endpoint: Some(stack_env("PROTOSTAR_TEST_S3_ENDPOINT")),
        bucket: Some(format!("test-{}", uuid::Uuid::new_v4().simple())),
        access_key_id: Some("test-key".into()),
        secret_access_key: Some("test-secret".into()),
        create_bucket: true,
        ..Default::default()
    };
    config.open(None).await.expect("open the S3 store")
}

fn local_store() -> (SharedBlobStore, std::path::PathBuf) {
    let dir =
        std::env::temp_dir().join(format!("protostar-blob-{}", uuid::Uuid::new_v4().simple()));
    let config = BlobConfig {
        kind: BlobKind::Local,
        path: Some(dir.clone()),
        ..Default::default()
    };
    let store = futures::executor::block_on(config.open(None)).unwrap();
    (store, dir)
}

async fn behaves_like_a_blob_store(store: SharedBlobStore) {
    store.check().await.unwrap();
    let original = "이력서: 김민준 — Rust backend engineer\n".repeat(1000);
    store
        .put(
            "owner-1/doc-1/original",
            Bytes::from(original.clone()),
            "text/markdown",
        )
        .await
        .unwrap();
    store
        .put(
            "owner-1/doc-2/original",
            Bytes::from_static(b"%PDF-1.7"),
            "application/pdf",
        )
        .await
        .unwrap();
    store
        .put(
            "owner-2/doc-3/original",
            Bytes::from_static(b"x"),
            "text/plain",
        )
        .await
        .unwrap();

    let blob = store.get("owner-1/doc-1/original").await.unwrap();
    assert_eq!(blob.bytes, Bytes::from(original));
    assert_eq!(blob.content_type, "text/markdown");

    // Replacing keeps one object.
    store
        .put(
            "owner-1/doc-2/original",
            Bytes::from_static(b"%PDF-2.0"),
            "application/pdf",
        )
        .await
        .unwrap();
    assert_eq!(
        &store.get("owner-1/doc-2/original").await.unwrap().bytes[..],
        b"%PDF-2.0"
    );

    let mut keys = store.list("owner-1/").await.unwrap();
    keys.sort();
    assert_eq!(
        keys,
        vec!["owner-1/doc-1/original", "owner-1/doc-2/original"]
    );

    store.delete("owner-1/doc-1/original").await.unwrap();
    // Deleting twice is fine: deletions are retried.
    store.delete("owner-1/doc-1/original").await.unwrap();
    assert!(matches!(
        store.get("owner-1/doc-1/original").await,
        Err(BlobError::NotFound(_))
    ));
    assert_eq!(
        store.list("owner-1/").await.unwrap(),
        vec!["owner-1/doc-2/original"]
    );

    for bad in ["../etc/passwd", "/abs", "a//b", ""] {
        assert!(
            matches!(store.get(bad).await, Err(BlobError::InvalidKey(_))),
            "{bad}"
        );
        assert!(matches!(
            store.put(bad, Bytes::new(), "text/plain").await,
            Err(BlobError::InvalidKey(_))
        ));
    }
}

#[tokio::test]
async fn s3_store_behaves() {
    behaves_like_a_blob_store(s3_store().await).await;
}

#[tokio::test]
async fn local_store_behaves() {
    let (store, dir) = local_store();
    behaves_like_a_blob_store(store).await;
    // Nothing was written outside the folder, and no temporary file is left behind.
    let leftovers: Vec<_> = walk(&dir)
        .into_iter()
        .filter(|p| p.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn missing_settings_name_their_keys() {
    let err = BlobConfig {
        kind: BlobKind::S3,
        ..Default::default()
    }
    .open(None)
    .await
    .err()
    .unwrap()
    .to_string();
    for key in [
        "blob.bucket",
        "blob.access_key_id",
        "blob.secret_access_key",
    ] {
        assert!(err.contains(key), "{err}");
    }
    let err = BlobConfig::default()
        .open(None)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("blob.path"), "{err}");
}

#[tokio::test]
async fn an_unreachable_s3_is_reported_by_the_check() {
    let store = BlobConfig {
        kind: BlobKind::S3,
        endpoint: Some("http://127.0.0.1:1".into()),
        bucket: Some("b".into()),
        access_key_id: Some("k".into()),
        secret_access_key: Some("s".into()),
        ..Default::default()
    }
    .open(None)
    .await
    .unwrap();
    let err = store.check().await.unwrap_err();
    assert!(err.contains("bucket b"), "{err}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    out
}
