//! One Deployment per service target, and the pod template every Protostar process shares.
//!
//! Rolling updates never drop below the wanted replicas (`maxUnavailable: 0`); pods are ready on
//! `/readyz`, restarted on `/healthz`, drain for a few seconds before SIGTERM (so endpoints are
//! gone before the process stops accepting), and spread over nodes.

use protostar_crds::TargetSpec;
use serde_json::{Value, json};

use super::{
    ANNOTATION_CONFIG_HASH, Ctx, LABEL_DATA_CLIENT, LABEL_VERSION, Object, config, put, service,
};
use crate::contract::{self, Needs, env};
use crate::kind::Kind;

/// Replicas when the spec gives none: two, so a rollout or a node drain keeps one serving.
pub const DEFAULT_REPLICAS: i32 = 2;
/// Seconds a pod keeps serving after it is told to stop, while endpoints catch up.
pub const PRE_STOP_SECONDS: i32 = 5;
pub const UID: i64 = 65532;

pub fn name(ctx: &Ctx<'_>, target: &str) -> String {
    ctx.child(target)
}

/// What differs between the processes that share the pod template.
pub struct Process<'a> {
    pub component: &'a str,
    pub version: &'a str,
    pub args: Vec<String>,
    pub needs: Needs,
    pub extra_env: Vec<Value>,
    pub serves: bool,
    pub resources: Option<Value>,
}

/// Labels of a pod: the component's, the release, and the data-store ticket when it needs one.
pub fn pod_labels(ctx: &Ctx<'_>, p: &Process) -> Value {
    let mut labels = ctx.labels(p.component);
    put(&mut labels, LABEL_VERSION, Some(p.version.into()));
    if p.needs.database || p.needs.broker || p.serves {
        put(&mut labels, LABEL_DATA_CLIENT, Some("true".into()));
    }
    labels
}

pub fn pod_spec(ctx: &Ctx<'_>, p: &Process) -> Value {
    let files = config::secret_files(ctx, p.needs);
    let mut env_vars = files.env;
    env_vars.extend(config::settings(ctx, p.needs));
    env_vars.extend(p.extra_env.iter().cloned());
    let mut container = json!({
        "name": p.component,
        "image": ctx.image(p.version),
        "imagePullPolicy": ctx.spec.image.pull_policy.as_str(),
        "command": [contract::BINARY],
        "args": p.args,
        "envFrom": [{ "configMapRef": { "name": config::name(ctx) } }],
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": { "drop": ["ALL"] },
        },
        // The binary needs somewhere to write (temporary files, `data_dir`) with a read-only root.
        "volumeMounts": [
            { "name": "tmp", "mountPath": "/tmp" },
            { "name": "data", "mountPath": contract::DATA_DIR },
        ],
    });
    if !env_vars.is_empty() {
        container["env"] = Value::Array(env_vars);
    }
    if let Some(mounts) = container["volumeMounts"].as_array_mut() {
        mounts.extend(files.mounts);
    }
    put(&mut container, "resources", p.resources.clone());
    if p.serves {
        container["ports"] = json!([
            { "name": "http", "containerPort": contract::PUBLIC_PORT },
            { "name": "admin", "containerPort": contract::ADMIN_PORT },
        ]);
        container["readinessProbe"] = json!({
            "httpGet": { "path": contract::READYZ, "port": "http" },
            "periodSeconds": 5, "failureThreshold": 3,
        });
        container["livenessProbe"] = json!({
            "httpGet": { "path": contract::HEALTHZ, "port": "http" },
            "initialDelaySeconds": 10, "periodSeconds": 10, "failureThreshold": 6,
        });
        // The sleep action needs no shell in the image.
        container["lifecycle"] = json!({ "preStop": { "sleep": { "seconds": PRE_STOP_SECONDS } } });
    }
    // Per-pod state only: everything that must outlive a pod is in the data stores.
    let mut volumes = vec![
        json!({ "name": "tmp", "emptyDir": {} }),
        json!({ "name": "data", "emptyDir": {} }),
    ];
    volumes.extend(files.volumes);
    let mut spec = json!({
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "securityContext": {
            "runAsNonRoot": true, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
            "seccompProfile": { "type": "RuntimeDefault" },
        },
        "containers": [container],
        "volumes": volumes,
    });
    put(&mut spec, "imagePullSecrets", ctx.image_pull_secrets());
    spec
}

fn resources(target: Option<&TargetSpec>) -> Option<Value> {
    let r = target?.resources.as_ref()?;
    serde_json::to_value(r).ok()
}

/// The replica count a Deployment carries; `None` when an autoscaler owns it.
pub fn replicas(target: Option<&TargetSpec>) -> Option<i32> {
    match target {
        Some(t) if t.autoscaling.is_some() => None,
        Some(t) => Some(t.replicas.unwrap_or(DEFAULT_REPLICAS)),
        None => Some(DEFAULT_REPLICAS),
    }
}

/// The audit target appends to a hash chain of files on its volume: exactly one writer. So one
/// replica, and `Recreate` rather than a rolling update — a surge pod could not attach the
/// ReadWriteOnce volume on another node, and two writers would fork the chain. The trail's
/// short gap during an upgrade is covered by the broker, which keeps the events until the new
/// pod consumes them.
fn single_writer(ctx: &Ctx<'_>, spec: &mut Value) {
    let replicas = spec["replicas"].as_i64().unwrap_or(1).min(1);
    spec["replicas"] = json!(replicas);
    spec["strategy"] = json!({ "type": "Recreate" });
    let claim = super::volume::audit_claim_name(ctx);
    if let Some(volumes) = spec["template"]["spec"]["volumes"].as_array_mut() {
        for v in volumes.iter_mut().filter(|v| v["name"] == "data") {
            *v = json!({ "name": "data", "persistentVolumeClaim": { "claimName": claim } });
        }
    }
}

/// The gateway reaches the other targets through their Services.
fn upstreams(ctx: &Ctx<'_>) -> Vec<Value> {
    contract::TARGETS
        .iter()
        .filter(|t| **t != contract::GATEWAY)
        .flat_map(|t| {
            [
                ("public", contract::PUBLIC_PORT),
                ("admin", contract::ADMIN_PORT),
            ]
            .map(|(listener, port)| {
                json!({
                    "name": env::upstream(t, listener),
                    "value": format!("http://{}:{port}", service::name(ctx, t)),
                })
            })
        })
        .collect()
}

pub fn render(ctx: &Ctx<'_>, target: &str, version: &str) -> Object {
    let sizing = ctx.spec.services.for_target(target);
    let needs = contract::needs(target);
    let process = Process {
        component: target,
        version,
        args: contract::serve_args(target),
        needs,
        extra_env: if needs.upstreams {
            upstreams(ctx)
        } else {
            Vec::new()
        },
        serves: true,
        resources: resources(sizing),
    };
    let mut pod = pod_spec(ctx, &process);
    pod["terminationGracePeriodSeconds"] = json!(30);
    pod["topologySpreadConstraints"] = json!([{
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        // A one-node homelab must still schedule.
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": { "matchLabels": ctx.selector(target) },
    }]);
    let mut spec = json!({
        "revisionHistoryLimit": 5,
        "selector": { "matchLabels": ctx.selector(target) },
        "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 0, "maxSurge": 1 } },
        "template": {
            "metadata": {
                "labels": pod_labels(ctx, &process),
                "annotations": { ANNOTATION_CONFIG_HASH: config::hash(ctx) },
            },
            "spec": pod,
        },
    });
    put(&mut spec, "replicas", replicas(sizing).map(Into::into));
    if target == contract::AUDIT {
        single_writer(ctx, &mut spec);
    }
    Object::new(
        Kind::Deployment,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": ctx.meta(&name(ctx, target), target, true),
            "spec": spec,
        }),
    )
}

/// Rolled out and available: the controller has seen this generation, every replica runs the
/// current template, and none is unavailable.
pub fn is_available(observed: &Value) -> bool {
    let generation = observed["metadata"]["generation"].as_i64().unwrap_or(0);
    let seen = observed["status"]["observedGeneration"]
        .as_i64()
        .unwrap_or(-1);
    let want = observed["spec"]["replicas"].as_i64().unwrap_or(1);
    let updated = observed["status"]["updatedReplicas"].as_i64().unwrap_or(0);
    let available = observed["status"]["availableReplicas"]
        .as_i64()
        .unwrap_or(0);
    seen >= generation && updated >= want && available >= want
}

/// The release a Deployment's pods run, from its template's version label.
pub fn version_of(observed: &Value) -> Option<&str> {
    observed["spec"]["template"]["metadata"]["labels"][LABEL_VERSION].as_str()
}
