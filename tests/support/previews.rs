//! Helpers of the SandboxPreview tests: the token's Secret and the remote tokens.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::{Value, json};

use super::operator::{DEADLINE, World, condition_is, eventually};

/// Secrets in the test namespace.
pub fn secrets(world: &World) -> Api<Secret> {
    Api::namespaced(world.client.clone(), &world.ns)
}

/// Secret `name`'s data as text, `None` when absent.
pub async fn secret_data(world: &World, name: &str) -> Option<BTreeMap<String, String>> {
    let secret = secrets(world)
        .get_opt(name)
        .await
        .expect("reading a Secret")?;
    Some(
        secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.0).expect("text")))
            .collect(),
    )
}

/// The token in Secret `name`, once there is one.
pub async fn token_in(world: &World, name: &str) -> String {
    eventually(&format!("a token in Secret {name}"), DEADLINE, || async {
        secret_data(world, name).await?.remove("token")
    })
    .await
}

/// The remote tokens of preview `preview` of remote sandbox `sandbox` (empty when it is gone).
pub async fn remote_tokens(world: &World, sandbox: &str, preview: &str) -> Vec<Value> {
    match world
        .blaxel_get(&format!("/sandboxes/{sandbox}/previews/{preview}/tokens"))
        .await
    {
        Value::Array(tokens) => tokens,
        _ => Vec::new(),
    }
}

/// Token `POST`s the simulator handled.
pub fn token_posts(world: &World) -> u64 {
    world.calls("POST /v0/sandboxes/{name}/previews/{preview}/tokens")
}

/// SandboxPreview `name`'s status as JSON.
pub async fn preview_status(world: &World, name: &str) -> Value {
    let obj = world
        .previews()
        .get(name)
        .await
        .expect("reading a SandboxPreview");
    serde_json::to_value(obj).expect("JSON")["status"].clone()
}

/// The status of preview `name` once it names a token other than `not` (the status records a token
/// after the Secret holds it).
pub async fn status_with_token_other_than(world: &World, name: &str, not: Option<&str>) -> Value {
    eventually(
        &format!("{name}'s status names its token"),
        DEADLINE,
        || async {
            let s = preview_status(world, name).await;
            let named = s["token"]["name"].as_str()?;
            (Some(named) != not).then_some(s)
        },
    )
    .await
}

/// The status of preview `name` once it names its token.
pub async fn status_with_token(world: &World, name: &str) -> Value {
    status_with_token_other_than(world, name, None).await
}

/// A Ready Sandbox `box` and a SandboxPreview `web` of its port 3000 with `extra` in its spec.
pub async fn preview_of_a_ready_sandbox(world: &World, extra: Value) {
    world.apply_sandbox("box", world.sandbox_spec()).await;
    condition_is(&world.sandboxes(), "box", "Ready", "True", "Running").await;
    let mut spec = json!({"sandboxRef": {"name": "box"}, "port": 3000});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    world
        .apply(&world.previews(), "web", json!({ "spec": spec }))
        .await;
}
