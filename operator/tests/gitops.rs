//! The manifests under gitops/: every kustomization builds, every object is a valid instance
//! of its type, and `kubectl apply --dry-run=client` accepts them.
//!
//! `kubectl apply --dry-run=client` needs an API server for discovery (kind → resource). When
//! `KUBECONFIG` points at a cluster that answers, that cluster is used. Otherwise a stand-in
//! discovery server on loopback answers for exactly the kinds the manifests use (no real API
//! server can run here); object schemas are then checked by the typed round trips below.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use protostar_crds::Protostar;
use serde::Deserialize;
use serde_json::{Value, json};

const KUSTOMIZATIONS: [&str; 3] = [
    "gitops/operator",
    "gitops/instances/homelab",
    "gitops/argocd",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn kubectl_present() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn kustomize(dir: &str) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(repo().join(dir))
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn typed<T: serde::de::DeserializeOwned>(doc: &Value) {
    if let Err(e) = serde_json::from_value::<T>(doc.clone()) {
        panic!(
            "{} {} is not a valid object: {e}",
            doc["kind"], doc["metadata"]["name"]
        );
    }
}

fn check_types(doc: &Value) {
    match doc["kind"].as_str().unwrap_or_default() {
        "Namespace" => typed::<Namespace>(doc),
        "ServiceAccount" => typed::<ServiceAccount>(doc),
        "ClusterRole" => typed::<ClusterRole>(doc),
        "ClusterRoleBinding" => typed::<ClusterRoleBinding>(doc),
        "Role" => typed::<Role>(doc),
        "RoleBinding" => typed::<RoleBinding>(doc),
        "Deployment" => typed::<Deployment>(doc),
        "CustomResourceDefinition" => typed::<CustomResourceDefinition>(doc),
        "Protostar" => typed::<Protostar>(doc),
        // Argo CD publishes no Rust types: check the fields it cannot work without.
        "Application" => {
            for path in [
                &doc["spec"]["project"],
                &doc["spec"]["source"]["repoURL"],
                &doc["spec"]["source"]["path"],
                &doc["spec"]["destination"]["namespace"],
            ] {
                assert!(
                    path.is_string(),
                    "Application {} lacks a field: {doc}",
                    doc["metadata"]["name"]
                );
            }
            let path = doc["spec"]["source"]["path"].as_str().unwrap_or_default();
            assert!(
                repo().join(path).join("kustomization.yaml").is_file(),
                "Application path {path} has no kustomization"
            );
        }
        "AppProject" => assert!(doc["spec"]["destinations"].is_array()),
        other => panic!("unexpected kind {other} in gitops/"),
    }
}

#[test]
fn manifests_build_and_are_valid_objects() {
    if !kubectl_present() {
        println!("skipped: kubectl not found (the kustomizations need `kubectl kustomize`)");
        return;
    }
    for dir in KUSTOMIZATIONS {
        let docs = documents(&kustomize(dir));
        assert!(!docs.is_empty(), "{dir} renders nothing");
        docs.iter().for_each(check_types);
    }
}

#[test]
fn example_instance_is_a_valid_protostar() {
    let text = std::fs::read_to_string(repo().join("gitops/instances/homelab/protostar.yaml"))
        .expect("example present");
    let ps: Protostar = serde_norway::from_str(&text).expect("the example parses as a Protostar");
    assert_eq!(ps.spec.hostnames.public, ["chat.home.example.org"]);
}

#[test]
fn operator_rbac_never_deletes_data_holders() {
    let text =
        std::fs::read_to_string(repo().join("gitops/operator/rbac.yaml")).expect("rbac present");
    let role = documents(&text)
        .into_iter()
        .find(|d| d["kind"] == "ClusterRole")
        .expect("ClusterRole");
    for rule in role["rules"].as_array().into_iter().flatten() {
        let resources: Vec<&str> = rule["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let verbs: Vec<&str> = rule["verbs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if resources.iter().any(|r| {
            [
                "secrets",
                "clusters",
                "rabbitmqclusters",
                "persistentvolumeclaims",
            ]
            .contains(r)
        }) {
            assert!(
                !verbs.contains(&"delete") && !verbs.contains(&"update"),
                "{resources:?} {verbs:?}"
            );
        }
        assert!(
            !verbs.contains(&"*") && !resources.contains(&"*"),
            "no wildcards: {rule}"
        );
    }
}

/// Discovery documents for the kinds the manifests use.
const RESOURCES: [(&str, &str, &str, &str, bool); 11] = [
    // (group, version, kind, plural, namespaced)
    ("", "v1", "Namespace", "namespaces", false),
    ("", "v1", "ServiceAccount", "serviceaccounts", true),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    ("apps", "v1", "Deployment", "deployments", true),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
    ),
    ("protostar.dev", "v1alpha1", "Protostar", "protostars", true),
    (
        "argoproj.io",
        "v1alpha1",
        "Application",
        "applications",
        true,
    ),
    ("argoproj.io", "v1alpha1", "AppProject", "appprojects", true),
];

fn resource_list(group: &str, version: &str) -> Value {
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.0 == group && r.1 == version)
        .map(|r| json!({"name": r.3, "singularName": r.2.to_ascii_lowercase(), "namespaced": r.4, "kind": r.2,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}))
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

fn group_list() -> Value {
    let mut groups: Vec<Value> = Vec::new();
    for (g, v, ..) in RESOURCES.iter().filter(|r| !r.0.is_empty()) {
        if groups.iter().any(|x| x["name"] == *g) {
            continue;
        }
        let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
        groups.push(json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv}));
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

async fn discovery(uri: axum::http::Uri) -> (axum::http::StatusCode, axum::Json<Value>) {
    use axum::http::StatusCode;
    let parts: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let found = match parts.as_slice() {
        ["api"] => Some(json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})),
        ["apis"] => Some(group_list()),
        ["api", v] => Some(resource_list("", v)),
        ["apis", g, v] => Some(resource_list(g, v)),
        _ => None,
    };
    match found {
        Some(doc) => (StatusCode::OK, axum::Json(doc)),
        // Every object is absent, so a client-side dry run reports "created".
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"kind": "Status", "apiVersion": "v1",
            "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})),
        ),
    }
}

fn scratch_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("protostar-gitops-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn real_cluster_answers() -> bool {
    std::env::var_os("KUBECONFIG").is_some()
        && Command::new("kubectl")
            .args(["version", "--request-timeout=3s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_dry_run_accepts_the_manifests() {
    if !kubectl_present() {
        println!("skipped: kubectl not found, so `kubectl apply --dry-run=client` cannot run");
        return;
    }
    let dir = scratch_dir();
    let mut base_args: Vec<String> = vec![
        "--cache-dir".into(),
        dir.join("cache").display().to_string(),
    ];
    let _server = if real_cluster_answers() {
        println!("dry run against the cluster of KUBECONFIG");
        None
    } else {
        println!("no cluster answers: dry run against a stand-in discovery server on loopback");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let app = axum::Router::new().fallback(discovery);
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             contexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: nobody\n\
             current-context: stand-in\nusers:\n- name: nobody\n  user: {{}}\n"
        )).expect("write kubeconfig");
        base_args.extend([
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--validate=false".into(),
        ]);
        Some(server)
    };
    for kustomization in KUSTOMIZATIONS {
        let rendered = dir.join(format!("{}.yaml", kustomization.replace('/', "_")));
        std::fs::write(&rendered, kustomize(kustomization)).expect("write rendered");
        let expected = documents(&std::fs::read_to_string(&rendered).expect("read")).len();
        let mut args = base_args.clone();
        args.extend([
            "apply".into(),
            "--dry-run=client".into(),
            "-f".into(),
            rendered.display().to_string(),
        ]);
        let out = tokio::task::spawn_blocking(move || Command::new("kubectl").args(&args).output())
            .await
            .expect("join")
            .expect("kubectl runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{kustomization}: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        let accepted = stdout.lines().filter(|l| l.contains("(dry run)")).count();
        assert_eq!(
            accepted, expected,
            "{kustomization}: every object accepted:\n{stdout}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn operator_rbac_covers_every_write_the_reconciler_makes() {
    use protostar_operator::kind::Kind;
    let text =
        std::fs::read_to_string(repo().join("gitops/operator/rbac.yaml")).expect("rbac present");
    let role = documents(&text)
        .into_iter()
        .find(|d| d["kind"] == "ClusterRole")
        .expect("ClusterRole");
    let allowed = |group: &str, resource: &str, verb: &str| {
        role["rules"].as_array().into_iter().flatten().any(|r| {
            let has = |field: &str, want: &str| {
                r[field].as_array().into_iter().flatten().any(|v| v == want)
            };
            has("apiGroups", group) && has("resources", resource) && has("verbs", verb)
        })
    };
    for kind in Kind::ALL {
        let (group, _, _, plural) = kind.gvk();
        let mut verbs = vec!["list", "create"];
        if !kind.create_only() {
            verbs.push("patch");
        }
        if kind.prunable() || kind == Kind::Job {
            verbs.push("delete");
        }
        for verb in verbs {
            assert!(
                allowed(group, plural, verb),
                "the operator may not {verb} {plural}"
            );
        }
    }
    assert!(allowed("protostar.dev", "protostars/status", "patch"));
    assert!(allowed("events.k8s.io", "events", "create"));
}
