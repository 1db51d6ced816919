//! End to end: what an adversarial probe broke (claims, adoption, identity, re-invitations, removals),
//! each against the local Kubernetes API server and the simulator over HTTP.
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
use serde_json::json;
use support::operator::{
    DEADLINE, World, annotate, condition, condition_is, eventually, fast_sandboxes, nudged_until,
    sample, wait_gone,
};

/// A sandbox made by hand with env vars and ports, outside the operator.
async fn hand_made_sandbox(world: &World, name: &str) {
    let body = json!({
        "metadata": {"name": name, "labels": {"owner": "a-person"}},
        "spec": {"runtime": {
            "image": "blaxel/base-image:latest", "memory": 2048,
            "envs": [{"name": "TOKEN_URL", "value": "https://example.com"}],
            "ports": [{"name": "web", "target": 8080, "protocol": "HTTP"}]
        }}
    });
    let status = world
        .blaxel(reqwest::Method::POST, "/sandboxes", Some(body))
        .await;
    assert!(status.is_success(), "{status}");
}

/// Members `names` (`<name>@example.com`) made Active, then all deleted at once.
async fn active_then_deleted(world: &World, names: &[&str]) {
    world.active_members(names).await;
    for name in names {
        world
            .members()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
}

/// An object that can do nothing (its credentials do not resolve) holds no claim, even when older: the
/// newer object that may act invites, and the squatter is told why it may not act.
#[tokio::test]
async fn claims_are_held_only_by_objects_that_may_act() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&[]);
    world
        .apply_member(
            "squatter",
            json!({"workspace": world.workspace, "email": "gina@example.com",
                   "credentialsRef": {"name": "no-such-secret"}}),
        )
        .await;
    condition_is(
        &world.members(),
        "squatter",
        "Stalled",
        "True",
        "CredentialsNotFound",
    )
    .await;
    world
        .apply_member(
            "gina",
            json!({"workspace": world.workspace, "email": "gina@example.com"}),
        )
        .await;
    eventually("gina Invited", DEADLINE, || async {
        (world.member_phase("gina").await? == MemberPhase::Invited).then_some(())
    })
    .await;
    assert_eq!(world.calls("POST /v0/users"), 1);
    let squatter = world.members().get("squatter").await.unwrap();
    let stalled = squatter.status.unwrap().conditions;
    assert_eq!(
        condition(&stalled, "Stalled").unwrap().1,
        "CredentialsNotFound",
        "the squatter is not told it is a duplicate"
    );
}

/// A takeover the remote side refused leaves `adopted: false`, and deleting the object never deletes
/// the hand-made sandbox it failed to take over.
#[tokio::test]
async fn a_sandbox_never_taken_over_is_never_deleted() {
    let mut world = World::new(fast_sandboxes()).await;
    hand_made_sandbox(&world, "handmade").await;
    world
        .sim_control(
            "faults/script",
            json!({"route": "PUT /v0/sandboxes/{name}", "status": 400, "times": 1000}),
        )
        .await;
    let _op = world.start_operator(&[]);
    world.apply_sandbox("handmade", world.sandbox_spec()).await;
    condition_is(&world.sandboxes(), "handmade", "Stalled", "True", "Invalid").await;
    let status = world
        .sandboxes()
        .get("handmade")
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(!status.adopted, "a refused takeover is no adoption");
    world
        .sandboxes()
        .delete("handmade", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.sandboxes(), "handmade").await;
    assert_eq!(
        world.calls("DELETE /v0/sandboxes/{name}"),
        0,
        "no DELETE sent"
    );
    let remote = world.remote_sandbox("handmade").await.expect("still there");
    assert!(
        matches!(remote["status"].as_str(), Some("DEPLOYING" | "DEPLOYED")),
        "{remote}"
    );
}

/// The same through pause: a paused object never takes over, so deleting and unpausing it deletes
/// nothing.
#[tokio::test]
async fn a_paused_object_deleted_then_unpaused_deletes_nothing() {
    let mut world = World::new(fast_sandboxes()).await;
    hand_made_sandbox(&world, "quiet").await;
    let _op = world.start_operator(&[]);
    world
        .apply(
            &world.sandboxes(),
            "quiet",
            json!({"metadata": {"annotations": {"blaxel.ai/paused": "true"}}, "spec": world.sandbox_spec()}),
        )
        .await;
    condition_is(&world.sandboxes(), "quiet", "Synced", "False", "Paused").await;
    world
        .sandboxes()
        .delete("quiet", &DeleteParams::default())
        .await
        .unwrap();
    annotate(&world.sandboxes(), "quiet", "blaxel.ai/paused", None).await;
    wait_gone(&world.sandboxes(), "quiet").await;
    assert_eq!(world.calls("DELETE /v0/sandboxes/{name}"), 0);
    assert!(world.remote_sandbox("quiet").await.is_some());
}

/// Taking over keeps what the spec leaves out (env vars and ports): one adopting PUT, nothing erased,
/// and no PUT at the next (forced) resync.
#[tokio::test]
async fn adoption_keeps_what_the_spec_leaves_out() {
    let mut world = World::new(fast_sandboxes()).await;
    hand_made_sandbox(&world, "keep").await;
    let _op = world.start_operator(&[]);
    world.apply_sandbox("keep", world.sandbox_spec()).await;
    condition_is(&world.sandboxes(), "keep", "Ready", "True", "Running").await;
    let remote = world.remote_sandbox("keep").await.unwrap();
    assert_eq!(remote["spec"]["runtime"]["envs"][0]["name"], "TOKEN_URL");
    assert_eq!(remote["spec"]["runtime"]["ports"][0]["target"], 8080);
    assert_eq!(remote["metadata"]["labels"]["owner"], "a-person");
    assert!(
        world
            .sandboxes()
            .get("keep")
            .await
            .unwrap()
            .status
            .unwrap()
            .adopted
    );
    assert_eq!(world.calls("PUT /v0/sandboxes/{name}"), 1);
    annotate(
        &world.sandboxes(),
        "keep",
        "blaxel.ai/reconcile-requested-at",
        Some("1"),
    )
    .await;
    eventually("the forced resync handled", DEADLINE, || async {
        let s = world.sandboxes().get("keep").await.ok()?.status?;
        (s.last_handled_reconcile_at.as_deref() == Some("1")).then_some(())
    })
    .await;
    assert_eq!(
        world.calls("PUT /v0/sandboxes/{name}"),
        1,
        "no PUT at resync"
    );
}

/// Orphaning releases the ownership, so a later object for the same sandbox takes it over instead of
/// being OwnedByAnother forever.
#[tokio::test]
async fn an_orphaned_sandbox_is_released() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    let mut spec = world.sandbox_spec();
    spec["deletionPolicy"] = "Orphan".into();
    spec["sandboxName"] = "shared".into();
    world.apply_sandbox("first", spec.clone()).await;
    condition_is(&world.sandboxes(), "first", "Ready", "True", "Running").await;
    world
        .sandboxes()
        .delete("first", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.sandboxes(), "first").await;
    let remote = world
        .remote_sandbox("shared")
        .await
        .expect("orphaned, kept");
    assert!(remote["metadata"]["labels"]["blaxel-operator-owner"].is_null());
    world.apply_sandbox("second", spec).await;
    condition_is(&world.sandboxes(), "second", "Ready", "True", "Running").await;
    assert!(
        world
            .sandboxes()
            .get("second")
            .await
            .unwrap()
            .status
            .unwrap()
            .adopted
    );
    assert_eq!(world.calls("POST /v0/sandboxes"), 1);
    assert_eq!(world.calls("DELETE /v0/sandboxes/{name}"), 0);
}

/// A sandbox with spec.ttl removed by Blaxel is reported EXPIRED, not recreated, until the spec changes.
#[tokio::test]
async fn an_expired_sandbox_is_not_recreated() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    let mut spec = world.sandbox_spec();
    spec["ttl"] = "1h".into();
    world.apply_sandbox("brief", spec.clone()).await;
    condition_is(&world.sandboxes(), "brief", "Ready", "True", "Running").await;
    // What Blaxel does when the ttl runs out.
    let status = world
        .blaxel(reqwest::Method::DELETE, "/sandboxes/brief", None)
        .await;
    assert!(status.is_success(), "{status}");
    // A settled object reads a list up to a resync old: ask for fresh reads until it sees the removal.
    nudged_until(
        &world.sandboxes(),
        "brief",
        "brief Stalled TtlExpired",
        || async {
            let status = world.sandboxes().get("brief").await.ok()?.status?;
            (condition(&status.conditions, "Stalled")? == ("True".into(), "TtlExpired".into()))
                .then_some(())
        },
    )
    .await;
    let status = world
        .sandboxes()
        .get("brief")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.phase.as_deref(), Some("EXPIRED"));
    assert_eq!(world.calls("POST /v0/sandboxes"), 1, "not recreated");
    spec["memory"] = 4096.into();
    world.apply_sandbox("brief", spec).await;
    condition_is(&world.sandboxes(), "brief", "Ready", "True", "Running").await;
    assert_eq!(
        world.calls("POST /v0/sandboxes"),
        2,
        "created again after the edit"
    );
}

/// Admission refuses every e-mail not in the one canonical form (upper case, any whitespace,
/// non-ASCII), with a message that says the form.
#[tokio::test]
async fn admission_refuses_non_canonical_emails() {
    let world = World::new(SimConfig::default()).await;
    for (i, email) in [
        "Alice@example.com",
        "alice@example.com\u{a0}",
        " alice@example.com",
        "al ice@example.com",
        "élodie@example.com",
        "alice@example.com\u{2028}",
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"apiVersion": "blaxel.ai/v1alpha1", "kind": "WorkspaceMember",
                          "metadata": {"name": format!("m{i}")},
                          "spec": {"workspace": "w", "email": email}});
        let err = world
            .members()
            .patch(
                &format!("m{i}"),
                &PatchParams::apply("e2e-test"),
                &Patch::Apply(&body),
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("email must be a lower-case ASCII e-mail address without spaces"),
            "{email:?}: {err}"
        );
    }
}

/// An invitation declined again and again is re-sent at most --max-reinvites times, then the object is
/// Declined / Stalled InvitationDeclined, until it is edited.
#[tokio::test]
async fn declined_invitations_are_not_resent_forever() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&["--max-reinvites", "2"]);
    world
        .apply_member(
            "hal",
            json!({"workspace": world.workspace, "email": "hal@example.com"}),
        )
        .await;
    for sent in 1..=3 {
        eventually(&format!("invitation {sent} pending"), DEADLINE, || async {
            (world.calls("POST /v0/users") == sent
                && world.remote_user("hal@example.com").await.is_some())
            .then_some(())
        })
        .await;
        world
            .sim_control("invitations/hal@example.com/decline", json!({}))
            .await;
    }
    condition_is(
        &world.members(),
        "hal",
        "Stalled",
        "True",
        "InvitationDeclined",
    )
    .await;
    assert_eq!(world.member_phase("hal").await, Some(MemberPhase::Declined));
    assert_eq!(
        world.calls("POST /v0/users"),
        3,
        "one invitation, two re-sent"
    );
    world
        .apply_member(
            "hal",
            json!({"workspace": world.workspace, "email": "hal@example.com", "role": "admin"}),
        )
        .await;
    eventually("invited again after the edit", DEADLINE, || async {
        (world.calls("POST /v0/users") == 4).then_some(())
    })
    .await;
}

/// Deleting an object whose credentials Secret is gone keeps the finalizer and says why (condition and
/// Warning Event); once the Secret is back, the member is removed and the object goes.
#[tokio::test]
async fn cleanup_without_credentials_says_why() {
    let mut world = World::new(SimConfig::default()).await;
    let secrets: Api<Secret> = Api::namespaced(world.client.clone(), &world.ns);
    let secret = |key: &str| -> Secret {
        serde_json::from_value(
            json!({"metadata": {"name": "creds"}, "stringData": {"apiKey": key}}),
        )
        .unwrap()
    };
    secrets
        .create(&PostParams::default(), &secret(&world.key))
        .await
        .unwrap();
    let _op = world.start_operator(&["--default-credentials-namespaces", ""]);
    world
        .apply_member(
            "ivy",
            json!({"workspace": world.workspace, "email": "ivy@example.com",
                   "credentialsRef": {"name": "creds"}}),
        )
        .await;
    eventually("ivy Invited", DEADLINE, || async {
        (world.member_phase("ivy").await? == MemberPhase::Invited).then_some(())
    })
    .await;
    secrets
        .delete("creds", &DeleteParams::default())
        .await
        .unwrap();
    // Deleted only once the operator itself no longer has the key (it keeps a Secret's key for a
    // moment): ask for resyncs until it reports the key gone.
    nudged_until(
        &world.members(),
        "ivy",
        "ivy Stalled CredentialsNotFound",
        || async {
            let status = world.members().get("ivy").await.ok()?.status?;
            (condition(&status.conditions, "Stalled")?
                == ("True".into(), "CredentialsNotFound".into()))
                .then_some(())
        },
    )
    .await;
    world
        .members()
        .delete("ivy", &DeleteParams::default())
        .await
        .unwrap();
    condition_is(
        &world.members(),
        "ivy",
        "Stalled",
        "True",
        "CredentialsNotFound",
    )
    .await;
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(world.client.clone(), &world.ns);
    eventually(
        "a Warning Event about the credentials",
        DEADLINE,
        || async {
            let list = events.list(&kube::api::ListParams::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| {
                    e.type_.as_deref() == Some("Warning")
                        && e.reason.as_deref() == Some("CredentialsNotFound")
                        && e.message
                            .as_deref()
                            .is_some_and(|m| m.contains("finalizer"))
                })
                .then_some(())
        },
    )
    .await;
    assert!(world.remote_user("ivy@example.com").await.is_some());
    secrets
        .create(&PostParams::default(), &secret(&world.key))
        .await
        .unwrap();
    // A Secret put back does not wake the object: a forced resync does (else the next periodic one).
    nudged_until(&world.members(), "ivy", "ivy gone", || async {
        world
            .members()
            .get_opt("ivy")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        world.remote_user("ivy@example.com").await.is_none(),
        "revoked"
    );
}

/// Mass deletion: past --removal-limit removals in a workspace, the rest wait Stalled
/// RemovalLimitReached (counted in a metric) until a person confirms on the object.
#[tokio::test]
async fn mass_removal_is_held_until_confirmed() {
    let mut world = World::new(SimConfig {
        auto_accept_after: Some(Duration::ZERO),
        ..SimConfig::default()
    })
    .await;
    let op = world.start_operator(&["--removal-limit", "2"]);
    let names = ["m0", "m1", "m2", "m3"];
    active_then_deleted(&world, &names).await;
    let held = eventually("two removals held", DEADLINE, || async {
        let mut held = Vec::new();
        for name in names {
            let Some(obj) = world.members().get_opt(name).await.ok()? else {
                continue;
            };
            let stalled = obj
                .status
                .and_then(|s| condition(&s.conditions, "Stalled"))
                .is_some_and(|(_, reason)| reason == "RemovalLimitReached");
            if stalled {
                held.push(name);
            }
        }
        (held.len() == 2).then_some(held)
    })
    .await;
    assert_eq!(world.remote_users().await.len(), 2, "two removed, two kept");
    assert!(
        sample(
            &op.scrape().await.unwrap(),
            "blaxel_operator_removals_held_total"
        )
        .unwrap()
            >= 2.0
    );
    world
        .members()
        .patch(
            held[0],
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"blaxel.ai/confirm-removal": "true"}}}),
            ),
        )
        .await
        .unwrap();
    wait_gone(&world.members(), held[0]).await;
    assert_eq!(world.remote_users().await.len(), 1);
    assert!(world.members().get_opt(held[1]).await.unwrap().is_some());
}

/// Ten members waiting on a failing user list cost one fetch per shared-failure window, not one each.
#[tokio::test]
async fn a_failing_list_is_fetched_once_per_window() {
    let mut world = World::new(SimConfig::default()).await;
    world
        .sim_control(
            "faults/script",
            json!({"route": "GET /v0/users", "status": 503, "times": 100_000}),
        )
        .await;
    let _op = world.start_operator(&[]);
    for i in 0..10 {
        world
            .apply_member(
                &format!("w{i}"),
                json!({"workspace": world.workspace, "email": format!("w{i}@example.com")}),
            )
            .await;
    }
    condition_is(&world.members(), "w9", "Synced", "False", "Unavailable").await;
    // A transient failure: Reconciling (it retries by itself), not Stalled.
    condition_is(&world.members(), "w9", "Reconciling", "True", "Retrying").await;
    condition_is(&world.members(), "w9", "Stalled", "False", "Retrying").await;
    let start = world.calls("GET /v0/users");
    // A measurement window, not a synchronisation: count what ten failing members cost in 5 s.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let attempts = world.calls("GET /v0/users") - start;
    // At most one fetch per 2 s window (4 in 5 s, counting a window straddling each end), each of up to
    // 3 attempts (the client's retries). Without sharing, each member fetched in turn: 30 and more.
    assert!(
        attempts <= 12,
        "{attempts} GET /users attempts in 5 s for 10 waiting members"
    );
}

/// One malformed remote record (a sandbox whose memory does not fit an i64, a user with a null e-mail)
/// stops nothing else: the workspace's other objects converge and clean up, and the object whose record
/// it is fails with a decode error instead of creating it again.
#[tokio::test]
async fn a_malformed_remote_record_does_not_stop_the_workspace() {
    let mut world = World::new(SimConfig {
        auto_accept_after: Some(Duration::ZERO),
        ..fast_sandboxes()
    })
    .await;
    let malformed = format!("workspaces/{}/malformed", world.workspace);
    world
        .sim_control(
            &malformed,
            json!({"collection": "sandboxes", "record": {"metadata": {"name": "broken"},
                   "spec": {"runtime": {"memory": 9_223_372_036_854_775_808_u64}}}}),
        )
        .await;
    world
        .sim_control(
            &malformed,
            json!({"collection": "users", "record": {"email": null, "role": "member"}}),
        )
        .await;
    let _op = world.start_operator(&[]);
    world.apply_sandbox("good", world.sandbox_spec()).await;
    world.apply_sandbox("broken", world.sandbox_spec()).await;
    world
        .apply_member(
            "kim",
            json!({"workspace": world.workspace, "email": "kim@example.com"}),
        )
        .await;
    condition_is(&world.sandboxes(), "good", "Ready", "True", "Running").await;
    condition_is(&world.sandboxes(), "broken", "Synced", "False", "Decode").await;
    eventually("kim Active", DEADLINE, || async {
        (world.member_phase("kim").await? == MemberPhase::Active).then_some(())
    })
    .await;
    assert_eq!(
        world.calls("POST /v0/sandboxes"),
        1,
        "broken is never created"
    );
    world
        .sandboxes()
        .delete("good", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.sandboxes(), "good").await;
    world
        .members()
        .delete("kim", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.members(), "kim").await;
    assert!(world.remote_user("kim@example.com").await.is_none());
}

/// A FAILED sandbox's own message that quotes the API key (at the length cut, where cutting first
/// would leave a prefix) reaches status and Events scrubbed.
#[tokio::test]
async fn a_remote_message_quoting_the_key_is_scrubbed() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&["--resync-interval", "1h"]);
    world.apply_sandbox("leaky", world.sandbox_spec()).await;
    condition_is(&world.sandboxes(), "leaky", "Ready", "True", "Running").await;
    let message = format!("{} {}", "x".repeat(295), world.key);
    world
        .sim_control(
            &format!("workspaces/{}/sandboxes/leaky/fail", world.workspace),
            json!({ "message": message }),
        )
        .await;
    nudged_until(
        &world.sandboxes(),
        "leaky",
        "leaky Stalled RemoteFailed",
        || async {
            let status = world.sandboxes().get("leaky").await.ok()?.status?;
            (condition(&status.conditions, "Stalled")? == ("True".into(), "RemoteFailed".into()))
                .then_some(())
        },
    )
    .await;
    let status =
        serde_json::to_string(&world.sandboxes().get("leaky").await.unwrap().status).unwrap();
    let prefix = &world.key[..5];
    assert!(status.contains("xxxxx"), "the message is shown: {status}");
    assert!(
        !status.contains(prefix),
        "a prefix of the key leaked: {status}"
    );
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(world.client.clone(), &world.ns);
    let listed = events
        .list(&kube::api::ListParams::default())
        .await
        .unwrap();
    assert!(
        !serde_json::to_string(&listed.items)
            .unwrap()
            .contains(prefix)
    );
}

/// The mass-removal guard's count survives a restart (a crash loop, a rollout): removals held before
/// it stay held after it, since each removal is recorded in the operator's namespace before it is made.
#[tokio::test]
async fn the_removal_limit_survives_a_restart() {
    let mut world = World::new(SimConfig {
        auto_accept_after: Some(Duration::ZERO),
        ..SimConfig::default()
    })
    .await;
    let flags = ["--removal-limit", "2", "--removal-window", "1h"];
    let mut first = world.start_operator(&flags);
    let names = ["r0", "r1", "r2", "r3", "r4", "r5"];
    active_then_deleted(&world, &names).await;
    eventually("four removals held", DEADLINE, || async {
        (world.remote_users().await.len() == 4
            && sample(
                &first.scrape().await?,
                "blaxel_operator_removals_held_total",
            )? >= 4.0)
            .then_some(())
    })
    .await;
    first.kill();
    let second = world.start_operator(&flags);
    // The restarted operator looked at every held removal itself, and held them again.
    eventually(
        "the restarted operator holds them too",
        DEADLINE,
        || async {
            (sample(
                &second.scrape().await?,
                "blaxel_operator_removals_held_total",
            )? >= 4.0)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        world.remote_users().await.len(),
        4,
        "no removal after the restart"
    );
    let record: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(world.client.clone(), &world.ns);
    let record = record.get("blaxel-operator-removals").await.unwrap();
    let text = record.data.unwrap()["removals.json"].clone();
    let log: std::collections::BTreeMap<
        String,
        Vec<blaxel_operator::reconcile::removals::Removal>,
    > = serde_json::from_str(&text).unwrap();
    assert_eq!(log[&world.workspace].len(), 2, "{text}");
}
