//! Every endpoint × a caller without the right: no token → 401; a role too low → 403; another
//! account's things are out of reach (404 or untouched). Run in both deployment shapes.

mod common;

use common::{Mode, Session, spawn};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Nobody,
    Guest,
    Stargazer,
    Protostar,
}

async fn access_is_refused_to_the_wrong_callers(mode: Mode) {
    let app = spawn(mode).await;
    let admin = app.admin().await;
    let victim = app.signup("victim@example.org").await;
    let guest = app.guest().await;
    let stargazer = app.signup("stargazer@example.org").await;
    let protostar = app.protostar(&admin, "protostar@example.org").await;
    let token = |who: Who| -> Option<String> {
        match who {
            Who::Nobody => None,
            Who::Guest => Some(guest.clone()),
            Who::Stargazer => Some(stargazer.access.clone()),
            Who::Protostar => Some(protostar.access.clone()),
        }
    };
    let victim_path = format!("/admin/api/users/{}", victim.id);
    let invite: Value = app
        .call(
            Method::POST,
            "/admin/api/invites",
            Some(&admin.access),
            Some(json!({"count": 1})),
        )
        .await
        .json()
        .await
        .unwrap();
    let invite_path = format!(
        "/admin/api/invites/{}",
        invite["invites"][0]["id"].as_str().unwrap()
    );
    // (method, path, body, the lowest caller who may use it: everyone below is refused)
    let table: Vec<(Method, String, Option<Value>, Who)> = vec![
        (Method::GET, "/api/users/me".into(), None, Who::Stargazer),
        (
            Method::PATCH,
            "/api/users/me".into(),
            Some(json!({"displayName": "x"})),
            Who::Stargazer,
        ),
        (Method::DELETE, "/api/users/me".into(), None, Who::Stargazer),
        (
            Method::GET,
            "/api/users/me/export".into(),
            None,
            Who::Stargazer,
        ),
        (
            Method::POST,
            "/api/invites/redeem".into(),
            Some(json!({"code": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"})),
            Who::Stargazer,
        ),
        (
            Method::POST,
            "/admin/api/invites".into(),
            Some(json!({"count": 1})),
            Who::Protostar,
        ),
        (
            Method::GET,
            "/admin/api/invites".into(),
            None,
            Who::Protostar,
        ),
        (Method::DELETE, invite_path.clone(), None, Who::Protostar),
        (Method::GET, "/admin/api/users".into(), None, Who::Protostar),
        (
            Method::PATCH,
            victim_path.clone(),
            Some(json!({"role": "admin"})),
            Who::Protostar,
        ),
        (
            Method::POST,
            "/admin/api/auth/keys/rotate".into(),
            None,
            Who::Protostar,
        ),
        (
            Method::GET,
            "/admin/api/dead-letters/users".into(),
            None,
            Who::Protostar,
        ),
        (
            Method::GET,
            "/admin/api/dead-letters/auth".into(),
            None,
            Who::Protostar,
        ),
    ];
    let mut checked = 0;
    for (method, path, body, lowest) in &table {
        for who in [Who::Nobody, Who::Guest, Who::Stargazer, Who::Protostar] {
            // `lowest` is the last refused caller for admin endpoints, the first allowed one
            // for the others.
            let refused = if *lowest == Who::Protostar {
                who <= *lowest
            } else {
                who < *lowest
            };
            if !refused {
                continue;
            }
            let res = app
                .call(method.clone(), path, token(who).as_deref(), body.clone())
                .await;
            let expected = if who == Who::Nobody { 401 } else { 403 };
            assert_eq!(
                res.status().as_u16(),
                expected,
                "{mode:?} {who:?} {method} {path}"
            );
            assert_eq!(res.headers()["content-type"], "application/problem+json");
            checked += 1;
        }
    }
    assert_eq!(checked, 5 * 2 + 8 * 4);

    // A stargazer's own token with the role edited to admin: the signature no longer holds.
    let forged = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let parts: Vec<&str> = stargazer.access.split('.').collect();
        let mut claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
        claims["role"] = json!("admin");
        format!(
            "{}.{}.{}",
            parts[0],
            b64.encode(claims.to_string()),
            parts[2]
        )
    };
    for (method, path, body, _) in &table {
        let res = app
            .call(method.clone(), path, Some(&forged), body.clone())
            .await;
        assert_eq!(
            res.status(),
            401,
            "{mode:?} forged admin token on {method} {path}"
        );
    }

    // Nothing the refused calls tried happened: the victim is still a stargazer with a profile.
    let me: Value = app
        .call(Method::GET, "/api/users/me", Some(&victim.access), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], victim.id.as_str());
    let res = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "victim@example.org", "password": common::PASSWORD})),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["role"], "stargazer");
    // ... and the invite is not revoked.
    let list: Value = app
        .call(Method::GET, "/admin/api/invites", Some(&admin.access), None)
        .await
        .json()
        .await
        .unwrap();
    assert!(list["invites"][0]["revokedAt"].is_null(), "{list}");

    // Another account's changes go to the caller's own profile only.
    let res = app
        .call(
            Method::PATCH,
            "/api/users/me",
            Some(&stargazer.access),
            Some(json!({"displayName": "Mallory"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let me: Value = app
        .call(Method::GET, "/api/users/me", Some(&victim.access), None)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(me["displayName"], "Mallory");
    // Admins get 404 for what does not exist, and cannot change their own role.
    let res = app
        .call(
            Method::PATCH,
            &format!("/admin/api/users/{}", uuid::Uuid::now_v7()),
            Some(&admin.access),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(res.status(), 404);
    let res = app
        .call(
            Method::PATCH,
            &format!("/admin/api/users/{}", admin.id),
            Some(&admin.access),
            Some(json!({"role": "stargazer"})),
        )
        .await;
    assert_eq!(res.status(), 409);
    let res = app
        .call(Method::GET, "/admin/api/users", Some(&admin.access), None)
        .await;
    assert_eq!(res.status(), 200);
    let listed = res.json::<Value>().await.unwrap()["users"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(listed, 4);
    let _: &Session = &protostar;
}

#[tokio::test]
async fn access_is_refused_to_the_wrong_callers_in_one_process() {
    access_is_refused_to_the_wrong_callers(Mode::All).await;
}

#[tokio::test]
async fn access_is_refused_to_the_wrong_callers_in_separate_processes() {
    access_is_refused_to_the_wrong_callers(Mode::Split).await;
}
