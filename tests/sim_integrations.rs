//! Integration connections in the simulator: the routes' codes and bodies in both generations, secret
//! values kept but never echoed, `PUT` replacing the spec (the secret included), the model catalogue and
//! its control route, workspace isolation, and bodies that never cause a server error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected values"
)]

mod common;

use blaxel_operator::sim::{ApiGeneration, SimConfig};
use common::{Harness, config};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "sk-sim-test-5a5a5a";

fn connection(name: &str, secret: Option<&str>) -> Value {
    let mut spec = json!({"integration": "openai", "config": {"org": "acme"}, "sandbox": false});
    if let Some(secret) = secret {
        spec["secret"] = json!({"apiKey": secret});
    }
    json!({"metadata": {"name": name, "labels": {"team": "a"}, "extraMeta": 1}, "spec": spec})
}

/// The stored connection `name` of `ws-a`, from `/_sim/state`.
async fn stored(h: &Harness, name: &str) -> Value {
    let state = h.sim_get("/state").await;
    state["workspaces"]["ws-a"]["integrationConnections"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["metadata"]["name"] == name))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Create → get → list → PUT (new secret, then none) → delete → 404, with the secret never in an answer.
#[tokio::test]
async fn connections_keep_secrets_without_echoing_them() {
    for generation in [ApiGeneration::V2025, ApiGeneration::V2026] {
        let h = Harness::start(SimConfig {
            generation,
            ..config()
        })
        .await;
        let created = h
            .post(
                "/integrations/connections",
                connection("openai", Some(SECRET)),
            )
            .await;
        assert_eq!(created.status, StatusCode::OK, "{}", created.raw);
        assert_eq!(
            created.body["spec"]["secret"],
            json!({"apiKey": "********"})
        );
        assert_eq!(
            created.body["metadata"]["extraMeta"], 1,
            "unknown fields kept"
        );
        let again = h
            .post(
                "/integrations/connections",
                connection("openai", Some(SECRET)),
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        let one = h.get("/integrations/connections/openai").await;
        let all = h.get("/integrations/connections").await;
        for answer in [&created, &one, &all] {
            assert!(
                !answer.raw.contains(SECRET),
                "a read echoed the secret: {}",
                answer.raw
            );
        }
        assert_eq!(all.body.as_array().map(Vec::len), Some(1));
        assert_eq!(
            stored(&h, "openai").await["spec"]["secret"],
            json!({"apiKey": SECRET})
        );

        let put = h
            .put(
                "/integrations/connections/openai",
                connection("openai", Some("sk-new-value-1")),
            )
            .await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.raw);
        assert!(!put.raw.contains("sk-new-value-1"));
        assert_eq!(
            stored(&h, "openai").await["spec"]["secret"],
            json!({"apiKey": "sk-new-value-1"})
        );
        // A PUT replaces the connection: without a secret, none is left.
        h.put(
            "/integrations/connections/openai",
            connection("openai", None),
        )
        .await;
        assert_eq!(stored(&h, "openai").await["spec"]["secret"], json!({}));

        let mut other = connection("openai", None);
        other["spec"]["integration"] = json!("anthropic");
        let changed = h.put("/integrations/connections/openai", other).await;
        assert_eq!(changed.status, StatusCode::BAD_REQUEST, "{}", changed.raw);

        assert_eq!(
            h.delete("/integrations/connections/openai").await.status,
            StatusCode::OK
        );
        for gone in [
            h.get("/integrations/connections/openai").await,
            h.delete("/integrations/connections/openai").await,
        ] {
            assert_eq!(gone.status, StatusCode::NOT_FOUND);
            assert!(gone.body["message"].is_string(), "{}", gone.raw);
        }
    }
}

/// Models follow the catalogue and its control route; unknown integrations and models are refused.
#[tokio::test]
async fn models_follow_the_catalogue() {
    let h = Harness::default().await;
    h.post(
        "/integrations/connections",
        connection("openai", Some(SECRET)),
    )
    .await;
    let models = h.get("/integrations/connections/openai/models").await;
    assert_eq!(
        models.body.as_array().map(Vec::len),
        Some(12),
        "{}",
        models.raw
    );
    let id = models.body[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        h.get(&format!("/integrations/connections/openai/models/{id}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        h.get("/integrations/connections/openai/models/nope")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let set = h
        .sim_put("/integrations/openai/models", json!({"count": 3}))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.raw);
    let models = h.get("/integrations/connections/openai/models").await;
    assert_eq!(models.body.as_array().map(Vec::len), Some(3));
    assert_eq!(
        h.sim_put("/integrations/nope/models", json!({"count": 3}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(h.get("/integrations/openai").await.status, StatusCode::OK);
    assert_eq!(
        h.get("/integrations/nope").await.status,
        StatusCode::NOT_FOUND
    );
    let mut unknown = connection("x", None);
    unknown["spec"]["integration"] = json!("nope");
    assert_eq!(
        h.post("/integrations/connections", unknown).await.status,
        StatusCode::BAD_REQUEST
    );
    let endpoints = h
        .get("/integrations/connections/openai/endpointConfigurations")
        .await;
    assert_eq!(endpoints.status, StatusCode::OK);
    assert!(endpoints.body.is_array());
}

/// Another workspace's key sees none of `ws-a`'s connections.
#[tokio::test]
async fn connections_stay_in_their_workspace() {
    let mut h = Harness::default().await;
    h.post(
        "/integrations/connections",
        connection("openai", Some(SECRET)),
    )
    .await;
    h.key = "key-b".into();
    assert_eq!(h.get("/integrations/connections").await.body, json!([]));
    assert_eq!(
        h.get("/integrations/connections/openai").await.status,
        StatusCode::NOT_FOUND
    );
}

/// Malformed bodies are 400s with the usual error body, never a server error.
#[tokio::test]
async fn malformed_bodies_are_client_errors() {
    let h = Harness::default().await;
    for body in [
        json!([]),
        json!({"metadata": 5}),
        json!({"metadata": {"name": "Bad Name"}, "spec": {"integration": "openai"}}),
        json!({"metadata": {"name": "ok"}}),
        json!({"metadata": {"name": "ok"}, "spec": {"integration": "openai", "secret": {"k": 1}}}),
        json!({"metadata": {"name": "ok"}, "spec": {"integration": "openai", "config": "x"}}),
        json!({"metadata": {"name": "ok"}, "spec": {"integration": 7}}),
    ] {
        let answer = h.post("/integrations/connections", body.clone()).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.raw
        );
        assert!(answer.body["message"].is_string(), "{}", answer.raw);
    }
}
