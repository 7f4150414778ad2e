//! Leader election against a real kube-apiserver (embedded store).

use std::time::Duration;

use component_base::leader::{acquire, LeaderElectionFlags};
use e2e_tests::apiserver::ApiServerProcess;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

#[tokio::test]
async fn one_leader_at_a_time_and_takeover_after_expiry() {
    let server = ApiServerProcess::start_embedded(&[]).expect("apiserver");
    let client = server.client().await.expect("client");
    let flags = LeaderElectionFlags::fast("test-component");

    let first = acquire(client.clone(), &flags, "x")
        .await
        .expect("first leads");
    let first_id = first.identity().expect("elected").to_string();

    // A second candidate must not lead while the first renews.
    let second = tokio::spawn({
        let client = client.clone();
        let flags = flags.clone();
        async move { acquire(client, &flags, "x").await }
    });
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !second.is_finished(),
        "second candidate led while the first renewed"
    );

    // The first stops renewing (as a crash would): the second takes over.
    drop(first);
    let mut second = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("second takes over after the lease expires")
        .expect("task")
        .expect("acquire");
    let second_id = second.identity().expect("elected").to_string();
    assert_ne!(first_id, second_id);

    let lease = Api::<Lease>::namespaced(client.clone(), "kube-system")
        .get("test-component")
        .await
        .expect("lease");
    let spec = lease.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some(second_id.as_str()));
    assert_eq!(spec.lease_transitions, Some(1));

    // Still leading a while later (renewals work), then a graceful release
    // hands over at once.
    let renewed = tokio::time::timeout(Duration::from_secs(3), second.lost()).await;
    assert!(renewed.is_err(), "leadership lost while renewing");
    second.release().await;
    let third = tokio::time::timeout(Duration::from_secs(2), acquire(client.clone(), &flags, "x"))
        .await
        .expect("released lease is taken at once")
        .expect("acquire");
    assert!(third.identity().is_some());
}

#[tokio::test]
async fn election_off_returns_at_once() {
    let flags = LeaderElectionFlags {
        leader_elect: false,
        ..LeaderElectionFlags::fast("unused")
    };
    // No server needed: nothing is contacted.
    let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let mut leadership = acquire(client, &flags, "x").await.expect("no election");
    assert!(leadership.identity().is_none());
    let lost = tokio::time::timeout(Duration::from_millis(200), leadership.lost()).await;
    assert!(lost.is_err(), "leadership without election is never lost");
}
