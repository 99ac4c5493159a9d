//! The managed broker: a `RabbitmqCluster` for the RabbitMQ cluster operator.
//!
//! Its queues hold undelivered events, so it has no owner reference. Its default user is the
//! generated broker Secret, so the URL the services read matches the broker's credentials.

use protostar_crds::BrokerMode;
use serde_json::json;

use super::{Ctx, Object, put, secrets};
use crate::kind::Kind;

pub fn cluster_name(ctx: &Ctx<'_>) -> String {
    ctx.child("broker")
}

pub fn render(ctx: &Ctx<'_>) -> Option<Object> {
    if ctx.spec.broker.mode != BrokerMode::Managed {
        return None;
    }
    let managed = &ctx.spec.broker.managed;
    let mut persistence = json!({ "storage": managed.storage.size });
    put(
        &mut persistence,
        "storageClassName",
        managed.storage.storage_class_name.clone().map(Into::into),
    );
    Some(Object::new(
        Kind::RabbitmqCluster,
        json!({
            "apiVersion": Kind::RabbitmqCluster.api_version(),
            "kind": "RabbitmqCluster",
            "metadata": ctx.meta(&cluster_name(ctx), "broker", false),
            "spec": {
                "replicas": managed.replicas,
                "persistence": persistence,
                "secretBackend": { "externalSecret": { "name": secrets::broker_secret(ctx) } },
            },
        }),
    ))
}

/// Ready when the operator reports `AllReplicasReady`.
pub fn is_ready(observed: &serde_json::Value) -> bool {
    observed["status"]["conditions"]
        .as_array()
        .is_some_and(|conds| {
            conds
                .iter()
                .any(|c| c["type"] == "AllReplicasReady" && c["status"] == "True")
        })
}
