//! End to end: what a third adversarial probe (against the fixes of the second) broke. Each test fails
//! on the code it was written against; its assertion message says what went wrong and why it matters.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

use std::future::Future;
use std::time::Duration;

use blaxel_operator::sim::SimConfig;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::DeleteParams;
use serde_json::json;
use support::operator::{
    DEADLINE, World, condition, condition_is, eventually, fast_sandboxes, nudged_until,
    second_after, wait_gone,
};

/// How long a test waits for something the correct code does in well under a second or two.
const SHORT: Duration = Duration::from_secs(20);

/// Polls `check` every 50 ms until it holds or `deadline` passes; whether it held (no panic, so the
/// caller can say what the failure means).
async fn holds_within<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The Stalled reason of sandbox object `name`, when Stalled is True.
async fn stalled_reason(world: &World, name: &str) -> Option<String> {
    let status = world.sandboxes().get(name).await.ok()?.status?;
    let (s, reason) = condition(&status.conditions, "Stalled")?;
    (s == "True").then_some(reason)
}

/// Threat model: "Mass removal ... a removal that cannot be recorded waits (`RemovalUnrecorded`)",
/// retried "like a transient failure".
///
/// A person deletes the ConfigMap `blaxel-operator-removals` (to reset the count, or while tidying the
/// namespace). The guard keeps the record's old resourceVersion in memory and only re-reads it after a
/// 409: its next write is a `replace` of an object that no longer exists (404), which it never
/// recovers from. Every removal in every workspace waits `RemovalUnrecorded` until the operator is
/// restarted, although the record could be written again at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_removal_record_deleted_by_hand_does_not_block_removals_for_good() {
    let mut world = World::new(SimConfig {
        auto_accept_after: Some(Duration::ZERO),
        ..SimConfig::default()
    })
    .await;
    let _op = world.start_operator(&["--removal-limit", "5"]);
    world.active_members(&["first", "second"]).await;
    world
        .members()
        .delete("first", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.members(), "first").await;
    let records: Api<ConfigMap> = Api::namespaced(world.client.clone(), &world.ns);
    assert!(
        records
            .get_opt("blaxel-operator-removals")
            .await
            .unwrap()
            .is_some()
    );
    records
        .delete("blaxel-operator-removals", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the record gone", DEADLINE, || async {
        records
            .get_opt("blaxel-operator-removals")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    world
        .members()
        .delete("second", &DeleteParams::default())
        .await
        .unwrap();
    let removed = holds_within(SHORT, || async {
        world
            .members()
            .get_opt("second")
            .await
            .ok()
            .flatten()
            .is_none()
    })
    .await;
    let reason = match world.members().get_opt("second").await.unwrap() {
        Some(obj) => obj
            .status
            .and_then(|s| condition(&s.conditions, "Synced"))
            .map(|(_, reason)| reason),
        None => None,
    };
    assert!(
        removed,
        "after the removal record was deleted by hand, a removal (1 of --removal-limit 5) still waits \
         {SHORT:?} later (Synced reason {reason:?}): the guard replaces the record at its old \
         resourceVersion (404) forever instead of writing it again, so no member or sandbox of any \
         workspace can be removed until the operator restarts"
    );
    assert!(
        world.remote_user("second@example.com").await.is_none(),
        "second's member is removed"
    );
}

/// Threat model: "At most `--removal-limit` (default 10) remote removals or deletions per workspace
/// within `--removal-window`".
///
/// The guard records a removal before each attempt, and a cleanup whose `DELETE` fails transiently
/// (5xx, a dropped connection) is retried with backoff, each retry taking another slot. Here Blaxel
/// answers a member's removal with 503 for a moment (nine requests, about three attempts): the
/// failed attempts fill the limit of 2, and the one real removal is then held by the guard itself
/// (`RemovalLimitReached`) for the whole window, as is every other removal in the workspace (another
/// tenant's included), although nothing was removed yet.
#[tokio::test(flavor = "multi_thread")]
async fn failed_removal_attempts_do_not_use_up_the_removal_limit() {
    let mut world = World::new(SimConfig {
        auto_accept_after: Some(Duration::ZERO),
        ..SimConfig::default()
    })
    .await;
    let _op = world.start_operator(&["--removal-limit", "2", "--removal-window", "1h"]);
    world.active_members(&["flaky"]).await;
    world
        .sim_control(
            "faults/script",
            json!({"route": "DELETE /v0/users/{subOrEmail}", "status": 503, "times": 9}),
        )
        .await;
    world
        .members()
        .delete("flaky", &DeleteParams::default())
        .await
        .unwrap();
    let removed = holds_within(SHORT, || async {
        world
            .members()
            .get_opt("flaky")
            .await
            .ok()
            .flatten()
            .is_none()
    })
    .await;
    let reason = match world.members().get_opt("flaky").await.unwrap() {
        Some(obj) => obj
            .status
            .and_then(|s| condition(&s.conditions, "Stalled"))
            .map(|(_, reason)| reason),
        None => None,
    };
    let records: Api<ConfigMap> = Api::namespaced(world.client.clone(), &world.ns);
    let text = records
        .get_opt("blaxel-operator-removals")
        .await
        .unwrap()
        .and_then(|m| m.data)
        .map(|d| d["removals.json"].clone())
        .unwrap_or_default();
    assert!(
        removed,
        "a member removal that met a few 503s is still not done {SHORT:?} after the faults ended \
         (Stalled reason {reason:?}): each failed attempt was recorded as a removal ({text}), so the \
         attempts used up --removal-limit 2 and the guard now holds the one real removal, and every \
         other removal of the workspace, for the whole window"
    );
    assert!(world.remote_user("flaky@example.com").await.is_none());
}

/// Threat model: "Nothing is concluded from a list that failed", and an object that cannot act
/// (a key Blaxel refuses) "cannot block a legitimate one by being older".
///
/// An older object names the same sandbox with a key Blaxel refuses (401), so the newer, legitimate
/// object creates and owns the sandbox. When the newer object is deleted while Blaxel's sandbox list
/// fails (503), cleanup asks whether the older object may act, the proof fails transiently, "counts as
/// working", and cleanup concludes the sandbox is the older object's business: the finalizer goes
/// without a `DELETE`. The sandbox lives on with the deleted object's ownership label; the older
/// object can never act on it (refused key, and `OwnedByAnother`), nor can any later object.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_list_during_cleanup_does_not_leave_the_sandbox_behind() {
    let mut world = World::new(fast_sandboxes()).await;
    world.key_secret("made-up", "not-a-real-key-789").await;
    let target = format!("box-{:08x}", rand::random::<u32>());
    let mut squat = world.sandbox_spec();
    squat["sandboxName"] = target.clone().into();
    squat["credentialsRef"] = json!({"name": "made-up", "key": "apiKey"});
    world.apply_sandbox("refused", squat).await;
    let _op = world.start_operator(&[]);
    condition_is(
        &world.sandboxes(),
        "refused",
        "Stalled",
        "True",
        "Unauthorized",
    )
    .await;
    second_after(&world.sandboxes(), "refused").await;
    let mut legit = world.sandbox_spec();
    legit["sandboxName"] = target.clone().into();
    world.apply_sandbox("legit", legit).await;
    condition_is(&world.sandboxes(), "legit", "Ready", "True", "Running").await;
    let owner = format!("{}.legit", world.ns);
    let remote = world.remote_sandbox(&target).await.unwrap();
    assert_eq!(
        remote["metadata"]["labels"]["blaxel-operator-owner"],
        owner.as_str()
    );
    // Blaxel's sandbox list fails for a while (the direct GET and DELETE of one sandbox still work).
    world
        .sim_control(
            "faults/script",
            json!({"route": "GET /v0/sandboxes", "status": 503, "times": 100_000}),
        )
        .await;
    let failing_from = world.calls("GET /v0/sandboxes");
    // A list answered with 503 after the fault began: any cached refusal of the older key is then more
    // than its 2 s sharing window old, or replaced by a 503, when the newer object's cleanup looks.
    nudged_until(
        &world.sandboxes(),
        "refused",
        "a list answered 503",
        || async { (world.calls("GET /v0/sandboxes") > failing_from + 3).then_some(()) },
    )
    .await;
    world
        .sandboxes()
        .delete("legit", &DeleteParams::default())
        .await
        .unwrap();
    // Cleanup needs no list: the sandbox's own record decides, read with a GET that works, so the
    // object goes (after its sandbox is deleted) while the list still fails.
    wait_gone(&world.sandboxes(), "legit").await;
    let cleared = reqwest::Client::new()
        .delete(format!("{}/_sim/faults/script", world.sim.root_url()))
        .send()
        .await
        .unwrap();
    assert!(cleared.status().is_success());
    wait_gone(&world.sandboxes(), "legit").await;
    let remote = world.remote_sandbox(&target).await;
    let left = remote.as_ref().is_some_and(|r| {
        r["metadata"]["labels"]["blaxel-operator-owner"] == owner.as_str()
            && matches!(r["status"].as_str(), Some("DEPLOYING" | "DEPLOYED"))
    });
    assert!(
        !left,
        "the object that created and owned sandbox {target} (deletionPolicy Delete) was deleted while \
         the sandbox list failed; its cleanup took the failed proof of an older object's refused key as \
         'that object may act', so it let the finalizer go without deleting. The sandbox outlives its \
         object, still labelled with it, and no object can ever manage or delete it: {:?}",
        remote
            .as_ref()
            .map(|r| (&r["metadata"]["labels"], &r["status"]))
    );
}

/// Threat model: a sandbox "carries this object's ownership" and is deleted with it (`Delete`).
///
/// An older object names the same sandbox but cannot act yet (its Secret is missing), so the newer
/// object creates and owns the sandbox. Then the older object's Secret appears: it now holds the claim,
/// but the sandbox carries the newer object's label, so it reports `OwnedByAnother` and does nothing.
/// The newer object, now a "duplicate", is deleted: cleanup skips any remote step for duplicates, so
/// the sandbox it created is left running, labelled with a deleted object, managed by nobody, and the
/// older object stays `OwnedByAnother` forever.
#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_is_deleted_with_its_owner_even_after_a_senior_claims_its_name() {
    let mut world = World::new(fast_sandboxes()).await;
    let target = format!("box-{:08x}", rand::random::<u32>());
    let mut senior = world.sandbox_spec();
    senior["sandboxName"] = target.clone().into();
    senior["credentialsRef"] = json!({"name": "late", "key": "apiKey"});
    world.apply_sandbox("senior", senior).await;
    let _op = world.start_operator(&[]);
    condition_is(
        &world.sandboxes(),
        "senior",
        "Stalled",
        "True",
        "CredentialsNotFound",
    )
    .await;
    second_after(&world.sandboxes(), "senior").await;
    let mut junior = world.sandbox_spec();
    junior["sandboxName"] = target.clone().into();
    world.apply_sandbox("junior", junior).await;
    condition_is(&world.sandboxes(), "junior", "Ready", "True", "Running").await;
    let owner = format!("{}.junior", world.ns);
    // The senior's credentials arrive (a valid key for the workspace).
    let key = world.key.clone();
    world.key_secret("late", &key).await;
    nudged_until(&world.sandboxes(), "senior", "senior acts", || async {
        (stalled_reason(&world, "senior").await? == "OwnedByAnother").then_some(())
    })
    .await;
    world
        .sandboxes()
        .delete("junior", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.sandboxes(), "junior").await;
    let gone = holds_within(SHORT, || async {
        world
            .remote_sandbox(&target)
            .await
            .is_none_or(|r| matches!(r["status"].as_str(), Some("DELETING" | "TERMINATED")))
    })
    .await;
    let remote = world.remote_sandbox(&target).await;
    assert!(
        gone,
        "sandbox {target}, created and owned by the deleted object (label {owner}, deletionPolicy \
         Delete), was left running when that object was deleted, because an older object had claimed \
         the name since; that older object cannot take it over (OwnedByAnother), so nothing will ever \
         delete it: {:?}",
        remote
            .as_ref()
            .map(|r| (&r["metadata"]["labels"], &r["status"]))
    );
}

/// Threat model: "The operator deletes or overwrites only a sandbox that carries this object's
/// ownership"; a sandbox owned by another object or instance gets "nothing, never deleted".
///
/// The object's sandbox is deleted by hand and another operator instance's object makes one of the same
/// name. The object's spec then changes only its power state. A power change is planned on the shared
/// list (up to a resync old, which still shows the old, owned sandbox); unlike an update it is not
/// preceded by a fresh read, so `PUT /sandboxes/{name}/stop` stops the other instance's sandbox before
/// the object notices it is not its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_power_change_never_touches_a_sandbox_owned_by_another() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&["--resync-interval", "1h"]);
    world.apply_sandbox("pw", world.sandbox_spec()).await;
    condition_is(&world.sandboxes(), "pw", "Ready", "True", "Running").await;
    let status = world
        .blaxel(reqwest::Method::DELETE, "/sandboxes/pw", None)
        .await;
    assert!(status.is_success(), "{status}");
    let body = json!({
        "metadata": {"name": "pw", "labels": {
            "managed-by": "blaxel-operator",
            "blaxel-operator-owner": "elsewhere.pw",
            "blaxel-operator-instance": "blue"
        }},
        "spec": {"runtime": {"image": "blaxel/base-image:latest", "memory": 2048}}
    });
    eventually("the other instance's pw created", DEADLINE, || async {
        let status = world
            .blaxel(reqwest::Method::POST, "/sandboxes", Some(body.clone()))
            .await;
        status.is_success().then_some(())
    })
    .await;
    eventually("the other instance's pw DEPLOYED", DEADLINE, || async {
        let remote = world.remote_sandbox("pw").await?;
        (remote["status"] == "DEPLOYED").then_some(())
    })
    .await;
    let stops_before = world.calls("PUT /v0/sandboxes/{name}/stop");
    let mut spec = world.sandbox_spec();
    spec["state"] = "Stopped".into();
    world.apply_sandbox("pw", spec).await;
    condition_is(
        &world.sandboxes(),
        "pw",
        "Stalled",
        "True",
        "OwnedByAnother",
    )
    .await;
    let remote = world.remote_sandbox("pw").await.unwrap();
    let stops = world.calls("PUT /v0/sandboxes/{name}/stop") - stops_before;
    assert!(
        stops == 0 && remote["status"] == "DEPLOYED",
        "the operator stopped a sandbox owned by another operator instance ({stops} stop sent; \
         remote now {}): the power change was planned on a list older than the replacement and sent \
         without the fresh read an update gets",
        remote["status"]
    );
}
