//! NetworkPolicies: only the gateway is reachable from outside; the other targets only from
//! this instance's pods, their admin listeners only from the gateway and from the targets that
//! call their internal API; the data stores only from the pods that use them (plus what their
//! own operators need to manage them).

use protostar_crds::{BrokerMode, RedisMode, StoreMode};
use serde_json::{Value, json};

use super::{
    Ctx, LABEL_COMPONENT, LABEL_DATA_CLIENT, LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGER, Object,
};
use crate::contract;
use crate::kind::Kind;

fn policy(ctx: &Ctx<'_>, suffix: &str, pod_selector: Value, ingress: Value) -> Object {
    Object::new(
        Kind::NetworkPolicy,
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": ctx.meta(&ctx.child(suffix), "network", true),
            "spec": { "podSelector": pod_selector, "policyTypes": ["Ingress"], "ingress": ingress },
        }),
    )
}

fn data_clients(ctx: &Ctx<'_>) -> Value {
    json!({ "podSelector": { "matchLabels": { LABEL_INSTANCE: ctx.name, LABEL_DATA_CLIENT: "true" } } })
}

pub fn render(ctx: &Ctx<'_>) -> Vec<Object> {
    let mut out = vec![
        // Everything of this instance refuses ingress unless a policy below lets it in.
        policy(
            ctx,
            "default-deny",
            json!({ "matchLabels": { LABEL_INSTANCE: ctx.name, LABEL_MANAGED_BY: MANAGER } }),
            json!([]),
        ),
        // The gateway is the one door: from anywhere (the Gateway's data plane lives in
        // another namespace, often on the host network).
        policy(
            ctx,
            "gateway",
            json!({ "matchLabels": ctx.selector(contract::GATEWAY) }),
            json!([{ "ports": [
                { "protocol": "TCP", "port": contract::PUBLIC_PORT },
                { "protocol": "TCP", "port": contract::ADMIN_PORT },
            ]}]),
        ),
        // The other targets: their API only from this instance's pods, their admin API only
        // from the gateway.
        policy(
            ctx,
            "services",
            json!({
                "matchLabels": { LABEL_INSTANCE: ctx.name },
                "matchExpressions": [{
                    "key": LABEL_COMPONENT,
                    "operator": "In",
                    "values": contract::TARGETS.iter().filter(|t| **t != contract::GATEWAY).collect::<Vec<_>>(),
                }],
            }),
            json!([
                {
                    "from": [{ "podSelector": { "matchLabels": { LABEL_INSTANCE: ctx.name } } }],
                    "ports": [{ "protocol": "TCP", "port": contract::PUBLIC_PORT }],
                },
                {
                    "from": [{ "podSelector": { "matchLabels": ctx.selector(contract::GATEWAY) } }],
                    "ports": [{ "protocol": "TCP", "port": contract::ADMIN_PORT }],
                },
            ]),
        ),
    ];
    // A target that calls another's internal API (chat asks ai for answers) reaches that
    // target's admin listener, and nothing else of it beyond what every pod may reach.
    for callee in contract::TARGETS {
        let callers: Vec<&str> = contract::TARGETS
            .into_iter()
            .filter(|t| contract::needs(t).calls.contains(&callee))
            .collect();
        if callers.is_empty() {
            continue;
        }
        out.push(policy(
            ctx,
            &format!("internal-{callee}"),
            json!({ "matchLabels": ctx.selector(callee) }),
            json!([{
                "from": [{ "podSelector": {
                    "matchLabels": { LABEL_INSTANCE: ctx.name },
                    "matchExpressions": [{ "key": LABEL_COMPONENT, "operator": "In", "values": callers }],
                } }],
                "ports": [{ "protocol": "TCP", "port": contract::ADMIN_PORT }],
            }]),
        ));
    }
    if ctx.spec.redis.mode == RedisMode::Managed {
        out.push(policy(
            ctx,
            "redis",
            json!({ "matchLabels": ctx.selector(super::redis::COMPONENT) }),
            json!([{ "from": [data_clients(ctx)], "ports": [{ "protocol": "TCP", "port": super::redis::PORT }] }]),
        ));
    }
    if ctx.spec.database.mode == StoreMode::Managed {
        let cluster = super::database::cluster_name(ctx);
        let members = json!({ "podSelector": { "matchLabels": { "cnpg.io/cluster": cluster } } });
        out.push(policy(
            ctx,
            "database",
            json!({ "matchLabels": { "cnpg.io/cluster": cluster } }),
            json!([
                { "from": [data_clients(ctx)], "ports": [{ "protocol": "TCP", "port": 5432 }] },
                // Replication between instances.
                { "from": [members] },
                // CloudNativePG's operator polls each instance manager.
                { "from": [{ "namespaceSelector": {} }], "ports": [{ "protocol": "TCP", "port": 8000 }] },
            ]),
        ));
    }
    if ctx.spec.broker.mode == BrokerMode::Managed {
        let cluster = super::broker::cluster_name(ctx);
        let members =
            json!({ "podSelector": { "matchLabels": { "app.kubernetes.io/name": cluster } } });
        out.push(policy(
            ctx,
            "broker",
            json!({ "matchLabels": { "app.kubernetes.io/name": cluster } }),
            json!([
                { "from": [data_clients(ctx)], "ports": [{ "protocol": "TCP", "port": 5672 }] },
                // Clustering between nodes.
                { "from": [members] },
                // The RabbitMQ operator uses the management API.
                { "from": [{ "namespaceSelector": {} }], "ports": [{ "protocol": "TCP", "port": 15672 }] },
            ]),
        ));
    }
    out
}
