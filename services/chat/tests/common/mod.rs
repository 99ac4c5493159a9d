//! The chat target against the real stack: a fresh database, a bucket of its own on the stack's
//! S3 server, and the in-process bus or a RabbitMQ (a private one when the test breaks it).
//!
//! Tokens are signed here with an Ed25519 key handed to the platform as the in-process auth
//! service would (`Platform::local_keys`): the real verifier checks them, but no auth service
//! is needed to make a protostar.
#![allow(dead_code)]

#[path = "../../src/content/sniff/fixtures.rs"]
pub mod fixtures;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, OctetKeyPairParameters,
    OctetKeyPairType,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kernel::blob::{BlobConfig, BlobKind, SharedBlobStore};
use kernel::config::ConfigSource;
use kernel::service::Platform;
use kernel::testing::{TestDb, stack_env};
use kernel::tokens::{Claims, Role};
use reqwest::multipart::{Form, Part};
use reqwest::{Client, Response};
use serde_json::Value;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct App {
    pub base: String,
    pub client: Client,
    pub platform: Platform,
    /// The chat schema.
    pub pool: sqlx::PgPool,
    pub blobs: SharedBlobStore,
    signing: SigningKey,
    stop: CancellationToken,
    _db: TestDb,
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

const KID: &str = "chat-test-key";

#[derive(Default)]
pub struct Options {
    pub broker_url: Option<String>,
    /// More `PROTOSTAR_*` variables.
    pub extra: Vec<(&'static str, String)>,
}

pub async fn spawn() -> App {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(options: Options) -> App {
    let db = TestDb::new().await;
    let stop = CancellationToken::new();
    let bucket = format!("chat-{}", Uuid::new_v4().simple());
    let data_dir =
        std::env::temp_dir().join(format!("protostar-chat-test-{}", Uuid::new_v4().simple()));
    let mut vars: Vec<(String, String)> = vec![
        ("PROTOSTAR_DATABASE__URL".into(), db.url.clone()),
        ("PROTOSTAR_DATA_DIR".into(), data_dir.display().to_string()),
        ("PROTOSTAR_BLOB__KIND".into(), "s3".into()),
        (
            "PROTOSTAR_BLOB__ENDPOINT".into(),
            stack_env("PROTOSTAR_TEST_S3_ENDPOINT"),
        ),
        ("PROTOSTAR_BLOB__BUCKET".into(), bucket.clone()),
        ("PROTOSTAR_BLOB__ACCESS_KEY_ID".into(), "test-key".into()),
        (
            "PROTOSTAR_BLOB__SECRET_ACCESS_KEY".into(),
            "test-secret".into(),
        ),
        ("PROTOSTAR_BLOB__CREATE_BUCKET".into(), "true".into()),
        // chat alone: it must be told where ai is, though these tests never ask a question
        // (a closed port: an ask would be a 503, see services/protostar/tests/chat.rs).
        (
            "PROTOSTAR_UPSTREAMS__AI__ADMIN".into(),
            "http://127.0.0.1:9".into(),
        ),
    ];
    if let Some(url) = &options.broker_url {
        vars.push(("PROTOSTAR_BROKER__URL".into(), url.clone()));
    }
    vars.extend(
        options
            .extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone())),
    );
    let platform = Platform::from_config(ConfigSource::from_vars(vars).unwrap(), stop.clone())
        .expect("platform");

    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
    let signing = SigningKey::from_bytes(&seed);
    *platform.local_keys.write().await = JwkSet {
        keys: vec![jwk(&signing)],
    };

    let routes = chat::init(&platform).await.expect("chat starts");
    let health =
        kernel::telemetry::health_router(platform.metrics.clone(), platform.readiness.clone());
    let router = kernel::http::standard_layers(
        routes.public.merge(health),
        "public",
        platform.metrics.clone(),
        kernel::http::DEFAULT_BODY_LIMIT,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(kernel::http::serve(listener, router, stop.clone()));

    let blobs = BlobConfig {
        kind: BlobKind::S3,
        endpoint: Some(stack_env("PROTOSTAR_TEST_S3_ENDPOINT")),
        bucket: Some(bucket),
        access_key_id: Some("test-key".into()),
        secret_access_key: Some("test-secret".into()),
        ..Default::default()
    }
    .open(None)
    .await
    .unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .after_connect(|c, _| {
            Box::pin(async move {
                sqlx::raw_sql("SET search_path TO chat, public")
                    .execute(c)
                    .await?;
                Ok(())
            })
        })
        .connect(&db.url)
        .await
        .unwrap();
    let app = App {
        base,
        client: kernel::http::client(Duration::from_secs(60)),
        platform,
        pool,
        blobs,
        signing,
        stop,
        _db: db,
    };
    // Ready means migrated; with a broker configured it also means the broker answers.
    let ready = eventually(Duration::from_secs(60), || async {
        app.client
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(ready, "chat never became ready");
    app
}

fn jwk(key: &SigningKey) -> Jwk {
    Jwk {
        common: CommonParameters {
            key_id: Some(KID.into()),
            ..Default::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: B64.encode(key.verifying_key().as_bytes()),
        }),
    }
}

/// Polls `check` until it holds or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An account as a token sees it.
pub struct Account {
    pub id: Uuid,
    pub token: String,
}

impl App {
    pub fn account(&self, role: Role) -> Account {
        let id = Uuid::now_v7();
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: id.to_string(),
            role,
            iss: "protostar".into(),
            aud: "protostar".into(),
            exp: now + 600,
            iat: now,
            nbf: None,
            jti: Uuid::new_v4().to_string(),
        };
        let der = self.signing.to_pkcs8_der().unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(KID.into());
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(der.as_bytes()))
                .unwrap();
        Account { id, token }
    }

    pub fn protostar(&self) -> Account {
        self.account(Role::Protostar)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Uploads `bytes` as the `file` part named `filename`, declared as `declared_type`.
    pub async fn upload_as(
        &self,
        who: &Account,
        bytes: Vec<u8>,
        filename: &str,
        declared_type: &str,
        title: Option<&str>,
    ) -> Response {
        let part = Part::bytes(bytes)
            .file_name(filename.to_owned())
            .mime_str(declared_type)
            .unwrap();
        let mut form = Form::new().part("file", part);
        if let Some(t) = title {
            form = form.text("title", t.to_owned());
        }
        self.client
            .post(self.url("/api/documents"))
            .bearer_auth(&who.token)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn upload(&self, who: &Account, bytes: Vec<u8>, filename: &str) -> Response {
        self.upload_as(who, bytes, filename, "application/octet-stream", None)
            .await
    }

    pub async fn get(&self, who: &Account, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(&who.token)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, who: &Account, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(&who.token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, who: &Account, path: &str) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&who.token)
            .send()
            .await
            .unwrap()
    }

    pub async fn rows(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM documents")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn outbox(&self, event_type: &str) -> Vec<kernel::events::Event> {
        let rows: Vec<sqlx::types::Json<kernel::events::Event>> = sqlx::query_scalar(
            "SELECT envelope FROM outbox WHERE event_type = $1 ORDER BY created_at, id",
        )
        .bind(event_type)
        .fetch_all(&self.pool)
        .await
        .unwrap();
        rows.into_iter().map(|j| j.0).collect()
    }

    pub async fn blob_keys(&self) -> Vec<String> {
        self.blobs.list("originals/").await.unwrap()
    }
}

/// A problem+json answer: its status and body.
pub async fn problem(res: Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = res.json().await.unwrap();
    assert_eq!(ct, "application/problem+json", "{status} {body}");
    (status, body)
}
