//! The migration Job of a release: `protostar migrate` with that release's image. One Job per
//! version, so the Job's name says which migration ran and a finished Job is a record of it.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::workload::{self, Process};
use super::{ANNOTATION_MIGRATES_TO, Ctx, Object};
use crate::contract;
use crate::kind::Kind;

pub const COMPONENT: &str = "migrate";
/// Retries of a failing migration before the Job is Failed.
pub const BACKOFF_LIMIT: i32 = 2;
/// A migration that runs longer than this is failed (and leaves the old release serving).
pub const DEADLINE_SECONDS: i64 = 1800;

/// `<instance>-migrate-<version>-<hash>`: at most 63 characters (the Job name becomes a pod
/// label), lower-case, with a digest of the exact version so `1.0.0` and `1-0-0` never share.
pub fn name(ctx: &Ctx<'_>, version: &str) -> String {
    let digest: String = Sha256::digest(version.as_bytes())
        .iter()
        .take(3)
        .map(|b| format!("{b:02x}"))
        .collect();
    let clean: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let prefix = ctx.child(COMPONENT);
    let room = 63usize.saturating_sub(prefix.len() + digest.len() + 2);
    let clean: String = clean.chars().take(room).collect();
    let clean = clean.trim_matches('-');
    if clean.is_empty() {
        format!("{prefix}-{digest}")
    } else {
        format!("{prefix}-{clean}-{digest}")
    }
}

pub fn render(ctx: &Ctx<'_>, version: &str) -> Object {
    let process = Process {
        component: COMPONENT,
        version,
        args: contract::migrate_args(),
        needs: contract::MIGRATE_NEEDS,
        extra_env: Vec::new(),
        serves: false,
        resources: None,
    };
    let mut pod = workload::pod_spec(ctx, &process);
    pod["restartPolicy"] = json!("Never");
    let mut meta = ctx.meta(&name(ctx, version), COMPONENT, true);
    meta["annotations"] = json!({ ANNOTATION_MIGRATES_TO: version });
    Object::new(
        Kind::Job,
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta,
            "spec": {
                "backoffLimit": BACKOFF_LIMIT,
                "activeDeadlineSeconds": DEADLINE_SECONDS,
                "template": {
                    "metadata": { "labels": workload::pod_labels(ctx, &process) },
                    "spec": pod,
                },
            },
        }),
    )
}

/// Where the migration to one version stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// No Job for this version exists.
    Absent,
    Running,
    Succeeded,
    /// Failed, with the Job's own reason and message.
    Failed(String),
}

/// Reads a Job's status: `Complete`/`succeeded` wins, then a `Failed` condition.
pub fn phase(job: Option<&Value>) -> Phase {
    let Some(job) = job else { return Phase::Absent };
    let status = &job["status"];
    let conditions = status["conditions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let holds = |t: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == t && c["status"] == "True")
    };
    if holds("Complete").is_some() || status["succeeded"].as_i64().unwrap_or(0) > 0 {
        return Phase::Succeeded;
    }
    if let Some(failed) = holds("Failed") {
        let reason = failed["reason"].as_str().unwrap_or("Failed");
        let message = failed["message"]
            .as_str()
            .unwrap_or("the migration Job failed");
        return Phase::Failed(format!("{reason}: {message}"));
    }
    Phase::Running
}

/// The release a migration Job migrates to.
pub fn version_of(job: &Value) -> Option<&str> {
    job["metadata"]["annotations"][ANNOTATION_MIGRATES_TO].as_str()
}
