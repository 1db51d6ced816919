//! Attacks on SandboxPreview, end to end (the real operator binary, the local API server, the simulator
//! over HTTP): hand edits of the token's Secret, odd Secret names, Sandbox objects deleted and made again,
//! duplicates deleted in odd orders. Each test here is a defect an adversarial probe found (its doc
//! comment says which); each failed on the code before its fix.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::operator::{
    DEADLINE, World, condition_is, eventually, fast_sandboxes, nudged_until, second_after,
    wait_gone,
};
use support::previews::{
    preview_of_a_ready_sandbox, preview_status, remote_tokens, secret_data, secrets,
    status_with_token, token_in, token_posts,
};

const OPERATOR_PREFIX: &str = "blaxel-operator-";

/// The values of the live (unexpired) remote tokens the operator made on `sandbox`/`preview`.
async fn live_operator_tokens(world: &World, sandbox: &str, preview: &str) -> Vec<Value> {
    remote_tokens(world, sandbox, preview)
        .await
        .into_iter()
        .filter(|t| {
            t["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(OPERATOR_PREFIX))
                && t["spec"]["expired"] == false
        })
        .collect()
}

/// A SandboxPreview `name` with `spec` (JSON).
async fn apply_preview(world: &World, name: &str, spec: Value) {
    world
        .apply(&world.previews(), name, json!({ "spec": spec }))
        .await;
}

/// A Sandbox object `name` for remote sandbox `remote`, with `deletionPolicy`, waited for until Ready.
async fn ready_sandbox(world: &World, name: &str, remote: &str, policy: &str) {
    let mut spec = world.sandbox_spec();
    spec["sandboxName"] = remote.into();
    spec["deletionPolicy"] = policy.into();
    world.apply_sandbox(name, spec).await;
    eventually(&format!("Sandbox {name} Ready"), DEADLINE, || async {
        let obj = world.sandboxes().get(name).await.ok()?;
        let v = serde_json::to_value(obj).ok()?;
        let ready = v["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        (ready && v["status"]["observedGeneration"] == v["metadata"]["generation"]).then_some(())
    })
    .await;
}

/// The number of forced passes (`blaxel.ai/reconcile-requested-at`) preview `name` has handled.
async fn handled_passes(world: &World, name: &str) -> u32 {
    preview_status(world, name).await["lastHandledReconcileAt"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Was a defect: `spec.token.secretName` is admitted by a pattern looser than Kubernetes' own Secret name
/// rule (it allows `..` and `.-`), and the operator makes the remote token *before* it writes the
/// Secret. With `secretName: web..token` every pass POSTs a new token, the Secret create is refused
/// (422), the pass ends in error before the operator's other tokens are deleted, and the next pass
/// (backoff, resync, any nudge) does it again: endless token churn, and an ever-growing pile of live
/// tokens that no Secret holds and nobody will ever delete while the object lives — meanwhile the
/// status says Ready. A careless name must be refused at admission (or Stalled before any POST), and a
/// token that could not be stored must not be left live.
#[tokio::test]
async fn an_invalid_secret_name_is_refused_at_admission() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    ready_sandbox(&world, "box", "box", "Delete").await;
    // Admission refuses the name Kubernetes would refuse for the Secret: nothing is ever made.
    let refused = world
        .previews()
        .patch(
            "web",
            &PatchParams::apply("e2e-test").force(),
            &Patch::Apply(json!({
                "apiVersion": "blaxel.ai/v1alpha1",
                "kind": "SandboxPreview",
                "metadata": {"name": "web"},
                "spec": {"sandboxRef": {"name": "box"}, "port": 3000,
                         "token": {"secretName": "web..token"}},
            })),
        )
        .await
        .expect_err("secretName web..token admitted");
    assert!(
        refused.to_string().contains("spec.token.secretName"),
        "{refused}"
    );
    assert_eq!(token_posts(&world), 0);
}

/// Was a defect: a Secret whose `token` was edited by hand (a careless `kubectl edit`, a bad copy-paste) is
/// never put right: the operator checks only the token *name* (an annotation) and `expiresAt` against
/// the remote list, not the value, although the list gives it. The README promises "no live token in
/// the Secret (... Secret deleted or edited by hand ...) → a new token"; instead every consumer gets a
/// token Blaxel refuses until the next renewal, up to `lifetime - renewBefore` (16 h by default) later,
/// while the status says Ready.
#[tokio::test]
async fn a_hand_edited_token_value_is_never_replaced() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    ready_sandbox(&world, "box", "box", "Delete").await;
    apply_preview(
        &world,
        "web",
        json!({"sandboxRef": {"name": "box"}, "port": 3000}),
    )
    .await;
    token_in(&world, "web-token").await;
    condition_is(&world.previews(), "web", "Ready", "True", "Ready").await;
    secrets(&world)
        .patch(
            "web-token",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"token": "not-a-token"}})),
        )
        .await
        .unwrap();
    nudged_until(
        &world.previews(),
        "web",
        "the Secret holding a token Blaxel knows and calls live",
        || async {
            let held = secret_data(&world, "web-token").await?.remove("token")?;
            let live = live_operator_tokens(&world, "box", "web").await;
            live.iter()
                .any(|t| t["spec"]["token"].as_str() == Some(held.as_str()))
                .then_some(())
        },
    )
    .await;
}

/// Was a defect: the operator takes the token's expiry from the Secret's `expiresAt` (which anyone who can
/// edit the Secret can change), not from Blaxel's record of the token. Edit it to 2099 and the operator
/// believes it: status shows 2099, the renewal is scheduled for 2099 minus `renewBefore`, and the real
/// token expires with no renewal ahead of it — consumers get refused until a later resync notices.
/// The Secret's expiry must match the remote token's (or the token be replaced).
#[tokio::test]
async fn a_hand_edited_expiry_is_believed() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    ready_sandbox(&world, "box", "box", "Delete").await;
    apply_preview(
        &world,
        "web",
        json!({"sandboxRef": {"name": "box"}, "port": 3000}),
    )
    .await;
    token_in(&world, "web-token").await;
    condition_is(&world.previews(), "web", "Ready", "True", "Ready").await;
    secrets(&world)
        .patch(
            "web-token",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"expiresAt": "2099-01-01T00:00:00Z"}})),
        )
        .await
        .unwrap();
    nudged_until(
        &world.previews(),
        "web",
        "the Secret's expiresAt matching the remote token it holds",
        || async {
            let data = secret_data(&world, "web-token").await?;
            let held: jiff::Timestamp = data.get("expiresAt")?.parse().ok()?;
            let value = data.get("token")?;
            let live = live_operator_tokens(&world, "box", "web").await;
            let remote = live
                .iter()
                .find(|t| t["spec"]["token"].as_str() == Some(value.as_str()))?;
            let remote: jiff::Timestamp = remote["spec"]["expiresAt"].as_str()?.parse().ok()?;
            let status = preview_status(&world, "web").await;
            let shown: jiff::Timestamp = status["token"]["expiresAt"].as_str()?.parse().ok()?;
            (held == remote && shown == remote).then_some(())
        },
    )
    .await;
}

/// Was a defect: a preview follows its Sandbox object to wherever that object points *now*, and forgets
/// where it was. A Sandbox with `deletionPolicy: Orphan` deleted and made again (same object name,
/// another `sandboxName`) moves the preview: a new preview and token on the new sandbox, while the old
/// preview the operator made keeps a live operator token nobody tracks (status.remote now names the new
/// place). Deleting the SandboxPreview (`Delete`) then cleans only the new place: the old token stays
/// valid for the rest of its lifetime (24 h) and the old preview forever — a token that outlives its
/// object, on a preview the operator made and no longer knows.
#[tokio::test]
async fn a_moved_sandbox_leaves_a_live_token_behind() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    ready_sandbox(&world, "box", "first", "Orphan").await;
    apply_preview(
        &world,
        "web",
        json!({"sandboxRef": {"name": "box"}, "port": 3000}),
    )
    .await;
    let first = token_in(&world, "web-token").await;
    world
        .sandboxes()
        .delete("box", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.sandboxes(), "box").await;
    ready_sandbox(&world, "box", "second", "Orphan").await;
    nudged_until(
        &world.previews(),
        "web",
        "the preview at the second sandbox",
        || async {
            let s = preview_status(&world, "web").await;
            let now = secret_data(&world, "web-token").await?.remove("token")?;
            (s["remote"]["sandbox"] == "second" && now != first).then_some(())
        },
    )
    .await;
    world
        .previews()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.previews(), "web").await;
    assert!(
        secret_data(&world, "web-token").await.is_none(),
        "the Secret went"
    );
    let left = live_operator_tokens(&world, "first", "web").await;
    assert!(
        left.is_empty(),
        "the SandboxPreview is gone, yet {} operator token(s) are still live on the preview it made on \
         sandbox `first`: {left:?}",
        left.len()
    );
}

/// Was a defect: cleanup acts on the location its status recorded, with no check that the remote sandbox
/// (and so the preview) is still held through this object's Sandbox. Sandbox `box1` (Orphan) is
/// deleted, Sandbox `box2` takes over remote sandbox `x`, and SandboxPreview `web2` (through `box2`,
/// previewName `web`) adopts and manages preview `x/web`, with its own token in its own Secret.
/// Deleting the stale SandboxPreview `web` (through the gone `box1`, `Delete`) then deletes preview
/// `x/web` — the one `web2` manages — and with it `web2`'s token: its consumers are cut off until
/// `web2`'s next pass. `same_claim` compares Sandbox object names, not remote places, so the
/// "another object names it" guard does not see it.
#[tokio::test]
async fn a_stale_preview_deletes_the_preview_another_object_manages() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    ready_sandbox(&world, "box1", "x", "Orphan").await;
    apply_preview(
        &world,
        "web",
        json!({"sandboxRef": {"name": "box1"}, "port": 3000, "deletionPolicy": "Delete"}),
    )
    .await;
    token_in(&world, "web-token").await;
    world
        .sandboxes()
        .delete("box1", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.sandboxes(), "box1").await;
    condition_is(
        &world.previews(),
        "web",
        "Reconciling",
        "True",
        "SandboxNotReady",
    )
    .await;
    ready_sandbox(&world, "box2", "x", "Orphan").await;
    apply_preview(
        &world,
        "web2",
        json!({"sandboxRef": {"name": "box2"}, "previewName": "web", "port": 3000}),
    )
    .await;
    let theirs = token_in(&world, "web2-token").await;
    condition_is(&world.previews(), "web2", "Ready", "True", "Ready").await;
    let before = live_operator_tokens(&world, "x", "web").await;
    assert!(
        before
            .iter()
            .any(|t| t["spec"]["token"].as_str() == Some(theirs.as_str())),
        "web2's token is live before `web` is deleted: {before:?}"
    );
    world
        .previews()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.previews(), "web").await;
    let live = live_operator_tokens(&world, "x", "web").await;
    assert!(
        live.iter()
            .any(|t| t["spec"]["token"].as_str() == Some(theirs.as_str())),
        "deleting the stale SandboxPreview `web` destroyed preview x/web (or its token) that `web2` \
         manages: {} preview DELETE(s), live tokens {live:?}",
        world.calls("DELETE /v0/sandboxes/{name}/previews/{preview}")
    );
}

/// Was a defect: when the holder of a preview is deleted while a duplicate names the same preview, cleanup
/// removes nothing remotely ("another object names it") and leaves its token to the duplicate, which
/// deletes the operator's other tokens only once its own token step gets past the Secret check. A
/// duplicate that is Stalled there (`SecretNotOwned`: its secretName is a Secret it did not make)
/// never does: the deleted holder's token stays valid for its whole lifetime (24 h), held in no Secret
/// and tracked by no object — a token that outlives its object.
#[tokio::test]
async fn a_deleted_holders_token_outlives_it_behind_a_stalled_duplicate() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    ready_sandbox(&world, "box", "box", "Delete").await;
    apply_preview(
        &world,
        "web",
        json!({"sandboxRef": {"name": "box"}, "port": 3000}),
    )
    .await;
    let held = token_in(&world, "web-token").await;
    condition_is(&world.previews(), "web", "Ready", "True", "Ready").await;
    let foreign = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("someone-elses".into()),
            ..kube::api::ObjectMeta::default()
        },
        string_data: Some([("token".to_owned(), "keep-me".to_owned())].into()),
        ..Secret::default()
    };
    secrets(&world)
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    second_after(&world.previews(), "web").await;
    apply_preview(
        &world,
        "dup",
        json!({"sandboxRef": {"name": "box"}, "previewName": "web", "port": 3000,
               "token": {"secretName": "someone-elses"}}),
    )
    .await;
    condition_is(
        &world.previews(),
        "dup",
        "Stalled",
        "True",
        "DuplicatePreview",
    )
    .await;
    world
        .previews()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.previews(), "web").await;
    condition_is(
        &world.previews(),
        "dup",
        "Stalled",
        "True",
        "SecretNotOwned",
    )
    .await;
    let live = live_operator_tokens(&world, "box", "web").await;
    assert!(
        !live
            .iter()
            .any(|t| t["spec"]["token"].as_str() == Some(held.as_str())),
        "SandboxPreview `web` is gone but the token its Secret held is still live remotely: {live:?}"
    );
    assert_eq!(
        secret_data(&world, "someone-elses").await.unwrap()["token"],
        "keep-me"
    );
}

/// Was a defect: going public leaves a private preview's Secret behind when it had a `secretName`. The CEL
/// rule refuses `public: true` together with `token`, so making a preview public *must* drop
/// `token.secretName`; the operator then looks for the default `<name>-token`, finds nothing, and the
/// Secret it made and wrote the token to stays, with its owner reference, for the object's whole life.
/// The README promises "`public: true` → the Secret and the operator's tokens deleted"; consumers
/// mounting it keep sending a revoked token, and a later preview of that secretName is refused
/// (`SecretNotOwned`: it is still this object's).
#[tokio::test]
async fn going_public_leaves_a_named_secret_behind() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    ready_sandbox(&world, "box", "box", "Delete").await;
    apply_preview(
        &world,
        "web",
        json!({"sandboxRef": {"name": "box"}, "port": 3000, "token": {"secretName": "custom"}}),
    )
    .await;
    token_in(&world, "custom").await;
    apply_preview(
        &world,
        "web",
        json!({"sandboxRef": {"name": "box"}, "port": 3000, "public": true}),
    )
    .await;
    eventually("public, no operator token left", DEADLINE, || async {
        let remote = world.blaxel_get("/sandboxes/box/previews/web").await;
        (remote["spec"]["public"] == true && remote_tokens(&world, "box", "web").await.is_empty())
            .then_some(())
    })
    .await;
    nudged_until(
        &world.previews(),
        "web",
        "Secret `custom` (the preview's, made by the operator) deleted once public",
        || async { secret_data(&world, "custom").await.is_none().then_some(()) },
    )
    .await;
}

/// Was a defect: a preview whose `spec.ttl` ran out (Blaxel deletes it: "after this duration, the preview
/// will be automatically deleted") is created again at the next pass, with a fresh ttl, and so on
/// forever: the time to live the user declared to limit how long a port is published never ends
/// anything. The Sandbox kind handles exactly this (`TtlExpired`: nothing until the spec changes); the
/// preview kind re-publishes the port.
#[tokio::test]
async fn a_preview_past_its_ttl_is_published_again() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    ready_sandbox(&world, "box", "box", "Delete").await;
    apply_preview(
        &world,
        "web",
        json!({"sandboxRef": {"name": "box"}, "port": 3000, "public": true, "ttl": "1h"}),
    )
    .await;
    condition_is(&world.previews(), "web", "Ready", "True", "Ready").await;
    assert_eq!(world.calls("POST /v0/sandboxes/{name}/previews"), 1);
    world
        .sim_control("clock/advance", json!({"seconds": 2 * 3600}))
        .await;
    assert_eq!(
        world.blaxel_get("/sandboxes/box/previews").await,
        json!([]),
        "Blaxel removed the preview at the end of its ttl"
    );
    let before = handled_passes(&world, "web").await;
    nudged_until(&world.previews(), "web", "three forced passes", || async {
        (handled_passes(&world, "web").await >= before + 3).then_some(())
    })
    .await;
    assert_eq!(
        world.calls("POST /v0/sandboxes/{name}/previews"),
        1,
        "the preview was published again after its ttl ran out: {}",
        world.blaxel_get("/sandboxes/box/previews").await
    );
}

/// Was a defect (tenant against tenant): a SandboxPreview left behind in team A's namespace, whose Sandbox
/// object A deleted (`Orphan`, so the sandbox was released), still deletes "the operator's tokens" of
/// the place its status recorded when it is itself deleted with `Orphan` — although team B's Sandbox
/// has since taken that sandbox over and B's SandboxPreview manages the preview there. The tokens are
/// chosen by the `blaxel-operator-` prefix alone, so A's cleanup deletes B's current token: B's
/// consumers are refused until B's next pass (its resync: 10 minutes by default). Team A needs no
/// right in B's namespace, only a leftover object of its own.
#[tokio::test]
async fn another_namespaces_stale_preview_deletes_our_token() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op_a = world.start_operator(&[]);
    let ns_b = support::kube::fresh_namespace(&world.client).await;
    let _op_b = world.start_operator(&[
        "--watch-namespace",
        &ns_b,
        "--default-credentials-namespaces",
        &ns_b,
        "--lease-namespace",
        &ns_b,
    ]);
    // Team A: Sandbox `box` (Orphan) of remote sandbox `shared`, private preview `web` (Orphan).
    ready_sandbox(&world, "box", "shared", "Orphan").await;
    apply_preview(
        &world,
        "web",
        json!({"sandboxRef": {"name": "box"}, "port": 3000, "deletionPolicy": "Orphan"}),
    )
    .await;
    token_in(&world, "web-token").await;
    world
        .sandboxes()
        .delete("box", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.sandboxes(), "box").await;
    // Team B takes the released sandbox over and previews the same port under the same name.
    let sandboxes_b: Api<blaxel_operator::crd::Sandbox> =
        Api::namespaced(world.client.clone(), &ns_b);
    let previews_b: Api<blaxel_operator::crd::SandboxPreview> =
        Api::namespaced(world.client.clone(), &ns_b);
    let mut spec = world.sandbox_spec();
    spec["sandboxName"] = "shared".into();
    world
        .apply(&sandboxes_b, "box", json!({ "spec": spec }))
        .await;
    condition_is(&sandboxes_b, "box", "Ready", "True", "Running").await;
    world
        .apply(
            &previews_b,
            "web",
            json!({"spec": {"sandboxRef": {"name": "box"}, "port": 3000}}),
        )
        .await;
    condition_is(&previews_b, "web", "Ready", "True", "Ready").await;
    let secrets_b: Api<Secret> = Api::namespaced(world.client.clone(), &ns_b);
    let theirs = eventually("team B's token", DEADLINE, || async {
        let secret = secrets_b.get_opt("web-token").await.ok()??;
        let data = secret.data?;
        String::from_utf8(data.get("token")?.0.clone()).ok()
    })
    .await;
    let before = live_operator_tokens(&world, "shared", "web").await;
    assert!(
        before
            .iter()
            .any(|t| t["spec"]["token"].as_str() == Some(theirs.as_str())),
        "team B's token is live before team A's cleanup: {before:?}"
    );
    // Team A cleans up its leftover object.
    world
        .previews()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.previews(), "web").await;
    let live = live_operator_tokens(&world, "shared", "web").await;
    assert!(
        live.iter()
            .any(|t| t["spec"]["token"].as_str() == Some(theirs.as_str())),
        "team A deleting its stale SandboxPreview deleted team B's current token: live tokens {live:?}"
    );
}

/// Sets `status` fields of SandboxPreview `name` (a merge patch of the status subresource).
async fn patch_status(world: &World, name: &str, status: Value) {
    world
        .previews()
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .unwrap_or_else(|e| panic!("patching the status of {name}: {e}"));
}

/// A second preview object `squatter` whose Sandbox does not exist (it never acts), once the operator
/// has written its status.
async fn idle_squatter(world: &World) {
    world
        .apply(
            &world.previews(),
            "squatter",
            json!({"spec": {"sandboxRef": {"name": "nothing"}, "port": 3000}}),
        )
        .await;
    condition_is(
        &world.previews(),
        "squatter",
        "Reconciling",
        "True",
        "SandboxNotReady",
    )
    .await;
}

/// Was a defect: `holds` trusted every other preview object's `status.remote`, which anyone allowed to write
/// the status subresource sets (and an object that does not act — its Sandbox missing — keeps as
/// written: `stopped` reports the status it read). A second object that never acted, its status
/// edited to record `web`'s place, makes `web`'s deletion (deletionPolicy Delete) leave the remote
/// preview behind for good: it outlives its object. Across namespaces the same works, since `holds`
/// looks at previews in every namespace.
#[tokio::test]
async fn a_forged_status_elsewhere_keeps_a_deleted_preview_alive() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    preview_of_a_ready_sandbox(&world, json!({"public": true})).await;
    condition_is(&world.previews(), "web", "Ready", "True", "Ready").await;
    let place = preview_status(&world, "web").await["remote"].clone();
    assert!(place.is_object(), "web records its place: {place}");
    idle_squatter(&world).await;
    patch_status(&world, "squatter", json!({ "remote": place })).await;
    // The forged record stays: the squatter never acts, and its passes keep the status they read.
    condition_is(
        &world.previews(),
        "squatter",
        "Reconciling",
        "True",
        "SandboxNotReady",
    )
    .await;
    assert_eq!(
        preview_status(&world, "squatter").await["remote"],
        place,
        "the forged record stays"
    );
    world
        .previews()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.previews(), "web").await;
    let left = world.blaxel_get("/sandboxes/box/previews/web").await;
    assert!(
        left.get("metadata").is_none(),
        "web was deleted with deletionPolicy Delete and nothing else made its preview, yet the (public) \
         preview outlives it: {left}"
    );
}

/// Was a defect: `leave_place` (and `delete_own_tokens`) took the place and the token name to delete from
/// the object's own status, which the status subresource lets anyone with that permission set. An
/// acting preview whose status is edited to name another object's place and token deletes that
/// other object's token on its next pass ("never deletes another object's tokens"): the victim's
/// Secret holds a dead token until its own next pass.
#[tokio::test]
async fn a_forged_status_deletes_another_objects_token() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    preview_of_a_ready_sandbox(&world, json!({})).await;
    token_in(&world, "web-token").await;
    // The status records the token after the Secret holds it.
    let victim = status_with_token(&world, "web").await;
    let victim_token = victim["token"]["name"].as_str().unwrap().to_owned();
    // The attacker's own preview on its own sandbox.
    world.apply_sandbox("mine", world.sandbox_spec()).await;
    condition_is(&world.sandboxes(), "mine", "Ready", "True", "Running").await;
    world
        .apply(
            &world.previews(),
            "mine",
            json!({"spec": {"sandboxRef": {"name": "mine"}, "port": 3000}}),
        )
        .await;
    condition_is(&world.previews(), "mine", "Ready", "True", "Ready").await;
    token_in(&world, "mine-token").await;
    let mine = status_with_token(&world, "mine").await;
    let mut forged = mine.clone();
    forged["remote"] = victim["remote"].clone();
    forged["token"]["name"] = victim_token.clone().into();
    patch_status(
        &world,
        "mine",
        json!({"remote": forged["remote"], "token": forged["token"]}),
    )
    .await;
    // Its next pass leaves the forged place for its real one.
    eventually("mine's status back at its own place", DEADLINE, || async {
        let s = preview_status(&world, "mine").await;
        (s["remote"] == mine["remote"]).then_some(())
    })
    .await;
    let names: Vec<String> = remote_tokens(&world, "box", "web")
        .await
        .iter()
        .filter_map(|t| t["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    assert!(
        names.contains(&victim_token),
        "web's token {victim_token} was deleted by another object's pass (remote tokens now {names:?})"
    );
}

/// Was a defect: `ttl_ran_out` took any absence of the preview at the recorded place as Blaxel's ttl
/// expiry. A Sandbox deleted and made again (same name, same remote sandbox) loses its previews with
/// it; a preview with `spec.ttl` is then Stalled TtlExpired and never made again until its spec
/// changes, though its ttl never ran out (1h).
#[tokio::test]
async fn a_recreated_sandbox_gets_its_ttl_preview_back() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    preview_of_a_ready_sandbox(&world, json!({"public": true, "ttl": "1h"})).await;
    condition_is(&world.previews(), "web", "Ready", "True", "Ready").await;
    world
        .sandboxes()
        .delete("box", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.sandboxes(), "box").await;
    condition_is(
        &world.previews(),
        "web",
        "Reconciling",
        "True",
        "SandboxNotReady",
    )
    .await;
    eventually("the remote sandbox gone", DEADLINE, || async {
        world.remote_sandbox("box").await.is_none().then_some(())
    })
    .await;
    world.apply_sandbox("box", world.sandbox_spec()).await;
    condition_is(&world.sandboxes(), "box", "Ready", "True", "Running").await;
    eventually(
        "the preview made again on the new sandbox (not TtlExpired)",
        DEADLINE,
        || async {
            let remote = world.blaxel_get("/sandboxes/box/previews/web").await;
            remote.get("metadata").map(|_| ())
        },
    )
    .await;
}
