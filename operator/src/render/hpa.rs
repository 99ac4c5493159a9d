//! A HorizontalPodAutoscaler for targets that ask for autoscaling (their Deployment then
//! carries no replica count, so the two never fight).

use serde_json::json;

use super::{Ctx, Object, workload};
use crate::kind::Kind;

pub fn render(ctx: &Ctx<'_>, target: &str) -> Option<Object> {
    let auto = ctx.spec.services.for_target(target)?.autoscaling.as_ref()?;
    Some(Object::new(
        Kind::HorizontalPodAutoscaler,
        json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": ctx.meta(&ctx.child(target), target, true),
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": workload::name(ctx, target),
                },
                "minReplicas": auto.min_replicas,
                "maxReplicas": auto.max_replicas,
                "metrics": [{
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": auto.target_cpu_utilization_percentage,
                        },
                    },
                }],
            },
        }),
    ))
}
