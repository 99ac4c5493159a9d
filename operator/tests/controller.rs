//! Controller tests against a stand-in API server (`tower_test::mock::pair`; no Kubernetes API
//! server can run here). Each test asserts the exact sequence of calls a reconcile makes.

mod common;

use std::sync::Arc;

use common::{Fixture, NAME, NS};
use protostar_crds::Protostar;
use protostar_operator::controller::{self, Context};
use protostar_operator::fake_api::{FakeApi, collection};
use protostar_operator::kind::Kind;
use protostar_operator::metrics::Metrics;
use protostar_operator::status;
use serde_json::json;

struct Harness {
    fake: FakeApi,
    ctx: Arc<Context>,
}

fn coll(kind: Kind) -> String {
    collection(&kind.api_version(), kind.gvk().3, NS)
}

fn protostars() -> String {
    collection("protostar.dev/v1alpha1", "protostars", NS)
}

fn list(kind: Kind) -> String {
    format!("GET {}", coll(kind))
}
fn create(kind: Kind) -> String {
    format!("POST {}", coll(kind))
}
fn apply(kind: Kind, name: &str) -> String {
    format!("PATCH {}/{name}", coll(kind))
}
fn delete(kind: Kind, name: &str) -> String {
    format!("DELETE {}/{name}", coll(kind))
}
fn status_write() -> String {
    format!("PATCH {}/{NAME}/status", protostars())
}
/// An event: kube's recorder creates the first of a series and patches repeats, so both
/// count as one `EVENT` in a sequence.
fn event() -> String {
    "EVENT".to_owned()
}

fn normalise(call: String) -> String {
    if call.contains("/apis/events.k8s.io/v1/") {
        event()
    } else {
        call
    }
}
fn lists() -> Vec<String> {
    Kind::ALL.into_iter().map(list).collect()
}

const TARGETS: [&str; 8] = [
    "gateway", "auth", "user", "chat", "ai", "noti", "audit", "psych",
];

impl Harness {
    fn new(fixture: &Fixture) -> Self {
        // The client must be created inside the runtime: the fake server is a spawned task.
        let (client, fake) = FakeApi::start();
        fake.insert(fixture.json());
        let ctx = Arc::new(Context::new(
            client,
            Arc::new(Metrics::default()),
            Some("test".into()),
        ));
        Harness { fake, ctx }
    }

    fn stored(&self) -> Protostar {
        let value = self
            .fake
            .get(&protostars(), NAME)
            .expect("the Protostar is stored");
        serde_json::from_value(value).expect("stored Protostar parses")
    }

    /// One reconcile of the stored resource; the calls it made, as `METHOD path`.
    async fn reconcile(&self) -> Vec<String> {
        self.reconcile_this(self.stored()).await
    }

    async fn reconcile_this(&self, ps: Protostar) -> Vec<String> {
        let result = controller::reconcile(Arc::new(ps), self.ctx.clone()).await;
        assert!(result.is_ok(), "reconcile failed: {result:?}");
        self.fake
            .take_calls()
            .iter()
            .map(|c| normalise(c.to_string()))
            .collect()
    }

    fn finish_job(&self, version_fragment: &str, ok: bool) {
        let jobs = self.fake.list(&coll(Kind::Job));
        let job = jobs
            .iter()
            .find(|j| {
                j["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.contains(version_fragment))
            })
            .expect("the migration Job exists");
        let name = job["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let status = if ok {
            json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
        } else {
            json!({"failed": 3, "conditions": [{"type": "Failed", "status": "True",
                "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]})
        };
        self.fake
            .update(&coll(Kind::Job), &name, |j| j["status"] = status);
    }

    /// Plays the other controllers: Deployments roll out, the stores and routes get ready.
    fn settle(&self) {
        for d in self.fake.list(&coll(Kind::Deployment)) {
            let name = d["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let replicas = d["spec"]["replicas"].as_i64().unwrap_or(2);
            let generation = d["metadata"]["generation"].clone();
            self.fake.update(&coll(Kind::Deployment), &name, |d| {
                d["status"] = json!({"observedGeneration": generation, "replicas": replicas,
                    "updatedReplicas": replicas, "availableReplicas": replicas});
            });
        }
        self.fake.update(&coll(Kind::CnpgCluster), "ps-db", |c| {
            c["status"] = json!({"readyInstances": 2})
        });
        self.fake
            .update(&coll(Kind::RabbitmqCluster), "ps-broker", |c| {
                c["status"] =
                    json!({"conditions": [{"type": "AllReplicasReady", "status": "True"}]});
            });
        self.fake.update(&coll(Kind::Gateway), "ps", |g| {
            g["status"] = json!({"conditions": [{"type": "Programmed", "status": "True"}]});
        });
        for route in ["ps-public", "ps-admin"] {
            self.fake.update(&coll(Kind::HttpRoute), route, |r| {
                r["status"] = json!({"parents": [{"conditions": [{"type": "Accepted", "status": "True"}]}]});
            });
        }
    }

    /// Drives a fresh resource to Ready on `1.0.0`.
    async fn converge(&self) {
        self.reconcile().await;
        self.finish_job("1-0-0", true);
        self.reconcile().await;
        self.settle();
        self.reconcile().await;
        let ps = self.stored();
        let ready = ps
            .status
            .as_ref()
            .and_then(|s| status::condition(s, status::READY))
            .map(|c| c.status.clone());
        assert_eq!(
            ready.as_deref(),
            Some("True"),
            "converged: {:#?}",
            ps.status
        );
    }

    fn deployment_images(&self) -> Vec<String> {
        self.fake
            .list(&coll(Kind::Deployment))
            .iter()
            .filter(|d| d["metadata"]["name"] != "ps-redis")
            .filter_map(|d| {
                d["spec"]["template"]["spec"]["containers"][0]["image"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }
}

fn condition(ps: &Protostar, type_: &str) -> (String, String, String) {
    let c = ps
        .status
        .as_ref()
        .and_then(|s| status::condition(s, type_))
        .expect("condition present");
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

/// Generated Secrets, created once; each is looked up by name first, as it may exist unlabelled.
fn generated_secrets() -> Vec<String> {
    [
        "ps-signing-keys",
        "ps-db-credentials",
        "ps-broker-credentials",
    ]
    .into_iter()
    .flat_map(|s| {
        [
            format!("GET {}/{s}", coll(Kind::Secret)),
            create(Kind::Secret),
        ]
    })
    .collect()
}

fn first_reconcile_calls() -> Vec<String> {
    let mut want = lists();
    want.extend(generated_secrets());
    // The audit trail's volume, then the migration Job of 1.0.0 and its event.
    want.extend([
        create(Kind::PersistentVolumeClaim),
        create(Kind::Job),
        event(),
    ]);
    want.push(apply(Kind::ConfigMap, "ps-config"));
    want.push(apply(Kind::CnpgCluster, "ps-db"));
    want.push(apply(Kind::RabbitmqCluster, "ps-broker"));
    want.push(apply(Kind::Deployment, "ps-redis"));
    want.push(apply(Kind::Service, "ps-redis"));
    for np in [
        "default-deny",
        "gateway",
        "services",
        "internal-chat",
        "internal-ai",
        "redis",
        "database",
        "broker",
    ] {
        want.push(apply(Kind::NetworkPolicy, &format!("ps-{np}")));
    }
    for t in TARGETS {
        want.push(apply(Kind::Service, &format!("ps-{t}")));
    }
    // No Deployment of a service before its schema exists.
    for t in TARGETS {
        want.push(apply(Kind::PodDisruptionBudget, &format!("ps-{t}")));
        if t == "chat" {
            want.push(apply(Kind::HorizontalPodAutoscaler, "ps-chat"));
        }
    }
    want.push(apply(Kind::Gateway, "ps"));
    want.push(apply(Kind::HttpRoute, "ps-public"));
    want.push(apply(Kind::HttpRoute, "ps-admin"));
    want.push(status_write());
    want
}

#[tokio::test]
async fn first_reconcile_creates_everything_but_the_services() {
    let h = Harness::new(&Fixture::new("1.0.0"));
    assert_eq!(h.reconcile().await, first_reconcile_calls());
    let ps = h.stored();
    assert_eq!(condition(&ps, status::PROGRESSING).1, "Migrating");
    assert_eq!(condition(&ps, status::READY).0, "False");
    assert_eq!(
        ps.status.as_ref().and_then(|s| s.observed_generation),
        Some(1)
    );
    assert!(h.deployment_images().is_empty());
}

#[tokio::test]
async fn converged_reconcile_writes_nothing() {
    let h = Harness::new(&Fixture::new("1.0.0"));
    h.converge().await;
    assert_eq!(
        h.reconcile().await,
        lists(),
        "a converged resource is only read"
    );
    assert_eq!(h.reconcile().await, lists());
    let ps = h.stored();
    assert_eq!(
        ps.status.as_ref().and_then(|s| s.version.as_deref()),
        Some("1.0.0")
    );
    assert_eq!(condition(&ps, status::DEGRADED).0, "False");
}

#[tokio::test]
async fn upgrade_migrates_first_then_rolls_the_services() {
    let h = Harness::new(&Fixture::new("1.0.0"));
    h.converge().await;
    let old_job = h.fake.list(&coll(Kind::Job))[0]["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Git changes spec.version.
    h.fake.update(&protostars(), NAME, |p| {
        p["spec"]["version"] = json!("1.1.0");
        p["metadata"]["generation"] = json!(2);
    });
    let mut want = lists();
    want.extend([create(Kind::Job), event(), status_write()]);
    assert_eq!(
        h.reconcile().await,
        want,
        "only the Job is created; nothing that serves moves"
    );
    assert!(h.deployment_images().iter().all(|i| i.ends_with(":1.0.0")));
    assert_eq!(condition(&h.stored(), status::PROGRESSING).1, "Migrating");

    // While the migration runs, nothing is written again.
    assert_eq!(h.reconcile().await, lists());

    h.finish_job("1-1-0", true);
    let mut want = lists();
    for t in TARGETS {
        want.push(apply(Kind::Deployment, &format!("ps-{t}")));
    }
    want.push(apply(Kind::CronJob, "ps-job-recrawl"));
    want.push(delete(Kind::Job, &old_job));
    want.extend([status_write(), event()]);
    assert_eq!(
        h.reconcile().await,
        want,
        "after the migration, the services move"
    );
    assert!(h.deployment_images().iter().all(|i| i.ends_with(":1.1.0")));
    assert_eq!(
        h.stored().status.and_then(|s| s.version).as_deref(),
        Some("1.0.0"),
        "not rolled out yet"
    );

    h.settle();
    let mut want = lists();
    want.extend([status_write(), event()]);
    assert_eq!(h.reconcile().await, want);
    let ps = h.stored();
    assert_eq!(
        ps.status.as_ref().and_then(|s| s.version.as_deref()),
        Some("1.1.0")
    );
    assert_eq!(condition(&ps, status::READY).0, "True");
    assert_eq!(h.reconcile().await, lists());
}

#[tokio::test]
async fn failed_migration_keeps_the_old_release_serving_and_says_why() {
    let h = Harness::new(&Fixture::new("1.0.0"));
    h.converge().await;
    h.fake.update(&protostars(), NAME, |p| {
        p["spec"]["version"] = json!("1.1.0");
        p["metadata"]["generation"] = json!(2);
    });
    h.reconcile().await;
    h.finish_job("1-1-0", false);

    let mut want = lists();
    want.extend([status_write(), event()]);
    assert_eq!(h.reconcile().await, want, "no Deployment is touched");
    assert!(h.deployment_images().iter().all(|i| i.ends_with(":1.0.0")));
    let ps = h.stored();
    let (degraded, reason, message) = condition(&ps, status::DEGRADED);
    assert_eq!(
        (degraded.as_str(), reason.as_str()),
        ("True", "MigrationFailed")
    );
    assert!(
        message.contains("BackoffLimitExceeded") && message.contains("still serving 1.0.0"),
        "{message}"
    );
    assert_eq!(
        ps.status.as_ref().and_then(|s| s.version.as_deref()),
        Some("1.0.0")
    );
    assert_eq!(
        condition(&ps, "GatewayAvailable").0,
        "True",
        "the old release still serves"
    );
    let events = h
        .fake
        .list(&format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"));
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "MigrationFailed" && e["type"] == "Warning")
    );

    // Stable while failed: no retry storm, no writes.
    assert_eq!(h.reconcile().await, lists());
}

#[tokio::test]
async fn deletion_only_reports_what_is_kept() {
    let fixture = Fixture::new("1.0.0").deleting();
    let h = Harness::new(&fixture);
    assert_eq!(h.reconcile_this(fixture.build()).await, vec![event()]);
    let events = h
        .fake
        .list(&format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"));
    let note = events[0]["note"].as_str().unwrap_or_default().to_owned();
    assert!(
        note.contains("ps-db-credentials") && note.contains("Cluster/ps-db"),
        "{note}"
    );
}

#[tokio::test]
async fn missing_operator_crds_degrade_instead_of_failing() {
    let h = Harness::new(&Fixture::new("1.0.0"));
    h.fake.without_group("postgresql.cnpg.io");
    let calls = h.reconcile().await;
    assert!(!calls.contains(&apply(Kind::CnpgCluster, "ps-db")));
    let ps = h.stored();
    let (degraded, reason, _) = condition(&ps, status::DEGRADED);
    assert_eq!((degraded.as_str(), reason.as_str()), ("True", "MissingCrd"));
    assert_eq!(condition(&ps, "DatabaseReady").1, "MissingCrd");
}

#[tokio::test]
async fn drift_is_repaired_by_one_apply() {
    let h = Harness::new(&Fixture::new("1.0.0"));
    h.converge().await;
    // Someone scales a Deployment by hand.
    h.fake.update(&coll(Kind::Deployment), "ps-auth", |d| {
        d["spec"]["replicas"] = json!(5)
    });
    let mut want = lists();
    want.push(apply(Kind::Deployment, "ps-auth"));
    // The status reports what was observed: five wanted, two available.
    want.push(status_write());
    assert_eq!(h.reconcile().await, want);
    assert_eq!(condition(&h.stored(), "AuthAvailable").0, "False");
}

#[tokio::test]
async fn generated_secrets_survive_a_spec_change() {
    let h = Harness::new(&Fixture::new("1.0.0"));
    h.converge().await;
    let before = h.fake.get(&coll(Kind::Secret), "ps-db-credentials");
    h.fake.update(&protostars(), NAME, |p| {
        p["spec"]["database"]["managed"]["instances"] = json!(3)
    });
    let calls = h.reconcile().await;
    assert!(
        calls
            .iter()
            .all(|c| c.starts_with("GET") || !c.contains("/secrets")),
        "{calls:?}"
    );
    assert_eq!(h.fake.get(&coll(Kind::Secret), "ps-db-credentials"), before);
}

#[test]
fn backoff_doubles_and_caps() {
    use std::time::Duration;
    assert_eq!(controller::backoff(1), Duration::from_secs(5));
    assert_eq!(controller::backoff(2), Duration::from_secs(10));
    assert_eq!(controller::backoff(4), Duration::from_secs(40));
    assert_eq!(controller::backoff(20), Duration::from_secs(300));
    assert_eq!(controller::backoff(u32::MAX), Duration::from_secs(300));
}

#[tokio::test]
async fn errors_are_counted_by_kind_and_backed_off_exponentially() {
    use kube::runtime::controller::Action;
    use protostar_operator::Error;
    use std::time::Duration;

    let h = Harness::new(&Fixture::new("1.0.0"));
    let ps = Arc::new(h.stored());
    let err = Error::MissingIdentity;
    assert_eq!(
        controller::error_policy(ps.clone(), &err, h.ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
    assert_eq!(
        controller::error_policy(ps.clone(), &err, h.ctx.clone()),
        Action::requeue(Duration::from_secs(10))
    );
    // A successful reconcile resets the backoff.
    h.reconcile().await;
    assert_eq!(
        controller::error_policy(ps, &err, h.ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );

    let mut registry = prometheus_client::registry::Registry::default();
    h.ctx.metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
    assert!(
        text.contains("protostar_operator_reconcile_errors_total{error=\"missing_identity\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("protostar_operator_reconciles_total 1"),
        "{text}"
    );
    assert!(
        text.contains("protostar_operator_reconcile_duration_seconds_count 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_version_change_mid_migration_waits_and_never_kills_the_running_job() {
    let h = Harness::new(&Fixture::new("1.0.0"));
    h.converge().await;
    let set_version = |v: &str, g: i64| {
        let v = v.to_owned();
        h.fake.update(&protostars(), NAME, move |p| {
            p["spec"]["version"] = json!(v);
            p["metadata"]["generation"] = json!(g);
        });
    };
    set_version("1.1.0", 2);
    h.reconcile().await;
    set_version("1.2.0", 3);
    let mut want = lists();
    want.push(status_write());
    assert_eq!(
        h.reconcile().await,
        want,
        "no second Job while 1.1.0 migrates, and 1.1.0 is not deleted"
    );

    let running = h.fake.list(&coll(Kind::Job));
    let job_1_1 = running
        .iter()
        .filter_map(|j| j["metadata"]["name"].as_str())
        .find(|n| n.contains("1-1-0"))
        .expect("the 1.1.0 Job still exists")
        .to_owned();
    h.finish_job("1-1-0", true);
    let mut want = lists();
    // Now the 1.2.0 migration starts, and the finished 1.1.0 Job is pruned.
    want.extend([create(Kind::Job), event(), delete(Kind::Job, &job_1_1)]);
    assert_eq!(h.reconcile().await, want);
    assert!(h.deployment_images().iter().all(|i| i.ends_with(":1.0.0")));
}

#[tokio::test]
async fn the_running_controller_watches_its_kinds_and_reconciles() {
    let h = Harness::new(&Fixture::new("1.0.0"));
    let run = tokio::spawn(controller::run(h.ctx.clone(), Some(NS.to_owned())));
    let mut reconciled = false;
    for _ in 0..200 {
        if h.stored()
            .status
            .is_some_and(|s| s.observed_generation == Some(1))
        {
            reconciled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    run.abort();
    assert!(
        reconciled,
        "the controller reconciled the Protostar it listed"
    );
    let calls = h.fake.take_calls();
    for watched in [
        "protostars",
        "deployments",
        "jobs",
        "services",
        "cronjobs",
        "configmaps",
    ] {
        assert!(
            calls
                .iter()
                .any(|c| c.method == "WATCH"
                    && c.path.ends_with(&format!("/namespaces/{NS}/{watched}"))),
            "watches {watched}: {calls:?}"
        );
    }
}

#[tokio::test]
async fn a_refused_write_is_reported_in_the_status_and_retried() {
    let h = Harness::new(&Fixture::new("1.0.0"));
    h.fake.refuse_writes("networkpolicies");
    let result = controller::reconcile(Arc::new(h.stored()), h.ctx.clone()).await;
    let err = result.expect_err("the reconcile fails, so it is retried with backoff");
    assert_eq!(err.metric_label(), "write");
    let calls: Vec<String> = h
        .fake
        .take_calls()
        .iter()
        .map(|c| normalise(c.to_string()))
        .collect();
    let mut want = lists();
    want.extend(generated_secrets());
    want.extend([
        create(Kind::PersistentVolumeClaim),
        create(Kind::Job),
        event(),
    ]);
    for (kind, name) in [
        (Kind::ConfigMap, "ps-config"),
        (Kind::CnpgCluster, "ps-db"),
        (Kind::RabbitmqCluster, "ps-broker"),
        (Kind::Deployment, "ps-redis"),
        (Kind::Service, "ps-redis"),
        (Kind::NetworkPolicy, "ps-default-deny"),
    ] {
        want.push(apply(kind, name));
    }
    // The first refused write stops the rest; the status says why, with an event.
    want.extend([status_write(), event()]);
    assert_eq!(calls, want);
    let (degraded, reason, message) = condition(&h.stored(), status::DEGRADED);
    assert_eq!(
        (degraded.as_str(), reason.as_str()),
        ("True", "WriteFailed")
    );
    assert!(
        message.contains("NetworkPolicy ps-default-deny"),
        "{message}"
    );
}

#[tokio::test]
async fn a_secret_made_by_hand_is_kept_and_costs_no_write() {
    let h = Harness::new(&Fixture::new("1.0.0"));
    // Made before the Protostar, without the operator's labels, to choose the password.
    h.fake.insert(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "ps-db-credentials", "namespace": NS},
        "stringData": {"username": "protostar", "password": "chosen", "url": "postgres://protostar:chosen@db/protostar"}}));
    h.converge().await;
    let kept = h
        .fake
        .get(&coll(Kind::Secret), "ps-db-credentials")
        .expect("still there");
    assert_eq!(kept["stringData"]["password"], "chosen");
    let mut want = lists();
    want.push(format!("GET {}/ps-db-credentials", coll(Kind::Secret)));
    assert_eq!(h.reconcile().await, want, "one look, no write");
}
