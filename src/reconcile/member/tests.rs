//! The member driver's branches against a fake Blaxel and a fake Kubernetes API
//! ([`crate::reconcile::testing`]): which remote calls each pass makes, in which order, and what it
//! reports.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use serde_json::{Value, json};

use super::{apply, cleanup};
use crate::blaxel::ApiError;
use crate::blaxel::model::WorkspaceUser;
use crate::crd::WorkspaceMember;
use crate::reconcile::Error;
use crate::reconcile::cached::Cached;
use crate::reconcile::testing::{self, Harness, cached, deleting, scope};

const ALICE: &str = "alice@example.com";

type Run = Harness<WorkspaceMember>;

/// Alice's member object, `spec` over her defaults (workspace acme, role admin).
fn object(spec: &Value, status: Option<Value>, generation: i64) -> Value {
    let mut whole = json!({"workspace": "acme", "email": ALICE, "role": "admin"});
    for (k, v) in spec.as_object().unwrap() {
        whole[k] = v.clone();
    }
    testing::object("WorkspaceMember", "alice", &whole, status, generation)
}

fn run(obj: &Value) -> Run {
    Harness::new(obj, 10)
}

async fn pass(r: &Run) -> Result<kube::runtime::controller::Action, Error> {
    apply(&r.obj, &r.ctx, &scope()).await
}

fn user(role: &str, accepted: bool) -> WorkspaceUser {
    WorkspaceUser {
        sub: Some("sub-alice".into()),
        email: ALICE.into(),
        role: Some(role.into()),
        accepted: Some(accepted),
        ..WorkspaceUser::default()
    }
}

/// A new member: one list, one invitation, then its role on the invitation, each with a Normal Event;
/// reported Invited, not adopted.
#[tokio::test]
async fn a_new_member_is_invited_then_given_its_role() {
    let r = run(&object(&json!({}), None, 1));
    pass(&r).await.unwrap();
    assert_eq!(
        r.api.calls(),
        [
            "list_users",
            "invite_user alice@example.com",
            "set_user_role alice@example.com admin"
        ]
    );
    assert_eq!(r.kube.events(), ["Normal:Invited", "Normal:RoleSet"]);
    let status = r.kube.status();
    assert_eq!(status["phase"], "Invited");
    assert_eq!(status["adopted"], false);
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(
        r.kube.condition("Reconciling"),
        ("True".into(), "InvitationPending".into())
    );
}

/// A member found in Blaxel before this object ever reported is adopted: no invitation, only the role.
#[tokio::test]
async fn an_existing_member_is_adopted_without_an_invitation() {
    let r = run(&object(&json!({}), None, 1));
    r.api.put_user(user("member", true));
    pass(&r).await.unwrap();
    assert_eq!(r.api.writes(), ["set_user_role alice@example.com admin"]);
    let status = r.kube.status();
    assert_eq!(status["phase"], "Active");
    assert_eq!(status["adopted"], true);
    assert_eq!(status["sub"], "sub-alice");
    assert_eq!(r.kube.condition("Ready"), ("True".into(), "Active".into()));
}

/// A settled member whose status already says so makes no write at all, remote or Kubernetes.
#[tokio::test]
async fn a_settled_member_writes_nothing() {
    let first = run(&object(&json!({}), None, 1));
    first.api.put_user(user("admin", true));
    pass(&first).await.unwrap();
    let settled = first.kube.status();
    let again = run(&object(&json!({}), Some(settled), 1));
    again.api.put_user(user("admin", true));
    pass(&again).await.unwrap();
    assert!(again.api.writes().is_empty(), "{:?}", again.api.calls());
    assert!(again.kube.statuses().is_empty(), "the same status again");
    assert!(again.kube.events().is_empty());
}

/// An invitation answered 409 (another writer, or an earlier answer lost) is looked at again with a
/// fresh list, not sent twice.
#[tokio::test]
async fn a_conflicting_invitation_is_read_again_not_resent() {
    let r = run(&object(&json!({}), None, 1));
    r.api.meanwhile("invite_user", |api| {
        api.put_user(WorkspaceUser {
            role: None,
            ..user("admin", false)
        });
    });
    r.api.fail_next(
        "invite_user",
        ApiError::Conflict {
            message: "exists".into(),
        },
    );
    pass(&r).await.unwrap();
    assert_eq!(
        r.api.calls(),
        [
            "list_users",
            "invite_user alice@example.com",
            "list_users",
            "set_user_role alice@example.com admin"
        ]
    );
    assert_eq!(r.kube.status()["phase"], "Invited");
    assert_eq!(r.kube.events(), ["Normal:RoleSet"], "no Invited Event");
}

/// A failed invitation (its answer may be lost) fails the pass for a retry with backoff, reports
/// Failing, and makes the next pass list again however fresh the list was.
#[tokio::test]
async fn a_failed_invitation_is_retried_on_a_fresh_list() {
    let r = run(&object(&json!({}), None, 1));
    r.api.fail_next(
        "invite_user",
        ApiError::Unavailable {
            message: "503".into(),
            retry_after: None,
        },
    );
    let err = pass(&r).await.unwrap_err();
    assert!(
        matches!(err, Error::Remote(ApiError::Unavailable { .. })),
        "{err}"
    );
    assert_eq!(r.kube.condition("Stalled").0, "False");
    assert_eq!(
        r.kube.condition("Reconciling"),
        ("True".into(), "Retrying".into())
    );
    assert_eq!(
        r.kube.condition("Synced"),
        ("False".into(), "Unavailable".into())
    );
    assert!(
        r.kube.events().is_empty(),
        "transient failures are published by the frame"
    );
    pass(&r).await.unwrap();
    assert_eq!(r.api.count("list_users"), 2, "{:?}", r.api.calls());
    assert_eq!(r.api.count("invite_user"), 2);
}

/// A key Blaxel refuses stalls the object (a person must fix it), with a Warning Event, and is looked
/// at again at the resync; nothing is written.
#[tokio::test]
async fn an_unauthorized_key_stalls() {
    let r = run(&object(&json!({}), None, 1));
    r.api.fail_next(
        "list_users",
        ApiError::Unauthorized {
            message: "bad key".into(),
        },
    );
    let action = pass(&r).await.unwrap();
    assert_ne!(action, kube::runtime::controller::Action::await_change());
    assert!(r.api.writes().is_empty());
    assert_eq!(
        r.kube.condition("Stalled"),
        ("True".into(), "Unauthorized".into())
    );
    assert_eq!(r.kube.events(), ["Warning:Unauthorized"]);
}

/// A role change's answer without the invitation flags keeps what was known: a pending invitation
/// stays Invited, not taken for an accepted member.
#[tokio::test]
async fn a_role_change_keeps_the_known_acceptance() {
    let r = run(&object(&json!({}), None, 1));
    r.api.put_user(WorkspaceUser {
        sub: None,
        ..user("member", false)
    });
    r.api.meanwhile("set_user_role", |api| {
        // Blaxel's answer to the PUT (this fake answers the stored user) without the flags.
        api.users.lock().unwrap().get_mut(ALICE).unwrap().accepted = None;
    });
    pass(&r).await.unwrap();
    assert_eq!(r.api.writes(), ["set_user_role alice@example.com admin"]);
    assert_eq!(r.kube.status()["phase"], "Invited");
}

/// An invitation given up on (Expired at the re-invitation budget) is sent again once a person edits
/// the object, with the count started again; without an edit, nothing is sent.
#[tokio::test]
async fn an_edit_restarts_the_reinvitation_budget() {
    let gave_up = json!({"phase": "Expired", "reinvites": 3, "observedGeneration": 1});
    let expired = WorkspaceUser {
        expired: true,
        sub: None,
        ..user("admin", false)
    };
    let unedited = run(&object(&json!({}), Some(gave_up.clone()), 1));
    unedited.api.put_user(expired.clone());
    pass(&unedited).await.unwrap();
    assert!(
        unedited.api.writes().is_empty(),
        "{:?}",
        unedited.api.calls()
    );
    assert_eq!(unedited.kube.status()["phase"], "Expired");

    let edited = run(&object(&json!({}), Some(gave_up), 2));
    edited.api.put_user(expired);
    pass(&edited).await.unwrap();
    assert_eq!(
        edited.api.writes(),
        [
            "invite_user alice@example.com",
            "set_user_role alice@example.com admin"
        ]
    );
    let status = edited.kube.status();
    assert_eq!(status["reinvites"], 1, "{status}");
    assert_eq!(status["phase"], "Invited");
}

/// A paused member makes no remote write and says Paused.
#[tokio::test]
async fn a_paused_member_writes_nothing() {
    let mut obj = object(&json!({}), None, 1);
    obj["metadata"]["annotations"] = json!({"blaxel.ai/paused": "true"});
    let r = run(&obj);
    pass(&r).await.unwrap();
    assert_eq!(r.api.calls(), ["list_users"]);
    assert_eq!(r.kube.condition("Ready"), ("False".into(), "Paused".into()));
}

fn deleted(policy: &str) -> Value {
    deleting(object(
        &json!({"deletionPolicy": policy}),
        Some(json!({"phase": "Active", "observedGeneration": 1})),
        1,
    ))
}

/// Deletion with `Delete` removes the member, with a Normal Event; a member already gone counts as
/// removed. `Orphan` makes no remote call at all.
#[tokio::test]
async fn deletion_removes_per_policy() {
    let r = run(&deleted("Delete"));
    r.api.put_user(user("admin", true));
    cleanup(&r.obj, &r.ctx).await.unwrap();
    assert_eq!(r.api.writes(), ["remove_user alice@example.com"]);
    assert_eq!(r.kube.events(), ["Normal:Removed"]);

    let gone = run(&deleted("Delete"));
    cleanup(&gone.obj, &gone.ctx).await.unwrap();
    assert_eq!(gone.api.writes(), ["remove_user alice@example.com"]);

    let orphan = run(&deleted("Orphan"));
    orphan.api.put_user(user("admin", true));
    cleanup(&orphan.obj, &orphan.ctx).await.unwrap();
    assert!(orphan.api.calls().is_empty());
}

/// A second removal within the window of a removal limit of one is held: the finalizer stays, no
/// remote call is made, Stalled with a Warning Event.
#[tokio::test]
async fn a_removal_over_the_limit_is_held() {
    let Run {
        api,
        kube,
        ctx,
        obj: alice,
    } = Harness::new(&deleted("Delete"), 1);
    let mut bob = deleted("Delete");
    bob["metadata"]["name"] = json!("bob");
    bob["metadata"]["uid"] = json!("uid-bob");
    bob["spec"]["email"] = json!("bob@example.com");
    let bob: Cached<WorkspaceMember> = cached(&bob);
    api.put_user(user("admin", true));
    api.put_user(WorkspaceUser {
        email: "bob@example.com".into(),
        ..user("admin", true)
    });
    cleanup(&bob, &ctx).await.unwrap();
    let err = cleanup(&alice, &ctx).await.unwrap_err();
    assert!(matches!(err, Error::Waiting(..)), "{err}");
    assert_eq!(api.writes(), ["remove_user bob@example.com"]);
    assert_eq!(
        kube.events(),
        ["Normal:Removed", "Warning:RemovalLimitReached"]
    );
    assert_eq!(kube.status()["phase"], "Deleting");
    assert_eq!(
        kube.condition("Stalled"),
        ("True".into(), "RemovalLimitReached".into())
    );
}

/// A removal that fails transiently fails the pass (the finalizer stays) and says so.
#[tokio::test]
async fn a_failed_removal_keeps_the_finalizer() {
    let r = run(&deleted("Delete"));
    r.api.put_user(user("admin", true));
    r.api.fail_next(
        "remove_user",
        ApiError::Unavailable {
            message: "503".into(),
            retry_after: None,
        },
    );
    let err = cleanup(&r.obj, &r.ctx).await.unwrap_err();
    assert!(matches!(err, Error::Remote(_)), "{err}");
    assert!(r.api.users.lock().unwrap().contains_key(ALICE));
    assert_eq!(r.kube.status()["phase"], "Deleting");
}

/// Two objects make the same claim exactly when they name one workspace and one address in any case;
/// equal claims hash equal; the identity in messages is the address.
#[test]
fn a_claim_is_a_workspace_and_an_address() {
    use crate::reconcile::managed::Managed;
    let of = |workspace: &str, email: &str| -> Cached<WorkspaceMember> {
        cached(&object(
            &json!({"workspace": workspace, "email": email}),
            None,
            1,
        ))
    };
    let alice = of("acme", ALICE);
    let shouting = of("acme", "ALICE@Example.com");
    assert!(alice.same_claim(&shouting));
    assert_eq!(alice.claim_hash(), shouting.claim_hash());
    for other in [of("other", ALICE), of("acme", "bob@example.com")] {
        assert!(!alice.same_claim(&other));
        assert_ne!(alice.claim_hash(), other.claim_hash());
    }
    assert_eq!(alice.identity(), ALICE);
}

/// A member stored with an address in another form is stopped at admission, before any call.
#[tokio::test]
async fn a_non_canonical_address_is_stopped_at_admission() {
    let r = run(&object(&json!({"email": "Alice@Example.com"}), None, 1));
    let admission = crate::reconcile::managed::admit(&r.obj, &r.ctx)
        .await
        .unwrap();
    assert!(matches!(
        admission,
        crate::reconcile::managed::Admission::Stop(crate::reconcile::conditions::Health::Stalled(ref why), _)
            if why.reason == "EmailNotCanonical"
    ));
    assert!(r.api.calls().is_empty());
}

/// An object admission stopped reports phase Failed with the verdict, keeping what it recorded.
#[tokio::test]
async fn a_stopped_member_reports_failed() {
    use crate::reconcile::conditions::{Health, Why};
    use crate::reconcile::frame::Driver;
    let r = run(&object(&json!({}), Some(json!({"reinvites": 2})), 1));
    let stop = Health::Stalled(Why::new("DuplicateMember", "held by another"));
    <Cached<WorkspaceMember> as Driver>::stopped(&r.obj, &r.ctx, stop)
        .await
        .unwrap();
    assert_eq!(r.kube.status()["phase"], "Failed");
    assert_eq!(r.kube.status()["reinvites"], 2);
    assert_eq!(
        r.kube.condition("Stalled"),
        ("True".into(), "DuplicateMember".into())
    );
}

/// An invitation this object saw pending that is gone now went away unaccepted: it is sent again
/// and counted, not taken for a first invitation.
#[tokio::test]
async fn a_vanished_invitation_is_resent_and_counted() {
    let seen = json!({"phase": "Invited", "reinvites": 0, "observedGeneration": 1});
    let r = run(&object(&json!({}), Some(seen), 1));
    pass(&r).await.unwrap();
    assert_eq!(r.api.writes()[0], "invite_user alice@example.com");
    assert_eq!(r.kube.status()["reinvites"], 1);
}

/// `blaxel.ai/reconcile-requested-at` makes the pass read the list fresh, however recent the list.
#[tokio::test]
async fn a_requested_reconcile_reads_fresh() {
    let settled = json!({"phase": "Active", "observedGeneration": 1});
    let mut r = run(&object(&json!({}), Some(settled.clone()), 1));
    r.api.put_user(user("admin", true));
    pass(&r).await.unwrap();
    pass(&r).await.unwrap();
    assert_eq!(r.api.count("list_users"), 1, "a recent list is reused");
    let mut nudged = object(&json!({}), Some(settled), 1);
    nudged["metadata"]["annotations"] = json!({"blaxel.ai/reconcile-requested-at": "now"});
    r.obj = cached(&nudged);
    pass(&r).await.unwrap();
    assert_eq!(r.api.count("list_users"), 2);
}
