//! End to end: WorkspaceMember against the local Kubernetes API server and the simulator over HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

use blaxel_operator::crd::MemberPhase;
use blaxel_operator::sim::SimConfig;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use support::operator::{DEADLINE, World, annotate, condition, eventually, wait_gone};

async fn phase_and_ready(world: &World, name: &str) -> Option<(MemberPhase, String, String)> {
    let obj = world.members().get_opt(name).await.ok()??;
    let status = obj.status?;
    let (ready, reason) = condition(&status.conditions, "Ready")?;
    Some((status.phase?, ready, reason))
}

/// Waits until member `name` is Active and Ready.
async fn wait_active(world: &World, name: &str) {
    eventually(&format!("{name} Active and Ready"), DEADLINE, || async {
        match phase_and_ready(world, name).await {
            Some((MemberPhase::Active, ready, _)) if ready == "True" => Some(()),
            _ => None,
        }
    })
    .await;
}

/// A simulator whose invitees accept at once.
fn accepting() -> SimConfig {
    SimConfig {
        auto_accept_after: Some(std::time::Duration::ZERO),
        ..SimConfig::default()
    }
}

/// Invite → Invited/InvitationPending with the role set → accepted → Active and Ready; one invitation only.
#[tokio::test]
async fn invite_pending_accept_ready() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&[]);
    world
        .apply_member(
            "alice",
            json!({"workspace": world.workspace, "email": "alice@example.com", "role": "admin"}),
        )
        .await;
    eventually("alice Invited with InvitationPending", DEADLINE, || async {
        match phase_and_ready(&world, "alice").await {
            Some((MemberPhase::Invited, ready, reason))
                if ready == "False" && reason == "InvitationPending" =>
            {
                Some(())
            }
            _ => None,
        }
    })
    .await;
    let remote = world
        .remote_user("alice@example.com")
        .await
        .expect("invitation exists remotely");
    assert_eq!(
        remote["role"], "admin",
        "role set on the pending invitation: {remote}"
    );
    assert_eq!(remote["standing"], "pending");
    let obj = world.members().get("alice").await.unwrap();
    let status = obj.status.unwrap();
    assert_eq!(
        condition(&status.conditions, "Reconciling").unwrap().0,
        "True"
    );
    assert!(!status.adopted);

    world
        .sim_control("invitations/alice@example.com/accept", json!({}))
        .await;
    wait_active(&world, "alice").await;
    assert_eq!(
        world.calls("POST /v0/users"),
        1,
        "exactly one invitation sent"
    );
    let status = world.members().get("alice").await.unwrap().status.unwrap();
    assert_eq!(status.observed_generation, Some(1));
    assert!(status.sub.is_some(), "sub recorded once known");
}

/// A role change in spec is applied remotely; nothing else is re-sent.
#[tokio::test]
async fn role_change_is_applied() {
    let mut world = World::new(accepting()).await;
    let _op = world.start_operator(&[]);
    world
        .apply_member(
            "bob",
            json!({"workspace": world.workspace, "email": "bob@example.com"}),
        )
        .await;
    wait_active(&world, "bob").await;
    world
        .apply_member(
            "bob",
            json!({"workspace": world.workspace, "email": "bob@example.com", "role": "admin"}),
        )
        .await;
    eventually("bob admin remotely", DEADLINE, || async {
        (world.remote_user("bob@example.com").await?["role"] == "admin").then_some(())
    })
    .await;
    eventually("bob Ready at generation 2", DEADLINE, || async {
        let s = world.members().get("bob").await.ok()?.status?;
        (s.observed_generation == Some(2) && condition(&s.conditions, "Ready")?.0 == "True")
            .then_some(())
    })
    .await;
    assert_eq!(world.calls("POST /v0/users"), 1);
}

/// Someone changes a member's role in Blaxel directly, past the operator.
async fn set_role_by_hand(world: &World, email: &str, role: &str) {
    let status = world
        .blaxel(
            reqwest::Method::PUT,
            &format!("/users/{email}"),
            Some(json!({"role": role})),
        )
        .await;
    assert!(status.is_success(), "{status}");
}

/// A member removed or re-roled out of band is put back (forced resync via reconcile-requested-at).
#[tokio::test]
async fn out_of_band_drift_is_repaired() {
    let mut world = World::new(accepting()).await;
    // A resync far beyond the deadlines below: only the forced resync can repair in time.
    let _op = world.start_operator(&["--resync-interval", "1h"]);
    let soon = std::time::Duration::from_secs(10);
    world
        .apply_member(
            "carol",
            json!({"workspace": world.workspace, "email": "carol@example.com", "role": "admin"}),
        )
        .await;
    wait_active(&world, "carol").await;
    set_role_by_hand(&world, "carol@example.com", "member").await;
    let request = |value: &str| json!({"metadata": {"annotations": {"blaxel.ai/reconcile-requested-at": value}}});
    world
        .members()
        .patch(
            "carol",
            &PatchParams::default(),
            &Patch::Merge(request("1")),
        )
        .await
        .unwrap();
    eventually("carol admin again", soon, || async {
        (world.remote_user("carol@example.com").await?["role"] == "admin").then_some(())
    })
    .await;
    // Someone removes Carol by hand.
    let status = world
        .blaxel(reqwest::Method::DELETE, "/users/carol@example.com", None)
        .await;
    assert!(status.is_success(), "{status}");
    world
        .members()
        .patch(
            "carol",
            &PatchParams::default(),
            &Patch::Merge(request("2")),
        )
        .await
        .unwrap();
    eventually("carol invited again", soon, || async {
        world.remote_user("carol@example.com").await
    })
    .await;
    assert_eq!(
        world.calls("POST /v0/users"),
        2,
        "one invitation, one repair"
    );
}

/// Without any prompt, the periodic resync repairs drift: with a 2 s period, a member re-roled by hand is
/// put back within a few periods, and no other member is written.
#[tokio::test]
async fn periodic_resync_repairs_drift() {
    let mut world = World::new(accepting()).await;
    let _op = world.start_operator(&["--resync-interval", "2s"]);
    for name in ["gina", "hal"] {
        world
            .apply_member(
                name,
                json!({"workspace": world.workspace, "email": format!("{name}@example.com"), "role": "admin"}),
            )
            .await;
    }
    wait_active(&world, "gina").await;
    wait_active(&world, "hal").await;
    let role_writes = world.calls("PUT /v0/users/{subOrEmail}");
    set_role_by_hand(&world, "gina@example.com", "member").await;
    eventually("gina admin again", DEADLINE, || async {
        (world.remote_user("gina@example.com").await?["role"] == "admin").then_some(())
    })
    .await;
    assert_eq!(world.calls("POST /v0/users"), 2, "one invitation each");
    assert_eq!(
        world.calls("PUT /v0/users/{subOrEmail}"),
        role_writes + 2,
        "the hand-made change and the repair, nothing for hal"
    );
}

/// Deleting with Delete revokes the invitation and the object goes; with Orphan the member stays.
#[tokio::test]
async fn delete_revokes_and_orphan_keeps() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&[]);
    world
        .apply_member(
            "dave",
            json!({"workspace": world.workspace, "email": "dave@example.com"}),
        )
        .await;
    world
        .apply_member("erin", json!({"workspace": world.workspace, "email": "erin@example.com", "deletionPolicy": "Orphan"}))
        .await;
    for name in ["dave", "erin"] {
        eventually("invited", DEADLINE, || async {
            matches!(
                phase_and_ready(&world, name).await,
                Some((MemberPhase::Invited, _, _))
            )
            .then_some(())
        })
        .await;
    }
    for name in ["dave", "erin"] {
        world
            .members()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    for name in ["dave", "erin"] {
        wait_gone(&world.members(), name).await;
    }
    assert!(
        world.remote_user("dave@example.com").await.is_none(),
        "dave's invitation revoked"
    );
    assert!(
        world.remote_user("erin@example.com").await.is_some(),
        "erin orphaned, still invited"
    );
    assert_eq!(world.calls("DELETE /v0/users/{subOrEmail}"), 1);
}

/// Two objects claiming one e-mail: the older wins, the newer is Stalled DuplicateMember and calls nothing.
#[tokio::test]
async fn duplicate_claim_older_wins() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&[]);
    world
        .apply_member(
            "first",
            json!({"workspace": world.workspace, "email": "frank@example.com"}),
        )
        .await;
    eventually("first invited", DEADLINE, || async {
        matches!(
            phase_and_ready(&world, "first").await,
            Some((MemberPhase::Invited, _, _))
        )
        .then_some(())
    })
    .await;
    world
        .apply_member(
            "second",
            json!({"workspace": world.workspace, "email": "frank@example.com", "role": "admin"}),
        )
        .await;
    eventually("second Stalled DuplicateMember", DEADLINE, || async {
        let s = world.members().get("second").await.ok()?.status?;
        (condition(&s.conditions, "Stalled")? == ("True".into(), "DuplicateMember".into()))
            .then_some(())
    })
    .await;
    assert_eq!(world.calls("POST /v0/users"), 1);
    assert_eq!(
        world.calls("PUT /v0/users/{subOrEmail}"),
        0,
        "the duplicate never set its role"
    );

    // Deleting a losing duplicate revokes nothing: the holder's invitation stays.
    world
        .apply_member(
            "third",
            json!({"workspace": world.workspace, "email": "frank@example.com", "role": "admin"}),
        )
        .await;
    world
        .members()
        .delete("second", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.members(), "second").await;
    assert_eq!(world.calls("DELETE /v0/users/{subOrEmail}"), 0);
    assert!(world.remote_user("frank@example.com").await.is_some());

    // Deleting the holder removes its invitation, and the claim passes to the remaining object, which
    // invites with its own role (a forced look spares the wait for the claim re-check).
    world
        .members()
        .delete("first", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.members(), "first").await;
    assert_eq!(world.calls("DELETE /v0/users/{subOrEmail}"), 1);
    annotate(
        &world.members(),
        "third",
        "blaxel.ai/reconcile-requested-at",
        Some("1"),
    )
    .await;
    eventually("third invites frank as admin", DEADLINE, || async {
        (world.remote_user("frank@example.com").await?["role"] == "admin").then_some(())
    })
    .await;
    assert_eq!(world.calls("POST /v0/users"), 2);
}

/// A namespace not allowed the default key is Stalled CredentialsNotPermitted and nothing is called.
#[tokio::test]
async fn default_credentials_are_namespace_scoped() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&["--default-credentials-namespaces", "someone-else"]);
    world
        .apply_member(
            "gina",
            json!({"workspace": world.workspace, "email": "gina@example.com"}),
        )
        .await;
    eventually("gina Stalled CredentialsNotPermitted", DEADLINE, || async {
        let s = world.members().get("gina").await.ok()?.status?;
        (condition(&s.conditions, "Stalled")? == ("True".into(), "CredentialsNotPermitted".into()))
            .then_some(())
    })
    .await;
    assert_eq!(
        world.sim.stats()["total"],
        0,
        "no remote call without permitted credentials"
    );
}

/// An expired invitation is re-sent up to --max-reinvites times, then the member is Expired and Stalled.
#[tokio::test]
async fn expired_invitations_are_resent_then_stall() {
    let mut world = World::new(SimConfig {
        invite_ttl: Some(std::time::Duration::from_secs(3600)),
        ..SimConfig::default()
    })
    .await;
    let _op = world.start_operator(&["--max-reinvites", "2"]);
    world
        .apply_member(
            "kim",
            json!({"workspace": world.workspace, "email": "kim@example.com"}),
        )
        .await;
    for sent in 1..=3u64 {
        eventually("invitation sent", DEADLINE, || async {
            (world.calls("POST /v0/users") == sent).then_some(())
        })
        .await;
        // The invitation lapses unanswered.
        world
            .sim
            .advance_clock(std::time::Duration::from_secs(3601));
    }
    eventually("kim Expired and Stalled", DEADLINE, || async {
        let s = world.members().get("kim").await.ok()?.status?;
        (s.phase == Some(MemberPhase::Expired)
            && condition(&s.conditions, "Stalled")? == ("True".into(), "InvitationExpired".into()))
            .then_some(s.reinvites)
    })
    .await;
    assert_eq!(
        world.calls("POST /v0/users"),
        3,
        "the first invitation and two re-sends"
    );
    let status = world.members().get("kim").await.unwrap().status.unwrap();
    assert_eq!(status.reinvites, 2);
}

/// A key Blaxel refuses (401) from a Secret: Stalled `Unauthorized`, one attempt per resync, and the
/// Secret-held key appears in no status, Event or log line.
#[tokio::test]
async fn a_refused_secret_key_is_stalled_unauthorized_and_never_shown() {
    let mut world = World::new(SimConfig::default()).await;
    let wrong_key = "bl_wrong_key_9f8e7d6c5b4a";
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(world.client.clone(), &world.ns);
    let secret = serde_json::from_value(
        json!({"metadata": {"name": "team-key"}, "stringData": {"apiKey": wrong_key}}),
    )
    .unwrap();
    secrets
        .create(&kube::api::PostParams::default(), &secret)
        .await
        .unwrap();
    let op = world.start_operator(&[]);
    world
        .apply_member(
            "uma",
            json!({"workspace": world.workspace, "email": "uma@example.com",
                   "credentialsRef": {"name": "team-key"}}),
        )
        .await;
    let status = eventually("uma Stalled Unauthorized", DEADLINE, || async {
        let s = world.members().get("uma").await.ok()?.status?;
        (condition(&s.conditions, "Stalled")? == ("True".into(), "Unauthorized".into()))
            .then_some(s)
    })
    .await;
    assert_eq!(world.calls("POST /v0/users"), 0, "nothing written");
    let shown = serde_json::to_string(&status).unwrap();
    assert!(!shown.contains(wrong_key), "{shown}");
    let events: kube::Api<k8s_openapi::api::core::v1::Event> =
        kube::Api::namespaced(world.client.clone(), &world.ns);
    let listed = events
        .list(&kube::api::ListParams::default())
        .await
        .unwrap();
    assert!(
        listed
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Unauthorized")),
        "a Warning Event says why"
    );
    assert!(
        !serde_json::to_string(&listed.items)
            .unwrap()
            .contains(wrong_key)
    );
    let log = op.output();
    assert!(log.contains("uma"), "the log names the object: {log}");
    assert!(!log.contains(wrong_key), "the key leaked into the log");
}
