//! Sign-up, login, refresh (with reuse detection), logout and guest tokens, over HTTP.

mod common;

use common::{problem, spawn};
use serde_json::{Value, json};

const PASSWORD: &str = "a long enough passphrase";

#[tokio::test]
async fn signup_login_refresh_reuse_revokes_the_family_then_logout() {
    let app = spawn().await;
    let signed_up = app.signup("Ada@Example.org", PASSWORD).await;
    assert_eq!(signed_up["role"], "stargazer");
    assert_eq!(signed_up["tokenType"], "Bearer");
    assert!(signed_up["expiresIn"].as_u64().unwrap() <= 900);
    let claims = app
        .platform
        .verifier
        .verify(signed_up["accessToken"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims.sub, signed_up["subject"].as_str().unwrap());
    assert!(claims.exp - claims.iat <= 900);

    // The e-mail was normalised: any case logs in to the same account.
    let res = app.login("  ADA@example.ORG", PASSWORD).await;
    assert_eq!(res.status(), 200);
    let login: Value = res.json().await.unwrap();
    assert_eq!(login["subject"], signed_up["subject"]);
    let first = login["refreshToken"].as_str().unwrap().to_owned();

    let res = app
        .post("/api/auth/refresh", json!({"refreshToken": first}))
        .await;
    assert_eq!(res.status(), 200);
    let refreshed: Value = res.json().await.unwrap();
    let second = refreshed["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert!(
        app.platform
            .verifier
            .verify(refreshed["accessToken"].as_str().unwrap())
            .await
            .is_ok()
    );

    // The old token again: a thief and the owner both hold the family, so all of it dies.
    let (status, body) = problem(
        app.post("/api/auth/refresh", json!({"refreshToken": first}))
            .await,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body["type"],
        "https://protostar.dev/problems/unauthenticated"
    );
    let (status, _) = problem(
        app.post("/api/auth/refresh", json!({"refreshToken": second}))
            .await,
    )
    .await;
    assert_eq!(
        status, 401,
        "the successor of a reused token must be revoked too"
    );
    let audits = app.outbox("audit.refresh_token_reused").await;
    assert_eq!(audits.len(), 1);
    let data = &audits[0]["data"];
    assert_eq!(data["target"], signed_up["subject"]);
    assert_eq!(data["outcome"], "family_revoked");
    assert_eq!(data["clientAddress"], "127.0.0.1");
    assert!(data["requestId"].as_str().is_some_and(|r| !r.is_empty()));

    // The sign-up's own family is untouched by that, and logout ends it.
    let own = signed_up["refreshToken"].as_str().unwrap();
    let res = app
        .post("/api/auth/logout", json!({"refreshToken": own}))
        .await;
    assert_eq!(res.status(), 204);
    let (status, _) = problem(
        app.post("/api/auth/refresh", json!({"refreshToken": own}))
            .await,
    )
    .await;
    assert_eq!(status, 401);
    // Logging out twice is no error.
    assert_eq!(
        app.post("/api/auth/logout", json!({"refreshToken": own}))
            .await
            .status(),
        204
    );

    assert_eq!(app.outbox("user.registered").await.len(), 1);
    assert_eq!(app.outbox("audit.sign_in_succeeded").await.len(), 1);
}

#[tokio::test]
async fn racing_refreshes_with_one_token_leave_at_most_one_winner() {
    let app = spawn().await;
    let signed_up = app.signup("racer@example.org", PASSWORD).await;
    let token = signed_up["refreshToken"].as_str().unwrap().to_owned();
    let attempts = (0..8).map(|_| app.post("/api/auth/refresh", json!({"refreshToken": token})));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn the_password_policy_answers_with_field_errors() {
    let app = spawn().await;
    let (status, body) = problem(
        app.post(
            "/api/auth/signup",
            json!({"email": "not-an-address", "password": "short"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["type"],
        "https://protostar.dev/problems/invalid-request"
    );
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"email") && fields.contains(&"password"),
        "{body}"
    );

    let (status, body) = problem(
        app.post(
            "/api/auth/signup",
            json!({"email": "grace@example.org", "password": "grace-grace-grace"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("e-mail"),
        "{body}"
    );

    let (status, body) = problem(
        app.post(
            "/api/auth/signup",
            json!({"email": "grace@example.org", "password": "Password123"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("common"),
        "{body}"
    );

    let (status, _) = problem(
        app.post("/api/auth/signup", json!({"email": "x@example.org"}))
            .await,
    )
    .await;
    assert_eq!(status, 400);

    app.signup("grace@example.org", PASSWORD).await;
    let (status, body) = problem(
        app.post(
            "/api/auth/signup",
            json!({"email": "GRACE@example.org ", "password": PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn guests_get_a_subject_of_their_own_and_no_refresh_token() {
    let app = spawn().await;
    let mut subjects = Vec::new();
    for _ in 0..2 {
        let res = app.post("/api/auth/guest", json!({})).await;
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["role"], "guest");
        assert!(body.get("refreshToken").is_none());
        let claims = app
            .platform
            .verifier
            .verify(body["accessToken"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(claims.role, kernel::tokens::Role::Guest);
        subjects.push(claims.sub);
    }
    assert_ne!(subjects[0], subjects[1]);
}

#[tokio::test]
async fn wrong_passwords_back_off_per_account_and_per_address() {
    let app = spawn().await;
    app.signup("target@example.org", PASSWORD).await;
    for i in 0..5 {
        let (status, _) = problem(
            app.login("target@example.org", "wrong but long enough")
                .await,
        )
        .await;
        assert_eq!(status, 401, "attempt {i}");
    }
    // Locked: even the right password waits.
    let res = app.login("target@example.org", PASSWORD).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let (_, body) = problem(res).await;
    assert_eq!(body["type"], "https://protostar.dev/problems/rate-limited");
    // Other accounts from this address are not locked yet.
    app.signup("bystander@example.org", PASSWORD).await;
    assert_eq!(
        app.login("bystander@example.org", PASSWORD).await.status(),
        200
    );
    // The first lock is one second; then the right password works and the count restarts.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        app.login("target@example.org", PASSWORD).await.status(),
        200
    );
    assert_eq!(
        app.login("target@example.org", "wrong but long enough")
            .await
            .status(),
        401
    );
    assert_eq!(
        app.login("target@example.org", PASSWORD).await.status(),
        200
    );

    // One address trying many accounts (6 failures so far): at 20 it is locked for every account.
    for i in 0..14 {
        let res = app
            .login(&format!("nobody{i}@example.org"), "wrong but long enough")
            .await;
        assert_eq!(res.status(), 401, "attempt {i}");
    }
    assert_eq!(
        app.login("bystander@example.org", PASSWORD).await.status(),
        429
    );
    assert!(app.outbox("audit.sign_in_failed").await.len() >= 20);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_counted() {
    let app =
        common::spawn_with(&[("PROTOSTAR_AUTH__TRUSTED_PROXIES", "127.0.0.1/32".into())]).await;
    app.signup("shared@example.org", PASSWORD).await;
    let login_from = |client: &'static str, email: String, password: &'static str| {
        app.client
            .post(format!("{}/api/auth/login", app.public))
            .header("x-forwarded-for", format!("6.6.6.6, {client}"))
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    for i in 0..20 {
        let res = login_from(
            "198.51.100.1",
            format!("nobody{i}@example.org"),
            "wrong but long enough",
        )
        .await
        .unwrap();
        assert_eq!(res.status(), 401, "attempt {i}");
    }
    let res = login_from("198.51.100.1", "shared@example.org".into(), PASSWORD)
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "the noisy client is locked");
    let res = login_from("198.51.100.2", "shared@example.org".into(), PASSWORD)
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "another client behind the same proxy is not"
    );
    let failed = app.outbox("audit.sign_in_failed").await;
    assert_eq!(failed[0]["data"]["clientAddress"], "198.51.100.1");
}
