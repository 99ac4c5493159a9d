//! A running auth service over a fresh database of the test stack, served on loopback ports
//! through the same HTTP layers as the binary.
#![allow(dead_code)]

use axum::Router;
use base64::Engine;
use kernel::config::ConfigSource;
use kernel::service::Platform;
use kernel::testing::TestDb;
use reqwest::{Client, Response};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub struct App {
    pub public: String,
    pub admin: String,
    pub client: Client,
    pub platform: Platform,
    pub pool: sqlx::PgPool,
    pub stop: CancellationToken,
    _db: TestDb,
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub fn kek() -> String {
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}

pub async fn spawn() -> App {
    spawn_with(&[]).await
}

/// Starts auth with cheap password hashing (the policy, not the cost, is under test) and any
/// extra `PROTOSTAR_*` variables.
pub async fn spawn_with(extra: &[(&str, String)]) -> App {
    let db = TestDb::new().await;
    let data_dir = std::env::temp_dir().join(format!(
        "protostar-auth-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let mut vars = vec![
        ("PROTOSTAR_DATABASE__URL".to_owned(), db.url.clone()),
        (
            "PROTOSTAR_DATA_DIR".to_owned(),
            data_dir.display().to_string(),
        ),
        (
            "PROTOSTAR_AUTH__ARGON2_MEMORY_KIB".to_owned(),
            "1024".to_owned(),
        ),
        (
            "PROTOSTAR_AUTH__ARGON2_ITERATIONS".to_owned(),
            "1".to_owned(),
        ),
        (
            "PROTOSTAR_AUTH__KEY_PUBLISH_AHEAD_SECS".to_owned(),
            "0".to_owned(),
        ),
    ];
    if !extra
        .iter()
        .any(|(k, _)| *k == "PROTOSTAR_AUTH__SIGNING_KEYS")
    {
        vars.push(("PROTOSTAR_AUTH__KEY_ENCRYPTION_KEY".to_owned(), kek()));
    }
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        vars.push(((*k).to_owned(), v.clone()));
    }
    let stop = CancellationToken::new();
    let platform =
        Platform::from_config(ConfigSource::from_vars(vars).unwrap(), stop.clone()).unwrap();
    let routes = auth::init(&platform).await.unwrap();
    let health =
        kernel::telemetry::health_router(platform.metrics.clone(), platform.readiness.clone());
    let public = serve(
        routes.public.merge(health.clone()),
        &platform,
        "public",
        &stop,
    )
    .await;
    let admin = serve(routes.admin.merge(health), &platform, "admin", &stop).await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let app = App {
        public,
        admin,
        client: kernel::http::client(Duration::from_secs(20)),
        platform,
        pool,
        stop,
        _db: db,
    };
    app.wait_ready().await;
    app
}

async fn serve(router: Router, p: &Platform, name: &str, stop: &CancellationToken) -> String {
    let router = kernel::http::standard_layers(
        router,
        name,
        p.metrics.clone(),
        kernel::http::DEFAULT_BODY_LIMIT,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(kernel::http::serve(listener, router, stop.clone()));
    format!("http://{addr}")
}

impl App {
    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self
                .client
                .get(format!("{}/readyz", self.public))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "auth never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.client
            .post(format!("{}{path}", self.public))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn signup(&self, email: &str, password: &str) -> Value {
        let res = self
            .post(
                "/api/auth/signup",
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(res.status(), 201, "signup of {email}");
        res.json().await.unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Makes an admin through the bootstrap command's code path and logs in.
    pub async fn admin_token(&self) -> String {
        let email = format!("admin-{}@example.org", uuid::Uuid::new_v4().simple());
        auth::bootstrap::create_admin(&self.platform, &email, "root of all trust")
            .await
            .unwrap();
        let res = self.login(&email, "root of all trust").await;
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["accessToken"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn outbox(&self, event_type: &str) -> Vec<Value> {
        sqlx::query_scalar("SELECT envelope FROM auth.outbox WHERE event_type = $1 ORDER BY id")
            .bind(event_type)
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }
}

/// The status and problem body of a response that must be a problem.
pub async fn problem(res: Response) -> (u16, Value) {
    let status = res.status().as_u16();
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "status {status} is not a problem"
    );
    (status, res.json().await.unwrap())
}
