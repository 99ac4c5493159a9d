//! Access-token verification against a JWKS served over real HTTP, with every forgery we know.

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kernel::tokens::{AuthConfig, Claims, HttpKeySource, Role, TokenError, TokenVerifier};
use std::sync::{Arc, Mutex};

use kernel::testing::TestKey as Key;

fn claims(offset_exp: i64) -> Claims {
    kernel::testing::claims("user-1", Role::Stargazer, offset_exp)
}

/// Serves the given key set at /.well-known/jwks.json on a loopback port; counts fetches.
async fn jwks_server(keys: Arc<Mutex<JwkSet>>, fetches: Arc<Mutex<u32>>) -> String {
    let app = Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let keys = keys.clone();
            let fetches = fetches.clone();
            async move {
                *fetches.lock().unwrap() += 1;
                axum::Json(keys.lock().unwrap().clone())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/.well-known/jwks.json")
}

async fn setup() -> (Key, TokenVerifier, Arc<Mutex<JwkSet>>, Arc<Mutex<u32>>) {
    let key = Key::new("k1");
    let set = Arc::new(Mutex::new(JwkSet {
        keys: vec![key.jwk()],
    }));
    let fetches = Arc::new(Mutex::new(0));
    let url = jwks_server(set.clone(), fetches.clone()).await;
    let verifier = TokenVerifier::new(HttpKeySource::new(url), &AuthConfig::default());
    (key, verifier, set, fetches)
}

#[tokio::test]
async fn a_genuine_token_verifies() {
    let (key, verifier, _, _) = setup().await;
    let c = claims(600);
    assert_eq!(verifier.verify(&key.sign(&c)).await.unwrap(), c);
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let (key, verifier, _, _) = setup().await;
    let good = key.sign(&claims(600));
    let parts: Vec<&str> = good.split('.').collect();

    // alg: none, with the signature stripped.
    let none_header = B64.encode(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
    let none = format!("{none_header}.{}.", parts[1]);
    assert!(verifier.verify(&none).await.is_err());

    // HS256 "signed" with the public key as the HMAC secret.
    let public = key.signing.verifying_key().to_bytes();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("k1".into());
    let hs =
        jsonwebtoken::encode(&hs_header, &claims(600), &EncodingKey::from_secret(&public)).unwrap();
    assert_eq!(
        verifier.verify(&hs).await.unwrap_err(),
        TokenError::WrongAlgorithm
    );

    // Expired (beyond the leeway) and not yet valid.
    assert_eq!(
        verifier.verify(&key.sign(&claims(-120))).await.unwrap_err(),
        TokenError::Expired
    );
    let mut early = claims(600);
    early.nbf = Some(chrono::Utc::now().timestamp() + 300);
    assert_eq!(
        verifier.verify(&key.sign(&early)).await.unwrap_err(),
        TokenError::NotYetValid
    );

    // Someone else's audience or issuer.
    let mut aud = claims(600);
    aud.aud = "another-app".into();
    assert_eq!(
        verifier.verify(&key.sign(&aud)).await.unwrap_err(),
        TokenError::WrongIssuerOrAudience
    );
    let mut iss = claims(600);
    iss.iss = "https://evil.example".into();
    assert_eq!(
        verifier.verify(&key.sign(&iss)).await.unwrap_err(),
        TokenError::WrongIssuerOrAudience
    );

    // A key we never published.
    let stranger = Key::new("k-unknown");
    assert_eq!(
        verifier
            .verify(&stranger.sign(&claims(600)))
            .await
            .unwrap_err(),
        TokenError::UnknownKid
    );
    // Our kid, another key.
    let impostor = Key::new("k1");
    assert_eq!(
        verifier
            .verify(&impostor.sign(&claims(600)))
            .await
            .unwrap_err(),
        TokenError::Invalid
    );

    // A payload edited after signing: the role raised to admin.
    let mut payload: serde_json::Value =
        serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    payload["role"] = "admin".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(payload.to_string()),
        parts[2]
    );
    assert_eq!(
        verifier.verify(&tampered).await.unwrap_err(),
        TokenError::Invalid
    );

    for garbage in [
        "",
        "abc",
        "a.b.c",
        "....",
        "eyJhbGciOiJFZERTQSJ9.e30",
        &"x".repeat(10_000),
    ] {
        assert!(verifier.verify(garbage).await.is_err(), "{garbage}");
    }
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_made_up_kids_cannot_flood_the_jwks() {
    let (old, verifier, set, fetches) = setup().await;
    // The default floor: at most one refresh per 10 s, whatever the tokens say.
    verifier.verify(&old.sign(&claims(600))).await.unwrap();
    assert_eq!(*fetches.lock().unwrap(), 1);

    // Rotation: the new key is published beside the old one. A verifier outside its floor
    // (a fresh one here) fetches once on the new kid and then knows both keys.
    let new = Key::new("k2");
    set.lock().unwrap().keys.push(new.jwk());
    let rotated = TokenVerifier::new(
        HttpKeySource::new(jwks_server(set.clone(), fetches.clone()).await),
        &AuthConfig::default(),
    );
    let before = *fetches.lock().unwrap();
    rotated.verify(&new.sign(&claims(600))).await.unwrap();
    rotated.verify(&old.sign(&claims(600))).await.unwrap();
    assert_eq!(
        *fetches.lock().unwrap(),
        before + 1,
        "one fetch serves both keys"
    );

    // A hundred tokens with invented kids within the floor cost no fetch at all.
    let before = *fetches.lock().unwrap();
    for i in 0..100 {
        let k = Key::new(&format!("made-up-{i}"));
        assert_eq!(
            rotated.verify(&k.sign(&claims(600))).await.unwrap_err(),
            TokenError::UnknownKid
        );
    }
    assert_eq!(
        *fetches.lock().unwrap(),
        before,
        "made-up kids fetched the JWKS"
    );
    // The first verifier, still inside its floor, does not see the new key yet: that is the
    // price of the floor, bounded by 10 s.
    assert_eq!(
        verifier.verify(&new.sign(&claims(600))).await.unwrap_err(),
        TokenError::UnknownKid
    );
}

#[tokio::test]
async fn unreachable_keys_are_a_distinct_error() {
    let verifier = TokenVerifier::new(
        HttpKeySource::new("http://127.0.0.1:1/jwks.json"),
        &AuthConfig::default(),
    );
    let key = Key::new("k1");
    assert!(matches!(
        verifier.verify(&key.sign(&claims(600))).await.unwrap_err(),
        TokenError::KeysUnavailable(_)
    ));
}

#[tokio::test]
async fn keys_handed_over_in_process_are_seen_as_soon_as_published() {
    let keys = Arc::new(tokio::sync::RwLock::new(JwkSet { keys: vec![] }));
    let verifier = TokenVerifier::new(
        kernel::tokens::StaticKeySource(keys.clone()),
        &AuthConfig::default(),
    );
    let key = Key::new("k1");
    // Verified before the auth service published its key: refused, and nothing is cached for long.
    assert_eq!(
        verifier.verify(&key.sign(&claims(600))).await.unwrap_err(),
        TokenError::UnknownKid
    );
    keys.write().await.keys.push(key.jwk());
    verifier.verify(&key.sign(&claims(600))).await.unwrap();
}

#[tokio::test]
async fn a_remembered_token_still_expires_and_a_retired_key_takes_its_tokens_along() {
    let keys = Arc::new(tokio::sync::RwLock::new(JwkSet { keys: vec![] }));
    let config = AuthConfig {
        leeway_secs: 0,
        ..AuthConfig::default()
    };
    let verifier = TokenVerifier::new(kernel::tokens::StaticKeySource(keys.clone()), &config);
    let old = Key::new("old");
    keys.write().await.keys.push(old.jwk());

    let short = old.sign(&claims(1));
    verifier.verify(&short).await.unwrap();
    verifier.verify(&short).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        verifier.verify(&short).await.unwrap_err(),
        TokenError::Expired
    );

    // Verified (and remembered) under the old key; then the key set moves on without it.
    let long = old.sign(&claims(600));
    verifier.verify(&long).await.unwrap();
    let new = Key::new("new");
    keys.write().await.keys = vec![new.jwk()];
    // A token of the new key makes the verifier read the set again.
    verifier.verify(&new.sign(&claims(600))).await.unwrap();
    assert_eq!(
        verifier.verify(&long).await.unwrap_err(),
        TokenError::UnknownKid
    );
}
