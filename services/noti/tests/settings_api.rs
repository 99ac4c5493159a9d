//! `GET/PUT /api/notifications/settings` over HTTP with real tokens and a real database: only a
//! protostar may use it, bad input is a problem+json 4xx naming each field, and the webhook's
//! token is never shown back.

mod common;

use common::noti_db;
use kernel::testing::{TestKey, claims};
use kernel::tokens::{AuthConfig, Role, StaticKeySource, TokenVerifier};
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

#[tokio::test]
async fn owners_read_and_change_their_settings_and_bad_input_is_a_problem() {
    let (_t, db) = noti_db().await;
    let key = TestKey::new("k1");
    let keys = Arc::new(tokio::sync::RwLock::new(jsonwebtoken::jwk::JwkSet {
        keys: vec![key.jwk()],
    }));
    let verifier = TokenVerifier::new(StaticKeySource(keys), &AuthConfig::default());
    let app = noti::settings::routes(noti::settings::SettingsState {
        db: db.clone(),
        verifier: Arc::new(verifier),
        discord: Arc::new(noti::config::DiscordConfig::default()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}{}",
        listener.local_addr().unwrap(),
        noti::settings::PATH
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = kernel::http::client(std::time::Duration::from_secs(10));
    let owner = Uuid::now_v7();
    let protostar = key.sign(&claims(&owner.to_string(), Role::Protostar, 300));
    let stargazer = key.sign(&claims(&Uuid::now_v7().to_string(), Role::Stargazer, 300));

    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = http.get(&url).bearer_auth(&stargazer).send().await.unwrap();
    assert_eq!(r.status(), 403);

    let r = http.get(&url).bearer_auth(&protostar).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"mode": "instant", "email": true, "discordWebhook": null, "locale": null})
    );

    let r = http
        .put(&url)
        .bearer_auth(&protostar)
        .json(&json!({"mode": "weekly", "discordWebhookUrl": "http://169.254.169.254/latest", "locale": "de"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let problem: Value = r.json().await.unwrap();
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{problem}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["mode", "discordWebhookUrl", "locale"]);
    for body in ["{not json", r#"{"mode": 3}"#, r#"{"unknown": true}"#] {
        let r = http
            .put(&url)
            .bearer_auth(&protostar)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    let r = http
        .put(&url)
        .bearer_auth(&protostar)
        .body("mode=digest")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    let r = http
        .put(&url)
        .bearer_auth(&protostar)
        .json(&json!({"mode": "digest", "discordWebhookUrl": "https://discord.com/api/webhooks/42/secret-token", "locale": "ko"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let saved: Value = http
        .get(&url)
        .bearer_auth(&protostar)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        saved,
        json!({"mode": "digest", "email": true, "discordWebhook": "https://discord.com/api/webhooks/42", "locale": "ko"})
    );
    assert!(!saved.to_string().contains("secret-token"));
}
