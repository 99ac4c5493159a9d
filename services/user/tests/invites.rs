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

/// Invite codes made by `admin`, with their ids: `(id, code)`.
async fn invites_with_ids(
    app: &App,
    admin: &Session,
    count: u32,
    uses: u32,
) -> Vec<(String, String)> {
    let res = app
        .call(
            Method::POST,
            "/admin/api/invites",
            Some(&admin.access),
            Some(json!({"count": count, "uses": uses, "expiresInDays": 7})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    v["invites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_owned(),
                i["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn revoke(app: &App, token: Option<&str>, id: &str) -> reqwest::Response {
    app.call(
        Method::DELETE,
        &format!("/admin/api/invites/{id}"),
        token,
        None,
    )
    .await
}

async fn listed(app: &App, admin: &Session) -> Vec<Value> {
    let res = app
        .call(Method::GET, "/admin/api/invites", Some(&admin.access), None)
        .await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["invites"]
        .as_array()
        .unwrap()
        .clone()
}

/// The parts of a problem that say what went wrong (not which request it was).
async fn problem(res: reqwest::Response) -> Value {
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let v: Value = res.json().await.unwrap();
    json!({"type": v["type"], "title": v["title"], "status": v["status"], "detail": v["detail"]})
}

async fn revoking_ends_a_code(mode: Mode) {
    let app = spawn(mode).await;
    let admin = app.admin().await;
    let invites = invites_with_ids(&app, &admin, 3, 2).await;
    let (revoked_id, revoked_code) = &invites[0];
    let (partly_id, partly_code) = &invites[1];

    // Only admins: no token, a stargazer, a protostar are refused, and nothing changes.
    let stargazer = app.signup("not-an-admin@example.org").await;
    let protostar = app.protostar(&admin, "nor-this@example.org").await;
    assert_eq!(
        revoke(&app, None, revoked_id).await.status(),
        401,
        "{mode:?}"
    );
    for who in [&stargazer, &protostar] {
        let res = revoke(&app, Some(&who.access), revoked_id).await;
        assert_eq!(res.status(), 403, "{mode:?}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    assert!(
        listed(&app, &admin)
            .await
            .iter()
            .all(|i| i["revokedAt"].is_null())
    );

    // Revoked: the answer is the invite, marked with when.
    let res = revoke(&app, Some(&admin.access), revoked_id).await;
    assert_eq!(res.status(), 200, "{mode:?}");
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["id"], revoked_id.as_str());
    assert_eq!(first["usesLeft"], 2);
    assert!(first["revokedAt"].is_string(), "{first}");
    // Twice is fine: the same answer, the first revocation's time, one audit record.
    let res = revoke(&app, Some(&admin.access), revoked_id).await;
    assert_eq!(res.status(), 200, "{mode:?}");
    assert_eq!(res.json::<Value>().await.unwrap(), first);
    let audited = app.outbox("users", "audit.invite_revoked").await;
    assert_eq!(audited.len(), 1, "{mode:?}");
    assert_eq!(audited[0]["data"]["actor"], admin.id.as_str());
    assert_eq!(audited[0]["data"]["target"], revoked_id.as_str());

    // A revoked code answers exactly as a made-up one.
    let hopeful = app.signup("too-late@example.org").await;
    let refused = problem(redeem(&app, &hopeful, revoked_code).await).await;
    let unknown = problem(redeem(&app, &hopeful, "ZZZZ-ZZZZ-ZZZZ-ZZZZ").await).await;
    assert_eq!(refused["status"], 404, "{refused}");
    assert_eq!(refused, unknown);
    assert!(app.outbox("users", "invite.redeemed").await.is_empty());

    // A code used once and then revoked keeps its past redemption and loses its last use.
    assert_eq!(redeem(&app, &hopeful, partly_code).await.status(), 200);
    let res = revoke(&app, Some(&admin.access), partly_id).await;
    assert_eq!(res.status(), 200);
    let other = app.signup("second-too-late@example.org").await;
    assert_eq!(redeem(&app, &other, partly_code).await.status(), 404);
    // The third code is untouched.
    assert_eq!(redeem(&app, &other, &invites[2].1).await.status(), 200);

    // The list shows both as revoked, with when; the third as not revoked.
    let list = listed(&app, &admin).await;
    assert_eq!(list.len(), 3);
    let find = |id: &str| list.iter().find(|i| i["id"] == id).unwrap().clone();
    assert_eq!(find(revoked_id), first);
    let partly = find(partly_id);
    assert!(partly["revokedAt"].is_string(), "{partly}");
    assert_eq!(partly["usesLeft"], 1);
    assert!(find(&invites[2].0)["revokedAt"].is_null());

    // An unknown id is 404; a malformed one 400, both problems.
    let nothing = uuid::Uuid::new_v4().to_string();
    let res = revoke(&app, Some(&admin.access), &nothing).await;
    assert_eq!(res.status(), 404, "{mode:?}");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = revoke(&app, Some(&admin.access), "not-a-uuid").await;
    assert_eq!(res.status(), 400, "{mode:?}");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn revoking_ends_a_code_in_one_process() {
    revoking_ends_a_code(Mode::All).await;
}

#[tokio::test]
async fn revoking_ends_a_code_in_separate_processes() {
    revoking_ends_a_code(Mode::Split).await;
}

/// Backends of this test's database waiting for a row (another transaction's row lock).
async fn waiting(app: &App) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
         AND wait_event_type = 'Lock' AND wait_event IN ('transactionid', 'tuple')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn until_waiting(app: &App, n: i64) {
    assert!(
        common::eventually(Duration::from_secs(20), || async {
            waiting(app).await == n
        })
        .await,
        "never {n} waiting"
    );
}

/// A redemption in flight when a revocation commits cannot take the code: both wait for the
/// invite's row, the revocation first; once it commits, the redemption finds the code revoked.
#[tokio::test]
async fn a_redemption_waiting_behind_a_revocation_is_refused() {
    let app = spawn(Mode::All).await;
    let admin = app.admin().await;
    let (id, code) = invites_with_ids(&app, &admin, 1, 5).await.remove(0);
    let s = app.signup("in-flight@example.org").await;
    // `user.registered` applied first: applied later, it would queue for the profile row the
    // waiting redemption holds, a third waiter that keeps the count below from reaching 2.
    let registered = common::eventually(Duration::from_secs(20), || async {
        let res = app
            .call(Method::GET, "/api/users/me", Some(&s.access), None)
            .await;
        let me: Value = res.json().await.unwrap_or_default();
        me["email"] == "in-flight@example.org"
    })
    .await;
    assert!(registered, "user.registered never reached the profile");

    // Something else holds the invite's row, so that both calls queue for it in turn.
    let mut holder = kernel::db::begin(&app.pool).await.unwrap();
    sqlx::query("SELECT 1 FROM users.invites WHERE id = $1::uuid FOR UPDATE")
        .bind(&id)
        .execute(&mut *holder)
        .await
        .unwrap();
    // The revocation queues first, the redemption behind it; then the row is let go.
    let revoking = async { revoke(&app, Some(&admin.access), &id).await.status() };
    let redeeming = async {
        until_waiting(&app, 1).await;
        let redeeming = async { redeem(&app, &s, &code).await.status() };
        let release = async {
            until_waiting(&app, 2).await;
            holder.commit().await.unwrap();
        };
        tokio::join!(redeeming, release).0
    };
    let (revoked, redeemed) = tokio::join!(revoking, redeeming);
    assert_eq!(revoked, 200);
    assert_eq!(redeemed, 404);
    let left: i32 = sqlx::query_scalar("SELECT uses_left FROM users.invites")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 5);
    let redemptions: i64 = sqlx::query_scalar("SELECT count(*) FROM users.redemptions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(redemptions, 0);
}

/// Redemptions racing a revocation: each either took a use before the revocation committed or
/// is refused; uses taken and uses left always add up, and nothing is redeemed afterwards.
#[tokio::test]
async fn redemptions_racing_a_revocation_stay_consistent() {
    let app = spawn(Mode::All).await;
    let admin = app.admin().await;
    let (id, code) = invites_with_ids(&app, &admin, 1, 20).await.remove(0);
    let mut sessions = Vec::new();
    for i in 0..10 {
        sessions.push(app.signup(&format!("racing-revoke-{i}@example.org")).await);
    }
    let redemptions = futures::future::join_all(sessions.iter().map(|s| redeem(&app, s, &code)));
    let (results, revoked) = tokio::join!(redemptions, revoke(&app, Some(&admin.access), &id));
    assert_eq!(revoked.status(), 200);
    let won = results.iter().filter(|r| r.status() == 200).count() as i64;
    assert!(
        results
            .iter()
            .all(|r| r.status() == 200 || r.status() == 404),
        "{:?}",
        results.iter().map(|r| r.status()).collect::<Vec<_>>()
    );
    let (left, recorded): (i32, i64) = sqlx::query_as(
        "SELECT uses_left, (SELECT count(*) FROM users.redemptions) FROM users.invites",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(recorded, won);
    assert_eq!(i64::from(left) + won, 20);
    let late = app.signup("after-the-race@example.org").await;
    assert_eq!(redeem(&app, &late, &code).await.status(), 404);
}
