//! Password reset: one answer whether or not the account exists, the token travels in the
//! event, and it works once and only before it expires.

mod common;

use common::{problem, spawn};
use serde_json::{Value, json};

const OLD: &str = "the original passphrase";
const NEW: &str = "a brand new passphrase";

#[tokio::test]
async fn reset_tokens_are_single_use_expiring_and_do_not_reveal_accounts() {
    let app = spawn().await;
    let signed_up = app.signup("reset@example.org", OLD).await;

    let known = app
        .post(
            "/api/auth/password-reset",
            json!({"email": "Reset@example.org"}),
        )
        .await;
    let unknown = app
        .post(
            "/api/auth/password-reset",
            json!({"email": "nobody@example.org"}),
        )
        .await;
    assert_eq!(known.status(), 202);
    assert_eq!(unknown.status(), 202);
    assert_eq!(
        known.json::<Value>().await.unwrap(),
        unknown.json::<Value>().await.unwrap()
    );

    let events = app.outbox("user.password_reset_requested").await;
    assert_eq!(events.len(), 1, "only the existing account gets a token");
    assert_eq!(events[0]["data"]["email"], "reset@example.org");
    assert_eq!(events[0]["data"]["userId"], signed_up["subject"]);
    let token = events[0]["data"]["token"].as_str().unwrap().to_owned();

    // The policy applies to the new password.
    let (status, body) = problem(
        app.post(
            "/api/auth/password-reset/confirm",
            json!({"token": token, "password": "short"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["field"], "password");

    // Someone has been guessing meanwhile: the account is locked.
    for _ in 0..5 {
        app.login("reset@example.org", "some wrong guess here")
            .await;
    }
    assert_eq!(failures(&app).await, Some(5));

    let res = app
        .post(
            "/api/auth/password-reset/confirm",
            json!({"token": token, "password": NEW}),
        )
        .await;
    assert_eq!(res.status(), 204);
    let (status, body) = problem(
        app.post(
            "/api/auth/password-reset/confirm",
            json!({"token": token, "password": NEW}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400, "a used token");
    assert_eq!(body["errors"][0]["field"], "token");

    // The reset lifted the lock: the new password works at once, the old one no more.
    assert_eq!(failures(&app).await, None);
    assert_eq!(app.login("reset@example.org", NEW).await.status(), 200);
    assert_eq!(app.login("reset@example.org", OLD).await.status(), 401);
    // Sessions from before the reset are over.
    let old_refresh = signed_up["refreshToken"].as_str().unwrap();
    assert_eq!(
        app.post("/api/auth/refresh", json!({"refreshToken": old_refresh}))
            .await
            .status(),
        401
    );

    // An expired token: the clock of the row is moved back rather than sleeping an hour.
    app.post(
        "/api/auth/password-reset",
        json!({"email": "reset@example.org"}),
    )
    .await;
    let events = app.outbox("user.password_reset_requested").await;
    let late = events[1]["data"]["token"].as_str().unwrap().to_owned();
    sqlx::query("UPDATE auth.password_resets SET expires_at = now() - interval '1 second' WHERE used_at IS NULL")
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, _) = problem(
        app.post(
            "/api/auth/password-reset/confirm",
            json!({"token": late, "password": NEW}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = problem(
        app.post(
            "/api/auth/password-reset/confirm",
            json!({"token": "made-up", "password": NEW}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
}

async fn failures(app: &common::App) -> Option<i32> {
    sqlx::query_scalar(
        "SELECT failures FROM auth.login_failures WHERE key = 'account:reset@example.org'",
    )
    .fetch_optional(&app.pool)
    .await
    .unwrap()
}
