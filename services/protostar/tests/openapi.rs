//! The API description through the real binary (`serve --target all`): `/api/openapi.json` is
//! served as compiled in, and every (method, path) it documents exists in the running process.
//! Each one is called without a token, path parameters filled with a fresh UUID (or each value
//! of an enum): the answer must not be the "nothing at this address" 404 nor a 405; an
//! operation that documents a required role must say `401`; and whatever the status, the
//! document must list it for that operation. Then a walk through the API with real tokens
//! checks that the answers carry the fields the document names, and no others (a streamed
//! answer's events too, each with the data its event is documented with), and that each
//! documented role is the least one that works (a token of the role below it is `403`).

mod openapi_schema;

mod common;

use common::{PASSWORD, Server, create_admin, data_dir, serve, serve_targets};
use futures::StreamExt;
use kernel::testing::TestDb;
use openapi_schema::{concrete_paths, conforms, sample, template_params};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

async fn ready(server: &Server) -> reqwest::Client {
    let client = kernel::http::client(Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client
            .get(format!("{}/readyz", server.public))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            return client;
        }
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_documented_route_exists_in_the_binary() {
    let db = TestDb::new().await;
    let data = data_dir("openapi");
    let server = serve(&db, &data);
    let client = ready(&server).await;

    let res = client
        .get(format!("{}/api/openapi.json", server.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let served = res.text().await.unwrap();
    assert_eq!(served, gateway::openapi::DOCUMENT);
    let doc: Value = serde_json::from_str(&served).unwrap();
    // The description is the public listener's to give, not the admin's.
    let res = client
        .get(format!("{}/api/openapi.json", server.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let mut calls = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        let base = match item["x-listener"].as_str() {
            Some("admin") => &server.admin,
            _ => &server.public,
        };
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let needs_token = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let json_body = op["requestBody"]["content"]["application/json"].is_object();
            for path in concrete_paths(template, op) {
                calls += 1;
                let what = format!("{} {path}", method.to_uppercase());
                let mut req = client.request(
                    method.to_uppercase().parse().unwrap(),
                    format!("{base}{path}"),
                );
                if json_body {
                    req = req.json(&json!({}));
                }
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                let body = res.text().await.unwrap_or_default();
                assert_ne!(status, 405, "{what}: the method is not served ({body})");
                assert!(
                    !(status == 404
                        && (body.is_empty() || body.contains("nothing at this address"))),
                    "{what} is documented but nothing answers it ({body})"
                );
                if needs_token {
                    assert_eq!(status, 401, "{what} without a token: {body}");
                } else {
                    assert!(status < 500, "{what}: {status} {body}");
                }
                assert!(
                    op["responses"].get(status.to_string()).is_some(),
                    "{what} answered {status}, which its description does not list ({body})"
                );
            }
        }
    }
    assert!(calls > 30, "{calls}");
}

/// What a checked call sends.
enum Body {
    None,
    Json(Value),
    /// A content type and the bytes.
    Raw(String, String),
}

/// Calls on the running binary, each checked against the document.
struct Api<'a> {
    doc: Value,
    client: reqwest::Client,
    server: &'a Server,
}

impl Api<'_> {
    /// The request `op` names, `METHOD /template` with an optional `?query`, `params` filling
    /// the template's parameters in order; and the operation as documented.
    fn request(
        &self,
        op: &str,
        params: &[&str],
        token: Option<&str>,
        body: Body,
    ) -> (reqwest::RequestBuilder, &Value) {
        let (method, target) = op.split_once(' ').unwrap();
        let (template, query) = match target.split_once('?') {
            Some((t, q)) => (t, Some(q)),
            None => (target, None),
        };
        let mut path = template.to_owned();
        for (name, value) in template_params(template).iter().zip(params) {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        if let Some(q) = query {
            path = format!("{path}?{q}");
        }
        let item = &self.doc["paths"][template];
        let operation = &item[method.to_lowercase()];
        assert!(operation.is_object(), "{op} is not documented");
        let base = match item["x-listener"].as_str() {
            Some("admin") => &self.server.admin,
            _ => &self.server.public,
        };
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Raw(ct, bytes) => req.header("content-type", ct).body(bytes),
        };
        (req, operation)
    }

    /// `op` as in [`Api::request`]. The answer must have status `expect`, be documented for
    /// that status, and have the documented fields.
    async fn check(
        &self,
        op: &str,
        params: &[&str],
        token: Option<&str>,
        body: Body,
        expect: u16,
    ) -> Value {
        let (req, operation) = self.request(op, params, token, body);
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = res.text().await.unwrap();
        assert_eq!(status, expect, "{op}: {text}");
        let mut documented = &operation["responses"][status.to_string()];
        if let Some(r) = documented["$ref"].as_str() {
            documented = self.doc.pointer(&r[1..]).unwrap();
        }
        assert!(documented.is_object(), "{op}: {status} is not documented");
        if text.is_empty() {
            assert!(
                documented.get("content").is_none(),
                "{op}: documented with a body, answered without"
            );
            return Value::Null;
        }
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let schema = &documented["content"][media]["schema"];
        assert!(
            schema.is_object(),
            "{op}: {status} answered as {media}, which is not documented"
        );
        let body: Value = serde_json::from_str(&text).unwrap();
        if let Err(e) = conforms(&self.doc, schema, &body, "body") {
            panic!("{op} {status}: {e}\n{body:#}");
        }
        body
    }

    /// `op` asked for `text/event-stream`: a `200` stream, documented as one, whose every event
    /// is named in the stream's `x-events` and carries data of that event's schema. The events
    /// in order, their data parsed.
    async fn check_events(
        &self,
        op: &str,
        params: &[&str],
        token: Option<&str>,
        body: Value,
    ) -> Vec<(String, Value)> {
        let (req, operation) = self.request(op, params, token, Body::Json(body));
        let res = req
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if status != 200 {
            panic!("{op}: {status} {}", res.text().await.unwrap_or_default());
        }
        assert!(
            content_type.starts_with("text/event-stream"),
            "{op}: answered as {content_type}"
        );
        let stream = &operation["responses"]["200"]["content"]["text/event-stream"];
        assert!(stream.is_object(), "{op}: no stream is documented");
        let events: Vec<_> =
            kernel::sse::events(res.bytes_stream(), kernel::sse::DEFAULT_MAX_EVENT_BYTES)
                .map(|e| e.unwrap())
                .collect()
                .await;
        assert!(!events.is_empty(), "{op}: an empty stream");
        events
            .into_iter()
            .map(|e| {
                let schema = &stream["x-events"][e.event.as_str()];
                assert!(
                    schema.is_object(),
                    "{op}: the event `{}` is not documented",
                    e.event
                );
                let data: Value = serde_json::from_str(&e.data)
                    .unwrap_or_else(|err| panic!("{op}: `{}` data is not JSON ({err})", e.event));
                if let Err(err) = conforms(&self.doc, schema, &data, &e.event) {
                    panic!("{op}: {err}\n{data:#}");
                }
                (e.event, data)
            })
            .collect()
    }
}

impl Api<'_> {
    /// Each documented role is the least that works: a token of the role below it is `403`.
    async fn the_role_below_is_refused(&self, below: &[(&str, &str)]) {
        let mut checked = 0;
        for (template, item) in self.doc["paths"].as_object().unwrap() {
            let base = match item["x-listener"].as_str() {
                Some("admin") => &self.server.admin,
                _ => &self.server.public,
            };
            for method in METHODS {
                let op = &item[*method];
                let Some(role) = op["x-required-role"].as_str() else {
                    continue;
                };
                if role == "guest" {
                    // Every token has it: there is no role below.
                    continue;
                }
                let (_, token) = below.iter().find(|(r, _)| *r == role).unwrap();
                for path in concrete_paths(template, op) {
                    checked += 1;
                    let url = format!("{base}{path}");
                    let mut req = self
                        .client
                        .request(method.to_uppercase().parse().unwrap(), url);
                    // A body of the documented shape: the role is the handler's first check,
                    // but an unreadable body is refused before any handler runs.
                    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
                    if schema.is_object() {
                        req = req.json(&sample(&self.doc, schema));
                    }
                    let res = req.bearer_auth(token).send().await.unwrap();
                    let status = res.status();
                    let body = res.text().await.unwrap_or_default();
                    let what = format!("{} {path}", method.to_uppercase());
                    assert_eq!(status, 403, "{what} with a token below {role}: {body}");
                }
            }
        }
        assert!(checked > 20, "{checked}");
    }
}

fn token(pair: &Value) -> String {
    pair["accessToken"].as_str().unwrap().to_owned()
}

/// Signs up, becomes a protostar through an invite, uploads a document, sets up a chatbot that a
/// guest asks and its owner corrects, and has an admin look around: every answer on the way must
/// carry the fields the document names, no others.
#[tokio::test]
async fn answers_have_the_documented_fields() {
    use Body::{Json, None as Nothing};
    let db = TestDb::new().await;
    let data = data_dir("openapi");
    create_admin(&db, &data, "root@example.org");
    // One question for a guest, so that the second shows the quota's refusal.
    let one_question = [("PROTOSTAR_CHAT__QUOTAS__GUEST_TOTAL", "1".to_owned())];
    let server = serve_targets(&db, &data, "all", &one_question);
    let api = Api {
        client: ready(&server).await,
        doc: serde_json::from_str(gateway::openapi::DOCUMENT).unwrap(),
        server: &server,
    };

    api.check("GET /.well-known/jwks.json", &[], None, Nothing, 200)
        .await;
    api.check("GET /readyz", &[], None, Nothing, 200).await;
    let guest = token(
        &api.check("POST /api/auth/guest", &[], None, Nothing, 201)
            .await,
    );
    let weak = json!({"email": "nope", "password": "short"});
    let bad = api
        .check("POST /api/auth/signup", &[], None, Json(weak), 400)
        .await;
    assert_eq!(bad["errors"][0]["field"], "email");
    let signup = json!({"email": "nova@example.org", "password": PASSWORD, "displayName": "Nova"});
    let mut pair = api
        .check("POST /api/auth/signup", &[], None, Json(signup), 201)
        .await;
    let user = token(&pair);
    let reset = json!({"email": "nova@example.org"});
    api.check("POST /api/auth/password-reset", &[], None, Json(reset), 202)
        .await;
    let login = json!({"email": "root@example.org", "password": PASSWORD});
    let root = token(
        &api.check("POST /api/auth/login", &[], None, Json(login), 200)
            .await,
    );

    let me = Some(user.as_str());
    api.check("GET /api/users/me", &[], me, Nothing, 200).await;
    let change = json!({"displayName": "Nova S."});
    api.check("PATCH /api/users/me", &[], me, Json(change), 200)
        .await;
    api.check("GET /api/users/me/export", &[], me, Nothing, 200)
        .await;
    api.check("GET /api/documents", &[], me, Nothing, 200).await;
    api.check("GET /api/notifications/settings", &[], me, Nothing, 403)
        .await;

    let admin = Some(root.as_str());
    api.check("GET /admin/api/users", &[], admin, Nothing, 200)
        .await;
    let two = json!({"count": 2});
    let invites = api
        .check("POST /admin/api/invites", &[], admin, Json(two), 201)
        .await;
    api.check("GET /admin/api/invites", &[], admin, Nothing, 200)
        .await;
    // The second code is revoked (twice: the same answer), and listed so.
    let revoke = "DELETE /admin/api/invites/{id}";
    let second = [invites["invites"][1]["id"].as_str().unwrap()];
    let revoked = api.check(revoke, &second, admin, Nothing, 200).await;
    assert!(revoked["revokedAt"].is_string(), "{revoked}");
    let again = api.check(revoke, &second, admin, Nothing, 200).await;
    assert_eq!(again, revoked);
    let unknown = uuid::Uuid::new_v4().to_string();
    api.check(revoke, &[unknown.as_str()], admin, Nothing, 404)
        .await;
    api.check(revoke, &["not-an-id"], admin, Nothing, 400).await;
    let listed = api
        .check("GET /admin/api/invites", &[], admin, Nothing, 200)
        .await;
    let listed = listed["invites"].as_array().unwrap();
    assert!(listed.contains(&revoked), "{listed:?}");
    assert!(
        listed.iter().any(|i| i["revokedAt"].is_null()),
        "{listed:?}"
    );
    let dead = "GET /admin/api/dead-letters/{schema}";
    api.check(dead, &["chat"], admin, Nothing, 200).await;
    api.check("GET /admin/api/health", &[], admin, Nothing, 200)
        .await;

    let code = json!({"code": invites["invites"][0]["code"]});
    api.check("POST /api/invites/redeem", &[], me, Json(code), 200)
        .await;
    // The new role reaches auth as an event: refresh until a token carries it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while pair["role"] != "protostar" {
        assert!(Instant::now() < deadline, "the role never changed");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let refresh = json!({"refreshToken": pair["refreshToken"]});
        pair = api
            .check("POST /api/auth/refresh", &[], None, Json(refresh), 200)
            .await;
    }
    let protostar = token(&pair);
    api.the_role_below_is_refused(&[
        ("stargazer", &guest),
        ("protostar", &user),
        ("admin", &protostar),
    ])
    .await;
    let owner = Some(protostar.as_str());
    let settings = "/api/notifications/settings";
    api.check(&format!("GET {settings}"), &[], owner, Nothing, 200)
        .await;
    let digest = json!({"mode": "digest", "locale": "en"});
    api.check(&format!("PUT {settings}"), &[], owner, Json(digest), 200)
        .await;
    let hourly = json!({"mode": "hourly"});
    api.check(&format!("PUT {settings}"), &[], owner, Json(hourly), 400)
        .await;

    // The form written out by hand: reqwest is built without its multipart feature.
    let boundary = format!("openapi-{}", uuid::Uuid::new_v4().simple());
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nCV\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cv.md\"\r\n\
         Content-Type: text/markdown\r\n\r\n# Nova\n\nTen years of embedded Rust.\n\r\n--{boundary}--\r\n"
    );
    let multipart = Body::Raw(format!("multipart/form-data; boundary={boundary}"), form);
    let document = api
        .check("POST /api/documents", &[], owner, multipart, 202)
        .await;
    let id = [document["id"].as_str().unwrap()];
    api.check("GET /api/documents/{id}", &id, owner, Nothing, 200)
        .await;
    api.check("POST /api/documents/{id}/reindex", &id, owner, Nothing, 202)
        .await;
    api.check("DELETE /api/documents/{id}", &id, owner, Nothing, 202)
        .await;
    api.check("GET /api/documents/{id}", &id, owner, Nothing, 404)
        .await;

    let nothing = uuid::Uuid::new_v4().to_string();
    // The chatbot: made on its owner's first look, changed, seen by a visitor.
    api.check("GET /api/chatbots/mine", &[], owner, Nothing, 200)
        .await;
    let wrong = json!({"voice": "second_person", "theme": {"accent": "blue"}});
    let bad = api
        .check("PATCH /api/chatbots/mine", &[], owner, Json(wrong), 400)
        .await;
    assert_eq!(bad["errors"].as_array().unwrap().len(), 2, "{bad}");
    let change = json!({
        "slug": "nova-s",
        "greeting": "Ask me about Nova's work.",
        "allowedOrigins": ["https://nova.example"],
        "theme": {"accent": "#0F766E"},
        "talentSearch": true
    });
    let mine = api
        .check("PATCH /api/chatbots/mine", &[], owner, Json(change), 200)
        .await;
    let slug = [mine["slug"].as_str().unwrap()];
    api.check("GET /api/chatbots/{slug}", &slug, None, Nothing, 200)
        .await;
    api.check("GET /api/chatbots/{slug}", &["nobody"], None, Nothing, 404)
        .await;

    // A guest asks its one question: nothing covers it, so nothing is cited.
    let visitor = Some(guest.as_str());
    let ask = "POST /api/chatbots/{slug}/ask";
    let quota = "GET /api/chatbots/{slug}/quota";
    api.check(quota, &slug, visitor, Nothing, 200).await;
    let empty = json!({"question": "  "});
    api.check(ask, &slug, visitor, Json(empty), 400).await;
    let pizza = "What is Nova's favourite pizza topping?";
    let elsewhere = json!({"question": pizza, "conversationId": uuid::Uuid::new_v4().to_string()});
    api.check(ask, &slug, visitor, Json(elsewhere), 404).await;
    let question = json!({"question": pizza});
    let answer = api
        .check(ask, &slug, visitor, Json(question.clone()), 200)
        .await;
    assert_eq!(answer["supported"], false, "{answer}");
    let spent = api.check(quota, &slug, visitor, Nothing, 200).await;
    assert_eq!(spent["remaining"], 0, "{spent}");
    let refused = api.check(ask, &slug, visitor, Json(question), 429).await;
    assert_eq!(
        refused["type"], "https://protostar.dev/problems/quota-exceeded",
        "{refused}"
    );
    api.check("GET /api/chatbots/{slug}/quota", &slug, owner, Nothing, 200)
        .await;

    // The guest's history and thumbs; the owner's correction.
    api.check("GET /api/conversations", &[], visitor, Nothing, 200)
        .await;
    let thread = [answer["conversationId"].as_str().unwrap()];
    let one = "GET /api/conversations/{id}";
    api.check(one, &thread, visitor, Nothing, 200).await;
    api.check(one, &thread, owner, Nothing, 404).await;
    let answer_id = [answer["answerId"].as_str().unwrap()];
    let feedback = "POST /api/answers/{id}/feedback";
    let sideways = json!({"rating": "sideways"});
    api.check(feedback, &answer_id, visitor, Json(sideways), 400)
        .await;
    let down = json!({"rating": "down", "comment": "Not covered."});
    api.check(feedback, &answer_id, visitor, Json(down.clone()), 204)
        .await;
    api.check(feedback, &answer_id, owner, Json(down), 404)
        .await;
    let rated = api.check(one, &thread, visitor, Nothing, 200).await;
    assert_eq!(rated["turns"][0]["feedback"]["rating"], "down", "{rated}");
    let correction = "POST /api/answers/{id}/correction";
    let fix = json!({"answer": "Margherita, always."});
    api.check(
        correction,
        &answer_id,
        owner,
        Json(json!({"answer": ""})),
        400,
    )
    .await;
    api.check(
        correction,
        &[nothing.as_str()],
        owner,
        Json(fix.clone()),
        404,
    )
    .await;
    api.check(correction, &answer_id, owner, Json(fix), 201)
        .await;

    // Once ai has indexed the correction, it answers the question, cited: as JSON, and as a
    // stream whose every event has its documented data.
    let deadline = Instant::now() + Duration::from_secs(90);
    let cited = loop {
        let question = json!({"question": pizza});
        let v = api.check(ask, &slug, owner, Json(question), 200).await;
        if v["citations"].as_array().is_some_and(|c| !c.is_empty()) {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "the correction was never cited: {v}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(cited["citations"][0]["pinned"], true, "{cited}");
    let question = json!({"question": pizza, "conversationId": cited["conversationId"]});
    let events = api.check_events(ask, &slug, owner, question).await;
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"token"), "{names:?}");
    assert!(names.contains(&"citation"), "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let thread = [cited["conversationId"].as_str().unwrap()];
    let told = api.check(one, &thread, owner, Nothing, 200).await;
    assert_eq!(told["turns"].as_array().unwrap().len(), 2, "{told}");

    // What the owner learns, and what a recruiter finds.
    let insights = "GET /api/chatbots/mine/insights";
    let learnt = api
        .check(&format!("{insights}?days=7"), &[], owner, Nothing, 200)
        .await;
    assert!(
        learnt["totals"]["questions"].as_i64().unwrap() >= 3,
        "{learnt}"
    );
    api.check(&format!("{insights}?days=0"), &[], owner, Nothing, 400)
        .await;
    let recruiter = Some(user.as_str());
    let search = "GET /api/talent/search";
    api.check(
        &format!("{search}?q=embedded%20Rust"),
        &[],
        recruiter,
        Nothing,
        200,
    )
    .await;
    api.check(search, &[], recruiter, Nothing, 400).await;

    let nova = [pair["subject"].as_str().unwrap()];
    let role = json!({"role": "protostar"});
    let change = "PATCH /admin/api/users/{id}";
    api.check(change, &nova, admin, Json(role), 200).await;
    let retry = "POST /admin/api/dead-letters/{schema}/{id}/retry";
    api.check(retry, &["users", &nothing], admin, Nothing, 404)
        .await;
    let confirm = json!({"token": "made-up", "password": PASSWORD});
    let bad = "POST /api/auth/password-reset/confirm";
    api.check(bad, &[], None, Json(confirm), 400).await;
    api.check("POST /admin/api/auth/keys/rotate", &[], admin, Nothing, 201)
        .await;

    let out = json!({"refreshToken": pair["refreshToken"]});
    api.check("POST /api/auth/logout", &[], None, Json(out), 204)
        .await;
    api.check("DELETE /api/users/me", &[], owner, Nothing, 202)
        .await;
}
