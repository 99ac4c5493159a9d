//! Benchmark (not a test): reconcile time and API calls per reconcile for the full stack,
//! first and converged, against the stand-in API server (`fake_api`, in-process through
//! `tower_test`). It measures the operator's own cost — listing, rendering, diffing,
//! serialising — not network or API-server latency.
//!
//! Run: `cargo run -p protostar-operator --bin protostar-operator-bench [-- ROUNDS]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use protostar_crds::Protostar;
use protostar_operator::controller::{self, Context};
use protostar_operator::fake_api::{FakeApi, collection};
use protostar_operator::kind::Kind;
use protostar_operator::metrics::Metrics;
use protostar_operator::render::{Ctx, migration, plan};
use protostar_operator::status::{self, Observed};
use serde_json::{Value, json};

const NS: &str = "bench";

fn fixture() -> Value {
    json!({
        "apiVersion": "protostar.dev/v1alpha1", "kind": "Protostar",
        "metadata": {"name": "ps", "namespace": NS, "uid": "bench-uid", "generation": 1},
        "spec": {
            "version": "1.0.0",
            "hostnames": {"public": ["chat.example.org"], "admin": "admin.example.org"},
            "gateway": {"className": "eg", "tls": {"publicCertificateRef": {"name": "a"}, "adminCertificateRef": {"name": "b"}}},
            "database": {"mode": "Managed"},
            "broker": {"mode": "Managed"},
            "redis": {"mode": "Managed"},
            "objectStorage": {"endpoint": "http://minio:9000", "bucket": "protostar", "credentialsSecretRef": {"name": "minio"}},
            "jobs": [{"name": "recrawl", "schedule": "0 3 * * *"}]
        }
    })
}

fn stored(fake: &FakeApi) -> Option<Protostar> {
    let value = fake.get(
        &collection("protostar.dev/v1alpha1", "protostars", NS),
        "ps",
    )?;
    serde_json::from_value(value).ok()
}

struct Sample {
    took: Duration,
    reads: usize,
    writes: usize,
}

async fn once(fake: &FakeApi, ctx: &Arc<Context>) -> anyhow::Result<Sample> {
    let ps = stored(fake).ok_or_else(|| anyhow::anyhow!("fixture missing"))?;
    let started = Instant::now();
    controller::reconcile(Arc::new(ps), ctx.clone()).await?;
    let took = started.elapsed();
    let calls = fake.take_calls();
    let writes = calls.iter().filter(|c| c.is_write()).count();
    Ok(Sample {
        took,
        reads: calls.len() - writes,
        writes,
    })
}

/// Named wrappers, so `valgrind --tool=callgrind --toggle-collect='*first_reconcile*'` (or
/// `*converged_reconcile*`) counts the instructions of exactly these reconciles.
#[inline(never)]
async fn first_reconcile(fake: &FakeApi, ctx: &Arc<Context>) -> anyhow::Result<Sample> {
    once(fake, ctx).await
}

#[inline(never)]
async fn converged_reconcile(fake: &FakeApi, ctx: &Arc<Context>) -> anyhow::Result<Sample> {
    once(fake, ctx).await
}

/// Marks the migration done and every workload rolled out, as other controllers would.
fn settle(fake: &FakeApi) {
    let jobs = collection("batch/v1", "jobs", NS);
    for job in fake.list(&jobs) {
        let name = job["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        fake.update(&jobs, &name, |j| j["status"] = json!({"succeeded": 1}));
    }
    let deployments = collection("apps/v1", "deployments", NS);
    for d in fake.list(&deployments) {
        let name = d["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let (generation, replicas) = (
            d["metadata"]["generation"].clone(),
            d["spec"]["replicas"].as_i64().unwrap_or(2),
        );
        fake.update(&deployments, &name, |d| {
            d["status"] = json!({"observedGeneration": generation, "updatedReplicas": replicas, "availableReplicas": replicas});
        });
    }
    fake.update(
        &collection("postgresql.cnpg.io/v1", "clusters", NS),
        "ps-db",
        |c| c["status"] = json!({"readyInstances": 1}),
    );
    fake.update(
        &collection("rabbitmq.com/v1beta1", "rabbitmqclusters", NS),
        "ps-broker",
        |c| {
            c["status"] = json!({"conditions": [{"type": "AllReplicasReady", "status": "True"}]});
        },
    );
    let gw = collection("gateway.networking.k8s.io/v1", "gateways", NS);
    fake.update(&gw, "ps", |g| {
        g["status"] = json!({"conditions": [{"type": "Programmed", "status": "True"}]})
    });
    let routes = collection("gateway.networking.k8s.io/v1", "httproutes", NS);
    for r in ["ps-public", "ps-admin"] {
        fake.update(
            &routes,
            r,
            |r| {
                r["status"] =
                    json!({"parents": [{"conditions": [{"type": "Accepted", "status": "True"}]}]})
            },
        );
    }
}

/// The decision alone, without I/O: render, diff against the observed objects, compute the
/// status — what a reconcile costs beyond its API calls.
fn decide(fake: &FakeApi) -> anyhow::Result<Sample> {
    let ps = stored(fake).ok_or_else(|| anyhow::anyhow!("fixture missing"))?;
    let mut observed = Observed::default();
    for kind in Kind::ALL {
        let (_, _, _, plural) = kind.gvk();
        observed.by_kind.insert(
            kind,
            fake.list(&collection(&kind.api_version(), plural, NS)),
        );
    }
    let started = Instant::now();
    let ctx = Ctx::from_resource(&ps).ok_or_else(|| anyhow::anyhow!("no namespace"))?;
    let job = observed.get(Kind::Job, &migration::name(&ctx, &ps.spec.version));
    let previous = ps.status.as_ref();
    let rollout = plan::rollout(
        &ps.spec.version,
        previous.and_then(|s| s.migrated_version.as_deref()),
        migration::phase(job),
        false,
    );
    let desired = plan::desired(&ctx, &rollout);
    let w = controller::writes(&ctx, &rollout, desired, Vec::new(), &observed);
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let st = status::compute(
        &ctx,
        ps.metadata.generation,
        previous,
        &rollout,
        &observed,
        None,
        &now,
    );
    let took = started.elapsed();
    let writes =
        w.create.len() + w.apply.len() + w.delete.len() + usize::from(previous != Some(&st));
    Ok(Sample {
        took,
        reads: 0,
        writes,
    })
}

fn summary(name: &str, samples: &mut [Sample]) {
    samples.sort_by_key(|s| s.took);
    let pick = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples
            .get(i)
            .map(|s| s.took.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    let (reads, writes) = samples
        .first()
        .map(|s| (s.reads, s.writes))
        .unwrap_or((0, 0));
    println!(
        "| {name} | {} | {:.2} | {:.2} | {:.2} | {reads} | {writes} |",
        samples.len(),
        pick(0.0),
        pick(0.5),
        pick(0.95)
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let mut first = Vec::with_capacity(rounds);
    let mut converged = Vec::with_capacity(rounds);
    let mut decisions = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let (client, fake) = FakeApi::start();
        fake.insert(fixture());
        let ctx = Arc::new(Context::new(
            client,
            Arc::new(Metrics::default()),
            Some("bench".into()),
        ));
        first.push(first_reconcile(&fake, &ctx).await?);
        // Drive to converged: migration done, services applied and rolled out, status Ready.
        settle(&fake);
        once(&fake, &ctx).await?;
        settle(&fake);
        once(&fake, &ctx).await?;
        let c = converged_reconcile(&fake, &ctx).await?;
        if c.writes != 0 {
            anyhow::bail!("a converged reconcile wrote {} times", c.writes);
        }
        converged.push(c);
        decisions.push(decide(&fake)?);
    }
    println!("| reconcile | runs | min ms | median ms | p95 ms | reads | writes |");
    println!("|---|---|---|---|---|---|---|");
    summary("first (empty namespace)", &mut first);
    summary("converged (nothing to do)", &mut converged);
    summary("converged, decision only (no I/O)", &mut decisions);
    Ok(())
}
