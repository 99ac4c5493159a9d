//! The whole desired state, and the upgrade rule that orders it.
//!
//! The rule: the services run the last release whose migration succeeded. A new
//! `spec.version` first gets its migration Job; only when that Job has succeeded do the
//! Deployments and CronJobs move to the new image. A failed migration changes nothing that
//! serves.

use super::migration::Phase;
use super::{Ctx, Object};
use super::{
    broker, config, cronjob, database, gateway, hpa, migration, network_policy, pdb, redis,
    service, volume, workload,
};
use crate::contract;

/// Where an upgrade stands, derived from the spec, the status and the migration Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// The release the services run (and are rendered with); `None` before the first
    /// migration has succeeded, when nothing may serve yet.
    pub serving: Option<String>,
    /// The release whose migration Job must exist, if one must.
    pub migrate: Option<String>,
    /// The migration to `spec.version`.
    pub phase: Phase,
}

/// `migrated` is the last release whose migration succeeded (from the status); `phase` is the
/// state of the Job migrating to `spec.version`; `other_running` is true while a migration Job
/// for another release still runs (the version changed again mid-migration): the new Job then
/// waits for it, so two migrations never run at once.
pub fn rollout(
    spec_version: &str,
    migrated: Option<&str>,
    phase: Phase,
    other_running: bool,
) -> Rollout {
    if migrated == Some(spec_version) || phase == Phase::Succeeded {
        return Rollout {
            serving: Some(spec_version.to_owned()),
            migrate: None,
            phase: Phase::Succeeded,
        };
    }
    let wait = other_running && phase == Phase::Absent;
    Rollout {
        serving: migrated.map(str::to_owned),
        migrate: (!wait).then(|| spec_version.to_owned()),
        phase,
    }
}

/// Everything to create or apply, in the order it is written: configuration and data stores
/// first, then the migration, then what serves, then the routes to it.
pub fn desired(ctx: &Ctx<'_>, rollout: &Rollout) -> Vec<Object> {
    let mut out = vec![config::render(ctx), volume::render_audit_claim(ctx)];
    out.extend(database::render(ctx));
    out.extend(broker::render(ctx));
    out.extend(redis::render(ctx));
    out.extend(network_policy::render(ctx));
    if let Some(version) = &rollout.migrate {
        out.push(migration::render(ctx, version));
    }
    for target in contract::TARGETS {
        out.push(service::render(ctx, target));
    }
    if let Some(version) = &rollout.serving {
        for target in contract::TARGETS {
            out.push(workload::render(ctx, target, version));
        }
        for job in &ctx.spec.jobs {
            out.push(cronjob::render(ctx, job, version));
        }
    }
    for target in contract::TARGETS {
        out.push(pdb::render(ctx, target));
        out.extend(hpa::render(ctx, target));
    }
    out.extend(gateway::render_gateway(ctx));
    out.extend(gateway::render_routes(ctx));
    out
}
