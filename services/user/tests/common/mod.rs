//! auth and user running against a fresh database of the test stack, behind the gateway, in
//! either deployment shape:
//! - `Mode::All`: one platform, the gateway in front of the services' in-process routers as
//!   `serve --target all` has it, keys handed over in memory;
//! - `Mode::Split`: a platform per service, each on its own ports, user and the gateway
//!   verifying tokens against auth's JWKS over HTTP, the gateway forwarding over HTTP, the
//!   services sharing the in-process event bus;
//! - `Mode::SplitRabbit`: the same with RabbitMQ between them, a private broker per test.
//!
//! Every request of a test goes through the gateway's two listeners.
#![allow(dead_code)]

use axum::Router;
use axum::response::IntoResponse;
use base64::Engine;
use kernel::config::ConfigSource;
use kernel::service::Platform;
use kernel::testing::TestDb;
use reqwest::{Client, Method, Response};
use serde_json::{Value, json};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    All,
    Split,
    /// Separate processes with a RabbitMQ of this test's own between them (a shared broker
    /// would let other tests' consumers of the same queues take our events).
    SplitRabbit,
}

pub const PASSWORD: &str = "a long enough passphrase";

pub struct App {
    pub mode: Mode,
    /// The gateway's listeners.
    public: String,
    admin: String,
    pub client: Client,
    pub auth_platform: Platform,
    pub pool: sqlx::PgPool,
    stop: CancellationToken,
    _db: TestDb,
    _broker: Option<kernel::testing::PrivateBroker>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn vars(db: &TestDb, extra: &[(&str, String)]) -> ConfigSource {
    let data_dir = std::env::temp_dir().join(format!(
        "protostar-user-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let kek = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let mut v: Vec<(String, String)> = vec![
        ("PROTOSTAR_DATABASE__URL".into(), db.url.clone()),
        ("PROTOSTAR_DATA_DIR".into(), data_dir.display().to_string()),
        ("PROTOSTAR_AUTH__ARGON2_MEMORY_KIB".into(), "1024".into()),
        ("PROTOSTAR_AUTH__ARGON2_ITERATIONS".into(), "1".into()),
        ("PROTOSTAR_AUTH__KEY_PUBLISH_AHEAD_SECS".into(), "0".into()),
        ("PROTOSTAR_AUTH__KEY_ENCRYPTION_KEY".into(), kek),
        // Tests fire requests faster than any person; the limits have their own tests.
        (
            "PROTOSTAR_GATEWAY__RATE_LIMIT__IP__PER_MINUTE".into(),
            "1000000".into(),
        ),
        (
            "PROTOSTAR_GATEWAY__RATE_LIMIT__IP__BURST".into(),
            "100000".into(),
        ),
    ];
    v.extend(extra.iter().map(|(k, val)| ((*k).to_owned(), val.clone())));
    ConfigSource::from_vars(v).unwrap()
}

async fn serve(router: Router, p: &Platform, name: &str, stop: &CancellationToken) -> String {
    let health = kernel::telemetry::health_router(p.metrics.clone(), p.readiness.clone());
    let router = kernel::http::standard_layers(
        router.merge(health),
        name,
        p.metrics.clone(),
        kernel::http::DEFAULT_BODY_LIMIT,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(kernel::http::serve(listener, router, stop.clone()));
    format!("http://{addr}")
}

/// chat's `GET /internal/chat/export`, as far as user needs it: it answers for a bearer token
/// and says it got one (chat's own answer is tested through the binary, services/protostar).
fn chat_stand_in() -> Router {
    Router::new().route(
        "/internal/chat/export",
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            let bearer = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("Bearer "));
            if bearer {
                axum::Json(serde_json::json!({"standIn": true})).into_response()
            } else {
                axum::http::StatusCode::UNAUTHORIZED.into_response()
            }
        }),
    )
}

pub async fn spawn(mode: Mode) -> App {
    let db = TestDb::new().await;
    let stop = CancellationToken::new();
    let broker = (mode == Mode::SplitRabbit).then(kernel::testing::PrivateBroker::start);
    let broker_vars: Vec<(&str, String)> = broker
        .iter()
        .map(|b| ("PROTOSTAR_BROKER__URL", b.url.clone()))
        .collect();
    let auth_platform = Platform::from_config(vars(&db, &broker_vars), stop.clone()).unwrap();
    let auth_routes = auth::init(&auth_platform).await.unwrap();
    let chat = serve(chat_stand_in(), &auth_platform, "chat-admin", &stop).await;
    let (public, admin, services) = match mode {
        Mode::All => {
            // user asks chat for the export; a stand-in answers here (the gateway of this
            // process is not told of it, so it polls no widget origins).
            let mut user_platform = auth_platform.clone();
            user_platform.config = vars(&db, &[("PROTOSTAR_UPSTREAMS__CHAT__ADMIN", chat.clone())]);
            let user_routes = user::init(&user_platform).await.unwrap();
            let front = gateway::front(
                &auth_platform,
                gateway::LocalTargets {
                    names: vec!["auth", "user"],
                    public: auth_routes.public.merge(user_routes.public),
                    admin: auth_routes.admin.merge(user_routes.admin),
                },
            )
            .await
            .unwrap();
            let public = serve(front.public, &auth_platform, "public", &stop).await;
            let admin = serve(front.admin, &auth_platform, "admin", &stop).await;
            (public.clone(), admin, vec![public])
        }
        Mode::Split | Mode::SplitRabbit => {
            let auth_public = serve(auth_routes.public, &auth_platform, "public", &stop).await;
            let auth_admin = serve(auth_routes.admin, &auth_platform, "admin", &stop).await;
            let jwks = format!("{auth_public}/.well-known/jwks.json");
            let mut user_vars = broker_vars.clone();
            user_vars.push(("PROTOSTAR_AUTH__JWKS_URL", jwks.clone()));
            user_vars.push(("PROTOSTAR_UPSTREAMS__CHAT__ADMIN", chat.clone()));
            let mut user_platform =
                Platform::from_config(vars(&db, &user_vars), stop.clone()).unwrap();
            if mode == Mode::Split {
                user_platform.bus = auth_platform.bus.clone();
            }
            let user_routes = user::init(&user_platform).await.unwrap();
            let user_public = serve(user_routes.public, &user_platform, "public", &stop).await;
            let user_admin = serve(user_routes.admin, &user_platform, "admin", &stop).await;

            let gateway_platform = Platform::from_config(
                vars(
                    &db,
                    &[
                        ("PROTOSTAR_AUTH__JWKS_URL", jwks),
                        ("PROTOSTAR_UPSTREAMS__AUTH__PUBLIC", auth_public.clone()),
                        ("PROTOSTAR_UPSTREAMS__AUTH__ADMIN", auth_admin),
                        ("PROTOSTAR_UPSTREAMS__USER__PUBLIC", user_public.clone()),
                        ("PROTOSTAR_UPSTREAMS__USER__ADMIN", user_admin),
                    ],
                ),
                stop.clone(),
            )
            .unwrap();
            let front = gateway::front(
                &gateway_platform,
                gateway::LocalTargets {
                    names: vec![],
                    public: Router::new(),
                    admin: Router::new(),
                },
            )
            .await
            .unwrap();
            let public = serve(front.public, &gateway_platform, "public", &stop).await;
            let admin = serve(front.admin, &gateway_platform, "admin", &stop).await;
            (public, admin, vec![auth_public, user_public])
        }
    };
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let app = App {
        mode,
        public,
        admin,
        client: kernel::http::client(Duration::from_secs(20)),
        auth_platform,
        pool,
        stop,
        _db: db,
        _broker: broker,
    };
    for base in &services {
        let client = app.client.clone();
        let url = format!("{base}/readyz");
        assert!(
            eventually(Duration::from_secs(30), || {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    client
                        .get(url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200)
                }
            })
            .await,
            "{base} never became ready"
        );
    }
    app
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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub struct Session {
    pub id: String,
    pub access: String,
    pub refresh: String,
}

impl App {
    /// The gateway's admin listener serves `/admin`, its public one everything else.
    fn url(&self, path: &str) -> String {
        let base = if path.starts_with("/admin/") {
            &self.admin
        } else {
            &self.public
        };
        format!("{base}{path}")
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    pub async fn session_from(&self, res: Response) -> Session {
        assert!(res.status().is_success(), "status {}", res.status());
        let v: Value = res.json().await.unwrap();
        Session {
            id: v["subject"].as_str().unwrap().to_owned(),
            access: v["accessToken"].as_str().unwrap().to_owned(),
            refresh: v["refreshToken"].as_str().unwrap_or_default().to_owned(),
        }
    }

    pub async fn signup(&self, email: &str) -> Session {
        let res = self
            .call(
                Method::POST,
                "/api/auth/signup",
                None,
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await;
        self.session_from(res).await
    }

    pub async fn login(&self, email: &str) -> Response {
        self.call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": email, "password": PASSWORD})),
        )
        .await
    }

    pub async fn refresh(&self, session: &Session) -> Response {
        self.call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({"refreshToken": session.refresh})),
        )
        .await
    }

    pub async fn guest(&self) -> String {
        let res = self.call(Method::POST, "/api/auth/guest", None, None).await;
        self.session_from(res).await.access
    }

    pub async fn admin(&self) -> Session {
        let email = format!("admin-{}@example.org", uuid::Uuid::new_v4().simple());
        auth::bootstrap::create_admin(&self.auth_platform, &email, PASSWORD)
            .await
            .unwrap();
        let res = self.login(&email).await;
        self.session_from(res).await
    }

    /// A protostar made by an admin's role change, logged in afresh.
    pub async fn protostar(&self, admin: &Session, email: &str) -> Session {
        let s = self.signup(email).await;
        let res = self
            .call(
                Method::PATCH,
                &format!("/admin/api/users/{}", s.id),
                Some(&admin.access),
                Some(json!({"role": "protostar"})),
            )
            .await;
        assert_eq!(
            res.status(),
            200,
            "{}",
            res.text().await.unwrap_or_default()
        );
        let res = self.login(email).await;
        self.session_from(res).await
    }

    /// Invite codes made by `admin`.
    pub async fn invites(&self, admin: &Session, count: u32, uses: u32) -> Vec<String> {
        let res = self
            .call(
                Method::POST,
                "/admin/api/invites",
                Some(&admin.access),
                Some(json!({"count": count, "uses": uses, "expiresInDays": 7})),
            )
            .await;
        assert_eq!(res.status(), 201);
        let v: Value = res.json().await.unwrap();
        v["invites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn outbox(&self, schema: &str, event_type: &str) -> Vec<Value> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT envelope FROM {schema}.outbox WHERE event_type = $1 ORDER BY id"
        )))
        .bind(event_type)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }
}
