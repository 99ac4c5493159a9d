//! The gateway in front of small upstreams of our own: in-process routers, and real HTTP
//! servers on loopback ports that the tests stop and start again. Rate limits are shared
//! through the test stack's real Redis. Tokens are signed with a test key the gateway's
//! verifier knows, the way the auth service hands its keys over in one process.

use axum::Router;
use axum::extract::Request;
use axum::routing::{any, get};
use kernel::config::ConfigSource;
use kernel::service::Platform;
use kernel::testing::TestKey;
use kernel::tokens::Role;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

struct Gateway {
    public: String,
    admin: String,
    platform: Platform,
    _stop: DropCancel,
}

struct DropCancel(CancellationToken);

impl Drop for DropCancel {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

async fn serve(router: Router, platform: &Platform, name: &str) -> String {
    let health =
        kernel::telemetry::health_router(platform.metrics.clone(), platform.readiness.clone());
    let app = kernel::http::standard_layers(
        router.merge(health),
        name,
        platform.metrics.clone(),
        kernel::http::DEFAULT_BODY_LIMIT,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(kernel::http::serve(listener, app, platform.stop.clone()));
    format!("http://{addr}")
}

async fn gateway(vars: &[(&str, String)], local: gateway::LocalTargets, key: &TestKey) -> Gateway {
    let stop = CancellationToken::new();
    let config = ConfigSource::from_vars(
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let platform = Platform::from_config(config, stop.clone()).unwrap();
    platform.local_keys.write().await.keys.push(key.jwk());
    let routes = gateway::front(&platform, local).await.unwrap();
    Gateway {
        public: serve(routes.public, &platform, "public").await,
        admin: serve(routes.admin, &platform, "admin").await,
        platform,
        _stop: DropCancel(stop),
    }
}

fn no_local() -> gateway::LocalTargets {
    gateway::LocalTargets {
        names: vec![],
        public: Router::new(),
        admin: Router::new(),
    }
}

/// An upstream that answers with what it was sent, and counts the requests that reached it.
fn echo(hits: Arc<AtomicUsize>) -> Router {
    Router::new().route(
        "/{*path}",
        any(move |req: Request| {
            let hits = hits.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await;
                let header = |n: &str| {
                    parts
                        .headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                axum::Json(json!({
                    "path": parts.uri.path(),
                    "forwardedFor": header("x-forwarded-for"),
                    "forwardedHost": header("x-forwarded-host"),
                    "requestId": header("x-request-id"),
                    "traceparent": header("traceparent"),
                    "bodyBytes": body.map(|b| b.len()).ok(),
                }))
            }
        }),
    )
}

/// A real HTTP server on `addr` (a fresh port when `None`); cancelling `stop` takes it down.
async fn http_upstream(
    router: Router,
    addr: Option<SocketAddr>,
    stop: CancellationToken,
) -> SocketAddr {
    let listener =
        tokio::net::TcpListener::bind(addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(kernel::http::serve(listener, router, stop));
    addr
}

fn client() -> reqwest::Client {
    kernel::http::client(Duration::from_secs(10))
}

#[tokio::test]
async fn forged_tokens_are_refused_before_any_upstream_sees_them() {
    let key = TestKey::new("k1");
    let hits = Arc::new(AtomicUsize::new(0));
    let gw = gateway(
        &[],
        gateway::LocalTargets {
            names: vec!["user"],
            public: echo(hits.clone()),
            admin: Router::new(),
        },
        &key,
    )
    .await;
    let url = format!("{}/api/users/me", gw.public);
    let c = client();

    let genuine = key.sign(&kernel::testing::claims("u1", Role::Stargazer, 600));
    let res = c.get(&url).bearer_auth(&genuine).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    let stranger = TestKey::new("k-unknown");
    let impostor = TestKey::new("k1");
    let mut wrong_aud = kernel::testing::claims("u1", Role::Admin, 600);
    wrong_aud.aud = "another-app".into();
    let mut early = kernel::testing::claims("u1", Role::Admin, 600);
    early.nbf = Some(chrono::Utc::now().timestamp() + 600);
    let parts: Vec<&str> = genuine.split('.').collect();
    let none = format!(
        "{}.{}.",
        base64_url(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
        parts[1]
    );
    let tampered = {
        let mut payload: Value = serde_json::from_slice(&base64_url_decode(parts[1])).unwrap();
        payload["role"] = "admin".into();
        format!(
            "{}.{}.{}",
            parts[0],
            base64_url(payload.to_string().as_bytes()),
            parts[2]
        )
    };
    let hs256 = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(
            &header,
            &kernel::testing::claims("u1", Role::Admin, 600),
            &jsonwebtoken::EncodingKey::from_secret(key.signing.verifying_key().as_bytes()),
        )
        .unwrap()
    };
    let forged = [
        ("alg none", none),
        ("HS256 with the public key", hs256),
        (
            "expired",
            key.sign(&kernel::testing::claims("u1", Role::Admin, -600)),
        ),
        ("not yet valid", key.sign(&early)),
        ("wrong audience", key.sign(&wrong_aud)),
        (
            "unknown kid",
            stranger.sign(&kernel::testing::claims("u1", Role::Admin, 600)),
        ),
        (
            "known kid, other key",
            impostor.sign(&kernel::testing::claims("u1", Role::Admin, 600)),
        ),
        ("tampered payload", tampered),
        ("garbage", "not.a.token".into()),
    ];
    for (what, token) in forged {
        let res = c.get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 401, "{what}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["type"], "https://protostar.dev/problems/unauthenticated",
            "{what}"
        );
    }
    let res = c
        .get(&url)
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "a forged token reached the upstream"
    );
}

/// A POST whose body comes in `chunks` chunks of `size` bytes, with no declared length (reqwest
/// cannot send one without its streaming feature); returns the raw answer.
async fn chunked_post(base: &str, path: &str, chunks: usize, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..chunks {
        req.extend(format!("{size:x}\r\n").as_bytes());
        req.extend(std::iter::repeat_n(b'y', size));
        req.extend(b"\r\n");
    }
    req.extend(b"0\r\n\r\n");
    s.write_all(&req).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

#[tokio::test]
async fn routes_limits_and_forwarded_headers() {
    let key = TestKey::new("k1");
    let hits = Arc::new(AtomicUsize::new(0));
    let gw = gateway(
        &[("PROTOSTAR_GATEWAY__MAX_BODY_BYTES", "1000".into())],
        gateway::LocalTargets {
            names: vec!["user", "chat"],
            public: echo(hits.clone()),
            // Its own counter: the gateway asks chat's admin side for widget origins.
            admin: echo(Arc::new(AtomicUsize::new(0))),
        },
        &key,
    )
    .await;
    let c = client();

    // What the upstream learns: the peer as the client (a client's own claim is dropped), the
    // original host, the request id the caller chose, and a trace continued.
    let res = c
        .get(format!("{}/api/users/me?x=1", gw.public))
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen: Value = res.json().await.unwrap();
    assert_eq!(seen["path"], "/api/users/me");
    assert_eq!(seen["forwardedFor"], "127.0.0.1");
    assert_eq!(seen["requestId"], "req-42");
    assert!(
        seen["forwardedHost"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(seen["traceparent"].as_str().unwrap().starts_with("00-"));

    // Paths nobody routes, and routes on the other listener.
    for (base, path) in [
        (&gw.public, "/nothing/here"),
        (&gw.public, "/internal/ai/retrieve"),
        (&gw.public, "/admin/api/users"),
        (&gw.admin, "/api/users/me"),
        (&gw.public, "/api/usersX"),
    ] {
        let res = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Body limits: ordinary routes take 1000 bytes here, uploads their own larger limit.
    let res = c
        .post(format!("{}/api/users/me", gw.public))
        .body(vec![b'x'; 2000])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let res = c
        .post(format!("{}/api/documents", gw.public))
        .body(vec![b'x'; 2000])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["bodyBytes"], 2000);
    // Without a declared length the body is cut off as it streams: the upstream's read fails.
    let answer = chunked_post(&gw.public, "/api/users/me", 20, 100).await;
    assert!(answer.contains("\"bodyBytes\":null"), "{answer}");
    let answer = chunked_post(&gw.public, "/api/users/me", 5, 100).await;
    assert!(answer.contains("\"bodyBytes\":500"), "{answer}");

    // A routed target that neither runs here nor has an upstream configured.
    let res = c
        .get(format!("{}/api/notifications/settings", gw.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["type"],
        "https://protostar.dev/problems/upstream-unavailable"
    );
    assert!(body["detail"].as_str().unwrap().contains("upstreams.noti"));
}

#[tokio::test]
async fn a_dead_upstream_opens_the_breaker_and_its_return_closes_it() {
    let key = TestKey::new("k1");
    let hits = Arc::new(AtomicUsize::new(0));
    let up_stop = CancellationToken::new();
    let addr = http_upstream(echo(hits.clone()), None, up_stop.clone()).await;
    let gw = gateway(
        &[
            ("PROTOSTAR_UPSTREAMS__USER", format!("http://{addr}")),
            ("PROTOSTAR_GATEWAY__BREAKER__MIN_REQUESTS", "4".into()),
            ("PROTOSTAR_GATEWAY__BREAKER__OPEN_SECS", "1".into()),
            ("PROTOSTAR_GATEWAY__RETRIES", "0".into()),
        ],
        no_local(),
        &key,
    )
    .await;
    let c = client();
    let url = format!("{}/api/users/me", gw.public);
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);

    up_stop.cancel();
    // Until the breaker opens, each request finds the port closed.
    let mut open_after = None;
    for i in 0..20 {
        let res = c.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 503);
        if res.headers().contains_key("retry-after") {
            open_after = Some(i);
            break;
        }
    }
    let open_after = open_after.expect("the breaker never opened");
    assert!(open_after <= 4, "opened only after {open_after} failures");
    // Open: answered at once, without trying the upstream.
    let started = Instant::now();
    for _ in 0..50 {
        let res = c.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 503);
        let body: Value = res.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("stopped sending"));
    }
    let per_request = started.elapsed() / 50;
    let metrics = gw.platform.metrics.encode();
    assert!(
        metrics.contains(
            r#"protostar_gateway_upstream_requests_total{target="user",outcome="circuit-open"} 5"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"protostar_gateway_breaker_state{target="user"} 1"#));

    // The upstream comes back on the same port; after the pause one probe closes the breaker.
    let back = CancellationToken::new();
    http_upstream(echo(hits.clone()), Some(addr), back.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = c.get(&url).send().await.unwrap().status();
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..10 {
        assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    }
    assert!(
        gw.platform
            .metrics
            .encode()
            .contains(r#"protostar_gateway_breaker_state{target="user"} 0"#)
    );
    eprintln!("open-circuit answer: {per_request:?} per request");
    back.cancel();
}

#[tokio::test]
async fn idempotent_requests_are_retried_only_when_nothing_was_sent() {
    let key = TestKey::new("k1");
    // A port with nobody listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gw = gateway(
        &[
            ("PROTOSTAR_UPSTREAMS__USER", format!("http://{closed}")),
            ("PROTOSTAR_GATEWAY__RETRIES", "2".into()),
            ("PROTOSTAR_GATEWAY__BREAKER__MIN_REQUESTS", "100".into()),
        ],
        no_local(),
        &key,
    )
    .await;
    let c = client();
    let res = c
        .get(format!("{}/api/users/me", gw.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let res = c
        .post(format!("{}/api/users/me", gw.public))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let metrics = gw.platform.metrics.encode();
    // Two retries for the GET, none for the POST.
    assert!(
        metrics.contains(r#"protostar_gateway_upstream_retries_total{target="user"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains(
        r#"protostar_gateway_upstream_requests_total{target="user",outcome="connect-failed"} 2"#
    ));
}

/// Fires `n` requests at the gateways in turn; returns how many were let through, checking
/// that every refusal is a proper `429 rate-limited`.
async fn admitted(gateways: &[&Gateway], n: usize) -> usize {
    let c = client();
    let mut ok = 0;
    for i in 0..n {
        let gw = gateways[i % gateways.len()];
        let res = c
            .get(format!("{}/api/users/me", gw.public))
            .send()
            .await
            .unwrap();
        match res.status().as_u16() {
            200 => ok += 1,
            429 => {
                assert!(res.headers().contains_key("retry-after"));
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["type"], "https://protostar.dev/problems/rate-limited");
            }
            s => panic!("unexpected status {s}"),
        }
    }
    ok
}

#[tokio::test]
async fn two_gateways_sharing_redis_allow_the_rate_once_not_twice() {
    let key = TestKey::new("k1");
    let redis = kernel::testing::stack_env("PROTOSTAR_TEST_REDIS_URL");
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    // Ten at once, then one every ten seconds: the test ends long before the next one.
    let limits = |with_redis: bool| {
        let mut v = vec![
            (
                "PROTOSTAR_GATEWAY__RATE_LIMIT__IP__PER_MINUTE",
                "6".to_string(),
            ),
            ("PROTOSTAR_GATEWAY__RATE_LIMIT__IP__BURST", "10".to_string()),
            ("PROTOSTAR_GATEWAY__RATE_LIMIT__KEY_PREFIX", prefix.clone()),
        ];
        if with_redis {
            v.push(("PROTOSTAR_REDIS__URL", redis.clone()));
        }
        v
    };
    let local = || gateway::LocalTargets {
        names: vec!["user"],
        public: echo(Arc::new(AtomicUsize::new(0))),
        admin: Router::new(),
    };
    let a = gateway(&limits(true), local(), &key).await;
    let b = gateway(&limits(true), local(), &key).await;
    // The Redis connection is made in the background; wait until both use it.
    let admin_token = key.sign(&kernel::testing::claims("root", Role::Admin, 600));
    for g in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let health: Value = client()
                .get(format!("{}/admin/api/health", g.admin))
                .bearer_auth(&admin_token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if health["rate_limits"] == "redis" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "never connected to Redis: {health}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(admitted(&[&a, &b], 30).await, 10);
    for g in [&a, &b] {
        assert!(
            g.platform
                .metrics
                .encode()
                .contains("protostar_gateway_rate_limit_fallbacks_total 0"),
            "a gateway fell back to its own limiter"
        );
    }

    // The same two gateways without Redis each keep their own count: twice the rate. (This is
    // what the shared limit above prevents.)
    let c = gateway(&limits(false), local(), &key).await;
    let d = gateway(&limits(false), local(), &key).await;
    assert_eq!(admitted(&[&c, &d], 30).await, 20);
}

#[tokio::test]
async fn cors_follows_each_chatbots_widget_origins() {
    let key = TestKey::new("k1");
    let hits = Arc::new(AtomicUsize::new(0));
    let chat_admin = Router::new().route(
        gateway::cors::ORIGINS_PATH,
        get(|| async {
            axum::Json(json!({"chatbots": [
                {"slug": "ada", "origins": ["https://ada.dev"]},
                {"slug": "bob", "origins": ["https://bob.blog"]},
            ]}))
        }),
    );
    let gw = gateway(
        &[],
        gateway::LocalTargets {
            names: vec!["chat", "auth", "user"],
            public: echo(hits.clone()),
            admin: chat_admin,
        },
        &key,
    )
    .await;
    let c = client();
    let preflight = |path: &str, origin: &str| {
        c.request(reqwest::Method::OPTIONS, format!("{}{path}", gw.public))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    // The origins arrive from the chat service shortly after start.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = preflight("/api/chatbots/ada/ask", "https://ada.dev")
            .await
            .unwrap();
        if res.status() == 204 {
            assert_eq!(
                res.headers()["access-control-allow-origin"],
                "https://ada.dev"
            );
            assert!(
                res.headers()["access-control-allow-headers"]
                    .to_str()
                    .unwrap()
                    .contains("authorization")
            );
            break;
        }
        assert!(Instant::now() < deadline, "origins never loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hits_before = hits.load(Ordering::SeqCst);
    for (path, origin, allowed) in [
        ("/api/chatbots/ada/ask", "https://bob.blog", false),
        ("/api/chatbots/bob/ask", "https://bob.blog", true),
        ("/api/auth/guest", "https://bob.blog", true),
        ("/api/auth/guest", "https://evil.example", false),
        ("/api/users/me", "https://ada.dev", false),
    ] {
        let res = preflight(path, origin).await.unwrap();
        assert_eq!(
            res.status() == 204,
            allowed,
            "preflight {path} from {origin}"
        );
        let res = c
            .post(format!("{}{path}", gw.public))
            .header("origin", origin)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers().get("access-control-allow-origin").is_some(),
            allowed,
            "{path} from {origin}"
        );
    }
    // Preflights are answered by the gateway; only the five actual requests went through.
    assert_eq!(hits.load(Ordering::SeqCst) - hits_before, 5);
}
