//! End to end: what the shared driver frame does around every kind's pass: backoff entries cleared
//! after any pass that ends without error, a Warning Event for every pass that cannot go on, and
//! waiting for a remote cleanup counted apart from failures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

use blaxel_operator::sim::SimConfig;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use serde_json::json;
use support::operator::{
    DEADLINE, World, condition_is, eventually, fast_sandboxes, sample, second_after,
    wait_cleanup_pending, wait_gone,
};

/// A member whose every pass fails (the user list answers 503) is in backoff; deleted with `Orphan`,
/// its cleanup ends without error and it leaves the backoff map (it used to stay counted in
/// `objects_in_backoff` forever).
#[tokio::test]
async fn a_deleted_object_leaves_the_backoff_gauge() {
    let mut world = World::new(SimConfig::default()).await;
    world
        .sim_control(
            "faults/script",
            json!({"route": "GET /v0/users", "status": 503, "times": 100_000}),
        )
        .await;
    let op = world.start_operator(&[]);
    world
        .apply_member(
            "flaky",
            json!({"workspace": world.workspace, "email": "flaky@example.com", "deletionPolicy": "Orphan"}),
        )
        .await;
    let gauge = "blaxel_operator_objects_in_backoff";
    eventually("the member in backoff", DEADLINE, || async {
        (sample(&op.scrape().await?, gauge)? >= 1.0).then_some(())
    })
    .await;
    world
        .members()
        .delete("flaky", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.members(), "flaky").await;
    eventually("the backoff gauge back to 0", DEADLINE, || async {
        (sample(&op.scrape().await?, gauge)? == 0.0).then_some(())
    })
    .await;
}

/// Waiting for a sandbox to finish deleting is counted in `cleanup_waits_total`, not as a failure.
#[tokio::test]
async fn waiting_for_a_cleanup_is_not_a_failure() {
    let mut world = World::new(fast_sandboxes()).await;
    let op = world.start_operator(&[]);
    world.apply_sandbox("box", world.sandbox_spec()).await;
    condition_is(&world.sandboxes(), "box", "Ready", "True", "Running").await;
    world
        .sandboxes()
        .delete("box", &DeleteParams::default())
        .await
        .unwrap();
    wait_cleanup_pending(&op, "Sandbox").await;
    wait_gone(&world.sandboxes(), "box").await;
    let metrics = op.scrape().await.unwrap();
    assert!(
        !metrics.contains("category=\"CleanupPending\""),
        "a cleanup wait counted as a failure:\n{metrics}"
    );
}

/// An object that admission stops (here a duplicate) gets a Warning Event, not only a condition.
#[tokio::test]
async fn a_stalled_admission_publishes_a_warning() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&[]);
    let spec = json!({"workspace": world.workspace, "email": "dup@example.com"});
    world.apply_member("first", spec.clone()).await;
    second_after(&world.members(), "first").await;
    world.apply_member("second", spec).await;
    condition_is(
        &world.members(),
        "second",
        "Stalled",
        "True",
        "DuplicateMember",
    )
    .await;
    let events: Api<Event> = Api::namespaced(world.client.clone(), &world.ns);
    eventually("a Warning Event DuplicateMember", DEADLINE, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.reason.as_deref() == Some("DuplicateMember")
                    && e.involved_object.name.as_deref() == Some("second")
            })
            .then_some(())
    })
    .await;
}
