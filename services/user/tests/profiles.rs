//! The own profile, in both deployment shapes.

mod common;

use common::{Mode, eventually, spawn};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

async fn profile_follows_signup_and_changes(mode: Mode) {
    let app = spawn(mode).await;
    let s = app.signup("Lin@Example.org").await;
    // The profile carries what `user.registered` announced once the event has landed.
    let landed = eventually(Duration::from_secs(10), || async {
        let v: Value = app
            .call(Method::GET, "/api/users/me", Some(&s.access), None)
            .await
            .json()
            .await
            .unwrap();
        v["email"] == "lin@example.org"
    })
    .await;
    assert!(
        landed,
        "{mode:?}: user.registered never reached the profile"
    );
    let me: Value = app
        .call(Method::GET, "/api/users/me", Some(&s.access), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], s.id.as_str());
    assert_eq!(me["displayName"], "lin");
    assert_eq!(me["role"], "stargazer");

    let res = app
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(&s.access),
            Some(json!({"displayName": "  Lin Wei "})),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["displayName"], "Lin Wei");
    let me: Value = app
        .call(Method::GET, "/api/users/me", Some(&s.access), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["displayName"], "Lin Wei");

    let res = app
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(&s.access),
            Some(json!({"displayName": "   "})),
        )
        .await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "displayName");

    let res = app
        .call(Method::GET, "/api/users/me/export", Some(&s.access), None)
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let export: Value = res.json().await.unwrap();
    assert_eq!(export["profile"]["displayName"], "Lin Wei");
    // chat's part, asked with the caller's own token.
    assert_eq!(export["chat"]["standIn"], true);
}

#[tokio::test]
async fn profile_follows_signup_and_changes_in_one_process() {
    profile_follows_signup_and_changes(Mode::All).await;
}

#[tokio::test]
async fn profile_follows_signup_and_changes_in_separate_processes() {
    profile_follows_signup_and_changes(Mode::Split).await;
}
