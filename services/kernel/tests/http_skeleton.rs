//! The standard HTTP layers, over a real socket: problems with the request id as `instance`,
//! trace context, health and readiness, metrics, panics and bad JSON.

use axum::Router;
use axum::routing::{get, post};
use kernel::http::{Json, RequestContext, serve, standard_layers};
use kernel::problem::Problem;
use kernel::telemetry::{Metrics, Readiness, health_router};
use kernel::tokens::{AuthConfig, Caller, Role, StaticKeySource, TokenVerifier};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct AppState {
    verifier: Arc<TokenVerifier>,
}

impl axum::extract::FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(s: &AppState) -> Self {
        s.verifier.clone()
    }
}

#[derive(serde::Deserialize, serde::Serialize)]
struct Greeting {
    name: String,
}

async fn boom() -> &'static str {
    panic!("bug")
}

async fn start() -> (String, Readiness, CancellationToken) {
    let metrics = Metrics::new();
    let readiness = Readiness::default();
    readiness.add("always", || async { Ok(()) });
    let keys = Arc::new(tokio::sync::RwLock::new(jsonwebtoken::jwk::JwkSet {
        keys: vec![],
    }));
    let state = AppState {
        verifier: Arc::new(TokenVerifier::new(
            StaticKeySource(keys),
            &AuthConfig::default(),
        )),
    };
    let api =
        Router::new()
            .route(
                "/echo",
                post(|Json(g): Json<Greeting>| async move { Json(g) }),
            )
            .route("/boom", get(boom))
            .route(
                "/conflict",
                get(|| async { Err::<(), _>(Problem::Conflict("Already there.".into())) }),
            )
            .route(
                "/context",
                get(
                    |axum::Extension(c): axum::Extension<RequestContext>| async move {
                        c.trace.to_string()
                    },
                ),
            )
            .route(
                "/private",
                get(|caller: Caller| async move { caller.require(Role::Protostar) }),
            )
            .with_state(state.clone());
    let router = standard_layers(
        api.merge(health_router(metrics.clone(), readiness.clone())),
        "public",
        metrics,
        1024,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, router, stop.clone()));
    (format!("http://{addr}"), readiness, stop)
}

async fn problem(res: reqwest::Response) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    assert_eq!(headers["content-type"], "application/problem+json");
    (status, res.json().await.unwrap(), headers)
}

#[tokio::test]
async fn errors_are_problems_carrying_the_request_id() {
    let (base, _, stop) = start().await;
    let client = kernel::http::client(std::time::Duration::from_secs(10));

    let (status, body, headers) =
        problem(client.get(format!("{base}/nowhere")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert_eq!(body["type"], "https://protostar.dev/problems/not-found");
    assert_eq!(body["instance"], headers["x-request-id"].to_str().unwrap());

    let (status, body, _) = problem(
        client
            .get(format!("{base}/conflict"))
            .header("x-request-id", "req-123")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["instance"].as_str()), (409, Some("req-123")));

    // A hostile request id is replaced, not echoed into logs and headers.
    let res = client
        .get(format!("{base}/conflict"))
        .header("x-request-id", "a b\"<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "a b\"<script>");

    let (status, body, _) = problem(client.get(format!("{base}/boom")).send().await.unwrap()).await;
    assert_eq!(status, 500);
    assert_eq!(body["type"], "https://protostar.dev/problems/internal");
    assert!(!body.to_string().contains("bug"));

    let (status, _, _) = problem(client.delete(format!("{base}/echo")).send().await.unwrap()).await;
    assert_eq!(status, 405);
    stop.cancel();
}

#[tokio::test]
async fn bad_json_is_a_400_problem_and_big_bodies_a_413() {
    let (base, _, stop) = start().await;
    let client = kernel::http::client(std::time::Duration::from_secs(10));
    let ok = client
        .post(format!("{base}/echo"))
        .json(&Greeting {
            name: "민준".into(),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    let (status, body, _) = problem(
        client
            .post(format!("{base}/echo"))
            .header("content-type", "application/json")
            .body("{\"name\": 3}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["type"],
        "https://protostar.dev/problems/invalid-request"
    );

    let (status, _, _) = problem(
        client
            .post(format!("{base}/echo"))
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 415);

    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(4096));
    let (status, body, _) = problem(
        client
            .post(format!("{base}/echo"))
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    stop.cancel();
}

#[tokio::test]
async fn trace_context_continues_the_callers_trace() {
    let (base, _, stop) = start().await;
    let client = kernel::http::client(std::time::Duration::from_secs(10));
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let res = client
        .get(format!("{base}/context"))
        .header("traceparent", incoming)
        .send()
        .await
        .unwrap();
    let ours = res.text().await.unwrap();
    assert!(
        ours.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{ours}"
    );
    assert_ne!(ours, incoming);

    // No (or a broken) traceparent starts a new trace.
    let res = client
        .get(format!("{base}/context"))
        .header("traceparent", "garbage")
        .send()
        .await
        .unwrap();
    let fresh = res.text().await.unwrap();
    assert!(kernel::trace_context::TraceParent::parse(&fresh).is_some());
    assert!(!fresh.contains("4bf92f3577b34da6a3ce929d0e0e4736"));
    stop.cancel();
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let (base, readiness, stop) = start().await;
    let client = kernel::http::client(std::time::Duration::from_secs(10));
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    readiness.add("database", || async {
        Err("connection refused".to_string())
    });
    let res = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["checks"]["database"]["status"], "failing");
    assert_eq!(body["checks"]["database"]["reason"], "connection refused");
    assert_eq!(body["checks"]["always"]["status"], "ok");

    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "protostar_http_requests_total{listener=\"public\",method=\"GET\",status=\"200\"}"
        ),
        "{metrics}"
    );
    stop.cancel();
}

#[tokio::test]
async fn tokens_are_checked_by_the_service_itself() {
    let (base, _, stop) = start().await;
    let client = kernel::http::client(std::time::Duration::from_secs(10));
    let (status, body, _) =
        problem(client.get(format!("{base}/private")).send().await.unwrap()).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (401, Some("https://protostar.dev/problems/unauthenticated"))
    );
    let (status, _, _) = problem(
        client
            .get(format!("{base}/private"))
            .header("authorization", "Bearer not-a-token")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    // A forwarded identity header means nothing.
    let (status, _, _) = problem(
        client
            .get(format!("{base}/private"))
            .header("x-user-id", "admin")
            .header("x-role", "admin")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    stop.cancel();
}

#[tokio::test]
async fn the_access_line_carries_the_requests_ids() {
    // The JSON format of `telemetry::init_logging`, written into a buffer for this thread (the
    // test's runtime has one thread, so the server's tasks log here too).
    let captured = kernel::testing::CapturedLines::default();
    let subscriber = kernel::telemetry::json_subscriber(
        tracing_subscriber::EnvFilter::new("trace"),
        captured.clone(),
    );
    let _guard = tracing::subscriber::set_default(subscriber);

    let (base, _, stop) = start().await;
    let client = kernel::http::client(std::time::Duration::from_secs(10));
    let res = client
        .get(format!("{base}/conflict"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let ours = res.headers()["traceparent"].to_str().unwrap().to_owned();
    assert_eq!(res.status(), 409);
    stop.cancel();

    let text = captured.text();
    let access: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "access")
        .collect();
    assert_eq!(access.len(), 1, "{text}");
    let line = &access[0];
    assert_eq!(line["request_id"], request_id.as_str());
    assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    // Our hop's span id is the one we answered with, not the caller's.
    assert_eq!(line["span_id"], ours.split('-').nth(2).unwrap());
    assert_eq!(line["listener"], "public");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/conflict");
    assert_eq!(line["status"], 409);
    assert_eq!(line["client"], "127.0.0.1");
}
