//! End to end: rows of the README's Semantics tables no other test covered (issue 13): a settled object
//! writes no status at resync, and a sandbox deleted by hand is recreated once the old one is gone,
//! waiting (not failing) while Blaxel still deletes it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

use std::time::Duration;

use blaxel_operator::crd::MemberPhase;
use blaxel_operator::sim::SimConfig;
use support::operator::{
    DEADLINE, World, condition, condition_is, eventually, fast_sandboxes, nudged_until, sample,
};

/// "A reconcile that finds nothing to do writes nothing": several resyncs of a settled member (a
/// one-second resync) leave its resourceVersion as it was.
#[tokio::test]
async fn a_settled_object_writes_no_status_at_resync() {
    let mut world = World::new(SimConfig {
        auto_accept_after: Some(Duration::ZERO),
        ..SimConfig::default()
    })
    .await;
    let op = world.start_operator(&["--resync-interval", "1s"]);
    world.active_members(&["quiet"]).await;
    // Settled: Ready written, nothing left to do.
    condition_is(&world.members(), "quiet", "Ready", "True", "Active").await;
    let version = world
        .members()
        .get("quiet")
        .await
        .unwrap()
        .metadata
        .resource_version;
    let series = "blaxel_operator_reconciles_total{kind=\"WorkspaceMember\"}";
    let before = sample(&op.scrape().await.unwrap(), series).unwrap();
    eventually("three more passes", DEADLINE, || async {
        (sample(&op.scrape().await?, series)? >= before + 3.0).then_some(())
    })
    .await;
    let now = world.members().get("quiet").await.unwrap();
    assert_eq!(
        now.metadata.resource_version, version,
        "a no-op pass wrote the object"
    );
    assert_eq!(now.status.unwrap().phase, Some(MemberPhase::Active));
}

/// A sandbox deleted by hand while its object remains is created again; while Blaxel still deletes the
/// old one, the object waits (Reconciling `RemoteDeleting`, no create that would be refused), then is
/// Ready on the new one.
#[tokio::test]
async fn a_sandbox_deleted_by_hand_is_recreated_after_the_old_one_goes() {
    let mut world = World::new(SimConfig {
        delete_time: Duration::from_secs(2),
        termination_retention: Duration::from_secs(2),
        ..fast_sandboxes()
    })
    .await;
    let _op = world.start_operator(&[]);
    world.apply_sandbox("box", world.sandbox_spec()).await;
    condition_is(&world.sandboxes(), "box", "Ready", "True", "Running").await;
    let status = world
        .blaxel(reqwest::Method::DELETE, "/sandboxes/box", None)
        .await;
    assert!(status.is_success(), "{status}");
    // A settled sandbox's list may be a resync old: ask for fresh reads until the deletion shows.
    nudged_until(
        &world.sandboxes(),
        "box",
        "Reconciling RemoteDeleting",
        || async {
            let status = world.sandboxes().get("box").await.ok()?.status?;
            (condition(&status.conditions, "Reconciling")?
                == ("True".to_owned(), "RemoteDeleting".to_owned()))
                .then_some(())
        },
    )
    .await;
    condition_is(&world.sandboxes(), "box", "Ready", "True", "Running").await;
    assert_eq!(
        world.sim.stats()["byRoute"]["POST /v0/sandboxes"]["byStatus"]["409"].as_u64(),
        None,
        "a create was sent while the old sandbox was still being deleted"
    );
    eventually("a second sandbox created", DEADLINE, || async {
        (world.calls("POST /v0/sandboxes") >= 2).then_some(())
    })
    .await;
    let remote = world.remote_sandbox("box").await.expect("recreated");
    assert_eq!(remote["status"], "DEPLOYED", "{remote}");
}
