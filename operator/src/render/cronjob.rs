//! A CronJob per scheduled job, each running `protostar job NAME` with the serving release.

use protostar_crds::ScheduledJob;
use serde_json::json;

use super::workload::{self, Process};
use super::{Ctx, Object};
use crate::contract;
use crate::kind::Kind;

pub const COMPONENT: &str = "job";

pub fn name(ctx: &Ctx<'_>, job: &str) -> String {
    ctx.child(&format!("job-{job}"))
}

pub fn render(ctx: &Ctx<'_>, job: &ScheduledJob, version: &str) -> Object {
    let process = Process {
        component: COMPONENT,
        version,
        args: contract::job_args(&job.name),
        needs: contract::JOB_NEEDS,
        extra_env: Vec::new(),
        serves: false,
        resources: None,
    };
    let mut pod = workload::pod_spec(ctx, &process);
    pod["restartPolicy"] = json!("Never");
    Object::new(
        Kind::CronJob,
        json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": ctx.meta(&name(ctx, &job.name), COMPONENT, true),
            "spec": {
                "schedule": job.schedule,
                "suspend": job.suspend,
                // A slow run must not pile up behind itself.
                "concurrencyPolicy": "Forbid",
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": { "spec": {
                    "backoffLimit": 1,
                    "template": {
                        "metadata": { "labels": workload::pod_labels(ctx, &process) },
                        "spec": pod,
                    },
                }},
            },
        }),
    )
}
