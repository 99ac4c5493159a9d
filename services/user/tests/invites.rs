//! Invite codes: created by admins, redeemed atomically, promoting a stargazer to protostar.

mod common;

use common::{App, Mode, Session, spawn};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

async fn redeem(app: &App, s: &Session, code: &str) -> reqwest::Response {
    app.call(
        Method::POST,
        "/api/invites/redeem",
        Some(&s.access),
        Some(json!({"code": code})),
    )
    .await
}

async fn redeeming_makes_a_protostar(mode: Mode) {
    let app = spawn(mode).await;
    let admin = app.admin().await;
    let codes = app.invites(&admin, 3, 1).await;
    assert_eq!(codes.len(), 3);
    let created = app.outbox("users", "audit.invite_created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["data"]["actor"], admin.id.as_str());

    let mut s = app.signup("hopeful@example.org").await;
    // Typed sloppily: lower case, spaces for dashes.
    let res = redeem(&app, &s, &codes[0].to_lowercase().replace('-', " ")).await;
    assert_eq!(res.status(), 200, "{mode:?}");
    assert_eq!(app.outbox("users", "invite.redeemed").await.len(), 1);

    // The role shows from a refresh after auth has applied `invite.redeemed`; each refresh
    // rotates the token, so the loop keeps the newest one.
    let mut role = Value::Null;
    for _ in 0..200 {
        let res = app.refresh(&s).await;
        assert_eq!(res.status(), 200);
        let v: Value = res.json().await.unwrap();
        s.refresh = v["refreshToken"].as_str().unwrap().to_owned();
        s.access = v["accessToken"].as_str().unwrap().to_owned();
        role = v["role"].clone();
        if role == "protostar" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        role, "protostar",
        "{mode:?}: the promotion never reached auth"
    );
    assert_eq!(
        app.outbox("auth", "audit.role_changed")
            .await
            .iter()
            .filter(|e| e["data"]["details"]["to"] == "protostar")
            .count(),
        1
    );

    // Once is enough: a second code is refused and keeps its use.
    let res = redeem(&app, &s, &codes[1]).await;
    assert_eq!(res.status(), 409);
    let other = app.signup("second@example.org").await;
    assert_eq!(redeem(&app, &other, &codes[1]).await.status(), 200);
    // A used-up code, an expired code and a made-up code all answer alike.
    let third = app.signup("third@example.org").await;
    assert_eq!(redeem(&app, &third, &codes[0]).await.status(), 404);
    sqlx::query(
        "UPDATE users.invites SET expires_at = now() - interval '1 second' WHERE uses_left > 0",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(redeem(&app, &third, &codes[2]).await.status(), 404);
    assert_eq!(
        redeem(&app, &third, "ZZZZ-ZZZZ-ZZZZ-ZZZZ").await.status(),
        404
    );
    assert_eq!(redeem(&app, &third, "nonsense!").await.status(), 400);
}

#[tokio::test]
async fn redeeming_makes_a_protostar_in_one_process() {
    redeeming_makes_a_protostar(Mode::All).await;
}

#[tokio::test]
async fn redeeming_makes_a_protostar_in_separate_processes() {
    redeeming_makes_a_protostar(Mode::Split).await;
}

/// N stargazers race for a code with `uses` uses: exactly `uses` of them win.
async fn race(app: &App, admin: &Session, uses: u32, racers: usize) -> usize {
    let code = app.invites(admin, 1, uses).await.remove(0);
    let mut sessions = Vec::new();
    for i in 0..racers {
        sessions.push(app.signup(&format!("racer{uses}-{i}@example.org")).await);
    }
    let results = futures::future::join_all(sessions.iter().map(|s| redeem(app, s, &code))).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.status().as_u16()).collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 404),
        "{statuses:?}"
    );
    statuses.iter().filter(|s| **s == 200).count()
}

#[tokio::test]
async fn racing_redemptions_take_exactly_the_uses_left() {
    let app = spawn(Mode::All).await;
    let admin = app.admin().await;
    assert_eq!(race(&app, &admin, 1, 12).await, 1);
    assert_eq!(race(&app, &admin, 3, 12).await, 3);
    let left: Vec<i32> = sqlx::query_scalar("SELECT uses_left FROM users.invites")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, vec![0, 0]);
    let redemptions: i64 = sqlx::query_scalar("SELECT count(*) FROM users.redemptions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(redemptions, 4);
}

#[tokio::test]
async fn one_account_racing_with_several_codes_redeems_once() {
    let app = spawn(Mode::All).await;
    let admin = app.admin().await;
    let codes = app.invites(&admin, 6, 1).await;
    let s = app.signup("greedy@example.org").await;
    let results = futures::future::join_all(codes.iter().map(|c| redeem(&app, &s, c))).await;
    let wins = results.iter().filter(|r| r.status() == 200).count();
    assert_eq!(wins, 1);
    let left: i64 = sqlx::query_scalar("SELECT sum(uses_left) FROM users.invites")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 5, "the refused attempts keep their codes' uses");
}

#[tokio::test]
async fn invite_creation_checks_its_fields() {
    let app = spawn(Mode::All).await;
    let admin = app.admin().await;
    for (body, field) in [
        (json!({"count": 0}), "count"),
        (json!({"count": 101}), "count"),
        (json!({"uses": 0}), "uses"),
        (json!({"expiresInDays": 0}), "expiresInDays"),
        (json!({"expiresAt": "2001-01-01T00:00:00Z"}), "expiresAt"),
    ] {
        let res = app
            .call(
                Method::POST,
                "/admin/api/invites",
                Some(&admin.access),
                Some(body.clone()),
            )
            .await;
        assert_eq!(res.status(), 400, "{body}");
        let v: Value = res.json().await.unwrap();
        assert!(
            v["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{body}: {v}"
        );
    }
    let res = app
        .call(Method::GET, "/admin/api/invites", Some(&admin.access), None)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["invites"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}
