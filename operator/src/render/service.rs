//! One ClusterIP Service per target, with its public and admin listeners.

use serde_json::{Value, json};

use super::{Ctx, Object};
use crate::contract;
use crate::kind::Kind;

pub fn name(ctx: &Ctx<'_>, target: &str) -> String {
    ctx.child(target)
}

pub fn render(ctx: &Ctx<'_>, target: &str) -> Object {
    // Every target has both listeners: the gateway forwards `/admin` requests to the
    // targets' admin listeners (NetworkPolicy keeps everyone else off them).
    let ports = vec![
        json!({ "name": "http", "port": contract::PUBLIC_PORT, "targetPort": "http" }),
        json!({ "name": "admin", "port": contract::ADMIN_PORT, "targetPort": "admin" }),
    ];
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
