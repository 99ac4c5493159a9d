//! Gateway API: a `Gateway` when the spec names a class, and two `HTTPRoute`s, one for the
//! public host names and one for the admin host name, each to its own gateway listener, so an
//! overloaded public side never locks the admin out.

use serde_json::{Value, json};

use super::{Ctx, Object, put, service};
use crate::contract;
use crate::kind::Kind;

pub const HTTPS_PORT: i32 = 443;

pub fn gateway_name(ctx: &Ctx<'_>) -> String {
    ctx.name.to_owned()
}

pub fn public_route_name(ctx: &Ctx<'_>) -> String {
    ctx.child("public")
}

pub fn admin_route_name(ctx: &Ctx<'_>) -> String {
    ctx.child("admin")
}

fn public_listener(i: usize) -> String {
    format!("public-{i}")
}

pub fn render_gateway(ctx: &Ctx<'_>) -> Option<Object> {
    let class = ctx.spec.gateway.class_name.as_ref()?;
    let tls = ctx.spec.gateway.tls.as_ref()?;
    let listener = |name: String, host: &str, cert: &str| {
        json!({
            "name": name,
            "hostname": host,
            "port": HTTPS_PORT,
            "protocol": "HTTPS",
            "tls": { "mode": "Terminate", "certificateRefs": [{ "kind": "Secret", "name": cert }] },
            "allowedRoutes": { "namespaces": { "from": "Same" } },
        })
    };
    let hosts = &ctx.spec.hostnames;
    let mut listeners: Vec<Value> = hosts
        .public
        .iter()
        .enumerate()
        .map(|(i, h)| listener(public_listener(i), h, &tls.public_certificate_ref.name))
        .collect();
    listeners.push(listener(
        "admin".into(),
        &hosts.admin,
        &tls.admin_certificate_ref.name,
    ));
    Some(Object::new(
        Kind::Gateway,
        json!({
            "apiVersion": Kind::Gateway.api_version(),
            "kind": "Gateway",
            "metadata": ctx.meta(&gateway_name(ctx), "gateway-api", true),
            "spec": { "gatewayClassName": class, "listeners": listeners },
        }),
    ))
}

fn parent_refs(ctx: &Ctx<'_>, admin: bool) -> Value {
    let gw = &ctx.spec.gateway;
    if let Some(existing) = &gw.existing {
        let mut parent = json!({ "name": existing.name });
        put(
            &mut parent,
            "namespace",
            existing.namespace.clone().map(Into::into),
        );
        let section = if admin {
            &existing.admin_section_name
        } else {
            &existing.public_section_name
        };
        put(&mut parent, "sectionName", section.clone().map(Into::into));
        return json!([parent]);
    }
    let name = gateway_name(ctx);
    if admin {
        json!([{ "name": name, "sectionName": "admin" }])
    } else {
        Value::Array(
            (0..ctx.spec.hostnames.public.len())
                .map(|i| json!({ "name": name, "sectionName": public_listener(i) }))
                .collect(),
        )
    }
}

fn route(ctx: &Ctx<'_>, name: String, admin: bool, hosts: Vec<String>, port: i32) -> Object {
    Object::new(
        Kind::HttpRoute,
        json!({
            "apiVersion": Kind::HttpRoute.api_version(),
            "kind": "HTTPRoute",
            "metadata": ctx.meta(&name, "gateway-api", true),
            "spec": {
                "parentRefs": parent_refs(ctx, admin),
                "hostnames": hosts,
                "rules": [{
                    "matches": [{ "path": { "type": "PathPrefix", "value": "/" } }],
                    "backendRefs": [{ "name": service::name(ctx, contract::GATEWAY), "port": port }],
                }],
            },
        }),
    )
}

pub fn render_routes(ctx: &Ctx<'_>) -> Vec<Object> {
    vec![
        route(
            ctx,
            public_route_name(ctx),
            false,
            ctx.spec.hostnames.public.clone(),
            contract::PUBLIC_PORT,
        ),
        route(
            ctx,
            admin_route_name(ctx),
            true,
            vec![ctx.spec.hostnames.admin.clone()],
            contract::ADMIN_PORT,
        ),
    ]
}

/// A Gateway is ready when its controller says `Programmed`.
pub fn gateway_programmed(observed: &Value) -> bool {
    has_true(&observed["status"]["conditions"], "Programmed")
}

/// A route is ready when every parent accepted it.
pub fn route_accepted(observed: &Value) -> bool {
    observed["status"]["parents"].as_array().is_some_and(|ps| {
        !ps.is_empty() && ps.iter().all(|p| has_true(&p["conditions"], "Accepted"))
    })
}

fn has_true(conditions: &Value, type_: &str) -> bool {
    conditions.as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    })
}
