//! End to end: the Workspace kind on the local Kubernetes API server, against the simulator over HTTP.
//! Adoption, creation with an account key, name taken elsewhere, deletion (Delete, Orphan, in use), and
//! the membership policies with their safety rules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

use std::time::Duration;

use blaxel_operator::sim::{ApiGeneration, SimConfig};
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use serde_json::{Value, json};
use support::operator::{DEADLINE, World, condition_is, eventually, nudged_until, wait_gone};

/// The account key every test's simulator also accepts (it may create and delete workspaces).
const ACCOUNT_KEY: &str = "acct-key-4f1c9e";

fn with_account_key() -> SimConfig {
    SimConfig {
        account_keys: vec![ACCOUNT_KEY.to_owned()],
        ..SimConfig::default()
    }
}

/// A simulator of today's API (users carry their `source`) whose invitees accept at once, so declared
/// members become Active.
fn accepting() -> SimConfig {
    SimConfig {
        generation: ApiGeneration::V2026,
        auto_accept_after: Some(Duration::ZERO),
        ..SimConfig::default()
    }
}

/// A person adds `email` to the world's workspace outside the operator.
async fn out_of_band(world: &World, email: &str, source: &str, accepted: bool) {
    world
        .sim_control(
            &format!("workspaces/{}/users", world.workspace),
            json!({"email": email, "role": "member", "source": source, "accepted": accepted}),
        )
        .await;
}

/// The e-mails in the world's workspace now.
async fn present(world: &World) -> Vec<String> {
    let mut emails: Vec<String> = world
        .remote_users()
        .await
        .iter()
        .filter_map(|u| u["email"].as_str().map(str::to_owned))
        .collect();
    emails.sort();
    emails
}

/// The Workspace object `name`'s status as JSON.
async fn status(world: &World, name: &str) -> Value {
    serde_json::to_value(world.workspaces().get(name).await.unwrap())
        .unwrap()
        .get("status")
        .cloned()
        .unwrap_or(Value::Null)
}

/// Warning Events about object `name` with `reason`, by their notes.
async fn warnings(world: &World, name: &str, reason: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(world.client.clone(), &world.ns);
    let list = events.list(&ListParams::default()).await.unwrap();
    list.items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.message)
        .collect()
}

fn deletes(world: &World) -> u64 {
    world.calls("DELETE /v0/users/{subOrEmail}")
}

/// An existing workspace is adopted, Report lists the unmanaged members and invitations (with a
/// Warning Event) and removes nobody.
#[tokio::test(flavor = "multi_thread")]
async fn report_adopts_and_lists_without_removing() {
    let mut world = World::new(accepting()).await;
    let _op = world.start_operator(&[]);
    world.active_members(&["alice"]).await;
    out_of_band(&world, "carol@example.com", "invitation", true).await;
    out_of_band(&world, "dave@example.com", "invitation", false).await;
    world
        .apply(
            &world.workspaces(),
            "home",
            json!({"spec": {"workspaceName": world.workspace, "members": {"policy": "Report"}}}),
        )
        .await;
    // The member list is shared and may be a resync old: ask for a fresh read.
    nudged_until(
        &world.workspaces(),
        "home",
        "carol and dave reported",
        || async {
            (status(&world, "home").await["unmanaged"]
                == json!(["carol@example.com", "dave@example.com"]))
            .then_some(())
        },
    )
    .await;
    condition_is(&world.workspaces(), "home", "Ready", "True", "Ready").await;
    let status = status(&world, "home").await;
    assert_eq!(status["adopted"], true, "{status}");
    assert_eq!(
        status["unmanaged"],
        json!(["carol@example.com", "dave@example.com"]),
        "{status}"
    );
    assert_eq!(
        status["members"],
        json!({"declared": 1, "present": 3, "unmanaged": 2})
    );
    let notes = warnings(&world, "home", "UnmanagedMembers").await;
    assert!(
        notes.iter().any(|n| n.contains("carol@example.com")),
        "a Warning Event names the unmanaged: {notes:?}"
    );
    assert_eq!(deletes(&world), 0, "Report removes nobody");
    assert_eq!(
        present(&world).await,
        ["alice@example.com", "carol@example.com", "dave@example.com"]
    );
    assert_eq!(
        world.calls("PUT /v0/workspaces/{name}"),
        0,
        "nothing declared differs"
    );
}

/// Authoritative removes an out-of-band member and revokes an out-of-band invitation; it keeps the
/// declared, the protected and those a directory sync provisioned. Over the cap nothing goes, until
/// the cap is raised.
#[tokio::test(flavor = "multi_thread")]
async fn authoritative_removes_the_unmanaged_within_the_cap() {
    let mut world = World::new(accepting()).await;
    let _op = world.start_operator(&[]);
    world.active_members(&["alice"]).await;
    out_of_band(&world, "carol@example.com", "invitation", true).await;
    out_of_band(&world, "dave@example.com", "invitation", false).await;
    out_of_band(&world, "owner@example.com", "invitation", true).await;
    out_of_band(&world, "synced@example.com", "directory_sync", true).await;
    let spec = |max: u32| {
        json!({"spec": {"workspaceName": world.workspace, "members": {
            "policy": "Authoritative", "protected": ["owner@example.com"], "maxRemovals": max
        }}})
    };
    world.apply(&world.workspaces(), "home", spec(1)).await;
    // The member list is shared and may be a resync old: ask for fresh reads until it shows them.
    nudged_until(
        &world.workspaces(),
        "home",
        "Stalled TooManyRemovals",
        || async {
            let status = status(&world, "home").await;
            let stalled = status["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Stalled")?
                .clone();
            (stalled["status"] == "True" && stalled["reason"] == "TooManyRemovals").then_some(())
        },
    )
    .await;
    assert_eq!(deletes(&world), 0, "over the cap, none is removed");
    assert_eq!(present(&world).await.len(), 5);

    world.apply(&world.workspaces(), "home", spec(2)).await;
    eventually("carol and dave removed", DEADLINE, || async {
        (present(&world).await
            == [
                "alice@example.com",
                "owner@example.com",
                "synced@example.com",
            ])
        .then_some(())
    })
    .await;
    assert_eq!(deletes(&world), 2);
    condition_is(&world.workspaces(), "home", "Ready", "True", "Ready").await;
    let status = status(&world, "home").await;
    assert_eq!(
        status["unmanaged"],
        json!(["synced@example.com"]),
        "{status}"
    );
}

/// The view is incomplete when the member namespaces are not all watched: nothing is removed.
#[tokio::test(flavor = "multi_thread")]
async fn an_unwatched_member_namespace_removes_nobody() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&[]);
    out_of_band(&world, "carol@example.com", "invitation", true).await;
    world
        .apply(
            &world.workspaces(),
            "home",
            json!({"spec": {"workspaceName": world.workspace, "members": {
                "policy": "Authoritative", "namespaces": [world.ns, "team-elsewhere"]
            }}}),
        )
        .await;
    condition_is(
        &world.workspaces(),
        "home",
        "Stalled",
        "True",
        "IncompleteView",
    )
    .await;
    assert_eq!(deletes(&world), 0);
    assert_eq!(present(&world).await, ["carol@example.com"]);
}

/// A namespace that may not use the default key calls nothing, and so removes nobody.
#[tokio::test(flavor = "multi_thread")]
async fn an_ungranted_namespace_removes_nobody() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&["--default-credentials-namespaces", "somewhere-else"]);
    out_of_band(&world, "carol@example.com", "invitation", true).await;
    world
        .apply(
            &world.workspaces(),
            "home",
            json!({"spec": {"workspaceName": world.workspace, "members": {"policy": "Authoritative"}}}),
        )
        .await;
    condition_is(
        &world.workspaces(),
        "home",
        "Stalled",
        "True",
        "CredentialsNotPermitted",
    )
    .await;
    assert_eq!(deletes(&world), 0);
    assert_eq!(world.calls("GET /v0/workspaces/{name}"), 0);
    assert_eq!(present(&world).await, ["carol@example.com"]);
}

/// The spec of a Workspace named `name` remotely, using the account key's Secret.
fn account_spec(name: &str, policy: &str) -> Value {
    json!({"spec": {
        "workspaceName": name, "displayName": "Fresh one", "labels": {"team": "a"},
        "deletionPolicy": policy, "credentialsRef": {"name": "account"}
    }})
}

/// A short suffix that makes workspace names unique per test namespace (names are global in Blaxel).
fn suffix(world: &World) -> String {
    world.ns[world.ns.len().saturating_sub(6)..].to_owned()
}

/// With an account key: created when absent (after an availability check), Ready once Blaxel says
/// `ready`; a name taken by another account is Stalled `NameUnavailable` with nothing created; the key
/// appears in no log line or Event.
#[tokio::test(flavor = "multi_thread")]
async fn an_account_key_creates_a_workspace_unless_the_name_is_taken() {
    let mut world = World::new(with_account_key()).await;
    let op = world.start_operator(&[]);
    world.key_secret("account", ACCOUNT_KEY).await;
    let fresh = format!("fresh-{}", suffix(&world));
    world
        .apply(&world.workspaces(), "fresh", account_spec(&fresh, "Delete"))
        .await;
    condition_is(&world.workspaces(), "fresh", "Ready", "True", "Ready").await;
    assert_eq!(world.calls("POST /v0/workspaces"), 1);
    assert_eq!(world.calls("POST /v0/workspaces/availability"), 1);
    let status = status(&world, "fresh").await;
    assert_eq!(
        (&status["adopted"], &status["phase"]),
        (&json!(false), &json!("ready")),
        "{status}"
    );
    let record = &world.sim_state().await["workspaces"][&fresh]["workspace"];
    assert_eq!(
        (&record["displayName"], &record["labels"]),
        (&json!("Fresh one"), &json!({"team": "a"}))
    );

    let taken = format!("taken-{}", suffix(&world));
    world
        .sim_control(&format!("workspaces/{taken}/foreign"), json!({}))
        .await;
    world
        .apply(&world.workspaces(), "taken", account_spec(&taken, "Delete"))
        .await;
    condition_is(
        &world.workspaces(),
        "taken",
        "Stalled",
        "True",
        "NameUnavailable",
    )
    .await;
    assert_eq!(world.calls("POST /v0/workspaces"), 1, "nothing created");

    assert!(
        !op.output().contains(ACCOUNT_KEY),
        "the account key is in the log"
    );
    let events: Api<Event> = Api::namespaced(world.client.clone(), &world.ns);
    for event in events.list(&ListParams::default()).await.unwrap() {
        assert!(
            !event.message.unwrap_or_default().contains(ACCOUNT_KEY),
            "the account key is in an Event"
        );
    }
}

/// Delete with `Delete` removes the workspace, after waiting while a WorkspaceMember still uses it;
/// with `Orphan` the workspace stays.
#[tokio::test(flavor = "multi_thread")]
async fn deleting_waits_for_users_and_follows_the_policy() {
    let mut world = World::new(with_account_key()).await;
    let _op = world.start_operator(&[]);
    world.key_secret("account", ACCOUNT_KEY).await;
    let fresh = format!("gone-{}", suffix(&world));
    world
        .apply(&world.workspaces(), "fresh", account_spec(&fresh, "Delete"))
        .await;
    condition_is(&world.workspaces(), "fresh", "Ready", "True", "Ready").await;
    world
        .apply_member(
            "user",
            json!({"workspace": fresh, "email": "user@example.com", "credentialsRef": {"name": "account"}}),
        )
        .await;
    world
        .workspaces()
        .delete("fresh", &DeleteParams::default())
        .await
        .unwrap();
    condition_is(
        &world.workspaces(),
        "fresh",
        "Stalled",
        "True",
        "WorkspaceInUse",
    )
    .await;
    assert_eq!(world.calls("DELETE /v0/workspaces/{name}"), 0);
    world
        .members()
        .delete("user", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.members(), "user").await;
    nudged_until(
        &world.workspaces(),
        "fresh",
        "the workspace deleted",
        || async {
            world
                .workspaces()
                .get_opt("fresh")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert_eq!(world.calls("DELETE /v0/workspaces/{name}"), 1);
    assert!(world.sim_state().await["workspaces"].get(&fresh).is_none());

    let kept = format!("kept-{}", suffix(&world));
    world
        .apply(&world.workspaces(), "kept", account_spec(&kept, "Orphan"))
        .await;
    condition_is(&world.workspaces(), "kept", "Ready", "True", "Ready").await;
    world
        .workspaces()
        .delete("kept", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.workspaces(), "kept").await;
    assert_eq!(
        world.calls("DELETE /v0/workspaces/{name}"),
        1,
        "Orphan deletes nothing"
    );
    assert!(world.sim_state().await["workspaces"].get(&kept).is_some());
}

/// Two Workspace objects for one remote workspace: the newer is Stalled `DuplicateWorkspace`.
#[tokio::test(flavor = "multi_thread")]
async fn one_object_per_remote_workspace() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&[]);
    let spec = json!({"spec": {"workspaceName": world.workspace}});
    world
        .apply(&world.workspaces(), "first", spec.clone())
        .await;
    condition_is(&world.workspaces(), "first", "Ready", "True", "Ready").await;
    support::operator::second_after(&world.workspaces(), "first").await;
    world.apply(&world.workspaces(), "second", spec).await;
    condition_is(
        &world.workspaces(),
        "second",
        "Stalled",
        "True",
        "DuplicateWorkspace",
    )
    .await;
}

/// 1,000 declared members under an Authoritative workspace: the operator killed and started again
/// (its caches empty, the WorkspaceMembers listed anew) removes no one, however soon the Workspace is
/// reconciled after the start.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_with_a_thousand_declared_members_removes_no_one() {
    use futures::StreamExt;

    const N: usize = 1_000;
    let mut world = World::new(accepting()).await;
    let emails: Vec<String> = (0..N).map(|i| format!("m{i:04}@example.com")).collect();
    futures::stream::iter(&emails)
        .for_each_concurrent(32, |email| {
            let world = &world;
            async move { out_of_band(world, email, "invitation", true).await }
        })
        .await;
    futures::stream::iter(0..N)
        .for_each_concurrent(32, |i| {
            let world = &world;
            let email = &emails[i];
            async move {
                world
                    .apply_member(
                        &format!("m{i:04}"),
                        json!({"workspace": world.workspace, "email": email, "deletionPolicy": "Orphan"}),
                    )
                    .await;
            }
        })
        .await;
    world
        .apply(
            &world.workspaces(),
            "home",
            json!({"spec": {"workspaceName": world.workspace, "members": {
                "policy": "Authoritative", "maxRemovals": N
            }}}),
        )
        .await;
    let mut op = world.start_operator(&[]);
    nudged_until(
        &world.workspaces(),
        "home",
        "all 1,000 declared",
        || async {
            (status(&world, "home").await["members"]
                == json!({"declared": N, "present": N, "unmanaged": 0}))
            .then_some(())
        },
    )
    .await;
    op.kill();
    let before = deletes(&world);
    let _op = world.start_operator(&[]);
    // A pass after the restart: the generation moves, and the status must describe it.
    world
        .apply(
            &world.workspaces(),
            "home",
            json!({"spec": {"workspaceName": world.workspace, "displayName": "after restart", "members": {
                "policy": "Authoritative", "maxRemovals": N
            }}}),
        )
        .await;
    eventually("a pass after the restart", DEADLINE, || async {
        let status = status(&world, "home").await;
        (status["observedGeneration"] == 2
            && status["members"] == json!({"declared": N, "present": N, "unmanaged": 0}))
        .then_some(())
    })
    .await;
    assert_eq!(
        deletes(&world),
        before,
        "no member removed after the restart"
    );
    assert_eq!(before, 0);
    assert_eq!(world.remote_users().await.len(), N);
}

/// Every kind refuses a workspace name in any other form than Blaxel's (case, surrounding or inner
/// whitespace, dots, underscores): two objects naming one workspace must spell it alike, or the
/// Workspace kind would not count one as declaring its member (a trailing space still reaches the
/// workspace through the header, and an Authoritative policy would remove whom it manages).
#[tokio::test]
async fn every_kind_refuses_workspace_names_in_another_form() {
    use kube::api::{DynamicObject, Patch, PatchParams};
    use kube::discovery::ApiResource;

    let world = World::new(SimConfig::default()).await;
    for (kind, plural, field, extra) in [
        (
            "WorkspaceMember",
            "workspacemembers",
            "workspace",
            json!({"email": "a@example.com"}),
        ),
        (
            "Sandbox",
            "sandboxes",
            "workspace",
            json!({"image": "blaxel/base:latest"}),
        ),
        (
            "IntegrationConnection",
            "integrationconnections",
            "workspace",
            json!({"integration": "openai", "secretRef": {"name": "s"}}),
        ),
        ("Workspace", "workspaces", "workspaceName", json!({})),
    ] {
        let resource = ApiResource {
            group: "blaxel.ai".into(),
            version: "v1alpha1".into(),
            api_version: "blaxel.ai/v1alpha1".into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(world.client.clone(), &world.ns, &resource);
        for name in [
            "acme ",
            " acme",
            "Acme",
            "ac me",
            "acme.prod",
            "acme_prod",
            "-acme",
        ] {
            let mut spec = extra.clone();
            spec[field] = json!(name);
            let body = json!({"apiVersion": "blaxel.ai/v1alpha1", "kind": kind,
                              "metadata": {"name": "odd"}, "spec": spec});
            let err = api
                .patch("odd", &PatchParams::apply("e2e-test"), &Patch::Apply(&body))
                .await
                .expect_err(&format!("{kind} with {field} {name:?} was admitted"));
            assert!(
                err.to_string().contains("must be a workspace name"),
                "{kind} {name:?}: {err}"
            );
        }
    }
}

/// Bad Workspace specs are refused at admission with a readable message: a remote name Blaxel would
/// refuse, a protected e-mail in another form than the canonical one, `namespaces: []` (it would
/// declare no one), and a change of the remote name.
#[tokio::test]
async fn admission_refuses_bad_workspace_specs() {
    use kube::api::{Patch, PatchParams};

    let world = World::new(SimConfig::default()).await;
    let apply = |name: &str, spec: Value| {
        let body = json!({"apiVersion": "blaxel.ai/v1alpha1", "kind": "Workspace",
                          "metadata": {"name": name}, "spec": spec});
        let api = world.workspaces();
        let name = name.to_owned();
        async move {
            api.patch(&name, &PatchParams::apply("e2e-test"), &Patch::Apply(&body))
                .await
        }
    };
    for (spec, message) in [
        (
            json!({"workspaceName": "Acme_Prod"}),
            "must be a workspace name: lower-case letters, digits and hyphens",
        ),
        (
            json!({"members": {"protected": ["Owner@Example.com"]}}),
            "protected e-mails must be lower-case ASCII addresses",
        ),
        (
            json!({"members": {"namespaces": []}}),
            "should have at least 1 items",
        ),
        (
            json!({"members": {"policy": "Strict"}}),
            "Unsupported value: \"Strict\"",
        ),
    ] {
        let err = apply("bad", spec.clone()).await.unwrap_err();
        assert!(err.to_string().contains(message), "{spec}: {err}");
    }
    apply("named", json!({"workspaceName": "one"}))
        .await
        .unwrap();
    let err = apply("named", json!({"workspaceName": "two"}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("workspaceName is immutable"),
        "{err}"
    );
    // Removing it would switch the remote name to metadata.name: refused as well.
    let err = apply("named", json!({})).await.unwrap_err();
    assert!(
        err.to_string().contains("workspaceName is immutable"),
        "{err}"
    );
}
