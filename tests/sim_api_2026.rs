//! Today's API (`--api-generation 2026`): the 2025-only routes are gone, power is `spec.enabled` with a
//! `state` field, shapes carry today's fields, and `GET /sandboxes` paginates for `Blaxel-Version >=
//! 2026-04-28`.
#![allow(
    clippy::too_many_lines,
    reason = "end-to-end scenarios read best as one story"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected values"
)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use blaxel_operator::sim::{ApiGeneration, SimConfig};
use common::schema::*;
use common::{Harness, config};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn gen2026() -> SimConfig {
    SimConfig {
        generation: ApiGeneration::V2026,
        deploy_time: Duration::from_secs(2),
        stop_time: Duration::from_secs(1),
        delete_time: Duration::from_secs(1),
        termination_retention: Duration::from_secs(60),
        ..config()
    }
}

const VERSION: &str = "2026-04-28";

/// Start/stop and join/decline answer 404 like unknown routes, in the standard error body.
#[tokio::test]
async fn legacy_routes_are_gone() {
    let h = Harness::start(gen2026()).await;
    h.create_sandbox("box").await;
    for path in ["/sandboxes/box/start", "/sandboxes/box/stop"] {
        let a = h.call(Method::PUT, path, None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert_shape(&ERROR, &a.body);
    }
    h.post("/users", json!({ "email": "a@example.com" })).await;
    for what in ["join", "decline"] {
        let url = format!("{}/workspaces/ws-a/{what}", h.sim.base_url());
        let a = h
            .send(h.http.post(url).bearer_auth("user:a@example.com"))
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{what}");
    }
}

/// Sandboxes carry spec.enabled and state; PUT enabled=false stops (DEACTIVATING → DEACTIVATED, STANDBY),
/// enabled=true starts again (DEPLOYING, RUNNING); a PUT without enabled keeps the power state.
#[tokio::test]
async fn power_is_controlled_by_spec_enabled() {
    let h = Harness::start(gen2026()).await;
    let s = h.create_sandbox("box").await;
    assert_shape(&SANDBOX_2026, &s);
    assert_eq!(s["spec"]["enabled"], true, "enabled defaults to true");
    assert_eq!(s["state"], "RUNNING");
    assert_eq!(s["status"], "DEPLOYING");
    h.advance(2.0).await;

    let mut body = common::sandbox_body("box");
    body["spec"]["enabled"] = json!(false);
    let a = h.put("/sandboxes/box", body.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_shape(&SANDBOX_2026, &a.body);
    assert_eq!(a.body["status"], "DEACTIVATING");
    assert_eq!(a.body["state"], "STANDBY");
    assert_eq!(a.body["spec"]["enabled"], false);
    h.advance(1.0).await;
    let got = h.get("/sandboxes/box").await.body;
    assert_eq!(got["status"], "DEACTIVATED");
    assert_eq!(got["state"], "STANDBY");

    // Labels-only update without `enabled`: still stopped.
    let mut labels_only = common::sandbox_body("box");
    labels_only["metadata"]["labels"] = json!({ "x": "y" });
    let a = h.put("/sandboxes/box", labels_only).await;
    assert_eq!(a.body["status"], "DEACTIVATED");
    assert_eq!(a.body["spec"]["enabled"], false);

    body["spec"]["enabled"] = json!(true);
    let a = h.put("/sandboxes/box", body).await;
    assert_eq!(a.body["status"], "DEPLOYING");
    assert_eq!(a.body["state"], "RUNNING");
    h.advance(2.0).await;
    assert_eq!(h.sandbox_status("box").await, "DEPLOYED");
}

/// Today's shapes: WorkspaceUser has source, PendingInvitation has expiresAt, Preview has status; the
/// create-sandbox errors keep their body.
#[tokio::test]
async fn shapes_follow_the_2026_definition() {
    let h = Harness::start(gen2026()).await;
    let inv = h
        .post("/users", json!({ "email": "b@example.com" }))
        .await
        .body;
    assert_shape(&PENDING_INVITATION_2026, &inv);
    assert!(
        inv["expiresAt"].is_string(),
        "invitations expire (7d by default)"
    );
    let users = h.get("/users").await.body;
    assert_array_of(&WORKSPACE_USER_2026, &users);
    assert_eq!(users[0]["source"], "invitation");

    h.create_sandbox("web").await;
    let p = h
        .post(
            "/sandboxes/web/previews",
            json!({ "metadata": { "name": "p" }, "spec": { "port": 80 } }),
        )
        .await;
    assert_eq!(p.status, StatusCode::OK);
    assert_shape(&PREVIEW_2026, &p.body);
    let dup = h.post("/sandboxes", common::sandbox_body("web")).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_shape(&SANDBOX_ERROR, &dup.body);
    // createIfNotExist returns the existing sandbox instead of 409.
    let a = h
        .send(
            h.req(Method::POST, "/sandboxes?createIfNotExist=true")
                .json(&common::sandbox_body("web")),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_shape(&SANDBOX_2026, &a.body);
}

async fn page(h: &Harness, query: &str) -> Value {
    let a = h
        .send(
            h.req(Method::GET, &format!("/sandboxes{query}"))
                .header("Blaxel-Version", VERSION),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{query}: {}", a.raw);
    assert_shape(&SANDBOX_LIST, &a.body);
    a.body
}

/// Following nextCursor visits every sandbox exactly once, newest first, with total and hasMore right;
/// limits are clamped to 200; without the version header the list is a bare array.
#[tokio::test]
async fn pagination_follows_cursors() {
    let h = Harness::start(gen2026()).await;
    let n = 237;
    for i in 0..n {
        h.create_sandbox(&format!("sbx-{i:03}")).await;
        h.advance(0.001).await;
    }

    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let q = if cursor.is_empty() {
            "?limit=50".to_owned()
        } else {
            format!("?limit=50&cursor={cursor}")
        };
        let body = page(&h, &q).await;
        pages += 1;
        let data = body["data"].as_array().unwrap();
        assert_eq!(body["meta"]["total"], n);
        seen.extend(
            data.iter()
                .map(|s| s["metadata"]["name"].as_str().unwrap().to_owned()),
        );
        if body["meta"]["hasMore"] == false {
            assert_eq!(body["meta"]["nextCursor"], "");
            break;
        }
        assert_eq!(data.len(), 50);
        cursor = body["meta"]["nextCursor"].as_str().unwrap().to_owned();
        assert!(pages < 20, "pagination does not terminate");
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), n);
    assert_eq!(
        seen.iter().collect::<BTreeSet<_>>().len(),
        n,
        "no duplicates"
    );
    assert_eq!(seen[0], "sbx-236", "createdAt:desc by default");
    assert_eq!(seen[n - 1], "sbx-000");

    // A cursor survives inserts: new sandboxes (newer) do not shift the next page.
    let first = page(&h, "?limit=10").await;
    h.create_sandbox("zzz-new").await;
    let second = page(
        &h,
        &format!(
            "?limit=10&cursor={}",
            first["meta"]["nextCursor"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(second["data"][0]["metadata"]["name"], "sbx-226");

    // Sorting by name.
    let by_name = page(&h, "?limit=3&sort=name:asc").await;
    let names: Vec<_> = by_name["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metadata"]["name"].clone())
        .collect();
    assert_eq!(
        names,
        vec![json!("sbx-000"), json!("sbx-001"), json!("sbx-002")]
    );

    // Default limit 50, clamped at 200.
    assert_eq!(page(&h, "").await["data"].as_array().unwrap().len(), 50);
    assert_eq!(
        page(&h, "?limit=1000").await["data"]
            .as_array()
            .unwrap()
            .len(),
        200
    );
    for bad in [
        "?limit=0",
        "?limit=-1",
        "?limit=ten",
        "?cursor=nothex",
        "?sort=size:asc",
        "?status=SLEEPING",
    ] {
        let a = h
            .send(
                h.req(Method::GET, &format!("/sandboxes{bad}"))
                    .header("Blaxel-Version", VERSION),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_shape(&ERROR, &a.body);
    }
    // A cursor from one sort cannot be used with another.
    let c = page(&h, "?limit=5&sort=name:asc").await["meta"]["nextCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = h
        .send(
            h.req(Method::GET, &format!("/sandboxes?cursor={c}"))
                .header("Blaxel-Version", VERSION),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    // Older or absent version: the bare array of everything.
    let a = h.get("/sandboxes").await;
    assert_array_of(&SANDBOX_2026, &a.body);
    assert_eq!(a.body.as_array().unwrap().len(), n + 1);
    let a = h
        .send(
            h.req(Method::GET, "/sandboxes")
                .header("Blaxel-Version", "2026-04-16"),
        )
        .await;
    assert_eq!(a.body.as_array().unwrap().len(), n + 1);
}

/// TERMINATED sandboxes are hidden from today's listing unless showTerminated=true or a status filter asks.
#[tokio::test]
async fn terminated_sandboxes_are_hidden_by_default() {
    let h = Harness::start(gen2026()).await;
    h.create_sandbox("keep").await;
    h.create_sandbox("drop").await;
    h.delete("/sandboxes/drop").await;
    assert_eq!(
        page(&h, "").await["data"].as_array().unwrap().len(),
        2,
        "DELETING is still listed"
    );
    h.advance(1.0).await;
    let body = page(&h, "").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["meta"]["total"], 2, "total ignores filters");
    assert_eq!(
        page(&h, "?showTerminated=true").await["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let only = page(&h, "?status=terminated").await;
    assert_eq!(only["data"][0]["metadata"]["name"], "drop");
    assert_eq!(h.get("/sandboxes").await.body.as_array().unwrap().len(), 1);
    assert_eq!(
        h.get("/sandboxes?showTerminated=true")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// The 2025 generation ignores Blaxel-Version: GET /sandboxes is always a bare array.
#[tokio::test]
async fn generation_2025_never_paginates() {
    let h = Harness::default().await;
    h.create_sandbox("one").await;
    let a = h
        .send(
            h.req(Method::GET, "/sandboxes")
                .header("Blaxel-Version", VERSION),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_array_of(&SANDBOX_2025, &a.body);
}

/// A FAILED sandbox carries today's `errors` entry with the failure message; listings use the lite shape
/// without events.
#[tokio::test]
async fn failures_are_reported_in_errors() {
    let h = Harness::start(gen2026()).await;
    h.create_sandbox("box").await;
    let a = h
        .sim_post(
            "/workspaces/ws-a/sandboxes/box/fail",
            json!({ "message": "kernel panic" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let s = h.get("/sandboxes/box").await.body;
    assert_shape(&SANDBOX_2026, &s);
    assert_eq!(s["status"], "FAILED");
    assert_eq!(s["state"], "STANDBY");
    assert_eq!(s["errors"][0]["message"], "kernel panic");
    assert_eq!(s["errors"][0]["fatal"], true);
    assert!(s["events"].is_array());
    assert!(
        page(&h, "").await["data"][0].get("events").is_none(),
        "paginated items are lite"
    );
    assert!(
        h.get("/sandboxes").await.body[0].get("events").is_none(),
        "so are unpaginated ones"
    );
}

/// Today's listing filters: `q` searches names, display names and labels; `externalId` matches exactly;
/// `status` selects statuses; a cursor stays bound to its filters.
#[tokio::test]
async fn listing_filters() {
    let h = Harness::start(gen2026()).await;
    for i in 0..12 {
        let mut body = common::sandbox_body(&format!("box-{i:02}"));
        if i % 3 == 0 {
            body["metadata"]["labels"]["tier"] = json!("Gold");
        }
        if i == 7 {
            body["metadata"]["externalId"] = json!("session-7");
            body["metadata"]["displayName"] = json!("Lucky Seven");
        }
        if i == 11 {
            body["spec"]["enabled"] = json!(false);
        }
        h.post("/sandboxes", body).await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(&page(&h, "?q=box-1&sort=name:asc").await),
        ["box-10", "box-11"]
    );
    assert_eq!(
        names(&page(&h, "?q=gold&sort=name:asc").await),
        ["box-00", "box-03", "box-06", "box-09"]
    );
    assert_eq!(names(&page(&h, "?q=lucky").await), ["box-07"]);
    assert_eq!(
        page(&h, "?q=b").await["data"].as_array().unwrap().len(),
        12,
        "queries under 2 characters are ignored"
    );
    assert_eq!(names(&page(&h, "?externalId=session-7").await), ["box-07"]);
    assert_eq!(names(&page(&h, "?status=DEACTIVATED").await), ["box-11"]);
    assert_eq!(
        page(&h, "?status=DEPLOYING,deactivated").await["data"]
            .as_array()
            .unwrap()
            .len(),
        12
    );

    let first = page(&h, "?q=gold&limit=2&sort=name:asc").await;
    assert_eq!(first["meta"]["hasMore"], true);
    assert_eq!(first["meta"]["total"], 12, "total ignores filters");
    let cursor = first["meta"]["nextCursor"].as_str().unwrap().to_owned();
    assert_eq!(
        names(
            &page(
                &h,
                &format!("?q=gold&limit=2&sort=name:asc&cursor={cursor}")
            )
            .await
        ),
        ["box-06", "box-09"]
    );
    let a = h
        .send(
            h.req(
                Method::GET,
                &format!("/sandboxes?q=box&limit=2&sort=name:asc&cursor={cursor}"),
            )
            .header("Blaxel-Version", VERSION),
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::BAD_REQUEST,
        "a cursor is bound to its query"
    );
}

/// A variable marked secret is stored as sent and shown masked in every answer (create, get, list,
/// update), unless `GET /sandboxes/{name}?show_secrets=true`; the simulator's state shows the value. A
/// client that writes back what it read stores the mask: what the operator must never do.
#[tokio::test]
async fn secret_values_are_masked_in_answers() {
    let h = Harness::start(gen2026()).await;
    let mut body = common::sandbox_body("box");
    body["spec"]["runtime"]["envs"] = json!([
        {"name": "MODE", "value": "dev"},
        {"name": "TOKEN", "value": "s3cr3t-value", "secret": true}
    ]);
    let created = h.post("/sandboxes", body).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.raw);
    let envs = |v: &Value| v["spec"]["runtime"]["envs"].clone();
    let masked = json!([
        {"name": "MODE", "value": "dev"},
        {"name": "TOKEN", "value": "***", "secret": true}
    ]);
    assert_eq!(envs(&created.body), masked, "the create answer");
    let got = h.get("/sandboxes/box").await;
    assert_eq!(envs(&got.body), masked, "a get");
    assert!(!got.raw.contains("s3cr3t-value"));
    let listed = h.get("/sandboxes").await;
    assert!(!listed.raw.contains("s3cr3t-value"), "a list");
    let shown = h.get("/sandboxes/box?show_secrets=true").await;
    assert_eq!(envs(&shown.body)[1]["value"], "s3cr3t-value");
    let state = h.sim_get("/state").await;
    assert!(state.to_string().contains("s3cr3t-value"), "the state dump");

    let written_back = h.put("/sandboxes/box", got.body.clone()).await;
    assert_eq!(written_back.status, StatusCode::OK, "{}", written_back.raw);
    let shown = h.get("/sandboxes/box?show_secrets=true").await;
    assert_eq!(
        envs(&shown.body)[1]["value"],
        "***",
        "a read written back replaces the secret with its mask"
    );
}
