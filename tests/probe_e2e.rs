//! End to end: what a second adversarial probe (after the hardening pass) broke: writes built on stale
//! lists, cleanup of a hand-made replacement, made-up keys holding or probing claims, a pause spelled
//! "True". Each test failed on the code it was written against; its assertion message says what went
//! wrong and why it matters.
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
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::operator::{
    DEADLINE, World, condition, condition_is, eventually, fast_sandboxes, nudged_until,
    second_after, wait_gone,
};

/// `GET` on the simulated Blaxel API with the test's key: the status and the JSON body.
async fn blaxel_get(world: &World, path: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", world.sim.base_url()))
        .bearer_auth(&world.key)
        .header("X-Blaxel-Workspace", &world.workspace)
        .send()
        .await
        .expect("Blaxel API call");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A person changes sandbox `name` through Blaxel's API: adds env `HAND_SET=1` and label `note=by-hand`,
/// keeping everything else (the ownership labels included) as it is.
async fn hand_edit(world: &World, name: &str) {
    let (status, current) = blaxel_get(world, &format!("/sandboxes/{name}")).await;
    assert_eq!(status, 200, "{current}");
    let mut labels = current["metadata"]["labels"].clone();
    labels["note"] = "by-hand".into();
    let mut spec = current["spec"].clone();
    let mut envs = spec["runtime"]["envs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    envs.push(json!({"name": "HAND_SET", "value": "1"}));
    spec["runtime"]["envs"] = Value::Array(envs);
    let body = json!({"metadata": {"name": name, "labels": labels}, "spec": spec});
    let status = world
        .blaxel(
            reqwest::Method::PUT,
            &format!("/sandboxes/{name}"),
            Some(body),
        )
        .await;
    assert!(status.is_success(), "hand edit: {status}");
    let remote = world.remote_sandbox(name).await.unwrap();
    assert_eq!(remote["metadata"]["labels"]["note"], "by-hand", "{remote}");
}

fn has_hand_env(remote: &Value) -> bool {
    remote["spec"]["runtime"]["envs"]
        .as_array()
        .is_some_and(|envs| envs.iter().any(|e| e["name"] == "HAND_SET"))
}

/// README: "fields the spec leaves out (`ports`, `envs` included) are never compared nor sent ...
/// taking over erases nothing", and `envs` absent means "left as they are remotely".
///
/// A person adds an env var and a label to a settled sandbox by hand; then the object's spec changes
/// (here: memory). The update's body is the sandbox as the shared list last saw it (up to a resync
/// old) with the spec laid over, and Blaxel's `PUT` replaces the whole spec and label set, so the
/// person's env var and label are erased although the spec never mentions them.
#[tokio::test(flavor = "multi_thread")]
async fn a_spec_edit_does_not_erase_hand_changes_made_since_the_last_list() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&["--resync-interval", "1h"]);
    world.apply_sandbox("cfg", world.sandbox_spec()).await;
    condition_is(&world.sandboxes(), "cfg", "Ready", "True", "Running").await;
    hand_edit(&world, "cfg").await;
    let mut spec = world.sandbox_spec();
    spec["memory"] = 4096.into();
    world.apply_sandbox("cfg", spec).await;
    let remote = eventually("the memory change applied", DEADLINE, || async {
        let remote = world.remote_sandbox("cfg").await?;
        (remote["spec"]["runtime"]["memory"] == 4096).then_some(remote)
    })
    .await;
    assert!(
        has_hand_env(&remote) && remote["metadata"]["labels"]["note"] == "by-hand",
        "an unrelated spec edit erased an env var and a label a person set by hand (the spec leaves envs \
         and those labels out, so they must be left as they are remotely); the PUT was built from a \
         cached list older than the hand edit: {remote}"
    );
}

/// Same through `Orphan`: the release `PUT` (meant only to drop the ownership labels) is built from a
/// list up to `--transition-poll-interval` old and replaces the whole sandbox, erasing a hand change made
/// since. With a 1 m poll interval the window is a minute; at the default 5 s it is a race.
#[tokio::test(flavor = "multi_thread")]
async fn an_orphan_release_does_not_erase_hand_changes() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&["--transition-poll-interval", "1m"]);
    let mut spec = world.sandbox_spec();
    spec["deletionPolicy"] = "Orphan".into();
    world.apply_sandbox("kept", spec).await;
    nudged_until(&world.sandboxes(), "kept", "kept Ready", || async {
        let status = world.sandboxes().get("kept").await.ok()?.status?;
        (condition(&status.conditions, "Ready")?.0 == "True").then_some(())
    })
    .await;
    hand_edit(&world, "kept").await;
    world
        .sandboxes()
        .delete("kept", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.sandboxes(), "kept").await;
    let remote = world.remote_sandbox("kept").await.expect("orphaned, kept");
    assert!(
        remote["metadata"]["labels"]["blaxel-operator-owner"].is_null(),
        "released: {remote}"
    );
    assert!(
        has_hand_env(&remote) && remote["metadata"]["labels"]["note"] == "by-hand",
        "deleting an Orphan object (which must leave the sandbox as it is, less the ownership labels) \
         erased an env var and a label a person set by hand: {remote}"
    );
}

/// Threat model: "A sandbox made by hand is never deleted unless an object took it over first."
///
/// The object's sandbox is deleted by hand and a person makes their own sandbox with the same name
/// (no ownership labels). The object is then deleted: cleanup trusts a cached list that still shows
/// the old, owned sandbox (it confirms only an absence with a direct read, never a presence) and sends
/// `DELETE`, destroying the person's sandbox.
#[tokio::test(flavor = "multi_thread")]
async fn cleanup_never_deletes_a_hand_made_sandbox_that_replaced_ours() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&["--transition-poll-interval", "1m"]);
    world.apply_sandbox("twin", world.sandbox_spec()).await;
    eventually("the operator created twin", DEADLINE, || async {
        let remote = world.remote_sandbox("twin").await?;
        remote["metadata"]["labels"]["blaxel-operator-owner"]
            .is_string()
            .then_some(())
    })
    .await;
    // Someone deletes it by hand and makes their own of the same name.
    let status = world
        .blaxel(reqwest::Method::DELETE, "/sandboxes/twin", None)
        .await;
    assert!(status.is_success(), "{status}");
    let body = json!({
        "metadata": {"name": "twin", "labels": {"owner": "a-person"}},
        "spec": {"runtime": {"image": "blaxel/base-image:latest", "memory": 2048}}
    });
    eventually("the hand-made twin created", DEADLINE, || async {
        let status = world
            .blaxel(reqwest::Method::POST, "/sandboxes", Some(body.clone()))
            .await;
        status.is_success().then_some(())
    })
    .await;
    let deletes_before = world.calls("DELETE /v0/sandboxes/{name}");
    world
        .sandboxes()
        .delete("twin", &DeleteParams::default())
        .await
        .unwrap();
    // Deleted or not, the hand-made twin ends the cleanup: at once when left alone, or once it is gone.
    wait_gone(&world.sandboxes(), "twin").await;
    let remote = world.remote_sandbox("twin").await;
    let alive = remote.as_ref().is_some_and(|r| {
        r["metadata"]["labels"]["owner"] == "a-person"
            && matches!(r["status"].as_str(), Some("DEPLOYING" | "DEPLOYED"))
    });
    assert!(
        alive,
        "the operator deleted a sandbox made by hand, which never carried this object's ownership \
         ({} DELETE sent by the cleanup; remote now: {remote:?})",
        world.calls("DELETE /v0/sandboxes/{name}") - deletes_before
    );
}

/// Threat model: "An object that cannot act (no credentials, ...) cannot block a legitimate one by being
/// older", and "keys are the boundary, not namespaces".
///
/// A tenant with no key for the workspace (its Secret holds a made-up key) creates a Sandbox object
/// naming another tenant's sandbox first. Its credentials "resolve" (the Secret exists), so it holds the
/// claim although every call it makes is refused with 401, and the legitimate object, in a namespace
/// allowed to use the workspace's key, is Stalled DuplicateSandbox forever and its sandbox never made.
#[tokio::test(flavor = "multi_thread")]
async fn a_made_up_key_cannot_squat_an_identity() {
    let mut world = World::new(fast_sandboxes()).await;
    let squatter_ns = world.ns.clone();
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("made-up".into()),
            ..kube::api::ObjectMeta::default()
        },
        string_data: Some([("apiKey".to_owned(), "not-a-real-key-123".to_owned())].into()),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(world.client.clone(), &squatter_ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let squatters: Api<blaxel_operator::crd::Sandbox> =
        Api::namespaced(world.client.clone(), &squatter_ns);
    // Unique per run: squatters left by earlier runs would hold the claim too (that is the defect).
    let target = format!("prod-db-{:08x}", rand::random::<u32>());
    let mut squat = world.sandbox_spec();
    squat["sandboxName"] = target.clone().into();
    squat["credentialsRef"] = json!({"name": "made-up", "key": "apiKey"});
    world
        .apply(&squatters, "squat", json!({"spec": squat}))
        .await;
    let _op = world.start_operator(&[]);
    condition_is(&squatters, "squat", "Stalled", "True", "Unauthorized").await;
    // Creation times have a one-second resolution: the legitimate object must be strictly newer.
    second_after(&squatters, "squat").await;
    let mut legit = world.sandbox_spec();
    legit["sandboxName"] = target.clone().into();
    world.apply_sandbox("prod-db", legit).await;
    let verdict = eventually("prod-db has a verdict", DEADLINE, || async {
        let status = world.sandboxes().get("prod-db").await.ok()?.status?;
        let ready = condition(&status.conditions, "Ready")?;
        let stalled = condition(&status.conditions, "Stalled");
        match stalled {
            Some((s, reason)) if s == "True" => Some(reason),
            _ if ready.0 == "True" => Some("Ready".to_owned()),
            _ => None,
        }
    })
    .await;
    assert_eq!(
        verdict, "Ready",
        "an object whose only 'credentials' are a made-up key (every call refused 401) holds the claim \
         on a sandbox name of this workspace, so the legitimate object is blocked"
    );
    assert!(world.remote_sandbox(&target).await.is_some());
}

/// Threat model: "A status never names an object of another namespace", and a namespace with no key for
/// a workspace should learn nothing about it.
///
/// A tenant with no key for the workspace (a made-up one in its Secret) creates WorkspaceMembers for
/// guessed addresses. For an address another namespace manages, its object reports Stalled
/// `DuplicateMember` "An object in another namespace already manages alice@... in workspace ...";
/// for any other it reports `Unauthorized`. The duplicate check runs before any remote call proves the
/// key, so the status is an oracle over other tenants' members (and, the same way, sandbox names).
#[tokio::test(flavor = "multi_thread")]
async fn a_made_up_key_learns_nothing_about_other_claims() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&[]);
    // Unique per run: probes left by earlier runs would hold the claim (see the squatting test).
    let known = format!("known-{:08x}@example.com", rand::random::<u32>());
    let nobody = format!("nobody-{:08x}@example.com", rand::random::<u32>());
    world
        .apply_member(
            "known",
            json!({"workspace": world.workspace, "email": known}),
        )
        .await;
    eventually("known Invited", DEADLINE, || async {
        (world.member_phase("known").await? == MemberPhase::Invited).then_some(())
    })
    .await;
    second_after(&world.members(), "known").await;
    let prober_ns = world.ns.clone();
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("made-up".into()),
            ..kube::api::ObjectMeta::default()
        },
        string_data: Some([("apiKey".to_owned(), "not-a-real-key-456".to_owned())].into()),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(world.client.clone(), &prober_ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let probes: Api<blaxel_operator::crd::WorkspaceMember> =
        Api::namespaced(world.client.clone(), &prober_ns);
    for (name, email) in [("guess-1", known.as_str()), ("guess-2", nobody.as_str())] {
        world
            .apply(
                &probes,
                name,
                json!({"spec": {"workspace": world.workspace, "email": email,
                                "credentialsRef": {"name": "made-up", "key": "apiKey"}}}),
            )
            .await;
    }
    condition_is(&probes, "guess-2", "Stalled", "True", "Unauthorized").await;
    let reason = eventually("guess-1 Stalled", DEADLINE, || async {
        let status = probes.get("guess-1").await.ok()?.status?;
        let (s, reason) = condition(&status.conditions, "Stalled")?;
        (s == "True").then_some(reason)
    })
    .await;
    assert_eq!(
        reason, "Unauthorized",
        "a namespace holding no valid key for the workspace tells, from its status (DuplicateMember vs \
         Unauthorized), which addresses other namespaces manage in that workspace"
    );
}

/// The pause switch fails open on a spelling a person would expect to work: `blaxel.ai/paused: "True"`
/// (as `kubectl annotate ... blaxel.ai/paused=True` writes it) is silently not a pause. The status
/// says nothing (no `Paused`, no warning), and deleting the object "paused" this way removes the member.
#[tokio::test(flavor = "multi_thread")]
async fn a_pause_spelled_true_is_not_silently_ignored() {
    let mut world = World::new(SimConfig {
        auto_accept_after: Some(Duration::ZERO),
        ..SimConfig::default()
    })
    .await;
    let op = world.start_operator(&[]);
    world
        .apply_member(
            "quinn",
            json!({"workspace": world.workspace, "email": "quinn@example.com"}),
        )
        .await;
    eventually("quinn Active", DEADLINE, || async {
        (world.member_phase("quinn").await? == MemberPhase::Active).then_some(())
    })
    .await;
    world
        .members()
        .patch(
            "quinn",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"blaxel.ai/paused": "True"}}})),
        )
        .await
        .unwrap();
    condition_is(&world.members(), "quinn", "Synced", "False", "Paused").await;
    world
        .members()
        .delete("quinn", &DeleteParams::default())
        .await
        .unwrap();
    support::operator::wait_cleanup_pending(&op, "WorkspaceMember").await;
    assert!(
        world.remote_user("quinn@example.com").await.is_some(),
        "an object annotated blaxel.ai/paused: \"True\" was not paused (no Paused condition, no warning) \
         and its deletion removed the member"
    );
}
