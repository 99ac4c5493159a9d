//! Separate processes with RabbitMQ between them: sign-up reaches the profile, a redeemed invite
//! reaches auth's role, a deletion reaches auth's credentials, all as broker messages.

mod common;

use common::{Mode, eventually, spawn};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn the_services_talk_through_rabbitmq() {
    let app = spawn(Mode::SplitRabbit).await;
    // Let both consumers declare and bind their queues before anything is published.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let admin = app.admin().await;
    let code = app.invites(&admin, 1, 1).await.remove(0);
    let mut s = app.signup("rabbit@example.org").await;
    let landed = eventually(Duration::from_secs(30), || async {
        let res = app
            .call(Method::GET, "/api/users/me", Some(&s.access), None)
            .await;
        res.json::<Value>()
            .await
            .is_ok_and(|v| v["email"] == "rabbit@example.org")
    })
    .await;
    assert!(landed, "user.registered never arrived through the broker");

    let res = app
        .call(
            Method::POST,
            "/api/invites/redeem",
            Some(&s.access),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let mut role = Value::Null;
    for _ in 0..300 {
        let v: Value = app.refresh(&s).await.json().await.unwrap();
        s.refresh = v["refreshToken"].as_str().unwrap().to_owned();
        role = v["role"].clone();
        if role == "protostar" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        role, "protostar",
        "invite.redeemed never reached auth through the broker"
    );

    let res = app
        .call(Method::DELETE, "/api/users/me", Some(&s.access), None)
        .await;
    assert_eq!(res.status(), 202);
    let gone = eventually(Duration::from_secs(30), || async {
        app.login("rabbit@example.org").await.status() == 401
    })
    .await;
    assert!(gone, "user.deleted never reached auth through the broker");
}
