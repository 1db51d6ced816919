//! End to end: Sandbox against the local Kubernetes API server and the simulator over HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

use std::time::Duration;

use blaxel_operator::crd::PowerState;
use blaxel_operator::sim::{ApiGeneration, SimConfig};
use kube::api::DeleteParams;
use serde_json::{Value, json};
use support::operator::{
    DEADLINE, World, annotate, condition, eventually, fast_sandboxes, wait_gone,
};

fn spec(world: &World, state: &str) -> Value {
    json!({
        "workspace": world.workspace,
        "image": "blaxel/base-image:latest",
        "memory": 2048,
        "ports": [{"name": "web", "target": 3000, "protocol": "HTTP"}],
        "envs": [{"name": "MODE", "value": "dev"}],
        "labels": {"team": "a"},
        "state": state,
    })
}

/// Waits until the Sandbox reports `phase`, `state` and Ready True for its current generation.
async fn ready_in(
    world: &World,
    name: &str,
    phase: &str,
    state: PowerState,
) -> blaxel_operator::crd::SandboxStatus {
    eventually(
        &format!("{name} Ready {phase} {state:?}"),
        DEADLINE,
        || async {
            let obj = world.sandboxes().get(name).await.ok()?;
            let status = obj.status?;
            (status.observed_generation == obj.metadata.generation
                && status.phase.as_deref() == Some(phase)
                && status.state == Some(state)
                && condition(&status.conditions, "Ready")?.0 == "True")
                .then_some(status)
        },
    )
    .await
}

/// Create → DEPLOYED → stop → DEACTIVATED → start → DEPLOYED → delete waits until gone; one create, no blind writes.
#[tokio::test]
async fn lifecycle_create_stop_start_delete() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    world
        .apply_sandbox("dev-box", spec(&world, "Running"))
        .await;
    let status = ready_in(&world, "dev-box", "DEPLOYED", PowerState::Running).await;
    assert_eq!(status.power_control, None, "no power call was needed yet");
    assert!(status.url.is_some(), "URL from the remote object");
    let remote = world
        .remote_sandbox("dev-box")
        .await
        .expect("created remotely");
    assert_eq!(remote["spec"]["runtime"]["memory"], 2048);
    assert_eq!(remote["metadata"]["labels"]["team"], "a");
    assert_eq!(
        remote["metadata"]["labels"]["blaxel-operator-owner"],
        format!("{}.dev-box", world.ns)
    );
    assert_eq!(world.calls("POST /v0/sandboxes"), 1);
    assert_eq!(
        world.calls("PUT /v0/sandboxes/{name}"),
        0,
        "no update when nothing differs"
    );

    world
        .apply_sandbox("dev-box", spec(&world, "Stopped"))
        .await;
    let status = ready_in(&world, "dev-box", "DEACTIVATED", PowerState::Stopped).await;
    assert_eq!(status.power_control.as_deref(), Some("StartStop"));
    assert_eq!(world.calls("PUT /v0/sandboxes/{name}/stop"), 1);

    world
        .apply_sandbox("dev-box", spec(&world, "Running"))
        .await;
    ready_in(&world, "dev-box", "DEPLOYED", PowerState::Running).await;
    assert_eq!(world.calls("PUT /v0/sandboxes/{name}/start"), 1);

    world
        .sandboxes()
        .delete("dev-box", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.sandboxes(), "dev-box").await;
    let remote = world.remote_sandbox("dev-box").await;
    assert!(
        remote.as_ref().is_none_or(|s| s["status"] == "TERMINATED"),
        "finalizer removed only once the sandbox is gone or TERMINATED: {remote:?}"
    );
    assert_eq!(world.calls("DELETE /v0/sandboxes/{name}"), 1);
    assert_eq!(world.calls("POST /v0/sandboxes"), 1, "never created twice");
}

/// A spec change updates the remote sandbox once; a FAILED sandbox shows the remote message.
#[tokio::test]
async fn update_and_failure_are_reported() {
    let mut world = World::new(fast_sandboxes()).await;
    // A resync far beyond the deadline below: only the forced resync can surface FAILED in time.
    let _op = world.start_operator(&["--resync-interval", "1h"]);
    world.apply_sandbox("box", spec(&world, "Running")).await;
    ready_in(&world, "box", "DEPLOYED", PowerState::Running).await;
    let mut changed = spec(&world, "Running");
    changed["memory"] = json!(4096);
    world.apply_sandbox("box", changed).await;
    eventually("memory updated remotely", DEADLINE, || async {
        (world.remote_sandbox("box").await?["spec"]["runtime"]["memory"] == 4096).then_some(())
    })
    .await;
    ready_in(&world, "box", "DEPLOYED", PowerState::Running).await;
    assert_eq!(
        world.calls("PUT /v0/sandboxes/{name}"),
        1,
        "one update for one change"
    );

    world
        .sim_control(
            &format!("workspaces/{}/sandboxes/box/fail", world.workspace),
            json!({"message": "kernel panic in VM"}),
        )
        .await;
    let annotate =
        json!({"metadata": {"annotations": {"blaxel.ai/reconcile-requested-at": "now"}}});
    world
        .sandboxes()
        .patch(
            "box",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(annotate),
        )
        .await
        .unwrap();
    eventually(
        "FAILED surfaced with the remote message",
        Duration::from_secs(10),
        || async {
            let s = world.sandboxes().get("box").await.ok()?.status?;
            let ready = s.conditions.iter().find(|c| c.type_ == "Ready")?;
            (s.phase.as_deref() == Some("FAILED")
                && ready.status == "False"
                && ready.message.contains("kernel panic"))
            .then_some(())
        },
    )
    .await;
}

/// Today's API: start/stop answer 404, the operator falls back to spec.enabled and says so in status.
#[tokio::test]
async fn todays_api_falls_back_to_enabled() {
    let mut world = World::new(SimConfig {
        generation: ApiGeneration::V2026,
        ..fast_sandboxes()
    })
    .await;
    let _op = world.start_operator(&[]);
    world.apply_sandbox("box", spec(&world, "Running")).await;
    ready_in(&world, "box", "DEPLOYED", PowerState::Running).await;
    world.apply_sandbox("box", spec(&world, "Stopped")).await;
    let status = eventually("stopped through enabled", DEADLINE, || async {
        let s = world.sandboxes().get("box").await.ok()?.status?;
        (s.state == Some(PowerState::Stopped) && condition(&s.conditions, "Ready")?.0 == "True")
            .then_some(s)
    })
    .await;
    assert_eq!(status.power_control.as_deref(), Some("Enabled"));
    assert_eq!(
        world.remote_sandbox("box").await.unwrap()["spec"]["enabled"],
        false
    );
    world.apply_sandbox("box", spec(&world, "Running")).await;
    eventually("running again", DEADLINE, || async {
        (world.remote_sandbox("box").await?["spec"]["enabled"] == true).then_some(())
    })
    .await;
    // Today's simulator has no /stop route: a request there is counted under `PUT <unmatched>`.
    assert_eq!(
        world.calls("PUT <unmatched>"),
        1,
        "the missing route was probed exactly once, then spec.enabled was used"
    );
}

/// A sandbox that exists without an owner is adopted; one owned by another object is left alone (Stalled).
#[tokio::test]
async fn adoption_and_foreign_owner() {
    let mut world = World::new(fast_sandboxes()).await;
    let body = |name: &str, labels: Value| json!({"metadata": {"name": name, "labels": labels}, "spec": {"runtime": {"image": "blaxel/base-image:latest", "memory": 2048}}});
    assert!(
        world
            .blaxel(
                reqwest::Method::POST,
                "/sandboxes",
                Some(body("mine", json!({})))
            )
            .await
            .is_success()
    );
    assert!(
        world
            .blaxel(
                reqwest::Method::POST,
                "/sandboxes",
                Some(body("theirs", json!({"blaxel-operator-owner": "x.y"})))
            )
            .await
            .is_success()
    );
    let _op = world.start_operator(&[]);
    world.apply_sandbox("mine", spec(&world, "Running")).await;
    world.apply_sandbox("theirs", spec(&world, "Running")).await;
    let status = ready_in(&world, "mine", "DEPLOYED", PowerState::Running).await;
    assert!(status.adopted);
    eventually("theirs Stalled OwnedByAnother", DEADLINE, || async {
        let s = world.sandboxes().get("theirs").await.ok()?.status?;
        (condition(&s.conditions, "Stalled")? == ("True".into(), "OwnedByAnother".into()))
            .then_some(())
    })
    .await;
    assert_eq!(
        world.calls("POST /v0/sandboxes"),
        2,
        "only the test's own two creates"
    );
    world
        .sandboxes()
        .delete("theirs", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.sandboxes(), "theirs").await;
    // The simulator keeps a deleted sandbox's record for a while (DELETING, TERMINATED): its presence
    // alone proves nothing; no DELETE must have been sent at all.
    assert_eq!(
        world.calls("DELETE /v0/sandboxes/{name}"),
        0,
        "another owner's sandbox is never deleted"
    );
    let remote = world.remote_sandbox("theirs").await.expect("still there");
    assert!(
        matches!(remote["status"].as_str(), Some("DEPLOYING" | "DEPLOYED")),
        "{remote}"
    );
}

/// A FAILED sandbox still takes a spec change, and the update carries the changed field (`ttl` here);
/// a paused object's deletion waits, with no DELETE, until it is unpaused.
#[tokio::test]
async fn failed_takes_updates_and_paused_deletion_waits() {
    let mut world = World::new(fast_sandboxes()).await;
    let op = world.start_operator(&["--resync-interval", "1h"]);
    world.apply_sandbox("box", spec(&world, "Running")).await;
    ready_in(&world, "box", "DEPLOYED", PowerState::Running).await;
    world
        .sim_control(
            &format!("workspaces/{}/sandboxes/box/fail", world.workspace),
            json!({"message": "out of memory"}),
        )
        .await;
    let mut changed = spec(&world, "Running");
    changed["ttl"] = json!("2h");
    world.apply_sandbox("box", changed.clone()).await;
    eventually(
        "the ttl reached Blaxel",
        Duration::from_secs(10),
        || async {
            (world.remote_sandbox("box").await?["spec"]["runtime"]["ttl"] == "2h").then_some(())
        },
    )
    .await;
    assert_eq!(world.calls("PUT /v0/sandboxes/{name}"), 1);

    annotate(&world.sandboxes(), "box", "blaxel.ai/paused", Some("true")).await;
    eventually("Synced False Paused", DEADLINE, || async {
        let s = world.sandboxes().get("box").await.ok()?.status?;
        (condition(&s.conditions, "Synced")? == ("False".into(), "Paused".into())).then_some(())
    })
    .await;
    world
        .sandboxes()
        .delete("box", &DeleteParams::default())
        .await
        .unwrap();
    support::operator::wait_cleanup_pending(&op, "Sandbox").await;
    assert!(world.sandboxes().get_opt("box").await.unwrap().is_some());
    assert_eq!(world.calls("DELETE /v0/sandboxes/{name}"), 0);
    annotate(&world.sandboxes(), "box", "blaxel.ai/paused", None).await;
    wait_gone(&world.sandboxes(), "box").await;
    assert_eq!(world.calls("DELETE /v0/sandboxes/{name}"), 1);
}

/// The remote sandbox `name`'s variable `env`, as the simulator stores it.
async fn remote_env(world: &World, name: &str, env: &str) -> Option<Value> {
    let sandbox = world.remote_sandbox(name).await?;
    sandbox["spec"]["runtime"]["envs"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == env)
        .cloned()
}

/// `valueFrom.secretKeyRef`: the value reaches Blaxel marked secret and appears in no status, Event or
/// log line (at trace); a changed Secret is sent at the next pass; a missing one stalls the sandbox
/// before anything is created.
#[tokio::test(flavor = "multi_thread")]
async fn env_values_from_secrets_reach_blaxel_and_nowhere_else() {
    const FIRST: &str = "pw-first-4f9a2c7e1b";
    const SECOND: &str = "pw-second-8d3b6e0a5c";
    let mut world = World::new(fast_sandboxes()).await;
    let mut op = world.start_operator_logging(&[], "trace");
    world.write_secret("db", json!({"password": FIRST})).await;
    let mut spec = world.sandbox_spec();
    spec["envs"] = json!([
        {"name": "MODE", "value": "dev"},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
    ]);
    world.apply_sandbox("box", spec.clone()).await;
    eventually("the value sent, marked secret", DEADLINE, || async {
        let env = remote_env(&world, "box", "DB_PASSWORD").await?;
        (env["value"] == FIRST && env["secret"] == true).then_some(())
    })
    .await;
    let status = || async {
        serde_json::to_value(world.sandboxes().get("box").await.unwrap()).unwrap()["status"].clone()
    };
    eventually("the digest recorded", DEADLINE, || async {
        let s = status().await;
        s["envDigest"]
            .as_str()
            .is_some_and(|d| d.starts_with("hmac-sha256:"))
            .then_some(())
    })
    .await;
    world.write_secret("db", json!({"password": SECOND})).await;
    support::operator::nudged_until(&world.sandboxes(), "box", "the new value sent", || async {
        let env = remote_env(&world, "box", "DB_PASSWORD").await?;
        (env["value"] == SECOND).then_some(())
    })
    .await;
    // A variable from a Secret that does not exist: nothing is created.
    spec["envs"] =
        json!([{"name": "K", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]);
    spec["sandboxName"] = "other".into();
    world.apply_sandbox("other", spec).await;
    support::operator::condition_is(
        &world.sandboxes(),
        "other",
        "Stalled",
        "True",
        "SecretNotFound",
    )
    .await;
    assert!(world.remote_sandbox("other").await.is_none());
    let events: kube::Api<k8s_openapi::api::core::v1::Event> =
        kube::Api::namespaced(world.client.clone(), &world.ns);
    let events = serde_json::to_string(
        &events
            .list(&kube::api::ListParams::default())
            .await
            .unwrap()
            .items,
    )
    .unwrap();
    let log = op.output();
    let statuses = format!("{}", status().await);
    for value in [FIRST, SECOND] {
        assert!(
            !log.contains(value),
            "a secret value is in the operator's log"
        );
        assert!(!events.contains(value), "a secret value is in an Event");
        assert!(!statuses.contains(value), "a secret value is in the status");
    }
    tokio::task::block_in_place(|| op.terminate());
}

/// A create that meets a sandbox of the same name still being deleted (made and deleted by hand after
/// the list this pass trusted) waits: `WaitingForOldSandbox`, not an error nor a takeover; once it is
/// gone, the sandbox is created.
#[tokio::test(flavor = "multi_thread")]
async fn a_create_meeting_a_sandbox_on_its_way_out_waits_for_it() {
    let mut world = World::new(SimConfig {
        delete_time: Duration::from_secs(4),
        ..fast_sandboxes()
    })
    .await;
    // A long transition poll: a new object trusts the list read for `warm` (made before `x` was).
    let _op = world.start_operator(&["--transition-poll-interval", "60s"]);
    world.apply_sandbox("warm", world.sandbox_spec()).await;
    eventually("warm created", DEADLINE, || async {
        world.remote_sandbox("warm").await.map(|_| ())
    })
    .await;
    let body = json!({"metadata": {"name": "x"}, "spec": {"runtime": {"image": "blaxel/base-image:latest"}}});
    assert!(
        world
            .blaxel(reqwest::Method::POST, "/sandboxes", Some(body))
            .await
            .is_success()
    );
    assert!(
        world
            .blaxel(reqwest::Method::DELETE, "/sandboxes/x", None)
            .await
            .is_success()
    );
    world.apply_sandbox("x", world.sandbox_spec()).await;
    support::operator::condition_is(
        &world.sandboxes(),
        "x",
        "Reconciling",
        "True",
        "WaitingForOldSandbox",
    )
    .await;
    assert_eq!(
        world.calls("POST /v0/sandboxes"),
        3,
        "warm, x by hand, x refused"
    );
    support::operator::nudged_until(&world.sandboxes(), "x", "x made again", || async {
        let x = world.remote_sandbox("x").await?;
        (x["metadata"]["labels"]["blaxel-operator-owner"] == format!("{}.x", world.ns))
            .then_some(())
    })
    .await;
}
