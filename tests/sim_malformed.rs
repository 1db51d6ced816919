//! The malformed-record fault: `/_sim/workspaces/{ws}/malformed` adds raw records to a workspace's list
//! answers (both API generations, the last page when paginated) and to `GET /sandboxes/{name}`, shows them
//! in `/_sim/state`, and clears them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected values"
)]

mod common;

use blaxel_operator::sim::{ApiGeneration, SimConfig};
use common::{Answer, Harness, config};
use reqwest::StatusCode;
use serde_json::{Value, json};

const VERSION: &str = "2026-04-28";

fn speaking(generation: ApiGeneration) -> SimConfig {
    SimConfig {
        generation,
        ..config()
    }
}

/// A sandbox whose memory does not fit an i64, and a user whose e-mail is null.
fn huge_sandbox() -> Value {
    json!({"metadata": {"name": "huge"}, "spec": {"runtime": {"memory": 9_223_372_036_854_775_808_u64}}})
}

fn null_email() -> Value {
    json!({"email": null, "role": "member"})
}

async fn add(h: &Harness, ws: &str, collection: &str, record: Value) -> Answer {
    h.sim_post(
        &format!("/workspaces/{ws}/malformed"),
        json!({ "collection": collection, "record": record }),
    )
    .await
}

/// The sandbox names of a list answer's items (`null` where there is none).
fn names(items: &Value) -> Vec<Value> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metadata"]["name"].clone())
        .collect()
}

/// Raw records follow the real ones in `GET /users` and `GET /sandboxes` of their workspace only, in both
/// generations; other workspaces are untouched.
#[tokio::test]
async fn raw_records_are_appended_to_list_answers() {
    for api in [ApiGeneration::V2025, ApiGeneration::V2026] {
        let mut h = Harness::start(speaking(api)).await;
        h.create_sandbox("real").await;
        h.post("/users", json!({"email": "real@example.com"})).await;
        assert_eq!(
            add(&h, "ws-a", "sandboxes", huge_sandbox()).await.status,
            StatusCode::OK
        );
        assert_eq!(
            add(&h, "ws-a", "sandboxes", json!(7)).await.status,
            StatusCode::OK
        );
        let a = add(&h, "ws-a", "users", null_email()).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        assert_eq!(a.body["users"], json!([null_email()]));

        let users = h.get("/users").await.body;
        assert_eq!(users[0]["email"], "real@example.com", "{api:?}");
        assert_eq!(users[1], null_email(), "{api:?}");
        let sandboxes = h.get("/sandboxes").await.body;
        assert_eq!(names(&sandboxes)[0], "real", "{api:?}");
        assert_eq!(sandboxes[1], huge_sandbox(), "{api:?}");
        assert_eq!(sandboxes[2], json!(7), "{api:?}");
        // The big number is served exactly as given, not rounded.
        assert!(
            h.get("/sandboxes")
                .await
                .raw
                .contains("9223372036854775808")
        );

        h.key = "key-b".into();
        assert_eq!(h_len(&h, "/users").await, 0);
        assert_eq!(h_len(&h, "/sandboxes").await, 0);
    }
}

async fn h_len(h: &Harness, path: &str) -> usize {
    h.get(path).await.body.as_array().unwrap().len()
}

/// Paginated (today's API with `Blaxel-Version`), raw records come once, on the last page.
#[tokio::test]
async fn raw_records_ride_on_the_last_page() {
    let h = Harness::start(speaking(ApiGeneration::V2026)).await;
    for name in ["a", "b", "c"] {
        h.create_sandbox(name).await;
    }
    add(&h, "ws-a", "sandboxes", huge_sandbox()).await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let url = format!("{}/sandboxes?limit=2&cursor={cursor}", h.sim.base_url());
        let a = h
            .send(
                h.http
                    .get(url)
                    .bearer_auth(&h.key)
                    .header("blaxel-version", VERSION),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        assert_eq!(a.body["meta"]["total"], 4);
        pages += 1;
        let page = names(&a.body["data"]);
        seen.extend(page);
        if a.body["meta"]["hasMore"] != json!(true) {
            break;
        }
        cursor = a.body["meta"]["nextCursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(pages, 2);
    assert_eq!(seen, [json!("c"), json!("b"), json!("a"), json!("huge")]);
}

/// `GET /sandboxes/{name}` answers a raw record of that name while no live sandbox has it; a real sandbox
/// of the same name wins; other names stay 404.
#[tokio::test]
async fn raw_sandbox_answers_get_by_name() {
    let h = Harness::default().await;
    add(&h, "ws-a", "sandboxes", huge_sandbox()).await;
    let a = h.get("/sandboxes/huge").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, huge_sandbox());
    assert_eq!(
        h.get("/sandboxes/other").await.status,
        StatusCode::NOT_FOUND
    );

    h.create_sandbox("huge").await;
    let a = h.get("/sandboxes/huge").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_ne!(a.body, huge_sandbox(), "the real sandbox wins");
    assert_eq!(a.body["metadata"]["name"], "huge");
}

/// `/_sim/state` shows the raw records per workspace; DELETE and `/_sim/reset` clear them.
#[tokio::test]
async fn raw_records_are_shown_and_cleared() {
    let h = Harness::default().await;
    add(&h, "ws-a", "users", null_email()).await;
    add(&h, "ws-a", "sandboxes", huge_sandbox()).await;
    let state = h.sim_get("/state").await;
    assert_eq!(
        state["workspaces"]["ws-a"]["malformed"],
        json!({"users": [null_email()], "sandboxes": [huge_sandbox()]})
    );
    assert_eq!(
        state["workspaces"]["ws-b"]["malformed"],
        json!({"users": [], "sandboxes": []})
    );

    let url = format!("{}/_sim/workspaces/ws-a/malformed", h.sim.root_url());
    let a = h.send(h.http.delete(url)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_eq!(h_len(&h, "/users").await, 0);
    assert_eq!(h_len(&h, "/sandboxes").await, 0);
    assert_eq!(h.get("/sandboxes/huge").await.status, StatusCode::NOT_FOUND);

    add(&h, "ws-a", "users", null_email()).await;
    assert_eq!(h.sim_post("/reset", json!({})).await.status, StatusCode::OK);
    assert_eq!(h_len(&h, "/users").await, 0);
}

/// Bad requests are refused: unknown collection, missing record, unknown key, unknown workspace.
#[tokio::test]
async fn bad_malformed_requests_are_refused() {
    let h = Harness::default().await;
    let path = "/workspaces/ws-a/malformed";
    for body in [
        json!({"collection": "previews", "record": {}}),
        json!({"collection": "users"}),
        json!({"record": {}}),
        json!({"collection": "users", "record": {}, "times": 2}),
    ] {
        let a = h.sim_post(path, body.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.raw);
    }
    let a = h
        .sim_post(path, json!({"collection": "users", "record": null}))
        .await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "null is a record like any other: {}",
        a.raw
    );
    let a = add(&h, "nowhere", "users", json!({})).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}
