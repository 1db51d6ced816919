//! Behaviour over time and across callers: authentication and workspace isolation, the sandbox lifecycle
//! (deploy, stop, delete, retention), and invitations (auto-accept, expiry, re-invite), all driven by the
//! simulator clock through `POST /_sim/clock/advance`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected values"
)]

mod common;

use std::time::Duration;

use blaxel_operator::sim::SimConfig;
use common::schema::*;
use common::{Harness, config};
use reqwest::StatusCode;
use serde_json::json;

fn timed(deploy: u64, stop: u64, delete: u64, retention: u64) -> SimConfig {
    SimConfig {
        deploy_time: Duration::from_secs(deploy),
        stop_time: Duration::from_secs(stop),
        delete_time: Duration::from_secs(delete),
        termination_retention: Duration::from_secs(retention),
        ..config()
    }
}

/// Missing or unknown keys answer 401, a key used for another workspace 403, in the route's error shape;
/// both authorization headers and both workspace selectors work.
#[tokio::test]
async fn authentication_and_workspace_selection() {
    let h = Harness::default().await;
    let base = h.sim.base_url();

    let a = h.send(h.http.get(format!("{base}/users"))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_shape(&ERROR, &a.body);
    let a = h
        .send(h.http.get(format!("{base}/users")).bearer_auth("wrong"))
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = h
        .send(
            h.http
                .get(format!("{base}/users"))
                .header("Authorization", "Basic a2V5LWE="),
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::UNAUTHORIZED,
        "only bearer tokens are accepted"
    );
    // Create-sandbox errors use the SandboxError body even for auth failures.
    let a = h
        .send(
            h.http
                .post(format!("{base}/sandboxes"))
                .json(&common::sandbox_body("x")),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_shape(&SANDBOX_ERROR, &a.body);

    let a = h
        .send(
            h.http
                .get(format!("{base}/users"))
                .bearer_auth("key-a")
                .header("X-Blaxel-Workspace", "ws-b"),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_shape(&ERROR, &a.body);
    let a = h
        .send(
            h.http
                .get(format!("{base}/users?workspace=ws-b"))
                .bearer_auth("key-a"),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = h
        .send(
            h.http
                .get(format!("{base}/users"))
                .bearer_auth("key-a")
                .header("X-Blaxel-Workspace", "ws-a"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = h
        .send(
            h.http
                .get(format!("{base}/users?workspace=ws-b"))
                .header("X-Blaxel-Authorization", "Bearer key-b"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "SDK-style header: {}", a.raw);
    // A simulated user token is not a workspace key.
    let a = h
        .send(
            h.http
                .get(format!("{base}/users"))
                .bearer_auth("user:alice@example.com"),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

/// Objects in one workspace are invisible from another.
#[tokio::test]
async fn workspaces_are_isolated() {
    let h = Harness::default().await;
    h.create_sandbox("shared-name").await;
    h.post("/users", json!({ "email": "a@example.com" })).await;
    let base = h.sim.base_url();
    let b = |path: &str| h.http.get(format!("{base}{path}")).bearer_auth("key-b");
    assert_eq!(h.send(b("/sandboxes")).await.body, json!([]));
    assert_eq!(h.send(b("/users")).await.body, json!([]));
    assert_eq!(
        h.send(b("/sandboxes/shared-name")).await.status,
        StatusCode::NOT_FOUND
    );
    // The same name can exist in both.
    let a = h
        .send(
            h.http
                .post(format!("{base}/sandboxes"))
                .bearer_auth("key-b")
                .json(&common::sandbox_body("shared-name")),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["metadata"]["workspace"], "ws-b");
}

/// DEPLOYING turns DEPLOYED exactly at deploy-time; stop goes DEACTIVATING then DEACTIVATED at stop-time.
#[tokio::test]
async fn deploy_and_stop_follow_the_clock() {
    let h = Harness::start(timed(10, 4, 1, 60)).await;
    h.create_sandbox("box").await;
    assert_eq!(h.sandbox_status("box").await, "DEPLOYING");
    h.advance(9.9).await;
    assert_eq!(h.sandbox_status("box").await, "DEPLOYING");
    h.advance(0.1).await;
    assert_eq!(h.sandbox_status("box").await, "DEPLOYED");

    let a = h.put("/sandboxes/box/stop", json!({})).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(h.sandbox_status("box").await, "DEACTIVATING");
    // Stopping is already in progress: not running, so a second stop is a 409.
    assert_eq!(
        h.put("/sandboxes/box/stop", json!({})).await.status,
        StatusCode::CONFLICT
    );
    h.advance(4.0).await;
    assert_eq!(h.sandbox_status("box").await, "DEACTIVATED");
    assert_eq!(
        h.put("/sandboxes/box/stop", json!({})).await.status,
        StatusCode::CONFLICT
    );

    assert_eq!(
        h.put("/sandboxes/box/start", json!({})).await.status,
        StatusCode::OK
    );
    assert_eq!(h.sandbox_status("box").await, "DEPLOYING");
    assert_eq!(
        h.put("/sandboxes/box/start", json!({})).await.status,
        StatusCode::CONFLICT,
        "DEPLOYING counts as running"
    );
    h.advance(10.0).await;
    assert_eq!(h.sandbox_status("box").await, "DEPLOYED");

    // A sandbox created disabled is DEACTIVATED at once; PUT enabled=true starts it (2025 too).
    let mut body = common::sandbox_body("off");
    body["spec"]["enabled"] = json!(false);
    let a = h.post("/sandboxes", body.clone()).await;
    assert_eq!(a.body["status"], "DEACTIVATED");
    body["spec"]["enabled"] = json!(true);
    let a = h.put("/sandboxes/off", body).await;
    assert_eq!(a.body["status"], "DEPLOYING");
}

/// DELETE: DELETING for delete-time, then TERMINATED for the retention period, then 404; the name can be
/// created again once TERMINATED, but not while DELETING.
#[tokio::test]
async fn delete_lifecycle_with_retention() {
    let h = Harness::start(timed(1, 1, 2, 30)).await;
    h.create_sandbox("gone").await;
    let a = h.delete("/sandboxes/gone").await;
    assert_eq!(a.body["status"], "DELETING");
    assert_eq!(h.sandbox_status("gone").await, "DELETING");
    let a = h.post("/sandboxes", common::sandbox_body("gone")).await;
    assert_eq!(
        a.status,
        StatusCode::CONFLICT,
        "the name is taken while DELETING"
    );
    assert_eq!(
        h.put("/sandboxes/gone", common::sandbox_body("gone"))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        h.put("/sandboxes/gone/start", json!({})).await.status,
        StatusCode::CONFLICT
    );
    // Deleting again is idempotent.
    let a = h.delete("/sandboxes/gone").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["status"], "DELETING");

    h.advance(2.0).await;
    assert_eq!(h.sandbox_status("gone").await, "TERMINATED");
    let listed = h.get("/sandboxes").await.body;
    assert_eq!(
        listed[0]["status"], "TERMINATED",
        "2025 lists terminated sandboxes"
    );
    h.advance(29.9).await;
    assert_eq!(h.sandbox_status("gone").await, "TERMINATED");
    h.advance(0.1).await;
    assert_eq!(h.get("/sandboxes/gone").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        h.delete("/sandboxes/gone").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(h.get("/sandboxes").await.body, json!([]));

    // Recreate over a TERMINATED record.
    h.create_sandbox("again").await;
    h.delete("/sandboxes/again").await;
    h.advance(2.0).await;
    assert_eq!(h.sandbox_status("again").await, "TERMINATED");
    let a = h.post("/sandboxes", common::sandbox_body("again")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_eq!(a.body["status"], "DEPLOYING");
    assert_eq!(h.get("/sandboxes").await.body.as_array().unwrap().len(), 1);
}

/// With --auto-accept-after, a pending invitation becomes an accepted member exactly that long after it
/// was sent, keeping the role set while pending.
#[tokio::test]
async fn invitation_is_auto_accepted_after_the_configured_time() {
    let h = Harness::start(SimConfig {
        auto_accept_after: Some(Duration::from_secs(60)),
        ..config()
    })
    .await;
    h.post("/users", json!({ "email": "eve@example.com" }))
        .await;
    h.put("/users/eve@example.com", json!({ "role": "admin" }))
        .await;
    h.advance(59.0).await;
    let u = &h.get("/users").await.body[0];
    assert_eq!(u["accepted"], false);
    h.advance(1.0).await;
    let users = h.get("/users").await.body;
    assert_array_of(&WORKSPACE_USER_2025, &users);
    assert_eq!(users[0]["accepted"], true);
    assert_eq!(users[0]["role"], "admin");
    assert!(users[0]["sub"].is_string());
}

/// With --invite-ttl, an unaccepted invitation turns expired:true; re-inviting an expired address creates a
/// fresh pending invitation; an invitation that expires first is never auto-accepted.
#[tokio::test]
async fn invitation_expires_and_reinvite_refreshes_it() {
    let h = Harness::start(SimConfig {
        invite_ttl: Some(Duration::from_secs(100)),
        auto_accept_after: Some(Duration::from_secs(500)),
        ..config()
    })
    .await;
    let first = h
        .post("/users", json!({ "email": "fay@example.com" }))
        .await
        .body;
    h.advance(100.0).await;
    let u = &h.get("/users").await.body[0];
    assert_eq!(u["accepted"], false);
    assert_eq!(u["expired"], true);
    h.advance(1000.0).await;
    assert_eq!(
        h.get("/users").await.body[0]["accepted"],
        false,
        "expired first: never auto-accepted"
    );
    // The invitee cannot join with an expired invitation.
    let join = format!("{}/workspaces/ws-a/join", h.sim.base_url());
    let a = h
        .send(h.http.post(&join).bearer_auth("user:fay@example.com"))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    let fresh = h
        .post("/users", json!({ "email": "fay@example.com" }))
        .await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert_ne!(
        fresh.body["createdAt"], first["createdAt"],
        "a fresh invitation"
    );
    let users = h.get("/users").await.body;
    assert_eq!(
        users.as_array().unwrap().len(),
        1,
        "still one entry: {users}"
    );
    assert_eq!(users[0]["expired"], false);
    let a = h
        .send(h.http.post(&join).bearer_auth("user:fay@example.com"))
        .await;
    assert_eq!(a.status, StatusCode::OK);
}

/// Re-inviting an address with a live invitation or membership answers 200 with the existing invitation
/// and never creates a second entry.
#[tokio::test]
async fn reinvite_does_not_duplicate() {
    let h = Harness::default().await;
    let first = h
        .post("/users", json!({ "email": "gus@example.com" }))
        .await
        .body;
    h.put("/users/gus@example.com", json!({ "role": "admin" }))
        .await;
    h.advance(5.0).await;
    let again = h
        .post("/users", json!({ "email": "GUS@example.com" }))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_shape(&PENDING_INVITATION_2025, &again.body);
    assert_eq!(
        again.body["createdAt"], first["createdAt"],
        "the existing invitation, unchanged"
    );
    assert_eq!(
        again.body["role"], "admin",
        "re-inviting does not reset the role"
    );
    assert_eq!(h.get("/users").await.body.as_array().unwrap().len(), 1);

    h.sim_post("/invitations/gus@example.com/accept", json!({}))
        .await;
    let again = h
        .post("/users", json!({ "email": "gus@example.com" }))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    let users = h.get("/users").await.body;
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(
        users[0]["accepted"], true,
        "membership untouched by a re-invite"
    );
}

/// The /_sim/ helpers: state shows what the API created, accept/decline/members/fail act on it, reset clears
/// everything but keeps the clock.
#[tokio::test]
async fn control_routes_show_and_change_the_world() {
    let h = Harness::default().await;
    h.create_sandbox("s1").await;
    h.post(
        "/sandboxes/s1/previews",
        json!({ "metadata": { "name": "p" } }),
    )
    .await;
    h.post("/users", json!({ "email": "hal@example.com" }))
        .await;

    let st = h.sim_get("/state").await;
    assert_eq!(st["generation"], "2025");
    assert_eq!(
        st["workspaces"]["ws-a"]["sandboxes"][0]["metadata"]["name"],
        "s1"
    );
    assert_eq!(
        st["workspaces"]["ws-a"]["sandboxes"][0]["previews"][0]["metadata"]["name"],
        "p"
    );
    assert_eq!(st["workspaces"]["ws-a"]["users"][0]["standing"], "pending");
    assert_eq!(st["workspaces"]["ws-b"]["sandboxes"], json!([]));

    let a = h
        .sim_post("/invitations/nobody@example.com/accept", json!({}))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = h
        .sim_post(
            "/invitations/hal@example.com/decline?workspace=ws-a",
            json!({}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_eq!(h.get("/users").await.body, json!([]));

    let a = h
        .sim_post(
            "/workspaces/ws-a/members",
            json!({ "email": "ivy@example.com", "role": "admin" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    let users = h.get("/users").await.body;
    assert_eq!(users[0]["accepted"], true);
    assert_eq!(users[0]["role"], "admin");

    let a = h
        .sim_post(
            "/workspaces/ws-a/sandboxes/s1/fail",
            json!({ "message": "disk on fire" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_eq!(h.sandbox_status("s1").await, "FAILED");
    assert_eq!(
        h.put("/sandboxes/s1/stop", json!({})).await.status,
        StatusCode::CONFLICT,
        "FAILED is not running"
    );
    assert_eq!(
        h.put("/sandboxes/s1/start", json!({})).await.status,
        StatusCode::OK,
        "start retries a FAILED sandbox"
    );

    let before = h.sim_get("/clock").await["nowMs"].as_u64().unwrap();
    h.advance(3.0).await;
    let a = h.sim_post("/reset", json!({})).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(h.get("/sandboxes").await.body, json!([]));
    assert_eq!(h.get("/users").await.body, json!([]));
    assert_eq!(
        h.sim_get("/clock").await["nowMs"].as_u64().unwrap(),
        before + 3000,
        "reset keeps the clock"
    );
}

/// Images listed with --fail-image deploy into FAILED instead of DEPLOYED.
#[tokio::test]
async fn failing_images_end_in_failed() {
    let h = Harness::start(SimConfig {
        failing_images: vec!["blaxel/broken:latest".into()],
        ..timed(5, 1, 1, 10)
    })
    .await;
    let mut body = common::sandbox_body("bad");
    body["spec"]["runtime"]["image"] = json!("blaxel/broken:latest");
    h.post("/sandboxes", body.clone()).await;
    assert_eq!(h.sandbox_status("bad").await, "DEPLOYING");
    h.advance(5.0).await;
    assert_eq!(h.sandbox_status("bad").await, "FAILED");
    // Fixing the image redeploys it.
    body["spec"]["runtime"]["image"] = json!("blaxel/base-image:latest");
    let a = h.put("/sandboxes/bad", body).await;
    assert_eq!(a.body["status"], "DEPLOYING");
    h.advance(5.0).await;
    assert_eq!(h.sandbox_status("bad").await, "DEPLOYED");
}
