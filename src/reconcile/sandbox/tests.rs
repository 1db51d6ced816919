//! The sandbox driver's branches against a fake Blaxel and a fake Kubernetes API
//! ([`crate::reconcile::testing`]): which remote calls each pass makes, in which order, on what it
//! read, and what it reports.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeMap;

use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::plan::{MANAGED_BY_LABEL, OWNER_LABEL};
use super::{apply, cleanup};
use crate::blaxel::ApiError;
use crate::blaxel::model::{Runtime, Sandbox as RemoteSandbox, SandboxMetadata, SandboxSpec};
use crate::crd::Sandbox;
use crate::reconcile::Error;
use crate::reconcile::testing::{self, Harness, deleting, scope};

type Run = Harness<Sandbox>;

/// The `box` Sandbox object, `spec` over its defaults (workspace acme, image `base:2`).
fn object(spec: &Value, status: Option<Value>) -> Value {
    let mut whole = json!({"workspace": "acme", "image": "base:2"});
    for (k, v) in spec.as_object().unwrap() {
        whole[k] = v.clone();
    }
    testing::object("Sandbox", "box", &whole, status, 1)
}

fn run(spec: &Value) -> Run {
    Harness::new(&object(spec, None), 10)
}

async fn pass(r: &Run) -> Result<Action, Error> {
    apply(&r.obj, &r.ctx, &scope()).await
}

/// A remote sandbox `box` with `image`, status `status` and `owner` as its owner label (`None`: no
/// ownership labels).
fn remote(image: &str, status: &str, owner: Option<&str>) -> RemoteSandbox {
    let mut labels = BTreeMap::new();
    if let Some(owner) = owner {
        labels.insert(OWNER_LABEL.to_owned(), owner.to_owned());
        labels.insert(MANAGED_BY_LABEL.to_owned(), "blaxel-operator".to_owned());
    }
    RemoteSandbox {
        metadata: SandboxMetadata {
            name: "box".into(),
            labels,
            ..SandboxMetadata::default()
        },
        spec: SandboxSpec {
            runtime: Some(Runtime {
                image: Some(image.into()),
                ..Runtime::default()
            }),
            ..SandboxSpec::default()
        },
        status: Some(status.into()),
        ..RemoteSandbox::default()
    }
}

const OURS: Option<&str> = Some("team-a.box");

fn unavailable() -> ApiError {
    ApiError::Unavailable {
        message: "503".into(),
        retry_after: None,
    }
}

/// A new sandbox: one list, one create carrying this object's ownership, a Normal Event; reported as
/// Blaxel answered, not adopted.
#[tokio::test]
async fn a_new_sandbox_is_created_with_this_objects_ownership() {
    let r = run(&json!({}));
    pass(&r).await.unwrap();
    assert_eq!(r.api.calls(), ["list_sandboxes", "create_sandbox box"]);
    let made = r.api.sandbox("box").unwrap();
    assert_eq!(made.metadata.labels[OWNER_LABEL], "team-a.box");
    assert_eq!(r.kube.events(), ["Normal:Created"]);
    let status = r.kube.status();
    assert_eq!(status["phase"], "DEPLOYED");
    assert_eq!(status["adopted"], false);
    assert_eq!(r.kube.condition("Ready"), ("True".into(), "Running".into()));
}

/// An update is planned on the sandbox read just before it, not on the (older) shared list: a label
/// set by hand in between is kept, and the new image is sent.
#[tokio::test]
async fn an_update_is_planned_on_a_fresh_read() {
    let r = run(&json!({}));
    r.api.put_sandbox(remote("base:1", "DEPLOYED", OURS));
    r.api.meanwhile("get_sandbox", |api| {
        let mut edited = api.sandbox("box").unwrap();
        edited
            .metadata
            .labels
            .insert("team".into(), "by-hand".into());
        api.put_sandbox(edited);
    });
    pass(&r).await.unwrap();
    assert_eq!(
        r.api.calls(),
        ["list_sandboxes", "get_sandbox box", "update_sandbox box"]
    );
    let now = r.api.sandbox("box").unwrap();
    assert_eq!(now.metadata.labels["team"], "by-hand");
    assert_eq!(now.spec.runtime.unwrap().image.as_deref(), Some("base:2"));
    assert_eq!(r.kube.events(), ["Normal:Updated"]);
}

/// An unowned sandbox of the name is taken over by an update carrying the ownership, and reported
/// adopted only once that write succeeded.
#[tokio::test]
async fn adoption_is_recorded_only_after_its_write() {
    let refused = run(&json!({}));
    refused.api.put_sandbox(remote("base:1", "DEPLOYED", None));
    refused.api.fail_next("update_sandbox", unavailable());
    pass(&refused).await.unwrap_err();
    assert_eq!(refused.kube.status()["adopted"], false);
    assert!(
        !refused
            .api
            .sandbox("box")
            .unwrap()
            .metadata
            .labels
            .contains_key(OWNER_LABEL)
    );

    let taken = run(&json!({}));
    taken.api.put_sandbox(remote("base:1", "DEPLOYED", None));
    pass(&taken).await.unwrap();
    assert_eq!(taken.api.writes(), ["update_sandbox box"]);
    assert_eq!(taken.kube.status()["adopted"], true);
}

/// A sandbox of the name owned by another object is never written: Stalled `OwnedByAnother`.
#[tokio::test]
async fn anothers_sandbox_is_left_alone() {
    let r = run(&json!({}));
    r.api
        .put_sandbox(remote("base:1", "DEPLOYED", Some("team-b.box")));
    pass(&r).await.unwrap();
    assert!(r.api.writes().is_empty(), "{:?}", r.api.calls());
    assert_eq!(
        r.kube.condition("Stalled"),
        ("True".into(), "OwnedByAnother".into())
    );
}

/// A create that meets the name taken by our own sandbox (an earlier answer was lost) finds it and
/// writes nothing more; one that meets a sandbox still being deleted waits for it to go.
#[tokio::test]
async fn a_create_meeting_the_name_taken_looks_before_acting() {
    let lost = run(&json!({}));
    lost.api.meanwhile("create_sandbox", |api| {
        api.put_sandbox(remote("base:2", "DEPLOYED", OURS));
    });
    pass(&lost).await.unwrap();
    assert_eq!(
        lost.api.calls(),
        ["list_sandboxes", "create_sandbox box", "get_sandbox box"]
    );
    assert!(lost.kube.events().is_empty(), "nothing was created");
    assert_eq!(lost.kube.status()["phase"], "DEPLOYED");

    let leaving = run(&json!({}));
    leaving.api.meanwhile("create_sandbox", |api| {
        api.put_sandbox(remote("base:1", "DELETING", OURS));
    });
    pass(&leaving).await.unwrap();
    assert_eq!(leaving.api.writes(), ["create_sandbox box"]);
    assert_eq!(
        leaving.kube.condition("Reconciling"),
        ("True".into(), "WaitingForOldSandbox".into())
    );
}

/// A failed create (its answer may be lost) fails the pass, and the next pass lists again however
/// fresh the list was.
#[tokio::test]
async fn a_failed_create_is_retried_on_a_fresh_list() {
    let r = run(&json!({}));
    r.api.fail_next("create_sandbox", unavailable());
    let err = pass(&r).await.unwrap_err();
    assert!(matches!(err, Error::Remote(_)), "{err}");
    pass(&r).await.unwrap();
    assert_eq!(r.api.count("list_sandboxes"), 2, "{:?}", r.api.calls());
    assert_eq!(r.api.count("create_sandbox"), 2);
}

/// A power change is read back: the stop, then the sandbox as it now is, reported Stopped.
#[tokio::test]
async fn a_power_change_is_read_back() {
    let r = run(&json!({"state": "Stopped"}));
    r.api.put_sandbox(remote("base:2", "DEPLOYED", OURS));
    pass(&r).await.unwrap();
    assert_eq!(
        r.api.calls(),
        [
            "list_sandboxes",
            "get_sandbox box",
            "set_sandbox_power box false",
            "get_sandbox box"
        ]
    );
    assert_eq!(r.kube.events(), ["Normal:Stopped"]);
    assert_eq!(r.kube.status()["state"], "Stopped");
}

/// On today's API (no start/stop routes) the power change writes nothing itself: it finds power to be
/// `spec.enabled`, and the pass sets it with an update it builds (never a read-modify-write of what
/// Blaxel showed), reported Stopped.
#[tokio::test]
async fn on_todays_api_power_is_set_by_an_update() {
    let r = run(&json!({"state": "Stopped"}));
    r.api
        .todays_api
        .store(true, std::sync::atomic::Ordering::SeqCst);
    r.api.put_sandbox(remote("base:2", "DEPLOYED", OURS));
    pass(&r).await.unwrap();
    assert_eq!(
        r.api.calls(),
        [
            "list_sandboxes",
            "get_sandbox box",
            "set_sandbox_power box false",
            "update_sandbox box"
        ]
    );
    assert_eq!(r.api.sandbox("box").unwrap().spec.enabled, Some(false));
    assert_eq!(r.kube.status()["powerControl"], "Enabled");
}

/// `remote` with a variable `TOKEN` marked secret, its value masked as Blaxel shows it.
fn with_masked_secret(mut remote: RemoteSandbox) -> RemoteSandbox {
    remote
        .spec
        .runtime
        .as_mut()
        .unwrap()
        .envs
        .push(crate::blaxel::model::EnvVar {
            name: "TOKEN".into(),
            value: Some("***".into()),
            secret: Some(true),
        });
    remote
}

/// A sandbox with a secret variable the spec does not declare is never updated (the update would
/// send the mask back as its value): Stalled `SecretVariablesUnknown`, no write.
#[tokio::test]
async fn undeclared_secret_variables_block_an_update() {
    let r = run(&json!({}));
    r.api
        .put_sandbox(with_masked_secret(remote("base:1", "DEPLOYED", OURS)));
    pass(&r).await.unwrap();
    assert!(r.api.writes().is_empty(), "{:?}", r.api.calls());
    assert_eq!(
        r.kube.condition("Stalled"),
        ("True".into(), "SecretVariablesUnknown".into())
    );
}

/// A paused Sandbox makes no remote write.
#[tokio::test]
async fn a_paused_sandbox_writes_nothing() {
    let mut obj = object(&json!({"image": "base:3"}), None);
    obj["metadata"]["annotations"] = json!({"blaxel.ai/paused": "true"});
    let r: Run = Harness::new(&obj, 10);
    r.api.put_sandbox(remote("base:2", "DEPLOYED", OURS));
    pass(&r).await.unwrap();
    assert_eq!(r.api.calls(), ["list_sandboxes"]);
    assert_eq!(r.kube.condition("Ready"), ("False".into(), "Paused".into()));
}

fn deleted(policy: &str) -> Run {
    let status = json!({"phase": "DEPLOYED", "observedGeneration": 1});
    let obj = deleting(object(&json!({"deletionPolicy": policy}), Some(status)));
    Harness::new(&obj, 10)
}

/// `Delete` deletes our sandbox after reading it fresh, and keeps the finalizer while it is on its
/// way out; once it is gone, cleanup ends.
#[tokio::test]
async fn deletion_waits_for_the_sandbox_to_go() {
    let r = deleted("Delete");
    r.api.put_sandbox(remote("base:2", "DEPLOYED", OURS));
    let err = cleanup(&r.obj, &r.ctx).await.unwrap_err();
    assert!(matches!(err, Error::Waiting(..)), "{err}");
    assert_eq!(
        r.api.calls(),
        ["get_sandbox box", "delete_sandbox box", "get_sandbox box"]
    );
    assert_eq!(r.kube.events(), ["Normal:Deleting"]);
    r.api.sandboxes.lock().unwrap().clear();
    assert_eq!(
        cleanup(&r.obj, &r.ctx).await.unwrap(),
        Action::await_change()
    );
    assert_eq!(r.api.count("delete_sandbox"), 1, "not deleted twice");
}

/// Deletions go through the mass-removal guard: with a limit of one, a second sandbox's deletion is
/// held (the finalizer stays, nothing is sent), with a Warning Event.
#[tokio::test]
async fn a_deletion_over_the_limit_is_held() {
    let status = json!({"phase": "DEPLOYED", "observedGeneration": 1});
    let r: Run = Harness::new(&deleting(object(&json!({}), Some(status.clone()))), 1);
    let mut other = deleting(object(&json!({}), Some(status)));
    other["metadata"]["name"] = json!("other");
    other["metadata"]["uid"] = json!("uid-other");
    let other: crate::reconcile::cached::Cached<Sandbox> = testing::cached(&other);
    let mut theirs = remote("base:2", "DEPLOYED", Some("team-a.other"));
    theirs.metadata.name = "other".into();
    r.api.put_sandbox(theirs);
    r.api.put_sandbox(remote("base:2", "DEPLOYED", OURS));
    let _ = cleanup(&other, &r.ctx).await;
    let err = cleanup(&r.obj, &r.ctx).await.unwrap_err();
    assert!(matches!(err, Error::Waiting(..)), "{err}");
    assert_eq!(r.api.writes(), ["delete_sandbox other"]);
    assert_eq!(
        r.kube.events(),
        ["Normal:Deleting", "Warning:RemovalLimitReached"]
    );
}

/// A sandbox gone between the read and the delete (404) ends cleanup.
#[tokio::test]
async fn a_sandbox_gone_before_its_delete_ends_cleanup() {
    let r = deleted("Delete");
    r.api.put_sandbox(remote("base:2", "DEPLOYED", OURS));
    r.api.meanwhile("delete_sandbox", |api| {
        api.sandboxes.lock().unwrap().clear();
    });
    assert_eq!(
        cleanup(&r.obj, &r.ctx).await.unwrap(),
        Action::await_change()
    );
    assert!(r.kube.events().is_empty());
}

/// Only a sandbox carrying this object's ownership is deleted: one owned by another object, or by
/// no one, is left in place.
#[tokio::test]
async fn deletion_never_touches_a_sandbox_not_ours() {
    for owner in [Some("team-b.box"), None] {
        let r = deleted("Delete");
        r.api.put_sandbox(remote("base:2", "DEPLOYED", owner));
        assert_eq!(
            cleanup(&r.obj, &r.ctx).await.unwrap(),
            Action::await_change()
        );
        assert!(r.api.writes().is_empty(), "{owner:?}: {:?}", r.api.calls());
    }
}

/// `Orphan` releases our sandbox: one update without the ownership labels, the rest kept.
#[tokio::test]
async fn orphan_releases_the_sandbox() {
    let r = deleted("Orphan");
    let mut ours = remote("base:2", "DEPLOYED", OURS);
    ours.metadata.labels.insert("team".into(), "x".into());
    r.api.put_sandbox(ours);
    assert_eq!(
        cleanup(&r.obj, &r.ctx).await.unwrap(),
        Action::await_change()
    );
    assert_eq!(r.api.writes(), ["update_sandbox box"]);
    let left = r.api.sandbox("box").unwrap();
    assert!(!left.metadata.labels.contains_key(OWNER_LABEL));
    assert!(!left.metadata.labels.contains_key(MANAGED_BY_LABEL));
    assert_eq!(left.metadata.labels["team"], "x");
    assert_eq!(r.kube.events(), ["Normal:Released"]);
}

/// `Orphan` leaves a sandbox with a secret variable no Secret of the object gives as it is, labels
/// included (taking them off would overwrite the variable with its mask), and says so in a Warning.
#[tokio::test]
async fn orphan_never_sends_a_masked_secret_back() {
    let r = deleted("Orphan");
    r.api
        .put_sandbox(with_masked_secret(remote("base:2", "DEPLOYED", OURS)));
    assert_eq!(
        cleanup(&r.obj, &r.ctx).await.unwrap(),
        Action::await_change()
    );
    assert!(r.api.writes().is_empty(), "{:?}", r.api.calls());
    assert_eq!(r.kube.events(), ["Warning:SecretVariablesUnknown"]);
}

/// A delete that fails transiently keeps the finalizer (the pass fails) and the sandbox.
#[tokio::test]
async fn a_failed_delete_keeps_the_finalizer() {
    let r = deleted("Delete");
    r.api.put_sandbox(remote("base:2", "DEPLOYED", OURS));
    r.api.fail_next("delete_sandbox", unavailable());
    let err = cleanup(&r.obj, &r.ctx).await.unwrap_err();
    assert!(matches!(err, Error::Remote(_)), "{err}");
    assert_eq!(
        r.api.sandbox("box").unwrap().status.as_deref(),
        Some("DEPLOYED")
    );
    assert_eq!(
        r.kube.condition("Synced"),
        ("False".into(), "Unavailable".into())
    );
}

/// Two Sandbox objects make the same claim exactly when they name one workspace and one remote name
/// (`spec.sandboxName`, else the object's name); equal claims hash equal.
#[test]
fn a_claim_is_a_workspace_and_a_remote_name() {
    use crate::reconcile::managed::Managed;
    let of = |name: &str, spec: &Value| -> crate::reconcile::cached::Cached<Sandbox> {
        let mut whole = json!({"workspace": "acme", "image": "base:2"});
        for (k, v) in spec.as_object().unwrap() {
            whole[k] = v.clone();
        }
        testing::cached(&testing::object("Sandbox", name, &whole, None, 1))
    };
    let by_name = of("box", &json!({}));
    let renamed = of("other", &json!({"sandboxName": "box"}));
    assert!(by_name.same_claim(&renamed));
    assert_eq!(by_name.claim_hash(), renamed.claim_hash());
    assert_eq!(by_name.workspace(), "acme");
    assert_eq!(renamed.identity(), "sandbox box");
    for other in [
        of("box", &json!({"workspace": "elsewhere"})),
        of("box2", &json!({})),
    ] {
        assert!(!by_name.same_claim(&other));
        assert_ne!(by_name.claim_hash(), other.claim_hash());
    }
}

/// A contested claim proves the object's own key on the sandbox list first: a key Blaxel refuses is
/// told so, and learns nothing of who holds the name.
#[tokio::test]
async fn a_contested_claim_proves_the_key_first() {
    let mut r = run(&json!({}));
    let older = {
        let mut o = object(&json!({}), None);
        o["metadata"]["name"] = json!("first");
        o["metadata"]["uid"] = json!("uid-first");
        o["spec"]["sandboxName"] = json!("box");
        o["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        o
    };
    let mut me = object(&json!({}), None);
    me["metadata"]["creationTimestamp"] = json!("2026-01-02T00:00:00Z");
    testing::register::<Sandbox>(&mut r.ctx, &[older, me]);
    r.api.refuse_key("the-default-key");
    let admission = crate::reconcile::managed::admit(&r.obj, &r.ctx)
        .await
        .unwrap();
    assert!(matches!(
        admission,
        crate::reconcile::managed::Admission::Stop(crate::reconcile::conditions::Health::Stalled(ref why), _)
            if why.reason == "Unauthorized"
    ));
    assert_eq!(r.api.calls(), ["list_sandboxes"]);
}
