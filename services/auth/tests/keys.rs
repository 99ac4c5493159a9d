//! Signing keys: rotation (new key signs, old still verifies until its tokens expire), keys
//! encrypted at rest, keys from a PEM secret file, and forged tokens refused at our endpoints.

mod common;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use common::{problem, spawn, spawn_with};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kernel::tokens::{Claims, Role};
use serde_json::{Value, json};
use std::time::Duration;

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn list_users(app: &common::App, token: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/admin/api/users", app.admin))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn rotation_signs_with_the_new_key_and_verifies_the_old_until_its_tokens_expire() {
    let app = spawn_with(&[
        ("PROTOSTAR_AUTH__ACCESS_TTL_SECS", "3".into()),
        ("PROTOSTAR_AUTH__LEEWAY_SECS", "0".into()),
    ])
    .await;
    let admin = app.admin_token().await;
    let jwks: Value = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.public))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kids(&jwks), vec![kid_of(&admin)]);
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "the private half must never be published"
    );

    let res = app
        .client
        .post(format!("{}/admin/api/auth/keys/rotate", app.admin))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let new_kid = res.json::<Value>().await.unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_kid, kid_of(&admin));

    // Both published; the process's own verifiers see the same set.
    let jwks: Value = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.public))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let published = kids(&jwks);
    assert!(
        published.contains(&new_kid) && published.contains(&kid_of(&admin)),
        "{published:?}"
    );
    assert_eq!(app.platform.local_keys.read().await.keys.len(), 2);

    // The new key signs; the token of the old one still works.
    let signed = app
        .signup("after-rotation@example.org", "a long enough passphrase")
        .await;
    assert_eq!(kid_of(signed["accessToken"].as_str().unwrap()), new_kid);
    assert_eq!(list_users(&app, &admin).await.status(), 200);

    // Once every token of the old key has expired, the key is no longer published.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let jwks: Value = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.public))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kids(&jwks), vec![new_kid]);
}

#[tokio::test]
async fn stored_keys_are_encrypted_and_need_the_right_key_encryption_key() {
    let app = spawn().await;
    let (kid, private, public): (String, Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT kid, private_key, public_key FROM auth.signing_keys")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(public.len(), 32);
    // nonce + sealed seed + tag; and not the seed itself anywhere in it.
    assert_eq!(private.len(), 12 + 32 + 16);
    let db = kernel::db::Database::connect_lazy(&app.platform.database.clone().unwrap(), "auth")
        .unwrap();
    let mut config = app.platform.auth.clone();
    config.key_encryption_key = Some(kernel::Secret::new(common::kek()));
    let other = auth::KeyRing::new(&config, &app.platform.data_dir, db, None).unwrap();
    let err = other.refresh().await.unwrap_err().to_string();
    assert!(err.contains(&kid), "{err}");
}

struct Forger {
    signing: SigningKey,
    kid: String,
}

impl Forger {
    fn sign(&self, claims: &Value, kid: Option<&str>) -> String {
        let der = self.signing.to_pkcs8_der().unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.unwrap_or(&self.kid).to_owned());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
    }
}

fn claims(sub: &str, role: Role) -> Value {
    let now = chrono::Utc::now().timestamp();
    serde_json::to_value(Claims {
        sub: sub.into(),
        role,
        iss: "protostar".into(),
        aud: "protostar".into(),
        exp: now + 600,
        iat: now,
        nbf: None,
        jti: uuid::Uuid::new_v4().to_string(),
    })
    .unwrap()
}

#[tokio::test]
async fn keys_from_a_pem_file_sign_and_every_forgery_is_refused() {
    // The operator's secret: PKCS#8 PEM blocks, newest first.
    let seeds: [[u8; 32]; 2] = [rand::random(), rand::random()];
    let pem: String = seeds
        .iter()
        .map(|s| {
            let der = SigningKey::from_bytes(s).to_pkcs8_der().unwrap();
            format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                STANDARD.encode(der.as_bytes())
            )
        })
        .collect();
    let app = spawn_with(&[("PROTOSTAR_AUTH__SIGNING_KEYS", pem)]).await;
    let signing = SigningKey::from_bytes(&seeds[0]);
    let kid = auth::keys::kid_of(&signing.verifying_key().to_bytes());
    let admin = app.admin_token().await;
    assert_eq!(kid_of(&admin), kid, "the first key of the file signs");
    let jwks: Value = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.public))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kids(&jwks).len(), 2);
    assert_eq!(list_users(&app, &admin).await.status(), 200);

    let admin_sub = app.platform.verifier.verify(&admin).await.unwrap().sub;
    let forger = Forger {
        signing,
        kid: kid.clone(),
    };
    // Our own key signs a correct token: the control, so that the refusals below mean something.
    assert_eq!(
        list_users(&app, &forger.sign(&claims(&admin_sub, Role::Admin), None))
            .await
            .status(),
        200
    );

    let good = claims(&admin_sub, Role::Admin);
    let with = |key: &str, value: Value| {
        let mut c = good.clone();
        c[key] = value;
        c
    };
    let now = chrono::Utc::now().timestamp();
    let stranger = Forger {
        signing: SigningKey::from_bytes(&rand::random()),
        kid: kid.clone(),
    };
    let header_none = B64.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    let body = B64.encode(serde_json::to_vec(&good).unwrap());
    let hs256 = jsonwebtoken::encode(
        &Header {
            kid: Some(kid.clone()),
            ..Header::new(Algorithm::HS256)
        },
        &good,
        &EncodingKey::from_secret(jwks["keys"][0]["x"].as_str().unwrap().as_bytes()),
    )
    .unwrap();
    let tampered = {
        let real = forger.sign(&claims(&admin_sub, Role::Stargazer), None);
        let parts: Vec<&str> = real.split('.').collect();
        format!("{}.{}.{}", parts[0], body, parts[2])
    };
    let forgeries = [
        ("alg none", format!("{header_none}.{body}.")),
        ("HS256 with the public key", hs256),
        ("expired", forger.sign(&with("exp", json!(now - 120)), None)),
        (
            "not yet valid",
            forger.sign(&with("nbf", json!(now + 600)), None),
        ),
        (
            "wrong audience",
            forger.sign(&with("aud", json!("someone-else")), None),
        ),
        (
            "wrong issuer",
            forger.sign(&with("iss", json!("someone-else")), None),
        ),
        ("unknown kid", forger.sign(&good, Some("no-such-key"))),
        ("another key under our kid", stranger.sign(&good, None)),
        ("tampered payload", tampered),
        ("garbage", "not.a.jwt".into()),
    ];
    for (what, token) in forgeries {
        let (status, body) = problem(list_users(&app, &token).await).await;
        assert_eq!(status, 401, "{what}");
        assert_eq!(
            body["type"], "https://protostar.dev/problems/unauthenticated",
            "{what}"
        );
    }
    let (status, _) = problem(
        app.client
            .get(format!("{}/admin/api/users", app.admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "no token at all");
    // The endpoint refuses file-held keys' rotation: the file is the authority.
    let res = app
        .client
        .post(format!("{}/admin/api/auth/keys/rotate", app.admin))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
}

#[tokio::test]
async fn an_aged_key_is_replaced_by_one_published_ahead_of_signing() {
    let app = spawn().await;
    let db = kernel::db::Database::connect_lazy(&app.platform.database.clone().unwrap(), "auth")
        .unwrap();
    let mut config = app.platform.auth.clone();
    config.access_ttl_secs = 1;
    config.leeway_secs = 0;
    config.key_rotation_secs = 2;
    config.key_publish_ahead_secs = 3;
    // A second ring over the same table, as a second auth replica would be.
    let ring = auth::KeyRing::new(&config, &app.platform.data_dir, db, None).unwrap();
    ring.refresh().await.unwrap();
    let first = ring.jwks().await.keys.len();
    assert_eq!(first, 1, "the service's own key, not yet due");
    let claims = |sub: &str| Claims {
        sub: sub.into(),
        role: Role::Stargazer,
        iss: "protostar".into(),
        aud: "protostar".into(),
        exp: chrono::Utc::now().timestamp() + 1,
        iat: chrono::Utc::now().timestamp(),
        nbf: None,
        jti: "j".into(),
    };
    let old_kid = kid_of(&ring.sign(&claims("a")).await.unwrap());

    tokio::time::sleep(Duration::from_millis(2100)).await;
    ring.refresh().await.unwrap();
    let published = kids(&serde_json::to_value(ring.jwks().await).unwrap());
    assert_eq!(
        published.len(),
        2,
        "the new key is published before it signs"
    );
    assert_eq!(
        kid_of(&ring.sign(&claims("b")).await.unwrap()),
        old_kid,
        "not signing yet"
    );
    // Refreshing again meanwhile makes no third key: several replicas agree through the lock.
    ring.refresh().await.unwrap();
    assert_eq!(ring.jwks().await.keys.len(), 2);

    tokio::time::sleep(Duration::from_millis(3100)).await;
    let new_kid = kid_of(&ring.sign(&claims("c")).await.unwrap());
    assert_ne!(new_kid, old_kid);
    assert!(published.contains(&new_kid));
    // The old key's last token (1 s) has expired once the new key has signed for a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        kids(&serde_json::to_value(ring.jwks().await).unwrap()),
        vec![new_kid]
    );
}
