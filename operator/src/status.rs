//! Status: conditions computed from what was observed, one per component plus `Ready`,
//! `Progressing` and `Degraded`, each stamped with the generation it describes.
//!
//! Pure: the clock is handed in, and a condition whose status did not change keeps its
//! `lastTransitionTime`, so a converged resource computes an identical status and needs no write.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use protostar_crds::{BrokerMode, ProtostarStatus, RedisMode, StoreMode};
use serde_json::Value;

use crate::contract;
use crate::kind::Kind;
use crate::render::migration::Phase;
use crate::render::plan::Rollout;
use crate::render::{Ctx, broker, database, gateway, redis, workload};

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const MIGRATED: &str = "Migrated";

/// Objects read back from the API server, by kind, and the kinds it does not serve.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    pub by_kind: BTreeMap<Kind, Vec<Value>>,
    pub missing: Vec<Kind>,
}

impl Observed {
    pub fn get(&self, kind: Kind, name: &str) -> Option<&Value> {
        self.by_kind
            .get(&kind)?
            .iter()
            .find(|o| o["metadata"]["name"] == name)
    }

    pub fn all(&self, kind: Kind) -> &[Value] {
        self.by_kind
            .get(&kind)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// `Chat` for `chat`, for condition types such as `ChatAvailable`.
fn title(target: &str) -> String {
    let mut chars = target.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

struct Cond {
    type_: String,
    ok: bool,
    reason: &'static str,
    message: String,
}

fn cond(
    type_: impl Into<String>,
    ok: bool,
    reason: &'static str,
    message: impl Into<String>,
) -> Cond {
    Cond {
        type_: type_.into(),
        ok,
        reason,
        message: message.into(),
    }
}

fn store_condition(
    type_: &str,
    managed: bool,
    kind: Kind,
    ready: Option<bool>,
    observed: &Observed,
) -> Cond {
    if !managed {
        return cond(type_, true, "External", "provided outside this resource");
    }
    if observed.missing.contains(&kind) {
        return cond(
            type_,
            false,
            "MissingCrd",
            format!("{kind} is not served by this cluster"),
        );
    }
    match ready {
        Some(true) => cond(type_, true, "Ready", "ready"),
        Some(false) => cond(type_, false, "NotReady", "not ready yet"),
        None => cond(type_, false, "Creating", "being created"),
    }
}

fn components(ctx: &Ctx<'_>, rollout: &Rollout, observed: &Observed) -> Vec<Cond> {
    let spec = ctx.spec;
    let mut out = Vec::new();
    let db = observed
        .get(Kind::CnpgCluster, &database::cluster_name(ctx))
        .map(database::is_ready);
    out.push(store_condition(
        "DatabaseReady",
        spec.database.mode == StoreMode::Managed,
        Kind::CnpgCluster,
        db,
        observed,
    ));
    let br = observed
        .get(Kind::RabbitmqCluster, &broker::cluster_name(ctx))
        .map(broker::is_ready);
    let mut broker_cond = store_condition(
        "BrokerReady",
        spec.broker.mode == BrokerMode::Managed,
        Kind::RabbitmqCluster,
        br,
        observed,
    );
    if spec.broker.mode == BrokerMode::None {
        broker_cond = cond(
            "BrokerReady",
            true,
            "InProcess",
            "no broker: events stay in-process",
        );
    }
    out.push(broker_cond);
    let rd = observed
        .get(Kind::Deployment, &redis::name(ctx))
        .map(workload::is_available);
    let mut redis_cond = store_condition(
        "RedisReady",
        spec.redis.mode == RedisMode::Managed,
        Kind::Deployment,
        rd,
        observed,
    );
    if spec.redis.mode == RedisMode::None {
        redis_cond = cond(
            "RedisReady",
            true,
            "InProcess",
            "no redis: caches stay in-process",
        );
    }
    out.push(redis_cond);
    out.push(match &rollout.phase {
        Phase::Succeeded => cond(
            MIGRATED,
            true,
            "Succeeded",
            format!("schema migrated to {}", spec.version),
        ),
        Phase::Failed(why) => cond(
            MIGRATED,
            false,
            "Failed",
            format!("migration to {} failed: {why}", spec.version),
        ),
        Phase::Running | Phase::Absent => cond(
            MIGRATED,
            false,
            "Running",
            format!("migrating to {}", spec.version),
        ),
    });
    for target in contract::TARGETS {
        let type_ = format!("{}Available", title(target));
        let c = match (
            &rollout.serving,
            observed.get(Kind::Deployment, &workload::name(ctx, target)),
        ) {
            (None, _) => cond(
                type_,
                false,
                "WaitingForMigration",
                "waits for the first migration",
            ),
            (Some(_), None) => cond(type_, false, "Creating", "Deployment being created"),
            (Some(v), Some(d))
                if workload::version_of(d) == Some(v.as_str()) && workload::is_available(d) =>
            {
                cond(type_, true, "Available", format!("all replicas run {v}"))
            }
            (Some(v), Some(_)) => cond(type_, false, "RollingOut", format!("rolling out {v}")),
        };
        out.push(c);
    }
    out.push(if observed.missing.contains(&Kind::HttpRoute) {
        cond(
            "RoutesAccepted",
            false,
            "MissingCrd",
            "Gateway API CRDs are not installed",
        )
    } else {
        let routes = [
            gateway::public_route_name(ctx),
            gateway::admin_route_name(ctx),
        ];
        let accepted = routes.iter().all(|r| {
            observed
                .get(Kind::HttpRoute, r)
                .is_some_and(gateway::route_accepted)
        });
        let programmed = spec.gateway.class_name.is_none()
            || observed
                .get(Kind::Gateway, &gateway::gateway_name(ctx))
                .is_some_and(gateway::gateway_programmed);
        if accepted && programmed {
            cond(
                "RoutesAccepted",
                true,
                "Accepted",
                "routes accepted by the gateway",
            )
        } else {
            cond(
                "RoutesAccepted",
                false,
                "Pending",
                "waiting for the gateway to accept the routes",
            )
        }
    });
    out
}

/// The whole status for this reconcile. `failure` is a write the reconcile could not make.
pub fn compute(
    ctx: &Ctx<'_>,
    generation: Option<i64>,
    previous: Option<&ProtostarStatus>,
    rollout: &Rollout,
    observed: &Observed,
    failure: Option<&str>,
    now: &Time,
) -> ProtostarStatus {
    let spec = ctx.spec;
    let comps = components(ctx, rollout, observed);
    let all_targets_up = comps
        .iter()
        .filter(|c| c.type_.ends_with("Available"))
        .all(|c| c.ok);
    let version = match &rollout.serving {
        Some(v) if all_targets_up => Some(v.clone()),
        _ => previous.and_then(|p| p.version.clone()),
    };
    let migrated_version = match rollout.phase {
        Phase::Succeeded => Some(spec.version.clone()),
        _ => previous.and_then(|p| p.migrated_version.clone()),
    };
    let serving = version.clone().unwrap_or_else(|| "nothing".into());
    let on_target = version.as_deref() == Some(spec.version.as_str());

    let degraded = if let Some(failure) = failure {
        cond(DEGRADED, true, "WriteFailed", failure)
    } else if let Phase::Failed(why) = &rollout.phase {
        cond(
            DEGRADED,
            true,
            "MigrationFailed",
            format!(
                "migration to {} failed ({why}); still serving {serving}",
                spec.version
            ),
        )
    } else if let Some(kind) = observed.missing.first() {
        cond(
            DEGRADED,
            true,
            "MissingCrd",
            format!("{kind} is not served by this cluster"),
        )
    } else {
        cond(DEGRADED, false, "AsExpected", "nothing is failing")
    };
    let progressing = match &rollout.phase {
        Phase::Running | Phase::Absent => cond(
            PROGRESSING,
            true,
            "Migrating",
            format!("migrating to {}", spec.version),
        ),
        Phase::Failed(_) => cond(
            PROGRESSING,
            false,
            "MigrationFailed",
            format!("stopped: still serving {serving}"),
        ),
        Phase::Succeeded if !all_targets_up => cond(
            PROGRESSING,
            true,
            "RollingOut",
            format!("rolling out {}", spec.version),
        ),
        Phase::Succeeded => cond(
            PROGRESSING,
            false,
            "Converged",
            format!("serving {}", spec.version),
        ),
    };
    let not_ready: Vec<&str> = comps
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.type_.as_str())
        .collect();
    let ready = if not_ready.is_empty() && on_target {
        cond(READY, true, "Ready", format!("serving {}", spec.version))
    } else if not_ready.is_empty() {
        cond(
            READY,
            false,
            "NotOnTarget",
            format!("serving {serving}, want {}", spec.version),
        )
    } else {
        cond(
            READY,
            false,
            "ComponentsNotReady",
            format!("not ready: {}", not_ready.join(", ")),
        )
    };

    let mut conditions = Vec::new();
    for c in [ready, progressing, degraded].into_iter().chain(comps) {
        let status = if c.ok { "True" } else { "False" };
        let kept = previous
            .and_then(|p| p.conditions.iter().find(|old| old.type_ == c.type_))
            .filter(|old| old.status == status)
            .map(|old| old.last_transition_time.clone());
        conditions.push(Condition {
            type_: c.type_,
            status: status.to_owned(),
            reason: c.reason.to_owned(),
            message: c.message,
            observed_generation: generation,
            last_transition_time: kept.unwrap_or_else(|| now.clone()),
        });
    }
    ProtostarStatus {
        observed_generation: generation,
        version,
        migrated_version,
        conditions,
    }
}

/// A condition by type.
pub fn condition<'a>(status: &'a ProtostarStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}
