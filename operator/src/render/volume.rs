//! The audit trail's volume: a PersistentVolumeClaim, created once, with no owner reference, so
//! neither an upgrade nor deleting the Protostar can take the trail with it.

use serde_json::json;

use super::{Ctx, Object, put};
use crate::kind::Kind;

pub const COMPONENT: &str = "audit-trail";

pub fn audit_claim_name(ctx: &Ctx<'_>) -> String {
    ctx.child("audit")
}

pub fn render_audit_claim(ctx: &Ctx<'_>) -> Object {
    let storage = &ctx.spec.audit.storage;
    let mut spec = json!({
        "accessModes": ["ReadWriteOnce"],
        "resources": { "requests": { "storage": storage.size } },
    });
    put(
        &mut spec,
        "storageClassName",
        storage.storage_class_name.clone().map(Into::into),
    );
    Object::new(
        Kind::PersistentVolumeClaim,
        json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": ctx.meta(&audit_claim_name(ctx), COMPONENT, false),
            "spec": spec,
        }),
    )
}
