//! Shared helpers for the simulator's integration tests: a spawned simulator plus a small reqwest-based
//! client that talks to it over real HTTP, and the project's own table of the API's response shapes.

#![allow(
    dead_code,
    reason = "each test crate uses a different subset of the helpers"
)]

pub mod schema;

use std::time::Duration;

use blaxel_operator::sim::{self, ApiKey, SimConfig, SimHandle};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A test configuration: manual clock (time moves only when a test advances it), fixed seed, and two
/// workspaces (`ws-a` with key `key-a`, `ws-b` with key `key-b`).
pub fn config() -> SimConfig {
    SimConfig {
        api_keys: vec![
            ApiKey {
                key: "key-a".into(),
                workspace: "ws-a".into(),
            },
            ApiKey {
                key: "key-b".into(),
                workspace: "ws-b".into(),
            },
        ],
        manual_clock: true,
        seed: Some(7),
        ..SimConfig::default()
    }
}

/// A running simulator and a client authenticated as `key-a` for `ws-a`.
pub struct Harness {
    pub sim: SimHandle,
    pub http: reqwest::Client,
    pub key: String,
}

/// One answer: status, headers and body (JSON, or `Value::Null` when empty, or a string when not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub raw: String,
}

impl Harness {
    pub async fn start(config: SimConfig) -> Self {
        let sim = sim::spawn(config).await.expect("simulator starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Self {
            sim,
            http,
            key: "key-a".into(),
        }
    }

    pub async fn default() -> Self {
        Self::start(config()).await
    }

    /// An authenticated request to `/v0{path}`.
    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.sim.base_url()))
            .bearer_auth(&self.key)
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Answer {
        let resp = rb.send().await.expect("request reaches the simulator");
        let status = resp.status();
        let headers = resp.headers().clone();
        let raw = resp.text().await.expect("body");
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&raw).unwrap_or_else(|_| Value::String(raw.clone()))
        };
        Answer {
            status,
            headers,
            body,
            raw,
        }
    }

    /// An authenticated call with an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut rb = self.req(method, path);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(rb).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    /// `GET /_sim{path}`.
    pub async fn sim_get(&self, path: &str) -> Value {
        let a = self
            .send(self.http.get(format!("{}/_sim{path}", self.sim.root_url())))
            .await;
        assert_eq!(a.status, StatusCode::OK, "GET /_sim{path}: {}", a.raw);
        a.body
    }

    /// `POST /_sim{path}` with a JSON body; the whole answer.
    pub async fn sim_post(&self, path: &str, body: Value) -> Answer {
        self.send(
            self.http
                .post(format!("{}/_sim{path}", self.sim.root_url()))
                .json(&body),
        )
        .await
    }

    /// `PUT /_sim{path}` with a JSON body; the whole answer.
    pub async fn sim_put(&self, path: &str, body: Value) -> Answer {
        self.send(
            self.http
                .put(format!("{}/_sim{path}", self.sim.root_url()))
                .json(&body),
        )
        .await
    }

    /// Advances the simulator clock over HTTP.
    pub async fn advance(&self, seconds: f64) {
        let a = self
            .sim_post("/clock/advance", json!({ "seconds": seconds }))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    }

    /// Creates a sandbox with a typical body; panics unless 200.
    pub async fn create_sandbox(&self, name: &str) -> Value {
        let a = self.post("/sandboxes", sandbox_body(name)).await;
        assert_eq!(a.status, StatusCode::OK, "create {name}: {}", a.raw);
        a.body
    }

    /// The status of a sandbox (panics unless it exists).
    pub async fn sandbox_status(&self, name: &str) -> String {
        let a = self.get(&format!("/sandboxes/{name}")).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        a.body["status"].as_str().expect("status string").to_owned()
    }
}

/// A create-sandbox body like the operator sends.
pub fn sandbox_body(name: &str) -> Value {
    json!({
        "metadata": { "name": name, "labels": { "team": "a", "managed-by": "blaxel-operator" } },
        "spec": {
            "region": "us-pdx-1",
            "runtime": {
                "image": "blaxel/base-image:latest",
                "memory": 4096,
                "ports": [{ "name": "web", "target": 3000, "protocol": "HTTP" }],
                "envs": [{ "name": "MODE", "value": "dev" }],
                "ttl": "24h"
            }
        }
    })
}
