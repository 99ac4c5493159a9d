//! The managed Redis: one replica, no persistence. It is only a cache (rate limits, JWKS), so
//! losing it loses nothing and it carries an owner reference like any stateless child.

use protostar_crds::RedisMode;
use serde_json::json;

use super::{Ctx, Object};
use crate::kind::Kind;

pub const IMAGE: &str = "docker.io/library/redis:7.4-alpine";
pub const PORT: i32 = 6379;
pub const COMPONENT: &str = "redis";

pub fn name(ctx: &Ctx<'_>) -> String {
    ctx.child("redis")
}

pub fn render(ctx: &Ctx<'_>) -> Vec<Object> {
    if ctx.spec.redis.mode != RedisMode::Managed {
        return Vec::new();
    }
    let name = name(ctx);
    let resources = ctx.spec.redis.resources.clone().map_or_else(
        || json!({ "requests": { "cpu": "50m", "memory": "64Mi" }, "limits": { "memory": "320Mi" } }),
        |r| serde_json::to_value(r).unwrap_or_default(),
    );
    let labels = ctx.labels(COMPONENT);
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": ctx.meta(&name, COMPONENT, true),
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": ctx.selector(COMPONENT) },
            // A cache: a short gap on update is fine, two copies are pointless.
            "strategy": { "type": "Recreate" },
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "automountServiceAccountToken": false,
                    "securityContext": {
                        "runAsNonRoot": true, "runAsUser": 999, "runAsGroup": 999,
                        "seccompProfile": { "type": "RuntimeDefault" },
                    },
                    "containers": [{
                        "name": "redis",
                        "image": IMAGE,
                        "args": ["--save", "", "--appendonly", "no",
                                 "--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru"],
                        "ports": [{ "name": "redis", "containerPort": PORT }],
                        "readinessProbe": { "tcpSocket": { "port": "redis" }, "periodSeconds": 5 },
                        "livenessProbe": { "tcpSocket": { "port": "redis" }, "periodSeconds": 10 },
                        "resources": resources,
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["ALL"] },
                        },
                        "volumeMounts": [{ "name": "data", "mountPath": "/data" }],
                    }],
                    "volumes": [{ "name": "data", "emptyDir": {} }],
                },
            },
        },
    });
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": ctx.meta(&name, COMPONENT, true),
        "spec": {
            "selector": ctx.selector(COMPONENT),
            "ports": [{ "name": "redis", "port": PORT, "targetPort": "redis" }],
        },
    });
    vec![
        Object::new(Kind::Deployment, deployment),
        Object::new(Kind::Service, service),
    ]
}
