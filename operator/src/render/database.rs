//! The managed database: a CloudNativePG `Cluster` with a pgvector-capable image.
//!
//! It holds data, so it has no owner reference: deleting the Protostar leaves it (and its
//! volumes) in place. The application role's password comes from the generated Secret.

use protostar_crds::StoreMode;
use serde_json::json;

use super::{Ctx, Object, put, secrets};
use crate::kind::Kind;

pub fn cluster_name(ctx: &Ctx<'_>) -> String {
    ctx.child("db")
}

pub fn render(ctx: &Ctx<'_>) -> Option<Object> {
    if ctx.spec.database.mode != StoreMode::Managed {
        return None;
    }
    let managed = &ctx.spec.database.managed;
    let mut storage = json!({ "size": managed.storage.size });
    put(
        &mut storage,
        "storageClass",
        managed.storage.storage_class_name.clone().map(Into::into),
    );
    Some(Object::new(
        Kind::CnpgCluster,
        json!({
            "apiVersion": Kind::CnpgCluster.api_version(),
            "kind": "Cluster",
            "metadata": ctx.meta(&cluster_name(ctx), "database", false),
            "spec": {
                "instances": managed.instances,
                "imageName": managed.image,
                "storage": storage,
                "bootstrap": { "initdb": {
                    "database": secrets::DB_NAME,
                    "owner": secrets::DB_USER,
                    "secret": { "name": secrets::database_secret(ctx) },
                    // Creating an extension needs a superuser; this runs as one, once.
                    "postInitApplicationSQL": ["CREATE EXTENSION IF NOT EXISTS vector"],
                }},
            },
        }),
    ))
}

/// Ready when every instance is: `status.readyInstances` reaches `spec.instances`.
pub fn is_ready(observed: &serde_json::Value) -> bool {
    let want = observed["spec"]["instances"].as_i64().unwrap_or(1);
    observed["status"]["readyInstances"]
        .as_i64()
        .is_some_and(|n| n >= want)
}
