//! The Workspace driver's branches against a fake Blaxel and a fake Kubernetes API
//! ([`crate::reconcile::testing`]): which remote calls each pass makes, in which order, on what it
//! read, what it reports, and above all what it never removes or deletes.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::{apply, cleanup, member_namespaces, remote_name};
use crate::blaxel::ApiError;
use crate::blaxel::model::{Unreadable, Workspace as RemoteWorkspace, WorkspaceUser};
use crate::crd::{DeletionPolicy, Workspace, WorkspaceMember};
use crate::reconcile::cached::Cached;
use crate::reconcile::testing::{self, Harness, cached, deleting, register, scope};
use crate::reconcile::{Context, Error};

type Run = Harness<Workspace>;

const ALICE: &str = "alice@example.com";
const MALLORY: &str = "mallory@example.com";
const OWNER: &str = "owner@example.com";

/// The `acme` Workspace object, `extra` laid over its spec (display name Acme, policy `policy`,
/// `owner@example.com` protected).
fn object(policy: &str, extra: &Value, status: Option<Value>) -> Value {
    let mut spec = json!({"displayName": "Acme",
                          "members": {"policy": policy, "protected": [OWNER]}});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    testing::object("Workspace", "acme", &spec, status, 1)
}

fn run(policy: &str) -> Run {
    Harness::new(&object(policy, &json!({}), None), 10)
}

async fn pass(r: &Run) -> Result<Action, Error> {
    apply(&r.obj, &r.ctx, &scope()).await
}

/// Workspace `acme` as Blaxel has it: `ready`, shown as `display`, with a label, a region and a field
/// this operator does not know, all set by hand.
fn remote(display: &str) -> RemoteWorkspace {
    serde_json::from_value(json!({
        "name": "acme", "id": "id-acme", "displayName": display, "labels": {"by": "hand"},
        "region": "eu-lon-1", "status": "ready", "runtime": {"generation": "mk3"}
    }))
    .unwrap()
}

fn user(email: &str) -> WorkspaceUser {
    WorkspaceUser {
        email: email.into(),
        role: Some("member".into()),
        accepted: Some(true),
        ..WorkspaceUser::default()
    }
}

/// A ready `acme` (as declared) with Alice, Mallory and the protected owner in it.
fn populated(r: &Run) {
    r.api.put_workspace(remote("Acme"));
    for email in [ALICE, MALLORY, OWNER] {
        r.api.put_user(user(email));
    }
}

/// Alice's WorkspaceMember for `acme`, in the Workspace's namespace.
fn alice_member() -> Value {
    testing::object(
        "WorkspaceMember",
        "alice",
        &json!({"workspace": "acme", "email": ALICE, "role": "member"}),
        None,
        1,
    )
}

/// Registers the WorkspaceMember kind with Alice's object, its view complete or not.
fn declare_alice(ctx: &mut Context, complete: bool) {
    register::<WorkspaceMember>(ctx, &[alice_member()]);
    ctx.kinds
        .get::<Cached<WorkspaceMember>>()
        .unwrap()
        .view
        .set(complete);
}

fn unavailable() -> ApiError {
    ApiError::Unavailable {
        message: "503".into(),
        retry_after: None,
    }
}

/// The remote name is `spec.workspaceName`, else the object's name; members are declared in the
/// object's own namespace unless it lists others.
#[test]
fn remote_names() {
    let mut obj: Cached<Workspace> = cached(&json!({
        "apiVersion": "blaxel.ai/v1alpha1", "kind": "Workspace",
        "metadata": {"name": "acme", "namespace": "platform"},
        "spec": {}
    }));
    assert_eq!(remote_name(&obj), "acme");
    assert_eq!(obj.spec.deletion_policy, DeletionPolicy::Orphan);
    assert_eq!(obj.spec.members.max_removals, 5);
    obj.spec.workspace_name = Some("acme-prod".into());
    assert_eq!(remote_name(&obj), "acme-prod");
    assert_eq!(member_namespaces(&obj), ["platform"]);
}

/// A new workspace: read, name checked, created, with a Normal Event; reported as Blaxel answered
/// (its id, `created`), not adopted; its members are not read before it is ready.
#[tokio::test]
async fn a_new_workspace_is_checked_then_created() {
    let r = run("Additive");
    pass(&r).await.unwrap();
    assert_eq!(
        r.api.calls(),
        [
            "get_workspace acme",
            "workspace_availability acme",
            "create_workspace acme"
        ]
    );
    assert_eq!(
        r.api.workspace("acme").unwrap().display_name.as_deref(),
        Some("Acme")
    );
    assert_eq!(r.kube.events(), ["Normal:Created"]);
    let status = r.kube.status();
    assert_eq!(status["adopted"], false);
    assert_eq!(status["id"], "id-acme");
    assert_eq!(status["phase"], "created");
    assert_eq!(
        r.kube.condition("Reconciling"),
        ("True".into(), "Provisioning".into())
    );
}

/// A name this key cannot see and Blaxel says is taken (another account's: 403) is never created:
/// Stalled NameUnavailable, no write, and neither an id nor adoption recorded.
#[tokio::test]
async fn a_taken_name_is_not_created() {
    let r = run("Additive");
    r.api.put_workspace(remote("Theirs"));
    r.api.fail_next(
        "get_workspace",
        ApiError::Forbidden {
            message: "another account's".into(),
        },
    );
    pass(&r).await.unwrap();
    assert_eq!(
        r.api.calls(),
        ["get_workspace acme", "workspace_availability acme"]
    );
    assert!(r.api.writes().is_empty());
    assert_eq!(
        r.kube.condition("Stalled"),
        ("True".into(), "NameUnavailable".into())
    );
    let status = r.kube.status();
    assert_eq!(
        (&status["id"], &status["adopted"]),
        (&Value::Null, &Value::Null)
    );
}

/// A create answered 409 (another writer made the name meanwhile) is neither taken for this object's
/// create nor for an adoption yet: no Created Event, no `adopted`, and the next pass reads it again
/// and adopts it.
#[tokio::test]
async fn a_conflicting_create_is_read_again_not_claimed() {
    let mut r = run("Additive");
    r.api
        .meanwhile("create_workspace", |api| api.put_workspace(remote("Acme")));
    let action = pass(&r).await.unwrap();
    assert_eq!(action, Action::requeue(r.ctx.settings.transition_poll));
    assert_eq!(r.api.writes(), ["create_workspace acme"]);
    assert!(r.kube.events().is_empty(), "{:?}", r.kube.events());
    let status = r.kube.status();
    assert_eq!(status["adopted"], Value::Null);
    assert_eq!(
        r.kube.condition("Reconciling"),
        ("True".into(), "Creating".into())
    );

    r.obj = cached(&object("Additive", &json!({}), Some(status)));
    pass(&r).await.unwrap();
    assert_eq!(
        r.api.writes(),
        ["create_workspace acme"],
        "{:?}",
        r.api.calls()
    );
    assert_eq!(r.kube.status()["adopted"], true);
}

/// An existing workspace is adopted; the one update sent is the record as just read (a hand-set label,
/// region and unknown field kept) with the declared display name. A pass on that result writes nothing.
#[tokio::test]
async fn an_existing_workspace_is_adopted_and_updated_on_what_was_read() {
    let mut r = run("Additive");
    r.api.put_workspace(remote("Old name"));
    pass(&r).await.unwrap();
    assert_eq!(
        r.api.calls(),
        ["get_workspace acme", "update_workspace acme", "list_users"]
    );
    let now = r.api.workspace("acme").unwrap();
    assert_eq!(now.display_name.as_deref(), Some("Acme"));
    assert_eq!(now.labels.unwrap()["by"], "hand");
    assert_eq!(now.region.as_deref(), Some("eu-lon-1"));
    assert_eq!(now.extra.get("runtime"), Some(json!({"generation": "mk3"})));
    assert_eq!(r.kube.events(), ["Normal:Updated"]);
    let status = r.kube.status();
    assert_eq!(status["adopted"], true);
    assert_eq!(status["id"], "id-acme");
    assert_eq!(r.kube.condition("Ready"), ("True".into(), "Ready".into()));

    r.obj = cached(&object("Additive", &json!({}), Some(status)));
    pass(&r).await.unwrap();
    assert_eq!(
        r.api.writes(),
        ["update_workspace acme"],
        "no second update"
    );
}

/// Additive counts and lists the undeclared members, removes nobody and announces nothing.
#[tokio::test]
async fn additive_removes_nobody() {
    let mut r = run("Additive");
    populated(&r);
    declare_alice(&mut r.ctx, true);
    pass(&r).await.unwrap();
    assert_eq!(r.api.calls(), ["get_workspace acme", "list_users"]);
    let status = r.kube.status();
    assert_eq!(
        status["members"],
        json!({"declared": 1, "present": 3, "unmanaged": 1})
    );
    assert_eq!(status["unmanaged"], json!([MALLORY]));
    assert!(r.kube.events().is_empty());
    assert_eq!(r.kube.condition("Ready").0, "True");
}

/// Report lists the undeclared members and announces them with a Warning Event, removing nobody; the
/// same set is not announced again on the next pass.
#[tokio::test]
async fn report_lists_and_announces_without_removing() {
    let mut r = run("Report");
    populated(&r);
    declare_alice(&mut r.ctx, true);
    pass(&r).await.unwrap();
    assert!(r.api.writes().is_empty(), "{:?}", r.api.calls());
    assert_eq!(r.kube.events(), ["Warning:UnmanagedMembers"]);
    let status = r.kube.status();
    assert_eq!(status["unmanaged"], json!([MALLORY]));
    assert_eq!(r.kube.condition("Ready").0, "True");

    r.obj = cached(&object("Report", &json!({}), Some(status)));
    pass(&r).await.unwrap();
    assert!(r.api.writes().is_empty());
    assert_eq!(r.kube.events(), ["Warning:UnmanagedMembers"], "not again");
}

/// Authoritative removes the one member nothing declares or protects, with a Normal Event, and
/// reports what remains.
#[tokio::test]
async fn authoritative_removes_an_undeclared_member() {
    let mut r = run("Authoritative");
    populated(&r);
    declare_alice(&mut r.ctx, true);
    pass(&r).await.unwrap();
    assert_eq!(
        r.api.calls(),
        [
            "get_workspace acme",
            "list_users",
            "remove_user mallory@example.com"
        ]
    );
    assert_eq!(
        r.kube.events(),
        ["Warning:UnmanagedMembers", "Normal:RemovedUnmanaged"]
    );
    let status = r.kube.status();
    assert_eq!(
        status["members"],
        json!({"declared": 1, "present": 2, "unmanaged": 0})
    );
    assert_eq!(status["unmanaged"], Value::Null);
    assert_eq!(r.kube.condition("Ready").0, "True");
}

/// While the WorkspaceMember view is incomplete (Alice's object may be missing from it), Authoritative
/// removes nobody, counts nothing, and looks again soon.
#[tokio::test]
async fn no_removal_while_the_member_view_is_incomplete() {
    let mut r = run("Authoritative");
    populated(&r);
    declare_alice(&mut r.ctx, false);
    let action = pass(&r).await.unwrap();
    assert_eq!(r.api.calls(), ["get_workspace acme", "list_users"]);
    assert_eq!(action, Action::requeue(r.ctx.settings.transition_poll));
    assert_eq!(
        r.kube.condition("Reconciling"),
        ("True".into(), "MemberViewIncomplete".into())
    );
    assert_eq!(r.kube.condition("Ready").0, "False");
    assert_eq!(r.kube.status()["members"], Value::Null);
}

/// A member list with a record that could not be read is an incomplete view: Authoritative removes
/// nobody, even with a complete WorkspaceMember view.
#[tokio::test]
async fn no_removal_on_a_list_with_unreadable_records() {
    let mut r = run("Authoritative");
    populated(&r);
    declare_alice(&mut r.ctx, true);
    r.api.unreadable_users.lock().unwrap().push(Unreadable {
        identity: None,
        error: "invalid type".into(),
    });
    pass(&r).await.unwrap();
    assert!(r.api.writes().is_empty(), "{:?}", r.api.calls());
    assert_eq!(
        r.kube.condition("Reconciling"),
        ("True".into(), "RemoteListIncomplete".into())
    );
    assert!(r.kube.events().is_empty());
}

/// Removals go through the mass-removal guard one by one: with a limit of one, the second is held,
/// with a Warning Event and Stalled RemovalLimitReached.
#[tokio::test]
async fn the_removal_guard_holds_removals_past_its_limit() {
    let mut r: Run = Harness::new(&object("Authoritative", &json!({}), None), 1);
    populated(&r);
    r.api.put_user(user("trent@example.com"));
    declare_alice(&mut r.ctx, true);
    pass(&r).await.unwrap();
    assert_eq!(r.api.writes(), ["remove_user mallory@example.com"]);
    assert_eq!(
        r.kube.events(),
        [
            "Warning:UnmanagedMembers",
            "Normal:RemovedUnmanaged",
            "Warning:RemovalLimitReached"
        ]
    );
    assert!(
        r.api
            .users
            .lock()
            .unwrap()
            .contains_key("trent@example.com")
    );
    assert_eq!(
        r.kube.condition("Stalled"),
        ("True".into(), "RemovalLimitReached".into())
    );
    assert_eq!(
        r.kube.status()["unmanaged"],
        json!(["trent@example.com"]),
        "the member removed before the hold is no longer listed"
    );
}

/// A paused workspace makes no remote write: neither the update it needs nor an Authoritative removal.
#[tokio::test]
async fn a_paused_workspace_writes_nothing() {
    let mut obj = object("Authoritative", &json!({}), None);
    obj["metadata"]["annotations"] = json!({"blaxel.ai/paused": "true"});
    let mut r: Run = Harness::new(&obj, 10);
    populated(&r);
    r.api.put_workspace(remote("Old name"));
    declare_alice(&mut r.ctx, true);
    pass(&r).await.unwrap();
    assert_eq!(r.api.calls(), ["get_workspace acme", "list_users"]);
    assert_eq!(
        r.kube.condition("Synced"),
        ("False".into(), "Paused".into())
    );
}

/// A failed update fails the pass for a retry with backoff: Reconciling Retrying, Synced False, and
/// the record as read still reported.
#[tokio::test]
async fn a_failed_update_fails_the_pass() {
    let r = run("Additive");
    r.api.put_workspace(remote("Old name"));
    r.api.fail_next("update_workspace", unavailable());
    let err = pass(&r).await.unwrap_err();
    assert!(
        matches!(err, Error::Remote(ApiError::Unavailable { .. })),
        "{err}"
    );
    assert_eq!(
        r.api.calls(),
        ["get_workspace acme", "update_workspace acme"]
    );
    assert_eq!(
        r.kube.condition("Reconciling"),
        ("True".into(), "Retrying".into())
    );
    assert_eq!(
        r.kube.condition("Synced"),
        ("False".into(), "Unavailable".into())
    );
    assert_eq!(r.kube.status()["phase"], "ready");
    assert_eq!(
        r.api.workspace("acme").unwrap().display_name.as_deref(),
        Some("Old name")
    );
}

fn deleted(policy: &str, id: Option<&str>) -> Value {
    let status = json!({"observedGeneration": 1, "phase": "ready", "id": id});
    deleting(object(
        "Additive",
        &json!({"deletionPolicy": policy}),
        Some(status),
    ))
}

/// Deletion deletes only a workspace this object took over (an id in its status, no other object
/// naming it), with a Normal Event; otherwise it is left with a Warning Event. Orphan makes no call.
#[tokio::test]
async fn only_a_workspace_taken_over_is_deleted() {
    let r: Run = Harness::new(&deleted("Delete", Some("id-acme")), 10);
    r.api.put_workspace(remote("Acme"));
    assert_eq!(
        cleanup(&r.obj, &r.ctx).await.unwrap(),
        Action::await_change()
    );
    assert_eq!(r.api.calls(), ["delete_workspace acme"]);
    assert_eq!(r.kube.events(), ["Normal:Deleted"]);

    let never: Run = Harness::new(&deleted("Delete", None), 10);
    never.api.put_workspace(remote("Acme"));
    cleanup(&never.obj, &never.ctx).await.unwrap();
    assert!(never.api.calls().is_empty());
    assert_eq!(never.kube.events(), ["Warning:NotDeleted"]);

    let mut shared: Run = Harness::new(&deleted("Delete", Some("id-acme")), 10);
    let mut other = object("Additive", &json!({"workspaceName": "acme"}), None);
    other["metadata"]["name"] = json!("acme-too");
    other["metadata"]["uid"] = json!("uid-acme-too");
    register::<Workspace>(&mut shared.ctx, &[other]);
    cleanup(&shared.obj, &shared.ctx).await.unwrap();
    assert!(shared.api.calls().is_empty());
    assert_eq!(shared.kube.events(), ["Warning:NotDeleted"]);

    let orphan: Run = Harness::new(&deleted("Orphan", Some("id-acme")), 10);
    orphan.api.put_workspace(remote("Acme"));
    cleanup(&orphan.obj, &orphan.ctx).await.unwrap();
    assert!(orphan.api.calls().is_empty());
    assert!(orphan.api.workspace("acme").is_some());
}

/// A workspace a WorkspaceMember still acts in is not deleted (the finalizer stays, Stalled
/// WorkspaceInUse with a Warning Event); while the member view is incomplete, it waits without a call.
#[tokio::test]
async fn a_workspace_in_use_is_not_deleted() {
    let mut r: Run = Harness::new(&deleted("Delete", Some("id-acme")), 10);
    r.api.put_workspace(remote("Acme"));
    declare_alice(&mut r.ctx, true);
    let err = cleanup(&r.obj, &r.ctx).await.unwrap_err();
    assert!(matches!(err, Error::Waiting(..)), "{err}");
    assert_eq!(r.api.calls(), ["list_users"], "the member's key proved");
    assert_eq!(r.kube.events(), ["Warning:WorkspaceInUse"]);
    assert_eq!(
        r.kube.condition("Stalled"),
        ("True".into(), "WorkspaceInUse".into())
    );

    let mut blind: Run = Harness::new(&deleted("Delete", Some("id-acme")), 10);
    blind.api.put_workspace(remote("Acme"));
    declare_alice(&mut blind.ctx, false);
    let err = cleanup(&blind.obj, &blind.ctx).await.unwrap_err();
    assert!(matches!(err, Error::Waiting(..)), "{err}");
    assert!(blind.api.calls().is_empty());
    assert_eq!(
        blind.kube.condition("Reconciling"),
        ("True".into(), "MemberViewIncomplete".into())
    );
    assert!(blind.api.workspace("acme").is_some());
}
