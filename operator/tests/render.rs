//! Renderer tests: pure functions from the spec to objects.

mod common;

use std::collections::BTreeSet;

use common::Fixture;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use protostar_crds::{AnswerModel, EmbeddingProvider};
use protostar_operator::contract;
use protostar_operator::kind::Kind;
use protostar_operator::render::migration::{self, Phase};
use protostar_operator::render::plan::{self, Rollout};
use protostar_operator::render::{Ctx, Object, secrets, workload};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn rollout_serving(version: &str) -> Rollout {
    Rollout {
        serving: Some(version.into()),
        migrate: Some(version.into()),
        phase: Phase::Running,
    }
}

fn everything(ps: &protostar_crds::Protostar) -> Vec<Object> {
    let ctx = Ctx::from_resource(ps).expect("namespaced fixture");
    let mut rng = StdRng::seed_from_u64(7);
    let mut all = secrets::render_missing(&ctx, &BTreeSet::new(), &mut rng);
    all.extend(plan::desired(&ctx, &rollout_serving(&ps.spec.version)));
    all
}

fn find<'a>(objs: &'a [Object], kind: Kind, name: &str) -> &'a Value {
    &objs
        .iter()
        .find(|o| o.kind == kind && o.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no {kind} {name} among {:?}",
                objs.iter().map(|o| (o.kind, &o.name)).collect::<Vec<_>>()
            )
        })
        .body
}

/// Deserialise into the API type and serialise back: unknown or misspelt fields vanish on the
/// way, so equality proves every field is one the type knows.
fn round_trip<T: DeserializeOwned + Serialize>(obj: &Object) {
    let typed: T = serde_json::from_value(obj.body.clone())
        .unwrap_or_else(|e| panic!("{} {} does not deserialise: {e}", obj.kind, obj.name));
    let back = serde_json::to_value(&typed).expect("serialises");
    assert_eq!(
        back, obj.body,
        "{} {} changed in a round trip",
        obj.kind, obj.name
    );
}

#[test]
fn every_rendered_object_round_trips_into_its_api_type() {
    let ps = Fixture::new("1.0.0").build();
    let objs = everything(&ps);
    let mut kinds = BTreeSet::new();
    for obj in &objs {
        kinds.insert(obj.kind);
        match obj.kind {
            Kind::Secret => round_trip::<Secret>(obj),
            Kind::PersistentVolumeClaim => round_trip::<PersistentVolumeClaim>(obj),
            Kind::ConfigMap => round_trip::<ConfigMap>(obj),
            Kind::Job => round_trip::<Job>(obj),
            Kind::Deployment => round_trip::<Deployment>(obj),
            Kind::Service => round_trip::<Service>(obj),
            Kind::PodDisruptionBudget => round_trip::<PodDisruptionBudget>(obj),
            Kind::HorizontalPodAutoscaler => round_trip::<HorizontalPodAutoscaler>(obj),
            Kind::NetworkPolicy => round_trip::<NetworkPolicy>(obj),
            Kind::CronJob => round_trip::<CronJob>(obj),
            Kind::Gateway => round_trip::<gateway_api::apis::standard::gateways::Gateway>(obj),
            Kind::HttpRoute => {
                round_trip::<gateway_api::apis::standard::httproutes::HttpRoute>(obj)
            }
            // No Rust types exist for these operators' CRDs: check the fields their
            // operators require instead.
            Kind::CnpgCluster => {
                assert_eq!(obj.body["apiVersion"], "postgresql.cnpg.io/v1");
                assert!(obj.body["spec"]["instances"].is_i64());
                assert!(obj.body["spec"]["storage"]["size"].is_string());
            }
            Kind::RabbitmqCluster => {
                assert_eq!(obj.body["apiVersion"], "rabbitmq.com/v1beta1");
                assert!(obj.body["spec"]["replicas"].is_i64());
            }
        }
    }
    assert_eq!(
        kinds,
        Kind::ALL.into_iter().collect(),
        "the full fixture renders every kind"
    );
}

#[test]
fn round_trip_check_catches_a_misspelt_field() {
    let bad = Object::new(
        Kind::Service,
        json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "x"}, "spec": {"selectr": {"a": "b"}}}),
    );
    assert!(std::panic::catch_unwind(|| round_trip::<Service>(&bad)).is_err());
}

#[test]
fn deployments_roll_without_downtime_and_probe_the_contract_paths() {
    let ps = Fixture::new("1.0.0").build();
    let objs = everything(&ps);
    for target in contract::TARGETS {
        let d = find(&objs, Kind::Deployment, &format!("ps-{target}"));
        let spec = &d["spec"];
        if target == contract::AUDIT {
            // The single writer of the trail: replaced, never doubled.
            assert_eq!(spec["strategy"], json!({"type": "Recreate"}));
            assert_eq!(spec["replicas"], 1);
            let volumes = &spec["template"]["spec"]["volumes"];
            assert!(
                volumes
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|v| v["persistentVolumeClaim"]["claimName"] == "ps-audit")
            );
        } else {
            assert_eq!(
                spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0,
                "{target}"
            );
        }
        let c = &spec["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "ghcr.io/protostar-dev/protostar:1.0.0");
        assert_eq!(c["command"], json!(["protostar"]));
        assert_eq!(c["args"], json!(["serve", "--target", target]));
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert!(
            c["lifecycle"]["preStop"]["sleep"]["seconds"]
                .as_i64()
                .is_some_and(|s| s > 0)
        );
        assert_eq!(c["ports"][0]["containerPort"], 8080);
        assert_eq!(c["envFrom"][0]["configMapRef"]["name"], "ps-config");
        let spread = &spec["template"]["spec"]["topologySpreadConstraints"][0];
        assert_eq!(spread["topologyKey"], "kubernetes.io/hostname");
        assert!(d["metadata"]["ownerReferences"][0]["controller"] == true);
    }
    let gw = find(&objs, Kind::Deployment, "ps-gateway");
    let c = &gw["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["ports"][1]["containerPort"], 8081);
    let env: Vec<(String, String)> = c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or("").into(),
                e["value"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert!(env.contains(&(
        "PROTOSTAR_UPSTREAMS__CHAT__PUBLIC".into(),
        "http://ps-chat:8080".into()
    )));
    // The gateway forwards `/admin` to each target's own admin listener.
    assert!(env.contains(&(
        "PROTOSTAR_UPSTREAMS__USER__ADMIN".into(),
        "http://ps-user:8081".into()
    )));
    assert!(
        !env.iter().any(|(k, _)| k.starts_with("PROTOSTAR_DATABASE")),
        "the gateway never sees the database"
    );
    // Replicas: default two, fixed where given, none where an autoscaler owns them.
    assert_eq!(
        find(&objs, Kind::Deployment, "ps-auth")["spec"]["replicas"],
        2
    );
    assert_eq!(
        find(&objs, Kind::Deployment, "ps-psych")["spec"]["replicas"],
        1
    );
    assert!(
        find(&objs, Kind::Deployment, "ps-chat")["spec"]
            .get("replicas")
            .is_none()
    );
    assert_eq!(
        find(&objs, Kind::HorizontalPodAutoscaler, "ps-chat")["spec"]["maxReplicas"],
        6
    );
}

fn env_of(d: &Value) -> Vec<String> {
    d["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn secrets_are_files_and_only_where_needed() {
    let ps = Fixture::new("1.0.0").build();
    let objs = everything(&ps);
    let auth = find(&objs, Kind::Deployment, "ps-auth");
    assert!(env_of(auth).contains(&"PROTOSTAR_AUTH__SIGNING_KEYS_FILE".into()));
    assert!(env_of(auth).contains(&"PROTOSTAR_DATABASE__URL_FILE".into()));
    for target in ["gateway", "user", "chat", "ai", "noti", "audit", "psych"] {
        let d = find(&objs, Kind::Deployment, &format!("ps-{target}"));
        assert!(
            !env_of(d).contains(&"PROTOSTAR_AUTH__SIGNING_KEYS_FILE".into()),
            "{target} must not see signing keys"
        );
    }
    let ai = find(&objs, Kind::Deployment, "ps-ai");
    assert!(env_of(ai).contains(&"PROTOSTAR_BLOB__SECRET_ACCESS_KEY_FILE".into()));
    // Model keys reach ai alone; the SMTP password noti alone.
    let noti = find(&objs, Kind::Deployment, "ps-noti");
    for (deployment, var) in [
        (ai, "PROTOSTAR_AI__GENERATION__OPENAI__API_KEY_FILE"),
        (ai, "PROTOSTAR_AI__GENERATION__ANTHROPIC__API_KEY_FILE"),
        (noti, "PROTOSTAR_NOTI__SMTP__PASSWORD_FILE"),
    ] {
        assert!(env_of(deployment).contains(&var.to_owned()), "{var}");
    }
    // No secret value is ever an environment value: every *_FILE points into a mount.
    for obj in objs.iter().filter(|o| o.kind == Kind::Deployment) {
        let c = &obj.body["spec"]["template"]["spec"]["containers"][0];
        for e in c["env"].as_array().into_iter().flatten() {
            if e["name"].as_str().is_some_and(|n| n.ends_with("_FILE")) {
                assert!(
                    e["value"]
                        .as_str()
                        .is_some_and(|v| v.starts_with("/var/run/secrets/protostar/"))
                );
            }
        }
    }
    let config = find(&objs, Kind::ConfigMap, "ps-config");
    assert_eq!(config["data"]["PROTOSTAR_PUBLIC_ADDR"], "0.0.0.0:8080");
    assert_eq!(config["data"]["PROTOSTAR_ADMIN_ADDR"], "0.0.0.0:8081");
    assert_eq!(
        config["data"]["PROTOSTAR_AUTH__JWKS_URL"],
        "http://ps-auth:8080/.well-known/jwks.json"
    );
    assert_eq!(
        config["data"]["PROTOSTAR_REDIS__URL"],
        "redis://ps-redis.home.svc:6379"
    );
    assert_eq!(config["data"]["PROTOSTAR_DATA_DIR"], "/var/lib/protostar");
    // Blob settings are per process (only where the credentials are), not shared.
    assert!(config["data"].get("PROTOSTAR_BLOB__KIND").is_none());
    assert_eq!(
        config["data"]["PROTOSTAR_AUTH__ISSUER"],
        "https://chat.example.org"
    );
    assert!(
        config["data"]
            .as_object()
            .is_some_and(|d| d.keys().all(|k| !k.ends_with("_FILE")))
    );
}

#[test]
fn data_holders_carry_no_owner_reference() {
    let ps = Fixture::new("1.0.0").build();
    for obj in everything(&ps) {
        let owned = obj.body["metadata"]["ownerReferences"].is_array();
        let holds_data = matches!(
            obj.kind,
            Kind::Secret | Kind::PersistentVolumeClaim | Kind::CnpgCluster | Kind::RabbitmqCluster
        );
        assert_eq!(owned, !holds_data, "{} {}", obj.kind, obj.name);
    }
}

#[test]
fn generated_secrets_are_never_rendered_over_existing_ones() {
    let ps = Fixture::new("1.0.0").build();
    let ctx = Ctx::from_resource(&ps).expect("ctx");
    let mut rng = StdRng::seed_from_u64(1);
    let first = secrets::render_missing(&ctx, &BTreeSet::new(), &mut rng);
    let names: BTreeSet<String> = first.iter().map(|o| o.name.clone()).collect();
    assert_eq!(
        names,
        [
            "ps-broker-credentials",
            "ps-db-credentials",
            "ps-signing-keys"
        ]
        .map(String::from)
        .into()
    );
    // With all of them present nothing is rendered, whatever the generator.
    assert!(secrets::render_missing(&ctx, &names, &mut rng).is_empty());
    // With one missing, only that one.
    let mut some = names.clone();
    some.remove("ps-db-credentials");
    let again = secrets::render_missing(&ctx, &some, &mut rng);
    assert_eq!(
        again.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
        ["ps-db-credentials"]
    );
    // Fresh randomness for every generation.
    assert_ne!(
        again[0].body["stringData"]["password"],
        find(&first, Kind::Secret, "ps-db-credentials")["stringData"]["password"]
    );
    let db = find(&first, Kind::Secret, "ps-db-credentials");
    let url = db["stringData"]["url"].as_str().unwrap_or_default();
    assert!(
        url.starts_with("postgres://protostar:")
            && url.ends_with("@ps-db-rw.home.svc:5432/protostar"),
        "{url}"
    );
}

#[test]
fn signing_key_is_a_pkcs8_ed25519_pem() {
    use base64::Engine as _;
    let pem = secrets::ed25519_pkcs8_pem(&[7u8; 32]);
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("base64");
    assert_eq!(der.len(), 48);
    assert_eq!(
        &der[..16],
        &[
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20
        ]
    );
    assert_eq!(&der[16..], &[7u8; 32]);
}

fn images(objs: &[Object]) -> BTreeSet<String> {
    objs.iter()
        .filter(|o| o.kind == Kind::Deployment && o.name != "ps-redis")
        .filter_map(|o| {
            o.body["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn upgrade_moves_services_only_after_the_migration_succeeded() {
    let ps = Fixture::new("1.1.0").build();
    let ctx = Ctx::from_resource(&ps).expect("ctx");
    let job_name = migration::name(&ctx, "1.1.0");
    for phase in [
        Phase::Absent,
        Phase::Running,
        Phase::Failed("BackoffLimitExceeded: exit 1".into()),
    ] {
        let r = plan::rollout("1.1.0", Some("1.0.0"), phase.clone(), false);
        assert_eq!(
            r.serving.as_deref(),
            Some("1.0.0"),
            "{phase:?}: the old release keeps serving"
        );
        let objs = plan::desired(&ctx, &r);
        assert_eq!(
            images(&objs),
            BTreeSet::from(["ghcr.io/protostar-dev/protostar:1.0.0".to_owned()])
        );
        let job = find(&objs, Kind::Job, &job_name);
        assert_eq!(
            job["spec"]["template"]["spec"]["containers"][0]["image"],
            "ghcr.io/protostar-dev/protostar:1.1.0"
        );
        assert_eq!(
            job["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["migrate"])
        );
        let cron = find(&objs, Kind::CronJob, "ps-job-recrawl");
        let cron_pod = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(cron_pod["image"], "ghcr.io/protostar-dev/protostar:1.0.0");
        assert_eq!(cron_pod["args"], json!(["job", "recrawl"]));
    }
    let done = plan::rollout("1.1.0", Some("1.0.0"), Phase::Succeeded, false);
    assert_eq!(done.serving.as_deref(), Some("1.1.0"));
    let objs = plan::desired(&ctx, &done);
    assert_eq!(
        images(&objs),
        BTreeSet::from(["ghcr.io/protostar-dev/protostar:1.1.0".to_owned()])
    );
    assert!(
        objs.iter().all(|o| o.kind != Kind::Job),
        "no new Job once migrated"
    );
}

#[test]
fn first_install_serves_nothing_before_the_first_migration() {
    let ps = Fixture::new("1.0.0").build();
    let ctx = Ctx::from_resource(&ps).expect("ctx");
    let r = plan::rollout("1.0.0", None, Phase::Running, false);
    assert_eq!(r.serving, None);
    let objs = plan::desired(&ctx, &r);
    assert!(
        objs.iter()
            .all(|o| o.kind != Kind::Deployment || o.name == "ps-redis")
    );
    assert!(objs.iter().all(|o| o.kind != Kind::CronJob));
    assert!(objs.iter().any(|o| o.kind == Kind::Job));
    // A status that already records the migration needs no Job, even if the Job was removed.
    let r = plan::rollout("1.0.0", Some("1.0.0"), Phase::Absent, false);
    assert_eq!((r.serving.as_deref(), r.migrate), (Some("1.0.0"), None));
}

#[test]
fn migration_job_names_are_short_distinct_and_valid() {
    let ps = Fixture::new("1.0.0").build();
    let ctx = Ctx::from_resource(&ps).expect("ctx");
    let a = migration::name(&ctx, "1.0.0");
    let b = migration::name(&ctx, "1-0-0");
    assert_ne!(a, b);
    let long = migration::name(&ctx, &"9".repeat(63));
    for n in [&a, &b, &long] {
        assert!(n.len() <= 63, "{n}");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{n}"
        );
        assert!(!n.ends_with('-') && n.starts_with("ps-migrate-"), "{n}");
    }
}

#[test]
fn migration_phase_reads_the_job_status() {
    assert_eq!(migration::phase(None), Phase::Absent);
    assert_eq!(
        migration::phase(Some(&json!({"status": {"active": 1}}))),
        Phase::Running
    );
    assert_eq!(
        migration::phase(Some(&json!({"status": {"succeeded": 1}}))),
        Phase::Succeeded
    );
    let failed = json!({"status": {"failed": 3, "conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}});
    assert_eq!(
        migration::phase(Some(&failed)),
        Phase::Failed("BackoffLimitExceeded: Job has reached the specified backoff limit".into())
    );
}

#[test]
fn routes_split_public_and_admin_listeners() {
    let ps = Fixture::new("1.0.0").build();
    let objs = everything(&ps);
    let gw = find(&objs, Kind::Gateway, "ps");
    let listeners: Vec<&str> = gw["spec"]["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(listeners, ["public-0", "public-1", "admin"]);
    assert_eq!(
        gw["spec"]["listeners"][2]["tls"]["certificateRefs"][0]["name"],
        "admin-tls"
    );
    let public = find(&objs, Kind::HttpRoute, "ps-public");
    assert_eq!(
        public["spec"]["hostnames"],
        json!(["chat.example.org", "widget.example.org"])
    );
    assert_eq!(
        public["spec"]["rules"][0]["backendRefs"][0],
        json!({"name": "ps-gateway", "port": 8080})
    );
    let admin = find(&objs, Kind::HttpRoute, "ps-admin");
    assert_eq!(
        admin["spec"]["parentRefs"],
        json!([{"name": "ps", "sectionName": "admin"}])
    );
    assert_eq!(
        admin["spec"]["rules"][0]["backendRefs"][0],
        json!({"name": "ps-gateway", "port": 8081})
    );

    // Attached to an existing Gateway: no Gateway rendered, parents point at it.
    let ps = Fixture::new("1.0.0")
        .spec(|s| s["gateway"] = json!({"existing": {"name": "shared", "namespace": "infra", "adminSectionName": "admin"}}))
        .build();
    let objs = everything(&ps);
    assert!(objs.iter().all(|o| o.kind != Kind::Gateway));
    let admin = find(&objs, Kind::HttpRoute, "ps-admin");
    assert_eq!(
        admin["spec"]["parentRefs"],
        json!([{"name": "shared", "namespace": "infra", "sectionName": "admin"}])
    );
    let public = find(&objs, Kind::HttpRoute, "ps-public");
    assert_eq!(
        public["spec"]["parentRefs"],
        json!([{"name": "shared", "namespace": "infra"}])
    );
}

#[test]
fn network_policies_open_only_the_gateway_to_the_outside() {
    let ps = Fixture::new("1.0.0").build();
    let objs = everything(&ps);
    let deny = find(&objs, Kind::NetworkPolicy, "ps-default-deny");
    assert_eq!(deny["spec"]["ingress"], json!([]));
    let gw = find(&objs, Kind::NetworkPolicy, "ps-gateway");
    assert!(
        gw["spec"]["ingress"][0].get("from").is_none(),
        "the gateway takes traffic from anywhere"
    );
    let services = find(&objs, Kind::NetworkPolicy, "ps-services");
    assert_eq!(
        services["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"],
        json!({"app.kubernetes.io/instance": "ps"})
    );
    let values = &services["spec"]["podSelector"]["matchExpressions"][0]["values"];
    assert!(
        !values
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v == "gateway")
    );
    for store in ["ps-database", "ps-broker", "ps-redis"] {
        let p = find(&objs, Kind::NetworkPolicy, store);
        assert_eq!(
            p["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["protostar.dev/data-client"],
            "true",
            "{store} only from data clients"
        );
    }
    // The gateway's pods are data clients only through what they need: they are labelled
    // because every serving pod may use Redis.
    let gw_pod =
        &find(&objs, Kind::Deployment, "ps-gateway")["spec"]["template"]["metadata"]["labels"];
    assert_eq!(gw_pod["protostar.dev/data-client"], "true");
}

#[test]
fn external_stores_render_no_managed_objects() {
    let ps = Fixture::new("1.0.0")
        .spec(|s| {
            s["database"] = json!({"mode": "External", "external": {"urlSecretRef": {"name": "pg", "key": "url"}}});
            s["broker"] = json!({"mode": "None"});
            s["redis"] = json!({"mode": "External", "external": {"urlSecretRef": {"name": "redis", "key": "url"}}});
        })
        .build();
    let objs = everything(&ps);
    assert!(
        objs.iter()
            .all(|o| !matches!(o.kind, Kind::CnpgCluster | Kind::RabbitmqCluster))
    );
    assert!(objs.iter().all(|o| o.name != "ps-redis"
        && o.name != "ps-db-credentials"
        && o.name != "ps-broker-credentials"));
    let user = find(&objs, Kind::Deployment, "ps-user");
    let vols = &user["spec"]["template"]["spec"]["volumes"];
    assert!(
        vols.as_array()
            .into_iter()
            .flatten()
            .any(|v| v["secret"]["secretName"] == "pg")
    );
    assert!(
        !env_of(user).contains(&"PROTOSTAR_BROKER__URL_FILE".into()),
        "no broker: events in-process"
    );
    assert!(env_of(user).contains(&"PROTOSTAR_REDIS__URL_FILE".into()));
}

#[test]
fn deployment_availability_follows_its_status() {
    let ps = Fixture::new("1.0.0").build();
    let objs = everything(&ps);
    let mut d = find(&objs, Kind::Deployment, "ps-auth").clone();
    assert!(!workload::is_available(&d));
    d["metadata"]["generation"] = json!(1);
    d["status"] = json!({"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2});
    assert!(workload::is_available(&d));
    assert_eq!(workload::version_of(&d), Some("1.0.0"));
    d["status"]["availableReplicas"] = json!(1);
    assert!(!workload::is_available(&d));
}

#[test]
fn a_new_migration_waits_for_a_running_one() {
    let r = plan::rollout("1.2.0", Some("1.0.0"), Phase::Absent, true);
    assert_eq!((r.serving.as_deref(), r.migrate), (Some("1.0.0"), None));
    // Once this release's Job exists, it is tracked whatever else runs.
    let r = plan::rollout("1.2.0", Some("1.0.0"), Phase::Running, true);
    assert_eq!(r.migrate.as_deref(), Some("1.2.0"));
}

#[test]
fn the_crd_names_exactly_the_contract_targets() {
    let crd = serde_json::to_value(protostar_crds::crd()).expect("CRD serialises");
    let services = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["services"]["properties"];
    let in_crd: BTreeSet<&str> = services
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let in_contract: BTreeSet<&str> = contract::TARGETS.into_iter().collect();
    assert_eq!(in_crd, in_contract);
    let ps = Fixture::new("1.0.0")
        .spec(|s| {
            for t in contract::TARGETS {
                s["services"][t] = json!({"replicas": 3});
            }
        })
        .build();
    for t in contract::TARGETS {
        assert_eq!(
            ps.spec.services.for_target(t).and_then(|s| s.replicas),
            Some(3),
            "{t}"
        );
    }
}

fn env_names(pod: &Value) -> Vec<String> {
    pod["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["env"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn every_rendered_variable_is_one_the_binary_accepts() {
    let ps = Fixture::new("1.0.0").build();
    let objs = everything(&ps);
    let mut names: Vec<String> = Vec::new();
    for obj in &objs {
        let pod = match obj.kind {
            Kind::Deployment | Kind::Job => &obj.body["spec"]["template"]["spec"],
            Kind::CronJob => &obj.body["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            Kind::ConfigMap => {
                names.extend(
                    obj.body["data"]
                        .as_object()
                        .into_iter()
                        .flat_map(|m| m.keys().cloned()),
                );
                continue;
            }
            _ => continue,
        };
        if obj.name != "ps-redis" {
            names.extend(env_names(pod));
        }
    }
    assert!(names.len() > 20, "{names:?}");
    for name in &names {
        assert!(
            contract::accepts(name),
            "{name} would stop the binary from starting"
        );
    }
    // Database processes never migrate on start in Kubernetes: the Job does.
    let auth = find(&objs, Kind::Deployment, "ps-auth");
    let env = &auth["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .into_iter()
            .flatten()
            .any(|e| e["name"] == "PROTOSTAR_DATABASE__MIGRATE_ON_START" && e["value"] == "false")
    );
    // Blob settings only where the credentials are.
    let gw = find(&objs, Kind::Deployment, "ps-gateway");
    assert!(
        !env_names(&gw["spec"]["template"]["spec"])
            .iter()
            .any(|n| n.starts_with("PROTOSTAR_BLOB"))
    );
    assert!(
        env_names(&find(&objs, Kind::Deployment, "ps-chat")["spec"]["template"]["spec"])
            .contains(&"PROTOSTAR_BLOB__BUCKET".to_owned())
    );
}

#[test]
fn top_level_key_reads_variables() {
    assert_eq!(
        contract::top_level_key("PROTOSTAR_DATABASE__URL_FILE").as_deref(),
        Some("database")
    );
    assert_eq!(
        contract::top_level_key("PROTOSTAR_PUBLIC_ADDR").as_deref(),
        Some("public_addr")
    );
    assert_eq!(
        contract::top_level_key("PROTOSTAR_QUOTAS__X").as_deref(),
        Some("quotas")
    );
    assert_eq!(contract::top_level_key("OTHER"), None);
    assert!(!contract::accepts("PROTOSTAR_QUOTAS__X"));
    assert!(!contract::accepts("PROTOSTAR_MODELS__OPENAI__API_KEY_FILE"));
}

/// The cross-check with the binary: its list of accepted top-level keys, read from its source.
#[test]
fn known_keys_match_the_binary() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/protostar/src/serve.rs");
    let Ok(source) = std::fs::read_to_string(&path) else {
        println!(
            "skipped: {} not found, nothing to cross-check",
            path.display()
        );
        return;
    };
    let Some(start) = source.find("pub const KNOWN_KEYS") else {
        panic!(
            "{} no longer declares KNOWN_KEYS: update this cross-check",
            path.display()
        );
    };
    let list = &source[start..];
    let list = &list[list.find('[').map_or(0, |i| i + 1)..];
    let list = &list[..list.find("];").unwrap_or(0)];
    let binary: BTreeSet<&str> = list.split('"').skip(1).step_by(2).collect();
    let ours: BTreeSet<&str> = contract::KNOWN_TOP_LEVEL_KEYS.into_iter().collect();
    assert_eq!(
        ours, binary,
        "operator/src/contract.rs KNOWN_TOP_LEVEL_KEYS differs from the binary's KNOWN_KEYS"
    );
}

/// `(name, value)` of every `env` entry of a Deployment's container.
fn env_pairs(d: &Value) -> Vec<(String, String)> {
    d["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or("").into(),
                e["value"].as_str().unwrap_or("").into(),
            )
        })
        .collect()
}

fn value_of<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn chat_reaches_ai_and_believes_the_gateway() {
    let ps = Fixture::new("1.0.0").build();
    let objs = everything(&ps);
    let chat = env_pairs(find(&objs, Kind::Deployment, "ps-chat"));
    // chat refuses to start without ai's admin listener when ai runs apart.
    assert_eq!(
        value_of(&chat, "PROTOSTAR_UPSTREAMS__AI__ADMIN"),
        Some("http://ps-ai:8081")
    );
    // user's export asks chat for the account's chat data.
    let user = env_pairs(find(&objs, Kind::Deployment, "ps-user"));
    assert_eq!(
        value_of(&user, "PROTOSTAR_UPSTREAMS__CHAT__ADMIN"),
        Some("http://ps-chat:8081")
    );
    let private = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7";
    assert_eq!(
        value_of(&chat, "PROTOSTAR_CHAT__TRUSTED_PROXIES"),
        Some(private)
    );
    let auth = env_pairs(find(&objs, Kind::Deployment, "ps-auth"));
    assert_eq!(
        value_of(&auth, "PROTOSTAR_AUTH__TRUSTED_PROXIES"),
        Some(private)
    );
    // Quotas and the upload limit: chat's own keys, in chat's Deployment.
    for (name, value) in [
        ("PROTOSTAR_CHAT__QUOTAS__GUEST_TOTAL", "3"),
        ("PROTOSTAR_CHAT__QUOTAS__STARGAZER_PER_DAY", "10"),
        ("PROTOSTAR_CHAT__QUOTAS__GUEST_IP_PER_DAY", "12"),
        ("PROTOSTAR_CHAT__QUOTAS__CHATBOT_PER_DAY", "500"),
        ("PROTOSTAR_CHAT__QUOTAS__TIMEZONE", "Asia/Seoul"),
        ("PROTOSTAR_CHAT__CONTENT__MAX_UPLOAD_BYTES", "31457280"),
    ] {
        assert_eq!(value_of(&chat, name), Some(value), "{name}");
    }
    // The gateway forwards a body as large as chat accepts, plus the multipart framing; it
    // believes no X-Forwarded-For until told whose.
    let gw = env_pairs(find(&objs, Kind::Deployment, "ps-gateway"));
    assert_eq!(
        value_of(&gw, "PROTOSTAR_GATEWAY__MAX_UPLOAD_BYTES"),
        Some("32505856")
    );
    assert_eq!(value_of(&gw, "PROTOSTAR_GATEWAY__TRUSTED_PROXIES"), None);
    // Each target's settings reach that target only.
    for target in contract::TARGETS {
        let env = env_pairs(find(&objs, Kind::Deployment, &format!("ps-{target}")));
        for (name, _) in &env {
            let section = contract::top_level_key(name).unwrap_or_default();
            if ["chat", "ai", "gateway"].contains(&section.as_str()) {
                assert_eq!(section, target, "{name} in {target}'s Deployment");
            }
        }
        if target != "auth" {
            assert_eq!(value_of(&env, "PROTOSTAR_AUTH__TRUSTED_PROXIES"), None);
        }
        if target != "chat" && target != "gateway" {
            assert_eq!(
                value_of(&env, "PROTOSTAR_UPSTREAMS__AI__ADMIN"),
                None,
                "{target}"
            );
        }
    }
    let config = find(&objs, Kind::ConfigMap, "ps-config");
    assert!(config["data"].as_object().is_some_and(|d| {
        d.keys()
            .all(|k| !k.starts_with("PROTOSTAR_CHAT__") && !k.starts_with("PROTOSTAR_AI__"))
    }));

    // Chosen proxies replace the default; an empty list renders nothing (no header believed).
    let ps = Fixture::new("1.0.0")
        .spec(|s| {
            s["network"] = json!({"trustedProxies": [], "gatewayTrustedProxies": ["10.1.0.0/16", "192.0.2.7"]});
            s["quotas"] = json!({});
        })
        .build();
    let objs = everything(&ps);
    let chat = env_pairs(find(&objs, Kind::Deployment, "ps-chat"));
    assert_eq!(value_of(&chat, "PROTOSTAR_CHAT__TRUSTED_PROXIES"), None);
    assert!(chat.iter().all(|(k, _)| !k.starts_with("PROTOSTAR_CHAT__")));
    let gw = env_pairs(find(&objs, Kind::Deployment, "ps-gateway"));
    assert_eq!(
        value_of(&gw, "PROTOSTAR_GATEWAY__TRUSTED_PROXIES"),
        Some("10.1.0.0/16,192.0.2.7")
    );
    assert_eq!(value_of(&gw, "PROTOSTAR_GATEWAY__MAX_UPLOAD_BYTES"), None);
}

#[test]
fn ai_gets_its_models_and_their_keys_as_files() {
    let ps = Fixture::new("1.0.0").build();
    let objs = everything(&ps);
    let d = find(&objs, Kind::Deployment, "ps-ai");
    let ai = env_pairs(d);
    for (name, value) in [
        (
            "PROTOSTAR_AI__GENERATION__ORDER",
            "openai,anthropic,extractive",
        ),
        (
            "PROTOSTAR_AI__GENERATION__OPENAI__BASE_URL",
            "http://vllm.ai.svc:8000",
        ),
        (
            "PROTOSTAR_AI__GENERATION__OPENAI__MODEL",
            "openai/gpt-oss-120b",
        ),
        (
            "PROTOSTAR_AI__GENERATION__OPENAI__API_KEY_FILE",
            "/var/run/secrets/protostar/model-openai/token",
        ),
        (
            "PROTOSTAR_AI__GENERATION__ANTHROPIC__MODEL",
            "claude-sonnet-4-5",
        ),
        (
            "PROTOSTAR_AI__GENERATION__ANTHROPIC__API_KEY_FILE",
            "/var/run/secrets/protostar/model-anthropic/api-key",
        ),
        ("PROTOSTAR_AI__EMBEDDING__PROVIDER", "openai"),
        (
            "PROTOSTAR_AI__EMBEDDING__BASE_URL",
            "http://ollama.ai.svc:11434",
        ),
        ("PROTOSTAR_AI__EMBEDDING__MODEL", "e5-small"),
    ] {
        assert_eq!(value_of(&ai, name), Some(value), "{name}");
    }
    // Anthropic's address is the service's default; no key for the embedding server.
    assert_eq!(
        value_of(&ai, "PROTOSTAR_AI__GENERATION__ANTHROPIC__BASE_URL"),
        None
    );
    assert_eq!(value_of(&ai, "PROTOSTAR_AI__EMBEDDING__API_KEY_FILE"), None);
    let pod = &d["spec"]["template"]["spec"];
    assert!(
        pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v["name"] == "model-openai"
                && v["secret"]["secretName"] == "vllm"
                && v["secret"]["items"] == json!([{"key": "token", "path": "token"}]))
    );
    assert!(
        pod["containers"][0]["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["name"] == "model-anthropic"
                && m["mountPath"] == "/var/run/secrets/protostar/model-anthropic"
                && m["readOnly"] == true)
    );
    // Nothing of the models anywhere else: not in other Deployments, Jobs or CronJobs.
    for obj in &objs {
        let pod = match obj.kind {
            Kind::Deployment if obj.name != "ps-ai" => &obj.body["spec"]["template"]["spec"],
            Kind::Job => &obj.body["spec"]["template"]["spec"],
            Kind::CronJob => &obj.body["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            _ => continue,
        };
        assert!(
            env_names(pod)
                .iter()
                .all(|n| !n.starts_with("PROTOSTAR_AI__")),
            "{} {}",
            obj.kind,
            obj.name
        );
        assert!(
            pod["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|v| !v["name"].as_str().unwrap_or("").starts_with("model-")),
            "{} {}",
            obj.kind,
            obj.name
        );
    }

    // A Local embedding model names its folder; no generation section keeps the default.
    let ps = Fixture::new("1.0.0")
        .spec(|s| {
            s["models"] = json!({"embedding": {"provider": "Local", "modelDir": "/models/multilingual-e5-small"}});
        })
        .build();
    let objs = everything(&ps);
    let ai = env_pairs(find(&objs, Kind::Deployment, "ps-ai"));
    let names: Vec<&str> = ai
        .iter()
        .filter(|(k, _)| k.starts_with("PROTOSTAR_AI__"))
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "PROTOSTAR_AI__EMBEDDING__PROVIDER",
            "PROTOSTAR_AI__EMBEDDING__MODEL_DIR"
        ]
    );
    assert_eq!(
        value_of(&ai, "PROTOSTAR_AI__EMBEDDING__PROVIDER"),
        Some("local")
    );
}

/// Whether a NetworkPolicy selector (`matchLabels`, `matchExpressions` with `In`) selects
/// pods with these labels.
fn selects(selector: &Value, labels: &Value) -> bool {
    let by_labels = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| &labels[k] == v);
    let by_expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            assert_eq!(e["operator"], "In", "only In is evaluated here");
            e["values"]
                .as_array()
                .is_some_and(|vs| vs.contains(&labels[e["key"].as_str().unwrap_or("")]))
        });
    by_labels && by_expressions
}

/// Whether pods labelled `from` may open `port` on pods labelled `to`, under the rendered
/// policies (ingress only; the pods are in one namespace).
fn may_reach(policies: &[&Value], from: &Value, to: &Value, port: i64) -> bool {
    policies
        .iter()
        .filter(|p| selects(&p["spec"]["podSelector"], to))
        .flat_map(|p| p["spec"]["ingress"].as_array().cloned().unwrap_or_default())
        .any(|rule| {
            let peer = rule.get("from").is_none_or(|peers| {
                peers.as_array().into_iter().flatten().any(|peer| {
                    peer.get("namespaceSelector").is_none() && selects(&peer["podSelector"], from)
                })
            });
            let ports = rule.get("ports").is_none_or(|ports| {
                ports
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["port"] == port)
            });
            peer && ports
        })
}

#[test]
fn network_policies_let_chat_reach_ai_admin_only() {
    let ps = Fixture::new("1.0.0").build();
    let objs = everything(&ps);
    let policies: Vec<&Value> = objs
        .iter()
        .filter(|o| o.kind == Kind::NetworkPolicy)
        .map(|o| &o.body)
        .collect();
    let pod = |t: &str| {
        find(&objs, Kind::Deployment, &format!("ps-{t}"))["spec"]["template"]["metadata"]["labels"]
            .clone()
    };
    let (chat, ai, gw, user) = (pod("chat"), pod("ai"), pod("gateway"), pod("user"));
    assert!(may_reach(&policies, &chat, &ai, 8081), "chat → ai admin");
    assert!(may_reach(&policies, &gw, &ai, 8081), "gateway → ai admin");
    assert!(may_reach(&policies, &chat, &ai, 8080), "chat → ai public");
    assert!(!may_reach(&policies, &user, &ai, 8081), "user ↛ ai admin");
    assert!(
        may_reach(&policies, &user, &chat, 8081),
        "user → chat admin (the export)"
    );
    assert!(!may_reach(&policies, &ai, &chat, 8081), "ai ↛ chat admin");
    assert!(
        !may_reach(&policies, &chat, &user, 8081),
        "chat ↛ user admin"
    );
    let internal = find(&objs, Kind::NetworkPolicy, "ps-internal-ai");
    assert_eq!(
        internal["spec"]["ingress"][0]["ports"],
        json!([{"protocol": "TCP", "port": 8081}])
    );
}

/// The fields of `struct`/`enum NAME` in a Rust source: `name:` lines inside its braces.
fn fields_of(source: &str, name: &str) -> Option<BTreeSet<String>> {
    let start = ["pub struct ", "pub enum "]
        .iter()
        .find_map(|kw| source.find(&format!("{kw}{name} {{")))?;
    let body = &source[start..];
    let body = &body[..body.find("\n}")?];
    Some(
        body.lines()
            .skip(1)
            .map(str::trim)
            .filter(|l| !l.starts_with("//") && !l.starts_with('#'))
            .filter_map(|l| {
                let l = l.strip_prefix("pub ").unwrap_or(l);
                let (ident, rest) = l.split_once(':')?;
                (!rest.starts_with(':')
                    && !ident.is_empty()
                    && ident
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .then(|| ident.to_owned())
            })
            .collect(),
    )
}

/// The cross-check one level down: every nested key the operator renders under a section that
/// refuses unknown fields names a field the service's configuration type has (read from its
/// source), so no rendered variable stops a process from starting.
#[test]
fn nested_keys_name_fields_the_services_read() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../services");
    if !root.join("chat/src/lib.rs").exists() {
        println!("skipped: services/ not found, nothing to cross-check");
        return;
    }
    // Longest prefix first: (variable prefix, source file, type).
    let sections = [
        (
            "PROTOSTAR_CHAT__QUOTAS__",
            "chat/src/ask/quota.rs",
            "QuotaConfig",
        ),
        (
            "PROTOSTAR_CHAT__CONTENT__",
            "chat/src/content/config.rs",
            "ContentConfig",
        ),
        ("PROTOSTAR_CHAT__", "chat/src/lib.rs", "ChatConfig"),
        (
            "PROTOSTAR_AI__GENERATION__OPENAI__",
            "ai/src/generate/openai.rs",
            "OpenAiConfig",
        ),
        (
            "PROTOSTAR_AI__GENERATION__GEMINI__",
            "ai/src/generate/gemini.rs",
            "GeminiConfig",
        ),
        (
            "PROTOSTAR_AI__GENERATION__ANTHROPIC__",
            "ai/src/generate/anthropic.rs",
            "AnthropicConfig",
        ),
        (
            "PROTOSTAR_AI__GENERATION__",
            "ai/src/generate/config.rs",
            "GenerationConfig",
        ),
        (
            "PROTOSTAR_AI__EMBEDDING__",
            "ai/src/embed/mod.rs",
            "EmbeddingConfig",
        ),
        (
            "PROTOSTAR_AUTH__",
            "kernel/src/tokens/verifier.rs",
            "AuthConfig",
        ),
        (
            "PROTOSTAR_GATEWAY__",
            "gateway/src/config.rs",
            "GatewayConfig",
        ),
        ("PROTOSTAR_NOTI__SMTP__", "noti/src/config.rs", "SmtpConfig"),
        (
            "PROTOSTAR_NOTI__DISCORD__",
            "noti/src/config.rs",
            "DiscordConfig",
        ),
    ];
    // Specs that between them render every setting: the full fixture, gateway proxies, Gemini
    // and a Local embedding model.
    let specs = [
        Fixture::new("1.0.0").build(),
        Fixture::new("1.0.0")
            .spec(|s| {
                s["network"]["gatewayTrustedProxies"] = json!(["10.1.0.0/16"]);
                s["models"] = json!({
                    "generation": {"order": ["Gemini"], "gemini": {"baseUrl": "https://g.example", "model": "gemini-2.5-flash", "apiKeySecretRef": {"name": "g", "key": "k"}}},
                    "embedding": {"provider": "Local", "modelDir": "/models/e5"}
                });
            })
            .build(),
        Fixture::new("1.0.0")
            .spec(|s| {
                s["models"] = json!({"embedding": {"provider": "Gemini", "model": "text-embedding-004", "apiKeySecretRef": {"name": "g", "key": "k"}}});
            })
            .build(),
    ];
    let mut checked = BTreeSet::new();
    for ps in &specs {
        let objs = everything(ps);
        let mut names: Vec<String> = Vec::new();
        for obj in &objs {
            match obj.kind {
                Kind::Deployment | Kind::Job => {
                    names.extend(env_names(&obj.body["spec"]["template"]["spec"]))
                }
                Kind::CronJob => names.extend(env_names(
                    &obj.body["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                )),
                Kind::ConfigMap => names.extend(
                    obj.body["data"]
                        .as_object()
                        .into_iter()
                        .flat_map(|m| m.keys().cloned()),
                ),
                _ => {}
            }
        }
        for name in names {
            if let Some(rest) = name.strip_prefix("PROTOSTAR_UPSTREAMS__") {
                let (target, listener) = rest.split_once("__").expect("upstreams.<t>.<listener>");
                assert!(
                    contract::TARGETS.contains(&target.to_ascii_lowercase().as_str()),
                    "{name}"
                );
                assert!(["PUBLIC", "ADMIN"].contains(&listener), "{name}");
                continue;
            }
            let Some((prefix, file, ty)) = sections.iter().find(|(p, _, _)| name.starts_with(p))
            else {
                continue;
            };
            let key = name[prefix.len()..]
                .strip_suffix("_FILE")
                .unwrap_or(&name[prefix.len()..]);
            assert!(
                !key.contains("__"),
                "{name}: a section this test does not know"
            );
            let source = std::fs::read_to_string(root.join(file)).unwrap_or_default();
            let mut fields = fields_of(&source, ty)
                .unwrap_or_else(|| panic!("no {ty} in services/{file}: update this cross-check"));
            if *ty == "EmbeddingConfig" {
                fields.insert("provider".into()); // the enum's tag
            }
            assert!(
                fields.contains(&key.to_ascii_lowercase()),
                "{name}: {ty} (services/{file}) has no field `{}`; it has {fields:?}",
                key.to_ascii_lowercase()
            );
            checked.insert(name);
        }
    }
    for must in [
        "PROTOSTAR_CHAT__QUOTAS__TIMEZONE",
        "PROTOSTAR_CHAT__TRUSTED_PROXIES",
        "PROTOSTAR_AI__GENERATION__ORDER",
        "PROTOSTAR_AI__GENERATION__GEMINI__API_KEY_FILE",
        "PROTOSTAR_AI__EMBEDDING__MODEL_DIR",
        "PROTOSTAR_AUTH__TRUSTED_PROXIES",
        "PROTOSTAR_GATEWAY__TRUSTED_PROXIES",
    ] {
        assert!(
            checked.contains(must),
            "{must} was not rendered: {checked:?}"
        );
    }
    // The names the operator puts in `ai.generation.order` and `ai.embedding.provider` are the
    // service's.
    let config =
        std::fs::read_to_string(root.join("ai/src/generate/config.rs")).unwrap_or_default();
    for m in [
        AnswerModel::Extractive,
        AnswerModel::OpenAI,
        AnswerModel::Gemini,
        AnswerModel::Anthropic,
    ] {
        assert!(config.contains(&format!("\"{}\"", m.as_str())), "{m:?}");
    }
    let embed = std::fs::read_to_string(root.join("ai/src/embed/mod.rs")).unwrap_or_default();
    let variants: BTreeSet<String> = ["Local", "Openai", "Gemini"]
        .into_iter()
        .filter(|v| embed.contains(&format!("    {v} {{")))
        .map(str::to_ascii_lowercase)
        .collect();
    for p in [
        EmbeddingProvider::Local,
        EmbeddingProvider::OpenAI,
        EmbeddingProvider::Gemini,
    ] {
        assert!(variants.contains(p.as_str()), "{p:?} among {variants:?}");
    }
}
