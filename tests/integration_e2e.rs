//! End to end: the IntegrationConnection kind on the local Kubernetes API server, against the simulator
//! over HTTP. The secret reaches Blaxel and nowhere else; a changed Secret is pushed; drift is repaired;
//! a settled connection is never written again (a restart included).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

use blaxel_operator::sim::SimConfig;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use serde_json::{Value, json};
use support::operator::{DEADLINE, World, condition_is, eventually, nudged_until, wait_gone};

/// The secret value the tests send: it must reach the simulator and appear nowhere else.
const SECRET: &str = "sk-live-9c1f44d0e2";

/// Writes Secret `name` with `apiKey` (server-side apply, so a second call changes it).
async fn provider_secret(world: &World, name: &str, value: &str) {
    world
        .write_secret(name, json!({"apiKey": value, "org": "acme-org"}))
        .await;
}

fn spec(world: &World) -> Value {
    json!({"spec": {
        "workspace": world.workspace, "integration": "openai",
        "config": {"organization": "acme"}, "secretRef": {"name": "openai-credentials"}
    }})
}

/// The connection `name` as the simulator stores it (secret values included: `/_sim/state`).
async fn stored(world: &World, name: &str) -> Option<Value> {
    let state = world.sim_state().await;
    state["workspaces"][&world.workspace]["integrationConnections"]
        .as_array()?
        .iter()
        .find(|c| c["metadata"]["name"] == name)
        .cloned()
}

fn puts(world: &World) -> u64 {
    world.calls("PUT /v0/integrations/connections/{connectionName}")
}

fn posts(world: &World) -> u64 {
    world.calls("POST /v0/integrations/connections")
}

/// The object's status as JSON.
async fn status(world: &World, name: &str) -> Value {
    serde_json::to_value(world.connections().get(name).await.unwrap())
        .unwrap()
        .get("status")
        .cloned()
        .unwrap_or(Value::Null)
}

/// Asks for a forced pass over `name` and waits until it is handled.
async fn forced_pass(world: &World, name: &str, request: &str) {
    support::operator::annotate(
        &world.connections(),
        name,
        "blaxel.ai/reconcile-requested-at",
        Some(request),
    )
    .await;
    eventually("the forced pass handled", DEADLINE, || async {
        (status(world, name).await["lastHandledReconcileAt"] == request).then_some(())
    })
    .await;
}

/// None of `values` is in the operator's log, an Event of the namespace, or the object's status.
async fn nowhere(world: &World, log: &str, name: &str, values: &[&str]) {
    let events: Api<Event> = Api::namespaced(world.client.clone(), &world.ns);
    let events = events.list(&ListParams::default()).await.unwrap();
    let status = status(world, name).await.to_string();
    for value in values {
        assert!(
            !log.contains(value),
            "a secret value is in the operator's log"
        );
        assert!(
            events
                .items
                .iter()
                .all(|e| !e.message.as_deref().unwrap_or_default().contains(value)),
            "a secret value is in an Event"
        );
        assert!(!status.contains(value), "a secret value is in the status");
    }
}

/// Created with the Secret's every key; a changed Secret is pushed once; config drift is repaired with
/// the secret kept; a settled connection is not written again over forced resyncs nor after a restart;
/// the secret and the key are in no log line (at trace), Event or status.
#[tokio::test(flavor = "multi_thread")]
async fn the_secret_reaches_blaxel_and_nowhere_else() {
    let mut world = World::new(SimConfig::default()).await;
    let mut op = world.start_operator_logging(&[], "trace");
    provider_secret(&world, "openai-credentials", SECRET).await;
    world
        .apply(&world.connections(), "openai", spec(&world))
        .await;
    condition_is(&world.connections(), "openai", "Ready", "True", "Ready").await;
    let remote = stored(&world, "openai").await.expect("created remotely");
    assert_eq!(
        remote["spec"]["secret"],
        json!({"apiKey": SECRET, "org": "acme-org"}),
        "{remote}"
    );
    assert_eq!(remote["spec"]["config"], json!({"organization": "acme"}));
    assert_eq!(posts(&world), 1);
    let first = status(&world, "openai").await;
    assert!(
        first["secretDigest"]
            .as_str()
            .is_some_and(|d| d.starts_with("hmac-sha256:")),
        "{first}"
    );
    assert!(first["models"].as_u64().is_some_and(|n| n > 0), "{first}");

    // A changed Secret: pushed once, at the next (forced) pass.
    provider_secret(&world, "openai-credentials", "sk-rotated-77aa01").await;
    nudged_until(
        &world.connections(),
        "openai",
        "the new secret pushed",
        || async {
            (stored(&world, "openai").await?["spec"]["secret"]["apiKey"] == "sk-rotated-77aa01")
                .then_some(())
        },
    )
    .await;
    assert_eq!(puts(&world), 1);
    assert_ne!(
        status(&world, "openai").await["secretDigest"],
        first["secretDigest"]
    );

    // Drift: someone edits the config in Blaxel; one PUT puts it back, the secret with it.
    let status_code = world
        .blaxel(
            reqwest::Method::PUT,
            "/integrations/connections/openai",
            Some(json!({"metadata": {"name": "openai"},
                        "spec": {"integration": "openai", "config": {"organization": "evil", "extra": "1"}}})),
        )
        .await;
    assert!(status_code.is_success(), "{status_code}");
    nudged_until(
        &world.connections(),
        "openai",
        "the config repaired",
        || async {
            let remote = stored(&world, "openai").await?;
            (remote["spec"]["config"] == json!({"organization": "acme"})
                && remote["spec"]["secret"]["apiKey"] == "sk-rotated-77aa01")
                .then_some(())
        },
    )
    .await;
    let settled = puts(&world);
    assert_eq!(settled, 3, "the rotation, the hand edit, and one repair");

    // Settled: forced resyncs write nothing.
    for round in 0..3 {
        forced_pass(&world, "openai", &format!("settled-{round}")).await;
    }
    assert_eq!(
        puts(&world),
        settled,
        "a settled connection was written again"
    );

    // A restart keeps the digest key: nothing is pushed again.
    op.kill();
    let mut log = op.output();
    let op = world.start_operator_logging(&[], "trace");
    forced_pass(&world, "openai", "after-restart").await;
    assert_eq!(puts(&world), settled, "the restart pushed the secret again");

    log.push_str(&op.output());
    nowhere(
        &world,
        &log,
        "openai",
        &[SECRET, "sk-rotated-77aa01", &world.key],
    )
    .await;
}

/// A missing Secret stalls with nothing created; once it exists the connection is created; deleted
/// with `Delete`, the remote connection goes.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_sends_nothing_and_delete_removes() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&[]);
    world
        .apply(&world.connections(), "openai", spec(&world))
        .await;
    condition_is(
        &world.connections(),
        "openai",
        "Stalled",
        "True",
        "SecretNotFound",
    )
    .await;
    assert_eq!(posts(&world), 0, "nothing is sent without the Secret");
    provider_secret(&world, "openai-credentials", SECRET).await;
    nudged_until(&world.connections(), "openai", "created", || async {
        stored(&world, "openai").await.map(|_| ())
    })
    .await;
    world
        .connections()
        .delete("openai", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world.connections(), "openai").await;
    assert!(stored(&world, "openai").await.is_none(), "deleted remotely");
}

/// A namespace that may not use the default key calls nothing.
#[tokio::test(flavor = "multi_thread")]
async fn an_ungranted_namespace_calls_nothing() {
    let mut world = World::new(SimConfig::default()).await;
    let _op = world.start_operator(&["--default-credentials-namespaces", "elsewhere"]);
    provider_secret(&world, "openai-credentials", SECRET).await;
    world
        .apply(&world.connections(), "openai", spec(&world))
        .await;
    condition_is(
        &world.connections(),
        "openai",
        "Stalled",
        "True",
        "CredentialsNotPermitted",
    )
    .await;
    assert_eq!(posts(&world), 0);
    assert_eq!(world.calls("GET /v0/integrations/connections"), 0);
}
