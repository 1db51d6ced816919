//! SandboxPreview end to end: the real operator binary against the local API server and the simulator
//! over HTTP. A private preview's token lives in a Secret, matches a live remote token, is renewed
//! before it expires, replaced when deleted on either side, removed when the preview turns public or
//! goes, and appears in no log line, Event or status.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use support::operator::{
    DEADLINE, World, condition_is, eventually, fast_sandboxes, nudged_until, wait_gone,
};
use support::previews::{
    preview_of_a_ready_sandbox, preview_status, remote_tokens, secret_data, secrets,
    status_with_token, status_with_token_other_than, token_in, token_posts,
};

/// A private preview: created with its declared fields; its Secret holds the URL, a token that is a
/// live remote token, its expiry and the header to send it in, with an owner reference to the object;
/// status names the token but never holds it; a restart makes no new token.
#[tokio::test]
async fn a_private_preview_keeps_a_live_token_in_its_secret() {
    let mut world = World::new(fast_sandboxes()).await;
    let mut op = world.start_operator(&[]);
    preview_of_a_ready_sandbox(&world, json!({"requestHeaders": {"X-Env": "dev"}})).await;
    condition_is(&world.previews(), "web", "Ready", "True", "Ready").await;
    let remote = world.blaxel_get("/sandboxes/box/previews/web").await;
    assert_eq!(remote["spec"]["port"], 3000, "{remote}");
    assert_eq!(remote["spec"]["public"], false, "{remote}");
    assert_eq!(remote["spec"]["requestHeaders"]["X-Env"], "dev", "{remote}");
    let token = token_in(&world, "web-token").await;
    let data = secret_data(&world, "web-token").await.unwrap();
    let s = preview_status(&world, "web").await;
    assert_eq!(data["url"], s["url"].as_str().unwrap(), "{s}");
    assert_eq!(data["header"], "X-Blaxel-Preview-Token");
    assert_eq!(data["expiresAt"], s["token"]["expiresAt"].as_str().unwrap());
    let live = remote_tokens(&world, "box", "web").await;
    let matching: Vec<&Value> = live
        .iter()
        .filter(|t| t["metadata"]["name"] == s["token"]["name"])
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "the Secret's token is listed remotely: {live:?}"
    );
    assert_eq!(matching[0]["spec"]["expired"], false);
    if let Some(value) = matching[0]["spec"]["token"].as_str() {
        assert_eq!(value, token, "the Secret holds the remote token's value");
    }
    let secret = secrets(&world).get("web-token").await.unwrap();
    let owner = &secret.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("SandboxPreview", "web")
    );
    assert!(
        !s.to_string().contains(&token),
        "the token is in the status: {s}"
    );
    assert_eq!(token_posts(&world), 1);

    op.kill();
    let _op = world.start_operator(&[]);
    nudged_until(
        &world.previews(),
        "web",
        "a pass after the restart",
        || async {
            let s = preview_status(&world, "web").await;
            (s["lastHandledReconcileAt"].is_string() && s["token"]["name"].is_string())
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        token_posts(&world),
        1,
        "a restart with a valid token made no new one"
    );
    assert_eq!(token_in(&world, "web-token").await, token);
}

/// A 1-minute token renewed 55 s before it expires: a new token in the Secret, the old one deleted
/// remotely, the person's own token left alone.
#[tokio::test]
async fn a_token_is_renewed_before_it_expires() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    preview_of_a_ready_sandbox(
        &world,
        json!({"token": {"lifetime": "1m", "renewBefore": "55s"}}),
    )
    .await;
    let first = token_in(&world, "web-token").await;
    let answer = world
        .blaxel(
            reqwest::Method::POST,
            "/sandboxes/box/previews/web/tokens",
            Some(json!({"metadata": {"name": "by-hand"}, "spec": {"expiresAt": "2099-01-01T00:00:00Z"}})),
        )
        .await;
    assert!(answer.is_success(), "{answer}");
    let renewed = eventually("a renewed token in the Secret", DEADLINE, || async {
        let now = secret_data(&world, "web-token").await?.remove("token")?;
        (now != first).then_some(now)
    })
    .await;
    eventually(
        "only the renewed token and the person's left",
        DEADLINE,
        || async {
            let names: Vec<String> = remote_tokens(&world, "box", "web")
                .await
                .iter()
                .filter_map(|t| t["metadata"]["name"].as_str().map(str::to_owned))
                .collect();
            (names.len() == 2 && names.contains(&"by-hand".to_owned())).then_some(())
        },
    )
    .await;
    assert_ne!(renewed, first);
}

/// A Secret deleted by hand, a token deleted remotely, a token expired on the simulator's clock: each
/// is put right at the next pass with a new token.
#[tokio::test]
async fn lost_or_expired_tokens_are_replaced() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    preview_of_a_ready_sandbox(&world, json!({})).await;
    let first = token_in(&world, "web-token").await;
    let first_name = status_with_token(&world, "web").await["token"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets(&world)
        .delete("web-token", &DeleteParams::default())
        .await
        .unwrap();
    let second = nudged_until(
        &world.previews(),
        "web",
        "the Secret written again",
        || async {
            let now = secret_data(&world, "web-token").await?.remove("token")?;
            (now != first).then_some(now)
        },
    )
    .await;
    let name =
        status_with_token_other_than(&world, "web", Some(&first_name)).await["token"]["name"]
            .as_str()
            .unwrap()
            .to_owned();
    let answer = world
        .blaxel(
            reqwest::Method::DELETE,
            &format!("/sandboxes/box/previews/web/tokens/{name}"),
            None,
        )
        .await;
    assert!(answer.is_success(), "{answer}");
    let third = nudged_until(
        &world.previews(),
        "web",
        "a token after a remote deletion",
        || async {
            let now = secret_data(&world, "web-token").await?.remove("token")?;
            (now != second).then_some(now)
        },
    )
    .await;
    // Past the 24h token's expiry on Blaxel's clock (which then runs a day ahead of the operator's).
    world
        .sim_control("clock/advance", json!({"seconds": 25 * 3600}))
        .await;
    nudged_until(&world.previews(), "web", "a token after expiry", || async {
        let now = secret_data(&world, "web-token").await?.remove("token")?;
        (now != third).then_some(())
    })
    .await;
    assert_eq!(token_posts(&world), 4);
    // Settled on the new token: three more forced passes make none.
    nudged_until(&world.previews(), "web", "three more passes", || async {
        (preview_status(&world, "web").await["lastHandledReconcileAt"] == "3").then_some(())
    })
    .await;
    assert_eq!(
        token_posts(&world),
        4,
        "no churn on a token Blaxel's clock keeps live"
    );
    condition_is(&world.previews(), "web", "Ready", "True", "Ready").await;
}

/// Made public: the Secret and the operator's tokens go. Deleted: the remote preview goes too.
#[tokio::test]
async fn public_then_deleted() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    preview_of_a_ready_sandbox(&world, json!({})).await;
    token_in(&world, "web-token").await;
    world
        .apply(
            &world.previews(),
            "web",
            json!({"spec": {"sandboxRef": {"name": "box"}, "port": 3000, "public": true}}),
        )
        .await;
    eventually("public, no Secret, no token", DEADLINE, || async {
        let remote = world.blaxel_get("/sandboxes/box/previews/web").await;
        let gone = secret_data(&world, "web-token").await.is_none();
        (remote["spec"]["public"] == true
            && gone
            && remote_tokens(&world, "box", "web").await.is_empty())
        .then_some(())
    })
    .await;
    world
        .previews()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.previews(), "web").await;
    assert_eq!(
        world.calls("DELETE /v0/sandboxes/{name}/previews/{preview}"),
        1
    );
    assert!(world.blaxel_get("/sandboxes/box/previews").await == json!([]));
}

/// The Sandbox deleted first: the preview waits (SandboxNotReady); deleting it then ends cleanly, its
/// Secret removed, with the credentials its status recorded.
#[tokio::test]
async fn the_sandbox_deleted_first() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    preview_of_a_ready_sandbox(&world, json!({})).await;
    token_in(&world, "web-token").await;
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
    world
        .previews()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.previews(), "web").await;
    assert!(
        secret_data(&world, "web-token").await.is_none(),
        "the Secret went with it"
    );
}

/// A Secret of that name the operator did not make is never written nor deleted: Stalled
/// SecretNotOwned; and no token reaches a log line (at trace), an Event or the status.
#[tokio::test]
async fn a_foreign_secret_is_left_and_tokens_never_leak() {
    let mut world = World::new(fast_sandboxes()).await;
    let op = world.start_operator_logging(&[], "trace");
    let mine = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("mine".into()),
            ..kube::api::ObjectMeta::default()
        },
        string_data: Some([("token".to_owned(), "keep-me".to_owned())].into()),
        ..Secret::default()
    };
    secrets(&world)
        .create(&PostParams::default(), &mine)
        .await
        .unwrap();
    preview_of_a_ready_sandbox(&world, json!({"token": {"secretName": "mine"}})).await;
    condition_is(
        &world.previews(),
        "web",
        "Stalled",
        "True",
        "SecretNotOwned",
    )
    .await;
    assert_eq!(
        secret_data(&world, "mine").await.unwrap()["token"],
        "keep-me"
    );
    world
        .apply(
            &world.previews(),
            "web",
            json!({"spec": {"sandboxRef": {"name": "box"}, "port": 3000}}),
        )
        .await;
    let token = token_in(&world, "web-token").await;
    let events: Vec<String> = Api::<Event>::namespaced(world.client.clone(), &world.ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.message)
        .collect();
    assert!(
        events.iter().all(|e| !e.contains(&token)),
        "a token in an Event"
    );
    assert!(
        !preview_status(&world, "web")
            .await
            .to_string()
            .contains(&token)
    );
    assert!(
        !op.output().contains(&token),
        "a token in the operator's trace log"
    );
    world
        .previews()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.previews(), "web").await;
    assert_eq!(
        secret_data(&world, "mine").await.unwrap()["token"],
        "keep-me"
    );
}

/// Bad specs are refused at admission with the rule's message: durations CEL cannot read or out of
/// range, a token on a public preview, a port out of range, a change of the sandbox or remote name.
#[tokio::test]
async fn admission_refuses_bad_preview_specs() {
    use kube::api::{Patch, PatchParams};

    let world = World::new(fast_sandboxes()).await;
    let apply = |spec: Value| {
        let mut full = json!({"sandboxRef": {"name": "box"}, "port": 3000});
        for (k, v) in spec.as_object().unwrap() {
            full[k] = v.clone();
        }
        let body = json!({"apiVersion": "blaxel.ai/v1alpha1", "kind": "SandboxPreview",
                          "metadata": {"name": "p"}, "spec": full});
        let api = world.previews();
        async move {
            api.patch("p", &PatchParams::apply("e2e-test"), &Patch::Apply(&body))
                .await
        }
    };
    for (spec, message) in [
        (
            json!({"token": {"lifetime": "1d"}}),
            "token.lifetime must be a duration",
        ),
        (
            json!({"token": {"lifetime": "30s"}}),
            "token.lifetime must be at least 1m",
        ),
        (
            json!({"token": {"lifetime": "1h", "renewBefore": "1h"}}),
            "token.renewBefore must be positive and shorter than token.lifetime",
        ),
        (
            json!({"token": {"renewBefore": "25h"}}),
            "token.renewBefore must be positive and shorter than token.lifetime",
        ),
        (
            json!({"public": true, "token": {}}),
            "a public preview takes no token",
        ),
        (json!({"port": 0}), "should be greater than or equal to 1"),
        (json!({"previewName": "Web"}), "should match"),
    ] {
        let err = apply(spec.clone()).await.unwrap_err();
        assert!(err.to_string().contains(message), "{spec}: {err}");
    }
    apply(json!({"previewName": "web"})).await.unwrap();
    let err = apply(json!({"previewName": "web2"})).await.unwrap_err();
    assert!(
        err.to_string().contains("previewName is immutable"),
        "{err}"
    );
    let err = apply(json!({"previewName": "web", "sandboxRef": {"name": "other"}}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sandboxRef is immutable"), "{err}");
}

/// With --preview-tokens=false the operator writes no Secret: a private preview is Stalled
/// PreviewTokensDisabled and no token is made; a public one works.
#[tokio::test]
async fn without_preview_tokens_no_secret_is_written() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&["--preview-tokens=false"]);
    preview_of_a_ready_sandbox(&world, json!({})).await;
    condition_is(
        &world.previews(),
        "web",
        "Stalled",
        "True",
        "PreviewTokensDisabled",
    )
    .await;
    assert_eq!(token_posts(&world), 0);
    assert!(secret_data(&world, "web-token").await.is_none());
    world
        .apply(
            &world.previews(),
            "web",
            json!({"spec": {"sandboxRef": {"name": "box"}, "port": 3000, "public": true}}),
        )
        .await;
    condition_is(&world.previews(), "web", "Ready", "True", "Ready").await;
}

/// Two objects for one remote preview: the older acts, the newer is Stalled DuplicatePreview and
/// makes no remote call; deleting the newer deletes nothing remotely.
#[tokio::test]
async fn a_duplicate_preview_never_acts() {
    let mut world = World::new(fast_sandboxes()).await;
    let _op = world.start_operator(&[]);
    preview_of_a_ready_sandbox(&world, json!({"public": true})).await;
    condition_is(&world.previews(), "web", "Ready", "True", "Ready").await;
    support::operator::second_after(&world.previews(), "web").await;
    world
        .apply(
            &world.previews(),
            "copy",
            json!({"spec": {"sandboxRef": {"name": "box"}, "previewName": "web", "port": 8080,
                            "public": true}}),
        )
        .await;
    condition_is(
        &world.previews(),
        "copy",
        "Stalled",
        "True",
        "DuplicatePreview",
    )
    .await;
    world
        .previews()
        .delete("copy", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.previews(), "copy").await;
    let remote = world.blaxel_get("/sandboxes/box/previews/web").await;
    assert_eq!(
        remote["spec"]["port"], 3000,
        "the holder's preview, untouched: {remote}"
    );
    assert_eq!(world.calls("POST /v0/sandboxes/{name}/previews"), 1);
    assert_eq!(
        world.calls("PUT /v0/sandboxes/{name}/previews/{preview}"),
        0
    );
    assert_eq!(
        world.calls("DELETE /v0/sandboxes/{name}/previews/{preview}"),
        0
    );
}
