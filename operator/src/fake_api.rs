//! A stand-in Kubernetes API server for tests and the benchmark.
//!
//! No API server can run on the build machine (nor in CI), so the client talks to this through
//! `tower_test::mock::pair`, the way kube's `controller-rs` tests do. Unlike a scripted mock it
//! keeps the objects it was given, so a sequence of reconciles sees the effects of its own
//! writes, and it records every call (method and path) for the tests to assert on. It models
//! only what the operator relies on: list by label, get, create (409 when present), server-side
//! apply (as a whole-object replace that keeps status), status patch, replace with
//! resourceVersion check, delete, 404 for API groups the cluster does not serve, and watches
//! that stay open without events.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// One request the client made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: String,
    /// Path without the query string.
    pub path: String,
}

impl Call {
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

#[derive(Default)]
struct State {
    /// Collection path (`/apis/apps/v1/namespaces/ns/deployments`) → name → object.
    objects: BTreeMap<String, BTreeMap<String, Value>>,
    calls: Vec<Call>,
    missing_groups: BTreeSet<String>,
    /// Plurals whose writes are refused (as by an admission webhook).
    refused: BTreeSet<String>,
    revision: u64,
}

/// Handle on the fake server's state; cheap to clone.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

/// Collection path of an object from its apiVersion, kind (plural by table) and namespace.
pub fn collection(api_version: &str, plural: &str, namespace: &str) -> String {
    let root = if api_version.contains('/') {
        "apis"
    } else {
        "api"
    };
    format!("/{root}/{api_version}/namespaces/{namespace}/{plural}")
}

fn plural_of(kind: &str) -> String {
    match kind {
        "Protostar" => "protostars".into(),
        "Lease" => "leases".into(),
        "Event" => "events".into(),
        other => crate::kind::Kind::ALL
            .iter()
            .find(|k| k.gvk().2 == other)
            .map(|k| k.gvk().3.to_owned())
            .unwrap_or_else(|| format!("{}s", other.to_ascii_lowercase())),
    }
}

fn status(code: StatusCode, reason: &str, message: &str) -> (StatusCode, Value) {
    (
        code,
        json!({
            "apiVersion": "v1", "kind": "Status", "status": "Failure",
            "message": message, "reason": reason, "code": code.as_u16(),
        }),
    )
}

fn decode_query(q: &str) -> BTreeMap<String, String> {
    let unescape = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (unescape(k), unescape(v)))
        .collect()
}

/// A few of the fields the API server fills in, so that tests see observed objects that are a
/// superset of what was applied, as in a real cluster.
fn server_defaults(plural: &str, obj: &mut Value) {
    obj["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
    obj["metadata"]["managedFields"] =
        json!([{"manager": "protostar-operator", "operation": "Apply"}]);
    let each = |v: &mut Value, f: &dyn Fn(&mut Value)| {
        if let Some(items) = v.as_array_mut() {
            items.iter_mut().for_each(f);
        }
    };
    match plural {
        "deployments" => {
            obj["spec"]["progressDeadlineSeconds"] = json!(600);
            obj["spec"]["template"]["spec"]["dnsPolicy"] = json!("ClusterFirst");
            each(&mut obj["spec"]["template"]["spec"]["containers"], &|c| {
                c["terminationMessagePath"] = json!("/dev/termination-log");
            });
        }
        "services" => {
            obj["spec"]["type"] = json!("ClusterIP");
            obj["spec"]["clusterIP"] = json!("10.152.183.10");
            each(&mut obj["spec"]["ports"], &|p| p["protocol"] = json!("TCP"));
        }
        "httproutes" => {
            each(&mut obj["spec"]["parentRefs"], &|p| {
                p["group"] = json!("gateway.networking.k8s.io");
                p["kind"] = json!("Gateway");
            });
            each(&mut obj["spec"]["rules"], &|r| {
                if let Some(refs) = r["backendRefs"].as_array_mut() {
                    for b in refs {
                        b["group"] = json!("");
                        b["kind"] = json!("Service");
                        b["weight"] = json!(1);
                    }
                }
            });
        }
        _ => {}
    }
}

fn matches_selector(obj: &Value, selector: &str) -> bool {
    selector
        .split(',')
        .filter(|t| !t.is_empty())
        .all(|term| match term.split_once('=') {
            Some((k, v)) => obj["metadata"]["labels"][k] == v,
            None => !obj["metadata"]["labels"][term].is_null(),
        })
}

impl FakeApi {
    /// A client wired to a new fake server, and the handle on that server's state.
    pub fn start() -> (Client, FakeApi) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = FakeApi::default();
        let server = fake.clone();
        tokio::spawn(async move {
            // Watches are held open and never answered, as a quiet API server would.
            let mut watches = Vec::new();
            while let Some((request, respond)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                if parts
                    .uri
                    .query()
                    .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true"))
                {
                    server.state().calls.push(Call {
                        method: "WATCH".into(),
                        path: parts.uri.path().to_owned(),
                    });
                    watches.push(respond);
                    continue;
                }
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let (code, value) = server.serve(parts.method.as_str(), &parts.uri, body);
                let mut response = Response::new(Body::from(value.to_string().into_bytes()));
                *response.status_mut() = code;
                respond.send_response(response);
            }
        });
        (Client::new(service, "default"), fake)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes every path of an API group answer 404, as when its CRDs are not installed.
    pub fn without_group(&self, group: &str) {
        self.state().missing_groups.insert(group.to_owned());
    }

    /// Refuses every write to a resource (by plural) with 422, as an admission webhook might.
    pub fn refuse_writes(&self, plural: &str) {
        self.state().refused.insert(plural.to_owned());
    }

    /// Puts an object in place, as if created earlier.
    pub fn insert(&self, mut obj: Value) {
        let api_version = obj["apiVersion"].as_str().unwrap_or("v1").to_owned();
        let plural = plural_of(obj["kind"].as_str().unwrap_or_default());
        let namespace = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut state = self.state();
        state.revision += 1;
        obj["metadata"]["resourceVersion"] = json!(state.revision.to_string());
        state
            .objects
            .entry(collection(&api_version, &plural, &namespace))
            .or_default()
            .insert(name, obj);
    }

    pub fn get(&self, collection: &str, name: &str) -> Option<Value> {
        self.state().objects.get(collection)?.get(name).cloned()
    }

    /// All objects of a collection.
    pub fn list(&self, collection: &str) -> Vec<Value> {
        self.state()
            .objects
            .get(collection)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Changes an object in place (a test playing the part of another controller).
    pub fn update(&self, collection: &str, name: &str, f: impl FnOnce(&mut Value)) -> bool {
        let mut state = self.state();
        match state
            .objects
            .get_mut(collection)
            .and_then(|m| m.get_mut(name))
        {
            Some(obj) => {
                f(obj);
                true
            }
            None => false,
        }
    }

    /// The calls made since the last take.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.state().calls)
    }

    /// Answers one request (watches excepted); public so that a test can put the same state
    /// behind a real HTTP listener for the operator binary.
    pub fn serve(&self, method: &str, uri: &http::Uri, body: Value) -> (StatusCode, Value) {
        let path = uri.path().to_owned();
        let query = decode_query(uri.query().unwrap_or_default());
        let mut state = self.state();
        state.calls.push(Call {
            method: method.to_owned(),
            path: path.clone(),
        });

        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        // /api/v1/namespaces/NS/PLURAL[/NAME[/SUB]] or /apis/G/V/namespaces/NS/PLURAL[/NAME[/SUB]]
        let (group, rest) = match segments.as_slice() {
            ["api", _v, rest @ ..] => ("", rest),
            ["apis", g, _v, rest @ ..] => (*g, rest),
            _ => return status(StatusCode::NOT_FOUND, "NotFound", "unknown path"),
        };
        if state.missing_groups.contains(group) {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
            );
        }
        let prefix = format!("/{}", segments[..segments.len() - rest.len()].join("/"));
        if let ([plural], "GET") = (rest, method) {
            // A list across all namespaces.
            let selector = query.get("labelSelector").cloned().unwrap_or_default();
            let items: Vec<Value> = state
                .objects
                .iter()
                .filter(|(coll, _)| {
                    coll.starts_with(&format!("{prefix}/namespaces/"))
                        && coll.ends_with(&format!("/{plural}"))
                })
                .flat_map(|(_, objs)| objs.values())
                .filter(|o| matches_selector(o, &selector))
                .cloned()
                .collect();
            let revision = state.revision.to_string();
            return (
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": revision}, "items": items}),
            );
        }
        let (namespace, plural, name, sub) = match rest {
            ["namespaces", ns, plural] => (*ns, *plural, None, None),
            ["namespaces", ns, plural, name] => (*ns, *plural, Some(*name), None),
            ["namespaces", ns, plural, name, sub] => (*ns, *plural, Some(*name), Some(*sub)),
            _ => return status(StatusCode::NOT_FOUND, "NotFound", "unsupported path"),
        };
        if method != "GET" && state.refused.contains(plural) {
            return status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                "denied by the admission webhook",
            );
        }
        let coll = format!("/{}", segments[..segments.len() - rest.len()].join("/"))
            + &format!("/namespaces/{namespace}/{plural}");
        state.revision += 1;
        let revision = state.revision.to_string();
        let objects = state.objects.entry(coll).or_default();

        match (method, name, sub) {
            ("GET", None, _) => {
                let selector = query.get("labelSelector").cloned().unwrap_or_default();
                // The API server leaves apiVersion and kind out of the items of a built-in list.
                let items: Vec<Value> = objects
                    .values()
                    .filter(|o| matches_selector(o, &selector))
                    .map(|o| {
                        let mut item = o.clone();
                        if let Some(map) = item.as_object_mut() {
                            map.remove("apiVersion");
                            map.remove("kind");
                        }
                        item
                    })
                    .collect();
                (
                    StatusCode::OK,
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": revision}, "items": items}),
                )
            }
            ("GET", Some(name), _) => match objects.get(name) {
                Some(obj) => (StatusCode::OK, obj.clone()),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("{plural} \"{name}\" not found"),
                ),
            },
            ("POST", None, _) => {
                let mut obj = body;
                let name = match obj["metadata"]["name"].as_str() {
                    Some(n) => n.to_owned(),
                    None => format!(
                        "{}{revision}",
                        obj["metadata"]["generateName"]
                            .as_str()
                            .unwrap_or("object-")
                    ),
                };
                if objects.contains_key(&name) {
                    return status(
                        StatusCode::CONFLICT,
                        "AlreadyExists",
                        &format!("{plural} \"{name}\" already exists"),
                    );
                }
                obj["metadata"]["name"] = json!(name);
                obj["metadata"]["uid"] = json!(format!("uid-{revision}"));
                obj["metadata"]["resourceVersion"] = json!(revision);
                obj["metadata"]["generation"] = json!(1);
                objects.insert(name, obj.clone());
                (StatusCode::CREATED, obj)
            }
            ("PATCH", Some(name), Some("status")) => match objects.get_mut(name) {
                Some(obj) => {
                    obj["status"] = body["status"].clone();
                    obj["metadata"]["resourceVersion"] = json!(revision);
                    (StatusCode::OK, obj.clone())
                }
                None => status(StatusCode::NOT_FOUND, "NotFound", "not found"),
            },
            ("PATCH", Some(name), None) => {
                let mut obj = body;
                server_defaults(plural, &mut obj);
                let previous = objects.get(name);
                let generation = previous.map_or(1, |p| {
                    let g = p["metadata"]["generation"].as_i64().unwrap_or(1);
                    if p["spec"] == obj["spec"] { g } else { g + 1 }
                });
                if let Some(p) = previous {
                    obj["metadata"]["uid"] = p["metadata"]["uid"].clone();
                    if !p["status"].is_null() {
                        obj["status"] = p["status"].clone();
                    }
                } else {
                    obj["metadata"]["uid"] = json!(format!("uid-{revision}"));
                }
                obj["metadata"]["generation"] = json!(generation);
                obj["metadata"]["resourceVersion"] = json!(revision);
                objects.insert(name.to_owned(), obj.clone());
                (StatusCode::OK, obj)
            }
            ("PUT", Some(name), None) => {
                let mut obj = body;
                let current = objects
                    .get(name)
                    .map(|o| o["metadata"]["resourceVersion"].clone());
                match current {
                    None => status(StatusCode::NOT_FOUND, "NotFound", "not found"),
                    Some(rv) if rv != obj["metadata"]["resourceVersion"] => status(
                        StatusCode::CONFLICT,
                        "Conflict",
                        "the object has been modified",
                    ),
                    Some(_) => {
                        obj["metadata"]["resourceVersion"] = json!(revision);
                        objects.insert(name.to_owned(), obj.clone());
                        (StatusCode::OK, obj)
                    }
                }
            }
            ("DELETE", Some(name), None) => match objects.remove(name) {
                Some(obj) => (StatusCode::OK, obj),
                None => status(StatusCode::NOT_FOUND, "NotFound", "not found"),
            },
            _ => status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "unsupported",
            ),
        }
    }
}
