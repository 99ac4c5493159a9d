//! Leader election against the stand-in API server (no Kubernetes API server can run here):
//! two candidates on one Lease, takeover after expiry, and the loser stepping down.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use protostar_operator::Error;
use protostar_operator::fake_api::{FakeApi, collection};
use protostar_operator::leader::LeaderElector;
use serde_json::json;

const NS: &str = "protostar-system";

fn elector(client: &kube::Client, who: &str) -> LeaderElector {
    LeaderElector::new(
        Api::<Lease>::namespaced(client.clone(), NS),
        "protostar-operator",
        who,
        Duration::from_secs(15),
    )
}

fn leases() -> String {
    collection("coordination.k8s.io/v1", "leases", NS)
}

#[tokio::test]
async fn one_leader_at_a_time_and_takeover_after_expiry() {
    let (client, fake) = FakeApi::start();
    let a = elector(&client, "a");
    let b = elector(&client, "b");

    assert!(
        a.try_acquire_or_renew().await.expect("a elects"),
        "a takes the free lease"
    );
    assert!(
        !b.try_acquire_or_renew().await.expect("b elects"),
        "b waits while a's lease is live"
    );
    assert!(
        a.try_acquire_or_renew().await.expect("a renews"),
        "a renews"
    );
    let lease = fake
        .get(&leases(), "protostar-operator")
        .expect("lease stored");
    assert_eq!(lease["spec"]["holderIdentity"], "a");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);

    // a stops renewing: its last renewal is now a minute old.
    fake.update(&leases(), "protostar-operator", |l| {
        l["spec"]["renewTime"] = json!("2000-01-01T00:00:00.000000Z")
    });
    assert!(
        b.try_acquire_or_renew().await.expect("b elects"),
        "b takes the expired lease"
    );
    let lease = fake
        .get(&leases(), "protostar-operator")
        .expect("lease stored");
    assert_eq!(lease["spec"]["holderIdentity"], "b");
    assert_eq!(lease["spec"]["leaseTransitions"], 2);
    assert!(
        !a.try_acquire_or_renew().await.expect("a elects"),
        "a has lost it"
    );
}

#[tokio::test]
async fn a_stale_write_loses_the_race() {
    let (client, fake) = FakeApi::start();
    let a = elector(&client, "a");
    assert!(a.try_acquire_or_renew().await.expect("a elects"));
    // Another writer changes the Lease between a's read and write: the fake rejects a write
    // whose resourceVersion is not current, as the API server does.
    fake.update(&leases(), "protostar-operator", |l| {
        l["metadata"]["resourceVersion"] = json!("999999")
    });
    let mut lease: Lease =
        serde_json::from_value(fake.get(&leases(), "protostar-operator").expect("stored"))
            .expect("lease");
    lease.metadata.resource_version = Some("1".into());
    let api = Api::<Lease>::namespaced(client.clone(), NS);
    let err = api
        .replace("protostar-operator", &Default::default(), &lease)
        .await
        .expect_err("conflict");
    assert!(matches!(err, kube::Error::Api(s) if s.code == 409));
}

#[tokio::test(start_paused = true)]
async fn holder_steps_down_when_the_lease_is_taken() {
    let (client, fake) = FakeApi::start();
    let a = elector(&client, "a");
    a.acquire().await.expect("a leads");
    fake.update(&leases(), "protostar-operator", |l| {
        l["spec"]["holderIdentity"] = json!("b");
        l["spec"]["renewTime"] = json!("2999-01-01T00:00:00.000000Z");
    });
    let stopped = tokio::time::timeout(Duration::from_secs(60), a.hold())
        .await
        .expect("hold returns");
    assert!(matches!(stopped, Error::LeaseLost), "{stopped}");
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once() {
    let (client, fake) = FakeApi::start();
    let a = elector(&client, "a");
    let b = elector(&client, "b");
    assert!(a.try_acquire_or_renew().await.expect("a elects"));
    assert!(!b.try_acquire_or_renew().await.expect("b elects"));
    a.release().await.expect("a releases");
    assert!(
        b.try_acquire_or_renew().await.expect("b elects"),
        "no wait for expiry"
    );
    // Releasing a lease one does not hold changes nothing.
    a.release().await.expect("no-op");
    let lease = fake.get(&leases(), "protostar-operator").expect("stored");
    assert_eq!(lease["spec"]["holderIdentity"], "b");
}
