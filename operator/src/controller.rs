//! The reconciler, in the shape of kube's `controller-rs`: a small `Context`, `reconcile`
//! (cross-cutting work only), `apply` / `cleanup`, `error_policy` and `run`.
//!
//! One reconcile: read every kind the operator writes (one list per kind, by label), decide the
//! rollout, render the desired objects, write only what differs, prune what is no longer
//! wanted, then write the status if it changed. A converged resource therefore costs one list
//! per kind and no write.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, PropagationPolicy,
};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use protostar_crds::{Protostar, ProtostarStatus};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::diff;
use crate::error::{Error, Result};
use crate::kind::Kind;
use crate::metrics::Metrics;
use crate::render::migration;
use crate::render::plan::{self, Rollout};
use crate::render::{self, Ctx, MANAGER, Object, secrets};
use crate::status::{self, DEGRADED, MIGRATED, Observed};

/// Requeue while something is moving (a migration, a rollout).
pub const REQUEUE_BUSY: Duration = Duration::from_secs(15);
/// Requeue of a converged resource, to notice drift the watches cannot see.
pub const REQUEUE_IDLE: Duration = Duration::from_secs(300);
/// First retry after an error; doubles per consecutive failure up to `BACKOFF_MAX`.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// What a reconcile needs: the client, the event recorder and the metrics.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per resource, for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: Client, metrics: Arc<Metrics>, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        // A panic elsewhere cannot leave the map in a broken state: recover it.
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn key(ps: &Protostar) -> String {
    format!("{}/{}", ps.namespace().unwrap_or_default(), ps.name_any())
}

/// Delay before retry number `n` (1-based): 5 s, 10 s, 20 s, … capped at 5 min.
pub fn backoff(n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
    BACKOFF_BASE
        .checked_mul(factor)
        .unwrap_or(BACKOFF_MAX)
        .min(BACKOFF_MAX)
}

/// Entry point of every reconcile: metrics and timing around `apply` / `cleanup`.
pub async fn reconcile(ps: Arc<Protostar>, ctx: Arc<Context>) -> Result<Action> {
    ctx.metrics.reconciles.inc();
    let started = Instant::now();
    let result = if ps.meta().deletion_timestamp.is_some() {
        cleanup(&ps, &ctx).await
    } else {
        apply(&ps, &ctx).await
    };
    ctx.metrics.observe(started.elapsed());
    if result.is_ok() {
        ctx.failures().remove(&key(&ps));
    }
    result
}

/// Counts the error by kind and retries with exponential backoff.
pub fn error_policy(ps: Arc<Protostar>, err: &Error, ctx: Arc<Context>) -> Action {
    warn!(resource = %key(&ps), error = %err, "reconcile failed");
    ctx.metrics.error(err);
    let n = {
        let mut failures = ctx.failures();
        let n = failures.entry(key(&ps)).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    Action::requeue(backoff(n))
}

/// Deletion needs no finalizer: everything stateless carries an owner reference and goes with
/// the resource; data holders (generated Secrets, database, broker) stay on purpose. Nothing
/// outside the cluster needs cleaning. This only records what was kept, when something else
/// (Argo CD's finalizer, say) holds the resource long enough for a reconcile to see it.
async fn cleanup(ps: &Protostar, ctx: &Context) -> Result<Action> {
    let Some(rctx) = Ctx::from_resource(ps) else {
        return Err(Error::MissingIdentity);
    };
    let mut kept = secrets::wanted(&rctx);
    kept.extend(render::database::render(&rctx).map(|o| format!("Cluster/{}", o.name)));
    kept.extend(render::broker::render(&rctx).map(|o| format!("RabbitmqCluster/{}", o.name)));
    publish(
        ctx,
        ps,
        EventType::Normal,
        "DataRetained",
        "Delete",
        format!(
            "kept on deletion (no owner reference): {}; delete them by hand to drop the data",
            kept.join(", ")
        ),
    )
    .await;
    Ok(Action::await_change())
}

async fn publish(
    ctx: &Context,
    ps: &Protostar,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    // Events are best-effort: a lost one must not fail the reconcile.
    if let Err(err) = ctx.recorder.publish(&event, &ps.object_ref(&())).await {
        warn!(error = %err, "cannot publish event");
    }
}

fn api(client: &Client, namespace: &str, kind: Kind) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &kind.api_resource())
}

/// Which kinds this spec needs read: the managed stores' kinds only when they are managed,
/// so a cluster without CloudNativePG or the RabbitMQ operator works with external stores.
pub fn kinds_to_read(rctx: &Ctx<'_>) -> Vec<Kind> {
    Kind::ALL
        .into_iter()
        .filter(|k| match k {
            Kind::CnpgCluster => render::database::render(rctx).is_some(),
            Kind::RabbitmqCluster => render::broker::render(rctx).is_some(),
            _ => true,
        })
        .collect()
}

/// One list per kind, by the instance's labels. A third-party kind the server does not know
/// (404) is recorded as missing instead of failing the reconcile.
async fn observe(client: &Client, rctx: &Ctx<'_>) -> Result<Observed> {
    let mut observed = Observed::default();
    let lp = ListParams::default().labels(&render::instance_selector(rctx.name));
    for kind in kinds_to_read(rctx) {
        match api(client, rctx.namespace, kind).list(&lp).await {
            Ok(list) => {
                let items = list
                    .items
                    .into_iter()
                    .map(|o| {
                        serde_json::to_value(o).map_err(|source| Error::Decode {
                            kind,
                            name: String::new(),
                            source,
                        })
                    })
                    .collect::<Result<Vec<Value>>>()?;
                observed.by_kind.insert(kind, items);
            }
            Err(kube::Error::Api(status)) if status.code == 404 && kind.is_third_party() => {
                observed.missing.push(kind);
            }
            Err(source) => {
                return Err(Error::List {
                    kind,
                    source: Box::new(source),
                });
            }
        }
    }
    Ok(observed)
}

async fn create(ctx: &Context, namespace: &str, obj: &Object) -> Result<()> {
    // A generated Secret not seen by the labelled list may still exist without our labels: one
    // made by hand to choose the credentials. It is never overwritten, and looking first keeps
    // such a resource from costing a refused create on every reconcile.
    if obj.kind == Kind::Secret {
        let found = api(&ctx.client, namespace, obj.kind)
            .get_opt(&obj.name)
            .await
            .map_err(|source| Error::List {
                kind: obj.kind,
                source: Box::new(source),
            })?;
        if found.is_some() {
            return Ok(());
        }
    }
    let body: DynamicObject =
        serde_json::from_value(obj.body.clone()).map_err(|source| Error::Decode {
            kind: obj.kind,
            name: obj.name.clone(),
            source,
        })?;
    ctx.metrics.writes.inc();
    match api(&ctx.client, namespace, obj.kind)
        .create(&PostParams::default(), &body)
        .await
    {
        Ok(_) => Ok(()),
        // Someone created it first: never overwrite it.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(source) => Err(Error::Write {
            kind: obj.kind,
            name: obj.name.clone(),
            source: Box::new(source),
        }),
    }
}

async fn server_side_apply(ctx: &Context, namespace: &str, obj: &Object) -> Result<()> {
    ctx.metrics.writes.inc();
    let pp = PatchParams::apply(MANAGER).force();
    api(&ctx.client, namespace, obj.kind)
        .patch(&obj.name, &pp, &Patch::Apply(&obj.body))
        .await
        .map(|_| ())
        .map_err(|source| Error::Write {
            kind: obj.kind,
            name: obj.name.clone(),
            source: Box::new(source),
        })
}

async fn delete(ctx: &Context, namespace: &str, kind: Kind, name: &str) -> Result<()> {
    ctx.metrics.writes.inc();
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api(&ctx.client, namespace, kind).delete(name, &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(Error::Delete {
            kind,
            name: name.to_owned(),
            source: Box::new(source),
        }),
    }
}

/// The body without `apiVersion` and `kind`: the API server leaves them out of list items, and
/// the list they came from already says what they are.
fn without_type(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
    body
}

/// The writes a reconcile makes, decided from desired and observed state alone (pure, so the
/// converged case is testable without an API server).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Writes {
    pub create: Vec<Object>,
    pub apply: Vec<Object>,
    pub delete: Vec<(Kind, String)>,
}

pub fn writes(
    rctx: &Ctx<'_>,
    rollout: &Rollout,
    desired: Vec<Object>,
    generated: Vec<Object>,
    observed: &Observed,
) -> Writes {
    let mut w = Writes {
        create: generated,
        ..Writes::default()
    };
    let mut wanted: BTreeSet<(Kind, String)> = BTreeSet::new();
    for obj in desired {
        wanted.insert((obj.kind, obj.name.clone()));
        if observed.missing.contains(&obj.kind) {
            continue; // reported in the status; nothing to write to
        }
        match observed.get(obj.kind, &obj.name) {
            None if obj.kind.create_only() => w.create.push(obj),
            Some(_) if obj.kind.create_only() => {}
            Some(seen) if diff::contains(seen, &without_type(&obj.body)) => {}
            _ => w.apply.push(obj),
        }
    }
    for kind in Kind::ALL.into_iter().filter(|k| k.prunable()) {
        for seen in observed.all(kind) {
            let Some(name) = seen["metadata"]["name"].as_str() else {
                continue;
            };
            if !wanted.contains(&(kind, name.to_owned())) {
                w.delete.push((kind, name.to_owned()));
            }
        }
    }
    // Migration Jobs: keep the one for the wanted release, the one that last succeeded, and any
    // still running (stopping a migration half-way helps nobody).
    let keep = [Some(rctx.spec.version.as_str()), rollout.serving.as_deref()];
    for job in observed.all(Kind::Job) {
        let (Some(name), Some(version)) =
            (job["metadata"]["name"].as_str(), migration::version_of(job))
        else {
            continue;
        };
        let running = migration::phase(Some(job)) == migration::Phase::Running;
        if !keep.contains(&Some(version)) && !running {
            w.delete.push((Kind::Job, name.to_owned()));
        }
    }
    w
}

async fn write_all(ctx: &Context, ps: &Protostar, rctx: &Ctx<'_>, w: &Writes) -> Result<()> {
    for obj in &w.create {
        create(ctx, rctx.namespace, obj).await?;
        if obj.kind == Kind::Job {
            let note = format!("running {} to migrate to {}", obj.name, ps.spec.version);
            publish(
                ctx,
                ps,
                EventType::Normal,
                "MigrationStarted",
                "Migrate",
                note,
            )
            .await;
        }
    }
    for obj in &w.apply {
        server_side_apply(ctx, rctx.namespace, obj).await?;
    }
    for (kind, name) in &w.delete {
        delete(ctx, rctx.namespace, *kind, name).await?;
    }
    Ok(())
}

async fn apply(ps: &Protostar, ctx: &Context) -> Result<Action> {
    let Some(rctx) = Ctx::from_resource(ps) else {
        return Err(Error::MissingIdentity);
    };
    let observed = observe(&ctx.client, &rctx).await?;

    let job = observed.get(Kind::Job, &migration::name(&rctx, &ps.spec.version));
    let previous = ps.status.as_ref();
    let other_running = observed.all(Kind::Job).iter().any(|j| {
        migration::version_of(j).is_some_and(|v| v != ps.spec.version)
            && migration::phase(Some(j)) == migration::Phase::Running
    });
    let rollout = plan::rollout(
        &ps.spec.version,
        previous.and_then(|s| s.migrated_version.as_deref()),
        migration::phase(job),
        other_running,
    );
    let existing: BTreeSet<String> = observed
        .all(Kind::Secret)
        .iter()
        .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    let generated = {
        // Scoped: the thread-local generator must not live across an await.
        let mut rng = rand::rng();
        secrets::render_missing(&rctx, &existing, &mut rng)
    };
    let desired = plan::desired(&rctx, &rollout);
    let w = writes(&rctx, &rollout, desired, generated, &observed);

    // A failed write stops the others, is reported in the status, and then fails the
    // reconcile so that it is retried with backoff.
    let failed = write_all(ctx, ps, &rctx, &w).await.err();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let status = status::compute(
        &rctx,
        ps.meta().generation,
        previous,
        &rollout,
        &observed,
        failed.as_ref().map(ToString::to_string).as_deref(),
        &now,
    );
    if previous != Some(&status) {
        write_status(ctx, ps, &status).await?;
        announce(ctx, ps, previous, &status).await;
    }
    if let Some(err) = failed {
        return Err(err);
    }

    let busy = status::condition(&status, status::PROGRESSING).is_some_and(|c| c.status == "True")
        || status::condition(&status, status::READY).is_some_and(|c| c.status != "True");
    Ok(Action::requeue(if busy {
        REQUEUE_BUSY
    } else {
        REQUEUE_IDLE
    }))
}

async fn write_status(ctx: &Context, ps: &Protostar, status: &ProtostarStatus) -> Result<()> {
    let Some(namespace) = ps.namespace() else {
        return Err(Error::MissingIdentity);
    };
    let api: Api<Protostar> = Api::namespaced(ctx.client.clone(), &namespace);
    let body = json!({
        "apiVersion": Protostar::api_version(&()),
        "kind": Protostar::kind(&()),
        "status": status,
    });
    ctx.metrics.writes.inc();
    api.patch_status(
        &ps.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(|_| ())
    .map_err(|e| Error::Status(Box::new(e)))
}

/// Events for the transitions a person wants to see in `kubectl describe`.
async fn announce(
    ctx: &Context,
    ps: &Protostar,
    previous: Option<&ProtostarStatus>,
    now: &ProtostarStatus,
) {
    let reason_of = |s: Option<&ProtostarStatus>, t: &str| {
        s.and_then(|s| status::condition(s, t))
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let before = reason_of(previous, MIGRATED);
    if let Some((_, reason, message)) =
        reason_of(Some(now), MIGRATED).filter(|m| Some(m) != before.as_ref())
    {
        match reason.as_str() {
            "Failed" => {
                publish(
                    ctx,
                    ps,
                    EventType::Warning,
                    "MigrationFailed",
                    "Migrate",
                    message,
                )
                .await
            }
            "Succeeded" => {
                publish(ctx, ps, EventType::Normal, "Migrated", "Migrate", message).await
            }
            _ => {}
        }
    }
    if now.version.is_some() && now.version != previous.and_then(|p| p.version.clone()) {
        let v = now.version.clone().unwrap_or_default();
        publish(
            ctx,
            ps,
            EventType::Normal,
            "Serving",
            "Rollout",
            format!("all services run {v}"),
        )
        .await;
    }
    let degraded = |s: Option<&ProtostarStatus>| reason_of(s, DEGRADED).filter(|d| d.0 == "True");
    let newly_degraded = degraded(Some(now)).filter(|d| Some(d) != degraded(previous).as_ref());
    // A failed migration already has its own event.
    if let Some((_, _, message)) = newly_degraded.filter(|d| d.1 != "MigrationFailed") {
        publish(
            ctx,
            ps,
            EventType::Warning,
            "Degraded",
            "Reconcile",
            message,
        )
        .await;
    }
}

/// Runs the controller until a shutdown signal. Watches the Protostars and what they own, so
/// a Job finishing or a Deployment becoming available triggers a reconcile at once.
pub async fn run(ctx: Arc<Context>, namespace: Option<String>) {
    let client = ctx.client.clone();
    fn scoped<K>(client: &Client, ns: &Option<String>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let owned =
        watcher::Config::default().labels(&format!("{}={MANAGER}", render::LABEL_MANAGED_BY));
    Controller::new(
        scoped::<Protostar>(&client, &namespace),
        watcher::Config::default().any_semantic(),
    )
    .owns(scoped::<Deployment>(&client, &namespace), owned.clone())
    .owns(scoped::<Job>(&client, &namespace), owned.clone())
    .owns(scoped::<Service>(&client, &namespace), owned.clone())
    .owns(scoped::<CronJob>(&client, &namespace), owned.clone())
    .owns(scoped::<ConfigMap>(&client, &namespace), owned)
    .shutdown_on_signal()
    .run(reconcile, error_policy, ctx)
    .for_each(|res| async move {
        match res {
            Ok((obj, _)) => info!(resource = %obj, "reconciled"),
            Err(err) => warn!(error = %err, "reconcile stream"),
        }
    })
    .await;
}
