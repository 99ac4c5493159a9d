//! The OpenAPI description served at `/api/openapi.json` against the gateway's own URL space:
//! it must be a coherent OpenAPI 3.1 document, and every path it documents must be one the
//! gateway answers on the listener the document names — itself, through the health router
//! every listener carries, or by sending it to a target through the route table. A documented
//! path the gateway would answer with `404` fails here. (That the targets behind the table
//! really answer each method is checked through the binary, in
//! `services/protostar/tests/openapi.rs`.)

use axum::body::Body;
use gateway::routes::{self, Listener};
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use tower::ServiceExt;

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];
const ROLES: &[&str] = &["guest", "stargazer", "protostar", "admin"];

fn document() -> Value {
    serde_json::from_str(gateway::openapi::DOCUMENT).expect("openapi.json is JSON")
}

/// Each documented path with its parameters filled in: every value of an enum, a UUID
/// otherwise.
fn concrete_paths(template: &str, item: &Value) -> Vec<String> {
    let params: Vec<&Value> = METHODS
        .iter()
        .filter_map(|m| item.get(*m))
        .flat_map(|op| op["parameters"].as_array().into_iter().flatten())
        .filter(|p| p["in"] == "path")
        .collect();
    let mut out = vec![template.to_owned()];
    for name in path_params(template) {
        let schema = params
            .iter()
            .find(|p| p["name"] == name.as_str())
            .map(|p| &p["schema"])
            .unwrap_or_else(|| panic!("{template}: `{name}` is not declared"));
        let values: Vec<String> = match schema["enum"].as_array() {
            Some(e) => e.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
            None => vec![uuid::Uuid::new_v4().to_string()],
        };
        let placeholder = format!("{{{name}}}");
        out = out
            .iter()
            .flat_map(|p| values.iter().map(|v| p.replace(&placeholder, v)))
            .collect();
    }
    out
}

fn path_params(template: &str) -> Vec<String> {
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(str::to_owned)
        .collect()
}

/// Every `$ref` in the document, wherever it is.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_coherent_openapi_3_1() {
    let doc = document();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "not OpenAPI 3.1: {}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );

    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    assert!(!all_refs.is_empty());
    for r in all_refs {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r} is not local"));
        assert!(doc.pointer(pointer).is_some(), "{r} points at nothing");
    }

    let tags: HashSet<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut ids = HashSet::new();
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 20, "only {} paths", paths.len());
    for (template, item) in paths {
        let listener = item["x-listener"].as_str();
        assert!(
            matches!(listener, Some("public" | "admin")),
            "{template}: x-listener must be public or admin"
        );
        let admin = listener == Some("admin");
        assert_eq!(template.starts_with("/admin/"), admin, "{template}");
        assert_eq!(item.get("servers").is_some(), admin, "{template}: servers");
        let declared: BTreeSet<String> = path_params(template).into_iter().collect();
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let what = format!("{} {template}", method.to_uppercase());
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_owned()), "{what}: operationId {id} twice");
            for tag in op["tags"].as_array().unwrap() {
                assert!(tags.contains(tag.as_str().unwrap()), "{what}: tag {tag}");
            }
            assert_eq!(
                op["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t == "admin listener"),
                admin,
                "{what}: the admin listener tag"
            );
            let in_path: BTreeSet<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| {
                    assert_eq!(p["required"], true, "{what}: path parameters are required");
                    p["name"].as_str().unwrap().to_owned()
                })
                .collect();
            assert_eq!(in_path, declared, "{what}: path parameters");

            // Who may call it: no requirement, or the bearer token with the least role.
            let security = op["security"].as_array().expect("security, even if empty");
            let role = op["x-required-role"].as_str();
            match security.as_slice() {
                [] => assert!(role.is_none(), "{what}"),
                [req] => {
                    let roles = req["bearerAuth"].as_array().expect("bearerAuth");
                    assert_eq!(roles.len(), 1, "{what}");
                    assert!(ROLES.contains(&roles[0].as_str().unwrap()), "{what}");
                    assert_eq!(roles[0].as_str(), role, "{what}: x-required-role");
                }
                _ => panic!("{what}: one security requirement at most"),
            }

            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{what}: no success"
            );
            if role.is_some() {
                assert!(responses.contains_key("401"), "{what}: 401");
                assert!(responses.contains_key("403"), "{what}: 403");
            }
            for (status, res) in responses {
                let code: u16 = status
                    .parse()
                    .unwrap_or_else(|_| panic!("{what}: {status}"));
                let res = match res["$ref"].as_str() {
                    Some(r) => doc.pointer(&r[1..]).unwrap(),
                    None => res,
                };
                // Errors are problems, except the health pages' own "not ready" answers.
                let problem = res["content"]["application/problem+json"].is_object();
                if code >= 400 && !(code == 503 && matches!(id, "readyz" | "adminHealth")) {
                    assert!(problem, "{what} {code}: not a problem+json");
                }
                if code < 400 {
                    assert!(!problem, "{what} {code}");
                }
            }
        }
    }
}

#[tokio::test]
async fn every_documented_path_is_answered_on_its_listener() {
    let doc = document();
    let health = kernel::telemetry::health_router(
        kernel::telemetry::Metrics::new(),
        kernel::telemetry::Readiness::default(),
    );
    let mut checked = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        let listener = match item["x-listener"].as_str() {
            Some("admin") => Listener::Admin,
            _ => Listener::Public,
        };
        for path in concrete_paths(template, item) {
            checked += 1;
            let own = match listener {
                Listener::Public => path == routes::OPENAPI,
                Listener::Admin => path == routes::ADMIN_HEALTH,
            };
            if own || routes::find(listener, &path).is_some() {
                continue;
            }
            // Not the gateway's nor a target's: only the health router may answer it.
            let res = health
                .clone()
                .oneshot(axum::http::Request::get(&path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_ne!(
                res.status(),
                404,
                "{template} ({path}) is documented on the {listener:?} listener, where nothing answers it"
            );
        }
    }
    // The six schemas of dead letters, each a path of its own.
    assert!(checked > 30, "{checked}");
}

#[test]
fn the_check_catches_a_path_nothing_answers() {
    // The same expansion and table as above, on paths that must fail it.
    assert!(routes::find(Listener::Public, "/api/nothing-here").is_none());
    assert!(routes::find(Listener::Public, "/admin/api/health").is_none());
    assert!(routes::find(Listener::Admin, "/admin/api/dead-letters/psych2").is_none());
    let item = serde_json::json!({"get": {"parameters": [
        {"name": "schema", "in": "path", "schema": {"enum": ["auth", "users"]}},
        {"name": "id", "in": "path", "schema": {"type": "string"}}
    ]}});
    let paths = concrete_paths("/admin/api/dead-letters/{schema}/{id}/retry", &item);
    assert_eq!(paths.len(), 2);
    assert!(paths[0].starts_with("/admin/api/dead-letters/auth/"));
    assert!(paths[1].starts_with("/admin/api/dead-letters/users/"));
    assert!(!paths.iter().any(|p| p.contains('{')));
}
