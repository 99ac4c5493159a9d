//! The front door through the real binary: `admin create-admin`, then `serve --target all` with
//! sign-up, login, an invite redeemed into the protostar role, the JWKS and account deletion.

mod common;

use common::{PASSWORD, Server, command, data_dir, serve, serve_targets};
use kernel::testing::TestDb;
use serde_json::{Value, json};
use std::time::Duration;

/// The tests here give the server 30 s for what they wait on.
async fn until<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    common::until(what, Duration::from_secs(30), check).await
}

#[tokio::test]
async fn the_front_door_through_the_binary() {
    let db = TestDb::new().await;
    let data = data_dir("auth-flows");
    let password_file = data.join("admin-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();

    let out = command(&db, &data)
        .args([
            "admin",
            "create-admin",
            "--email",
            "Root@Example.org",
            "--password-file",
        ])
        .arg(&password_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("root@example.org: created as admin"));
    let weak = command(&db, &data)
        .args([
            "admin",
            "create-admin",
            "--email",
            "other@example.org",
            "--password-file",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert!(!weak.status.success());

    let server = serve(&db, &data);
    let client = kernel::http::client(Duration::from_secs(10));
    until("readiness", || async {
        client
            .get(format!("{}/readyz", server.public))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let post = |url: String, token: Option<String>, body: Value| {
        let client = client.clone();
        async move {
            let mut req = client.post(url).json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send().await.unwrap()
        }
    };

    let res = post(
        format!("{}/api/auth/login", server.public),
        None,
        json!({"email": "root@example.org", "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let admin: Value = res.json().await.unwrap();
    assert_eq!(admin["role"], "admin");
    let admin_token = admin["accessToken"].as_str().unwrap().to_owned();

    let res = post(
        format!("{}/api/auth/signup", server.public),
        None,
        json!({"email": "Nova@Example.org", "password": PASSWORD, "displayName": "Nova"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let nova: Value = res.json().await.unwrap();
    let token = nova["accessToken"].as_str().unwrap().to_owned();
    let mut refresh = nova["refreshToken"].as_str().unwrap().to_owned();
    until("the profile from user.registered", || async {
        let res = client
            .get(format!("{}/api/users/me", server.public))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        res.json::<Value>()
            .await
            .is_ok_and(|v| v["displayName"] == "Nova" && v["email"] == "nova@example.org")
    })
    .await;

    // Invites live on the admin listener only.
    let res = post(
        format!("{}/admin/api/invites", server.public),
        Some(admin_token.clone()),
        json!({"count": 1}),
    )
    .await;
    assert_eq!(res.status(), 404);
    let res = post(
        format!("{}/admin/api/invites", server.admin),
        Some(admin_token.clone()),
        json!({"count": 1, "uses": 1}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let code = res.json::<Value>().await.unwrap()["invites"][0]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = post(
        format!("{}/api/invites/redeem", server.public),
        Some(token.clone()),
        json!({"code": code}),
    )
    .await;
    assert_eq!(res.status(), 200);

    let mut role = Value::Null;
    for _ in 0..100 {
        let res = post(
            format!("{}/api/auth/refresh", server.public),
            None,
            json!({"refreshToken": refresh}),
        )
        .await;
        assert_eq!(res.status(), 200);
        let v: Value = res.json().await.unwrap();
        refresh = v["refreshToken"].as_str().unwrap().to_owned();
        role = v["role"].clone();
        if role == "protostar" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(role, "protostar");

    let jwks: Value = client
        .get(format!("{}/.well-known/jwks.json", server.public))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["crv"], "Ed25519");

    let res = client
        .delete(format!("{}/api/users/me", server.public))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    until("auth applying user.deleted", || async {
        let status = post(
            format!("{}/api/auth/login", server.public),
            None,
            json!({"email": "nova@example.org", "password": PASSWORD}),
        )
        .await
        .status();
        eprintln!("login after deletion: {status}");
        status == 401
    })
    .await;
}

/// The two shapes the session tests run in: one process with the gateway in front of
/// in-process targets, or a gateway process forwarding over HTTP to a process running auth and
/// user, and checking tokens against auth's JWKS over HTTP.
struct Deployment {
    /// The gateway's listeners.
    public: String,
    admin: String,
    /// Every process's public listener, each ready once its schemas are migrated.
    ready: Vec<String>,
    _servers: Vec<Server>,
}

fn deploy(db: &TestDb, data: &std::path::Path, separate: bool) -> Deployment {
    if !separate {
        let s = serve(db, data);
        return Deployment {
            public: s.public.clone(),
            admin: s.admin.clone(),
            ready: vec![s.public.clone()],
            _servers: vec![s],
        };
    }
    // user's export asks chat, which does not run here: a closed port, so an export is a 503
    // (session_lifecycle checks that it says so rather than answering a part).
    let services = serve_targets(
        db,
        data,
        "auth,user",
        &[(
            "PROTOSTAR_UPSTREAMS__CHAT__ADMIN",
            "http://127.0.0.1:9".into(),
        )],
    );
    let gateway = serve_targets(
        db,
        data,
        "gateway",
        &[
            (
                "PROTOSTAR_AUTH__JWKS_URL",
                format!("{}/.well-known/jwks.json", services.public),
            ),
            ("PROTOSTAR_UPSTREAMS__AUTH__PUBLIC", services.public.clone()),
            ("PROTOSTAR_UPSTREAMS__AUTH__ADMIN", services.admin.clone()),
            ("PROTOSTAR_UPSTREAMS__USER__PUBLIC", services.public.clone()),
            ("PROTOSTAR_UPSTREAMS__USER__ADMIN", services.admin.clone()),
        ],
    );
    Deployment {
        public: gateway.public.clone(),
        admin: gateway.admin.clone(),
        // The gateway's readiness is its own: the services' schemas migrate in their process.
        ready: vec![gateway.public.clone(), services.public.clone()],
        _servers: vec![gateway, services],
    }
}

/// sign-up → login → refresh → reuse of the old refresh token → the family is revoked →
/// logout, all through the gateway; and a forged token never gets past it.
async fn session_lifecycle(separate: bool) {
    let db = TestDb::new().await;
    let data = data_dir("sessions");
    let d = deploy(&db, &data, separate);
    let client = kernel::http::client(Duration::from_secs(10));
    for base in &d.ready {
        until("readiness", || async {
            client
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut req = client.post(format!("{}{path}", d.public)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let credentials = json!({"email": "vega@example.org", "password": PASSWORD});

    let res = post("/api/auth/signup", None, credentials.clone())
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = post("/api/auth/login", None, credentials.clone())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let login: Value = res.json().await.unwrap();
    let access = login["accessToken"].as_str().unwrap().to_owned();
    let first = login["refreshToken"].as_str().unwrap().to_owned();

    // The token works through the gateway, on a route of another service.
    until("the profile", || async {
        client
            .get(format!("{}/api/users/me", d.public))
            .bearer_auth(&access)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;

    // The export is everything or nothing: without chat it is a 503, not a partial archive.
    let res = client
        .get(format!("{}/api/users/me/export", d.public))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    if separate {
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let problem: Value = res.json().await.unwrap();
        assert!(
            problem["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("upstream-unavailable")),
            "{problem}"
        );
    } else {
        assert_eq!(res.status(), 200);
        let export: Value = res.json().await.unwrap();
        assert_eq!(export["chat"]["conversations"], json!([]));
    }

    let res = post("/api/auth/refresh", None, json!({"refreshToken": first}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let second = res.json::<Value>().await.unwrap()["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second);

    // The old token again: a thief or a replay. The whole family dies, the new one too.
    let res = post("/api/auth/refresh", None, json!({"refreshToken": first}))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = post("/api/auth/refresh", None, json!({"refreshToken": second}))
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "the family survived the reuse");

    // A fresh login, then logout ends that family.
    let res = post("/api/auth/login", None, credentials.clone())
        .await
        .unwrap();
    let login: Value = res.json().await.unwrap();
    let third = login["refreshToken"].as_str().unwrap().to_owned();
    let access = login["accessToken"].as_str().unwrap().to_owned();
    let res = post(
        "/api/auth/logout",
        Some(&access),
        json!({"refreshToken": third}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 204);
    let res = post("/api/auth/refresh", None, json!({"refreshToken": third}))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Forged: the genuine token with `alg: none` and no signature.
    let payload = access.split('.').nth(1).unwrap();
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    let res = client
        .get(format!("{}/api/users/me", d.public))
        .bearer_auth(&none)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["type"],
        "https://protostar.dev/problems/unauthenticated"
    );

    // The admin listener answers /admin only; the gateway's health page wants an admin.
    let res = client
        .get(format!("{}/admin/api/health", d.admin))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn the_session_lifecycle_through_the_gateway_in_one_process() {
    session_lifecycle(false).await;
}

#[tokio::test]
async fn the_session_lifecycle_through_a_gateway_process_of_its_own() {
    session_lifecycle(true).await;
}

/// Two gateway processes (each with auth in process, one database) counting in one Redis:
/// together they let a client's burst through once, not once each.
#[tokio::test]
async fn two_gateway_processes_share_their_rate_limits_through_redis() {
    let db = TestDb::new().await;
    let data = data_dir("shared-limits");
    let env = [
        (
            "PROTOSTAR_REDIS__URL",
            kernel::testing::stack_env("PROTOSTAR_TEST_REDIS_URL"),
        ),
        (
            "PROTOSTAR_GATEWAY__RATE_LIMIT__KEY_PREFIX",
            format!("test:{}:", uuid::Uuid::new_v4().simple()),
        ),
        // A burst of ten, then one every ten seconds: none comes back during the test.
        ("PROTOSTAR_GATEWAY__RATE_LIMIT__IP__PER_MINUTE", "6".into()),
        ("PROTOSTAR_GATEWAY__RATE_LIMIT__IP__BURST", "10".into()),
    ];
    let a = serve_targets(&db, &data, "gateway,auth", &env);
    let b = serve_targets(&db, &data, "gateway,auth", &env);
    let client = kernel::http::client(Duration::from_secs(10));
    // Both must count in Redis (not in process while connecting) before the burst starts.
    for s in [&a, &b] {
        until("the Redis connection", || async {
            client
                .get(format!("{}/metrics", s.admin))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .is_ok_and(|m| m.contains("protostar_gateway_rate_limit_redis_connected 1"))
        })
        .await;
    }
    let mut ok = 0;
    let mut refused = 0;
    for i in 0..30 {
        let s = if i % 2 == 0 { &a } else { &b };
        let res = client
            .get(format!("{}/.well-known/jwks.json", s.public))
            .send()
            .await
            .unwrap();
        match res.status().as_u16() {
            200 => ok += 1,
            429 => refused += 1,
            other => panic!("status {other}"),
        }
    }
    assert_eq!((ok, refused), (10, 20));
}
