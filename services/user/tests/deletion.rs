//! `DELETE /api/users/me`: the profile goes at once, `user.deleted` goes out, and auth removes
//! the credentials and tokens when it applies it.

mod common;

use common::{Mode, eventually, spawn};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

async fn deleting_removes_the_account_everywhere(mode: Mode) {
    let app = spawn(mode).await;
    let admin = app.admin().await;
    let code = app.invites(&admin, 1, 1).await.remove(0);
    let s = app.signup("leaving@example.org").await;
    let keep = app.signup("staying@example.org").await;
    let res = app
        .call(
            Method::POST,
            "/api/invites/redeem",
            Some(&s.access),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(res.status(), 200);

    let res = app
        .call(Method::DELETE, "/api/users/me", Some(&s.access), None)
        .await;
    assert_eq!(res.status(), 202, "{mode:?}");
    let deleted = app.outbox("users", "user.deleted").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["data"]["userId"], s.id.as_str());

    // auth applies the event: no more login, no more refresh.
    let gone = eventually(Duration::from_secs(10), || async {
        app.login("leaving@example.org").await.status() == 401
    })
    .await;
    assert!(gone, "{mode:?}: auth never applied user.deleted");
    let res = app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({"refreshToken": s.refresh})),
        )
        .await;
    assert_eq!(res.status(), 401);
    let id: uuid::Uuid = s.id.parse().unwrap();
    for (table, column) in [
        ("auth.accounts", "id"),
        ("auth.refresh_tokens", "account_id"),
        ("users.profiles", "id"),
        ("users.redemptions", "user_id"),
    ] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE {column} = $1"
        )))
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(n, 0, "{table} still holds the account");
    }
    // The access token has minutes left, but the profile does not come back.
    let res = app
        .call(Method::GET, "/api/users/me", Some(&s.access), None)
        .await;
    assert_eq!(res.status(), 404);
    // Nobody else was touched.
    assert_eq!(app.login("staying@example.org").await.status(), 200);
    let me: Value = app
        .call(Method::GET, "/api/users/me", Some(&keep.access), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], keep.id.as_str());
}

#[tokio::test]
async fn deleting_removes_the_account_everywhere_in_one_process() {
    deleting_removes_the_account_everywhere(Mode::All).await;
}

#[tokio::test]
async fn deleting_removes_the_account_everywhere_in_separate_processes() {
    deleting_removes_the_account_everywhere(Mode::Split).await;
}
