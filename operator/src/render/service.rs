//! One ClusterIP Service per target; the gateway's also exposes the admin listener.

use serde_json::{Value, json};

use super::{Ctx, Object};
use crate::contract;
use crate::kind::Kind;

pub fn name(ctx: &Ctx<'_>, target: &str) -> String {
    ctx.child(target)
}

pub fn render(ctx: &Ctx<'_>, target: &str) -> Object {
    let mut ports =
        vec![json!({ "name": "http", "port": contract::PUBLIC_PORT, "targetPort": "http" })];
    if target == contract::GATEWAY {
        ports.push(json!({ "name": "admin", "port": contract::ADMIN_PORT, "targetPort": "admin" }));
    }
    Object::new(
        Kind::Service,
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": ctx.meta(&name(ctx, target), target, true),
            "spec": { "selector": ctx.selector(target), "ports": Value::Array(ports) },
        }),
    )
}
