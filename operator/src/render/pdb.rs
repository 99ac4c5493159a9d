//! A PodDisruptionBudget per target: a voluntary disruption (node drain) takes at most one pod
//! at a time. `maxUnavailable` rather than `minAvailable`, so a one-replica target can still be
//! drained instead of blocking the node forever.

use serde_json::json;

use super::{Ctx, Object};
use crate::kind::Kind;

pub fn render(ctx: &Ctx<'_>, target: &str) -> Object {
    Object::new(
        Kind::PodDisruptionBudget,
        json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": ctx.meta(&ctx.child(target), target, true),
            "spec": {
                "maxUnavailable": 1,
                "selector": { "matchLabels": ctx.selector(target) },
            },
        }),
    )
}
